//! `hcikit build`: one bootable GPT disk image per node (or one fleet image).

use crate::error::InputError;
use crate::image::{self, BuildInput, BuildOptions, Format};
use crate::progress::Progress;
use crate::render::files::{NodeFile, Placement};
use crate::spec::secrets::SecretValues;
use anyhow::{Context, Result};
use hcikit_firstboot::plan::{BaseKind, Plan, SECRETS_DIR};
use sha2::Digest;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The cluster spec, e.g. cluster.toml.
    pub spec: PathBuf,
    /// Output folder for images, bmaps, SHA256SUMS and manifest.json.
    #[arg(short, long, value_name = "DIR")]
    pub out: PathBuf,
    /// Base root filesystem. `proxmox`: real Proxmox VE nodes (Debian + Proxmox VE + the
    /// spec's Ceph), needs Proxmox's repositories or a mirror (--mirror) and Proxmox's
    /// archive key (--proxmox-key). `debian`: the same nodes without Proxmox VE, for
    /// trying hcikit offline and for the tests. Or a rootfs archive (.tar, .tar.zst,
    /// .tar.gz, .tar.xz). Default: the spec's image.base.
    #[arg(long, value_name = "FILE|debian|proxmox")]
    pub base: Option<String>,
    /// A mirror for one archive of a generated base, as KIND=URI (repeatable; overrides
    /// image.mirrors). KIND: debian, debian-security, proxmox (the PVE repository), ceph
    /// (the Ceph repository); URI: http://, https:// or file:/// (e.g. a
    /// proxmox-offline-mirror export).
    #[arg(long = "mirror", value_name = "KIND=URI")]
    pub mirrors: Vec<String>,
    /// Proxmox's archive key for `--base proxmox`: proxmox-archive-keyring-trixie.gpg
    /// (PVE 9) or proxmox-release-bookworm.gpg (PVE 8), checked against the checksum
    /// Proxmox publishes. Default: $HCIKIT_PROXMOX_KEY, else the key of a Proxmox build
    /// host.
    #[arg(long, value_name = "FILE")]
    pub proxmox_key: Option<PathBuf>,
    /// The SHA-256 of --proxmox-key when it is a mirror's own signing key instead of
    /// Proxmox's. Default: $HCIKIT_PROXMOX_KEY_SHA256.
    #[arg(long, value_name = "HEX")]
    pub proxmox_key_sha256: Option<String>,
    /// `raw`: sparse `<node>.img`; `zst`: `<node>.img.zst` (the shared root compressed once).
    #[arg(long, value_enum, default_value = "raw")]
    pub format: FormatArg,
    /// Build only this node (repeatable). Default: every node.
    #[arg(long = "node", value_name = "NAME")]
    pub nodes: Vec<String>,
    /// Cache folder for the root filesystem. Default: $XDG_CACHE_HOME/hcikit or ~/.cache/hcikit.
    #[arg(long, value_name = "DIR")]
    pub cache: Option<PathBuf>,
    /// The hcikit-firstboot binary to put into the root. Default: $HCIKIT_AGENT, or the one
    /// next to this executable.
    #[arg(long, value_name = "PATH")]
    pub agent: Option<PathBuf>,
    /// One image that carries every node's files; each machine picks its own at first boot.
    #[arg(long)]
    pub fleet: bool,
    /// One USB installer stick for every node (`<cluster>-installer.img`) instead of the
    /// node images: it boots, finds its node by MAC and writes that node's install-disk.
    #[arg(long, conflicts_with_all = ["fleet", "nodes", "pxe"])]
    pub installer: bool,
    /// The cluster's secrets seed (created with mode 0600 if missing, never overwritten).
    /// Default: <spec dir>/<cluster>.secrets-seed.
    #[arg(long, value_name = "FILE")]
    pub seed: Option<PathBuf>,
    /// A folder of templates that replace the built-in ones file by file.
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,
    /// Also write OUT/pxe/: the network-install tree (iPXE script choosing the node by
    /// MAC, kernel, shared root, each node's disk head and tail, bmaps, pinned SHA-256,
    /// a dnsmasq example). Every node needs nodes[].mac.
    #[arg(long)]
    pub pxe: bool,
    /// The URL OUT/pxe/ will be served at, e.g. http://10.0.0.5:8080. Default: port 8080
    /// on the proxy-DHCP server (iPXE's ${next-server}).
    #[arg(long, value_name = "URL", requires = "pxe")]
    pub pxe_url: Option<String>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum FormatArg {
    Raw,
    Zst,
}

