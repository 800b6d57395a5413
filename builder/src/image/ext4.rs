//! The ext4 root filesystem from the merged tar, via `mke2fs -d`.
//!
//! e2fsprogs ≥ 1.47.1 reads a tar archive directly (owners, modes, setuid bits, xattrs
//! from the headers, no root needed). Older versions get a staging directory extracted
//! with the tar crate (owners then need root). The result is bit-identical for the same
//! tar: UUID, hash seed and time are pinned, and mke2fs reads our own config instead of
//! the host's `/etc/mke2fs.conf`.

use anyhow::{Context, Result};
use hcikit_firstboot::cmd;
use std::path::Path;
use std::process::Command;

/// Debian package that ships `mke2fs`.
pub const PACKAGE: &str = "the Debian package e2fsprogs";

/// Feature set fixed here so a build does not depend on the host's mke2fs.conf. No
/// `orphan_file`/`metadata_csum_seed`: older e2fsck in the base's initramfs may run on it.
const MKE2FS_CONF: &str = "[defaults]
	base_features = sparse_super,large_file,filetype,resize_inode,dir_index,ext_attr
	default_mntopts = acl,user_xattr
	enable_periodic_fsck = 0
	blocksize = 4096
	inode_size = 256
	inode_ratio = 16384
	reserved_ratio = 1.0

[fs_types]
	ext4 = {
		features = has_journal,extent,huge_file,flex_bg,metadata_csum,64bit,dir_nlink,extra_isize
	}
";

/// `(major, minor, patch)` from `mke2fs -V` output, e.g. `mke2fs 1.47.2 (1-Jan-2025)`.
pub fn parse_version(text: &str) -> Option<(u32, u32, u32)> {
    let word = text
        .split_whitespace()
        .skip_while(|w| *w != "mke2fs")
        .nth(1)?;
    let mut it = word.split('.').map(|p| {
        p.chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse::<u32>()
            .ok()
    });
    Some((it.next()??, it.next()??, it.next().flatten().unwrap_or(0)))
}

/// The installed mke2fs version; fails (exit 1) naming e2fsprogs when it is missing.
pub fn version() -> Result<(u32, u32, u32)> {
    let out = cmd::run(Command::new("mke2fs").arg("-V"), Some(PACKAGE))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    parse_version(&text).with_context(|| format!("cannot read the mke2fs version from {text:?}"))
}

/// Whether this mke2fs can read a tar archive with `-d`.
pub fn reads_tar(v: (u32, u32, u32)) -> bool {
    v >= (1, 47, 1)
}

/// Pinned identity of the filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ext4Params {
    pub size_bytes: u64,
    pub uuid: uuid::Uuid,
    pub hash_seed: uuid::Uuid,
    pub label: String,
    pub epoch: u64,
}

/// How mke2fs gets the tree: the tar itself, or a staging folder extracted from it.
/// `HCIKIT_FORCE_STAGING=1` picks the staging folder even on a new mke2fs (for tests).
pub fn uses_staging(v: (u32, u32, u32)) -> bool {
    !reads_tar(v) || std::env::var_os("HCIKIT_FORCE_STAGING").is_some()
}

/// Builds `out` (created, `size_bytes` long) from `tar`. `work` is a scratch folder.
pub fn make(tar: &Path, out: &Path, p: &Ext4Params, work: &Path) -> Result<()> {
    let v = version()?;
    let conf = work.join("mke2fs.conf");
    std::fs::write(&conf, MKE2FS_CONF).context("writing mke2fs.conf")?;
    let staging;
    let source = if !uses_staging(v) {
        tar.to_path_buf()
    } else {
        staging = work.join("staging");
        extract(tar, &staging)?;
        staging.clone()
    };
    let _ = std::fs::remove_file(out);
    let blocks = p.size_bytes / 4096;
    let mut c = Command::new("mke2fs");
    c.env("MKE2FS_CONFIG", &conf)
        .env("E2FSPROGS_FAKE_TIME", p.epoch.to_string())
        .env("SOURCE_DATE_EPOCH", p.epoch.to_string())
        .args(["-q", "-F", "-t", "ext4", "-b", "4096", "-L", &p.label, "-U"])
        .arg(p.uuid.to_string())
        .arg("-E")
        .arg(format!("hash_seed={},root_owner=0:0", p.hash_seed))
        .arg("-d")
        .arg(&source)
        .arg(out)
        .arg(blocks.to_string());
    cmd::run(&mut c, Some(PACKAGE)).context("creating the ext4 root filesystem")?;
    Ok(())
}

