//! Writing the outputs: sparse raw images, `.img.zst` made of reusable zstd frames,
//! checksums, and the atomic rename that makes a build all-or-nothing.
//!
//! A node image is three regions: the *head* (partition table and ESP, everything before
//! the root partition), the *root* (the shared ext4, byte for byte) and the *tail* (the
//! rest, ending in the backup GPT). Head and tail are small and per node; the root is
//! the same for every node, so its data ranges, their checksums and its zstd frame are
//! computed once per build.

use crate::error::InputError;
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

/// Hashed runs of consecutive mapped blocks, built block by block in increasing order.
#[derive(Default)]
struct Runs {
    out: Vec<Range>,
    cur: Option<(u64, u64, Sha256)>,
}

impl Runs {
    fn push(&mut self, block: u64, bytes: &[u8]) {
        match &mut self.cur {
            Some((_, last, h)) if *last + 1 == block => {
                h.update(bytes);
                *last = block;
            }
            _ => {
                self.flush();
                let mut h = Sha256::new();
                h.update(bytes);
                self.cur = Some((block, block, h));
            }
        }
    }
    fn flush(&mut self) {
        if let Some((first, last, h)) = self.cur.take() {
            self.out.push(Range {
                first,
                last,
                sha256: hex::encode(h.finalize()),
            });
        }
    }
    fn finish(mut self) -> Vec<Range> {
        self.flush();
        self.out
    }
}

/// Byte intervals `[start, end)` sorted and merged, for block-membership tests.
#[derive(Debug, Clone, Default)]
pub struct Keep(Vec<(u64, u64)>);

impl Keep {
    pub fn new(mut v: Vec<(u64, u64)>) -> Keep {
        v.retain(|(s, e)| s < e);
        v.sort();
        let mut out: Vec<(u64, u64)> = Vec::with_capacity(v.len());
        for (s, e) in v {
            match out.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => out.push((s, e)),
            }
        }
        Keep(out)
    }
    /// Whether any byte of `[start, end)` is kept.
    pub fn touches(&self, start: u64, end: u64) -> bool {
        let i = self.0.partition_point(|(_, e)| *e <= start);
        self.0.get(i).is_some_and(|(s, _)| *s < end)
    }
    pub fn intervals(&self) -> &[(u64, u64)] {
        &self.0
    }
}

/// Runs of non-zero blocks of an in-memory region, with their checksums; block numbers
/// start at `first_block`.
pub fn nonzero_ranges(bytes: &[u8], first_block: u64) -> Vec<Range> {
    mapped_ranges(bytes, first_block, &Keep::default())
}

/// Runs of the blocks of an in-memory region that hold data or that `keep` (byte
/// intervals of `bytes`) marks as metadata: a zero block of a partition table or a file
/// system's allocation tables means something, and a disk flashed with this map must get
/// it written over whatever the disk held before.
pub fn mapped_ranges(bytes: &[u8], first_block: u64, keep: &Keep) -> Vec<Range> {
    let mut runs = Runs::default();
    let n = bytes.len().div_ceil(BLOCK as usize);
    for i in 0..n {
        let (s, e) = (
            i * BLOCK as usize,
            ((i + 1) * BLOCK as usize).min(bytes.len()),
        );
        let chunk = &bytes[s..e];
        // A slice compare is a memcmp, fast even in unoptimised test builds.
        if chunk != &ZEROS[..chunk.len()] || keep.touches(s as u64, e as u64) {
            runs.push(first_block + i as u64, chunk);
        }
    }
    runs.finish()
}

/// Data runs of a (sparse) file: holes found with `SEEK_DATA`/`SEEK_HOLE`, then zero
/// blocks inside the data skipped too, so the result does not depend on how the file
/// system stored it.
pub fn file_ranges(path: &Path) -> Result<Vec<Range>> {
    file_ranges_keeping(path, &Keep::default())
}

