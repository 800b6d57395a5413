//! The pure core of the cluster run: given the Plan, this node, what was observed and
//! the recorded progress, decide the next step. No I/O here; `run` observes and acts.
//!
//! Each node works through its own ordered list of [`Step`]s ([`steps_for`]). A step is
//! *satisfied* when the observed state shows it done (so a crash after a command took
//! effect but before it was recorded is simply recorded on the next run), *ready* when
//! its preconditions hold, *blocked* while it waits for something (another node, quorum,
//! a daemon), or *fatal*. A blocked step holds back the steps after it, except
//! "floating" steps that do not depend on it (packages, cluster-wide configuration),
//! which run while the node would otherwise only wait.

use crate::host::CommandLine;
use crate::layout::{
    BOOTSTRAP_KEY, CEPH_BINARIES, CEPH_INSTALL_FLAG, CLUSTER_AUTHORIZED_KEYS, COROSYNC_KEY,
    KNOWN_HOSTS, PVE_BINARIES, SSH_CONFIG,
};
use crate::observe::{
    property_string, BlockDev, CephConf, CephStatus, ClusterStatus, MdsStat, MonDump, OsdTree,
    PoolInfo,
};
use crate::plan::{CephInstall, Node, Plan};
use crate::state::State;
use crate::steps::Domain;
pub use crate::steps::{steps_for, Step};
use std::collections::{BTreeMap, BTreeSet};

mod ceph;
mod cluster;
mod config;
mod ssh;
pub use ceph::disk_blank;
pub use ssh::{ssh_block, ssh_config_has_block, with_ssh_block, without_ssh_block};

/// How often a node re-checks a dependency on another node (ms).
pub const DEP_POLL_MS: u64 = 2_000;
/// Failed attempts of one step before the run gives up.
pub const MAX_ATTEMPTS: u32 = 8;
const SSH_BLOCK_BEGIN: &str = "# BEGIN hcikit bootstrap (removed after the join)";
const SSH_BLOCK_END: &str = "# END hcikit bootstrap";

/// What the last observation saw. `None` means "not observed" (not asked, or the query
/// failed); evaluation then treats the fact as unknown and waits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    pub now_ms: u64,
    /// (peer, network) → answered.
    pub reach: BTreeMap<(String, String), bool>,
    /// `/etc/pve/corosync.conf` exists on this node.
    pub corosync_conf: bool,
    /// A [`PVE_BINARIES`] tool is missing: this is not a Proxmox VE node.
    pub pve_missing: bool,
    pub local_cluster: Option<ClusterStatus>,
    /// The founder's view, over SSH (joiners before they are members).
    pub founder_cluster: Option<ClusterStatus>,
    pub ceph_binaries: bool,
    pub ceph_install_flag: bool,
    pub ceph_conf: Option<CephConf>,
    pub ceph: Option<CephStatus>,
    pub mons: Option<MonDump>,
    pub mgrs: Option<BTreeSet<String>>,
    pub osd_tree: Option<OsdTree>,
    pub mds: Option<MdsStat>,
    pub pools: Option<Vec<PoolInfo>>,
    pub storages: Option<BTreeSet<String>>,
    /// `ceph-volume lvm list`: device → (osd id, cluster fsid).
    pub volumes: Option<BTreeMap<String, (u32, String)>>,
    pub lsblk: Option<Vec<BlockDev>>,
    /// `wipefs` signature types per canonical device.
    pub signatures: BTreeMap<String, Vec<String>>,
    /// Plan device path → canonical path.
    pub resolved: BTreeMap<String, String>,
    pub options: Option<BTreeMap<String, BTreeMap<String, String>>>,
    pub ha_groups: Option<BTreeSet<String>>,
    pub ha_rules: Option<BTreeSet<String>>,
    pub smtp: Option<BTreeSet<String>>,
    pub matchers: Option<BTreeMap<String, Vec<String>>>,
    pub realms: Option<BTreeSet<String>>,
    /// Is the bootstrap public key still in the cluster's authorized_keys?
    pub bootstrap_authorized: Option<bool>,
    /// Is the bootstrap private key still on this node?
    pub bootstrap_key_present: bool,
    /// `/root/.ssh/config` (no secrets in it), when asked for.
    pub ssh_config: Option<String>,
    /// (seeded key installed by apply, `/etc/corosync/authkey`) exist.
    pub authkey: Option<(bool, bool)>,
}

