//! Looking at the real machine for the installer: its NICs, serial and kernel command
//! line, its disks from sysfs and `/dev/disk/*` links, what each disk holds, and which
//! disk the firmware booted from. Every path is taken below a root prefix, so tests build
//! a fake `/sys` and `/dev` in a temporary folder (disks are then plain files).

use super::identity::Machine;
use super::probe::{self, PROBE_BYTES};
use super::target::{Disk, Observed};
use anyhow::{Context, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// systemd-boot's `LoaderDevicePartUUID` EFI variable (the partition it was loaded from).
pub const LOADER_PARTUUID_VAR: &str =
    "sys/firmware/efi/efivars/LoaderDevicePartUUID-4a67b082-0a4c-41cf-b6c7-440b29bb8c4f";

/// Kernel names that are never install targets or decoys worth probing.
fn ignored(name: &str) -> bool {
    ["loop", "ram", "zram", "sr", "fd", "dm-", "md", "nbd"]
        .iter()
        .any(|p| name.starts_with(p))
}

fn read_trim(p: &Path) -> Option<String> {
    std::fs::read_to_string(p)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// The machine's identity evidence.
pub fn machine(root: &Path) -> Machine {
    let mut macs = Vec::new();
    if let Ok(rd) = std::fs::read_dir(root.join("sys/class/net")) {
        for e in rd.flatten() {
            // Physical NICs have a `device` link; bridges, bonds and lo do not.
            if !e.path().join("device").exists() {
                continue;
            }
            if let Some(m) = read_trim(&e.path().join("address")) {
                let m = m.to_ascii_lowercase();
                if m != "00:00:00:00:00:00" {
                    macs.push(m);
                }
            }
        }
    }
    macs.sort();
    macs.dedup();
    Machine {
        macs,
        serial: read_trim(&root.join("sys/class/dmi/id/product_serial")),
        cmdline: read_trim(&root.join("proc/cmdline")).unwrap_or_default(),
    }
}

/// Symlinks in a `/dev/disk/<kind>` folder → the kernel name they point at.
fn links(dir: &Path) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if let Ok(target) = std::fs::read_link(e.path()) {
                if let Some(n) = target.file_name() {
                    let link = format!(
                        "/dev/disk/{}/{}",
                        dir.file_name().unwrap_or_default().to_string_lossy(),
                        e.file_name().to_string_lossy()
                    );
                    m.insert(link, n.to_string_lossy().into_owned());
                }
            }
        }
    }
    m
}

/// The PARTUUID in systemd-boot's EFI variable: 4 attribute bytes, then UTF-16LE text.
pub fn loader_partuuid(root: &Path) -> Option<String> {
    let raw = std::fs::read(root.join(LOADER_PARTUUID_VAR)).ok()?;
    crate::apply::parse_loader_partuuid(&raw)
}

/// `root=PARTUUID=…` from a kernel command line, lower-case.
pub fn cmdline_root_partuuid(cmdline: &str) -> Option<String> {
    cmdline
        .split_whitespace()
        .find_map(|a| a.strip_prefix("root=PARTUUID="))
        .map(str::to_ascii_lowercase)
}

