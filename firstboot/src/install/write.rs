//! The writer: copies the mapped ranges of a node image from a `Read` source onto a disk,
//! checks every range against the bmap's SHA-256 as it arrives, reads everything back from
//! the disk and checks it again, and writes the first MiB (protective MBR and primary GPT)
//! last, so an interrupted install never leaves a disk that looks bootable.
//!
//! The source yields the bytes of the bmap's ranges, in bmap order, concatenated (see
//! [`super::payload`]): a file on the stick, a zstd stream, or later an HTTP body. Nothing
//! here seeks in the source, so the same code streams from the network.
//!
//! Order on the disk:
//! 1. erase the first and the last MiB (old partition tables and their backups), synced:
//!    from here on the disk has no partition table until step 4;
//! 2. every mapped byte at or after 1 MiB, verified on the way in (bmap) and read back in
//!    batches (fdatasync, drop the cached pages, read, hash);
//! 3. the backup GPT at the end of the disk (moved there when the disk is larger than the
//!    image, with the root partition grown to fill the disk);
//! 4. the first MiB, read back, synced.

use super::bmap::Bmap;
use super::gpt::{self, Grown};
use anyhow::{bail, ensure, Context, Result};
use sha2::{Digest, Sha256};
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

/// Bytes below this offset are held back and written last.
pub const HEAD_LIMIT: u64 = 1 << 20;
/// Read-back happens after this many written bytes (and at the end).
const VERIFY_BATCH: u64 = 64 << 20;
const CHUNK: usize = 4 << 20;

/// A disk (or, in tests, a file) the writer writes and reads back.
pub trait Device {
    fn size(&self) -> u64;
    fn write_at(&mut self, buf: &[u8], offset: u64) -> Result<()>;
    /// Makes everything written so far durable.
    fn sync(&mut self) -> Result<()>;
    /// Reads bytes as stored on the device, not as cached from the writes.
    fn read_back(&mut self, buf: &mut [u8], offset: u64) -> Result<()>;
}

/// A block device or file. Read-back uses `O_DIRECT` where the device allows it and
/// otherwise drops the cached pages (`POSIX_FADV_DONTNEED`) after syncing, then reads.
pub struct FileDevice {
    file: File,
    direct: Option<File>,
    size: u64,
    align_buf: Vec<u8>,
}

impl FileDevice {
    /// Opens a disk for writing; a block device exclusively (`O_EXCL`: the kernel refuses
    /// while anything has it mounted or held, and keeps others from mounting it meanwhile).
    pub fn open(path: &Path) -> Result<FileDevice> {
        use std::os::unix::fs::FileTypeExt;
        let block = std::fs::metadata(path)
            .with_context(|| format!("{}", path.display()))?
            .file_type()
            .is_block_device();
        let mut o = OpenOptions::new();
        o.read(true).write(true);
        if block {
            o.custom_flags(nix::fcntl::OFlag::O_EXCL.bits());
        }
        let file = o.open(path).with_context(|| {
            format!(
                "opening {} for writing (busy: mounted or held?); nothing was written",
                path.display()
            )
        })?;
        let size = device_size(&file).with_context(|| format!("size of {}", path.display()))?;
        let direct = OpenOptions::new()
            .read(true)
            .custom_flags(nix::fcntl::OFlag::O_DIRECT.bits())
            .open(path)
            .ok();
        Ok(FileDevice {
            file,
            direct,
            size,
            align_buf: vec![0; CHUNK + 2 * 4096],
        })
    }
}

/// Size of a file or block device (seeking to the end works for both).
pub fn device_size(f: &File) -> Result<u64> {
    use std::io::{Seek, SeekFrom};
    let mut f = f.try_clone()?;
    Ok(f.seek(SeekFrom::End(0))?)
}

