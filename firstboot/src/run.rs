//! The cluster run: observe through the [`Host`], decide with [`decide::decide`], act,
//! verify, record. Every command's exit code is treated as a hint only; a step counts as
//! done when a fresh observation shows it: a CLI that runs a worker task (`pvecm create`,
//! `pveceph pool create`, …) prints the task's `TASK ERROR:` to stderr but its exit status
//! does not carry the task's result (pve-common `PVE::RESTEnvironment::fork_worker`).

use crate::decide::{
    self, add_interest, decide, interest, Action, ActionKind, Cmd, Decision, Eval, Interest,
    Observed, Step, Verify,
};
use crate::host::{CommandLine, Host, Output, REDACTED};
use crate::layout::STATE_FILE;
use crate::layout::{
    self, BOOTSTRAP_KEY, BOOTSTRAP_PUB, CEPH_BINARIES, CEPH_INSTALL_FLAG, CLUSTER_AUTHORIZED_KEYS,
    NOTIFICATIONS_CFG, SENDMAIL,
};
use crate::observe;
use crate::plan::{Node, Plan};
use crate::report::Stage;
use crate::state::{PeerState, State, ZapRecord};
use anyhow::{bail, Context, Result};
use std::time::Duration;

/// Timeout of read-only queries (s).
const QUERY_TIMEOUT: u64 = 30;
/// Re-observation interval while verifying a step (ms).
const VERIFY_POLL_MS: u64 = 1_000;
fn query(h: &dyn Host, line: CommandLine) -> Option<String> {
    match h.run(&line, None, Duration::from_secs(QUERY_TIMEOUT)) {
        Ok(o) if o.success() => Some(o.stdout),
        Ok(o) => {
            tracing::debug!(command = %line.display(), code = o.code, err = %o.tail(), "query failed");
            None
        }
        Err(e) => {
            tracing::debug!(command = %line.display(), "query failed: {e:#}");
            None
        }
    }
}

fn pvesh_get(path: &str) -> CommandLine {
    CommandLine::new("pvesh")
        .args(["get", path])
        .opt("output-format", "json")
}

/// `ceph … -f json`, with the cluster-wide config: `/etc/ceph/ceph.conf` only exists on
/// nodes that ran init or created a daemon (pve-manager `PVE::Ceph::Tools::setup_pve_symlinks`,
/// called by `PVE::API2::Ceph` `init` and the MON/MGR/OSD create methods), and a joiner must look at
/// the monitors before its own is created.
fn ceph_json(args: &[&str]) -> CommandLine {
    CommandLine::new("ceph")
        .args(args.iter().copied())
        .opt("conf", layout::CEPH_CONF)
        .args(["-f", "json"])
        .opt("connect-timeout", "10")
}

/// `ssh` with the bootstrap key and the pinned host keys: no trust on first use.
pub fn ssh(ip: &str, remote: CommandLine) -> CommandLine {
    CommandLine::new("ssh")
        .args(["-i", BOOTSTRAP_KEY])
        .args(["-o", "BatchMode=yes"])
        .args(["-o", "StrictHostKeyChecking=yes"])
        .args([
            "-o".to_string(),
            format!("UserKnownHostsFile={}", layout::PINNED_KNOWN_HOSTS),
        ])
        .args(["-o", "ConnectTimeout=10"])
        .arg(format!("root@{ip}"))
        .args(
            remote
                .argv()
                .into_iter()
                .map(str::to_string)
                .collect::<Vec<_>>(),
        )
}

