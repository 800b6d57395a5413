//! The fleet progress protocol: the JSON status message installers and first-boot agents
//! POST to `hcikit serve`, and a blocking client that never fails its caller's run.
//!
//! One message is one node's current stage:
//! `{"node":"pve1","stage":"writing","percent":42,"time":1767225600}`. The sink keeps the
//! newest message per node; a lost message is replaced by the next one, so the client
//! sends once, with short timeouts, and only logs a failure.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// The path `hcikit serve` accepts reports on.
pub const REPORT_PATH: &str = "/report";
/// Largest report body the sink reads; a report is a few hundred bytes.
pub const MAX_REPORT_BYTES: u64 = 4096;
/// Longest failure reason kept (characters); the rest is cut so a report stays small.
pub const MAX_REASON_CHARS: usize = 512;
/// Connect and whole-request timeout of [`send`]: a dead sink costs the run at most this.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(3);

/// Where a node is, from installer start to a healthy cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "stage", rename_all = "kebab-case")]
pub enum Stage {
    /// The installer (or the installed system) came up.
    Booted,
    /// The installer is writing the disk.
    Writing { percent: u8 },
    /// The disk is written and verified.
    Installed,
    /// `hcikit-firstboot apply` is installing the node's files.
    Applying,
    /// The node is a member of the corosync cluster (`cluster-create` or `cluster-join`
    /// done).
    Joined,
    /// The node's first OSD was created.
    CephUp,
    /// The cluster reached `HEALTH_OK` and the first boot is complete.
    #[serde(rename = "HEALTH_OK")]
    HealthOk,
    /// Install or first boot stopped; the reason is for the admin.
    Failed { reason: String },
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stage::Booted => f.write_str("booted"),
            Stage::Writing { percent } => write!(f, "writing {percent} %"),
            Stage::Installed => f.write_str("installed"),
            Stage::Applying => f.write_str("applying"),
            Stage::Joined => f.write_str("joined"),
            Stage::CephUp => f.write_str("Ceph up"),
            Stage::HealthOk => f.write_str("HEALTH_OK"),
            Stage::Failed { reason } => write!(f, "failed: {reason}"),
        }
    }
}

/// One status message.
/// Unknown fields are ignored (serde cannot deny them through `flatten`), so a newer
/// sender with more fields still reaches an older sink.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub node: String,
    #[serde(flatten)]
    pub stage: Stage,
    /// Seconds since the Unix epoch on the sender's clock (informational: the sink keeps
    /// its own receive time as "last seen", since a fresh node's clock may be wrong).
    pub time: u64,
}

impl Report {
    /// A report stamped with the current time; a long failure reason is shortened.
    pub fn now(node: &str, stage: Stage) -> Report {
        let time = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let stage = match stage {
            Stage::Failed { reason } => Stage::Failed {
                reason: shorten(&reason),
            },
            Stage::Writing { percent } => Stage::Writing {
                percent: percent.min(100),
            },
            s => s,
        };
        Report {
            node: node.to_string(),
            stage,
            time,
        }
    }

    /// Parses and checks a received body: a node name of at most 64 characters from
    /// `[A-Za-z0-9._-]`, a percentage of at most 100.
    pub fn parse(body: &[u8]) -> Result<Report, String> {
        let r: Report = serde_json::from_slice(body).map_err(|e| format!("bad report: {e}"))?;
        let ok_name = !r.node.is_empty()
            && r.node.len() <= 64
            && r.node
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !ok_name {
            return Err(format!("bad report: node {:?} is not a node name", r.node));
        }
        if let Stage::Writing { percent } = r.stage {
            if percent > 100 {
                return Err(format!("bad report: percent {percent} is over 100"));
            }
        }
        Ok(r)
    }
}

/// The stage a first-boot agent reports once `step` is done on its node, if any; `done`
/// are the ids of the node's done steps, `step` included (only the first OSD counts).
pub fn stage_after(step: &crate::steps::Step, done: &[String]) -> Option<Stage> {
    use crate::steps::Step;
    match step {
        Step::CreateCluster | Step::JoinCluster => Some(Stage::Joined),
        Step::Osd(_) => {
            let osds = done.iter().filter(|d| d.starts_with("ceph-osd:")).count();
            (osds <= 1).then_some(Stage::CephUp)
        }
        Step::Health => Some(Stage::HealthOk),
        _ => None,
    }
}

fn shorten(reason: &str) -> String {
    let one_line = reason.replace(['\n', '\r'], " ");
    match one_line.char_indices().nth(MAX_REASON_CHARS) {
        Some((i, _)) => format!("{}…", &one_line[..i]),
        None => one_line,
    }
}

/// Checks a report URL: `http://HOST:PORT/PATH` (no TLS: a report carries no secret and
/// the installer has no trust store). Returns what is wrong, for the spec validator.
pub fn check_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| "must start with http://".to_string())?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let _ = path;
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, p) = v6
            .split_once(']')
            .ok_or_else(|| "an IPv6 host needs a closing ]".to_string())?;
        (h, p.strip_prefix(':').unwrap_or(""))
    } else {
        authority.rsplit_once(':').unwrap_or((authority, ""))
    };
    if host.is_empty() || host.contains(['@', ' ']) {
        return Err("must name a host: http://HOST:PORT/PATH".into());
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(()),
        _ => Err("must name a port: http://HOST:PORT/PATH".into()),
    }
}

