//! The shared root filesystem as one deterministic tar stream.
//!
//! Layers, later ones replacing earlier ones path by path: the base rootfs archive, the
//! static `overlays/` tree, then what hcikit adds (the agent binary, `.wants/` symlinks
//! that enable the agent's units offline, the pending-flag files). The merge is a pure
//! function over entry lists ([`merge`]); only [`index_base`], [`overlay_layer`] and
//! [`write_tar`] touch files. The stream is sorted by path, every mtime is
//! `SOURCE_DATE_EPOCH`, our own entries are owned by root, base entries keep their owners,
//! modes and extended attributes. `mke2fs -d` turns it into the ext4 root.

use crate::error::InputError;
use anyhow::{bail, Context, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// What an entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
    Symlink(String),
    /// Hard link to another entry's path (relative, like every path here).
    Hardlink(String),
    Char(u32, u32),
    Block(u32, u32),
    Fifo,
}

/// Where a regular file's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    None,
    /// A byte range of the (decompressed) base tar.
    Base {
        offset: u64,
        len: u64,
    },
    Bytes(Vec<u8>),
    Path(PathBuf),
}

/// One entry of the root tree. `path` is relative to `/`, without `./` or a trailing `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub path: String,
    pub kind: Kind,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub uname: String,
    pub gname: String,
    pub data: Data,
    /// PAX records worth keeping (extended attributes, ACLs), in archive order.
    pub pax: Vec<(String, Vec<u8>)>,
}

impl Item {
    fn ours(path: &str, kind: Kind, mode: u32, data: Data) -> Item {
        Item {
            path: path.to_string(),
            kind,
            mode,
            uid: 0,
            gid: 0,
            uname: "root".into(),
            gname: "root".into(),
            data,
            pax: Vec::new(),
        }
    }
    pub fn dir(path: &str, mode: u32) -> Item {
        Item::ours(path, Kind::Dir, mode, Data::None)
    }
    pub fn file(path: &str, mode: u32, data: Data) -> Item {
        Item::ours(path, Kind::File, mode, data)
    }
    pub fn symlink(path: &str, target: &str) -> Item {
        Item::ours(path, Kind::Symlink(target.into()), 0o777, Data::None)
    }
}

/// `./usr/bin/` → `usr/bin`; `/` and `.` → empty.
pub fn normalize(path: &str) -> String {
    let mut p = path;
    loop {
        if let Some(rest) = p.strip_prefix("./") {
            p = rest;
        } else if let Some(rest) = p.strip_prefix('/') {
            p = rest;
        } else {
            break;
        }
    }
    let p = p.trim_end_matches('/');
    if p == "." {
        String::new()
    } else {
        p.to_string()
    }
}

/// Merges layers into one sorted list: a later layer replaces an earlier entry with the
/// same path; hard links are rewritten so each link comes after the entry that carries
/// the bytes (sorting can reorder them, and a later layer can replace the original);
/// missing parent directories are added (root-owned, 0755).
pub fn merge(layers: Vec<Vec<Item>>) -> Vec<Item> {
    // path → (layer index, item)
    let mut map: BTreeMap<String, (usize, Item)> = BTreeMap::new();
    for (layer, items) in layers.into_iter().enumerate() {
        for item in items {
            if item.path.is_empty() {
                continue;
            }
            map.insert(item.path.clone(), (layer, item));
        }
    }
    fix_hardlinks(&mut map);
    let mut missing = BTreeSet::new();
    for path in map.keys() {
        let mut p = path.as_str();
        while let Some((parent, _)) = p.rsplit_once('/') {
            if !map.contains_key(parent) {
                missing.insert(parent.to_string());
            }
            p = parent;
        }
    }
    for m in missing {
        map.insert(m.clone(), (usize::MAX, Item::dir(&m, 0o755)));
    }
    map.into_values().map(|(_, item)| item).collect()
}

