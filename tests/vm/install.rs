//! QEMU guests for the install tier: a mini PC with the installer stick as USB storage,
//! NVMe disks, a SATA SSD and a USB disk, booted through OVMF. Command lines are pure
//! functions; processes are owned by [`super::qemu::Running`] (killed by PID on drop).
//!
//! Device naming in the guest follows from the QEMU devices: an `nvme` device with
//! `serial=S` is `/dev/disk/by-id/nvme-QEMU_NVMe_Ctrl_S`; an `ide-hd` on an AHCI bus with
//! `model=M,serial=S` is `/dev/disk/by-id/ata-M_S` (spaces as `_`), like a real SATA SSD.

use super::qemu::{self, Nic};
use anyhow::{bail, Result};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The SATA SSDs of `examples/minipc.toml` (by-id `ata-<model>_<serial>`): the nodes'
/// OSD disks, decoys for the installers.
pub const SSDS: &[(&str, &str)] = &[
    ("Samsung SSD 870 EVO 500GB", "S6PXNM0T000001"),
    ("Samsung SSD 870 EVO 500GB", "S6PXNM0T000002"),
    ("Samsung SSD 870 EVO 1TB", "S6PTNM0T000003"),
];

/// The serial of node `i`'s NVMe target (by-id `nvme-QEMU_NVMe_Ctrl_<serial>`).
pub fn nvme_serial(node: usize) -> String {
    format!("HCIKITNVME{}", node + 1)
}

/// `examples/minipc.toml` as the install tiers run it, written into `run` with its
/// secrets: the VM NIC name, each node's NVMe target by id, console on the serial port,
/// power off after install, no confirmation wait; `install-wipe` on the first node when
/// `wipe_first` (its target holds old data on purpose).
pub fn minipc_spec(run: &Path, wipe_first: bool) -> Result<PathBuf> {
    let examples = hcikit_tests::workspace_root().join("examples");
    let mut text = std::fs::read_to_string(examples.join("minipc.toml"))?;
    text = text.replace("interface = \"enp1s0\"", "interface = \"ens18\"");
    for i in 0..3 {
        let from = "install-disk = \"/dev/nvme0n1\"";
        if !text.contains(from) {
            bail!("minipc.toml no longer names /dev/nvme0n1 for node {i}");
        }
        let wipe = if i == 0 && wipe_first {
            "\ninstall-wipe = true"
        } else {
            ""
        };
        text = text.replacen(
            from,
            &format!(
                "install-disk = \"/dev/disk/by-id/nvme-QEMU_NVMe_Ctrl_{}\"{wipe}",
                nvme_serial(i)
            ),
            1,
        );
    }
    text.push_str(
        "\n# Added by the install tests.\n[image]\nkernel-cmdline = [\"console=ttyS0,115200\"]\nboot-timeout = 1\nafter-install = \"poweroff\"\ninstall-confirm = 0\n",
    );
    super::write_spec(run, "minipc.toml", &text)
}

