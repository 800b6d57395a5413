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

fn run_with(plan: &Plan, faults: Faults, seed: u64) -> SimReport {
    sim::simulate(
        plan,
        &SimConfig {
            seed,
            faults,
            ..SimConfig::default()
        },
    )
}

/// Item 1 (Proxmox side): `pvecm create` on a node without an RSA host key writes
/// corosync.conf, dies in ssh_merge_known_hosts and still exits 0, with the bare message
/// on stderr (pve-cluster Setup.pm, pve-common RESTEnvironment $tee_worker).
#[test]
fn item1_pvecm_create_without_an_rsa_key_dies_half_way_with_exit_0() {
    use hcikit_sim::{Latencies, World};
    let mut w = World::new(&example::lab_plan(), Latencies::default(), 1);
    w.nodes[0]
        .files
        .remove(hcikit_firstboot::layout::SSH_HOST_RSA_PUB);
    let argv: Vec<String> = "pvecm create lab --link0 10.2.21.66 --link1 10.2.22.66"
        .split(' ')
        .map(str::to_string)
        .collect();
    let r = w.command(0, &argv, None);
    assert_eq!(r.out.code, 0);
    assert_eq!(
        r.out.stderr,
        "unable to open file '/etc/ssh/ssh_host_rsa_key.pub' - No such file or directory\n"
    );
    assert!(r
        .out
        .stdout
        .contains("Writing corosync config to /etc/pve/corosync.conf"));
    assert!(w.read_file(0, "/etc/pve/corosync.conf").is_some());
    assert!(w.cluster.is_none(), "corosync never started");
}

/// Item 1 (agent side): without the RSA key the founder refuses before `pvecm create`,
/// with a message that names the cause, instead of leaving a half-made cluster.
#[test]
fn item1_the_agent_refuses_to_create_without_an_rsa_host_key() {
    let plan = example::lab_plan();
    let f = Faults {
        missing_files: vec![(
            "pve1".into(),
            hcikit_firstboot::layout::SSH_HOST_RSA_PUB.into(),
        )],
        ..Faults::default()
    };
    let r = run_with(&plan, f, 44);
    let sim::Outcome::Failed(e) = &r.outcomes["pve1"] else {
        panic!("{:?}", r.outcomes)
    };
    assert!(
        e.contains("holds no ssh-rsa key") && e.contains("pvecm create"),
        "{e}"
    );
    assert!(!r.log.iter().any(|l| l.command.starts_with("pvecm create")));
}

/// Item 1 (trust): after `pvecm create` replaced /etc/ssh/ssh_known_hosts with the
/// cluster-wide file, every node's names are still pinned to their ssh-rsa keys.
#[test]
fn item1_host_keys_stay_pinned_after_pvecm_create() {
    let plan = example::lab_plan();
    let r = run(&plan, 45);
    assert!(r.all_done(), "{:?}", r.outcomes);
    let known =
        String::from_utf8(r.world.read_file(0, "/etc/ssh/ssh_known_hosts").unwrap()).unwrap();
    assert!(
        !known.contains("ssh-ed25519"),
        "only ssh-rsa lines survive the merge"
    );
    for n in &plan.nodes {
        let key = hcikit_sim::world::sim_rsa_pub(&n.name);
        let body = key.rsplit_once(' ').unwrap().0;
        assert!(
            known
                .lines()
                .any(|l| l.starts_with(&format!("{},", n.name)) && l.ends_with(body)),
            "{} not pinned:\n{known}",
            n.name
        );
    }
    // The agent's own pinned copy is untouched.
    let pinned = r
        .world
        .read_file(0, hcikit_firstboot::layout::PINNED_KNOWN_HOSTS)
        .unwrap();
    assert!(String::from_utf8_lossy(&pinned).contains("ssh-ed25519"));
}

