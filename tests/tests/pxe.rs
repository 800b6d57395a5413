//! The network-install tree (`hcikit build --pxe`), image tier: every pinned hash matches
//! its file, the script's labels and URLs resolve inside the tree, a node's three payload
//! files are its image, two builds give the same bytes, and a node without a MAC is bad
//! input that leaves nothing behind.

mod image_support;

use hcikit::image::{BuildInput, BuildOptions, Format, PxeOptions};
use image_support::*;
use sha2::Digest;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

const MACS: [&str; 3] = [
    "52:54:00:aa:00:01",
    "52:54:00:aa:00:02",
    "52:54:00:aa:00:03",
];

fn build_pxe(opts: &BuildOptions, macs: bool) -> anyhow::Result<hcikit::image::Manifest> {
    let mut plan = plan();
    if macs {
        for (n, m) in plan.nodes.iter_mut().zip(MACS) {
            n.mac = Some(m.to_string());
        }
    }
    let seed = hcikit::render::keys::Seed::from_bytes([42; 32]);
    let files = hcikit::image::node_file_sets(&plan, rendered(&plan), &seed)?;
    let input = BuildInput {
        plan: &plan,
        files: &files,
        spec_sha256: "0".repeat(64),
        seed_id: seed.id(),
    };
    hcikit::image::build(&input, opts)
}

fn pxe_options(fx: &Fixture, out: &Path, cache: &Path, format: Format) -> BuildOptions {
    let mut o = fx.options(out, cache, format);
    o.pxe = Some(PxeOptions {
        base_url: Some("http://10.9.9.1:8080".into()),
    });
    o
}

fn sha(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

/// `hcikit.sha256.<part>=<hex>` arguments of one node section of the script.
fn pinned(script: &str, node: &str) -> BTreeMap<String, String> {
    let section = script
        .split(&format!("\n:node-{node}\n"))
        .nth(1)
        .expect("node section")
        .split("\n:")
        .next()
        .unwrap();
    section
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("hcikit.sha256."))
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect()
}

