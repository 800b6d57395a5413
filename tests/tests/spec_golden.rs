//! Golden tests for the spec loader, in the style of pve-installer's parse-answer tests.
//!
//! - `tests/golden/spec/ok/<case>.toml` must load; its Plan as pretty JSON must equal
//!   `<case>.json`. The examples (`examples/*.toml`) are ok cases too, with their JSON in
//!   `tests/golden/spec/ok/example-<name>.json`.
//! - `tests/golden/spec/fail/<case>.toml` must fail; every error line must equal
//!   `<case>.txt` exactly.
//!
//! `HCIKIT_BLESS=1 cargo test -p hcikit-tests --test spec_golden` rewrites the expected
//! files; review the diff before committing it.

use hcikit_tests::workspace_root;
use std::fs;
use std::path::{Path, PathBuf};

fn golden_dir() -> PathBuf {
    workspace_root().join("tests/golden/spec")
}

/// `*.toml` in `dir`, sorted.
fn cases(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    v.sort();
    v
}

/// Git does not keep 0600, and a world-readable secret file gives a warning that would
/// make the golden output depend on the checkout's umask.
fn private_secrets(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(rd) = fs::read_dir(dir.join("secrets")) else {
        return;
    };
    for e in rd {
        let p = e.unwrap().path();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
    }
}

fn check(expected: &Path, actual: &str) -> Option<String> {
    hcikit_tests::golden::check_file(expected, actual.as_bytes())
}

fn load_case(toml: &Path) -> Result<hcikit::Loaded, Vec<hcikit::Diagnostic>> {
    let text = fs::read_to_string(toml).unwrap();
    hcikit::load_str(&text, toml.parent().unwrap())
}

fn plan_json(loaded: &hcikit::Loaded) -> String {
    serde_json::to_string_pretty(&loaded.plan).unwrap() + "\n"
}

#[test]
fn ok_cases_resolve_to_their_plan() {
    let dir = golden_dir().join("ok");
    private_secrets(&dir);
    let mut failures = Vec::new();
    let mut n = 0;
    for toml in cases(&dir) {
        n += 1;
        match load_case(&toml) {
            Err(d) => failures.push(format!(
                "{} failed:\n{}",
                toml.display(),
                hcikit::spec::format_errors(&d)
            )),
            Ok(l) => {
                let json = plan_json(&l);
                for (id, value) in l.secrets.iter() {
                    let value = String::from_utf8_lossy(value);
                    if json.contains(value.as_ref()) {
                        failures.push(format!(
                            "{}: secret {id} leaked into the Plan",
                            toml.display()
                        ));
                    }
                }
                failures.extend(check(&toml.with_extension("json"), &json));
            }
        }
    }
    assert!(n >= 5, "expected at least 5 ok cases, found {n}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn examples_validate_and_match_their_plan() {
    let examples = workspace_root().join("examples");
    private_secrets(&examples);
    let mut failures = Vec::new();
    let list = cases(&examples);
    let names: Vec<String> = list
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.contains(&"lab".to_string()) && names.contains(&"minipc".to_string()),
        "{names:?}"
    );
    for toml in list {
        let name = toml.file_stem().unwrap().to_string_lossy().into_owned();
        match load_case(&toml) {
            Err(d) => failures.push(format!(
                "{} failed:\n{}",
                toml.display(),
                hcikit::spec::format_errors(&d)
            )),
            Ok(l) => failures.extend(check(
                &golden_dir().join(format!("ok/example-{name}.json")),
                &plan_json(&l),
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn fail_cases_report_their_exact_errors() {
    let dir = golden_dir().join("fail");
    private_secrets(&dir);
    let mut failures = Vec::new();
    let mut n = 0;
    for toml in cases(&dir) {
        n += 1;
        match load_case(&toml) {
            Ok(_) => failures.push(format!("{} loaded but must fail", toml.display())),
            Err(d) => {
                let text = hcikit::spec::format_errors(&d) + "\n";
                assert!(
                    text.trim().len() > 1,
                    "{} failed without an error line",
                    toml.display()
                );
                failures.extend(check(&toml.with_extension("txt"), &text));
            }
        }
    }
    assert!(n >= 30, "expected at least 30 failing specs, found {n}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every error of the multi-error spec comes out in one run, not just the first.
#[test]
fn all_errors_are_reported_at_once() {
    let toml = golden_dir().join("fail/multi-error.toml");
    let d = load_case(&toml).expect_err("multi-error.toml must fail");
    let keys: Vec<&str> = d
        .iter()
        .filter(|d| d.is_error())
        .map(|d| d.key.as_str())
        .collect();
    for want in [
        "cluster.name",
        "networks.storage.corosync-link",
        "nodes[1].addresses.storage",
        "nodes[2].mac",
        "ceph.pools[0].pg-num",
        "datacenter.bwlimit.migration",
        "ha.resources[0].group",
        "notifications.smtp[0].from-address",
    ] {
        assert!(keys.contains(&want), "{want} missing from {keys:?}");
    }
}

/// Secret values reach `SecretValues` and never the Plan.
#[test]
fn secrets_stay_out_of_the_plan() {
    let toml = workspace_root().join("examples/lab.toml");
    private_secrets(&workspace_root().join("examples"));
    let l = load_case(&toml).unwrap();
    let pw = l
        .secrets
        .get_id("smtp/smtp-relay/password")
        .expect("smtp password loaded");
    assert_eq!(pw, b"change-me-smtp-password");
    let hash = l
        .secrets
        .get_id("root-password-hash")
        .expect("root hash loaded");
    let json = plan_json(&l);
    assert!(!json.contains("change-me-smtp-password"));
    assert!(!json.contains(std::str::from_utf8(hash).unwrap()));
    assert!(json.contains("\"id\": \"smtp/smtp-relay/password\""));
}

/// A world-readable secret file is a warning naming the key, not an error.
#[test]
fn world_readable_secret_is_a_warning() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("secrets")).unwrap();
    let f = dir.path().join("secrets/pw");
    fs::write(&f, "# comment\nhunter2\n").unwrap();
    fs::set_permissions(&f, fs::Permissions::from_mode(0o644)).unwrap();
    let lab = fs::read_to_string(workspace_root().join("examples/lab.toml")).unwrap();
    let text = lab.replace("secrets/smtp-password", "secrets/pw");
    let l = hcikit::load_str(&text, dir.path()).unwrap();
    let w: Vec<String> = l.warnings.iter().map(ToString::to_string).collect();
    assert!(
        w.contains(&"notifications.smtp[0].password-file: secrets/pw is readable by every user; chmod 600 it".to_string()),
        "{w:?}"
    );
    assert_eq!(
        l.secrets.get_id("smtp/smtp-relay/password"),
        Some(&b"hunter2"[..])
    );
}

/// The Plan JSON is deterministic and round-trips through the agent's types.
#[test]
fn plan_json_is_stable_and_round_trips() {
    let toml = workspace_root().join("examples/lab.toml");
    private_secrets(&workspace_root().join("examples"));
    let a = plan_json(&load_case(&toml).unwrap());
    let b = plan_json(&load_case(&toml).unwrap());
    assert_eq!(a, b);
    let back: hcikit_firstboot::plan::Plan = serde_json::from_str(&a).unwrap();
    assert_eq!(serde_json::to_string_pretty(&back).unwrap() + "\n", a);
}
