//! Checks of `[[realms]]`: LDAP, AD and OpenID realms and their options.

use super::Checker;
use crate::spec::raw::*;
use crate::spec::values::*;
use std::collections::BTreeSet;
use std::net::IpAddr;

impl Checker {
    pub(super) fn realms(&mut self, spec: &Spec) {
        let mut names = BTreeSet::new();
        let mut defaults = 0;
        for (i, r) in spec.realms.iter().enumerate() {
            let k = format!("realms[{i}]");
            if !is_realm_name(&r.name) || matches!(r.name.as_str(), "pam" | "pve") {
                self.err(format!("{k}.name"), format!("{:?} is not a usable realm id; use 2 or more letters, digits, '-' or '_' starting with a letter (pam and pve are built in)", r.name));
            } else if !names.insert(r.name.as_str()) {
                self.err(
                    format!("{k}.name"),
                    format!("realm {} is defined twice", r.name),
                );
            }
            if r.default {
                defaults += 1;
                if defaults > 1 {
                    self.err(format!("{k}.default"), "only one realm can be the default");
                }
            }
            let present = |o: &Option<String>| o.is_some();
            let (required, forbidden): (Fields, Fields) = match r.kind.as_str() {
                "ad" => (
                    vec![
                        ("server1", present(&r.server1)),
                        ("domain", present(&r.domain)),
                    ],
                    vec![
                        ("issuer-url", present(&r.issuer_url)),
                        ("client-id", present(&r.client_id)),
                        ("client-key-file", present(&r.client_key_file)),
                        ("username-claim", present(&r.username_claim)),
                    ],
                ),
                "ldap" => (
                    vec![
                        ("server1", present(&r.server1)),
                        ("base-dn", present(&r.base_dn)),
                        ("user-attr", present(&r.user_attr)),
                    ],
                    vec![
                        ("issuer-url", present(&r.issuer_url)),
                        ("client-id", present(&r.client_id)),
                        ("client-key-file", present(&r.client_key_file)),
                        ("username-claim", present(&r.username_claim)),
                    ],
                ),
                "openid" => (
                    vec![
                        ("issuer-url", present(&r.issuer_url)),
                        ("client-id", present(&r.client_id)),
                    ],
                    vec![
                        ("server1", present(&r.server1)),
                        ("server2", present(&r.server2)),
                        ("port", r.port.is_some()),
                        ("mode", present(&r.mode)),
                        ("base-dn", present(&r.base_dn)),
                        ("domain", present(&r.domain)),
                        ("user-attr", present(&r.user_attr)),
                        ("bind-dn", present(&r.bind_dn)),
                        ("bind-password-file", present(&r.bind_password_file)),
                    ],
                ),
                other => {
                    self.err(
                        format!("{k}.type"),
                        format!("{other:?} is not a realm type; use ad, ldap or openid"),
                    );
                    continue;
                }
            };
            for (field, set) in required {
                if !set {
                    self.err(
                        format!("{k}.{field}"),
                        format!("is required for an {} realm", realm_kind(&r.kind)),
                    );
                }
            }
            for (field, set) in forbidden {
                if set {
                    self.err(
                        format!("{k}.{field}"),
                        format!("does not apply to an {} realm", realm_kind(&r.kind)),
                    );
                }
            }
            if let Some(p) = r.port {
                if !(1..=65535).contains(&p) {
                    self.err(
                        format!("{k}.port"),
                        format!("{p} is not a TCP port (1-65535)"),
                    );
                }
            }
            if let Some(m) = &r.mode {
                self.one_of(&format!("{k}.mode"), m, &["ldap", "ldaps", "ldap+starttls"]);
            }
            for (field, v) in [("server1", &r.server1), ("server2", &r.server2)] {
                if let Some(s) = v {
                    if s.parse::<IpAddr>().is_err() && !is_dns_name(s) {
                        self.err(
                            format!("{k}.{field}"),
                            format!("{s:?} is neither a host name nor an IP address"),
                        );
                    }
                }
            }
            if let Some(u) = &r.issuer_url {
                if !(u.starts_with("https://") || u.starts_with("http://")) {
                    self.err(
                        format!("{k}.issuer-url"),
                        format!("{u:?} is not an http(s) URL"),
                    );
                }
            }
            if r.bind_dn.is_some() && r.bind_password_file.is_none() {
                self.err(
                    format!("{k}.bind-password-file"),
                    "bind-dn is set but no bind-password-file",
                );
            }
        }
    }
}

/// Realm option names with whether the spec sets them.
type Fields<'a> = Vec<(&'a str, bool)>;

fn realm_kind(kind: &str) -> &'static str {
    match kind {
        "ad" => "AD",
        "ldap" => "LDAP",
        _ => "OpenID",
    }
}