/// Gathers the facts `want` asks for.
pub fn observe(h: &dyn Host, plan: &Plan, me: &Node, want: &Interest) -> Observed {
    let mut o = Observed {
        now_ms: h.now_ms(),
        corosync_conf: h.exists(layout::COROSYNC_CONF),
        pve_missing: !layout::PVE_BINARIES.iter().all(|b| h.exists(b)),
        bootstrap_key_present: h.exists(BOOTSTRAP_KEY),
        rsa_host_key: h
            .read(layout::SSH_HOST_RSA_PUB)
            .ok()
            .flatten()
            .is_some_and(|b| {
                // Setup.pm: m/^(ssh-rsa\s\S+)(\s.*)?$/m
                String::from_utf8_lossy(&b)
                    .lines()
                    .any(|l| l.starts_with("ssh-rsa ") && l.split_whitespace().nth(1).is_some())
            }),
        ..Observed::default()
    };
    if want.peers && !o.corosync_conf {
        for peer in plan.nodes.iter().filter(|n| n.name != me.name) {
            for a in &peer.addresses {
                o.reach
                    .insert((peer.name.clone(), a.network.clone()), h.reachable(&a.ip));
            }
        }
    }
    if want.ceph_local || want.ceph_status {
        o.ceph_binaries = CEPH_BINARIES.iter().all(|b| h.exists(b));
        o.ceph_install_flag = h.exists(CEPH_INSTALL_FLAG);
        o.ceph_conf = h
            .read(layout::CEPH_CONF)
            .ok()
            .flatten()
            .map(|b| observe::ceph_conf(&String::from_utf8_lossy(&b)));
    }
    // Without pvesh the query can only fail; decide reports the missing tools instead.
    if (want.local_cluster || want.founder_cluster) && !o.pve_missing {
        o.local_cluster =
            query(h, pvesh_get("/cluster/status")).and_then(|s| observe::cluster_status(&s).ok());
    }
    let member = o
        .local_cluster
        .as_ref()
        .is_some_and(|c| c.name.as_deref() == Some(plan.cluster.name.as_str()));
    if want.founder_cluster && !member && me.name != plan.cluster.founder {
        if let Some(f) = plan.node(&plan.cluster.founder) {
            o.founder_cluster = query(h, ssh(&f.primary_ip, pvesh_get("/cluster/status")))
                .and_then(|s| observe::cluster_status(&s).ok());
            // Joins go strictly one at a time: the previous joiner's end-of-join write
            // must be visible cluster-wide before this node starts.
            let order = &plan.cluster.join_order;
            let prev = order
                .iter()
                .position(|j| *j == me.name)
                .and_then(|i| i.checked_sub(1))
                .map(|i| order[i].clone());
            if let Some(prev) = prev {
                let path = crate::decide::node_known_hosts(&prev);
                o.prev_join_finished =
                    Some(query(h, ssh(&f.primary_ip, CommandLine::new("cat").arg(path))).is_some());
            }
        }
    }
    if want.local_cluster && member {
        o.own_join_finished = h.exists(&crate::decide::node_known_hosts(&me.name));
    }
    // Ceph queries hang without a monitor: ask only once ceph.conf names one.
    let ceph_up = o.ceph_conf.as_ref().is_some_and(|c| !c.mon_host.is_empty());
    if ceph_up {
        if want.ceph_status {
            o.ceph = query(h, ceph_json(&["-s"])).and_then(|s| observe::ceph_status(&s).ok());
        }
        if want.mons {
            o.mons = query(h, ceph_json(&["mon", "dump"])).and_then(|s| observe::mon_dump(&s).ok());
        }
        if want.mgrs {
            o.mgrs =
                query(h, ceph_json(&["mgr", "dump"])).and_then(|s| observe::mgr_names(&s).ok());
        }
        if want.osd_tree {
            o.osd_tree =
                query(h, ceph_json(&["osd", "tree"])).and_then(|s| observe::osd_tree(&s).ok());
        }
        if want.mds {
            o.mds = query(h, ceph_json(&["mds", "stat"])).and_then(|s| observe::mds_stat(&s).ok());
        }
        if want.ceph_config {
            o.ceph_config = query(h, ceph_json(&["config", "dump"]))
                .and_then(|s| observe::ceph_config_dump(&s).ok());
        }
        if want.pools {
            o.pools = query(h, ceph_json(&["osd", "pool", "ls", "detail"]))
                .and_then(|s| observe::pools(&s).ok());
        }
    }
    if want.storages {
        o.storages =
            query(h, pvesh_get("/storage")).and_then(|s| observe::names(&s, "storage").ok());
    }
    if want.disks && ceph_up {
        observe_disks(h, me, &mut o);
    }
    if want.options {
        o.options =
            query(h, pvesh_get("/cluster/options")).and_then(|s| observe::cluster_options(&s).ok());
    }
    if want.ha {
        if plan.ha.uses_rules() {
            o.ha_rules = query(h, pvesh_get("/cluster/ha/rules"))
                .and_then(|s| observe::names(&s, "rule").ok());
        } else {
            o.ha_groups = query(h, pvesh_get("/cluster/ha/groups"))
                .and_then(|s| observe::names(&s, "group").ok());
        }
    }
    if want.smtp {
        o.smtp = query(h, pvesh_get("/cluster/notifications/endpoints/smtp"))
            .and_then(|s| observe::names(&s, "name").ok());
    }
    if want.matchers {
        o.matchers = query(h, pvesh_get("/cluster/notifications/matchers"))
            .and_then(|s| observe::matchers(&s).ok());
    }
    if want.root_email {
        o.root_email = query(h, pvesh_get("/access/users/root@pam"))
            .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
            .map(|v| v["email"].as_str().unwrap_or_default().to_string());
    }
    if want.realms {
        o.realms =
            query(h, pvesh_get("/access/domains")).and_then(|s| observe::names(&s, "realm").ok());
    }
    if want.authkey {
        o.authkey = Some((
            h.exists(crate::layout::COROSYNC_AUTHKEY),
            h.exists(layout::COROSYNC_KEY),
        ));
    }
    if want.bootstrap {
        o.ssh_config = match h.read(layout::SSH_CONFIG) {
            Ok(b) => Some(String::from_utf8_lossy(&b.unwrap_or_default()).into_owned()),
            Err(_) => None,
        };
    }
    if want.bootstrap && (me.name == plan.cluster.founder || member) {
        let pub_key = bootstrap_key_body(h);
        o.bootstrap_authorized = h.read(CLUSTER_AUTHORIZED_KEYS).ok().map(|keys| {
            keys.is_some_and(|b| {
                String::from_utf8_lossy(&b)
                    .lines()
                    .any(|l| is_bootstrap_line(l, pub_key.as_deref()))
            })
        });
    }
    o
}

