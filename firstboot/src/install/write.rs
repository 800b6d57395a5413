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
//!    batches (fdatasync, bypass or drop the cached pages, read, hash) on a second thread,
//!    so the read-back of one batch overlaps the write of the next; any failure there
//!    stops the writer, and step 3 waits for every check;
//! 3. the backup GPT at the end of the disk (moved there when the disk is larger than the
//!    image, with the root partition grown to fill the disk);
//! 4. the first MiB, read back, synced.

use super::bmap::Bmap;
use super::gpt::{self, Grown};
use anyhow::{anyhow, bail, ensure, Context, Result};
use sha2::{Digest, Sha256};
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Bytes below this offset are held back and written last.
pub const HEAD_LIMIT: u64 = 1 << 20;
/// Read-back happens after this many written bytes (and at the end).
const VERIFY_BATCH: u64 = 64 << 20;
const CHUNK: usize = 4 << 20;
/// Read-back request size: one `O_DIRECT` read this large keeps several of the disk's
/// largest requests in flight (one 4 MiB read at a time left the disk idle in between).
const READ_CHUNK: usize = 16 << 20;

/// A disk (or, in tests, a file) the writer writes and reads back.
pub trait Device {
    fn size(&self) -> u64;
    fn write_at(&mut self, buf: &[u8], offset: u64) -> Result<()>;
    /// Makes everything written so far durable.
    fn sync(&mut self) -> Result<()>;
    /// A second handle on the same disk that reads what the disk stored, not what the
    /// page cache kept of the writes. It is used on another thread while writing goes
    /// on, so the read-back of one batch overlaps the write of the next.
    fn reader(&self) -> Result<Box<dyn DeviceReader>>;
}

/// The read side of a [`Device`], movable to the read-back thread.
pub trait DeviceReader: Send {
    /// Makes everything written through the device so far durable (the writer hands a
    /// batch over only after its writes returned, so this covers the whole batch).
    fn sync(&mut self) -> Result<()>;
    /// Reads bytes as stored on the device, not as cached from the writes; only bytes a
    /// [`DeviceReader::sync`] or [`Device::sync`] covered.
    fn read_back(&mut self, buf: &mut [u8], offset: u64) -> Result<()>;
}

/// A block device or file. Read-back uses `O_DIRECT` where the device allows it and
/// otherwise drops the cached pages (`POSIX_FADV_DONTNEED`) after syncing, then reads.
pub struct FileDevice {
    file: File,
    direct: Option<File>,
    size: u64,
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
        // Opened now, while the exclusive handle is ours: the readers share it.
        let direct = OpenOptions::new()
            .read(true)
            .custom_flags(nix::fcntl::OFlag::O_DIRECT.bits())
            .open(path)
            .ok();
        Ok(FileDevice { file, direct, size })
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
            .with_context(|| format!("writing at byte {offset}"))?;
        // Starts writing these pages to the disk now, without waiting (for dirty pages,
        // POSIX_FADV_DONTNEED begins their writeback: mm/fadvise.c). The disk then stores
        // one batch while the read-back thread reads the one before, instead of doing
        // all of a batch's writing inside the fdatasync that precedes its read-back.
        let _ = nix::fcntl::posix_fadvise(
            std::os::fd::AsRawFd::as_raw_fd(&self.file),
            offset as i64,
            buf.len() as i64,
            nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED,
        );
        Ok(())
    }
    fn sync(&mut self) -> Result<()> {
        self.file.sync_data().context("syncing the disk")
    }
    fn reader(&self) -> Result<Box<dyn DeviceReader>> {
        // Duplicated descriptors: the same open file (and exclusive claim), positioned
        // reads only, so sharing the file offset does not matter.
        Ok(Box::new(FileReader {
            file: self
                .file
                .try_clone()
                .context("a read-back handle on the disk")?,
            direct: match &self.direct {
                Some(d) => Some(d.try_clone().context("a read-back handle on the disk")?),
                None => None,
            },
            size: self.size,
            align_buf: vec![0; READ_CHUNK + 2 * 4096],
        }))
    }
}

