//! Writing an image to a disk: only the blocks its bmap lists, then every written range
//! read back from the disk and checked against its SHA-256.
//!
//! [`prepare`] does every check that can refuse (image, bmap, target, sizes, "is it in
//! use") without writing a byte; [`Prepared::write`] then copies and verifies. The layout
//! of the copy ([`Extent`]s) is computed up front from the bmap, so the writer only
//! executes it.
//!
//! Submodules: [`bmap`] parses and checks bmap files; [`device`] looks at the target
//! (sysfs, mountinfo, swaps).

pub mod bmap;
pub mod device;

use crate::error::InputError;
use crate::progress::Progress;
use crate::units::{human_bytes, is_zstd, short_bytes};
use anyhow::{Context, Result};
use bmap::Bmap;
use device::{parse_mountinfo, parse_swaps, DevNum, MountEntry, Sysfs};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Copy buffer: large enough for sequential speed, small enough to stay cheap.
const CHUNK: usize = 1 << 20;
/// Without a bmap the image is copied and verified in pieces of this size, so a verify
/// failure still names a region.
const NO_BMAP_PIECE: u64 = 64 << 20;

/// What `hcikit flash` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub image: PathBuf,
    pub device: PathBuf,
    /// The bmap; by default looked for next to the image (see [`bmap_candidates`]).
    pub bmap: Option<PathBuf>,
    /// Write every byte of the image, holes included.
    pub no_bmap: bool,
    /// Accept a regular file as the target (tests, or preparing an image file).
    pub allow_file: bool,
}

/// One stretch of the image to copy and what its bytes must hash to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extent {
    pub offset: u64,
    pub len: u64,
    /// From the bmap; without one, filled in with the hash of what was written.
    pub sha256: Option<[u8; 32]>,
    /// Names the stretch in messages: `blocks 1000-1002 (bytes 4096000-4108287)`.
    pub label: String,
}

/// The extents a bmap asks to copy, in image order.
pub fn extents_from_bmap(b: &Bmap) -> Vec<Extent> {
    b.ranges
        .iter()
        .map(|r| {
            let (offset, len) = b.byte_span(r);
            let blocks = if r.first == r.last {
                format!("block {}", r.first)
            } else {
                format!("blocks {}-{}", r.first, r.last)
            };
            Extent {
                offset,
                len,
                sha256: r.sha256,
                label: format!("{blocks} (bytes {}-{})", offset, offset + len - 1),
            }
        })
        .collect()
}

/// The whole image in fixed pieces, for `--no-bmap`.
pub fn whole_image_extents(size: u64) -> Vec<Extent> {
    (0..size.div_ceil(NO_BMAP_PIECE))
        .map(|i| {
            let offset = i * NO_BMAP_PIECE;
            let len = NO_BMAP_PIECE.min(size - offset);
            Extent {
                offset,
                len,
                sha256: None,
                label: format!("bytes {}-{}", offset, offset + len - 1),
            }
        })
        .collect()
}

/// Where a bmap is looked for: `IMAGE.bmap`, and for `x.img.zst` also `x.img.bmap`
/// (`bmaptool create` runs on the raw image, so its name has no `.zst`).
pub fn bmap_candidates(image: &Path) -> Vec<PathBuf> {
    let mut v = vec![with_suffix(image, ".bmap")];
    let name = image.to_string_lossy();
    if let Some(raw) = name.strip_suffix(".zst") {
        v.push(PathBuf::from(format!("{raw}.bmap")));
    }
    v
}

fn with_suffix(p: &Path, suffix: &str) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compression {
    None,
    Zstd,
}

/// The target as found: path, usable size, a human description.
#[derive(Debug)]
pub struct Target {
    pub path: PathBuf,
    pub size: u64,
    /// `sdb, ATA Samsung SSD 870, 931.5 GiB (…)` or `regular file, …`.
    pub description: String,
    pub is_block_device: bool,
    file: File,
}

