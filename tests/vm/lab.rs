//! A lab of guests on loopback-only switches: disks, the test checker, the switch process,
//! and reading the checker's result lines.

use super::install::{self, InstallDisk, InstallVm};
use super::qemu::{self, Boot, DgramLink, Disk, Nic, Running, VmConfig};
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The checker script and its unit, injected into test copies of root file systems.
pub const CHECKER: &str = include_str!("checker.sh");
pub const CHECKER_UNIT: &str = "\
[Unit]
Description=hcikit VM test checker (test-only, injected by the VM test)
After=network.target hcikit-apply.service networking.service

[Service]
Type=simple
ExecStart=/usr/local/sbin/hcikit-vmtest
StandardOutput=journal
StandardError=journal

[Install]
WantedBy=multi-user.target
";

/// Writes the checker and an enabled unit into an ext4 file system with `debugfs -w`
/// (no mount, no root needed). `fs` is a file, optionally with `?offset=BYTES` for a
/// partition inside a disk image.
pub fn inject_checker(fs: &str, scratch: &Path) -> Result<()> {
    let script = scratch.join("hcikit-vmtest");
    let unit = scratch.join("hcikit-vmtest.service");
    std::fs::write(&script, CHECKER)?;
    std::fs::write(&unit, CHECKER_UNIT)?;
    let cmds = format!(
        "mkdir /usr/local/sbin\n\
         rm /usr/local/sbin/hcikit-vmtest\n\
         write {script} /usr/local/sbin/hcikit-vmtest\n\
         sif /usr/local/sbin/hcikit-vmtest mode 0100755\n\
         sif /usr/local/sbin/hcikit-vmtest uid 0\n\
         sif /usr/local/sbin/hcikit-vmtest gid 0\n\
         mkdir /etc/systemd/system/multi-user.target.wants\n\
         rm /etc/systemd/system/hcikit-vmtest.service\n\
         write {unit} /etc/systemd/system/hcikit-vmtest.service\n\
         sif /etc/systemd/system/hcikit-vmtest.service mode 0100644\n\
         sif /etc/systemd/system/hcikit-vmtest.service uid 0\n\
         sif /etc/systemd/system/hcikit-vmtest.service gid 0\n\
         rm /etc/systemd/system/multi-user.target.wants/hcikit-vmtest.service\n\
         symlink /etc/systemd/system/multi-user.target.wants/hcikit-vmtest.service /etc/systemd/system/hcikit-vmtest.service\n",
        script = script.display(),
        unit = unit.display()
    );
    let cmd_file = scratch.join("debugfs.cmds");
    std::fs::write(&cmd_file, cmds)?;
    qemu::tool(
        "debugfs",
        &["-w", "-f", &cmd_file.display().to_string(), fs],
        "e2fsprogs",
    )?;
    // debugfs reports per-command errors on stderr and still exits 0: read back instead.
    let listing = qemu::tool(
        "debugfs",
        &[
            "-R",
            "stat /etc/systemd/system/multi-user.target.wants/hcikit-vmtest.service",
            fs,
        ],
        "e2fsprogs",
    )?;
    if !listing.contains("Type: symlink") {
        bail!("injecting the checker into {fs} failed: {listing}");
    }
    Ok(())
}

/// One guest of a lab and what the test needs to restart it.
pub struct Guest {
    pub config: VmConfig,
    /// A mini PC's disks (NVMe, SATA, USB) instead of `config.disks` on virtio-scsi.
    pub install_disks: Vec<InstallDisk>,
    pub running: Option<Running>,
    /// Boots so far (log files are numbered per boot).
    pub boots: u32,
}

/// A set of guests plus the switch process. Everything is killed by PID on drop.
pub struct Lab {
    pub dir: PathBuf,
    pub switch: Option<Running>,
    pub guests: Vec<Guest>,
}

/// What one guest looks like: its disks, MACs and checker settings.
pub struct GuestSpec {
    pub name: String,
    pub boot: Boot,
    /// Boot disk first, on virtio-scsi.
    pub disks: Vec<Disk>,
    /// Or, when not empty, the disks of a mini PC as the install tier attaches them
    /// (NVMe, SATA, USB; the firmware's own boot order from its variable store).
    pub install_disks: Vec<InstallDisk>,
    /// One per network, in network order (NIC i sits at PCI slot 0x12 + i).
    pub macs: Vec<String>,
    /// Shell assignments for the checker (fw_cfg `opt/hcikit/vmtest`).
    pub checker_env: String,
}

