//! A node's EFI system partition: what goes on it (pure, [`esp_contents`]) and the FAT32
//! bytes written with the `fatfs` crate ([`write_fat`]).
//!
//! Contents: systemd-boot as `EFI/BOOT/BOOTX64.EFI` and `EFI/systemd/systemd-bootx64.efi`,
//! `loader/loader.conf`, `loader/entries/hcikit.conf` (root by this node's PARTUUID), the
//! base's kernel and initrd, and `hcikit/` as laid down in `hcikit_firstboot::layout`.
//! Timestamps are `SOURCE_DATE_EPOCH`; the volume id is derived from the node's name.

use crate::render::files::{NodeFile, Placement};
use anyhow::{Context, Result};
use hcikit_firstboot::layout;
use hcikit_firstboot::plan::{Plan, DESIRED_DIR};
use std::collections::BTreeMap;
use std::io::{Cursor, Write};

/// systemd-boot in the base.
mod fat_fixup;

pub const SYSTEMD_BOOT: &str = "usr/lib/systemd/boot/efi/systemd-bootx64.efi";
pub const LOADER_ENTRY: &str = "loader/entries/hcikit.conf";
pub const KERNEL: &str = "vmlinuz";
pub const INITRD: &str = "initrd.img";

/// What the boot entry and loader need from the base.
pub struct BootFiles {
    pub systemd_boot: Vec<u8>,
    pub kernel: Vec<u8>,
    pub initrd: Vec<u8>,
    /// Kernel version, for the entry title.
    pub version: String,
}

/// Which node folders the ESP carries.
pub enum Identity<'a> {
    /// One node: `hcikit/node` names it.
    Node(&'a str),
    /// Every node; the node picks its folder at first boot.
    Fleet,
}

/// The loader entry: kernel, initrd and the root by PARTUUID plus the Plan's arguments.
pub fn loader_entry(plan: &Plan, root_partuuid: &uuid::Uuid, version: &str) -> String {
    let mut options = format!("root=PARTUUID={root_partuuid} rw");
    for arg in &plan.image.kernel_cmdline {
        options.push(' ');
        options.push_str(arg);
    }
    format!(
        "title   hcikit {cluster} (Linux {version})\nlinux   /{KERNEL}\ninitrd  /{INITRD}\noptions {options}\n",
        cluster = plan.cluster.name
    )
}

pub fn loader_conf(plan: &Plan) -> String {
    format!(
        "default hcikit.conf\ntimeout {}\neditor no\n",
        plan.image.boot_timeout_secs
    )
}

/// A tar of files with their modes and owners, paths relative to `/`, sorted, mtimes at
/// `epoch`.
pub fn files_tar(files: &[&NodeFile], epoch: u64) -> Result<Vec<u8>> {
    let mut sorted: Vec<(String, &NodeFile)> = files
        .iter()
        .map(|f| {
            let path = match f.placement {
                Placement::Install => f.path.clone(),
                Placement::Desired => format!("{DESIRED_DIR}{}", f.path),
            };
            (path.trim_start_matches('/').to_string(), *f)
        })
        .collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut b = tar::Builder::new(Vec::new());
    for (path, f) in sorted {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(f.mode);
        h.set_uid(f.uid.into());
        h.set_gid(f.gid.into());
        h.set_mtime(epoch);
        h.set_size(f.contents.len() as u64);
        b.append_data(&mut h, &path, f.contents.as_slice())
            .with_context(|| format!("adding {path} to the node's tar"))?;
    }
    Ok(b.into_inner()?)
}

