//! `hcikit build` / `hcikit inspect` through the real binary: exit codes, messages, no
//! half-written outputs, the secrets seed, and the minipc example end to end.

mod image_support;

use hcikit_tests::{hcikit_bin, run};
use image_support::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

struct Case {
    fx: Fixture,
    spec: PathBuf,
    out: PathBuf,
    cache: PathBuf,
}

/// The minipc example with a small image, in a temp folder.
fn case() -> Case {
    let fx = Fixture::new();
    let ex = hcikit_tests::workspace_root().join("examples");
    let mut spec = std::fs::read_to_string(ex.join("minipc.toml")).unwrap();
    spec.push_str("\n[image]\ndisk-size = \"4608M\"\nesp-size = \"256M\"\nkernel-cmdline = [\"console=ttyS0\"]\n");
    let spec_path = fx.dir.path().join("minipc.toml");
    std::fs::write(&spec_path, spec).unwrap();
    let secrets = fx.dir.path().join("secrets");
    std::fs::create_dir_all(&secrets).unwrap();
    for e in std::fs::read_dir(ex.join("secrets")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), secrets.join(e.file_name())).unwrap();
    }
    Case {
        out: fx.dir.path().join("out"),
        cache: fx.dir.path().join("cache"),
        spec: spec_path,
        fx,
    }
}

impl Case {
    fn cmd(&self) -> Command {
        self.cmd_with(&self.out, &self.fx.agent)
    }
    fn cmd_with(&self, out: &Path, agent: &Path) -> Command {
        let mut c = Command::new(hcikit_bin());
        c.arg("build")
            .arg(&self.spec)
            .arg("-o")
            .arg(out)
            .arg("--cache")
            .arg(&self.cache)
            .arg("--agent")
            .arg(agent)
            .env("HCIKIT_OVERLAYS", &self.fx.overlays)
            .env("SOURCE_DATE_EPOCH", EPOCH.to_string());
        c
    }
}

#[test]
fn builds_the_minipc_example_and_inspects_it() {
    let c = case();
    let (code, stdout, stderr) = run(c
        .cmd()
        .args(["--base"])
        .arg(&c.fx.base)
        .args(["--format", "zst", "--node", "mini2"]));
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("mini2"), "{stdout}");
    for f in [
        "mini2.img.zst",
        "mini2.img.bmap",
        "SHA256SUMS",
        "manifest.json",
    ] {
        assert!(c.out.join(f).is_file(), "{f} missing");
    }
    assert!(
        !c.out.join("mini1.img.zst").exists(),
        "--node builds only that node"
    );
    // The seed is created next to the spec, private.
    let seed = c.fx.dir.path().join("minipc.secrets-seed");
    assert_eq!(
        std::fs::metadata(&seed).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let seed_text = std::fs::read_to_string(&seed).unwrap();
    assert!(!stdout.contains(seed_text.trim()) && !stderr.contains(seed_text.trim()));

    let (code, json, err) = run(Command::new(hcikit_bin())
        .arg("inspect")
        .arg(c.out.join("mini2.img.zst"))
        .arg("--json"));
    assert_eq!(code, 0, "{err}");
    let r: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(r["node"], "mini2");
    assert_eq!(r["plan"]["cluster"], "minipc");
    assert_eq!(r["sha256sums-match"], true);
    assert_eq!(r["partitions"][1]["name"], "root");
    let secrets: Vec<&str> = r["node-files"][0]["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert!(
        secrets.contains(&"/etc/hcikit/secrets/root-password-hash"),
        "{secrets:?}"
    );
    let (code, text, _) = run(Command::new(hcikit_bin())
        .arg("inspect")
        .arg(c.out.join("mini2.img.zst")));
    assert_eq!(code, 0);
    assert!(text.contains("node      mini2"), "{text}");
    for shown in [&json, &text] {
        assert!(
            !shown.contains("$6$hcikitdemo"),
            "a secret value was printed"
        );
        assert!(!shown.contains("PRIVATE KEY"), "a private key was printed");
    }

    // Same inputs again: the root comes from the cache and the bytes are identical.
    let first = std::fs::read(c.out.join("mini2.img.zst")).unwrap();
    let (code, stdout, stderr) = run(c
        .cmd()
        .args(["--base"])
        .arg(&c.fx.base)
        .args(["--format", "zst", "--node", "mini2"]));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("from cache"), "{stdout}");
    assert!(std::fs::read(c.out.join("mini2.img.zst")).unwrap() == first);
}

