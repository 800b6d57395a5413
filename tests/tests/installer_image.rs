//! The USB installer stick at the image tier: `--installer` builds one stick for every
//! node, checked with independent tools (sgdisk, fsck.fat, mtools, e2fsck, debugfs) and for
//! reproducibility; then the real installer code runs from that stick (its ESP files and
//! its root partition) onto a disk file in a fake machine, and the disk must hold exactly
//! the node image `hcikit build` makes, pass the same tools, and every decoy stay
//! byte-identical. No root, no loop devices, no VM.

mod image_support;

use hcikit::image::{Format, Manifest};
use hcikit_firstboot::install::run::{install, Options, Outcome};
use hcikit_firstboot::plan::Plan;
use image_support::*;
use sha2::{Digest, Sha256};
use std::os::unix::fs::{symlink, FileExt};
use std::path::{Path, PathBuf};
use std::process::Command;

const MIB: u64 = 1 << 20;

/// The fixture plan with MACs, by-id install disks and install-wipe on pve1.
fn installer_plan() -> Plan {
    let mut p = plan();
    for (i, n) in p.nodes.iter_mut().enumerate() {
        n.mac = Some(format!("52:54:00:00:00:{:02x}", i + 1));
        n.install_disk = Some(format!("/dev/disk/by-id/nvme-QEMU_NVMe_Ctrl_T{}", i + 1));
        n.install_wipe = i == 0;
    }
    p
}

fn build_with(plan: &Plan, fx: &Fixture, out: &Path, installer: bool) -> Manifest {
    let seed = hcikit::render::keys::Seed::from_bytes([42; 32]);
    let files = hcikit::image::node_file_sets(plan, rendered(plan), &seed).unwrap();
    let input = hcikit::image::BuildInput {
        plan,
        files: &files,
        spec_sha256: "0".repeat(64),
        seed_id: seed.id(),
    };
    let mut opts = fx.options(out, &fx.dir.path().join("cache"), Format::Raw);
    opts.installer = installer;
    hcikit::image::build(&input, &opts).unwrap()
}

fn sha(p: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(p).unwrap()))
}

/// (start, size) in bytes of partition `n` (1-based), from `sfdisk --json`.
fn part(img: &Path, n: usize) -> (u64, u64, String) {
    let json = tool(Command::new("sfdisk").arg("--json").arg(img));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let p = &v["partitiontable"]["partitions"][n - 1];
    (
        p["start"].as_u64().unwrap() * 512,
        p["size"].as_u64().unwrap() * 512,
        p["name"].as_str().unwrap_or("").to_string(),
    )
}

/// sgdisk -v, fsck.fat -n on partition 1 and e2fsck -fn on partition 2 of a disk file.
fn check_disk(img: &Path, scratch: &Path) {
    let v = tool(Command::new("sgdisk").arg("-v").arg(img));
    assert!(
        v.contains("No problems found"),
        "sgdisk -v {}: {v}",
        img.display()
    );
    let (es, el, _) = part(img, 1);
    let esp = scratch.join("esp.fat");
    extract(img, es, el, &esp);
    tool(Command::new("fsck.fat").arg("-n").arg(&esp));
    let (rs, rl, _) = part(img, 2);
    let root = scratch.join("root.ext4");
    extract(img, rs, rl, &root);
    tool(Command::new("e2fsck").arg("-fn").arg(&root));
}

