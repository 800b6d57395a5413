//! The systemd units follow the pending-flag pattern with the paths from `layout`.

use hcikit_firstboot::layout::{AGENT_BIN, APPLY_PENDING, RUN_PENDING};
use std::collections::BTreeMap;

fn unit(name: &str) -> BTreeMap<String, Vec<String>> {
    let p = format!(
        "{}/../overlays/etc/systemd/system/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}"));
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for l in text.lines().map(str::trim) {
        if l.starts_with('#') || l.starts_with('[') || l.is_empty() {
            continue;
        }
        let (k, v) = l.split_once('=').unwrap();
        m.entry(k.to_string()).or_default().push(v.to_string());
    }
    m
}

fn one<'a>(u: &'a BTreeMap<String, Vec<String>>, k: &str) -> &'a str {
    assert_eq!(u[k].len(), 1, "{k}");
    &u[k][0]
}

#[test]
fn apply_unit_runs_early_on_its_pending_flag() {
    let u = unit("hcikit-apply.service");
    assert_eq!(one(&u, "Type"), "oneshot");
    assert_eq!(one(&u, "RemainAfterExit"), "yes");
    assert_eq!(one(&u, "ConditionPathExists"), APPLY_PENDING);
    assert_eq!(one(&u, "ExecStart"), format!("{AGENT_BIN} apply"));
    assert!(one(&u, "ExecStartPost").ends_with(&format!("rm -f {APPLY_PENDING}")));
    assert_eq!(one(&u, "Before"), "network-pre.target");
    assert_eq!(one(&u, "Wants"), "network-pre.target");
    assert!(!u["WantedBy"].is_empty());
}

#[test]
fn run_unit_waits_for_network_and_pveproxy_on_its_pending_flag() {
    let u = unit("hcikit-firstboot.service");
    assert_eq!(one(&u, "Type"), "oneshot");
    assert_eq!(one(&u, "RemainAfterExit"), "yes");
    assert_eq!(one(&u, "ConditionPathExists"), RUN_PENDING);
    assert_eq!(one(&u, "ExecStart"), format!("{AGENT_BIN} run"));
    assert!(one(&u, "ExecStartPost").ends_with(&format!("rm -f {RUN_PENDING}")));
    let after = one(&u, "After");
    assert!(after.contains("network-online.target") && after.contains("pveproxy.service"));
    assert_eq!(one(&u, "Wants"), "network-online.target");
    assert_eq!(one(&u, "WantedBy"), "multi-user.target");
}