/// The block-device environment the safety checks look at (sysfs, mounts, swaps, the
/// root device); [`BlockEnv::current`] reads the running system's.
#[derive(Debug, Clone)]
pub struct BlockEnv {
    pub sysfs: Sysfs,
    pub mounts: Vec<MountEntry>,
    pub swaps: Vec<String>,
    /// `st_dev` of `/`.
    pub root_dev: Option<DevNum>,
}

impl BlockEnv {
    pub fn current() -> Result<BlockEnv> {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
            .context("reading /proc/self/mountinfo")?;
        // No swap support in the kernel means no /proc/swaps and nothing swapped on.
        let swaps = std::fs::read_to_string("/proc/swaps").unwrap_or_default();
        let root_dev = std::fs::metadata("/").ok().map(|m| devnum(m.dev()));
        Ok(BlockEnv {
            sysfs: Sysfs::default(),
            mounts: parse_mountinfo(&mountinfo),
            swaps: parse_swaps(&swaps),
            root_dev,
        })
    }
}

fn devnum(dev: u64) -> DevNum {
    // Major and minor numbers are 32-bit in Linux's dev_t encoding.
    (
        nix::sys::stat::major(dev) as u32,
        nix::sys::stat::minor(dev) as u32,
    )
}

/// `rdev` of a path when it is a block device (mount sources, swap files).
fn block_rdev(path: &str) -> Option<DevNum> {
    let m = std::fs::metadata(path).ok()?;
    m.file_type().is_block_device().then(|| devnum(m.rdev()))
}

/// Why a block device whose stack (itself, partitions, holders) has the device numbers
/// `busy` must not be written, if it must not. Pure: the caller resolves mount and swap
/// sources to device numbers.
pub fn in_use_reason(
    device: &str,
    busy: &BTreeSet<DevNum>,
    mounts: &[(MountEntry, Option<DevNum>)],
    swaps: &[(String, Option<DevNum>)],
    root_dev: Option<DevNum>,
) -> Option<String> {
    let hit = |m: &(MountEntry, Option<DevNum>)| {
        busy.contains(&m.0.dev) || m.1.is_some_and(|d| busy.contains(&d))
    };
    let on_it: Vec<&MountEntry> = mounts.iter().filter(|m| hit(m)).map(|m| &m.0).collect();
    if root_dev.is_some_and(|d| busy.contains(&d)) || on_it.iter().any(|m| m.mount_point == "/") {
        return Some(format!(
            "{device} holds the running system's root filesystem (/); refusing to overwrite it"
        ));
    }
    if let Some(first) = on_it.first() {
        let more = match on_it.len() - 1 {
            0 => String::new(),
            n => format!(" and {n} more mount{}", if n == 1 { "" } else { "s" }),
        };
        return Some(format!(
            "{device} is in use: {} is mounted on {}{more}; unmount it first",
            first.source, first.mount_point
        ));
    }
    if let Some((path, _)) = swaps
        .iter()
        .find(|s| s.1.is_some_and(|d| busy.contains(&d)))
    {
        return Some(format!(
            "{device} is in use: {path} is active swap; run `swapoff {path}` first"
        ));
    }
    None
}