#[test]
fn installer_stick_is_valid_reproducible_and_installs_the_exact_node_image() {
    let fx = Fixture::new();
    let plan = installer_plan();
    let out = fx.dir.path().join("out");
    let m = build_with(&plan, &fx, &out, true);
    assert_eq!(m.images.len(), 1);
    let stick = out.join("lab-installer.img");
    assert_eq!(m.images[0].file, "lab-installer.img");
    assert_eq!(m.images[0].sha256, sha(&stick), "manifest checksum");
    let sums = std::fs::read_to_string(out.join("SHA256SUMS")).unwrap();
    assert!(sums.contains("lab-installer.img") && sums.contains("lab-installer.img.bmap"));

    // Independent tools on the stick.
    let scratch = fx.dir.path().join("scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    check_disk(&stick, &scratch);
    let (es, _, esp_name) = part(&stick, 1);
    let (rs, rl, root_name) = part(&stick, 2);
    assert_eq!(
        (esp_name.as_str(), root_name.as_str()),
        ("hcikit-stick-esp", "hcikit-stick-root")
    );
    let img_at = format!("{}@@{es}", stick.display());
    let listing = tool(Command::new("mdir").args(["-b", "-i", &img_at, "::/hcikit/install"]));
    for n in ["pve1", "pve2", "pve3"] {
        for f in [".img.bmap", ".head.zst", ".tail.zst"] {
            assert!(
                listing.contains(&format!("{n}{f}")),
                "{n}{f} missing: {listing}"
            );
        }
    }
    let entry =
        tool(Command::new("mtype").args(["-i", &img_at, "::/loader/entries/hcikit-install.conf"]));
    assert!(
        entry.contains("hcikit.install=1") && entry.contains("rootflags=noload"),
        "{entry}"
    );
    let root_part = scratch.join("stick-root.ext4");
    extract(&stick, rs, rl, &root_part);
    let stat = tool(
        Command::new("debugfs")
            .args(["-R", "stat /usr/sbin/hcikit-firstboot"])
            .arg(&root_part),
    );
    assert!(stat.contains("Mode:  0755"), "{stat}");

    // Reproducible: a second build gives the same bytes.
    let out2 = fx.dir.path().join("out2");
    let m2 = build_with(&plan, &fx, &out2, true);
    assert_eq!(
        m2.images[0].sha256, m.images[0].sha256,
        "the stick is reproducible"
    );

    // The node images, built the usual way, are what the installer must write.
    let nodes_out = fx.dir.path().join("nodes");
    build_with(&plan, &fx, &nodes_out, false);
    let node_img = nodes_out.join("pve1.img");

    // A fake machine: the stick's ESP files in a folder, its root partition by PARTUUID,
    // a target NVMe of the image's size holding old data over its GPT and FAT area
    // (install-wipe is set for pve1; the bmap maps every FAT block, so fsck.fat passes),
    // a twin NVMe with data and an OSD-like disk with a file system.
    let machine = fx.dir.path().join("machine");
    let esp_dir = fx.dir.path().join("stick-esp");
    std::fs::create_dir_all(&esp_dir).unwrap();
    tool(
        Command::new("mcopy")
            .args(["-s", "-n", "-i", &img_at, "::/hcikit", "::/loader"])
            .arg(&esp_dir),
    );
    let by_partuuid = machine.join("dev/disk/by-partuuid");
    std::fs::create_dir_all(&by_partuuid).unwrap();
    std::fs::create_dir_all(machine.join("dev/disk/by-id")).unwrap();
    std::fs::rename(&root_part, machine.join("dev/stickroot")).unwrap();
    symlink(
        "../../stickroot",
        by_partuuid.join(&m.images[0].root_partuuid),
    )
    .unwrap();
    let size = plan.image.disk_size;
    let disk = |name: &str, serial: &str, fill: Option<u8>| -> PathBuf {
        let sys = machine.join("sys/block").join(name);
        std::fs::create_dir_all(sys.join("device")).unwrap();
        std::fs::write(sys.join("size"), format!("{}\n", size / 512)).unwrap();
        std::fs::write(sys.join("device/model"), "QEMU NVMe Ctrl\n").unwrap();
        std::fs::write(sys.join("device/serial"), format!("{serial}\n")).unwrap();
        let p = machine.join("dev").join(name);
        let f = std::fs::File::create(&p).unwrap();
        f.set_len(size).unwrap();
        if let Some(b) = fill {
            // Old bytes over the GPT and the ESP's FAT area, and at the end.
            f.write_all_at(&vec![b; 8 * MIB as usize], 0).unwrap();
            f.write_all_at(&vec![b; MIB as usize], size - MIB).unwrap();
        }
        symlink(
            format!("../../{name}"),
            machine
                .join("dev/disk/by-id")
                .join(format!("nvme-QEMU_NVMe_Ctrl_{serial}")),
        )
        .unwrap();
        p
    };
    let target = disk("nvme0n1", "T1", Some(0x5a));
    let twin = disk("nvme1n1", "TWIN", Some(0xa5));
    let nic = machine.join("sys/class/net/ens18");
    std::fs::create_dir_all(nic.join("device")).unwrap();
    std::fs::write(nic.join("address"), "52:54:00:00:00:01\n").unwrap();
    std::fs::create_dir_all(machine.join("proc")).unwrap();
    std::fs::write(machine.join("proc/cmdline"), "ro hcikit.install=1\n").unwrap();
    let twin_sum = sha(&twin);
    let opts = Options {
        stick: Some(esp_dir.clone()),
        root: machine.clone(),
        dry_run: false,
        no_finish: true,
        consoles: vec![machine.join("no-console")],
    };
    let (outcome, _) = install(&opts).unwrap();
    let Outcome::Installed {
        node,
        disk: d,
        stats,
    } = &outcome
    else {
        panic!("{outcome:?}")
    };
    assert_eq!((node.as_str(), d.as_str()), ("pve1", "nvme0n1"));
    assert_eq!(sha(&twin), twin_sum, "the twin disk was not touched");

    // The target holds the node image at every mapped block (same size: every byte of
    // the first MiB too), and passes the tools.
    let bmap = hcikit_firstboot::install::bmap::Bmap::parse(
        &std::fs::read(nodes_out.join("pve1.img.bmap")).unwrap(),
    )
    .unwrap();
    assert_eq!(stats.mapped, bmap.mapped_bytes());
    let (a, b) = (
        std::fs::File::open(&node_img).unwrap(),
        std::fs::File::open(&target).unwrap(),
    );
    for r in &bmap.ranges {
        let (o, l) = bmap.span(r);
        let (mut x, mut y) = (vec![0u8; l as usize], vec![0u8; l as usize]);
        a.read_exact_at(&mut x, o).unwrap();
        b.read_exact_at(&mut y, o).unwrap();
        assert!(
            x == y,
            "blocks {}-{} differ from the node image",
            r.first,
            r.last
        );
    }
    check_disk(&target, &scratch);
    let logs = std::fs::read_dir(esp_dir.join("hcikit/logs"))
        .unwrap()
        .count();
    assert!(logs >= 2, "the log (and the README) are on the stick");

    // Run again: the disk holds pve1 now; nothing is written.
    let sum = sha(&target);
    let (again, _) = install(&opts).unwrap();
    assert!(
        matches!(again, Outcome::AlreadyInstalled { .. }),
        "{again:?}"
    );
    assert_eq!(sha(&target), sum);
}
