//! Writing the outputs: sparse raw images, `.img.zst` made of reusable zstd frames,
//! checksums, and the atomic rename that makes a build all-or-nothing.
//!
//! A node image is three regions: the *head* (partition table and ESP, everything before
//! the root partition), the *root* (the shared ext4, byte for byte) and the *tail* (the
//! rest, ending in the backup GPT). Head and tail are small and per node; the root is
//! the same for every node, so its data ranges, their checksums and its zstd frame are
//! computed once per build.

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// bmap block size.
pub const BLOCK: u64 = 4096;
static ZEROS: [u8; BLOCK as usize] = [0; BLOCK as usize];

/// A run of mapped blocks `[first, last]` and the sha256 of its bytes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Range {
    pub first: u64,
    pub last: u64,
    pub sha256: String,
}

impl Range {
    fn shifted(&self, blocks: u64) -> Range {
        Range {
            first: self.first + blocks,
            last: self.last + blocks,
            sha256: self.sha256.clone(),
        }
    }
    pub fn blocks(&self) -> u64 {
        self.last - self.first + 1
    }
}

/// Runs of non-zero blocks of an in-memory region, with their checksums; block numbers
/// start at `first_block`.
pub fn nonzero_ranges(bytes: &[u8], first_block: u64) -> Vec<Range> {
    let mut out = Vec::new();
    let mut run: Option<(u64, Sha256)> = None;
    let n = bytes.len().div_ceil(BLOCK as usize);
    for i in 0..n {
        let chunk = &bytes[i * BLOCK as usize..((i + 1) * BLOCK as usize).min(bytes.len())];
        // A slice compare is a memcmp, fast even in unoptimised test builds.
        let zero = chunk == &ZEROS[..chunk.len()];
        match (&mut run, zero) {
            (Some((_, h)), false) => h.update(chunk),
            (None, false) => {
                let mut h = Sha256::new();
                h.update(chunk);
                run = Some((i as u64, h));
            }
            (Some(_), true) => {
                let (start, h) = run.take().expect("run is some");
                out.push(Range {
                    first: first_block + start,
                    last: first_block + i as u64 - 1,
                    sha256: hex::encode(h.finalize()),
                });
            }
            (None, true) => {}
        }
    }
    if let Some((start, h)) = run {
        out.push(Range {
            first: first_block + start,
            last: first_block + n as u64 - 1,
            sha256: hex::encode(h.finalize()),
        });
    }
    out
}

/// Data runs of a (sparse) file: holes found with `SEEK_DATA`/`SEEK_HOLE`, then zero
/// blocks inside the data skipped too, so the result does not depend on how the file
/// system stored it.
pub fn file_ranges(path: &Path) -> Result<Vec<Range>> {
    let f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let len = f.metadata()?.len();
    let mut out = Vec::new();
    let mut buf = vec![0u8; 8 << 20];
    for (start, end) in data_extents(&f, len)? {
        let start = start / BLOCK * BLOCK;
        let end = end.div_ceil(BLOCK) * BLOCK;
        let mut pos = start;
        while pos < end.min(len) {
            let n = ((end.min(len) - pos) as usize).min(buf.len());
            f.read_exact_at(&mut buf[..n], pos)?;
            for r in nonzero_ranges(&buf[..n], pos / BLOCK) {
                match out.last_mut() {
                    // Runs that continue across our read chunks are joined below.
                    Some(prev) if continues(prev, &r) => {
                        let merged = join(&f, prev, &r)?;
                        *prev = merged;
                    }
                    _ => out.push(r),
                }
            }
            pos += n as u64;
        }
    }
    Ok(out)
}

fn continues(prev: &Range, next: &Range) -> bool {
    prev.last + 1 == next.first
}

/// Re-hashes a joined run from the file (rare: only at 8 MiB read boundaries).
fn join(f: &File, a: &Range, b: &Range) -> Result<Range> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; BLOCK as usize];
    for blk in a.first..=b.last {
        f.read_exact_at(&mut buf, blk * BLOCK)?;
        h.update(&buf);
    }
    Ok(Range {
        first: a.first,
        last: b.last,
        sha256: hex::encode(h.finalize()),
    })
}

/// `(start, end)` byte extents holding data, by `SEEK_DATA`/`SEEK_HOLE`; the whole file
/// when the file system does not support them.
fn data_extents(f: &File, len: u64) -> Result<Vec<(u64, u64)>> {
    use nix::unistd::{lseek, Whence};
    use std::os::fd::AsRawFd;
    let fd = f.as_raw_fd();
    let mut out = Vec::new();
    let mut pos: i64 = 0;
    while (pos as u64) < len {
        let start = match lseek(fd, pos, Whence::SeekData) {
            Ok(s) => s,
            Err(nix::errno::Errno::ENXIO) => break,
            Err(nix::errno::Errno::EINVAL) => return Ok(vec![(0, len)]),
            Err(e) => return Err(e).context("SEEK_DATA"),
        };
        let end = lseek(fd, start, Whence::SeekHole).context("SEEK_HOLE")?;
        out.push((start as u64, end as u64));
        pos = end;
    }
    Ok(out)
}

