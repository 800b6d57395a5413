//! Unit tests of the decision core: waits, joins, disk safety, pools, configuration.

use super::*;
use crate::example::lab_plan;
use crate::observe::{ClusterNode, OsdTree};

fn status(name: Option<&str>, quorate: bool, nodes: &[(&str, bool)]) -> ClusterStatus {
    ClusterStatus {
        name: name.map(str::to_string),
        quorate,
        nodes: nodes
            .iter()
            .enumerate()
            .map(|(i, (n, online))| ClusterNode {
                name: n.to_string(),
                nodeid: i as u32 + 1,
                online: *online,
                local: i == 0,
            })
            .collect(),
    }
}

fn all_reachable(plan: &Plan, me: &str) -> BTreeMap<(String, String), bool> {
    let mut m = BTreeMap::new();
    for n in plan.nodes.iter().filter(|n| n.name != me) {
        for a in &n.addresses {
            m.insert((n.name.clone(), a.network.clone()), true);
        }
    }
    m
}

fn done(steps: &[Step]) -> State {
    let mut s = State::new("x");
    for st in steps {
        s.mark_done(&st.id());
    }
    s
}

fn act_line(d: &Decision) -> String {
    match d {
        Decision::Act(a) => a.describe(),
        other => panic!("expected an action, got {other:?}"),
    }
}

