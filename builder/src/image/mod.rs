//! Stage 3, the images: `hcikit build` as a library call. The shared root once (or from
//! the cache), then per node a partition table, an ESP and the output files, all renamed
//! into place at the end.
//!
//! The parts: [`base`] (the Debian / Proxmox base), [`rootfs`] (base + overlays + agent as
//! one tar), [`ext4`] (that tar as the root filesystem), [`esp`] (the FAT32 ESP), [`disk`]
//! (GPT layout), [`output`] (sparse / zstd image files, atomic renames), [`bmap`],
//! [`installer`] (the USB installer stick), [`lock`] (one build per output folder); the
//! private `root` keeps the built root in
//! the cache.
//!
//! The root is cached under `<cache>/root-<key>/` where the key hashes everything that
//! decides its bytes (base archive, overlays, agent binary, mke2fs version, root size,
//! epoch). A spec-only change therefore reuses the root, its bmap ranges and its zstd
//! frame, and only rewrites the small per-node parts.

pub mod base;
pub mod bmap;
pub mod disk;
pub mod esp;
pub mod ext4;
pub mod installer;
pub mod lock;
pub mod output;
pub mod pxe_initrd;
mod root;
pub mod rootfs;

pub use root::hcikit_layer;
use root::{ensure_root, ensure_root_zst, Root};

use crate::error::InputError;
use crate::progress::Progress;
use crate::render::files::NodeFile;
use crate::render::keys;
use disk::{Guids, Layout};
use esp::{BootFiles, Identity};
use output::{ImageParts, Staged};
use rootfs::Data;

use anyhow::{Context, Result};
use hcikit_firstboot::plan::Plan;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Bumped when the root's construction changes, so old cache entries are not reused.
const ROOT_RECIPE: u32 = 2;
/// zstd level for every frame.
const ZSTD_LEVEL: i32 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    Raw,
    Zst,
}

/// Everything the build needs besides the Plan and the rendered files.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub out_dir: PathBuf,
    /// Base rootfs archive (`.tar`, `.tar.zst`, `.tar.gz`).
    pub base: PathBuf,
    pub format: Format,
    /// Nodes to build; empty means all.
    pub nodes: Vec<String>,
    pub cache_dir: PathBuf,
    pub agent: PathBuf,
    pub overlays: PathBuf,
    /// One image carrying every node's files instead of one image per node.
    pub fleet: bool,
    /// The USB installer stick for every node (`<cluster>-installer.img`) instead of node
    /// images.
    pub installer: bool,
    /// `SOURCE_DATE_EPOCH`; when absent, the newest mtime in the base archive.
    pub epoch: Option<u64>,
    pub progress: Progress,
    /// Also write the network-install tree `out_dir/pxe/` (`media::pxe`).
    pub pxe: Option<PxeOptions>,
}

/// How the network-install tree is built.
#[derive(Debug, Clone, Default)]
pub struct PxeOptions {
    /// The URL the tree will be served at; default: `hcikit serve` on the proxy-DHCP host.
    pub base_url: Option<String>,
}

/// The resolved inputs: the Plan and every node's file set (rendered files plus keys).
pub struct BuildInput<'a> {
    pub plan: &'a Plan,
    pub files: &'a BTreeMap<String, Vec<NodeFile>>,
    /// sha256 of the spec file, for the manifest.
    pub spec_sha256: String,
    /// [`keys::Seed::id`], for the manifest.
    pub seed_id: String,
}

