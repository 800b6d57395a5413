//! The `proxmox` base recipe end to end, without Proxmox's servers: a local signed apt
//! repository of stand-in packages under Proxmox's names (`tests/apt_repo/`), served as
//! `file://` mirrors, and the whole recipe through real mmdebstrap against it — the key
//! check (a wrong key refused before anything runs, an unvouched signature refused by
//! apt), the deb822 sources, the postfix preseed, the hooks, the kernel chosen through
//! `proxmox-default-kernel`, the removal of pve-manager's enterprise file, the Ceph
//! packages `pveceph install` would add. Then the base boots in QEMU.
//!
//! Slow tier (a few minutes; needs root, mmdebstrap, gnupg, apt-utils, the host's Debian
//! archive and QEMU): `just apt-test`.

#[path = "../apt_repo/mod.rs"]
mod apt_repo;
#[path = "../vm/mod.rs"]
mod vm;

use anyhow::{Context, Result};
use apt_repo::{TestKey, CEPH_STAND_INS, PVE_STAND_INS};
use hcikit::image::base::{BaseOptions, Mirrors};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use vm::lab::{self, GuestSpec, Lab};
use vm::qemu::{self, Boot};

const SUITE: &str = "trixie";

#[test]
#[ignore = "slow: builds a Proxmox base with mmdebstrap from a local repository and boots it"]
fn proxmox_recipe_against_a_local_signed_repository() {
    run().unwrap();
}

fn run() -> Result<()> {
    let t0 = Instant::now();
    let run = vm::run_dir("apt-repo");
    println!("logs, repository and base: {}", run.display());

    // The repositories, signed with a throwaway key; a second key signs nothing.
    let t = Instant::now();
    let fixture = run.join("fixture");
    let key = TestKey::generate(
        &fixture.join("key"),
        "hcikit test fixture repository <fixture@hcikit.invalid>",
    )?;
    let stranger = TestKey::generate(
        &fixture.join("stranger"),
        "hcikit test fixture, signs nothing <stranger@hcikit.invalid>",
    )?;
    let pve_repo = fixture.join("mirror/pve");
    let ceph_repo = fixture.join("mirror/ceph-squid");
    let work = fixture.join("work");
    apt_repo::build_repository(
        &pve_repo,
        &work,
        SUITE,
        "pve-no-subscription",
        PVE_STAND_INS,
        &key,
    )?;
    apt_repo::build_repository(
        &ceph_repo,
        &work,
        SUITE,
        "no-subscription",
        CEPH_STAND_INS,
        &key,
    )?;
    println!(
        "signed repositories ({} stand-ins, key {}): {}",
        PVE_STAND_INS.len() + CEPH_STAND_INS.len(),
        key.fingerprint,
        lab::secs(t)
    );

    let plan = pve9_plan()?;
    let mirrors = Mirrors::default()
        .with_flags(&[
            format!("proxmox=file://{}", pve_repo.display()),
            format!("ceph=file://{}", ceph_repo.display()),
        ])
        .map_err(|e| anyhow::anyhow!("{e:#}"))?;
    let opts = |key: &Path, vouched: &Path| BaseOptions {
        proxmox_key: Some(key.to_path_buf()),
        proxmox_key_sha256: Some(sha256_of(vouched)),
        mirrors: mirrors.clone(),
        etc_apt: None,
    };
    let cache = run.join("cache");

    // 1. Refused before anything is written: not Proxmox's key, a key other than the
    // one vouched for, a repository that is not there.
    let not_proxmox = BaseOptions {
        proxmox_key_sha256: None,
        ..opts(&key.public, &key.public)
    };
    expect_input_error(
        &plan,
        &cache,
        &not_proxmox,
        "is not Proxmox's trixie archive key (proxmox-archive-keyring-trixie.gpg, as published)",
    )?;
    expect_input_error(
        &plan,
        &cache,
        &opts(&stranger.public, &key.public),
        "is not the key given with --proxmox-key-sha256",
    )?;
    let mut gone = opts(&key.public, &key.public);
    gone.mirrors = gone
        .mirrors
        .with_flags(&[format!("proxmox=file://{}/nothing", fixture.display())])
        .map_err(|e| anyhow::anyhow!("{e:#}"))?;
    expect_input_error(
        &plan,
        &cache,
        &gone,
        "--mirror proxmox=URI --mirror ceph=URI",
    )?;

    // 2. A key that passes the checksum but did not sign the repository: apt refuses the
    // repository, the build fails, and nothing is left in the cache.
    let t = Instant::now();
    let err = hcikit::image::base::ensure_base_with(
        &plan,
        &cache,
        &opts(&stranger.public, &stranger.public),
    )
    .expect_err("a base from a repository its key did not sign");
    let msg = format!("{err:#}");
    assert_eq!(hcikit::error::exit_code(&err), 1, "{msg}");
    assert!(
        msg.contains("NO_PUBKEY") || msg.contains("not signed") || msg.contains("signature"),
        "apt's signature error expected, got: {msg}"
    );
    assert_eq!(
        leftovers(&cache),
        Vec::<String>::new(),
        "after a failed build"
    );
    println!(
        "unsigned-for-this-key repository refused by apt: {}",
        lab::secs(t)
    );

    // 3. The real run.
    let t = Instant::now();
    let tar = hcikit::image::base::ensure_base_with(&plan, &cache, &opts(&key.public, &key.public))
        .map_err(|e| anyhow::anyhow!("{e:#}"))?;
    println!(
        "proxmox base (trixie, stand-ins): {} MB in {}",
        std::fs::metadata(&tar)?.len() / 1_000_000,
        lab::secs(t)
    );
    let failures = check_base(&tar, &key, &pve_repo, &ceph_repo)?;
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // 4. It boots.
    boot(&tar, &run)?;
    println!("whole apt repository test: {}", lab::secs(t0));
    vm::remove_disks(&run);
    Ok(())
}

