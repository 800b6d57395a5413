//! Which node this machine is: by MAC, else by `hcikit.node=` on the kernel command line,
//! else by asking on the console. Never a silent default: a machine that matches nothing
//! and has nobody at the console is told so, with its MACs and serial, and nothing is
//! written.

use crate::layout::NODE_CMDLINE_ARG;

/// A node as the installer knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeId {
    pub name: String,
    /// Lower-case MAC from the spec's `nodes[].mac`, if set.
    pub mac: Option<String>,
}

/// What this machine looks like.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Machine {
    /// Lower-case MACs of its NICs.
    pub macs: Vec<String>,
    /// DMI product serial (`/sys/class/dmi/id/product_serial`), if readable.
    pub serial: Option<String>,
    /// The kernel command line.
    pub cmdline: String,
}

/// How the node was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    Mac,
    CommandLine,
    Menu,
}

/// The outcome of identification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    Found {
        node: String,
        how: How,
    },
    /// Nothing matched: a person at the console must pick from these nodes.
    AskConsole {
        nodes: Vec<String>,
    },
    /// Refused: the message says why (conflicting evidence, an unknown name).
    Refused(String),
}

/// Decides the node (pure). `cmdline` arguments win over nothing but never over a
/// contradicting MAC match: a machine whose MAC says pve1 booted with `hcikit.node=pve2`
/// is refused rather than guessed.
pub fn identify(nodes: &[NodeId], machine: &Machine) -> Identity {
    let by_mac: Vec<&str> = nodes
        .iter()
        .filter(|n| {
            n.mac
                .as_ref()
                .is_some_and(|m| machine.macs.iter().any(|x| x.eq_ignore_ascii_case(m)))
        })
        .map(|n| n.name.as_str())
        .collect();
    let from_cmdline = machine
        .cmdline
        .split_whitespace()
        .find_map(|a| a.strip_prefix(&format!("{NODE_CMDLINE_ARG}=")));
    let names = || {
        nodes
            .iter()
            .map(|n| n.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if by_mac.len() > 1 {
        return Identity::Refused(format!(
            "this machine's MACs ({}) match several nodes ({}): the spec's nodes[].mac values must each belong to one machine",
            machine.macs.join(", "),
            by_mac.join(", ")
        ));
    }
    if let Some(name) = from_cmdline {
        if !nodes.iter().any(|n| n.name == name) {
            return Identity::Refused(format!(
                "{NODE_CMDLINE_ARG}={name} names no node of this cluster (nodes: {})",
                names()
            ));
        }
        if let Some(m) = by_mac.first() {
            if *m != name {
                return Identity::Refused(format!(
                    "{NODE_CMDLINE_ARG}={name} contradicts this machine's MAC, which is node {m}'s; remove one of them"
                ));
            }
            return Identity::Found {
                node: name.to_string(),
                how: How::Mac,
            };
        }
        return Identity::Found {
            node: name.to_string(),
            how: How::CommandLine,
        };
    }
    if let Some(m) = by_mac.first() {
        return Identity::Found {
            node: m.to_string(),
            how: How::Mac,
        };
    }
    Identity::AskConsole {
        nodes: nodes.iter().map(|n| n.name.clone()).collect(),
    }
}

/// The screen for a machine nobody claimed: what it is, so the spec can be fixed.
pub fn unknown_machine_message(cluster: &str, nodes: &[NodeId], machine: &Machine) -> String {
    let mut s = format!(
        "This machine is not a node of cluster {cluster}: none of its MACs is a node's mac, no {NODE_CMDLINE_ARG}= was given, and nobody chose a node at the console.\nNothing was written to any disk.\n  this machine's MACs: {}\n  serial: {}\n  nodes of the spec:\n",
        if machine.macs.is_empty() { "(none)".to_string() } else { machine.macs.join(", ") },
        machine.serial.as_deref().unwrap_or("(unknown)")
    );
    for n in nodes {
        s.push_str(&format!(
            "    {} mac {}\n",
            n.name,
            n.mac.as_deref().unwrap_or("(not set)")
        ));
    }
    s.push_str(&format!(
        "Set nodes[].mac in the spec and rebuild the stick, or boot with {NODE_CMDLINE_ARG}=NAME.\n"
    ));
    s
}

/// Reads a menu answer: a node's number (1-based) or name. `None` for anything else.
pub fn menu_choice(nodes: &[String], answer: &str) -> Option<String> {
    let a = answer.trim();
    if let Ok(i) = a.parse::<usize>() {
        return nodes.get(i.checked_sub(1)?).cloned();
    }
    nodes.iter().find(|n| n.as_str() == a).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes() -> Vec<NodeId> {
        vec![
            NodeId {
                name: "pve1".into(),
                mac: Some("1c:69:7a:00:00:21".into()),
            },
            NodeId {
                name: "pve2".into(),
                mac: Some("1c:69:7a:00:00:22".into()),
            },
            NodeId {
                name: "pve3".into(),
                mac: None,
            },
        ]
    }

    fn machine(macs: &[&str], cmdline: &str) -> Machine {
        Machine {
            macs: macs.iter().map(|s| s.to_string()).collect(),
            serial: Some("S123".into()),
            cmdline: cmdline.into(),
        }
    }

    #[test]
    fn mac_wins_then_cmdline_then_menu() {
        let n = nodes();
        assert_eq!(
            identify(
                &n,
                &machine(&["aa:bb:cc:dd:ee:ff", "1C:69:7A:00:00:22"], "quiet")
            ),
            Identity::Found {
                node: "pve2".into(),
                how: How::Mac
            }
        );
        assert_eq!(
            identify(
                &n,
                &machine(&["aa:bb:cc:dd:ee:ff"], "quiet hcikit.node=pve3")
            ),
            Identity::Found {
                node: "pve3".into(),
                how: How::CommandLine
            }
        );
        assert_eq!(
            identify(&n, &machine(&["aa:bb:cc:dd:ee:ff"], "quiet")),
            Identity::AskConsole {
                nodes: vec!["pve1".into(), "pve2".into(), "pve3".into()]
            }
        );
    }

    #[test]
    fn contradictions_and_unknown_names_are_refused() {
        let n = nodes();
        let two = identify(
            &n,
            &machine(&["1c:69:7a:00:00:21", "1c:69:7a:00:00:22"], ""),
        );
        assert!(
            matches!(&two, Identity::Refused(m) if m.contains("several nodes")),
            "{two:?}"
        );
        let bad = identify(&n, &machine(&["1c:69:7a:00:00:21"], "hcikit.node=pve2"));
        assert!(
            matches!(&bad, Identity::Refused(m) if m.contains("contradicts")),
            "{bad:?}"
        );
        let unknown = identify(&n, &machine(&[], "hcikit.node=pve9"));
        assert!(
            matches!(&unknown, Identity::Refused(m) if m.contains("names no node")),
            "{unknown:?}"
        );
    }

    #[test]
    fn unknown_machine_screen_lists_macs_and_serial() {
        let m = unknown_machine_message("minipc", &nodes(), &machine(&["aa:bb:cc:dd:ee:ff"], ""));
        assert!(
            m.contains("aa:bb:cc:dd:ee:ff")
                && m.contains("S123")
                && m.contains("Nothing was written"),
            "{m}"
        );
    }

    #[test]
    fn menu_takes_numbers_and_names_only() {
        let n: Vec<String> = vec!["pve1".into(), "pve2".into()];
        assert_eq!(menu_choice(&n, "2\n").as_deref(), Some("pve2"));
        assert_eq!(menu_choice(&n, "pve1").as_deref(), Some("pve1"));
        assert_eq!(menu_choice(&n, "0"), None);
        assert_eq!(menu_choice(&n, ""), None);
        assert_eq!(menu_choice(&n, "3"), None);
    }
}
