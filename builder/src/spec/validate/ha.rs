//! Checks of `[ha]`: groups and resources.

use super::{join_keys, Checker};
use crate::spec::raw::*;
use crate::spec::values::*;
use std::collections::BTreeSet;

impl Checker {
    pub(super) fn ha(&mut self, spec: &Spec) {
        let nodes: BTreeSet<&str> = spec.nodes.iter().map(|n| n.name.as_str()).collect();
        let mut groups = BTreeSet::new();
        for (i, g) in spec.ha.groups.iter().enumerate() {
            let k = format!("ha.groups[{i}]");
            if !is_config_id(&g.name) {
                self.err(format!("{k}.name"), format!("{:?} is not a valid group id; use letters, digits, '-' and '_', starting with a letter", g.name));
            } else if !groups.insert(g.name.as_str()) {
                self.err(
                    format!("{k}.name"),
                    format!("group {} is defined twice", g.name),
                );
            }
            if g.nodes.is_empty() {
                self.err(format!("{k}.nodes"), "a group needs at least one node");
            }
            let mut seen = BTreeSet::new();
            for (j, member) in g.nodes.iter().enumerate() {
                let mk = format!("{k}.nodes[{j}]");
                match parse_group_member(member) {
                    Err(m) => self.err(&mk, m),
                    Ok((node, priority)) => {
                        let members = self.parsed.group_members.entry(i).or_default();
                        members.push((node.clone(), priority));
                        if !nodes.contains(node.as_str()) {
                            self.err(
                                &mk,
                                format!(
                                    "{node:?} is not a node; nodes: {}",
                                    join_keys(nodes.iter().copied())
                                ),
                            );
                        } else if !seen.insert(node.clone()) {
                            self.err(&mk, format!("{node} is listed twice"));
                        }
                    }
                }
            }
        }
        let mut sids = BTreeSet::new();
        for (i, r) in spec.ha.resources.iter().enumerate() {
            let k = format!("ha.resources[{i}]");
            match normalize_sid(&r.sid) {
                Err(m) => self.err(format!("{k}.sid"), m),
                Ok(sid) => {
                    self.parsed.sids.insert(i, sid.clone());
                    if !sids.insert(sid.clone()) {
                        self.err(format!("{k}.sid"), format!("{sid} is listed twice"));
                    }
                }
            }
            if let Some(g) = &r.group {
                if !groups.contains(g.as_str()) {
                    self.err(
                        format!("{k}.group"),
                        format!("there is no HA group {g:?}; define it under [[ha.groups]]"),
                    );
                }
            }
            for (field, v) in [
                ("max-restart", r.max_restart),
                ("max-relocate", r.max_relocate),
            ] {
                if let Some(v) = v {
                    if !(0..=10).contains(&v) {
                        self.err(
                            format!("{k}.{field}"),
                            format!("{v} is out of range; use 0 to 10"),
                        );
                    }
                }
            }
            if let Some(s) = &r.state {
                self.one_of(&format!("{k}.state"), s, HA_STATES);
            }
        }
    }
}