/// Item 8: a failed task of a command that exits 0 is caught from its stderr at once,
/// not when the verification window runs out.
#[test]
fn item8_a_failed_task_with_exit_0_is_caught_from_stderr() {
    use hcikit_sim::{FailKind, FailRule};
    let plan = example::lab_plan();
    let f = Faults {
        fail: vec![FailRule {
            node: None,
            command: "pveceph pool create".into(),
            times: 1,
            kind: FailKind::TaskError("mon_command failed - pool creation timed out".into()),
        }],
        ..Faults::default()
    };
    let r = run_with(&plan, f, 46);
    assert!(r.all_done(), "{:?}", r.outcomes);
    let pools: Vec<_> = r
        .log
        .iter()
        .filter(|e| e.command.starts_with("pveceph pool create"))
        .collect();
    assert_eq!(pools.len(), 2);
    assert_eq!(pools[0].exit, 0);
    assert_eq!(
        pools[0].stderr_tail,
        "mon_command failed - pool creation timed out"
    );
    assert_eq!(pools[0].verified, Some(false));
    // Retried after the step's backoff, not after the 20 s verification window.
    let verify_window_ms = 20_000;
    assert!(
        pools[1].start_ms < pools[0].end_ms + verify_window_ms,
        "{pools:?}"
    );
    assert!(!r.log.iter().any(|e| e.stderr_tail.contains("TASK ERROR")));
}

/// Item 3: root@pam gets the spec's address before any mail, so the test and ready mails
/// to `mailto-user = ["root@pam"]` have a recipient.
#[test]
fn item3_root_email_is_set_before_the_mails() {
    let plan = example::lab_plan();
    let r = run(&plan, 47);
    assert!(r.all_done(), "{:?}", r.outcomes);
    let set = r
        .log
        .iter()
        .find(|e| e.command == "pveum user modify root@pam --email admin@lab.example")
        .expect("root@pam's address is set");
    let first_mail = r
        .log
        .iter()
        .filter(|e| e.command.contains("/cluster/notifications/targets/"))
        .map(|e| e.start_ms)
        .min()
        .unwrap();
    assert!(set.end_ms <= first_mail);
    assert!(r.world.mails.iter().any(|m| m.target == "smtp-relay"));
    let st: serde_json::Value = serde_json::from_str(&r.states["pve1"]).unwrap();
    assert_eq!(st["warnings"], serde_json::json!([]));
}

/// Item 3: a mail that cannot go out (no recipient has an address) is a reported warning;
/// the cluster still finishes.
#[test]
fn item3_a_mail_failure_is_a_warning_not_a_failed_cluster() {
    let mut plan = example::lab_plan();
    plan.notifications.root_email = None;
    let r = run(&plan, 48);
    assert!(r.all_done(), "{:?}", r.outcomes);
    assert_eq!(health(&r), "HEALTH_OK");
    let st: serde_json::Value = serde_json::from_str(&r.states["pve1"]).unwrap();
    let w = st["warnings"].as_array().unwrap();
    assert!(!w.is_empty());
    assert!(
        w.iter()
            .all(|w| w.as_str().unwrap().contains(
                "could not notify via endpoint(s): smtp-relay: missing destination address"
            )),
        "{w:?}"
    );
}

/// Item 10: on a PVE 9 node whose pve-manager (9.1.5 to 9.1.12) still calls tentacle a
/// tech preview, `pveceph install --version tentacle` dies without allow-experimental;
/// squid, hcikit's PVE 9 default, installs on every PVE 9.
#[test]
fn item10_tentacle_is_refused_by_an_older_pve9_pve_manager_squid_is_not() {
    let mut plan = example::minipc_plan();
    plan.cluster.pve_major = 9;
    plan.ha.mode = hcikit_firstboot::plan::HaMode::Rules;
    plan.ha.resources.clear();
    let ceph = plan.ceph.as_mut().unwrap();
    ceph.release = "tentacle".into();
    ceph.version = "20.2".into();
    let faults = Faults {
        pve_manager: Some("9.1.5".into()),
        ..Faults::default()
    };
    let r = run_with(&plan, faults.clone(), 49);
    assert!(!r.all_done());
    let install = r
        .log
        .iter()
        .find(|e| e.command.starts_with("pveceph install"))
        .unwrap();
    assert_eq!(install.exit, 255);
    assert_eq!(
        install.stderr_tail,
        "Refusing to install tech-preview Ceph release 20.2 Tentacle without 'allow-experimental' parameter!"
    );
    let ceph = plan.ceph.as_mut().unwrap();
    ceph.release = "squid".into();
    ceph.version = "19.2".into();
    let r = run_with(&plan, faults, 49);
    assert!(r.all_done(), "{:?}", r.outcomes);
    assert_eq!(health(&r), "HEALTH_OK");
}