/// Hard-link groups: an original file plus every link to it from the same layer. The
/// first surviving member in path order carries the data; the others link to it.
fn fix_hardlinks(map: &mut BTreeMap<String, (usize, Item)>) {
    // (layer, original target path) → member paths that survived the merge
    let mut groups: BTreeMap<(usize, String), Vec<String>> = BTreeMap::new();
    for (path, (layer, item)) in map.iter() {
        if let Kind::Hardlink(target) = &item.kind {
            groups
                .entry((*layer, target.clone()))
                .or_default()
                .push(path.clone());
        }
    }
    for ((layer, target), mut members) in groups {
        // The original carries data only if it survived from the same layer.
        let original = match map.get(&target) {
            Some((l, item)) if *l == layer && item.kind == Kind::File => Some(item.clone()),
            _ => None,
        };
        let carrier_template = match original {
            Some(orig) => {
                members.push(target.clone());
                orig
            }
            None => {
                // The original was replaced or is missing: a link's own header has the
                // mode and owner; the bytes are gone only if the base never had them.
                match find_original_data(map, &members) {
                    Some(item) => item,
                    None => continue,
                }
            }
        };
        members.sort();
        let carrier = members[0].clone();
        for m in &members {
            let entry = map.get_mut(m).expect("member exists");
            if *m == carrier {
                let mut item = carrier_template.clone();
                item.path = carrier.clone();
                entry.1 = item;
            } else {
                entry.1.kind = Kind::Hardlink(carrier.clone());
                entry.1.data = Data::None;
            }
        }
    }
}

/// For a group whose original was replaced: the data recorded on any member (the base
/// index stores the original's data range on every link, see [`index_base`]).
fn find_original_data(map: &BTreeMap<String, (usize, Item)>, members: &[String]) -> Option<Item> {
    members.iter().find_map(|m| {
        let item = &map[m].1;
        match item.data {
            Data::None => None,
            _ => {
                let mut it = item.clone();
                it.kind = Kind::File;
                Some(it)
            }
        }
    })
}

/// Which decompressor a base archive needs, by file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Zstd,
    Gzip,
    /// Decompressed by the `xz` tool (no xz crate in the workspace).
    Xz,
}

pub fn compression_of(path: &Path) -> Result<Compression> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if name.ends_with(".tar") {
        Ok(Compression::None)
    } else if name.ends_with(".tar.zst") || name.ends_with(".tzst") {
        Ok(Compression::Zstd)
    } else if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
        Ok(Compression::Gzip)
    } else if name.ends_with(".tar.xz") || name.ends_with(".txz") {
        Ok(Compression::Xz)
    } else {
        Err(InputError::new(format!(
            "base archive {}: unknown type (expected .tar, .tar.zst, .tar.gz or .tar.xz)",
            path.display()
        ))
        .into())
    }
}

/// A plain, seekable tar of the base: the file itself if uncompressed, else a
/// decompressed copy at `scratch`.
pub fn plain_base(base: &Path, scratch: &Path, limit: u64) -> Result<PathBuf> {
    let comp = compression_of(base)?;
    let input = File::open(base).map_err(|e| {
        InputError::new(format!("cannot read base archive {}: {e}", base.display()))
    })?;
    let too_big = || -> anyhow::Error {
        InputError::new(format!(
            "base archive {} holds more than {} MiB, more than the root file system of \
             image.disk-size can take",
            base.display(),
            limit >> 20
        ))
        .into()
    };
    let reader: Box<dyn Read> = match comp {
        Compression::None => {
            if input.metadata()?.len() > limit {
                return Err(too_big());
            }
            return Ok(base.to_path_buf());
        }
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::new(input).context("starting zstd decompression")?,
        ),
        Compression::Gzip => Box::new(flate2::read::GzDecoder::new(BufReader::new(input))),
        Compression::Xz => {
            let out =
                File::create(scratch).with_context(|| format!("creating {}", scratch.display()))?;
            let mut c = std::process::Command::new("xz");
            c.arg("-dc").arg(base).stdout(out);
            hcikit_firstboot::cmd::run(&mut c, Some("the Debian package xz-utils"))
                .map_err(|e| corrupt(base, format!("{e:#}")))?;
            if std::fs::metadata(scratch)?.len() > limit {
                return Err(too_big());
            }
            return Ok(scratch.to_path_buf());
        }
    };
    let mut out = BufWriter::new(
        File::create(scratch).with_context(|| format!("creating {}", scratch.display()))?,
    );
    // One byte more than allowed tells a too-large archive from one that just fits.
    let mut reader = reader.take(limit + 1);
    let n = io::copy(&mut reader, &mut out).map_err(|e| {
        if e.kind() == io::ErrorKind::StorageFull || e.raw_os_error() == Some(28) {
            anyhow::Error::new(e).context(format!("writing {}", scratch.display()))
        } else {
            corrupt(base, e)
        }
    })?;
    if n > limit {
        return Err(too_big());
    }
    out.flush()
        .with_context(|| format!("writing {}", scratch.display()))?;
    Ok(scratch.to_path_buf())
}

