//! `hcikit build` as a library call: the shared root once (or from the cache), then per
//! node a partition table, an ESP and the output files, all renamed into place at the end.
//!
//! The root is cached under `<cache>/root-<key>/` where the key hashes everything that
//! decides its bytes (base archive, overlays, agent binary, mke2fs version, root size,
//! epoch). A spec-only change therefore reuses the root, its bmap ranges and its zstd
//! frame, and only rewrites the small per-node parts.

use crate::disk::{self, Guids, Layout};
use crate::error::InputError;
use crate::esp::{self, BootFiles, Identity};
use crate::files::NodeFile;
use crate::output::{self, ImageParts, Range, Staged};
use crate::progress::Progress;
use crate::rootfs::{self, Data, Item};
use crate::{ext4, keys};
use anyhow::{Context, Result};
use hcikit_firstboot::layout;
use hcikit_firstboot::plan::Plan;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Bumped when the root's construction changes, so old cache entries are not reused.
const ROOT_RECIPE: u32 = 2;
/// zstd level for every frame.
const ZSTD_LEVEL: i32 = 3;
/// Cache entries kept besides the one in use.
const CACHE_KEEP: usize = 2;

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
    /// `SOURCE_DATE_EPOCH`; when absent, the newest mtime in the base archive.
    pub epoch: Option<u64>,
    pub progress: Progress,
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

/// A cached root filesystem and what was taken from the base with it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RootMeta {
    key: String,
    epoch: u64,
    kernel_version: String,
    size: u64,
    uuid: String,
    ranges: Vec<Range>,
}

struct Root {
    dir: PathBuf,
    meta: RootMeta,
    cached: bool,
}

