//! `hcikit flash` on sparse temp files: bmaps made by the real `bmaptool create`, targets
//! that are regular files (`--allow-file`), results compared byte for byte with the image
//! and with what `bmaptool copy` writes. No root, no loop devices.

use hcikit::media::flash::{self, bmap::Bmap, Options};
use hcikit::progress::Progress;
use hcikit_firstboot::cmd;
use hcikit_tests::{hcikit_bin, run_cli, workspace_root};
use std::fs::{self, File};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const MIB: u64 = 1 << 20;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A sparse file of `size` bytes with `regions` written at their offsets.
fn make_image(path: &Path, size: u64, regions: &[(u64, Vec<u8>)]) {
    let f = File::create(path).unwrap();
    f.set_len(size).unwrap();
    for (off, bytes) in regions {
        f.write_all_at(bytes, *off).unwrap();
    }
}

/// A few data regions in a 9 MiB + 123 byte image: the first block, a run crossing a MiB
/// boundary, a partial block in the middle, and the short last block.
fn lab_image(dir: &Path) -> PathBuf {
    let img = dir.join("node.img");
    let size = 9 * MIB + 123;
    make_image(
        &img,
        size,
        &[
            (0, b"partition table stand-in".to_vec()),
            (MIB - 4096, pattern(3 * 4096 + 77, 1)),
            (5 * MIB + 10, pattern(100, 2)),
            (size - 50, pattern(50, 3)),
        ],
    );
    img
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn bmaptool_create(img: &Path, bmap: &Path) {
    cmd::run(
        Command::new("bmaptool")
            .arg("create")
            .arg(img)
            .arg("-o")
            .arg(bmap),
        Some("bmap-tools (scripts/setup.sh)"),
    )
    .unwrap();
}

/// What `bmaptool copy` writes to `dest` from `img` with `bmap`: the reference flasher.
fn bmaptool_copy(bmap: &Path, img: &Path, dest: &Path) {
    cmd::run(
        Command::new("bmaptool")
            .args(["-q", "copy", "--bmap"])
            .arg(bmap)
            .arg(img)
            .arg(dest),
        Some("bmap-tools"),
    )
    .unwrap();
}

/// A target file of `size` zero bytes (a blank "disk").
fn blank_target(path: &Path, size: u64) {
    File::create(path).unwrap().set_len(size).unwrap();
}

fn flash_quiet(opts: &Options) -> anyhow::Result<flash::Report> {
    flash::prepare(opts)?.write(Progress::quiet())
}

fn opts(image: &Path, device: &Path) -> Options {
    Options {
        image: image.to_path_buf(),
        device: device.to_path_buf(),
        allow_file: true,
        ..Options::default()
    }
}

fn fixture() -> PathBuf {
    workspace_root().join("tests/fixtures/bmap/sample.img.bmap")
}

/// The image `sample.img.bmap` was made from (recipe in tests/fixtures/bmap/README.md).
fn sample_image(path: &Path) {
    let ten_to_twelve: Vec<u8> = b"block ten to twelve\n"
        .iter()
        .copied()
        .cycle()
        .take(12288)
        .collect();
    make_image(
        path,
        1_049_576,
        &[
            (0, b"hcikit bmap sample\n".to_vec()),
            (10 * 4096, ten_to_twelve),
            (1_049_500, b"the short last block\n".to_vec()),
        ],
    );
}

#[test]
fn sample_bmap_parses() {
    let bytes = fs::read(fixture()).unwrap();
    let b = Bmap::from_bytes(&bytes).unwrap();
    assert_eq!(
        (
            b.image_size,
            b.block_size,
            b.blocks_count,
            b.mapped_blocks_count
        ),
        (1_049_576, 4096, 257, 5)
    );
    let spans: Vec<(u64, u64)> = b.ranges.iter().map(|r| (r.first, r.last)).collect();
    assert_eq!(spans, [(0, 0), (10, 12), (256, 256)]);
    assert_eq!(b.byte_span(&b.ranges[2]), (1_048_576, 1000));
    assert_eq!(
        hex::encode(b.ranges[1].sha256.unwrap()),
        "a171f58d9309d2ebe06ba5384e038df5b7f4982fb8a217773b9689290f9af2ec"
    );

    // Any edit after `bmaptool create` breaks the file checksum, even of a comment.
    let edited = String::from_utf8(bytes)
        .unwrap()
        .replace("Image size in bytes", "Image size in octets");
    let err = Bmap::from_bytes(edited.as_bytes()).unwrap_err();
    assert!(
        format!("{err}").contains("own checksum does not match"),
        "{err}"
    );
}

#[test]
fn sample_fixture_matches_its_recipe() {
    // Flashing the rebuilt sample with the checked-in bmap checks our reading of the
    // range checksums (including the short last block) against bmaptool's.
    let t = tempfile::tempdir().unwrap();
    let img = t.path().join("sample.img");
    sample_image(&img);
    let target = t.path().join("disk");
    blank_target(&target, 2 * MIB);
    let mut o = opts(&img, &target);
    o.bmap = Some(fixture());
    flash_quiet(&o).unwrap();
    let disk = fs::read(&target).unwrap();
    assert_eq!(&disk[..1_049_576], &fs::read(&img).unwrap()[..]);
}

#[test]
fn raw_image_is_written_sparse_and_verified() {
    let t = tempfile::tempdir().unwrap();
    let img = lab_image(t.path());
    let bmap = t.path().join("node.img.bmap");
    bmaptool_create(&img, &bmap);
    let b = Bmap::from_bytes(&fs::read(&bmap).unwrap()).unwrap();
    assert!(
        b.mapped_blocks_count < b.blocks_count / 10,
        "the temp folder's filesystem kept no holes: {b:?}"
    );

    let target = t.path().join("disk");
    blank_target(&target, fs::metadata(&img).unwrap().len());
    let report = flash_quiet(&opts(&img, &target)).unwrap();
    assert_eq!(report.ranges, b.ranges.len());
    assert_eq!(report.bytes_written, b.mapped_bytes());
    assert!(fs::read(&target).unwrap() == fs::read(&img).unwrap());
    flash::verify_target(&target, &b).unwrap();
}

#[test]
fn zstd_image_is_streamed() {
    let t = tempfile::tempdir().unwrap();
    let img = lab_image(t.path());
    // The bmap is made from the raw image and keeps its name: node.img.bmap.
    bmaptool_create(&img, &t.path().join("node.img.bmap"));
    cmd::run(
        Command::new("zstd").args(["-q", "-T1"]).arg(&img),
        Some("zstd"),
    )
    .unwrap();
    let zst = t.path().join("node.img.zst");
    let raw = t.path().join("raw-copy.img");
    fs::rename(&img, &raw).unwrap();

    let target = t.path().join("disk");
    blank_target(&target, 16 * MIB);

    // Through the binary: without a terminal there is no one to confirm, so --yes it is.
    let out = Command::new(hcikit_bin())
        .args(["flash", "--allow-file", s(&zst), s(&target)])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("pass --yes"));
    assert_untouched(&target, 16 * MIB);

    let out = Command::new(hcikit_bin())
        .args(["flash", "--allow-file", "--yes", s(&zst), s(&target)])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Not a terminal: plain progress lines, then the verdict.
    assert!(stdout.contains("in 4 ranges, synced"), "{stdout}");
    assert!(stdout.contains("every range matches"), "{stdout}");
    assert!(stdout.contains("verified"), "{stdout}");
    let disk = fs::read(&target).unwrap();
    let raw = fs::read(&raw).unwrap();
    assert!(disk[..raw.len()] == raw[..]);
    assert!(disk[raw.len()..].iter().all(|&b| b == 0));

    // Without a bmap the stream is written whole, over whatever the target held.
    fs::write(&target, vec![0xaa; 16 * MIB as usize]).unwrap();
    let mut o = opts(&zst, &target);
    o.no_bmap = true;
    let report = flash_quiet(&o).unwrap();
    assert_eq!(report.bytes_written, raw.len() as u64);
    assert!(fs::read(&target).unwrap()[..raw.len()] == raw[..]);
}

