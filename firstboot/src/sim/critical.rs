//! The critical path of a first boot: the dependency DAG of the planned steps with the
//! simulator's command latencies, and its longest path. The benchmark compares the
//! simulated makespan with it (the gap is polling, observation and verification).

use super::Latencies;
use crate::plan::Plan;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize)]
pub struct Task {
    pub id: String,
    pub node: String,
    pub duration_ms: u64,
    /// Ids that must finish first.
    pub deps: Vec<String>,
    /// Starts once this many of `any_of` finished (the k-th smallest finish time).
    pub k_of: Option<(usize, Vec<String>)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CriticalPath {
    pub tasks: Vec<Task>,
    /// Earliest finish per task (ms from "all peers up").
    pub finish_ms: BTreeMap<String, u64>,
    pub health_ok_ms: u64,
    pub total_ms: u64,
}

/// Builds the DAG: true dependencies between nodes plus each node's own steps in order
/// (one agent per node runs one command at a time). Cluster-wide configuration (options,
/// HA, notifications) only needs the complete cluster and is not serialised, since the
/// founder runs it while it would otherwise wait.
pub fn dag(plan: &Plan, lat: &Latencies) -> Vec<Task> {
    let mut tasks: Vec<Task> = Vec::new();
    let mut last: BTreeMap<String, String> = BTreeMap::new();
    let founder = plan.cluster.founder.clone();
    let push = |tasks: &mut Vec<Task>,
                last: &mut BTreeMap<String, String>,
                node: &str,
                id: String,
                d: u64,
                mut deps: Vec<String>,
                k_of: Option<(usize, Vec<String>)>,
                serial: bool| {
        if serial {
            if let Some(prev) = last.get(node) {
                deps.push(prev.clone());
            }
            last.insert(node.to_string(), id.clone());
        }
        tasks.push(Task {
            id,
            node: node.to_string(),
            duration_ms: d,
            deps,
            k_of,
        });
    };
    let install = if plan.firstboot.ceph_install == "pveceph" {
        lat.ceph_install_ms
    } else {
        0
    };
    push(
        &mut tasks,
        &mut last,
        &founder,
        "create".into(),
        lat.pvecm_create_ms,
        vec![],
        None,
        true,
    );
    let mut prev = "create".to_string();
    for j in &plan.cluster.join_order {
        let id = format!("join:{j}");
        push(
            &mut tasks,
            &mut last,
            j,
            id.clone(),
            lat.pvecm_add_ms,
            vec![prev.clone(), "create".into()],
            None,
            true,
        );
        prev = id;
    }
    let complete: Vec<String> = std::iter::once("create".to_string())
        .chain(plan.cluster.join_order.iter().map(|j| format!("join:{j}")))
        .collect();
    for n in &plan.nodes {
        if plan.ceph.is_some() {
            push(
                &mut tasks,
                &mut last,
                &n.name,
                format!("packages:{}", n.name),
                install,
                vec![],
                None,
                true,
            );
        }
        push(
            &mut tasks,
            &mut last,
            &n.name,
            format!("complete:{}", n.name),
            0,
            complete.clone(),
            None,
            true,
        );
    }
    let mut health_deps: Vec<String> = Vec::new();
    if let Some(ceph) = &plan.ceph {
        push(
            &mut tasks,
            &mut last,
            &founder,
            "init".into(),
            lat.ceph_init_ms,
            vec![],
            None,
            true,
        );
        let mut prev_mon: Option<String> = None;
        let mut first_osd: Vec<String> = Vec::new();
        let mut first_mds: Vec<String> = Vec::new();
        // Each node's steps in the agent's order; mons chain across nodes.
        let mut order: Vec<&crate::plan::Node> = Vec::new();
        for m in &ceph.mons {
            if let Some(n) = plan.node(m) {
                order.push(n);
            }
        }
        for n in &plan.nodes {
            if !order.iter().any(|o| o.name == n.name) {
                order.push(n);
            }
        }
        for n in order {
            let name = &n.name;
            if ceph.mons.contains(name) {
                let id = format!("mon:{name}");
                let mut deps = vec!["init".to_string()];
                deps.extend(prev_mon.clone());
                push(
                    &mut tasks,
                    &mut last,
                    name,
                    id.clone(),
                    lat.mon_create_ms,
                    deps,
                    None,
                    true,
                );
                prev_mon = Some(id.clone());
                health_deps.push(id);
            }
            if ceph.mgrs.contains(name) {
                let auto = ceph.mons.first() == Some(name);
                let d = if auto { 1_000 } else { lat.mgr_create_ms };
                push(
                    &mut tasks,
                    &mut last,
                    name,
                    format!("mgr:{name}"),
                    d,
                    vec!["mon:".to_string() + &ceph.mons[0]],
                    None,
                    true,
                );
            }
            for (k, o) in n.osds.iter().enumerate() {
                let id = format!("osd:{name}:{}", o.device);
                let d = lat.osd_create_ms + 2_000;
                push(
                    &mut tasks,
                    &mut last,
                    name,
                    id.clone(),
                    d,
                    vec![format!("mon:{}", ceph.mons[0])],
                    None,
                    true,
                );
                if k == 0 {
                    first_osd.push(id.clone());
                }
                health_deps.push(id);
            }
            if ceph.mds.contains(name) {
                let id = format!("mds:{name}");
                push(
                    &mut tasks,
                    &mut last,
                    name,
                    id.clone(),
                    lat.mds_create_ms + 2_000,
                    vec![format!("mon:{}", ceph.mons[0])],
                    None,
                    true,
                );
                first_mds.push(id);
            }
        }
        for p in &ceph.pools {
            let id = format!("pool:{}", p.name);
            push(
                &mut tasks,
                &mut last,
                &founder,
                id.clone(),
                lat.pool_create_ms + lat.pg_peering_ms,
                vec![],
                Some((p.size as usize, first_osd.clone())),
                true,
            );
            health_deps.push(id);
        }
        for f in &ceph.cephfs {
            let id = format!("cephfs:{}", f.name);
            let mut deps = vec![];
            deps.extend(first_mds.first().cloned());
            push(
                &mut tasks,
                &mut last,
                &founder,
                id.clone(),
                lat.fs_create_ms + lat.pg_peering_ms,
                deps,
                Some((ceph.size as usize, first_osd.clone())),
                true,
            );
            health_deps.push(id);
        }
    }
    let mut cfg = Vec::new();
    if !plan.datacenter.options.is_empty() {
        cfg.push("options".to_string());
    }
    cfg.extend(plan.ha.groups.iter().map(|g| format!("ha:{}", g.name)));
    cfg.extend(
        plan.notifications
            .smtp
            .iter()
            .map(|t| format!("smtp:{}", t.name)),
    );
    cfg.extend(
        plan.notifications
            .matchers
            .iter()
            .map(|m| format!("matcher:{}", m.name)),
    );
    if !plan.notifications.default_matcher_targets.is_empty() {
        cfg.push("default-matcher".into());
    }
    let mut prev_cfg: Option<String> = None;
    for c in cfg {
        let mut deps = vec![format!("complete:{founder}")];
        deps.extend(prev_cfg.clone());
        push(
            &mut tasks,
            &mut last,
            &founder,
            c.clone(),
            lat.write_ms,
            deps,
            None,
            false,
        );
        prev_cfg = Some(c.clone());
        health_deps.push(c);
    }
    push(
        &mut tasks,
        &mut last,
        &founder,
        "health".into(),
        0,
        health_deps,
        None,
        true,
    );
    if plan.notifications.report_target.is_some() {
        push(
            &mut tasks,
            &mut last,
            &founder,
            "ready-mail".into(),
            lat.write_ms * 2,
            vec![],
            None,
            true,
        );
    }
    tasks
}

/// Earliest finish times and the longest path of the DAG.
pub fn critical_path(plan: &Plan, lat: &Latencies) -> CriticalPath {
    let tasks = dag(plan, lat);
    let mut finish: BTreeMap<String, u64> = BTreeMap::new();
    // Tasks are pushed after their dependencies, except k-of sets, which only refer to
    // earlier tasks too; one pass in order suffices.
    for t in &tasks {
        let mut start = t
            .deps
            .iter()
            .map(|d| finish.get(d).copied().unwrap_or(0))
            .max()
            .unwrap_or(0);
        if let Some((k, set)) = &t.k_of {
            let mut f: Vec<u64> = set.iter().filter_map(|d| finish.get(d).copied()).collect();
            f.sort();
            let kth = f.get(k.saturating_sub(1)).copied().unwrap_or(u64::MAX / 2);
            start = start.max(kth);
        }
        finish.insert(t.id.clone(), start + t.duration_ms);
    }
    let health_ok_ms = finish.get("health").copied().unwrap_or(0);
    let total_ms = finish.values().copied().max().unwrap_or(0);
    CriticalPath {
        tasks,
        finish_ms: finish,
        health_ok_ms,
        total_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_are_serial_and_health_waits_for_the_last_osd() {
        let plan = super::super::example::lab_plan();
        let lat = Latencies::default();
        let cp = critical_path(&plan, &lat);
        let f = &cp.finish_ms;
        assert_eq!(f["create"], 8_000);
        assert_eq!(f["join:pve2"], 33_000);
        assert_eq!(f["join:pve3"], 58_000);
        assert!(f["mon:pve3"] > f["mon:pve2"] && f["mon:pve2"] > f["mon:pve1"]);
        let last_osd = f
            .iter()
            .filter(|(k, _)| k.starts_with("osd:"))
            .map(|(_, v)| *v)
            .max()
            .unwrap();
        assert!(cp.health_ok_ms >= last_osd);
        assert!(cp.total_ms >= cp.health_ok_ms);
    }
}
