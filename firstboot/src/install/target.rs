//! Which disk the installer may write (pure): the node's `install-disk`, refused with a
//! reason when it is the boot medium, an OSD disk, missing, ambiguous, too small, or holds
//! data the spec did not allow erasing; and "already installed" when it holds this very
//! node, so a stick left in never reinstalls by itself.

use super::probe::DiskProbe;
use std::collections::BTreeMap;

/// A whole disk as observed on this machine.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Disk {
    /// Kernel name, e.g. `nvme0n1`, `sda`.
    pub name: String,
    pub size: u64,
    pub model: String,
    pub serial: String,
    /// `nvme`, `usb`, `sata`, `scsi`, `virtio`, … (from the device path in sysfs).
    pub transport: String,
    pub removable: bool,
    /// `/dev/disk/by-id/…` links to the whole disk.
    pub by_id: Vec<String>,
    /// Holds the partition the firmware booted from, or the running installer's files.
    pub boot_medium: bool,
    /// Why the running system uses it (a mount, a holder such as LVM or RAID), if it does.
    pub in_use: Option<String>,
    pub probe: DiskProbe,
}

impl Disk {
    pub fn dev(&self) -> String {
        format!("/dev/{}", self.name)
    }
    /// `nvme0n1 (QEMU NVMe Ctrl, serial NVME1, 4.0 GiB, nvme)`.
    pub fn describe(&self) -> String {
        format!(
            "{} ({}, serial {}, {}, {})",
            self.name,
            if self.model.is_empty() {
                "unknown model"
            } else {
                &self.model
            },
            if self.serial.is_empty() {
                "none"
            } else {
                &self.serial
            },
            human(self.size),
            self.transport
        )
    }
}

pub fn human(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u < units.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

/// Everything observed: disks, and where each `/dev/…` link points (a kernel name of a
/// disk or of a partition, e.g. `nvme0n1p1`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Observed {
    pub disks: Vec<Disk>,
    /// `/dev/disk/by-id/…`, `/dev/disk/by-path/…` and other links → kernel name.
    pub links: BTreeMap<String, String>,
    /// Partition kernel name → its disk's kernel name.
    pub partitions: BTreeMap<String, String>,
}

impl Observed {
    /// The kernel name a `/dev/…` path stands for, and whether it is a whole disk.
    fn resolve(&self, path: &str) -> Option<(String, bool)> {
        let name = match self.links.get(path) {
            Some(n) => n.clone(),
            None => path.strip_prefix("/dev/")?.to_string(),
        };
        if self.disks.iter().any(|d| d.name == name) {
            Some((name, true))
        } else if self.partitions.contains_key(&name) {
            Some((name, false))
        } else {
            None
        }
    }
    fn disk(&self, name: &str) -> Option<&Disk> {
        self.disks.iter().find(|d| d.name == name)
    }
}

/// What the node asks for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Want {
    pub cluster: String,
    pub node: String,
    /// The spec's key, for messages: `nodes[1].install-disk`.
    pub key: String,
    pub install_disk: Option<String>,
    /// The spec allows erasing whatever the disk holds.
    pub wipe: bool,
    /// OSD disk paths of this node, and `/dev/disk/by-id` OSD paths of every node.
    pub osd_disks: Vec<String>,
    pub image_size: u64,
    /// GPT disk GUID of each node's image → node name (recognises an earlier install).
    pub node_disk_guids: BTreeMap<String, String>,
    /// GPT disk GUID of the installer stick (recognises the stick, or a copy of it).
    pub stick_disk_guid: Option<String>,
    /// Partition GUIDs the installed disk will carry.
    pub partition_guids: Vec<String>,
    /// Partition labels the installed system mounts by (`ESP`, `root`).
    pub partition_labels: Vec<String>,
    /// The operator asked to reinstall a disk that already holds this node.
    pub reinstall: bool,
}