#[test]
fn same_bytes_as_bmaptool_copy() {
    let t = tempfile::tempdir().unwrap();
    let img = lab_image(t.path());
    let bmap = t.path().join("node.img.bmap");
    bmaptool_create(&img, &bmap);

    let theirs = t.path().join("theirs");
    bmaptool_copy(&bmap, &img, &theirs);
    let ours = t.path().join("ours");
    blank_target(&ours, fs::metadata(&img).unwrap().len());
    flash_quiet(&opts(&img, &ours)).unwrap();
    assert!(fs::read(&ours).unwrap() == fs::read(&theirs).unwrap());
}

#[test]
fn corrupted_range_is_named() {
    let t = tempfile::tempdir().unwrap();
    let img = lab_image(t.path());
    bmaptool_create(&img, &t.path().join("node.img.bmap"));
    let target = t.path().join("disk");
    blank_target(&target, 16 * MIB);

    // One flipped byte in the run at 1 MiB - 4 KiB: blocks 255-258.
    File::options()
        .write(true)
        .open(&img)
        .unwrap()
        .write_all_at(b"X", MIB + 5)
        .unwrap();
    let (code, err) = run_cli(&["flash", "--allow-file", "--yes", s(&img), s(&target)]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("blocks 255-258 (bytes 1044480-1060863)"),
        "{err}"
    );
    assert!(err.contains("the bmap says"), "{err}");

    // And on the way back: a target that does not hold what the bmap says.
    let good = lab_image(t.path());
    let b = Bmap::from_bytes(&fs::read(t.path().join("node.img.bmap")).unwrap()).unwrap();
    fs::copy(&good, &target).unwrap();
    flash::verify_target(&target, &b).unwrap();
    File::options()
        .write(true)
        .open(&target)
        .unwrap()
        .write_all_at(b"Y", 5 * MIB + 20)
        .unwrap();
    let err = format!("{:#}", flash::verify_target(&target, &b).unwrap_err());
    assert!(
        err.contains("verify failed: block 1280 (bytes 5242880-5246975)"),
        "{err}"
    );
}