impl Device for FileDevice {
    fn size(&self) -> u64 {
        self.size
    }
    fn write_at(&mut self, buf: &[u8], offset: u64) -> Result<()> {
        ensure!(
            offset + buf.len() as u64 <= self.size,
            "write past the end of the disk at {offset}"
        );
        self.file
            .write_all_at(buf, offset)
            .with_context(|| format!("writing at byte {offset}"))
    }
    fn sync(&mut self) -> Result<()> {
        self.file.sync_data().context("syncing the disk")
    }
    fn read_back(&mut self, buf: &mut [u8], offset: u64) -> Result<()> {
        if let Some(d) = &self.direct {
            // O_DIRECT wants 4 KiB-aligned memory, offset and length (at most).
            let start = offset / 4096 * 4096;
            let end = ((offset + buf.len() as u64).div_ceil(4096) * 4096).min(self.size);
            let len = (end - start) as usize;
            if len <= CHUNK + 4096 {
                let a = self.align_buf.as_ptr().align_offset(4096);
                let slot = &mut self.align_buf[a..a + len];
                if d.read_exact_at(slot, start).is_ok() {
                    let from = (offset - start) as usize;
                    buf.copy_from_slice(&slot[from..from + buf.len()]);
                    return Ok(());
                }
            }
            // A device that refuses these reads (tmpfs, odd block sizes) takes the other way.
            self.direct = None;
        }
        self.file.sync_data().context("syncing before read-back")?;
        let _ = nix::fcntl::posix_fadvise(
            std::os::fd::AsRawFd::as_raw_fd(&self.file),
            offset as i64,
            buf.len() as i64,
            nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED,
        );
        self.file
            .read_exact_at(buf, offset)
            .with_context(|| format!("reading back at byte {offset}"))
    }
}

/// What the progress display shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    pub stage: &'static str,
    pub done: u64,
    pub total: u64,
    pub elapsed: Duration,
}

impl Progress {
    pub fn percent(&self) -> f64 {
        if self.total == 0 {
            100.0
        } else {
            self.done as f64 * 100.0 / self.total as f64
        }
    }
    pub fn mb_per_s(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s <= 0.0 {
            0.0
        } else {
            self.done as f64 / 1e6 / s
        }
    }
    /// `writing  42.0 %  312 / 743 MB  55.1 MB/s`.
    pub fn line(&self) -> String {
        format!(
            "{:<9} {:5.1} %  {} / {} MB  {:.1} MB/s",
            self.stage,
            self.percent(),
            self.done / 1_000_000,
            self.total / 1_000_000,
            self.mb_per_s()
        )
    }
}

/// What was done, for the log and the measurements.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Mapped bytes of the image (what the bmap lists).
    pub mapped: u64,
    /// Bytes of image data written to the disk.
    pub data_written: u64,
    /// Bytes of zeros and rewritten partition table written besides.
    pub other_written: u64,
    /// Bytes read back and checked.
    pub verified: u64,
    pub elapsed: Duration,
}

/// The computed layout of the write (pure): what goes where besides the image's ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WritePlan {
    pub image_size: u64,
    pub disk_size: u64,
    /// Zeroed first: old partition tables at both ends.
    pub erase: Vec<(u64, u64)>,
    /// The image's backup GPT area, replaced by `gpt.tail` at the disk's end.
    pub skip: (u64, u64),
    pub gpt: Grown,
}

/// Plans the write of an image whose first 34 sectors are `image_head` onto a disk of
/// `disk_size` bytes.
pub fn plan(image_head: &[u8], image_size: u64, disk_size: u64) -> Result<WritePlan> {
    let gpt = gpt::grow(image_head, image_size, disk_size)?;
    let mib = HEAD_LIMIT.min(disk_size);
    Ok(WritePlan {
        image_size,
        disk_size,
        erase: vec![(0, mib), (disk_size - mib, mib)],
        skip: (image_size - gpt::TAIL_BYTES as u64, gpt::TAIL_BYTES as u64),
        gpt,
    })
}

/// Bytes written since the last read-back, to check in the next batch.
struct Pending {
    items: Vec<(u64, u64, [u8; 32])>,
    bytes: u64,
}

