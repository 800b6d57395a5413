//! The USB installer stick (`hcikit build --installer`): one GPT image for every node of
//! the spec. It boots the shared root read-only through its own systemd-boot entry and
//! runs `hcikit-firstboot install`, which writes one node's image onto that node's
//! install disk. Pure parts here: the stick's layout, GUIDs, boot entries, each node's
//! payload (bmap + range-stream segments) and the installer manifest.
//!
//! What the stick holds, and why it is small: partition 2 is the shared root, byte for
//! byte the root of every node image, so the installer reads the root's data from there;
//! partition 1 (FAT32) holds systemd-boot, the kernel and initrd, the Plan, and per node
//! its bmap and the data of the image outside the root (partition table and ESP, backup
//! table) as zstd files. Its own partitions carry their own GUIDs and labels
//! (`hcikit-stick-esp`, `hcikit-stick-root`), so they never collide with an installed
//! disk's (`ESP`, `root`) in the same machine.

use super::disk::{self, Guids, Layout, ALIGN};
use super::output::{self, Range, BLOCK};
use anyhow::{ensure, Result};
use hcikit_firstboot::install::payload::{Manifest, NodePayload, Segment, MANIFEST_FORMAT};
use hcikit_firstboot::layout;
use hcikit_firstboot::plan::Plan;
use std::collections::BTreeMap;

/// Partition labels of the stick (never `ESP`/`root`, which the installed disk uses).
pub const STICK_ESP_NAME: &str = "hcikit-stick-esp";
pub const STICK_ROOT_NAME: &str = "hcikit-stick-root";
/// Folder of the installer's files on the stick's ESP.
pub const INSTALL_DIR: &str = "hcikit/install";
pub const MANIFEST: &str = "hcikit/install/manifest.json";
pub const LOGS_DIR: &str = "hcikit/logs";
pub const INSTALL_ENTRY: &str = "loader/entries/hcikit-install.conf";
pub const REINSTALL_ENTRY: &str = "loader/entries/hcikit-reinstall.conf";
/// The stick's output file name.
pub fn image_name(cluster: &str) -> String {
    format!("{cluster}-installer.img")
}

/// The stick's GUIDs: derived from the cluster like a node's, under a name no node can
/// have (node names are host names, which never contain `/`).
pub fn stick_guids(cluster: &str) -> Guids {
    Guids {
        disk: disk::derive_guid(&["installer", cluster, "disk"]),
        esp: disk::derive_guid(&["installer", cluster, "esp"]),
        root: disk::derive_guid(&["installer", cluster, "root"]),
    }
}

/// The stick's layout: an ESP of `esp_size` (rounded up to MiB), then a root partition
/// exactly as large as the node images' root, so the same bytes fit at the same offsets.
pub fn stick_layout(node: &Layout, esp_size: u64) -> Result<Layout> {
    let esp = esp_size.div_ceil(ALIGN) * ALIGN;
    // The node layout ends its root one MiB before the disk's end (backup GPT); so does
    // this one.
    let disk_size = ALIGN + esp + node.root_size + ALIGN;
    let l = Layout::compute(disk_size, esp)?;
    ensure!(
        l.root_size == node.root_size,
        "stick root {} != node root {}",
        l.root_size,
        node.root_size
    );
    Ok(l)
}

/// ESP size for `content` bytes of files: room for FAT32's tables and cluster slack, at
/// least 128 MiB (FAT32 needs 65525 clusters).
pub fn esp_size_for(content: u64) -> u64 {
    let want = content + content / 8 + (32 << 20);
    want.max(128 << 20).div_ceil(ALIGN) * ALIGN
}

/// Kernel arguments of the stick's boot entries. The root stays read-only (no fstab, no
/// fsck, no remount, no repart) so its bytes stay those every node image carries, and the
/// first-boot units of an installed node stay off.
pub fn install_cmdline(plan: &Plan, stick_root: &uuid::Uuid, reinstall: bool) -> String {
    let mut a = vec![
        format!("root=PARTUUID={stick_root}"),
        "ro".into(),
        // ext4 writes its journal's superblock even on a read-only mount unless the
        // journal is not loaded; the root's bytes must stay the image's (found in QEMU:
        // the first journal block changed and the install stopped at its checksum).
        "rootflags=noload".into(),
        "fstab=no".into(),
        "fsck.mode=skip".into(),
        "fastboot".into(),
        format!("{}=1", layout::INSTALL_CMDLINE_ARG),
    ];
    for unit in [
        "hcikit-apply.service",
        "hcikit-firstboot.service",
        "systemd-repart.service",
        "systemd-remount-fs.service",
        "systemd-logind.service",
        "getty@tty1.service",
        "serial-getty@ttyS0.service",
    ] {
        a.push(format!("systemd.mask={unit}"));
    }
    if reinstall {
        a.push(hcikit_firstboot::install::run::REINSTALL_ARG.into());
    }
    a.extend(plan.image.kernel_cmdline.iter().cloned());
    a.join(" ")
}