fn corrupt(base: &Path, e: impl std::fmt::Display) -> anyhow::Error {
    InputError::new(format!(
        "base archive {} is corrupt or truncated: {}",
        base.display(),
        printable(&e.to_string())
    ))
    .into()
}

/// `text` with control characters escaped: messages about a garbage archive quote its
/// bytes, which must not reach the terminal raw.
pub fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() && c != '\n' {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Bad input unless every entry stays inside the tree the archive describes: no entry
/// below a path that the archive makes a symlink (it would be written wherever the link
/// points), and hard links only to earlier regular files of the archive.
fn check_links(items: &[Item], shown: &Path) -> Result<()> {
    let links: std::collections::BTreeSet<&str> = items
        .iter()
        .filter(|i| matches!(i.kind, Kind::Symlink(_)))
        .map(|i| i.path.as_str())
        .collect();
    let mut files = std::collections::BTreeSet::new();
    for i in items {
        let mut prefix = i.path.as_str();
        while let Some((parent, _)) = prefix.rsplit_once('/') {
            if links.contains(parent) {
                return Err(InputError::new(format!(
                    "base archive {}: entry {} lies below {parent}, which the archive makes a symlink; \
                     such an entry would be written wherever the link points",
                    shown.display(),
                    printable(&i.path)
                ))
                .into());
            }
            prefix = parent;
        }
        match &i.kind {
            Kind::File => {
                files.insert(i.path.as_str());
            }
            Kind::Hardlink(target) if !files.contains(target.as_str()) => {
                return Err(InputError::new(format!(
                    "base archive {}: entry {} is a hard link to {}, which is not an earlier file of the archive",
                    shown.display(),
                    printable(&i.path),
                    printable(target)
                ))
                .into());
            }
            _ => {}
        }
    }
    Ok(())
}

/// Reads the entry list of a plain tar without loading file bytes. `shown` names the
/// archive in messages (the user's file, not a decompressed scratch copy).
pub fn index_base(tar_path: &Path, shown: &Path) -> Result<Vec<Item>> {
    let file = File::open(tar_path).with_context(|| format!("opening {}", tar_path.display()))?;
    let total = file.metadata()?.len();
    let mut archive = tar::Archive::new(BufReader::new(file));
    let mut items: Vec<Item> = Vec::new();
    let mut data_of: BTreeMap<String, Data> = BTreeMap::new();
    for entry in archive.entries_with_seek().map_err(|e| corrupt(shown, e))? {
        let mut entry = entry.map_err(|e| corrupt(shown, e))?;
        let path = normalize(&String::from_utf8_lossy(&entry.path_bytes()));
        if path.split('/').any(|c| c == "..") {
            return Err(corrupt(
                shown,
                format!("{path}: a path that leaves the root"),
            ));
        }
        let h = entry.header();
        let mode = h.mode().map_err(|e| corrupt(shown, e))? & 0o7777;
        let uid = h.uid().map_err(|e| corrupt(shown, e))?;
        let gid = h.gid().map_err(|e| corrupt(shown, e))?;
        let uname = String::from_utf8_lossy(h.username_bytes().unwrap_or_default()).into_owned();
        let gname = String::from_utf8_lossy(h.groupname_bytes().unwrap_or_default()).into_owned();
        let link = entry
            .link_name_bytes()
            .map(|l| String::from_utf8_lossy(&l).into_owned());
        let et = h.entry_type();
        let size = entry.size();
        let offset = entry.raw_file_position();
        if offset + size > total {
            return Err(corrupt(shown, format!("{path}: data runs past the end")));
        }
        let dev = |h: &tar::Header| -> (u32, u32) {
            (
                h.device_major().ok().flatten().unwrap_or(0),
                h.device_minor().ok().flatten().unwrap_or(0),
            )
        };
        let (kind, data) = match et {
            tar::EntryType::Directory => (Kind::Dir, Data::None),
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                (Kind::File, Data::Base { offset, len: size })
            }
            tar::EntryType::Symlink => (Kind::Symlink(link.unwrap_or_default()), Data::None),
            tar::EntryType::Link => {
                let target = normalize(&link.unwrap_or_default());
                // Keep the original's bytes on the link, in case a later layer replaces
                // the original (see `fix_hardlinks`).
                let data = data_of.get(&target).cloned().unwrap_or(Data::None);
                (Kind::Hardlink(target), data)
            }
            tar::EntryType::Char => {
                let (a, b) = dev(h);
                (Kind::Char(a, b), Data::None)
            }
            tar::EntryType::Block => {
                let (a, b) = dev(h);
                (Kind::Block(a, b), Data::None)
            }
            tar::EntryType::Fifo => (Kind::Fifo, Data::None),
            tar::EntryType::XGlobalHeader => continue,
            other => {
                return Err(corrupt(
                    shown,
                    format!("{path}: unsupported entry type {other:?}"),
                ))
            }
        };
        let mut pax = Vec::new();
        if let Some(exts) = entry.pax_extensions().map_err(|e| corrupt(shown, e))? {
            for ext in exts {
                let ext = ext.map_err(|e| corrupt(shown, e))?;
                let key = ext.key().map_err(|e| corrupt(shown, e))?;
                if key.starts_with("SCHILY.xattr.")
                    || key.starts_with("LIBARCHIVE.xattr.")
                    || key.starts_with("SCHILY.acl.")
                {
                    pax.push((key.to_string(), ext.value_bytes().to_vec()));
                }
            }
        }
        if kind == Kind::File {
            data_of.insert(path.clone(), data.clone());
        }
        items.push(Item {
            path,
            kind,
            mode,
            uid,
            gid,
            uname,
            gname,
            data,
            pax,
        });
    }
    // A truncated data area is caught above, a cut header by the tar reader; an empty
    // list is never a usable base.
    if items.is_empty() {
        bail!(corrupt(shown, "no entries"));
    }
    check_links(&items, shown)?;
    Ok(items)
}