fn verify(dev: &mut dyn Device, pending: &mut Pending, stats: &mut Stats) -> Result<()> {
    if pending.items.is_empty() {
        return Ok(());
    }
    dev.sync()?;
    let mut buf = vec![0u8; CHUNK];
    for (off, len, want) in pending.items.drain(..) {
        let mut h = Sha256::new();
        let mut pos = off;
        while pos < off + len {
            let n = ((off + len - pos) as usize).min(CHUNK);
            dev.read_back(&mut buf[..n], pos)?;
            h.update(&buf[..n]);
            pos += n as u64;
        }
        let got: [u8; 32] = h.finalize().into();
        if got != want {
            bail!(
                "read-back check failed at bytes {off}-{}: the disk did not store what was written (failing disk or cable?)",
                off + len - 1
            );
        }
        stats.verified += len;
    }
    pending.bytes = 0;
    Ok(())
}

fn put(
    dev: &mut dyn Device,
    pending: &mut Pending,
    stats: &mut Stats,
    buf: &[u8],
    off: u64,
) -> Result<()> {
    dev.write_at(buf, off)?;
    pending
        .items
        .push((off, buf.len() as u64, Sha256::digest(buf).into()));
    pending.bytes += buf.len() as u64;
    if pending.bytes >= VERIFY_BATCH {
        verify(dev, pending, stats)?;
    }
    Ok(())
}

/// Executes `plan`: reads the bmap's ranges from `source` and writes them to `dev`.
pub fn write(
    bmap: &Bmap,
    source: &mut dyn Read,
    dev: &mut dyn Device,
    plan: &WritePlan,
    progress: &mut dyn FnMut(&Progress),
) -> Result<Stats> {
    ensure!(
        bmap.image_size == plan.image_size,
        "the bmap describes a {}-byte image, the plan a {}-byte one",
        bmap.image_size,
        plan.image_size
    );
    ensure!(
        dev.size() == plan.disk_size,
        "the disk changed size since the plan was made"
    );
    let start = Instant::now();
    let mut stats = Stats {
        mapped: bmap.mapped_bytes(),
        ..Default::default()
    };
    let mut pending = Pending {
        items: Vec::new(),
        bytes: 0,
    };
    let zeros = vec![0u8; HEAD_LIMIT as usize];
    for &(off, len) in &plan.erase {
        dev.write_at(&zeros[..len as usize], off)?;
        stats.other_written += len;
    }
    dev.sync()?;
    for &(off, len) in &plan.erase {
        pending
            .items
            .push((off, len, Sha256::digest(&zeros[..len as usize]).into()));
    }
    verify(dev, &mut pending, &mut stats).context("checking the erased partition-table areas")?;

    let mut head = vec![0u8; HEAD_LIMIT.min(plan.image_size) as usize];
    let mut buf = vec![0u8; CHUNK];
    let mut last_report = Instant::now();
    let mut done = 0u64;
    let (skip_at, skip_len) = plan.skip;
    for r in &bmap.ranges {
        let (off, len) = bmap.span(r);
        // Most ranges go to the disk unchanged: their read-back is checked against the
        // bmap's own checksum, so each byte is hashed once on the way in and once back.
        let whole = off >= HEAD_LIMIT && (off + len <= skip_at || off >= skip_at + skip_len);
        let mut h = Sha256::new();
        let mut pos = off;
        while pos < off + len {
            let n = ((off + len - pos) as usize).min(CHUNK);
            let chunk = &mut buf[..n];
            source.read_exact(chunk).with_context(|| {
                format!(
                    "reading the image data for blocks {}-{} from the source",
                    r.first, r.last
                )
            })?;
            h.update(&chunk[..]);
            // Split the chunk: [pos, HEAD_LIMIT) is held back, the old backup GPT area is
            // skipped, the rest goes to the disk now.
            let mut p = pos;
            let end = pos + n as u64;
            if whole {
                dev.write_at(chunk, pos)?;
                stats.data_written += n as u64;
                p = end;
            }
            while p < end {
                let i = (p - pos) as usize;
                if p < HEAD_LIMIT {
                    let e = end.min(HEAD_LIMIT);
                    head[p as usize..e as usize].copy_from_slice(&chunk[i..(e - pos) as usize]);
                    p = e;
                } else if p >= skip_at && p < skip_at + skip_len {
                    p = end.min(skip_at + skip_len);
                } else {
                    let e = if p < skip_at { end.min(skip_at) } else { end };
                    put(
                        dev,
                        &mut pending,
                        &mut stats,
                        &chunk[i..(e - pos) as usize],
                        p,
                    )?;
                    stats.data_written += e - p;
                    p = e;
                }
            }
            pos = end;
            done += n as u64;
            if last_report.elapsed() >= Duration::from_millis(500) {
                last_report = Instant::now();
                progress(&Progress {
                    stage: "writing",
                    done,
                    total: stats.mapped,
                    elapsed: start.elapsed(),
                });
            }
        }
        let got: [u8; 32] = h.finalize().into();
        if got != r.sha256 {
            bail!(
                "the image data for blocks {}-{} does not match the bmap's checksum: the installer medium is damaged or was modified. The disk has no partition table now and will not boot",
                r.first,
                r.last
            );
        }
        if whole {
            pending.items.push((off, len, got));
            pending.bytes += len;
            if pending.bytes >= VERIFY_BATCH {
                verify(dev, &mut pending, &mut stats)?;
            }
        }
    }
    let mut rest = [0u8; 1];
    ensure!(
        source.read(&mut rest)? == 0,
        "the source holds more data than the bmap's ranges: it is not this image's payload"
    );
    verify(dev, &mut pending, &mut stats).context("reading back the image data")?;
    progress(&Progress {
        stage: "verified",
        done,
        total: stats.mapped,
        elapsed: start.elapsed(),
    });

    let tail_at = plan.disk_size - plan.gpt.tail.len() as u64;
    put(dev, &mut pending, &mut stats, &plan.gpt.tail, tail_at)?;
    stats.other_written += plan.gpt.tail.len() as u64;
    verify(dev, &mut pending, &mut stats).context("reading back the backup GPT")?;

    head[..plan.gpt.head.len()].copy_from_slice(&plan.gpt.head);
    put(dev, &mut pending, &mut stats, &head, 0)?;
    stats.other_written += plan.gpt.head.len() as u64;
    stats.data_written += head.len() as u64 - plan.gpt.head.len() as u64;
    verify(dev, &mut pending, &mut stats).context("reading back the first MiB")?;
    dev.sync()?;
    stats.elapsed = start.elapsed();
    progress(&Progress {
        stage: "done",
        done: stats.mapped,
        total: stats.mapped,
        elapsed: stats.elapsed,
    });
    Ok(stats)
}