/// Copies the given block ranges of `src` into `dst` at byte offset `at`, leaving holes
/// elsewhere.
pub fn copy_ranges(
    src: &Path,
    ranges: &[Range],
    dst: &File,
    at: u64,
    mut progress: impl FnMut(u64),
) -> Result<()> {
    let f = File::open(src).with_context(|| format!("opening {}", src.display()))?;
    let mut buf = vec![0u8; 8 << 20];
    for r in ranges {
        let mut pos = r.first * BLOCK;
        let end = (r.last + 1) * BLOCK;
        while pos < end {
            let n = ((end - pos) as usize).min(buf.len());
            f.read_exact_at(&mut buf[..n], pos)?;
            dst.write_all_at(&buf[..n], at + pos)?;
            progress(n as u64);
            pos += n as u64;
        }
    }
    Ok(())
}

/// A node image in the three regions described in the module documentation.
pub struct ImageParts<'a> {
    pub disk_size: u64,
    /// Bytes `[0, head.len())`.
    pub head: &'a [u8],
    pub root_start: u64,
    pub root_file: &'a Path,
    pub root_size: u64,
    pub root_ranges: &'a [Range],
    /// Bytes `[root_start + root_size, disk_size)`.
    pub tail: &'a [u8],
}

impl ImageParts<'_> {
    /// The bmap ranges of the whole image: head and tail scanned, root ranges shifted.
    pub fn ranges(&self) -> Vec<Range> {
        let mut r = nonzero_ranges(self.head, 0);
        r.extend(
            self.root_ranges
                .iter()
                .map(|x| x.shifted(self.root_start / BLOCK)),
        );
        r.extend(nonzero_ranges(
            self.tail,
            (self.root_start + self.root_size) / BLOCK,
        ));
        r
    }

    /// sha256 of the whole image, holes as zeros.
    pub fn sha256(&self) -> Result<String> {
        let mut h = Sha256::new();
        h.update(self.head);
        let f = File::open(self.root_file)?;
        let mut buf = vec![0u8; 8 << 20];
        let mut pos = 0u64;
        for r in self.root_ranges {
            let start = r.first * BLOCK;
            hash_zeros(&mut h, start - pos);
            let end = (r.last + 1) * BLOCK;
            let mut p = start;
            while p < end {
                let n = ((end - p) as usize).min(buf.len());
                f.read_exact_at(&mut buf[..n], p)?;
                h.update(&buf[..n]);
                p += n as u64;
            }
            pos = end;
        }
        hash_zeros(&mut h, self.root_size - pos);
        h.update(self.tail);
        Ok(hex::encode(h.finalize()))
    }

    /// Writes the sparse raw image to `dst` (already created, any length).
    pub fn write_raw(&self, dst: &File, progress: impl FnMut(u64)) -> Result<()> {
        dst.set_len(0)?;
        dst.set_len(self.disk_size)?;
        for r in nonzero_ranges(self.head, 0) {
            let (s, e) = (
                r.first * BLOCK,
                ((r.last + 1) * BLOCK).min(self.head.len() as u64),
            );
            dst.write_all_at(&self.head[s as usize..e as usize], s)?;
        }
        copy_ranges(
            self.root_file,
            self.root_ranges,
            dst,
            self.root_start,
            progress,
        )?;
        let tail_at = self.root_start + self.root_size;
        for r in nonzero_ranges(self.tail, 0) {
            let (s, e) = (
                r.first * BLOCK,
                ((r.last + 1) * BLOCK).min(self.tail.len() as u64),
            );
            dst.write_all_at(&self.tail[s as usize..e as usize], tail_at + s)?;
        }
        Ok(())
    }

    /// Writes `.img.zst`: a frame of the head, the shared root frame as given, a frame of
    /// the tail. Concatenated frames decompress to the raw image.
    pub fn write_zst(&self, mut dst: &File, root_frame: &Path, level: i32) -> Result<()> {
        dst.set_len(0)?;
        dst.write_all(&zstd::bulk::compress(self.head, level).context("compressing head")?)?;
        let mut rf =
            File::open(root_frame).with_context(|| format!("opening {}", root_frame.display()))?;
        std::io::copy(&mut rf, &mut dst)?;
        dst.write_all(&zstd::bulk::compress(self.tail, level).context("compressing tail")?)?;
        Ok(())
    }
}

fn hash_zeros(h: &mut Sha256, mut n: u64) {
    static BIG: [u8; 1 << 16] = [0; 1 << 16];
    while n > 0 {
        let k = n.min(BIG.len() as u64) as usize;
        h.update(&BIG[..k]);
        n -= k as u64;
    }
}