/// What the build wrote.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Manifest {
    pub format: u32,
    pub hcikit_version: String,
    pub cluster: String,
    pub spec_sha256: String,
    pub plan_sha256: String,
    pub secrets_seed_id: String,
    pub base: BaseInfo,
    pub agent_sha256: String,
    pub overlays_sha256: String,
    pub mke2fs_version: String,
    pub source_date_epoch: u64,
    pub image_format: Format,
    pub layout: Layout,
    pub root: RootInfo,
    pub images: Vec<ImageInfo>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct BaseInfo {
    pub file: String,
    pub sha256: String,
    pub kernel: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct RootInfo {
    pub cache_key: String,
    pub ext4_uuid: String,
    pub size: u64,
    pub mapped_bytes: u64,
    /// Whether the root came from the cache.
    pub cached: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct ImageInfo {
    /// Node name, or `fleet`.
    pub node: String,
    pub file: String,
    pub bmap: String,
    pub bmap_sha256: String,
    pub sha256: String,
    pub size: u64,
    pub disk_guid: String,
    pub esp_partuuid: String,
    pub root_partuuid: String,
}

/// Where `hcikit-firstboot` is: `explicit` (`--agent`), `$HCIKIT_AGENT`, or next to the
/// running executable.
pub fn find_agent(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = explicit {
        if !p.is_file() {
            return Err(InputError::new(format!("--agent {}: no such file", p.display())).into());
        }
        return Ok(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("HCIKIT_AGENT") {
        let p = PathBuf::from(p);
        if !p.is_file() {
            return Err(
                InputError::new(format!("HCIKIT_AGENT={}: no such file", p.display())).into(),
            );
        }
        return Ok(p);
    }
    let exe = std::env::current_exe().context("locating the running executable")?;
    let beside = exe.with_file_name("hcikit-firstboot");
    if beside.is_file() {
        return Ok(beside);
    }
    anyhow::bail!(
        "the first-boot agent hcikit-firstboot was not found next to {}: build it \
         (`cargo build -p hcikit-firstboot`), or pass --agent PATH or set HCIKIT_AGENT",
        exe.display()
    )
}

/// The `overlays/` tree: `$HCIKIT_OVERLAYS`, `<exe>/../share/hcikit/overlays`, or the
/// source tree this binary was built from.
pub fn find_overlays() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("HCIKIT_OVERLAYS") {
        return Ok(PathBuf::from(p));
    }
    if let Ok(exe) = std::env::current_exe() {
        if let Some(prefix) = exe.parent().and_then(Path::parent) {
            let p = prefix.join("share/hcikit/overlays");
            if p.is_dir() {
                return Ok(p);
            }
        }
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../overlays");
    if src.is_dir() {
        return Ok(src);
    }
    anyhow::bail!("the overlays folder was not found: set HCIKIT_OVERLAYS")
}

/// Default cache: `$XDG_CACHE_HOME/hcikit` or `~/.cache/hcikit`.
pub fn default_cache_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|x| !x.is_empty()) {
        return PathBuf::from(x).join("hcikit");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/tmp".into());
    home.join(".cache/hcikit")
}

/// sha256 over a tree: relative paths, kinds, modes, symlink targets and contents.
pub fn tree_sha256(dir: &Path) -> Result<String> {
    let mut h = Sha256::new();
    if dir.is_dir() {
        for item in rootfs::overlay_layer(dir)? {
            h.update(item.path.as_bytes());
            h.update(format!("\0{:?}\0{:o}\0", item.kind, item.mode).as_bytes());
            if let Data::Path(p) = &item.data {
                h.update(std::fs::read(p)?);
            }
            h.update([0]);
        }
    }
    Ok(hex::encode(h.finalize()))
}

/// Fails (bad input) unless `dir` exists or can be created and takes a new file.
fn check_out_dir(dir: &Path) -> Result<()> {
    let unwritable = |e: std::io::Error| -> anyhow::Error {
        InputError::new(format!(
            "output directory {} is not writable: {e}",
            dir.display()
        ))
        .into()
    };
    if std::fs::metadata(dir).is_ok_and(|m| !m.is_dir()) {
        return Err(InputError::new(format!(
            "output folder {} exists and is not a folder; name a new or existing folder",
            dir.display()
        ))
        .into());
    }
    std::fs::create_dir_all(dir).map_err(unwritable)?;
    tempfile::Builder::new()
        .prefix(".hcikit-probe")
        .tempfile_in(dir)
        .map_err(unwritable)?;
    Ok(())
}

/// Runs the build and returns the manifest that was written. A failed build leaves no
/// output behind, not even the output folder when this build created it.
pub fn build(input: &BuildInput, opts: &BuildOptions) -> Result<Manifest> {
    selected_nodes(input.plan, &opts.nodes)?;
    Layout::compute(input.plan.image.disk_size, input.plan.image.esp_size)?;
    let existed = opts.out_dir.exists();
    let result = build_in(input, opts);
    if result.is_err() && !existed {
        // Only succeeds when empty: a failed build's temporary files are gone by now.
        let _ = std::fs::remove_dir(&opts.out_dir);
    }
    result
}

/// Bad input unless every `--node` names a node of the plan.
pub fn check_nodes(plan: &Plan, nodes: &[String]) -> Result<()> {
    selected_nodes(plan, nodes).map(|_| ())
}

fn build_in(input: &BuildInput, opts: &BuildOptions) -> Result<Manifest> {
    let plan = input.plan;
    check_out_dir(&opts.out_dir)?;
    // Held until the build ends: cleaning stale files, staging and the commit belong to
    // one build at a time.
    let _lock = lock::BuildLock::acquire(&opts.out_dir)?;
    Staged::clean_stale(&opts.out_dir);
    let layout = Layout::compute(plan.image.disk_size, plan.image.esp_size)?;
    let nodes = selected_nodes(plan, &opts.nodes)?;
    let pxe_nodes = match &opts.pxe {
        Some(_) => pxe_macs(plan, &nodes)?,
        None => Vec::new(),
    };
    let mke2fs = ext4::version()?;
    std::fs::create_dir_all(&opts.cache_dir)
        .with_context(|| format!("creating cache folder {}", opts.cache_dir.display()))?;
    let inputs = RootInputs::hash(opts, mke2fs)?;
    let key = inputs.cache_key(mke2fs, &layout, opts.epoch);
    let root = ensure_root(&key, &layout, opts)?;
    if opts.format == Format::Zst || opts.pxe.is_some() {
        ensure_root_zst(&root, &layout, opts)?;
    }
    let mut staged = Staged::new(&opts.out_dir);
    let images = if opts.installer {
        vec![installer::build_stick(
            input,
            opts,
            &layout,
            &root,
            &mut staged,
        )?]
    } else {
        write_images(
            input,
            opts,
            &layout,
            &root,
            &targets(plan, &nodes, opts.fleet),
            &mut staged,
        )?
    };
    if let Some(pxe) = &opts.pxe {
        write_pxe(input, opts, pxe, &layout, &root, &pxe_nodes)?;
    }
    let manifest = Manifest::new(input, opts, inputs, key, layout, &root, images)?;
    write_manifest(&mut staged, &manifest)?;
    staged.commit()?;
    Ok(manifest)
}

/// The nodes to build in plan order: those `--node` named, or all. An unknown name is
/// bad input.
fn selected_nodes<'a>(plan: &'a Plan, wanted: &[String]) -> Result<Vec<&'a str>> {
    for n in wanted {
        if plan.node(n).is_none() {
            return Err(InputError::new(format!(
                "--node {n}: no such node in the spec (nodes: {})",
                crate::spec::node_names(plan)
            ))
            .into());
        }
    }
    Ok(plan
        .nodes
        .iter()
        .map(|n| n.name.as_str())
        .filter(|n| wanted.is_empty() || wanted.iter().any(|x| x == n))
        .collect())
}

/// Every selected node with its MAC, which the network install identifies it by. A node
/// without one is bad input.
fn pxe_macs<'a>(plan: &'a Plan, nodes: &[&'a str]) -> Result<Vec<(&'a str, String)>> {
    let mut out = Vec::new();
    let mut missing = Vec::new();
    for (i, n) in plan.nodes.iter().enumerate() {
        if !nodes.contains(&n.name.as_str()) {
            continue;
        }
        match &n.mac {
            Some(m) => out.push((n.name.as_str(), m.to_ascii_lowercase())),
            None => missing.push(format!("nodes[{i}].mac ({})", n.name)),
        }
    }
    if !missing.is_empty() {
        return Err(InputError::new(format!(
            "--pxe picks each node by its MAC address, but {} is not set              (e.g. mac = \"52:54:00:12:34:56\")",
            missing.join(", ")
        ))
        .into());
    }
    Ok(out)
}

/// The network-install tree: the kernel, the shared root frame, and per node the
/// compressed head and tail of its disk and its bmap.
fn write_pxe(
    input: &BuildInput,
    opts: &BuildOptions,
    pxe: &PxeOptions,
    layout: &Layout,
    root: &Root,
    nodes: &[(&str, String)],
) -> Result<()> {
    let t = opts.progress.task("network install tree", None);
    let boot = root.boot_files()?;
    let epoch = root.meta.epoch;
    let root_ext4 = root.ext4();
    let mut pxe_nodes = Vec::new();
    for (name, mac) in nodes {
        let target = (
            name.to_string(),
            Identity::Node(name),
            Guids::for_node(&input.plan.cluster.name, name),
        );
        let ends = DiskEnds::new(input, layout, &boot, epoch, &target)?;
        let parts = ends.parts(layout, &root_ext4, root);
        pxe_nodes.push(crate::media::pxe::PxeNode {
            name: name.to_string(),
            mac: mac.clone(),
            head_zst: zstd::bulk::compress(&ends.head, ZSTD_LEVEL).context("compressing head")?,
            tail_zst: zstd::bulk::compress(&ends.tail, ZSTD_LEVEL).context("compressing tail")?,
            bmap: bmap::bmap_xml(layout.disk_size, &parts.ranges()),
            payload: net_payload(input.plan, name),
        });
    }
    let initrd = match installer_initrd(opts, root, &boot.version, layout) {
        Ok(b) => Some(b),
        Err(e) => {
            // A base without the installer's programs still gets its tree; the script
            // says that it cannot install and why.
            tracing::warn!("no network installer initrd: {e:#}");
            None
        }
    };
    crate::media::pxe::write_tree(
        &opts.out_dir,
        &crate::media::pxe::PxeInput {
            cluster: &input.plan.cluster.name,
            kernel: &boot.kernel,
            initrd: initrd.as_deref(),
            root_zst: &root.zst(),
            nodes: pxe_nodes,
            kernel_cmdline: &input.plan.image.kernel_cmdline,
            base_url: pxe.base_url.as_deref(),
            manifest: installer::manifest(
                input.plan,
                // A network install has no installer disk of its own.
                &Guids {
                    disk: uuid::Uuid::nil(),
                    ..Guids::for_node(&input.plan.cluster.name, "-")
                },
                &installer::Policy {
                    after_install: input.plan.image.after_install.as_str().to_string(),
                    confirm_secs: input.plan.image.install_confirm_secs,
                },
                Vec::new(),
            ),
            root_start: layout.root_start,
            root_end: layout.root_end(),
            disk_size: layout.disk_size,
        },
    )?;
    t.finish("done");
    Ok(())
}

/// A node's entry in the network installer's manifest (segments filled in by the tree).
fn net_payload(plan: &Plan, name: &str) -> hcikit_firstboot::install::payload::NodePayload {
    let i = plan.nodes.iter().position(|n| n.name == name).unwrap_or(0);
    let n = &plan.nodes[i];
    let guids = Guids::for_node(&plan.cluster.name, name);
    hcikit_firstboot::install::payload::NodePayload {
        node: n.name.clone(),
        key: format!("nodes[{i}].install-disk"),
        mac: n.mac.as_ref().map(|m| m.to_ascii_lowercase()),
        install_disk: n.install_disk.clone(),
        install_wipe: n.install_wipe,
        osd_disks: n.osds.iter().map(|o| o.device.clone()).collect(),
        image_size: plan.image.disk_size,
        bmap: String::new(),
        bmap_sha256: String::new(),
        disk_guid: guids.disk.to_string(),
        partition_guids: vec![guids.esp.to_string(), guids.root.to_string()],
        partition_labels: vec![disk::ESP_NAME.into(), disk::ROOT_NAME.into()],
        segments: Vec::new(),
    }
}

/// The network installer's initrd, built once per root cache entry (whose key covers the
/// base and the agent, everything the initrd is made of).
fn installer_initrd(
    opts: &BuildOptions,
    root: &Root,
    kver: &str,
    layout: &Layout,
) -> Result<Vec<u8>> {
    let cached = root.dir.join("pxe-initrd.img");
    if let Ok(b) = std::fs::read(&cached) {
        return Ok(b);
    }
    let t = opts.progress.task("installer initrd", None);
    let work = tempfile::Builder::new()
        .prefix(".initrd-")
        .tempdir_in(&opts.cache_dir)
        .context("creating a cache work folder")?;
    let limit = 2 * layout.root_size + (64 << 20);
    let base_tar = rootfs::plain_base(&opts.base, &work.path().join("base.tar"), limit)?;
    let items = rootfs::index_base(&base_tar, &opts.base)?;
    let agent = std::fs::read(&opts.agent)
        .with_context(|| format!("reading the agent {}", opts.agent.display()))?;
    let bytes = pxe_initrd::build(
        &items,
        &|i| rootfs::read_item(i, &base_tar),
        &agent,
        kver,
        root.meta.epoch,
    )?;
    let tmp = root.dir.join(format!(".pxe-initrd.{}", std::process::id()));
    std::fs::write(&tmp, &bytes)?;
    std::fs::rename(&tmp, &cached)?;
    t.finish(&format!("{} KiB", bytes.len() >> 10));
    Ok(bytes)
}

/// The hashes of everything outside the Plan that decides the root's bytes.
struct RootInputs {
    base_sha: String,
    agent_sha: String,
    overlays_sha: String,
    mke2fs_version: String,
}

impl RootInputs {
    fn hash(opts: &BuildOptions, mke2fs: (u32, u32, u32)) -> Result<Self> {
        let t = opts.progress.task("hashing inputs", None);
        let base_sha = output::sha256_file(&opts.base).map_err(|e| {
            InputError::new(format!(
                "cannot read base archive {}: {e:#}",
                opts.base.display()
            ))
        })?;
        let inputs = RootInputs {
            base_sha,
            agent_sha: output::sha256_file(&opts.agent)?,
            overlays_sha: tree_sha256(&opts.overlays)?,
            mke2fs_version: format!("{}.{}.{}", mke2fs.0, mke2fs.1, mke2fs.2),
        };
        t.finish("done");
        Ok(inputs)
    }

    /// The root cache key: a hash over every input that decides the root's bytes.
    fn cache_key(&self, mke2fs: (u32, u32, u32), layout: &Layout, epoch: Option<u64>) -> String {
        let mut h = Sha256::new();
        let epoch = epoch.map_or("from-base".to_string(), |e| e.to_string());
        for part in [
            ROOT_RECIPE.to_string(),
            self.base_sha.clone(),
            self.agent_sha.clone(),
            self.overlays_sha.clone(),
            self.mke2fs_version.clone(),
            // A staging folder and a tar can give different inode orders.
            ext4::uses_staging(mke2fs).to_string(),
            layout.root_size.to_string(),
            epoch,
        ] {
            h.update(part.as_bytes());
            h.update([0]);
        }
        hex::encode(&h.finalize()[..16])
    }
}

/// One image to write: its name, whose identity its ESP carries, and its GUIDs.
type Target<'a> = (String, Identity<'a>, Guids);