/// Opens and checks the target: a whole, unused disk, or a regular file with `allow_file`.
pub fn open_target(path: &Path, allow_file: bool, env: &BlockEnv) -> Result<Target> {
    let shown = path.display();
    let meta = std::fs::metadata(path)
        .map_err(|e| InputError::new(format!("cannot use {shown} as the target: {e}")))?;
    let ft = meta.file_type();
    if ft.is_block_device() {
        let dev = devnum(meta.rdev());
        let sys = &env.sysfs;
        let name = sys.name_of(dev).ok_or_else(|| {
            InputError::new(format!(
                "{shown} is block device {}:{} but sysfs does not know it",
                dev.0, dev.1
            ))
        })?;
        if sys.is_partition(&name) {
            let disk = sys.parent_disk(&name).unwrap_or_else(|| "the disk".into());
            return Err(InputError::new(format!(
                "{shown} is a partition ({name}) of {disk}; an image holds a whole disk: \
                 flash /dev/{disk}"
            ))
            .into());
        }
        let busy: BTreeSet<DevNum> = sys
            .in_use_set(&name)
            .iter()
            .filter_map(|n| sys.devnum(n))
            .chain([dev])
            .collect();
        let mounts: Vec<(MountEntry, Option<DevNum>)> = env
            .mounts
            .iter()
            .map(|m| (m.clone(), block_rdev(&m.source)))
            .collect();
        let swaps: Vec<(String, Option<DevNum>)> = env
            .swaps
            .iter()
            .map(|s| (s.clone(), block_rdev(s)))
            .collect();
        if let Some(why) = in_use_reason(&shown.to_string(), &busy, &mounts, &swaps, env.root_dev) {
            return Err(InputError::new(why).into());
        }
        // O_EXCL on a block device: the kernel refuses if anything (a mount, a holder,
        // another exclusive opener) has claimed it, which also covers what we missed above.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(nix::fcntl::OFlag::O_EXCL.bits())
            .open(path)
            .map_err(|e| match e.raw_os_error() {
                Some(code) if code == nix::errno::Errno::EBUSY as i32 => {
                    anyhow::Error::new(InputError::new(format!(
                        "{shown} is in use (the kernel refuses exclusive access)"
                    )))
                }
                _ => anyhow::Error::new(e).context(format!("opening {shown} for writing")),
            })?;
        let size = file
            .seek(SeekFrom::End(0))
            .with_context(|| format!("finding the size of {shown}"))?;
        Ok(Target {
            path: path.to_path_buf(),
            size,
            description: sys.describe(&name),
            is_block_device: true,
            file,
        })
    } else if ft.is_file() {
        if !allow_file {
            return Err(InputError::new(format!(
                "{shown} is a regular file, not a block device; pass --allow-file to write \
                 into a file"
            ))
            .into());
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .with_context(|| format!("opening {shown} for writing"))?;
        let size = meta.len();
        Ok(Target {
            path: path.to_path_buf(),
            size,
            description: format!("regular file, {}", human_bytes(size)),
            is_block_device: false,
            file,
        })
    } else {
        Err(InputError::new(format!("{shown} is not a block device")).into())
    }
}

/// Everything checked, nothing written yet.
#[derive(Debug)]
pub struct Prepared {
    pub image: PathBuf,
    /// Size of the raw (decompressed) image.
    pub image_size: u64,
    /// The bmap file used, if any.
    pub bmap_path: Option<PathBuf>,
    pub extents: Vec<Extent>,
    pub target: Target,
    compression: Compression,
}

/// Checks the image, its bmap and the target, and plans the copy.
pub fn prepare(opts: &Options) -> Result<Prepared> {
    prepare_on(opts, &BlockEnv::current()?)
}

/// Bad input when the image's folder holds a commit journal (`hcikit::image::output::Staged`):
/// a build is renaming its outputs there, or was killed doing so, and the image and its
/// bmap may belong to different builds until the next build rolls that back.
fn refuse_interrupted_commit(image: &Path) -> Result<()> {
    let dir = image
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(crate::image::output::JOURNAL_PREFIX) {
            return Err(InputError::new(format!(
                "{} holds {name}: a build is writing its outputs there or was interrupted doing so, \
                 so {} may not match its bmap; wait for it, or run the build again",
                dir.display(),
                image.display()
            ))
            .into());
        }
    }
    Ok(())
}