/// The `overlays/` tree as a layer: root-owned, modes from the files, symlinks kept.
pub fn overlay_layer(dir: &Path) -> Result<Vec<Item>> {
    let mut items = Vec::new();
    walk(dir, dir, &mut items).with_context(|| format!("reading overlays {}", dir.display()))?;
    Ok(items)
}

fn walk(root: &Path, dir: &Path, items: &mut Vec<Item>) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<io::Result<_>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let p = e.path();
        let rel = p
            .strip_prefix(root)
            .expect("walked path is below its root")
            .to_str()
            .with_context(|| format!("{} is not UTF-8", p.display()))?
            .to_string();
        let meta = std::fs::symlink_metadata(&p)?;
        let mode = std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o7777;
        let ft = meta.file_type();
        if ft.is_symlink() {
            let target = std::fs::read_link(&p)?;
            items.push(Item::symlink(&rel, &target.to_string_lossy()));
        } else if ft.is_dir() {
            items.push(Item::dir(&rel, mode));
            walk(root, &p, items)?;
        } else if ft.is_file() {
            // Git keeps only the executable bit: normalise to 0755 / 0644.
            let mode = if mode & 0o111 != 0 { 0o755 } else { 0o644 };
            items.push(Item::file(&rel, mode, Data::Path(p.clone())));
        }
    }
    Ok(())
}

/// `WantedBy=` / `RequiredBy=` targets of a unit file's `[Install]` section, as
/// `.wants` / `.requires` folder names.
pub fn install_links(unit_text: &str) -> Vec<String> {
    let mut in_install = false;
    let mut out = Vec::new();
    for line in unit_text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_install = line == "[Install]";
            continue;
        }
        if !in_install {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let suffix = match key.trim() {
            "WantedBy" => "wants",
            "RequiredBy" => "requires",
            _ => continue,
        };
        for target in value.split_whitespace() {
            out.push(format!("{target}.{suffix}"));
        }
    }
    out
}