fn observe_disks(h: &dyn Host, me: &Node, o: &mut Observed) {
    let lsblk = CommandLine::new("lsblk")
        .arg("--json")
        .args(["-o", "NAME,PATH,TYPE,FSTYPE,MOUNTPOINT,PTTYPE"]);
    o.lsblk = query(h, lsblk).and_then(|s| observe::lsblk(&s).ok());
    o.volumes = query(
        h,
        CommandLine::new("ceph-volume")
            .args(["lvm", "list"])
            .opt("format", "json"),
    )
    .and_then(|s| observe::ceph_volume_list(&s).ok());
    for osd in &me.osds {
        let Ok(path) = h.resolve(&osd.device) else {
            continue;
        };
        let sig = query(
            h,
            CommandLine::new("wipefs").args(["--no-act", "--json", &path]),
        )
        .and_then(|s| observe::wipefs(&s).ok());
        if let Some(sig) = sig {
            o.signatures.insert(path.clone(), sig);
        }
        o.resolved.insert(osd.device.clone(), path);
    }
}

/// The key material (second field) of the bootstrap public key, if its file is here.
fn bootstrap_key_body(h: &dyn Host) -> Option<String> {
    let b = h.read(BOOTSTRAP_PUB).ok()??;
    String::from_utf8_lossy(&b)
        .split_whitespace()
        .nth(1)
        .map(str::to_string)
}

fn is_bootstrap_line(line: &str, body: Option<&str>) -> bool {
    match body {
        Some(b) => line.split_whitespace().any(|f| f == b),
        // The builder's comment is `hcikit-bootstrap@<cluster>`.
        None => line.contains(" hcikit-bootstrap"),
    }
}

