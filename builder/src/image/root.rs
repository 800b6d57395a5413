//! The shared root filesystem: built once from base + overlays + agent, cached under
//! `<cache>/root-<key>/` with its boot files, bmap ranges and zstd frame, and pruned.

use super::disk::{self, Layout};
use super::esp::{self, BootFiles};
use super::output::{self, Range};
use super::rootfs::{self, Data, Item};
use super::{ext4, BuildOptions, ZSTD_LEVEL};
use crate::error::InputError;
use anyhow::{Context, Result};
use hcikit_firstboot::layout;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Cache entries kept besides the one in use.
const CACHE_KEEP: usize = 2;

/// A cached root filesystem and what was taken from the base with it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(super) struct RootMeta {
    pub(super) key: String,
    pub(super) epoch: u64,
    pub(super) kernel_version: String,
    pub(super) size: u64,
    pub(super) uuid: String,
    pub(super) ranges: Vec<Range>,
}

pub(super) struct Root {
    pub(super) dir: PathBuf,
    pub(super) meta: RootMeta,
    pub(super) cached: bool,
}

impl Root {
    pub(super) fn ext4(&self) -> PathBuf {
        self.dir.join("root.ext4")
    }
    pub(super) fn zst(&self) -> PathBuf {
        self.dir.join("root.ext4.zst")
    }
    /// Bytes of the root that hold data (the rest is holes).
    pub(super) fn mapped_bytes(&self) -> u64 {
        self.meta
            .ranges
            .iter()
            .map(|r| r.blocks() * output::BLOCK)
            .sum()
    }
    pub(super) fn boot_files(&self) -> Result<BootFiles> {
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

/// The root's zstd frame, compressed once per cache entry.
pub(super) fn ensure_root_zst(root: &Root, layout: &Layout, opts: &BuildOptions) -> Result<()> {
    if root.zst().exists() {
        return Ok(());
    }
    let t = opts
        .progress
        .task("compressing root", Some(layout.root_size));
    let tmp = root
        .dir
        .join(format!(".root.ext4.zst.{}", std::process::id()));
    output::compress_file(&root.ext4(), &tmp, ZSTD_LEVEL, |n| t.inc(n))?;
    std::fs::rename(&tmp, root.zst())?;
    t.finish("done");
    Ok(())
}

/// The root for `key`: from the cache, or built and stored there.
pub(super) fn ensure_root(key: &str, layout: &Layout, opts: &BuildOptions) -> Result<Root> {
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
        // Folders of older versions carry the cache key (hex) instead of a process id:
        // it rarely parses as the id of a running process, and they are stale anyway.
        let pid = rest.split('-').next().and_then(|p| p.parse::<u32>().ok());
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
