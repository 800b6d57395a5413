//! What the installer medium carries for each node, and the `Read` source of a node's
//! image data built from it.
//!
//! The manifest (`hcikit/install/manifest.json` on the stick's ESP, written by
//! `hcikit build --installer`) pins each node's bmap by SHA-256; the bmap pins every
//! range of data. The data is the concatenation of the bmap's ranges in order (the
//! *range stream*), stored as segments: files on the stick (raw or zstd) and, for the
//! shared root, the stick's own root partition, which holds the same bytes. A network
//! install replaces the segments by HTTP bodies; the writer only sees a `Read`.

use super::bmap::Bmap;
use anyhow::{bail, ensure, Context, Result};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Bumped when the manifest changes meaning; the installer refuses others.
pub const MANIFEST_FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Manifest {
    pub format: u32,
    pub cluster: String,
    /// GPT disk GUID of the installer medium itself.
    pub stick_disk_guid: String,
    /// `reboot` or `poweroff` once a node is installed.
    pub after_install: String,
    /// Seconds the summary waits for a key before writing (0: unattended).
    pub confirm_secs: u64,
    pub nodes: Vec<NodePayload>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct NodePayload {
    pub node: String,
    /// The spec's dotted key of the install disk, for messages (`nodes[1].install-disk`).
    pub key: String,
    /// Lower-case MAC of the node, if the spec has one.
    pub mac: Option<String>,
    pub install_disk: Option<String>,
    /// The spec allows erasing whatever the install disk holds.
    pub install_wipe: bool,
    /// OSD disk paths of this node.
    pub osd_disks: Vec<String>,
    /// Size of the node image in bytes.
    pub image_size: u64,
    /// The node image's bmap, relative to the stick's ESP.
    pub bmap: String,
    pub bmap_sha256: String,
    /// GPT disk GUID of the node image (recognises an earlier install of it).
    pub disk_guid: String,
    /// Partition GUIDs and labels the installed disk carries.
    pub partition_guids: Vec<String>,
    pub partition_labels: Vec<String>,
    /// The range stream, in order.
    pub segments: Vec<Segment>,
}

/// One piece of the range stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    rename_all = "kebab-case",
    rename_all_fields = "kebab-case",
    tag = "kind",
    deny_unknown_fields
)]
pub enum Segment {
    /// A file on the stick's ESP holding `length` bytes of the stream (after zstd
    /// decompression when `zstd`).
    File {
        path: String,
        zstd: bool,
        length: u64,
    },
    /// The bmap ranges that fall in image bytes `[image_offset, image_offset + length)`,
    /// read from the stick's partition `partuuid` at the same offsets relative to its
    /// start (the shared root, identical on the stick and in every node image).
    Partition {
        partuuid: String,
        image_offset: u64,
        length: u64,
    },
    /// A file (fetched over the network) holding image bytes `[image_offset,
    /// image_offset + length)` whole, holes included (after zstd decompression when
    /// `zstd`); the bmap ranges inside are taken from it. `sha256` pins the file as
    /// stored.
    Image {
        path: String,
        zstd: bool,
        image_offset: u64,
        length: u64,
        sha256: String,
    },
}

impl Manifest {
    pub fn parse(bytes: &[u8]) -> Result<Manifest> {
        let m: Manifest = serde_json::from_slice(bytes).context("parsing the install manifest")?;
        ensure!(
            m.format == MANIFEST_FORMAT,
            "the install manifest has format {}, this installer understands {MANIFEST_FORMAT}: the stick and the installer come from different hcikit versions",
            m.format
        );
        ensure!(
            matches!(m.after_install.as_str(), "reboot" | "poweroff"),
            "the install manifest's after-install {:?} is neither reboot nor poweroff",
            m.after_install
        );
        Ok(m)
    }
    pub fn node(&self, name: &str) -> Option<&NodePayload> {
        self.nodes.iter().find(|n| n.node == name)
    }
}

/// Reads and checks a node's bmap against the manifest's pin.
pub fn load_bmap(esp: &Path, node: &NodePayload) -> Result<Bmap> {
    let path = esp.join(&node.bmap);
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let sum = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
    ensure!(
        sum == node.bmap_sha256,
        "{} does not match the manifest's checksum: the stick is damaged or was modified",
        path.display()
    );
    let b = Bmap::parse(&bytes).with_context(|| format!("reading {}", path.display()))?;
    ensure!(
        b.image_size == node.image_size,
        "{} describes a {}-byte image, the manifest a {}-byte one",
        path.display(),
        b.image_size,
        node.image_size
    );
    Ok(b)
}

