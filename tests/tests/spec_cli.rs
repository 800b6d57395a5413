//! `hcikit validate` and `hcikit plan` from the outside: exit codes, output, and that bad
//! input writes nothing.
//!
//! In-process tests go through `hcikit_tests::run_cli`, exactly what `main` does; the
//! process tests run the built binary (`hcikit_tests::hcikit_bin`).

use hcikit_tests::{hcikit_bin, run_cli, workspace_root};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Every file below `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.insert(p.clone(), fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// A temp folder with a copy of the multi-error golden spec and its secrets.
fn bad_spec_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let src = workspace_root().join("tests/golden/spec/fail/multi-error.toml");
    let spec = dir.path().join("cluster.toml");
    fs::copy(src, &spec).unwrap();
    fs::create_dir(dir.path().join("secrets")).unwrap();
    fs::write(dir.path().join("secrets/smtp-password"), "pw\n").unwrap();
    (dir, spec)
}

fn lab_dir() -> (tempfile::TempDir, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("cluster.toml");
    fs::copy(workspace_root().join("examples/lab.toml"), &spec).unwrap();
    fs::create_dir(dir.path().join("secrets")).unwrap();
    let pw = dir.path().join("secrets/smtp-password");
    fs::copy(workspace_root().join("examples/secrets/smtp-password"), &pw).unwrap();
    fs::set_permissions(&pw, fs::Permissions::from_mode(0o600)).unwrap();
    (dir, spec)
}

#[test]
fn validate_bad_spec_exits_2_and_writes_nothing() {
    let (dir, spec) = bad_spec_dir();
    let before = snapshot(dir.path());
    assert_eq!(run_cli(&["validate", spec.to_str().unwrap()]).0, 2);
    assert_eq!(run_cli(&["plan", spec.to_str().unwrap()]).0, 2);
    assert_eq!(run_cli(&["plan", "--json", spec.to_str().unwrap()]).0, 2);
    assert_eq!(
        snapshot(dir.path()),
        before,
        "a failed validate/plan changed files"
    );
}

#[test]
fn validate_good_spec_exits_0() {
    let (_dir, spec) = lab_dir();
    assert_eq!(run_cli(&["validate", spec.to_str().unwrap()]).0, 0);
}

#[test]
fn missing_spec_file_is_bad_input() {
    assert_eq!(run_cli(&["validate", "/nonexistent/cluster.toml"]).0, 2);
    assert_eq!(run_cli(&["plan", "/nonexistent/cluster.toml"]).0, 2);
}

#[test]
fn load_error_lists_every_error() {
    let (_dir, spec) = bad_spec_dir();
    let err = hcikit::load(&spec).unwrap_err();
    assert_eq!(hcikit::error::exit_code(&err), 2);
    let text = format!("{err:#}");
    assert!(text.starts_with("8 errors in "), "{text}");
    let want = fs::read_to_string(workspace_root().join("tests/golden/spec/fail/multi-error.txt"))
        .unwrap();
    assert!(text.ends_with(want.trim_end()), "{text}");
}

#[test]
fn validate_report_counts_and_warnings() {
    let r =
        hcikit::commands::validate::check(&workspace_root().join("examples/minipc.toml")).unwrap();
    assert!(r.ok);
    assert_eq!((r.nodes, r.networks), (3, 1));
    let text = hcikit::commands::validate::human(&r);
    assert!(text.starts_with("ok: 3 nodes, 1 network\n"), "{text}");
    assert!(
        text.contains("warning: ceph.public-network: lan carries both Ceph traffic"),
        "{text}"
    );
}

#[test]
fn plan_view_shows_the_cluster_at_a_glance() {
    let (_dir, spec) = lab_dir();
    let l = hcikit::load(&spec).unwrap();
    let v = hcikit::commands::plan::human(&l.plan);
    for want in [
        "  pve2  2   10.2.21.67/24  10.2.22.67/24",
        "  link1  storage  10.2.22.66  10.2.22.67  10.2.22.68",
        "  pve1  yes  yes  yes  /dev/sdb, /dev/sdc",
        "  pool cephrdb01: rbd, 3/2 replicas, pg auto, autoscale on, storage",
        "  cephfs cephfs01: pools cephfs01_data (pg 128) + cephfs01_metadata, storage",
        "  migration: type=secure,network=10.2.22.0/24",
        "  group prefer-pve1: pve1:2,pve2:1,pve3, restricted, nofailback",
        // Node by node, each in its agent's order (firstboot/src/steps.rs).
        "   3. [pve1] pvecm create lab --link0 10.2.21.66 --link1 10.2.22.66",
        // PVE 9 (the example's version) has no HA group step on the founder; the founder
        // sets root@pam's address (root-email) before its notification steps.
        "  23. [pve2] pvecm add 10.2.21.66 --use_ssh 1 --link0 10.2.21.67 --link1 10.2.22.67",
    ] {
        assert!(v.contains(want), "missing {want:?} in\n{v}");
    }
    assert!(!v.contains("change-me-smtp-password"));
}

#[test]
fn binary_exit_codes_and_streams() {
    let (dir, spec) = bad_spec_dir();
    let before = snapshot(dir.path());
    let out = Command::new(hcikit_bin())
        .arg("validate")
        .arg(&spec)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("error: nodes[1].addresses.storage: 10.2.23.67 is not inside network storage (10.2.22.0/24)"), "{stderr}");
    assert!(stderr.contains("has 8 errors"), "{stderr}");
    assert!(out.stdout.is_empty());

    let out = Command::new(hcikit_bin())
        .args(["validate", "--json"])
        .arg(&spec)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["errors"].as_array().unwrap().len(), 8);
    assert_eq!(v["errors"][0]["key"], "cluster.name");
    assert_eq!(snapshot(dir.path()), before);

    let (_lab, good) = lab_dir();
    let out = Command::new(hcikit_bin())
        .arg("validate")
        .arg(&good)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "ok: 3 nodes, 2 networks\n"
    );
    let out = Command::new(hcikit_bin())
        .args(["plan", "--json"])
        .arg(&good)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let plan: hcikit_firstboot::plan::Plan = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan.nodes.len(), 3);
}
