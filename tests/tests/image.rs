//! Image tier: build node images from a tiny generated rootfs and check them with
//! independent tools (sfdisk, sgdisk, fsck.fat, mtools, e2fsck, debugfs, bmaptool, zstd)
//! and by reading them back with the `gpt` and `fatfs` crates.

mod image_support;

use hcikit::image::Format;
use image_support::*;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

const ROOT_START: u64 = (1 << 20) + ESP;

fn debugfs(fs: &Path, req: &str) -> String {
    tool(Command::new("debugfs").arg("-R").arg(req).arg(fs))
}

#[test]
fn raw_image_passes_independent_checks() {
    let fx = Fixture::new();
    let out = fx.dir.path().join("out");
    let cache = fx.dir.path().join("cache");
    let m = build(&fx.options(&out, &cache, Format::Raw)).unwrap();
    assert_eq!(m.images.len(), 3);
    let img = out.join("pve1.img");
    let meta = std::fs::metadata(&img).unwrap();
    assert_eq!(meta.len(), DISK);
    assert_eq!(
        meta.permissions().mode() & 0o777,
        0o600,
        "images carry private keys"
    );
    // Sparse: far fewer blocks allocated than the disk size.
    assert!(std::os::unix::fs::MetadataExt::blocks(&meta) * 512 < DISK / 2);

    // Partition table: sfdisk and sgdisk.
    let json: serde_json::Value =
        serde_json::from_str(&tool(Command::new("sfdisk").arg("--json").arg(&img))).unwrap();
    let pt = &json["partitiontable"];
    assert_eq!(pt["label"], "gpt");
    let parts = pt["partitions"].as_array().unwrap();
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[0]["type"], "C12A7328-F81F-11D2-BA4B-00A0C93EC93B");
    assert_eq!(parts[0]["name"], "ESP");
    assert_eq!(parts[0]["start"], 2048);
    assert_eq!(parts[1]["type"], "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709");
    assert_eq!(parts[1]["name"], "root");
    assert_eq!(parts[1]["start"].as_u64().unwrap() * 512, ROOT_START);
    let root_guid = parts[1]["uuid"].as_str().unwrap().to_lowercase();
    assert_eq!(root_guid, m.images[0].root_partuuid);
    let v = tool(Command::new("sgdisk").arg("-v").arg(&img));
    assert!(v.contains("No problems found"), "{v}");

    // Read back with the gpt crate.
    let disk = gpt::GptConfig::new().open(&img).unwrap();
    assert_eq!(disk.guid().to_string(), m.images[0].disk_guid);
    assert_eq!(disk.partitions()[&1].name, "ESP");

    // ESP: fsck.fat on the extracted partition, mtools on the image, fatfs crate.
    let esp = fx.dir.path().join("esp.fat");
    extract(&img, 1 << 20, ESP, &esp);
    tool(Command::new("fsck.fat").arg("-n").arg(&esp));
    let listing = tool(
        Command::new("mdir")
            .args(["-/", "-b", "-i"])
            .arg(format!("{}@@1M", img.display()))
            .arg("::"),
    );
    for want in [
        "::/EFI/BOOT/BOOTX64.EFI",
        "::/EFI/systemd/systemd-bootx64.efi",
        "::/loader/entries/hcikit.conf",
        "::/vmlinuz",
        "::/initrd.img",
        "::/hcikit/plan.json",
        "::/hcikit/node",
        "::/hcikit/nodes/pve1/files.tar",
        "::/hcikit/nodes/pve1/secrets.tar",
    ] {
        assert!(
            listing.lines().any(|l| l.trim() == want),
            "{want} missing from ESP:\n{listing}"
        );
    }
    assert!(
        !listing.contains("nodes/pve2"),
        "a node image carries only its own files"
    );
    let esp_bytes = std::fs::read(&esp).unwrap();
    let entry = String::from_utf8(
        hcikit::image::esp::read_fat_file(&esp_bytes, "loader/entries/hcikit.conf").unwrap(),
    )
    .unwrap();
    assert!(
        entry.contains(&format!(
            "options root=PARTUUID={root_guid} rw console=ttyS0"
        )),
        "{entry}"
    );
    assert_eq!(
        hcikit::image::esp::read_fat_file(&esp_bytes, "hcikit/node").unwrap(),
        b"pve1\n"
    );
    assert_eq!(
        hcikit::image::esp::read_fat_file(&esp_bytes, "EFI/BOOT/BOOTX64.EFI").unwrap(),
        b"MZ systemd-boot stub"
    );
    assert_eq!(
        hcikit::image::esp::read_fat_file(&esp_bytes, "vmlinuz")
            .unwrap()
            .len(),
        300_000
    );
    let plan_json: hcikit_firstboot::plan::Plan = serde_json::from_slice(
        &hcikit::image::esp::read_fat_file(&esp_bytes, "hcikit/plan.json").unwrap(),
    )
    .unwrap();
    assert_eq!(plan_json, plan());
    // files.tar: public files only, desired ones under their prefix; secrets apart.
    let names = |p: &str| -> Vec<(String, u32)> {
        let t = hcikit::image::esp::read_fat_file(&esp_bytes, p).unwrap();
        let mut a = tar::Archive::new(&t[..]);
        a.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    e.header().mode().unwrap(),
                )
            })
            .collect()
    };
    let public = names("hcikit/nodes/pve1/files.tar");
    assert!(
        public.contains(&("etc/hostname".into(), 0o644)),
        "{public:?}"
    );
    assert!(
        public.contains(&("etc/hcikit/desired/etc/pve/datacenter.cfg".into(), 0o640)),
        "{public:?}"
    );
    assert!(
        public.contains(&("etc/ssh/ssh_known_hosts".into(), 0o644)),
        "{public:?}"
    );
    assert!(!public
        .iter()
        .any(|(p, _)| p.contains("ssh_host_ed25519_key") && !p.ends_with(".pub")));
    let content = |tar_path: &str, file: &str| -> String {
        let t = hcikit::image::esp::read_fat_file(&esp_bytes, tar_path).unwrap();
        let mut a = tar::Archive::new(&t[..]);
        let mut e = a
            .entries()
            .unwrap()
            .map(|e| e.unwrap())
            .find(|e| e.path().unwrap().to_str() == Some(file))
            .unwrap_or_else(|| panic!("{file} not in {tar_path}"));
        let mut s = String::new();
        e.read_to_string(&mut s).unwrap();
        s
    };
    let auth = content("hcikit/nodes/pve1/files.tar", "root/.ssh/authorized_keys");
    assert!(
        auth.contains("hcikit-bootstrap@lab") && auth.contains("admin@example"),
        "{auth}"
    );
    let known = content("hcikit/nodes/pve1/files.tar", "etc/ssh/ssh_known_hosts");
    for n in [
        "pve1,pve1.lab.example,10.2.21.66 ssh-ed25519 ",
        "pve3,pve3.lab.example,10.2.21.68 ssh-ed25519 ",
    ] {
        assert!(known.contains(n), "{known}");
    }
    let host_pub = content(
        "hcikit/nodes/pve1/files.tar",
        "etc/ssh/ssh_host_ed25519_key.pub",
    );
    let key_b64 = host_pub.split(' ').nth(1).unwrap();
    assert!(
        known
            .lines()
            .any(|l| l.starts_with("pve1,") && l.contains(key_b64)),
        "pinned host key matches"
    );
    let private = content(
        "hcikit/nodes/pve1/secrets.tar",
        "etc/ssh/ssh_host_ed25519_key",
    );
    assert!(private.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"));
    let secret = names("hcikit/nodes/pve1/secrets.tar");
    let secret_paths: Vec<&str> = secret.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        secret_paths,
        [
            "etc/hcikit/corosync/authkey",
            "etc/hcikit/secrets/root-password-hash",
            "etc/ssh/ssh_host_ed25519_key",
            "root/.ssh/hcikit-bootstrap"
        ]
    );

    // Root: e2fsck, debugfs for modes, owners, links, units and the agent.
    let rootfs = fx.dir.path().join("root.ext4");
    extract(&img, ROOT_START, m.layout.root_size, &rootfs);
    tool(Command::new("e2fsck").args(["-fn"]).arg(&rootfs));
    let sudo = debugfs(&rootfs, "stat /usr/bin/sudo");
    assert!(sudo.contains("Mode:  04755"), "{sudo}");
    let notes = debugfs(&rootfs, "stat /home/user/notes");
    assert!(
        notes.contains("User:  1000") && notes.contains("Mode:  0640"),
        "{notes}"
    );
    let link = debugfs(&rootfs, "stat /usr/bin/a-sudo-link");
    assert!(link.contains("Links: 2"), "hard link kept: {link}");
    assert_eq!(debugfs(&rootfs, "cat /etc/hostname"), "base\n");
    assert!(
        debugfs(&rootfs, "cat /etc/fstab").contains("x-systemd.growfs"),
        "overlay replaces base fstab"
    );
    let bin = debugfs(&rootfs, "stat /bin");
    assert!(
        bin.contains("Type: symlink") && bin.contains("\"usr/bin\""),
        "{bin}"
    );
    let wants = debugfs(
        &rootfs,
        "stat /etc/systemd/system/sysinit.target.wants/hcikit-apply.service",
    );
    assert!(
        wants.contains("Type: symlink")
            && wants.contains("/etc/systemd/system/hcikit-apply.service"),
        "{wants}"
    );
    let agent = debugfs(&rootfs, "stat /usr/sbin/hcikit-firstboot");
    assert!(
        agent.contains("Mode:  0755") && agent.contains("User:     0"),
        "{agent}"
    );
    assert_eq!(
        debugfs(&rootfs, "cat /usr/sbin/hcikit-firstboot"),
        "#!/bin/sh\necho agent stand-in\n"
    );
    for flag in [
        "/var/lib/hcikit/apply-pending",
        "/var/lib/hcikit/firstboot-pending",
    ] {
        assert!(
            debugfs(&rootfs, &format!("stat {flag}")).contains("Type: regular"),
            "{flag}"
        );
    }
    let sb = tool(Command::new("dumpe2fs").arg("-h").arg(&rootfs));
    assert!(
        sb.contains(&format!("Filesystem UUID:          {}", m.root.ext4_uuid)),
        "{sb}"
    );

    // bmap: bmaptool writes the image from the bmap alone, byte for byte.
    let copy = fx.dir.path().join("copy.img");
    tool(
        Command::new("bmaptool")
            .arg("copy")
            .arg("--bmap")
            .arg(out.join("pve1.img.bmap"))
            .arg(&img)
            .arg(&copy),
    );
    assert!(
        std::fs::read(&copy).unwrap() == std::fs::read(&img).unwrap(),
        "bmaptool copy differs"
    );

    // SHA256SUMS verifies with sha256sum; the manifest lists every image.
    tool(
        Command::new("sha256sum")
            .arg("-c")
            .arg("SHA256SUMS")
            .current_dir(&out),
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["images"].as_array().unwrap().len(), 3);
    assert_eq!(manifest["root"]["cached"], false);

    // Images differ per node only outside the root partition.
    let a = std::fs::read(out.join("pve1.img")).unwrap();
    let b = std::fs::read(out.join("pve2.img")).unwrap();
    let re = (ROOT_START + m.layout.root_size) as usize;
    assert!(a[ROOT_START as usize..re] == b[ROOT_START as usize..re]);
    assert!(a[..ROOT_START as usize] != b[..ROOT_START as usize]);
}

