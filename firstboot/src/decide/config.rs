//! Evaluation of the cluster-wide configuration steps (floating): datacenter options, HA,
//! notifications, realms, test and ready mails.

use super::*;

impl Ctx<'_> {
    pub(super) fn eval_config(&self, step: &Step) -> Eval {
        let plan = self.plan;
        let obs = self.obs;
        match step {
            Step::Options => {
                let Some(have) = &obs.options else {
                    return unobserved("datacenter options");
                };
                let mut c = CommandLine::new("pvesh").args(["set", "/cluster/options"]);
                let mut differs = false;
                for (k, v) in &plan.datacenter.options {
                    if have.get(k) != Some(&property_string(k, v)) {
                        c = c.opt(k, v.clone());
                        differs = true;
                    }
                }
                if differs {
                    run(step.clone(), c, 60, 20)
                } else {
                    Eval::Satisfied
                }
            }
            Step::HaGroup(g) => self.eval_ha(step, g),
            Step::Smtp(t) => {
                let Some(have) = &obs.smtp else {
                    return unobserved("SMTP targets");
                };
                if have.contains(t) {
                    return Eval::Satisfied;
                }
                let Some(s) = plan.notifications.smtp.iter().find(|s| &s.name == t) else {
                    return Eval::Fatal(format!("SMTP target {t} is not in the plan"));
                };
                // The password goes on stdin (crate::pveapi), so the call goes through
                // the API script rather than pvesh, which takes parameters only on argv.
                let mut c =
                    crate::pveapi::command("create", "/cluster/notifications/endpoints/smtp")
                        .opt("name", s.name.clone())
                        .opt("server", s.server.clone())
                        .opt("port", s.port.to_string())
                        .opt("mode", s.mode.clone())
                        .opt("from-address", s.from_address.clone());
                if let Some(u) = &s.username {
                    c = c.opt("username", u.clone());
                }
                if let Some(p) = &s.password {
                    c = c.secret_param("password", p.node_path());
                }
                for m in &s.mailto {
                    c = c.opt("mailto", m.clone());
                }
                for m in &s.mailto_user {
                    c = c.opt("mailto-user", m.clone());
                }
                if let Some(a) = &s.author {
                    c = c.opt("author", a.clone());
                }
                if let Some(a) = &s.comment {
                    c = c.opt("comment", a.clone());
                }
                run(step.clone(), c, 60, 20)
            }
            Step::RootEmail => {
                let Some(want) = &plan.notifications.root_email else {
                    return Eval::Satisfied;
                };
                let Some(have) = &obs.root_email else {
                    return unobserved("root@pam's e-mail address");
                };
                if have == want {
                    return Eval::Satisfied;
                }
                // pve-access-control src/PVE/API2/User.pm `update_user` (format email-opt).
                run(
                    step.clone(),
                    CommandLine::new("pveum")
                        .args(["user", "modify", "root@pam"])
                        .opt("email", want.clone()),
                    60,
                    20,
                )
            }
            Step::Matcher(name) => {
                let Some(have) = &obs.matchers else {
                    return unobserved("notification matchers");
                };
                if have.contains_key(name) {
                    return Eval::Satisfied;
                }
                let Some(m) = plan.notifications.matchers.iter().find(|m| &m.name == name) else {
                    return Eval::Fatal(format!("matcher {name} is not in the plan"));
                };
                let mut c = CommandLine::new("pvesh")
                    .args(["create", "/cluster/notifications/matchers"])
                    .opt("name", m.name.clone())
                    .opt("mode", m.mode.clone());
                for t in &m.targets {
                    c = c.opt("target", t.clone());
                }
                let (severity, fields) = matcher_rules(&m.match_severity, &m.match_field);
                if let Some(s) = severity {
                    c = c.opt("match-severity", s);
                }
                for f in fields {
                    c = c.opt("match-field", f);
                }
                if m.invert_match {
                    c = c.opt("invert-match", "1");
                }
                if let Some(a) = &m.comment {
                    c = c.opt("comment", a.clone());
                }
                run(step.clone(), c, 60, 20)
            }
            Step::DefaultMatcher => {
                let Some(have) = &obs.matchers else {
                    return unobserved("notification matchers");
                };
                let current = have.get("default-matcher").cloned().unwrap_or_default();
                let wanted = &plan.notifications.default_matcher_targets;
                if wanted.iter().all(|t| current.contains(t)) {
                    return Eval::Satisfied;
                }
                let mut all: Vec<String> = current;
                if all.is_empty() {
                    all.push(crate::steps::BUILTIN_TARGET.into());
                }
                for t in wanted {
                    if !all.contains(t) {
                        all.push(t.clone());
                    }
                }
                let mut c = CommandLine::new("pvesh")
                    .args(["set", "/cluster/notifications/matchers/default-matcher"]);
                for t in all {
                    c = c.opt("target", t);
                }
                run(step.clone(), c, 60, 20)
            }
            Step::Realm(name) => {
                let Some(have) = &obs.realms else {
                    return unobserved("authentication realms");
                };
                if have.contains(name) {
                    return Eval::Satisfied;
                }
                let Some(r) = plan.realms.iter().find(|r| &r.name == name) else {
                    return Eval::Fatal(format!("realm {name} is not in the plan"));
                };
                // `pveum realm add` is pve-access-control `PVE::API2::Domains` `create`
                // (`src/PVE/CLI/pveum.pm` cmddef); called through the API script so the
                // bind password / client key goes on stdin (crate::pveapi).
                let mut c = crate::pveapi::command("create", "/access/domains")
                    .opt("realm", r.name.clone())
                    .opt("type", r.kind.clone());
                for (k, v) in &r.options {
                    c = c.opt(k, v.clone());
                }
                if let Some(s) = &r.secret {
                    let key = if r.kind == "openid" {
                        "client-key"
                    } else {
                        "password"
                    };
                    c = c.secret_param(key, s.node_path());
                }
                if r.default {
                    c = c.opt("default", "1");
                }
                if let Some(a) = &r.comment {
                    c = c.opt("comment", a.clone());
                }
                run(step.clone(), c, 60, 20)
            }
            Step::TestMail(t) => {
                if !self.state.is_done(&Step::Smtp(t.clone()).id()) {
                    return dep(format!("SMTP target {t} to be configured"));
                }
                if plan.notifications.root_email.is_some()
                    && !self.state.is_done(&Step::RootEmail.id())
                {
                    return dep("root@pam's e-mail address to be set");
                }
                Eval::Ready(Action {
                    step: step.clone(),
                    kind: ActionKind::Run(Cmd::new(
                        CommandLine::new("pvesh")
                            .arg("create")
                            .arg(format!("/cluster/notifications/targets/{t}/test")),
                        60,
                    )),
                    verify: Verify::ExitZero,
                    verify_secs: 0,
                })
            }
            Step::ReadyMail => {
                let Some(t) = &plan.notifications.report_target else {
                    return Eval::Satisfied;
                };
                Eval::Ready(Action {
                    step: step.clone(),
                    kind: ActionKind::Run(Cmd::new(
                        CommandLine::new("pvesh")
                            .arg("create")
                            .arg(format!("/cluster/notifications/targets/{t}/test")),
                        60,
                    )),
                    verify: Verify::ExitZero,
                    verify_secs: 0,
                })
            }
            _ => unreachable!("{} is not a config step", step.id()),
        }
    }

    pub(super) fn eval_ha(&self, step: &Step, name: &str) -> Eval {
        let plan = self.plan;
        let Some(g) = plan.ha.groups.iter().find(|g| g.name == name) else {
            return Eval::Fatal(format!("HA group {name} is not in the plan"));
        };
        let nodes = g.nodes_arg();
        if plan.ha.uses_rules() {
            let Some(have) = &self.obs.ha_rules else {
                return unobserved("HA rules");
            };
            if have.contains(name) {
                return Eval::Satisfied;
            }
            let resources = plan.ha.resources_in(name);
            let mut c = CommandLine::new("ha-manager")
                .args(["rules", "add", "node-affinity", name])
                .opt("resources", resources.join(","))
                .opt("nodes", nodes)
                .opt("strict", if g.restricted { "1" } else { "0" });
            if let Some(a) = &g.comment {
                c = c.opt("comment", a.clone());
            }
            return run(step.clone(), c, 60, 20);
        }
        let Some(have) = &self.obs.ha_groups else {
            return unobserved("HA groups");
        };
        if have.contains(name) {
            return Eval::Satisfied;
        }
        let mut c = CommandLine::new("ha-manager")
            .args(["groupadd", name])
            .opt("nodes", nodes)
            .opt("restricted", if g.restricted { "1" } else { "0" })
            .opt("nofailback", if g.nofailback { "1" } else { "0" });
        if let Some(a) = &g.comment {
            c = c.opt("comment", a.clone());
        }
        run(step.clone(), c, 60, 20)
    }
}

