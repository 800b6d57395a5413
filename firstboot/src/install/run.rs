//! One install, start to end: find the stick, pick the node, decide the disk, show the
//! summary and wait for an abort, write and verify, set the boot entry, leave a log on the
//! stick, then power off or reboot. Each step's decision is one of the pure functions of
//! the sibling modules; this file only sequences them and does the I/O.

use super::console::{self, Console};
use super::identity::{self, Identity, NodeId};
use super::payload::{self, Manifest, StickOpener};
use super::target::{self, Decision, Want};
use super::{efiboot, gpt, system, write};
use crate::layout;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the installer mounts the stick's ESP when it is not given one.
pub const STICK_MOUNT: &str = "/run/hcikit/stick";
/// Kernel argument of the stick's "reinstall" boot entry.
pub const REINSTALL_ARG: &str = "hcikit.reinstall=1";

#[derive(Debug, Clone)]
pub struct Options {
    /// The stick's ESP folder; found and mounted by `LoaderDevicePartUUID` when `None`.
    pub stick: Option<PathBuf>,
    /// Prefix for `/sys`, `/dev`, `/proc` (tests use a fake tree).
    pub root: PathBuf,
    /// Decide and show, write nothing.
    pub dry_run: bool,
    /// Do not set a boot entry, do not power off (tests, manual runs).
    pub no_finish: bool,
    /// Consoles to talk on; `CONSOLES` by default.
    pub consoles: Vec<PathBuf>,
}

/// How an install ended. Every variant except `Installed` wrote nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Installed {
        node: String,
        disk: String,
        stats: write::Stats,
    },
    AlreadyInstalled {
        node: String,
        disk: String,
    },
    Refused {
        node: Option<String>,
        kind: String,
        message: String,
    },
    Aborted {
        node: String,
    },
    DryRun {
        node: String,
        disk: String,
    },
}

impl Outcome {
    /// One line for test harnesses and log readers: `hcikit-install: result=…`.
    pub fn result_line(&self) -> String {
        match self {
            Outcome::Installed { node, disk, stats } => format!(
                "hcikit-install: result=installed node={node} disk={disk} mapped={} written={} verified={} seconds={:.1}",
                stats.mapped,
                stats.data_written + stats.other_written,
                stats.verified,
                stats.elapsed.as_secs_f64()
            ),
            Outcome::AlreadyInstalled { node, disk } => {
                format!("hcikit-install: result=already-installed node={node} disk={disk}")
            }
            Outcome::Refused { node, kind, .. } => format!(
                "hcikit-install: result=refused kind={kind} node={}",
                node.as_deref().unwrap_or("-")
            ),
            Outcome::Aborted { node } => format!("hcikit-install: result=aborted node={node}"),
            Outcome::DryRun { node, disk } => format!("hcikit-install: result=dry-run node={node} disk={disk}"),
        }
    }
}

/// The stick's ESP mounted by the installer; unmounted on drop.
struct StickMount {
    path: PathBuf,
    mounted: bool,
}

impl StickMount {
    fn mount(root: &Path) -> Result<StickMount> {
        let Some(uuid) = system::loader_partuuid(root) else {
            bail!("cannot find the installer stick: no LoaderDevicePartUUID EFI variable (was this booted through systemd-boot from the stick?)");
        };
        let dev = format!("/dev/disk/by-partuuid/{uuid}");
        let path = PathBuf::from(STICK_MOUNT);
        std::fs::create_dir_all(&path)?;
        crate::cmd::run(
            std::process::Command::new("mount")
                .args(["-t", "vfat", "-o", "rw,nodev,nosuid,noexec"])
                .arg(&dev)
                .arg(&path),
            Some("util-linux"),
        )
        .with_context(|| format!("mounting the stick's ESP {dev}"))?;
        Ok(StickMount {
            path,
            mounted: true,
        })
    }
}

impl Drop for StickMount {
    fn drop(&mut self) {
        if self.mounted {
            self.mounted = false;
            let _ = std::process::Command::new("umount")
                .arg(&self.path)
                .status();
        }
    }
}