fn output_files(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    files_in(dir)
}

#[test]
fn builds_are_reproducible_across_folders_and_times() {
    for format in [Format::Raw, Format::Zst] {
        let fx = Fixture::new();
        let (out1, out2) = (fx.dir.path().join("a/out"), fx.dir.path().join("b/out"));
        build(&fx.options(&out1, &fx.dir.path().join("a/cache"), format)).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1100));
        build(&fx.options(&out2, &fx.dir.path().join("b/cache"), format)).unwrap();
        let (a, b) = (output_files(&out1), output_files(&out2));
        assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
        assert!(a.len() >= 8, "{:?}", a.keys());
        for (name, bytes) in &a {
            assert!(
                bytes == &b[name],
                "{name} differs between two builds ({format:?})"
            );
        }
    }
}

/// Compressed sizes of the zstd frames in a file.
fn frames(bytes: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let n = zstd::zstd_safe::find_frame_compressed_size(rest).expect("a whole zstd frame");
        out.push(&rest[..n]);
        rest = &rest[n..];
    }
    out
}

#[test]
fn zst_images_decompress_to_the_raw_image_and_share_the_root_frame() {
    let fx = Fixture::new();
    let cache = fx.dir.path().join("cache");
    let raw = fx.dir.path().join("raw");
    let zst = fx.dir.path().join("zst");
    build(&fx.options(&raw, &cache, Format::Raw)).unwrap();
    let m = build(&fx.options(&zst, &cache, Format::Zst)).unwrap();
    assert!(m.root.cached, "the second build reuses the cached root");
    let dec = fx.dir.path().join("pve2.img");
    tool(
        Command::new("zstd")
            .args(["-d", "-q", "-o"])
            .arg(&dec)
            .arg(zst.join("pve2.img.zst")),
    );
    assert!(std::fs::read(&dec).unwrap() == std::fs::read(raw.join("pve2.img")).unwrap());
    // bmaptool decompresses the .zst itself and writes the mapped blocks.
    let copy = fx.dir.path().join("copy.img");
    tool(
        Command::new("bmaptool")
            .arg("copy")
            .arg("--bmap")
            .arg(zst.join("pve2.img.bmap"))
            .arg(zst.join("pve2.img.zst"))
            .arg(&copy),
    );
    assert!(std::fs::read(&copy).unwrap() == std::fs::read(&dec).unwrap());
    let imgs: Vec<Vec<u8>> = ["pve1", "pve2", "pve3"]
        .iter()
        .map(|n| std::fs::read(zst.join(format!("{n}.img.zst"))).unwrap())
        .collect();
    let f: Vec<Vec<&[u8]>> = imgs.iter().map(|b| frames(b)).collect();
    for x in &f {
        assert_eq!(x.len(), 3, "head, root and tail frames");
    }
    assert!(
        f[0][1] == f[1][1] && f[1][1] == f[2][1],
        "the root frame is shared"
    );
    assert!(f[0][0] != f[1][0], "heads differ per node");
    tool(
        Command::new("sha256sum")
            .arg("-c")
            .arg("SHA256SUMS")
            .current_dir(&zst),
    );
    assert_eq!(
        std::fs::metadata(zst.join("pve1.img.zst"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
}

#[test]
fn a_spec_only_change_reuses_the_root_and_a_base_change_does_not() {
    let fx = Fixture::new();
    let cache = fx.dir.path().join("cache");
    let m1 = build(&fx.options(&fx.dir.path().join("o1"), &cache, Format::Raw)).unwrap();
    assert!(!m1.root.cached);
    // Same inputs to the root, different per-node files (another seed): cached.
    let plan = plan();
    let seed = hcikit::render::keys::Seed::from_bytes([9; 32]);
    let files = hcikit::image::node_file_sets(&plan, rendered(&plan), &seed).unwrap();
    let input = hcikit::image::BuildInput {
        plan: &plan,
        files: &files,
        spec_sha256: "1".repeat(64),
        seed_id: seed.id(),
    };
    let o2 = fx.dir.path().join("o2");
    let m2 = hcikit::image::build(&input, &fx.options(&o2, &cache, Format::Raw)).unwrap();
    assert!(m2.root.cached);
    assert_eq!(m1.root.cache_key, m2.root.cache_key);
    assert_ne!(
        m1.images[0].sha256, m2.images[0].sha256,
        "new keys, new ESP"
    );
    // A changed base gives a new root.
    let mut t = tiny_rootfs_tar(true);
    let extra = fx.dir.path().join("base2.tar");
    {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_size(3);
        h.set_mtime(1);
        b.append_data(&mut h, "etc/extra", &b"new"[..]).unwrap();
        // Append before the end-of-archive blocks of the original.
        t.truncate(t.len() - 1024);
        t.extend_from_slice(&b.into_inner().unwrap());
    }
    std::fs::write(&extra, &t).unwrap();
    let mut o = fx.options(&fx.dir.path().join("o3"), &cache, Format::Raw);
    o.base = extra;
    let m3 = build(&o).unwrap();
    assert!(!m3.root.cached);
    assert_ne!(m3.root.cache_key, m1.root.cache_key);
}

#[test]
fn fleet_image_carries_every_node_and_no_fixed_identity() {
    let fx = Fixture::new();
    let out = fx.dir.path().join("out");
    let mut o = fx.options(&out, &fx.dir.path().join("cache"), Format::Raw);
    o.fleet = true;
    let m = build(&o).unwrap();
    assert_eq!(m.images.len(), 1);
    let r = hcikit::media::inspect::inspect(&out.join("lab-fleet.img")).unwrap();
    assert_eq!(r.node, None);
    let nodes: Vec<&str> = r.node_files.iter().map(|n| n.node.as_str()).collect();
    assert_eq!(nodes, ["pve1", "pve2", "pve3"]);
    assert!(r.boot_options.unwrap().contains(&m.images[0].root_partuuid));
}

#[test]
fn inspect_reports_identity_without_secret_contents() {
    let fx = Fixture::new();
    let out = fx.dir.path().join("out");
    let mut o = fx.options(&out, &fx.dir.path().join("cache"), Format::Zst);
    o.nodes = vec!["pve3".into()];
    let m = build(&o).unwrap();
    let r = hcikit::media::inspect::inspect(&out.join("pve3.img.zst")).unwrap();
    assert_eq!(r.node.as_deref(), Some("pve3"));
    assert_eq!(r.sha256sums_match, Some(true));
    assert_eq!(r.partitions.len(), 2);
    assert_eq!(r.partitions[1].partuuid, m.images[0].root_partuuid);
    assert_eq!(r.root_fs.as_ref().unwrap().uuid, m.root.ext4_uuid);
    assert_eq!(r.plan.as_ref().unwrap().nodes, ["pve1", "pve2", "pve3"]);
    let secrets: Vec<&str> = r.node_files[0]
        .secrets
        .iter()
        .map(|e| e.path.as_str())
        .collect();
    assert!(
        secrets.contains(&"/etc/ssh/ssh_host_ed25519_key"),
        "{secrets:?}"
    );
    let text = hcikit::media::inspect::human(&r) + &serde_json::to_string(&r).unwrap();
    assert!(
        !text.contains("SECRETHASH") && !text.contains("PRIVATE KEY"),
        "{text}"
    );
}

#[test]
fn a_root_that_does_not_fit_is_bad_input_and_leaves_nothing() {
    let fx = Fixture::new();
    // 150 MiB of file data cannot fit the 127 MiB root of a 192 MiB disk.
    let mut t = tiny_rootfs_tar(true);
    t.truncate(t.len() - 1024);
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_size(150 << 20);
    h.set_mtime(1);
    b.append_data(&mut h, "big", std::io::repeat(7).take(150 << 20))
        .unwrap();
    t.extend_from_slice(&b.into_inner().unwrap());
    std::fs::write(&fx.base, &t).unwrap();
    let out = fx.dir.path().join("out");
    let err = build(&fx.options(&out, &fx.dir.path().join("cache"), Format::Raw)).unwrap_err();
    assert_eq!(hcikit::error::exit_code(&err), 2, "{err:#}");
    assert!(format!("{err:#}").contains("too small"), "{err:#}");
    assert_no_outputs(&out);
}
