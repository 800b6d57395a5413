//! `hcikit simulate`: the whole first boot of every node of a spec, run by the real
//! first-boot agent against the simulated Proxmox VE + Ceph cluster, in virtual time.

use anyhow::Result;
use hcikit_sim::{self as sim, critical, Faults, Latencies, Measure, SimConfig, SimReport};
use serde_json::json;
use std::fmt::Write as _;
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The cluster spec, e.g. cluster.toml.
    pub spec: PathBuf,
    /// Print the command log and the final world as JSON.
    #[arg(long)]
    pub json: bool,
    /// Seed for randomised faults.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Show read-only queries in the timeline too.
    #[arg(long)]
    pub queries: bool,
    /// Inject a fault (repeatable): late:NODE=SECS, absent:NODE,
    /// link-late:NODE/NETWORK=SECS, lock:NODE=N, task-error:NODE:COMMAND=N,
    /// kill:NODE@CALL, kill-after:NODE@CALL, random-kills=N, restart=SECS, reboot-failed=SECS,
    /// disk:NODE:DEV=ext4|gpt|lvm.
    #[arg(long = "fault", alias = "faults", value_name = "FAULT")]
    pub faults: Vec<String>,
}

pub fn run(args: Args) -> Result<()> {
    let loaded = super::load_spec(&args.spec)?;
    let plan = loaded.plan;
    let mut faults = Faults::default();
    for f in &args.faults {
        sim::add_fault(&mut faults, f)
            .map_err(|e| crate::error::InputError::new(format!("{e:#}")))?;
    }
    let cfg = SimConfig {
        seed: args.seed,
        faults,
        latencies: Latencies::default(),
        max_virtual_secs: 0,
    };
    let report = sim::simulate(&plan, &cfg);
    let measure = Measure::of(&plan, &report, &cfg.latencies);
    let text = if args.json {
        serde_json::to_string_pretty(&json_report(&plan, &report, &measure, &cfg))? + "\n"
    } else {
        human(&report, &measure, args.queries)
    };
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        other => other?,
    }
    if !report.all_done() {
        anyhow::bail!("the simulated first boot did not complete on every node");
    }
    Ok(())
}

fn json_report(
    plan: &hcikit_firstboot::plan::Plan,
    r: &SimReport,
    m: &Measure,
    cfg: &SimConfig,
) -> serde_json::Value {
    json!({
        "seed": cfg.seed,
        "faults": cfg.faults,
        "outcomes": r.outcomes,
        "commands": r.log.iter().map(|e| json!({
            "node": e.node, "start-ms": e.start_ms, "end-ms": e.end_ms, "argv": e.command,
            "exit": e.exit, "timed-out": e.timed_out, "verified": e.verified, "query": e.query,
        })).collect::<Vec<_>>(),
        "events": r.events,
        "measure": m,
        "critical-path": critical::critical_path(plan, &cfg.latencies).finish_ms,
        "world": r.world.summary(),
    })
}

fn secs(ms: u64) -> String {
    format!("{:>7.1}s", ms as f64 / 1000.0)
}

