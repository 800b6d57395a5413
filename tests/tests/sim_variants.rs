//! Beyond the two examples: a PVE 9 spec with HA resources and a spec with realms and a
//! two-severity matcher, loaded by the real spec loader, end `done` (with `HEALTH_OK`
//! where there is Ceph), and
//! the simulator's schema tables (Proxmox's own parameter schemas) accept every command.

use hcikit_sim::{self as sim, SimConfig};
use hcikit_tests::workspace_root;

fn simulate(rel: &str) -> (hcikit_firstboot::plan::Plan, sim::SimReport) {
    let spec = workspace_root().join(rel);
    let loaded = hcikit::spec::load(&spec).expect("spec loads");
    let r = sim::simulate(&loaded.plan, &SimConfig::default());
    (loaded.plan, r)
}

fn assert_done_and_accepted(name: &str, plan: &hcikit_firstboot::plan::Plan, r: &sim::SimReport) {
    assert!(r.all_done(), "{name}: {:?}", r.outcomes);
    let w = r.world.summary();
    let want = if plan.ceph.is_some() {
        "HEALTH_OK"
    } else {
        "none"
    };
    assert_eq!(w["ceph"]["health"], want, "{name}: {:#}", w["ceph"]);
    for e in &r.log {
        for rejected in [
            "Unknown option",
            "400 unable to parse",
            "400 Parameter verification failed",
            "400 not enough arguments",
            "400 too many arguments",
            "ERROR: unknown command",
            "handler for",
        ] {
            assert!(
                !e.stderr_tail.contains(rejected),
                "{name}: rejected by the schema tables: {e:?}"
            );
        }
    }
}

#[test]
fn pve9_with_ha_resources_converges_and_defers_the_rules() {
    let (plan, r) = simulate("tests/golden/spec/ok/bond-pve9.toml");
    assert_eq!(plan.cluster.pve_major, 9);
    assert!(!plan.ha.resources.is_empty());
    assert_done_and_accepted("bond-pve9", &plan, &r);
    assert!(!r
        .log
        .iter()
        .any(|e| e.command.starts_with("ha-manager rules add")));
    let st: serde_json::Value = serde_json::from_str(&r.states[&plan.cluster.founder]).unwrap();
    let deferred = st["deferred"].as_array().unwrap();
    assert_eq!(
        deferred.len(),
        plan.ha.resources.len() + 1,
        "one ha-manager add per resource and the rule: {deferred:?}"
    );
}

#[test]
fn realms_and_a_two_severity_matcher_converge() {
    let (plan, r) = simulate("tests/golden/spec/ok/realms-notify.toml");
    assert_eq!(plan.realms.len(), 3);
    assert_done_and_accepted("realms-notify", &plan, &r);
    let w = r.world.summary();
    assert_eq!(
        w["notifications"]["matchers-that-never-match"],
        serde_json::json!([])
    );
    for realm in &plan.realms {
        assert!(
            w["realms"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x == realm.name.as_str()),
            "{}",
            realm.name
        );
    }
}
