//! Rendered files checked by the real parsers: ifupdown2 for `/etc/network/interfaces`,
//! corosync for `corosync.conf`, `ceph-conf` for `ceph.conf`. Each test first shows that
//! the tool rejects a broken input, so a pass means something.
//!
//! A test whose tool is missing prints a SKIPPED note on a developer's machine and FAILS
//! under CI (`CI=true`), which installs ifupdown2, corosync, ceph-common, iproute2 and
//! util-linux: a skip there would hide a broken install step.

mod render_support;

use hcikit::render::files::NodeFile;
use hcikit::render::{render_all, RenderOptions};
use hcikit_firstboot::plan::Plan;
use hcikit_tests::require_tool;
use render_support::*;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Mutex;

fn all_files(plan: &Plan) -> Vec<(String, Vec<NodeFile>)> {
    render_all(plan, &secrets(), &RenderOptions::default())
        .unwrap()
        .into_iter()
        .collect()
}

fn fixtures() -> Vec<(&'static str, Plan)> {
    vec![
        ("lab-bond", lab_plan(true)),
        ("bond-under-bridge", bond_under_bridge()),
        ("example-lab", example_plan("lab")),
        ("example-minipc", example_plan("minipc")),
    ]
}

/// The management bridge on an active-backup bond (no hash policy, no LACP rate).
fn bond_under_bridge() -> Plan {
    let mut p = lab_plan(false);
    p.networks[0].device = hcikit_firstboot::plan::NetDevice::Bond {
        name: "bond1".into(),
        slaves: vec!["ens16".into(), "ens17".into()],
        mode: hcikit_firstboot::plan::BondMode::ActiveBackup,
        miimon: 100,
        xmit_hash_policy: None,
        lacp_rate: None,
    };
    p
}

fn output(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"))
}