/// Byte intervals `[start, end)` of the blocks the file system at `path` uses (allocated
/// in its block bitmaps: metadata, journal, inode tables and file data), read with
/// `dumpe2fs`, which also accounts for groups whose bitmaps are not initialised.
pub fn used_extents(path: &Path) -> Result<Vec<(u64, u64)>> {
    let out = cmd::run(Command::new("dumpe2fs").arg(path), Some(PACKAGE))
        .with_context(|| format!("reading the block bitmaps of {}", path.display()))?;
    parse_used_extents(&String::from_utf8_lossy(&out.stdout))
        .with_context(|| format!("reading the dumpe2fs output for {}", path.display()))
}

/// The used blocks from `dumpe2fs` output: the complement of the groups' `Free blocks:`
/// lists within `Block count`, in bytes of `Block size`.
pub fn parse_used_extents(text: &str) -> Result<Vec<(u64, u64)>> {
    let header = |key: &str| -> Result<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.trim().parse().ok())
            .with_context(|| format!("no {key:?} line"))
    };
    let count = header("Block count:")?;
    let size = header("Block size:")?;
    let mut free = Vec::new();
    // Per-group lines are indented; the header's `Free blocks:` total is not.
    for l in text.lines().filter(|l| l.starts_with(char::is_whitespace)) {
        let Some(list) = l.trim().strip_prefix("Free blocks:") else {
            continue;
        };
        for item in list.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (a, b) = item.split_once('-').unwrap_or((item, item));
            let (a, b): (u64, u64) = (
                a.parse()
                    .with_context(|| format!("bad free range {item:?}"))?,
                b.parse()
                    .with_context(|| format!("bad free range {item:?}"))?,
            );
            anyhow::ensure!(a <= b && b < count, "free range {item:?} out of bounds");
            free.push((a, b + 1));
        }
    }
    free.sort();
    let mut used = Vec::new();
    let mut pos = 0;
    for (a, b) in free {
        if a > pos {
            used.push((pos * size, a * size));
        }
        pos = pos.max(b);
    }
    if pos < count {
        used.push((pos * size, count * size));
    }
    Ok(used)
}

/// Staging-directory fallback for mke2fs < 1.47.1. The tar crate does not create device
/// nodes or FIFOs: they are made here with `mknod` (as root; otherwise a warning names
/// what the root file system lacks, since only root can make them).
fn extract(tar: &Path, dir: &Path) -> Result<()> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir)?;
    let f = std::fs::File::open(tar)?;
    let mut a = tar::Archive::new(std::io::BufReader::new(f));
    let as_root = nix::unistd::geteuid().is_root();
    a.set_preserve_permissions(true);
    a.set_preserve_ownerships(as_root);
    a.set_unpack_xattrs(true);
    a.set_preserve_mtime(true);
    let mut skipped = Vec::new();
    let context = || format!("extracting the root tree into {}", dir.display());
    for entry in a.entries().with_context(context)? {
        let mut e = entry.with_context(context)?;
        let kind = e.header().entry_type();
        if !matches!(
            kind,
            tar::EntryType::Block | tar::EntryType::Char | tar::EntryType::Fifo
        ) {
            e.unpack_in(dir).with_context(context)?;
            continue;
        }
        let rel = e.path().with_context(context)?.into_owned();
        if !as_root && kind != tar::EntryType::Fifo {
            skipped.push(rel.display().to_string());
            continue;
        }
        make_node(dir, &rel, e.header())
            .with_context(|| format!("creating {} in {}", rel.display(), dir.display()))?;
    }
    if !skipped.is_empty() {
        tracing::warn!(
            "the staging fallback (mke2fs older than 1.47.1) runs without root: the device \
             nodes {} are left out of the root file system",
            skipped.join(", ")
        );
    }
    Ok(())
}

