//! What can go wrong in a simulated run: late, absent and killed nodes, late links,
//! failing commands and dirty disks, and the `--fault` syntax of `hcikit simulate`.

use crate::world::{DiskContent, FailKind, FailRule};
use anyhow::Result;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// Where to kill an agent: its `call`-th Host call (0-based) in its `run`-th start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Kill {
    pub node: String,
    pub run: u32,
    pub call: u64,
    /// Kill after the call took effect (instead of before it).
    pub after: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Faults {
    /// Node → boot time (s).
    pub late: BTreeMap<String, u64>,
    /// Nodes that never boot.
    pub absent: BTreeSet<String>,
    /// (node, network) → when that link comes up (s).
    pub link_late: BTreeMap<(String, String), u64>,
    pub fail: Vec<FailRule>,
    pub kills: Vec<Kill>,
    /// Disks that are not blank at the start: (node, device, content).
    pub disks: Vec<(String, String, DiskContent)>,
    /// Random kills: this many, at seeded random Host calls of random nodes.
    pub random_kills: u32,
    /// Delay before a killed agent starts again (s).
    pub restart_delay_secs: u64,
    /// Reboot a node whose run failed after this long (s), as the unit re-runs on the
    /// next boot; `None`: a failed run stays failed.
    pub reboot_failed_after_secs: Option<u64>,
}

/// Adds one fault from its command-line form (`hcikit simulate --fault …`):
///
/// - `late:NODE=SECS`: NODE boots SECS seconds late
/// - `absent:NODE`: NODE never boots
/// - `link-late:NODE/NETWORK=SECS`: NODE's link on NETWORK comes up at SECS
/// - `lock:NODE=N`: NODE's next N joins hit the corosync.conf lock
/// - `task-error:NODE:COMMAND=N`: the next N runs of COMMAND (prefix, e.g. `pveceph pool
///   create`) on NODE (`*` = any) fail inside the task
/// - `kill:NODE@CALL` / `kill-after:NODE@CALL`: kill NODE's agent before/after its
///   CALL-th Host call (it restarts after `restart=SECS`, default 30)
/// - `random-kills=N`: N kills at seeded random points
/// - `reboot-failed=SECS`: a node whose run failed reboots (and re-runs) after SECS
/// - `disk:NODE:DEV=ext4|gpt|lvm`: the disk is not blank at the start
pub fn add_fault(f: &mut Faults, spec: &str) -> Result<()> {
    let bad = || anyhow::anyhow!("cannot parse fault '{spec}' (see `hcikit simulate --help`)");
    let (kind, rest) = spec.split_once([':', '=']).ok_or_else(bad)?;
    let num = |s: &str| s.trim().parse::<u64>().map_err(|_| bad());
    match kind {
        "late" => {
            let (n, s) = rest.split_once('=').ok_or_else(bad)?;
            f.late.insert(n.into(), num(s)?);
        }
        "absent" => {
            f.absent.insert(rest.into());
        }
        "link-late" => {
            let (ns, s) = rest.split_once('=').ok_or_else(bad)?;
            let (n, net) = ns.split_once('/').ok_or_else(bad)?;
            f.link_late.insert((n.into(), net.into()), num(s)?);
        }
        "lock" => {
            let (n, c) = rest.split_once('=').ok_or_else(bad)?;
            f.fail.push(FailRule {
                node: Some(n.into()),
                command: "pvecm add".into(),
                times: num(c)? as u32,
                kind: FailKind::LockTimeout,
            });
        }
        "task-error" => {
            let (nc, c) = rest.rsplit_once('=').ok_or_else(bad)?;
            let (n, cmd) = nc.split_once(':').ok_or_else(bad)?;
            f.fail.push(FailRule {
                node: (n != "*").then(|| n.to_string()),
                command: cmd.into(),
                times: num(c)? as u32,
                kind: FailKind::TaskError(format!("simulated failure of {cmd}")),
            });
        }
        "kill" | "kill-after" => {
            let (n, c) = rest.split_once('@').ok_or_else(bad)?;
            f.kills.push(Kill {
                node: n.into(),
                run: 0,
                call: num(c)?,
                after: kind == "kill-after",
            });
        }
        "random-kills" => f.random_kills = num(rest)? as u32,
        "restart" => f.restart_delay_secs = num(rest)?,
        "reboot-failed" => f.reboot_failed_after_secs = Some(num(rest)?),
        "disk" => {
            let (nd, c) = rest.rsplit_once('=').ok_or_else(bad)?;
            let (n, d) = nd.split_once(':').ok_or_else(bad)?;
            let content = match c {
                "ext4" => DiskContent::Ext4,
                "gpt" => DiskContent::Gpt,
                "lvm" => DiskContent::Lvm,
                _ => return Err(bad()),
            };
            f.disks.push((n.into(), d.into(), content));
        }
        _ => return Err(bad()),
    }
    if f.restart_delay_secs == 0 {
        f.restart_delay_secs = 30;
    }
    Ok(())
}