/// The minipc example as a PVE 9 cluster on the `proxmox` base with Ceph squid from the
/// no-subscription repository.
fn pve9_plan() -> Result<hcikit_firstboot::plan::Plan> {
    let spec = hcikit_tests::workspace_root().join("examples/minipc.toml");
    let mut plan = hcikit::load(&spec)
        .map_err(|e| anyhow::anyhow!("{e:#}"))?
        .plan;
    plan.cluster.pve_major = 9;
    plan.image.suite = SUITE.into();
    plan.image.base = hcikit_firstboot::plan::BaseKind::Proxmox;
    let ceph = plan.ceph.as_mut().context("minipc has a Ceph section")?;
    ceph.release = "squid".into();
    ceph.repository = "no-subscription".into();
    Ok(plan)
}

fn sha256_of(p: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(p).unwrap()))
}

fn expect_input_error(
    plan: &hcikit_firstboot::plan::Plan,
    cache: &Path,
    opts: &BaseOptions,
    want: &str,
) -> Result<()> {
    let err = hcikit::image::base::ensure_base_with(plan, cache, opts)
        .expect_err("a base that should be refused");
    let msg = format!("{err:#}");
    assert_eq!(hcikit::error::exit_code(&err), 2, "{msg}");
    assert!(msg.contains(want), "{want:?} not in: {msg}");
    assert!(
        !cache.exists(),
        "{} written for a refused base",
        cache.display()
    );
    println!("refused: {msg}");
    Ok(())
}

/// Files in the cache folder other than finished bases.
fn leftovers(cache: &Path) -> Vec<String> {
    std::fs::read_dir(cache)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// Reads one file out of the base tar.
fn tar_file(tar: &Path, path: &str) -> Option<Vec<u8>> {
    let mut a = tar::Archive::new(std::fs::File::open(tar).ok()?);
    for e in a.entries().ok()? {
        let mut e = e.ok()?;
        let p = e.path().ok()?.to_string_lossy().into_owned();
        if p.trim_start_matches("./") == path {
            let mut v = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut v).ok()?;
            return Some(v);
        }
    }
    None
}