fn show(o: &Output) -> String {
    format!(
        "{}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

// ---------------------------------------------------------------------------------------
// ifupdown2

/// ifupdown2 holds one machine-wide lock (`/run/network/.lock`) even for a syntax check
/// and exits 89 when another instance holds it: serialise our runs, retry on 89.
static IFUPDOWN: Mutex<()> = Mutex::new(());
const IFUPDOWN_ALREADY_RUNNING: i32 = 89;

/// ifupdown2 keeps its lock in `/run/network`, which the boot creates (not the package):
/// on a machine that never booted with ifupdown2 every run exits 89 until it exists.
const IFUPDOWN_RUN_DIR: &str = "/run/network";

fn ifup_syntax_check(file: &Path) -> Output {
    let _g = IFUPDOWN.lock().unwrap_or_else(|e| e.into_inner());
    std::fs::create_dir_all(IFUPDOWN_RUN_DIR)
        .unwrap_or_else(|e| panic!("creating {IFUPDOWN_RUN_DIR} for ifupdown2's lock: {e}"));
    for _ in 0..100 {
        let o = output(
            Command::new("ifup")
                .arg("-i")
                .arg(file)
                .args(["-a", "--syntax-check"]),
        );
        if o.status.code() != Some(IFUPDOWN_ALREADY_RUNNING) {
            return o;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("ifupdown2 lock ({IFUPDOWN_RUN_DIR}/.lock) stayed busy for 10 s");
}

fn ifquery(file: &Path) -> Vec<Value> {
    // `ifquery -a` exits 0 even on errors; its JSON is what we check.
    let o = output(
        Command::new("ifquery")
            .arg("-i")
            .arg(file)
            .args(["-a", "-o", "json"]),
    );
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("ifquery json: {e}\n{}", show(&o)))
}

fn iface<'a>(q: &'a [Value], name: &str) -> &'a Value {
    q.iter()
        .find(|i| i["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {q:#?}"))
}

#[test]
fn interfaces_pass_ifupdown2_and_carry_the_planned_addresses() {
    if !require_tool("ifup", "ifupdown2") || !require_tool("ifquery", "ifupdown2") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();

    // The check can fail: a bad bond mode is rejected.
    let bad = write(
        dir.path(),
        "bad",
        b"auto bond0\niface bond0 inet static\n\taddress 10.0.0.1/24\n\tbond-slaves ens19\n\tbond-mode nonsense\n",
    );
    let o = ifup_syntax_check(&bad);
    assert!(
        !o.status.success(),
        "ifupdown2 accepted a bad bond mode: {}",
        show(&o)
    );

    for (fixture, plan) in fixtures() {
        for (node, files) in all_files(&plan) {
            let n = plan.node(&node).unwrap();
            let path = write(
                dir.path(),
                &format!("{fixture}-{node}"),
                &file(&files, "/etc/network/interfaces").contents,
            );
            let o = ifup_syntax_check(&path);
            assert!(o.status.success(), "{fixture}/{node}: {}", show(&o));

            let q = ifquery(&path);
            assert_eq!(iface(&q, "lo")["addr_method"], "loopback");
            for net in &plan.networks {
                let a = n.address_on(&net.name).unwrap();
                let i = iface(&q, &net.address_iface);
                let cfg = &i["config"];
                assert_eq!(i["auto"], true, "{fixture}/{node} {i}");
                assert_eq!(i["addr_method"], "static", "{fixture}/{node} {i}");
                assert_eq!(cfg["address"], a.ip_cidr.as_str(), "{fixture}/{node} {i}");
                match &net.gateway {
                    Some(g) => assert_eq!(cfg["gateway"], g.as_str(), "{i}"),
                    None => assert!(cfg.get("gateway").is_none(), "{i}"),
                }
                if net.bridge.is_some() {
                    assert_eq!(cfg["bridge-ports"], net.device.name(), "{i}");
                    assert_eq!(cfg["bridge-stp"], "off", "{i}");
                    assert_eq!(cfg["bridge-fd"], "0", "{i}");
                }
                if let hcikit_firstboot::plan::NetDevice::Bond {
                    name, slaves, mode, ..
                } = &net.device
                {
                    let b = &iface(&q, name)["config"];
                    assert_eq!(b["bond-slaves"], slaves.join(" ").as_str(), "{b}");
                    assert_eq!(b["bond-mode"], mode.as_str(), "{b}");
                    if net.mtu != 1500 {
                        assert_eq!(b["mtu"], net.mtu.to_string().as_str(), "{b}");
                    }
                }
                if net.mtu == 1500 {
                    assert!(cfg.get("mtu").is_none(), "{i}");
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// corosync

/// `corosync -t` only accepts a config in which it finds the local node by one of its
/// addresses, so each node's file is checked in a private network namespace whose
/// loopback carries that node's link addresses (needs root, like `unshare -n`).
fn corosync_check(conf: &Path, local_ips: &[String]) -> Output {
    let mut script = String::from("set -e; ip link set lo up; ");
    for ip in local_ips {
        script.push_str(&format!("ip addr add {ip}/32 dev lo; "));
    }
    script.push_str("exec corosync -t -c \"$1\"");
    output(
        Command::new("unshare")
            .args(["-n", "sh", "-c", &script, "sh"])
            .arg(conf),
    )
}

fn can_unshare_net() -> bool {
    let ok = Command::new("unshare")
        .args(["-n", "ip", "link", "set", "lo", "up"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    ok || hcikit_tests::skip_or_fail("cannot create a network namespace (`unshare -n`, needs root)")
}

#[test]
fn corosync_conf_is_accepted_by_corosync_on_every_node() {
    if !require_tool("corosync", "corosync")
        || !require_tool("ip", "iproute2")
        || !require_tool("unshare", "util-linux")
        || !can_unshare_net()
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // `secauth: on` makes corosync read an authkey; the rendered file relies on the default
    // /etc/corosync/authkey (pvecm creates it), so the checked copy names a temporary key.
    let key = write(dir.path(), "authkey", &[0x5a; 256]);
    let with_key = |text: &str| {
        assert!(text.contains("\n  ip_version:"), "{text}");
        text.replacen(
            "\n  ip_version:",
            &format!("\n  keyfile: {}\n  ip_version:", key.display()),
            1,
        )
    };

    for (fixture, plan) in fixtures() {
        for (node, files) in all_files(&plan) {
            let text = with_key(
                &String::from_utf8(file(&files, "/etc/pve/corosync.conf").contents.clone())
                    .unwrap(),
            );
            let conf = write(
                dir.path(),
                &format!("{fixture}-{node}.conf"),
                text.as_bytes(),
            );
            let ips: Vec<String> = plan
                .node(&node)
                .unwrap()
                .links
                .iter()
                .map(|l| l.ip.clone())
                .collect();
            let o = corosync_check(&conf, &ips);
            assert!(o.status.success(), "{fixture}/{node}: {}", show(&o));

            // The check can fail: without the node's addresses corosync finds no local node.
            let o = corosync_check(&conf, &["192.0.2.99".to_string()]);
            assert!(!o.status.success(), "{fixture}/{node}: {}", show(&o));
        }
    }

    // ... and a duplicated node id is rejected.
    let plan = lab_plan(false);
    let files = &all_files(&plan)[0].1;
    let text = String::from_utf8(file(files, "/etc/pve/corosync.conf").contents.clone())
        .unwrap()
        .replace("nodeid: 2", "nodeid: 1");
    let conf = write(dir.path(), "dup.conf", with_key(&text).as_bytes());
    let o = corosync_check(&conf, &["10.2.21.66".to_string()]);
    assert!(
        !o.status.success(),
        "duplicate nodeid accepted: {}",
        show(&o)
    );
}

// ---------------------------------------------------------------------------------------
// ceph-conf

fn ceph_lookup(conf: &Path, args: &[&str]) -> String {
    let o = output(Command::new("ceph-conf").arg("-c").arg(conf).args(args));
    assert!(o.status.success(), "ceph-conf {args:?}: {}", show(&o));
    String::from_utf8(o.stdout).unwrap().trim_end().to_string()
}

#[test]
fn ceph_conf_reads_back_through_ceph_conf() {
    if !require_tool("ceph-conf", "ceph-common") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // The check can fail: an unset key is an error.
    let empty = write(dir.path(), "empty.conf", b"[global]\n");
    let o = output(
        Command::new("ceph-conf")
            .arg("-c")
            .arg(&empty)
            .args(["--lookup", "mon_host"]),
    );
    assert!(!o.status.success(), "{}", show(&o));

    for (fixture, plan) in fixtures() {
        let c = plan.ceph.as_ref().unwrap();
        let files = &all_files(&plan)[0].1;
        let conf = write(
            dir.path(),
            &format!("{fixture}.conf"),
            &file(files, "/etc/pve/ceph.conf").contents,
        );
        let mon_ips: Vec<String> = c
            .mons
            .iter()
            .map(|m| {
                plan.node(m)
                    .unwrap()
                    .address_on(&c.public_network)
                    .unwrap()
                    .ip
                    .clone()
            })
            .collect();
        assert_eq!(
            ceph_lookup(&conf, &["--lookup", "mon_host"]),
            mon_ips.join(" ")
        );
        assert_eq!(
            ceph_lookup(&conf, &["--lookup", "public_network"]),
            c.public_cidr
        );
        assert_eq!(
            ceph_lookup(&conf, &["--lookup", "cluster_network"]),
            c.cluster_cidr
        );
        assert_eq!(
            ceph_lookup(&conf, &["--lookup", "osd_pool_default_size"]),
            c.size.to_string()
        );
        for (mon, ip) in c.mons.iter().zip(&mon_ips) {
            assert_eq!(
                ceph_lookup(
                    &conf,
                    &["-s", &format!("mon.{mon}"), "--lookup", "public_addr"]
                ),
                *ip
            );
        }
        for (section, kv) in &c.extra_config {
            for (k, v) in kv {
                assert_eq!(ceph_lookup(&conf, &["-s", section, "--lookup", k]), *v);
            }
        }
    }
    // minipc's extra option is what an OSD daemon sees.
    let plan = example_plan("minipc");
    let files = &all_files(&plan)[0].1;
    let conf = write(
        dir.path(),
        "mini.conf",
        &file(files, "/etc/pve/ceph.conf").contents,
    );
    assert_eq!(
        ceph_lookup(&conf, &["-n", "osd.0", "--lookup", "osd_memory_target"]),
        "2147483648"
    );
}
