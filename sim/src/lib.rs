//! A simulated n-node Proxmox VE + Ceph cluster for the first-boot agent: the same
//! [`hcikit_firstboot::run::run`] that runs on a real node runs here, once per node, against a
//! [`SimHost`] each, concurrently in virtual time.
//!
//! # How it runs
//!
//! Every node's agent runs on its own thread, but only one runs at a time: a scheduler
//! hands a baton to the agent with the earliest virtual wake-up time (ties by node
//! order), so a run is deterministic for a given seed and fault set. A [`Host`] call that
//! takes time (a command with its latency, a sleep, a probe) moves the agent's clock and
//! passes the baton. Long waits cost nothing in real time: a full three-node first boot
//! of about ten virtual minutes runs in milliseconds.
//!
//! # What it reproduces (Proxmox sources named in [`schema`] and at each tool in [`world`])
//!
//! - `pvecm create` keeping a corosync key already in place, `pvecm add` refusing a node
//!   that has one (`assert_joinable`),
//! - `pvecm create`/`add` with `--linkN` checks, `--use_ssh` joins that need the bootstrap
//!   key authorised on the peer (else ssh-copy-id hangs until the caller's timeout), the
//!   1→2 join making the founder inquorate until the joiner's corosync is up, the
//!   `corosync.conf` cfs lock during `addnode`, "no quorum" refusals, pmxcfs restarting
//!   (pvesh failing briefly) during create and join, and **exit 0 on failed tasks** for
//!   `pvecm create`/`add`, `pveceph pool create` and `fs create` (the bare task error on
//!   stderr, as RESTEnvironment's `$tee_worker` prints it), `pvecm create` and joins dying
//!   without an RSA host key, the end-of-join write, `ssh_merge_known_hosts`.
//! - `pveceph install` (apt aborts without an answer on stdin; default version quincy on
//!   PVE 8, tentacle on PVE 9; tentacle refused as a tech preview by pve-manager < 9.1.13),
//!   `init` (needs packages and quorum), `mon create` (fails before init, needs quorum of
//!   the existing mons; the first one adds a mgr), `mgr`/`mds create` ("already exists"),
//!   `osd create` (refuses used disks: partitions, file systems, LVM, boot disk),
//!   `pool create` (existing pool re-applied, storage "already defined"), `fs create`
//!   (needs a standby MDS; pools/fs "already exist").
//! - `ceph` needs a config: `/etc/ceph/ceph.conf` exists only on nodes that ran `init`
//!   or created a daemon (pve-manager `PVE::Ceph::Tools::setup_pve_symlinks`), else
//!   `--conf /etc/pve/ceph.conf`.
//! - `ceph -s/mon dump/mgr dump/osd tree/mds stat/osd pool ls detail/fs ls -f json`,
//!   `ceph-volume lvm list/zap`, `lsblk --json`, `wipefs --json`, `pvesh get/set/create`
//!   for cluster status, options, storages, HA groups/rules, notification endpoints,
//!   matchers, test notifications, realms; `sendmail` routed through matchers.
//! - Proxmox's parameter schemas per PVE major ([`schema`], extracted from the source):
//!   unknown options and illegal values fail with the CLI's message and exit code; a
//!   flag table ([`flags`]) for the other programs.
//! - Per-link network reachability, late peers, absent peers, links that come up late.
//! - Faults: kill an agent before or after any Host call (after = the command took
//!   effect but the agent never saw the result), then restart it; fail a command N times.
//!
//! # What it does NOT model
//!
//! - Network partitions beyond per-link reachability (corosync sees every booted member
//!   whose link is up); message loss, latency jitter, clock skew.
//! - A command killed halfway: commands take effect atomically (with timed sub-effects);
//!   kills happen between Host calls. A real `osd create` killed mid-way can leave LVM
//!   leftovers, which the agent refuses to touch (see `decide`), but the simulator never
//!   produces them.
//! - Node reboots: a "kill" stops and restarts the agent; daemons keep running.
//! - Monitor elections, PG peering details (a fixed delay), data placement, capacity,
//!   CRUSH rules, OSD weights, the pmxcfs local mode of a standalone node (cluster-wide
//!   writes before joining are rejected instead of being silently lost).
//! - Real SMTP: mails are recorded, never sent. API-mode (password) joins.
//! - PVE 9 specifics beyond HA rules vs groups.

