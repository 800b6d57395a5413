//! `hcikit plan`: the resolved Plan, as JSON or as a one-screen overview.

use anyhow::Result;
use hcikit_firstboot::plan::{NetDevice, Plan};
use std::fmt::Write as _;
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The cluster spec, e.g. cluster.toml.
    pub spec: PathBuf,
    /// Print the Plan as JSON (what goes into every image as hcikit/plan.json).
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> Result<()> {
    let loaded = super::load_spec(&args.spec)?;
    let text = if args.json {
        serde_json::to_string_pretty(&loaded.plan)? + "\n"
    } else {
        human(&loaded.plan)
    };
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        // `hcikit plan x | head` closing the pipe early is not a failure.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// Left-aligned columns, two spaces apart.
fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut s = String::new();
    for r in rows {
        let mut line = String::from("  ");
        for (c, cell) in r.iter().enumerate() {
            line.push_str(cell);
            if c + 1 < r.len() {
                line.push_str(&" ".repeat(widths[c] - cell.chars().count() + 2));
            }
        }
        s.push_str(line.trim_end());
        s.push('\n');
    }
    s
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "-"
    }
}

/// The human view of a Plan: the cluster at a glance, then the numbered first-boot steps.
pub fn human(p: &Plan) -> String {
    let mut s = String::new();
    let c = &p.cluster;
    let _ = writeln!(
        s,
        "cluster {} ({}) — Proxmox VE {}, {} nodes, founder {}",
        c.name,
        c.domain,
        c.pve_major,
        p.nodes.len(),
        c.founder
    );
    let _ = writeln!(s, "  time zone {}, keyboard {}", c.timezone, c.keyboard);

    let _ = writeln!(s, "\nnetworks");
    let mut rows = vec![[
        "name",
        "cidr",
        "device",
        "address on",
        "mtu",
        "speed",
        "gateway",
        "corosync",
    ]
    .iter()
    .map(|x| x.to_string())
    .collect::<Vec<_>>()];
    for n in &p.networks {
        let dev = match &n.device {
            NetDevice::Interface { name } => name.clone(),
            NetDevice::Bond {
                name, slaves, mode, ..
            } => format!("{name} ({mode}: {})", slaves.join("+")),
        };
        rows.push(vec![
            n.name.clone(),
            n.cidr.clone(),
            dev,
            n.address_iface.clone(),
            n.mtu.to_string(),
            n.speed_mbps
                .map(|m| format!("{m} Mbit/s"))
                .unwrap_or_else(|| "?".into()),
            n.gateway.clone().unwrap_or_else(|| "-".into()),
            n.corosync_link
                .map(|l| format!("link{l}"))
                .unwrap_or_else(|| "-".into()),
        ]);
    }
    s.push_str(&table(&rows));

    let _ = writeln!(s, "\nnodes");
    let mut head = vec!["node".to_string(), "id".into()];
    head.extend(p.networks.iter().map(|n| n.name.clone()));
    head.extend([
        "primary ip".to_string(),
        "mac".into(),
        "install disk".into(),
    ]);
    let mut rows = vec![head];
    for n in &p.nodes {
        let mut r = vec![n.name.clone(), n.nodeid.to_string()];
        r.extend(p.networks.iter().map(|net| {
            n.address_on(&net.name)
                .map(|a| a.ip_cidr.clone())
                .unwrap_or_default()
        }));
        r.extend([
            n.primary_ip.clone(),
            n.mac.clone().unwrap_or_else(|| "-".into()),
            n.install_disk.clone().unwrap_or_else(|| "-".into()),
        ]);
        rows.push(r);
    }
    s.push_str(&table(&rows));

    let _ = writeln!(
        s,
        "\ncorosync links (cluster {}, final config_version {})",
        p.corosync.cluster_name, p.corosync.config_version
    );
    let mut head = vec!["link".to_string(), "network".into()];
    head.extend(p.nodes.iter().map(|n| n.name.clone()));
    let mut rows = vec![head];
    for l in &p.corosync.links {
        let mut r = vec![format!("link{}", l.number), l.network.clone()];
        r.extend(p.nodes.iter().map(|n| {
            n.links
                .iter()
                .find(|x| x.number == l.number)
                .map(|x| x.ip.clone())
                .unwrap_or_default()
        }));
        rows.push(r);
    }
    s.push_str(&table(&rows));

    if let Some(ceph) = &p.ceph {
        let _ = writeln!(
            s,
            "\nceph {} ({}) from {}, {}/{} replicas, public {} ({}), cluster {} ({})",
            ceph.release,
            ceph.version,
            ceph.repository,
            ceph.size,
            ceph.min_size,
            ceph.public_network,
            ceph.public_cidr,
            ceph.cluster_network,
            ceph.cluster_cidr
        );
        let mut rows = vec![["node", "mon", "mgr", "mds", "osd disks"]
            .iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()];
        for n in &p.nodes {
            let osds: Vec<String> = n
                .osds
                .iter()
                .map(|o| {
                    let mut d = o.device.clone();
                    if let Some(cls) = &o.device_class {
                        d.push_str(&format!(" [{cls}]"));
                    }
                    if o.wipe {
                        d.push_str(" (WIPE)");
                    }
                    d
                })
                .collect();
            rows.push(vec![
                n.name.clone(),
                yes(n.roles.mon).into(),
                yes(n.roles.mgr).into(),
                yes(n.roles.mds).into(),
                if osds.is_empty() {
                    "-".into()
                } else {
                    osds.join(", ")
                },
            ]);
        }
        s.push_str(&table(&rows));
        let _ = writeln!(s, "  {} OSDs in total", ceph.osd_count);
        for pool in &ceph.pools {
            let _ = writeln!(
                s,
                "  pool {}: {}, {}/{} replicas, pg {}, autoscale {}{}",
                pool.name,
                pool.application,
                pool.size,
                pool.min_size,
                pool.pg_num
                    .map(|n| n.to_string())
                    .unwrap_or_else(|| "auto".into()),
                pool.pg_autoscale_mode,
                if pool.add_storage { ", storage" } else { "" }
            );
        }
        for fs in &ceph.cephfs {
            let _ = writeln!(
                s,
                "  cephfs {}: pools {0}_data (pg {}) + {0}_metadata{}",
                fs.name,
                fs.pg_num,
                if fs.add_storage { ", storage" } else { "" }
            );
        }
        for (section, opts) in &ceph.extra_config {
            for (k, v) in opts {
                let _ = writeln!(s, "  ceph.conf [{section}] {k} = {v}");
            }
        }
    } else {
        let _ = writeln!(s, "\nceph: none");
    }

    let _ = writeln!(s, "\ndatacenter.cfg");
    for (k, v) in &p.datacenter.options {
        let _ = writeln!(s, "  {k}: {v}");
    }

    if !p.ha.groups.is_empty() || !p.ha.resources.is_empty() {
        let _ = writeln!(s, "\nHA ({})", p.ha.mode);
        for g in &p.ha.groups {
            let _ = writeln!(
                s,
                "  group {}: {}{}{}",
                g.name,
                g.nodes_arg(),
                if g.restricted { ", restricted" } else { "" },
                if g.nofailback { ", nofailback" } else { "" }
            );
        }
        for r in &p.ha.resources {
            let _ = writeln!(
                s,
                "  resource {}: {}, group {}, max restart {}, max relocate {}",
                r.sid,
                r.state,
                r.group.as_deref().unwrap_or("-"),
                r.max_restart,
                r.max_relocate
            );
        }
    }

    let n = &p.notifications;
    if !n.smtp.is_empty() || !n.matchers.is_empty() {
        let _ = writeln!(s, "\nnotifications");
        for t in &n.smtp {
            let mut to: Vec<&str> = t.mailto.iter().map(String::as_str).collect();
            to.extend(t.mailto_user.iter().map(String::as_str));
            let _ = writeln!(
                s,
                "  smtp {}: {}:{} ({}), from {} to {}{}",
                t.name,
                t.server,
                t.port,
                t.mode,
                t.from_address,
                to.join(", "),
                t.username
                    .as_ref()
                    .map(|u| format!(", login {u}"))
                    .unwrap_or_default()
            );
        }
        for m in &n.matchers {
            let _ = writeln!(
                s,
                "  matcher {}: {} → {}",
                m.name,
                m.mode,
                m.targets.join(", ")
            );
        }
        if !n.default_matcher_targets.is_empty() {
            let _ = writeln!(
                s,
                "  default-matcher also → {}",
                n.default_matcher_targets.join(", ")
            );
        }
        if let Some(t) = &n.report_target {
            let _ = writeln!(
                s,
                "  report mail through {t}{}",
                if n.send_test { ", test mail sent" } else { "" }
            );
        }
    }
    for r in &p.realms {
        let _ = writeln!(
            s,
            "\nrealm {} ({}){}",
            r.name,
            r.kind,
            if r.default { ", default" } else { "" }
        );
    }

    let _ = writeln!(s, "\nfirst boot");
    let width = p.steps.len().to_string().len();
    for (i, st) in p.steps.iter().enumerate() {
        let _ = writeln!(s, "  {:>width$}. [{}] {}", i + 1, st.node, st.summary);
    }
    if !p.warnings.is_empty() {
        let _ = writeln!(s, "\nwarnings");
        for w in &p.warnings {
            let _ = writeln!(s, "  {w}");
        }
    }
    s
}