#[cfg(test)]
pub mod tests {
    use super::super::bmap::{self, Range};
    use super::super::gpt;
    use super::*;
    use rand_chacha::ChaCha8Rng;
    use rand_core::{RngCore, SeedableRng};

    /// A test image: GPT head, some ESP and root data with holes, backup GPT at its end.
    pub fn image(size: u64, seed: u64) -> Vec<u8> {
        let mut img = vec![0u8; size as usize];
        let (head, tail) = gpt::tests::image_head(size, 2, [9; 16]);
        img[..head.len()].copy_from_slice(&head);
        let n = img.len();
        img[n - tail.len()..].copy_from_slice(&tail);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        for (at, len) in [
            (1 << 20, 12288),
            ((3 << 20) + 4096, 200_000),
            ((9 << 20), 1 << 20),
        ] {
            rng.fill_bytes(&mut img[at..at + len]);
        }
        img
    }

    /// The bmap and range stream of an image: non-zero 4 KiB blocks.
    pub fn bmap_and_stream(img: &[u8]) -> (Bmap, Vec<u8>) {
        let bs = 4096usize;
        let mut ranges: Vec<Range> = Vec::new();
        let mut stream = Vec::new();
        let blocks = img.len().div_ceil(bs);
        let mut i = 0;
        while i < blocks {
            let nz = |i: usize| {
                img[i * bs..((i + 1) * bs).min(img.len())]
                    .iter()
                    .any(|&b| b != 0)
            };
            if !nz(i) {
                i += 1;
                continue;
            }
            let first = i;
            while i < blocks && nz(i) {
                i += 1;
            }
            let bytes = &img[first * bs..(i * bs).min(img.len())];
            stream.extend_from_slice(bytes);
            ranges.push(Range {
                first: first as u64,
                last: i as u64 - 1,
                sha256: Sha256::digest(bytes).into(),
            });
        }
        let xml = bmap::to_xml(img.len() as u64, bs as u64, &ranges);
        (Bmap::parse(xml.as_bytes()).unwrap(), stream)
    }