/// Reads `len` bytes at `off` (short at the end of the device).
fn read_at(f: &File, off: u64, len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    let mut got = 0;
    while got < len {
        match f.read_at(&mut buf[got..], off + got as u64) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    buf.truncate(got);
    buf
}

/// Everything the target decision needs. `boot_partuuids` are partitions the running
/// installer came from (the loader's, the root's); `mounts` is `/proc/self/mountinfo`.
pub fn observe(root: &Path, boot_partuuids: &[String]) -> Result<Observed> {
    let mut obs = Observed::default();
    let by_partuuid = links(&root.join("dev/disk/by-partuuid"));
    for kind in [
        "by-id",
        "by-path",
        "by-partuuid",
        "by-partlabel",
        "by-uuid",
        "by-label",
        "by-diskseq",
    ] {
        obs.links.extend(links(&root.join("dev/disk").join(kind)));
    }
    let boot_parts: BTreeSet<String> = boot_partuuids
        .iter()
        .filter_map(|u| {
            by_partuuid
                .get(&format!("/dev/disk/by-partuuid/{u}"))
                .cloned()
        })
        .collect();
    let mounts = std::fs::read_to_string(root.join("proc/self/mountinfo")).unwrap_or_default();
    let sys_block = root.join("sys/block");
    let mut names: Vec<String> = std::fs::read_dir(&sys_block)
        .with_context(|| format!("listing {}", sys_block.display()))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !ignored(n))
        // NVMe multipath lists each path as a hidden `nvmeXcYnZ` beside the real disk.
        .filter(|n| read_trim(&sys_block.join(n).join("hidden")).as_deref() != Some("1"))
        .collect();
    names.sort();
    for name in names {
        let sys = sys_block.join(&name);
        let size = read_trim(&sys.join("size"))
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0)
            * 512;
        let mut parts = Vec::new();
        if let Ok(rd) = std::fs::read_dir(&sys) {
            for e in rd.flatten() {
                let p = e.file_name().to_string_lossy().into_owned();
                if p.starts_with(&name) && e.path().join("partition").exists() {
                    let start = read_trim(&e.path().join("start"))
                        .and_then(|s| s.parse::<u64>().ok())
                        .unwrap_or(0)
                        * 512;
                    parts.push((p, start, e.path()));
                }
            }
        }
        parts.sort();
        for (p, _, _) in &parts {
            obs.partitions.insert(p.clone(), name.clone());
        }
        let resolved = std::fs::canonicalize(&sys).unwrap_or_else(|_| sys.clone());
        let rs = resolved.to_string_lossy();
        let transport = if rs.contains("/usb") {
            "usb"
        } else if name.starts_with("nvme") {
            "nvme"
        } else if rs.contains("/virtio") {
            "virtio"
        } else if rs.contains("/ata") {
            "sata"
        } else if name.starts_with("mmcblk") {
            "mmc"
        } else {
            "scsi"
        };
        let dev = sys.join("device");
        let udev = read_trim(&sys.join("dev"))
            .map(|d| udev_properties(&root.join("run/udev/data").join(format!("b{d}"))))
            .unwrap_or_default();
        // udev's model is the full one (ATA's sysfs model is cut at 16 characters).
        let model = udev
            .get("ID_MODEL")
            .map(|m| m.replace('_', " "))
            .or_else(|| read_trim(&dev.join("model")))
            .unwrap_or_default();
        // udev's ID_SERIAL_SHORT is what the by-id names are made of.
        let mut serial = udev
            .get("ID_SERIAL_SHORT")
            .cloned()
            .or_else(|| read_trim(&dev.join("serial")))
            .unwrap_or_default();
        let mut by_id: Vec<String> = obs
            .links
            .iter()
            .filter(|(l, n)| l.starts_with("/dev/disk/by-id/") && **n == name)
            .map(|(l, _)| l.clone())
            .collect();
        by_id.sort_by_key(|l| (l.contains("/wwn-") || l.contains("nvme-eui."), l.clone()));
        if serial.is_empty() {
            // SCSI and USB disks show their serial only in the by-id name (`…_SERIAL`).
            if let Some(l) = by_id.first() {
                serial = l.rsplit('_').next().unwrap_or_default().to_string();
            }
        }
        let mut in_use = None;
        let mut holders: Vec<String> = Vec::new();
        for p in std::iter::once(sys.clone()).chain(parts.iter().map(|p| p.2.clone())) {
            if let Ok(rd) = std::fs::read_dir(p.join("holders")) {
                holders.extend(
                    rd.flatten()
                        .map(|e| e.file_name().to_string_lossy().into_owned()),
                );
            }
        }
        if !holders.is_empty() {
            in_use = Some(format!(
                "held by {} (LVM, RAID or dm-crypt active on it)",
                holders.join(", ")
            ));
        }
        for line in mounts.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            let Some(dash) = f.iter().position(|x| *x == "-") else {
                continue;
            };
            let (Some(src), Some(mp)) = (f.get(dash + 2), f.get(4)) else {
                continue;
            };
            let src = src.trim_start_matches("/dev/");
            if src == name || parts.iter().any(|p| p.0 == src) {
                in_use = Some(format!("/dev/{src} is mounted on {mp}"));
                break;
            }
        }
        let boot_medium =
            parts.iter().any(|p| boot_parts.contains(&p.0)) || boot_parts.contains(&name);
        // Probe: first and last MiB of the disk, start of each partition.
        let probe = match File::open(root.join("dev").join(&name)) {
            Ok(f) => {
                let head = read_at(&f, 0, PROBE_BYTES.min(size as usize));
                let tail_len = PROBE_BYTES.min(size as usize);
                let tail = read_at(&f, size - tail_len as u64, tail_len);
                let starts: Vec<Vec<u8>> =
                    parts.iter().map(|p| read_at(&f, p.1, 576 << 10)).collect();
                probe::probe_disk(&head, &tail, &starts)
            }
            Err(e) => {
                // Unreadable: treat as holding data, never as blank.
                tracing::warn!(disk = %name, "cannot read: {e}");
                probe::DiskProbe {
                    signatures: vec![probe::Signature::UnknownData],
                    gpt: None,
                }
            }
        };
        obs.disks.push(Disk {
            name,
            size,
            model,
            serial,
            transport: transport.into(),
            removable: read_trim(&sys.join("removable")).as_deref() == Some("1"),
            by_id,
            boot_medium,
            in_use,
            probe,
        });
    }
    Ok(obs)
}