/// [`prepare`] against a given block-device environment.
pub fn prepare_on(opts: &Options, env: &BlockEnv) -> Result<Prepared> {
    let image = &opts.image;
    let shown = image.display();
    refuse_interrupted_commit(image)?;
    let compression = sniff(image)?;
    let bmap = if opts.no_bmap {
        None
    } else {
        let path = match &opts.bmap {
            Some(p) => p.clone(),
            None => {
                let cands = bmap_candidates(image);
                cands.iter().find(|p| p.is_file()).cloned().ok_or_else(|| {
                    let looked: Vec<String> =
                        cands.iter().map(|p| p.display().to_string()).collect();
                    InputError::new(format!(
                        "no bmap for {shown} (looked for {}); pass --bmap FILE, or --no-bmap to \
                         write every block of the image",
                        looked.join(", ")
                    ))
                })?
            }
        };
        let bytes = std::fs::read(&path)
            .map_err(|e| InputError::new(format!("cannot read bmap {}: {e}", path.display())))?;
        let b = Bmap::from_bytes(&bytes).with_context(|| format!("bmap {}", path.display()))?;
        Some((path, b))
    };

    let image_size = match compression {
        Compression::None => std::fs::metadata(image)
            .with_context(|| format!("reading {shown}"))?
            .len(),
        // The only way to know a zstd stream's size for sure is to decompress it. Doing
        // that before touching the disk also proves the stream is intact.
        Compression::Zstd => {
            let mut dec = zstd::stream::read::Decoder::new(open_image(image)?)
                .with_context(|| format!("reading {shown}"))?;
            io::copy(&mut dec, &mut io::sink())
                .map_err(|e| InputError::new(format!("{shown} is not a valid zstd stream: {e}")))?
        }
    };
    if let Some((path, b)) = &bmap {
        if b.image_size != image_size {
            return Err(InputError::new(format!(
                "bmap {} describes an image of {} bytes, but {shown} is {image_size} bytes{}: \
                 the bmap belongs to another image",
                path.display(),
                b.image_size,
                if compression == Compression::Zstd {
                    " decompressed"
                } else {
                    ""
                }
            ))
            .into());
        }
    }

    let target = open_target(&opts.device, opts.allow_file, env)?;
    if same_file(image, &target.file) {
        return Err(InputError::new(format!(
            "{shown} and {} are the same file",
            target.path.display()
        ))
        .into());
    }
    if target.size < image_size {
        return Err(InputError::new(format!(
            "{} is too small: {} is {}, the image needs {}",
            target.path.display(),
            target.description,
            human_bytes(target.size),
            human_bytes(image_size)
        ))
        .into());
    }

    tracing::debug!(
        image = %shown,
        image_size,
        bmap = ?bmap.as_ref().map(|(p, _)| p),
        target = %target.description,
        "flash prepared"
    );
    let (bmap_path, extents) = match bmap {
        Some((p, b)) => (Some(p), extents_from_bmap(&b)),
        None => (None, whole_image_extents(image_size)),
    };
    Ok(Prepared {
        image: image.clone(),
        image_size,
        bmap_path,
        extents,
        target,
        compression,
    })
}

