//! QEMU for the VM tests: command lines built by pure functions, and guards that own the
//! running processes (killed by PID on drop, so a failing test leaves nothing behind).
//!
//! Networks are loopback-only by construction: every NIC is a `dgram` netdev on a pair of
//! unix sockets to a hub in a separate "switch" QEMU (`-M none`), one hub per network.
//! Unix datagrams need no connection, so a guest can be killed and restarted while the
//! switch and the other guests keep running.

use anyhow::{bail, Context, Result};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const QEMU: &str = "qemu-system-x86_64";
pub const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE.fd";
pub const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS.fd";

/// How the guest starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Boot {
    /// UEFI firmware (read-only code, a per-VM copy of the variable store), then
    /// whatever is on the first disk (systemd-boot for hcikit images).
    Ovmf { code: PathBuf, vars: PathBuf },
    /// Direct kernel boot, for proving the harness before images exist.
    Kernel {
        kernel: PathBuf,
        initrd: PathBuf,
        append: String,
    },
}

/// One side of a point-to-point unix datagram link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DgramLink {
    pub local: PathBuf,
    pub remote: PathBuf,
}

impl DgramLink {
    fn netdev(&self, id: &str) -> String {
        format!(
            "dgram,id={id},local.type=unix,local.path={},remote.type=unix,remote.path={}",
            self.local.display(),
            self.remote.display()
        )
    }
    /// The other end of this link.
    pub fn reversed(&self) -> DgramLink {
        DgramLink {
            local: self.remote.clone(),
            remote: self.local.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nic {
    /// e.g. `52:54:00:00:21:66`.
    pub mac: String,
    /// PCI slot: 0x12 and 0x13 become `ens18` and `ens19` on the `pc` machine.
    pub pci_slot: u8,
    pub link: DgramLink,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disk {
    pub path: PathBuf,
    /// SCSI serial, visible in the guest (`lsblk -o SERIAL`, `/dev/disk/by-id`).
    pub serial: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmConfig {
    pub name: String,
    pub memory_mib: u32,
    /// `tcg` (KVM on these machines accepts guests and then fails them).
    pub accel: String,
    pub boot: Boot,
    /// Raw disk files on one virtio-scsi controller, in target order, the boot disk first.
    /// The guest kernel probes SCSI disks asynchronously, so `sdX` names are NOT stable
    /// (seen: target 0 as `sdc`); tests identify disks by their serial.
    pub disks: Vec<Disk>,
    pub nics: Vec<Nic>,
    /// `ttyS0`: kernel and system console.
    pub console_log: PathBuf,
    /// `ttyS1`: the test checker's result lines only.
    pub results_log: PathBuf,
    /// `-fw_cfg name=NAME,file=PATH` entries.
    pub fw_cfg: Vec<(String, PathBuf)>,
}

/// The guest's command line (without the program name).
pub fn vm_argv(c: &VmConfig) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "-name".into(),
        c.name.clone(),
        "-machine".into(),
        "pc".into(),
        "-accel".into(),
        c.accel.clone(),
        "-smp".into(),
        "1".into(),
        "-m".into(),
        c.memory_mib.to_string(),
        "-nodefaults".into(),
        "-no-user-config".into(),
        "-nic".into(),
        "none".into(),
        "-display".into(),
        "none".into(),
        "-no-reboot".into(),
        "-serial".into(),
        format!("file:{}", c.console_log.display()),
        "-serial".into(),
        format!("file:{}", c.results_log.display()),
    ];
    match &c.boot {
        Boot::Ovmf { code, vars } => {
            a.push("-drive".into());
            a.push(format!(
                "if=pflash,format=raw,unit=0,readonly=on,file={}",
                code.display()
            ));
            a.push("-drive".into());
            a.push(format!(
                "if=pflash,format=raw,unit=1,file={}",
                vars.display()
            ));
        }
        Boot::Kernel {
            kernel,
            initrd,
            append,
        } => {
            a.extend([
                "-kernel".into(),
                kernel.display().to_string(),
                "-initrd".into(),
                initrd.display().to_string(),
                "-append".into(),
                append.clone(),
            ]);
        }
    }
    a.push("-device".into());
    a.push("virtio-scsi-pci,id=scsi0,addr=0x5".into());
    for (i, d) in c.disks.iter().enumerate() {
        a.push("-drive".into());
        a.push(format!(
            "if=none,id=disk{i},format=raw,cache=unsafe,discard=unmap,file={}",
            d.path.display()
        ));
        let mut dev = format!(
            "scsi-hd,drive=disk{i},bus=scsi0.0,channel=0,scsi-id={i},lun=0,serial={}",
            d.serial
        );
        // Direct kernel boot takes bootindex 0 itself.
        if i == 0 && matches!(c.boot, Boot::Ovmf { .. }) {
            dev.push_str(",bootindex=0");
        }
        a.push("-device".into());
        a.push(dev);
    }
    for (i, n) in c.nics.iter().enumerate() {
        a.push("-netdev".into());
        a.push(n.link.netdev(&format!("net{i}")));
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

/// The switch: one QEMU without a machine that holds one hub per network; `hubs[h]` lists
/// the switch-side link of every port of hub `h`.
pub fn switch_argv(hubs: &[Vec<DgramLink>]) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "-machine".into(),
        "none".into(),
        "-nodefaults".into(),
        "-no-user-config".into(),
        "-display".into(),
        "none".into(),
    ];
    for (h, ports) in hubs.iter().enumerate() {
        for (p, link) in ports.iter().enumerate() {
            let id = format!("h{h}p{p}");
            a.push("-netdev".into());
            a.push(link.netdev(&format!("{id}s")));
            a.push("-netdev".into());
            a.push(format!("hubport,id={id},hubid={h},netdev={id}s"));
        }
    }
    a
}

/// A running QEMU process, killed by PID when dropped.
pub struct Running {
    pub name: String,
    child: Option<Child>,
    pub started: Instant,
    pub stderr_log: PathBuf,
}

impl Running {
    /// Starts QEMU with `args`, stderr to `log_dir/<name>.stderr`.
    pub fn spawn(name: &str, args: &[String], log_dir: &Path) -> Result<Running> {
        let stderr_log = log_dir.join(format!("{name}.qemu-stderr.log"));
        let err = File::create(&stderr_log)?;
        let mut cmd = Command::new(QEMU);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err);
        std::fs::write(
            log_dir.join(format!("{name}.cmdline")),
            hcikit_firstboot::cmd::display(&cmd) + "\n",
        )?;
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {QEMU} for {name} (install qemu-system-x86)"))?;
        eprintln!("[vm] started {name} (pid {})", child.id());
        Ok(Running {
            name: name.to_string(),
            child: Some(child),
            started: Instant::now(),
            stderr_log,
        })
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Fails if the process has exited (with its stderr).
    pub fn check_alive(&mut self) -> Result<()> {
        if let Some(c) = self.child.as_mut() {
            if let Some(st) = c.try_wait()? {
                let err = std::fs::read_to_string(&self.stderr_log).unwrap_or_default();
                bail!("{} exited early ({st}): {}", self.name, err.trim());
            }
        }
        Ok(())
    }

    /// Kills the process (SIGKILL, like pulling the power) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let pid = c.id();
            let _ = c.kill();
            let _ = c.wait();
            eprintln!("[vm] stopped {} (pid {pid})", self.name);
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits until `file` has a line, after its first `skip` lines, for which `want` returns
/// `Some`, checking `alive` in between. Returns the value and the elapsed time.
pub fn wait_for_line<T>(
    file: &Path,
    skip: usize,
    timeout: Duration,
    mut alive: impl FnMut() -> Result<()>,
    mut want: impl FnMut(&str) -> Option<T>,
) -> Result<(T, Duration)> {
    let t = Instant::now();
    loop {
        // The firmware writes to every serial port, not always valid UTF-8.
        if let Ok(bytes) = std::fs::read(file) {
            let text = String::from_utf8_lossy(&bytes);
            for line in text.lines().skip(skip) {
                if let Some(v) = want(line.trim_end_matches('\r')) {
                    return Ok((v, t.elapsed()));
                }
            }
        }
        alive()?;
        if t.elapsed() > timeout {
            bail!(
                "timed out after {:?} waiting in {}",
                timeout,
                file.display()
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// A log file as text, invalid UTF-8 replaced (firmware output is not always UTF-8).
pub fn read_lossy(file: &Path) -> String {
    std::fs::read(file)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// Runs a helper tool through the project's command helper, with the Debian package to
/// install when it is missing.
pub fn tool(program: &str, args: &[&str], package: &str) -> Result<String> {
    hcikit_firstboot::cmd::run_stdout(Command::new(program).args(args), Some(package))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(a: &str, b: &str) -> DgramLink {
        DgramLink {
            local: a.into(),
            remote: b.into(),
        }
    }

    #[test]
    fn vm_command_line_is_pinned() {
        let c = VmConfig {
            name: "pve1".into(),
            memory_mib: 1024,
            accel: "tcg".into(),
            boot: Boot::Ovmf {
                code: "/ovmf/CODE.fd".into(),
                vars: "/run/pve1.vars.fd".into(),
            },
            disks: vec![
                Disk {
                    path: "/run/pve1.img".into(),
                    serial: "boot".into(),
                },
                Disk {
                    path: "/run/pve1-sdb.raw".into(),
                    serial: "osd-clean".into(),
                },
            ],
            nics: vec![Nic {
                mac: "52:54:00:12:34:56".into(),
                pci_slot: 0x12,
                link: link("/run/pve1-a.sock", "/run/sw-a-1.sock"),
            }],
            console_log: "/run/pve1.console.log".into(),
            results_log: "/run/pve1.results.log".into(),
            fw_cfg: vec![("opt/hcikit/vmtest".into(), "/run/pve1.env".into())],
        };
        assert_eq!(
            vm_argv(&c).join(" "),
            "-name pve1 -machine pc -accel tcg -smp 1 -m 1024 -nodefaults -no-user-config \
             -nic none -display none -no-reboot -serial file:/run/pve1.console.log \
             -serial file:/run/pve1.results.log \
             -drive if=pflash,format=raw,unit=0,readonly=on,file=/ovmf/CODE.fd \
             -drive if=pflash,format=raw,unit=1,file=/run/pve1.vars.fd \
             -device virtio-scsi-pci,id=scsi0,addr=0x5 \
             -drive if=none,id=disk0,format=raw,cache=unsafe,discard=unmap,file=/run/pve1.img \
             -device scsi-hd,drive=disk0,bus=scsi0.0,channel=0,scsi-id=0,lun=0,serial=boot,bootindex=0 \
             -drive if=none,id=disk1,format=raw,cache=unsafe,discard=unmap,file=/run/pve1-sdb.raw \
             -device scsi-hd,drive=disk1,bus=scsi0.0,channel=0,scsi-id=1,lun=0,serial=osd-clean \
             -netdev dgram,id=net0,local.type=unix,local.path=/run/pve1-a.sock,remote.type=unix,remote.path=/run/sw-a-1.sock \
             -device virtio-net-pci,netdev=net0,mac=52:54:00:12:34:56,addr=0x12 \
             -fw_cfg name=opt/hcikit/vmtest,file=/run/pve1.env"
        );
    }

    #[test]
    fn switch_command_line_is_pinned() {
        let hubs = vec![vec![link("/s/a1", "/v/a1"), link("/s/a2", "/v/a2")]];
        assert_eq!(
            switch_argv(&hubs).join(" "),
            "-machine none -nodefaults -no-user-config -display none \
             -netdev dgram,id=h0p0s,local.type=unix,local.path=/s/a1,remote.type=unix,remote.path=/v/a1 \
             -netdev hubport,id=h0p0,hubid=0,netdev=h0p0s \
             -netdev dgram,id=h0p1s,local.type=unix,local.path=/s/a2,remote.type=unix,remote.path=/v/a2 \
             -netdev hubport,id=h0p1,hubid=0,netdev=h0p1s"
        );
    }

    #[test]
    fn result_lines_are_found_after_firmware_garbage() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("ttyS1.log");
        std::fs::write(
            &f,
            b"\x1b[2J\xc4\xc4 BdsDxe\r\nHCIKIT boot x\r\nHCIKIT quorum y\n",
        )
        .unwrap();
        let ok = || Ok(());
        let (v, _) = wait_for_line(&f, 0, Duration::from_secs(1), ok, |l| {
            l.strip_prefix("HCIKIT boot ").map(str::to_string)
        })
        .unwrap();
        assert_eq!(v, "x");
        // Skipping the first two lines leaves only the quorum line.
        let err = wait_for_line(&f, 2, Duration::from_millis(10), ok, |l| {
            l.starts_with("HCIKIT boot").then_some(())
        });
        assert!(err.is_err());
    }

    #[test]
    fn dropping_the_guard_kills_and_reaps_by_pid() {
        let d = tempfile::tempdir().unwrap();
        // `sleep` stands in for QEMU: the guard's job is the PID, not the program.
        let r = Running {
            name: "sleeper".into(),
            child: Some(Command::new("sleep").arg("60").spawn().unwrap()),
            started: Instant::now(),
            stderr_log: d.path().join("x"),
        };
        let pid = r.pid().unwrap();
        assert!(Path::new(&format!("/proc/{pid}")).exists());
        drop(r);
        // Reaped, so the PID is gone (not a zombie).
        assert!(!Path::new(&format!("/proc/{pid}")).exists());
    }
}