/// Units under `etc/systemd/system/` in a layer, enabled as `systemctl enable` would:
/// `etc/systemd/system/<target>.wants/<unit>` → `/etc/systemd/system/<unit>`.
pub fn enable_units(layer: &[Item]) -> Result<Vec<Item>> {
    let mut links = Vec::new();
    for item in layer {
        let Some(unit) = item.path.strip_prefix("etc/systemd/system/") else {
            continue;
        };
        if unit.contains('/') || item.kind != Kind::File {
            continue;
        }
        let text = match &item.data {
            Data::Path(p) => {
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?
            }
            Data::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
            _ => continue,
        };
        for dir in install_links(&text) {
            links.push(Item::symlink(
                &format!("etc/systemd/system/{dir}/{unit}"),
                &format!("/etc/systemd/system/{unit}"),
            ));
        }
    }
    Ok(links)
}

/// Writes the merged items as a tar stream: every mtime `epoch`, GNU long names where
/// needed, file bytes from the base tar, memory or a path.
pub fn write_tar<W: Write>(
    items: &[Item],
    base_tar: Option<&Path>,
    out: W,
    epoch: u64,
) -> Result<W> {
    let mut base = match base_tar {
        Some(p) => Some(File::open(p).with_context(|| format!("opening {}", p.display()))?),
        None => None,
    };
    let mut b = tar::Builder::new(out);
    b.follow_symlinks(false);
    for item in items {
        let mut h = tar::Header::new_gnu();
        h.set_mode(item.mode);
        h.set_uid(item.uid);
        h.set_gid(item.gid);
        h.set_username(&item.uname).ok();
        h.set_groupname(&item.gname).ok();
        h.set_mtime(epoch);
        h.set_size(0);
        if !item.pax.is_empty() {
            b.append_pax_extensions(item.pax.iter().map(|(k, v)| (k.as_str(), v.as_slice())))?;
        }
        let path = &item.path;
        match &item.kind {
            Kind::Dir => {
                h.set_entry_type(tar::EntryType::Directory);
                b.append_data(&mut h, format!("{path}/"), io::empty())?;
            }
            Kind::Symlink(t) | Kind::Hardlink(t) => {
                h.set_entry_type(if matches!(item.kind, Kind::Symlink(_)) {
                    tar::EntryType::Symlink
                } else {
                    tar::EntryType::Link
                });
                b.append_link(&mut h, path, t)?;
            }
            Kind::Char(ma, mi) | Kind::Block(ma, mi) => {
                h.set_entry_type(if matches!(item.kind, Kind::Char(..)) {
                    tar::EntryType::Char
                } else {
                    tar::EntryType::Block
                });
                h.set_device_major(*ma)?;
                h.set_device_minor(*mi)?;
                b.append_data(&mut h, path, io::empty())?;
            }
            Kind::Fifo => {
                h.set_entry_type(tar::EntryType::Fifo);
                b.append_data(&mut h, path, io::empty())?;
            }
            Kind::File => {
                h.set_entry_type(tar::EntryType::Regular);
                match &item.data {
                    Data::None => b.append_data(&mut h, path, io::empty())?,
                    Data::Bytes(bytes) => {
                        h.set_size(bytes.len() as u64);
                        b.append_data(&mut h, path, bytes.as_slice())?;
                    }
                    Data::Path(p) => {
                        let f =
                            File::open(p).with_context(|| format!("opening {}", p.display()))?;
                        h.set_size(f.metadata()?.len());
                        b.append_data(&mut h, path, f)?;
                    }
                    Data::Base { offset, len } => {
                        let f = base.as_mut().context("base data without a base archive")?;
                        f.seek(SeekFrom::Start(*offset))?;
                        h.set_size(*len);
                        b.append_data(&mut h, path, f.take(*len))?;
                    }
                }
            }
        }
    }
    Ok(b.into_inner()?)
}