/// What the run would do now, for `hcikit-firstboot plan`.
pub fn dry_run(h: &dyn Host, plan: &Plan, me: &str) -> Result<Vec<String>> {
    let node = plan
        .node(me)
        .with_context(|| format!("node {me} is not in the plan"))?;
    let state = State::load(h, STATE_FILE, me)?;
    let obs = observe(h, plan, node, &interest(plan, node, &state, true));
    Ok(match decide(plan, node, &obs, &state) {
        Decision::Done => vec!["nothing to do: every step is done".into()],
        Decision::Record(s) => vec![format!("record {} as done (already in place)", s.id())],
        Decision::Act(a) => vec![format!("{}: {}", a.step.id(), a.describe())],
        Decision::Wait { step, wait } => vec![format!("{}: wait for {}", step.id(), wait.reason)],
        Decision::Fail { step, error } => vec![format!("{}: would fail: {error}", step.id())],
    })
}

struct Runner<'a> {
    h: &'a dyn Host,
    plan: &'a Plan,
    me: &'a Node,
    state: State,
    last_line: String,
}

/// The reconcile loop of node `me`, until every step is done (Ok) or one is fatal (Err).
pub fn run(h: &dyn Host, plan: &Plan, me: &str) -> Result<()> {
    let node = plan
        .node(me)
        .with_context(|| format!("node {me} is not in the plan"))?;
    anyhow::ensure!(
        plan.format == crate::plan::PLAN_FORMAT,
        "plan format {} is not the one this agent understands ({})",
        plan.format,
        crate::plan::PLAN_FORMAT
    );
    let state = State::load(h, STATE_FILE, me)?;
    let mut r = Runner {
        h,
        plan,
        me: node,
        state,
        last_line: String::new(),
    };
    r.state.failed = None;
    r.state.finished = false;
    // A new run (a reboot, a restart after a fix) gets fresh wait and retry budgets;
    // done steps, zap and OSD records are kept.
    r.state.wait_since.clear();
    r.state.attempts.clear();
    r.save()?;
    r.report(&format!("{me}: first-boot cluster run started"));
    r.post_stage(Stage::Booted);
    r.run_loop()
}