/// Where to find the things segments name: files below the ESP, partitions by PARTUUID.
pub trait Opener {
    fn file(&self, path: &str) -> Result<Box<dyn Read + Send>>;
    fn partition(&self, partuuid: &str) -> Result<File>;
}

/// The stick's ESP mounted at a folder; partitions under `<root>/dev/disk/by-partuuid`.
pub struct StickOpener<'a> {
    pub esp: &'a Path,
    pub root: &'a Path,
}

impl Opener for StickOpener<'_> {
    fn file(&self, path: &str) -> Result<Box<dyn Read + Send>> {
        ensure!(
            !path.split('/').any(|c| c == ".." || c.is_empty()),
            "bad segment path {path:?} in the manifest"
        );
        let p = self.esp.join(path);
        Ok(Box::new(
            File::open(&p).with_context(|| format!("opening {}", p.display()))?,
        ))
    }
    fn partition(&self, partuuid: &str) -> Result<File> {
        let p = self.root.join("dev/disk/by-partuuid").join(partuuid);
        File::open(&p).with_context(|| format!("opening the stick's partition {}", p.display()))
    }
}

/// A segment's bytes as a reader, with its expected length.
fn segment_reader(
    seg: &Segment,
    bmap: &Bmap,
    opener: &dyn Opener,
) -> Result<(Box<dyn Read + Send>, u64)> {
    match seg {
        Segment::File { path, zstd, length } => {
            let r = opener.file(path)?;
            let r: Box<dyn Read + Send> = if *zstd {
                Box::new(zstd::stream::read::Decoder::new(r).context("starting zstd")?)
            } else {
                r
            };
            Ok((Box::new(r.take(*length)), *length))
        }
        Segment::Partition {
            partuuid,
            image_offset,
            length,
        } => {
            let f = opener.partition(partuuid)?;
            let mut spans = Vec::new();
            for r in &bmap.ranges {
                let (o, l) = bmap.span(r);
                if o >= image_offset + length || o + l <= *image_offset {
                    continue;
                }
                ensure!(
                    o >= *image_offset && o + l <= image_offset + length,
                    "bmap range {}-{} straddles the edge of the stick partition segment",
                    r.first,
                    r.last
                );
                spans.push((o - image_offset, l));
            }
            let total = spans.iter().map(|s| s.1).sum();
            Ok((
                Box::new(SpanReader {
                    file: f,
                    spans,
                    i: 0,
                    pos: 0,
                }),
                total,
            ))
        }
        Segment::Image {
            path,
            zstd,
            image_offset,
            length,
            ..
        } => {
            let r = opener.file(path)?;
            let r: Box<dyn Read + Send> = if *zstd {
                Box::new(zstd::stream::read::Decoder::new(r).context("starting zstd")?)
            } else {
                r
            };
            let spans = spans_in(bmap, *image_offset, *length)?;
            let total = spans.iter().map(|s| s.1).sum();
            Ok((
                Box::new(ImageRanges {
                    inner: r,
                    spans,
                    i: 0,
                    pos: 0,
                    length: *length,
                    path: path.clone(),
                }),
                total,
            ))
        }
    }
}

/// The bmap's ranges inside image bytes `[at, at + length)`, relative to `at`.
fn spans_in(bmap: &Bmap, at: u64, length: u64) -> Result<Vec<(u64, u64)>> {
    let mut spans = Vec::new();
    for r in &bmap.ranges {
        let (o, l) = bmap.span(r);
        if o >= at + length || o + l <= at {
            continue;
        }
        ensure!(
            o >= at && o + l <= at + length,
            "bmap range {}-{} straddles the edge of a payload segment",
            r.first,
            r.last
        );
        spans.push((o - at, l));
    }
    Ok(spans)
}

/// Reads a whole image piece sequentially and yields only the given spans of it; after
/// the last span it reads the piece to its end, so the piece's own length (and, for a
/// network file, its pinned SHA-256 at end of file) is checked before the writer goes on.
struct ImageRanges {
    inner: Box<dyn Read + Send>,
    spans: Vec<(u64, u64)>,
    i: usize,
    /// Bytes of the piece consumed so far.
    pos: u64,
    length: u64,
    path: String,
}

