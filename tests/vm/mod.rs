//! The VM test harness: real base, real images, QEMU guests on loopback-only switches.
//!
//! Included by the `vm*` integration tests with `#[path]` (they are `#[ignore]`d and run
//! by `just vm-test`).
//!
//! - [`qemu`]: the QEMU command line (pure) and a guard that owns a running guest.
//! - [`lab`]: guests on loopback-only switches, the injected checker, result lines.
//! - [`cluster`]: the VM tier's checks of a booted cluster (checker settings, quorum,
//!   result lines against the Plan), shared by images and installed disks.
//! - [`install`]: install-tier guests (USB stick, NVMe, SATA, USB disks) and helpers.
//! - [`installed`]: installed disks booted as a cluster without the installer.
//! - this module: shared fixtures (cache folder, base listing, plan).

#![allow(dead_code)]

pub mod cluster;
pub mod install;
pub mod installed;
pub mod lab;
pub mod qemu;

use std::path::{Path, PathBuf};

/// Where the VM tests keep the built base between runs: `HCIKIT_VM_CACHE`, else
/// `target/vm-cache` in the workspace.
/// The agent that goes into the images: `$HCIKIT_AGENT`, else the newer of the release
/// and debug builds (`just vm-test` and `just install-test` build release first).
pub fn agent_binary() -> anyhow::Result<PathBuf> {
    use anyhow::Context;
    if let Some(p) = std::env::var_os("HCIKIT_AGENT") {
        return Ok(PathBuf::from(p));
    }
    let target = hcikit_tests::workspace_root().join("target");
    ["release", "debug"]
        .iter()
        .map(|p| target.join(p).join("hcikit-firstboot"))
        .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
        .max()
        .map(|(_, p)| p)
        .context("no hcikit-firstboot binary: run `cargo build -p hcikit-firstboot` first")
}

pub fn vm_cache_dir() -> PathBuf {
    std::env::var_os("HCIKIT_VM_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| hcikit_tests::workspace_root().join("target/vm-cache"))
}

/// A folder for one run's disks and logs, kept after the run (printed by the tests).
pub fn run_dir(name: &str) -> PathBuf {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let d = hcikit_tests::workspace_root()
        .join("target/vm-runs")
        .join(format!("{name}-{stamp}"));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// After a passing run, deletes the run's disk images (GBs each) and keeps the logs;
/// `HCIKIT_VM_KEEP=1` keeps everything. A failing run keeps everything for inspection.
pub fn remove_disks(run: &std::path::Path) {
    if std::env::var_os("HCIKIT_VM_KEEP").is_some() {
        return;
    }
    let mut dirs = vec![run.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            let name = p
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            if p.is_dir() {
                dirs.push(p);
            } else if name.ends_with(".img") || name.ends_with(".raw") || name.ends_with(".img.zst")
            {
                let _ = std::fs::remove_file(&p);
            }
        }
    }
}

/// One entry of a tar listing.
#[derive(Debug, Clone)]
pub struct TarEntry {
    /// Path without the leading `./`.
    pub path: String,
    pub size: u64,
}

/// Lists a plain tar with the `tar` crate.
pub fn base_tar_listing(tar: &std::path::Path) -> Vec<TarEntry> {
    let mut a = tar::Archive::new(std::fs::File::open(tar).unwrap());
    a.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let path = e.path().unwrap().to_string_lossy().into_owned();
            TarEntry {
                path: path.trim_start_matches("./").to_string(),
                size: e.header().size().unwrap(),
            }
        })
        .collect()
}

/// A Plan that asks for the default Debian base (PVE 9's trixie, shared through the cache
/// with the scenarios) and nothing else of note (for building the base before the spec
/// loader is involved).
pub fn debian_plan() -> hcikit_firstboot::plan::Plan {
    let json = serde_json::json!({
        "format": 1,
        "cluster": {
            "name": "vmtest", "domain": "vm.test", "timezone": "UTC", "keyboard": "en-us",
            "pve-major": 9, "ntp-servers": [], "admin-ssh-keys": [], "root-password": null,
            "founder": "pve1", "join-order": []
        },
        "networks": [], "nodes": [],
        "corosync": { "cluster-name": "vmtest", "links": [], "config-version": 1 },
        "ceph": null,
        "datacenter": { "options": {} },
        "ha": { "mode": "groups", "groups": [], "resources": [] },
        "notifications": { "smtp": [], "matchers": [], "default-matcher-targets": [],
                           "report-target": null, "send-test": false },
        "realms": [],
        "firstboot": { "peer-timeout-secs": 600, "join-timeout-secs": 600,
                       "health-timeout-secs": 1800, "backoff-secs": 2, "max-backoff-secs": 60,
                       "ceph-install": "preinstalled" },
        "image": { "disk-size": 4294967296u64, "esp-size": 268435456, "base": "debian",
                   "base-file": null, "suite": "trixie", "extra-packages": [],
                   "kernel-cmdline": [], "boot-timeout-secs": 1 },
        "steps": [], "warnings": []
    });
    serde_json::from_value(json).expect("fixture plan")
}

/// Writes `text` as the spec file `name` into `run`, with a copy of the examples' secrets
/// beside it (mode 0600, as a user should keep them: hcikit warns otherwise). Returns the
/// spec's path.
pub fn write_spec(run: &Path, name: &str, text: &str) -> anyhow::Result<PathBuf> {
    let spec = run.join(name);
    std::fs::write(&spec, text)?;
    let secrets = hcikit_tests::workspace_root().join("examples/secrets");
    if secrets.is_dir() {
        std::fs::create_dir_all(run.join("secrets"))?;
        for e in std::fs::read_dir(&secrets)? {
            let e = e?;
            let to = run.join("secrets").join(e.file_name());
            std::fs::copy(e.path(), &to)?;
            std::fs::set_permissions(&to, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
        }
    }
    Ok(spec)
}