fn human(r: &SimReport, m: &Measure, queries: bool) -> String {
    enum Line<'a> {
        Cmd(&'a sim::LogEntry),
        Ev(&'a sim::Event),
    }
    let mut lines: Vec<(u64, usize, Line)> = Vec::new();
    for (i, e) in r.log.iter().enumerate() {
        if queries || !e.query {
            lines.push((e.start_ms, i, Line::Cmd(e)));
        }
    }
    for (i, e) in r.events.iter().enumerate() {
        // Commands are shown from the log; keep waits, failures, kills and completions.
        let keep = e.text.contains("waiting for")
            || e.text.contains("failed")
            || e.text.contains("killed")
            || e.text.contains("restarted")
            || e.text.contains("complete")
            || e.text.contains("started");
        if keep {
            lines.push((e.at_ms, r.log.len() + i, Line::Ev(e)));
        }
    }
    lines.sort_by_key(|(t, i, _)| (*t, *i));
    let mut s = String::from("timeline (virtual time, node, what):\n");
    for (t, _, l) in lines {
        match l {
            Line::Cmd(e) => {
                let verdict = match (e.timed_out, e.verified) {
                    (true, _) => "timed out".to_string(),
                    (_, Some(true)) => format!("exit {}, verified", e.exit),
                    (_, Some(false)) => format!(
                        "exit {}, NOT verified: {}",
                        e.exit,
                        first_line(&e.stderr_tail)
                    ),
                    (_, None) => format!("exit {}", e.exit),
                };
                let _ = writeln!(
                    s,
                    "{} {:<6} $ {}  [{}s, {verdict}]",
                    secs(t),
                    e.node,
                    e.command,
                    (e.end_ms - e.start_ms) as f64 / 1000.0
                );
            }
            Line::Ev(e) => {
                let text = e
                    .text
                    .strip_prefix(&format!("{}: ", e.node))
                    .unwrap_or(&e.text);
                let _ = writeln!(s, "{} {:<6}   {text}", secs(t), e.node);
            }
        }
    }
    let w = r.world.summary();
    let _ = writeln!(s, "\noutcome:");
    for (n, o) in &r.outcomes {
        let _ = writeln!(s, "  {n:<6} {o:?}");
    }
    let _ = writeln!(s, "\nfinal state:");
    if let Some(c) = w["cluster"].as_object() {
        let members: Vec<String> = c["members"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|m| {
                format!(
                    "{}{}",
                    m["name"].as_str().unwrap_or("?"),
                    if m["online"] == true {
                        ""
                    } else {
                        " (offline)"
                    }
                )
            })
            .collect();
        let _ = writeln!(
            s,
            "  cluster   {} quorate={} members: {}",
            c["name"].as_str().unwrap_or("?"),
            c["quorate"],
            members.join(", ")
        );
    } else {
        let _ = writeln!(s, "  cluster   (none)");
    }
    let ceph = &w["ceph"];
    let _ = writeln!(
        s,
        "  ceph      {} mons={} mgrs={} mds={}",
        ceph["health"].as_str().unwrap_or("?"),
        ceph["quorum"],
        ceph["mgrs"],
        ceph["mds"]
    );
    let osds: Vec<String> = ceph["osds"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|o| {
            format!(
                "osd.{}@{}:{}{}",
                o["id"],
                o["host"].as_str().unwrap_or("?"),
                o["device"].as_str().unwrap_or("?"),
                if o["up"] == true { "" } else { "(down)" }
            )
        })
        .collect();
    let _ = writeln!(s, "  osds      {}", osds.join(" "));
    let pools: Vec<String> = ceph["pools"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            format!(
                "{} size={}/{} pg={}",
                p["name"].as_str().unwrap_or("?"),
                p["size"],
                p["min_size"],
                p["pg_num"]
            )
        })
        .collect();
    let _ = writeln!(s, "  pools     {}", pools.join(", "));
    let storages: Vec<String> = w["storages"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|x| {
            format!(
                "{}({})",
                x["storage"].as_str().unwrap_or("?"),
                x["type"].as_str().unwrap_or("?")
            )
        })
        .collect();
    let _ = writeln!(s, "  storages  {}", storages.join(", "));
    let _ = writeln!(s, "  options   {}", w["datacenter-options"]);
    let _ = writeln!(s, "  ha        {}", w["ha-groups"]);
    let _ = writeln!(s, "  notify    {}", w["notifications"]);
    let _ = writeln!(
        s,
        "  mails     {}",
        w["mails"].as_array().map(|m| m.len()).unwrap_or(0)
    );
    let _ = writeln!(
        s,
        "  bootstrap key authorized: {}",
        w["bootstrap-key-authorized"]
    );
    let _ = writeln!(s, "\nfrom all peers up: HEALTH_OK after {} (critical path {}), done after {} (critical path {})",
        m.to_health_ok_ms.map(secs).unwrap_or_else(|| "never".into()).trim(),
        secs(m.critical_health_ok_ms).trim(), secs(m.to_done_ms).trim(), secs(m.critical_done_ms).trim());
    s
}

fn first_line(s: &str) -> &str {
    s.lines().find(|l| !l.trim().is_empty()).unwrap_or("")
}