/// A refusal's kind as the result line names it (`result=refused kind=holds-data`).
pub(super) fn kind_name(k: target::RefusalKind) -> &'static str {
    use target::RefusalKind::*;
    match k {
        NotSet => "not-set",
        Missing => "missing",
        Partition => "partition",
        BootMedium => "boot-medium",
        OsdDisk => "osd-disk",
        InUse => "in-use",
        Ambiguous => "ambiguous",
        TooSmall => "too-small",
        HoldsData => "holds-data",
        Collision => "collision",
    }
}

/// The disk request of a node, from the manifest.
pub fn want_for(m: &Manifest, node: &payload::NodePayload, reinstall: bool) -> Want {
    Want {
        cluster: m.cluster.clone(),
        node: node.node.clone(),
        key: node.key.clone(),
        install_disk: node.install_disk.clone(),
        wipe: node.install_wipe,
        osd_disks: {
            let mut v = node.osd_disks.clone();
            // By-id names are unique worldwide: another node's OSD disk named so is never
            // this node's install disk either.
            for n in &m.nodes {
                v.extend(
                    n.osd_disks
                        .iter()
                        .filter(|d| d.starts_with("/dev/disk/by-id/"))
                        .cloned(),
                );
            }
            v.sort();
            v.dedup();
            v
        },
        image_size: node.image_size,
        node_disk_guids: m
            .nodes
            .iter()
            .map(|n| (n.disk_guid.clone(), n.node.clone()))
            .collect(),
        stick_disk_guid: Some(m.stick_disk_guid.clone()),
        partition_guids: node.partition_guids.clone(),
        partition_labels: node.partition_labels.clone(),
        reinstall,
    }
}

/// The summary shown before writing.
pub fn summary(
    node: &str,
    d: &target::Disk,
    erases: &str,
    warnings: &[String],
    mapped: u64,
    image: u64,
) -> String {
    let mut s = format!(
        "Install node {node}\n  to disk  /dev/{} — {}\n  by id    {}\n  writes   {} of image data ({} image), verified by SHA-256, partition table last\n  erases   {}\n",
        d.name,
        d.describe(),
        d.by_id.first().map(String::as_str).unwrap_or("(no by-id name)"),
        target::human(mapped),
        target::human(image),
        if erases.is_empty() { "nothing (the disk is blank)" } else { erases },
    );
    for w in warnings {
        s.push_str(&format!("  warning  {w}\n"));
    }
    s
}

/// Runs the installer. Returns what happened; a refusal is an `Outcome`, not an error,
/// so it is shown and logged like the rest. Errors are failures during the write.
/// The last chance to abort, shared by the USB and the network install: waits `secs`
/// for Enter on an interactive console (false: aborted, nothing written), then decides
/// the disk again — the machine may have changed during the wait (a disk plugged in or
/// out) — and fails unless the answer is the same disk.
pub(super) fn confirm(
    con: &mut Console,
    secs: u64,
    root: &Path,
    boot_ids: &[String],
    want: &Want,
    node: &str,
    disk: &target::Disk,
) -> Result<bool> {
    if secs > 0 && con.interactive() {
        con.say(&format!("Writing in {secs} seconds. Press Enter to abort."));
        if con.ask(Some(Duration::from_secs(secs))).is_some() {
            con.say("Aborted at the console. Nothing was written to any disk.");
            return Ok(false);
        }
    }
    match target::decide(&system::observe(root, boot_ids)?, want) {
        Decision::Write { disk: d2, .. }
            if d2.name == disk.name && d2.size == disk.size && d2.serial == disk.serial => {}
        _ => bail!("node {node}: the disks changed while waiting; nothing was written. Restart the install"),
    }
    Ok(true)
}

/// Points a UEFI boot entry at the installed disk's ESP (found in the partition table
/// just written), first in `BootOrder` and as `BootNext`; shared by the USB and the
/// network install.
pub(super) fn boot_entry(
    con: &mut Console,
    gpt_head: &[u8],
    disk: &str,
    cluster: &str,
    node: &str,
) -> Result<()> {
    let esp_part = gpt::parse(gpt_head)
        .and_then(|g| {
            g.partitions
                .iter()
                .find(|p| p.type_guid == gpt::EFI_SYSTEM)
                .map(|p| p.number)
        })
        .unwrap_or(1);
    let num = efiboot::set_boot_entry(
        &format!("/dev/{disk}"),
        esp_part,
        &efiboot::label(cluster, node),
    )?;
    con.say(&format!(
        "UEFI boot entry Boot{num} points at /dev/{disk} and is BootNext"
    ));
    Ok(())
}

