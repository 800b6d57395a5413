//! `hcikit-firstboot status`: the run's progress from the state file, for humans or as
//! JSON. The state file holds no secret (errors are redacted before they are recorded).

use crate::state::State;
use serde_json::json;

/// Renders the state; `json` gives a stable machine-readable form.
pub fn render(st: &State, as_json: bool) -> String {
    let phase = if st.finished {
        "done"
    } else if st.failed.is_some() {
        "failed"
    } else if st.waiting_for.is_some() {
        "waiting"
    } else if st.doing.is_some() {
        "running"
    } else {
        "starting"
    };
    if as_json {
        let peers: Vec<_> = st
            .peers
            .values()
            .map(|p| {
                json!({"node": p.node, "network": p.network, "ip": p.ip,
                       "reachable": p.reachable, "checked-ms": p.checked_ms})
            })
            .collect();
        let v = json!({
            "node": st.node,
            "phase": phase,
            "step": st.step,
            "doing": st.doing,
            "waiting-for": st.waiting_for,
            "done": st.done,
            "peers": peers,
            "last-error": st.last_error,
            "failed": st.failed,
            "attempts": st.attempts,
            "deferred": st.deferred,
            "warnings": st.warnings,
            "updated-ms": st.updated_ms,
        });
        return serde_json::to_string_pretty(&v).expect("json") + "\n";
    }
    let mut s = format!("node:    {}\nphase:   {phase}\n", st.node);
    if let Some(step) = &st.step {
        s.push_str(&format!("step:    {step}\n"));
    }
    if let Some(d) = &st.doing {
        s.push_str(&format!("doing:   {d}\n"));
    }
    if let Some(w) = &st.waiting_for {
        s.push_str(&format!("waiting: {w}\n"));
    }
    s.push_str(&format!("done:    {} steps\n", st.done.len()));
    if !st.peers.is_empty() {
        s.push_str("peers:\n");
        for p in st.peers.values() {
            s.push_str(&format!(
                "  {:<10} {:<10} {:<16} {}\n",
                p.node,
                p.network,
                p.ip,
                if p.reachable {
                    "reachable"
                } else {
                    "NOT reachable"
                }
            ));
        }
    }
    if !st.deferred.is_empty() {
        s.push_str("not applied yet (run these once the guests exist):\n");
        for d in &st.deferred {
            s.push_str(&format!("  {d}\n"));
        }
    }
    for w in &st.warnings {
        s.push_str(&format!("WARNING: {w}\n"));
    }
    if let Some(e) = &st.failed {
        s.push_str(&format!("FAILED:  {e}\n"));
    } else if let Some(e) = &st.last_error {
        s.push_str(&format!("last error: {e}\n"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::PeerState;

    #[test]
    fn shows_missing_peer_and_waiting_reason() {
        let mut st = State::new("pve1");
        st.step = Some("peers".into());
        st.waiting_for = Some("peers to answer: pve3 on storage (10.2.22.68)".into());
        st.peers.insert(
            "pve3/storage".into(),
            PeerState {
                node: "pve3".into(),
                network: "storage".into(),
                ip: "10.2.22.68".into(),
                reachable: false,
                checked_ms: 5,
            },
        );
        let h = render(&st, false);
        assert!(h.contains("phase:   waiting"), "{h}");
        assert!(h.contains("pve3") && h.contains("NOT reachable"), "{h}");
        let j: serde_json::Value = serde_json::from_str(&render(&st, true)).unwrap();
        assert_eq!(j["phase"], "waiting");
        assert_eq!(j["peers"][0]["reachable"], false);
        assert_eq!(j["step"], "peers");
    }
}
