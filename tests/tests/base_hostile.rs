//! Base archives that try to escape, explode or overflow: each is bad input (exit 2)
//! naming the archive or the spec key, with nothing left in the output folder; device
//! nodes survive the staging fallback; killed builds' work folders do not pile up.

mod image_support;

use hcikit::image::Format;
use hcikit_tests::{hcikit_bin, run};
use image_support::*;
use std::io::Read;
use std::path::Path;
use std::process::Command;

/// The fixture's base with more entries appended (before the end-of-archive blocks).
fn base_with(extra: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
    let mut v = tiny_rootfs_tar(true);
    v.truncate(v.len() - 1024);
    let mut b = tar::Builder::new(v);
    extra(&mut b);
    b.into_inner().unwrap()
}

fn entry(b: &mut tar::Builder<Vec<u8>>, kind: tar::EntryType, path: &str, data: &[u8]) {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_600_000_000);
    h.set_size(data.len() as u64);
    b.append_data(&mut h, path, data).unwrap();
}

fn link(b: &mut tar::Builder<Vec<u8>>, kind: tar::EntryType, path: &str, to: &str) {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(0o777);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_600_000_000);
    h.set_size(0);
    // Raw link names: the tar crate would refuse some of them itself.
    let name = &mut h.as_gnu_mut().unwrap().linkname;
    name[..to.len()].copy_from_slice(to.as_bytes());
    b.append_data(&mut h, path, std::io::empty()).unwrap();
}

/// Builds with `base` as the base archive; returns the exit code and message.
fn build_with(fx: &Fixture, base: &Path) -> (i32, String) {
    let out = fx.dir.path().join("out");
    let mut opts = fx.options(&out, &fx.dir.path().join("cache"), Format::Raw);
    opts.base = base.to_path_buf();
    opts.nodes = vec!["pve1".into()];
    match build(&opts) {
        Ok(_) => (0, String::new()),
        Err(e) => (hcikit::error::exit_code(&e), format!("{e:#}")),
    }
}

#[test]
fn entries_that_link_outside_are_bad_input_naming_the_archive() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "symlink then a file through it",
            base_with(|b| {
                link(b, tar::EntryType::Symlink, "./evil", "/tmp/outside");
                entry(b, tar::EntryType::Regular, "./evil/file", b"x");
            }),
        ),
        (
            "relative symlink then a file through it",
            base_with(|b| {
                link(b, tar::EntryType::Symlink, "./etc/up", "../../..");
                entry(b, tar::EntryType::Regular, "./etc/up/x", b"x");
            }),
        ),
        (
            "hard link to an absolute host file",
            base_with(|b| link(b, tar::EntryType::Link, "./etc/pw", "/etc/passwd")),
        ),
        (
            "hard link climbing out",
            base_with(|b| {
                link(
                    b,
                    tar::EntryType::Link,
                    "./etc/pw",
                    "../../../../etc/passwd",
                )
            }),
        ),
        (
            "hard link to a later entry",
            base_with(|b| {
                link(b, tar::EntryType::Link, "./etc/first", "etc/second");
                entry(b, tar::EntryType::Regular, "./etc/second", b"x");
            }),
        ),
    ];
    for (what, bytes) in cases {
        let fx = Fixture::new();
        let base = fx.dir.path().join("evil-base.tar");
        std::fs::write(&base, bytes).unwrap();
        let (code, msg) = build_with(&fx, &base);
        assert_eq!(code, 2, "{what}: {msg}");
        assert!(msg.contains(base.to_str().unwrap()), "{what}: {msg}");
        assert_no_outputs(&fx.dir.path().join("out"));
    }
}