pub fn run(args: Args) -> Result<()> {
    if let Some(url) = &args.pxe_url {
        hcikit_firstboot::report::check_url(url)
            .map_err(|m| InputError::new(format!("--pxe-url {url:?} {m}")))?;
    }
    let loaded = super::load_spec(&args.spec)?;
    let plan = &loaded.plan;
    let spec_dir = spec_dir(&args.spec);
    let epoch = source_date_epoch()?;
    let cache_dir = args.cache.clone().unwrap_or_else(image::default_cache_dir);
    let progress = Progress::auto();
    let base_opts = crate::image::base::BaseOptions {
        proxmox_key: args.proxmox_key.clone(),
        proxmox_key_sha256: args.proxmox_key_sha256.clone(),
        mirrors: loaded.mirrors.clone().with_flags(&args.mirrors)?,
        etc_apt: None,
    };
    let base = resolve_base(
        plan,
        &spec_dir,
        args.base.as_deref(),
        &cache_dir,
        &base_opts,
        progress,
    )?;
    let agent = image::find_agent(args.agent.as_deref())?;
    let overlays = image::find_overlays()?;

    // Every input is checked before the seed is created: bad input writes nothing.
    image::check_nodes(plan, &args.nodes)?;
    let mut rendered = BTreeMap::new();
    for node in &plan.nodes {
        let mut files = render(plan, &node.name, &loaded.secrets, args.templates.as_deref())?;
        files.extend(secret_files(&loaded.secrets));
        rendered.insert(node.name.clone(), files);
    }
    let seed_path = args
        .seed
        .clone()
        .unwrap_or_else(|| crate::render::keys::seed_path(&spec_dir, &plan.cluster.name));
    let new_seed = std::fs::symlink_metadata(&seed_path).is_err();
    let seed = crate::render::keys::load_or_create_seed(&seed_path)?;
    let result = build_with_seed(
        &args, &loaded, rendered, &seed, base, agent, overlays, cache_dir, epoch, progress,
    );
    if result.is_err() && new_seed {
        // Nothing was built with it: a failed first build leaves no seed behind.
        let _ = std::fs::remove_file(&seed_path);
    }
    result
}

#[allow(clippy::too_many_arguments)]
fn build_with_seed(
    args: &Args,
    loaded: &crate::spec::Loaded,
    rendered: BTreeMap<String, Vec<NodeFile>>,
    seed: &crate::render::keys::Seed,
    base: PathBuf,
    agent: PathBuf,
    overlays: PathBuf,
    cache_dir: PathBuf,
    epoch: Option<u64>,
    progress: Progress,
) -> Result<()> {
    let plan = &loaded.plan;
    let files = image::node_file_sets(plan, rendered, seed)?;
    let spec_bytes =
        std::fs::read(&args.spec).with_context(|| format!("reading {}", args.spec.display()))?;
    let input = BuildInput {
        plan,
        files: &files,
        spec_sha256: hex::encode(sha2::Sha256::digest(&spec_bytes)),
        seed_id: seed.id(),
    };
    let opts = BuildOptions {
        out_dir: args.out.clone(),
        base,
        format: match args.format {
            FormatArg::Raw => Format::Raw,
            FormatArg::Zst => Format::Zst,
        },
        nodes: args.nodes.clone(),
        cache_dir,
        agent,
        overlays,
        fleet: args.fleet,
        installer: args.installer,
        epoch,
        progress,
        pxe: args.pxe.then(|| image::PxeOptions {
            base_url: args.pxe_url.clone(),
        }),
    };
    let manifest = image::build(&input, &opts)?;
    for img in &manifest.images {
        println!(
            "{}  {} ({} MiB disk, root PARTUUID {})",
            img.node,
            args.out.join(&img.file).display(),
            img.size >> 20,
            img.root_partuuid
        );
    }
    println!(
        "root {} ({}); images are mode 0600: they carry the nodes' private keys",
        manifest.root.cache_key,
        if manifest.root.cached {
            "from cache"
        } else {
            "built"
        }
    );
    Ok(())
}

