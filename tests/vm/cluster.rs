//! The VM tier's cluster checks, shared by every test that boots hcikit nodes on the
//! loopback-only switches (images in `vm.rs`, installed disks in [`super::installed`]):
//! the checker's settings for a node, waiting for boot and quorum, and reading the
//! checker's result lines against the Plan.

use super::lab::Lab;
use super::qemu;
use anyhow::{bail, Context, Result};
use hcikit_firstboot::plan::{NetDevice, Plan};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// Root file system partition type (GPT "Linux root x86-64").
pub const ROOT_PART_TYPE: &str = "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709";

/// A disk the checker reports (`disk SERIAL dev=… type=…`) and what it must look like.
#[derive(Debug, Clone)]
pub struct DiskExpect {
    pub serial: String,
    /// e.g. `/dev/sd` for SCSI/SATA, `/dev/nvme` for NVMe.
    pub dev_prefix: String,
    /// `blkid` TYPE, `none` for no signature.
    pub fs: String,
}

impl DiskExpect {
    pub fn new(serial: &str, dev_prefix: &str, fs: &str) -> DiskExpect {
        DiskExpect {
            serial: serial.into(),
            dev_prefix: dev_prefix.into(),
            fs: fs.into(),
        }
    }
}

/// The checker's settings (fw_cfg `opt/hcikit/vmtest`) for node `g` of `plan` and the MAC
/// of each of its NICs, in network order. `disks` are the serials the checker reports.
pub fn checker_env(plan: &Plan, g: usize, disks: &[DiskExpect]) -> Result<(String, Vec<String>)> {
    let node = &plan.nodes[g];
    let name = &node.name;
    let serials: Vec<&str> = disks.iter().map(|d| d.serial.as_str()).collect();
    let mut env = format!(
        "MODE=e2e\nNODE={name}\nEXPECT_MEMBERS={}\nDISK_SERIALS=\"{}\"\n",
        plan.nodes.len(),
        serials.join(" ")
    );
    let mut nics = Vec::new();
    let mut macs = Vec::new();
    for (i, net) in plan.networks.iter().enumerate() {
        let nic = match &net.device {
            NetDevice::Interface { name } => name.clone(),
            NetDevice::Bond { .. } => bail!("network {} is a bond: not in the VM test", net.name),
        };
        let addr = node
            .address_on(&net.name)
            .with_context(|| format!("{name} has no address on {}", net.name))?;
        let peers: Vec<String> = plan
            .nodes
            .iter()
            .filter(|o| o.name != *name)
            .filter_map(|o| o.address_on(&net.name).map(|a| a.ip.clone()))
            .collect();
        env.push_str(&format!(
            "IFACE_{i}={}\nADDR_{i}={}\nMTU_{i}={}\nPEERS_{i}=\"{}\"\n",
            net.address_iface,
            addr.ip_cidr,
            net.mtu,
            peers.join(" ")
        ));
        nics.push(nic);
        macs.push(nic_mac(node.mac.as_deref(), g, i));
    }
    env.push_str(&format!("NICS=\"{}\"\n", nics.join(" ")));
    if g == 0 {
        env.push_str("REPORT_FIRSTBOOT=1\n");
    }
    Ok((env, macs))
}

/// Waits until every guest's checker started, then until every guest sees all nodes
/// quorate on every link. Returns the per-node times (from each guest's start).
pub fn wait_quorate(
    lab: &mut Lab,
    plan: &Plan,
    timeout: Duration,
) -> Result<(BTreeMap<String, Duration>, BTreeMap<String, Duration>)> {
    let n = plan.nodes.len();
    let want_connected = (n - 1) * plan.corosync.links.len();
    let mut boot = BTreeMap::new();
    let mut quorum = BTreeMap::new();
    for g in 0..n {
        let (_, d) = lab.wait(g, timeout, |l| l.starts_with("HCIKIT boot ").then_some(()))?;
        boot.insert(plan.nodes[g].name.clone(), d);
    }
    for g in 0..n {
        let (_, d) = lab.wait(g, timeout, |l| {
            quorum_line(l, n, want_connected).then_some(())
        })?;
        quorum.insert(plan.nodes[g].name.clone(), d);
    }
    Ok((boot, quorum))
}

/// The agent's cluster run on guest 0 (the founder), without Proxmox: it must stop at
/// its first Proxmox step. Returns the failures found in the checker's report.
pub fn check_firstboot_report(lab: &mut Lab, plan: &Plan, timeout: Duration) -> Vec<String> {
    let mut failures = Vec::new();
    // The checker's report ends with the pending-flag line.
    match lab.wait(0, timeout, |l| {
        l.starts_with("HCIKIT firstboot-pending ").then_some(())
    }) {
        Ok(_) => {
            let lines = lab.lines(0);
            let state = find(&lines, "firstboot-unit ")
                .unwrap_or_default()
                .trim_start_matches("firstboot-unit ")
                .to_string();
            for l in lines.iter().filter(|l| l.starts_with("firstboot")) {
                println!("{}: {l}", plan.nodes[0].name);
            }
            let status = find(&lines, "firstboot-status ").unwrap_or_default();
            let json = status.trim_start_matches("firstboot-status ");
            match serde_json::from_str::<serde_json::Value>(json) {
                Ok(v) => failures.extend(check_stopped_at_proxmox(&state, &v)),
                Err(e) => failures.push(format!("firstboot status --json: {e}: {json}")),
            }
            if !lines.iter().any(|l| l == "firstboot-pending present") {
                failures
                    .push("firstboot pending flag removed although the run did not finish".into());
            }
        }
        Err(e) => failures.push(format!("{e:#}")),
    }
    failures
}