/// The read-back handle of a [`FileDevice`].
struct FileReader {
    file: File,
    direct: Option<File>,
    size: u64,
    align_buf: Vec<u8>,
}

impl DeviceReader for FileReader {
    fn sync(&mut self) -> Result<()> {
        // fdatasync acts on the file, not the descriptor: this flushes the writer's data.
        self.file.sync_data().context("syncing the disk")
    }
    fn read_back(&mut self, buf: &mut [u8], offset: u64) -> Result<()> {
        if let Some(d) = &self.direct {
            // O_DIRECT wants 4 KiB-aligned memory, offset and length. Image ranges are
            // whole 4 KiB blocks: those go straight into `buf` when it is aligned too.
            let aligned = |x: usize| x.is_multiple_of(4096);
            if aligned(buf.as_ptr() as usize)
                && aligned(offset as usize)
                && aligned(buf.len())
                && d.read_exact_at(buf, offset).is_ok()
            {
                return Ok(());
            }
            let start = offset / 4096 * 4096;
            let end = ((offset + buf.len() as u64).div_ceil(4096) * 4096).min(self.size);
            let len = (end - start) as usize;
            if len <= READ_CHUNK + 4096 {
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
        // Syncing again is cheap when the range is clean, and keeps DONTNEED from
        // skipping pages that are still dirty.
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

/// A stretch of the disk as written, in writing order: offset, length, and, when it ends
/// a checked stretch, the SHA-256 that everything since the previous such item must read
/// back as. A large range of the image is handed over chunk by chunk (its read-back
/// overlaps its own write) and sealed, with a zero-length item, once it matched the bmap.
type Item = (u64, u64, Option<[u8; 32]>);

/// Reads stretches back and checks them; the hash runs on across batches.
struct ReadBack {
    reader: Box<dyn DeviceReader>,
    /// `READ_CHUNK` bytes from `at`, 4 KiB-aligned so `O_DIRECT` reads need no copy.
    buf: Vec<u8>,
    at: usize,
    hash: Sha256,
    /// Where the stretch being hashed started.
    from: Option<u64>,
    verified: u64,
}

impl ReadBack {
    fn new(reader: Box<dyn DeviceReader>) -> ReadBack {
        let mut back = ReadBack {
            reader,
            buf: vec![0u8; READ_CHUNK + 4096],
            at: 0,
            hash: Sha256::new(),
            from: None,
            verified: 0,
        };
        back.at = back.buf.as_ptr().align_offset(4096);
        back
    }

    /// Syncs, then reads `items` back and checks every stretch they seal.
    fn check(&mut self, items: &[Item]) -> Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        self.reader.sync()?;
        for &(off, len, want) in items {
            let from = *self.from.get_or_insert(off);
            let mut pos = off;
            while pos < off + len {
                let n = ((off + len - pos) as usize).min(READ_CHUNK);
                let slot = &mut self.buf[self.at..self.at + n];
                self.reader.read_back(slot, pos)?;
                self.hash.update(&slot[..]);
                pos += n as u64;
            }
            if let Some(want) = want {
                let got: [u8; 32] = std::mem::take(&mut self.hash).finalize().into();
                self.from = None;
                if got != want {
                    bail!(
                        "read-back check failed at bytes {from}-{}: the disk did not store what was written (failing disk or cable?)",
                        off + len - 1
                    );
                }
                self.verified += off + len - from;
            }
        }
        Ok(())
    }
}

/// The read-back thread: checks the batches the writer hands over, in order, while the
/// writer goes on with the next. On a failure it raises `failed` (the writer stops at its
/// next chunk) and returns; dropping `batches` also wakes a writer waiting to hand over.
fn verifier(
    reader: Box<dyn DeviceReader>,
    batches: mpsc::Receiver<Vec<Item>>,
    failed: &AtomicBool,
) -> Result<u64> {
    let mut back = ReadBack::new(reader);
    for batch in batches {
        if let Err(e) = back.check(&batch) {
            failed.store(true, Ordering::Release);
            return Err(e);
        }
    }
    // A stretch left unsealed means the writer stopped on an error of its own, which it
    // reports; its bytes were never counted as verified.
    Ok(back.verified)
}

/// The writer's side of the pipeline: what was written since the last hand-over.
struct Batches<'a> {
    dev: &'a mut dyn Device,
    pending: Vec<Item>,
    bytes: u64,
    limit: u64,
    to_verifier: mpsc::SyncSender<Vec<Item>>,
    failed: &'a AtomicBool,
}

/// The writer's error when the read-back thread stopped; the thread's own error replaces it.
const VERIFIER_STOPPED: &str = "the read-back stopped";

impl Batches<'_> {
    /// Writes `buf` at `off` and queues it for read-back against its own hash.
    fn put(&mut self, buf: &[u8], off: u64) -> Result<()> {
        self.dev.write_at(buf, off)?;
        self.queue((off, buf.len() as u64, Some(Sha256::digest(buf).into())))
    }
    /// Queues a stretch for read-back.
    fn queue(&mut self, item: Item) -> Result<()> {
        self.bytes += item.1;
        self.pending.push(item);
        if self.bytes >= self.limit {
            self.hand_over()?;
        }
        Ok(())
    }
    /// Gives the pending stretches to the read-back thread. Blocks while it still has a
    /// batch queued, so the writer is at most two batches ahead of the checks.
    fn hand_over(&mut self) -> Result<()> {
        self.bytes = 0;
        if self.pending.is_empty() {
            return Ok(());
        }
        self.to_verifier
            .send(std::mem::take(&mut self.pending))
            .map_err(|_| anyhow!(VERIFIER_STOPPED))
    }
    fn stop_if_failed(&self) -> Result<()> {
        if self.failed.load(Ordering::Acquire) {
            bail!(VERIFIER_STOPPED);
        }
        Ok(())
    }
}

/// Executes `plan`: reads the bmap's ranges from `source` and writes them to `dev`.
pub fn write(
    bmap: &Bmap,
    source: &mut dyn Read,
    dev: &mut dyn Device,
    plan: &WritePlan,
    progress: &mut dyn FnMut(&Progress),
) -> Result<Stats> {
    write_in_batches(bmap, source, dev, plan, progress, VERIFY_BATCH)
}

fn write_in_batches(
    bmap: &Bmap,
    source: &mut dyn Read,
    dev: &mut dyn Device,
    plan: &WritePlan,
    progress: &mut dyn FnMut(&Progress),
    batch: u64,
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
    let mut back = ReadBack::new(dev.reader()?);
    let mut buf = vec![0u8; CHUNK];
    let zeros = vec![0u8; HEAD_LIMIT as usize];
    let mut erased = Vec::new();
    for &(off, len) in &plan.erase {
        dev.write_at(&zeros[..len as usize], off)?;
        stats.other_written += len;
        erased.push((
            off,
            len,
            Some(Sha256::digest(&zeros[..len as usize]).into()),
        ));
    }
    dev.sync()?;
    back.check(&erased)
        .context("checking the erased partition-table areas")?;

    let mut head = vec![0u8; HEAD_LIMIT.min(plan.image_size) as usize];
    let failed = AtomicBool::new(false);
    let verifier_reader = dev.reader()?;
    let (streamed, verified) = std::thread::scope(|s| {
        let (to_verifier, batches) = mpsc::sync_channel(1);
        let checks = s.spawn(|| verifier(verifier_reader, batches, &failed));
        let mut out = Batches {
            dev: &mut *dev,
            pending: Vec::new(),
            bytes: 0,
            limit: batch,
            to_verifier,
            failed: &failed,
        };
        let streamed = stream(
            bmap, source, &mut out, plan, &mut head, &mut buf, &mut stats, progress, start,
        );
        // Dropping the sender ends the read-back thread once it has checked the rest.
        drop(out);
        let verified = checks
            .join()
            .unwrap_or_else(|_| Err(anyhow!("the read-back thread panicked")));
        (streamed, verified)
    });
    // A failed read-back is why the writer stopped, if it stopped: report that first.
    stats.verified += verified.context("reading back the image data")?;
    let done = streamed?;
    progress(&Progress {
        stage: "verified",
        done,
        total: stats.mapped,
        elapsed: start.elapsed(),
    });

    // Both partition tables, strictly after everything else is on the disk and checked.
    let tail_at = plan.disk_size - plan.gpt.tail.len() as u64;
    dev.write_at(&plan.gpt.tail, tail_at)?;
    dev.sync()?;
    let tail = (
        tail_at,
        plan.gpt.tail.len() as u64,
        Some(Sha256::digest(&plan.gpt.tail).into()),
    );
    back.check(&[tail]).context("reading back the backup GPT")?;
    stats.other_written += plan.gpt.tail.len() as u64;

    head[..plan.gpt.head.len()].copy_from_slice(&plan.gpt.head);
    dev.write_at(&head, 0)?;
    dev.sync()?;
    let first = (0, head.len() as u64, Some(Sha256::digest(&head).into()));
    back.check(&[first]).context("reading back the first MiB")?;
    stats.other_written += plan.gpt.head.len() as u64;
    stats.data_written += head.len() as u64 - plan.gpt.head.len() as u64;
    dev.sync()?;
    stats.verified += back.verified;
    stats.elapsed = start.elapsed();
    progress(&Progress {
        stage: "done",
        done: stats.mapped,
        total: stats.mapped,
        elapsed: stats.elapsed,
    });
    Ok(stats)
}

/// Copies the bmap's ranges from `source` onto the disk, each hashed on the way in, and
/// hands everything written (the first MiB excepted: it goes to `head`) to the read-back
/// thread in batches. Returns the bytes taken from the source.
#[allow(clippy::too_many_arguments)]
fn stream(
    bmap: &Bmap,
    source: &mut dyn Read,
    out: &mut Batches,
    plan: &WritePlan,
    head: &mut [u8],
    buf: &mut [u8],
    stats: &mut Stats,
    progress: &mut dyn FnMut(&Progress),
    start: Instant,
) -> Result<u64> {
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
            out.stop_if_failed()?;
            let n = ((off + len - pos) as usize).min(buf.len());
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
                out.dev.write_at(chunk, pos)?;
                out.queue((pos, n as u64, None))?;
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
                    out.put(&chunk[i..(e - pos) as usize], p)?;
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
            // Only now, with the range proven to be the image's, does its read-back count.
            out.queue((off + len, 0, Some(got)))?;
        }
    }
    let mut rest = [0u8; 1];
    ensure!(
        source.read(&mut rest)? == 0,
        "the source holds more data than the bmap's ranges: it is not this image's payload"
    );
    out.hand_over()?;
    Ok(done)
}