/// One image per selected node, or one fleet image.
fn targets<'a>(plan: &Plan, nodes: &[&'a str], fleet: bool) -> Vec<Target<'a>> {
    if fleet {
        vec![(
            format!("{}-fleet", plan.cluster.name),
            Identity::Fleet,
            Guids::for_node(&plan.cluster.name, "fleet"),
        )]
    } else {
        nodes
            .iter()
            .map(|n| {
                (
                    n.to_string(),
                    Identity::Node(n),
                    Guids::for_node(&plan.cluster.name, n),
                )
            })
            .collect()
    }
}

/// The bytes before and after the root partition: the GPT and the ESP.
struct DiskEnds {
    head: Vec<u8>,
    head_keep: output::Keep,
    tail: Vec<u8>,
}

impl DiskEnds {
    /// Builds `name`'s partition table and ESP.
    fn new(
        input: &BuildInput,
        layout: &Layout,
        boot: &BootFiles,
        epoch: u64,
        (name, identity, guids): &Target,
    ) -> Result<Self> {
        let plan = input.plan;
        let node_files: BTreeMap<String, Vec<NodeFile>> = match identity {
            Identity::Node(n) => {
                let files = input.files.get(*n).cloned().unwrap_or_default();
                BTreeMap::from([(n.to_string(), files)])
            }
            Identity::Fleet => input.files.clone(),
        };
        let contents = esp::esp_contents(plan, identity, &node_files, &guids.root, boot, epoch)?;
        let table = disk::partition_table(layout, guids)?;
        // Zeroed pages are allocated lazily: only what the FAT touches costs memory.
        let mut head = vec![0u8; layout.root_start as usize];
        head[..table.head.len()].copy_from_slice(&table.head);
        let es = layout.esp_start as usize;
        esp::write_fat_into(
            &mut head[es..es + layout.esp_size as usize],
            esp::volume_id(&format!("{}/{name}", plan.cluster.name)),
            &contents,
            epoch,
        )
        .with_context(|| format!("writing the ESP of {name}"))?;
        // Everything before the ESP (the GPT and its zero entries) and the ESP's metadata
        // are mapped, so a flash overwrites what a used disk held there.
        let mut keep = vec![(0, layout.esp_start)];
        keep.extend(
            esp::metadata_extents(&head[es..es + layout.esp_size as usize])?
                .into_iter()
                .map(|(s, e)| (layout.esp_start + s, layout.esp_start + e)),
        );
        let head_keep = output::Keep::new(keep);
        let mut tail = vec![0u8; (layout.disk_size - layout.root_end()) as usize];
        let tl = tail.len();
        tail[tl - table.tail.len()..].copy_from_slice(&table.tail);
        Ok(DiskEnds {
            head,
            head_keep,
            tail,
        })
    }

