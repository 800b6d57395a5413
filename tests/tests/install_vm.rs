//! The install tier: the USB installer stick built by `hcikit build --installer`, booted
//! in QEMU (OVMF, TCG) as USB storage in mini PCs with an NVMe target and decoys — a
//! same-size second NVMe holding data, the node's SATA OSD SSD with a file system, a blank
//! USB disk. All three nodes are installed (each machine with its own copy of the stick,
//! which receives the installer's logs), three guests at a time next to the refusals
//! (unknown MAC, missing install disk, data without `install-wipe`); every decoy keeps
//! its bytes, each target passes `sgdisk -v`, `fsck.fat -n` and `e2fsck -fn`. Then the
//! three installed disks boot together without the stick (UEFI entry from `efibootmgr`)
//! on the VM tier's loopback-only switch and pass the VM tier's checks up to corosync
//! quorum ([`vm::installed`]); last, the stick left in installs nothing. Every refusal
//! ends with its message and no byte written to any disk but the stick's log folder, and
//! each stick holds exactly one log per installer run.
//!
//! Slow tier: `just install-test` (`cargo test -p hcikit-tests --test install_vm --
//! --ignored --nocapture --test-threads=1`). Logs stay in the folder printed first;
//! per-phase and total wall times are printed at the end.

#[path = "../vm/mod.rs"]
mod vm;

