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

/// Staging-directory fallback for mke2fs < 1.47.1.
fn extract(tar: &Path, dir: &Path) -> Result<()> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir)?;
    let f = std::fs::File::open(tar)?;
    let mut a = tar::Archive::new(std::io::BufReader::new(f));
    a.set_preserve_permissions(true);
    a.set_preserve_ownerships(nix::unistd::geteuid().is_root());
    a.set_unpack_xattrs(true);
    a.set_preserve_mtime(true);
    a.unpack(dir)
        .with_context(|| format!("extracting the root tree into {}", dir.display()))
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
}