fn spec_dir(spec: &Path) -> PathBuf {
    spec.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// `SOURCE_DATE_EPOCH` if set (must be a number).
fn source_date_epoch() -> Result<Option<u64>> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.trim().is_empty() => v.trim().parse().map(Some).map_err(|_| {
            InputError::new(format!(
                "SOURCE_DATE_EPOCH={v:?} is not a number of seconds"
            ))
            .into()
        }),
        _ => Ok(None),
    }
}

/// The base archive: `--base` (a file, or `debian`/`proxmox` to generate one), else the
/// spec's `image.base` / `image.base-file` (relative to the spec's folder).
fn resolve_base(
    plan: &Plan,
    spec_dir: &Path,
    flag: Option<&str>,
    cache: &Path,
    base_opts: &crate::image::base::BaseOptions,
    progress: Progress,
) -> Result<PathBuf> {
    let (kind, file) = match flag.map(|f| (f, BaseKind::parse(f))) {
        Some((_, Some(k @ (BaseKind::Debian | BaseKind::Proxmox)))) => (k, None),
        Some((f, _)) => (BaseKind::File, Some(PathBuf::from(f))),
        None => (
            plan.image.base,
            plan.image.base_file.as_ref().map(|f| spec_dir.join(f)),
        ),
    };
    if kind == BaseKind::File {
        let file = file.ok_or_else(|| InputError::new("image.base-file is not set"))?;
        if !file.is_file() {
            return Err(
                InputError::new(format!("base archive {}: no such file", file.display())).into(),
            );
        }
        crate::image::rootfs::compression_of(&file)?;
        return Ok(file);
    }
    generated_base(plan, kind, cache, base_opts, progress)
}

/// A generated Debian / Proxmox base (mmdebstrap), cached in the same folder as roots.
fn generated_base(
    plan: &Plan,
    kind: BaseKind,
    cache: &Path,
    base_opts: &crate::image::base::BaseOptions,
    progress: Progress,
) -> Result<PathBuf> {
    let mut plan = plan.clone();
    plan.image.base = kind;
    plan.image.base_file = None;
    // The cache folder is created by the base build itself, after its input checks, so
    // a refused base leaves nothing behind.
    let t = progress.task(format!("{kind} base"), None);
    let path = crate::image::base::ensure_base_with(&plan, cache, base_opts)?;
    t.finish("ready");
    Ok(path)
}

/// The node's rendered configuration files with secret values revealed: secret files go
/// to the node's secrets.tar only.
fn render(
    plan: &Plan,
    node: &str,
    secrets: &SecretValues,
    templates: Option<&Path>,
) -> Result<Vec<NodeFile>> {
    let opts = crate::render::RenderOptions {
        templates_dir: templates.map(Path::to_path_buf),
        reveal_secrets: true,
    };
    crate::render::render_node(plan, node, secrets, &opts)
        .with_context(|| format!("rendering the files of {node}"))
}

/// Every secret value as a file at its `SecretRef::node_path`, for the agent.
fn secret_files(secrets: &SecretValues) -> Vec<NodeFile> {
    secrets
        .iter()
        .map(|(id, value)| NodeFile {
            path: format!("{SECRETS_DIR}/{id}"),
            mode: 0o600,
            uid: 0,
            gid: 0,
            contents: value.to_vec(),
            secret: true,
            placement: Placement::Install,
        })
        .collect()
}