fn expect_failure(c: &Case, cmd: &mut Command, code: i32, needle: &str) {
    let (got, stdout, stderr) = run(cmd);
    assert_eq!(got, code, "stdout: {stdout}\nstderr: {stderr}");
    assert!(stderr.contains(needle), "expected {needle:?} in: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_no_outputs(&c.out);
}

#[test]
fn truncated_and_corrupt_bases_are_bad_input() {
    let c = case();
    let zst = c.fx.dir.path().join("base.tar.zst");
    let full = zstd::encode_all(&tiny_rootfs_tar(true)[..], 3).unwrap();
    std::fs::write(&zst, &full[..full.len() / 2]).unwrap();
    expect_failure(
        &c,
        c.cmd().arg("--base").arg(&zst),
        2,
        "corrupt or truncated",
    );

    let tar = c.fx.dir.path().join("cut.tar");
    let t = tiny_rootfs_tar(true);
    std::fs::write(&tar, &t[..t.len() - 300_000]).unwrap();
    expect_failure(
        &c,
        c.cmd().arg("--base").arg(&tar),
        2,
        "corrupt or truncated",
    );

    let junk = c.fx.dir.path().join("junk.tar");
    std::fs::write(&junk, vec![0x5a; 10_000]).unwrap();
    expect_failure(
        &c,
        c.cmd().arg("--base").arg(&junk),
        2,
        "corrupt or truncated",
    );

    let gz = c.fx.dir.path().join("junk.tar.gz");
    std::fs::write(&gz, b"not gzip at all").unwrap();
    expect_failure(
        &c,
        c.cmd().arg("--base").arg(&gz),
        2,
        "corrupt or truncated",
    );
}

#[test]
fn a_base_without_a_kernel_is_bad_input() {
    let c = case();
    let nok = c.fx.dir.path().join("nokernel.tar");
    std::fs::write(&nok, tiny_rootfs_tar(false)).unwrap();
    expect_failure(&c, c.cmd().arg("--base").arg(&nok), 2, "base has no kernel");
}

#[test]
fn build_prints_the_spec_warnings_like_validate() {
    let c = case();
    let (code, validate_out, stderr) = run(Command::new(hcikit_bin()).arg("validate").arg(&c.spec));
    assert_eq!(code, 0, "{stderr}");
    let warnings: Vec<&str> = validate_out
        .lines()
        .filter(|l| l.starts_with("warning: "))
        .collect();
    assert!(
        !warnings.is_empty(),
        "the minipc example is expected to carry warnings: {validate_out}"
    );

    // A base without a kernel stops the build right after loading the spec.
    let nok = c.fx.dir.path().join("nokernel.tar");
    std::fs::write(&nok, tiny_rootfs_tar(false)).unwrap();
    let (code, _, stderr) = run(c.cmd().arg("--base").arg(&nok));
    assert_eq!(code, 2, "{stderr}");
    let printed: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("warning: "))
        .collect();
    assert_eq!(printed, warnings, "{stderr}");
}

#[test]
fn an_unwritable_output_folder_is_bad_input() {
    let c = case();
    let file = c.fx.dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let mut cmd = c.cmd_with(&file.join("out"), &c.fx.agent);
    cmd.arg("--base").arg(&c.fx.base);
    let (code, _, stderr) = run(&mut cmd);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("not writable"), "{stderr}");
}

#[test]
fn a_second_build_into_the_same_folder_fails_while_one_runs() {
    let c = case();
    std::fs::create_dir_all(&c.out).unwrap();
    // What a running build holds for its whole length.
    let running = hcikit::image::lock::BuildLock::acquire(&c.out).unwrap();
    let mut cmd = c.cmd();
    cmd.arg("--base").arg(&c.fx.base);
    let (code, stdout, stderr) = run(&mut cmd);
    assert_eq!(code, 1, "stdout: {stdout}\nstderr: {stderr}");
    assert!(
        stderr.contains(&format!(
            "another hcikit build is writing into {}",
            c.out.display()
        )),
        "{stderr}"
    );
    // It wrote nothing and left the running build's lock alone.
    let names: Vec<String> = std::fs::read_dir(&c.out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, [hcikit::image::lock::LOCK_FILE]);
    drop(running);
    assert_no_outputs(&c.out);
}

#[test]
fn missing_mke2fs_names_the_package() {
    let c = case();
    let mut cmd = c.cmd();
    cmd.arg("--base")
        .arg(&c.fx.base)
        .env("PATH", c.fx.dir.path().join("empty-path"));
    expect_failure(&c, &mut cmd, 1, "e2fsprogs");
}

#[test]
fn a_missing_agent_is_reported() {
    let c = case();
    let mut cmd = c.cmd_with(&c.out, &c.fx.dir.path().join("no-agent"));
    cmd.arg("--base").arg(&c.fx.base);
    expect_failure(&c, &mut cmd, 2, "no-agent");
}