/// Lists every disk the installer sees and what it holds, for the console and the log.
pub(super) fn show_disks(con: &mut Console, observed: &target::Observed) {
    for d in &observed.disks {
        con.say(&format!(
            "  disk {}{}: {}",
            d.describe(),
            if d.boot_medium { " [boot medium]" } else { "" },
            if d.probe.is_blank() {
                "blank".to_string()
            } else {
                d.probe.describe()
            }
        ));
    }
}

/// A disk already holds this node: the next boot starts it, through the UEFI entry an
/// earlier install made (none: the firmware's own order decides).
pub(super) fn boot_installed_next(con: &mut Console, cluster: &str, node: &str) -> Result<()> {
    if let Some(num) = efiboot::find_entry(&efiboot::label(cluster, node)) {
        efiboot::boot_next(&num)?;
        con.say("the next boot starts the installed system");
    }
    Ok(())
}

pub fn install(opts: &Options) -> Result<(Outcome, Console)> {
    let consoles = if opts.consoles.is_empty() {
        console::CONSOLES.iter().map(PathBuf::from).collect()
    } else {
        opts.consoles.clone()
    };
    let mut con = Console::open(&consoles, true);
    let mut _mount = None;
    let stick = match &opts.stick {
        Some(s) => s.clone(),
        None => {
            let m = StickMount::mount(&opts.root)?;
            let p = m.path.clone();
            _mount = Some(m);
            p
        }
    };
    let outcome = session(opts, &stick, &mut con);
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => {
            con.say(&format!("hcikit-install: FAILED: {e:#}"));
            con.say("hcikit-install: result=failed");
            save_log(&stick, "unknown", &mut con);
            return Err(e);
        }
    };
    Ok((outcome, con))
}

fn save_log(stick: &Path, node: &str, con: &mut Console) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    match console::write_log(stick, &console::log_name(node, now), &con.log_text()) {
        Ok(p) => con.say(&format!(
            "log written to the stick: {}",
            p.strip_prefix(stick).unwrap_or(&p).display()
        )),
        Err(e) => con.say(&format!("could not write the log to the stick: {e:#}")),
    }
}