/// POSTs `report` to `url` once. Never fails: a sink that is down, slow or answers with an
/// error must not stop an install or a first boot, so the outcome is only logged.
pub fn send(url: &str, report: &Report) -> bool {
    let config = ureq::Agent::config_builder()
        .timeout_global(Some(SEND_TIMEOUT))
        .timeout_connect(Some(SEND_TIMEOUT))
        .http_status_as_error(true)
        // The sink answers on the address the admin named; no redirect is followed.
        .max_redirects(0)
        .build();
    let agent: ureq::Agent = config.into();
    let body = match serde_json::to_string(report) {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!("report not sent: {e}");
            return false;
        }
    };
    match agent
        .post(url)
        .header("Content-Type", "application/json")
        .send(body.as_bytes())
    {
        Ok(_) => true,
        Err(e) => {
            tracing::warn!("report to {url} not delivered: {e}");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_form_is_flat_and_kebab_case() {
        let r = Report {
            node: "pve1".into(),
            stage: Stage::Writing { percent: 42 },
            time: 7,
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"node":"pve1","stage":"writing","percent":42,"time":7}"#
        );
        let ok = br#"{"node":"pve2","stage":"HEALTH_OK","time":1}"#;
        assert_eq!(Report::parse(ok).unwrap().stage, Stage::HealthOk);
        let f = br#"{"node":"pve3","stage":"failed","reason":"disk /dev/sda missing","time":1}"#;
        assert_eq!(
            Report::parse(f).unwrap().stage.to_string(),
            "failed: disk /dev/sda missing"
        );
        let c = br#"{"node":"pve3","stage":"ceph-up","time":1}"#;
        assert_eq!(Report::parse(c).unwrap().stage.to_string(), "Ceph up");
    }

    #[test]
    fn bad_bodies_are_refused_with_the_reason() {
        for (body, want) in [
            (&br#"{"node":"../x","stage":"booted","time":1}"#[..], "node"),
            (
                br#"{"node":"a","stage":"writing","percent":101,"time":1}"#,
                "percent",
            ),
            (
                br#"{"node":"a","stage":"exploded","time":1}"#,
                "unknown variant",
            ),
            (br#"{"node":"a","time":1}"#, "stage"),
            (b"not json", "bad report"),
        ] {
            let e = Report::parse(body).unwrap_err();
            assert!(e.contains(want), "{e} should mention {want}");
        }
    }

    #[test]
    fn long_reasons_are_cut_to_one_line() {
        let r = Report::now(
            "a",
            Stage::Failed {
                reason: format!("x\n{}", "y".repeat(2000)),
            },
        );
        let Stage::Failed { reason } = r.stage else {
            panic!("stage changed")
        };
        assert!(!reason.contains('\n'));
        assert_eq!(reason.chars().count(), MAX_REASON_CHARS + 1);
    }

    #[test]
    fn steps_map_to_fleet_stages() {
        use crate::steps::Step;
        let none: &[String] = &[];
        assert_eq!(stage_after(&Step::JoinCluster, none), Some(Stage::Joined));
        assert_eq!(stage_after(&Step::CreateCluster, none), Some(Stage::Joined));
        let one = ["ceph-osd:/dev/sdb".to_string()];
        let two = [one[0].clone(), "ceph-osd:/dev/sdc".to_string()];
        assert_eq!(
            stage_after(&Step::Osd("/dev/sdb".into()), &one),
            Some(Stage::CephUp)
        );
        assert_eq!(stage_after(&Step::Osd("/dev/sdc".into()), &two), None);
        assert_eq!(stage_after(&Step::Health, none), Some(Stage::HealthOk));
        assert_eq!(stage_after(&Step::Mon, none), None);
    }

    #[test]
    fn report_urls() {
        for ok in [
            "http://10.0.0.5:8080/report",
            "http://deploy.lab:80/",
            "http://[fd00::1]:8080/report",
        ] {
            assert_eq!(check_url(ok), Ok(()), "{ok}");
        }
        for (bad, want) in [
            ("https://10.0.0.5:8080/report", "http://"),
            ("http://10.0.0.5/report", "port"),
            ("http://:8080/report", "host"),
            ("http://10.0.0.5:0/", "port"),
            ("http://[fd00::1/", "]"),
        ] {
            let e = check_url(bad).unwrap_err();
            assert!(e.contains(want), "{bad}: {e}");
        }
    }

    #[test]
    fn a_dead_sink_costs_a_bounded_time_and_no_error() {
        // A port nobody listens on: bind, learn the port, close.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let t = std::time::Instant::now();
        let sent = send(
            &format!("http://127.0.0.1:{port}/report"),
            &Report::now("pve1", Stage::Booted),
        );
        assert!(!sent);
        assert!(t.elapsed() <= SEND_TIMEOUT + Duration::from_secs(1));
    }
}
