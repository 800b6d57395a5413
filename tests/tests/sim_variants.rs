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

/// D16: no secret is ever on an argv the agent runs (what `ps` and `/proc/<pid>/cmdline`
/// show), for every kind: SMTP password, LDAP and AD bind passwords, OpenID client key,
/// and the others the simulator knows. Each still reaches Proxmox: the simulated API got
/// every realm's own secret (on stdin) and every SMTP password.
#[test]
fn no_secret_is_ever_on_a_command_line() {
    let mut runs = Vec::new();
    for name in ["lab", "lab-pve8", "minipc"] {
        runs.push((name.to_string(), simulate(&format!("examples/{name}.toml"))));
    }
    runs.push((
        "realms-notify".into(),
        simulate("tests/golden/spec/ok/realms-notify.toml"),
    ));
    // The same spec with a bind password on its LDAP realm too (the spec's has none).
    let spec = workspace_root().join("tests/golden/spec/ok/realms-notify.toml");
    let mut plan = hcikit::spec::load(&spec).expect("spec loads").plan;
    for r in plan.realms.iter_mut().filter(|r| r.kind == "ldap") {
        r.secret = Some(hcikit_firstboot::plan::SecretRef::new(format!(
            "realm/{}/bind-password",
            r.name
        )));
    }
    let r = sim::simulate(&plan, &SimConfig::default());
    runs.push(("realms-notify+ldap-bind".into(), (plan, r)));
    let mut kinds = std::collections::BTreeSet::new();
    for (name, (plan, r)) in &runs {
        assert!(r.all_done(), "{name}: {:?}", r.outcomes);
        assert!(!r.log.is_empty());
        for e in &r.log {
            for a in &e.argv {
                for s in sim::SimReport::secrets() {
                    assert!(
                        !a.contains(s),
                        "{name}: a secret on the argv of {}",
                        e.command
                    );
                }
            }
        }
        for realm in &plan.realms {
            if realm.secret.is_some() {
                assert_eq!(
                    r.world.pmx.realm_secrets.get(&realm.name),
                    Some(&sim::world::sim_realm_secret(&realm.name)),
                    "{name}: realm {}",
                    realm.name
                );
                kinds.insert(realm.kind.clone());
            }
        }
        for t in &plan.notifications.smtp {
            if t.password.is_some() {
                assert_eq!(
                    r.world.pmx.smtp_passwords.get(&t.name).map(String::as_str),
                    Some(sim::world::SIM_SMTP_PASSWORD),
                    "{name}: SMTP target {}",
                    t.name
                );
                kinds.insert("smtp".into());
            }
        }
    }
    // Every secret kind was exercised.
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        ["ad", "ldap", "openid", "smtp"]
    );
}