impl Runner<'_> {
    fn save(&mut self) -> Result<()> {
        self.state.save(self.h, STATE_FILE)
    }

    /// The fleet report, when the Plan names a sink.
    fn post_stage(&self, stage: Stage) {
        if let Some(url) = &self.plan.firstboot.report_url {
            self.h
                .post_report(url, &crate::report::Report::now(&self.me.name, stage));
        }
    }

    fn report(&mut self, line: &str) {
        if line != self.last_line {
            self.h.report(line);
            self.last_line = line.to_string();
        }
    }

    fn run_loop(&mut self) -> Result<()> {
        loop {
            let want = interest(self.plan, self.me, &self.state, false);
            let mut obs = observe(self.h, self.plan, self.me, &want);
            let mut d = decide(self.plan, self.me, &obs, &self.state);
            if matches!(d, Decision::Wait { .. }) {
                // Blocked: look at the floating steps too, which may run meanwhile.
                let more = interest(self.plan, self.me, &self.state, true);
                if more != want {
                    obs = observe(self.h, self.plan, self.me, &more);
                    d = decide(self.plan, self.me, &obs, &self.state);
                }
            }
            self.record_peers(&obs);
            match d {
                Decision::Done => {
                    self.state.finished = true;
                    self.state.step = None;
                    self.state.doing = None;
                    self.state.waiting_for = None;
                    let me = self.me.name.clone();
                    if me == self.plan.cluster.founder {
                        self.state.deferred = crate::steps::deferred_ha(self.plan);
                    }
                    self.save()?;
                    for d in self.state.deferred.clone() {
                        self.report(&format!(
                            "{me}: HA not applied yet (no guest exists at first boot); once it does: {d}"
                        ));
                    }
                    self.report(&format!("{me}: first boot complete"));
                    if !self.state.done.contains(&Step::Health.id()) {
                        self.post_stage(Stage::HealthOk);
                    }
                    return Ok(());
                }
                Decision::Record(step) => {
                    tracing::info!(step = %step.id(), "already done; recording");
                    self.mark_done(&step);
                    self.save()?;
                    let line = format!("{}: {}: done", self.me.name, step.id());
                    self.report(&line);
                }
                Decision::Wait { step, wait } => {
                    let id = step.id();
                    let now = obs.now_ms;
                    self.state.wait_since.entry(id.clone()).or_insert(now);
                    let changed = self.state.step.as_deref() != Some(&id)
                        || self.state.waiting_for.as_deref() != Some(&wait.reason);
                    self.state.step = Some(id.clone());
                    self.state.doing = None;
                    self.state.waiting_for = Some(wait.reason.clone());
                    if changed {
                        self.save()?;
                    }
                    let me = self.me.name.clone();
                    self.report(&format!("{me}: {id}: waiting for {}", wait.reason));
                    self.h.sleep(Duration::from_millis(wait.poll_ms));
                }
                Decision::Fail { step, error } => {
                    let id = step.id();
                    let msg = format!("{}: step {id} failed: {error}", self.me.name);
                    self.state.step = Some(id.clone());
                    self.state.failed = Some(error.clone());
                    self.state.last_error = Some(error.clone());
                    self.save()?;
                    self.report(&msg);
                    self.post_stage(Stage::Failed {
                        reason: format!("step {id}: {error}"),
                    });
                    self.failure_mail(&id, &error);
                    bail!("{msg}");
                }
                Decision::Act(action) => self.perform(action)?,
            }
        }
    }

    fn record_peers(&mut self, obs: &Observed) {
        for ((peer, net), ok) in &obs.reach {
            let ip = self
                .plan
                .node(peer)
                .and_then(|n| n.address_on(net))
                .map(|a| a.ip.clone())
                .unwrap_or_default();
            self.state.peers.insert(
                format!("{peer}/{net}"),
                PeerState {
                    node: peer.clone(),
                    network: net.clone(),
                    ip,
                    reachable: *ok,
                    checked_ms: obs.now_ms,
                },
            );
        }
    }

    fn mark_done(&mut self, step: &Step) {
        let id = step.id();
        self.state.mark_done(&id);
        self.state.attempts.remove(&id);
        self.state.wait_since.remove(&id);
        self.state.waiting_for = None;
        self.state.doing = None;
        if let Some(stage) = crate::report::stage_after(step, &self.state.done) {
            self.post_stage(stage);
        }
    }

    fn perform(&mut self, action: Action) -> Result<()> {
        let id = action.step.id();
        let now = self.h.now_ms();
        self.state.step = Some(id.clone());
        self.state.doing = Some(action.describe());
        self.state.waiting_for = None;
        // Record intent first: after a crash, the state says what may have happened.
        match &action.kind {
            ActionKind::Zap { device, .. } => {
                let z = self.state.zaps.entry(device.clone()).or_insert(ZapRecord {
                    started_ms: now,
                    done_ms: None,
                });
                z.started_ms = now;
            }
            ActionKind::OsdCreate { device, .. } => {
                self.state.osd_started.insert(device.clone(), now);
            }
            _ => {}
        }
        self.save()?;
        let me = self.me.name.clone();
        tracing::info!(step = %id, action = %action.describe(), "running step");
        self.report(&format!("{me}: {id}: {}", action.describe()));
        let outcome = match &action.kind {
            ActionKind::Run(c)
            | ActionKind::Zap { cmd: c, .. }
            | ActionKind::OsdCreate { cmd: c, .. } => self.exec(c),
            ActionKind::RevokeBootstrap => self.revoke().map(|_| None),
            ActionKind::DropBootstrapKey => self.drop_key().map(|_| None),
            ActionKind::CopyFile { from, to, mode } => {
                self.copy_file(from, to, *mode).map(|_| None)
            }
            ActionKind::WriteSshConfig(text) => self
                .h
                .write_atomic(layout::SSH_CONFIG, text.as_bytes(), 0o600)
                .map(|_| None),
        };
        let (out, err) = match outcome {
            Ok(out) => (out, None),
            Err(e) => (None, Some(format!("{e:#}"))),
        };
        let ok = err.is_none() && self.verify(&action, out.as_ref());
        if out.is_some() {
            // Ties the verdict to the command just run (for the simulator's command log).
            self.h.verified(&id, ok);
        }
        if ok {
            if let ActionKind::Zap { device, .. } = &action.kind {
                if let Some(z) = self.state.zaps.get_mut(device) {
                    z.done_ms = Some(self.h.now_ms());
                }
                self.state.attempts.remove(&id);
            } else {
                self.mark_done(&action.step);
            }
            self.save()?;
            let line = format!("{me}: {id}: done");
            self.report(&line);
            return Ok(());
        }
        let n = {
            let a = self.state.attempts.entry(id.clone()).or_insert(0);
            *a += 1;
            *a
        };
        let detail = match (&err, &out) {
            (Some(e), _) => e.clone(),
            (None, Some(o)) if !o.success() => format!(
                "`{}` {}: {}",
                action.describe(),
                if o.timed_out {
                    "timed out".to_string()
                } else {
                    format!("exited {}", o.code)
                },
                o.tail()
            ),
            (None, Some(o)) => format!(
                "`{}` exited 0 but the result did not show up: {}",
                action.describe(),
                o.tail()
            ),
            (None, None) => format!("{} did not take effect", action.describe()),
        };
        let detail = self.scrub(&action, &detail);
        // A mail that does not go out is a warning, never a failed cluster: the cluster
        // is formed and healthy by then.
        if matches!(action.step, Step::TestMail(_) | Step::ReadyMail) {
            let w = format!("{id}: mail not sent: {detail}");
            tracing::warn!(step = %id, "{w}");
            self.state.warnings.push(w.clone());
            self.mark_done(&action.step);
            self.save()?;
            self.report(&format!("{me}: WARNING: {w}"));
            return Ok(());
        }
        tracing::warn!(step = %id, attempt = n, "{detail}");
        self.state.last_error = Some(detail.clone());
        self.save()?;
        self.report(&format!("{me}: {id}: attempt {n} failed: {detail}"));
        self.h
            .sleep(Duration::from_millis(decide::retry_ms(self.plan, n)));
        Ok(())
    }

    /// Removes secret values from a message, whatever echoed them.
    fn scrub(&self, action: &Action, msg: &str) -> String {
        let mut m = msg.to_string();
        let cmd = match &action.kind {
            ActionKind::Run(c)
            | ActionKind::Zap { cmd: c, .. }
            | ActionKind::OsdCreate { cmd: c, .. } => c,
            _ => return m,
        };
        if let Ok(Some(secret)) = cmd.line.secret_stdin(self.h) {
            for s in secret.values.iter().filter(|s| !s.is_empty()) {
                m = m.replace(s.as_str(), REDACTED);
            }
        }
        m
    }

    fn exec(&mut self, c: &Cmd) -> Result<Option<Output>> {
        // A command has either secret parameters or a stdin of its own, never both.
        let secret = c.line.secret_stdin(self.h)?;
        let stdin = match &secret {
            Some(s) => Some(s.data.as_slice()),
            None => c.stdin.as_deref(),
        };
        let out = self
            .h
            .run(&c.line, stdin, Duration::from_secs(c.timeout_secs))?;
        Ok(Some(out))
    }

    fn verify(&mut self, action: &Action, out: Option<&Output>) -> bool {
        // Exit 0 proves nothing, but a task that says it failed has failed: no need to
        // wait for the result to show up.
        let failed_exit = out.is_some_and(|o| !o.success() || task_failed_exit0(action, o));
        match &action.verify {
            Verify::ExitZero => out.is_some_and(Output::success),
            v => {
                let mut want = Interest::default();
                add_interest(&mut want, &action.step);
                let deadline = self.h.now_ms() + action.verify_secs * 1000;
                loop {
                    let obs = observe(self.h, self.plan, self.me, &want);
                    let ok = match v {
                        Verify::DiskBlank(dev) => decide::disk_blank(&obs, dev),
                        _ => matches!(
                            decide::evaluate(self.plan, self.me, &obs, &self.state, &action.step),
                            Eval::Satisfied
                        ),
                    };
                    // A non-zero exit is believed at once; a zero exit only once seen.
                    if ok || failed_exit || self.h.now_ms() >= deadline {
                        return ok;
                    }
                    self.h.sleep(Duration::from_millis(VERIFY_POLL_MS));
                }
            }
        }
    }

    fn revoke(&mut self) -> Result<()> {
        let body = bootstrap_key_body(self.h);
        if let Some(b) = self.h.read(CLUSTER_AUTHORIZED_KEYS)? {
            let text = String::from_utf8_lossy(&b);
            let kept: Vec<&str> = text
                .lines()
                .filter(|l| !is_bootstrap_line(l, body.as_deref()))
                .collect();
            let mut out = kept.join("\n");
            if !out.is_empty() {
                out.push('\n');
            }
            self.h
                .write_atomic(CLUSTER_AUTHORIZED_KEYS, out.as_bytes(), 0o600)
                .context("rewriting the cluster's authorized_keys")?;
        }
        self.drop_key()
    }

    fn copy_file(&mut self, from: &str, to: &str, mode: u32) -> Result<()> {
        let data = self
            .h
            .read(from)?
            .with_context(|| format!("{from} disappeared"))?;
        self.h
            .write_atomic(to, &data, mode)
            .with_context(|| format!("installing {to}"))
    }

    fn drop_key(&mut self) -> Result<()> {
        self.h.remove(BOOTSTRAP_KEY)?;
        self.h.remove(BOOTSTRAP_PUB)?;
        if let Some(b) = self.h.read(layout::SSH_CONFIG)? {
            let text = String::from_utf8_lossy(&b);
            let kept = decide::without_ssh_block(&text);
            if kept != text {
                self.h
                    .write_atomic(layout::SSH_CONFIG, kept.as_bytes(), 0o600)?;
            }
        }
        Ok(())
    }

    /// On a fatal error: a mail naming node, step and error, through the local mail
    /// system (root's mail reaches the notification targets via proxmox-mail-forward).
    fn failure_mail(&mut self, step: &str, error: &str) {
        if !self.h.exists(NOTIFICATIONS_CFG) {
            return;
        }
        let me = &self.me.name;
        let body = format!(
            "To: root\nSubject: hcikit: first boot of {me} failed at {step}\n\n\
             Cluster: {}\nNode: {me}\nStep: {step}\nError: {error}\n\n\
             The run retries on the next boot; `hcikit-firstboot status` on {me} shows details.\n",
            self.plan.cluster.name
        );
        let line = CommandLine::new(SENDMAIL).arg("-t");
        match self
            .h
            .run(&line, Some(body.as_bytes()), Duration::from_secs(60))
        {
            Ok(o) if o.success() => {}
            Ok(o) => tracing::warn!("failure mail not sent: {}", o.tail()),
            Err(e) => tracing::warn!("failure mail not sent: {e:#}"),
        }
    }
}