pub mod critical;
pub mod faults;
pub mod flags;
pub mod schema;
pub mod world;

use anyhow::{bail, Result};
pub use faults::{add_fault, Faults, Kill};
use hcikit_firstboot::host::{CommandLine, Host, Output};
use hcikit_firstboot::plan::Plan;
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use serde::Serialize;
use std::collections::BTreeMap;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;
pub use world::{DiskContent, FailKind, FailRule, World};

/// Virtual durations of simulated commands (ms).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Latencies {
    pub query_ms: u64,
    pub disk_query_ms: u64,
    pub write_ms: u64,
    pub probe_ms: u64,
    pub probe_timeout_ms: u64,
    pub ssh_ms: u64,
    pub pvecm_create_ms: u64,
    pub pvecm_add_ms: u64,
    pub ceph_install_ms: u64,
    pub ceph_init_ms: u64,
    pub mon_create_ms: u64,
    pub mgr_create_ms: u64,
    pub osd_create_ms: u64,
    pub mds_create_ms: u64,
    pub pool_create_ms: u64,
    pub fs_create_ms: u64,
    pub zap_ms: u64,
    /// From pool creation until its PGs are active.
    pub pg_peering_ms: u64,
}

impl Default for Latencies {
    fn default() -> Self {
        Latencies {
            query_ms: 300,
            disk_query_ms: 50,
            write_ms: 800,
            probe_ms: 5,
            probe_timeout_ms: 2_000,
            ssh_ms: 200,
            pvecm_create_ms: 8_000,
            pvecm_add_ms: 25_000,
            ceph_install_ms: 120_000,
            ceph_init_ms: 3_000,
            mon_create_ms: 15_000,
            mgr_create_ms: 8_000,
            osd_create_ms: 40_000,
            mds_create_ms: 8_000,
            pool_create_ms: 6_000,
            fs_create_ms: 12_000,
            zap_ms: 5_000,
            pg_peering_ms: 10_000,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct SimConfig {
    pub seed: u64,
    pub faults: Faults,
    pub latencies: Latencies,
    /// Stop the world after this much virtual time (s); 0 = 24 h.
    pub max_virtual_secs: u64,
}

/// One command as an agent ran it.
#[derive(Debug, Clone, Serialize)]
pub struct LogEntry {
    pub node: String,
    pub start_ms: u64,
    pub end_ms: u64,
    /// Shown with secrets redacted.
    pub command: String,
    /// The argv as executed: what `ps` and `/proc/<pid>/cmdline` would show. Kept apart
    /// from `command` so tests can hold the agent to never putting a secret here.
    pub argv: Vec<String>,
    pub exit: i32,
    pub timed_out: bool,
    /// For commands that change something: did the agent verify the result?
    pub verified: Option<bool>,
    /// Read-only query (not shown in the default timeline).
    pub query: bool,
    pub stderr_tail: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Done,
    Failed(String),
    /// The node never booted.
    NeverStarted,
    /// Still running when the simulation hit its time limit.
    Stalled,
}

/// Something that happened besides commands: reports, kills, restarts.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub at_ms: u64,
    pub node: String,
    pub text: String,
}

pub struct SimReport {
    pub outcomes: BTreeMap<String, Outcome>,
    /// Virtual time each node finished (ms).
    pub finished_ms: BTreeMap<String, u64>,
    pub log: Vec<LogEntry>,
    pub events: Vec<Event>,
    pub world: World,
    /// The state file of every node at the end.
    pub states: BTreeMap<String, String>,
    /// Per node, the kinds of Host calls of its first run (to aim kills).
    pub calls: BTreeMap<String, Vec<&'static str>>,
    /// When the last peer booted (ms).
    pub all_up_ms: u64,
    pub kills_done: u32,
}

impl SimReport {
    pub fn all_done(&self) -> bool {
        self.outcomes.values().all(|o| *o == Outcome::Done)
    }
    /// The secret values the simulated nodes hold, to check nothing shows them.
    pub fn secrets() -> [&'static str; 4] {
        [
            world::SIM_SMTP_PASSWORD,
            world::SIM_BOOTSTRAP_PRIVATE,
            world::SIM_REALM_SECRET,
            world::SIM_AUTHKEY,
        ]
    }
}

/// Unwinds an agent that the fault plan kills (never reaches the panic hook).
struct Killed;
/// Unwinds every agent when the virtual time limit is reached.
struct Halt;

struct Sched {
    now: u64,
    wake: Vec<Option<u64>>,
    running: Option<usize>,
}

struct Shared {
    world: Mutex<World>,
    sched: Mutex<Sched>,
    cv: Condvar,
    log: Mutex<Vec<LogEntry>>,
    events: Mutex<Vec<Event>>,
    kills: Mutex<Vec<Kill>>,
    calls: Mutex<BTreeMap<String, Vec<&'static str>>>,
    limit_ms: u64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn pick(s: &mut Sched) {
        let next = (0..s.wake.len())
            .filter_map(|i| s.wake[i].map(|t| (t, i)))
            .min();
        s.running = next.map(|(_, i)| i);
        if let Some((t, _)) = next {
            s.now = s.now.max(t);
        }
    }

    fn wait_turn(&self, idx: usize) {
        let mut s = lock(&self.sched);
        while s.running != Some(idx) {
            s = self.cv.wait(s).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Parks agent `idx` until virtual time `t` and runs whoever is next.
    fn yield_until(&self, idx: usize, t: u64) {
        {
            let mut s = lock(&self.sched);
            s.wake[idx] = Some(t);
            Self::pick(&mut s);
            self.cv.notify_all();
        }
        self.wait_turn(idx);
    }

    fn finish(&self, idx: usize) {
        let mut s = lock(&self.sched);
        s.wake[idx] = None;
        Self::pick(&mut s);
        self.cv.notify_all();
    }

    fn now(&self) -> u64 {
        lock(&self.sched).now
    }

    fn event(&self, node: &str, text: String) {
        let at_ms = self.now();
        lock(&self.events).push(Event {
            at_ms,
            node: node.to_string(),
            text,
        });
    }
}

/// The Host of one simulated node for one agent run.
pub struct SimHost {
    shared: Arc<Shared>,
    idx: usize,
    name: String,
    run: u32,
    calls: std::cell::Cell<u64>,
}

impl SimHost {
    /// Counts a Host call; kills the agent here if the fault plan says so.
    fn enter(&self, kind: &'static str) -> u64 {
        let n = self.calls.get();
        self.calls.set(n + 1);
        if self.run == 0 {
            lock(&self.shared.calls)
                .entry(self.name.clone())
                .or_default()
                .push(kind);
        }
        if self.take_kill(n, false) {
            self.die(format!("killed before {kind} (call {n})"));
        }
        n
    }

    fn leave(&self, n: u64, kind: &'static str) {
        if self.take_kill(n, true) {
            self.die(format!("killed after {kind} (call {n})"));
        }
    }

    fn take_kill(&self, n: u64, after: bool) -> bool {
        let mut k = lock(&self.shared.kills);
        if let Some(pos) = k.iter().position(|k| {
            k.node == self.name && k.run == self.run && k.call == n && k.after == after
        }) {
            k.remove(pos);
            return true;
        }
        false
    }

    fn die(&self, why: String) -> ! {
        self.shared.event(&self.name, why);
        resume_unwind(Box::new(Killed))
    }

    /// Advances this agent's clock by `ms`.
    fn spend(&self, ms: u64) {
        let t = self.shared.now().saturating_add(ms);
        if t > self.shared.limit_ms {
            resume_unwind(Box::new(Halt));
        }
        self.shared.yield_until(self.idx, t);
    }

    fn world(&self) -> MutexGuard<'_, World> {
        let mut w = lock(&self.shared.world);
        w.now = self.shared.now();
        w
    }

    fn is_query(argv: &[String]) -> bool {
        let inner: Vec<&str> = match argv.iter().position(|a| a.starts_with("root@")) {
            Some(p) if argv[0] == "ssh" => argv[p + 1..].iter().map(String::as_str).collect(),
            _ => argv.iter().map(String::as_str).collect(),
        };
        let config_set = inner.get(1) == Some(&"config") && inner.get(2) == Some(&"set");
        matches!(inner.first().copied(), Some("lsblk" | "wipefs" | "cat"))
            || (inner.first() == Some(&"ceph") && !config_set)
            || inner.get(1) == Some(&"get")
            || inner.get(1) == Some(&"lvm") && inner.get(2) == Some(&"list")
    }

    /// `ssh … root@IP cmd…`: checks the trust options and runs `cmd` on the peer.
    fn ssh(&self, w: &mut World, argv: &[String], stdin: Option<&[u8]>) -> world::Reply {
        let mut i = 1;
        let mut opts = Vec::new();
        let mut identity = None;
        while i < argv.len() && argv[i].starts_with('-') {
            match argv[i].as_str() {
                "-o" => opts.push(argv.get(i + 1).cloned().unwrap_or_default()),
                "-i" => identity = argv.get(i + 1).cloned(),
                _ => {}
            }
            i += 2;
        }
        let fail = |code, msg: &str| world::Reply {
            latency_ms: w.lat.ssh_ms,
            out: Output {
                code,
                stderr: msg.to_string(),
                ..Output::default()
            },
        };
        if !opts.iter().any(|o| o == "BatchMode=yes")
            || !opts.iter().any(|o| o == "StrictHostKeyChecking=yes")
        {
            return fail(255, "sim: refusing ssh without BatchMode=yes and StrictHostKeyChecking=yes (no trust on first use)");
        }
        if identity.as_deref() != Some(hcikit_firstboot::layout::BOOTSTRAP_KEY)
            || w.read_file(self.idx, hcikit_firstboot::layout::BOOTSTRAP_KEY)
                .is_none()
        {
            return fail(
                255,
                "Load key: No such file or directory\nroot@host: Permission denied (publickey).",
            );
        }
        let Some(host) = argv.get(i).and_then(|h| h.strip_prefix("root@")) else {
            return fail(255, "usage: ssh destination");
        };
        let Some((to, _)) = w.owner_of(host) else {
            return fail(
                255,
                &format!("ssh: connect to host {host} port 22: No route to host"),
            );
        };
        if !w.reachable(self.idx, host) {
            return world::Reply {
                latency_ms: 10_000,
                out: Output {
                    code: 255,
                    stderr: format!("ssh: connect to host {host} port 22: Connection timed out"),
                    ..Output::default()
                },
            };
        }
        if !w.bootstrap_authorized_on(to) {
            return fail(255, &format!("root@{host}: Permission denied (publickey)."));
        }
        let mut r = w.command(to, &argv[i + 1..], stdin);
        r.latency_ms = r.latency_ms.saturating_add(w.lat.ssh_ms);
        r
    }
}

impl Host for SimHost {
    fn run(&self, cmd: &CommandLine, stdin: Option<&[u8]>, timeout: Duration) -> Result<Output> {
        let n = self.enter("run");
        let argv: Vec<String> = cmd.argv().into_iter().map(str::to_string).collect();
        let start = self.shared.now();
        let reply = {
            let mut w = self.world();
            if argv[0] == "ssh" {
                self.ssh(&mut w, &argv, stdin)
            } else {
                let program = argv[0].rsplit('/').next().unwrap_or_default().to_string();
                let mut a = argv.clone();
                a[0] = program;
                w.command(self.idx, &a, stdin)
            }
        };
        let timeout_ms = timeout.as_millis() as u64;
        let (spent, out) = if reply.latency_ms > timeout_ms {
            (
                timeout_ms,
                Output {
                    code: 124,
                    stdout: reply.out.stdout.clone(),
                    stderr: reply.out.stderr.clone(),
                    timed_out: true,
                },
            )
        } else {
            (reply.latency_ms, reply.out)
        };
        let query = Self::is_query(&argv);
        lock(&self.shared.log).push(LogEntry {
            node: self.name.clone(),
            start_ms: start,
            end_ms: start + spent,
            command: cmd.display(),
            argv: argv.clone(),
            exit: out.code,
            timed_out: out.timed_out,
            verified: None,
            query,
            stderr_tail: out.tail(),
        });
        self.spend(spent);
        self.leave(n, "run");
        Ok(out)
    }

    fn read(&self, path: &str) -> Result<Option<Vec<u8>>> {
        let n = self.enter("read");
        let r = self.world().read_file(self.idx, path);
        self.leave(n, "read");
        Ok(r)
    }

    fn write_atomic(&self, path: &str, data: &[u8], _mode: u32) -> Result<()> {
        let kind = if path == hcikit_firstboot::layout::STATE_FILE {
            "write-state"
        } else {
            "write"
        };
        let n = self.enter(kind);
        let r = self.world().write_file(self.idx, path, data);
        self.leave(n, kind);
        match r {
            Ok(()) => Ok(()),
            Err(e) => bail!("{e}"),
        }
    }

    fn remove(&self, path: &str) -> Result<()> {
        let n = self.enter("remove");
        self.world().remove_file(self.idx, path);
        self.leave(n, "remove");
        Ok(())
    }

    fn exists(&self, path: &str) -> bool {
        let n = self.enter("exists");
        let r = self.world().read_file(self.idx, path).is_some();
        self.leave(n, "exists");
        r
    }

    fn resolve(&self, path: &str) -> Result<String> {
        Ok(path.to_string())
    }

    fn now_ms(&self) -> u64 {
        self.shared.now()
    }

    fn sleep(&self, d: Duration) {
        let n = self.enter("sleep");
        self.spend(d.as_millis() as u64);
        self.leave(n, "sleep");
    }

    fn reachable(&self, ip: &str) -> bool {
        let n = self.enter("probe");
        let (ok, ms) = {
            let w = self.world();
            let ok = w.reachable(self.idx, ip);
            (
                ok,
                if ok {
                    w.lat.probe_ms
                } else {
                    w.lat.probe_timeout_ms
                },
            )
        };
        self.spend(ms);
        self.leave(n, "probe");
        ok
    }

    fn report(&self, line: &str) {
        self.shared.event(&self.name, line.to_string());
    }

    /// No sink in the simulation: the report becomes an event, so tests and the timeline
    /// see which stages a node would have POSTed.
    fn post_report(&self, url: &str, report: &hcikit_firstboot::report::Report) {
        self.shared
            .event(&self.name, format!("report to {url}: {}", report.stage));
    }

    fn verified(&self, _step: &str, ok: bool) {
        let mut log = lock(&self.shared.log);
        if let Some(e) = log
            .iter_mut()
            .rev()
            .find(|e| e.node == self.name && !e.query)
        {
            if e.verified.is_none() {
                e.verified = Some(ok);
            }
        }
    }
}

/// Runs every node's first boot against a fresh simulated cluster.
pub fn simulate(plan: &Plan, cfg: &SimConfig) -> SimReport {
    let mut world = World::new(plan, cfg.latencies.clone(), cfg.seed);
    let f = &cfg.faults;
    world.fail_rules = f.fail.clone();
    world.pve_manager = f.pve_manager.clone();
    for (node, path) in &f.missing_files {
        if let Some(i) = world.idx(node) {
            world.nodes[i].files.remove(path);
        }
    }
    for n in &mut world.nodes {
        if f.absent.contains(&n.name) {
            n.boot_at = None;
        } else if let Some(t) = f.late.get(&n.name) {
            n.boot_at = Some(t * 1000);
        }
    }
    for ((node, net), t) in &f.link_late {
        if let Some(i) = world.idx(node) {
            world.nodes[i].link_up_at.insert(net.clone(), t * 1000);
        }
    }
    for (node, dev, content) in &f.disks {
        if let Some(i) = world.idx(node) {
            match world.nodes[i].disks.iter_mut().find(|d| &d.path == dev) {
                Some(d) => d.content = content.clone(),
                None => world.nodes[i].disks.push(world::SimDisk {
                    path: dev.clone(),
                    content: content.clone(),
                    boot: false,
                }),
            }
        }
    }
    let n = plan.nodes.len();
    let boot: Vec<Option<u64>> = world.nodes.iter().map(|n| n.boot_at).collect();
    let all_up_ms = boot.iter().flatten().copied().max().unwrap_or(0);
    let mut kills = f.kills.clone();
    if f.random_kills > 0 {
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        for _ in 0..f.random_kills {
            let node = plan.nodes[(rng.next_u32() as usize) % n].name.clone();
            // Mostly the first run; sometimes the restarted one again.
            kills.push(Kill {
                node,
                run: u32::from(rng.next_u32() % 4 == 0),
                call: rng.next_u64() % 400,
                after: rng.next_u32() % 2 == 0,
            });
        }
    }
    let limit_s = if cfg.max_virtual_secs == 0 {
        24 * 3600
    } else {
        cfg.max_virtual_secs
    };
    let shared = Arc::new(Shared {
        world: Mutex::new(world),
        sched: Mutex::new(Sched {
            now: 0,
            wake: boot.clone(),
            running: None,
        }),
        cv: Condvar::new(),
        log: Mutex::new(Vec::new()),
        events: Mutex::new(Vec::new()),
        kills: Mutex::new(kills),
        calls: Mutex::new(BTreeMap::new()),
        limit_ms: limit_s * 1000,
    });
    let restart_ms = f.restart_delay_secs.max(1) * 1000;
    let reboot_ms = f.reboot_failed_after_secs.map(|s| s * 1000);
    let dispatch = tracing::dispatcher::get_default(|d| d.clone());
    let mut handles = Vec::new();
    for (idx, node) in plan.nodes.iter().enumerate() {
        if boot[idx].is_none() {
            continue;
        }
        let shared = shared.clone();
        let plan = plan.clone();
        let name = node.name.clone();
        let dispatch = dispatch.clone();
        handles.push((
            name.clone(),
            std::thread::spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    agent(shared, idx, &plan, &name, restart_ms, reboot_ms)
                })
            }),
        ));
    }
    {
        let mut s = lock(&shared.sched);
        Shared::pick(&mut s);
        shared.cv.notify_all();
    }
    let mut outcomes = BTreeMap::new();
    let mut finished_ms = BTreeMap::new();
    let mut kills_done = 0;
    let mut panic = None;
    for (name, h) in handles {
        match h.join() {
            Ok((o, t, k)) => {
                outcomes.insert(name.clone(), o);
                finished_ms.insert(name, t);
                kills_done += k;
            }
            Err(p) => panic = Some(p),
        }
    }
    if let Some(p) = panic {
        resume_unwind(p);
    }
    for node in &plan.nodes {
        outcomes
            .entry(node.name.clone())
            .or_insert(Outcome::NeverStarted);
    }
    let shared = Arc::try_unwrap(shared)
        .unwrap_or_else(|_| panic!("simulation threads still hold the world"));
    let mut world = shared.world.into_inner().unwrap_or_else(|e| e.into_inner());
    world.now = shared
        .sched
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .now;
    let states = world
        .nodes
        .iter()
        .filter_map(|n| {
            n.files
                .get(hcikit_firstboot::layout::STATE_FILE)
                .map(|b| (n.name.clone(), String::from_utf8_lossy(b).into_owned()))
        })
        .collect();
    SimReport {
        outcomes,
        finished_ms,
        log: shared.log.into_inner().unwrap_or_else(|e| e.into_inner()),
        events: shared
            .events
            .into_inner()
            .unwrap_or_else(|e| e.into_inner()),
        world,
        states,
        calls: shared.calls.into_inner().unwrap_or_else(|e| e.into_inner()),
        all_up_ms,
        kills_done,
    }
}

