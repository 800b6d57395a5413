//! The `hcikit-firstboot` command line: bad input (a missing or invalid Plan, an unknown
//! node, a plan from another format) exits 2 with a message naming the file or value;
//! `plan` needs no flag; nothing prints a Rust debug dump.

use hcikit_firstboot::example;
use std::path::Path;
use std::process::Command;

fn agent(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hcikit-firstboot"))
        .args(args)
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write_plan(dir: &Path, plan: &serde_json::Value) -> String {
    let p = dir.join("plan.json");
    std::fs::write(&p, serde_json::to_vec(plan).unwrap()).unwrap();
    p.to_string_lossy().into_owned()
}

#[test]
fn bad_plan_or_node_exits_2_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let good = serde_json::to_value(example::lab_plan()).unwrap();

    let missing = dir.path().join("nope.json");
    let missing = missing.to_str().unwrap();
    for sub in ["run", "plan"] {
        let (code, out, err) = agent(&[sub, "--plan", missing, "--node", "pve1"]);
        assert_eq!(code, 2, "{sub}: {err}");
        assert!(err.contains("nope.json"), "{sub}: {err}");
        assert!(out.is_empty(), "{sub}: {out}");
    }

    std::fs::write(dir.path().join("bad.json"), b"{ not json").unwrap();
    let bad = dir.path().join("bad.json");
    let (code, _, err) = agent(&["run", "--plan", bad.to_str().unwrap(), "--node", "pve1"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is not a valid hcikit plan"), "{err}");

    let plan = write_plan(dir.path(), &good);
    let (code, _, err) = agent(&["plan", "--plan", &plan, "--node", "pve9"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("node pve9 is not in the plan (its nodes: pve1, pve2, pve3)"),
        "{err}"
    );

    let mut old = good.clone();
    old["format"] = serde_json::json!(0);
    let plan = write_plan(dir.path(), &old);
    let (code, _, err) = agent(&["run", "--plan", &plan, "--node", "pve1"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("has plan format 0"), "{err}");

    let state = dir.path().join("state.json");
    let (code, _, err) = agent(&["status", "--state", state.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("state.json"), "{err}");
}

#[test]
fn apply_prints_a_short_summary_and_bad_esp_plan_exits_2() {
    let esp = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(esp.path().join("hcikit")).unwrap();
    std::fs::write(esp.path().join("hcikit/plan.json"), b"[]").unwrap();
    let (code, out, err) = agent(&[
        "apply",
        "--esp",
        esp.path().to_str().unwrap(),
        "--root",
        root.path().to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("hcikit/plan.json is not a valid hcikit plan"),
        "{err}"
    );
    assert!(out.is_empty());
    assert!(
        std::fs::read_dir(root.path()).unwrap().next().is_none(),
        "a refused apply left files behind"
    );
}

#[test]
fn apply_summary_is_one_human_line() {
    let done = hcikit_firstboot::apply::Outcome::Installed {
        node: "pve1".into(),
        files: 3,
        secrets: 2,
    };
    let text = done.to_string();
    assert_eq!(
        text,
        "applied node pve1: 3 files and 2 secret files installed; secrets removed from the ESP"
    );
    assert!(!text.contains('{'), "{text}");
}
