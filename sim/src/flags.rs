//! The simulator's table of subcommands and flags per tool, from the tools' API schemas:
//! pve-cluster `PVE::API2::ClusterConfig` (`create`, `addnode`) and `PVE::CLI::pvecm`
//! (`add`); pve-manager `PVE::CLI::pveceph` (`install`), `PVE::API2::Ceph` (`init`) and
//! `PVE::API2::Ceph::{MON,MGR,OSD,MDS,Pool,FS}` (the create methods),
//! `PVE::API2::Cluster::Notifications`; pve-cluster `PVE::DataCenterConfig`
//! (`$datacenter_schema`). A flag that is not
//! in the table is rejected the way the real CLI does, so a typo in the agent (e.g.
//! `--add-storages` for a pool) fails in tests instead of on a live cluster.

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// Canonical command, e.g. `pveceph pool create` or `pvesh create /storage`.
    pub cmd: String,
    pub pos: Vec<String>,
    /// Options in order; repeated options appear repeatedly.
    pub opts: Vec<(String, String)>,
}

impl Parsed {
    pub fn opt(&self, k: &str) -> Option<&str> {
        self.opts
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    }
    pub fn all(&self, k: &str) -> Vec<String> {
        self.opts
            .iter()
            .filter(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .collect()
    }
    pub fn has(&self, k: &str) -> bool {
        self.opts.iter().any(|(n, _)| n == k)
    }
}

/// A rejected command line: message and exit code as the real tool prints them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    pub code: i32,
    pub msg: String,
}

struct Spec {
    cmd: &'static str,
    positionals: usize,
    /// Options taking a value.
    flags: &'static [&'static str],
    /// Options without a value.
    switches: &'static [&'static str],
}

/// datacenter.cfg keys accepted by `pvesh set /cluster/options` (pve-cluster
/// `PVE::DataCenterConfig`, `$datacenter_schema`).
pub const DC_KEYS: &[&str] = &[
    "keyboard",
    "email_from",
    "migration",
    "ha",
    "bwlimit",
    "crs",
    "mac_prefix",
    "console",
    "language",
    "http_proxy",
    "max_workers",
    "next-id",
    "tag-style",
    "u2f",
    "webauthn",
    "fencing",
    "notify",
    "description",
    "registered-tags",
    "user-tag-access",
    "delete",
];

const SMTP: &[&str] = &[
    "name",
    "server",
    "port",
    "mode",
    "username",
    "password",
    "from-address",
    "mailto",
    "mailto-user",
    "author",
    "comment",
    "disable",
];
const MATCHER: &[&str] = &[
    "name",
    "target",
    "mode",
    "match-severity",
    "match-field",
    "match-calendar",
    "invert-match",
    "comment",
    "disable",
    "delete",
    "digest",
];
const REALM: &[&str] = &[
    "type",
    "server1",
    "server2",
    "port",
    "base_dn",
    "user_attr",
    "domain",
    "bind_dn",
    "password",
    "secure",
    "mode",
    "verify",
    "default",
    "comment",
    "issuer-url",
    "client-id",
    "client-key",
    "autocreate",
    "username-claim",
    "scopes",
    "group_dn",
    "sync-defaults-options",
];