    /// A device in memory that records the order of writes and can fail on demand.
    pub struct MemDevice {
        pub bytes: Vec<u8>,
        pub writes: Vec<(u64, u64)>,
        /// Corrupt what is stored at this offset (a lying disk).
        pub corrupt_at: Option<u64>,
    }

    impl Device for MemDevice {
        fn size(&self) -> u64 {
            self.bytes.len() as u64
        }
        fn write_at(&mut self, buf: &[u8], offset: u64) -> Result<()> {
            let o = offset as usize;
            self.bytes[o..o + buf.len()].copy_from_slice(buf);
            if let Some(c) = self.corrupt_at {
                if (offset..offset + buf.len() as u64).contains(&c) {
                    self.bytes[c as usize] ^= 0xff;
                }
            }
            self.writes.push((offset, buf.len() as u64));
            Ok(())
        }
        fn sync(&mut self) -> Result<()> {
            Ok(())
        }
        fn read_back(&mut self, buf: &mut [u8], offset: u64) -> Result<()> {
            let o = offset as usize;
            buf.copy_from_slice(&self.bytes[o..o + buf.len()]);
            Ok(())
        }
    }

    fn random(len: usize, seed: u64) -> Vec<u8> {
        let mut v = vec![0u8; len];
        ChaCha8Rng::seed_from_u64(seed).fill_bytes(&mut v);
        v
    }

    #[test]
    fn same_size_disk_gets_the_image_exactly_first_mib_last() {
        let img = image(16 << 20, 1);
        let (b, stream) = bmap_and_stream(&img);
        let mut dev = MemDevice {
            bytes: random(img.len(), 2),
            writes: vec![],
            corrupt_at: None,
        };
        let p = plan(&img[..gpt::HEAD_BYTES], img.len() as u64, img.len() as u64).unwrap();
        let stats = write(&b, &mut stream.as_slice(), &mut dev, &p, &mut |_| {}).unwrap();
        // Mapped blocks equal the image; holes keep whatever the disk held, except the
        // erased first and last MiB.
        for r in &b.ranges {
            let (o, l) = b.span(r);
            assert!(dev.bytes[o as usize..(o + l) as usize] == img[o as usize..(o + l) as usize]);
        }
        assert!(dev.bytes[..1 << 20] == img[..1 << 20]);
        assert_eq!(
            dev.writes.last().unwrap(),
            &(0, 1 << 20),
            "the first MiB is written last"
        );
        assert!(dev.writes[..dev.writes.len() - 1]
            .iter()
            .skip(2)
            .all(|&(o, _)| o >= 1 << 20));
        assert_eq!(stats.mapped, b.mapped_bytes());
        assert!(stats.verified >= stats.data_written);
        assert!(gpt::parse(&dev.bytes).is_some());
    }

    #[test]
    fn larger_disk_gets_the_backup_at_its_end_and_a_grown_root() {
        let img = image(16 << 20, 3);
        let (b, stream) = bmap_and_stream(&img);
        let disk = 40 << 20;
        let mut dev = MemDevice {
            bytes: random(disk, 4),
            writes: vec![],
            corrupt_at: None,
        };
        let p = plan(&img[..gpt::HEAD_BYTES], img.len() as u64, disk as u64).unwrap();
        write(&b, &mut stream.as_slice(), &mut dev, &p, &mut |_| {}).unwrap();
        let g = gpt::parse(&dev.bytes).unwrap();
        assert_eq!(g.alternate_lba, disk as u64 / 512 - 1);
        assert!(gpt::backup_matches(
            &dev.bytes[disk - gpt::TAIL_BYTES..],
            &g
        ));
        assert_eq!((g.partitions[1].last_lba + 1) * 512, 39 << 20);
        // The image's own backup GPT area was not written (it is inside the grown root).
        let old = img.len() - gpt::TAIL_BYTES;
        assert!(dev
            .writes
            .iter()
            .all(|&(o, l)| o + l <= old as u64 || o >= img.len() as u64));
    }

