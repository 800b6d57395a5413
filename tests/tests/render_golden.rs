//! Golden files: every node's rendered files (secrets redacted) under
//! `tests/golden/render/<case>/<node>/<target path>`, plus `<case>/MANIFEST` with each
//! file's mode, owner, placement and secrecy (git keeps no modes). `HCIKIT_BLESS=1`
//! rewrites them; review the diff before committing.

mod render_support;

use hcikit::render::files::{NodeFile, Placement};
use hcikit::render::{render_all, RenderOptions};
use hcikit::spec::secrets::SecretValues;
use hcikit_firstboot::plan::Plan;
use render_support::*;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Relative path → contents of a case's golden tree.
fn expected_tree(plan: &Plan, secrets: &SecretValues) -> BTreeMap<String, Vec<u8>> {
    let rendered = render_all(plan, secrets, &RenderOptions::default()).unwrap();
    let mut tree = BTreeMap::new();
    let mut manifest = String::new();
    for (node, files) in &rendered {
        for f in files {
            tree.insert(format!("{node}{}", f.path), f.contents.clone());
            manifest.push_str(&manifest_line(node, f));
        }
    }
    tree.insert("MANIFEST".into(), manifest.into_bytes());
    tree
}

fn manifest_line(node: &str, f: &NodeFile) -> String {
    format!(
        "{node} {} {:04o} {}:{} {} {}\n",
        f.path,
        f.mode,
        f.uid,
        f.gid,
        match f.placement {
            Placement::Install => "install",
            Placement::Desired => "desired",
        },
        if f.secret { "secret" } else { "public" }
    )
}

fn golden_dir(case: &str) -> PathBuf {
    hcikit_tests::workspace_root()
        .join("tests/golden/render")
        .join(case)
}

fn check_golden(case: &str, plan: &Plan, secrets: &SecretValues) {
    let want = expected_tree(plan, secrets);
    let problems = hcikit_tests::golden::check_tree(&golden_dir(case), &want);
    assert!(
        problems.is_empty(),
        "render goldens of {case} are out of date (HCIKIT_BLESS=1 regenerates):\n{}",
        problems.join("\n")
    );
}

fn check_example(name: &str) {
    let spec = hcikit_tests::workspace_root()
        .join("examples")
        .join(format!("{name}.toml"));
    let loaded = hcikit::load(&spec).unwrap();
    check_golden(name, &loaded.plan, &loaded.secrets);
}

#[test]
fn golden_example_lab() {
    check_example("lab");
}

#[test]
fn golden_example_minipc() {
    check_example("minipc");
}

#[test]
fn golden_fixture_lab_bond() {
    // The examples have no bond; this hand-built Plan keeps one under golden watch.
    check_golden("fixture-lab-bond", &lab_plan(true), &secrets());
}