/// Every file on the ESP by path. `nodes` maps node names to their rendered files.
pub fn esp_contents(
    plan: &Plan,
    identity: &Identity,
    nodes: &BTreeMap<String, Vec<NodeFile>>,
    root_partuuid: &uuid::Uuid,
    boot: &BootFiles,
    epoch: u64,
) -> Result<BTreeMap<String, Vec<u8>>> {
    let mut m = BTreeMap::new();
    m.insert("EFI/BOOT/BOOTX64.EFI".into(), boot.systemd_boot.clone());
    m.insert(
        "EFI/systemd/systemd-bootx64.efi".into(),
        boot.systemd_boot.clone(),
    );
    m.insert("loader/loader.conf".into(), loader_conf(plan).into_bytes());
    m.insert(
        LOADER_ENTRY.into(),
        loader_entry(plan, root_partuuid, &boot.version).into_bytes(),
    );
    m.insert(KERNEL.into(), boot.kernel.clone());
    m.insert(INITRD.into(), boot.initrd.clone());
    let mut json = serde_json::to_vec_pretty(plan).context("serialising the plan")?;
    json.push(b'\n');
    m.insert(layout::ESP_PLAN.into(), json);
    if let Identity::Node(name) = identity {
        m.insert(layout::ESP_NODE.into(), format!("{name}\n").into_bytes());
    }
    for (name, files) in nodes {
        let dir = layout::esp_node_dir(name);
        let public: Vec<&NodeFile> = files.iter().filter(|f| !f.secret).collect();
        let secret: Vec<&NodeFile> = files.iter().filter(|f| f.secret).collect();
        m.insert(
            format!("{dir}/{}", layout::FILES_TAR),
            files_tar(&public, epoch)?,
        );
        m.insert(
            format!("{dir}/{}", layout::SECRETS_TAR),
            files_tar(&secret, epoch)?,
        );
    }
    Ok(m)
}

/// FAT volume id from a name (first four bytes of its sha256).
pub fn volume_id(name: &str) -> u32 {
    use sha2::Digest;
    let h = sha2::Sha256::digest(name.as_bytes());
    u32::from_le_bytes([h[0], h[1], h[2], h[3]])
}

/// UTC civil date and time of a Unix timestamp (FAT stores local time; we store UTC).
pub fn civil(epoch: u64) -> (u16, u16, u16, u16, u16, u16) {
    let days = (epoch / 86400) as i64;
    let secs = epoch % 86400;
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y as u16,
        m as u16,
        d as u16,
        (secs / 3600) as u16,
        (secs % 3600 / 60) as u16,
        (secs % 60) as u16,
    )
}

#[derive(Debug)]
struct FixedTime(fatfs::DateTime);

impl fatfs::TimeProvider for FixedTime {
    fn get_current_date(&self) -> fatfs::Date {
        self.0.date
    }
    fn get_current_date_time(&self) -> fatfs::DateTime {
        self.0
    }
}

fn fixed_time(epoch: u64) -> &'static FixedTime {
    use std::sync::Mutex;
    // fatfs wants a `&'static` provider: keep one per distinct epoch for the process.
    static CACHE: Mutex<Vec<(u64, &'static FixedTime)>> = Mutex::new(Vec::new());
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, t)) = cache.iter().find(|(e, _)| *e == epoch) {
        return t;
    }
    // FAT cannot store dates before 1980.
    let (y, mo, d, h, mi, s) = civil(epoch.max(315_532_800));
    let t: &'static FixedTime = Box::leak(Box::new(FixedTime(fatfs::DateTime {
        date: fatfs::Date {
            year: y.min(2107),
            month: mo,
            day: d,
        },
        time: fatfs::Time {
            hour: h,
            min: mi,
            sec: s,
            millis: 0,
        },
    })));
    cache.push((epoch, t));
    t
}

/// Formats a FAT32 volume of `size` bytes holding `files` and returns its bytes.
pub fn write_fat(
    size: u64,
    volume_id: u32,
    files: &BTreeMap<String, Vec<u8>>,
    epoch: u64,
) -> Result<Vec<u8>> {
    // Zeroed pages are allocated lazily: an untouched ESP region costs no memory.
    let mut bytes = vec![0u8; size as usize];
    write_fat_into(&mut bytes, volume_id, files, epoch)?;
    Ok(bytes)
}

