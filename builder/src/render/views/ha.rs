//! HA: `ha/groups.cfg` (PVE 8), `ha/rules.cfg` (PVE 9) and `ha/resources.cfg`.

use super::{bool01, section, Entry, Section};
use hcikit_firstboot::plan::*;
use serde::Serialize;

#[derive(Debug, Serialize)]
pub(crate) struct HaView {
    /// `ha/groups.cfg` sections (PVE 8).
    groups: Vec<Section>,
    /// `ha/rules.cfg` sections (PVE 9).
    rules: Vec<Section>,
    /// `ha/resources.cfg` sections.
    resources: Vec<Section>,
}

/// PVE 9 node-affinity rules: one per group that has resources (a rule needs at least one
/// resource); `strict` is the group's `restricted`.
pub(crate) fn ha_rules(plan: &Plan) -> Vec<Section> {
    plan.ha
        .groups
        .iter()
        .filter_map(|g| {
            let resources = plan.ha.resources_in(&g.name);
            if resources.is_empty() {
                return None;
            }
            let mut e = vec![
                Entry::new("nodes", g.nodes_arg()),
                Entry::new("resources", resources.join(",")),
                Entry::new("strict", bool01(g.restricted)),
            ];
            if let Some(c) = &g.comment {
                e.push(Entry::new("comment", c.clone()));
            }
            Some(section("node-affinity", &g.name, e))
        })
        .collect()
}

pub(crate) fn ha(plan: &Plan) -> HaView {
    let rules_mode = plan.ha.uses_rules();
    let groups = plan
        .ha
        .groups
        .iter()
        .map(|g| {
            let mut e = vec![
                Entry::new("nodes", g.nodes_arg()),
                Entry::new("nofailback", bool01(g.nofailback)),
                Entry::new("restricted", bool01(g.restricted)),
            ];
            if let Some(c) = &g.comment {
                e.push(Entry::new("comment", c.clone()));
            }
            section("group", &g.name, e)
        })
        .collect();
    let resources = plan
        .ha
        .resources
        .iter()
        .map(|r| {
            let (kind, id) = r.sid.split_once(':').unwrap_or(("vm", r.sid.as_str()));
            let mut e = vec![
                Entry::new("max_relocate", r.max_relocate.to_string()),
                Entry::new("max_restart", r.max_restart.to_string()),
                Entry::new("state", r.state.clone()),
            ];
            if let Some(c) = &r.comment {
                e.push(Entry::new("comment", c.clone()));
            }
            if let Some(g) = &r.group {
                if rules_mode {
                    // PVE 9 moved nofailback from the group to the resource (`failback`).
                    let nofailback = plan.ha.groups.iter().any(|x| &x.name == g && x.nofailback);
                    if nofailback {
                        e.push(Entry::new("failback", "0"));
                    }
                } else {
                    e.push(Entry::new("group", g.clone()));
                }
            }
            section(kind, id, e)
        })
        .collect();
    HaView {
        groups,
        rules: if rules_mode {
            ha_rules(plan)
        } else {
            Vec::new()
        },
        resources,
    }
}
