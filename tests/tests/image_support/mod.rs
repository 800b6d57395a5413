//! Shared fixtures of the image tests: a tiny rootfs archive, a small Plan, overlays and
//! a stand-in agent, and helpers that run independent tools on the result.
#![allow(dead_code)]

use hcikit::image::{BuildInput, BuildOptions, Format};
use hcikit::progress::Progress;
use hcikit::render::files::{NodeFile, Placement};
use hcikit_firstboot::plan::Plan;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const EPOCH: u64 = 1_700_000_000;
pub const DISK: u64 = 192 << 20;
pub const ESP: u64 = 64 << 20;

fn header(kind: tar::EntryType, mode: u32, uid: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(uid);
    h.set_gid(uid);
    h.set_mtime(1_600_000_000);
    h.set_size(0);
    h
}

/// A tiny rootfs: dirs, a setuid file, a user-owned file, a symlink, a hard link, a
/// fake kernel and initrd, and a stub systemd-boot. `kernel: false` leaves out /boot.
pub fn tiny_rootfs_tar(kernel: bool) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let dir = |b: &mut tar::Builder<Vec<u8>>, p: &str| {
        let mut h = header(tar::EntryType::Directory, 0o755, 0);
        b.append_data(&mut h, p, std::io::empty()).unwrap();
    };
    let file = |b: &mut tar::Builder<Vec<u8>>, p: &str, mode: u32, uid: u64, data: &[u8]| {
        let mut h = header(tar::EntryType::Regular, mode, uid);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, p, data).unwrap();
    };
    for d in [
        "./",
        "./etc/",
        "./usr/",
        "./usr/bin/",
        "./usr/sbin/",
        "./usr/lib/",
        "./usr/lib/systemd/",
        "./usr/lib/systemd/boot/",
        "./usr/lib/systemd/boot/efi/",
        "./home/",
        "./home/user/",
        "./var/",
        "./var/lib/",
        "./etc/systemd/",
        "./etc/systemd/system/",
    ] {
        dir(&mut b, d);
    }
    file(&mut b, "./etc/hostname", 0o644, 0, b"base\n");
    file(
        &mut b,
        "./etc/fstab",
        0o644,
        0,
        b"# base fstab, replaced by the overlay\n",
    );
    file(
        &mut b,
        "./usr/bin/sudo",
        0o4755,
        0,
        b"#!/bin/sh\necho sudo\n",
    );
    file(&mut b, "./home/user/notes", 0o640, 1000, b"mine\n");
    file(
        &mut b,
        "./usr/lib/systemd/boot/efi/systemd-bootx64.efi",
        0o644,
        0,
        b"MZ systemd-boot stub",
    );
    let mut h = header(tar::EntryType::Symlink, 0o777, 0);
    b.append_link(&mut h, "./bin", "usr/bin").unwrap();
    let mut h = header(tar::EntryType::Link, 0o4755, 0);
    b.append_link(&mut h, "./usr/bin/a-sudo-link", "./usr/bin/sudo")
        .unwrap();
    if kernel {
        dir(&mut b, "./boot/");
        file(
            &mut b,
            "./boot/vmlinuz-6.1.0-test",
            0o644,
            0,
            &vec![0x4b; 300_000],
        );
        file(
            &mut b,
            "./boot/initrd.img-6.1.0-test",
            0o644,
            0,
            &vec![0x49; 200_000],
        );
    }
    b.into_inner().unwrap()
}

pub fn plan() -> Plan {
    let node = |name: &str, id: u32, ip: &str| {
        serde_json::json!({
            "name": name, "fqdn": format!("{name}.lab.example"), "nodeid": id,
            "addresses": [{"network": "mgmt", "ip": ip, "ip-cidr": format!("{ip}/24"), "iface": "vmbr0"}],
            "primary-ip": ip,
            "links": [{"number": 0, "network": "mgmt", "ip": ip}],
            "roles": {"founder": id == 1, "mon": true, "mgr": true, "mds": false},
            "osds": [],
        })
    };
    serde_json::from_value(serde_json::json!({
        "format": 1,
        "cluster": {
            "name": "lab", "domain": "lab.example", "timezone": "UTC", "keyboard": "en-us",
            "pve-major": 8, "ntp-servers": [], "admin-ssh-keys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJ8Yl3jv0Xx3yQnQ8w3B1Y1mKkq3X0Zt6r2Q7w9bV5A admin@example"],
            "founder": "pve1", "join-order": ["pve2", "pve3"]
        },
        "networks": [{
            "name": "mgmt", "cidr": "10.2.21.0/24", "prefix-len": 24, "gateway": "10.2.21.1",
            "dns": [], "mtu": 1500, "corosync-link": 0,
            "device": {"kind": "interface", "name": "ens18"}, "bridge": "vmbr0",
            "address-iface": "vmbr0"
        }],
        "nodes": [node("pve1", 1, "10.2.21.66"), node("pve2", 2, "10.2.21.67"), node("pve3", 3, "10.2.21.68")],
        "corosync": {"cluster-name": "lab", "links": [{"number": 0, "network": "mgmt"}], "config-version": 3},
        "ceph": null,
        "datacenter": {"options": {}},
        "ha": {"mode": "groups", "groups": [], "resources": []},
        "notifications": {"smtp": [], "matchers": [], "default-matcher-targets": [], "send-test": false},
        "realms": [],
        "firstboot": {"peer-timeout-secs": 600, "join-timeout-secs": 300, "health-timeout-secs": 1800,
            "backoff-secs": 2, "max-backoff-secs": 60, "ceph-install": "preinstalled"},
        "image": {"disk-size": DISK, "esp-size": ESP, "base": "file", "suite": "bookworm",
            "extra-packages": [], "kernel-cmdline": ["console=ttyS0"], "boot-timeout-secs": 3},
        "steps": [],
        "warnings": []
    }))
    .expect("fixture plan parses")
}