const SPECS: &[Spec] = &[
    Spec {
        cmd: "pvecm create",
        positionals: 1,
        flags: &[
            "link0", "link1", "link2", "link3", "link4", "link5", "link6", "link7", "nodeid",
            "votes",
        ],
        switches: &[],
    },
    Spec {
        cmd: "pvecm add",
        positionals: 1,
        flags: &[
            "link0",
            "link1",
            "link2",
            "link3",
            "link4",
            "link5",
            "link6",
            "link7",
            "fingerprint",
            "nodeid",
            "votes",
            "force",
            "use_ssh",
        ],
        switches: &[],
    },
    Spec {
        cmd: "pvecm status",
        positionals: 0,
        flags: &[],
        switches: &[],
    },
    Spec {
        cmd: "pveceph install",
        positionals: 0,
        flags: &["repository", "version", "allow-experimental"],
        switches: &[],
    },
    Spec {
        cmd: "pveceph init",
        positionals: 0,
        flags: &[
            "network",
            "cluster-network",
            "size",
            "min_size",
            "pg_bits",
            "disable_cephx",
        ],
        switches: &[],
    },
    Spec {
        cmd: "pveceph mon create",
        positionals: 0,
        flags: &["monid", "mon-address"],
        switches: &[],
    },
    Spec {
        cmd: "pveceph mgr create",
        positionals: 0,
        flags: &["id"],
        switches: &[],
    },
    Spec {
        cmd: "pveceph osd create",
        positionals: 1,
        flags: &[
            "crush-device-class",
            "db_dev",
            "db_dev_size",
            "wal_dev",
            "wal_dev_size",
            "encrypted",
            "osds-per-device",
        ],
        switches: &[],
    },
    Spec {
        cmd: "pveceph mds create",
        positionals: 0,
        flags: &["name", "hotstandby"],
        switches: &[],
    },
    Spec {
        cmd: "pveceph pool create",
        positionals: 1,
        flags: &[
            "size",
            "min_size",
            "pg_num",
            "pg_num_min",
            "pg_autoscale_mode",
            "application",
            "crush_rule",
            "target_size",
            "target_size_ratio",
            "add_storages",
            "erasure-coding",
        ],
        switches: &[],
    },
    Spec {
        cmd: "pveceph fs create",
        positionals: 0,
        flags: &["name", "pg_num", "add-storage"],
        switches: &[],
    },
    Spec {
        cmd: "pvesh get",
        positionals: 1,
        flags: &["output-format", "typefilter", "limit"],
        switches: &[],
    },
    Spec {
        cmd: "pvesh set /cluster/options",
        positionals: 0,
        flags: DC_KEYS,
        switches: &[],
    },
    Spec {
        cmd: "pvesh create /storage",
        positionals: 0,
        flags: &[
            "storage", "type", "pool", "content", "krbd", "fs-name", "monhost", "username",
            "nodes", "disable",
        ],
        switches: &[],
    },
    Spec {
        cmd: "pvesh create /cluster/notifications/endpoints/smtp",
        positionals: 0,
        flags: SMTP,
        switches: &[],
    },
    Spec {
        cmd: "pvesh create /cluster/notifications/matchers",
        positionals: 0,
        flags: MATCHER,
        switches: &[],
    },
    Spec {
        cmd: "pvesh set /cluster/notifications/matchers/*",
        positionals: 0,
        flags: MATCHER,
        switches: &[],
    },
    Spec {
        cmd: "pvesh create /cluster/notifications/targets/*/test",
        positionals: 0,
        flags: &[],
        switches: &[],
    },
    Spec {
        cmd: "ha-manager groupadd",
        positionals: 1,
        flags: &["nodes", "restricted", "nofailback", "comment"],
        switches: &[],
    },
    Spec {
        cmd: "ha-manager rules add",
        positionals: 2,
        flags: &[
            "resources",
            "nodes",
            "strict",
            "comment",
            "disable",
            "affinity",
        ],
        switches: &[],
    },
    Spec {
        cmd: "pveum realm add",
        positionals: 1,
        flags: REALM,
        switches: &[],
    },
    Spec {
        cmd: "ceph -s",
        positionals: 0,
        flags: &["f", "format", "connect-timeout", "conf", "c"],
        switches: &[],
    },
    Spec {
        cmd: "ceph mon dump",
        positionals: 0,
        flags: &["f", "format", "connect-timeout", "conf", "c"],
        switches: &[],
    },
    Spec {
        cmd: "ceph mgr dump",
        positionals: 0,
        flags: &["f", "format", "connect-timeout", "conf", "c"],
        switches: &[],
    },
    Spec {
        cmd: "ceph osd tree",
        positionals: 0,
        flags: &["f", "format", "connect-timeout", "conf", "c"],
        switches: &[],
    },
    Spec {
        cmd: "ceph mds stat",
        positionals: 0,
        flags: &["f", "format", "connect-timeout", "conf", "c"],
        switches: &[],
    },
    Spec {
        cmd: "ceph osd pool ls detail",
        positionals: 0,
        flags: &["f", "format", "connect-timeout", "conf", "c"],
        switches: &[],
    },
    Spec {
        cmd: "ceph fs ls",
        positionals: 0,
        flags: &["f", "format", "connect-timeout", "conf", "c"],
        switches: &[],
    },
    Spec {
        cmd: "ceph-volume lvm list",
        positionals: 0,
        flags: &["format"],
        switches: &[],
    },
    Spec {
        cmd: "ceph-volume lvm zap",
        positionals: 1,
        flags: &[],
        switches: &["destroy"],
    },
    Spec {
        cmd: "lsblk",
        positionals: 0,
        flags: &["o", "output"],
        switches: &["json", "J"],
    },
    Spec {
        cmd: "wipefs",
        positionals: 1,
        flags: &[],
        switches: &["no-act", "json", "n", "J"],
    },
    Spec {
        cmd: "sendmail",
        positionals: 0,
        flags: &[],
        switches: &["t"],
    },
];

/// Which spec a command line matches: tool and subcommand words (for pvesh, the verb
/// and the API path, with `*` matching one path segment).
fn matches(spec: &str, argv: &[String]) -> Option<usize> {
    let words: Vec<&str> = spec.split(' ').collect();
    if argv.len() < words.len() {
        return None;
    }
    for (w, a) in words.iter().zip(argv) {
        if w.starts_with('/') {
            let ws: Vec<&str> = w.split('/').collect();
            let as_: Vec<&str> = a.split('/').collect();
            if ws.len() != as_.len() || ws.iter().zip(&as_).any(|(x, y)| *x != "*" && x != y) {
                return None;
            }
        } else if w != a {
            return None;
        }
    }
    Some(words.len())
}

