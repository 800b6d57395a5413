//! What a failed build leaves behind, through the real binary: bad input writes nothing
//! (no seed, no output folder), a folder in the way of an output fails before anything
//! is replaced, and `hcikit flash` refuses images next to an interrupted commit.

mod image_support;

use hcikit_tests::{hcikit_bin, run};
use image_support::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

struct Case {
    fx: Fixture,
    spec: PathBuf,
    out: PathBuf,
}

fn case() -> Case {
    let fx = Fixture::new();
    let ex = hcikit_tests::workspace_root().join("examples");
    let mut spec = std::fs::read_to_string(ex.join("minipc.toml")).unwrap();
    spec.push_str("\n[image]\ndisk-size = \"4608M\"\nesp-size = \"256M\"\n");
    let spec_path = fx.dir.path().join("minipc.toml");
    std::fs::write(&spec_path, spec).unwrap();
    Case {
        out: fx.dir.path().join("out"),
        spec: spec_path,
        fx,
    }
}

impl Case {
    fn build(&self) -> Command {
        self.build_with(&self.fx.base)
    }
    fn build_with(&self, base: &Path) -> Command {
        let mut c = Command::new(hcikit_bin());
        c.arg("build")
            .arg(&self.spec)
            .arg("-o")
            .arg(&self.out)
            .arg("--base")
            .arg(base)
            .arg("--cache")
            .arg(self.fx.dir.path().join("cache"))
            .arg("--agent")
            .arg(&self.fx.agent)
            .env("HCIKIT_OVERLAYS", &self.fx.overlays)
            .env("SOURCE_DATE_EPOCH", EPOCH.to_string());
        c
    }
    fn seed(&self) -> PathBuf {
        self.fx.dir.path().join("minipc.secrets-seed")
    }
}

/// Every entry of a folder (hidden ones too) with its identity: kind, inode, size and
/// modification time. A replaced or rewritten file changes at least one of them.
fn snapshot(dir: &Path) -> BTreeMap<String, (bool, u64, u64, i64, i64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let m = std::fs::symlink_metadata(e.path()).unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                (m.is_dir(), m.ino(), m.len(), m.mtime(), m.mtime_nsec()),
            )
        })
        .collect()
}

#[test]
fn bad_input_writes_no_seed_and_no_output_folder() {
    let c = case();
    let (code, _, err) = run(c.build().args(["--node", "nope"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--node nope"), "{err}");
    assert!(!c.seed().exists(), "seed created for a refused build");
    assert!(!c.out.exists(), "output folder created for a refused build");

    // A template override that fails to render.
    let templates = c.fx.dir.path().join("templates/etc");
    std::fs::create_dir_all(&templates).unwrap();
    std::fs::write(templates.join("hosts.hbs"), "{{plan.no_such_value}}\n").unwrap();
    let (code, _, err) = run(c
        .build()
        .arg("--templates")
        .arg(c.fx.dir.path().join("templates")));
    assert_eq!(code, 2, "{err}");
    assert!(!c.seed().exists(), "seed created for a refused build");
    assert!(!c.out.exists(), "output folder created for a refused build");

    // A base that is not an archive: found late, still nothing left.
    let junk = c.fx.dir.path().join("junk.tar");
    std::fs::write(&junk, vec![0x5a; 20_000]).unwrap();
    let (code, _, err) = run(&mut c.build_with(&junk));
    assert_eq!(code, 2, "{err}");
    assert!(!c.seed().exists(), "seed created for a failed build");
    assert!(!c.out.exists(), "output folder left by a failed build");
}

#[test]
fn a_folder_in_the_way_replaces_nothing_and_the_next_build_recovers() {
    let c = case();
    // zst images: checksums of small files, so the five builds stay quick.
    let build = || {
        let mut b = c.build();
        b.args(["--format", "zst", "--node", "mini1", "--node", "mini2"]);
        b
    };
    let (code, _, err) = run(&mut build());
    assert_eq!(code, 0, "{err}");
    for blocker in ["mini2.img.zst", "SHA256SUMS", "manifest.json"] {
        std::fs::remove_file(c.out.join(blocker)).unwrap();
        std::fs::create_dir_all(c.out.join(blocker).join("keep")).unwrap();
        let before = snapshot(&c.out);
        // Another spec, so every image would change.
        let (code, _, err) = run(build().env("SOURCE_DATE_EPOCH", (EPOCH + 1).to_string()));
        assert_eq!(code, 2, "{blocker}: {err}");
        assert!(err.contains(blocker), "{err}");
        assert_eq!(snapshot(&c.out), before, "{blocker}: the folder changed");
        std::fs::remove_dir_all(c.out.join(blocker)).unwrap();
        let (code, _, err) = run(&mut build());
        assert_eq!(code, 0, "{err}");
        let sums = tool(
            Command::new("sha256sum")
                .arg("-c")
                .arg("SHA256SUMS")
                .current_dir(&c.out),
        );
        assert!(sums.contains("mini1.img.zst: OK"), "{sums}");
    }
}

#[test]
fn flash_refuses_images_beside_an_interrupted_commit() {
    let c = case();
    let (code, _, err) = run(c.build().args(["--format", "zst", "--node", "mini1"]));
    assert_eq!(code, 0, "{err}");
    // What a build killed while renaming leaves (its process is gone).
    std::fs::write(
        c.out.join(".hcikit-commit-4000000000"),
        "mini1.img.zst\t1\nSHA256SUMS\t1\n",
    )
    .unwrap();
    let target = c.fx.dir.path().join("disk");
    std::fs::File::create(&target)
        .unwrap()
        .set_len(4608 << 20)
        .unwrap();
    let (code, _, err) = run(Command::new(hcikit_bin())
        .args(["flash", "--yes", "--allow-file"])
        .arg(c.out.join("mini1.img.zst"))
        .arg(&target));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("interrupted"), "{err}");
    // The next build rolls the interrupted commit back and removes the journal.
    let (code, _, err) = run(c.build().args(["--format", "zst", "--node", "mini1"]));
    assert_eq!(code, 0, "{err}");
    assert!(!c.out.join(".hcikit-commit-4000000000").exists());
}

#[test]
fn outputs_that_are_not_folders_are_named_as_such() {
    let c = case();
    let file = c.fx.dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let (code, _, err) = run(Command::new(hcikit_bin())
        .arg("build")
        .arg(&c.spec)
        .arg("-o")
        .arg(&file)
        .arg("--base")
        .arg(&c.fx.base)
        .arg("--agent")
        .arg(&c.fx.agent)
        .env("HCIKIT_OVERLAYS", &c.fx.overlays));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("exists and is not a folder"), "{err}");
    assert!(!c.seed().exists());

    let folder = c.fx.dir.path().join("real");
    std::fs::create_dir(&folder).unwrap();
    let link = c.fx.dir.path().join("link");
    std::os::unix::fs::symlink(&folder, &link).unwrap();
    let (code, _, err) = run(Command::new(hcikit_bin())
        .arg("render")
        .arg(&c.spec)
        .arg("-o")
        .arg(&link));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is a symbolic link"), "{err}");
}