/// Formats a FAT32 volume in `buf` (all zeros, the partition's size) holding `files`.
pub fn write_fat_into(
    buf: &mut [u8],
    volume_id: u32,
    files: &BTreeMap<String, Vec<u8>>,
    epoch: u64,
) -> Result<()> {
    let mut disk = Cursor::new(&mut *buf);
    fatfs::format_volume(
        &mut disk,
        fatfs::FormatVolumeOptions::new()
            .fat_type(fatfs::FatType::Fat32)
            .volume_id(volume_id)
            .volume_label(*b"ESP        "),
    )
    .context("formatting the ESP as FAT32 (is image.esp-size at least 64 MiB?)")?;
    disk.set_position(0);
    {
        let fs = fatfs::FileSystem::new(
            &mut disk,
            fatfs::FsOptions::new()
                .update_accessed_date(false)
                .time_provider(fixed_time(epoch)),
        )
        .context("opening the new ESP")?;
        write_files(&fs, files)?;
        fs.unmount().context("closing the ESP")?;
    }
    fat_fixup::fix_fat32_dirs(buf).context("finishing the ESP directories")
}

/// Byte intervals of a FAT32 volume written by [`write_fat_into`] that a copy onto a used
/// disk must write even where they are zeros: the reserved area and both FATs (free
/// entries are zeros, and stale bytes there read as chains) and every allocated cluster
/// (an empty directory cluster is zeros; a file may hold zero blocks). Free clusters are
/// left out: no FAT entry points at them.
pub fn metadata_extents(buf: &[u8]) -> Result<Vec<(u64, u64)>> {
    let u16_at = |o: usize| u64::from(u16::from_le_bytes([buf[o], buf[o + 1]]));
    let u32_at = |o: usize| {
        u64::from(u32::from_le_bytes([
            buf[o],
            buf[o + 1],
            buf[o + 2],
            buf[o + 3],
        ]))
    };
    anyhow::ensure!(buf.len() >= 512, "the ESP is shorter than a boot sector");
    let bps = u16_at(11);
    let spc = u64::from(buf[13]);
    let reserved = u16_at(14);
    let fats = u64::from(buf[16]);
    let fat_sectors = u32_at(36);
    let total = u32_at(32).max(u16_at(19));
    anyhow::ensure!(
        bps >= 512 && spc > 0 && fats > 0 && u16_at(22) == 0,
        "the ESP is not a FAT32 volume"
    );
    let data_start = (reserved + fats * fat_sectors) * bps;
    let cluster = bps * spc;
    let len = (total * bps).min(buf.len() as u64);
    anyhow::ensure!(data_start <= len, "the ESP's FATs run past its end");
    let mut out = vec![(0, data_start)];
    let fat_start = (reserved * bps) as usize;
    let clusters = (len - data_start) / cluster;
    for c in 2..clusters + 2 {
        let o = fat_start + 4 * c as usize;
        if o + 4 > data_start as usize {
            break;
        }
        let entry = u32::from_le_bytes([buf[o], buf[o + 1], buf[o + 2], buf[o + 3]]) & 0x0FFF_FFFF;
        if entry != 0 {
            let at = data_start + (c - 2) * cluster;
            out.push((at, at + cluster));
        }
    }
    Ok(out)
}

fn write_files<T: fatfs::ReadWriteSeek>(
    fs: &fatfs::FileSystem<T>,
    files: &BTreeMap<String, Vec<u8>>,
) -> Result<()> {
    let root = fs.root_dir();
    {
        for (path, bytes) in files {
            let mut parts: Vec<&str> = path.split('/').collect();
            let name = parts.pop().expect("split gives at least one part");
            let mut dir = root.clone();
            for p in parts {
                dir = match dir.open_dir(p) {
                    Ok(d) => d,
                    Err(_) => dir
                        .create_dir(p)
                        .with_context(|| format!("creating {p} on the ESP"))?,
                };
            }
            let mut f = dir
                .create_file(name)
                .with_context(|| format!("creating {path} on the ESP"))?;
            f.truncate()?;
            // In a memory buffer, a failed write means the volume is full: the spec's
            // image.esp-size is too small for the base's kernel and initrd.
            f.write_all(bytes).map_err(|e| {
                crate::error::InputError::new(format!(
                    "{path} ({} MiB) does not fit on the ESP: raise image.esp-size ({e})",
                    bytes.len().div_ceil(1 << 20)
                ))
            })?;
            f.flush()?;
        }
    }
    Ok(())
}

/// Read access for `fatfs`, which wants a writable stream even to read; writes fail.
struct ReadOnly<'a>(Cursor<&'a [u8]>);