/// A device node or FIFO from a tar header, below `dir` (paths come from our own merged
/// tar, whose entries were checked not to leave the root).
fn make_node(dir: &Path, rel: &Path, h: &tar::Header) -> Result<()> {
    use nix::sys::stat::{makedev, mknod, Mode, SFlag};
    anyhow::ensure!(
        rel.components().all(|c| matches!(
            c,
            std::path::Component::Normal(_) | std::path::Component::CurDir
        )),
        "a path that leaves the root"
    );
    let to = dir.join(rel);
    if let Some(p) = to.parent() {
        std::fs::create_dir_all(p)?;
    }
    let _ = std::fs::remove_file(&to);
    let kind = match h.entry_type() {
        tar::EntryType::Block => SFlag::S_IFBLK,
        tar::EntryType::Char => SFlag::S_IFCHR,
        _ => SFlag::S_IFIFO,
    };
    let mode = h.mode()? & 0o7777;
    let dev = makedev(
        u64::from(h.device_major()?.unwrap_or(0)),
        u64::from(h.device_minor()?.unwrap_or(0)),
    );
    mknod(&to, kind, Mode::from_bits_truncate(mode), dev)?;
    if nix::unistd::geteuid().is_root() {
        std::os::unix::fs::lchown(&to, Some(h.uid()? as u32), Some(h.gid()? as u32))?;
    }
    std::fs::set_permissions(&to, std::os::unix::fs::PermissionsExt::from_mode(mode))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_versions() {
        assert_eq!(
            parse_version("mke2fs 1.47.2 (1-Jan-2025)\n\tUsing EXT2FS Library version 1.47.2"),
            Some((1, 47, 2))
        );
        assert_eq!(
            parse_version("mke2fs 1.47.0 (5-Feb-2023)"),
            Some((1, 47, 0))
        );
        assert_eq!(parse_version("mke2fs 1.46-WIP (x)"), Some((1, 46, 0)));
        assert_eq!(parse_version("garbage"), None);
        assert!(reads_tar((1, 47, 1)) && reads_tar((1, 48, 0)) && !reads_tar((1, 47, 0)));
    }

    #[test]
    fn used_blocks_are_the_complement_of_the_free_lists() {
        let text = "Block count:              100\nFree blocks:              60\n\
                    Block size:               4096\n\nGroup 0: (Blocks 0-49)\n  \
                    Free blocks: 10-19, 30\nGroup 1: (Blocks 50-99)\n  Free blocks: 50-97\n";
        assert_eq!(
            parse_used_extents(text).unwrap(),
            [
                (0, 10 * 4096),
                (20 * 4096, 30 * 4096),
                (31 * 4096, 50 * 4096),
                (98 * 4096, 100 * 4096)
            ]
        );
        assert!(parse_used_extents("Block size: 4096\n").is_err());
    }

    #[test]
    fn a_new_file_system_uses_its_metadata_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("fs");
        std::fs::File::create(&img)
            .unwrap()
            .set_len(32 << 20)
            .unwrap();
        cmd::run(
            Command::new("mke2fs")
                .args(["-q", "-F", "-t", "ext4", "-b", "4096"])
                .arg(&img),
            Some(PACKAGE),
        )
        .unwrap();
        let used = used_extents(&img).unwrap();
        // The superblock's block is used; most of an empty file system is not.
        assert_eq!(used[0].0, 0);
        let total: u64 = used.iter().map(|(s, e)| e - s).sum();
        assert!(total > 0 && total < 16 << 20, "{used:?}");
    }
}