/// Like [`file_ranges`], but blocks touching `keep` (byte intervals of the file) are
/// mapped even when they are zeros or holes.
pub fn file_ranges_keeping(path: &Path, keep: &Keep) -> Result<Vec<Range>> {
    let f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let len = f.metadata()?.len();
    let mut wanted: Vec<(u64, u64)> = data_extents(&f, len)?;
    wanted.extend(keep.intervals().iter().copied());
    let wanted = Keep::new(
        wanted
            .into_iter()
            .map(|(s, e)| (s / BLOCK * BLOCK, (e.div_ceil(BLOCK) * BLOCK).min(len)))
            .collect(),
    );
    let mut runs = Runs::default();
    let mut buf = vec![0u8; 8 << 20];
    for &(start, end) in wanted.intervals() {
        let mut pos = start;
        while pos < end {
            let n = ((end - pos) as usize).min(buf.len());
            f.read_exact_at(&mut buf[..n], pos)
                .with_context(|| format!("reading {}", path.display()))?;
            for (i, chunk) in buf[..n].chunks(BLOCK as usize).enumerate() {
                let at = pos + (i as u64) * BLOCK;
                if chunk != &ZEROS[..chunk.len()] || keep.touches(at, at + chunk.len() as u64) {
                    runs.push(at / BLOCK, chunk);
                }
            }
            pos += n as u64;
        }
    }
    Ok(runs.finish())
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

/// Copies the given block ranges of `src` into `dst` (a new, sparse file) at byte offset
/// `at`, leaving holes elsewhere.
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
            // Mapped zero blocks stay holes: `dst` reads as zeros there already.
            for (i, chunk) in buf[..n].chunks(BLOCK as usize).enumerate() {
                if chunk != &ZEROS[..chunk.len()] {
                    dst.write_all_at(chunk, at + pos + (i as u64) * BLOCK)?;
                }
            }
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
    /// Byte intervals of `head` mapped even where zero: the partition table area and the
    /// ESP's metadata and allocated clusters (see [`crate::esp::metadata_extents`]).
    pub head_keep: &'a Keep,
    pub root_start: u64,
    pub root_file: &'a Path,
    pub root_size: u64,
    pub root_ranges: &'a [Range],
    /// Bytes `[root_start + root_size, disk_size)`.
    pub tail: &'a [u8],
}