    /// The whole image: these ends around the cached root.
    fn parts<'a>(&'a self, layout: &Layout, root_file: &'a Path, root: &'a Root) -> ImageParts<'a> {
        ImageParts {
            disk_size: layout.disk_size,
            head: &self.head,
            head_keep: &self.head_keep,
            root_start: layout.root_start,
            root_file,
            root_size: layout.root_size,
            root_ranges: &root.meta.ranges,
            tail: &self.tail,
        }
    }
}

/// Writes every target's image and bmap into `staged`. Raw images are hashed on other
/// threads while the next one is written.
fn write_images(
    input: &BuildInput,
    opts: &BuildOptions,
    layout: &Layout,
    root: &Root,
    targets: &[Target],
    staged: &mut Staged,
) -> Result<Vec<ImageInfo>> {
    let boot = root.boot_files()?;
    let epoch = root.meta.epoch;
    let root_ext4 = root.ext4();
    let mapped = root.mapped_bytes();
    let mut images = Vec::new();
    // Hashing a raw image reads every byte of the disk, holes included: the slowest step
    // for large disks. It runs on other cores while the next image is written.
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::thread::scope(|scope| -> Result<()> {
        let mut hashing = std::collections::VecDeque::new();
        for target in targets {
            let t = opts
                .progress
                .task(format!("image {}", target.0), Some(mapped));
            let ends = DiskEnds::new(input, layout, &boot, epoch, target)?;
            let parts = ends.parts(layout, &root_ext4, root);
            images.push(write_image(opts, layout, root, target, &parts, staged, &t)?);
            t.finish("done");
            if opts.format == Format::Raw {
                if hashing.len() >= workers {
                    let (i, h): (usize, std::thread::ScopedJoinHandle<Result<String>>) =
                        hashing.pop_front().expect("not empty");
                    images[i].sha256 = h.join().expect("hashing thread panicked")?;
                }
                let root_ext4 = &root_ext4;
                let index = images.len() - 1;
                hashing.push_back((
                    index,
                    scope.spawn(move || ends.parts(layout, root_ext4, root).sha256()),
                ));
            }
        }
        if !hashing.is_empty() {
            let t = opts.progress.task("checksums", None);
            for (i, h) in hashing {
                images[i].sha256 = h.join().expect("hashing thread panicked")?;
            }
            t.finish("done");
        }
        Ok(())
    })?;
    Ok(images)
}