fn session(opts: &Options, stick: &Path, con: &mut Console) -> Result<Outcome> {
    let manifest_path = stick.join(layout::ESP_DIR).join("install/manifest.json");
    let m = Manifest::parse(
        &std::fs::read(&manifest_path)
            .with_context(|| format!("reading {}", manifest_path.display()))?,
    )?;
    con.say(&format!(
        "hcikit installer for cluster {} ({} nodes)",
        m.cluster,
        m.nodes.len()
    ));
    let machine = system::machine(&opts.root);
    let reinstall = machine
        .cmdline
        .split_whitespace()
        .any(|a| a == REINSTALL_ARG);
    let ids: Vec<NodeId> = m
        .nodes
        .iter()
        .map(|n| NodeId {
            name: n.node.clone(),
            mac: n.mac.clone(),
        })
        .collect();
    let (node, how) = match identity::identify(&ids, &machine) {
        Identity::Found { node, how } => (node, format!("{how:?}").to_lowercase()),
        Identity::Refused(msg) => {
            con.say(&format!("REFUSED: {msg}\nNothing was written to any disk."));
            let o = Outcome::Refused {
                node: None,
                kind: "identity".into(),
                message: msg,
            };
            con.say(&o.result_line());
            save_log(stick, "unknown", con);
            return Ok(o);
        }
        Identity::AskConsole { nodes } => {
            let screen = identity::unknown_machine_message(&m.cluster, &ids, &machine);
            con.say(&screen);
            let o = Outcome::Refused {
                node: None,
                kind: "unknown-machine".into(),
                message: screen.clone(),
            };
            con.say(&o.result_line());
            save_log(stick, "unknown", con);
            if !con.interactive() {
                return Ok(o);
            }
            let mut chosen = None;
            while chosen.is_none() {
                let mut menu = String::from("To install one of the nodes on this machine anyway, type its number and Enter:\n");
                for (i, n) in nodes.iter().enumerate() {
                    menu.push_str(&format!("  {}) {n}\n", i + 1));
                }
                con.say(&menu);
                match con.ask(None) {
                    Some(a) => chosen = identity::menu_choice(&nodes, &a),
                    None => return Ok(o),
                }
            }
            (chosen.expect("set in the loop"), "menu".to_string())
        }
    };
    con.say(&format!(
        "this machine is node {node} (found by {how}); MACs {}",
        machine.macs.join(", ")
    ));
    let np = m
        .node(&node)
        .context("the identified node is not in the manifest")?
        .clone();
    let bmap = payload::load_bmap(stick, &np)?;
    let mut boot_ids: Vec<String> = system::loader_partuuid(&opts.root).into_iter().collect();
    boot_ids.extend(system::cmdline_root_partuuid(&machine.cmdline));
    let want = want_for(&m, &np, reinstall);
    let observed = system::observe(&opts.root, &boot_ids)?;
    show_disks(con, &observed);
    let decision = target::decide(&observed, &want);
    let (disk, erases, warnings) = match decision {
        Decision::Refused(r) => {
            con.say(&format!(
                "REFUSED: {}\nNothing was written to any disk.",
                r.message
            ));
            let o = Outcome::Refused {
                node: Some(node.clone()),
                kind: kind_name(r.kind).into(),
                message: r.message,
            };
            con.say(&o.result_line());
            save_log(stick, &node, con);
            return Ok(o);
        }
        Decision::AlreadyInstalled { disk } => {
            con.say(&format!(
                "Disk {} already holds node {node} of cluster {}: not reinstalling. Remove the stick and boot from the disk; to reinstall, choose the stick's \"reinstall\" boot entry.",
                disk.describe(),
                m.cluster
            ));
            let o = Outcome::AlreadyInstalled {
                node: node.clone(),
                disk: disk.name.clone(),
            };
            con.say(&o.result_line());
            save_log(stick, &node, con);
            if !opts.dry_run && !opts.no_finish {
                boot_installed_next(con, &m.cluster, &node)?;
            }
            return Ok(o);
        }
        Decision::Write {
            disk,
            erases,
            warnings,
        } => (disk, erases, warnings),
    };
    con.say(&summary(
        &node,
        &disk,
        &erases,
        &warnings,
        bmap.mapped_bytes(),
        bmap.image_size,
    ));
    if opts.dry_run {
        let o = Outcome::DryRun {
            node: node.clone(),
            disk: disk.name.clone(),
        };
        con.say(&o.result_line());
        return Ok(o);
    }
    if !confirm(
        con,
        m.confirm_secs,
        &opts.root,
        &boot_ids,
        &want,
        &node,
        &disk,
    )? {
        let o = Outcome::Aborted { node: node.clone() };
        con.say(&o.result_line());
        save_log(stick, &node, con);
        return Ok(o);
    }
    let dev_path = system::dev_path(&opts.root, &disk.name);
    let mut dev = write::FileDevice::open(&dev_path)?;
    let plan = write::plan(
        &image_head(&np, &bmap, stick, &opts.root)?,
        bmap.image_size,
        write::Device::size(&dev),
    )?;
    let opener = StickOpener {
        esp: stick,
        root: &opts.root,
    };
    let mut source = payload::open_stream(&np, &bmap, &opener)?;
    con.say(&format!("writing node {node} to /dev/{}", disk.name));
    let mut last = std::time::Instant::now();
    let stats = write::write(&bmap, &mut source, &mut dev, &plan, &mut |p| {
        if p.stage != "writing" || last.elapsed() >= Duration::from_secs(2) {
            last = std::time::Instant::now();
            con.say(&format!("  {}", p.line()));
        }
    })
    .with_context(|| format!("node {node}: writing /dev/{}", disk.name))?;
    drop(dev);
    con.say(&format!(
        "written and verified: {} of image data, {} read back, in {:.1} s",
        target::human(stats.data_written),
        target::human(stats.verified),
        stats.elapsed.as_secs_f64()
    ));
    let o = Outcome::Installed {
        node: node.clone(),
        disk: disk.name.clone(),
        stats,
    };
    if !opts.no_finish {
        boot_entry(con, &plan.gpt.head, &disk.name, &m.cluster, &node)?;
    }
    con.say(&o.result_line());
    save_log(stick, &node, con);
    if !opts.no_finish {
        let verb = if m.after_install == "reboot" {
            "reboot"
        } else {
            "poweroff"
        };
        con.say(&format!(
            "Installed. Remove the stick; the machine will {verb} now (image.after-install)."
        ));
        crate::cmd::run(
            std::process::Command::new("systemctl").args(["--no-block", verb]),
            Some("systemd"),
        )?;
    }
    Ok(o)
}