/// The loader entries and `loader.conf` of the stick: `install` (default) and
/// `reinstall` (the explicit choice that overwrites a disk already holding its node).
pub fn loader_files(
    plan: &Plan,
    stick_root: &uuid::Uuid,
    version: &str,
) -> BTreeMap<String, Vec<u8>> {
    let entry = |title: &str, reinstall: bool| {
        format!(
            "title   {title}\nlinux   /{k}\ninitrd  /{i}\noptions {o}\n",
            k = super::esp::KERNEL,
            i = super::esp::INITRD,
            o = install_cmdline(plan, stick_root, reinstall)
        )
        .into_bytes()
    };
    let c = &plan.cluster.name;
    BTreeMap::from([
        (
            "loader/loader.conf".to_string(),
            // A few seconds to pick "reinstall"; the install itself asks nothing.
            format!(
                "default hcikit-install.conf\ntimeout {}\neditor no\n",
                plan.image.boot_timeout_secs.max(3)
            )
            .into_bytes(),
        ),
        (
            INSTALL_ENTRY.to_string(),
            entry(
                &format!("hcikit {c}: install this node (Linux {version})"),
                false,
            ),
        ),
        (
            REINSTALL_ENTRY.to_string(),
            entry(
                &format!("hcikit {c}: REINSTALL this node, erasing its disk (Linux {version})"),
                true,
            ),
        ),
    ])
}

/// A node's image, cut the way the stick stores it.
pub struct NodeCut {
    /// The node image's bmap (XML).
    pub bmap: String,
    /// Data of the ranges before the root partition, in order.
    pub head_stream: Vec<u8>,
    /// Data of the ranges after the root partition, in order.
    pub tail_stream: Vec<u8>,
    /// Mapped bytes of the root.
    pub root_mapped: u64,
}

/// Cuts a node image given as head bytes `[0, root_start)`, root ranges (relative to the
/// root) and tail bytes `[root_end, disk_size)`.
pub fn cut_node(
    layout: &Layout,
    head: &[u8],
    head_keep: &output::Keep,
    root_ranges: &[Range],
    tail: &[u8],
) -> Result<NodeCut> {
    ensure!(
        head.len() as u64 == layout.root_start,
        "head is not the bytes before the root"
    );
    ensure!(
        tail.len() as u64 == layout.disk_size - layout.root_end(),
        "tail is not the bytes after the root"
    );
    let parts = output::ImageParts {
        disk_size: layout.disk_size,
        head,
        head_keep,
        root_start: layout.root_start,
        root_file: std::path::Path::new("/nonexistent"),
        root_size: layout.root_size,
        root_ranges,
        tail,
    };
    let ranges = parts.ranges();
    let mut head_stream = Vec::new();
    let mut tail_stream = Vec::new();
    let mut root_mapped = 0;
    for r in &ranges {
        let (s, e) = (
            r.first * BLOCK,
            ((r.last + 1) * BLOCK).min(layout.disk_size),
        );
        if e <= layout.root_start {
            head_stream.extend_from_slice(&head[s as usize..e as usize]);
        } else if s >= layout.root_end() {
            let o = layout.root_end();
            tail_stream.extend_from_slice(&tail[(s - o) as usize..(e - o) as usize]);
        } else {
            ensure!(
                s >= layout.root_start && e <= layout.root_end(),
                "range {}-{} crosses the root partition's edge",
                r.first,
                r.last
            );
            root_mapped += e - s;
        }
    }
    Ok(NodeCut {
        bmap: super::bmap::bmap_xml(layout.disk_size, &ranges),
        head_stream,
        tail_stream,
        root_mapped,
    })
}

/// File names of a node's payload on the stick's ESP.
pub fn payload_files(node: &str) -> (String, String, String) {
    (
        format!("{INSTALL_DIR}/{node}.img.bmap"),
        format!("{INSTALL_DIR}/{node}.head.zst"),
        format!("{INSTALL_DIR}/{node}.tail.zst"),
    )
}