impl std::io::Read for ReadOnly<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}
impl std::io::Seek for ReadOnly<'_> {
    fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
        self.0.seek(pos)
    }
}
impl Write for ReadOnly<'_> {
    fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
        Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            "read-only ESP",
        ))
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Deepest folder nesting [`list_fat`] follows; hcikit writes at most four levels.
const MAX_DEPTH: usize = 16;

/// Checks what `fatfs` 0.3 trusts when it reads a FAT32 volume from someone else: the
/// boot sector's geometry fits the bytes, and every FAT entry is free, the end of a
/// chain, or a cluster that exists — with no chain that loops (fatfs would follow it
/// forever).
pub fn check_fat(buf: &[u8]) -> Result<()> {
    anyhow::ensure!(buf.len() >= 512, "shorter than a boot sector");
    anyhow::ensure!(buf[510..512] == [0x55, 0xAA], "no boot sector signature");
    let u16_at = |o: usize| u64::from(u16::from_le_bytes([buf[o], buf[o + 1]]));
    let u32_at = |o: usize| {
        u64::from(u32::from_le_bytes([
            buf[o],
            buf[o + 1],
            buf[o + 2],
            buf[o + 3],
        ]))
    };
    let (bps, spc, reserved, fats) = (
        u16_at(11),
        u64::from(buf[13]),
        u16_at(14),
        u64::from(buf[16]),
    );
    anyhow::ensure!(
        [512, 1024, 2048, 4096].contains(&bps) && spc.is_power_of_two() && spc <= 128,
        "boot sector geometry is invalid ({bps} bytes per sector, {spc} sectors per cluster)"
    );
    anyhow::ensure!(
        reserved > 0 && fats > 0 && fats <= 4,
        "boot sector geometry is invalid"
    );
    if u16_at(22) != 0 {
        // FAT12/16: fixed-size root folder, no chain for it; fatfs bounds those walks.
        return Ok(());
    }
    let fat_sectors = u32_at(36);
    let total = u32_at(32);
    let len = buf.len() as u64;
    anyhow::ensure!(
        total * bps <= len,
        "the volume claims {} bytes but holds {len}",
        total * bps
    );
    let data_start = (reserved + fats * fat_sectors) * bps;
    anyhow::ensure!(
        data_start < total * bps,
        "the FATs run past the end of the volume"
    );
    let clusters = (total * bps - data_start) / (bps * spc);
    let entries = (fat_sectors * bps / 4).min(clusters + 2);
    anyhow::ensure!(
        entries >= clusters + 2,
        "the FAT is shorter than the volume's clusters"
    );
    let fat_start = (reserved * bps) as usize;
    let next = |c: u64| -> u64 {
        let o = fat_start + 4 * c as usize;
        u64::from(u32::from_le_bytes([buf[o], buf[o + 1], buf[o + 2], buf[o + 3]]) & 0x0FFF_FFFF)
    };
    let in_range = |c: u64| (2..clusters + 2).contains(&c);
    let root = u32_at(44);
    anyhow::ensure!(
        in_range(root),
        "the root folder's cluster {root} does not exist"
    );
    // 0 = unvisited, 1 = on the current path, 2 = ends properly.
    let mut state = vec![0u8; (clusters + 2) as usize];
    for start in 2..clusters + 2 {
        if state[start as usize] != 0 || next(start) == 0 {
            continue;
        }
        let mut path = Vec::new();
        let mut c = start;
        loop {
            match state[c as usize] {
                1 => anyhow::bail!("the cluster chain through cluster {c} loops"),
                2 => break,
                _ => {}
            }
            state[c as usize] = 1;
            path.push(c);
            let n = next(c);
            if n >= 0x0FFF_FFF7 {
                break;
            }
            anyhow::ensure!(
                in_range(n),
                "cluster {c} points at cluster {n}, which does not exist"
            );
            c = n;
        }
        for c in path {
            state[c as usize] = 2;
        }
    }
    Ok(())
}

fn open_ro(bytes: &[u8]) -> Result<fatfs::FileSystem<ReadOnly<'_>>> {
    check_fat(bytes).context("the ESP is not a sound FAT volume")?;
    fatfs::FileSystem::new(
        ReadOnly(Cursor::new(bytes)),
        fatfs::FsOptions::new().update_accessed_date(false),
    )
    .context("reading the ESP")
}