impl Lab {
    /// Starts the switch (one hub per network) and all guests.
    pub fn start(dir: &Path, networks: usize, specs: Vec<GuestSpec>) -> Result<Lab> {
        let sock = dir.join("sock");
        std::fs::create_dir_all(&sock)?;
        let link = |net: usize, guest: usize| DgramLink {
            local: sock.join(format!("g{guest}-n{net}")),
            remote: sock.join(format!("sw-n{net}-g{guest}")),
        };
        let hubs: Vec<Vec<DgramLink>> = (0..networks)
            .map(|n| (0..specs.len()).map(|g| link(n, g).reversed()).collect())
            .collect();
        for h in hubs.iter().flatten() {
            let _ = std::fs::remove_file(&h.local);
        }
        let mut lab = Lab {
            dir: dir.to_path_buf(),
            switch: Some(Running::spawn("switch", &qemu::switch_argv(&hubs), dir)?),
            guests: Vec::new(),
        };
        let accel = std::env::var("HCIKIT_VM_ACCEL").unwrap_or_else(|_| "tcg".into());
        for (g, s) in specs.into_iter().enumerate() {
            let env_file = dir.join(format!("{}.vmtest.env", s.name));
            std::fs::write(&env_file, &s.checker_env)?;
            let nics = s
                .macs
                .iter()
                .enumerate()
                .map(|(n, mac)| Nic {
                    mac: mac.clone(),
                    pci_slot: 0x12 + n as u8,
                    link: link(n, g),
                })
                .collect();
            let config = VmConfig {
                name: s.name.clone(),
                memory_mib: 1024,
                accel: accel.clone(),
                boot: s.boot,
                disks: s.disks,
                nics,
                console_log: PathBuf::new(),
                results_log: PathBuf::new(),
                fw_cfg: vec![("opt/hcikit/vmtest".into(), env_file)],
            };
            lab.guests.push(Guest {
                config,
                install_disks: s.install_disks,
                running: None,
                boots: 0,
            });
            lab.boot(g)?;
        }
        Ok(lab)
    }

    /// (Re)starts guest `g` with fresh log files for this boot.
    pub fn boot(&mut self, g: usize) -> Result<()> {
        let dir = self.dir.clone();
        let guest = &mut self.guests[g];
        guest.boots += 1;
        let name = &guest.config.name;
        guest.config.console_log = dir.join(format!("{name}.boot{}.console.log", guest.boots));
        guest.config.results_log = dir.join(format!("{name}.boot{}.results.log", guest.boots));
        for n in &guest.config.nics {
            let _ = std::fs::remove_file(&n.link.local);
        }
        let label = format!("{name}.boot{}", guest.boots);
        let argv = if guest.install_disks.is_empty() {
            qemu::vm_argv(&guest.config)
        } else {
            let Boot::Ovmf { code, vars } = &guest.config.boot else {
                bail!("{name}: a mini PC boots through OVMF");
            };
            let c = &guest.config;
            install::install_vm_argv(&InstallVm {
                name: label.clone(),
                memory_mib: c.memory_mib,
                accel: c.accel.clone(),
                ovmf_code: code.clone(),
                ovmf_vars: vars.clone(),
                disks: guest.install_disks.clone(),
                nics: c.nics.clone(),
                console_log: c.console_log.clone(),
                results_log: c.results_log.clone(),
                fw_cfg: c.fw_cfg.clone(),
            })
        };
        guest.running = Some(Running::spawn(&label, &argv, &dir)?);
        Ok(())
    }

    /// Pulls the power on guest `g`.
    pub fn kill(&mut self, g: usize) {
        if let Some(mut r) = self.guests[g].running.take() {
            r.kill();
        }
    }

    pub fn results_log(&self, g: usize) -> PathBuf {
        self.guests[g].config.results_log.clone()
    }

    /// Waits for a result line of guest `g` (current boot) matching `want`; fails early
    /// when the guest or the switch dies. The duration is counted from the guest's start.
    pub fn wait<T>(
        &mut self,
        g: usize,
        timeout: Duration,
        want: impl FnMut(&str) -> Option<T>,
    ) -> Result<(T, Duration)> {
        self.wait_after(g, 0, timeout, want)
    }

    /// Like [`Lab::wait`], for lines after the first `skip` ones (see [`Lab::line_count`]).
    pub fn wait_after<T>(
        &mut self,
        g: usize,
        skip: usize,
        timeout: Duration,
        mut want: impl FnMut(&str) -> Option<T>,
    ) -> Result<(T, Duration)> {
        let file = self.results_log(g);
        let name = self.guests[g].config.name.clone();
        let started = self.guests[g].running.as_ref().map(|r| r.started);
        let (switch, guests) = (&mut self.switch, &mut self.guests);
        qemu::wait_for_line(
            &file,
            skip,
            timeout,
            || {
                if let Some(s) = switch.as_mut() {
                    s.check_alive()?;
                }
                if let Some(r) = guests[g].running.as_mut() {
                    r.check_alive()?;
                }
                Ok(())
            },
            |line| want(line),
        )
        .map(|(v, d)| (v, started.map(|s| s.elapsed()).unwrap_or(d)))
        .with_context(|| format!("waiting for {name}"))
    }