/// Did a synced worker task fail although the CLI exited 0? Commands whose `$cmddef` entry
/// has no `$upid_exit` (`pvecm create`, `pvecm add`, `pveceph pool create`, `pveceph fs
/// create`; pve-cluster `src/PVE/CLI/pvecm.pm`, pve-manager `PVE/CLI/pveceph.pm`) exit 0
/// whatever the task did. In CLI mode the task's output goes to stdout and, when it fails,
/// only its bare error message goes to stderr; `TASK ERROR:` is written to the task log
/// alone, and a task with warnings prints `Task finished with N warning(s)!` instead
/// (pve-common `src/PVE/RESTEnvironment.pm` `fork_worker`, `$tee_worker`).
pub fn task_failed_exit0(action: &Action, o: &Output) -> bool {
    let cmd = match &action.kind {
        ActionKind::Run(c) => c,
        _ => return false,
    };
    let argv = cmd.line.argv();
    let words: Vec<&str> = argv.iter().map(|s| s.as_ref()).take(3).collect();
    let sync_worker = matches!(
        words.as_slice(),
        ["pvecm", "create", ..]
            | ["pvecm", "add", ..]
            | ["pveceph", "pool", "create"]
            | ["pveceph", "fs", "create"]
    );
    let benign = |l: &str| {
        // The CLI's own `warn`ings (log_warn: "WARN: ...") and the warning count of a
        // task that succeeded are no task failure.
        l.is_empty()
            || l.starts_with("WARN: ")
            || (l.starts_with("Task finished with ") && l.ends_with(" warning(s)!"))
    };
    sync_worker && o.stderr.lines().any(|l| !benign(l.trim()))
}