/// Compresses a whole file (holes read as zeros) into one zstd frame.
pub fn compress_file(
    src: &Path,
    dst: &Path,
    level: i32,
    mut progress: impl FnMut(u64),
) -> Result<()> {
    let mut input = File::open(src).with_context(|| format!("opening {}", src.display()))?;
    let out = create_private(dst)?;
    let mut enc = zstd::stream::write::Encoder::new(out, level)?;
    enc.include_checksum(true)?;
    let len = input.metadata()?.len();
    enc.set_pledged_src_size(Some(len))?;
    let mut buf = vec![0u8; 4 << 20];
    loop {
        let n = input.read(&mut buf)?;
        if n == 0 {
            break;
        }
        enc.write_all(&buf[..n])?;
        progress(n as u64);
    }
    enc.finish()?.sync_all()?;
    Ok(())
}

/// Creates (truncating) a file with mode 0600.
pub fn create_private(path: &Path) -> Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))
}

/// sha256 of a file.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 4 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// Output files written under temporary names and renamed into place by [`commit`];
/// dropped without commit, every temporary file is removed.
///
/// [`commit`]: Staged::commit
pub struct Staged {
    dir: PathBuf,
    files: Vec<(PathBuf, PathBuf)>,
    committed: bool,
}

impl Staged {
    /// Removes temporary files that an interrupted build (killed, Ctrl-C) left in `dir`:
    /// those whose process no longer runs.
    pub fn clean_stale(dir: &Path) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some((_, pid)) = name.rsplit_once(".partial-") else {
                continue;
            };
            if name.starts_with('.')
                && pid.parse::<u32>().is_ok()
                && !Path::new("/proc").join(pid).exists()
            {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }

    pub fn new(dir: &Path) -> Staged {
        Staged {
            dir: dir.to_path_buf(),
            files: Vec::new(),
            committed: false,
        }
    }

    /// A new temporary file for the final name `name`, with the given mode.
    pub fn create(&mut self, name: &str, mode: u32) -> Result<(File, PathBuf)> {
        let tmp = self
            .dir
            .join(format!(".{name}.partial-{}", std::process::id()));
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        self.files.push((tmp.clone(), self.dir.join(name)));
        Ok((f, tmp))
    }

    /// Renames every file to its final name.
    pub fn commit(mut self) -> Result<Vec<PathBuf>> {
        let mut done = Vec::new();
        for (tmp, fin) in &self.files {
            File::open(tmp)?.sync_all()?;
            std::fs::rename(tmp, fin)
                .with_context(|| format!("renaming {} to {}", tmp.display(), fin.display()))?;
            done.push(fin.clone());
        }
        self.committed = true;
        Ok(done)
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.committed {
            for (tmp, _) in &self.files {
                let _ = std::fs::remove_file(tmp);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonzero_runs_and_their_hashes() {
        let mut b = vec![0u8; 5 * BLOCK as usize];
        b[10] = 1; // block 0
        b[BLOCK as usize + 1] = 2; // block 1
        b[4 * BLOCK as usize] = 3; // block 4
        let r = nonzero_ranges(&b, 100);
        assert_eq!(r.len(), 2);
        assert_eq!((r[0].first, r[0].last), (100, 101));
        assert_eq!((r[1].first, r[1].last), (104, 104));
        assert_eq!(
            r[0].sha256,
            hex::encode(Sha256::digest(&b[..2 * BLOCK as usize]))
        );
        assert!(nonzero_ranges(&[0; 9000], 0).is_empty());
    }

    #[test]
    fn sparse_file_ranges_skip_holes_and_zero_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let f = create_private(&p).unwrap();
        f.set_len(64 << 20).unwrap();
        f.write_all_at(&[1; 5000], 0).unwrap();
        f.write_all_at(&[0; 8192], 1 << 20).unwrap(); // data, but zeros
        f.write_all_at(&[2; 10], (40 << 20) + 4096).unwrap();
        let r = file_ranges(&p).unwrap();
        let spans: Vec<_> = r.iter().map(|r| (r.first, r.last)).collect();
        assert_eq!(
            spans,
            [(0, 1), ((40 << 20) / BLOCK + 1, (40 << 20) / BLOCK + 1)]
        );
    }

    #[test]
    fn stale_partials_of_dead_processes_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let dead = dir.path().join(".pve1.img.partial-4000000000");
        let live = dir
            .path()
            .join(format!(".pve2.img.partial-{}", std::process::id()));
        let other = dir.path().join("notes.partial-1");
        for p in [&dead, &live, &other] {
            std::fs::write(p, b"x").unwrap();
        }
        Staged::clean_stale(dir.path());
        assert!(!dead.exists() && live.exists() && other.exists());
    }

    #[test]
    fn staged_files_vanish_without_commit() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = Staged::new(dir.path());
            s.create("a.img", 0o600).unwrap();
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let mut s = Staged::new(dir.path());
        s.create("a.img", 0o600).unwrap();
        s.commit().unwrap();
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["a.img"]);
    }
}