    #[test]
    fn damaged_source_stops_before_the_partition_table() {
        let img = image(16 << 20, 5);
        let (b, mut stream) = bmap_and_stream(&img);
        let n = stream.len();
        stream[n / 2] ^= 1;
        let mut dev = MemDevice {
            bytes: random(img.len(), 6),
            writes: vec![],
            corrupt_at: None,
        };
        let p = plan(&img[..gpt::HEAD_BYTES], img.len() as u64, img.len() as u64).unwrap();
        let e = write(&b, &mut stream.as_slice(), &mut dev, &p, &mut |_| {}).unwrap_err();
        assert!(
            format!("{e:#}").contains("does not match the bmap"),
            "{e:#}"
        );
        assert!(
            dev.bytes[..1 << 20].iter().all(|&x| x == 0),
            "no partition table after a failure"
        );
        assert!(gpt::parse(&dev.bytes).is_none());
    }

    #[test]
    fn lying_disk_is_caught_by_the_read_back() {
        let img = image(16 << 20, 7);
        let (b, stream) = bmap_and_stream(&img);
        let mut dev = MemDevice {
            bytes: random(img.len(), 8),
            writes: vec![],
            corrupt_at: Some(9 << 20),
        };
        let p = plan(&img[..gpt::HEAD_BYTES], img.len() as u64, img.len() as u64).unwrap();
        let e = write(&b, &mut stream.as_slice(), &mut dev, &p, &mut |_| {}).unwrap_err();
        assert!(format!("{e:#}").contains("read-back check failed"), "{e:#}");
        assert!(gpt::parse(&dev.bytes).is_none());
    }

    #[test]
    fn short_or_long_sources_are_refused() {
        let img = image(16 << 20, 9);
        let (b, stream) = bmap_and_stream(&img);
        let p = plan(&img[..gpt::HEAD_BYTES], img.len() as u64, img.len() as u64).unwrap();
        let mut dev = MemDevice {
            bytes: vec![0; img.len()],
            writes: vec![],
            corrupt_at: None,
        };
        assert!(write(
            &b,
            &mut &stream[..stream.len() - 1],
            &mut dev,
            &p,
            &mut |_| {}
        )
        .is_err());
        let mut long = stream.clone();
        long.push(1);
        let mut dev = MemDevice {
            bytes: vec![0; img.len()],
            writes: vec![],
            corrupt_at: None,
        };
        assert!(write(&b, &mut long.as_slice(), &mut dev, &p, &mut |_| {}).is_err());
    }

    #[test]
    fn sparse_file_device_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk");
        let img = image(16 << 20, 11);
        let (b, stream) = bmap_and_stream(&img);
        let f = File::create(&path).unwrap();
        f.set_len(24 << 20).unwrap();
        f.write_all_at(&random(1 << 20, 12), 0).unwrap();
        drop(f);
        let mut dev = FileDevice::open(&path).unwrap();
        let p = plan(&img[..gpt::HEAD_BYTES], img.len() as u64, dev.size()).unwrap();
        let mut lines = Vec::new();
        let stats = write(&b, &mut stream.as_slice(), &mut dev, &p, &mut |pr| {
            lines.push(pr.line())
        })
        .unwrap();
        let on_disk = std::fs::read(&path).unwrap();
        assert!(on_disk[gpt::HEAD_BYTES..1 << 20] == img[gpt::HEAD_BYTES..1 << 20]);
        assert!(on_disk[9 << 20..10 << 20] == img[9 << 20..10 << 20]);
        let g = gpt::parse(&on_disk).unwrap();
        assert_eq!(g.alternate_lba, (24 << 20) / 512 - 1);
        assert!(lines.last().unwrap().starts_with("done"), "{lines:?}");
        assert_eq!(stats.mapped, b.mapped_bytes());
    }
}