/// The first 34 sectors of the node image, rebuilt from the start of the range stream
/// (holes in the bmap are zeros in the image).
fn image_head(
    np: &payload::NodePayload,
    bmap: &super::bmap::Bmap,
    stick: &Path,
    root: &Path,
) -> Result<Vec<u8>> {
    use std::io::Read;
    let opener = StickOpener { esp: stick, root };
    let mut s = payload::open_stream(np, bmap, &opener)?;
    let mut head = vec![0u8; gpt::HEAD_BYTES];
    for r in &bmap.ranges {
        let (off, len) = bmap.span(r);
        if off >= gpt::HEAD_BYTES as u64 {
            break;
        }
        let mut buf = vec![0u8; len.min(gpt::HEAD_BYTES as u64 - off) as usize];
        s.read_exact(&mut buf)
            .context("reading the image's partition table")?;
        head[off as usize..off as usize + buf.len()].copy_from_slice(&buf);
        if (buf.len() as u64) < len {
            break;
        }
    }
    Ok(head)
}

#[cfg(test)]
mod tests {
    use super::super::payload::{NodePayload, Segment, MANIFEST_FORMAT};
    use super::super::write::tests::{bmap_and_stream, image};
    use super::*;
    use rand_chacha::ChaCha8Rng;
    use rand_core::{RngCore, SeedableRng};
    use sha2::{Digest, Sha256};
    use std::os::unix::fs::symlink;

    const MIB: u64 = 1 << 20;

    struct Lab {
        _dir: tempfile::TempDir,
        root: PathBuf,
        stick: PathBuf,
        img: Vec<u8>,
    }

    fn add_disk(root: &Path, name: &str, serial: &str, bytes: &[u8]) {
        let sys = root.join("sys/block").join(name);
        std::fs::create_dir_all(sys.join("device")).unwrap();
        std::fs::write(sys.join("size"), format!("{}\n", bytes.len() / 512)).unwrap();
        std::fs::write(sys.join("device/model"), "QEMU NVMe Ctrl\n").unwrap();
        std::fs::write(sys.join("device/serial"), format!("{serial}\n")).unwrap();
        std::fs::create_dir_all(root.join("dev/disk/by-id")).unwrap();
        std::fs::write(root.join("dev").join(name), bytes).unwrap();
        symlink(
            format!("../../{name}"),
            root.join("dev/disk/by-id")
                .join(format!("nvme-QEMU_NVMe_Ctrl_{serial}")),
        )
        .unwrap();
    }

    fn random(len: u64, seed: u64) -> Vec<u8> {
        let mut v = vec![0u8; len as usize];
        ChaCha8Rng::seed_from_u64(seed).fill_bytes(&mut v);
        v
    }

    fn sha(p: &Path) -> String {
        hex::encode(Sha256::digest(std::fs::read(p).unwrap()))
    }