/// The digest of the spec's root password hash as the checker reports it (the hash
/// itself is a secret and stays out of the serial logs).
pub fn root_hash_digest(loaded: &hcikit::Loaded) -> Option<String> {
    loaded
        .secrets
        .get_id("root-password-hash")
        .map(|h| hex::encode(Sha256::digest(String::from_utf8_lossy(h).trim().as_bytes())))
}

/// The spec's MAC on the first NIC; the others get it with the fourth byte changed (or a
/// generated local MAC when the spec has none).
pub fn nic_mac(spec_mac: Option<&str>, guest: usize, nic: usize) -> String {
    match spec_mac {
        Some(m) if nic == 0 => m.to_string(),
        Some(m) => {
            let mut b: Vec<String> = m.split(':').map(str::to_string).collect();
            let v = u8::from_str_radix(&b[3], 16).unwrap_or(0) ^ (nic as u8);
            b[3] = format!("{v:02x}");
            b.join(":")
        }
        None => format!("52:54:00:77:{nic:02x}:{:02x}", guest + 1),
    }
}

/// Byte offset of the root partition in a disk image, from `sfdisk --json`.
pub fn root_partition_offset(img: &Path) -> Result<u64> {
    let json = qemu::tool("sfdisk", &["--json", &img.display().to_string()], "fdisk")?;
    let v: serde_json::Value = serde_json::from_str(&json)?;
    let table = &v["partitiontable"];
    let sector = table["sectorsize"].as_u64().unwrap_or(512);
    for p in table["partitions"].as_array().into_iter().flatten() {
        if p["type"]
            .as_str()
            .is_some_and(|t| t.eq_ignore_ascii_case(ROOT_PART_TYPE))
        {
            return Ok(p["start"].as_u64().context("partition start")? * sector);
        }
    }
    bail!("no root partition in {}", img.display())
}

/// `quorum ... quorate=Yes nodes=N connected=C` with the given counts.
pub fn quorum_line(line: &str, nodes: usize, connected: usize) -> bool {
    line.starts_with("HCIKIT quorum ")
        && line.contains(" quorate=Yes ")
        && line.contains(&format!(" nodes={nodes} "))
        && line.ends_with(&format!(" connected={connected}"))
}

/// Without Proxmox the founder's run must not get past its first Proxmox step
/// (`cluster-create`): either it failed there, or it keeps waiting there, and status says
/// which and why. Anything else (done, or a later step) is wrong.
pub fn check_stopped_at_proxmox(unit_state: &str, v: &serde_json::Value) -> Vec<String> {
    let mut f = Vec::new();
    let phase = v["phase"].as_str().unwrap_or("");
    let text = |k: &str| v[k].to_string();
    let at_step = ["step", "doing", "waiting-for", "failed", "last-error"]
        .iter()
        .any(|k| {
            let t = text(k);
            ["cluster-create", "pve-cluster", "pvecm", "pvesh"]
                .iter()
                .any(|w| t.contains(w))
        });
    match phase {
        "failed" if unit_state.starts_with("state=failed") && at_step => {}
        "waiting" | "running" if unit_state.starts_with("state=activating") && at_step => {
            println!("note: the agent keeps retrying its first Proxmox step instead of failing");
        }
        _ => f.push(format!(
            "the cluster run should stop at its first Proxmox step: unit {unit_state}, status {v}"
        )),
    }
    if v["done"]
        .as_array()
        .is_some_and(|d| d.iter().any(|s| s.to_string().contains("cluster-create")))
    {
        f.push(format!(
            "cluster-create counted as done without Proxmox: {v}"
        ));
    }
    f
}

pub fn find<'a>(lines: &'a [String], prefix: &str) -> Option<&'a str> {
    lines
        .iter()
        .find(|l| l.starts_with(prefix))
        .map(String::as_str)
}

pub fn sha256_file(p: &Path) -> Result<String> {
    Ok(hex::encode(Sha256::digest(std::fs::read(p)?)))
}