impl Root {
    fn ext4(&self) -> PathBuf {
        self.dir.join("root.ext4")
    }
    fn zst(&self) -> PathBuf {
        self.dir.join("root.ext4.zst")
    }
    fn boot_files(&self) -> Result<BootFiles> {
        let read = |n: &str| {
            std::fs::read(self.dir.join(n)).with_context(|| format!("reading cached {n}"))
        };
        Ok(BootFiles {
            systemd_boot: read("systemd-bootx64.efi")?,
            kernel: read("vmlinuz")?,
            initrd: read("initrd.img")?,
            version: self.meta.kernel_version.clone(),
        })
    }
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

/// Bad input unless every `--node` names a node of the plan.
pub fn check_nodes(plan: &Plan, nodes: &[String]) -> Result<()> {
    for n in nodes {
        if plan.node(n).is_none() {
            return Err(InputError::new(format!(
                "--node {n}: no such node in the spec (nodes: {})",
                plan.nodes
                    .iter()
                    .map(|n| n.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .into());
        }
    }
    Ok(())
}

/// Runs the build and returns the manifest that was written. A failed build leaves no
/// output behind, not even the output folder when this build created it.
pub fn build(input: &BuildInput, opts: &BuildOptions) -> Result<Manifest> {
    check_nodes(input.plan, &opts.nodes)?;
    Layout::compute(input.plan.image.disk_size, input.plan.image.esp_size)?;
    let existed = opts.out_dir.exists();
    let result = build_in(input, opts);
    if result.is_err() && !existed {
        // Only succeeds when empty: a failed build's temporary files are gone by now.
        let _ = std::fs::remove_dir(&opts.out_dir);
    }
    result
}

fn build_in(input: &BuildInput, opts: &BuildOptions) -> Result<Manifest> {
    let plan = input.plan;
    check_out_dir(&opts.out_dir)?;
    Staged::clean_stale(&opts.out_dir);
    let layout = Layout::compute(plan.image.disk_size, plan.image.esp_size)?;
    let nodes: Vec<&str> = plan
        .nodes
        .iter()
        .map(|n| n.name.as_str())
        .filter(|n| opts.nodes.is_empty() || opts.nodes.iter().any(|x| x == n))
        .collect();
    let mke2fs = ext4::version()?;
    let mke2fs_version = format!("{}.{}.{}", mke2fs.0, mke2fs.1, mke2fs.2);
    std::fs::create_dir_all(&opts.cache_dir)
        .with_context(|| format!("creating cache folder {}", opts.cache_dir.display()))?;

    let t = opts.progress.task("hashing inputs", None);
    let base_sha = output::sha256_file(&opts.base).map_err(|e| {
        InputError::new(format!(
            "cannot read base archive {}: {e:#}",
            opts.base.display()
        ))
    })?;
    let agent_sha = output::sha256_file(&opts.agent)?;
    let overlays_sha = tree_sha256(&opts.overlays)?;
    t.finish("done");
    let key = {
        let mut h = Sha256::new();
        let epoch = opts
            .epoch
            .map_or("from-base".to_string(), |e| e.to_string());
        for part in [
            ROOT_RECIPE.to_string(),
            base_sha.clone(),
            agent_sha.clone(),
            overlays_sha.clone(),
            mke2fs_version.clone(),
            // A staging folder and a tar can give different inode orders.
            ext4::uses_staging(mke2fs).to_string(),
            layout.root_size.to_string(),
            epoch,
        ] {
            h.update(part.as_bytes());
            h.update([0]);
        }
        hex::encode(&h.finalize()[..16])
    };
    let root = ensure_root(&key, &layout, opts)?;
    if opts.format == Format::Zst && !root.zst().exists() {
        let t = opts
            .progress
            .task("compressing root", Some(layout.root_size));
        let tmp = root
            .dir
            .join(format!(".root.ext4.zst.{}", std::process::id()));
        output::compress_file(&root.ext4(), &tmp, ZSTD_LEVEL, |n| t.inc(n))?;
        std::fs::rename(&tmp, root.zst())?;
        t.finish("done");
    }
    let boot = root.boot_files()?;
    let epoch = root.meta.epoch;

    let mut staged = Staged::new(&opts.out_dir);
    let mut images = Vec::new();
    let targets: Vec<(String, Identity, Guids)> = if opts.fleet {
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
    };
    let root_ext4 = root.ext4();
    let mapped: u64 = root
        .meta
        .ranges
        .iter()
        .map(|r| r.blocks() * output::BLOCK)
        .sum();
    // Hashing a raw image reads every byte of the disk, holes included: the slowest step
    // for large disks. It runs on other cores while the next image is written.
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::thread::scope(|scope| -> Result<()> {
        let mut hashing = std::collections::VecDeque::new();
        for (name, identity, guids) in &targets {
            let t = opts.progress.task(format!("image {name}"), Some(mapped));
            let node_files: BTreeMap<String, Vec<NodeFile>> = match identity {
                Identity::Node(n) => {
                    let files = input.files.get(*n).cloned().unwrap_or_default();
                    BTreeMap::from([(n.to_string(), files)])
                }
                Identity::Fleet => input.files.clone(),
            };
            let contents =
                esp::esp_contents(plan, identity, &node_files, &guids.root, &boot, epoch)?;
            let table = disk::partition_table(&layout, guids)?;
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
            // Everything before the ESP (the GPT and its zero entries) and the ESP's
            // metadata are mapped, so a flash overwrites what a used disk held there.
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
            let parts = ImageParts {
                disk_size: layout.disk_size,
                head: &head,
                head_keep: &head_keep,
                root_start: layout.root_start,
                root_file: &root_ext4,
                root_size: layout.root_size,
                root_ranges: &root.meta.ranges,
                tail: &tail,
            };
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
            let bmap = output::bmap_xml(layout.disk_size, &parts.ranges());
            std::io::Write::write_all(&mut bf, bmap.as_bytes())?;
            let bmap_sha256 = hex::encode(Sha256::digest(bmap.as_bytes()));
            images.push(ImageInfo {
                node: match identity {
                    Identity::Node(n) => n.to_string(),
                    Identity::Fleet => "fleet".into(),
                },
                file: file_name,
                bmap: bmap_name,
                bmap_sha256,
                sha256: sha.unwrap_or_default(),
                size: layout.disk_size,
                disk_guid: guids.disk.to_string(),
                esp_partuuid: guids.esp.to_string(),
                root_partuuid: guids.root.to_string(),
            });
            t.finish("done");
            if opts.format == Format::Raw {
                if hashing.len() >= workers {
                    let (i, h): (usize, std::thread::ScopedJoinHandle<Result<String>>) =
                        hashing.pop_front().expect("not empty");
                    images[i].sha256 = h.join().expect("hashing thread panicked")?;
                }
                let (root_ext4, ranges) = (&root_ext4, &root.meta.ranges);
                let index = images.len() - 1;
                hashing.push_back((
                    index,
                    scope.spawn(move || {
                        ImageParts {
                            disk_size: layout.disk_size,
                            head: &head,
                            head_keep: &head_keep,
                            root_start: layout.root_start,
                            root_file: root_ext4,
                            root_size: layout.root_size,
                            root_ranges: ranges,
                            tail: &tail,
                        }
                        .sha256()
                    }),
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

    let plan_json = serde_json::to_vec(plan)?;
    let manifest = Manifest {
        format: 1,
        hcikit_version: env!("CARGO_PKG_VERSION").into(),
        cluster: plan.cluster.name.clone(),
        spec_sha256: input.spec_sha256.clone(),
        plan_sha256: hex::encode(Sha256::digest(&plan_json)),
        secrets_seed_id: input.seed_id.clone(),
        base: BaseInfo {
            file: opts
                .base
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default(),
            sha256: base_sha,
            kernel: root.meta.kernel_version.clone(),
        },
        agent_sha256: agent_sha,
        overlays_sha256: overlays_sha,
        mke2fs_version,
        source_date_epoch: epoch,
        image_format: opts.format,
        layout,
        root: RootInfo {
            cache_key: key,
            ext4_uuid: root.meta.uuid.clone(),
            size: layout.root_size,
            mapped_bytes: root
                .meta
                .ranges
                .iter()
                .map(|r| r.blocks() * output::BLOCK)
                .sum(),
            cached: root.cached,
        },
        images,
    };
    let (mut mf, _) = staged.create("manifest.json", 0o644)?;
    let mut mj = serde_json::to_vec_pretty(&manifest)?;
    mj.push(b'\n');
    std::io::Write::write_all(&mut mf, &mj)?;
    let mut sums = String::new();
    for img in &manifest.images {
        sums.push_str(&format!("{}  {}\n", img.sha256, img.file));
        sums.push_str(&format!("{}  {}\n", img.bmap_sha256, img.bmap));
    }
    let (mut sf, _) = staged.create("SHA256SUMS", 0o644)?;
    std::io::Write::write_all(&mut sf, sums.as_bytes())?;
    staged.commit()?;
    Ok(manifest)
}

/// The root for `key`: from the cache, or built and stored there.
fn ensure_root(key: &str, layout: &Layout, opts: &BuildOptions) -> Result<Root> {
    let dir = opts.cache_dir.join(format!("root-{key}"));
    if let Ok(text) = std::fs::read(dir.join("meta.json")) {
        if let Ok(meta) = serde_json::from_slice::<RootMeta>(&text) {
            // Mark as recently used for pruning.
            let _ = std::fs::File::open(dir.join("meta.json"))
                .and_then(|f| f.set_modified(std::time::SystemTime::now()));
            let t = opts.progress.task("root filesystem", None);
            t.finish("cached");
            return Ok(Root {
                dir,
                meta,
                cached: true,
            });
        }
    }
    clean_stale_work(&opts.cache_dir);
    let work = tempfile::Builder::new()
        .prefix(&format!("{WORK_PREFIX}{}-", std::process::id()))
        .tempdir_in(&opts.cache_dir)
        .context("creating a cache work folder")?;
    let meta = build_root(key, layout, opts, work.path())?;
    std::fs::write(
        work.path().join("meta.json"),
        serde_json::to_vec_pretty(&meta)?,
    )?;
    for scratch in ["root.tar", "base.tar", "mke2fs.conf", "staging"] {
        let p = work.path().join(scratch);
        let _ = std::fs::remove_file(&p);
        let _ = std::fs::remove_dir_all(&p);
    }
    let work = work.keep();
    if std::fs::rename(&work, &dir).is_err() {
        // Another build stored the same key meanwhile: same bytes, use theirs.
        let _ = std::fs::remove_dir_all(&work);
    }
    prune_cache(&opts.cache_dir, &dir);
    Ok(Root {
        dir,
        meta,
        cached: false,
    })
}

/// Prefix of a root build's work folder in the cache; the builder's process id follows.
const WORK_PREFIX: &str = ".build-";

/// Removes work folders of root builds whose process no longer runs (killed, Ctrl-C):
/// they hold the decompressed base and root tar, gigabytes for a real base.
fn clean_stale_work(cache: &Path) {
    let Ok(rd) = std::fs::read_dir(cache) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(WORK_PREFIX) else {
            continue;
        };
        let pid = rest.split('-').next().and_then(|p| p.parse::<u32>().ok());
        // Folders of older versions carry no process id: the key (hex) is no number
        // of a running process, or if it parses, rarely one; both are stale.
        let alive = pid.is_some_and(|p| Path::new("/proc").join(p.to_string()).exists());
        if !alive && e.path().is_dir() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Removes old root entries, keeping the newest [`CACHE_KEEP`] besides `current`.
fn prune_cache(cache: &Path, current: &Path) {
    let Ok(rd) = std::fs::read_dir(cache) else {
        return;
    };
    let mut entries: Vec<(std::time::SystemTime, PathBuf)> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p != current
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("root-"))
        })
        .filter_map(|p| {
            Some((
                std::fs::metadata(p.join("meta.json"))
                    .ok()?
                    .modified()
                    .ok()?,
                p,
            ))
        })
        .collect();
    entries.sort();
    entries.reverse();
    for (_, p) in entries.into_iter().skip(CACHE_KEEP) {
        let _ = std::fs::remove_dir_all(p);
    }
}

/// Our layer on top of base and overlays: the agent, its units enabled, pending flags.
pub fn hcikit_layer(overlay: &[Item], agent: &Path) -> Result<Vec<Item>> {
    let rel = |p: &str| p.trim_start_matches('/').to_string();
    let mut items = vec![Item::file(
        &rel(layout::AGENT_BIN),
        0o755,
        Data::Path(agent.to_path_buf()),
    )];
    items.extend(rootfs::enable_units(overlay)?);
    // Mount point of the ESP (see overlays/etc/fstab).
    items.push(Item::dir("boot/efi", 0o755));
    items.push(Item::dir(&rel(layout::STATE_DIR), 0o755));
    for flag in [layout::APPLY_PENDING, layout::RUN_PENDING] {
        items.push(Item::file(&rel(flag), 0o644, Data::Bytes(Vec::new())));
    }
    Ok(items)
}

fn build_root(key: &str, layout: &Layout, opts: &BuildOptions, work: &Path) -> Result<RootMeta> {
    let t = opts.progress.task("reading base", None);
    // A base can never hold more than the root file system takes; twice that (tar headers,
    // padding) bounds what a small compressed archive may unpack to in the cache.
    let limit = 2 * layout.root_size + (64 << 20);
    let base_tar = rootfs::plain_base(&opts.base, &work.join("base.tar"), limit)?;
    let base = rootfs::index_base(&base_tar, &opts.base)?;
    let (kernel, initrd) = rootfs::find_kernel(&base).ok_or_else(|| {
        InputError::new(format!(
            "base has no kernel: {} holds no /boot/vmlinuz-* with a matching /boot/initrd.img-*",
            opts.base.display()
        ))
    })?;
    let version = kernel.path.trim_start_matches("boot/vmlinuz-").to_string();
    let sdboot = base
        .iter()
        .find(|i| i.path == esp::SYSTEMD_BOOT && i.kind == rootfs::Kind::File)
        .ok_or_else(|| {
            InputError::new(format!(
                "base {} has no systemd-boot (/{}): install systemd-boot-efi in the base",
                opts.base.display(),
                esp::SYSTEMD_BOOT
            ))
        })?;
    for (name, item) in [
        ("vmlinuz", kernel),
        ("initrd.img", initrd),
        ("systemd-bootx64.efi", sdboot),
    ] {
        let to = work.join(name);
        std::fs::write(&to, rootfs::read_item(item, &base_tar)?)
            .with_context(|| format!("writing {}", to.display()))?;
    }
    let epoch = match opts.epoch {
        Some(e) => e,
        None => newest_mtime(&base_tar)?,
    };
    t.finish("done");

    let t = opts.progress.task("merging root tree", None);
    let overlay = rootfs::overlay_layer(&opts.overlays)?;
    let ours = hcikit_layer(&overlay, &opts.agent)?;
    let merged = rootfs::merge(vec![base, overlay, ours]);
    let tar_path = work.join("root.tar");
    let out = std::io::BufWriter::new(
        std::fs::File::create(&tar_path)
            .with_context(|| format!("creating {}", tar_path.display()))?,
    );
    rootfs::write_tar(&merged, Some(&base_tar), out, epoch)
        .and_then(|w| Ok(w.into_inner().map_err(|e| e.into_error())?.sync_all()?))
        .with_context(|| format!("writing the root tree to {}", tar_path.display()))?;
    t.finish("done");

    let t = opts.progress.task("making ext4 root", None);
    let ext = ext4::Ext4Params {
        size_bytes: layout.root_size,
        uuid: disk::derive_guid(&["ext4", key]),
        hash_seed: disk::derive_guid(&["ext4-hash-seed", key]),
        label: "root".into(),
        epoch,
    };
    let ext_path = work.join("root.ext4");
    ext4::make(&tar_path, &ext_path, &ext, work).map_err(|e| {
        let msg = format!("{e:#}");
        if msg.contains("too big to create") {
            anyhow::Error::new(InputError::new(format!(
                "image.disk-size {} MiB is too large: mke2fs cannot create a root file system of {} MiB",
                layout.disk_size >> 20,
                layout.root_size >> 20
            )))
            .context(msg)
        } else if msg.contains("Could not allocate block") || msg.contains("No space left") || msg.contains("inode table") {
            anyhow::Error::new(InputError::new(format!(
                "image.disk-size {} MiB is too small for the root filesystem ({} MiB of root partition)",
                layout.disk_size >> 20,
                layout.root_size >> 20
            )))
            .context(msg)
        } else {
            e
        }
    })?;
    // Every block the file system uses is mapped, zeros included (inode tables, journal,
    // empty directory blocks, zero pages of files): a flash onto a used disk must not
    // leave what the disk held there.
    let used = output::Keep::new(ext4::used_extents(&ext_path)?);
    let ranges = output::file_ranges_keeping(&ext_path, &used)?;
    t.finish("done");
    Ok(RootMeta {
        key: key.to_string(),
        epoch,
        kernel_version: version,
        size: layout.root_size,
        uuid: ext.uuid.to_string(),
        ranges,
    })
}

/// The newest mtime in a tar: a stable default for `SOURCE_DATE_EPOCH`.
fn newest_mtime(tar_path: &Path) -> Result<u64> {
    let f = std::fs::File::open(tar_path)?;
    let mut a = tar::Archive::new(std::io::BufReader::new(f));
    let mut newest = 0;
    for e in a.entries_with_seek()? {
        newest = newest.max(e?.header().mtime().unwrap_or(0));
    }
    Ok(newest)
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