/// Rendered files as the renderer would give them (one plain, one desired, one secret).
pub fn rendered(plan: &Plan) -> BTreeMap<String, Vec<NodeFile>> {
    plan.nodes
        .iter()
        .map(|n| {
            let f = |path: &str, mode, contents: String, secret, placement| NodeFile {
                path: path.into(),
                mode,
                uid: 0,
                gid: 0,
                contents: contents.into_bytes(),
                secret,
                placement,
            };
            (
                n.name.clone(),
                vec![
                    f(
                        "/etc/hostname",
                        0o644,
                        format!("{}\n", n.name),
                        false,
                        Placement::Install,
                    ),
                    f(
                        "/etc/pve/datacenter.cfg",
                        0o640,
                        "keyboard: en-us\n".into(),
                        false,
                        Placement::Desired,
                    ),
                    f(
                        "/etc/hcikit/secrets/root-password-hash",
                        0o600,
                        "$6$SECRETHASH\n".into(),
                        true,
                        Placement::Install,
                    ),
                ],
            )
        })
        .collect()
}

/// A temp folder with the base archive, overlays, the agent stand-in and a seed.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub base: PathBuf,
    pub overlays: PathBuf,
    pub agent: PathBuf,
}

pub const UNIT: &str = "[Unit]\nDescription=test unit\n[Service]\nType=oneshot\nExecStart=/usr/sbin/hcikit-firstboot apply\n[Install]\nWantedBy=sysinit.target\n";

impl Fixture {
    pub fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("base.tar");
        std::fs::write(&base, tiny_rootfs_tar(true)).unwrap();
        let overlays = dir.path().join("overlays");
        std::fs::create_dir_all(overlays.join("etc/systemd/system")).unwrap();
        std::fs::write(
            overlays.join("etc/systemd/system/hcikit-apply.service"),
            UNIT,
        )
        .unwrap();
        std::fs::copy(
            hcikit_tests::workspace_root().join("overlays/etc/fstab"),
            overlays.join("etc/fstab"),
        )
        .unwrap();
        let agent = dir.path().join("agent");
        std::fs::write(&agent, b"#!/bin/sh\necho agent stand-in\n").unwrap();
        Fixture {
            dir,
            base,
            overlays,
            agent,
        }
    }

    pub fn options(&self, out: &Path, cache: &Path, format: Format) -> BuildOptions {
        BuildOptions {
            out_dir: out.to_path_buf(),
            base: self.base.clone(),
            format,
            nodes: Vec::new(),
            cache_dir: cache.to_path_buf(),
            agent: self.agent.clone(),
            overlays: self.overlays.clone(),
            fleet: false,
            installer: false,
            epoch: Some(EPOCH),
            progress: Progress::quiet(),
            pxe: None,
        }
    }
}

/// Runs the library build with the fixture plan and a fixed seed.
pub fn build(opts: &BuildOptions) -> anyhow::Result<hcikit::image::Manifest> {
    let plan = plan();
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

/// Fails the test if anything is left in the output folder (a missing folder is fine).
pub fn assert_no_outputs(out: &Path) {
    if let Ok(rd) = std::fs::read_dir(out) {
        let names: Vec<String> = rd
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            names.is_empty(),
            "left behind in the output folder: {names:?}"
        );
    }
}

/// Runs a tool and returns its stdout; panics with both outputs on failure.
pub fn tool(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Copies `len` bytes at `offset` of `img` into a new sparse file (zero blocks skipped).
pub fn extract(img: &Path, offset: u64, len: u64, to: &Path) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::open(img).unwrap();
    let out = std::fs::File::create(to).unwrap();
    out.set_len(len).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let zero = vec![0u8; 4096];
    let mut pos = 0;
    while pos < len {
        let n = (len - pos).min(buf.len() as u64) as usize;
        f.read_exact_at(&mut buf[..n], offset + pos).unwrap();
        for (i, c) in buf[..n].chunks(4096).enumerate() {
            if c != &zero[..c.len()] {
                out.write_all_at(c, pos + (i * 4096) as u64).unwrap();
            }
        }
        pos += n as u64;
    }
}

/// Every regular file in a folder, by name, with its bytes.
pub fn files_in(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}
