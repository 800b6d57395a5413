//! The behaviours Proxmox's source shows and the first boot must survive: each test names
//! the issue item it pins and fails when that fix is reverted.

use hcikit_firstboot::example;
use hcikit_firstboot::plan::Plan;
use hcikit_sim::{self as sim, Faults, SimConfig, SimReport};

fn run(plan: &Plan, seed: u64) -> SimReport {
    sim::simulate(
        plan,
        &SimConfig {
            seed,
            faults: Faults::default(),
            ..SimConfig::default()
        },
    )
}

fn health(r: &SimReport) -> String {
    r.world.summary()["ceph"]["health"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Item 4: `pveceph init` gets the spec's size/min_size, which `pveceph fs create`'s pools
/// inherit. Two OSD hosts with size 2: CephFS pools of size 3 would stay undersized.
#[test]
fn item4_ceph_init_sets_the_pool_defaults_cephfs_inherits() {
    let mut plan = example::lab_plan();
    let ceph = plan.ceph.as_mut().unwrap();
    ceph.size = 2;
    ceph.min_size = 1;
    for p in &mut ceph.pools {
        p.size = 2;
        p.min_size = 1;
    }
    let dropped = plan.nodes[2].osds.len() as u32;
    plan.nodes[2].osds.clear();
    plan.ceph.as_mut().unwrap().osd_count -= dropped;
    let r = run(&plan, 41);
    assert!(
        r.all_done(),
        "{:?} {:?} {:?}",
        r.outcomes,
        r.world.ceph.pools,
        r.log.iter().find(|e| e.command.starts_with("pveceph init"))
    );
    assert_eq!(health(&r), "HEALTH_OK", "{:#}", r.world.summary()["ceph"]);
    let init = r
        .log
        .iter()
        .find(|e| e.command.starts_with("pveceph init"))
        .unwrap();
    assert!(
        init.command.ends_with("--size 2 --min_size 1"),
        "{}",
        init.command
    );
    assert!(r
        .world
        .ceph
        .pools
        .iter()
        .filter(|p| p.name.starts_with("cephfs01_"))
        .all(|p| p.size == 2 && p.min_size == 1));
}

/// Item 4: `[ceph.config.*]` options reach Ceph's configuration database before the
/// OSDs that read them start (minipc's osd_memory_target was never applied).
#[test]
fn item4_ceph_config_options_are_set_before_the_osds_start() {
    let mut plan = example::minipc_plan();
    plan.ceph.as_mut().unwrap().extra_config.insert(
        "osd".into(),
        [("osd_memory_target".to_string(), "2147483648".to_string())]
            .into_iter()
            .collect(),
    );
    let opts: Vec<(String, String, String)> = plan
        .ceph
        .as_ref()
        .unwrap()
        .extra_config
        .iter()
        .flat_map(|(w, kv)| {
            kv.iter()
                .map(move |(k, v)| (w.clone(), k.clone(), v.clone()))
        })
        .collect();
    let r = run(&plan, 42);
    assert!(r.all_done(), "{:?}", r.outcomes);
    for (who, key, value) in &opts {
        assert_eq!(
            r.world.ceph.config.get(&format!("{who}/{key}")),
            Some(value),
            "{who}/{key}"
        );
    }
    assert!(
        r.world.ceph.config_after_daemons.is_empty(),
        "{:?}",
        r.world.ceph.config_after_daemons
    );
    let first_osd = r
        .log
        .iter()
        .filter(|e| e.command.starts_with("pveceph osd create"))
        .map(|e| e.start_ms)
        .min()
        .unwrap();
    let last_set = r
        .log
        .iter()
        .filter(|e| e.command.starts_with("ceph config set"))
        .map(|e| e.end_ms)
        .max()
        .unwrap();
    assert!(
        last_set <= first_osd,
        "set at {last_set}, first OSD at {first_osd}"
    );
}

/// Item 5 and the "realms" variant: realms plus a matcher with two severities and two
/// match-fields for one field converge, and the matcher can fire (each repeated
/// `--match-severity` would be one rule, AND-ed under `mode all`).
#[test]
fn item5_realms_and_a_two_severity_matcher_converge() {
    use hcikit_firstboot::plan::{Matcher, Realm, SecretRef};
    let mut plan = example::lab_plan();
    let target = plan.notifications.smtp[0].name.clone();
    plan.notifications.matchers = vec![Matcher {
        name: "alerts".into(),
        targets: vec![target],
        mode: "all".into(),
        match_severity: vec!["error".into(), "warning".into()],
        match_field: vec!["exact:type=vzdump".into(), "exact:type=replication".into()],
        invert_match: false,
        comment: None,
    }];
    plan.realms = vec![
        Realm {
            name: "corp".into(),
            kind: "ad".into(),
            options: [
                ("server1".to_string(), "dc1.corp.example".to_string()),
                ("domain".to_string(), "corp.example".to_string()),
            ]
            .into_iter()
            .collect(),
            secret: Some(SecretRef::new("realm/corp/bind-password")),
            default: false,
            comment: None,
        },
        Realm {
            name: "sso".into(),
            kind: "openid".into(),
            options: [
                (
                    "issuer-url".to_string(),
                    "https://sso.example.com".to_string(),
                ),
                ("client-id".to_string(), "pve".to_string()),
            ]
            .into_iter()
            .collect(),
            secret: None,
            default: false,
            comment: None,
        },
    ];
    let r = run(&plan, 43);
    assert!(r.all_done(), "{:?}", r.outcomes);
    assert_eq!(health(&r), "HEALTH_OK");
    let s = r.world.summary();
    assert_eq!(
        s["notifications"]["matchers-that-never-match"],
        serde_json::json!([])
    );
    let m = r
        .log
        .iter()
        .find(|e| {
            e.command
                .contains("/cluster/notifications/matchers --name alerts")
        })
        .unwrap();
    assert_eq!(
        m.command.matches("--match-severity").count(),
        1,
        "{}",
        m.command
    );
    assert!(
        m.command
            .contains("--match-field exact:type=vzdump,replication"),
        "{}",
        m.command
    );
    assert_eq!(s["realms"], serde_json::json!(["corp", "sso"]));
}