#[test]
fn tree_hashes_script_and_payload() {
    let fx = Fixture::new();
    let cache = fx.dir.path().join("cache");
    let out = fx.dir.path().join("out");
    let raw = fx.dir.path().join("raw");
    // The same plan (with MACs) as plain images, to compare with.
    build_pxe(&fx.options(&raw, &cache, Format::Raw), true).unwrap();
    build_pxe(&pxe_options(&fx, &out, &cache, Format::Raw), true).unwrap();
    let pxe = out.join("pxe");
    let files = files_in(&pxe);
    let mut want: Vec<String> = [
        "SHA256SUMS",
        "boot.ipxe",
        "dnsmasq.conf.example",
        "install.json",
        "root.ext4.zst",
        "vmlinuz",
    ]
    .map(String::from)
    .to_vec();
    for n in ["pve1", "pve2", "pve3"] {
        want.extend([
            format!("{n}.head.zst"),
            format!("{n}.tail.zst"),
            format!("{n}.img.bmap"),
        ]);
    }
    want.sort();
    assert_eq!(files.keys().cloned().collect::<Vec<_>>(), want);
    // Every file but SHA256SUMS is listed there, and sha256sum agrees.
    tool(
        Command::new("sha256sum")
            .args(["-c", "--strict", "SHA256SUMS"])
            .current_dir(&pxe),
    );
    assert_eq!(
        files["SHA256SUMS"].iter().filter(|&&b| b == b'\n').count(),
        14
    );

    let script = String::from_utf8(files["boot.ipxe"].clone()).unwrap();
    assert!(script.starts_with("#!ipxe\n"));
    // Every goto has its label.
    for target in script
        .split_whitespace()
        .collect::<Vec<_>>()
        .windows(2)
        .filter(|w| w[0] == "goto")
        .map(|w| w[1])
    {
        assert!(
            script.contains(&format!("\n:{target}\n")),
            "goto {target} has no label"
        );
    }
    // Every URL into the tree names a file of the tree.
    for url in script
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("${hcikit-base}/"))
        .filter(|u| !u.starts_with("unknown-mac/"))
    {
        assert!(files.contains_key(url), "{url} is not in the tree");
    }
    assert!(script.contains("set hcikit-base http://10.9.9.1:8080\n"));
    for (n, mac) in ["pve1", "pve2", "pve3"].iter().zip(MACS) {
        assert!(script.contains(&format!("iseq ${{net0/mac}} {mac} && goto node-{n} ||")));
        let p = pinned(&script, n);
        assert_eq!(p.len(), 5, "{p:?}");
        assert_eq!(p["manifest"], sha(&files["install.json"]));
        // install.json pins the same files, and its segments cover the whole image.
        let m =
            hcikit_firstboot::install::payload::Manifest::parse(&files["install.json"]).unwrap();
        let np = m.node(n).unwrap();
        assert_eq!(np.mac.as_deref(), Some(mac));
        assert_eq!(np.bmap_sha256, p["bmap"]);
        let mut at = 0;
        for seg in &np.segments {
            let hcikit_firstboot::install::payload::Segment::Image {
                path,
                image_offset,
                length,
                sha256,
                ..
            } = seg
            else {
                panic!("{seg:?} is not an image segment");
            };
            assert_eq!(*image_offset, at);
            at += length;
            assert_eq!(sha256, &sha(&files[path.as_str()]), "{path}");
        }
        assert_eq!(at, np.image_size);
        assert_eq!(p["root"], sha(&files["root.ext4.zst"]));
        assert_eq!(p["head"], sha(&files[&format!("{n}.head.zst")]));
        assert_eq!(p["tail"], sha(&files[&format!("{n}.tail.zst")]));
        assert_eq!(p["bmap"], sha(&files[&format!("{n}.img.bmap")]));

        // head + shared root + tail is the node's image, and the bmap is its bmap.
        let mut cat = files[&format!("{n}.head.zst")].clone();
        cat.extend_from_slice(&files["root.ext4.zst"]);
        cat.extend_from_slice(&files[&format!("{n}.tail.zst")]);
        let img = zstd::stream::decode_all(&cat[..]).unwrap();
        assert!(
            img == std::fs::read(raw.join(format!("{n}.img"))).unwrap(),
            "{n}: head + root + tail differs from {n}.img"
        );
        assert_eq!(
            files[&format!("{n}.img.bmap")],
            std::fs::read(raw.join(format!("{n}.img.bmap"))).unwrap()
        );
    }
    // The kernel is the base's.
    assert_eq!(
        files["vmlinuz"],
        base_kernel(&fx.base),
        "vmlinuz is the base's kernel"
    );
    // The fixture base has none of the installer's programs, so this build has no
    // installer initrd: nothing references it and nothing boots.
    assert!(!files.contains_key("initrd.img"));
    assert!(!script.lines().any(|l| l == "boot"));
    let unknown = script.split("\n:unknown\n").nth(1).unwrap();
    assert!(unknown.contains("is not a node of cluster lab"));
    use std::os::unix::fs::PermissionsExt;
    let mode = |f: &str| std::fs::metadata(pxe.join(f)).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        mode("pve1.head.zst"),
        0o600,
        "the head carries the node's keys"
    );
    assert_eq!(mode("root.ext4.zst"), 0o644);
}

/// The fixture base's kernel file.
fn base_kernel(base: &Path) -> Vec<u8> {
    let mut a = tar::Archive::new(std::fs::File::open(base).unwrap());
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let p = e.path().unwrap().to_string_lossy().into_owned();
        if p.trim_start_matches("./").starts_with("boot/vmlinuz-") {
            let mut v = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut v).unwrap();
            return v;
        }
    }
    panic!("the fixture base has no kernel");
}