impl ImageRanges {
    fn skip_to(&mut self, to: u64) -> io::Result<()> {
        let mut buf = [0u8; 64 << 10];
        while self.pos < to {
            let n = ((to - self.pos) as usize).min(buf.len());
            let got = self.inner.read(&mut buf[..n])?;
            if got == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "{} ends at byte {}, before its {} bytes",
                        self.path, self.pos, self.length
                    ),
                ));
            }
            self.pos += got as u64;
        }
        Ok(())
    }
}

impl Read for ImageRanges {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while let Some(&(off, len)) = self.spans.get(self.i) {
            if self.pos >= off + len {
                self.i += 1;
                continue;
            }
            self.skip_to(off)?;
            let n = buf.len().min((off + len - self.pos) as usize);
            let got = self.inner.read(&mut buf[..n])?;
            if got == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "{} ends at byte {}, before its {} bytes",
                        self.path, self.pos, self.length
                    ),
                ));
            }
            self.pos += got as u64;
            return Ok(got);
        }
        self.skip_to(self.length)?;
        let mut one = [0u8; 1];
        if self.inner.read(&mut one)? != 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} holds more than its {} bytes", self.path, self.length),
            ));
        }
        Ok(0)
    }
}

/// Reads the given `(offset, length)` spans of a file one after the other.
struct SpanReader {
    file: File,
    spans: Vec<(u64, u64)>,
    i: usize,
    pos: u64,
}

impl Read for SpanReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while let Some(&(off, len)) = self.spans.get(self.i) {
            if self.pos == len {
                self.i += 1;
                self.pos = 0;
                continue;
            }
            let n = buf.len().min((len - self.pos) as usize);
            let got = self.file.read_at(&mut buf[..n], off + self.pos)?;
            if got == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the stick partition ends before the image data",
                ));
            }
            self.pos += got as u64;
            return Ok(got);
        }
        Ok(0)
    }
}

/// The node's range stream: its segments chained, and its total length, which must be
/// the bmap's mapped bytes.
pub fn open_stream(
    node: &NodePayload,
    bmap: &Bmap,
    opener: &dyn Opener,
) -> Result<Box<dyn Read + Send>> {
    let mut chain: Box<dyn Read + Send> = Box::new(io::empty());
    let mut total = 0u64;
    for seg in &node.segments {
        let (r, len) = segment_reader(seg, bmap, opener)?;
        total += len;
        chain = Box::new(chain.chain(r));
    }
    if total != bmap.mapped_bytes() {
        bail!(
            "the manifest's segments for node {} hold {total} bytes, its bmap maps {}: the stick is inconsistent",
            node.node,
            bmap.mapped_bytes()
        );
    }
    Ok(chain)
}

#[cfg(test)]
mod tests {
    use super::super::write::tests::{bmap_and_stream, image};
    use super::*;
    use std::collections::BTreeMap;

    struct Files {
        files: BTreeMap<String, Vec<u8>>,
        part: std::path::PathBuf,
    }

    impl Opener for Files {
        fn file(&self, path: &str) -> Result<Box<dyn Read + Send>> {
            Ok(Box::new(io::Cursor::new(self.files[path].clone())))
        }
        fn partition(&self, _: &str) -> Result<File> {
            Ok(File::open(&self.part)?)
        }
    }

