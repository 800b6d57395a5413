//! The critical path of a first boot: the dependency DAG of the planned steps with the
//! simulator's command latencies, and its longest path. The benchmark compares the
//! simulated makespan with it (the gap is polling, observation and verification).

use crate::Latencies;
use hcikit_firstboot::plan::Plan;
use hcikit_firstboot::steps::{steps_for, Step};
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

/// The task id of `step` on `node` in the DAG.
pub fn task_id(node: &str, step: &Step) -> String {
    format!("{node}/{}", step.id())
}

/// How long the simulator takes for one step's command (0 for local file edits and for
/// waits, whose time is what they wait for).
fn duration(plan: &Plan, node: &str, step: &Step, lat: &Latencies) -> u64 {
    let first_mon = plan.ceph.as_ref().and_then(|c| c.mons.first());
    match step {
        Step::CreateCluster => lat.pvecm_create_ms,
        Step::JoinCluster => lat.pvecm_add_ms,
        Step::CephPackages
            if plan.firstboot.ceph_install == hcikit_firstboot::plan::CephInstall::Pveceph =>
        {
            lat.ceph_install_ms
        }
        Step::CephInit => lat.ceph_init_ms,
        Step::Mon => lat.mon_create_ms,
        // The first monitor's `pveceph mon create` also creates its manager.
        Step::Mgr if first_mon.map(String::as_str) == Some(node) => 1_000,
        Step::Mgr => lat.mgr_create_ms,
        Step::Osd(_) => lat.osd_create_ms + 2_000,
        Step::Mds => lat.mds_create_ms + 2_000,
        Step::Pool(_) => lat.pool_create_ms + lat.pg_peering_ms,
        Step::CephFs(_) => lat.fs_create_ms + lat.pg_peering_ms,
        Step::ReadyMail => lat.write_ms * 2,
        s if s.floating() => lat.write_ms,
        _ => 0,
    }
}

/// Builds the DAG from the step model (`steps::steps_for` and `Step::deps`): each node's
/// steps in its agent's order (one agent per node runs one command at a time), plus the
/// waits on other nodes. Floating steps (cluster-wide configuration) only wait for the
/// complete cluster and for each other, since the founder runs them while it would
/// otherwise wait.
pub fn dag(plan: &Plan, lat: &Latencies) -> Vec<Task> {
    let mut tasks: Vec<Task> = Vec::new();
    for n in &plan.nodes {
        let mut prev: Option<String> = None;
        let mut prev_floating: Option<String> = None;
        for step in steps_for(plan, n) {
            let id = task_id(&n.name, &step);
            let d = step.deps(plan, n);
            let mut deps: Vec<String> = d.all.iter().map(|r| task_id(&r.node, &r.step)).collect();
            if step.floating() {
                deps.push(task_id(&n.name, &Step::ClusterComplete));
                deps.extend(prev_floating.replace(id.clone()));
            } else {
                deps.extend(prev.replace(id.clone()));
            }
            tasks.push(Task {
                id,
                node: n.name.clone(),
                duration_ms: duration(plan, &n.name, &step, lat),
                deps,
                k_of: d
                    .at_least
                    .map(|(k, set)| (k, set.iter().map(|r| task_id(&r.node, &r.step)).collect())),
            });
        }
    }
    tasks
}

/// Earliest finish times and the longest path of the DAG.
pub fn critical_path(plan: &Plan, lat: &Latencies) -> CriticalPath {
    let tasks = dag(plan, lat);
    let mut finish: BTreeMap<String, u64> = BTreeMap::new();
    // Tasks are listed node by node, so a task may wait for one listed later: relax
    // until nothing changes (the graph is acyclic, so this ends within `tasks.len()` passes).
    for _ in 0..=tasks.len() {
        let mut changed = false;
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
            let end = start + t.duration_ms;
            if finish.get(&t.id) != Some(&end) {
                finish.insert(t.id.clone(), end);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let health = task_id(&plan.cluster.founder, &Step::Health);
    let health_ok_ms = finish.get(&health).copied().unwrap_or(0);
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
        let plan = hcikit_firstboot::example::lab_plan();
        let lat = Latencies::default();
        let cp = critical_path(&plan, &lat);
        let f = &cp.finish_ms;
        assert_eq!(f["pve1/cluster-create"], 8_000);
        assert_eq!(f["pve2/cluster-join"], 33_000);
        assert_eq!(f["pve3/cluster-join"], 58_000);
        assert!(f["pve3/ceph-mon"] > f["pve2/ceph-mon"] && f["pve2/ceph-mon"] > f["pve1/ceph-mon"]);
        let last_osd = f
            .iter()
            .filter(|(k, _)| k.contains("/ceph-osd:"))
            .map(|(_, v)| *v)
            .max()
            .unwrap();
        assert!(cp.health_ok_ms >= last_osd);
        assert!(cp.total_ms >= cp.health_ok_ms);
    }
}