/// Newest `vmlinuz-*` and its `initrd.img-*` in the base's `/boot`, by version order.
pub fn find_kernel(items: &[Item]) -> Option<(&Item, &Item)> {
    let mut kernels: Vec<(&str, &Item)> = items
        .iter()
        .filter(|i| i.kind == Kind::File)
        .filter_map(|i| i.path.strip_prefix("boot/vmlinuz-").map(|v| (v, i)))
        .collect();
    kernels.sort_by(|a, b| version_cmp(a.0, b.0));
    kernels.into_iter().rev().find_map(|(v, k)| {
        let initrd = format!("boot/initrd.img-{v}");
        items
            .iter()
            .find(|i| i.path == initrd && i.kind == Kind::File)
            .map(|i| (k, i))
    })
}

/// Orders `6.1.0-10-amd64` after `6.1.0-9-amd64`: digit runs compare as numbers.
pub fn version_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    fn parts(s: &str) -> Vec<Result<u64, String>> {
        let mut out = Vec::new();
        let mut cur = String::new();
        let mut digits = false;
        for c in s.chars() {
            if c.is_ascii_digit() != digits && !cur.is_empty() {
                out.push(if digits {
                    Ok(cur.parse().unwrap_or(u64::MAX))
                } else {
                    Err(std::mem::take(&mut cur))
                });
                cur.clear();
            }
            digits = c.is_ascii_digit();
            cur.push(c);
        }
        if !cur.is_empty() {
            out.push(if digits {
                Ok(cur.parse().unwrap_or(u64::MAX))
            } else {
                Err(cur)
            });
        }
        out
    }
    parts(a).cmp(&parts(b))
}

