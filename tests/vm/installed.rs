//! Installed disks booted as a cluster: the machines an installer wrote (USB stick or
//! network install) started together WITHOUT the installer, on the VM tier's loopback-only
//! switches, with the VM tier's checker and checks (apply, hostname, files, addresses,
//! pings, corosync quorum on every link, the agent stopping at its first Proxmox step).
//!
//! Each machine keeps the disks and UEFI variable store of its install, so the firmware
//! boots the entry the installer set (`efibootmgr`), not a fallback path.

use super::cluster::{self, DiskExpect};
use super::install::InstallDisk;
use super::lab::{self, GuestSpec, Lab};
use super::qemu::{self, Boot};
use anyhow::{ensure, Context, Result};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// One installed machine, as the install left it.
#[derive(Debug, Clone)]
pub struct InstalledNode {
    /// The node the installer wrote (a name in the spec).
    pub node: String,
    /// The installed disk, attached as during the install (bus, serial). Its root file
    /// system gets the VM tier's checker (test-only) before the boot.
    pub disk: InstallDisk,
    /// The machine's UEFI variable store after the install (holds the boot entry).
    pub vars: PathBuf,
    /// The MAC of each NIC, in the spec's network order (NIC i at PCI slot 0x12 + i).
    pub macs: Vec<String>,
    /// Other disks left in the machine (decoys, OSD disks), attached as during the install.
    pub other_disks: Vec<InstallDisk>,
    /// What the checker must find on those disks (by serial), e.g. an untouched file system.
    pub expect_disks: Vec<DiskExpect>,
}

/// How long one guest may take to boot and reach quorum with the others under TCG on a
/// busy 2-core machine.
const CLUSTER_TIMEOUT: Duration = Duration::from_secs(900);

/// Boots `machines` (one per node of the spec at `spec`, in the spec's node order) together
/// on loopback-only switches and runs the VM tier's checks. Returns report lines (timings);
/// fails with every failed check. Logs stay in `run` (`<node>.boot1.*`, `installed-*`).
pub fn check_installed_cluster(
    run: &Path,
    spec: &Path,
    machines: &[InstalledNode],
) -> Result<Vec<String>> {
    let t0 = Instant::now();
    let loaded = hcikit::load(spec).map_err(|e| anyhow::anyhow!("{e:#}"))?;
    let plan = &loaded.plan;
    ensure!(
        machines.len() == plan.nodes.len()
            && machines
                .iter()
                .zip(&plan.nodes)
                .all(|(m, n)| m.node == n.name),
        "check_installed_cluster wants one machine per node in the spec's order ({:?}), got {:?}",
        plan.nodes.iter().map(|n| &n.name).collect::<Vec<_>>(),
        machines.iter().map(|m| &m.node).collect::<Vec<_>>()
    );
    let dir = run.join("installed-cluster");
    std::fs::create_dir_all(&dir)?;
    let rendered = dir.join("rendered");
    render(spec, &rendered)?;
    let root_hash_digest = cluster::root_hash_digest(&loaded);

    let mut specs = Vec::new();
    for (g, m) in machines.iter().enumerate() {
        let offset = cluster::root_partition_offset(&m.disk.path)
            .with_context(|| format!("{}: the installed disk", m.node))?;
        let scratch = dir.join(format!("{}.inject", m.node));
        std::fs::create_dir_all(&scratch)?;
        lab::inject_checker(
            &format!("{}?offset={offset}", m.disk.path.display()),
            &scratch,
        )?;
        let (checker_env, plan_macs) = cluster::checker_env(plan, g, &m.expect_disks)?;
        ensure!(
            m.macs.len() == plan_macs.len(),
            "{}: {} MACs given for {} networks",
            m.node,
            m.macs.len(),
            plan_macs.len()
        );
        // No stick, no install medium: the installed disk and what else the machine has,
        // none of them first in a boot order of QEMU's (the UEFI variables decide).
        let mut disks = vec![InstallDisk {
            bootindex: None,
            ..m.disk.clone()
        }];
        disks.extend(m.other_disks.iter().cloned());
        specs.push(GuestSpec {
            name: m.node.clone(),
            boot: Boot::Ovmf {
                code: qemu::OVMF_CODE.into(),
                vars: m.vars.clone(),
            },
            disks: vec![],
            install_disks: disks,
            macs: m.macs.clone(),
            checker_env,
        });
    }
    let mut lab = Lab::start(&dir, plan.networks.len(), specs)?;
    let (boot, quorum) = cluster::wait_quorate(&mut lab, plan, CLUSTER_TIMEOUT)
        .with_context(|| format!("the installed cluster (logs in {})", dir.display()))?;
    let mut failures = Vec::new();
    for (g, m) in machines.iter().enumerate() {
        failures.extend(cluster::check_first_boot(
            &lab.lines(g),
            plan,
            g,
            &rendered,
            root_hash_digest.as_deref(),
            &m.expect_disks,
        ));
    }
    failures.extend(cluster::check_firstboot_report(
        &mut lab,
        plan,
        Duration::from_secs(300),
    ));
    lab.shutdown();
    ensure!(
        failures.is_empty(),
        "the installed cluster: {} check(s) failed (logs in {}):\n{}",
        failures.len(),
        dir.display(),
        failures.join("\n")
    );
    Ok(vec![
        lab::timings("installed disks: checker started (power-on to boot)", &boot),
        lab::timings("installed disks: quorate with all nodes and links", &quorum),
        format!(
            "installed cluster checked (inject, boot, quorum, checks) in {:.1} s",
            t0.elapsed().as_secs_f64()
        ),
    ])
}

/// `hcikit render SPEC -o DIR`: the files the checker compares against.
fn render(spec: &Path, out: &Path) -> Result<()> {
    let (code, err) = hcikit_tests::run_cli(&[
        "render",
        &spec.display().to_string(),
        "-o",
        &out.display().to_string(),
    ]);
    ensure!(
        code == 0,
        "hcikit render {} failed ({code}): {err}",
        spec.display()
    );
    Ok(())
}
