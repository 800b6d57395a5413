//! Checks of `[notifications]`: SMTP targets, matchers, the report target.

use super::{join_keys, Checker};
use crate::spec::defaults::SMTP_MODE;
use crate::spec::raw::*;
use crate::spec::values::*;
use std::collections::BTreeSet;
use std::net::IpAddr;

impl Checker {
    pub(super) fn notifications(&mut self, spec: &Spec) {
        let n = &spec.notifications;
        let mut targets: BTreeSet<&str> = BTreeSet::new();
        targets.insert(BUILTIN_TARGET);
        for (i, s) in n.smtp.iter().enumerate() {
            let k = format!("notifications.smtp[{i}]");
            if !is_notify_name(&s.name) {
                self.err(
                    format!("{k}.name"),
                    format!(
                        "{:?} is not a valid target name; use letters, digits, '.', '-' and '_'",
                        s.name
                    ),
                );
            } else if !targets.insert(s.name.as_str()) {
                self.err(
                    format!("{k}.name"),
                    format!("target {} already exists", s.name),
                );
            }
            if s.server.parse::<IpAddr>().is_err() && !is_dns_name(&s.server) {
                self.err(
                    format!("{k}.server"),
                    format!("{:?} is neither a host name nor an IP address", s.server),
                );
            }
            let mode = s.mode.as_deref().unwrap_or(SMTP_MODE);
            let mode_ok = self.one_of(&format!("{k}.mode"), mode, SMTP_MODES);
            if let Some(p) = s.port {
                if !(1..=65535).contains(&p) {
                    self.err(
                        format!("{k}.port"),
                        format!("{p} is not a TCP port (1-65535)"),
                    );
                } else if mode_ok {
                    let hint = match (p, mode) {
                        (465, "starttls" | "insecure") => Some("port 465 expects implicit TLS; use mode = \"tls\""),
                        (587, "tls") => Some("port 587 usually expects STARTTLS; use mode = \"starttls\""),
                        (25, "tls") => Some("port 25 rarely speaks implicit TLS; use mode = \"starttls\" or port 465"),
                        _ => None,
                    };
                    if let Some(h) = hint {
                        self.warn(format!("{k}.port"), h);
                    }
                }
            }
            if mode == "insecure" && s.username.is_some() {
                self.warn(
                    format!("{k}.mode"),
                    "insecure sends the password in clear text; use starttls or tls",
                );
            }
            match (&s.username, &s.password_file) {
                (Some(_), None) => self.err(
                    format!("{k}.password-file"),
                    "username is set but no password-file; the relay would refuse to authenticate",
                ),
                (None, Some(_)) => self.err(
                    format!("{k}.username"),
                    "password-file is set but no username to log in with",
                ),
                _ => {}
            }
            match &s.from_address {
                None => self.err(
                    format!("{k}.from-address"),
                    "is required for an SMTP target (the sender address, e.g. pve@example.com)",
                ),
                Some(a) if !is_email(a) => self.err(
                    format!("{k}.from-address"),
                    format!("{a:?} is not an e-mail address like pve@example.com"),
                ),
                _ => {}
            }
            for (j, m) in s.mailto.iter().enumerate() {
                if !is_email(m) {
                    self.err(
                        format!("{k}.mailto[{j}]"),
                        format!("{m:?} is not an e-mail address"),
                    );
                }
            }
            for (j, u) in s.mailto_user.iter().enumerate() {
                if !is_userid(u) {
                    self.err(
                        format!("{k}.mailto-user[{j}]"),
                        format!("{u:?} is not a Proxmox user id like root@pam"),
                    );
                }
            }
            if s.mailto.is_empty() && s.mailto_user.is_empty() {
                self.err(&k, "no recipient; set mailto = [\"ops@example.com\"] or mailto-user = [\"root@pam\"]");
            }
        }
        for (i, m) in n.matchers.iter().enumerate() {
            let k = format!("notifications.matchers[{i}]");
            if !is_notify_name(&m.name) || m.name == "default-matcher" {
                self.err(format!("{k}.name"), format!("{:?} is not a valid matcher name (default-matcher is built in; use default-matcher-targets)", m.name));
            }
            if m.targets.is_empty() {
                self.err(
                    format!("{k}.targets"),
                    "a matcher needs at least one target",
                );
            }
            for (j, t) in m.targets.iter().enumerate() {
                if !targets.contains(t.as_str()) {
                    self.err(
                        format!("{k}.targets[{j}]"),
                        format!(
                            "there is no notification target {t:?}; targets: {}",
                            join_keys(targets.iter().copied())
                        ),
                    );
                }
            }
            if let Some(mode) = &m.mode {
                self.one_of(&format!("{k}.mode"), mode, &["all", "any"]);
            }
            for (j, s) in m.match_severity.iter().enumerate() {
                self.one_of(&format!("{k}.match-severity[{j}]"), s, SEVERITIES);
            }
            for (j, f) in m.match_field.iter().enumerate() {
                let ok = f
                    .split_once(':')
                    .filter(|(kind, rest)| {
                        matches!(*kind, "exact" | "regex")
                            && rest.split_once('=').is_some_and(|(a, _)| !a.is_empty())
                    })
                    .is_some();
                if !ok {
                    self.err(format!("{k}.match-field[{j}]"), format!("{f:?} is not a field rule; write exact:<field>=<value> or regex:<field>=<regex>"));
                }
            }
        }
        for (j, t) in n.default_matcher_targets.iter().enumerate() {
            if !targets.contains(t.as_str()) {
                self.err(
                    format!("notifications.default-matcher-targets[{j}]"),
                    format!(
                        "there is no notification target {t:?}; targets: {}",
                        join_keys(targets.iter().copied())
                    ),
                );
            }
        }
        if let Some(t) = &n.report_target {
            if !targets.contains(t.as_str()) {
                self.err(
                    "notifications.report-target",
                    format!(
                        "there is no notification target {t:?}; targets: {}",
                        join_keys(targets.iter().copied())
                    ),
                );
            }
        }
    }
}
