//! The install tier: the USB installer stick built by `hcikit build --installer`, booted
//! in QEMU (OVMF, TCG) as USB storage in a mini PC with an NVMe target and decoys — a
//! same-size second NVMe holding data, the node's SATA OSD SSD with a file system, a blank
//! USB disk. Checks that the installer writes only the target, that the target passes
//! `sgdisk -v`, `fsck.fat -n` and `e2fsck -fn`, that the installed disk boots without the
//! stick (UEFI entry from `efibootmgr`) into the node, and that every refusal ends with
//! its message and no byte written anywhere.
//!
//! Slow tier: `just install-test` (`cargo test -p hcikit-tests --test install_vm --
//! --ignored --nocapture --test-threads=1`). `HCIKIT_INSTALL_NODES=N` installs only the
//! first N nodes. Logs stay in the folder printed first.

#[path = "../vm/mod.rs"]
mod vm;

use anyhow::{bail, ensure, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use vm::install::{self as inst, Bus, InstallDisk, InstallVm};
use vm::qemu::{self, DgramLink, Nic, Running};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
/// Time for a stick boot to reach the installer's result under TCG on a busy machine.
const RESULT_TIMEOUT: Duration = Duration::from_secs(1200);

/// The SATA SSDs of `examples/minipc.toml` (by-id `ata-<model>_<serial>`).
const SSDS: &[(&str, &str)] = &[
    ("Samsung SSD 870 EVO 500GB", "S6PXNM0T000001"),
    ("Samsung SSD 870 EVO 500GB", "S6PXNM0T000002"),
    ("Samsung SSD 870 EVO 1TB", "S6PTNM0T000003"),
];

fn nvme_serial(node: usize) -> String {
    format!("HCIKITNVME{}", node + 1)
}

/// The example with the test's changes: the VM NIC name, the NVMe by id, console on the
/// serial port, power off after install, no confirmation wait, and install-wipe on the
/// first node only (its target holds old data on purpose).
fn prepare_spec(run: &Path) -> Result<PathBuf> {
    let examples = hcikit_tests::workspace_root().join("examples");
    let mut text = std::fs::read_to_string(examples.join("minipc.toml"))?;
    text = text.replace("interface = \"enp1s0\"", "interface = \"ens18\"");
    for i in 0..3 {
        let from = "install-disk = \"/dev/nvme0n1\"";
        ensure!(
            text.contains(from),
            "minipc.toml no longer names /dev/nvme0n1 for node {i}"
        );
        let wipe = if i == 0 { "\ninstall-wipe = true" } else { "" };
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
        "\n# Added by the install test.\n[image]\nkernel-cmdline = [\"console=ttyS0,115200\"]\nboot-timeout = 1\nafter-install = \"poweroff\"\ninstall-confirm = 0\n",
    );
    let spec = run.join("minipc.toml");
    std::fs::write(&spec, text)?;
    std::fs::create_dir_all(run.join("secrets"))?;
    for e in std::fs::read_dir(examples.join("secrets"))? {
        let e = e?;
        let to = run.join("secrets").join(e.file_name());
        std::fs::copy(e.path(), &to)?;
        std::fs::set_permissions(&to, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    }
    Ok(spec)
}

fn hcikit(args: &[&str]) -> Result<()> {
    let (code, err) = hcikit_tests::run_cli(args);
    ensure!(
        code == 0,
        "hcikit {} failed ({code}): {err}",
        args.join(" ")
    );
    Ok(())
}

/// One mini PC: its disks (files in the run folder) and NVRAM.
struct Machine {
    name: String,
    index: usize,
    mac: String,
    vars: PathBuf,
    target: PathBuf,
    twin: PathBuf,
    ssd: PathBuf,
    usb: PathBuf,
    boots: u32,
}

impl Machine {
    fn new(run: &Path, index: usize, name: &str, mac: &str, target_size: u64) -> Result<Machine> {
        let p = |s: &str| run.join(format!("{name}-{s}.raw"));
        let m = Machine {
            name: name.into(),
            index,
            mac: mac.into(),
            vars: run.join(format!("{name}.OVMF_VARS.fd")),
            target: p("nvme-target"),
            twin: p("nvme-twin"),
            ssd: p("sata-ssd"),
            usb: p("usb-disk"),
            boots: 0,
        };
        std::fs::copy(qemu::OVMF_VARS, &m.vars).context("copying OVMF_VARS.fd (install ovmf)")?;
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

    fn sums(&self, with_target: bool) -> Result<BTreeMap<String, String>> {
        let mut v = self.decoys();
        if with_target {
            v.push(&self.target);
        }
        v.iter()
            .map(|p| {
                Ok((
                    p.file_name().unwrap().to_string_lossy().into_owned(),
                    inst::sha256_file(p)?,
                ))
            })
            .collect()
    }

    /// Starts the machine: with the stick first when given, with or without its target.
    fn boot(
        &mut self,
        run: &Path,
        stick: Option<&Path>,
        mac: &str,
        with_target: bool,
    ) -> Result<(Running, PathBuf)> {
        self.boots += 1;
        let label = format!("{}.boot{}", self.name, self.boots);
        let console = run.join(format!("{label}.console.log"));
        let mut disks = Vec::new();
        if let Some(s) = stick {
            disks.push(InstallDisk {
                path: s.into(),
                bus: Bus::Usb,
                serial: "HCIKITSTICK".into(),
                bootindex: Some(0),
            });
        }
        if with_target {
            disks.push(InstallDisk {
                path: self.target.clone(),
                bus: Bus::Nvme,
                serial: nvme_serial(self.index),
                bootindex: None,
            });
        }
        disks.push(InstallDisk {
            path: self.twin.clone(),
            bus: Bus::Nvme,
            serial: format!("HCIKITTWIN{}", self.index + 1),
            bootindex: None,
        });
        let (model, serial) = SSDS[self.index];
        disks.push(InstallDisk {
            path: self.ssd.clone(),
            bus: Bus::Sata {
                model: model.into(),
            },
            serial: serial.into(),
            bootindex: None,
        });
        disks.push(InstallDisk {
            path: self.usb.clone(),
            bus: Bus::Usb,
            serial: format!("HCIKITUSB{}", self.index + 1),
            bootindex: None,
        });
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
}

/// Waits for the installer's result line on the console.
fn wait_result(r: &mut Running, console: &Path) -> Result<(String, Duration)> {
    qemu::wait_for_line(
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
    })
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
fn usb_stick_installs_the_minipc_nodes() {
    run_install_tier().unwrap();
}

fn run_install_tier() -> Result<()> {
    let run = vm::run_dir("install");
    println!("run folder: {}", run.display());
    let spec = prepare_spec(&run)?;
    let out = run.join("out");
    let cache = vm::vm_cache_dir();
    let plan = hcikit::load(&spec)
        .map_err(|e| anyhow::anyhow!("{e:#}"))?
        .plan;
    let base = hcikit::image::base::ensure_base(&plan, &cache)?;
    let t = Instant::now();
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
    println!("stick built in {:.1} s", t.elapsed().as_secs_f64());
    let stick_img = out.join("minipc-installer.img");
    let stick = run.join("stick.img");
    vm::lab::sparse_copy(&stick_img, &stick)?;
    let image_size = plan.image.disk_size;
    let nodes: usize = std::env::var("HCIKIT_INSTALL_NODES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(plan.nodes.len());
    let mut report = Vec::new();
    let mut machines = Vec::new();
    for (i, node) in plan.nodes.iter().enumerate().take(nodes) {
        let mac = node.mac.clone().context("minipc nodes have MACs")?;
        // The first target is larger than the image and full of old data (install-wipe is
        // set for it); the others are blank and exactly the image's size.
        let size = if i == 0 { image_size + GIB } else { image_size };
        let mut m = Machine::new(&run, i, &node.name, &mac, size)?;
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
        if i == 1 {
            // Negative: the target holds data and the spec does not allow erasing it.
            inst::make_disk(&m.target, size, 16 * MIB, 8)?;
            let before = m.sums(true)?;
            let (mut r, con) = m.boot(&run, Some(&stick), &mac, true)?;
            let (line, secs) = wait_result(&mut r, &con)?;
            r.kill();
            ensure!(
                line.contains("result=refused kind=holds-data"),
                "{}: {line}",
                m.name
            );
            ensure!(
                m.sums(true)? == before,
                "{}: a disk changed after a refusal",
                m.name
            );
            report.push(format!(
                "{}: refused a target with data in {:.0} s (no write)",
                m.name,
                secs.as_secs_f64()
            ));
            inst::make_disk(&m.target, size, 0, 0)?;
        }
        let before = m.sums(false)?;
        let (mut r, con) = m.boot(&run, Some(&stick), &mac, true)?;
        let (line, secs) = wait_result(&mut r, &con)?;
        ensure!(
            line.contains(&format!("result=installed node={}", node.name)),
            "{}: {line}",
            node.name
        );
        let off = inst::wait_exit(&mut r, Duration::from_secs(300))?;
        ensure!(
            m.sums(false)? == before,
            "{}: a decoy disk changed",
            node.name
        );
        let scratch = run.join(format!("{}.check", node.name));
        std::fs::create_dir_all(&scratch)?;
        check_installed_disk(&m.target, &scratch)?;
        report.push(format!(
            "{}: stick boot to installed {:.0} s (+{:.0} s to power off): {line}",
            node.name,
            secs.as_secs_f64(),
            off.as_secs_f64()
        ));

        // Boot the installed disk without the stick: the UEFI entry must find it, and the
        // node comes up under its own name (apply ran from its ESP).
        let (mut r, con) = m.boot(&run, None, &mac, true)?;
        let (_, up) = qemu::wait_for_line(
            &con,
            0,
            RESULT_TIMEOUT,
            || r.check_alive(),
            |l| l.contains(&format!("{} login:", node.name)).then_some(()),
        )
        .with_context(|| format!("{}: booting the installed disk", node.name))?;
        r.kill();
        ensure!(
            m.sums(false)? == before,
            "{}: a decoy disk changed during first boot",
            node.name
        );
        report.push(format!(
            "{}: installed disk boots to its login prompt in {:.0} s",
            node.name,
            up.as_secs_f64()
        ));

        // Negative: the stick left in. The disk holds this node: nothing is written.
        let target_sum = inst::sha256_file(&m.target)?;
        let (mut r, con) = m.boot(&run, Some(&stick), &mac, true)?;
        let (line, _) = wait_result(&mut r, &con)?;
        r.kill();
        ensure!(
            line.contains("result=already-installed"),
            "{}: {line}",
            node.name
        );
        ensure!(
            inst::sha256_file(&m.target)? == target_sum,
            "{}: the installed disk changed",
            node.name
        );
        machines.push(m);
    }

    // Negatives on the first machine: an unknown MAC, and no install disk at all.
    if let Some(m) = machines.first_mut() {
        let before = m.sums(true)?;
        let (mut r, con) = m.boot(&run, Some(&stick), "52:54:00:de:ad:01", true)?;
        let (line, _) = wait_result(&mut r, &con)?;
        r.kill();
        ensure!(
            line.contains("result=refused kind=unknown-machine"),
            "unknown MAC: {line}"
        );
        let screen = qemu::read_lossy(&con);
        ensure!(
            screen.contains("52:54:00:de:ad:01") && screen.contains("Nothing was written"),
            "the unknown-machine screen lacks the MAC"
        );
        let mac = m.mac.clone();
        let (mut r, con) = m.boot(&run, Some(&stick), &mac, false)?;
        let (line, _) = wait_result(&mut r, &con)?;
        r.kill();
        ensure!(
            line.contains("result=refused kind=missing"),
            "missing disk: {line}"
        );
        ensure!(m.sums(true)? == before, "a disk changed in a refused run");
        report.push("unknown MAC and missing install disk: refused, no byte written".into());
    }
    // The stick's log folder holds one log per run.
    let logs = qemu::tool(
        "mdir",
        &[
            "-b",
            "-i",
            &format!("{}@@{}", stick.display(), MIB),
            "::/hcikit/logs",
        ],
        "mtools",
    )?;
    println!("logs on the stick:\n{logs}");
    ensure!(
        logs.lines().count() >= nodes,
        "the stick holds too few logs: {logs}"
    );
    println!("{}", report.join("\n"));
    vm::remove_disks(&run);
    Ok(())
}