#[test]
fn pxe_trees_are_reproducible() {
    let fx = Fixture::new();
    let (o1, o2) = (fx.dir.path().join("a"), fx.dir.path().join("b"));
    build_pxe(
        &pxe_options(&fx, &o1, &fx.dir.path().join("c1"), Format::Zst),
        true,
    )
    .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    build_pxe(
        &pxe_options(&fx, &o2, &fx.dir.path().join("c2"), Format::Zst),
        true,
    )
    .unwrap();
    let (a, b) = (files_in(&o1.join("pxe")), files_in(&o2.join("pxe")));
    assert_eq!(a.len(), 15);
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (name, bytes) in &a {
        assert!(bytes == &b[name], "{name} differs between two builds");
    }
}

#[test]
fn a_node_without_mac_is_bad_input_and_leaves_nothing() {
    let fx = Fixture::new();
    let out = fx.dir.path().join("out");
    let err = build_pxe(
        &pxe_options(&fx, &out, &fx.dir.path().join("c"), Format::Raw),
        false,
    )
    .unwrap_err();
    assert_eq!(hcikit::error::exit_code(&err), 2);
    let msg = format!("{err:#}");
    assert!(msg.contains("nodes[0].mac (pve1)"), "{msg}");
    assert_no_outputs(&out);
}

/// The initrd archive format read back by GNU cpio: contents, modes, links and folders.
#[test]
fn initrd_archive_reads_back_with_cpio() {
    use hcikit::media::initrd::{gzip, newc, Entry};
    use std::os::unix::fs::PermissionsExt;
    if !hcikit_tests::require_tool("cpio", "cpio") {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let agent: Vec<u8> = (0..100_003u32).map(|i| (i % 253) as u8).collect();
    let archive = newc(
        &[
            Entry::file(
                "init",
                0o755,
                b"#!/bin/sh\nexec /usr/sbin/hcikit-firstboot\n".to_vec(),
            ),
            Entry::file("usr/sbin/hcikit-firstboot", 0o755, agent.clone()),
            Entry::file(
                "usr/lib/modules/6.1.0-test/kernel/virtio_net.ko",
                0o644,
                vec![7; 33],
            ),
            Entry::symlink("sbin", "usr/sbin"),
        ],
        EPOCH as u32,
    );
    let gz = gzip(&archive).unwrap();
    assert_eq!(gz, gzip(&archive).unwrap(), "same input, same bytes");
    std::fs::write(d.path().join("initrd.cpio"), &archive).unwrap();
    let x = d.path().join("x");
    std::fs::create_dir(&x).unwrap();
    tool(
        Command::new("cpio")
            .args(["-i", "-d", "-m", "--quiet", "-F"])
            .arg(d.path().join("initrd.cpio"))
            .current_dir(&x),
    );
    assert!(std::fs::read(x.join("usr/sbin/hcikit-firstboot")).unwrap() == agent);
    assert_eq!(
        std::fs::read(x.join("usr/lib/modules/6.1.0-test/kernel/virtio_net.ko")).unwrap(),
        vec![7; 33]
    );
    let mode = |p: &str| std::fs::metadata(x.join(p)).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode("init"), 0o755);
    assert_eq!(
        mode("usr/lib/modules/6.1.0-test/kernel/virtio_net.ko"),
        0o644
    );
    assert_eq!(
        std::fs::read_link(x.join("sbin")).unwrap(),
        Path::new("usr/sbin")
    );
    let listing = tool(
        Command::new("cpio")
            .args(["-t", "--quiet", "-F"])
            .arg(d.path().join("initrd.cpio")),
    );
    assert_eq!(
        listing.lines().collect::<Vec<_>>(),
        [
            "init",
            "sbin",
            "usr",
            "usr/lib",
            "usr/lib/modules",
            "usr/lib/modules/6.1.0-test",
            "usr/lib/modules/6.1.0-test/kernel",
            "usr/lib/modules/6.1.0-test/kernel/virtio_net.ko",
            "usr/sbin",
            "usr/sbin/hcikit-firstboot",
        ]
    );
}