fn same_file(path: &Path, file: &File) -> bool {
    match (std::fs::metadata(path), file.metadata()) {
        (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
        _ => false,
    }
}

fn open_image(path: &Path) -> Result<File> {
    File::open(path)
        .map_err(|e| InputError::new(format!("cannot read image {}: {e}", path.display())).into())
}

fn sniff(path: &Path) -> Result<Compression> {
    let mut f = open_image(path)?;
    let mut magic = [0u8; 4];
    let n = f
        .read(&mut magic)
        .with_context(|| format!("reading {}", path.display()))?;
    Ok(if is_zstd(&magic[..n]) {
        Compression::Zstd
    } else {
        Compression::None
    })
}

/// Reads image bytes by offset, from a raw file or (forward only) a zstd stream.
enum Source {
    Raw(File),
    Zstd {
        dec: zstd::stream::read::Decoder<'static, BufReader<File>>,
        pos: u64,
    },
}

impl Source {
    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        match self {
            Source::Raw(f) => f.read_exact_at(buf, offset),
            Source::Zstd { dec, pos } => {
                if offset < *pos {
                    return Err(io::Error::other("zstd image read backwards"));
                }
                let gap = offset - *pos;
                let skipped = io::copy(&mut dec.by_ref().take(gap), &mut io::sink())?;
                if skipped != gap {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                dec.read_exact(buf)?;
                *pos = offset + buf.len() as u64;
                Ok(())
            }
        }
    }
}

/// What a finished flash did.
#[derive(Debug, Clone)]
pub struct Report {
    pub ranges: usize,
    pub bytes_written: u64,
    pub image_size: u64,
    pub elapsed: Duration,
}

impl Prepared {
    /// One paragraph for the confirmation prompt and logs.
    pub fn summary(&self) -> String {
        let written: u64 = self.extents.iter().map(|e| e.len).sum();
        let how = match &self.bmap_path {
            Some(p) => format!(
                "{} in {} range{} (bmap {})",
                human_bytes(written),
                self.extents.len(),
                if self.extents.len() == 1 { "" } else { "s" },
                p.display()
            ),
            None => format!("all {} (no bmap)", human_bytes(written)),
        };
        format!(
            "image:  {} ({} {})\nwrites: {how}\ntarget: {} ({})",
            self.image.display(),
            human_bytes(self.image_size),
            if self.compression == Compression::Zstd {
                "decompressed"
            } else {
                "raw"
            },
            self.target.path.display(),
            self.target.description
        )
    }

    /// Copies every extent, syncs, drops the cached pages, and reads every extent back.
    pub fn write(mut self, progress: Progress) -> Result<Report> {
        let start = Instant::now();
        let dev_shown = self.target.path.display().to_string();
        let image_shown = self.image.display().to_string();
        let mut source = match self.compression {
            Compression::None => Source::Raw(open_image(&self.image)?),
            Compression::Zstd => Source::Zstd {
                dec: zstd::stream::read::Decoder::new(open_image(&self.image)?)
                    .with_context(|| format!("reading {image_shown}"))?,
                pos: 0,
            },
        };
        let total: u64 = self.extents.iter().map(|e| e.len).sum();
        let task = progress.task(format!("writing {dev_shown}"), Some(total));
        let mut buf = vec![0u8; CHUNK];
        let dev = &self.target.file;
        for ext in &mut self.extents {
            let mut hasher = Sha256::new();
            let mut off = ext.offset;
            let end = ext.offset + ext.len;
            while off < end {
                let n = CHUNK.min((end - off) as usize);
                source
                    .read_at(&mut buf[..n], off)
                    .with_context(|| format!("reading {} of {image_shown}", ext.label))?;
                hasher.update(&buf[..n]);
                dev.write_all_at(&buf[..n], off)
                    .with_context(|| format!("writing {} to {dev_shown}", ext.label))?;
                task.inc(n as u64);
                off += n as u64;
            }
            let got: [u8; 32] = hasher.finalize().into();
            match ext.sha256 {
                Some(want) if want != got => {
                    anyhow::bail!(
                        "{} of {image_shown} has sha256 {}, but the bmap says {}: the image is \
                         damaged or the bmap is for another image; {dev_shown} now holds a \
                         partial copy",
                        ext.label,
                        hex::encode(got),
                        hex::encode(want)
                    );
                }
                Some(_) => {}
                None => ext.sha256 = Some(got),
            }
        }
        dev.sync_all()
            .with_context(|| format!("flushing {dev_shown} to disk"))?;
        let ranges = self.extents.len();
        task.finish(&format!(
            "{} in {ranges} range{}, synced",
            short_bytes(total),
            if ranges == 1 { "" } else { "s" }
        ));
        drop_cache(dev);

        verify_extents(dev, &dev_shown, &self.extents, progress)?;
        Ok(Report {
            ranges: self.extents.len(),
            bytes_written: total,
            image_size: self.image_size,
            elapsed: start.elapsed(),
        })
    }
}

/// Asks the kernel to forget cached pages of `f`, so a read-back reads the disk rather
/// than the pages just written. Advisory: if it fails the check is weaker, not wrong.
fn drop_cache(f: &File) {
    use std::os::fd::AsRawFd;
    if let Err(e) = nix::fcntl::posix_fadvise(
        f.as_raw_fd(),
        0,
        0,
        nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED,
    ) {
        tracing::debug!("posix_fadvise(DONTNEED) failed: {e}");
    }
}

/// Reads every extent back from `dev` and compares its SHA-256; the first mismatch is an
/// error naming the range. Extents without a hash are skipped.
pub fn verify_extents(
    dev: &File,
    dev_shown: &str,
    extents: &[Extent],
    progress: Progress,
) -> Result<()> {
    let total: u64 = extents.iter().map(|e| e.len).sum();
    let task = progress.task(format!("verifying {dev_shown}"), Some(total));
    let mut buf = vec![0u8; CHUNK];
    for ext in extents {
        let Some(want) = ext.sha256 else { continue };
        let mut hasher = Sha256::new();
        let mut off = ext.offset;
        let end = ext.offset + ext.len;
        while off < end {
            let n = CHUNK.min((end - off) as usize);
            dev.read_exact_at(&mut buf[..n], off)
                .with_context(|| format!("reading back {} from {dev_shown}", ext.label))?;
            hasher.update(&buf[..n]);
            task.inc(n as u64);
            off += n as u64;
        }
        let got: [u8; 32] = hasher.finalize().into();
        if got != want {
            anyhow::bail!(
                "verify failed: {} read back from {dev_shown} has sha256 {}, expected {}",
                ext.label,
                hex::encode(got),
                hex::encode(want)
            );
        }
    }
    task.finish("every range matches");
    Ok(())
}

/// Checks that `target` (a disk or a file) holds what `bmap` describes, without writing.
pub fn verify_target(target: &Path, bmap: &Bmap) -> Result<()> {
    let f = File::open(target).with_context(|| format!("opening {}", target.display()))?;
    verify_extents(
        &f,
        &target.display().to_string(),
        &extents_from_bmap(bmap),
        Progress::quiet(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(dev: DevNum, at: &str, src: &str) -> (MountEntry, Option<DevNum>) {
        (
            MountEntry {
                dev,
                mount_point: at.into(),
                source: src.into(),
            },
            None,
        )
    }

    #[test]
    fn in_use_reasons() {
        let busy: BTreeSet<DevNum> = [(8, 0), (8, 1), (8, 2)].into();
        let other = [mount((8, 17), "/", "/dev/sdb1")];
        assert_eq!(
            in_use_reason("/dev/sda", &busy, &other, &[], Some((8, 17))),
            None
        );

        let boot = [
            mount((8, 17), "/", "/dev/sdb1"),
            mount((8, 1), "/boot", "/dev/sda1"),
        ];
        let why = in_use_reason("/dev/sda", &busy, &boot, &[], Some((8, 17))).unwrap();
        assert!(why.contains("/dev/sda1 is mounted on /boot"), "{why}");

        let why = in_use_reason("/dev/sda", &busy, &[], &[], Some((8, 2))).unwrap();
        assert!(why.contains("root filesystem"), "{why}");

        // btrfs and friends: st_dev is anonymous, the source path is what ties it to sda2.
        let mut root = mount((0, 31), "/", "/dev/sda2");
        root.1 = Some((8, 2));
        let why = in_use_reason("/dev/sda", &busy, &[root], &[], Some((0, 31))).unwrap();
        assert!(why.contains("root filesystem"), "{why}");

        let swaps = [("/dev/sda2".to_string(), Some((8, 2)))];
        let why = in_use_reason("/dev/sda", &busy, &[], &swaps, None).unwrap();
        assert!(why.contains("swapoff /dev/sda2"), "{why}");
    }

    #[test]
    fn bmap_is_looked_for_next_to_raw_and_compressed_names() {
        assert_eq!(
            bmap_candidates(Path::new("out/pve1.img.zst")),
            [
                PathBuf::from("out/pve1.img.zst.bmap"),
                PathBuf::from("out/pve1.img.bmap")
            ]
        );
        assert_eq!(
            bmap_candidates(Path::new("pve1.img")),
            [PathBuf::from("pve1.img.bmap")]
        );
    }

    #[test]
    fn whole_image_pieces_cover_the_image() {
        let e = whole_image_extents(NO_BMAP_PIECE * 2 + 5);
        assert_eq!(e.len(), 3);
        assert_eq!(e[2].offset, NO_BMAP_PIECE * 2);
        assert_eq!(e[2].len, 5);
        assert!(whole_image_extents(0).is_empty());
    }
}
