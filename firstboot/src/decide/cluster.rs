//! Evaluation of the cluster steps: peers, the corosync key, create, join, complete.

use super::*;

impl Ctx<'_> {
    pub(super) fn eval_cluster(&self, step: &Step) -> Eval {
        let plan = self.plan;
        let obs = self.obs;
        match step {
            Step::Peers => self.eval_peers(),
            Step::CorosyncKey => {
                if self.member_view().is_some() {
                    return Eval::Satisfied;
                }
                match obs.authkey {
                    None => unobserved("the corosync key files"),
                    // No seeded key (or already in place): pvecm create makes or keeps one.
                    Some((false, _)) | Some((_, true)) => Eval::Satisfied,
                    Some((true, false)) => Eval::Ready(Action {
                        step: step.clone(),
                        kind: ActionKind::CopyFile {
                            from: crate::layout::COROSYNC_AUTHKEY.into(),
                            to: COROSYNC_KEY.into(),
                            mode: 0o400,
                        },
                        verify: Verify::Step,
                        verify_secs: 5,
                    }),
                }
            }
            Step::CreateCluster => match &obs.local_cluster {
                Some(c) if c.name.as_deref() == Some(plan.cluster.name.as_str()) => Eval::Satisfied,
                Some(ClusterStatus {
                    name: Some(other), ..
                }) => Eval::Fatal(format!(
                    "{} is already in cluster '{other}', the plan says '{}'",
                    self.me.name, plan.cluster.name
                )),
                Some(_) if obs.corosync_conf => dep_limit(
                    "/etc/pve/corosync.conf exists but the cluster is not up yet",
                    plan.firstboot.join_timeout_secs,
                ),
                Some(_) => run(
                    step.clone(),
                    self.link_args(
                        CommandLine::new("pvecm")
                            .arg("create")
                            .arg(plan.cluster.name.clone()),
                    ),
                    300,
                    60,
                ),
                None if obs.pve_missing => Eval::Fatal(pve_missing_message()),
                None => dep("pve-cluster to answer (pvesh get /cluster/status failed)"),
            },
            Step::JoinCluster => self.eval_join(),
            Step::ClusterComplete => {
                let Some(c) = self.member_view() else {
                    return unobserved("cluster membership");
                };
                let missing: Vec<_> = plan
                    .nodes
                    .iter()
                    .filter(|n| !c.online(&n.name))
                    .map(|n| n.name.as_str())
                    .collect();
                if !missing.is_empty() {
                    dep(format!("{} to join the cluster", missing.join(", ")))
                } else if !c.quorate {
                    dep("cluster quorum")
                } else {
                    Eval::Satisfied
                }
            }
            _ => unreachable!("{} is not a cluster step", step.id()),
        }
    }

    pub(super) fn eval_peers(&self) -> Eval {
        if self.obs.corosync_conf {
            // Already clustered (a re-run): the peers answered once, and quorum is what counts now.
            return Eval::Satisfied;
        }
        let mut missing = Vec::new();
        for peer in self.plan.nodes.iter().filter(|n| n.name != self.me.name) {
            for a in &peer.addresses {
                let ok = self
                    .obs
                    .reach
                    .get(&(peer.name.clone(), a.network.clone()))
                    .copied()
                    .unwrap_or(false);
                if !ok {
                    missing.push(format!("{} on {} ({})", peer.name, a.network, a.ip));
                }
            }
        }
        if missing.is_empty() {
            return Eval::Satisfied;
        }
        Eval::Blocked(Wait {
            reason: format!("peers to answer: {}", missing.join(", ")),
            limit_secs: Some(self.plan.firstboot.peer_timeout_secs),
            poll_ms: backoff_ms(self.plan, self.waited_ms(&Step::Peers)),
        })
    }

    pub(super) fn eval_join(&self) -> Eval {
        let plan = self.plan;
        let obs = self.obs;
        let me = &self.me.name;
        match &obs.local_cluster {
            Some(c)
                if c.name.as_deref() == Some(plan.cluster.name.as_str())
                    && c.member(me).is_some() =>
            {
                return Eval::Satisfied
            }
            Some(ClusterStatus {
                name: Some(other), ..
            }) if other != &plan.cluster.name => {
                return Eval::Fatal(format!(
                    "{me} is already in cluster '{other}', the plan says '{}'",
                    plan.cluster.name
                ))
            }
            None if obs.pve_missing => return Eval::Fatal(pve_missing_message()),
            None => return dep("pve-cluster to answer (pvesh get /cluster/status failed)"),
            _ => {}
        }
        if obs.corosync_conf {
            return dep_limit(
                "the interrupted join to finish (/etc/pve/corosync.conf exists, not a member yet)",
                plan.firstboot.join_timeout_secs,
            );
        }
        let founder = self.founder();
        let Some(f) = &obs.founder_cluster else {
            return dep(format!("{}'s cluster status over SSH", founder.name));
        };
        if f.name.as_deref() != Some(plan.cluster.name.as_str()) {
            return dep(format!(
                "{} to create cluster {}",
                founder.name, plan.cluster.name
            ));
        }
        if let Some(m) = f.nodes.iter().find(|n| n.name != *me && !n.online) {
            return dep(format!(
                "{} to come online (joins go one at a time)",
                m.name
            ));
        }
        for prev in &plan.cluster.join_order {
            if prev == me {
                break;
            }
            if !f.online(prev) {
                return dep(format!("{prev} to join first (joins go one at a time)"));
            }
        }
        if !f.quorate {
            return dep(format!("quorum on {}", founder.name));
        }
        let c = CommandLine::new("pvecm")
            .arg("add")
            .arg(founder.primary_ip.clone())
            .opt("use_ssh", "1");
        run(
            Step::JoinCluster,
            self.link_args(c),
            plan.firstboot.join_timeout_secs,
            60,
        )
    }
}
