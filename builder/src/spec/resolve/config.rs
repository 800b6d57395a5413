//! Cluster-wide configuration in the Plan: `datacenter.cfg` options, notification targets
//! and matchers, authentication realms.

use crate::spec::defaults;
use crate::spec::raw::*;
use crate::spec::secrets::{realm_secret_id, smtp_secret_id};
use crate::spec::validate::Parsed;
use crate::spec::values::{self as v, BwLimit};
use hcikit_firstboot::plan::*;
use std::collections::BTreeMap;

pub(super) fn datacenter(
    spec: &Spec,
    parsed: &Parsed,
    networks: &[Network],
    keyboard: &str,
) -> Datacenter {
    let d = &spec.datacenter;
    let mut o = BTreeMap::new();
    o.insert(
        "keyboard".to_string(),
        d.keyboard.clone().unwrap_or_else(|| keyboard.to_string()),
    );
    let mig_net = d
        .migration_network
        .as_ref()
        .and_then(|m| networks.iter().find(|n| &n.name == m));
    if d.migration_type.is_some() || mig_net.is_some() {
        let mut s = format!(
            "type={}",
            d.migration_type
                .as_deref()
                .unwrap_or(defaults::MIGRATION_TYPE)
        );
        if let Some(n) = mig_net {
            s.push_str(&format!(",network={}", n.cidr));
        }
        o.insert("migration".into(), s);
    }
    if let Some(p) = &d.ha_shutdown_policy {
        o.insert("ha".into(), format!("shutdown_policy={p}"));
    }
    let speed = mig_net.and_then(|n| n.speed_mbps);
    let limits: Vec<String> = d
        .bwlimit
        .keys()
        .filter_map(|k| {
            let kib = match *parsed.bwlimits.get(k)? {
                BwLimit::KibPerSec(k) => k,
                BwLimit::Percent(h) => v::percent_to_kib(speed?, h),
            };
            Some(format!("{k}={kib}"))
        })
        .collect();
    if !limits.is_empty() {
        o.insert("bwlimit".into(), limits.join(","));
    }
    if let Some(e) = &d.email_from {
        o.insert("email_from".into(), e.clone());
    }
    if let Some(crs) = &d.crs {
        let mut parts = Vec::new();
        if let Some(h) = &crs.ha {
            parts.push(format!("ha={h}"));
        }
        if let Some(r) = crs.ha_rebalance_on_start {
            parts.push(format!("ha-rebalance-on-start={}", u8::from(r)));
        }
        if !parts.is_empty() {
            o.insert("crs".into(), parts.join(","));
        }
    }
    Datacenter { options: o }
}

pub(super) fn notifications(spec: &Spec) -> Notifications {
    let n = &spec.notifications;
    let smtp: Vec<SmtpTarget> = n
        .smtp
        .iter()
        .map(|s| {
            let mode = s.mode.clone().unwrap_or_else(|| defaults::SMTP_MODE.into());
            let port = s
                .port
                .map_or_else(|| defaults::smtp_port(&mode), |p| p as u16);
            SmtpTarget {
                name: s.name.clone(),
                server: s.server.clone(),
                port,
                mode,
                username: s.username.clone(),
                password: s
                    .password_file
                    .as_ref()
                    .map(|_| SecretRef::new(smtp_secret_id(&s.name))),
                from_address: s.from_address.clone().unwrap_or_default(),
                mailto: s.mailto.clone(),
                mailto_user: s.mailto_user.clone(),
                author: s.author.clone(),
                comment: s.comment.clone(),
            }
        })
        .collect();
    let mut default_targets: Vec<String> = Vec::new();
    let wanted = n.default_matcher_targets.iter().cloned().chain(
        n.smtp
            .iter()
            .filter(|s| s.add_to_default_matcher)
            .map(|s| s.name.clone()),
    );
    for t in wanted {
        // mail-to-root is always on the default matcher; listing it again changes nothing.
        if t != v::BUILTIN_TARGET && !default_targets.contains(&t) {
            default_targets.push(t);
        }
    }
    let matchers = n
        .matchers
        .iter()
        .map(|m| Matcher {
            name: m.name.clone(),
            targets: m.targets.clone(),
            mode: m
                .mode
                .clone()
                .unwrap_or_else(|| defaults::MATCHER_MODE.into()),
            match_severity: m.match_severity.clone(),
            match_field: m.match_field.clone(),
            invert_match: m.invert_match,
            comment: m.comment.clone(),
        })
        .collect();
    Notifications {
        report_target: n
            .report_target
            .clone()
            .or_else(|| smtp.first().map(|s| s.name.clone())),
        send_test: n.send_test.unwrap_or(!smtp.is_empty()),
        smtp,
        matchers,
        default_matcher_targets: default_targets,
    }
}

pub(super) fn realms(spec: &Spec) -> Vec<Realm> {
    spec.realms
        .iter()
        .map(|r| {
            let mut o = BTreeMap::new();
            let mut put = |k: &str, val: &Option<String>| {
                if let Some(x) = val {
                    o.insert(k.to_string(), x.clone());
                }
            };
            // Option names as domains.cfg spells them (LDAP/AD with '_', OpenID with '-').
            put("server1", &r.server1);
            put("server2", &r.server2);
            put("mode", &r.mode);
            put("base_dn", &r.base_dn);
            put("domain", &r.domain);
            put("user_attr", &r.user_attr);
            put("bind_dn", &r.bind_dn);
            put("issuer-url", &r.issuer_url);
            put("client-id", &r.client_id);
            put("username-claim", &r.username_claim);
            if let Some(p) = r.port {
                o.insert("port".into(), p.to_string());
            }
            if r.autocreate {
                o.insert("autocreate".into(), "1".into());
            }
            Realm {
                name: r.name.clone(),
                kind: r.kind.clone(),
                options: o,
                secret: (r.bind_password_file.is_some() || r.client_key_file.is_some())
                    .then(|| SecretRef::new(realm_secret_id(&r.name))),
                default: r.default,
                comment: r.comment.clone(),
            }
        })
        .collect()
}
