//! The per-file view models: what each file family's template gets, precomputed so that
//! templates stay free of logic, plus the section-config writers they share.

pub mod ceph;
pub mod corosync;
pub mod ha;
pub mod network;
pub mod notify;
pub mod realms;
pub mod secrets;

use serde::Serialize;

/// One `key value` line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    pub key: String,
    pub value: String,
}

impl Entry {
    pub(crate) fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        Entry {
            key: key.into(),
            value: value.into(),
        }
    }
}

/// A section of a sectioned file (ceph.conf `[name]`, or section-config `kind: name`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Section {
    pub kind: String,
    pub name: String,
    pub entries: Vec<Entry>,
}

/// Options a Perl section-config type requires; its writer puts them before the optional
/// ones (PVE::SectionConfig `write_config`).
pub(crate) fn required_keys(kind: &str) -> &'static [&'static str] {
    match kind {
        "group" => &["nodes"],
        "node-affinity" => &["nodes", "resources"],
        "ad" => &["domain", "server1"],
        "ldap" => &["base_dn", "server1", "user_attr"],
        "openid" => &["client-id", "issuer-url"],
        _ => &[],
    }
}

/// Proxmox section-config order: `comment` first, then the type's required keys sorted,
/// then the other keys sorted.
pub(crate) fn section(kind: &str, name: &str, mut entries: Vec<Entry>) -> Section {
    let required = required_keys(kind);
    let rank = |k: &str| match k {
        "comment" => 0,
        k if required.contains(&k) => 1,
        _ => 2,
    };
    // A stable sort keeps repeated keys (e.g. `mailto`) in their given order.
    entries.sort_by(|a, b| (rank(&a.key), &a.key).cmp(&(rank(&b.key), &b.key)));
    Section {
        kind: kind.into(),
        name: name.into(),
        entries,
    }
}

pub(crate) fn bool01(b: bool) -> String {
    if b { "1" } else { "0" }.into()
}

/// Order of proxmox-rs' section-config writer (notifications): keys as a serde_json map
/// iterates them, i.e. sorted, repeated keys one line per item in order.
pub(crate) fn rust_section(kind: &str, name: &str, mut entries: Vec<Entry>) -> Section {
    entries.sort_by(|a, b| a.key.cmp(&b.key));
    Section {
        kind: kind.into(),
        name: name.into(),
        entries,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn section_config_puts_comment_first_and_keeps_repeats_in_order() {
        let s = section(
            "smtp",
            "x",
            vec![
                Entry::new("server", "s"),
                Entry::new("mailto", "b@x"),
                Entry::new("comment", "c"),
                Entry::new("mailto", "a@x"),
            ],
        );
        let keys: Vec<_> = s
            .entries
            .iter()
            .map(|e| format!("{} {}", e.key, e.value))
            .collect();
        assert_eq!(keys, ["comment c", "mailto b@x", "mailto a@x", "server s"]);
    }

    #[test]
    fn section_config_writes_required_keys_before_optional_ones() {
        let s = section(
            "ad",
            "corp",
            vec![
                Entry::new("default", "1"),
                Entry::new("server1", "dc"),
                Entry::new("case-sensitive", "0"),
                Entry::new("domain", "corp.example"),
            ],
        );
        let keys: Vec<_> = s.entries.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["domain", "server1", "case-sensitive", "default"]);
    }
}
