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
use crate::plan::{Node, Plan};
use crate::state::State;
pub use crate::steps::{steps_for, Step};
use std::collections::{BTreeMap, BTreeSet};

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

/// The ssh client block for the founder at `ip`: the bootstrap key (and root's own key,
/// which `ssh-copy-id` copies), host keys only from the pinned file.
pub fn ssh_block(ip: &str) -> String {
    format!(
        "{SSH_BLOCK_BEGIN}\nHost {ip}\n    User root\n    IdentityFile {BOOTSTRAP_KEY}\n    IdentityFile /root/.ssh/id_rsa\n    \
         UserKnownHostsFile {KNOWN_HOSTS}\n    StrictHostKeyChecking yes\n    BatchMode yes\n{SSH_BLOCK_END}\n"
    )
}

/// `config` without the hcikit block.
pub fn without_ssh_block(config: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for line in config.lines() {
        if line.trim() == SSH_BLOCK_BEGIN {
            inside = true;
        } else if line.trim() == SSH_BLOCK_END {
            inside = false;
        } else if !inside {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// `config` with the hcikit block for `ip` first (ssh uses the first match).
pub fn with_ssh_block(config: &str, ip: &str) -> String {
    format!("{}{}", ssh_block(ip), without_ssh_block(config))
}

pub fn ssh_config_has_block(config: &str, ip: &str) -> bool {
    config.contains(&ssh_block(ip))
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

/// Does the disk show no partition table, file system, mount, holder or signature?
pub fn disk_blank(obs: &Observed, dev: &str) -> bool {
    let Some(path) = obs.resolved.get(dev) else {
        return false;
    };
    let Some(d) = obs
        .lsblk
        .as_ref()
        .and_then(|l| l.iter().find(|d| &d.path == path))
    else {
        return false;
    };
    d.in_use_reasons().is_empty() && obs.signatures.get(path).is_some_and(|s| s.is_empty())
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
        let plan = self.plan;
        let obs = self.obs;
        match step {
            Step::Peers => self.eval_peers(),
            Step::CreateCluster => match &obs.local_cluster {
                Some(c) if c.name.as_deref() == Some(plan.cluster.name.as_str()) => Eval::Satisfied,
                Some(ClusterStatus {
                    name: Some(other), ..
                }) => Eval::Fatal(format!(
                    "{} is already in cluster '{other}', the plan says '{}'",
                    self.me.name, plan.cluster.name
                )),
                Some(_) if obs.corosync_conf => dep_limit(
                    "/etc/pve/corosync.conf exists but the cluster is not up yet",
                    plan.firstboot.join_timeout_secs,
                ),
                Some(_) => run(
                    step.clone(),
                    self.link_args(
                        CommandLine::new("pvecm")
                            .arg("create")
                            .arg(plan.cluster.name.clone()),
                    ),
                    300,
                    60,
                ),
                None if obs.pve_missing => Eval::Fatal(pve_missing_message()),
                None => dep("pve-cluster to answer (pvesh get /cluster/status failed)"),
            },
            Step::CorosyncKey => {
                if self.member_view().is_some() {
                    return Eval::Satisfied;
                }
                match obs.authkey {
                    None => unobserved("the corosync key files"),
                    // No seeded key (or already in place): pvecm create makes or keeps one.
                    Some((false, _)) | Some((_, true)) => Eval::Satisfied,
                    Some((true, false)) => Eval::Ready(Action {
                        step: step.clone(),
                        kind: ActionKind::CopyFile {
                            from: crate::layout::COROSYNC_AUTHKEY.into(),
                            to: COROSYNC_KEY.into(),
                            mode: 0o400,
                        },
                        verify: Verify::Step,
                        verify_secs: 5,
                    }),
                }
            }
            Step::SshConfig => {
                if self
                    .member_view()
                    .is_some_and(|c| c.member(&self.me.name).is_some())
                {
                    return Eval::Satisfied;
                }
                let Some(current) = &obs.ssh_config else {
                    return unobserved("root's ssh config");
                };
                let ip = &self.founder().primary_ip;
                if ssh_config_has_block(current, ip) {
                    Eval::Satisfied
                } else {
                    Eval::Ready(Action {
                        step: step.clone(),
                        kind: ActionKind::WriteSshConfig(with_ssh_block(current, ip)),
                        verify: Verify::Step,
                        verify_secs: 5,
                    })
                }
            }
            Step::JoinCluster => self.eval_join(),
            Step::ClusterComplete => {
                let Some(c) = self.member_view() else {
                    return unobserved("cluster membership");
                };
                let missing: Vec<_> = plan
                    .nodes
                    .iter()
                    .filter(|n| !c.online(&n.name))
                    .map(|n| n.name.as_str())
                    .collect();
                if !missing.is_empty() {
                    dep(format!("{} to join the cluster", missing.join(", ")))
                } else if !c.quorate {
                    dep("cluster quorum")
                } else {
                    Eval::Satisfied
                }
            }
            Step::CephPackages => self.eval_packages(),
            Step::CephInit => {
                let ceph = plan.ceph.as_ref().expect("ceph step without ceph plan");
                match &obs.ceph_conf {
                    Some(c) if c.fsid.is_some() => Eval::Satisfied,
                    _ => {
                        let mut c = CommandLine::new("pveceph")
                            .arg("init")
                            .opt("network", ceph.public_cidr.clone());
                        if ceph.cluster_cidr != ceph.public_cidr {
                            c = c.opt("cluster-network", ceph.cluster_cidr.clone());
                        }
                        run(step.clone(), c, 120, 30)
                    }
                }
            }
            Step::Mon => self.eval_mon(),
            Step::Mgr => self.eval_mgr(step),
            Step::Osd(dev) => self.eval_osd(step, dev),
            Step::Mds => {
                let Some(_) = self.ceph_quorum() else {
                    return dep("Ceph monitor quorum");
                };
                let Some(m) = &obs.mds else {
                    return unobserved("MDS map");
                };
                if m.daemons.contains(&self.me.name) {
                    Eval::Satisfied
                } else {
                    run(
                        step.clone(),
                        CommandLine::new("pveceph").args(["mds", "create"]),
                        300,
                        60,
                    )
                }
            }
            Step::Pool(name) => self.eval_pool(step, name),
            Step::CephFs(name) => self.eval_fs(step, name),
            Step::Options => {
                let Some(have) = &obs.options else {
                    return unobserved("datacenter options");
                };
                let mut c = CommandLine::new("pvesh").args(["set", "/cluster/options"]);
                let mut differs = false;
                for (k, v) in &plan.datacenter.options {
                    if have.get(k) != Some(&property_string(k, v)) {
                        c = c.opt(k, v.clone());
                        differs = true;
                    }
                }
                if differs {
                    run(step.clone(), c, 60, 20)
                } else {
                    Eval::Satisfied
                }
            }
            Step::HaGroup(g) => self.eval_ha(step, g),
            Step::Smtp(t) => {
                let Some(have) = &obs.smtp else {
                    return unobserved("SMTP targets");
                };
                if have.contains(t) {
                    return Eval::Satisfied;
                }
                let Some(s) = plan.notifications.smtp.iter().find(|s| &s.name == t) else {
                    return Eval::Fatal(format!("SMTP target {t} is not in the plan"));
                };
                let mut c = CommandLine::new("pvesh")
                    .args(["create", "/cluster/notifications/endpoints/smtp"])
                    .opt("name", s.name.clone())
                    .opt("server", s.server.clone())
                    .opt("port", s.port.to_string())
                    .opt("mode", s.mode.clone())
                    .opt("from-address", s.from_address.clone());
                if let Some(u) = &s.username {
                    c = c.opt("username", u.clone());
                }
                if let Some(p) = &s.password {
                    c = c.secret_file_opt("password", p.node_path());
                }
                for m in &s.mailto {
                    c = c.opt("mailto", m.clone());
                }
                for m in &s.mailto_user {
                    c = c.opt("mailto-user", m.clone());
                }
                if let Some(a) = &s.author {
                    c = c.opt("author", a.clone());
                }
                if let Some(a) = &s.comment {
                    c = c.opt("comment", a.clone());
                }
                run(step.clone(), c, 60, 20)
            }
            Step::Matcher(name) => {
                let Some(have) = &obs.matchers else {
                    return unobserved("notification matchers");
                };
                if have.contains_key(name) {
                    return Eval::Satisfied;
                }
                let Some(m) = plan.notifications.matchers.iter().find(|m| &m.name == name) else {
                    return Eval::Fatal(format!("matcher {name} is not in the plan"));
                };
                let mut c = CommandLine::new("pvesh")
                    .args(["create", "/cluster/notifications/matchers"])
                    .opt("name", m.name.clone())
                    .opt("mode", m.mode.clone());
                for t in &m.targets {
                    c = c.opt("target", t.clone());
                }
                for s in &m.match_severity {
                    c = c.opt("match-severity", s.clone());
                }
                for f in &m.match_field {
                    c = c.opt("match-field", f.clone());
                }
                if m.invert_match {
                    c = c.opt("invert-match", "1");
                }
                if let Some(a) = &m.comment {
                    c = c.opt("comment", a.clone());
                }
                run(step.clone(), c, 60, 20)
            }
            Step::DefaultMatcher => {
                let Some(have) = &obs.matchers else {
                    return unobserved("notification matchers");
                };
                let current = have.get("default-matcher").cloned().unwrap_or_default();
                let wanted = &plan.notifications.default_matcher_targets;
                if wanted.iter().all(|t| current.contains(t)) {
                    return Eval::Satisfied;
                }
                let mut all: Vec<String> = current;
                if all.is_empty() {
                    all.push(crate::steps::BUILTIN_TARGET.into());
                }
                for t in wanted {
                    if !all.contains(t) {
                        all.push(t.clone());
                    }
                }
                let mut c = CommandLine::new("pvesh")
                    .args(["set", "/cluster/notifications/matchers/default-matcher"]);
                for t in all {
                    c = c.opt("target", t);
                }
                run(step.clone(), c, 60, 20)
            }
            Step::Realm(name) => {
                let Some(have) = &obs.realms else {
                    return unobserved("authentication realms");
                };
                if have.contains(name) {
                    return Eval::Satisfied;
                }
                let Some(r) = plan.realms.iter().find(|r| &r.name == name) else {
                    return Eval::Fatal(format!("realm {name} is not in the plan"));
                };
                let mut c = CommandLine::new("pveum")
                    .args(["realm", "add", &r.name])
                    .opt("type", r.kind.clone());
                for (k, v) in &r.options {
                    c = c.opt(k, v.clone());
                }
                if let Some(s) = &r.secret {
                    let key = if r.kind == "openid" {
                        "client-key"
                    } else {
                        "password"
                    };
                    c = c.secret_file_opt(key, s.node_path());
                }
                if r.default {
                    c = c.opt("default", "1");
                }
                if let Some(a) = &r.comment {
                    c = c.opt("comment", a.clone());
                }
                run(step.clone(), c, 60, 20)
            }
            Step::TestMail(t) => {
                if !self.state.is_done(&Step::Smtp(t.clone()).id()) {
                    return dep(format!("SMTP target {t} to be configured"));
                }
                Eval::Ready(Action {
                    step: step.clone(),
                    kind: ActionKind::Run(Cmd::new(
                        CommandLine::new("pvesh")
                            .arg("create")
                            .arg(format!("/cluster/notifications/targets/{t}/test")),
                        60,
                    )),
                    verify: Verify::ExitZero,
                    verify_secs: 0,
                })
            }
            Step::Health => self.eval_health(),
            Step::ReadyMail => {
                let Some(t) = &plan.notifications.report_target else {
                    return Eval::Satisfied;
                };
                Eval::Ready(Action {
                    step: step.clone(),
                    kind: ActionKind::Run(Cmd::new(
                        CommandLine::new("pvesh")
                            .arg("create")
                            .arg(format!("/cluster/notifications/targets/{t}/test")),
                        60,
                    )),
                    verify: Verify::ExitZero,
                    verify_secs: 0,
                })
            }
            Step::RevokeBootstrap => match obs.bootstrap_authorized {
                None => unobserved("the cluster's authorized_keys"),
                Some(false) if !obs.bootstrap_key_present => Eval::Satisfied,
                Some(_) => Eval::Ready(Action {
                    step: step.clone(),
                    kind: ActionKind::RevokeBootstrap,
                    verify: Verify::Step,
                    verify_secs: 10,
                }),
            },
            Step::DropBootstrapKey => {
                let Some(cfg) = &obs.ssh_config else {
                    return unobserved("root's ssh config");
                };
                if obs.bootstrap_key_present || cfg.contains(SSH_BLOCK_BEGIN) {
                    Eval::Ready(Action {
                        step: step.clone(),
                        kind: ActionKind::DropBootstrapKey,
                        verify: Verify::Step,
                        verify_secs: 10,
                    })
                } else {
                    Eval::Satisfied
                }
            }
        }
    }

    fn eval_peers(&self) -> Eval {
        if self.obs.corosync_conf {
            // Already clustered (a re-run): the peers answered once, and quorum is what counts now.
            return Eval::Satisfied;
        }
        let mut missing = Vec::new();
        for peer in self.plan.nodes.iter().filter(|n| n.name != self.me.name) {
            for a in &peer.addresses {
                let ok = self
                    .obs
                    .reach
                    .get(&(peer.name.clone(), a.network.clone()))
                    .copied()
                    .unwrap_or(false);
                if !ok {
                    missing.push(format!("{} on {} ({})", peer.name, a.network, a.ip));
                }
            }
        }
        if missing.is_empty() {
            return Eval::Satisfied;
        }
        Eval::Blocked(Wait {
            reason: format!("peers to answer: {}", missing.join(", ")),
            limit_secs: Some(self.plan.firstboot.peer_timeout_secs),
            poll_ms: backoff_ms(self.plan, self.waited_ms(&Step::Peers)),
        })
    }

    fn eval_join(&self) -> Eval {
        let plan = self.plan;
        let obs = self.obs;
        let me = &self.me.name;
        match &obs.local_cluster {
            Some(c)
                if c.name.as_deref() == Some(plan.cluster.name.as_str())
                    && c.member(me).is_some() =>
            {
                return Eval::Satisfied
            }
            Some(ClusterStatus {
                name: Some(other), ..
            }) if other != &plan.cluster.name => {
                return Eval::Fatal(format!(
                    "{me} is already in cluster '{other}', the plan says '{}'",
                    plan.cluster.name
                ))
            }
            None if obs.pve_missing => return Eval::Fatal(pve_missing_message()),
            None => return dep("pve-cluster to answer (pvesh get /cluster/status failed)"),
            _ => {}
        }
        if obs.corosync_conf {
            return dep_limit(
                "the interrupted join to finish (/etc/pve/corosync.conf exists, not a member yet)",
                plan.firstboot.join_timeout_secs,
            );
        }
        let founder = self.founder();
        let Some(f) = &obs.founder_cluster else {
            return dep(format!("{}'s cluster status over SSH", founder.name));
        };
        if f.name.as_deref() != Some(plan.cluster.name.as_str()) {
            return dep(format!(
                "{} to create cluster {}",
                founder.name, plan.cluster.name
            ));
        }
        if let Some(m) = f.nodes.iter().find(|n| n.name != *me && !n.online) {
            return dep(format!(
                "{} to come online (joins go one at a time)",
                m.name
            ));
        }
        for prev in &plan.cluster.join_order {
            if prev == me {
                break;
            }
            if !f.online(prev) {
                return dep(format!("{prev} to join first (joins go one at a time)"));
            }
        }
        if !f.quorate {
            return dep(format!("quorum on {}", founder.name));
        }
        let c = CommandLine::new("pvecm")
            .arg("add")
            .arg(founder.primary_ip.clone())
            .opt("use_ssh", "1");
        run(
            Step::JoinCluster,
            self.link_args(c),
            plan.firstboot.join_timeout_secs,
            60,
        )
    }

    fn eval_packages(&self) -> Eval {
        let plan = self.plan;
        let obs = self.obs;
        if obs.ceph_binaries && !obs.ceph_install_flag {
            return Eval::Satisfied;
        }
        if obs.ceph_install_flag {
            return dep_limit(
                format!("the running Ceph installation ({CEPH_INSTALL_FLAG} exists)"),
                3600,
            );
        }
        let ceph = plan.ceph.as_ref().expect("ceph step without ceph plan");
        match plan.firstboot.ceph_install.as_str() {
            "pveceph" => Eval::Ready(Action {
                step: Step::CephPackages,
                kind: ActionKind::Run(Cmd {
                    line: CommandLine::new("pveceph")
                        .arg("install")
                        .opt("version", ceph.release.clone())
                        .opt("repository", ceph.repository.clone()),
                    // apt inside pveceph asks without -y; answer every prompt.
                    stdin: Some(b"y\n".repeat(32)),
                    timeout_secs: 3600,
                }),
                verify: Verify::Step,
                verify_secs: 30,
            }),
            other => Eval::Fatal(format!(
                "Ceph packages are missing on {} ({} not found) and firstboot.ceph-install is '{other}': \
                 build the image from a base with Ceph {} installed, or set ceph-install = \"pveceph\"",
                self.me.name,
                CEPH_BINARIES.join(", "),
                ceph.release
            )),
        }
    }

    fn eval_mon(&self) -> Eval {
        let ceph = self.plan.ceph.as_ref().expect("ceph");
        let obs = self.obs;
        let me = &self.me.name;
        let Some(conf) = obs.ceph_conf.as_ref().filter(|c| c.fsid.is_some()) else {
            return dep(format!(
                "{} to initialise Ceph (pveceph init)",
                self.plan.cluster.founder
            ));
        };
        let mons = match (&obs.mons, conf.mon_host.is_empty()) {
            (Some(m), _) => m.clone(),
            (None, true) => MonDump::default(),
            (None, false) => return unobserved("monitor map"),
        };
        if mons.quorum.contains(me) {
            return Eval::Satisfied;
        }
        if mons.mons.contains(me) {
            return dep_limit(format!("mon.{me} to join the monitor quorum"), 600);
        }
        for prev in &ceph.mons {
            if prev == me {
                break;
            }
            if !mons.quorum.contains(prev) {
                return dep(format!(
                    "mon.{prev} to be in quorum (monitors are added one at a time)"
                ));
            }
        }
        run(
            Step::Mon,
            CommandLine::new("pveceph").args(["mon", "create"]),
            600,
            120,
        )
    }

    fn eval_mgr(&self, step: &Step) -> Eval {
        let ceph = self.plan.ceph.as_ref().expect("ceph");
        let Some(_) = self.ceph_quorum() else {
            return dep("Ceph monitor quorum");
        };
        let Some(mgrs) = &self.obs.mgrs else {
            return unobserved("manager map");
        };
        if mgrs.contains(&self.me.name) {
            return Eval::Satisfied;
        }
        // The first monitor creates a manager by itself; give it time before adding one.
        if ceph.mons.first() == Some(&self.me.name) && self.waited_ms(step) < 60_000 {
            return dep("the manager that the first monitor creates");
        }
        run(
            step.clone(),
            CommandLine::new("pveceph").args(["mgr", "create"]),
            300,
            60,
        )
    }

    fn eval_osd(&self, step: &Step, dev: &str) -> Eval {
        let obs = self.obs;
        let me = &self.me.name;
        let Some(osd) = self.me.osds.iter().find(|o| o.device == dev) else {
            return Eval::Fatal(format!("{dev} is not an OSD disk of {me} in the plan"));
        };
        let Some(fsid) = obs.ceph_conf.as_ref().and_then(|c| c.fsid.clone()) else {
            return dep("Ceph to be initialised");
        };
        if self.ceph_quorum().is_none() {
            return dep("Ceph monitor quorum");
        }
        let (Some(volumes), Some(disks), Some(tree)) = (&obs.volumes, &obs.lsblk, &obs.osd_tree)
        else {
            return unobserved("disks and OSDs");
        };
        let Some(path) = obs.resolved.get(dev) else {
            return Eval::Fatal(format!("disk {dev} not found on {me}"));
        };
        if let Some((id, f)) = volumes.get(path) {
            if *f == fsid {
                return if tree.osd_up(*id) {
                    Eval::Satisfied
                } else {
                    dep_limit(format!("osd.{id} on {dev} to come up"), 600)
                };
            }
        }
        let Some(disk) = disks.iter().find(|d| &d.path == path) else {
            return Eval::Fatal(format!("disk {dev} ({path}) not found on {me} (lsblk)"));
        };
        if disk.holds_root() {
            return Eval::Fatal(format!(
                "refusing {dev} on {me}: it is the boot device (holds the root file system)"
            ));
        }
        let mut reasons = disk.in_use_reasons();
        for s in obs.signatures.get(path).into_iter().flatten() {
            let r = format!("{s} signature");
            if !reasons.contains(&r) {
                reasons.push(r);
            }
        }
        if let Some((id, f)) = volumes.get(path) {
            reasons.push(format!("osd.{id} of another Ceph cluster (fsid {f})"));
        }
        if reasons.is_empty() {
            return Eval::Ready(Action {
                step: step.clone(),
                kind: ActionKind::OsdCreate {
                    device: dev.to_string(),
                    cmd: Cmd::new(
                        {
                            let mut c = CommandLine::new("pveceph").args(["osd", "create", dev]);
                            if let Some(class) = &osd.device_class {
                                c = c.opt("crush-device-class", class.clone());
                            }
                            c
                        },
                        900,
                    ),
                },
                verify: Verify::Step,
                verify_secs: 120,
            });
        }
        let why = reasons.join(", ");
        if self.state.osd_started.contains_key(dev) {
            return Eval::Fatal(format!(
                "{dev} on {me} carries {why} after an interrupted `pveceph osd create` by hcikit; \
                 not zapping a disk an OSD of ours may use: check it and zap it by hand"
            ));
        }
        if !osd.wipe {
            return Eval::Fatal(format!(
                "refusing to use {dev} on {me} for an OSD: it is not blank ({why}); \
                 set wipe = true for this disk in the spec to let hcikit zap it"
            ));
        }
        if self
            .state
            .zaps
            .get(dev)
            .is_some_and(|z| z.done_ms.is_some())
        {
            return Eval::Fatal(format!(
                "{dev} on {me} still carries {why} after hcikit zapped it once; not zapping again"
            ));
        }
        Eval::Ready(Action {
            step: step.clone(),
            kind: ActionKind::Zap {
                device: dev.to_string(),
                cmd: Cmd::new(
                    CommandLine::new("ceph-volume").args(["lvm", "zap", dev, "--destroy"]),
                    600,
                ),
            },
            verify: Verify::DiskBlank(dev.to_string()),
            verify_secs: 30,
        })
    }

    /// `Some(wait)` until OSDs are up on `size` hosts.
    fn enough_osd_hosts(&self, size: u8) -> Option<Eval> {
        let Some(tree) = &self.obs.osd_tree else {
            return Some(unobserved("OSD tree"));
        };
        let up = tree.hosts_with_up_osd();
        if up < size as usize {
            return Some(dep(format!("OSDs up on {size} hosts ({up} so far)")));
        }
        None
    }

    fn eval_pool(&self, step: &Step, name: &str) -> Eval {
        let ceph = self.plan.ceph.as_ref().expect("ceph");
        let Some(p) = ceph.pools.iter().find(|p| p.name == name) else {
            return Eval::Fatal(format!("pool {name} is not in the plan"));
        };
        let (Some(pools), Some(storages)) = (&self.obs.pools, &self.obs.storages) else {
            return unobserved("pools and storages");
        };
        if let Some(have) = pools.iter().find(|x| x.name == name) {
            if have.size != p.size || have.min_size != p.min_size {
                return Eval::Fatal(format!(
                    "pool {name} exists with size {}/{} but the plan says {}/{}",
                    have.size, have.min_size, p.size, p.min_size
                ));
            }
            if p.add_storage && !storages.contains(name) {
                // The pool task can fail after creating the pool (exit 0 either way).
                return run(
                    step.clone(),
                    CommandLine::new("pvesh")
                        .args(["create", "/storage"])
                        .opt("storage", name)
                        .opt("type", "rbd")
                        .opt("pool", name)
                        .opt("content", "images,rootdir")
                        .opt("krbd", "0"),
                    60,
                    20,
                );
            }
            return Eval::Satisfied;
        }
        if let Some(e) = self.enough_osd_hosts(p.size) {
            return e;
        }
        let mut c = CommandLine::new("pveceph")
            .args(["pool", "create", name])
            .opt("size", p.size.to_string())
            .opt("min_size", p.min_size.to_string())
            .opt("pg_autoscale_mode", p.pg_autoscale_mode.clone());
        if let Some(n) = p.pg_num {
            c = c.opt("pg_num", n.to_string());
        }
        c = c
            .opt("application", p.application.clone())
            .opt("add_storages", if p.add_storage { "1" } else { "0" });
        run(step.clone(), c, 300, 60)
    }

    fn eval_fs(&self, step: &Step, name: &str) -> Eval {
        let ceph = self.plan.ceph.as_ref().expect("ceph");
        let Some(f) = ceph.cephfs.iter().find(|f| f.name == name) else {
            return Eval::Fatal(format!("CephFS {name} is not in the plan"));
        };
        let (Some(mds), Some(storages)) = (&self.obs.mds, &self.obs.storages) else {
            return unobserved("MDS map and storages");
        };
        if mds.filesystems.contains_key(name) {
            if f.add_storage && !storages.contains(name) {
                if mds.filesystems[name].is_empty() {
                    return dep(format!("an active MDS for {name}"));
                }
                return run(
                    step.clone(),
                    CommandLine::new("pvesh")
                        .args(["create", "/storage"])
                        .opt("storage", name)
                        .opt("type", "cephfs")
                        .opt("fs-name", name)
                        .opt("content", "backup,iso,vztmpl"),
                    60,
                    20,
                );
            }
            return Eval::Satisfied;
        }
        if let Some(e) = self.enough_osd_hosts(ceph.size) {
            return e;
        }
        if mds.standbys.is_empty() {
            return dep("a standby MDS (pveceph fs create needs one)");
        }
        run(
            step.clone(),
            CommandLine::new("pveceph")
                .args(["fs", "create"])
                .opt("name", name)
                .opt("pg_num", f.pg_num.to_string())
                .opt("add-storage", if f.add_storage { "1" } else { "0" }),
            300,
            60,
        )
    }

    fn eval_ha(&self, step: &Step, name: &str) -> Eval {
        let plan = self.plan;
        let Some(g) = plan.ha.groups.iter().find(|g| g.name == name) else {
            return Eval::Fatal(format!("HA group {name} is not in the plan"));
        };
        let nodes = g.nodes_arg();
        if plan.ha.uses_rules() {
            let Some(have) = &self.obs.ha_rules else {
                return unobserved("HA rules");
            };
            if have.contains(name) {
                return Eval::Satisfied;
            }
            let resources = plan.ha.resources_in(name);
            let mut c = CommandLine::new("ha-manager")
                .args(["rules", "add", "node-affinity", name])
                .opt("resources", resources.join(","))
                .opt("nodes", nodes)
                .opt("strict", if g.restricted { "1" } else { "0" });
            if let Some(a) = &g.comment {
                c = c.opt("comment", a.clone());
            }
            return run(step.clone(), c, 60, 20);
        }
        let Some(have) = &self.obs.ha_groups else {
            return unobserved("HA groups");
        };
        if have.contains(name) {
            return Eval::Satisfied;
        }
        let mut c = CommandLine::new("ha-manager")
            .args(["groupadd", name])
            .opt("nodes", nodes)
            .opt("restricted", if g.restricted { "1" } else { "0" })
            .opt("nofailback", if g.nofailback { "1" } else { "0" });
        if let Some(a) = &g.comment {
            c = c.opt("comment", a.clone());
        }
        run(step.clone(), c, 60, 20)
    }

    fn eval_health(&self) -> Eval {
        let ceph = self.plan.ceph.as_ref().expect("ceph");
        let Some(s) = &self.obs.ceph else {
            return unobserved("Ceph status");
        };
        let mons_ok = ceph.mons.iter().all(|m| s.quorum_names.contains(m));
        let osds_ok = s.num_up_osds == ceph.osd_count && s.num_in_osds == ceph.osd_count;
        if s.health == "HEALTH_OK" && mons_ok && osds_ok {
            return Eval::Satisfied;
        }
        let mut why: Vec<String> = s.checks.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        if !osds_ok {
            why.push(format!(
                "{}/{} OSDs up, {} in",
                s.num_up_osds, ceph.osd_count, s.num_in_osds
            ));
        }
        if !mons_ok {
            why.push(format!("monitors in quorum: {}", s.quorum_names.join(",")));
        }
        dep_limit(
            format!("HEALTH_OK (now {}: {})", s.health, why.join("; ")),
            self.plan.firstboot.health_timeout_secs,
        )
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
mod tests {
    use super::*;
    use crate::example::lab_plan;
    use crate::observe::{ClusterNode, OsdTree};

    fn status(name: Option<&str>, quorate: bool, nodes: &[(&str, bool)]) -> ClusterStatus {
        ClusterStatus {
            name: name.map(str::to_string),
            quorate,
            nodes: nodes
                .iter()
                .enumerate()
                .map(|(i, (n, online))| ClusterNode {
                    name: n.to_string(),
                    nodeid: i as u32 + 1,
                    online: *online,
                    local: i == 0,
                })
                .collect(),
        }
    }

    fn all_reachable(plan: &Plan, me: &str) -> BTreeMap<(String, String), bool> {
        let mut m = BTreeMap::new();
        for n in plan.nodes.iter().filter(|n| n.name != me) {
            for a in &n.addresses {
                m.insert((n.name.clone(), a.network.clone()), true);
            }
        }
        m
    }

    fn done(steps: &[Step]) -> State {
        let mut s = State::new("x");
        for st in steps {
            s.mark_done(&st.id());
        }
        s
    }

    fn act_line(d: &Decision) -> String {
        match d {
            Decision::Act(a) => a.describe(),
            other => panic!("expected an action, got {other:?}"),
        }
    }

    #[test]
    fn founder_waits_for_every_peer_on_every_network_and_names_the_missing_one() {
        let plan = lab_plan();
        let me = plan.node("pve1").unwrap();
        let mut obs = Observed {
            reach: all_reachable(&plan, "pve1"),
            local_cluster: Some(status(None, false, &[("pve1", true)])),
            ..Observed::default()
        };
        obs.reach.insert(("pve3".into(), "storage".into()), false);
        match decide(&plan, me, &obs, &State::new("pve1")) {
            Decision::Wait { step, wait } => {
                assert_eq!(step, Step::Peers);
                assert_eq!(wait.reason, "peers to answer: pve3 on storage (10.2.22.68)");
                assert_eq!(wait.limit_secs, Some(plan.firstboot.peer_timeout_secs));
            }
            other => panic!("{other:?}"),
        }
        // Past the peer timeout: a clear failure, still no cluster created.
        let mut st = State::new("pve1");
        st.wait_since.insert("peers".into(), 0);
        obs.now_ms = (plan.firstboot.peer_timeout_secs + 1) * 1000;
        match decide(&plan, me, &obs, &st) {
            Decision::Fail { step, error } => {
                assert_eq!(step, Step::Peers);
                assert!(error.contains("pve3 on storage"), "{error}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_node_without_proxmox_fails_at_its_first_proxmox_step_instead_of_waiting() {
        let plan = lab_plan();
        let reachable = |me: &str| Observed {
            reach: all_reachable(&plan, me),
            pve_missing: true,
            authkey: Some((true, true)),
            ..Observed::default()
        };
        // Founder: peers answer, then cluster-create cannot ever run.
        let me = plan.node("pve1").unwrap();
        let st = done(&[Step::Peers, Step::CorosyncKey]);
        match decide(&plan, me, &reachable("pve1"), &st) {
            Decision::Fail { step, error } => {
                assert_eq!(step, Step::CreateCluster);
                assert!(error.contains("Proxmox VE is not installed"), "{error}");
                assert!(error.contains("/usr/bin/pvecm"), "{error}");
            }
            other => panic!("{other:?}"),
        }
        // With the tools present, the same observation only waits for pve-cluster.
        let installed = Observed {
            pve_missing: false,
            ..reachable("pve1")
        };
        assert!(matches!(
            decide(&plan, me, &installed, &st),
            Decision::Wait { .. }
        ));
    }

    #[test]
    fn founder_creates_with_both_links_once_peers_answer() {
        let plan = lab_plan();
        let me = plan.node("pve1").unwrap();
        let obs = Observed {
            reach: all_reachable(&plan, "pve1"),
            local_cluster: Some(status(None, false, &[("pve1", true)])),
            ..Observed::default()
        };
        let st = decide(&plan, me, &obs, &State::new("pve1"));
        assert_eq!(st, Decision::Record(Step::Peers));
        // The seeded corosync key goes in place first (pvecm create keeps it).
        let with_key = Observed {
            authkey: Some((true, false)),
            ..obs.clone()
        };
        let d = decide(&plan, me, &with_key, &done(&[Step::Peers]));
        assert_eq!(
            act_line(&d),
            "install /etc/hcikit/corosync/authkey as /etc/corosync/authkey (mode 400)"
        );
        let st = done(&[Step::Peers, Step::CorosyncKey]);
        let d = decide(&plan, me, &obs, &st);
        assert_eq!(
            act_line(&d),
            "pvecm create pvelab --link0 10.2.21.66 --link1 10.2.22.66"
        );
        // Already in another cluster: refuse.
        let obs2 = Observed {
            local_cluster: Some(status(Some("other"), true, &[("pve1", true)])),
            ..obs
        };
        assert!(matches!(
            decide(&plan, me, &obs2, &st),
            Decision::Fail { .. }
        ));
    }

    #[test]
    fn joiners_go_one_at_a_time_after_online_and_quorum() {
        let plan = lab_plan();
        let me = plan.node("pve3").unwrap();
        // Before anything else, root's ssh is pointed at the bootstrap key for the founder.
        let fresh = Observed {
            local_cluster: Some(status(None, false, &[("pve3", true)])),
            ssh_config: Some("Host *\n    ServerAliveInterval 30\n".into()),
            ..Observed::default()
        };
        match decide(&plan, me, &fresh, &done(&[Step::Peers])) {
            Decision::Act(Action {
                kind: ActionKind::WriteSshConfig(text),
                ..
            }) => {
                assert!(text.starts_with("# BEGIN hcikit bootstrap"), "{text}");
                assert!(
                    text.contains("Host 10.2.21.66\n")
                        && text.contains("IdentityFile /root/.ssh/hcikit-bootstrap")
                );
                assert!(
                    text.ends_with("Host *\n    ServerAliveInterval 30\n"),
                    "keeps the admin's config"
                );
                assert!(ssh_config_has_block(&text, "10.2.21.66"));
                assert_eq!(with_ssh_block(&text, "10.2.21.66"), text, "idempotent");
                assert_eq!(
                    without_ssh_block(&text),
                    "Host *\n    ServerAliveInterval 30\n"
                );
            }
            other => panic!("{other:?}"),
        }
        let st = done(&[Step::Peers, Step::SshConfig]);
        let local = Some(status(None, false, &[("pve3", true)]));
        // pve2 is still joining (offline): pve3 waits.
        let obs = Observed {
            local_cluster: local.clone(),
            bootstrap_key_present: true,
            founder_cluster: Some(status(
                Some("pvelab"),
                false,
                &[("pve1", true), ("pve2", false)],
            )),
            ..Observed::default()
        };
        match decide(&plan, me, &obs, &st) {
            Decision::Wait { wait, .. } => assert!(wait.reason.contains("pve2"), "{}", wait.reason),
            other => panic!("{other:?}"),
        }
        // pve2 not even added yet: pve3 still waits for it.
        let obs = Observed {
            founder_cluster: Some(status(Some("pvelab"), true, &[("pve1", true)])),
            ..obs
        };
        assert!(matches!(
            decide(&plan, me, &obs, &st),
            Decision::Wait { .. }
        ));
        // pve2 online and quorate: pve3 joins over SSH with every link.
        let obs = Observed {
            founder_cluster: Some(status(
                Some("pvelab"),
                true,
                &[("pve1", true), ("pve2", true)],
            )),
            ..obs
        };
        let d = decide(&plan, me, &obs, &st);
        assert_eq!(
            act_line(&d),
            "pvecm add 10.2.21.66 --use_ssh 1 --link0 10.2.21.68 --link1 10.2.22.68"
        );
        if let Decision::Act(a) = d {
            let ActionKind::Run(c) = a.kind else { panic!() };
            assert_eq!(c.timeout_secs, plan.firstboot.join_timeout_secs);
        }
    }

    fn osd_obs(plan: &Plan, node: &str, lsblk: &str, sigs: &[(&str, &[&str])]) -> Observed {
        let me = plan.node(node).unwrap();
        let mut o = Observed {
            ceph_conf: Some(CephConf {
                fsid: Some("F".into()),
                mon_host: vec!["10.2.22.66".into()],
            }),
            ceph: Some(CephStatus {
                quorum_names: vec!["pve1".into()],
                ..CephStatus::default()
            }),
            volumes: Some(BTreeMap::new()),
            lsblk: Some(crate::observe::lsblk(lsblk).unwrap()),
            osd_tree: Some(OsdTree::default()),
            ..Observed::default()
        };
        for osd in &me.osds {
            o.resolved.insert(osd.device.clone(), osd.device.clone());
            o.signatures.insert(osd.device.clone(), vec![]);
        }
        for (d, s) in sigs {
            o.signatures
                .insert(d.to_string(), s.iter().map(|x| x.to_string()).collect());
        }
        o
    }

    const DISKS: &str = r#"{"blockdevices":[
        {"name":"sda","path":"/dev/sda","type":"disk","fstype":null,"mountpoint":null,"pttype":"gpt",
         "children":[{"name":"sda2","path":"/dev/sda2","type":"part","fstype":"ext4","mountpoint":"/","pttype":"gpt"}]},
        {"name":"sdb","path":"/dev/sdb","type":"disk","fstype":null,"mountpoint":null,"pttype":null},
        {"name":"sdc","path":"/dev/sdc","type":"disk","fstype":"ext4","mountpoint":null,"pttype":null}]}"#;

    fn osd_eval(plan: &Plan, obs: &Observed, st: &State, dev: &str) -> Eval {
        evaluate(
            plan,
            plan.node("pve2").unwrap(),
            obs,
            st,
            &Step::Osd(dev.into()),
        )
    }

    #[test]
    fn disk_safety_rules() {
        let mut plan = lab_plan();
        let obs = osd_obs(&plan, "pve2", DISKS, &[("/dev/sdc", &["ext4"])]);
        let st = State::new("pve2");
        // A blank disk: create.
        match osd_eval(&plan, &obs, &st, "/dev/sdb") {
            Eval::Ready(a) => assert_eq!(
                a.describe(),
                "pveceph osd create /dev/sdb --crush-device-class ssd"
            ),
            other => panic!("{other:?}"),
        }
        // A file system and no wipe: refused, naming disk, node, signature and the fix.
        match osd_eval(&plan, &obs, &st, "/dev/sdc") {
            Eval::Fatal(e) => {
                assert!(
                    e.contains("/dev/sdc on pve2")
                        && e.contains("ext4")
                        && e.contains("wipe = true"),
                    "{e}"
                )
            }
            other => panic!("{other:?}"),
        }
        // With wipe: zap (recorded by the runner), but only once.
        plan.nodes[1].osds[1].wipe = true;
        match osd_eval(&plan, &obs, &st, "/dev/sdc") {
            Eval::Ready(a) => {
                assert!(matches!(a.kind, ActionKind::Zap { .. }));
                assert_eq!(a.describe(), "ceph-volume lvm zap /dev/sdc --destroy");
            }
            other => panic!("{other:?}"),
        }
        let mut zapped = st.clone();
        zapped.zaps.insert(
            "/dev/sdc".into(),
            crate::state::ZapRecord {
                started_ms: 1,
                done_ms: Some(2),
            },
        );
        assert!(matches!(
            osd_eval(&plan, &obs, &zapped, "/dev/sdc"),
            Eval::Fatal(_)
        ));
        // Leftovers after an interrupted osd create of ours: never zapped.
        let mut started = st.clone();
        started.osd_started.insert("/dev/sdc".into(), 1);
        match osd_eval(&plan, &obs, &started, "/dev/sdc") {
            Eval::Fatal(e) => assert!(e.contains("interrupted"), "{e}"),
            other => panic!("{other:?}"),
        }
        // An OSD of ours on the disk counts as done once it is up.
        let mut ours = osd_obs(&plan, "pve2", DISKS, &[("/dev/sdc", &["LVM2_member"])]);
        ours.volumes = Some(BTreeMap::from([(
            "/dev/sdc".to_string(),
            (4, "F".to_string()),
        )]));
        ours.osd_tree = Some(OsdTree {
            hosts: BTreeMap::from([("pve2".to_string(), vec![(4, true)])]),
        });
        assert_eq!(
            osd_eval(&plan, &ours, &started, "/dev/sdc"),
            Eval::Satisfied
        );
        // The boot disk is refused even when the plan names it with wipe.
        plan.nodes[1].osds[0].device = "/dev/sda".into();
        plan.nodes[1].osds[0].wipe = true;
        let obs = osd_obs(&plan, "pve2", DISKS, &[]);
        match osd_eval(&plan, &obs, &st, "/dev/sda") {
            Eval::Fatal(e) => assert!(e.contains("boot device"), "{e}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn pools_wait_for_osds_on_enough_hosts_and_use_documented_flags() {
        let plan = lab_plan();
        let me = plan.node("pve1").unwrap();
        let tree = |hosts: &[&str]| OsdTree {
            hosts: hosts
                .iter()
                .enumerate()
                .map(|(i, h)| (h.to_string(), vec![(i as u32, true)]))
                .collect(),
        };
        let mut obs = Observed {
            pools: Some(vec![]),
            storages: Some(BTreeSet::new()),
            osd_tree: Some(tree(&["pve1", "pve2"])),
            ..Observed::default()
        };
        let step = Step::Pool("cephrdb01".into());
        assert!(matches!(
            evaluate(&plan, me, &obs, &State::new("pve1"), &step),
            Eval::Blocked(_)
        ));
        obs.osd_tree = Some(tree(&["pve1", "pve2", "pve3"]));
        match evaluate(&plan, me, &obs, &State::new("pve1"), &step) {
            Eval::Ready(a) => assert_eq!(
                a.describe(),
                "pveceph pool create cephrdb01 --size 3 --min_size 2 --pg_autoscale_mode on --application rbd --add_storages 1"
            ),
            other => panic!("{other:?}"),
        }
        // CephFS needs a standby MDS first.
        let fs = Step::CephFs("cephfs01".into());
        obs.mds = Some(MdsStat::default());
        assert!(matches!(
            evaluate(&plan, me, &obs, &State::new("pve1"), &fs),
            Eval::Blocked(_)
        ));
        obs.mds = Some(MdsStat {
            standbys: vec!["pve2".into()],
            ..MdsStat::default()
        });
        match evaluate(&plan, me, &obs, &State::new("pve1"), &fs) {
            Eval::Ready(a) => assert_eq!(
                a.describe(),
                "pveceph fs create --name cephfs01 --pg_num 128 --add-storage 1"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn configuration_waits_for_the_complete_cluster_and_gates_the_final_steps() {
        let plan = lab_plan();
        let me = plan.node("pve1").unwrap();
        // Everything but the configuration is done; SMTP not observed yet.
        let mut st = State::new("pve1");
        for s in steps_for(&plan, me) {
            if !s.floating() && !matches!(s, Step::Health | Step::ReadyMail | Step::RevokeBootstrap)
            {
                st.mark_done(&s.id());
            }
        }
        let obs = Observed {
            ceph: Some(CephStatus {
                health: "HEALTH_OK".into(),
                quorum_names: vec!["pve1".into(), "pve2".into(), "pve3".into()],
                num_up_osds: 6,
                num_in_osds: 6,
                ..CephStatus::default()
            }),
            ..Observed::default()
        };
        // The SMTP target is not there: the ready mail must not go out before it.
        let d = decide(&plan, me, &obs, &st);
        assert!(
            !matches!(
                d,
                Decision::Act(Action {
                    step: Step::ReadyMail,
                    ..
                })
            ),
            "{d:?}"
        );
        assert_ne!(
            d,
            Decision::Record(Step::Health),
            "health waits behind the configuration"
        );
    }
}