/// `Package: … Version: …` of every installed package in `var/lib/dpkg/status`.
fn installed(status: &str) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    for stanza in status.split("\n\n") {
        let field = |k: &str| {
            stanza
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{k}: ")))
                .map(str::to_string)
        };
        if field("Status").as_deref() == Some("install ok installed") {
            if let (Some(p), Some(v)) = (field("Package"), field("Version")) {
                out.insert(p, v);
            }
        }
    }
    out
}

fn check_base(tar: &Path, key: &TestKey, pve: &Path, ceph: &Path) -> Result<Vec<String>> {
    let mut f = Vec::new();
    let entries = vm::base_tar_listing(tar);
    let has = |p: &str| entries.iter().any(|e| e.path == p);
    let text = |p: &str| tar_file(tar, p).map(|b| String::from_utf8_lossy(&b).into_owned());

    // Every stand-in installed at its fixture version, by the recipe's own package list
    // (proxmox-ve and the Ceph set) and their dependencies.
    let status = text("var/lib/dpkg/status").context("no dpkg status in the base")?;
    let pkgs = installed(&status);
    for s in PVE_STAND_INS.iter().chain(CEPH_STAND_INS) {
        match pkgs.get(s.name) {
            Some(v) if v == s.version => {}
            other => f.push(format!("{} {}: installed {other:?}", s.name, s.version)),
        }
        if !has(&apt_repo::marker(s.name)) {
            f.push(format!("{}: marker file missing", s.name));
        }
    }
    // Real Debian packages the recipe asks for or the stand-ins depend on.
    for p in [
        "postfix",
        "open-iscsi",
        "chrony",
        "nvme-cli",
        "gdisk",
        "ifupdown2",
        "corosync",
        "systemd-boot-efi",
        "systemd-sysv",
    ] {
        if !pkgs.contains_key(p) {
            f.push(format!("{p} not installed"));
        }
    }
    if pkgs.contains_key("os-prober") {
        f.push("os-prober installed".into());
    }
    // The kernel came through proxmox-default-kernel → proxmox-kernel-6.14 →
    // linux-image-amd64 (the stand-in's shortcut to a bootable kernel).
    if !entries.iter().any(|e| e.path.starts_with("boot/vmlinuz-")) {
        f.push("no kernel in /boot".into());
    }

    // The key, byte for byte, where Signed-By points.
    if tar_file(tar, "usr/share/keyrings/proxmox-archive-keyring.gpg")
        != Some(std::fs::read(&key.public)?)
    {
        f.push("usr/share/keyrings/proxmox-archive-keyring.gpg is not the repository key".into());
    }
    let stanza = |uri: &Path, comp: &str| {
        format!(
            "Types: deb\nURIs: file://{}\nSuites: trixie\nComponents: {comp}\n\
             Signed-By: /usr/share/keyrings/proxmox-archive-keyring.gpg\n",
            uri.display()
        )
    };
    for (file, want) in [
        (
            "etc/apt/sources.list.d/proxmox.sources",
            stanza(pve, "pve-no-subscription"),
        ),
        (
            "etc/apt/sources.list.d/ceph.sources",
            stanza(ceph, "no-subscription"),
        ),
    ] {
        if text(file).as_deref() != Some(want.as_str()) {
            f.push(format!("{file}: {:?}, want {want:?}", text(file)));
        }
    }
    match text("etc/apt/sources.list.d/debian.sources") {
        Some(t) if t.contains("Suites: trixie trixie-updates\n") => {}
        other => f.push(format!("debian.sources: {other:?}")),
    }
    let apt_lists: Vec<&str> = entries
        .iter()
        .map(|e| e.path.as_str())
        .filter(|p| p.starts_with("etc/apt/sources.list.d/") && p.len() > 23)
        .collect();
    if apt_lists
        != [
            "etc/apt/sources.list.d/ceph.sources",
            "etc/apt/sources.list.d/debian.sources",
            "etc/apt/sources.list.d/proxmox.sources",
        ]
    {
        f.push(format!("apt sources files: {apt_lists:?}"));
    }
    // pve-manager's enterprise file was installed (dpkg lists it) and then removed.
    let listed = text("var/lib/dpkg/info/pve-manager.list").unwrap_or_default();
    if !listed.contains("/etc/apt/sources.list.d/pve-enterprise.sources") {
        f.push("pve-manager did not ship pve-enterprise.sources".into());
    }
    if has("etc/apt/sources.list.d/pve-enterprise.sources") {
        f.push("pve-enterprise.sources left in the base".into());
    }

    // postfix was configured from the preseed: local delivery only.
    let debconf = text("var/cache/debconf/config.dat").unwrap_or_default();
    if !debconf.contains(
        "Name: postfix/main_mailer_type\nTemplate: postfix/main_mailer_type\nValue: Local only\n",
    ) {
        f.push("postfix/main_mailer_type is not \"Local only\" in debconf".into());
    }
    match text("etc/postfix/main.cf") {
        Some(t) if t.contains("inet_interfaces = loopback-only") => {}
        other => f.push(format!("postfix main.cf: {other:?}")),
    }

    // The recipe's own hooks, as in the debian flavour.
    for p in [
        "etc/initramfs-tools/conf.d/hcikit",
        "usr/share/initramfs-tools/modules.d/hcikit",
        "etc/systemd/system/networking.service.d/hcikit.conf",
    ] {
        if !has(p) {
            f.push(format!("{p} missing"));
        }
    }
    if entries
        .iter()
        .any(|e| e.path.starts_with("etc/ssh/ssh_host_"))
        || has("etc/hostname")
    {
        f.push("build-host identity left in the base".into());
    }
    Ok(f)
}