#[test]
fn a_compressed_base_may_not_unpack_beyond_what_the_disk_holds() {
    // 40 KB of zstd that unpacks to a 600 MiB tar, on a 192 MiB disk.
    let fx = Fixture::new();
    let bomb = fx.dir.path().join("bomb.tar.zst");
    let tar = base_with(|b| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_size(600 << 20);
        h.set_cksum();
        b.append(&h, std::io::repeat(0).take(600 << 20)).unwrap();
    });
    std::fs::write(&bomb, zstd::bulk::compress(&tar, 19).unwrap()).unwrap();
    assert!(std::fs::metadata(&bomb).unwrap().len() < 1 << 20);
    drop(tar);
    let (code, msg) = build_with(&fx, &bomb);
    assert_eq!(code, 2, "{msg}");
    assert!(
        msg.contains("bomb.tar.zst") && msg.contains("holds more than"),
        "{msg}"
    );
    // Nothing of it is kept in the cache.
    let leftovers: Vec<_> = std::fs::read_dir(fx.dir.path().join("cache"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_kernel_larger_than_the_esp_is_bad_input() {
    let fx = Fixture::new();
    // The fixture's kernel name again: the later entry wins.
    let base = base_with(|b| {
        entry(
            b,
            tar::EntryType::Regular,
            "./boot/vmlinuz-6.1.0-test",
            &vec![7u8; 80 << 20],
        )
    });
    let path = fx.dir.path().join("big-kernel.tar");
    std::fs::write(&path, base).unwrap();
    let (code, msg) = build_with(&fx, &path);
    assert_eq!(code, 2, "{msg}");
    assert!(msg.contains("image.esp-size"), "{msg}");
}

#[test]
fn stale_work_folders_of_killed_builds_are_removed() {
    let fx = Fixture::new();
    let cache = fx.dir.path().join("cache");
    // What a killed build leaves: its process (this id is never a running one) is gone.
    let stale = cache.join(".build-4000000000-abc");
    std::fs::create_dir_all(stale.join("staging")).unwrap();
    std::fs::write(stale.join("base.tar"), vec![1u8; 1 << 20]).unwrap();
    let (code, msg) = build_with(&fx, &fx.base.clone());
    assert_eq!(code, 0, "{msg}");
    assert!(!stale.exists(), "the killed build's work folder stayed");
}

#[test]
fn the_staging_fallback_keeps_device_nodes() {
    let fx = Fixture::new();
    let base = fx.dir.path().join("dev-base.tar");
    std::fs::write(
        &base,
        base_with(|b| {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Char);
            h.set_mode(0o666);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            h.set_size(0);
            h.set_device_major(1).unwrap();
            h.set_device_minor(3).unwrap();
            b.append_data(&mut h, "./dev-null", std::io::empty())
                .unwrap();
        }),
    )
    .unwrap();
    let out = fx.dir.path().join("out");
    let (code, stdout, stderr) = run(Command::new(hcikit_bin())
        .arg("build")
        .arg(write_spec(&fx))
        .arg("-o")
        .arg(&out)
        .arg("--base")
        .arg(&base)
        .arg("--cache")
        .arg(fx.dir.path().join("cache"))
        .arg("--agent")
        .arg(&fx.agent)
        .args(["--node", "mini1", "--format", "zst"])
        .env("HCIKIT_OVERLAYS", &fx.overlays)
        .env("HCIKIT_FORCE_STAGING", "1")
        .env("SOURCE_DATE_EPOCH", EPOCH.to_string()));
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    if !nix::unistd::geteuid().is_root() {
        // Only root can make device nodes: without it the fallback says what it left out.
        assert!(stderr.contains("dev-null"), "{stderr}");
        return;
    }
    let cache = fx.dir.path().join("cache");
    let root = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.join("root.ext4").is_file())
        .unwrap()
        .join("root.ext4");
    let st = tool(
        Command::new("debugfs")
            .arg("-R")
            .arg("stat /dev-null")
            .arg(&root),
    );
    assert!(st.contains("Type: character special"), "{st}");
    assert!(st.contains("Device major/minor number: 01:03"), "{st}");
}

/// The minipc example with a small image, for CLI runs.
fn write_spec(fx: &Fixture) -> std::path::PathBuf {
    let ex = hcikit_tests::workspace_root().join("examples");
    let mut spec = std::fs::read_to_string(ex.join("minipc.toml")).unwrap();
    spec.push_str("\n[image]\ndisk-size = \"4608M\"\nesp-size = \"256M\"\n");
    let p = fx.dir.path().join("minipc.toml");
    std::fs::write(&p, spec).unwrap();
    p
}