/// The installer manifest entry of one node; `wipe` is the spec's permission to erase
/// whatever its install disk holds.
pub fn node_payload(
    plan: &Plan,
    index: usize,
    layout: &Layout,
    cut: &NodeCut,
    stick: &Guids,
    wipe: bool,
) -> NodePayload {
    let n = &plan.nodes[index];
    let guids = Guids::for_node(&plan.cluster.name, &n.name);
    let (bmap, head, tail) = payload_files(&n.name);
    use sha2::Digest;
    NodePayload {
        node: n.name.clone(),
        key: format!("nodes[{index}].install-disk"),
        mac: n.mac.clone(),
        install_disk: n.install_disk.clone(),
        install_wipe: wipe,
        osd_disks: n.osds.iter().map(|o| o.device.clone()).collect(),
        image_size: layout.disk_size,
        bmap,
        bmap_sha256: hex::encode(sha2::Sha256::digest(cut.bmap.as_bytes())),
        disk_guid: guids.disk.to_string(),
        partition_guids: vec![guids.esp.to_string(), guids.root.to_string()],
        partition_labels: vec![disk::ESP_NAME.into(), disk::ROOT_NAME.into()],
        segments: vec![
            Segment::File {
                path: head,
                zstd: true,
                length: cut.head_stream.len() as u64,
            },
            Segment::Partition {
                partuuid: stick.root.to_string(),
                image_offset: layout.root_start,
                length: layout.root_size,
            },
            Segment::File {
                path: tail,
                zstd: true,
                length: cut.tail_stream.len() as u64,
            },
        ],
    }
}

/// What the installer does around the write, from the spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// `reboot` or `poweroff`.
    pub after_install: String,
    /// Seconds the summary waits for an abort key (0: unattended).
    pub confirm_secs: u64,
}

/// The installer manifest.
pub fn manifest(plan: &Plan, stick: &Guids, policy: &Policy, nodes: Vec<NodePayload>) -> Manifest {
    Manifest {
        format: MANIFEST_FORMAT,
        cluster: plan.cluster.name.clone(),
        stick_disk_guid: stick.disk.to_string(),
        after_install: policy.after_install.clone(),
        confirm_secs: policy.confirm_secs,
        nodes,
    }
}

/// zstd level of the node payload files on the stick.
const PAYLOAD_ZSTD_LEVEL: i32 = 3;

/// The stick's ESP file set: boot files, the Plan, and each node's payload, cut from the
/// node image exactly as `hcikit build` makes it (the same [`super::DiskEnds`]).
fn stick_esp_files(
    input: &super::BuildInput,
    layout: &Layout,
    root: &super::root::Root,
    boot: &super::esp::BootFiles,
    stick: &Guids,
) -> Result<BTreeMap<String, Vec<u8>>> {
    let plan = input.plan;
    let epoch = root.meta.epoch;
    let mut files = BTreeMap::new();
    let mut nodes = Vec::new();
    for (i, n) in plan.nodes.iter().enumerate() {
        let target = (
            n.name.clone(),
            super::esp::Identity::Node(&n.name),
            Guids::for_node(&plan.cluster.name, &n.name),
        );
        let ends = super::DiskEnds::new(input, layout, boot, epoch, &target)?;
        let cut = cut_node(
            layout,
            &ends.head,
            &ends.head_keep,
            &root.meta.ranges,
            &ends.tail,
        )?;
        let payload = node_payload(plan, i, layout, &cut, stick, n.install_wipe);
        let (bmap, head_f, tail_f) = payload_files(&n.name);
        files.insert(
            head_f,
            zstd::bulk::compress(&cut.head_stream, PAYLOAD_ZSTD_LEVEL)?,
        );
        files.insert(
            tail_f,
            zstd::bulk::compress(&cut.tail_stream, PAYLOAD_ZSTD_LEVEL)?,
        );
        files.insert(bmap, cut.bmap.into_bytes());
        nodes.push(payload);
    }
    let policy = Policy {
        after_install: plan.image.after_install.as_str().to_string(),
        confirm_secs: plan.image.install_confirm_secs,
    };
    let m = manifest(plan, stick, &policy, nodes);
    let mut mj = serde_json::to_vec_pretty(&m)?;
    mj.push(b'\n');
    files.insert(MANIFEST.into(), mj);
    let mut pj = serde_json::to_vec_pretty(plan)?;
    pj.push(b'\n');
    files.insert(layout::ESP_PLAN.into(), pj);
    files.insert("EFI/BOOT/BOOTX64.EFI".into(), boot.systemd_boot.clone());
    files.insert(
        "EFI/systemd/systemd-bootx64.efi".into(),
        boot.systemd_boot.clone(),
    );
    files.insert(super::esp::KERNEL.into(), boot.kernel.clone());
    files.insert(super::esp::INITRD.into(), boot.initrd.clone());
    files.extend(loader_files(plan, &stick.root, &boot.version));
    files.insert(
        format!("{LOGS_DIR}/README.txt"),
        b"hcikit: the installer leaves one log per run here, named <node>-<date>-<time>.log.\r\n"
            .to_vec(),
    );
    Ok(files)
}