/// What the installer may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Write {
        disk: Disk,
        /// What is on the disk and will be erased, for the summary (empty: blank disk).
        erases: String,
        warnings: Vec<String>,
    },
    /// The disk already holds this node of this cluster: boot it, do not reinstall.
    AlreadyInstalled {
        disk: Disk,
    },
    Refused(Refusal),
}

/// Why nothing is written; `message` names node, disk and reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub kind: RefusalKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    NotSet,
    Missing,
    Partition,
    BootMedium,
    OsdDisk,
    InUse,
    Ambiguous,
    TooSmall,
    HoldsData,
    Collision,
}

/// Disk families whose kernel names are handed out in probe order and can swap.
fn family(name: &str) -> &str {
    for p in ["nvme", "sd", "vd", "hd", "mmcblk", "xvd"] {
        if name.starts_with(p) {
            return p;
        }
    }
    name
}

/// Decides (pure). See the module documentation for the rules; the order of checks makes
/// the most specific reason the one reported.
pub fn decide(obs: &Observed, want: &Want) -> Decision {
    let refuse = |kind, message: String| Decision::Refused(Refusal { kind, message });
    let node = &want.node;
    let Some(path) = want.install_disk.as_deref() else {
        return refuse(
            RefusalKind::NotSet,
            format!(
                "node {node}: {} is not set in the spec, so there is no disk to install to",
                want.key
            ),
        );
    };
    let listing = || {
        obs.disks
            .iter()
            .map(|d| {
                let id = d
                    .by_id
                    .first()
                    .map(String::as_str)
                    .unwrap_or("no by-id name");
                format!("\n  {} — {id}", d.describe())
            })
            .collect::<String>()
    };
    let Some((name, whole)) = obs.resolve(path) else {
        return refuse(
            RefusalKind::Missing,
            format!(
                "node {node}: install disk {path} ({}) does not exist on this machine. Disks found:{}",
                want.key,
                listing()
            ),
        );
    };
    if !whole {
        return refuse(
            RefusalKind::Partition,
            format!(
                "node {node}: install disk {path} ({}) is the partition {name}, not a whole disk",
                want.key
            ),
        );
    }
    let disk = obs.disk(&name).expect("resolved to a disk").clone();
    let d = disk.describe();
    if disk.boot_medium {
        return refuse(
            RefusalKind::BootMedium,
            format!("node {node}: install disk {path} is {d}, the medium this installer booted from; refusing to overwrite it"),
        );
    }
    if let Some(g) = &disk.probe.gpt {
        if want.stick_disk_guid.as_deref() == Some(g.disk_guid.as_str()) {
            return refuse(
                RefusalKind::BootMedium,
                format!("node {node}: install disk {path} is {d}, which holds this cluster's installer stick image; refusing to overwrite it"),
            );
        }
    }
    for osd in &want.osd_disks {
        if obs
            .resolve(osd)
            .is_some_and(|(n, _)| n == name || obs.partitions.get(&n) == Some(&name))
        {
            return refuse(
                RefusalKind::OsdDisk,
                format!("node {node}: install disk {path} is {d}, which is also the OSD disk {osd} of the plan; refusing to overwrite it"),
            );
        }
    }
    if let Some(why) = &disk.in_use {
        return refuse(
            RefusalKind::InUse,
            format!("node {node}: install disk {path} is {d}, which is in use: {why}"),
        );
    }
    let mut warnings = Vec::new();
    if !path.starts_with("/dev/disk/") {
        let twins: Vec<&str> = obs
            .disks
            .iter()
            .filter(|o| o.name != name && family(&o.name) == family(&name))
            .map(|o| o.name.as_str())
            .collect();
        if !twins.is_empty() {
            let id = disk
                .by_id
                .first()
                .cloned()
                .unwrap_or_else(|| "/dev/disk/by-id/…".into());
            return refuse(
                RefusalKind::Ambiguous,
                format!(
                    "node {node}: install disk {path} is ambiguous: this machine also has {}, and kernel names of such disks can swap between boots. Name it in {} by id, e.g. {id}",
                    twins.join(", "),
                    want.key
                ),
            );
        }
        warnings.push(format!(
            "{} names the disk by its kernel name {path}; /dev/disk/by-id names are stable across boots",
            want.key
        ));
    }
    if !disk.serial.is_empty() {
        let same: Vec<&str> = obs
            .disks
            .iter()
            .filter(|o| o.name != name && o.serial == disk.serial && o.model == disk.model)
            .map(|o| o.name.as_str())
            .collect();
        if !same.is_empty() {
            return refuse(
                RefusalKind::Ambiguous,
                format!(
                    "node {node}: install disk {path} is ambiguous: {name} and {} report the same model and serial {}, so their by-id names cannot tell them apart",
                    same.join(", "),
                    disk.serial
                ),
            );
        }
    }
    if disk.size < want.image_size {
        return refuse(
            RefusalKind::TooSmall,
            format!(
                "node {node}: install disk {path} is {d}, smaller than the image ({})",
                human(want.image_size)
            ),
        );
    }
    // The installed system finds its partitions by PARTUUID and PARTLABEL: another disk
    // carrying the same ones would make first boot pick either.
    for other in obs.disks.iter().filter(|o| o.name != name) {
        let Some(g) = &other.probe.gpt else { continue };
        let clash: Vec<String> = g
            .partitions
            .iter()
            .filter_map(|p| {
                if want.partition_guids.contains(&p.guid) {
                    Some(format!("PARTUUID {}", p.guid))
                } else if want.partition_labels.contains(&p.name) {
                    Some(format!("PARTLABEL {}", p.name))
                } else {
                    None
                }
            })
            .collect();
        if !clash.is_empty() {
            return refuse(
                RefusalKind::Collision,
                format!(
                    "node {node}: another disk, {}, carries {} that the installed system would also carry; first boot could mount that disk's partitions instead. Remove that disk or erase its partition table, then retry",
                    other.describe(),
                    clash.join(", ")
                ),
            );
        }
    }
    let earlier = disk
        .probe
        .gpt
        .as_ref()
        .and_then(|g| want.node_disk_guids.get(&g.disk_guid));
    match earlier {
        Some(n) if n == node && !want.reinstall => {
            return Decision::AlreadyInstalled { disk };
        }
        Some(n) => {
            return Decision::Write {
                erases: format!(
                    "an earlier hcikit install of node {n} of cluster {}",
                    want.cluster
                ),
                disk,
                warnings,
            };
        }
        None => {}
    }
    if !disk.probe.is_blank() {
        let what = disk.probe.describe();
        if !want.wipe {
            return refuse(
                RefusalKind::HoldsData,
                format!(
                    "node {node}: install disk {path} is {d} and holds {what}; the spec does not allow erasing it. Set {}-wipe = true if that data may go",
                    want.key.trim_end_matches("-disk")
                ),
            );
        }
        return Decision::Write {
            erases: what,
            disk,
            warnings,
        };
    }
    Decision::Write {
        erases: String::new(),
        disk,
        warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::super::gpt::{Gpt, Partition};
    use super::super::probe::Signature;
    use super::*;

    fn disk(name: &str, size_gib: u64, serial: &str) -> Disk {
        Disk {
            name: name.into(),
            size: size_gib << 30,
            model: "QEMU NVMe Ctrl".into(),
            serial: serial.into(),
            transport: "nvme".into(),
            by_id: vec![format!("/dev/disk/by-id/nvme-QEMU_NVMe_Ctrl_{serial}")],
            ..Default::default()
        }
    }

    fn machine() -> Observed {
        let mut o = Observed::default();
        o.disks.push(disk("nvme0n1", 8, "TARGET"));
        o.disks.push(disk("nvme1n1", 8, "TWIN"));
        let mut ssd = disk("sda", 16, "OSD");
        ssd.transport = "sata".into();
        ssd.probe.signatures = vec![Signature::Ext4];
        o.disks.push(ssd);
        let mut stick = disk("sdb", 4, "STICK");
        stick.transport = "usb".into();
        stick.boot_medium = true;
        o.disks.push(stick);
        for d in &o.disks {
            for l in &d.by_id {
                o.links.insert(l.clone(), d.name.clone());
            }
        }
        o.links.insert(
            "/dev/disk/by-id/nvme-QEMU_NVMe_Ctrl_TARGET-part1".into(),
            "nvme0n1p1".into(),
        );
        o.partitions.insert("nvme0n1p1".into(), "nvme0n1".into());
        o
    }

    fn want(path: &str) -> Want {
        Want {
            cluster: "minipc".into(),
            node: "pve1".into(),
            key: "nodes[0].install-disk".into(),
            install_disk: Some(path.into()),
            osd_disks: vec![
                "/dev/disk/by-id/nvme-QEMU_NVMe_Ctrl_OSD".into(),
                "/dev/sda".into(),
            ],
            image_size: 4 << 30,
            node_disk_guids: [
                ("aaaa".to_string(), "pve1".to_string()),
                ("bbbb".into(), "pve2".into()),
            ]
            .into(),
            stick_disk_guid: Some("5555".into()),
            partition_guids: vec!["p1".into(), "p2".into()],
            partition_labels: vec!["ESP".into(), "root".into()],
            ..Default::default()
        }
    }

    fn kind(d: &Decision) -> Option<RefusalKind> {
        match d {
            Decision::Refused(r) => Some(r.kind),
            _ => None,
        }
    }

    fn gpt(guid: &str, parts: &[(&str, &str)]) -> Option<Gpt> {
        Some(Gpt {
            disk_guid: guid.into(),
            alternate_lba: 0,
            last_usable_lba: 0,
            partitions: parts
                .iter()
                .enumerate()
                .map(|(i, (g, n))| Partition {
                    number: i as u32 + 1,
                    type_guid: String::new(),
                    guid: g.to_string(),
                    first_lba: 0,
                    last_lba: 0,
                    name: n.to_string(),
                })
                .collect(),
        })
    }

    #[test]
    fn blank_target_by_id_is_written_without_warnings() {
        match decide(
            &machine(),
            &want("/dev/disk/by-id/nvme-QEMU_NVMe_Ctrl_TARGET"),
        ) {
            Decision::Write {
                disk,
                erases,
                warnings,
            } => {
                assert_eq!(disk.name, "nvme0n1");
                assert!(erases.is_empty() && warnings.is_empty());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_refusal_has_its_reason() {
        let o = machine();
        let k = |p: &str| kind(&decide(&o, &want(p)));
        assert_eq!(k("/dev/disk/by-id/nvme-nope"), Some(RefusalKind::Missing));
        assert_eq!(
            k("/dev/disk/by-id/nvme-QEMU_NVMe_Ctrl_TARGET-part1"),
            Some(RefusalKind::Partition)
        );
        assert_eq!(
            k("/dev/disk/by-id/nvme-QEMU_NVMe_Ctrl_STICK"),
            Some(RefusalKind::BootMedium)
        );
        assert_eq!(k("/dev/sda"), Some(RefusalKind::OsdDisk));
        let mut busy = o.clone();
        busy.disks[0].in_use = Some("nvme0n1p2 is mounted on /mnt".into());
        assert_eq!(
            kind(&decide(
                &busy,
                &want("/dev/disk/by-id/nvme-QEMU_NVMe_Ctrl_TARGET")
            )),
            Some(RefusalKind::InUse)
        );
        assert_eq!(
            k("/dev/nvme0n1"),
            Some(RefusalKind::Ambiguous),
            "two NVMe disks: kernel names can swap"
        );
        let mut w = want("/dev/disk/by-id/nvme-QEMU_NVMe_Ctrl_TARGET");
        w.image_size = 9 << 30;
        assert_eq!(kind(&decide(&o, &w)), Some(RefusalKind::TooSmall));
        w.install_disk = None;
        assert_eq!(kind(&decide(&o, &w)), Some(RefusalKind::NotSet));
        let msg = match decide(&o, &want("/dev/disk/by-id/nvme-nope")) {
            Decision::Refused(r) => r.message,
            _ => unreachable!(),
        };
        assert!(
            msg.contains("pve1") && msg.contains("nvme-nope") && msg.contains("TWIN"),
            "{msg}"
        );
    }

    #[test]
    fn kernel_names_are_accepted_alone_with_a_warning() {
        let mut o = machine();
        o.disks.retain(|d| d.name != "nvme1n1");
        match decide(&o, &want("/dev/nvme0n1")) {
            Decision::Write { warnings, .. } => {
                assert!(warnings[0].contains("by-id"), "{warnings:?}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn data_needs_permission() {
        let mut o = machine();
        o.disks[0].probe.signatures = vec![Signature::Gpt, Signature::Lvm2];
        let w = want("/dev/disk/by-id/nvme-QEMU_NVMe_Ctrl_TARGET");
        let d = decide(&o, &w);
        assert_eq!(kind(&d), Some(RefusalKind::HoldsData));
        let Decision::Refused(r) = d else {
            unreachable!()
        };
        assert!(
            r.message.contains("LVM2") && r.message.contains("nodes[0].install-wipe = true"),
            "{}",
            r.message
        );
        let mut w2 = w.clone();
        w2.wipe = true;
        assert!(
            matches!(decide(&o, &w2), Decision::Write { erases, .. } if erases.contains("LVM2"))
        );
    }

    #[test]
    fn earlier_installs_of_this_cluster() {
        let mut o = machine();
        o.disks[0].probe.signatures = vec![Signature::Gpt];
        o.disks[0].probe.gpt = gpt("aaaa", &[("p1", "ESP"), ("p2", "root")]);
        let w = want("/dev/disk/by-id/nvme-QEMU_NVMe_Ctrl_TARGET");
        assert!(
            matches!(decide(&o, &w), Decision::AlreadyInstalled { .. }),
            "no install loop"
        );
        let mut again = w.clone();
        again.reinstall = true;
        assert!(matches!(decide(&o, &again), Decision::Write { .. }));
        o.disks[0].probe.gpt = gpt("bbbb", &[]);
        assert!(
            matches!(decide(&o, &w), Decision::Write { erases, .. } if erases.contains("node pve2"))
        );
        // The stick image written onto an internal disk is never a target.
        o.disks[0].probe.gpt = gpt("5555", &[]);
        assert_eq!(kind(&decide(&o, &w)), Some(RefusalKind::BootMedium));
    }

    #[test]
    fn label_or_guid_collision_on_another_disk_is_refused() {
        let mut o = machine();
        o.disks[1].probe.gpt = gpt("cccc", &[("zz", "ESP")]);
        let d = decide(&o, &want("/dev/disk/by-id/nvme-QEMU_NVMe_Ctrl_TARGET"));
        assert_eq!(kind(&d), Some(RefusalKind::Collision));
        o.disks[1].probe.gpt = gpt("cccc", &[("p2", "data")]);
        assert_eq!(
            kind(&decide(
                &o,
                &want("/dev/disk/by-id/nvme-QEMU_NVMe_Ctrl_TARGET")
            )),
            Some(RefusalKind::Collision)
        );
    }

    #[test]
    fn same_serial_twins_are_ambiguous() {
        let mut o = machine();
        o.disks[1].serial = "TARGET".into();
        assert_eq!(
            kind(&decide(
                &o,
                &want("/dev/disk/by-id/nvme-QEMU_NVMe_Ctrl_TARGET")
            )),
            Some(RefusalKind::Ambiguous)
        );
    }
}