/// Writes one image file and its bmap. A raw image's checksum is filled in later.
fn write_image(
    opts: &BuildOptions,
    layout: &Layout,
    root: &Root,
    (name, identity, guids): &Target,
    parts: &ImageParts,
    staged: &mut Staged,
    t: &crate::progress::Task,
) -> Result<ImageInfo> {
    let (file_name, sha) = match opts.format {
        Format::Raw => {
            let file_name = format!("{name}.img");
            let (f, tmp) = staged.create(&file_name, 0o600)?;
            parts
                .write_raw(&f, |n| t.inc(n))
                .with_context(|| format!("writing {}", tmp.display()))?;
            (file_name, None)
        }
        Format::Zst => {
            let file_name = format!("{name}.img.zst");
            let (f, tmp) = staged.create(&file_name, 0o600)?;
            parts
                .write_zst(&f, &root.zst(), ZSTD_LEVEL)
                .with_context(|| format!("writing {}", tmp.display()))?;
            (file_name, Some(output::sha256_file(&tmp)?))
        }
    };
    let bmap_name = format!("{name}.img.bmap");
    let (mut bf, _) = staged.create(&bmap_name, 0o644)?;
    let bmap = bmap::bmap_xml(layout.disk_size, &parts.ranges());
    std::io::Write::write_all(&mut bf, bmap.as_bytes())?;
    Ok(ImageInfo {
        node: match identity {
            Identity::Node(n) => n.to_string(),
            Identity::Fleet => "fleet".into(),
        },
        file: file_name,
        bmap: bmap_name,
        bmap_sha256: hex::encode(Sha256::digest(bmap.as_bytes())),
        sha256: sha.unwrap_or_default(),
        size: layout.disk_size,
        disk_guid: guids.disk.to_string(),
        esp_partuuid: guids.esp.to_string(),
        root_partuuid: guids.root.to_string(),
    })
}