#[test]
fn an_open_secrets_seed_is_refused() {
    let c = case();
    let seed = c.fx.dir.path().join("minipc.secrets-seed");
    std::fs::write(&seed, format!("{}\n", "ab".repeat(32))).unwrap();
    std::fs::set_permissions(&seed, std::fs::Permissions::from_mode(0o644)).unwrap();
    expect_failure(&c, c.cmd().arg("--base").arg(&c.fx.base), 2, "chmod 600");
    assert_eq!(
        std::fs::read_to_string(&seed).unwrap(),
        format!("{}\n", "ab".repeat(32)),
        "never overwritten"
    );
}

#[test]
fn the_staging_fallback_for_old_mke2fs_keeps_modes_owners_and_links() {
    let c = case();
    let mut cmd = c.cmd();
    cmd.arg("--base")
        .arg(&c.fx.base)
        .args(["--node", "mini1"])
        .env("HCIKIT_FORCE_STAGING", "1");
    let (code, stdout, stderr) = run(&mut cmd);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let img = c.out.join("mini1.img");
    let r = hcikit::media::inspect::inspect(&img).unwrap();
    let root = &r.partitions[1];
    let fs = c.fx.dir.path().join("root.ext4");
    extract(&img, root.start, root.size, &fs);
    tool(Command::new("e2fsck").arg("-fn").arg(&fs));
    let stat = |p: &str| {
        tool(
            Command::new("debugfs")
                .arg("-R")
                .arg(format!("stat {p}"))
                .arg(&fs),
        )
    };
    assert!(stat("/usr/bin/sudo").contains("Mode:  04755"));
    // Owners survive only when the build runs as root (CI does).
    if nix::unistd::geteuid().is_root() {
        assert!(stat("/home/user/notes").contains("User:  1000"));
    }
    assert!(stat("/usr/bin/a-sudo-link").contains("Links: 2"));
    assert!(
        stat("/etc/systemd/system/sysinit.target.wants/hcikit-apply.service")
            .contains("Type: symlink")
    );
}

#[test]
fn xz_bases_are_read_and_a_truncated_one_is_bad_input() {
    let c = case();
    let xz = c.fx.dir.path().join("base.tar.xz");
    let st = Command::new("xz")
        .arg("-k")
        .arg("-T1")
        .arg(&c.fx.base)
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::rename(c.fx.dir.path().join("base.tar.xz"), &xz).unwrap();
    let (code, stdout, stderr) = run(c
        .cmd()
        .arg("--base")
        .arg(&xz)
        .args(["--node", "mini3", "--format", "zst"]));
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(c.out.join("mini3.img.zst").is_file());
    std::fs::remove_dir_all(&c.out).unwrap();
    let bytes = std::fs::read(&xz).unwrap();
    let cut = c.fx.dir.path().join("cut.tar.xz");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    expect_failure(
        &c,
        c.cmd().arg("--base").arg(&cut),
        2,
        "corrupt or truncated",
    );
}

#[test]
fn proxmox_without_repository_access_names_the_mirror_option() {
    let c = case();
    // No key and no mirror: the error says what a Proxmox base needs, mirror included.
    let mut cmd = c.cmd();
    cmd.args(["--base", "proxmox"])
        .env_remove("HCIKIT_PROXMOX_KEY")
        .env_remove("HCIKIT_PROXMOX_KEY_SHA256");
    expect_failure(&c, &mut cmd, 2, "--mirror proxmox=URI");
    // A mirror's own key, but the mirror does not answer (a closed port on 127.0.0.1).
    let key = c.fx.dir.path().join("mirror-key.gpg");
    std::fs::write(&key, b"a mirror's signing key").unwrap();
    let sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(b"a mirror's signing key"))
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = c.cmd();
    cmd.args(["--base", "proxmox", "--proxmox-key"])
        .arg(&key)
        .args(["--proxmox-key-sha256", &sha])
        .args(["--mirror", &format!("proxmox=http://127.0.0.1:{port}/pve")])
        .args(["--mirror", &format!("ceph=http://127.0.0.1:{port}/ceph")]);
    expect_failure(
        &c,
        &mut cmd,
        2,
        &format!("cannot reach the repository http://127.0.0.1:{port}/pve"),
    );
    assert!(!c.cache.exists(), "cache folder written for a refused base");
    assert!(
        !c.fx.dir.path().join("minipc.secrets-seed").exists(),
        "secrets seed written for a refused base"
    );
    // A malformed --mirror is bad input too.
    let mut cmd = c.cmd();
    cmd.args(["--mirror", "proxmox"]);
    expect_failure(&c, &mut cmd, 2, "expected KIND=URI");
}