/// How a disk is attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bus {
    Nvme,
    /// SATA (AHCI) with a model name, as SSDs report it.
    Sata {
        model: String,
    },
    /// USB mass storage on the xHCI controller (the stick, a USB disk).
    Usb,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallDisk {
    pub path: PathBuf,
    pub bus: Bus,
    pub serial: String,
    /// `bootindex` for OVMF; `None` leaves the order to the UEFI variables.
    pub bootindex: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallVm {
    pub name: String,
    pub memory_mib: u32,
    pub accel: String,
    pub ovmf_code: PathBuf,
    /// This machine's own UEFI variable store (kept across its boots, like NVRAM).
    pub ovmf_vars: PathBuf,
    pub disks: Vec<InstallDisk>,
    pub nics: Vec<Nic>,
    /// ttyS0: firmware, kernel, systemd and the installer's lines.
    pub console_log: PathBuf,
    /// ttyS1: the VM tier's checker lines (after the install).
    pub results_log: PathBuf,
    pub fw_cfg: Vec<(String, PathBuf)>,
}

/// The guest's command line (without the program name).
pub fn install_vm_argv(c: &InstallVm) -> Vec<String> {
    let mut a: Vec<String> = [
        "-name",
        &c.name,
        "-machine",
        "pc",
        "-accel",
        &c.accel,
        // The installer hashes every byte twice; TCG runs the SHA extensions (which the
        // sha2 crate picks at run time) as one helper call instead of emulating the
        // scalar rounds instruction by instruction. Real mini PCs have them too.
        "-cpu",
        "qemu64,+ssse3,+sse4.1,+sse4.2,+sha-ni",
        "-smp",
        "1",
        "-m",
        &c.memory_mib.to_string(),
        "-nodefaults",
        "-no-user-config",
        "-nic",
        "none",
        "-display",
        "none",
        "-no-reboot",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.push("-serial".into());
    a.push(format!("file:{}", c.console_log.display()));
    a.push("-serial".into());
    a.push(format!("file:{}", c.results_log.display()));
    a.push("-drive".into());
    a.push(format!(
        "if=pflash,format=raw,unit=0,readonly=on,file={}",
        c.ovmf_code.display()
    ));
    a.push("-drive".into());
    a.push(format!(
        "if=pflash,format=raw,unit=1,file={}",
        c.ovmf_vars.display()
    ));
    if c.disks.iter().any(|d| d.bus == Bus::Usb) {
        a.push("-device".into());
        a.push("qemu-xhci,id=xhci,addr=0x6".into());
    }
    if c.disks.iter().any(|d| matches!(d.bus, Bus::Sata { .. })) {
        a.push("-device".into());
        a.push("ahci,id=ahci,addr=0x7".into());
    }
    let mut sata_port = 0;
    for (i, d) in c.disks.iter().enumerate() {
        a.push("-drive".into());
        a.push(format!(
            "if=none,id=d{i},format=raw,cache=unsafe,file={}",
            d.path.display()
        ));
        let boot = d
            .bootindex
            .map(|b| format!(",bootindex={b}"))
            .unwrap_or_default();
        let dev = match &d.bus {
            Bus::Nvme => format!("nvme,drive=d{i},serial={}{boot}", d.serial),
            Bus::Sata { model } => {
                sata_port += 1;
                format!(
                    "ide-hd,drive=d{i},bus=ahci.{},model={model},serial={}{boot}",
                    sata_port - 1,
                    d.serial
                )
            }
            Bus::Usb => format!(
                "usb-storage,drive=d{i},bus=xhci.0,serial={}{boot}",
                d.serial
            ),
        };
        a.push("-device".into());
        a.push(dev);
    }
    for (i, n) in c.nics.iter().enumerate() {
        a.push("-netdev".into());
        a.push(format!(
            "dgram,id=net{i},local.type=unix,local.path={},remote.type=unix,remote.path={}",
            n.link.local.display(),
            n.link.remote.display()
        ));
        a.push("-device".into());
        a.push(format!(
            "virtio-net-pci,netdev=net{i},mac={},addr={:#x}",
            n.mac, n.pci_slot
        ));
    }
    for (name, file) in &c.fw_cfg {
        a.push("-fw_cfg".into());
        a.push(format!("name={name},file={}", file.display()));
    }
    a
}

/// The installer's result line (`hcikit-install: result=…`) in a console log, if any.
pub fn result_line(console: &str) -> Option<String> {
    console
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .find_map(|l| {
            l.find("hcikit-install: result=")
                .map(|i| l[i..].to_string())
        })
}

/// Waits until the QEMU process exits (the guest powered off or rebooted: `-no-reboot`).
pub fn wait_exit(r: &mut qemu::Running, timeout: Duration) -> Result<Duration> {
    let t = Instant::now();
    loop {
        if r.check_alive().is_err() {
            return Ok(t.elapsed());
        }
        if t.elapsed() > timeout {
            bail!("{} did not power off within {timeout:?}", r.name);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// A sparse file of `size` bytes, optionally with `random` bytes of random data at its
/// start and end (an old disk), from a fixed seed.
pub fn make_disk(path: &Path, size: u64, random: u64, seed: u64) -> Result<()> {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::create(path)?;
    f.set_len(size)?;
    if random > 0 {
        let half = (random / 2) as usize;
        f.write_all_at(&noise(seed, 0, half), 0)?;
        f.write_all_at(&noise(seed, 1, half), size - half as u64)?;
    }
    Ok(())
}

/// `len` pseudo-random bytes: SHA-256 in counter mode over (seed, part, counter).
fn noise(seed: u64, part: u64, len: usize) -> Vec<u8> {
    use sha2::Digest;
    let mut out = Vec::with_capacity(len + 32);
    let mut i = 0u64;
    while out.len() < len {
        let mut h = sha2::Sha256::new();
        h.update(seed.to_le_bytes());
        h.update(part.to_le_bytes());
        h.update(i.to_le_bytes());
        out.extend_from_slice(&h.finalize());
        i += 1;
    }
    out.truncate(len);
    out
}

/// SHA-256 of a whole file (holes read as zeros).
pub fn sha256_file(p: &Path) -> Result<String> {
    use sha2::Digest;
    use std::io::Read;
    let mut f = std::fs::File::open(p)?;
    let mut h = sha2::Sha256::new();
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

/// A fingerprint of a file's bytes that reads only its data extents: SHA-256 over the
/// file's length and the offset and bytes of every 4 KiB block that is not all zeros.
/// It is a function of the bytes alone (a hole and written zeros read the same), so equal
/// fingerprints mean byte-identical files; holes are skipped (`SEEK_DATA`/`SEEK_HOLE`),
/// so an 8 GiB sparse decoy costs what its data costs. The extent layout itself is not
/// hashed: file systems report it differently over time (delayed allocation, unwritten
/// extents from `mkfs`), which says nothing about the bytes.
pub fn fingerprint(p: &Path) -> Result<String> {
    use nix::unistd::{lseek, Whence};
    use sha2::Digest;
    use std::os::unix::fs::FileExt;
    use std::os::unix::io::AsRawFd;
    const BLOCK: u64 = 4096;
    let f = std::fs::File::open(p)?;
    let len = f.metadata()?.len();
    let fd = f.as_raw_fd();
    let mut h = sha2::Sha256::new();
    h.update(len.to_le_bytes());
    let mut buf = vec![0u8; 4 << 20];
    let mut pos: u64 = 0;
    while pos < len {
        // ENXIO: no data after `pos`.
        let Ok(start) = lseek(fd, pos as i64, Whence::SeekData) else {
            break;
        };
        let end = lseek(fd, start, Whence::SeekHole)? as u64;
        // Whole blocks, so a block is hashed the same however the extents are cut.
        let mut at = (start as u64 / BLOCK) * BLOCK;
        let end = end.div_ceil(BLOCK).saturating_mul(BLOCK).min(len);
        while at < end {
            let n = ((end - at) as usize).min(buf.len());
            f.read_exact_at(&mut buf[..n], at)?;
            for (i, b) in buf[..n].chunks(BLOCK as usize).enumerate() {
                if b.iter().any(|&x| x != 0) {
                    h.update((at + i as u64 * BLOCK).to_le_bytes());
                    h.update(b);
                }
            }
            at += n as u64;
        }
        pos = end.max(pos + 1);
    }
    Ok(hex::encode(h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::super::qemu::DgramLink;
    use super::*;

    #[test]
    fn install_vm_command_line_is_pinned() {
        let c = InstallVm {
            name: "mini1".into(),
            memory_mib: 1536,
            accel: "tcg".into(),
            ovmf_code: "/ovmf/CODE.fd".into(),
            ovmf_vars: "/run/mini1.vars.fd".into(),
            disks: vec![
                InstallDisk {
                    path: "/run/stick.img".into(),
                    bus: Bus::Usb,
                    serial: "HCIKITSTICK".into(),
                    bootindex: Some(0),
                },
                InstallDisk {
                    path: "/run/nvme0.raw".into(),
                    bus: Bus::Nvme,
                    serial: "TARGET1".into(),
                    bootindex: None,
                },
                InstallDisk {
                    path: "/run/ssd.raw".into(),
                    bus: Bus::Sata {
                        model: "Samsung SSD 870 EVO 500GB".into(),
                    },
                    serial: "S6PXNM0T000001".into(),
                    bootindex: None,
                },
            ],
            nics: vec![Nic {
                mac: "1c:69:7a:00:00:21".into(),
                pci_slot: 0x12,
                link: DgramLink {
                    local: "/run/a".into(),
                    remote: "/run/b".into(),
                },
            }],
            console_log: "/run/c.log".into(),
            results_log: "/run/r.log".into(),
            fw_cfg: vec![],
        };
        assert_eq!(
            install_vm_argv(&c).join(" "),
            "-name mini1 -machine pc -accel tcg -cpu qemu64,+ssse3,+sse4.1,+sse4.2,+sha-ni -smp 1 -m 1536 -nodefaults -no-user-config -nic none \
             -display none -no-reboot -serial file:/run/c.log -serial file:/run/r.log \
             -drive if=pflash,format=raw,unit=0,readonly=on,file=/ovmf/CODE.fd \
             -drive if=pflash,format=raw,unit=1,file=/run/mini1.vars.fd \
             -device qemu-xhci,id=xhci,addr=0x6 -device ahci,id=ahci,addr=0x7 \
             -drive if=none,id=d0,format=raw,cache=unsafe,file=/run/stick.img \
             -device usb-storage,drive=d0,bus=xhci.0,serial=HCIKITSTICK,bootindex=0 \
             -drive if=none,id=d1,format=raw,cache=unsafe,file=/run/nvme0.raw \
             -device nvme,drive=d1,serial=TARGET1 \
             -drive if=none,id=d2,format=raw,cache=unsafe,file=/run/ssd.raw \
             -device ide-hd,drive=d2,bus=ahci.0,model=Samsung SSD 870 EVO 500GB,serial=S6PXNM0T000001 \
             -netdev dgram,id=net0,local.type=unix,local.path=/run/a,remote.type=unix,remote.path=/run/b \
             -device virtio-net-pci,netdev=net0,mac=1c:69:7a:00:00:21,addr=0x12"
        );
    }

    #[test]
    fn result_line_is_found_in_a_console_log() {
        let log = "\x1b[0mBdsDxe: loading\r\n[  OK  ] Started x\r\nhcikit-install: result=refused kind=holds-data node=mini1\r\n";
        assert_eq!(
            result_line(log).as_deref(),
            Some("hcikit-install: result=refused kind=holds-data node=mini1")
        );
        assert_eq!(result_line("nothing"), None);
    }

    #[test]
    fn fingerprint_follows_the_bytes_not_the_extents() {
        use std::os::unix::fs::FileExt;
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("a");
        make_disk(&a, 64 << 20, 2 << 20, 7).unwrap();
        let before = fingerprint(&a).unwrap();
        assert_eq!(fingerprint(&a).unwrap(), before);
        assert_eq!(
            before,
            {
                let b = d.path().join("b");
                make_disk(&b, 64 << 20, 2 << 20, 7).unwrap();
                fingerprint(&b).unwrap()
            },
            "same bytes, same fingerprint"
        );
        let f = std::fs::OpenOptions::new().write(true).open(&a).unwrap();
        // Zeros written into a hole: same bytes, same fingerprint.
        f.write_all_at(&[0u8; 8192], 32 << 20).unwrap();
        f.sync_all().unwrap();
        assert_eq!(fingerprint(&a).unwrap(), before);
        // One changed byte in the data, and one byte in a former hole.
        f.write_all_at(&[0x55], 100).unwrap();
        let changed = fingerprint(&a).unwrap();
        assert_ne!(changed, before);
        f.write_all_at(&[1], (40 << 20) + 5).unwrap();
        assert_ne!(fingerprint(&a).unwrap(), changed);
        // A zeroed data block differs from its old bytes.
        let c = d.path().join("c");
        make_disk(&c, 64 << 20, 2 << 20, 7).unwrap();
        let fc = std::fs::OpenOptions::new().write(true).open(&c).unwrap();
        fc.write_all_at(&[0u8; 4096], 0).unwrap();
        assert_ne!(fingerprint(&c).unwrap(), before);
    }

    #[test]
    fn decoy_disks_are_reproducible() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join("a"), d.path().join("b"));
        make_disk(&a, 8 << 20, 2 << 20, 7).unwrap();
        make_disk(&b, 8 << 20, 2 << 20, 7).unwrap();
        assert_eq!(sha256_file(&a).unwrap(), sha256_file(&b).unwrap());
        make_disk(&b, 8 << 20, 2 << 20, 8).unwrap();
        assert_ne!(sha256_file(&a).unwrap(), sha256_file(&b).unwrap());
    }
}