impl Manifest {
    fn new(
        input: &BuildInput,
        opts: &BuildOptions,
        inputs: RootInputs,
        cache_key: String,
        layout: Layout,
        root: &Root,
        images: Vec<ImageInfo>,
    ) -> Result<Self> {
        let plan_json = serde_json::to_vec(input.plan)?;
        Ok(Manifest {
            format: 1,
            hcikit_version: env!("CARGO_PKG_VERSION").into(),
            cluster: input.plan.cluster.name.clone(),
            spec_sha256: input.spec_sha256.clone(),
            plan_sha256: hex::encode(Sha256::digest(&plan_json)),
            secrets_seed_id: input.seed_id.clone(),
            base: BaseInfo {
                file: opts
                    .base
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                sha256: inputs.base_sha,
                kernel: root.meta.kernel_version.clone(),
            },
            agent_sha256: inputs.agent_sha,
            overlays_sha256: inputs.overlays_sha,
            mke2fs_version: inputs.mke2fs_version,
            source_date_epoch: root.meta.epoch,
            image_format: opts.format,
            layout,
            root: RootInfo {
                cache_key,
                ext4_uuid: root.meta.uuid.clone(),
                size: layout.root_size,
                mapped_bytes: root.mapped_bytes(),
                cached: root.cached,
            },
            images,
        })
    }
}

