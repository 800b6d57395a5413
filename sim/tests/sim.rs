//! The cluster run against the simulated cluster: both scenarios converge from fresh
//! machines, survive kills at every step boundary and at random points, and handle late
//! or absent peers, lock conflicts, lying exit codes and dirty disks.

use hcikit_firstboot::example;
use hcikit_firstboot::plan::Plan;
use hcikit_sim::{
    self as sim, DiskContent, FailKind, FailRule, Faults, Kill, Outcome, SimConfig, SimReport,
};
use std::collections::{BTreeMap, BTreeSet};

fn run(plan: &Plan, faults: Faults, seed: u64) -> SimReport {
    sim::simulate(
        plan,
        &SimConfig {
            seed,
            faults,
            ..SimConfig::default()
        },
    )
}

/// Every criterion of a finished first boot (cluster, links, Ceph health, daemons, pools,
/// storages, configuration), checked on the simulated world.
fn assert_converged(plan: &Plan, r: &SimReport) {
    assert!(
        r.all_done(),
        "not all nodes done: {:?}\nevents: {:#?}",
        r.outcomes,
        r.events.iter().rev().take(15).collect::<Vec<_>>()
    );
    let w = &r.world;
    let c = w.cluster.as_ref().expect("cluster exists");
    assert_eq!(c.name, plan.cluster.name);
    assert!(w.quorate(), "cluster quorate");
    assert_eq!(c.members.len(), plan.nodes.len());
    for n in &plan.nodes {
        let m = c.members.iter().find(|m| m.name == n.name).expect("member");
        let want: BTreeMap<u8, String> = n.links.iter().map(|l| (l.number, l.ip.clone())).collect();
        assert_eq!(m.links, want, "links of {}", n.name);
        assert!(m.online_at.is_some(), "{} online", n.name);
        assert!(
            w.links_up(m).values().all(|up| *up),
            "every link of {} up",
            n.name
        );
    }
    let ceph = plan.ceph.as_ref().expect("ceph plan");
    let summary = w.summary();
    assert_eq!(
        summary["ceph"]["health"], "HEALTH_OK",
        "{:#}",
        summary["ceph"]
    );
    let mons: BTreeSet<String> = w.ceph.mons.iter().map(|d| d.name.clone()).collect();
    assert_eq!(mons, ceph.mons.iter().cloned().collect());
    let quorum: BTreeSet<String> = summary["ceph"]["quorum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(quorum, mons);
    let mgrs: BTreeSet<String> = w.ceph.mgrs.iter().map(|d| d.name.clone()).collect();
    assert!(ceph.mgrs.iter().all(|m| mgrs.contains(m)), "mgrs {mgrs:?}");
    let mds: BTreeSet<String> = w.ceph.mds.iter().map(|d| d.name.clone()).collect();
    assert_eq!(mds, ceph.mds.iter().cloned().collect());
    assert_eq!(
        w.ceph.osds.len() as u32,
        ceph.osd_count,
        "{:?}",
        w.ceph.osds
    );
    for n in &plan.nodes {
        for o in &n.osds {
            let found: Vec<_> = w
                .ceph
                .osds
                .iter()
                .filter(|x| x.host == n.name && x.device == o.device)
                .collect();
            assert_eq!(found.len(), 1, "one OSD on {}:{}", n.name, o.device);
        }
    }
    for o in summary["ceph"]["osds"].as_array().unwrap() {
        assert_eq!(o["up"], true, "{o}");
    }
    let storages: BTreeSet<String> = w.pmx.storages.iter().map(|s| s.storage.clone()).collect();
    for p in &ceph.pools {
        let have = w
            .ceph
            .pools
            .iter()
            .find(|x| x.name == p.name)
            .expect("pool");
        assert_eq!((have.size, have.min_size), (p.size, p.min_size));
        assert_eq!(have.pg_autoscale_mode, p.pg_autoscale_mode);
        assert_eq!(have.application, p.application);
        if let Some(n) = p.pg_num {
            assert_eq!(have.pg_num, n);
        }
        assert_eq!(storages.contains(&p.name), p.add_storage);
    }
    for f in &ceph.cephfs {
        let have = w.ceph.fs.iter().find(|x| x.name == f.name).expect("cephfs");
        assert!(mds.contains(&have.active));
        let data = w
            .ceph
            .pools
            .iter()
            .find(|p| p.name == format!("{}_data", f.name))
            .unwrap();
        assert_eq!(data.pg_num, f.pg_num);
        assert_eq!(storages.contains(&f.name), f.add_storage);
    }
    assert_eq!(
        w.pmx.options, plan.datacenter.options,
        "datacenter.cfg options"
    );
    for g in &plan.ha.groups {
        if plan.ha.mode == hcikit_firstboot::plan::HaMode::Rules {
            // Node-affinity rules need HA-managed guests: deferred at first boot.
            assert!(w.pmx.ha_rules.is_empty());
            continue;
        }
        let have = w.pmx.ha_groups.get(&g.name).expect("ha group");
        assert_eq!(have["restricted"], if g.restricted { "1" } else { "0" });
        assert_eq!(have["nofailback"], if g.nofailback { "1" } else { "0" });
    }
    for r in &plan.realms {
        assert!(w.pmx.realms.contains_key(&r.name), "realm {}", r.name);
    }
    for t in &plan.notifications.smtp {
        let public = w.pmx.smtp.get(&t.name).expect("smtp target");
        assert!(public.iter().all(|(k, _)| k != "password"));
        if t.password.is_some() {
            assert_eq!(w.pmx.smtp_passwords[&t.name], SimReport::secrets()[0]);
        }
    }
    for t in &plan.notifications.default_matcher_targets {
        assert!(w.pmx.matchers["default-matcher"].contains(t));
    }
    if let Some(t) = &plan.notifications.report_target {
        assert!(w.mails.iter().any(|m| &m.target == t), "ready mail sent");
    }
    assert_eq!(summary["bootstrap-key-authorized"], false);
    assert_eq!(
        summary["corosync-key-from-seed"], true,
        "pvecm create kept the seeded key"
    );
    assert_eq!(
        summary["bootstrap-private-keys-left"],
        serde_json::json!([])
    );
    assert_safe_disks(plan, r);
    check_no_unknown_flags(r);
}

/// No write to a disk the plan does not name, no zap without `wipe`, no zap of an OSD,
/// no OSD created twice.
fn assert_safe_disks(plan: &Plan, r: &SimReport) {
    let mut created = BTreeSet::new();
    for wr in &r.world.disk_writes {
        let node = plan.node(&wr.node).unwrap();
        let osd = node.osds.iter().find(|o| o.device == wr.device);
        assert!(
            osd.is_some(),
            "write to a disk the plan does not name: {wr:?}"
        );
        match wr.op.as_str() {
            "zap" => {
                assert!(osd.unwrap().wipe, "zap without wipe: {wr:?}");
                assert!(
                    !matches!(&wr.before, DiskContent::Osd { fsid, .. } if Some(fsid) == r.world.ceph.fsid.as_ref()),
                    "zapped an OSD of ours: {wr:?}"
                );
            }
            "osd-create" => {
                assert!(
                    created.insert((wr.node.clone(), wr.device.clone())),
                    "OSD created twice: {wr:?}"
                );
            }
            other => panic!("unknown write {other}"),
        }
    }
}

#[test]
fn lab_converges_from_fresh_machines() {
    let plan = example::lab_plan();
    let r = run(&plan, Faults::default(), 1);
    assert_converged(&plan, &r);
    // Joins strictly one at a time: pve3's add starts after pve2's finished.
    let adds: Vec<_> = r
        .log
        .iter()
        .filter(|e| e.command.starts_with("pvecm add"))
        .collect();
    assert_eq!(adds.len(), 2);
    assert!(adds[0].node == "pve2" && adds[1].node == "pve3");
    // pve3 starts only once pve2 is online and the cluster quorate (decide::cluster, eval_join).
    let pve2 = r
        .world
        .cluster
        .as_ref()
        .unwrap()
        .members
        .iter()
        .find(|m| m.name == "pve2")
        .unwrap();
    assert!(adds[1].start_ms >= pve2.online_at.unwrap(), "{adds:?}");
    // Item 9: ... and only once pve2's join has finished: its end-of-join write
    // (/etc/pve/nodes/pve2/ssh_known_hosts) shows up when its `pvecm add` returns.
    assert!(adds[1].start_ms >= adds[0].end_ms, "{adds:?}");
    // Every changing command was verified.
    for e in r.log.iter().filter(|e| !e.query) {
        assert_eq!(e.verified, Some(true), "{e:?}");
    }
}

#[test]
fn minipc_converges_installing_ceph() {
    let plan = example::minipc_plan();
    let r = run(&plan, Faults::default(), 2);
    assert_converged(&plan, &r);
    let installs: Vec<_> = r
        .log
        .iter()
        .filter(|e| e.command.starts_with("pveceph install"))
        .collect();
    assert_eq!(installs.len(), 3);
    assert!(installs.iter().all(|e| e.command.contains("--version reef")
        && e.command.contains("--repository no-subscription")));
    // Blank disks with wipe = true are not zapped.
    assert!(!r.log.iter().any(|e| e.command.contains("zap")));
}

fn check_no_unknown_flags(r: &SimReport) {
    for e in &r.log {
        assert!(
            !e.stderr_tail.contains("Unknown option")
                && !e.stderr_tail.contains("unrecognized arguments")
                && !e.stderr_tail.contains("unable to parse")
                && !e.stderr_tail.contains("not simulated"),
            "command rejected by the flag table: {e:?}"
        );
    }
}

#[test]
fn every_command_uses_documented_flags() {
    for plan in [example::lab_plan(), example::minipc_plan()] {
        let r = run(&plan, Faults::default(), 3);
        assert!(r.all_done());
        check_no_unknown_flags(&r);
    }
}

/// Kill points of a clean run: before and after every state write (step boundaries)
/// and after every command (it took effect, the agent never saw the result).
fn boundary_kills(plan: &Plan) -> Vec<Kill> {
    boundary_kills_with(plan, &Faults::default())
}

fn boundary_kills_with(plan: &Plan, faults: &Faults) -> Vec<Kill> {
    let clean = run(plan, faults.clone(), 7);
    let mut kills = Vec::new();
    for (node, calls) in &clean.calls {
        for (i, kind) in calls.iter().enumerate() {
            let i = i as u64;
            match *kind {
                "write-state" => {
                    kills.push(Kill {
                        node: node.clone(),
                        run: 0,
                        call: i,
                        after: false,
                    });
                    kills.push(Kill {
                        node: node.clone(),
                        run: 0,
                        call: i,
                        after: true,
                    });
                }
                "run" => kills.push(Kill {
                    node: node.clone(),
                    run: 0,
                    call: i,
                    after: true,
                }),
                _ => {}
            }
        }
    }
    kills
}

#[test]
fn killed_at_every_step_boundary_still_converges() {
    for plan in [example::lab_plan(), example::minipc_plan()] {
        let kills = boundary_kills(&plan);
        assert!(kills.len() > 50, "{} kill points", kills.len());
        // Independent simulations: spread them over a few threads.
        std::thread::scope(|sc| {
            for chunk in kills.chunks(kills.len().div_ceil(4)) {
                let plan = &plan;
                sc.spawn(move || {
                    for (n, k) in chunk.iter().enumerate() {
                        let r = run(
                            plan,
                            Faults {
                                kills: vec![k.clone()],
                                restart_delay_secs: 30,
                                ..Faults::default()
                            },
                            n as u64,
                        );
                        assert_eq!(r.kills_done, 1, "kill {k:?} happened");
                        assert_converged(plan, &r);
                    }
                });
            }
        });
    }
}

#[test]
fn random_kills_over_many_seeds_converge() {
    let plan = example::lab_plan();
    let total: u32 = std::thread::scope(|sc| {
        let handles: Vec<_> = (0..4u64)
            .map(|t| {
                let plan = &plan;
                sc.spawn(move || {
                    let mut total = 0;
                    for seed in (0..200).filter(|s| s % 4 == t) {
                        let r = run(
                            plan,
                            Faults {
                                random_kills: 3,
                                restart_delay_secs: 20,
                                ..Faults::default()
                            },
                            seed,
                        );
                        total += r.kills_done;
                        assert_converged(plan, &r);
                    }
                    total
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert!(total > 200, "random kills happened ({total})");
}

#[test]
fn a_peer_twenty_minutes_late_is_waited_for() {
    let plan = example::lab_plan();
    let mut f = Faults::default();
    f.late.insert("pve3".into(), 1200);
    let r = run(&plan, f, 4);
    assert_converged(&plan, &r);
    let create = r
        .log
        .iter()
        .find(|e| e.command.starts_with("pvecm create"))
        .unwrap();
    assert!(
        create.start_ms >= 1_200_000,
        "founder waited for every peer"
    );
    assert!(r
        .events
        .iter()
        .any(|e| e.node == "pve1" && e.text.contains("pve3 on mgmt (10.2.21.68)")));
}

#[test]
fn a_peer_that_never_comes_fails_clearly_without_damage() {
    let plan = example::lab_plan();
    let mut f = Faults::default();
    f.absent.insert("pve3".into());
    let r = run(&plan, f, 5);
    assert_eq!(r.outcomes["pve3"], Outcome::NeverStarted);
    let Outcome::Failed(e) = &r.outcomes["pve1"] else {
        panic!("founder should fail: {:?}", r.outcomes)
    };
    assert!(
        e.contains("pve3 on mgmt (10.2.21.68)") && e.contains("gave up after"),
        "{e}"
    );
    assert!(r.world.cluster.is_none(), "no cluster created");
    assert!(!r.log.iter().any(|e| !e.query), "no changing command ran");
    assert!(r.world.disk_writes.is_empty());
    let st: serde_json::Value = serde_json::from_str(&r.states["pve1"]).unwrap();
    assert_eq!(st["peers"]["pve3/storage"]["reachable"], false);
    assert_eq!(st["peers"]["pve2/storage"]["reachable"], true);
    assert!(st["failed"].as_str().unwrap().contains("pve3"));
}

#[test]
fn a_join_lock_conflict_is_retried() {
    let plan = example::lab_plan();
    let f = Faults {
        fail: vec![FailRule {
            node: Some("pve3".into()),
            command: "pvecm add".into(),
            times: 2,
            kind: FailKind::LockTimeout,
        }],
        ..Faults::default()
    };
    let r = run(&plan, f, 6);
    assert_converged(&plan, &r);
    let adds: Vec<_> = r
        .log
        .iter()
        .filter(|e| e.node == "pve3" && e.command.starts_with("pvecm add"))
        .collect();
    assert_eq!(adds.len(), 3);
    // Exit 0 both times, but verification caught it.
    assert!(adds[..2]
        .iter()
        .all(|e| e.exit == 0 && e.verified == Some(false)));
    // The remote addnode's error is task output; stderr has the worker's own message.
    assert!(
        adds[0]
            .stderr_tail
            .starts_with("unable to add node: command failed (ssh 10.2.21.66"),
        "{}",
        adds[0].stderr_tail
    );
    assert_eq!(adds[2].verified, Some(true));
}

#[test]
fn lying_exit_codes_are_caught_by_verification() {
    let plan = example::lab_plan();
    let f = Faults {
        fail: vec![
            FailRule {
                node: None,
                command: "pvecm create".into(),
                times: 1,
                kind: FailKind::TaskError("corosync-keygen failed".into()),
            },
            FailRule {
                node: None,
                command: "pveceph pool create".into(),
                times: 1,
                kind: FailKind::TaskError("mon_command failed - pool creation timed out".into()),
            },
        ],
        ..Faults::default()
    };
    let r = run(&plan, f, 8);
    assert_converged(&plan, &r);
    let pools: Vec<_> = r
        .log
        .iter()
        .filter(|e| e.command.starts_with("pveceph pool create"))
        .collect();
    assert_eq!(pools.len(), 2);
    assert_eq!((pools[0].exit, pools[0].verified), (0, Some(false)));
}

#[test]
fn a_dirty_disk_without_wipe_is_refused_and_untouched() {
    let plan = example::lab_plan();
    let f = Faults {
        disks: vec![("pve2".into(), "/dev/sdc".into(), DiskContent::Ext4)],
        ..Faults::default()
    };
    let r = run(&plan, f, 9);
    let Outcome::Failed(e) = &r.outcomes["pve2"] else {
        panic!("pve2 should refuse: {:?}", r.outcomes)
    };
    assert!(
        e.contains("refusing to use /dev/sdc on pve2")
            && e.contains("ext4")
            && e.contains("wipe = true"),
        "{e}"
    );
    assert!(!r
        .world
        .disk_writes
        .iter()
        .any(|w| w.node == "pve2" && w.device == "/dev/sdc"));
    assert_eq!(
        r.world.nodes[1]
            .disks
            .iter()
            .find(|d| d.path == "/dev/sdc")
            .unwrap()
            .content,
        DiskContent::Ext4
    );
    assert_safe_disks(&plan, &r);
}

#[test]
fn a_dirty_disk_with_wipe_is_zapped_once() {
    let mut plan = example::lab_plan();
    plan.nodes[1].osds[1].wipe = true;
    let f = Faults {
        disks: vec![("pve2".into(), "/dev/sdc".into(), DiskContent::Gpt)],
        ..Faults::default()
    };
    let r = run(&plan, f, 10);
    assert_converged(&plan, &r);
    let zaps: Vec<_> = r
        .world
        .disk_writes
        .iter()
        .filter(|w| w.op == "zap")
        .collect();
    assert_eq!(zaps.len(), 1);
    assert_eq!(zaps[0].before, DiskContent::Gpt);
}

#[test]
fn a_fatal_error_sends_a_mail_naming_node_step_and_error() {
    let plan = example::lab_plan();
    let f = Faults {
        fail: vec![FailRule {
            node: Some("pve3".into()),
            command: "pveceph mds create".into(),
            times: 100,
            kind: FailKind::TaskError("ceph-mds@pve3.service failed to start".into()),
        }],
        ..Faults::default()
    };
    let r = run(&plan, f, 12);
    let Outcome::Failed(e) = &r.outcomes["pve3"] else {
        panic!("{:?}", r.outcomes)
    };
    assert!(
        e.contains("ceph-mds") && e.contains("giving up after 8 attempts"),
        "{e}"
    );
    let mail = r
        .world
        .mails
        .iter()
        .find(|m| m.from_node == "pve3" && m.target == "smtp-relay")
        .expect("failure mail");
    assert_eq!(mail.target, "smtp-relay");
    assert!(
        mail.subject.contains("pve3") && mail.subject.contains("ceph-mds"),
        "{mail:?}"
    );
    let st: serde_json::Value = serde_json::from_str(&r.states["pve3"]).unwrap();
    assert!(st["failed"].as_str().unwrap().contains("failed to start"));
    // The other nodes are unaffected: two MDS are enough for the file system.
    assert_eq!(r.outcomes["pve1"], Outcome::Done);
}

#[test]
fn a_rebooted_node_gets_fresh_wait_budgets() {
    // pve3 comes 40 minutes late: the founder gives up after the 30-minute peer
    // timeout, its unit re-runs on the next boot, and that run waits afresh.
    let plan = example::lab_plan();
    let mut f = Faults::default();
    f.late.insert("pve3".into(), 2400);
    let without_reboot = run(&plan, f.clone(), 13);
    assert!(matches!(
        without_reboot.outcomes["pve1"],
        Outcome::Failed(_)
    ));
    f.reboot_failed_after_secs = Some(300);
    let r = run(&plan, f, 13);
    assert_converged(&plan, &r);
    assert!(r
        .events
        .iter()
        .any(|e| e.node == "pve1" && e.text.contains("rebooted after a failed run")));
}

#[test]
fn pve9_rules_and_a_realm_converge() {
    use hcikit_firstboot::plan::{HaResource, Realm, SecretRef};
    let mut plan = example::lab_plan();
    plan.cluster.pve_major = 9;
    plan.ha.mode = hcikit_firstboot::plan::HaMode::Rules;
    plan.ha.resources = vec![HaResource {
        sid: "vm:100".into(),
        group: Some("ha-group01".into()),
        max_restart: 1,
        max_relocate: 1,
        state: "started".into(),
        comment: None,
    }];
    plan.realms = vec![Realm {
        name: "corp".into(),
        kind: "ldap".into(),
        options: [
            ("server1".to_string(), "dc1.corp.example".to_string()),
            ("base_dn".to_string(), "dc=corp,dc=example".to_string()),
            ("user_attr".to_string(), "uid".to_string()),
        ]
        .into_iter()
        .collect(),
        secret: Some(SecretRef::new("realm/corp/bind-password")),
        default: false,
        comment: None,
    }];
    let r = run(&plan, Faults::default(), 14);
    assert_converged(&plan, &r);
    check_no_unknown_flags(&r);
    // Item 2: the rule needs vm:100 to be HA-managed, which needs the guest: deferred.
    assert!(!r.log.iter().any(|e| e.command.starts_with("ha-manager")));
    let st: serde_json::Value = serde_json::from_str(&r.states["pve1"]).unwrap();
    assert_eq!(
        st["deferred"],
        serde_json::json!([
            "ha-manager add vm:100 --state started --max_restart 1 --max_relocate 1 --failback 0",
            "ha-manager rules add node-affinity ha-group01 --resources vm:100 --nodes pve1,pve2,pve3 --strict 1"
        ])
    );
    // What the admin is told to run is accepted by PVE 9's schemas.
    for d in st["deferred"].as_array().unwrap() {
        let argv: Vec<String> = d.as_str().unwrap().split(' ').map(str::to_string).collect();
        assert!(
            matches!(sim::schema::check(&argv, 9), Some(Ok(_))),
            "{d}: {:?}",
            sim::schema::check(&argv, 9)
        );
    }
    let realm = r
        .log
        .iter()
        .find(|e| {
            e.command
                .starts_with("perl - create /access/domains --realm corp")
        })
        .unwrap();
    assert!(
        realm.command.ends_with(" <stdin: password=<redacted>>"),
        "{}",
        realm.command
    );
    // The bind password reached Proxmox (on stdin), and is not in the public listing.
    assert_eq!(
        r.world.pmx.realm_secrets["corp"],
        hcikit_sim::world::sim_realm_secret("corp")
    );
    assert!(r.world.pmx.realms["corp"]
        .iter()
        .all(|(k, _)| k != "password"));
    for e in &r.log {
        for s in SimReport::secrets() {
            assert!(!e.command.contains(s));
        }
    }
}

#[test]
fn a_zap_is_never_repeated_on_our_osd_whatever_the_kill_point() {
    let mut plan = example::lab_plan();
    plan.nodes[1].osds[1].wipe = true;
    let dirty = Faults {
        disks: vec![("pve2".into(), "/dev/sdc".into(), DiskContent::Gpt)],
        restart_delay_secs: 30,
        ..Faults::default()
    };
    let kills: Vec<Kill> = boundary_kills_with(&plan, &dirty)
        .into_iter()
        .filter(|k| k.node == "pve2")
        .collect();
    assert!(kills.len() > 30);
    std::thread::scope(|sc| {
        for chunk in kills.chunks(kills.len().div_ceil(4)) {
            let (plan, dirty) = (&plan, &dirty);
            sc.spawn(move || {
                for k in chunk {
                    let r = run(
                        plan,
                        Faults {
                            kills: vec![k.clone()],
                            ..dirty.clone()
                        },
                        3,
                    );
                    assert_eq!(r.kills_done, 1);
                    assert_converged(plan, &r);
                    // Exactly one zap, of the foreign partition table: a kill after the
                    // zap finds a blank disk, a kill before it zaps again only what was
                    // never ours, and nothing zaps the OSD created afterwards.
                    let zaps: Vec<_> = r
                        .world
                        .disk_writes
                        .iter()
                        .filter(|w| w.op == "zap")
                        .collect();
                    assert_eq!(zaps.len(), 1, "{k:?}: {zaps:?}");
                    assert_eq!(zaps[0].before, DiskContent::Gpt, "{k:?}");
                }
            });
        }
    });
}

#[test]
fn a_late_storage_link_holds_the_cluster_creation() {
    let plan = example::lab_plan();
    let mut f = Faults::default();
    f.link_late.insert(("pve3".into(), "storage".into()), 600);
    let r = run(&plan, f, 15);
    assert_converged(&plan, &r);
    let create = r
        .log
        .iter()
        .find(|e| e.command.starts_with("pvecm create"))
        .unwrap();
    assert!(create.start_ms >= 600_000);
    assert!(r.events.iter().any(|e| e.node == "pve1"
        && e.text.contains("pve3 on storage (10.2.22.68)")
        && !e.text.contains("mgmt")));
}