impl ImageParts<'_> {
    /// The bmap ranges of the whole image: the head's data and metadata, the root's
    /// ranges shifted, and the whole tail (it ends in the backup GPT, whose zero entries
    /// count as much as the others).
    pub fn ranges(&self) -> Vec<Range> {
        let mut r = mapped_ranges(self.head, 0, self.head_keep);
        r.extend(
            self.root_ranges
                .iter()
                .map(|x| x.shifted(self.root_start / BLOCK)),
        );
        r.extend(mapped_ranges(
            self.tail,
            (self.root_start + self.root_size) / BLOCK,
            &Keep::new(vec![(0, self.tail.len() as u64)]),
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

/// Output files written under temporary names and committed together by [`commit`];
/// dropped without commit, every temporary file is removed.
///
/// Temporary files are created exclusively (`O_EXCL`, `O_NOFOLLOW`), so a file or link
/// planted under the name is never reused, and get their final mode at once. The commit
/// is all-or-nothing for a failure, and recoverable for a kill:
///
/// 1. every final name is checked first (a folder in the way fails before any rename);
/// 2. a journal `.hcikit-commit-<pid>` lists each final name and whether it existed; the
///    existing ones are kept under backup names (hard links);
/// 3. the *seal* files (`manifest.json`, `SHA256SUMS`) are removed, the other files
///    renamed into place, then the seal files: a folder whose `SHA256SUMS` exists always
///    holds one build's files;
/// 4. the backups and the journal are removed.
///
/// A failed rename rolls every step back. A killed commit leaves its journal; the next
/// build into the folder ([`Staged::clean_stale`]) rolls it back, and `hcikit flash`
/// refuses images next to a journal.
///
/// [`commit`]: Staged::commit
pub struct Staged {
    dir: PathBuf,
    files: Vec<StagedFile>,
    committed: bool,
}

struct StagedFile {
    tmp: PathBuf,
    name: String,
    seal: bool,
}

/// Prefix of a commit journal's name; the writer's process id follows.
pub const JOURNAL_PREFIX: &str = ".hcikit-commit-";

/// Names that seal a build's output set: renamed last, removed first.
const SEALS: [&str; 2] = ["manifest.json", "SHA256SUMS"];

fn backup_name(name: &str, pid: u32) -> String {
    format!(".{name}.old-{pid}")
}

/// The process id in a name `…<marker><pid>[-<n>]`.
fn pid_after(name: &str, marker: &str) -> Option<u32> {
    let (_, rest) = name.rsplit_once(marker)?;
    rest.split('-').next()?.parse().ok()
}

fn process_alive(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

/// Journal lines: `<final name>\t<1 if it existed>`.
fn read_journal(path: &Path) -> Vec<(String, bool)> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (name, existed) = l.split_once('\t')?;
            // Only plain names: a journal is never a way to touch other folders.
            (!name.is_empty() && !name.contains('/') && name != "." && name != "..")
                .then(|| (name.to_string(), existed == "1"))
        })
        .collect()
}

/// Undoes a commit from its journal: restores backups, removes new files that had no
/// predecessor, then the journal.
fn roll_back(dir: &Path, journal: &Path, pid: u32) {
    for (name, existed) in read_journal(journal) {
        let fin = dir.join(&name);
        let backup = dir.join(backup_name(&name, pid));
        if existed {
            if backup.exists() {
                let _ = std::fs::rename(&backup, &fin);
                // Renaming a hard link onto its own inode (a file not yet replaced) does
                // nothing and keeps both names.
                let _ = std::fs::remove_file(&backup);
            }
        } else {
            let _ = std::fs::remove_file(&fin);
        }
    }
    let _ = std::fs::remove_file(journal);
    sync_dir(dir);
}

fn sync_dir(dir: &Path) {
    let _ = File::open(dir).and_then(|d| d.sync_all());
}

impl Staged {
    /// Cleans up after interrupted builds (killed, Ctrl-C) in `dir`: rolls back commits
    /// whose process no longer runs, and removes their temporary files and backups.
    pub fn clean_stale(dir: &Path) {
        Self::clean_stale_with(dir, process_alive)
    }

    fn clean_stale_with(dir: &Path, alive: impl Fn(u32) -> bool) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        let names: Vec<String> = rd
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        // Journals first: a roll-back needs the backups.
        for name in &names {
            if let Some(pid) = name
                .strip_prefix(JOURNAL_PREFIX)
                .and_then(|p| p.parse::<u32>().ok())
            {
                if !alive(pid) {
                    roll_back(dir, &dir.join(name), pid);
                }
            }
        }
        for name in &names {
            if !name.starts_with('.') {
                continue;
            }
            let pid = pid_after(name, ".partial-").or_else(|| pid_after(name, ".old-"));
            if pid.is_some_and(|p| !alive(p)) {
                let _ = std::fs::remove_file(dir.join(name));
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
        let pid = std::process::id();
        for n in 0..1000 {
            let tmp = self.dir.join(format!(".{name}.partial-{pid}-{n}"));
            let opened = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .custom_flags(nix::libc::O_NOFOLLOW)
                .mode(mode)
                .open(&tmp);
            match opened {
                Ok(f) => {
                    // The umask may have cut bits from the creation mode.
                    f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))
                        .with_context(|| format!("setting the mode of {}", tmp.display()))?;
                    self.files.push(StagedFile {
                        tmp: tmp.clone(),
                        name: name.to_string(),
                        seal: SEALS.contains(&name),
                    });
                    return Ok((f, tmp));
                }
                // Someone else's file (or link) under our name: never reused.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e).with_context(|| format!("creating {}", tmp.display())),
            }
        }
        anyhow::bail!(
            "cannot create a temporary file for {name} in {}: 1000 names taken",
            self.dir.display()
        )
    }

    /// Moves every file to its final name, all or nothing (see the type's documentation).
    pub fn commit(self) -> Result<Vec<PathBuf>> {
        self.commit_steps(usize::MAX)
    }

    /// The commit, stopping as if killed after `renames` renames (tests).
    fn commit_steps(mut self, renames: usize) -> Result<Vec<PathBuf>> {
        for f in &self.files {
            File::open(&f.tmp)?.sync_all()?;
        }
        let mut existed = Vec::new();
        for f in &self.files {
            let fin = self.dir.join(&f.name);
            match std::fs::symlink_metadata(&fin) {
                Ok(m) if m.is_file() || m.file_type().is_symlink() => existed.push(true),
                Ok(_) => {
                    return Err(InputError::new(format!(
                        "cannot write {}: something that is not a file is in the way; nothing was replaced",
                        fin.display()
                    ))
                    .into())
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => existed.push(false),
                Err(e) => return Err(e).with_context(|| format!("checking {}", fin.display())),
            }
        }
        let pid = std::process::id();
        let journal = self.dir.join(format!("{JOURNAL_PREFIX}{pid}"));
        let text: String = self
            .files
            .iter()
            .zip(&existed)
            .map(|(f, e)| format!("{}\t{}\n", f.name, u8::from(*e)))
            .collect();
        {
            let mut j = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .custom_flags(nix::libc::O_NOFOLLOW)
                .mode(0o644)
                .open(&journal)
                .with_context(|| format!("creating {}", journal.display()))?;
            j.write_all(text.as_bytes())?;
            j.sync_all()?;
        }
        let result = (|| -> Result<Vec<PathBuf>> {
            for (f, e) in self.files.iter().zip(&existed) {
                if *e {
                    let (fin, backup) = (
                        self.dir.join(&f.name),
                        self.dir.join(backup_name(&f.name, pid)),
                    );
                    let _ = std::fs::remove_file(&backup);
                    std::fs::hard_link(&fin, &backup).with_context(|| {
                        format!("keeping {} as {}", fin.display(), backup.display())
                    })?;
                }
            }
            sync_dir(&self.dir);
            for f in self.files.iter().filter(|f| f.seal) {
                let fin = self.dir.join(&f.name);
                match std::fs::remove_file(&fin) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(e).with_context(|| format!("removing {}", fin.display()))
                    }
                    _ => {}
                }
            }
            sync_dir(&self.dir);
            let order = self
                .files
                .iter()
                .filter(|f| !f.seal)
                .chain(self.files.iter().filter(|f| f.seal));
            let mut done = Vec::new();
            for (i, f) in order.enumerate() {
                if i == renames {
                    return Err(anyhow::anyhow!("stopped after {renames} renames"));
                }
                let fin = self.dir.join(&f.name);
                std::fs::rename(&f.tmp, &fin).with_context(|| {
                    format!("renaming {} to {}", f.tmp.display(), fin.display())
                })?;
                done.push(fin);
            }
            sync_dir(&self.dir);
            Ok(done)
        })();
        match result {
            Ok(done) => {
                for (f, e) in self.files.iter().zip(&existed) {
                    if *e {
                        let _ = std::fs::remove_file(self.dir.join(backup_name(&f.name, pid)));
                    }
                }
                std::fs::remove_file(&journal)
                    .with_context(|| format!("removing {}", journal.display()))?;
                sync_dir(&self.dir);
                self.committed = true;
                Ok(done)
            }
            Err(e) if renames != usize::MAX => {
                // A simulated kill: leave everything as a killed process would.
                self.committed = true;
                Err(e)
            }
            Err(e) => {
                roll_back(&self.dir, &journal, pid);
                Err(e)
            }
        }
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.committed {
            for f in &self.files {
                let _ = std::fs::remove_file(&f.tmp);
            }
        }
    }
}

#[cfg(test)]
mod tests;