/// `manifest.json` and `SHA256SUMS` (images and bmaps) into `staged`.
fn write_manifest(staged: &mut Staged, manifest: &Manifest) -> Result<()> {
    let (mut mf, _) = staged.create("manifest.json", 0o644)?;
    let mut mj = serde_json::to_vec_pretty(manifest)?;
    mj.push(b'\n');
    std::io::Write::write_all(&mut mf, &mj)?;
    let mut sums = String::new();
    for img in &manifest.images {
        sums.push_str(&format!("{}  {}\n", img.sha256, img.file));
        sums.push_str(&format!("{}  {}\n", img.bmap_sha256, img.bmap));
    }
    let (mut sf, _) = staged.create("SHA256SUMS", 0o644)?;
    std::io::Write::write_all(&mut sf, sums.as_bytes())?;
    Ok(())
}

/// The per-node file sets: `rendered` plus the keys derived from `seed`. A key file
/// replaces a rendered file at the same path (the keys are authoritative).
pub fn node_file_sets(
    plan: &Plan,
    rendered: BTreeMap<String, Vec<NodeFile>>,
    seed: &keys::Seed,
) -> Result<BTreeMap<String, Vec<NodeFile>>> {
    let mut out = BTreeMap::new();
    for node in &plan.nodes {
        let key_files = keys::node_key_files(plan, node, seed)?;
        let mut files: Vec<NodeFile> = rendered
            .get(&node.name)
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|f| !key_files.iter().any(|k| k.path == f.path))
            .collect();
        files.extend(key_files);
        files.sort_by(|a, b| a.path.cmp(&b.path));
        out.insert(node.name.clone(), files);
    }
    Ok(out)
}