/// One node's agent, restarted after each injected kill.
fn agent(
    shared: Arc<Shared>,
    idx: usize,
    plan: &Plan,
    name: &str,
    restart_ms: u64,
    reboot_ms: Option<u64>,
) -> (Outcome, u64, u32) {
    shared.wait_turn(idx);
    let mut run = 0;
    let outcome = loop {
        let host = SimHost {
            shared: shared.clone(),
            idx,
            name: name.to_string(),
            run,
            calls: std::cell::Cell::new(0),
        };
        let r = catch_unwind(AssertUnwindSafe(|| {
            hcikit_firstboot::run::run(&host, plan, name)
        }));
        match r {
            Ok(Ok(())) => break Outcome::Done,
            Ok(Err(e)) => match reboot_ms {
                Some(ms) if shared.now() + ms <= shared.limit_ms => {
                    run += 1;
                    shared.yield_until(idx, shared.now() + ms);
                    shared.event(name, format!("rebooted after a failed run (run {run})"));
                }
                _ => break Outcome::Failed(format!("{e:#}")),
            },
            Err(p) if p.is::<Killed>() => {
                run += 1;
                let t = shared.now() + restart_ms;
                if t > shared.limit_ms {
                    break Outcome::Stalled;
                }
                shared.yield_until(idx, t);
                shared.event(name, format!("agent restarted (run {run})"));
            }
            Err(p) if p.is::<Halt>() => break Outcome::Stalled,
            Err(p) => {
                shared.finish(idx);
                resume_unwind(p);
            }
        }
    };
    let t = shared.now();
    shared.finish(idx);
    (outcome, t, run)
}

/// Simulated makespan against the critical path of the same latencies.
#[derive(Debug, Clone, Serialize)]
pub struct Measure {
    /// From the last peer's boot to the founder recording HEALTH_OK (ms).
    pub to_health_ok_ms: Option<u64>,
    /// From the last peer's boot to the last node finishing (ms).
    pub to_done_ms: u64,
    pub critical_health_ok_ms: u64,
    pub critical_done_ms: u64,
}

impl Measure {
    pub fn of(plan: &Plan, r: &SimReport, lat: &Latencies) -> Measure {
        let cp = critical::critical_path(plan, lat);
        let founder = &plan.cluster.founder;
        let health = r
            .events
            .iter()
            .find(|e| &e.node == founder && e.text.ends_with("ceph-health: done"))
            .map(|e| e.at_ms.saturating_sub(r.all_up_ms));
        let done = r.finished_ms.values().copied().max().unwrap_or(0);
        Measure {
            to_health_ok_ms: health,
            to_done_ms: done.saturating_sub(r.all_up_ms),
            critical_health_ok_ms: cp.health_ok_ms,
            critical_done_ms: cp.total_ms,
        }
    }
}
