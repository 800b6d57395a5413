//! The example specs (the two scenarios), loaded by the real spec loader, converge in the
//! simulated cluster; `hcikit simulate` shows it from the outside.

use hcikit_sim::{self as sim, SimConfig, SimReport};
use hcikit_tests::{hcikit_bin, workspace_root};
use std::process::Command;

fn simulate_example(name: &str) -> (hcikit_firstboot::plan::Plan, SimReport) {
    let spec = workspace_root()
        .join("examples")
        .join(format!("{name}.toml"));
    let loaded = hcikit::spec::load(&spec).expect("example loads");
    let r = sim::simulate(&loaded.plan, &SimConfig::default());
    (loaded.plan, r)
}

#[test]
fn examples_converge_to_the_scenarios_end_state() {
    for name in ["lab", "minipc"] {
        let (plan, r) = simulate_example(name);
        assert!(r.all_done(), "{name}: {:?}", r.outcomes);
        let w = r.world.summary();
        assert_eq!(w["cluster"]["quorate"], true, "{name}");
        assert_eq!(
            w["cluster"]["members"].as_array().unwrap().len(),
            plan.nodes.len()
        );
        assert_eq!(w["ceph"]["health"], "HEALTH_OK", "{name}: {:#}", w["ceph"]);
        let ceph = plan.ceph.as_ref().unwrap();
        assert_eq!(
            w["ceph"]["osds"].as_array().unwrap().len() as u32,
            ceph.osd_count
        );
        for p in &ceph.pools {
            assert!(
                w["storages"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|s| s["storage"] == p.name.as_str())
                    == p.add_storage,
                "{name}: storage of pool {}",
                p.name
            );
        }
        for f in &ceph.cephfs {
            assert!(w["ceph"]["filesystems"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x["name"] == f.name.as_str()));
        }
        assert_eq!(w["bootstrap-key-authorized"], false);
        for (k, v) in &plan.datacenter.options {
            assert_eq!(w["datacenter-options"][k], v.as_str(), "{name}: option {k}");
        }
    }
}

#[test]
fn simulate_command_prints_timeline_json_and_fails_on_a_missing_peer() {
    let spec = workspace_root().join("examples/lab.toml");
    let out = Command::new(hcikit_bin())
        .arg("simulate")
        .arg(&spec)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("$ pvecm create lab --link0 10.2.21.66 --link1 10.2.22.66"),
        "{text}"
    );
    assert!(text.contains("waiting for pve2 to join first"), "{text}");
    assert!(text.contains("HEALTH_OK"));
    assert!(text.contains("<stdin: password=<redacted>>"), "{text}");

    let out = Command::new(hcikit_bin())
        .args([
            "simulate",
            "--json",
            "--seed",
            "3",
            "--fault",
            "lock:pve3=1",
            "--fault",
            "random-kills=2",
        ])
        .arg(&spec)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let raw = String::from_utf8(out.stdout).unwrap();
    let v: serde_json::Value = serde_json::from_str(&raw).unwrap();
    let cmds = v["commands"].as_array().unwrap();
    assert!(cmds
        .iter()
        .any(|c| c["argv"].as_str().unwrap().starts_with("pvecm add") && c["verified"] == false));
    for c in cmds {
        assert!(
            c["node"].is_string()
                && c["start-ms"].is_u64()
                && c["end-ms"].is_u64()
                && c["exit"].is_i64()
        );
    }
    assert_eq!(v["world"]["ceph"]["health"], "HEALTH_OK");
    let real_password =
        std::fs::read_to_string(workspace_root().join("examples/secrets/smtp-password")).unwrap();
    for secret in SimReport::secrets()
        .iter()
        .copied()
        .chain([real_password.trim()])
    {
        assert!(!raw.contains(secret), "secret in simulate output");
    }

    let out = Command::new(hcikit_bin())
        .args(["simulate", "--fault", "absent:pve3"])
        .arg(&spec)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("pve3 on mgmt (10.2.21.68)"), "{text}");
    assert!(
        !text.contains("$ pvecm create"),
        "no cluster without every peer"
    );

    let out = Command::new(hcikit_bin())
        .args(["simulate", "--fault", "bogus"])
        .arg(&spec)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "a bad fault is bad input");
}

/// With `firstboot.report-url`, every agent reports its stages in order, each once.
#[test]
fn agents_report_their_stages_to_the_report_url() {
    let spec = workspace_root().join("examples/lab.toml");
    let mut plan = hcikit::spec::load(&spec).expect("example loads").plan;
    plan.firstboot.report_url = Some("http://10.2.21.5:8080/report".into());
    let r = sim::simulate(&plan, &SimConfig::default());
    assert!(r.all_done(), "{:?}", r.outcomes);
    for node in &plan.nodes {
        let stages: Vec<&str> = r
            .events
            .iter()
            .filter(|e| e.node == node.name)
            .filter_map(|e| {
                e.text
                    .strip_prefix("report to http://10.2.21.5:8080/report: ")
            })
            .collect();
        // Every lab node has OSDs and waits for HEALTH_OK.
        assert_eq!(
            stages,
            ["booted", "joined", "Ceph up", "HEALTH_OK"],
            "{}",
            node.name
        );
    }
}

/// A node whose first boot fails reports `failed` with the step and the reason.
#[test]
fn a_failed_first_boot_reports_its_reason() {
    let spec = workspace_root().join("examples/lab.toml");
    let mut plan = hcikit::spec::load(&spec).expect("example loads").plan;
    plan.firstboot.report_url = Some("http://10.2.21.5:8080/report".into());
    let mut cfg = SimConfig::default();
    cfg.faults.absent.insert("pve3".into());
    let r = sim::simulate(&plan, &cfg);
    let failed: Vec<&str> = r
        .events
        .iter()
        .filter(|e| e.node == "pve1")
        .filter_map(|e| {
            e.text
                .strip_prefix("report to http://10.2.21.5:8080/report: failed: ")
        })
        .collect();
    assert_eq!(failed.len(), 1, "{:?}", r.events);
    assert!(
        failed[0].starts_with("step peers: ") && failed[0].contains("pve3"),
        "{}",
        failed[0]
    );
}