#[cfg(test)]
pub mod tests {
    use super::super::bmap::{self, Range};
    use super::super::gpt;
    use super::*;
    use rand_chacha::ChaCha8Rng;
    use rand_core::{RngCore, SeedableRng};
    use std::sync::{Arc, Condvar, Mutex};

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

    /// A device in memory that records the order of writes and can fail on demand. Like a
    /// disk behind a page cache, its reader sees only what a sync made durable.
    pub struct MemDevice {
        disk: Arc<(Mutex<MemDisk>, Condvar)>,
    }

    #[derive(Default)]
    pub struct MemDisk {
        /// What the writes made (the page cache's view).
        pub bytes: Vec<u8>,
        /// What a sync made durable (what the reader sees).
        pub stored: Vec<u8>,
        dirty: Vec<(usize, usize)>,
        pub writes: Vec<(u64, u64)>,
        /// Corrupt what is stored at this offset (a lying disk).
        pub corrupt_at: Option<u64>,
        /// Reading back this offset fails (a disk that errors on read).
        pub fail_read_at: Option<u64>,
        /// Reads starting in `.0` wait (up to 10 s) until a write reached `.1`: proves the
        /// writer goes on while the read-back is busy.
        pub gate: Option<(std::ops::Range<u64>, u64)>,
        /// A read waited at the gate and was let through.
        pub gate_passed: bool,
    }