    /// A machine with a target NVMe (`target` bytes), a same-size twin with random data and
    /// an OSD disk with ext4; a stick ESP with the manifest, bmap and stream of node pve1.
    fn lab(target: Vec<u8>, wipe: bool, macs: &[&str]) -> Lab {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let stick = dir.path().join("stick");
        let img = image(16 * MIB, 31);
        let (b, stream) = bmap_and_stream(&img);
        add_disk(&root, "nvme0n1", "TARGET", &target);
        add_disk(&root, "nvme1n1", "TWIN", &random(target.len() as u64, 32));
        let mut osd = vec![0u8; 8 * MIB as usize];
        osd[1080..1082].copy_from_slice(&[0x53, 0xef]);
        add_disk(&root, "nvme2n1", "OSD", &osd);
        for (i, mac) in macs.iter().enumerate() {
            let p = root.join("sys/class/net").join(format!("ens{}", 18 + i));
            std::fs::create_dir_all(p.join("device")).unwrap();
            std::fs::write(p.join("address"), mac).unwrap();
        }
        std::fs::create_dir_all(root.join("proc")).unwrap();
        std::fs::write(root.join("proc/cmdline"), "ro hcikit.install=1\n").unwrap();
        let inst = stick.join("hcikit/install");
        std::fs::create_dir_all(&inst).unwrap();
        let xml = super::super::bmap::to_xml(img.len() as u64, 4096, &b.ranges);
        std::fs::write(inst.join("pve1.bmap"), &xml).unwrap();
        std::fs::write(
            inst.join("pve1.stream.zst"),
            zstd::bulk::compress(&stream, 3).unwrap(),
        )
        .unwrap();
        let g = gpt::parse(&img).unwrap();
        let node = |name: &str, mac: &str, disk_guid: String| NodePayload {
            node: name.into(),
            key: "nodes[0].install-disk".into(),
            mac: Some(mac.into()),
            install_disk: Some("/dev/disk/by-id/nvme-QEMU_NVMe_Ctrl_TARGET".into()),
            install_wipe: wipe,
            osd_disks: vec!["/dev/disk/by-id/nvme-QEMU_NVMe_Ctrl_OSD".into()],
            image_size: img.len() as u64,
            bmap: "hcikit/install/pve1.bmap".into(),
            bmap_sha256: hex::encode(Sha256::digest(xml.as_bytes())),
            disk_guid,
            partition_guids: g.partitions.iter().map(|p| p.guid.clone()).collect(),
            partition_labels: vec!["ESP".into(), "root".into()],
            segments: vec![Segment::File {
                path: "hcikit/install/pve1.stream.zst".into(),
                zstd: true,
                length: stream.len() as u64,
            }],
        };
        let m = Manifest {
            format: MANIFEST_FORMAT,
            cluster: "minipc".into(),
            stick_disk_guid: "11111111-2222-3333-4444-555555555555".into(),
            after_install: "poweroff".into(),
            confirm_secs: 5,
            nodes: vec![
                node("pve1", "1c:69:7a:00:00:21", g.disk_guid.clone()),
                node(
                    "pve2",
                    "1c:69:7a:00:00:22",
                    "00000000-0000-0000-0000-000000000002".into(),
                ),
            ],
        };
        std::fs::write(
            inst.join("manifest.json"),
            serde_json::to_vec_pretty(&m).unwrap(),
        )
        .unwrap();
        Lab {
            _dir: dir,
            root,
            stick,
            img,
        }
    }

    fn opts(l: &Lab) -> Options {
        Options {
            stick: Some(l.stick.clone()),
            root: l.root.clone(),
            dry_run: false,
            no_finish: true,
            consoles: vec![l.root.join("no-console")],
        }
    }

    fn decoys(l: &Lab) -> Vec<String> {
        ["nvme1n1", "nvme2n1"]
            .iter()
            .map(|d| sha(&l.root.join("dev").join(d)))
            .collect()
    }

