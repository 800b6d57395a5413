//! `domains.cfg`: the built-in realms, then the spec's.

use super::secrets::SecretView;
use super::{section, Entry, Section};
use hcikit_firstboot::plan::*;

/// `domains.cfg`: the built-in `pam` and `pve` realms, then the spec's realms. An OpenID
/// realm's client key lives in this file (LDAP/AD bind passwords live in
/// `priv/realm/<realm>.pw`, written by Proxmox when the agent adds the realm with the
/// password on stdin: `hcikit_firstboot::pveapi`).
pub(crate) fn domains(plan: &Plan, secrets: &SecretView) -> Vec<Section> {
    let mut out = vec![
        section(
            "pam",
            "pam",
            vec![Entry::new("comment", "Linux PAM standard authentication")],
        ),
        section(
            "pve",
            "pve",
            vec![Entry::new("comment", "Proxmox VE authentication server")],
        ),
    ];
    for r in &plan.realms {
        let mut e: Vec<Entry> = r
            .options
            .iter()
            .map(|(k, v)| Entry::new(k.clone(), v.clone()))
            .collect();
        if r.default {
            e.push(Entry::new("default", "1"));
        }
        if let Some(c) = &r.comment {
            e.push(Entry::new("comment", c.clone()));
        }
        if r.kind == "openid" {
            if let Some(v) = secrets.realms.iter().find(|s| s.name == r.name) {
                e.push(Entry::new("client-key", v.value.clone()));
            }
        }
        out.push(section(&r.kind, &r.name, e));
    }
    out
}