    #[test]
    fn head_file_root_partition_and_zstd_tail_make_the_stream() {
        let img = image(16 << 20, 21);
        let (b, stream) = bmap_and_stream(&img);
        // Split the image like the stick does: head (before 3 MiB) as a file, "root"
        // [3 MiB, 15 MiB) from a partition file, tail as a zstd file.
        let root_at = 3u64 << 20;
        let root_len = 12u64 << 20;
        let dir = tempfile::tempdir().unwrap();
        let part = dir.path().join("root.part");
        std::fs::write(&part, &img[root_at as usize..(root_at + root_len) as usize]).unwrap();
        let mut head = Vec::new();
        let mut tail = Vec::new();
        for r in &b.ranges {
            let (o, l) = b.span(r);
            let bytes = &img[o as usize..(o + l) as usize];
            if o + l <= root_at {
                head.extend_from_slice(bytes);
            } else if o >= root_at + root_len {
                tail.extend_from_slice(bytes);
            }
        }
        let opener = Files {
            files: [
                ("n/head".to_string(), head.clone()),
                (
                    "n/tail.zst".to_string(),
                    zstd::bulk::compress(&tail, 3).unwrap(),
                ),
            ]
            .into(),
            part,
        };
        let mut node = test_node(
            img.len() as u64,
            vec![
                Segment::File {
                    path: "n/head".into(),
                    zstd: false,
                    length: head.len() as u64,
                },
                Segment::Partition {
                    partuuid: "x".into(),
                    image_offset: root_at,
                    length: root_len,
                },
                Segment::File {
                    path: "n/tail.zst".into(),
                    zstd: true,
                    length: tail.len() as u64,
                },
            ],
        );
        let mut got = Vec::new();
        open_stream(&node, &b, &opener)
            .unwrap()
            .read_to_end(&mut got)
            .unwrap();
        assert!(got == stream, "the segments rebuild the range stream");
        node.segments.pop();
        let e = open_stream(&node, &b, &opener).err().unwrap();
        assert!(format!("{e:#}").contains("inconsistent"), "{e:#}");
    }

    /// A node payload with nothing but its image size and range stream.
    fn test_node(image_size: u64, segments: Vec<Segment>) -> NodePayload {
        NodePayload {
            node: "pve1".into(),
            key: "nodes[0].install-disk".into(),
            mac: None,
            install_disk: None,
            install_wipe: false,
            osd_disks: vec![],
            image_size,
            bmap: "n.bmap".into(),
            bmap_sha256: String::new(),
            disk_guid: String::new(),
            partition_guids: vec![],
            partition_labels: vec![],
            segments,
        }
    }

    #[test]
    fn whole_image_pieces_make_the_stream() {
        let img = image(16 << 20, 22);
        let (b, stream) = bmap_and_stream(&img);
        let cuts = [0u64, 3 << 20, 15 << 20, 16 << 20];
        let mut files = BTreeMap::new();
        let mut segments = Vec::new();
        for (i, w) in cuts.windows(2).enumerate() {
            let bytes = &img[w[0] as usize..w[1] as usize];
            let path = format!("p{i}.zst");
            files.insert(path.clone(), zstd::bulk::compress(bytes, 3).unwrap());
            segments.push(Segment::Image {
                path,
                zstd: true,
                image_offset: w[0],
                length: w[1] - w[0],
                sha256: String::new(),
            });
        }
        let opener = Files {
            files,
            part: std::path::PathBuf::from("/nonexistent"),
        };
        let node = test_node(img.len() as u64, segments);
        let mut got = Vec::new();
        open_stream(&node, &b, &opener)
            .unwrap()
            .read_to_end(&mut got)
            .unwrap();
        assert!(got == stream, "the pieces rebuild the range stream");
        // A piece longer than it says is refused at its end.
        let mut longer = img[(15 << 20) as usize..].to_vec();
        longer.extend_from_slice(&[0; 10]);
        let mut opener = opener;
        opener
            .files
            .insert("p2.zst".into(), zstd::bulk::compress(&longer, 3).unwrap());

        let mut got = Vec::new();
        let e = open_stream(&node, &b, &opener)
            .unwrap()
            .read_to_end(&mut got)
            .unwrap_err();
        assert!(e.to_string().contains("holds more than its"), "{e}");
    }

    #[test]
    fn manifest_round_trip_and_refusals() {
        let m = Manifest {
            format: MANIFEST_FORMAT,
            cluster: "minipc".into(),
            stick_disk_guid: "g".into(),
            after_install: "poweroff".into(),
            confirm_secs: 10,
            nodes: vec![],
        };
        let j = serde_json::to_vec(&m).unwrap();
        assert_eq!(Manifest::parse(&j).unwrap(), m);
        let mut bad = m.clone();
        bad.after_install = "halt".into();
        assert!(Manifest::parse(&serde_json::to_vec(&bad).unwrap()).is_err());
        bad.after_install = "reboot".into();
        bad.format = 99;
        let e = Manifest::parse(&serde_json::to_vec(&bad).unwrap()).unwrap_err();
        assert!(format!("{e:#}").contains("different hcikit versions"));
    }
}