/// The `match-severity` and `match-field` elements of a matcher. Each repetition of an
/// array option is one element (pve-common JSONSchema `get_options`), each element is one
/// rule, and `mode all` requires every rule to match (proxmox-notify `src/matcher.rs`
/// `check_matches`). Severities meant as alternatives are therefore one comma-joined
/// element, as the GUI sends them, and `exact:` values for the same field are joined the
/// same way (`FieldMatcher::from_str` splits the value list on commas); `regex:` rules
/// stay one element each.
pub fn matcher_rules(severities: &[String], fields: &[String]) -> (Option<String>, Vec<String>) {
    enum Rule {
        Exact(String, Vec<String>),
        Other(String),
    }
    let severity = (!severities.is_empty()).then(|| severities.join(","));
    let mut rules: Vec<Rule> = Vec::new();
    for f in fields {
        match f.strip_prefix("exact:").and_then(|r| r.split_once('=')) {
            Some((field, value)) => {
                let known = rules.iter_mut().find_map(|r| match r {
                    Rule::Exact(n, vs) if n == field => Some(vs),
                    _ => None,
                });
                match known {
                    Some(vs) => vs.push(value.to_string()),
                    None => rules.push(Rule::Exact(field.to_string(), vec![value.to_string()])),
                }
            }
            None => rules.push(Rule::Other(f.clone())),
        }
    }
    let fields = rules
        .into_iter()
        .map(|r| match r {
            Rule::Exact(field, vs) => format!("exact:{field}={}", vs.join(",")),
            Rule::Other(f) => f,
        })
        .collect();
    (severity, fields)
}

#[cfg(test)]
mod fidelity_tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    /// Item 5: alternatives are one element; repeated elements are AND-ed under `mode all`.
    #[test]
    fn item5_matcher_alternatives_are_one_element() {
        let (sev, fields) = matcher_rules(
            &v(&["error", "warning"]),
            &v(&[
                "exact:type=vzdump",
                "regex:hostname=^pve",
                "exact:type=replication",
            ]),
        );
        assert_eq!(sev.as_deref(), Some("error,warning"));
        assert_eq!(
            fields,
            v(&["exact:type=vzdump,replication", "regex:hostname=^pve"])
        );
        assert_eq!(matcher_rules(&[], &[]), (None, vec![]));
    }
}