/// Lists an ESP's files (path, size), for `inspect` and tests.
pub fn list_fat(bytes: &[u8]) -> Result<Vec<(String, u64)>> {
    let fs = open_ro(bytes)?;
    let mut out = Vec::new();
    fn walk<T: fatfs::ReadWriteSeek>(
        dir: fatfs::Dir<T>,
        prefix: &str,
        depth: usize,
        out: &mut Vec<(String, u64)>,
    ) -> Result<()> {
        // A folder entry may point at a folder above it: the nesting is bounded instead
        // of followed (the chains themselves are checked by `check_fat`).
        anyhow::ensure!(
            depth <= MAX_DEPTH,
            "folders nested deeper than {MAX_DEPTH} levels at {prefix} (a folder that contains itself?)"
        );
        for e in dir.iter() {
            let e = e?;
            let name = e.file_name();
            if name == "." || name == ".." {
                continue;
            }
            let path = format!("{prefix}{name}");
            if e.is_dir() {
                walk(e.to_dir(), &format!("{path}/"), depth + 1, out)?;
            } else {
                out.push((path, e.len()));
            }
        }
        Ok(())
    }
    walk(fs.root_dir(), "", 0, &mut out)?;
    out.sort();
    Ok(out)
}

/// Reads one file from an ESP.
pub fn read_fat_file(bytes: &[u8], path: &str) -> Result<Vec<u8>> {
    use std::io::Read;
    let fs = open_ro(bytes)?;
    let mut f = fs
        .root_dir()
        .open_file(path)
        .with_context(|| format!("opening {path} on the ESP"))?;
    let mut out = Vec::new();
    f.read_to_end(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil(0), (1970, 1, 1, 0, 0, 0));
        assert_eq!(civil(1_700_000_000), (2023, 11, 14, 22, 13, 20));
        assert_eq!(civil(951_782_400), (2000, 2, 29, 0, 0, 0));
    }

    #[test]
    fn fat_round_trip_is_deterministic() {
        let mut files = BTreeMap::new();
        files.insert("EFI/BOOT/BOOTX64.EFI".to_string(), b"MZ stub".to_vec());
        files.insert("hcikit/nodes/pve1/files.tar".to_string(), vec![5; 10_000]);
        files.insert("loader/loader.conf".to_string(), b"timeout 3\n".to_vec());
        let a = write_fat(64 << 20, 0x1234_5678, &files, 1_700_000_000).unwrap();
        let b = write_fat(64 << 20, 0x1234_5678, &files, 1_700_000_000).unwrap();
        assert!(a == b, "same inputs, different FAT bytes");
        let listed = list_fat(&a).unwrap();
        assert_eq!(
            listed,
            vec![
                ("EFI/BOOT/BOOTX64.EFI".to_string(), 7),
                ("hcikit/nodes/pve1/files.tar".to_string(), 10_000),
                ("loader/loader.conf".to_string(), 10),
            ]
        );
        assert_eq!(
            read_fat_file(&a, "loader/loader.conf").unwrap(),
            b"timeout 3\n"
        );
        let fs = open_ro(&a).unwrap();
        assert_eq!(fs.fat_type(), fatfs::FatType::Fat32);
        assert_eq!(fs.volume_id(), 0x1234_5678);
    }

    #[test]
    fn node_tar_splits_desired_files_under_their_prefix() {
        let f = NodeFile {
            path: "/etc/pve/datacenter.cfg".into(),
            mode: 0o640,
            uid: 0,
            gid: 33,
            contents: b"keyboard: en-us\n".to_vec(),
            secret: false,
            placement: Placement::Desired,
        };
        let t = files_tar(&[&f], 5).unwrap();
        let mut a = tar::Archive::new(&t[..]);
        let e = a.entries().unwrap().next().unwrap().unwrap();
        assert_eq!(
            e.path().unwrap().to_str().unwrap(),
            format!(
                "{}/etc/pve/datacenter.cfg",
                DESIRED_DIR.trim_start_matches('/')
            )
        );
        assert_eq!(e.header().mode().unwrap(), 0o640);
        assert_eq!(e.header().gid().unwrap(), 33);
        assert_eq!(e.header().mtime().unwrap(), 5);
    }
}
