//! `notifications.cfg`: targets and matchers in proxmox-notify's order.

use super::{rust_section, Entry, Section};
use hcikit_firstboot::plan::*;

/// `notifications.cfg`: the built-in `mail-to-root` target, the SMTP targets, the built-in
/// `default-matcher` with the extra targets added, then the spec's matchers.
pub(crate) fn notifications(plan: &Plan) -> Vec<Section> {
    let n = &plan.notifications;
    let mut out = vec![rust_section(
        "sendmail",
        "mail-to-root",
        vec![
            Entry::new("comment", "Send mails to root@pam's email address"),
            Entry::new("mailto-user", "root@pam"),
        ],
    )];
    for s in &n.smtp {
        let mut e = vec![
            Entry::new("from-address", s.from_address.clone()),
            Entry::new("mode", s.mode.clone()),
            Entry::new("port", s.port.to_string()),
            Entry::new("server", s.server.clone()),
        ];
        e.extend(s.mailto.iter().map(|m| Entry::new("mailto", m.clone())));
        e.extend(
            s.mailto_user
                .iter()
                .map(|m| Entry::new("mailto-user", m.clone())),
        );
        if let Some(u) = &s.username {
            e.push(Entry::new("username", u.clone()));
        }
        if let Some(a) = &s.author {
            e.push(Entry::new("author", a.clone()));
        }
        if let Some(c) = &s.comment {
            e.push(Entry::new("comment", c.clone()));
        }
        out.push(rust_section("smtp", &s.name, e));
    }
    let mut default_targets = vec!["mail-to-root".to_string()];
    default_targets.extend(
        n.default_matcher_targets
            .iter()
            .filter(|t| *t != "mail-to-root")
            .cloned(),
    );
    let mut e = vec![
        Entry::new("comment", "Route all notifications to mail-to-root"),
        Entry::new("mode", "all"),
    ];
    e.extend(default_targets.into_iter().map(|t| Entry::new("target", t)));
    out.push(rust_section("matcher", "default-matcher", e));
    for m in &n.matchers {
        let mut e = vec![Entry::new("mode", m.mode.clone())];
        e.extend(m.targets.iter().map(|t| Entry::new("target", t.clone())));
        if !m.match_severity.is_empty() {
            e.push(Entry::new("match-severity", m.match_severity.join(",")));
        }
        e.extend(
            m.match_field
                .iter()
                .map(|f| Entry::new("match-field", f.clone())),
        );
        if m.invert_match {
            e.push(Entry::new("invert-match", "true"));
        }
        if let Some(c) = &m.comment {
            e.push(Entry::new("comment", c.clone()));
        }
        out.push(rust_section("matcher", &m.name, e));
    }
    out
}