/// Boots the base (direct kernel boot, one NIC) with the VM checker and waits for it.
fn boot(tar: &Path, run: &Path) -> Result<()> {
    let t = Instant::now();
    let (kernel, initrd) = lab::kernel_from_base(tar, run)?;
    let root: PathBuf = run.join("root.img");
    qemu::tool(
        "mke2fs",
        &[
            "-q",
            "-t",
            "ext4",
            "-L",
            "root",
            "-d",
            &tar.display().to_string(),
            &root.display().to_string(),
            "3G",
        ],
        "e2fsprogs (>= 1.47.1, for -d with a tar)",
    )?;
    lab::inject_checker(&root.display().to_string(), run)?;
    let disks = lab::guest_disks(root, run, "pve", "1G")?;
    let spec = GuestSpec {
        name: "pve".into(),
        boot: Boot::Kernel {
            kernel,
            initrd,
            append: "root=LABEL=root rw console=ttyS0,115200 panic=-1".into(),
        },
        disks,
        install_disks: vec![],
        macs: vec!["52:54:00:99:01:21".into()],
        checker_env: format!(
            "MODE=proof\nNODE=pve\nNICS=\"ens18\"\nADDRS_0=10.99.1.21/24\nDISK_SERIALS=\"{} {}\"\n",
            lab::CLEAN_SERIAL,
            lab::SIGNED_SERIAL
        ),
    };
    let mut lab = Lab::start(run, 1, vec![spec])?;
    let result = lab.wait(0, Duration::from_secs(420), |l| {
        (l.starts_with("HCIKIT done") || l.starts_with("HCIKIT fail")).then_some(())
    });
    let lines = lab.lines(0);
    lab.shutdown();
    result?;
    println!("--- guest\n{}", lines.join("\n"));
    let fails: Vec<&String> = lines.iter().filter(|l| l.starts_with("fail")).collect();
    assert!(fails.is_empty(), "checker failures: {fails:?}");
    assert!(
        lines.iter().any(|l| l == "nic ens18 mac=52:54:00:99:01:21"),
        "ens18 not seen"
    );
    println!("booted to the checker: {}", lab::secs(t));
    Ok(())
}