#[test]
fn bmap_of_another_image_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let img = lab_image(t.path());
    bmaptool_create(&img, &t.path().join("node.img.bmap"));
    let other = t.path().join("other.img");
    make_image(&other, 4 * MIB, &[(0, b"other".to_vec())]);
    let target = t.path().join("disk");
    blank_target(&target, 16 * MIB);

    let bmap = t.path().join("node.img.bmap");
    let (code, err) = run_cli(&[
        "flash",
        "--allow-file",
        "--yes",
        "--bmap",
        s(&bmap),
        s(&other),
        s(&target),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("describes an image of 9437307 bytes"), "{err}");
    assert!(err.contains("belongs to another image"), "{err}");
    assert_untouched(&target, 16 * MIB);
}

#[test]
fn too_small_target_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let img = lab_image(t.path());
    bmaptool_create(&img, &t.path().join("node.img.bmap"));
    let target = t.path().join("disk");
    blank_target(&target, 9 * MIB);
    let (code, err) = run_cli(&["flash", "--allow-file", "--yes", s(&img), s(&target)]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is too small"), "{err}");
    assert!(err.contains("(9437307 bytes)"), "{err}");
    assert_untouched(&target, 9 * MIB);
}

#[test]
fn missing_bmap_offers_no_bmap() {
    let t = tempfile::tempdir().unwrap();
    let img = lab_image(t.path());
    let target = t.path().join("disk");
    blank_target(&target, 16 * MIB);
    let (code, err) = run_cli(&["flash", "--allow-file", "--yes", s(&img), s(&target)]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no bmap for"), "{err}");
    assert!(err.contains("--no-bmap"), "{err}");
    assert_untouched(&target, 16 * MIB);

    // Junk where the image has holes: without a bmap every byte is written.
    fs::write(&target, vec![0xaa; 16 * MIB as usize]).unwrap();
    let mut o = opts(&img, &target);
    o.no_bmap = true;
    flash_quiet(&o).unwrap();
    let img = fs::read(&img).unwrap();
    assert!(fs::read(&target).unwrap()[..img.len()] == img[..]);
}

#[test]
fn regular_file_needs_allow_file() {
    let t = tempfile::tempdir().unwrap();
    let img = lab_image(t.path());
    bmaptool_create(&img, &t.path().join("node.img.bmap"));
    let target = t.path().join("disk");
    blank_target(&target, 16 * MIB);
    let (code, err) = run_cli(&["flash", "--yes", s(&img), s(&target)]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("not a block device; pass --allow-file"),
        "{err}"
    );
    let (code, err) = run_cli(&["flash", "--yes", s(&img), "/dev/null"]);
    assert_eq!(code, 2, "{err}");
    let (code, err) = run_cli(&["flash", "--yes", s(&img), s(&t.path().join("nope"))]);
    assert_eq!(code, 2, "{err}");
    let (code, err) = run_cli(&["flash", "--yes", "--allow-file", s(&img), s(&img)]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("are the same file"), "{err}");
    assert_untouched(&target, 16 * MIB);
}

#[test]
fn tampered_bmap_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let img = lab_image(t.path());
    let bmap = t.path().join("node.img.bmap");
    bmaptool_create(&img, &bmap);
    let text = fs::read_to_string(&bmap).unwrap();
    // Claim a different hash for the first range, as someone "fixing" a bmap by hand would.
    let first = text.find("chksum=\"").unwrap() + 8;
    let mut edited = text.clone();
    edited.replace_range(
        first..first + 1,
        if &text[first..first + 1] == "0" {
            "1"
        } else {
            "0"
        },
    );
    fs::write(&bmap, edited).unwrap();
    let target = t.path().join("disk");
    blank_target(&target, 16 * MIB);
    let (code, err) = run_cli(&["flash", "--allow-file", "--yes", s(&img), s(&target)]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("own checksum does not match"), "{err}");
    assert_untouched(&target, 16 * MIB);
}