/// `E:KEY=VALUE` properties of a udev database entry (`/run/udev/data/b<major>:<minor>`).
pub fn udev_properties(path: &Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.strip_prefix("E:")?.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

/// The device node of a disk below `root`.
pub fn dev_path(root: &Path, name: &str) -> PathBuf {
    root.join("dev").join(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn disk(root: &Path, name: &str, size: u64, model: &str, serial: &str, id: &str) {
        let sys = root.join("sys/block").join(name);
        std::fs::create_dir_all(sys.join("device")).unwrap();
        std::fs::write(sys.join("size"), format!("{}\n", size / 512)).unwrap();
        std::fs::write(sys.join("device/model"), format!("{model}\n")).unwrap();
        if !serial.is_empty() {
            std::fs::write(sys.join("device/serial"), format!("{serial}\n")).unwrap();
        }
        std::fs::create_dir_all(root.join("dev/disk/by-id")).unwrap();
        File::create(root.join("dev").join(name))
            .unwrap()
            .set_len(size)
            .unwrap();
        symlink(
            format!("../../{name}"),
            root.join("dev/disk/by-id").join(id),
        )
        .unwrap();
    }

    fn partition(root: &Path, disk: &str, part: &str, start: u64, partuuid: &str) {
        let p = root.join("sys/block").join(disk).join(part);
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(p.join("partition"), "1\n").unwrap();
        std::fs::write(p.join("start"), format!("{}\n", start / 512)).unwrap();
        std::fs::create_dir_all(root.join("dev/disk/by-partuuid")).unwrap();
        symlink(
            format!("../../{part}"),
            root.join("dev/disk/by-partuuid").join(partuuid),
        )
        .unwrap();
    }

    #[test]
    fn fake_machine_is_observed() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        disk(
            r,
            "nvme0n1",
            64 << 20,
            "QEMU NVMe Ctrl",
            "T1",
            "nvme-QEMU_NVMe_Ctrl_T1",
        );
        disk(
            r,
            "sda",
            32 << 20,
            "QEMU HARDDISK",
            "",
            "usb-QEMU_QEMU_HARDDISK_STICK-0:0",
        );
        partition(r, "sda", "sda1", 1 << 20, "aaaa-bbbb");
        std::fs::create_dir_all(r.join("sys/block/loop0")).unwrap();
        std::fs::create_dir_all(r.join("sys/block/nvme0c0n1")).unwrap();
        std::fs::write(r.join("sys/block/nvme0c0n1/hidden"), "1\n").unwrap();
        // An ext4 signature inside the stick's first partition.
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(r.join("dev/sda"))
            .unwrap();
        f.write_all_at(&[0x53, 0xef], (1 << 20) + 1080).unwrap();
        std::fs::create_dir_all(r.join("proc/self")).unwrap();
        std::fs::write(
            r.join("proc/self/mountinfo"),
            "36 25 8:1 / /run/hcikit/stick rw,relatime shared:1 - vfat /dev/sda1 rw\n",
        )
        .unwrap();
        std::fs::write(r.join("sys/block/sda/dev"), "8:0\n").unwrap();
        std::fs::create_dir_all(r.join("run/udev/data")).unwrap();
        std::fs::write(
            r.join("run/udev/data/b8:0"),
            "S:disk/by-id/usb-QEMU_QEMU_HARDDISK_STICK-0:0\nE:ID_SERIAL_SHORT=STICK\nE:ID_BUS=usb\n",
        )
        .unwrap();
        let o = observe(r, &["aaaa-bbbb".to_string()]).unwrap();
        assert_eq!(
            o.disks.len(),
            2,
            "loop devices and hidden NVMe paths are ignored"
        );
        let nvme = &o.disks[0];
        assert_eq!(
            (nvme.name.as_str(), nvme.size, nvme.serial.as_str()),
            ("nvme0n1", 64 << 20, "T1")
        );
        assert_eq!(nvme.transport, "nvme");
        assert!(nvme.probe.is_blank() && !nvme.boot_medium && nvme.in_use.is_none());
        assert_eq!(nvme.by_id, ["/dev/disk/by-id/nvme-QEMU_NVMe_Ctrl_T1"]);
        let stick = &o.disks[1];
        assert!(stick.boot_medium);
        assert_eq!(
            stick.serial, "STICK",
            "udev's serial wins over the by-id name"
        );
        assert!(stick
            .in_use
            .as_deref()
            .unwrap()
            .contains("mounted on /run/hcikit/stick"));
        assert_eq!(stick.probe.signatures, [probe::Signature::Ext4]);
        assert_eq!(o.partitions["sda1"], "sda");
        assert_eq!(o.links["/dev/disk/by-id/nvme-QEMU_NVMe_Ctrl_T1"], "nvme0n1");
    }

    #[test]
    fn machine_reads_physical_nics_only() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        for (n, mac, phys) in [
            ("ens18", "1C:69:7A:00:00:21", true),
            ("vmbr0", "1c:69:7a:00:00:21", false),
            ("lo", "00:00:00:00:00:00", false),
        ] {
            let p = r.join("sys/class/net").join(n);
            std::fs::create_dir_all(&p).unwrap();
            std::fs::write(p.join("address"), format!("{mac}\n")).unwrap();
            if phys {
                std::fs::create_dir_all(p.join("device")).unwrap();
            }
        }
        std::fs::create_dir_all(r.join("proc")).unwrap();
        std::fs::write(
            r.join("proc/cmdline"),
            "root=PARTUUID=ABC-1 ro hcikit.install=1\n",
        )
        .unwrap();
        let m = machine(r);
        assert_eq!(m.macs, ["1c:69:7a:00:00:21"]);
        assert_eq!(cmdline_root_partuuid(&m.cmdline).as_deref(), Some("abc-1"));
        assert_eq!(m.serial, None);
    }
}