/// Checks the first boot of guest `g` from its result lines.
pub fn check_first_boot(
    lines: &[String],
    plan: &Plan,
    g: usize,
    rendered: &Path,
    root_hash_digest: Option<&str>,
    disks: &[DiskExpect],
) -> Vec<String> {
    let node = &plan.nodes[g];
    let name = &node.name;
    let mut f = Vec::new();
    let mut expect = |ok: bool, what: String| {
        if !ok {
            f.push(format!("{name}: {what}"));
        }
    };
    for l in lines.iter().filter(|l| l.starts_with("fail")) {
        expect(false, l.clone());
    }
    // apply ran on this boot, successfully, and was done before networking started.
    match find(lines, "apply ") {
        Some(l) => {
            let kv: BTreeMap<&str, &str> = l
                .split_whitespace()
                .filter_map(|w| w.split_once('='))
                .collect();
            expect(
                kv.get("condition") == Some(&"yes") && kv.get("result") == Some(&"success"),
                format!("hcikit-apply did not run successfully: {l}"),
            );
            let at = |k: &str| kv.get(k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            expect(
                at("finished_at") > 0 && at("finished_at") <= at("networking_started_at"),
                format!("hcikit-apply not finished before networking started: {l}"),
            );
        }
        None => expect(false, "no apply line".into()),
    }
    expect(
        lines.iter().any(|l| l == "apply-pending absent"),
        "apply pending flag still there".into(),
    );
    expect(
        find(lines, "os ")
            .is_some_and(|l| l.starts_with(&format!("os codename={} ", plan.image.suite))),
        format!(
            "not booted from Debian {} (PVE {}): {:?}",
            plan.image.suite,
            plan.cluster.pve_major,
            find(lines, "os ")
        ),
    );
    expect(
        lines.iter().any(|l| *l == format!("hostname {name}")),
        format!("hostname is not {name}: {:?}", find(lines, "hostname ")),
    );
    // Item 6: the zone is applied where systemd (and so Proxmox) reads it.
    let zone = format!("localtime ../usr/share/zoneinfo/{}", plan.cluster.timezone);
    expect(
        lines.contains(&zone),
        format!(
            "/etc/localtime is not the plan's zone: {:?}",
            find(lines, "localtime ")
        ),
    );
    // Proxmox's pvecm create/add die without an ssh-rsa host key (pve-cluster
    // `PVE::Cluster::Setup` `ssh_merge_known_hosts`): the node has one, its private and
    // public halves belong together, and the build pinned it in the known_hosts file.
    expect(
        find(lines, "rsa-host-key ").is_some_and(|l| {
            l.starts_with("rsa-host-key present=yes matches=yes pinned=")
                && !l.ends_with("pinned=0")
        }),
        format!("no pinned RSA host key: {:?}", find(lines, "rsa-host-key ")),
    );
    // The spec's root password hash took effect (only a digest of it is reported).
    if let Some(want) = root_hash_digest {
        expect(
            lines.contains(&format!("root-hash-sha256 {want}")),
            format!(
                "root's shadow entry is not the spec's hash: {:?}",
                find(lines, "root-hash-sha256 ")
            ),
        );
    }
    for file in ["/etc/hostname", "/etc/hosts", "/etc/network/interfaces"] {
        let want = sha256_file(&rendered.join(name).join(file.trim_start_matches('/')))
            .unwrap_or_else(|e| format!("unreadable rendered file: {e}"));
        expect(
            lines
                .iter()
                .any(|l| *l == format!("file-sha256 {file} {want}")),
            format!("{file} is not the rendered one"),
        );
    }
    expect(
        find(lines, "esp ").is_some_and(|l| l.contains(" secrets-left=0 ")),
        format!("secrets left on the ESP: {:?}", find(lines, "esp ")),
    );
    for (i, net) in plan.networks.iter().enumerate() {
        let addr = &node.addresses[i].ip_cidr;
        let l = lines
            .iter()
            .find(|l| l.starts_with(&format!("addr {} ", net.address_iface)));
        expect(
            l.is_some_and(|l| {
                l.contains(&format!(" have={addr}")) && l.contains(&format!(" mtu={} ", net.mtu))
            }),
            format!(
                "{} should carry {addr} with MTU {}: {l:?}",
                net.address_iface, net.mtu
            ),
        );
    }
    let pings = lines
        .iter()
        .filter(|l| l.starts_with("ping ") && l.ends_with(" ok"))
        .count();
    expect(
        pings == (plan.nodes.len() - 1) * plan.networks.len(),
        format!("{pings} peers answered pings"),
    );
    expect(
        lines
            .iter()
            .any(|l| l == "corosync-before active=inactive enabled=disabled"),
        format!(
            "corosync not disabled and stopped before the test started it: {:?}",
            find(lines, "corosync-before")
        ),
    );
    expect(
        lines.iter().any(|l| l == "networkd active=inactive"),
        "systemd-networkd is running next to ifupdown2".into(),
    );
    expect(
        lines.iter().any(|l| l == "corosync-config valid"),
        "rendered corosync.conf rejected by corosync -t".into(),
    );
    for d in disks {
        let (serial, dev, fs) = (&d.serial, &d.dev_prefix, &d.fs);
        expect(
            lines.iter().any(|l| {
                l.starts_with(&format!("disk {serial} dev={dev}"))
                    && l.ends_with(&format!(" type={fs}"))
            }),
            format!("disk {serial} should be a {dev}* device still of type={fs} (untouched)"),
        );
    }
    f
}