/// Writes `<cluster>-installer.img` (or `.img.zst`) and its bmap into `staged`.
pub(super) fn build_stick(
    input: &super::BuildInput,
    opts: &super::BuildOptions,
    layout: &Layout,
    root: &super::root::Root,
    staged: &mut output::Staged,
) -> Result<super::ImageInfo> {
    use sha2::Digest;
    let plan = input.plan;
    let t = opts
        .progress
        .task("installer stick", Some(root.mapped_bytes()));
    let boot = root.boot_files()?;
    let stick = stick_guids(&plan.cluster.name);
    let files = stick_esp_files(input, layout, root, &boot, &stick)?;
    let esp_content: u64 = files.values().map(|v| v.len() as u64).sum();
    let sl = stick_layout(layout, esp_size_for(esp_content))?;
    let table = disk::partition_table_named(&sl, &stick, [STICK_ESP_NAME, STICK_ROOT_NAME])?;
    let mut head = vec![0u8; sl.root_start as usize];
    head[..table.head.len()].copy_from_slice(&table.head);
    let es = sl.esp_start as usize;
    super::esp::write_fat_into(
        &mut head[es..es + sl.esp_size as usize],
        super::esp::volume_id(&format!("{}/installer", plan.cluster.name)),
        &files,
        root.meta.epoch,
    )
    .map_err(|e| e.context("writing the installer stick's ESP"))?;
    // As for node images: the partition table area and the ESP's metadata are mapped even
    // where zero, so flashing the stick over a used one leaves no stale FAT behind.
    let mut keep = vec![(0, sl.esp_start)];
    keep.extend(
        super::esp::metadata_extents(&head[es..es + sl.esp_size as usize])?
            .into_iter()
            .map(|(s, e)| (sl.esp_start + s, sl.esp_start + e)),
    );
    let head_keep = output::Keep::new(keep);
    let mut tail = vec![0u8; (sl.disk_size - sl.root_end()) as usize];
    let tl = tail.len();
    tail[tl - table.tail.len()..].copy_from_slice(&table.tail);
    let root_ext4 = root.ext4();
    let parts = output::ImageParts {
        disk_size: sl.disk_size,
        head: &head,
        head_keep: &head_keep,
        root_start: sl.root_start,
        root_file: &root_ext4,
        root_size: sl.root_size,
        root_ranges: &root.meta.ranges,
        tail: &tail,
    };
    let name = image_name(&plan.cluster.name);
    let (file, sha256) = match opts.format {
        super::Format::Zst => {
            let file = format!("{name}.zst");
            let (f, tmp) = staged.create(&file, 0o600)?;
            parts.write_zst(&f, &root.zst(), PAYLOAD_ZSTD_LEVEL)?;
            (file, output::sha256_file(&tmp)?)
        }
        super::Format::Raw => {
            let (f, _) = staged.create(&name, 0o600)?;
            parts.write_raw(&f, |n| t.inc(n))?;
            (name.clone(), parts.sha256()?)
        }
    };
    let bmap_name = format!("{name}.bmap");
    let (mut bf, _) = staged.create(&bmap_name, 0o644)?;
    let bmap = super::bmap::bmap_xml(sl.disk_size, &parts.ranges());
    std::io::Write::write_all(&mut bf, bmap.as_bytes())?;
    t.finish(&format!(
        "{} of payloads for {} nodes",
        crate::units::human_size(esp_content),
        plan.nodes.len()
    ));
    Ok(super::ImageInfo {
        node: "installer".into(),
        file,
        bmap: bmap_name,
        bmap_sha256: hex::encode(sha2::Sha256::digest(bmap.as_bytes())),
        sha256,
        size: sl.disk_size,
        disk_guid: stick.disk.to_string(),
        esp_partuuid: stick.esp.to_string(),
        root_partuuid: stick.root.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples"));
        let text = std::fs::read_to_string(dir.join("minipc.toml")).unwrap();
        crate::spec::load_str(&text, dir)
            .expect("the example resolves")
            .plan
    }

    #[test]
    fn stick_root_matches_the_node_root_and_guids_differ() {
        let node = Layout::compute(4 << 30, 256 << 20).unwrap();
        let s = stick_layout(&node, 300 << 20).unwrap();
        assert_eq!(s.root_size, node.root_size);
        assert_eq!(s.esp_size, 300 << 20);
        assert_eq!(
            s.disk_size,
            (1 << 20) + (300 << 20) + node.root_size + (1 << 20)
        );
        let g = stick_guids("minipc");
        let n = Guids::for_node("minipc", "mini1");
        for x in [g.disk, g.esp, g.root] {
            assert!(![n.disk, n.esp, n.root].contains(&x));
        }
        assert_eq!(g, stick_guids("minipc"));
        assert_ne!(g.disk, stick_guids("lab").disk);
        assert_eq!(esp_size_for(0), 128 << 20);
        assert!(esp_size_for(200 << 20) >= (200 << 20) + (25 << 20));
    }

    #[test]
    fn install_entries_keep_the_root_read_only() {
        let p = plan();
        let g = stick_guids("minipc");
        let files = loader_files(&p, &g.root, "6.1.0-1");
        let install = String::from_utf8(files[INSTALL_ENTRY].clone()).unwrap();
        for arg in [
            format!("root=PARTUUID={}", g.root).as_str(),
            " ro ",
            "rootflags=noload",
            "fstab=no",
            "fsck.mode=skip",
            "hcikit.install=1",
            "systemd.mask=systemd-remount-fs.service",
            "systemd.mask=hcikit-apply.service",
        ] {
            assert!(install.contains(arg), "{arg} missing: {install}");
        }
        assert!(!install.contains("hcikit.reinstall"));
        assert!(String::from_utf8(files[REINSTALL_ENTRY].clone())
            .unwrap()
            .contains("hcikit.reinstall=1"));
        assert!(String::from_utf8(files["loader/loader.conf"].clone())
            .unwrap()
            .starts_with(
                "default hcikit-install.conf
"
            ));
    }

    #[test]
    fn a_node_image_cuts_into_head_root_and_tail_streams() {
        let layout = Layout::compute(256 << 20, 64 << 20).unwrap();
        let mut head = vec![0u8; layout.root_start as usize];
        head[0] = 1;
        head[(2 << 20) + 5] = 2;
        let mut tail = vec![0u8; (layout.disk_size - layout.root_end()) as usize];
        let n = tail.len();
        tail[n - 1] = 3;
        let root = vec![Range {
            first: 0,
            last: 1,
            sha256: "00".repeat(32),
        }];
        let cut = cut_node(&layout, &head, &output::Keep::new(vec![]), &root, &tail).unwrap();
        assert_eq!(cut.head_stream.len(), 2 * BLOCK as usize);
        assert_eq!(cut.head_stream[0], 1);
        assert_eq!(cut.head_stream[BLOCK as usize + 5], 2);
        // The whole tail is mapped (it ends in the backup GPT, zero entries included).
        assert_eq!(cut.tail_stream, tail);
        assert_eq!(cut.root_mapped, 2 * BLOCK);
        let b = hcikit_firstboot::install::bmap::Bmap::parse(cut.bmap.as_bytes()).unwrap();
        assert_eq!(
            b.mapped_bytes(),
            cut.head_stream.len() as u64 + cut.root_mapped + cut.tail_stream.len() as u64
        );

        let p = plan();
        let g = stick_guids(&p.cluster.name);
        let np = node_payload(&p, 1, &layout, &cut, &g, false);
        assert_eq!(np.key, "nodes[1].install-disk");
        assert_eq!(np.partition_labels, ["ESP", "root"]);
        assert_eq!(
            np.disk_guid,
            Guids::for_node(&p.cluster.name, &p.nodes[1].name)
                .disk
                .to_string()
        );
        let m = manifest(
            &p,
            &g,
            &Policy {
                after_install: "poweroff".into(),
                confirm_secs: 10,
            },
            vec![np],
        );
        let back = Manifest::parse(&serde_json::to_vec(&m).unwrap()).unwrap();
        assert_eq!(back, m);
    }
}