fn assert_untouched(target: &Path, size: u64) {
    let bytes = fs::read(target).unwrap();
    assert_eq!(bytes.len() as u64, size);
    assert!(
        bytes.iter().all(|&b| b == 0),
        "a refused flash wrote to the target"
    );
}

#[test]
fn bmap_written_by_hcikit_build_is_read_by_both_tools() {
    // `hcikit build` writes its own bmaps (`image::bmap::bmap_xml`); flash must take them, and
    // so must bmaptool, with the same result.
    let t = tempfile::tempdir().unwrap();
    let img = lab_image(t.path());
    let size = fs::metadata(&img).unwrap().len();
    let ranges = hcikit::image::output::file_ranges(&img).unwrap();
    let bmap = t.path().join("node.img.bmap");
    fs::write(&bmap, hcikit::image::bmap::bmap_xml(size, &ranges)).unwrap();

    let ours = t.path().join("ours");
    blank_target(&ours, size);
    flash_quiet(&opts(&img, &ours)).unwrap();
    let theirs = t.path().join("theirs");
    bmaptool_copy(&bmap, &img, &theirs);
    let image = fs::read(&img).unwrap();
    assert!(fs::read(&ours).unwrap() == image);
    assert!(fs::read(&theirs).unwrap() == image);
}