/// Reads a regular file's bytes from the base tar.
pub fn read_item(item: &Item, base_tar: &Path) -> Result<Vec<u8>> {
    match &item.data {
        Data::Base { offset, len } => {
            let mut f = File::open(base_tar)?;
            f.seek(SeekFrom::Start(*offset))?;
            let mut buf = vec![0; *len as usize];
            f.read_exact(&mut buf)?;
            Ok(buf)
        }
        Data::Bytes(b) => Ok(b.clone()),
        Data::Path(p) => Ok(std::fs::read(p)?),
        Data::None => Ok(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_bytes_in_messages_are_escaped() {
        let e = corrupt(Path::new("b.tar"), "name \u{1b}[31mred\u{7}\r\0");
        let m = format!("{e:#}");
        assert!(!m.chars().any(|c| c.is_control()), "{m:?}");
        assert!(m.contains("\\u{1b}[31mred"), "{m}");
    }

    fn base_file(path: &str, off: u64) -> Item {
        let mut i = Item::file(
            path,
            0o644,
            Data::Base {
                offset: off,
                len: 1,
            },
        );
        i.uid = 100;
        i
    }

    fn tar_with(path: &[u8]) -> Vec<u8> {
        let mut h = tar::Header::new_gnu();
        h.as_gnu_mut().unwrap().name[..path.len()].copy_from_slice(path);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(1);
        h.set_cksum();
        let mut t = h.as_bytes().to_vec();
        t.extend_from_slice(&[b'x'; 512]);
        t.extend_from_slice(&[0; 1024]);
        t
    }

    #[test]
    fn base_index_refuses_paths_that_leave_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let ok = dir.path().join("ok.tar");
        std::fs::write(&ok, tar_with(b"./etc/x")).unwrap();
        let items = index_base(&ok, &ok).unwrap();
        assert_eq!(items[0].path, "etc/x");
        assert_eq!(
            items[0].data,
            Data::Base {
                offset: 512,
                len: 1
            }
        );
        let bad = dir.path().join("bad.tar");
        std::fs::write(&bad, tar_with(b"etc/../../x")).unwrap();
        let err = index_base(&bad, &bad).unwrap_err();
        assert_eq!(crate::error::exit_code(&err), 2);
        assert!(format!("{err}").contains("leaves the root"), "{err}");
    }

    #[test]
    fn normalize_strips_prefixes_and_slashes() {
        assert_eq!(normalize("./usr/bin/"), "usr/bin");
        assert_eq!(normalize("/etc/fstab"), "etc/fstab");
        assert_eq!(normalize("./"), "");
        assert_eq!(normalize("."), "");
    }

    #[test]
    fn later_layers_replace_and_output_is_sorted_with_parents() {
        let base = vec![
            base_file("etc/b", 1),
            base_file("etc/a", 0),
            Item::dir("etc", 0o755),
        ];
        let ours = vec![
            Item::file("etc/b", 0o600, Data::Bytes(b"new".to_vec())),
            Item::file("usr/sbin/agent", 0o755, Data::Bytes(vec![])),
        ];
        let merged = merge(vec![base, ours]);
        let paths: Vec<_> = merged.iter().map(|i| i.path.as_str()).collect();
        assert_eq!(
            paths,
            ["etc", "etc/a", "etc/b", "usr", "usr/sbin", "usr/sbin/agent"]
        );
        let b = &merged[2];
        assert_eq!((b.mode, b.uid), (0o600, 0));
        assert_eq!(b.data, Data::Bytes(b"new".to_vec()));
        assert_eq!(merged[3].mode, 0o755);
    }

    #[test]
    fn hardlink_sorting_before_its_original_becomes_the_carrier() {
        // tar order: z/orig first, then a/link → z/orig. Sorted, a/link comes first.
        let mut link = Item::file("a/link", 0o755, Data::Base { offset: 7, len: 3 });
        link.kind = Kind::Hardlink("z/orig".into());
        let orig = Item::file("z/orig", 0o755, Data::Base { offset: 7, len: 3 });
        let merged = merge(vec![vec![orig, link]]);
        let a = merged.iter().find(|i| i.path == "a/link").unwrap();
        let z = merged.iter().find(|i| i.path == "z/orig").unwrap();
        assert_eq!(a.kind, Kind::File);
        assert_eq!(a.data, Data::Base { offset: 7, len: 3 });
        assert_eq!(z.kind, Kind::Hardlink("a/link".into()));
        assert_eq!(z.data, Data::None);
    }

    #[test]
    fn hardlink_whose_original_is_replaced_keeps_the_base_bytes() {
        let mut link = Item::file("b/link", 0o644, Data::Base { offset: 9, len: 2 });
        link.kind = Kind::Hardlink("a/orig".into());
        let orig = Item::file("a/orig", 0o644, Data::Base { offset: 9, len: 2 });
        let over = Item::file("a/orig", 0o644, Data::Bytes(b"x".to_vec()));
        let merged = merge(vec![vec![orig, link], vec![over]]);
        let a = merged.iter().find(|i| i.path == "a/orig").unwrap();
        let b = merged.iter().find(|i| i.path == "b/link").unwrap();
        assert_eq!(a.data, Data::Bytes(b"x".to_vec()));
        assert_eq!(b.kind, Kind::File);
        assert_eq!(b.data, Data::Base { offset: 9, len: 2 });
    }

    #[test]
    fn install_section_gives_wants_and_requires() {
        let unit = "[Unit]\nWantedBy=nope.target\n[Service]\nType=oneshot\n\
                    [Install]\nWantedBy=multi-user.target sysinit.target\nRequiredBy=x.target\n";
        assert_eq!(
            install_links(unit),
            [
                "multi-user.target.wants",
                "sysinit.target.wants",
                "x.target.requires"
            ]
        );
    }

    #[test]
    fn newest_kernel_wins_by_version_not_bytes() {
        let items = vec![
            Item::file("boot/vmlinuz-6.1.0-9-amd64", 0o644, Data::None),
            Item::file("boot/initrd.img-6.1.0-9-amd64", 0o644, Data::None),
            Item::file("boot/vmlinuz-6.1.0-10-amd64", 0o644, Data::None),
            Item::file("boot/initrd.img-6.1.0-10-amd64", 0o644, Data::None),
            Item::file("boot/vmlinuz-6.2.0-1-amd64", 0o644, Data::None), // no initrd
        ];
        let (k, i) = find_kernel(&items).unwrap();
        assert_eq!(k.path, "boot/vmlinuz-6.1.0-10-amd64");
        assert_eq!(i.path, "boot/initrd.img-6.1.0-10-amd64");
        assert!(find_kernel(&items[..0]).is_none());
    }
}