    fn logs(l: &Lab) -> Vec<String> {
        std::fs::read_dir(l.stick.join("hcikit/logs"))
            .map(|rd| {
                rd.flatten()
                    .map(|e| std::fs::read_to_string(e.path()).unwrap())
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn installs_over_old_data_touching_no_decoy_and_then_refuses_to_loop() {
        let mut old = random(24 * MIB, 33);
        old[512..520].copy_from_slice(b"EFI PART"); // an old partition table
        let l = lab(old, true, &["1c:69:7a:00:00:21"]);
        let before = decoys(&l);
        let (o, _) = install(&opts(&l)).unwrap();
        let Outcome::Installed { node, disk, stats } = &o else {
            panic!("{o:?}")
        };
        assert_eq!((node.as_str(), disk.as_str()), ("pve1", "nvme0n1"));
        assert_eq!(decoys(&l), before, "no decoy byte changed");
        let t = std::fs::read(l.root.join("dev/nvme0n1")).unwrap();
        let g = gpt::parse(&t).unwrap();
        assert_eq!(
            g.alternate_lba,
            24 * MIB / 512 - 1,
            "backup GPT at the disk's end"
        );
        assert!(t[gpt::HEAD_BYTES..MIB as usize] == l.img[gpt::HEAD_BYTES..MIB as usize]);
        assert!(
            t[(9 * MIB) as usize..(10 * MIB) as usize]
                == l.img[(9 * MIB) as usize..(10 * MIB) as usize]
        );
        assert!(stats.verified >= stats.data_written);
        let log = logs(&l).join("\n");
        assert!(
            log.contains("result=installed node=pve1") && log.contains("erases"),
            "{log}"
        );
        assert!(o
            .result_line()
            .starts_with("hcikit-install: result=installed node=pve1 disk=nvme0n1"));

        // The stick left in: the disk holds this node now, nothing is written again.
        let target_sum = sha(&l.root.join("dev/nvme0n1"));
        let (again, _) = install(&opts(&l)).unwrap();
        assert!(
            matches!(again, Outcome::AlreadyInstalled { .. }),
            "{again:?}"
        );
        assert_eq!(sha(&l.root.join("dev/nvme0n1")), target_sum);
    }

    #[test]
    fn refusals_write_nothing() {
        // Data on the target and no install-wipe.
        let l = lab(random(24 * MIB, 34), false, &["1c:69:7a:00:00:21"]);
        let sums = |l: &Lab| {
            ["nvme0n1", "nvme1n1", "nvme2n1"]
                .iter()
                .map(|d| sha(&l.root.join("dev").join(d)))
                .collect::<Vec<_>>()
        };
        let before = sums(&l);
        let (o, _) = install(&opts(&l)).unwrap();
        assert!(
            matches!(&o, Outcome::Refused { kind, message, .. } if kind == "holds-data" && message.contains("unrecognised data")),
            "{o:?}"
        );
        assert_eq!(sums(&l), before);
        assert!(logs(&l)
            .join("\n")
            .contains("result=refused kind=holds-data node=pve1"));

        // An unknown machine and nobody at the console.
        let l = lab(vec![0; 24 * MIB as usize], false, &["aa:bb:cc:dd:ee:ff"]);
        let before = sums(&l);
        let (o, _) = install(&opts(&l)).unwrap();
        assert!(
            matches!(&o, Outcome::Refused { kind, message, .. } if kind == "unknown-machine" && message.contains("aa:bb:cc:dd:ee:ff")),
            "{o:?}"
        );
        assert_eq!(sums(&l), before);

        // The install disk is missing.
        let l = lab(vec![0; 24 * MIB as usize], false, &["1c:69:7a:00:00:21"]);
        std::fs::remove_file(l.root.join("dev/disk/by-id/nvme-QEMU_NVMe_Ctrl_TARGET")).unwrap();
        let (o, _) = install(&opts(&l)).unwrap();
        assert!(
            matches!(&o, Outcome::Refused { kind, .. } if kind == "missing"),
            "{o:?}"
        );
    }

    #[test]
    fn dry_run_decides_and_writes_nothing() {
        let l = lab(vec![0; 24 * MIB as usize], false, &["1c:69:7a:00:00:21"]);
        let mut o = opts(&l);
        o.dry_run = true;
        let (out, con) = install(&o).unwrap();
        assert_eq!(
            out,
            Outcome::DryRun {
                node: "pve1".into(),
                disk: "nvme0n1".into()
            }
        );
        assert!(
            con.log_text().contains("nothing (the disk is blank)"),
            "{}",
            con.log_text()
        );
        assert!(std::fs::read(l.root.join("dev/nvme0n1"))
            .unwrap()
            .iter()
            .all(|&b| b == 0));
    }

    #[test]
    fn damaged_stick_fails_before_any_write() {
        let l = lab(vec![0; 24 * MIB as usize], false, &["1c:69:7a:00:00:21"]);
        let p = l.stick.join("hcikit/install/pve1.bmap");
        let mut b = std::fs::read(&p).unwrap();
        let n = b.len();
        b[n - 20] ^= 1;
        std::fs::write(&p, b).unwrap();
        let e = install(&opts(&l))
            .err()
            .expect("a damaged bmap fails the install");
        assert!(
            format!("{e:#}").contains("does not match the manifest"),
            "{e:#}"
        );
        assert!(std::fs::read(l.root.join("dev/nvme0n1"))
            .unwrap()
            .iter()
            .all(|&b| b == 0));
    }
}