fn program_name(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}

/// Parses `argv` against the table.
pub fn parse(argv: &[String]) -> Result<Parsed, Reject> {
    let mut argv = argv.to_vec();
    argv[0] = program_name(&argv[0]).to_string();
    let tool = argv[0].clone();
    let Some((spec, n)) = SPECS
        .iter()
        .filter_map(|s| matches(s.cmd, &argv).map(|n| (s, n)))
        .max_by_key(|(_, n)| *n)
    else {
        let shown = argv.iter().take(4).cloned().collect::<Vec<_>>().join(" ");
        return Err(match tool.as_str() {
            "ceph" => Reject {
                code: 22,
                msg: format!(
                    "no valid command found; 10 closest matches:\n(sim) unsupported: {shown}"
                ),
            },
            _ => Reject {
                code: 255,
                msg: format!("unknown command '{shown}'\n400 unable to parse command"),
            },
        });
    };
    let mut p = Parsed {
        cmd: spec.cmd.to_string(),
        pos: Vec::new(),
        opts: Vec::new(),
    };
    if spec.cmd.starts_with("pvesh") && spec.cmd.matches(' ').count() == 2 {
        // keep the concrete path for handlers
        p.pos.push(argv[2].clone());
    }
    let mut i = n;
    while i < argv.len() {
        let a = &argv[i];
        let name = a
            .strip_prefix("--")
            .or_else(|| a.strip_prefix('-'))
            .filter(|n| !n.is_empty() && !a.starts_with("-/"));
        match name {
            Some(name) if spec.switches.contains(&name) => {
                p.opts.push((name.to_string(), "1".into()));
                i += 1;
            }
            Some(name) if spec.flags.contains(&name) => {
                let Some(v) = argv.get(i + 1) else {
                    return Err(bad_option(&tool, name, "missing value"));
                };
                p.opts.push((name.to_string(), v.clone()));
                i += 2;
            }
            Some(name) => return Err(bad_option(&tool, name, "unknown option")),
            None => {
                p.pos.push(a.clone());
                i += 1;
            }
        }
    }
    let want = spec.positionals
        + usize::from(p.cmd.starts_with("pvesh") && p.cmd.matches(' ').count() == 2);
    if p.pos.len() != want {
        return Err(Reject {
            code: 255,
            msg: format!(
                "400 wrong number of arguments for '{}': expected {}, got {}",
                p.cmd,
                spec.positionals,
                p.pos.len()
            ),
        });
    }
    Ok(p)
}

fn bad_option(tool: &str, name: &str, why: &str) -> Reject {
    match tool {
        "ceph" => Reject {
            code: 22,
            msg: format!("ceph: error: unrecognized arguments: --{name}"),
        },
        "lsblk" | "wipefs" | "sendmail" | "ceph-volume" => Reject {
            code: 1,
            msg: format!("{tool}: {why}: '{name}'"),
        },
        _ => Reject {
            code: 255,
            msg: format!("Unknown option: {name}\n400 unable to parse option"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_string).collect()
    }

    #[test]
    fn known_commands_parse() {
        let p = parse(&v("pveceph pool create vm --size 3 --add_storages 1")).unwrap();
        assert_eq!(p.cmd, "pveceph pool create");
        assert_eq!(p.pos, ["vm"]);
        assert_eq!(p.opt("size"), Some("3"));
        let p = parse(&v("pvesh create /cluster/notifications/targets/relay/test")).unwrap();
        assert_eq!(p.pos, ["/cluster/notifications/targets/relay/test"]);
        let p = parse(&v("ceph osd pool ls detail -f json --connect-timeout 10")).unwrap();
        assert_eq!(p.cmd, "ceph osd pool ls detail");
        let p = parse(&v("/usr/sbin/sendmail -t")).unwrap();
        assert_eq!(p.cmd, "sendmail");
    }

    #[test]
    fn wrong_spelling_is_rejected_like_the_cli() {
        // The documented trap: --add_storages for pools, --add-storage for CephFS.
        let e = parse(&v("pveceph pool create vm --add-storage 1")).unwrap_err();
        assert_eq!(e.code, 255);
        assert!(e.msg.contains("Unknown option: add-storage"), "{}", e.msg);
        let e = parse(&v("pveceph fs create --add_storages 1")).unwrap_err();
        assert!(e.msg.contains("add_storages"));
        assert!(parse(&v("pvesh set /cluster/options --migrate x")).is_err());
        assert!(parse(&v("pvecm create")).is_err(), "missing cluster name");
        assert!(parse(&v("ceph osd tree --pretty")).is_err());
    }
}
