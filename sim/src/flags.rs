//! The simulator's table of subcommands and flags of the programs that are not Proxmox's
//! (`ceph`, `ceph-volume`, `lsblk`, `wipefs`, `sendmail`), from their synopses. Proxmox's
//! own tools are checked against the schemas extracted from its source ([`crate::schema`]).
//! A flag that is not in the table is rejected the way the real program does.

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

const SPECS: &[Spec] = &[
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
        cmd: "ceph config dump",
        positionals: 0,
        flags: &["f", "format", "connect-timeout", "conf", "c"],
        switches: &[],
    },
    Spec {
        cmd: "ceph config set",
        positionals: 3,
        flags: &["connect-timeout", "conf", "c"],
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
        cmd: "cat",
        positionals: 1,
        flags: &[],
        switches: &[],
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
        let p = parse(&v("ceph osd pool ls detail -f json --connect-timeout 10")).unwrap();
        assert_eq!(p.cmd, "ceph osd pool ls detail");
        let p = parse(&v("/usr/sbin/sendmail -t")).unwrap();
        assert_eq!(p.cmd, "sendmail");
        let p = parse(&v("ceph-volume lvm zap /dev/sdb --destroy")).unwrap();
        assert_eq!(p.pos, ["/dev/sdb"]);
    }

    #[test]
    fn wrong_spelling_is_rejected_like_the_cli() {
        let e = parse(&v("ceph osd tree --pretty")).unwrap_err();
        assert_eq!(e.code, 22);
        assert!(parse(&v("wipefs --all /dev/sdb")).is_err());
        assert!(parse(&v("ceph-volume lvm zap")).is_err(), "missing device");
    }
}
