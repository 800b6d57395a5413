//! `hcikit plan` shows exactly the steps the agent runs: for both examples and every
//! valid golden spec variant, the step ids `hcikit plan --json` lists for a node equal the
//! ids that node's agent records in its state file when run in the simulator, in the
//! same order (floating steps, which the agent may run early while it waits, are held to
//! the same order among themselves).

use hcikit_firstboot::plan::Plan;
use hcikit_firstboot::state::State;
use hcikit_firstboot::steps::steps_for;
use hcikit_sim::{self as sim, SimConfig};
use hcikit_tests::{hcikit_bin, run, workspace_root};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

fn specs() -> Vec<PathBuf> {
    let root = workspace_root();
    let mut out = vec![
        root.join("examples/lab.toml"),
        root.join("examples/minipc.toml"),
    ];
    let mut variants: Vec<PathBuf> = std::fs::read_dir(root.join("tests/golden/spec/ok"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        // Its single MDS is the point of that spec (a warning); Ceph then never reports
        // HEALTH_OK, so the founder's run cannot finish and has no full list to compare.
        .filter(|p| !p.ends_with("warnings.toml"))
        .collect();
    variants.sort();
    out.extend(variants);
    out
}

/// The ids of the floating steps of `node`: the agent may record these before steps
/// listed earlier (see `Step::floating`).
fn floating(plan: &Plan, node: &str) -> BTreeSet<String> {
    let n = plan.node(node).unwrap();
    steps_for(plan, n)
        .into_iter()
        .filter(|s| s.floating())
        .map(|s| s.id())
        .collect()
}

#[test]
fn plan_lists_the_steps_the_agent_records_in_order() {
    let specs = specs();
    assert!(specs.len() >= 7, "examples and spec variants: {specs:?}");
    let mut checked = Vec::new();
    for spec in specs {
        let name = spec.file_stem().unwrap().to_string_lossy().into_owned();
        let (code, stdout, stderr) = run(Command::new(hcikit_bin())
            .args(["plan", "--json"])
            .arg(&spec));
        assert_eq!(code, 0, "{name}: hcikit plan --json: {stderr}");
        let shown: Plan = serde_json::from_str(&stdout).expect("plan --json is a Plan");

        let plan = hcikit::load(&spec).expect("spec loads").plan;
        let r = sim::simulate(&plan, &SimConfig::default());
        assert!(r.all_done(), "{name}: {:?}", r.outcomes);
        for n in &shown.nodes {
            let listed: Vec<String> = shown
                .steps
                .iter()
                .filter(|s| s.node == n.name)
                .map(|s| s.id.clone())
                .collect();
            let state: State = serde_json::from_str(&r.states[&n.name]).unwrap();
            let recorded = state.done;
            assert_eq!(
                listed.iter().collect::<BTreeSet<_>>(),
                recorded.iter().collect::<BTreeSet<_>>(),
                "{name}/{}: plan lists {listed:?}, the agent recorded {recorded:?}",
                n.name
            );
            let fl = floating(&shown, &n.name);
            for pick in [true, false] {
                let sel = |v: &[String]| -> Vec<String> {
                    v.iter()
                        .filter(|id| fl.contains(*id) == pick)
                        .cloned()
                        .collect()
                };
                assert_eq!(
                    sel(&listed),
                    sel(&recorded),
                    "{name}/{}: order of the {} steps",
                    n.name,
                    if pick { "floating" } else { "other" }
                );
            }
            assert!(!listed.is_empty(), "{name}/{}: no steps", n.name);
        }
        checked.push(name);
    }
    // The variants that matter for the step list, present by name so a renamed golden
    // cannot silently drop one.
    for must in [
        "lab",
        "minipc",
        "bond-pve9",
        "minimal",
        "realms-notify",
        "two-nodes",
        "ceph-options",
    ] {
        assert!(
            checked.iter().any(|c| c == must),
            "{must} not checked: {checked:?}"
        );
    }
}