use anyhow::{bail, ensure, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use vm::cluster::DiskExpect;
use vm::install::{self as inst, Bus, InstallDisk, InstallVm};
use vm::installed::{check_installed_cluster, InstalledNode};
use vm::qemu::{self, DgramLink, Nic, Running};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
/// Time for a stick boot to reach the installer's result under TCG on a busy machine.
const RESULT_TIMEOUT: Duration = Duration::from_secs(1200);

fn hcikit(args: &[&str]) -> Result<()> {
    let (code, err) = hcikit_tests::run_cli(args);
    ensure!(
        code == 0,
        "hcikit {} failed ({code}): {err}",
        args.join(" ")
    );
    Ok(())
}

/// One mini PC: its disks, its own copy of the stick (the installer writes its log onto
/// the stick's ESP) and NVRAM, all files in the run folder.
struct Machine {
    /// File prefix, unique per machine (`mini1`, `mini2-used`, …).
    label: String,
    /// The node's index in the spec (its NVMe serial, SSD and MAC follow from it).
    index: usize,
    vars: PathBuf,
    stick: PathBuf,
    target: PathBuf,
    twin: PathBuf,
    ssd: PathBuf,
    usb: PathBuf,
    boots: u32,
    /// Boots from the stick so far: the stick must hold exactly one log per boot.
    stick_boots: usize,
}

impl Machine {
    fn new(
        run: &Path,
        label: &str,
        index: usize,
        stick: &Path,
        target_size: u64,
    ) -> Result<Machine> {
        let p = |s: &str| run.join(format!("{label}-{s}.raw"));
        let m = Machine {
            label: label.into(),
            index,
            vars: run.join(format!("{label}.OVMF_VARS.fd")),
            stick: run.join(format!("{label}-stick.img")),
            target: p("nvme-target"),
            twin: p("nvme-twin"),
            ssd: p("sata-ssd"),
            usb: p("usb-disk"),
            boots: 0,
            stick_boots: 0,
        };
        std::fs::copy(qemu::OVMF_VARS, &m.vars).context("copying OVMF_VARS.fd (install ovmf)")?;
        vm::lab::sparse_copy(stick, &m.stick)?;
        inst::make_disk(&m.target, target_size, 0, 0)?;
        // The twin: same size, data at both ends (an old install or someone's files).
        inst::make_disk(&m.twin, target_size, 8 * MIB, 100 + index as u64)?;
        inst::make_disk(&m.ssd, 2 * GIB, 0, 0)?;
        qemu::tool(
            "mkfs.ext4",
            &["-q", "-F", "-L", "precious", &m.ssd.display().to_string()],
            "e2fsprogs",
        )?;
        inst::make_disk(&m.usb, GIB, 0, 0)?;
        Ok(m)
    }

    fn decoys(&self) -> Vec<&Path> {
        vec![&self.twin, &self.ssd, &self.usb]
    }

    /// Fingerprints of the decoys (and the target): any written byte changes them.
    fn sums(&self, with_target: bool) -> Result<BTreeMap<String, String>> {
        let mut v = self.decoys();
        if with_target {
            v.push(&self.target);
        }
        v.iter()
            .map(|p| {
                Ok((
                    p.file_name().unwrap().to_string_lossy().into_owned(),
                    inst::fingerprint(p)?,
                ))
            })
            .collect()
    }

    fn target_disk(&self) -> InstallDisk {
        InstallDisk {
            path: self.target.clone(),
            bus: Bus::Nvme,
            serial: inst::nvme_serial(self.index),
            bootindex: None,
        }
    }

    /// The disks besides the stick and the target, as they are attached.
    fn other_disks(&self) -> Vec<InstallDisk> {
        let (model, serial) = inst::SSDS[self.index];
        vec![
            InstallDisk {
                path: self.twin.clone(),
                bus: Bus::Nvme,
                serial: twin_serial(self.index),
                bootindex: None,
            },
            InstallDisk {
                path: self.ssd.clone(),
                bus: Bus::Sata {
                    model: model.into(),
                },
                serial: serial.into(),
                bootindex: None,
            },
            InstallDisk {
                path: self.usb.clone(),
                bus: Bus::Usb,
                serial: usb_serial(self.index),
                bootindex: None,
            },
        ]
    }

    /// What the VM tier's checker must see on the other disks once the node runs.
    fn expect_disks(&self) -> Vec<DiskExpect> {
        vec![
            DiskExpect::new(&twin_serial(self.index), "/dev/nvme", "none"),
            DiskExpect::new(inst::SSDS[self.index].1, "/dev/sd", "ext4"),
            DiskExpect::new(&usb_serial(self.index), "/dev/sd", "none"),
        ]
    }

    /// Starts the machine from its stick (first in the boot order), with or without its
    /// target, with the MAC given.
    fn boot_stick(
        &mut self,
        run: &Path,
        mac: &str,
        with_target: bool,
    ) -> Result<(Running, PathBuf)> {
        self.boots += 1;
        self.stick_boots += 1;
        let label = format!("{}.boot{}", self.label, self.boots);
        let console = run.join(format!("{label}.console.log"));
        let mut disks = vec![InstallDisk {
            path: self.stick.clone(),
            bus: Bus::Usb,
            serial: "HCIKITSTICK".into(),
            bootindex: Some(0),
        }];
        if with_target {
            disks.push(self.target_disk());
        }
        disks.extend(self.other_disks());
        let sock = run.join("sock");
        std::fs::create_dir_all(&sock)?;
        let cfg = InstallVm {
            name: label.clone(),
            memory_mib: 1536,
            accel: std::env::var("HCIKIT_VM_ACCEL").unwrap_or_else(|_| "tcg".into()),
            ovmf_code: qemu::OVMF_CODE.into(),
            ovmf_vars: self.vars.clone(),
            disks,
            // A NIC on a link to nowhere: the MAC is what the installer looks at.
            nics: vec![Nic {
                mac: mac.into(),
                pci_slot: 0x12,
                link: DgramLink {
                    local: sock.join(format!("{label}-a")),
                    remote: sock.join(format!("{label}-b")),
                },
            }],
            console_log: console.clone(),
            results_log: run.join(format!("{label}.results.log")),
            fw_cfg: vec![],
        };
        Ok((
            Running::spawn(&label, &inst::install_vm_argv(&cfg), run)?,
            console,
        ))
    }

    /// The logs on this machine's stick (`hcikit/logs`), one per stick boot.
    fn stick_logs(&self) -> Result<Vec<String>> {
        let listing = qemu::tool(
            "mdir",
            &[
                "-b",
                "-i",
                &format!("{}@@{}", self.stick.display(), MIB),
                "::/hcikit/logs",
            ],
            "mtools",
        )?;
        let logs: Vec<String> = listing
            .lines()
            .map(|l| l.trim().rsplit('/').next().unwrap_or("").to_string())
            // The folder also holds the stick's README.txt.
            .filter(|l| l.ends_with(".log"))
            .collect();
        ensure!(
            logs.len() == self.stick_boots,
            "{}: the stick holds {} log(s) for {} installer run(s): {logs:?}",
            self.label,
            logs.len(),
            self.stick_boots
        );
        Ok(logs)
    }
}

fn twin_serial(i: usize) -> String {
    format!("HCIKITTWIN{}", i + 1)
}

fn usb_serial(i: usize) -> String {
    format!("HCIKITUSB{}", i + 1)
}

/// Waits for the installer's result line on the console, then for its log to be on the
/// stick (the line after it), so a guest stopped right after holds a complete stick.
fn wait_result(r: &mut Running, console: &Path) -> Result<(String, Duration)> {
    let (line, d) = qemu::wait_for_line(
        console,
        0,
        RESULT_TIMEOUT,
        || r.check_alive(),
        |l| {
            l.find("hcikit-install: result=")
                .map(|i| l[i..].to_string())
        },
    )
    .with_context(|| {
        format!(
            "waiting for the installer's result in {}",
            console.display()
        )
    })?;
    qemu::wait_for_line(
        console,
        0,
        Duration::from_secs(120),
        // An install powers off right after its log: an exit is fine here.
        || Ok(()),
        |l| {
            (l.contains("log written to the stick:") || l.contains("could not write the log"))
                .then(|| l.to_string())
        },
    )
    .with_context(|| {
        format!(
            "waiting for the installer's log line in {}",
            console.display()
        )
    })
    .and_then(|(l, _)| {
        ensure!(!l.contains("could not write"), "{}: {l}", console.display());
        Ok(())
    })?;
    Ok((line, d))
}

/// Fails naming every disk whose fingerprint differs.
fn unchanged(
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
    what: &str,
) -> Result<()> {
    let changed: Vec<&String> = before
        .iter()
        .filter(|(k, v)| after.get(*k) != Some(*v))
        .map(|(k, _)| k)
        .collect();
    ensure!(changed.is_empty(), "{what}: disk(s) changed: {changed:?}");
    Ok(())
}

/// A refusal: boots from the stick, expects `result=refused kind=KIND` (or the given
/// result), stops the guest, and checks that no byte changed on any disk but the stick.
fn refusal(
    run: &Path,
    m: &mut Machine,
    mac: &str,
    with_target: bool,
    want: &str,
    what: &str,
) -> Result<String> {
    let before = m.sums(true)?;
    let (mut r, con) = m.boot_stick(run, mac, with_target)?;
    let (line, secs) = wait_result(&mut r, &con)?;
    r.kill();
    ensure!(line.contains(want), "{what}: want {want}, got {line}");
    unchanged(&before, &m.sums(true)?, what)?;
    Ok(format!(
        "{what}: {line} after {:.0} s; no byte written",
        secs.as_secs_f64()
    ))
}

/// Three guests at most at a time (2 cores; TCG).
const SLOTS: usize = 3;

/// Runs `jobs` on at most [`SLOTS`] threads at a time, in order; returns their results in
/// the same order.
fn run_jobs<T: Send>(jobs: Vec<Box<dyn FnOnce() -> Result<T> + Send + '_>>) -> Vec<Result<T>> {
    let queue = std::sync::Mutex::new(jobs.into_iter().enumerate().collect::<Vec<_>>());
    let results = std::sync::Mutex::new(BTreeMap::new());
    std::thread::scope(|s| {
        for _ in 0..SLOTS {
            s.spawn(|| loop {
                let job = {
                    let mut q = queue.lock().unwrap();
                    if q.is_empty() {
                        None
                    } else {
                        Some(q.remove(0))
                    }
                };
                let Some((i, job)) = job else { break };
                let r = job();
                results.lock().unwrap().insert(i, r);
            });
        }
    });
    results.into_inner().unwrap().into_values().collect()
}

/// A partition of a disk image as (start, size) in bytes, by GPT type, from `sfdisk --json`.
fn partition(img: &Path, ty: &str) -> Result<(u64, u64)> {
    let json = qemu::tool("sfdisk", &["--json", &img.display().to_string()], "fdisk")?;
    let v: serde_json::Value = serde_json::from_str(&json)?;
    for p in v["partitiontable"]["partitions"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if p["type"]
            .as_str()
            .is_some_and(|t| t.eq_ignore_ascii_case(ty))
        {
            return Ok((
                p["start"].as_u64().unwrap() * 512,
                p["size"].as_u64().unwrap() * 512,
            ));
        }
    }
    bail!("no partition of type {ty} in {}", img.display())
}

/// The installed disk checked with independent tools: GPT, FAT and ext4.
fn check_installed_disk(img: &Path, scratch: &Path) -> Result<()> {
    let sg = qemu::tool("sgdisk", &["-v", &img.display().to_string()], "gdisk")?;
    ensure!(
        sg.contains("No problems found"),
        "sgdisk -v on {}: {sg}",
        img.display()
    );
    for (ty, name, check) in [
        (
            "C12A7328-F81F-11D2-BA4B-00A0C93EC93B",
            "esp.fat",
            ["fsck.fat", "-n"],
        ),
        (
            "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709",
            "root.ext4",
            ["e2fsck", "-fn"],
        ),
    ] {
        let (start, size) = partition(img, ty)?;
        let part = scratch.join(name);
        qemu::tool(
            "dd",
            &[
                &format!("if={}", img.display()),
                &format!("of={}", part.display()),
                "bs=1M",
                &format!("skip={}", start / MIB),
                &format!("count={}", size / MIB),
                "conv=sparse",
                "status=none",
            ],
            "coreutils",
        )?;
        let out = std::process::Command::new(check[0])
            .arg(check[1])
            .arg(&part)
            .output()?;
        let _ = std::fs::remove_file(&part);
        ensure!(
            out.status.success(),
            "{} {} of the installed {name} failed: {}{}",
            check[0],
            check[1],
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

#[test]
#[ignore = "slow: builds the installer stick and boots QEMU guests from it (many minutes)"]
fn usb_stick_installs_the_minipc_nodes_into_a_quorate_cluster() {
    run_install_tier().unwrap();
}

/// Installs one machine from its stick: the node's result line, power off, decoys
/// untouched, the target checked with `sgdisk -v`, `fsck.fat -n` and `e2fsck -fn`.
fn install(run: &Path, m: &mut Machine, node: &str, mac: &str) -> Result<String> {
    let before = m.sums(false)?;
    let (mut r, con) = m.boot_stick(run, mac, true)?;
    let (line, secs) = wait_result(&mut r, &con)?;
    ensure!(
        line.contains(&format!("result=installed node={node} ")),
        "{node}: {line}"
    );
    let off = inst::wait_exit(&mut r, Duration::from_secs(300))?;
    unchanged(&before, &m.sums(false)?, node)?;
    let scratch = run.join(format!("{}.check", m.label));
    std::fs::create_dir_all(&scratch)?;
    check_installed_disk(&m.target, &scratch)?;
    Ok(format!(
        "{node}: stick power-on to installed {:.0} s (+{:.0} s to power off), decoys unchanged, target passes sgdisk/fsck.fat/e2fsck: {line}",
        secs.as_secs_f64(),
        off.as_secs_f64()
    ))
}

fn run_install_tier() -> Result<()> {
    let t0 = Instant::now();
    let mut phases: Vec<String> = Vec::new();
    let mut phase = |name: &str, t: Instant| {
        let line = format!("phase {name}: {:.1} s", t.elapsed().as_secs_f64());
        println!("{line}");
        phases.push(line);
    };
    let run = vm::run_dir("install");
    println!("run folder: {}", run.display());
    let t = Instant::now();
    let spec = inst::minipc_spec(&run, true)?;
    let out = run.join("out");
    let cache = vm::vm_cache_dir();
    let plan = hcikit::load(&spec)
        .map_err(|e| anyhow::anyhow!("{e:#}"))?
        .plan;
    ensure!(plan.nodes.len() == 3, "minipc.toml has three nodes");
    let base = hcikit::image::base::ensure_base(&plan, &cache)?;
    hcikit(&[
        "build",
        &spec.display().to_string(),
        "-o",
        &out.display().to_string(),
        "--installer",
        "--base",
        &base.display().to_string(),
        "--agent",
        &vm::agent_binary()?.display().to_string(),
        "--cache",
        &cache.display().to_string(),
    ])?;
    let stick = out.join("minipc-installer.img");
    let image_size = plan.image.disk_size;
    let macs: Vec<String> = plan
        .nodes
        .iter()
        .map(|n| n.mac.clone().context("minipc nodes have MACs"))
        .collect::<Result<_>>()?;

    // The three mini PCs. The first target is larger than the image and holds random
    // data and an old partition table (install-wipe is set for it); the others are blank
    // and exactly the image's size.
    let mut machines = Vec::new();
    for (i, node) in plan.nodes.iter().enumerate() {
        let size = if i == 0 { image_size + GIB } else { image_size };
        let m = Machine::new(&run, &node.name, i, &stick, size)?;
        if i == 0 {
            inst::make_disk(&m.target, size, 16 * MIB, 7)?;
            qemu::tool(
                "sgdisk",
                &[
                    "-o",
                    "-n",
                    "1:2048:+100M",
                    "-n",
                    "2:0:+200M",
                    &m.target.display().to_string(),
                ],
                "gdisk",
            )?;
        }
        machines.push(m);
    }
    // Refusals on machines of their own, so they run next to the installs: an unknown
    // MAC, no install disk, and a target with data the spec does not allow erasing
    // (mini2 has no install-wipe).
    let mut unknown = Machine::new(&run, "unknown-mac", 0, &stick, image_size)?;
    let mut nodisk = Machine::new(&run, "no-disk", 0, &stick, image_size)?;
    let mut used = Machine::new(&run, "mini2-used", 1, &stick, image_size)?;
    inst::make_disk(&used.target, image_size, 16 * MIB, 8)?;
    phase("build the stick and the machines' disks", t);

    // Installs and refusals, three guests at a time.
    let t = Instant::now();
    let mut report = Vec::new();
    {
        let runp = run.as_path();
        let mut jobs: Vec<Box<dyn FnOnce() -> Result<String> + Send + '_>> = Vec::new();
        for (m, node) in machines.iter_mut().zip(&plan.nodes) {
            let mac = node.mac.clone().unwrap_or_default();
            let name = node.name.clone();
            jobs.push(Box::new(move || install(runp, m, &name, &mac)));
        }
        let mac0 = macs[0].clone();
        let mac1 = macs[1].clone();
        jobs.push(Box::new(move || {
            let line = refusal(
                runp,
                &mut used,
                &mac1,
                true,
                "result=refused kind=holds-data node=mini2",
                "mini2, target with data, no install-wipe",
            )?;
            used.stick_logs()?;
            Ok(line)
        }));
        jobs.push(Box::new(|| {
            let line = refusal(
                runp,
                &mut unknown,
                "52:54:00:de:ad:01",
                true,
                "result=refused kind=unknown-machine",
                "unknown MAC",
            )?;
            let screen = qemu::read_lossy(&runp.join("unknown-mac.boot1.console.log"));
            ensure!(
                screen.contains("52:54:00:de:ad:01") && screen.contains("Nothing was written"),
                "the unknown-machine screen lacks the MAC or the no-write statement"
            );
            unknown.stick_logs()?;
            Ok(line)
        }));
        jobs.push(Box::new(move || {
            let line = refusal(
                runp,
                &mut nodisk,
                &mac0,
                false,
                "result=refused kind=missing node=mini1",
                "mini1 without its install disk",
            )?;
            nodisk.stick_logs()?;
            Ok(line)
        }));
        let mut errors = Vec::new();
        for r in run_jobs(jobs) {
            match r {
                Ok(l) => report.push(l),
                Err(e) => errors.push(format!("{e:#}")),
            }
        }
        ensure!(
            errors.is_empty(),
            "install phase (logs in {}):\n{}",
            run.display(),
            errors.join("\n")
        );
    }
    phase("three installs and three refusals (3 guests at a time)", t);

    // The installed disks, without the stick, as a cluster: the VM tier's checks.
    let t = Instant::now();
    let before: Vec<_> = machines
        .iter()
        .map(|m| m.sums(false))
        .collect::<Result<_>>()?;
    let installed: Vec<InstalledNode> = machines
        .iter()
        .zip(&plan.nodes)
        .map(|(m, node)| InstalledNode {
            node: node.name.clone(),
            disk: m.target_disk(),
            vars: m.vars.clone(),
            macs: vec![node.mac.clone().unwrap_or_default()],
            other_disks: m.other_disks(),
            expect_disks: m.expect_disks(),
        })
        .collect();
    report.extend(check_installed_cluster(&run, &spec, &installed)?);
    for (m, b) in machines.iter().zip(&before) {
        unchanged(
            b,
            &m.sums(false)?,
            &format!("{} while the installed node ran", m.label),
        )?;
    }
    phase("installed disks booted as a cluster and checked", t);

    // The stick left in after the install: the disk holds this node, nothing is written.
    let t = Instant::now();
    let mac0 = macs[0].clone();
    report.push(refusal(
        &run,
        &mut machines[0],
        &mac0,
        true,
        "result=already-installed node=mini1",
        "mini1 with the stick left in",
    )?);
    phase("stick left in", t);

    // One log per installer run on each machine's stick.
    for m in &machines {
        let logs = m.stick_logs()?;
        report.push(format!("{} stick logs: {}", m.label, logs.join(" ")));
    }
    println!("{}", report.join("\n"));
    println!("{}", phases.join("\n"));
    println!("install tier: {:.1} s wall", t0.elapsed().as_secs_f64());
    vm::remove_disks(&run);
    Ok(())
}
