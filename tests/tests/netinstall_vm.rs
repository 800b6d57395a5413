//! The network install tier: `hcikit build --pxe` for `examples/minipc.toml`, served by
//! dnsmasq (DHCP, TFTP) and `hcikit serve` inside a network namespace this test creates
//! (tests/vm/netinstall.sh), and three QEMU mini PCs (OVMF, 2 GiB RAM each, at once)
//! that boot iPXE from the network and install their node onto a blank NVMe disk beside a
//! decoy SATA SSD. Checks every node reached `installed` at the server, each target holds
//! its node image (every copied bmap range) and no decoy byte changed; boots the installed
//! disks as a cluster on loopback-only switches with the VM tier's checks
//! (`vm::installed`); then the negatives: an unknown MAC and a corrupted payload file stop
//! with their message and write nothing.
//!
//! Slow tier: `just netinstall-test`. Needs root (network namespaces, tap devices),
//! dnsmasq, ipxe, ipxe-qemu, ovmf, qemu-system-x86. Logs stay in the folder printed first.

#[path = "../vm/mod.rs"]
mod vm;

use anyhow::{ensure, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;
use vm::cluster::DiskExpect;
use vm::install::{Bus, InstallDisk};
use vm::installed::{check_installed_cluster, InstalledNode};

const GIB: u64 = 1 << 30;
/// Per guest: power-on to power-off of a whole install under TCG, three at once.
const INSTALL_TIMEOUT_S: u64 = 900;
/// Per guest in the negative run: until its message shows.
const NEGATIVE_TIMEOUT_S: u64 = 400;
/// The address of the test's server inside its namespace (tests/vm/netinstall.sh).
const URL: &str = "http://10.77.0.1:8080";
/// A MAC no node of the spec has.
const UNKNOWN_MAC: &str = "52:54:00:99:99:99";

/// True when the file has no data at all (every byte a hole): nothing was written.
fn untouched_sparse(p: &Path) -> Result<bool> {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open(p)?;
    match nix::unistd::lseek(f.as_raw_fd(), 0, nix::unistd::Whence::SeekData) {
        Err(nix::errno::Errno::ENXIO) => Ok(true),
        Ok(_) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

struct Guest {
    name: String,
    mac: String,
    target: PathBuf,
    decoy: Option<(PathBuf, &'static str, &'static str)>,
}

impl Guest {
    fn arg(&self) -> String {
        match &self.decoy {
            Some((d, model, serial)) => format!(
                "{}:{}:{}:{}:{model}:{serial}",
                self.name,
                self.mac,
                self.target.display(),
                d.display()
            ),
            None => format!("{}:{}:{}", self.name, self.mac, self.target.display()),
        }
    }
}

/// Runs the lab with `guests` at once; returns the wall time.
fn lab(tree: &Path, work: &Path, timeout: u64, stop: &str, guests: &[Guest]) -> Result<f64> {
    std::fs::create_dir_all(work)?;
    let script = hcikit_tests::workspace_root().join("tests/vm/netinstall.sh");
    let t = Instant::now();
    let st = Command::new("bash")
        .arg(&script)
        .arg(hcikit_tests::hcikit_bin())
        .arg(tree)
        .arg(work)
        .arg(timeout.to_string())
        .args(guests.iter().map(Guest::arg))
        .env("STOP_PATTERN", stop)
        .status()
        .context("running tests/vm/netinstall.sh")?;
    ensure!(st.success(), "tests/vm/netinstall.sh failed: {st}");
    Ok(t.elapsed().as_secs_f64())
}

fn console(work: &Path, name: &str) -> String {
    String::from_utf8_lossy(
        &std::fs::read(work.join(format!("{name}.console"))).unwrap_or_default(),
    )
    .into_owned()
}

/// The server's reports (`hcikit serve --json` lines): node → every stage shown, in order.
fn server_stages(work: &Path) -> Result<BTreeMap<String, Vec<String>>> {
    let text = std::fs::read_to_string(work.join("serve.json"))?;
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with('{')) {
        let v: serde_json::Value = serde_json::from_str(line)?;
        let node = v["node"].as_str().unwrap_or("").to_string();
        let shown = v["shown"].as_str().unwrap_or("").to_string();
        out.entry(node).or_default().push(shown);
    }
    Ok(out)
}

/// `key=value` of the installer's `memory` line, KiB.
fn memory(con: &str, key: &str) -> Option<u64> {
    con.lines()
        .find(|l| l.contains("hcikit-install: memory"))?
        .split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")))?
        .parse()
        .ok()
}

fn received(con: &str) -> Option<u64> {
    let l = con.lines().find(|l| l.contains("bytes received"))?;
    l.split_whitespace()
        .collect::<Vec<_>>()
        .windows(2)
        .find(|w| w[1] == "bytes")
        .and_then(|w| w[0].parse().ok())
}

/// Checks every bmap range of the node image that the installer copies unchanged (all
/// but the first MiB, rewritten for the disk's size, and the image's backup GPT, moved to
/// the larger disk's end) against the target; returns the bytes checked.
fn same_as_image(target: &Path, bmap: &Path) -> Result<u64> {
    use sha2::Digest;
    use std::os::unix::fs::FileExt;
    let b = hcikit_firstboot::install::bmap::Bmap::parse(&std::fs::read(bmap)?)?;
    let f = std::fs::File::open(target)?;
    let tail = hcikit_firstboot::install::gpt::TAIL_BYTES as u64;
    let mut checked = 0;
    let mut buf = vec![0u8; 4 << 20];
    for r in &b.ranges {
        let (off, len) = b.span(r);
        if off < 1 << 20 || off + len > b.image_size - tail {
            continue;
        }
        let mut h = sha2::Sha256::new();
        let mut pos = off;
        while pos < off + len {
            let n = ((off + len - pos) as usize).min(buf.len());
            f.read_exact_at(&mut buf[..n], pos)?;
            h.update(&buf[..n]);
            pos += n as u64;
        }
        ensure!(
            h.finalize()[..] == r.sha256[..],
            "{}: blocks {}-{} differ from the node image",
            target.display(),
            r.first,
            r.last
        );
        checked += len;
    }
    ensure!(checked > 0, "no range of {} was checked", bmap.display());
    Ok(checked)
}

#[test]
#[ignore = "slow: builds the --pxe tree and network-installs three QEMU guests (many minutes)"]
fn three_nodes_install_from_the_network() {
    if let Err(e) = run_tier() {
        panic!("{e:#}");
    }
}

fn run_tier() -> Result<()> {
    for (tool, pkg) in [
        ("dnsmasq", "dnsmasq-base"),
        ("qemu-system-x86_64", "qemu-system-x86"),
        ("ip", "iproute2"),
    ] {
        if !hcikit_tests::require_tool(tool, pkg) {
            return Ok(());
        }
    }
    for f in [
        "/usr/lib/ipxe/ipxe.efi",
        "/usr/lib/ipxe/qemu/efi-virtio.rom",
        "/usr/share/OVMF/OVMF_CODE.fd",
    ] {
        if !Path::new(f).exists()
            && hcikit_tests::skip_or_fail(&format!("{f} is missing (scripts/setup.sh installs it)"))
        {
            return Ok(());
        }
    }
    if !nix::unistd::Uid::effective().is_root()
        && hcikit_tests::skip_or_fail("network namespaces and tap devices need root")
    {
        return Ok(());
    }
    let run = vm::run_dir("netinstall");
    println!("run folder: {}", run.display());
    let spec = vm::install::minipc_spec(&run, false)?;
    let out = run.join("out");
    let cache = vm::vm_cache_dir();
    let plan = hcikit::load(&spec)
        .map_err(|e| anyhow::anyhow!("{e:#}"))?
        .plan;
    let base = hcikit::image::base::ensure_base(&plan, &cache)?;
    let t = Instant::now();
    let (code, err) = hcikit_tests::run_cli(&[
        "build",
        &spec.display().to_string(),
        "-o",
        &out.display().to_string(),
        "--pxe",
        "--pxe-url",
        URL,
        "--base",
        &base.display().to_string(),
        "--agent",
        &vm::agent_binary()?.display().to_string(),
        "--cache",
        &cache.display().to_string(),
    ]);
    ensure!(code == 0, "hcikit build --pxe failed ({code}): {err}");
    let tree = out.join("pxe");
    let initrd = std::fs::metadata(tree.join("initrd.img"))
        .context("the --pxe tree has no initrd.img")?
        .len();
    println!(
        "pxe tree built in {:.1} s; initrd.img {} KiB",
        t.elapsed().as_secs_f64(),
        initrd >> 10
    );

    // Three nodes at once, each with a blank NVMe target and its SATA SSD as a decoy.
    let disks = run.join("disks");
    std::fs::create_dir_all(&disks)?;
    let mut guests = Vec::new();
    let mut sums = BTreeMap::new();
    for (i, n) in plan.nodes.iter().enumerate() {
        let target = disks.join(format!("{}-nvme.img", n.name));
        vm::install::make_disk(&target, plan.image.disk_size + GIB, 0, 0)?;
        let decoy = disks.join(format!("{}-ssd.img", n.name));
        vm::install::make_disk(&decoy, GIB, 64 << 20, i as u64 + 1)?;
        sums.insert(decoy.clone(), vm::install::sha256_file(&decoy)?);
        guests.push(Guest {
            name: n.name.clone(),
            mac: n.mac.clone().context("minipc nodes have MACs")?,
            target,
            decoy: Some((decoy, vm::install::SSDS[i].0, vm::install::SSDS[i].1)),
        });
    }
    let work = run.join("install");
    let wall = lab(
        &tree,
        &work,
        INSTALL_TIMEOUT_S,
        "hcikit-install: result=(failed|refused)",
        &guests,
    )?;
    println!("three nodes at once: {wall:.0} s wall");
    let stages = server_stages(&work)?;
    for g in &guests {
        let con = console(&work, &g.name);
        let secs =
            std::fs::read_to_string(work.join(format!("{}.seconds", g.name))).unwrap_or_default();
        ensure!(
            con.contains(&format!("hcikit-install: result=installed node={}", g.name)),
            "{}: no installed result on the console ({})",
            g.name,
            work.join(format!("{}.console", g.name)).display()
        );
        println!(
            "{}: power-on to power-off {} s; received {} bytes (+ kernel {} + initrd {}); installer peak RSS {} KiB, peak memory in use {} KiB",
            g.name,
            secs.trim(),
            received(&con).unwrap_or(0),
            std::fs::metadata(tree.join("vmlinuz"))?.len(),
            initrd,
            memory(&con, "peak-rss-kib").unwrap_or(0),
            memory(&con, "peak-used-kib").unwrap_or(0),
        );
        let seen = stages.get(&g.name).cloned().unwrap_or_default();
        ensure!(
            seen.first().map(String::as_str) == Some("booted")
                && seen.iter().any(|s| s.starts_with("writing"))
                && seen.last().map(String::as_str) == Some("installed"),
            "{}: the server saw {seen:?}, not booted … writing … installed",
            g.name
        );
        // The target starts with the image's partition table (written last).
        let mut head = vec![0u8; 1024];
        std::os::unix::fs::FileExt::read_exact_at(&std::fs::File::open(&g.target)?, &mut head, 0)?;
        ensure!(
            &head[512..520] == b"EFI PART",
            "{}: the target has no GPT",
            g.name
        );
        let checked = same_as_image(&g.target, &out.join(format!("{}.img.bmap", g.name)))?;
        println!(
            "{}: {checked} bytes of the target match the node image's bmap",
            g.name
        );
    }
    let decoys_unchanged = |when: &str| -> Result<()> {
        for (d, s) in &sums {
            ensure!(
                &vm::install::sha256_file(d)? == s,
                "decoy {} changed {when}",
                d.display()
            );
        }
        Ok(())
    };
    decoys_unchanged("during the network install")?;

    // The installed disks, with the UEFI variables the installer set and the decoys still
    // in, booted together on the cluster's loopback-only switch: the VM tier's checks
    // (hostname, addresses, pings, corosync quorum on every link, ...).
    let t = Instant::now();
    let installed: Vec<InstalledNode> = guests
        .iter()
        .enumerate()
        .map(|(i, g)| InstalledNode {
            node: g.name.clone(),
            disk: InstallDisk {
                path: g.target.clone(),
                bus: Bus::Nvme,
                serial: vm::install::nvme_serial(i),
                bootindex: None,
            },
            vars: work.join(format!("{}.vars.fd", g.name)),
            macs: vec![g.mac.clone()],
            other_disks: g
                .decoy
                .iter()
                .map(|(d, model, serial)| InstallDisk {
                    path: d.clone(),
                    bus: Bus::Sata {
                        model: model.to_string(),
                    },
                    serial: serial.to_string(),
                    bootindex: None,
                })
                .collect(),
            expect_disks: vec![DiskExpect::new(vm::install::SSDS[i].1, "/dev/sd", "none")],
        })
        .collect();
    for line in check_installed_cluster(&run, &spec, &installed)? {
        println!("{line}");
    }
    decoys_unchanged("while the installed nodes ran")?;
    println!(
        "installed cluster booted and checked in {:.0} s",
        t.elapsed().as_secs_f64()
    );

    // Negatives, at once: a machine with a MAC the spec does not know, and node 1 from a
    // tree whose head file was changed after the build (its pinned hash no longer
    // matches). Both stop with a message and write nothing.
    let bad = run.join("pxe-bad");
    std::fs::create_dir_all(&bad)?;
    for e in std::fs::read_dir(&tree)? {
        let e = e?;
        std::fs::hard_link(e.path(), bad.join(e.file_name()))?;
    }
    let first = &guests[0].name;
    let head = bad.join(format!("{first}.head.zst"));
    let mut bytes = std::fs::read(&head)?;
    std::fs::remove_file(&head)?;
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&head, bytes)?;
    let neg = vec![
        Guest {
            name: first.clone(),
            mac: guests[0].mac.clone(),
            target: disks.join("neg-nvme1.img"),
            decoy: None,
        },
        Guest {
            name: "stranger".into(),
            mac: UNKNOWN_MAC.into(),
            target: disks.join("neg-nvme2.img"),
            decoy: None,
        },
    ];
    for g in &neg {
        vm::install::make_disk(&g.target, plan.image.disk_size + GIB, 0, 0)?;
    }
    let work = run.join("negative");
    let wall = lab(
        &bad,
        &work,
        NEGATIVE_TIMEOUT_S,
        "hcikit-install: result=|is not a node of cluster",
        &neg,
    )?;
    println!("negative runs: {wall:.0} s wall");
    let con = console(&work, first);
    ensure!(
        con.contains("does not match the pinned") && con.contains("hcikit-install: result=failed"),
        "{first} with a changed head file: no hash-mismatch failure on the console"
    );
    let stages = server_stages(&work)?;
    let last = stages
        .get(first)
        .and_then(|s| s.last().cloned())
        .unwrap_or_default();
    ensure!(
        last.starts_with("failed:") && last.contains("does not match the pinned"),
        "the server shows {first} as {last:?}, not failed with the hash mismatch"
    );
    let con = console(&work, "stranger");
    ensure!(
        con.contains(&format!(
            "MAC {UNKNOWN_MAC} is not a node of cluster minipc"
        )),
        "the unknown machine's console lacks the unknown-MAC message"
    );
    let stranger = stages
        .get(&format!("unknown-{}", UNKNOWN_MAC.replace(':', "-")))
        .and_then(|s| s.last().cloned())
        .unwrap_or_default();
    ensure!(
        stranger.starts_with(&format!("failed: MAC {UNKNOWN_MAC} is not a node")),
        "the server shows the unknown machine as {stranger:?}"
    );
    for g in &neg {
        ensure!(
            untouched_sparse(&g.target)?,
            "{}: a byte was written to {}",
            g.name,
            g.target.display()
        );
    }
    vm::remove_disks(&run);
    Ok(())
}
