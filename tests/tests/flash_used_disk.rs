//! Flashing onto a disk that held other data: every byte the image's partition table and
//! file systems rely on must be written, not only the non-zero ones. The targets here are
//! filled with pseudo-random bytes first (a used disk), then flashed by `hcikit flash`
//! and by bmap-tools' own copier, and checked with sgdisk, fsck.fat and e2fsck.

mod image_support;

use hcikit::image::Format;
use hcikit::media::flash::{self, Options};
use hcikit::progress::Progress;
use image_support::*;
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::process::Command;

const ROOT_START: u64 = (1 << 20) + ESP;

/// A target of `size` bytes holding pseudo-random bytes (xorshift, fixed seed), like a
/// disk that held data before.
fn used_target(path: &Path, size: u64, seed: u64) {
    let mut f = std::io::BufWriter::new(File::create(path).unwrap());
    let mut x = seed | 1;
    let mut left = size;
    let mut buf = vec![0u8; 1 << 20];
    while left > 0 {
        for c in buf.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            c.copy_from_slice(&x.to_le_bytes()[..c.len()]);
        }
        let n = left.min(buf.len() as u64) as usize;
        f.write_all(&buf[..n]).unwrap();
        left -= n as u64;
    }
    f.flush().unwrap();
}

/// Runs a checker and returns its exit status and both outputs.
fn check(cmd: &mut Command) -> (bool, String) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The partition table, the ESP and the root of `disk` pass the independent checkers,
/// and the ESP holds the same files as the image's.
fn assert_valid_disk(disk: &Path, image: &Path, what: &str) {
    let (ok, v) = check(Command::new("sgdisk").arg("-v").arg(disk));
    assert!(
        ok && v.contains("No problems found"),
        "{what}: sgdisk -v: {v}"
    );
    let dir = disk.parent().unwrap();
    let esp = dir.join(format!("{what}.esp"));
    extract(disk, 1 << 20, ESP, &esp);
    let (ok, v) = check(Command::new("fsck.fat").arg("-n").arg(&esp));
    assert!(ok && !v.contains("differ"), "{what}: fsck.fat -n: {v}");
    let want_esp = dir.join(format!("{what}.want.esp"));
    extract(image, 1 << 20, ESP, &want_esp);
    assert_eq!(
        hcikit::image::esp::list_fat(&std::fs::read(&esp).unwrap()).unwrap(),
        hcikit::image::esp::list_fat(&std::fs::read(&want_esp).unwrap()).unwrap(),
        "{what}: the ESP's files"
    );
    let root = dir.join(format!("{what}.root"));
    let root_len = std::fs::metadata(image).unwrap().len() - ROOT_START - (1 << 20);
    extract(disk, ROOT_START, root_len, &root);
    let (ok, v) = check(Command::new("e2fsck").arg("-fn").arg(&root));
    assert!(ok, "{what}: e2fsck -fn: {v}");
    for p in [esp, want_esp, root] {
        std::fs::remove_file(p).unwrap();
    }
}

#[test]
fn flash_onto_a_used_disk_gives_a_valid_disk() {
    let fx = Fixture::new();
    let out = fx.dir.path().join("out");
    build(&fx.options(&out, &fx.dir.path().join("cache"), Format::Raw)).unwrap();
    let img = out.join("pve1.img");
    for (i, seed) in [0x9e37_79b9_7f4a_7c15u64, 0x0123_4567_89ab_cdef]
        .into_iter()
        .enumerate()
    {
        let target = fx.dir.path().join(format!("disk{i}"));
        used_target(&target, DISK, seed);
        flash::prepare(&Options {
            image: img.clone(),
            device: target.clone(),
            allow_file: true,
            ..Options::default()
        })
        .unwrap()
        .write(Progress::quiet())
        .unwrap();
        assert_valid_disk(&target, &img, &format!("hcikit-flash-{i}"));
        std::fs::remove_file(&target).unwrap();
    }
}

#[test]
fn flash_over_an_earlier_image_with_more_files_gives_a_valid_disk() {
    // A disk that held an earlier build of another node: its ESP had other files, its
    // FAT other chains. What that image used and this one does not must not survive.
    let fx = Fixture::new();
    let out = fx.dir.path().join("out");
    build(&fx.options(&out, &fx.dir.path().join("cache"), Format::Raw)).unwrap();
    let target = fx.dir.path().join("disk");
    used_target(&target, DISK, 7);
    let flash_to = |img: &Path| {
        flash::prepare(&Options {
            image: img.to_path_buf(),
            device: target.clone(),
            allow_file: true,
            ..Options::default()
        })
        .unwrap()
        .write(Progress::quiet())
        .unwrap()
    };
    flash_to(&out.join("pve2.img"));
    flash_to(&out.join("pve1.img"));
    assert_valid_disk(&target, &out.join("pve1.img"), "over-pve2");
}

/// The interpreter that runs `bmaptool` (its `#!` line), so its `bmaptools` package is
/// importable whatever `python3` comes first on `PATH`.
fn bmaptool_python() -> String {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let tool = std::env::split_paths(&path)
        .map(|d| d.join("bmaptool"))
        .find(|p| p.is_file())
        .expect("bmaptool on PATH (bmap-tools, scripts/setup.sh)");
    let text = std::fs::read_to_string(&tool).unwrap();
    let first = text.lines().next().unwrap_or_default();
    let interp = first
        .strip_prefix("#!")
        .expect("bmaptool is a script")
        .trim();
    // `#!/usr/bin/env python3` names the interpreter as its last word.
    interp.split_whitespace().last().unwrap().to_string()
}

#[test]
fn bmaptool_copy_onto_a_used_disk_gives_a_valid_disk() {
    // `bmaptool copy` truncates a regular-file target, which would hide stale blocks; a
    // block device is not truncated. Its copier is driven here through its Python API
    // with a target opened without truncation, which is what it does to a block device.
    let fx = Fixture::new();
    let out = fx.dir.path().join("out");
    build(&fx.options(&out, &fx.dir.path().join("cache"), Format::Raw)).unwrap();
    let img = out.join("pve1.img");
    let target = fx.dir.path().join("disk");
    used_target(&target, DISK, 99);
    let script = "import sys\nfrom bmaptools import BmapCopy\n\
                  img = open(sys.argv[1], 'rb'); bmap = open(sys.argv[2], 'rb')\n\
                  dest = open(sys.argv[3], 'r+b')\n\
                  BmapCopy.BmapCopy(img, dest, bmap).copy(False, True)\n";
    let (ok, v) = check(
        Command::new(bmaptool_python())
            .arg("-c")
            .arg(script)
            .arg(&img)
            .arg(out.join("pve1.img.bmap"))
            .arg(&target),
    );
    assert!(ok, "bmaptools copy: {v}");
    assert_valid_disk(&target, &img, "bmaptool");
}