    /// Lines in guest `g`'s results log so far (for [`Lab::wait_after`]).
    pub fn line_count(&self, g: usize) -> usize {
        qemu::read_lossy(&self.results_log(g)).lines().count()
    }

    /// All `HCIKIT` lines of guest `g`'s current boot, without the prefix.
    pub fn lines(&self, g: usize) -> Vec<String> {
        qemu::read_lossy(&self.results_log(g))
            .lines()
            .filter_map(|l| l.trim_end_matches('\r').strip_prefix("HCIKIT "))
            .map(str::to_string)
            .collect()
    }

    /// Kills every guest and the switch, by PID.
    pub fn shutdown(&mut self) {
        for g in 0..self.guests.len() {
            self.kill(g);
        }
        if let Some(mut s) = self.switch.take() {
            s.kill();
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Seconds since the guest was started until a line appears, per guest, for reports.
pub fn timings(label: &str, t: &BTreeMap<String, Duration>) -> String {
    let parts: Vec<String> = t
        .iter()
        .map(|(k, v)| format!("{k} {:.1} s", v.as_secs_f64()))
        .collect();
    format!("{label}: {}", parts.join(", "))
}

/// Copies a (sparse) file keeping holes.
pub fn sparse_copy(from: &Path, to: &Path) -> Result<()> {
    qemu::tool(
        "cp",
        &[
            "--sparse=always",
            &from.display().to_string(),
            &to.display().to_string(),
        ],
        "coreutils",
    )?;
    Ok(())
}

/// Serials of the OSD disks the tests attach (the checker finds them by serial).
pub const CLEAN_SERIAL: &str = "osd-clean";
pub const SIGNED_SERIAL: &str = "osd-signed";

/// The boot disk and two OSD disks (the second with an ext4 signature) for a guest.
pub fn guest_disks(boot: PathBuf, dir: &Path, name: &str, size: &str) -> Result<Vec<Disk>> {
    let clean = dir.join(format!("{name}-{CLEAN_SERIAL}.raw"));
    let signed = dir.join(format!("{name}-{SIGNED_SERIAL}.raw"));
    osd_disk(&clean, size, false)?;
    osd_disk(&signed, size, true)?;
    Ok(vec![
        Disk {
            path: boot,
            serial: "boot".into(),
        },
        Disk {
            path: clean,
            serial: CLEAN_SERIAL.into(),
        },
        Disk {
            path: signed,
            serial: SIGNED_SERIAL.into(),
        },
    ])
}

/// A blank raw disk, optionally carrying an ext4 signature (to observe disk safety).
pub fn osd_disk(path: &Path, size: &str, signed: bool) -> Result<()> {
    let _ = std::fs::remove_file(path);
    qemu::tool(
        "truncate",
        &["-s", size, &path.display().to_string()],
        "coreutils",
    )?;
    if signed {
        qemu::tool(
            "mkfs.ext4",
            &["-q", "-F", "-L", "precious", &path.display().to_string()],
            "e2fsprogs",
        )?;
    }
    Ok(())
}

/// Extracts the newest `boot/vmlinuz-*` and matching `boot/initrd.img-*` from a base tar.
pub fn kernel_from_base(base: &Path, out: &Path) -> Result<(PathBuf, PathBuf)> {
    let mut a = tar::Archive::new(std::fs::File::open(base)?);
    let (mut kernel, mut initrd) = (None, None);
    for e in a.entries()? {
        let mut e = e?;
        let p = e
            .path()?
            .to_string_lossy()
            .trim_start_matches("./")
            .to_string();
        let dest = if p.starts_with("boot/vmlinuz-") {
            out.join("vmlinuz")
        } else if p.starts_with("boot/initrd.img-") {
            out.join("initrd.img")
        } else {
            continue;
        };
        e.unpack(&dest)?;
        if p.starts_with("boot/vmlinuz-") {
            kernel = Some(dest);
        } else {
            initrd = Some(dest);
        }
    }
    match (kernel, initrd) {
        (Some(k), Some(i)) => Ok((k, i)),
        _ => bail!("no kernel and initrd in {}", base.display()),
    }
}

/// Elapsed since `t` as seconds with one decimal.
pub fn secs(t: Instant) -> String {
    format!("{:.1} s", t.elapsed().as_secs_f64())
}
