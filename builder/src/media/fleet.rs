//! The fleet's progress as `hcikit serve` shows it: the newest report per node, as one
//! table (a terminal), one plain line per report (logs, pipes) or JSON lines (scripts).

use hcikit_firstboot::report::{Report, Stage};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// One node's newest report and when the server received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub stage: Stage,
    pub last_seen: SystemTime,
    /// The time the node put into its report (its own clock).
    pub sent: u64,
}

/// Every node that reported, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fleet {
    pub nodes: BTreeMap<String, Entry>,
}

/// One received report as a JSON line: the report plus the server's receive time.
#[derive(Debug, Serialize)]
struct JsonLine<'a> {
    #[serde(flatten)]
    report: &'a Report,
    /// Seconds since the Unix epoch on the server's clock.
    received: u64,
    /// The stage as the table shows it.
    shown: String,
}

impl Fleet {
    /// Records `report`, received at `at`.
    pub fn apply(&mut self, report: &Report, at: SystemTime) {
        self.nodes.insert(
            report.node.clone(),
            Entry {
                stage: report.stage.clone(),
                last_seen: at,
                sent: report.time,
            },
        );
    }

    /// The nodes whose newest stage is a failure, with the reason.
    pub fn failed(&self) -> Vec<(&str, &str)> {
        self.nodes
            .iter()
            .filter_map(|(n, e)| match &e.stage {
                Stage::Failed { reason } => Some((n.as_str(), reason.as_str())),
                _ => None,
            })
            .collect()
    }

    /// The table: a header, then one row per node in name order; "last seen" relative to
    /// `now`.
    pub fn table(&self, now: SystemTime) -> String {
        let stage_w = self
            .nodes
            .values()
            .map(|e| e.stage.to_string().chars().count())
            .max()
            .unwrap_or(0)
            .max("STAGE".len());
        let node_w = self
            .nodes
            .keys()
            .map(|n| n.len())
            .max()
            .unwrap_or(0)
            .max("NODE".len());
        let mut s = format!("{:node_w$}  {:stage_w$}  LAST SEEN\n", "NODE", "STAGE");
        if self.nodes.is_empty() {
            s.push_str("(no node has reported yet)\n");
        }
        for (node, e) in &self.nodes {
            let ago = now.duration_since(e.last_seen).unwrap_or(Duration::ZERO);
            s.push_str(&format!(
                "{node:node_w$}  {:stage_w$}  {} ago\n",
                e.stage.to_string(),
                ago_text(ago)
            ));
        }
        s
    }
}

/// A plain line for one report: `pve1: writing 42 %`.
pub fn plain_line(report: &Report) -> String {
    format!("{}: {}", report.node, report.stage)
}

/// A JSON line for one report (no trailing newline).
pub fn json_line(report: &Report, at: SystemTime) -> String {
    serde_json::to_string(&JsonLine {
        report,
        received: at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        shown: report.stage.to_string(),
    })
    .expect("a report serialises")
}

fn ago_text(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        _ => format!("{} h", s / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(node: &str, stage: Stage) -> Report {
        Report {
            node: node.into(),
            stage,
            time: 100,
        }
    }

    #[test]
    fn newest_report_per_node_in_name_order() {
        let t0 = UNIX_EPOCH + Duration::from_secs(1_000);
        let mut f = Fleet::default();
        f.apply(&report("pve2", Stage::Booted), t0);
        f.apply(&report("pve1", Stage::Writing { percent: 10 }), t0);
        f.apply(
            &report("pve1", Stage::Writing { percent: 55 }),
            t0 + Duration::from_secs(3),
        );
        f.apply(
            &report(
                "pve3",
                Stage::Failed {
                    reason: "no disk matches install-disk".into(),
                },
            ),
            t0,
        );
        let table = f.table(t0 + Duration::from_secs(5));
        let want = [
            "NODE  STAGE                                 LAST SEEN\n",
            "pve1  writing 55 %                          2 s ago\n",
            "pve2  booted                                5 s ago\n",
            "pve3  failed: no disk matches install-disk  5 s ago\n",
        ]
        .concat();
        assert_eq!(table, want);
        assert_eq!(f.failed(), vec![("pve3", "no disk matches install-disk")]);
    }

    #[test]
    fn empty_fleet_and_long_ago() {
        let f = Fleet::default();
        assert!(f.table(UNIX_EPOCH).contains("no node has reported yet"));
        assert_eq!(ago_text(Duration::from_secs(600)), "10 min");
        assert_eq!(ago_text(Duration::from_secs(7200)), "2 h");
    }

    #[test]
    fn lines_for_logs_and_scripts() {
        let r = report("pve1", Stage::CephUp);
        assert_eq!(plain_line(&r), "pve1: Ceph up");
        let j: serde_json::Value =
            serde_json::from_str(&json_line(&r, UNIX_EPOCH + Duration::from_secs(5))).unwrap();
        assert_eq!(j["node"], "pve1");
        assert_eq!(j["stage"], "ceph-up");
        assert_eq!(j["received"], 5);
        assert_eq!(j["shown"], "Ceph up");
    }
}