/// A command the run executes for a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd {
    pub line: CommandLine,
    pub stdin: Option<Vec<u8>>,
    pub timeout_secs: u64,
}

impl Cmd {
    fn new(line: CommandLine, timeout_secs: u64) -> Self {
        Cmd {
            line,
            stdin: None,
            timeout_secs,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionKind {
    /// Run the command, then verify the step.
    Run(Cmd),
    /// Zap a disk the Plan allows to wipe: recorded in the state before and after.
    Zap { device: String, cmd: Cmd },
    /// Create an OSD: recorded in the state before it starts.
    OsdCreate { device: String, cmd: Cmd },
    /// Remove the bootstrap public key from the cluster's authorized_keys and the
    /// private key from this node.
    RevokeBootstrap,
    /// Remove the bootstrap private key and the ssh config block from this (joined) node.
    DropBootstrapKey,
    /// Write `/root/.ssh/config` with the bootstrap block (the new content).
    WriteSshConfig(String),
    /// Copy a (secret) file; its content is never shown.
    CopyFile { from: String, to: String, mode: u32 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verify {
    /// The step evaluates as satisfied on a fresh observation.
    Step,
    /// The disk shows no signature any more.
    DiskBlank(String),
    /// Nothing observable: the command's exit code is the evidence (a synchronous API call).
    ExitZero,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    pub step: Step,
    pub kind: ActionKind,
    pub verify: Verify,
    /// How long to keep re-observing before the attempt counts as failed (s).
    pub verify_secs: u64,
}

impl Action {
    /// The command (if any) for humans.
    pub fn describe(&self) -> String {
        match &self.kind {
            ActionKind::Run(c)
            | ActionKind::Zap { cmd: c, .. }
            | ActionKind::OsdCreate { cmd: c, .. } => c.line.display(),
            ActionKind::RevokeBootstrap => format!(
                "remove the bootstrap key from {CLUSTER_AUTHORIZED_KEYS} and delete {BOOTSTRAP_KEY}"
            ),
            ActionKind::DropBootstrapKey => {
                format!("delete {BOOTSTRAP_KEY} and the hcikit block of {SSH_CONFIG}")
            }
            ActionKind::CopyFile { from, to, mode } => {
                format!("install {from} as {to} (mode {mode:o})")
            }
            ActionKind::WriteSshConfig(_) => {
                format!("add a block to {SSH_CONFIG}: the founder via {BOOTSTRAP_KEY}, pinned host keys")
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wait {
    pub reason: String,
    /// Fail when the wait lasts longer (s); `None` = bounded only by the stall limit.
    pub limit_secs: Option<u64>,
    pub poll_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Every step is done.
    Done,
    /// The step is already done in the observed state: record it.
    Record(Step),
    Act(Action),
    Wait {
        step: Step,
        wait: Wait,
    },
    Fail {
        step: Step,
        error: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Eval {
    Satisfied,
    Ready(Action),
    Blocked(Wait),
    Fatal(String),
}

/// How long any step may wait for another node before the run gives up (s).
pub fn stall_limit_secs(plan: &Plan) -> u64 {
    let f = &plan.firstboot;
    f.peer_timeout_secs + f.join_timeout_secs * plan.nodes.len() as u64 + f.health_timeout_secs
}

fn pve_missing_message() -> String {
    format!(
        "Proxmox VE is not installed on this node ({} missing): build the image with \
         base = \"proxmox\" in [image], or install proxmox-ve",
        PVE_BINARIES.join(", ")
    )
}

fn dep(reason: impl Into<String>) -> Eval {
    Eval::Blocked(Wait {
        reason: reason.into(),
        limit_secs: None,
        poll_ms: DEP_POLL_MS,
    })
}

fn dep_limit(reason: impl Into<String>, limit: u64) -> Eval {
    Eval::Blocked(Wait {
        reason: reason.into(),
        limit_secs: Some(limit),
        poll_ms: DEP_POLL_MS,
    })
}

fn unobserved(what: &str) -> Eval {
    dep(format!("{what} not observed yet"))
}

fn run(step: Step, line: CommandLine, timeout: u64, verify_secs: u64) -> Eval {
    Eval::Ready(Action {
        step,
        kind: ActionKind::Run(Cmd::new(line, timeout)),
        verify: Verify::Step,
        verify_secs,
    })
}

/// Doubling backoff: sleep as long as already waited, between `backoff` and `max`.
pub fn backoff_ms(plan: &Plan, waited_ms: u64) -> u64 {
    let lo = plan.firstboot.backoff_secs.max(1) * 1000;
    let hi = plan
        .firstboot
        .max_backoff_secs
        .max(plan.firstboot.backoff_secs)
        .max(1)
        * 1000;
    waited_ms.clamp(lo, hi)
}

/// Retry delay after `attempts` failures: backoff doubling per attempt.
pub fn retry_ms(plan: &Plan, attempts: u32) -> u64 {
    let lo = plan.firstboot.backoff_secs.max(1) * 1000;
    let hi = plan
        .firstboot
        .max_backoff_secs
        .max(plan.firstboot.backoff_secs)
        .max(1)
        * 1000;
    lo.saturating_mul(1u64 << attempts.saturating_sub(1).min(20))
        .min(hi)
}

struct Ctx<'a> {
    plan: &'a Plan,
    me: &'a Node,
    obs: &'a Observed,
    state: &'a State,
}

/// Decide the next step. Pure.
pub fn decide(plan: &Plan, me: &Node, obs: &Observed, state: &State) -> Decision {
    let cx = Ctx {
        plan,
        me,
        obs,
        state,
    };
    // The first blocked non-floating step holds back every later step except floating
    // ones; a blocked floating step holds back the non-floating steps after it (the
    // final checks and mails come after the configuration they report on).
    let mut barrier: Option<(Step, Wait)> = None;
    let mut floating_wait: Option<(Step, Wait)> = None;
    for step in steps_for(plan, me) {
        let id = step.id();
        if state.is_done(&id) {
            continue;
        }
        // Cluster-wide configuration needs every member in: a write during a join finds
        // the founder inquorate.
        if step.floating() && !state.is_done(&Step::ClusterComplete.id()) {
            continue;
        }
        let may_act = step.floating() || (barrier.is_none() && floating_wait.is_none());
        if let Some(n) = state.attempts.get(&id) {
            if *n >= MAX_ATTEMPTS && may_act {
                let last = state.last_error.clone().unwrap_or_default();
                return Decision::Fail {
                    step,
                    error: format!("giving up after {n} attempts: {last}"),
                };
            }
        }
        match cx.eval(&step) {
            // Recorded in order, so the state never claims a later step before an
            // earlier one (the health check before the configuration it covers).
            Eval::Satisfied if may_act => return Decision::Record(step),
            Eval::Satisfied => {}
            Eval::Ready(a) if may_act => return Decision::Act(a),
            Eval::Ready(_) => {}
            Eval::Fatal(error) if may_act => return Decision::Fail { step, error },
            Eval::Fatal(_) => {}
            Eval::Blocked(w) => {
                let limit = w.limit_secs.unwrap_or_else(|| stall_limit_secs(plan));
                if let Some(since) = state.wait_since.get(&id) {
                    let waited = obs.now_ms.saturating_sub(*since);
                    if waited > limit * 1000 && may_act {
                        return Decision::Fail {
                            step,
                            error: format!("gave up after {} s: {}", waited / 1000, w.reason),
                        };
                    }
                }
                if step.floating() {
                    if floating_wait.is_none() {
                        floating_wait = Some((step, w));
                    }
                } else if barrier.is_none() && floating_wait.is_none() {
                    barrier = Some((step, w));
                }
            }
        }
    }
    match barrier.or(floating_wait) {
        Some((step, wait)) => Decision::Wait { step, wait },
        None => Decision::Done,
    }
}

/// Evaluates one step on its own (used to verify an action). Pure.
pub fn evaluate(plan: &Plan, me: &Node, obs: &Observed, state: &State, step: &Step) -> Eval {
    Ctx {
        plan,
        me,
        obs,
        state,
    }
    .eval(step)
}

impl Ctx<'_> {
    fn founder(&self) -> &Node {
        self.plan
            .node(&self.plan.cluster.founder)
            .unwrap_or_else(|| self.plan.founder())
    }

    fn waited_ms(&self, step: &Step) -> u64 {
        self.state
            .wait_since
            .get(&step.id())
            .map(|s| self.obs.now_ms.saturating_sub(*s))
            .unwrap_or(0)
    }

    fn link_args(&self, mut c: CommandLine) -> CommandLine {
        for l in &self.me.links {
            c = c.opt(&format!("link{}", l.number), l.ip.clone());
        }
        c
    }

    /// The local view of the cluster once this node is a member of the planned cluster.
    fn member_view(&self) -> Option<&ClusterStatus> {
        self.obs
            .local_cluster
            .as_ref()
            .filter(|c| c.name.as_deref() == Some(self.plan.cluster.name.as_str()))
    }

    fn ceph_quorum(&self) -> Option<&CephStatus> {
        self.obs
            .ceph
            .as_ref()
            .filter(|c| !c.quorum_names.is_empty())
    }

    fn eval(&self, step: &Step) -> Eval {
        match step.domain() {
            Domain::Cluster => self.eval_cluster(step),
            Domain::Ssh => self.eval_ssh(step),
            Domain::Ceph => self.eval_ceph(step),
            Domain::Config => self.eval_config(step),
        }
    }
}

/// Which facts the run should observe next: the pending steps up to the first pending
/// non-floating one, plus (with `floating`) every pending floating step.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Interest {
    pub peers: bool,
    pub local_cluster: bool,
    pub founder_cluster: bool,
    pub ceph_local: bool,
    pub ceph_status: bool,
    pub mons: bool,
    pub mgrs: bool,
    pub osd_tree: bool,
    pub mds: bool,
    pub pools: bool,
    pub storages: bool,
    pub disks: bool,
    pub options: bool,
    pub ha: bool,
    pub smtp: bool,
    pub matchers: bool,
    pub realms: bool,
    pub bootstrap: bool,
    pub authkey: bool,
}

pub fn interest(plan: &Plan, me: &Node, state: &State, floating: bool) -> Interest {
    let mut i = Interest::default();
    let mut reached_barrier = false;
    for step in steps_for(plan, me) {
        if state.is_done(&step.id()) {
            continue;
        }
        if reached_barrier && !(floating && step.floating()) {
            continue;
        }
        if !step.floating() {
            reached_barrier = true;
        } else if !floating && !reached_barrier {
            continue;
        }
        add_interest(&mut i, &step);
    }
    i
}

/// The facts one step's evaluation needs.
pub fn add_interest(i: &mut Interest, step: &Step) {
    let ceph = |i: &mut Interest| {
        i.ceph_local = true;
        i.ceph_status = true;
    };
    match step {
        Step::Peers => {
            i.peers = true;
            i.ceph_local = true;
        }
        Step::CorosyncKey => {
            i.local_cluster = true;
            i.authkey = true;
        }
        Step::CreateCluster | Step::ClusterComplete => i.local_cluster = true,
        Step::SshConfig => {
            i.local_cluster = true;
            i.bootstrap = true;
        }
        Step::JoinCluster => {
            i.local_cluster = true;
            i.founder_cluster = true;
        }
        Step::CephPackages | Step::CephInit => i.ceph_local = true,
        Step::Mon => {
            ceph(i);
            i.mons = true;
        }
        Step::Mgr => {
            ceph(i);
            i.mgrs = true;
        }
        Step::Osd(_) => {
            ceph(i);
            i.osd_tree = true;
            i.disks = true;
        }
        Step::Mds => {
            ceph(i);
            i.mds = true;
        }
        Step::Pool(_) => {
            ceph(i);
            i.pools = true;
            i.storages = true;
            i.osd_tree = true;
        }
        Step::CephFs(_) => {
            ceph(i);
            i.mds = true;
            i.storages = true;
            i.osd_tree = true;
        }
        Step::Health => ceph(i),
        Step::Options => i.options = true,
        Step::HaGroup(_) => i.ha = true,
        Step::Smtp(_) => i.smtp = true,
        Step::Matcher(_) | Step::DefaultMatcher => i.matchers = true,
        Step::Realm(_) => i.realms = true,
        Step::TestMail(_) | Step::ReadyMail => {}
        Step::RevokeBootstrap | Step::DropBootstrapKey => i.bootstrap = true,
    }
}

#[cfg(test)]
mod tests;
