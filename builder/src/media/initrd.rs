//! The installer initrd format: a cpio archive in the kernel's `newc` format, gzip-
//! compressed (iPXE passes an initrd through untouched, but Debian's kernels and
//! Proxmox's PXE split both use gzip because iPXE-era tooling cannot read zstd).
//!
//! What goes into the network installer's initrd is decided in `image::pxe_initrd`.

use anyhow::Result;
use std::collections::BTreeSet;
use std::io::Write;

/// File type bits of `st_mode`.
pub const S_IFREG: u32 = 0o100000;
pub const S_IFDIR: u32 = 0o040000;
pub const S_IFLNK: u32 = 0o120000;

/// One archive member. `mode` includes the file type bits; a symlink's data is its target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Relative path without a leading `/`, e.g. `usr/sbin/hcikit-firstboot`.
    pub path: String,
    pub mode: u32,
    pub data: Vec<u8>,
}

impl Entry {
    pub fn file(path: &str, perm: u32, data: Vec<u8>) -> Entry {
        Entry {
            path: path.trim_start_matches('/').to_string(),
            mode: S_IFREG | (perm & 0o7777),
            data,
        }
    }
    pub fn symlink(path: &str, target: &str) -> Entry {
        Entry {
            path: path.trim_start_matches('/').to_string(),
            mode: S_IFLNK | 0o777,
            data: target.as_bytes().to_vec(),
        }
    }
}

/// The `newc` archive of `entries`, with every parent folder added (mode 0755), members
/// sorted by path, owner root, one fixed mtime and inode numbers in order, so the same
/// entries always give the same bytes.
pub fn newc(entries: &[Entry], mtime: u32) -> Vec<u8> {
    let mut dirs = BTreeSet::new();
    for e in entries {
        let mut p = e.path.as_str();
        while let Some((parent, _)) = p.rsplit_once('/') {
            dirs.insert(parent.to_string());
            p = parent;
        }
    }
    let mut all: Vec<Entry> = dirs
        .into_iter()
        .filter(|d| !entries.iter().any(|e| &e.path == d))
        .map(|d| Entry {
            path: d,
            mode: S_IFDIR | 0o755,
            data: Vec::new(),
        })
        .chain(entries.iter().cloned())
        .collect();
    // Sorted by path, a folder comes before what it holds.
    all.sort_by(|a, b| a.path.cmp(&b.path));
    let mut out = Vec::new();
    for (i, e) in all.iter().enumerate() {
        member(&mut out, i as u32 + 1, e, mtime);
    }
    member(
        &mut out,
        0,
        &Entry {
            path: "TRAILER!!!".into(),
            mode: 0,
            data: Vec::new(),
        },
        0,
    );
    // The kernel reads initrds in 512-byte blocks; pad like cpio does.
    out.resize(out.len().next_multiple_of(512), 0);
    out
}

fn member(out: &mut Vec<u8>, ino: u32, e: &Entry, mtime: u32) {
    let name_len = e.path.len() as u32 + 1;
    let nlink = if e.mode & 0o170000 == S_IFDIR { 2 } else { 1 };
    let fields = [
        ino,
        e.mode,
        0, // uid
        0, // gid
        nlink,
        mtime,
        e.data.len() as u32,
        0, // dev major
        0, // dev minor
        0, // rdev major
        0, // rdev minor
        name_len,
        0, // check (unused in newc)
    ];
    out.extend_from_slice(b"070701");
    for f in fields {
        out.extend_from_slice(format!("{f:08X}").as_bytes());
    }
    out.extend_from_slice(e.path.as_bytes());
    out.push(0);
    pad4(out);
    out.extend_from_slice(&e.data);
    pad4(out);
}

fn pad4(out: &mut Vec<u8>) {
    out.resize(out.len().next_multiple_of(4), 0);
}

/// gzip with no name and mtime 0 in the header, so the bytes depend on the input only.
pub fn gzip(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut enc = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::best());
    enc.write_all(bytes)?;
    Ok(enc.finish()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_layout_and_padding() {
        let a = newc(&[Entry::file("init", 0o755, b"#!/bin/sh\n".to_vec())], 7);
        assert_eq!(a.len() % 512, 0);
        assert_eq!(&a[..6], b"070701");
        // ino 1, regular file 0755, uid 0, gid 0, nlink 1, mtime 7, size 10.
        assert_eq!(
            std::str::from_utf8(&a[6..6 + 8 * 7]).unwrap(),
            "00000001000081ED00000000000000000000000100000007000000\
             0A"
        );
        // 110-byte header + "init\0" = 115, padded to 116, then the data.
        assert_eq!(&a[110..115], b"init\0");
        assert_eq!(&a[116..126], b"#!/bin/sh\n");
        assert!(a.windows(10).any(|w| w == b"TRAILER!!!"));
    }

    #[test]
    fn parents_are_added_once_and_sorted() {
        let a = newc(
            &[
                Entry::file("usr/sbin/tool", 0o755, vec![1]),
                Entry::symlink("sbin", "usr/sbin"),
                Entry::file("usr/lib/modules/6.1/x.ko", 0o644, vec![2]),
            ],
            0,
        );
        let names: Vec<String> = a
            .windows(6)
            .enumerate()
            .filter(|(_, w)| *w == b"070701")
            .map(|(i, _)| {
                let len =
                    usize::from_str_radix(std::str::from_utf8(&a[i + 94..i + 102]).unwrap(), 16)
                        .unwrap();
                String::from_utf8(a[i + 110..i + 110 + len - 1].to_vec()).unwrap()
            })
            .collect();
        assert_eq!(
            names,
            [
                "sbin",
                "usr",
                "usr/lib",
                "usr/lib/modules",
                "usr/lib/modules/6.1",
                "usr/lib/modules/6.1/x.ko",
                "usr/sbin",
                "usr/sbin/tool",
                "TRAILER!!!"
            ]
        );
    }

    #[test]
    fn gzip_is_reproducible_and_decodes() {
        let a = gzip(b"hello").unwrap();
        assert_eq!(a, gzip(b"hello").unwrap());
        let mut d = flate2::read::GzDecoder::new(&a[..]);
        let mut s = String::new();
        std::io::Read::read_to_string(&mut d, &mut s).unwrap();
        assert_eq!(s, "hello");
    }
}