    impl MemDevice {
        pub fn new(bytes: Vec<u8>) -> MemDevice {
            MemDevice::with(bytes, |_| {})
        }
        pub fn with(bytes: Vec<u8>, set: impl FnOnce(&mut MemDisk)) -> MemDevice {
            let mut d = MemDisk {
                stored: bytes.clone(),
                bytes,
                ..Default::default()
            };
            set(&mut d);
            MemDevice {
                disk: Arc::new((Mutex::new(d), Condvar::new())),
            }
        }
        pub fn disk(&self) -> std::sync::MutexGuard<'_, MemDisk> {
            self.disk.0.lock().unwrap()
        }
    }

    impl MemDisk {
        fn sync(&mut self) {
            for (o, e) in std::mem::take(&mut self.dirty) {
                self.stored[o..e].copy_from_slice(&self.bytes[o..e]);
            }
        }
    }

    impl Device for MemDevice {
        fn size(&self) -> u64 {
            self.disk().bytes.len() as u64
        }
        fn write_at(&mut self, buf: &[u8], offset: u64) -> Result<()> {
            let mut d = self.disk();
            let o = offset as usize;
            d.bytes[o..o + buf.len()].copy_from_slice(buf);
            if let Some(c) = d.corrupt_at {
                if (offset..offset + buf.len() as u64).contains(&c) {
                    d.bytes[c as usize] ^= 0xff;
                }
            }
            d.dirty.push((o, o + buf.len()));
            d.writes.push((offset, buf.len() as u64));
            self.disk.1.notify_all();
            Ok(())
        }
        fn sync(&mut self) -> Result<()> {
            self.disk().sync();
            Ok(())
        }
        fn reader(&self) -> Result<Box<dyn DeviceReader>> {
            Ok(Box::new(MemReader {
                disk: self.disk.clone(),
            }))
        }
    }

    struct MemReader {
        disk: Arc<(Mutex<MemDisk>, Condvar)>,
    }

    impl DeviceReader for MemReader {
        fn sync(&mut self) -> Result<()> {
            self.disk.0.lock().unwrap().sync();
            Ok(())
        }
        fn read_back(&mut self, buf: &mut [u8], offset: u64) -> Result<()> {
            let (lock, cv) = &*self.disk;
            let mut d = lock.lock().unwrap();
            if let Some((held, reached)) = d.gate.clone() {
                if held.contains(&offset) {
                    let waited = cv
                        .wait_timeout_while(d, Duration::from_secs(10), |d| {
                            !d.writes.iter().any(|&(o, l)| o + l >= reached)
                        })
                        .unwrap();
                    ensure!(
                        !waited.1.timed_out(),
                        "the writer did not go on while the read-back waited"
                    );
                    d = waited.0;
                    d.gate_passed = true;
                }
            }
            if let Some(f) = d.fail_read_at {
                if (offset..offset + buf.len() as u64).contains(&f) {
                    bail!("I/O error reading back at byte {f}");
                }
            }
            let o = offset as usize;
            buf.copy_from_slice(&d.stored[o..o + buf.len()]);
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
        let mut dev = MemDevice::new(random(img.len(), 2));
        let p = plan(&img[..gpt::HEAD_BYTES], img.len() as u64, img.len() as u64).unwrap();
        let stats = write(&b, &mut stream.as_slice(), &mut dev, &p, &mut |_| {}).unwrap();
        let d = dev.disk();
        // Mapped blocks equal the image; holes keep whatever the disk held, except the
        // erased first and last MiB.
        for r in &b.ranges {
            let (o, l) = b.span(r);
            assert!(d.stored[o as usize..(o + l) as usize] == img[o as usize..(o + l) as usize]);
        }
        assert!(d.stored[..1 << 20] == img[..1 << 20]);
        assert_eq!(
            d.writes.last().unwrap(),
            &(0, 1 << 20),
            "the first MiB is written last"
        );
        assert!(d.writes[..d.writes.len() - 1]
            .iter()
            .skip(2)
            .all(|&(o, _)| o >= 1 << 20));
        assert_eq!(stats.mapped, b.mapped_bytes());
        assert!(stats.verified >= stats.data_written);
        assert!(gpt::parse(&d.stored).is_some());
    }

    #[test]
    fn larger_disk_gets_the_backup_at_its_end_and_a_grown_root() {
        let img = image(16 << 20, 3);
        let (b, stream) = bmap_and_stream(&img);
        let disk = 40 << 20;
        let mut dev = MemDevice::new(random(disk, 4));
        let p = plan(&img[..gpt::HEAD_BYTES], img.len() as u64, disk as u64).unwrap();
        write(&b, &mut stream.as_slice(), &mut dev, &p, &mut |_| {}).unwrap();
        let d = dev.disk();
        let g = gpt::parse(&d.stored).unwrap();
        assert_eq!(g.alternate_lba, disk as u64 / 512 - 1);
        assert!(gpt::backup_matches(&d.stored[disk - gpt::TAIL_BYTES..], &g));
        assert_eq!((g.partitions[1].last_lba + 1) * 512, 39 << 20);
        // The image's own backup GPT area was not written (it is inside the grown root).
        let old = img.len() - gpt::TAIL_BYTES;
        assert!(d
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
        let mut dev = MemDevice::new(random(img.len(), 6));
        let p = plan(&img[..gpt::HEAD_BYTES], img.len() as u64, img.len() as u64).unwrap();
        let e = write(&b, &mut stream.as_slice(), &mut dev, &p, &mut |_| {}).unwrap_err();
        let d = dev.disk();
        assert!(
            format!("{e:#}").contains("does not match the bmap"),
            "{e:#}"
        );
        assert!(
            d.stored[..1 << 20].iter().all(|&x| x == 0),
            "no partition table after a failure"
        );
        assert!(gpt::parse(&d.stored).is_none());
    }

    #[test]
    fn lying_disk_is_caught_by_the_read_back() {
        let img = image(16 << 20, 7);
        let (b, stream) = bmap_and_stream(&img);
        let mut dev = MemDevice::with(random(img.len(), 8), |d| d.corrupt_at = Some(9 << 20));
        let p = plan(&img[..gpt::HEAD_BYTES], img.len() as u64, img.len() as u64).unwrap();
        let e = write(&b, &mut stream.as_slice(), &mut dev, &p, &mut |_| {}).unwrap_err();
        let d = dev.disk();
        assert!(format!("{e:#}").contains("read-back check failed"), "{e:#}");
        assert!(gpt::parse(&d.stored).is_none());
    }

    #[test]
    fn short_or_long_sources_are_refused() {
        let img = image(16 << 20, 9);
        let (b, stream) = bmap_and_stream(&img);
        let p = plan(&img[..gpt::HEAD_BYTES], img.len() as u64, img.len() as u64).unwrap();
        let mut dev = MemDevice::new(vec![0; img.len()]);
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
        let mut dev = MemDevice::new(vec![0; img.len()]);
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

    /// Writes `img` with read-back batches of 64 KiB onto a random-filled disk set up by `set`.
    fn small_batches(img: &[u8], set: impl FnOnce(&mut MemDisk)) -> (MemDevice, Result<Stats>) {
        let (b, stream) = bmap_and_stream(img);
        let mut dev = MemDevice::with(random(img.len(), 13), set);
        let p = plan(&img[..gpt::HEAD_BYTES], img.len() as u64, img.len() as u64).unwrap();
        let r = write_in_batches(
            &b,
            &mut stream.as_slice(),
            &mut dev,
            &p,
            &mut |_| {},
            64 << 10,
        );
        (dev, r)
    }

    #[test]
    fn read_back_of_one_batch_overlaps_the_write_of_the_next() {
        let img = image(16 << 20, 14);
        // The data at 1 and 3 MiB is one batch; its read-back waits until the writer has
        // written the range at 9 MiB, which a writer that waits for its checks never does.
        let (dev, r) = small_batches(&img, |d| d.gate = Some(((1 << 20)..(4 << 20), 10 << 20)));
        let stats = r.unwrap();
        let d = dev.disk();
        assert!(d.gate_passed);
        let b = bmap_and_stream(&img).0;
        for r in &b.ranges {
            let (o, l) = b.span(r);
            assert!(d.stored[o as usize..(o + l) as usize] == img[o as usize..(o + l) as usize]);
        }
        assert!(stats.verified >= stats.data_written, "{stats:?}");
    }

    #[test]
    fn lying_disk_caught_while_the_next_batch_is_written_stops_before_the_gpt() {
        let img = image(16 << 20, 15);
        let (dev, r) = small_batches(&img, |d| {
            d.corrupt_at = Some((1 << 20) + 100);
            d.gate = Some(((1 << 20)..(4 << 20), 10 << 20));
        });
        let e = r.unwrap_err();
        assert!(
            format!("{e:#}").contains("read-back check failed at bytes 1048576-"),
            "{e:#}"
        );
        let d = dev.disk();
        assert!(d.gate_passed, "the failure came while the writer was ahead");
        assert!(d.stored[..1 << 20].iter().all(|&x| x == 0));
        assert!(gpt::parse(&d.stored).is_none());
        let n = img.len() as u64;
        let tables = |&&(o, l): &&(u64, u64)| o == 0 || o + l == n;
        assert_eq!(
            d.writes.iter().filter(tables).count(),
            2,
            "only the erase touched either partition-table area: {:?}",
            d.writes
        );
    }

    #[test]
    fn read_error_in_the_read_back_thread_stops_the_writer_before_the_gpt() {
        let img = image(16 << 20, 16);
        let (dev, r) = small_batches(&img, |d| d.fail_read_at = Some((3 << 20) + 8192));
        let e = r.unwrap_err();
        assert!(
            format!("{e:#}").contains("I/O error reading back at byte 3153920"),
            "{e:#}"
        );
        let d = dev.disk();
        assert!(d.stored[..1 << 20].iter().all(|&x| x == 0));
        assert!(gpt::parse(&d.stored).is_none());
        assert!(!d.writes.iter().skip(2).any(|&(o, _)| o == 0));
    }

    #[test]
    fn damaged_source_with_checks_in_flight_stops_before_the_partition_table() {
        let img = image(16 << 20, 17);
        let (b, mut stream) = bmap_and_stream(&img);
        let n = stream.len();
        stream[n - 1000] ^= 1;
        let mut dev = MemDevice::new(random(img.len(), 18));
        let p = plan(&img[..gpt::HEAD_BYTES], img.len() as u64, img.len() as u64).unwrap();
        let e = write_in_batches(
            &b,
            &mut stream.as_slice(),
            &mut dev,
            &p,
            &mut |_| {},
            64 << 10,
        )
        .unwrap_err();
        assert!(
            format!("{e:#}").contains("does not match the bmap"),
            "{e:#}"
        );
        let d = dev.disk();
        assert!(d.stored[..1 << 20].iter().all(|&x| x == 0));
        assert!(gpt::parse(&d.stored).is_none());
    }
}