#[test]
fn founder_waits_for_every_peer_on_every_network_and_names_the_missing_one() {
    let plan = lab_plan();
    let me = plan.node("pve1").unwrap();
    let mut obs = Observed {
        reach: all_reachable(&plan, "pve1"),
        local_cluster: Some(status(None, false, &[("pve1", true)])),
        ..Observed::default()
    };
    obs.reach.insert(("pve3".into(), "storage".into()), false);
    match decide(&plan, me, &obs, &State::new("pve1")) {
        Decision::Wait { step, wait } => {
            assert_eq!(step, Step::Peers);
            assert_eq!(wait.reason, "peers to answer: pve3 on storage (10.2.22.68)");
            assert_eq!(wait.limit_secs, Some(plan.firstboot.peer_timeout_secs));
        }
        other => panic!("{other:?}"),
    }
    // Past the peer timeout: a clear failure, still no cluster created.
    let mut st = State::new("pve1");
    st.wait_since.insert("peers".into(), 0);
    obs.now_ms = (plan.firstboot.peer_timeout_secs + 1) * 1000;
    match decide(&plan, me, &obs, &st) {
        Decision::Fail { step, error } => {
            assert_eq!(step, Step::Peers);
            assert!(error.contains("pve3 on storage"), "{error}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_node_without_proxmox_fails_at_its_first_proxmox_step_instead_of_waiting() {
    let plan = lab_plan();
    let reachable = |me: &str| Observed {
        reach: all_reachable(&plan, me),
        pve_missing: true,
        authkey: Some((true, true)),
        ..Observed::default()
    };
    // Founder: peers answer, then cluster-create cannot ever run.
    let me = plan.node("pve1").unwrap();
    let st = done(&[Step::Peers, Step::CorosyncKey]);
    match decide(&plan, me, &reachable("pve1"), &st) {
        Decision::Fail { step, error } => {
            assert_eq!(step, Step::CreateCluster);
            assert!(error.contains("Proxmox VE is not installed"), "{error}");
            assert!(error.contains("/usr/bin/pvecm"), "{error}");
        }
        other => panic!("{other:?}"),
    }
    // With the tools present, the same observation only waits for pve-cluster.
    let installed = Observed {
        pve_missing: false,
        ..reachable("pve1")
    };
    assert!(matches!(
        decide(&plan, me, &installed, &st),
        Decision::Wait { .. }
    ));
}

#[test]
fn founder_creates_with_both_links_once_peers_answer() {
    let plan = lab_plan();
    let me = plan.node("pve1").unwrap();
    let obs = Observed {
        reach: all_reachable(&plan, "pve1"),
        local_cluster: Some(status(None, false, &[("pve1", true)])),
        ..Observed::default()
    };
    let st = decide(&plan, me, &obs, &State::new("pve1"));
    assert_eq!(st, Decision::Record(Step::Peers));
    // The seeded corosync key goes in place first (pvecm create keeps it).
    let with_key = Observed {
        authkey: Some((true, false)),
        ..obs.clone()
    };
    let d = decide(&plan, me, &with_key, &done(&[Step::Peers]));
    assert_eq!(
        act_line(&d),
        "install /etc/hcikit/corosync/authkey as /etc/corosync/authkey (mode 400)"
    );
    let st = done(&[Step::Peers, Step::CorosyncKey]);
    let d = decide(&plan, me, &obs, &st);
    assert_eq!(
        act_line(&d),
        "pvecm create pvelab --link0 10.2.21.66 --link1 10.2.22.66"
    );
    // Already in another cluster: refuse.
    let obs2 = Observed {
        local_cluster: Some(status(Some("other"), true, &[("pve1", true)])),
        ..obs
    };
    assert!(matches!(
        decide(&plan, me, &obs2, &st),
        Decision::Fail { .. }
    ));
}

#[test]
fn joiners_go_one_at_a_time_after_online_and_quorum() {
    let plan = lab_plan();
    let me = plan.node("pve3").unwrap();
    // Before anything else, root's ssh is pointed at the bootstrap key for the founder.
    let fresh = Observed {
        local_cluster: Some(status(None, false, &[("pve3", true)])),
        ssh_config: Some("Host *\n    ServerAliveInterval 30\n".into()),
        ..Observed::default()
    };
    match decide(&plan, me, &fresh, &done(&[Step::Peers])) {
        Decision::Act(Action {
            kind: ActionKind::WriteSshConfig(text),
            ..
        }) => {
            assert!(text.starts_with("# BEGIN hcikit bootstrap"), "{text}");
            assert!(
                text.contains("Host 10.2.21.66\n")
                    && text.contains("IdentityFile /root/.ssh/hcikit-bootstrap")
            );
            assert!(
                text.ends_with("Host *\n    ServerAliveInterval 30\n"),
                "keeps the admin's config"
            );
            assert!(ssh_config_has_block(&text, "10.2.21.66"));
            assert_eq!(with_ssh_block(&text, "10.2.21.66"), text, "idempotent");
            assert_eq!(
                without_ssh_block(&text),
                "Host *\n    ServerAliveInterval 30\n"
            );
        }
        other => panic!("{other:?}"),
    }
    let st = done(&[Step::Peers, Step::SshConfig]);
    let local = Some(status(None, false, &[("pve3", true)]));
    // pve2 is still joining (offline): pve3 waits.
    let obs = Observed {
        local_cluster: local.clone(),
        bootstrap_key_present: true,
        founder_cluster: Some(status(
            Some("pvelab"),
            false,
            &[("pve1", true), ("pve2", false)],
        )),
        ..Observed::default()
    };
    match decide(&plan, me, &obs, &st) {
        Decision::Wait { wait, .. } => assert!(wait.reason.contains("pve2"), "{}", wait.reason),
        other => panic!("{other:?}"),
    }
    // pve2 not even added yet: pve3 still waits for it.
    let obs = Observed {
        founder_cluster: Some(status(Some("pvelab"), true, &[("pve1", true)])),
        ..obs
    };
    assert!(matches!(
        decide(&plan, me, &obs, &st),
        Decision::Wait { .. }
    ));
    // pve2 online and quorate: pve3 joins over SSH with every link.
    let obs = Observed {
        founder_cluster: Some(status(
            Some("pvelab"),
            true,
            &[("pve1", true), ("pve2", true)],
        )),
        ..obs
    };
    let d = decide(&plan, me, &obs, &st);
    assert_eq!(
        act_line(&d),
        "pvecm add 10.2.21.66 --use_ssh 1 --link0 10.2.21.68 --link1 10.2.22.68"
    );
    if let Decision::Act(a) = d {
        let ActionKind::Run(c) = a.kind else { panic!() };
        assert_eq!(c.timeout_secs, plan.firstboot.join_timeout_secs);
    }
}

fn osd_obs(plan: &Plan, node: &str, lsblk: &str, sigs: &[(&str, &[&str])]) -> Observed {
    let me = plan.node(node).unwrap();
    let mut o = Observed {
        ceph_conf: Some(CephConf {
            fsid: Some("F".into()),
            mon_host: vec!["10.2.22.66".into()],
        }),
        ceph: Some(CephStatus {
            quorum_names: vec!["pve1".into()],
            ..CephStatus::default()
        }),
        volumes: Some(BTreeMap::new()),
        lsblk: Some(crate::observe::lsblk(lsblk).unwrap()),
        osd_tree: Some(OsdTree::default()),
        ..Observed::default()
    };
    for osd in &me.osds {
        o.resolved.insert(osd.device.clone(), osd.device.clone());
        o.signatures.insert(osd.device.clone(), vec![]);
    }
    for (d, s) in sigs {
        o.signatures
            .insert(d.to_string(), s.iter().map(|x| x.to_string()).collect());
    }
    o
}

const DISKS: &str = r#"{"blockdevices":[
    {"name":"sda","path":"/dev/sda","type":"disk","fstype":null,"mountpoint":null,"pttype":"gpt",
     "children":[{"name":"sda2","path":"/dev/sda2","type":"part","fstype":"ext4","mountpoint":"/","pttype":"gpt"}]},
    {"name":"sdb","path":"/dev/sdb","type":"disk","fstype":null,"mountpoint":null,"pttype":null},
    {"name":"sdc","path":"/dev/sdc","type":"disk","fstype":"ext4","mountpoint":null,"pttype":null}]}"#;

fn osd_eval(plan: &Plan, obs: &Observed, st: &State, dev: &str) -> Eval {
    evaluate(
        plan,
        plan.node("pve2").unwrap(),
        obs,
        st,
        &Step::Osd(dev.into()),
    )
}

#[test]
fn disk_safety_rules() {
    let mut plan = lab_plan();
    let obs = osd_obs(&plan, "pve2", DISKS, &[("/dev/sdc", &["ext4"])]);
    let st = State::new("pve2");
    // A blank disk: create.
    match osd_eval(&plan, &obs, &st, "/dev/sdb") {
        Eval::Ready(a) => assert_eq!(
            a.describe(),
            "pveceph osd create /dev/sdb --crush-device-class ssd"
        ),
        other => panic!("{other:?}"),
    }
    // A file system and no wipe: refused, naming disk, node, signature and the fix.
    match osd_eval(&plan, &obs, &st, "/dev/sdc") {
        Eval::Fatal(e) => {
            assert!(
                e.contains("/dev/sdc on pve2") && e.contains("ext4") && e.contains("wipe = true"),
                "{e}"
            )
        }
        other => panic!("{other:?}"),
    }
    // With wipe: zap (recorded by the runner), but only once.
    plan.nodes[1].osds[1].wipe = true;
    match osd_eval(&plan, &obs, &st, "/dev/sdc") {
        Eval::Ready(a) => {
            assert!(matches!(a.kind, ActionKind::Zap { .. }));
            assert_eq!(a.describe(), "ceph-volume lvm zap /dev/sdc --destroy");
        }
        other => panic!("{other:?}"),
    }
    let mut zapped = st.clone();
    zapped.zaps.insert(
        "/dev/sdc".into(),
        crate::state::ZapRecord {
            started_ms: 1,
            done_ms: Some(2),
        },
    );
    assert!(matches!(
        osd_eval(&plan, &obs, &zapped, "/dev/sdc"),
        Eval::Fatal(_)
    ));
    // Leftovers after an interrupted osd create of ours: never zapped.
    let mut started = st.clone();
    started.osd_started.insert("/dev/sdc".into(), 1);
    match osd_eval(&plan, &obs, &started, "/dev/sdc") {
        Eval::Fatal(e) => assert!(e.contains("interrupted"), "{e}"),
        other => panic!("{other:?}"),
    }
    // An OSD of ours on the disk counts as done once it is up.
    let mut ours = osd_obs(&plan, "pve2", DISKS, &[("/dev/sdc", &["LVM2_member"])]);
    ours.volumes = Some(BTreeMap::from([(
        "/dev/sdc".to_string(),
        (4, "F".to_string()),
    )]));
    ours.osd_tree = Some(OsdTree {
        hosts: BTreeMap::from([("pve2".to_string(), vec![(4, true)])]),
    });
    assert_eq!(
        osd_eval(&plan, &ours, &started, "/dev/sdc"),
        Eval::Satisfied
    );
    // The boot disk is refused even when the plan names it with wipe.
    plan.nodes[1].osds[0].device = "/dev/sda".into();
    plan.nodes[1].osds[0].wipe = true;
    let obs = osd_obs(&plan, "pve2", DISKS, &[]);
    match osd_eval(&plan, &obs, &st, "/dev/sda") {
        Eval::Fatal(e) => assert!(e.contains("boot device"), "{e}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn pools_wait_for_osds_on_enough_hosts_and_use_documented_flags() {
    let plan = lab_plan();
    let me = plan.node("pve1").unwrap();
    let tree = |hosts: &[&str]| OsdTree {
        hosts: hosts
            .iter()
            .enumerate()
            .map(|(i, h)| (h.to_string(), vec![(i as u32, true)]))
            .collect(),
    };
    let mut obs = Observed {
        pools: Some(vec![]),
        storages: Some(BTreeSet::new()),
        osd_tree: Some(tree(&["pve1", "pve2"])),
        ..Observed::default()
    };
    let step = Step::Pool("cephrdb01".into());
    assert!(matches!(
        evaluate(&plan, me, &obs, &State::new("pve1"), &step),
        Eval::Blocked(_)
    ));
    obs.osd_tree = Some(tree(&["pve1", "pve2", "pve3"]));
    match evaluate(&plan, me, &obs, &State::new("pve1"), &step) {
        Eval::Ready(a) => assert_eq!(
            a.describe(),
            "pveceph pool create cephrdb01 --size 3 --min_size 2 --pg_autoscale_mode on --application rbd --add_storages 1"
        ),
        other => panic!("{other:?}"),
    }
    // CephFS needs a standby MDS first.
    let fs = Step::CephFs("cephfs01".into());
    obs.mds = Some(MdsStat::default());
    assert!(matches!(
        evaluate(&plan, me, &obs, &State::new("pve1"), &fs),
        Eval::Blocked(_)
    ));
    obs.mds = Some(MdsStat {
        standbys: vec!["pve2".into()],
        ..MdsStat::default()
    });
    match evaluate(&plan, me, &obs, &State::new("pve1"), &fs) {
        Eval::Ready(a) => assert_eq!(
            a.describe(),
            "pveceph fs create --name cephfs01 --pg_num 128 --add-storage 1"
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn configuration_waits_for_the_complete_cluster_and_gates_the_final_steps() {
    let plan = lab_plan();
    let me = plan.node("pve1").unwrap();
    // Everything but the configuration is done; SMTP not observed yet.
    let mut st = State::new("pve1");
    for s in steps_for(&plan, me) {
        if !s.floating() && !matches!(s, Step::Health | Step::ReadyMail | Step::RevokeBootstrap) {
            st.mark_done(&s.id());
        }
    }
    let obs = Observed {
        ceph: Some(CephStatus {
            health: "HEALTH_OK".into(),
            quorum_names: vec!["pve1".into(), "pve2".into(), "pve3".into()],
            num_up_osds: 6,
            num_in_osds: 6,
            ..CephStatus::default()
        }),
        ..Observed::default()
    };
    // The SMTP target is not there: the ready mail must not go out before it.
    let d = decide(&plan, me, &obs, &st);
    assert!(
        !matches!(
            d,
            Decision::Act(Action {
                step: Step::ReadyMail,
                ..
            })
        ),
        "{d:?}"
    );
    assert_ne!(
        d,
        Decision::Record(Step::Health),
        "health waits behind the configuration"
    );
}
