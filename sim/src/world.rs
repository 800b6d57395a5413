//! The simulated cluster's state and the behaviour of each simulated command.
//!
//! Effects that take time are stored with the virtual time at which they become visible
//! (`at`), so a query from another node during a long command sees the intermediate
//! state (e.g. the founder inquorate while a joiner's corosync is not up yet).

use crate::flags::{self, Parsed, DC_KEYS};
use crate::Latencies;
use hcikit_firstboot::host::Output;
use hcikit_firstboot::plan::Plan;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Latency meaning "never returns" (the caller's timeout fires).
pub const HANG: u64 = u64::MAX / 4;

/// The SMTP password every simulated node holds (a secret: must never be shown).
pub const SIM_SMTP_PASSWORD: &str = "sim-Smtp-Pa55word-7c1e";
/// Body of the simulated bootstrap private key (a secret).
pub const SIM_BOOTSTRAP_PRIVATE: &str = "b3BlbnNzaC1rZXktdjEAAAAAsimBootstrapPrivate9f2a";
/// The seeded corosync key every simulated node holds (a secret).
pub const SIM_AUTHKEY: &str = "sim-corosync-authkey-5e1d";
/// The realm bind secret every simulated node holds (a secret).
pub const SIM_REALM_SECRET: &str = "sim-Realm-Bind-9d2f";
pub const SIM_BOOTSTRAP_PUB: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIsimBootstrapPub hcikit-bootstrap";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DiskContent {
    Blank,
    /// A GPT partition table with one partition.
    Gpt,
    Ext4,
    /// An LVM physical volume of something else.
    Lvm,
    /// An OSD (ours or of another cluster, by fsid).
    Osd {
        id: u32,
        fsid: String,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct SimDisk {
    pub path: String,
    pub content: DiskContent,
    pub boot: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct DiskWrite {
    pub at_ms: u64,
    pub node: String,
    pub device: String,
    /// `zap` or `osd-create`.
    pub op: String,
    /// What the disk held before.
    pub before: DiskContent,
}

#[derive(Debug, Clone)]
pub struct SimNode {
    pub name: String,
    /// When the node boots; `None` = never.
    pub boot_at: Option<u64>,
    /// network → when its link comes up (defaults to boot).
    pub link_up_at: BTreeMap<String, u64>,
    pub files: BTreeMap<String, Vec<u8>>,
    pub disks: Vec<SimDisk>,
    pub ceph_installed_at: Option<u64>,
    pub ceph_version: Option<String>,
    pub install_window: Option<(u64, u64)>,
    /// pmxcfs restarting: pvesh fails in this window.
    pub pmxcfs_down: Option<(u64, u64)>,
    /// `/etc/ceph/ceph.conf → /etc/pve/ceph.conf`, made by init, mon/mgr/osd create.
    pub ceph_symlink: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Member {
    pub name: String,
    pub nodeid: u32,
    pub links: BTreeMap<u8, String>,
    pub added_at: u64,
    /// Local corosync.conf written (the node sees itself clustered).
    pub conf_at: u64,
    pub online_at: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PveCluster {
    pub name: String,
    pub links: BTreeSet<u8>,
    pub members: Vec<Member>,
    pub config_version: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct Daemon {
    pub name: String,
    pub at: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SimOsd {
    pub id: u32,
    pub host: String,
    pub device: String,
    pub at: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SimPool {
    pub name: String,
    pub size: u8,
    pub min_size: u8,
    pub pg_num: u32,
    pub pg_autoscale_mode: String,
    pub application: String,
    pub at: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SimFs {
    pub name: String,
    pub active: String,
    pub at: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct CephWorld {
    pub fsid: Option<String>,
    pub public_network: Option<String>,
    pub cluster_network: Option<String>,
    pub mons: Vec<Daemon>,
    pub mgrs: Vec<Daemon>,
    pub mds: Vec<Daemon>,
    pub osds: Vec<SimOsd>,
    pub pools: Vec<SimPool>,
    pub fs: Vec<SimFs>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Storage {
    pub storage: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub content: String,
    pub pool: Option<String>,
    #[serde(rename = "fs-name")]
    pub fs_name: Option<String>,
    #[serde(skip)]
    pub at: u64,
}

/// Cluster-wide configuration (what lives in pmxcfs).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Pmxcfs {
    pub options: BTreeMap<String, String>,
    pub storages: Vec<Storage>,
    pub ha_groups: BTreeMap<String, BTreeMap<String, String>>,
    pub ha_rules: BTreeMap<String, BTreeMap<String, String>>,
    /// Public SMTP endpoint fields (`/etc/pve/notifications.cfg`).
    pub smtp: BTreeMap<String, Vec<(String, String)>>,
    /// `/etc/pve/priv/notifications.cfg`: target → password. Never serialised.
    #[serde(skip)]
    pub smtp_passwords: BTreeMap<String, String>,
    pub matchers: BTreeMap<String, Vec<String>>,
    pub realms: BTreeMap<String, Vec<(String, String)>>,
    pub authorized_keys: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Mail {
    pub at_ms: u64,
    pub from_node: String,
    pub target: String,
    pub subject: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailKind {
    /// `cfs-lock 'file-corosync_conf' error: got lock request timeout` (exit 0 for joins).
    LockTimeout,
    /// The worker task fails: `TASK ERROR: <msg>`, with the exit code the tool really gives.
    TaskError(String),
}

/// Fail the next `times` runs of a command (matched by prefix of its shown command line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailRule {
    pub node: Option<String>,
    pub command: String,
    pub times: u32,
    pub kind: FailKind,
}

/// The answer of one simulated command.
#[derive(Debug, Clone)]
pub struct Reply {
    pub latency_ms: u64,
    pub out: Output,
}

fn ok(latency_ms: u64, stdout: impl Into<String>) -> Reply {
    Reply {
        latency_ms,
        out: Output {
            code: 0,
            stdout: stdout.into(),
            stderr: String::new(),
            timed_out: false,
        },
    }
}

fn fail(latency_ms: u64, code: i32, stderr: impl Into<String>) -> Reply {
    Reply {
        latency_ms,
        out: Output {
            code,
            stdout: String::new(),
            stderr: stderr.into(),
            timed_out: false,
        },
    }
}

/// A worker task that failed but whose CLI exits 0 (reference §1.8).
fn task_error_exit0(latency_ms: u64, msg: &str) -> Reply {
    Reply {
        latency_ms,
        out: Output {
            code: 0,
            stdout: String::new(),
            stderr: format!("{msg}\nTASK ERROR: {msg}\n"),
            timed_out: false,
        },
    }
}

fn json_out(latency_ms: u64, v: Value) -> Reply {
    ok(latency_ms, serde_json::to_string(&v).expect("json"))
}

pub struct World {
    pub plan: Plan,
    pub lat: Latencies,
    pub now: u64,
    pub nodes: Vec<SimNode>,
    pub cluster: Option<PveCluster>,
    pub pmx: Pmxcfs,
    pub ceph: CephWorld,
    pub mails: Vec<Mail>,
    pub disk_writes: Vec<DiskWrite>,
    pub fail_rules: Vec<FailRule>,
    lock_until: u64,
    seed: u64,
    /// Some(true) when `pvecm create` kept the seeded corosync key.
    pub seeded_authkey: Option<bool>,
}

impl World {
    pub fn new(plan: &Plan, lat: Latencies, seed: u64) -> World {
        let nodes = plan
            .nodes
            .iter()
            .map(|n| {
                let mut files = BTreeMap::new();
                let mut keys: Vec<String> = plan.cluster.admin_ssh_keys.clone();
                keys.push(SIM_BOOTSTRAP_PUB.to_string());
                files.insert(
                    "/root/.ssh/authorized_keys".to_string(),
                    format!("{}\n", keys.join("\n")).into_bytes(),
                );
                files.insert(
                    hcikit_firstboot::layout::BOOTSTRAP_KEY.to_string(),
                    format!(
                        "-----BEGIN OPENSSH PRIVATE KEY-----\n{SIM_BOOTSTRAP_PRIVATE}\n-----END OPENSSH PRIVATE KEY-----\n"
                    )
                    .into_bytes(),
                );
                files.insert(
                    hcikit_firstboot::layout::BOOTSTRAP_PUB.to_string(),
                    format!("{SIM_BOOTSTRAP_PUB}\n").into_bytes(),
                );
                for t in &plan.notifications.smtp {
                    if let Some(p) = &t.password {
                        files.insert(p.node_path(), format!("{SIM_SMTP_PASSWORD}\n").into_bytes());
                    }
                }
                files.insert(
                    hcikit_firstboot::layout::COROSYNC_AUTHKEY.to_string(),
                    SIM_AUTHKEY.as_bytes().to_vec(),
                );
                for r in &plan.realms {
                    if let Some(sec) = &r.secret {
                        files.insert(sec.node_path(), format!("{SIM_REALM_SECRET}\n").into_bytes());
                    }
                }
                let mut disks = vec![SimDisk {
                    path: "/dev/sda".into(),
                    content: DiskContent::Gpt,
                    boot: true,
                }];
                for o in &n.osds {
                    disks.push(SimDisk {
                        path: o.device.clone(),
                        content: DiskContent::Blank,
                        boot: false,
                    });
                }
                // A disk the plan does not name: must never be written.
                disks.push(SimDisk {
                    path: "/dev/sdz".into(),
                    content: DiskContent::Blank,
                    boot: false,
                });
                let preinstalled = plan.firstboot.ceph_install == "preinstalled";
                SimNode {
                    name: n.name.clone(),
                    boot_at: Some(0),
                    link_up_at: BTreeMap::new(),
                    files,
                    disks,
                    ceph_installed_at: preinstalled.then_some(0),
                    ceph_version: preinstalled
                        .then(|| plan.ceph.as_ref().map(|c| c.release.clone()))
                        .flatten(),
                    install_window: None,
                    pmxcfs_down: None,
                    ceph_symlink: false,
                }
            })
            .collect();
        World {
            plan: plan.clone(),
            lat,
            now: 0,
            nodes,
            cluster: None,
            pmx: Pmxcfs::default(),
            ceph: CephWorld::default(),
            mails: Vec::new(),
            disk_writes: Vec::new(),
            fail_rules: Vec::new(),
            lock_until: 0,
            seed,
            seeded_authkey: None,
        }
    }

    pub fn idx(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == name)
    }

    fn name(&self, i: usize) -> &str {
        &self.nodes[i].name
    }

    pub fn booted(&self, i: usize) -> bool {
        self.nodes[i].boot_at.is_some_and(|t| t <= self.now)
    }

    fn link_up(&self, i: usize, net: &str) -> bool {
        self.booted(i)
            && self.nodes[i]
                .link_up_at
                .get(net)
                .is_none_or(|t| *t <= self.now)
    }

    /// Node and network that own `ip`.
    pub fn owner_of(&self, ip: &str) -> Option<(usize, String)> {
        for (i, n) in self.plan.nodes.iter().enumerate() {
            for a in &n.addresses {
                if a.ip == ip {
                    return Some((i, a.network.clone()));
                }
            }
        }
        None
    }

    /// Can node `from` reach `ip` now?
    pub fn reachable(&self, from: usize, ip: &str) -> bool {
        match self.owner_of(ip) {
            Some((to, net)) => self.link_up(from, &net) && self.link_up(to, &net),
            None => false,
        }
    }

    fn member(&self, i: usize) -> Option<&Member> {
        let name = self.name(i);
        self.cluster
            .as_ref()?
            .members
            .iter()
            .find(|m| m.name == name && m.conf_at <= self.now)
    }

    pub fn is_member(&self, i: usize) -> bool {
        self.member(i).is_some()
    }

    fn online(&self, m: &Member) -> bool {
        m.online_at.is_some_and(|t| t <= self.now)
            && self.idx(&m.name).is_some_and(|i| self.booted(i))
    }

    /// Per corosync link of a member: is its network up on that node?
    pub fn links_up(&self, m: &Member) -> BTreeMap<u8, bool> {
        let i = self.idx(&m.name);
        m.links
            .iter()
            .map(|(n, ip)| {
                let up = match (i, self.owner_of(ip)) {
                    (Some(i), Some((_, net))) => self.link_up(i, &net),
                    _ => false,
                };
                (*n, up)
            })
            .collect()
    }

    pub fn quorate(&self) -> bool {
        let Some(c) = &self.cluster else { return false };
        let members: Vec<_> = c
            .members
            .iter()
            .filter(|m| m.added_at <= self.now)
            .collect();
        let online = members.iter().filter(|m| self.online(m)).count();
        !members.is_empty() && online * 2 > members.len()
    }

    fn fail_rule(&mut self, node: usize, shown: &str) -> Option<FailKind> {
        let name = self.name(node).to_string();
        let r = self.fail_rules.iter_mut().find(|r| {
            r.times > 0
                && shown.starts_with(&r.command)
                && r.node.as_ref().is_none_or(|n| *n == name)
        })?;
        r.times -= 1;
        Some(r.kind.clone())
    }

    fn pvesh_up(&self, i: usize) -> bool {
        !self.nodes[i]
            .pmxcfs_down
            .is_some_and(|(a, b)| a <= self.now && self.now < b)
    }

    fn installed(&self, i: usize) -> bool {
        self.nodes[i]
            .ceph_installed_at
            .is_some_and(|t| t <= self.now)
    }

    fn ceph_configured(&self, i: usize) -> bool {
        self.is_member(i) && self.ceph.fsid.is_some()
    }

    fn visible<'a, T, F: Fn(&T) -> u64>(&self, v: &'a [T], at: F) -> Vec<&'a T> {
        v.iter().filter(|x| at(x) <= self.now).collect()
    }

    fn quorum_names(&self) -> Vec<String> {
        self.visible(&self.ceph.mons, |d| d.at)
            .into_iter()
            .filter(|d| self.idx(&d.name).is_some_and(|i| self.booted(i)))
            .map(|d| d.name.clone())
            .collect()
    }

    fn osd_up(&self, o: &SimOsd) -> bool {
        o.at + 2_000 <= self.now && self.idx(&o.host).is_some_and(|i| self.booted(i))
    }

    fn hosts_with_up_osd(&self) -> usize {
        self.ceph
            .osds
            .iter()
            .filter(|o| self.osd_up(o))
            .map(|o| o.host.clone())
            .collect::<BTreeSet<_>>()
            .len()
    }

    fn node_ip_on(&self, i: usize, net: &str) -> Option<String> {
        self.plan.nodes[i].address_on(net).map(|a| a.ip.clone())
    }

    // ---------------------------------------------------------------- files

    /// A file as node `i` sees it (pmxcfs files are shared once clustered).
    pub fn read_file(&self, i: usize, path: &str) -> Option<Vec<u8>> {
        match path {
            "/etc/pve/corosync.conf" => {
                self.is_member(i).then(|| self.corosync_conf().into_bytes())
            }
            "/etc/pve/ceph.conf" => self
                .ceph_configured(i)
                .then(|| self.ceph_conf().into_bytes()),
            "/etc/pve/priv/authorized_keys" => self
                .is_member(i)
                .then(|| self.pmx.authorized_keys.clone().into_bytes()),
            "/etc/pve/notifications.cfg" => {
                (self.is_member(i) && !self.pmx.smtp.is_empty()).then(|| b"# simulated\n".to_vec())
            }
            hcikit_firstboot::layout::CEPH_INSTALL_FLAG => self.nodes[i]
                .install_window
                .is_some_and(|(a, b)| a <= self.now && self.now < b)
                .then(Vec::new),
            p if hcikit_firstboot::layout::CEPH_BINARIES.contains(&p) => {
                self.installed(i).then(Vec::new)
            }
            // Every simulated node is a Proxmox VE node.
            p if hcikit_firstboot::layout::PVE_BINARIES.contains(&p) => Some(Vec::new()),
            "/root/.ssh/authorized_keys" if self.is_member(i) => {
                Some(self.pmx.authorized_keys.clone().into_bytes())
            }
            p => self.nodes[i].files.get(p).cloned(),
        }
    }

    pub fn write_file(&mut self, i: usize, path: &str, data: &[u8]) -> Result<(), String> {
        if path == "/etc/pve/priv/authorized_keys"
            || (path == "/root/.ssh/authorized_keys" && self.is_member(i))
        {
            if !self.is_member(i) {
                return Err(format!(
                    "{path}: not in a cluster (pmxcfs local mode not simulated)"
                ));
            }
            if !self.quorate() {
                return Err(format!(
                    "{path}: Permission denied (pmxcfs is read-only without quorum)"
                ));
            }
            self.pmx.authorized_keys = String::from_utf8_lossy(data).into_owned();
            return Ok(());
        }
        if path.starts_with("/etc/pve/") {
            return Err(format!("{path}: writing this pmxcfs file is not simulated"));
        }
        self.nodes[i].files.insert(path.to_string(), data.to_vec());
        Ok(())
    }

    pub fn remove_file(&mut self, i: usize, path: &str) {
        self.nodes[i].files.remove(path);
    }

    fn corosync_conf(&self) -> String {
        let c = self.cluster.as_ref().expect("cluster");
        let mut s = String::from("nodelist {\n");
        for m in &c.members {
            s.push_str(&format!(
                "  node {{\n    name: {}\n    nodeid: {}\n    quorum_votes: 1\n",
                m.name, m.nodeid
            ));
            for (l, ip) in &m.links {
                s.push_str(&format!("    ring{l}_addr: {ip}\n"));
            }
            s.push_str("  }\n");
        }
        s.push_str(&format!(
            "}}\n\ntotem {{\n  cluster_name: {}\n  config_version: {}\n}}\n",
            c.name, c.config_version
        ));
        s
    }

    fn ceph_conf(&self) -> String {
        let mut s = format!(
            "[global]\n\tauth_client_required = cephx\n\tcluster_network = {}\n\tfsid = {}\n",
            self.ceph.cluster_network.clone().unwrap_or_default(),
            self.ceph.fsid.clone().unwrap_or_default()
        );
        let mons: Vec<String> = self
            .ceph
            .mons
            .iter()
            .filter(|m| m.at <= self.now)
            .filter_map(|m| {
                let i = self.idx(&m.name)?;
                self.node_ip_on(i, &self.plan.ceph.as_ref()?.public_network)
            })
            .collect();
        if !mons.is_empty() {
            s.push_str(&format!("\tmon_host = {}\n", mons.join(" ")));
        }
        s.push_str(&format!(
            "\tpublic_network = {}\n\n[client]\n\tkeyring = /etc/pve/priv/$cluster.$name.keyring\n",
            self.ceph.public_network.clone().unwrap_or_default()
        ));
        s
    }

    /// Does root's ssh on node `i` offer the bootstrap key to `ip` (a `Host` block
    /// matching it with that `IdentityFile`)?
    pub fn ssh_offers_bootstrap(&self, i: usize, ip: &str) -> bool {
        let Some(cfg) = self.read_file(i, "/root/.ssh/config") else {
            return false;
        };
        let cfg = String::from_utf8_lossy(&cfg);
        let mut matching = false;
        for line in cfg.lines().map(str::trim) {
            let mut words = line.split_whitespace();
            match words.next().map(str::to_ascii_lowercase).as_deref() {
                Some("host") => matching = words.any(|p| p == ip || p == "*"),
                Some("match") => matching = false,
                Some("identityfile")
                    if matching
                        && words.next() == Some(hcikit_firstboot::layout::BOOTSTRAP_KEY) =>
                {
                    return true;
                }
                _ => {}
            }
        }
        false
    }

    /// Does node `to` accept the bootstrap key?
    pub fn bootstrap_authorized_on(&self, to: usize) -> bool {
        let keys = self
            .read_file(to, "/root/.ssh/authorized_keys")
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        keys.lines().any(|l| l.trim() == SIM_BOOTSTRAP_PUB)
    }

    // ---------------------------------------------------------------- commands

    /// Runs a command (already stripped of any `ssh` wrapper) on node `i`.
    pub fn command(&mut self, i: usize, argv: &[String], stdin: Option<&[u8]>) -> Reply {
        let q = self.lat.query_ms;
        let p = match flags::parse(argv) {
            Ok(p) => p,
            Err(r) => return fail(q, r.code, r.msg),
        };
        let shown = format!("{} {}", p.cmd, p.pos.join(" "));
        let shown = shown.trim().to_string();
        match p.cmd.as_str() {
            "pvecm create" => self.pvecm_create(i, &p, &shown),
            "pvecm add" => self.pvecm_add(i, &p, &shown, stdin),
            "pvecm status" => fail(q, 2, "sim: use pvesh get /cluster/status"),
            "pveceph install" => self.pveceph_install(i, &p, stdin),
            "pveceph init" => self.pveceph_init(i, &p),
            "pveceph mon create" => self.mon_create(i, &shown),
            "pveceph mgr create" => self.mgr_create(i, &shown),
            "pveceph osd create" => self.osd_create(i, &p, &shown),
            "pveceph mds create" => self.mds_create(i, &p, &shown),
            "pveceph pool create" => self.pool_create(i, &p, &shown),
            "pveceph fs create" => self.fs_create(i, &p, &shown),
            "pvesh get" => self.pvesh_get(i, &p.pos[0]),
            "pvesh set /cluster/options" => self.set_options(i, &p),
            "pvesh create /storage" => self.create_storage(i, &p),
            "pvesh create /cluster/notifications/endpoints/smtp" => self.create_smtp(i, &p),
            "pvesh create /cluster/notifications/matchers" => self.create_matcher(i, &p, None),
            "pvesh set /cluster/notifications/matchers/*" => {
                let name = p.pos[0].rsplit('/').next().unwrap_or_default().to_string();
                self.create_matcher(i, &p, Some(name))
            }
            "pvesh create /cluster/notifications/targets/*/test" => {
                let t = p.pos[0].split('/').nth(4).unwrap_or_default().to_string();
                self.test_target(i, &t)
            }
            "ha-manager groupadd" => self.ha_groupadd(i, &p),
            "ha-manager rules add" => self.ha_rules_add(i, &p),
            "pveum realm add" => self.realm_add(i, &p),
            "ceph -s"
            | "ceph mon dump"
            | "ceph mgr dump"
            | "ceph osd tree"
            | "ceph mds stat"
            | "ceph osd pool ls detail"
            | "ceph fs ls" => self.ceph_query(i, &p),
            "ceph-volume lvm list" => self.volume_list(i),
            "ceph-volume lvm zap" => self.zap(i, &p),
            "lsblk" => self.lsblk(i),
            "wipefs" => self.wipefs(i, &p),
            "sendmail" => self.sendmail(i, stdin),
            other => fail(q, 255, format!("sim: {other} not simulated")),
        }
    }

    fn need_quorum(&self, i: usize) -> Option<Reply> {
        if !self.is_member(i) {
            return Some(fail(
                self.lat.query_ms,
                255,
                "sim: node is not in a cluster; cluster-wide writes before joining are not simulated",
            ));
        }
        if !self.quorate() {
            return Some(fail(
                self.lat.query_ms,
                255,
                "cluster not ready - no quorum?",
            ));
        }
        None
    }

    fn pvecm_create(&mut self, i: usize, p: &Parsed, shown: &str) -> Reply {
        let l = self.lat.pvecm_create_ms;
        let name = p.pos[0].clone();
        let me = self.nodes[i].name.clone();
        if self
            .cluster
            .as_ref()
            .is_some_and(|c| c.members.iter().any(|m| m.name == me))
        {
            return fail(
                self.lat.query_ms,
                255,
                "cluster config '/etc/pve/corosync.conf' already exists",
            );
        }
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') || name.len() > 15 {
            return fail(self.lat.query_ms, 255, format!("400 Parameter verification failed.\nclustername: value '{name}' does not match the regex pattern"));
        }
        let links = match self.parse_links(i, p) {
            Ok(l) => l,
            Err(e) => return fail(self.lat.query_ms, 255, e),
        };
        if let Some(k) = self.fail_rule(i, shown) {
            return task_error_exit0(l, &fail_text(&k));
        }
        let now = self.now;
        self.cluster = Some(PveCluster {
            name,
            links: links.keys().copied().collect(),
            members: vec![Member {
                name: self.nodes[i].name.clone(),
                nodeid: 1,
                links,
                added_at: now + l - 2_000,
                conf_at: now + l - 2_000,
                online_at: Some(now + l),
            }],
            config_version: 1,
        });
        self.pmx.authorized_keys = String::from_utf8_lossy(
            self.nodes[i]
                .files
                .get("/root/.ssh/authorized_keys")
                .map(Vec::as_slice)
                .unwrap_or_default(),
        )
        .into_owned();
        self.nodes[i].pmxcfs_down = Some((now + l - 2_000, now + l));
        // corosync-keygen runs only when no key is in place.
        self.seeded_authkey = self.nodes[i]
            .files
            .get("/etc/corosync/authkey")
            .map(|k| k == SIM_AUTHKEY.as_bytes());
        ok(
            l,
            "Writing corosync key to /etc/corosync/authkey\nWriting corosync config to /etc/pve/corosync.conf\nRestart corosync and cluster filesystem\nTASK OK\n",
        )
    }

    fn parse_links(&self, i: usize, p: &Parsed) -> Result<BTreeMap<u8, String>, String> {
        let mut links = BTreeMap::new();
        for (k, v) in &p.opts {
            if let Some(n) = k.strip_prefix("link") {
                let n: u8 = n.parse().map_err(|_| format!("bad link {k}"))?;
                let ip = v
                    .split(',')
                    .next()
                    .unwrap_or_default()
                    .trim_start_matches("address=")
                    .to_string();
                if !self.plan.nodes[i].addresses.iter().any(|a| a.ip == ip) {
                    return Err(format!(
                        "* link{n}: cannot use IP '{ip}', not found on local node!\nCheck if node may join a cluster failed!"
                    ));
                }
                links.insert(n, ip);
            }
        }
        if links.is_empty() {
            links.insert(0, self.plan.nodes[i].primary_ip.clone());
        }
        Ok(links)
    }

    fn pvecm_add(&mut self, i: usize, p: &Parsed, shown: &str, stdin: Option<&[u8]>) -> Reply {
        let l = self.lat.pvecm_add_ms;
        let q = self.lat.query_ms;
        if self.is_member(i) {
            return fail(q, 255, "* cluster config '/etc/pve/corosync.conf' already exists\n* corosync is already running, is this node already in a cluster?!\nCheck if node may join a cluster failed!");
        }
        if self.nodes[i].files.contains_key("/etc/corosync/authkey") {
            return fail(
                q,
                255,
                "* authentication key '/etc/corosync/authkey' already exists\nCheck if node may join a cluster failed!",
            );
        }
        let links = match self.parse_links(i, p) {
            Ok(l) => l,
            Err(e) => return fail(q, 255, e),
        };
        if p.opt("use_ssh") != Some("1") {
            // API mode reads the peer's root password from stdin (lae#29: exit 0 on EOF).
            if stdin.is_none_or(|s| s.is_empty()) {
                return task_error_exit0(q, "EOF while reading password");
            }
            return task_error_exit0(q, "sim: password joins are not simulated (use --use_ssh 1)");
        }
        let host = p.pos[0].clone();
        let Some((t, _net)) = self.owner_of(&host) else {
            return fail(HANG, 255, "ssh: connect to host: No route to host");
        };
        if !self.reachable(i, &host) {
            return Reply {
                latency_ms: HANG,
                out: Output::default(),
            };
        }
        // pvecm runs plain ssh/ssh-copy-id: the bootstrap key is offered only when root's
        // ssh config names it for this host; otherwise ssh-copy-id falls back to asking
        // a password, which hangs without a terminal (lae#138).
        if !self.bootstrap_authorized_on(t) || !self.ssh_offers_bootstrap(i, &host) {
            return Reply {
                latency_ms: HANG,
                out: Output::default(),
            };
        }
        let aborted = |msg: &str| {
            task_error_exit0(
                l / 5,
                &format!("An error occurred on the cluster node: {msg}\nCluster join aborted!"),
            )
        };
        if !self.is_member(t) {
            return aborted("node is not in a cluster, no join info available!");
        }
        if let Some(k) = self.fail_rule(i, shown) {
            return aborted(&fail_text(&k));
        }
        let c = self.cluster.as_ref().expect("cluster");
        let visible_members = c.members.iter().filter(|m| m.added_at <= self.now).count();
        if !self.quorate() {
            return aborted("cluster not ready - no quorum?");
        }
        if visible_members > 1 && self.lock_until > self.now {
            return aborted("cfs-lock 'file-corosync_conf' error: got lock request timeout");
        }
        for n in &c.links {
            if !links.contains_key(n) {
                return aborted(&format!(
                    "corosync: link {n} exists in cluster config but wasn't specified for new node"
                ));
            }
        }
        for n in links.keys() {
            if !c.links.contains(n) {
                return aborted(&format!(
                    "corosync: link {n} specified for new node doesn't exist in cluster config"
                ));
            }
        }
        let me = self.nodes[i].name.clone();
        let used: BTreeSet<u32> = c
            .members
            .iter()
            .filter(|m| m.name != me)
            .map(|m| m.nodeid)
            .collect();
        let nodeid = (1..).find(|n| !used.contains(n)).unwrap_or(1);
        // knet (link_mode passive) forms membership over any working link.
        let reaches = links.values().any(|ip| {
            self.owner_of(ip)
                .is_some_and(|(_, net)| self.link_up(i, &net) && self.link_up(t, &net))
        });
        let now = self.now;
        self.lock_until = now + 3_000;
        let c = self.cluster.as_mut().expect("cluster");
        c.members.retain(|m| m.name != me);
        c.members.push(Member {
            name: me.clone(),
            nodeid,
            links,
            added_at: now + 2_000,
            conf_at: now + 3_000,
            online_at: reaches.then_some(now + l - 5_000),
        });
        c.config_version += 1;
        self.pmx.authorized_keys.push_str(&format!(
            "ssh-rsa AAAAB3NzaC1yc2EsimHostKeyOf{me} root@{me}\n"
        ));
        self.nodes[i].pmxcfs_down = Some((now + 3_000, now + 5_000));
        if !reaches {
            return Reply {
                latency_ms: HANG,
                out: Output {
                    stdout: "waiting for quorum...".into(),
                    ..Output::default()
                },
            };
        }
        ok(l, format!("copy corosync auth key\nstopping pve-cluster service\nbackup old database to '/var/lib/pve-cluster/backup/config-sim.sql.gz'\nwaiting for quorum...OK\n(re)generate node files\nsuccessfully added node '{me}' to cluster.\n"))
    }

    fn pveceph_install(&mut self, i: usize, p: &Parsed, stdin: Option<&[u8]>) -> Reply {
        let l = self.lat.ceph_install_ms;
        if !stdin.is_some_and(|s| s.starts_with(b"y") || s.starts_with(b"Y")) {
            return fail(
                self.lat.query_ms * 10,
                255,
                "Do you want to continue? [Y/n] Abort.\napt failed during ceph installation (256)",
            );
        }
        let version = p.opt("version").unwrap_or("quincy").to_string();
        let now = self.now;
        let n = &mut self.nodes[i];
        n.install_window = Some((now, now + l));
        n.ceph_installed_at = Some(now + l);
        n.ceph_version = Some(version.clone());
        ok(l, format!("installed ceph {version} successfully!\n"))
    }

    fn pveceph_init(&mut self, i: usize, p: &Parsed) -> Reply {
        let l = self.lat.ceph_init_ms;
        if !self.installed(i) {
            return fail(
                l,
                255,
                "Ceph Nautilus required - please run 'pveceph install'",
            );
        }
        if let Some(r) = self.need_quorum(i) {
            return r;
        }
        if p.has("cluster-network") && !p.has("network") {
            return fail(l, 255, "400 Parameter verification failed.\ncluster-network: 'cluster-network' requires option 'network'");
        }
        if self.ceph.fsid.is_none() {
            self.ceph.fsid = Some(format!(
                "5b0c3e0e-0000-4000-8000-{:012x}",
                self.seed & 0xffff_ffff_ffff
            ));
        }
        self.nodes[i].ceph_symlink = true;
        if let Some(n) = p.opt("network") {
            self.ceph.public_network = Some(n.to_string());
            self.ceph.cluster_network = Some(p.opt("cluster-network").unwrap_or(n).to_string());
        }
        ok(l, "creating /etc/pve/priv/ceph.client.admin.keyring\n")
    }

    fn ceph_base_checks(&self, i: usize, binary: &str) -> Option<Reply> {
        let q = self.lat.query_ms;
        if !self.installed(i) {
            return Some(fail(q, 255, format!("binary not installed: {binary}")));
        }
        if !self.ceph_configured(i) {
            return Some(fail(q, 255, "pveceph configuration not initialized - missing '/etc/pve/ceph.conf', missing '/etc/pve/ceph'"));
        }
        None
    }

    fn mon_create(&mut self, i: usize, shown: &str) -> Reply {
        let l = self.lat.mon_create_ms;
        if let Some(r) = self.ceph_base_checks(i, "/usr/bin/ceph-mon") {
            return r;
        }
        let me = self.nodes[i].name.clone();
        if self.ceph.mons.iter().any(|m| m.name == me) {
            return fail(
                self.lat.query_ms,
                255,
                format!("monitor '{me}' already exists"),
            );
        }
        let public = self
            .plan
            .ceph
            .as_ref()
            .map(|c| c.public_network.clone())
            .unwrap_or_default();
        if self.node_ip_on(i, &public).is_none() {
            return fail(
                self.lat.query_ms,
                255,
                format!("No active IP found for the requested ceph public network on node '{me}'"),
            );
        }
        if !self.ceph.mons.is_empty() && self.quorum_names().is_empty() {
            return fail(
                10_000,
                255,
                "Could not connect to ceph cluster despite configured monitors",
            );
        }
        if let Some(k) = self.fail_rule(i, shown) {
            return fail(l, 255, format!("TASK ERROR: {}", fail_text(&k)));
        }
        let first = self.ceph.mons.is_empty();
        let at = self.now + l;
        self.nodes[i].ceph_symlink = true;
        self.ceph.mons.push(Daemon {
            name: me.clone(),
            at,
        });
        if first {
            self.ceph.mgrs.push(Daemon {
                name: me.clone(),
                at: at + 1_000,
            });
            self.ceph.pools.push(SimPool {
                name: ".mgr".into(),
                size: 3,
                min_size: 2,
                pg_num: 1,
                pg_autoscale_mode: "on".into(),
                application: "mgr".into(),
                at: at + 1_000,
            });
        }
        ok(
            l,
            format!("creating new monitor '{me}'\nstarting service 'ceph-mon@{me}.service'\n"),
        )
    }

    fn mgr_create(&mut self, i: usize, shown: &str) -> Reply {
        let l = self.lat.mgr_create_ms;
        if let Some(r) = self.ceph_base_checks(i, "/usr/bin/ceph-mgr") {
            return r;
        }
        let me = self.nodes[i].name.clone();
        if self.ceph.mgrs.iter().any(|m| m.name == me) {
            return fail(
                self.lat.query_ms,
                255,
                format!("ceph manager directory '/var/lib/ceph/mgr/ceph-{me}' already exists"),
            );
        }
        if self.quorum_names().is_empty() {
            return fail(
                10_000,
                255,
                "[errno 110] RADOS timed out (error connecting to the cluster)",
            );
        }
        if let Some(k) = self.fail_rule(i, shown) {
            return fail(l, 255, format!("TASK ERROR: {}", fail_text(&k)));
        }
        self.nodes[i].ceph_symlink = true;
        self.ceph.mgrs.push(Daemon {
            name: me.clone(),
            at: self.now + l,
        });
        ok(
            l,
            format!("creating manager directory '/var/lib/ceph/mgr/ceph-{me}'\n"),
        )
    }

    fn disk_mut(&mut self, i: usize, dev: &str) -> Option<&mut SimDisk> {
        self.nodes[i].disks.iter_mut().find(|d| d.path == dev)
    }

    fn osd_create(&mut self, i: usize, p: &Parsed, shown: &str) -> Reply {
        let l = self.lat.osd_create_ms;
        let q = self.lat.query_ms;
        if let Some(r) = self.ceph_base_checks(i, "/usr/bin/ceph-osd") {
            return r;
        }
        if self.quorum_names().is_empty() {
            return fail(
                10_000,
                255,
                "[errno 110] RADOS timed out (error connecting to the cluster)",
            );
        }
        let dev = p.pos[0].clone();
        let Some(d) = self.nodes[i].disks.iter().find(|d| d.path == dev) else {
            return fail(q, 255, format!("unable to get device info for '{dev}'"));
        };
        if d.boot || d.content != DiskContent::Blank {
            return fail(q, 255, format!("device '{dev}' is already in use"));
        }
        if let Some(k) = self.fail_rule(i, shown) {
            return fail(l, 255, format!("TASK ERROR: {}", fail_text(&k)));
        }
        let id = (0..)
            .find(|n| !self.ceph.osds.iter().any(|o| o.id == *n))
            .unwrap_or(0);
        let fsid = self.ceph.fsid.clone().unwrap_or_default();
        let host = self.nodes[i].name.clone();
        let before = self.nodes[i]
            .disks
            .iter()
            .find(|d| d.path == dev)
            .map(|d| d.content.clone())
            .unwrap_or(DiskContent::Blank);
        self.disk_writes.push(DiskWrite {
            at_ms: self.now,
            node: host.clone(),
            device: dev.clone(),
            op: "osd-create".into(),
            before,
        });
        if let Some(d) = self.disk_mut(i, &dev) {
            d.content = DiskContent::Osd { id, fsid };
        }
        self.ceph.osds.push(SimOsd {
            id,
            host,
            device: dev.clone(),
            at: self.now + l,
        });
        ok(l, format!("create OSD on {dev} (bluestore)\nwiping block device {dev}\n--> ceph-volume lvm create successful for: {dev}\n"))
    }

    fn mds_create(&mut self, i: usize, p: &Parsed, shown: &str) -> Reply {
        let l = self.lat.mds_create_ms;
        if let Some(r) = self.ceph_base_checks(i, "/usr/bin/ceph-mds") {
            return r;
        }
        let name = p.opt("name").unwrap_or(&self.nodes[i].name).to_string();
        if name.starts_with(|c: char| c.is_ascii_digit()) {
            return fail(
                self.lat.query_ms,
                255,
                "ID of the MDS cannot start with a number!",
            );
        }
        if self.ceph.mds.iter().any(|m| m.name == name) {
            return fail(
                self.lat.query_ms,
                255,
                format!("ceph MDS directory '/var/lib/ceph/mds/ceph-{name}' already exists"),
            );
        }
        if let Some(k) = self.fail_rule(i, shown) {
            return fail(l, 255, format!("TASK ERROR: {}", fail_text(&k)));
        }
        self.ceph.mds.push(Daemon {
            name: name.clone(),
            at: self.now + l + 2_000,
        });
        ok(l, format!("creating MDS directory '/var/lib/ceph/mds/ceph-{name}'\nstarting service 'ceph-mds@{name}.service'\n"))
    }

    fn pool_create(&mut self, i: usize, p: &Parsed, shown: &str) -> Reply {
        let l = self.lat.pool_create_ms;
        if let Some(r) = self.need_quorum(i) {
            return r;
        }
        if !self.ceph_configured(i) {
            return fail(
                self.lat.query_ms,
                255,
                "pveceph configuration not initialized",
            );
        }
        let name = p.pos[0].clone();
        if let Some(k) = self.fail_rule(i, shown) {
            return task_error_exit0(l, &fail_text(&k));
        }
        let num = |k: &str, d: u32| p.opt(k).and_then(|v| v.parse().ok()).unwrap_or(d);
        let mode = p.opt("pg_autoscale_mode").unwrap_or("warn").to_string();
        if !["on", "off", "warn"].contains(&mode.as_str()) {
            return fail(
                self.lat.query_ms,
                255,
                "400 Parameter verification failed.\npg_autoscale_mode: value is not a valid enum",
            );
        }
        let pool = SimPool {
            name: name.clone(),
            size: num("size", 3) as u8,
            min_size: num("min_size", 2) as u8,
            pg_num: num("pg_num", 128),
            pg_autoscale_mode: mode,
            application: p.opt("application").unwrap_or("rbd").to_string(),
            at: self.now + l,
        };
        match self.ceph.pools.iter_mut().find(|x| x.name == name) {
            Some(existing) => {
                // Ceph treats an existing pool as success; settings are re-applied.
                existing.size = pool.size;
                existing.min_size = pool.min_size;
                existing.pg_autoscale_mode = pool.pg_autoscale_mode.clone();
            }
            None => self.ceph.pools.push(pool),
        }
        if p.opt("add_storages") == Some("1") {
            if self.pmx.storages.iter().any(|s| s.storage == name) {
                return task_error_exit0(l, &format!("adding PVE storage for ceph pool '{name}' failed, check log and add manually! storage ID '{name}' already defined"));
            }
            self.pmx.storages.push(Storage {
                storage: name.clone(),
                kind: "rbd".into(),
                content: "images,rootdir".into(),
                pool: Some(name.clone()),
                fs_name: None,
                at: self.now + l,
            });
        }
        ok(
            l,
            format!("pool {name}: applying size = {}\nTASK OK\n", num("size", 3)),
        )
    }

    fn fs_create(&mut self, i: usize, p: &Parsed, shown: &str) -> Reply {
        let l = self.lat.fs_create_ms;
        if let Some(r) = self.need_quorum(i) {
            return r;
        }
        let name = p.opt("name").unwrap_or("cephfs").to_string();
        if let Some(k) = self.fail_rule(i, shown) {
            return task_error_exit0(l, &fail_text(&k));
        }
        if self.ceph.fs.iter().any(|f| f.name == name) {
            return task_error_exit0(l / 4, &format!("ceph fs '{name}' already exists"));
        }
        let data = format!("{name}_data");
        let meta = format!("{name}_metadata");
        if self
            .ceph
            .pools
            .iter()
            .any(|x| x.name == data || x.name == meta)
        {
            return task_error_exit0(
                l / 4,
                &format!("ceph pools '{data}' and/or '{meta}' already exist"),
            );
        }
        let standby = self
            .visible(&self.ceph.mds, |d| d.at)
            .into_iter()
            .map(|d| d.name.clone())
            .find(|n| !self.ceph.fs.iter().any(|f| &f.active == n));
        let Some(active) = standby else {
            return task_error_exit0(l / 4, "no standby Metadata Server (MDS) found!");
        };
        let pg: u32 = p.opt("pg_num").and_then(|v| v.parse().ok()).unwrap_or(128);
        let at = self.now + l;
        let size = self
            .plan
            .ceph
            .as_ref()
            .map(|c| (c.size, c.min_size))
            .unwrap_or((3, 2));
        for (n, pg) in [(data, pg), (meta, (pg / 4).max(8))] {
            self.ceph.pools.push(SimPool {
                name: n,
                size: size.0,
                min_size: size.1,
                pg_num: pg,
                pg_autoscale_mode: "on".into(),
                application: "cephfs".into(),
                at,
            });
        }
        self.ceph.fs.push(SimFs {
            name: name.clone(),
            active,
            at,
        });
        if p.opt("add-storage") == Some("1") {
            self.pmx.storages.push(Storage {
                storage: name.clone(),
                kind: "cephfs".into(),
                content: "backup,iso,vztmpl".into(),
                pool: None,
                fs_name: Some(name.clone()),
                at,
            });
        }
        ok(l, format!("creating data pool '{name}_data'...\ncreating metadata pool '{name}_metadata'...\nconfiguring new CephFS '{name}'\nSuccessfully create CephFS '{name}'\nAdding '{name}' to storage configuration...\nTASK OK\n"))
    }

    fn cluster_status_json(&self, i: usize) -> Value {
        let n = &self.plan.nodes[i];
        match (&self.cluster, self.is_member(i)) {
            (Some(c), true) => {
                let mut v = vec![json!({"type":"cluster","id":"cluster","name":c.name,
                    "nodes": c.members.iter().filter(|m| m.added_at <= self.now).count(),
                    "quorate": u8::from(self.quorate()),"version":c.config_version})];
                for m in c.members.iter().filter(|m| m.added_at <= self.now) {
                    let mi = self.idx(&m.name).unwrap_or(0);
                    v.push(
                        json!({"type":"node","id":format!("node/{}",m.name),"name":m.name,
                        "nodeid":m.nodeid,"ip":self.plan.nodes[mi].primary_ip,"level":"",
                        "local":u8::from(mi==i),"online":u8::from(self.online(m))}),
                    );
                }
                Value::Array(v)
            }
            _ => json!([{"type":"node","id":format!("node/{}",n.name),"name":n.name,"nodeid":0,
                "ip":n.primary_ip,"level":"","local":1,"online":1}]),
        }
    }

    fn pvesh_get(&mut self, i: usize, path: &str) -> Reply {
        let q = self.lat.query_ms;
        if !self.pvesh_up(i) {
            return fail(q, 255, "ipcc_send_rec[1] failed: Connection refused\nUnable to load access control list: Connection refused");
        }
        let v = match path {
            "/cluster/status" => self.cluster_status_json(i),
            "/storage" => {
                let mut v = vec![
                    json!({"storage":"local","type":"dir","content":"iso,vztmpl,backup","path":"/var/lib/vz","digest":"sim"}),
                ];
                if self.is_member(i) {
                    for s in self.visible(&self.pmx.storages, |s| s.at) {
                        let mut e = serde_json::to_value(s).expect("json");
                        e["digest"] = json!("sim");
                        v.push(e);
                    }
                }
                Value::Array(v)
            }
            "/cluster/options" => {
                let mut m = serde_json::Map::new();
                if self.is_member(i) {
                    for (k, val) in &self.pmx.options {
                        let as_obj = ["migration", "ha", "bwlimit", "crs"].contains(&k.as_str());
                        if as_obj {
                            let o: serde_json::Map<String, Value> =
                                hcikit_firstboot::observe::property_string(k, val)
                                    .into_iter()
                                    .map(|(a, b)| (a, Value::String(b)))
                                    .collect();
                            m.insert(k.clone(), Value::Object(o));
                        } else {
                            m.insert(k.clone(), json!(val));
                        }
                    }
                }
                Value::Object(m)
            }
            "/cluster/ha/groups" => Value::Array(
                self.pmx
                    .ha_groups
                    .iter()
                    .map(|(g, o)| {
                        let mut e = json!({"group": g, "type": "group", "digest": "sim"});
                        for (k, val) in o {
                            e[k] = if k == "nodes" || k == "comment" {
                                json!(val)
                            } else {
                                json!(val.parse::<u8>().unwrap_or(0))
                            };
                        }
                        e
                    })
                    .collect(),
            ),
            "/cluster/ha/rules" => {
                if self.plan.cluster.pve_major < 9 {
                    return fail(q, 255, "No 'get' handler defined for '/cluster/ha/rules'");
                }
                Value::Array(
                    self.pmx
                        .ha_rules
                        .keys()
                        .map(|r| json!({"rule": r, "type": "node-affinity"}))
                        .collect(),
                )
            }
            "/cluster/notifications/endpoints/smtp" => Value::Array(
                self.pmx
                    .smtp
                    .iter()
                    .map(|(name, fields)| {
                        let mut e =
                            json!({"name": name, "origin": "user-created", "digest": "sim"});
                        for (k, val) in fields {
                            if k == "mailto" || k == "mailto-user" {
                                let arr = e
                                    .get(k)
                                    .and_then(Value::as_array)
                                    .cloned()
                                    .unwrap_or_default();
                                let mut arr = arr;
                                arr.push(json!(val));
                                e[k] = Value::Array(arr);
                            } else if k != "name" {
                                e[k] = json!(val);
                            }
                        }
                        e
                    })
                    .collect(),
            ),
            "/cluster/notifications/matchers" => {
                let mut v = Vec::new();
                if !self.pmx.matchers.contains_key("default-matcher") {
                    v.push(json!({"name":"default-matcher","mode":"all","target":["mail-to-root"],"origin":"builtin","comment":"Route all notifications to mail-to-root"}));
                }
                for (name, t) in &self.pmx.matchers {
                    let origin = if name == "default-matcher" {
                        "modified-builtin"
                    } else {
                        "user-created"
                    };
                    v.push(json!({"name": name, "mode": "all", "target": t, "origin": origin}));
                }
                Value::Array(v)
            }
            "/access/domains" => {
                let mut v = vec![
                    json!({"realm":"pam","type":"pam","comment":"Linux PAM standard authentication"}),
                    json!({"realm":"pve","type":"pve","comment":"Proxmox VE authentication server"}),
                ];
                for (r, o) in &self.pmx.realms {
                    let ty = o
                        .iter()
                        .find(|(k, _)| k == "type")
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default();
                    v.push(json!({"realm": r, "type": ty}));
                }
                Value::Array(v)
            }
            other => return fail(q, 255, format!("sim: GET {other} not simulated")),
        };
        json_out(q, v)
    }

    fn set_options(&mut self, i: usize, p: &Parsed) -> Reply {
        let q = self.lat.write_ms;
        if let Some(r) = self.need_quorum(i) {
            return r;
        }
        for (k, v) in &p.opts {
            debug_assert!(DC_KEYS.contains(&k.as_str()));
            let bad = match k.as_str() {
                "ha" => !["freeze", "failover", "conditional", "migrate"].contains(
                    &hcikit_firstboot::observe::property_string(k, v)
                        .get("shutdown_policy")
                        .map(String::as_str)
                        .unwrap_or(""),
                ),
                "migration" => !["secure", "insecure"].contains(
                    &hcikit_firstboot::observe::property_string(k, v)
                        .get("type")
                        .map(String::as_str)
                        .unwrap_or(""),
                ),
                "bwlimit" => hcikit_firstboot::observe::property_string(k, v)
                    .values()
                    .any(|n| n.parse::<u64>().is_err()),
                _ => false,
            };
            if bad {
                return fail(
                    q,
                    255,
                    format!("400 Parameter verification failed.\n{k}: invalid format - '{v}'"),
                );
            }
        }
        for (k, v) in &p.opts {
            self.pmx.options.insert(k.clone(), v.clone());
        }
        ok(q, "")
    }

    fn create_storage(&mut self, i: usize, p: &Parsed) -> Reply {
        let q = self.lat.write_ms;
        if let Some(r) = self.need_quorum(i) {
            return r;
        }
        let id = p.opt("storage").unwrap_or_default().to_string();
        if self.pmx.storages.iter().any(|s| s.storage == id) {
            return fail(
                q,
                255,
                format!("create storage failed: storage ID '{id}' already defined"),
            );
        }
        self.pmx.storages.push(Storage {
            storage: id,
            kind: p.opt("type").unwrap_or_default().to_string(),
            content: p.opt("content").unwrap_or_default().to_string(),
            pool: p.opt("pool").map(str::to_string),
            fs_name: p.opt("fs-name").map(str::to_string),
            at: self.now + q,
        });
        ok(q, "")
    }

    fn create_smtp(&mut self, i: usize, p: &Parsed) -> Reply {
        let q = self.lat.write_ms;
        if let Some(r) = self.need_quorum(i) {
            return r;
        }
        let Some(name) = p.opt("name").map(str::to_string) else {
            return fail(q, 255, "400 Parameter verification failed.\nname: property is missing and it is not optional");
        };
        for req in ["server", "from-address"] {
            if !p.has(req) {
                return fail(q, 255, format!("400 Parameter verification failed.\n{req}: property is missing and it is not optional"));
            }
        }
        if self.pmx.smtp.contains_key(&name) {
            return fail(q, 255, format!("endpoint '{name}' already exists"));
        }
        let mut public = Vec::new();
        for (k, v) in &p.opts {
            if k == "password" {
                self.pmx.smtp_passwords.insert(name.clone(), v.clone());
            } else if k != "name" {
                public.push((k.clone(), v.clone()));
            }
        }
        self.pmx.smtp.insert(name, public);
        ok(q, "")
    }

    fn create_matcher(&mut self, i: usize, p: &Parsed, name: Option<String>) -> Reply {
        let q = self.lat.write_ms;
        if let Some(r) = self.need_quorum(i) {
            return r;
        }
        let creating = name.is_none();
        let Some(name) = name.or_else(|| p.opt("name").map(str::to_string)) else {
            return fail(q, 255, "400 Parameter verification failed.\nname: property is missing and it is not optional");
        };
        if creating && self.pmx.matchers.contains_key(&name) {
            return fail(q, 255, format!("matcher '{name}' already exists"));
        }
        let targets = p.all("target");
        for t in &targets {
            if t != "mail-to-root" && !self.pmx.smtp.contains_key(t) {
                return fail(q, 255, format!("target '{t}' does not exist"));
            }
        }
        self.pmx.matchers.insert(name, targets);
        ok(q, "")
    }

    fn test_target(&mut self, i: usize, t: &str) -> Reply {
        let q = self.lat.write_ms * 2;
        if !self.is_member(i) {
            return fail(q, 255, "sim: not in a cluster");
        }
        if t != "mail-to-root" && !self.pmx.smtp.contains_key(t) {
            return fail(q, 255, format!("Target '{t}' does not exist"));
        }
        if let Some(f) = self.pmx.smtp.get(t) {
            if f.iter().any(|(k, _)| k == "username") && !self.pmx.smtp_passwords.contains_key(t) {
                return fail(q, 255, format!("could not notify via target(s): {t}: username is set but no password was provided"));
            }
        }
        let from = self.nodes[i].name.clone();
        self.mails.push(Mail {
            at_ms: self.now + q,
            from_node: from,
            target: t.to_string(),
            subject: format!("Test notification from {t}"),
        });
        ok(q, "")
    }

    fn ha_groupadd(&mut self, i: usize, p: &Parsed) -> Reply {
        let q = self.lat.write_ms;
        if self.plan.cluster.pve_major >= 9 {
            return fail(q, 255, "ha groups have been migrated to rules");
        }
        if let Some(r) = self.need_quorum(i) {
            return r;
        }
        let g = p.pos[0].clone();
        if self.pmx.ha_groups.contains_key(&g) {
            return fail(q, 255, format!("ha group ID '{g}' already defined"));
        }
        let Some(nodes) = p.opt("nodes") else {
            return fail(q, 255, "400 Parameter verification failed.\nnodes: property is missing and it is not optional");
        };
        for n in nodes.split(',') {
            let name = n.split(':').next().unwrap_or_default();
            if self.idx(name).is_none() {
                return fail(q, 255, format!("400 Parameter verification failed.\nnodes: invalid format - value '{name}' does not look like a valid node name"));
            }
        }
        let o = p.opts.iter().cloned().collect();
        self.pmx.ha_groups.insert(g, o);
        ok(q, "")
    }

    fn ha_rules_add(&mut self, i: usize, p: &Parsed) -> Reply {
        let q = self.lat.write_ms;
        if self.plan.cluster.pve_major < 9 {
            return fail(q, 255, "unknown command 'ha-manager rules'");
        }
        if let Some(r) = self.need_quorum(i) {
            return r;
        }
        let id = p.pos[1].clone();
        if self.pmx.ha_rules.contains_key(&id) {
            return fail(q, 255, format!("rule '{id}' already defined"));
        }
        self.pmx
            .ha_rules
            .insert(id, p.opts.iter().cloned().collect());
        ok(q, "")
    }

    fn realm_add(&mut self, i: usize, p: &Parsed) -> Reply {
        let q = self.lat.write_ms;
        if let Some(r) = self.need_quorum(i) {
            return r;
        }
        let r = p.pos[0].clone();
        if self.pmx.realms.contains_key(&r) || r == "pam" || r == "pve" {
            return fail(q, 255, format!("domain '{r}' already exists"));
        }
        let opts = p
            .opts
            .iter()
            .filter(|(k, _)| k != "password" && k != "client-key")
            .cloned()
            .collect();
        self.pmx.realms.insert(r, opts);
        ok(q, "")
    }

    fn health(&self) -> (String, BTreeMap<String, String>) {
        let mut checks = BTreeMap::new();
        let mgr_up = !self.visible(&self.ceph.mgrs, |d| d.at).is_empty();
        if !mgr_up {
            checks.insert("MGR_DOWN".into(), "no active mgr".into());
        }
        let osds = self.visible(&self.ceph.osds, |o| o.at);
        let down = osds.iter().filter(|o| !self.osd_up(o)).count();
        if down > 0 {
            checks.insert("OSD_DOWN".into(), format!("{down} osds down"));
        }
        let def = self.plan.ceph.as_ref().map(|c| c.size).unwrap_or(3) as usize;
        if osds.len() < def {
            checks.insert(
                "TOO_FEW_OSDS".into(),
                format!("OSD count {} < osd_pool_default_size {def}", osds.len()),
            );
        }
        let hosts = self.hosts_with_up_osd();
        for p in self.visible(&self.ceph.pools, |p| p.at) {
            if hosts < p.min_size as usize || self.now < p.at + self.lat.pg_peering_ms {
                checks.insert(
                    "PG_AVAILABILITY".into(),
                    "Reduced data availability: pgs inactive".into(),
                );
            } else if hosts < p.size as usize {
                checks.insert(
                    "PG_DEGRADED".into(),
                    "Degraded data redundancy: pgs undersized".into(),
                );
            }
        }
        let mds_up = self.visible(&self.ceph.mds, |d| d.at);
        for f in self.visible(&self.ceph.fs, |f| f.at) {
            if !mds_up.iter().any(|d| d.name == f.active) {
                checks.insert(
                    "FS_DEGRADED".into(),
                    format!("1 filesystem is degraded ({})", f.name),
                );
            }
            if mds_up.len() < 2 {
                checks.insert(
                    "MDS_INSUFFICIENT_STANDBY".into(),
                    "insufficient standby MDS daemons available".into(),
                );
            }
        }
        let status = if checks.is_empty() {
            "HEALTH_OK"
        } else {
            "HEALTH_WARN"
        };
        (status.to_string(), checks)
    }

    fn ceph_query(&mut self, i: usize, p: &Parsed) -> Reply {
        let q = self.lat.query_ms;
        let conf = p.opt("conf").or(p.opt("c"));
        let has_conf = match conf {
            Some("/etc/pve/ceph.conf") => true,
            Some(_) => false,
            None => self.nodes[i].ceph_symlink,
        };
        if !self.ceph_configured(i) || !has_conf {
            return fail(q, 1, "Error initializing cluster client: ObjectNotFound('RADOS object not found (error calling conf_read_file)')");
        }
        let quorum = self.quorum_names();
        if quorum.is_empty() {
            let t: u64 = p
                .opt("connect-timeout")
                .and_then(|v| v.parse().ok())
                .unwrap_or(300);
            return fail(
                t * 1000,
                1,
                "[errno 110] RADOS timed out (error connecting to the cluster)",
            );
        }
        let mons: Vec<&Daemon> = self.visible(&self.ceph.mons, |d| d.at);
        let rank = |n: &str| mons.iter().position(|m| m.name == n).unwrap_or(0);
        let v = match p.cmd.as_str() {
            "ceph -s" => {
                let (status, checks) = self.health();
                let osds = self.visible(&self.ceph.osds, |o| o.at);
                let up = osds.iter().filter(|o| self.osd_up(o)).count();
                let checks: serde_json::Map<String, Value> = checks.into_iter().map(|(k, m)| {
                    (k, json!({"severity":"HEALTH_WARN","summary":{"message":m,"count":1},"muted":false}))
                }).collect();
                let mgrs = self.visible(&self.ceph.mgrs, |d| d.at);
                json!({"fsid": self.ceph.fsid, "health":{"status":status,"checks":checks,"mutes":[]},
                    "election_epoch": 2 * mons.len(), "quorum": quorum.iter().map(|n| rank(n)).collect::<Vec<_>>(),
                    "quorum_names": quorum, "quorum_age": 10,
                    "monmap":{"epoch": mons.len(),"min_mon_release_name":"reef","num_mons":mons.len()},
                    "osdmap":{"epoch": 1 + osds.len(),"num_osds":osds.len(),"num_up_osds":up,"osd_up_since":0,"num_in_osds":osds.len(),"osd_in_since":0,"num_remapped_pgs":0},
                    "pgmap":{"pgs_by_state":[],"num_pgs":0,"num_pools":self.ceph.pools.len()},
                    "fsmap":{"epoch":1,"by_rank":[],"up:standby":0},
                    "mgrmap":{"available": !mgrs.is_empty(),"num_standbys": mgrs.len().saturating_sub(1),"modules":["iostat","nfs","restful"],"services":{}},
                    "servicemap":{"epoch":1,"modified":"","services":{}}})
            }
            "ceph mon dump" => json!({"epoch": mons.len(), "fsid": self.ceph.fsid, "min_mon_release_name":"reef",
                "mons": mons.iter().enumerate().map(|(r, m)| {
                    let ip = self.idx(&m.name).and_then(|x| self.node_ip_on(x, &self.plan.ceph.as_ref().map(|c| c.public_network.clone()).unwrap_or_default())).unwrap_or_default();
                    json!({"rank": r, "name": m.name, "public_addrs":{"addrvec":[{"type":"v2","addr":format!("{ip}:3300"),"nonce":0},{"type":"v1","addr":format!("{ip}:6789"),"nonce":0}]},
                        "addr": format!("{ip}:6789/0"), "public_addr": format!("{ip}:6789/0"), "priority":0,"weight":0,"crush_location":"{}"})
                }).collect::<Vec<_>>(),
                "quorum": quorum.iter().map(|n| rank(n)).collect::<Vec<_>>()}),
            "ceph mgr dump" => {
                let mgrs = self.visible(&self.ceph.mgrs, |d| d.at);
                json!({"epoch": mgrs.len(), "active_gid": 14100, "active_name": mgrs.first().map(|m| m.name.clone()).unwrap_or_default(),
                    "available": !mgrs.is_empty(),
                    "standbys": mgrs.iter().skip(1).enumerate().map(|(k, m)| json!({"gid": 14200 + k, "name": m.name, "available_modules": []})).collect::<Vec<_>>(),
                    "modules": ["iostat","nfs","restful"]})
            }
            "ceph osd tree" => {
                let osds = self.visible(&self.ceph.osds, |o| o.at);
                let hosts: BTreeSet<String> = osds.iter().map(|o| o.host.clone()).collect();
                let host_ids: BTreeMap<String, i64> = hosts.iter().enumerate().map(|(k, h)| (h.clone(), -3 - 2 * k as i64)).collect();
                let mut nodes = vec![json!({"id":-1,"name":"default","type":"root","type_id":11,"children": host_ids.values().collect::<Vec<_>>()})];
                for (h, hid) in &host_ids {
                    let children: Vec<u32> = osds.iter().filter(|o| &o.host == h).map(|o| o.id).rev().collect();
                    nodes.push(json!({"id":hid,"name":h,"type":"host","type_id":1,"pool_weights":{},"children":children}));
                    for o in osds.iter().filter(|o| &o.host == h) {
                        nodes.push(json!({"id":o.id,"device_class":"ssd","name":format!("osd.{}",o.id),"type":"osd","type_id":0,
                            "crush_weight":0.0194,"depth":2,"pool_weights":{},"exists":1,
                            "status": if self.osd_up(o) {"up"} else {"down"},"reweight":1,"primary_affinity":1}));
                    }
                }
                json!({"nodes": nodes, "stray": []})
            }
            "ceph mds stat" => {
                let fss = self.visible(&self.ceph.fs, |f| f.at);
                let up = self.visible(&self.ceph.mds, |d| d.at);
                let standbys: Vec<Value> = up.iter().filter(|d| !fss.iter().any(|f| f.active == d.name)).enumerate()
                    .map(|(k, d)| json!({"gid": 24200 + k, "name": d.name, "rank": -1, "state": "up:standby", "join_fscid": -1})).collect();
                let filesystems: Vec<Value> = fss.iter().enumerate().map(|(k, f)| {
                    let active = up.iter().any(|d| d.name == f.active);
                    let mut info = serde_json::Map::new();
                    if active {
                        info.insert(format!("gid_{}", 24100 + k), json!({"gid": 24100 + k, "name": f.active, "rank": 0, "state": "up:active"}));
                    }
                    json!({"mdsmap": {"fs_name": f.name, "max_mds": 1, "info": info}, "id": k + 1})
                }).collect();
                json!({"fsmap": {"epoch": 1 + up.len(), "default_fscid": 1, "standbys": standbys, "filesystems": filesystems},
                    "mdsmap_first_committed": 1, "mdsmap_last_committed": 1 + up.len()})
            }
            "ceph osd pool ls detail" => Value::Array(self.visible(&self.ceph.pools, |p| p.at).iter().enumerate().map(|(k, p)| {
                let mut app = serde_json::Map::new();
                app.insert(p.application.clone(), json!({}));
                json!({"pool_id": k + 1, "pool_name": p.name, "flags": 1, "flags_names": "hashpspool", "type": 1,
                    "size": p.size, "min_size": p.min_size, "crush_rule": 0, "pg_autoscale_mode": p.pg_autoscale_mode,
                    "pg_num": p.pg_num, "pg_placement_num": p.pg_num, "application_metadata": app})
            }).collect()),
            "ceph fs ls" => Value::Array(self.visible(&self.ceph.fs, |f| f.at).iter().map(|f| json!({"name": f.name,
                "metadata_pool": format!("{}_metadata", f.name), "data_pools": [format!("{}_data", f.name)]})).collect()),
            _ => unreachable!("ceph_query called for {}", p.cmd),
        };
        json_out(q, v)
    }

    fn volume_list(&mut self, i: usize) -> Reply {
        let q = self.lat.query_ms;
        let mut m = serde_json::Map::new();
        for d in &self.nodes[i].disks {
            if let DiskContent::Osd { id, fsid } = &d.content {
                m.insert(id.to_string(), json!([{"devices":[d.path], "type":"block", "lv_name": format!("osd-block-sim{id}"),
                    "tags": {"ceph.cluster_fsid": fsid, "ceph.osd_id": id.to_string(), "ceph.type": "block"}}]));
            }
        }
        if m.is_empty() {
            return ok(q, "{}");
        }
        json_out(q, Value::Object(m))
    }

    fn zap(&mut self, i: usize, p: &Parsed) -> Reply {
        let l = self.lat.zap_ms;
        let dev = p.pos[0].clone();
        let node = self.nodes[i].name.clone();
        let now = self.now;
        let Some(d) = self.disk_mut(i, &dev) else {
            return fail(
                self.lat.query_ms,
                1,
                format!("-->  RuntimeError: could not find device {dev}"),
            );
        };
        let before = d.content.clone();
        if d.boot {
            return fail(
                self.lat.query_ms,
                1,
                format!("-->  RuntimeError: {dev} is in use (mounted)"),
            );
        }
        d.content = DiskContent::Blank;
        self.disk_writes.push(DiskWrite {
            at_ms: now,
            node,
            device: dev.clone(),
            op: "zap".into(),
            before,
        });
        ok(
            l,
            format!("--> Zapping: {dev}\n--> Zapping successful for: <Raw Device: {dev}>\n"),
        )
    }

    fn lsblk(&mut self, i: usize) -> Reply {
        let q = self.lat.disk_query_ms;
        let devs: Vec<Value> = self.nodes[i].disks.iter().map(|d| {
            let name = d.path.trim_start_matches("/dev/").to_string();
            if d.boot {
                return json!({"name":name,"path":d.path,"type":"disk","fstype":null,"mountpoint":null,"pttype":"gpt",
                    "children":[{"name":format!("{name}1"),"path":format!("{}1",d.path),"type":"part","fstype":"vfat","mountpoint":"/boot/efi","pttype":"gpt"},
                                {"name":format!("{name}2"),"path":format!("{}2",d.path),"type":"part","fstype":"ext4","mountpoint":"/","pttype":"gpt"}]});
            }
            match &d.content {
                DiskContent::Blank => json!({"name":name,"path":d.path,"type":"disk","fstype":null,"mountpoint":null,"pttype":null}),
                DiskContent::Gpt => json!({"name":name,"path":d.path,"type":"disk","fstype":null,"mountpoint":null,"pttype":"gpt",
                    "children":[{"name":format!("{name}1"),"path":format!("{}1",d.path),"type":"part","fstype":"xfs","mountpoint":null,"pttype":"gpt"}]}),
                DiskContent::Ext4 => json!({"name":name,"path":d.path,"type":"disk","fstype":"ext4","mountpoint":null,"pttype":null}),
                DiskContent::Lvm => json!({"name":name,"path":d.path,"type":"disk","fstype":"LVM2_member","mountpoint":null,"pttype":null}),
                DiskContent::Osd { id, .. } => json!({"name":name,"path":d.path,"type":"disk","fstype":"LVM2_member","mountpoint":null,"pttype":null,
                    "children":[{"name":format!("ceph--sim-osd--block--{id}"),"path":format!("/dev/mapper/ceph--sim-osd--block--{id}"),"type":"lvm","fstype":null,"mountpoint":null,"pttype":null}]}),
            }
        }).collect();
        json_out(q, json!({"blockdevices": devs}))
    }

    fn wipefs(&mut self, i: usize, p: &Parsed) -> Reply {
        let q = self.lat.disk_query_ms;
        let dev = p.pos[0].clone();
        let Some(d) = self.nodes[i].disks.iter().find(|d| d.path == dev) else {
            return fail(q, 1, format!("wipefs: error: {dev}: probing initialization failed: No such file or directory"));
        };
        let short = dev.trim_start_matches("/dev/");
        let sigs: Vec<(&str, &str)> = match (&d.content, d.boot) {
            (_, true) | (DiskContent::Gpt, _) => vec![("0x200", "gpt"), ("0x1fe", "PMBR")],
            (DiskContent::Blank, _) => vec![],
            (DiskContent::Ext4, _) => vec![("0x438", "ext4")],
            (DiskContent::Lvm | DiskContent::Osd { .. }, _) => vec![("0x218", "LVM2_member")],
        };
        if sigs.is_empty() {
            return ok(q, "");
        }
        json_out(
            q,
            json!({"signatures": sigs.iter().map(|(o, t)| json!({"device": short, "offset": o, "type": t, "uuid": null, "label": null})).collect::<Vec<_>>()}),
        )
    }

    fn sendmail(&mut self, i: usize, stdin: Option<&[u8]>) -> Reply {
        let q = self.lat.write_ms;
        let text = String::from_utf8_lossy(stdin.unwrap_or_default()).into_owned();
        let subject = text
            .lines()
            .find_map(|l| l.strip_prefix("Subject: "))
            .unwrap_or("(no subject)")
            .to_string();
        // proxmox-mail-forward: system-mail → every matcher without match rules → targets.
        let mut targets: BTreeSet<String> = BTreeSet::new();
        if self.is_member(i) {
            if !self.pmx.matchers.contains_key("default-matcher") {
                targets.insert("mail-to-root".into());
            }
            for t in self.pmx.matchers.values() {
                targets.extend(t.iter().cloned());
            }
        } else {
            targets.insert("mail-to-root".into());
        }
        let from = self.nodes[i].name.clone();
        for t in targets {
            self.mails.push(Mail {
                at_ms: self.now + q,
                from_node: from.clone(),
                target: t,
                subject: subject.clone(),
            });
        }
        ok(q, "")
    }

    /// The final state for humans and tests (no secret values).
    pub fn summary(&self) -> Value {
        let c = self.cluster.as_ref();
        json!({
            "virtual-time-s": self.now as f64 / 1000.0,
            "cluster": c.map(|c| json!({
                "name": c.name,
                "quorate": self.quorate(),
                "config-version": c.config_version,
                "links": c.links,
                "members": c.members.iter().map(|m| json!({
                    "name": m.name, "nodeid": m.nodeid, "online": self.online(m), "links": m.links,
                    "links-up": self.links_up(m),
                })).collect::<Vec<_>>(),
            })),
            "ceph": {
                "fsid": self.ceph.fsid,
                "health": if self.ceph.fsid.is_some() && !self.quorum_names().is_empty() { self.health().0 } else { "none".into() },
                "health-checks": self.health().1,
                "versions": self.nodes.iter().map(|n| (n.name.clone(), n.ceph_version.clone())).collect::<BTreeMap<_, _>>(),
                "mons": self.ceph.mons.iter().map(|d| d.name.clone()).collect::<Vec<_>>(),
                "quorum": self.quorum_names(),
                "mgrs": self.ceph.mgrs.iter().map(|d| d.name.clone()).collect::<Vec<_>>(),
                "mds": self.ceph.mds.iter().map(|d| d.name.clone()).collect::<Vec<_>>(),
                "osds": self.ceph.osds.iter().map(|o| json!({"id": o.id, "host": o.host, "device": o.device, "up": self.osd_up(o), "in": true})).collect::<Vec<_>>(),
                "pools": self.ceph.pools,
                "filesystems": self.ceph.fs,
            },
            "storages": self.pmx.storages,
            "datacenter-options": self.pmx.options,
            "ha-groups": self.pmx.ha_groups,
            "ha-rules": self.pmx.ha_rules,
            "notifications": {
                "smtp": self.pmx.smtp.iter().map(|(k, v)| (k.clone(), v.iter().map(|(a, b)| format!("{a}={b}")).collect::<Vec<_>>())).collect::<BTreeMap<_, _>>(),
                "smtp-with-password": self.pmx.smtp_passwords.keys().collect::<Vec<_>>(),
                "matchers": self.pmx.matchers,
            },
            "realms": self.pmx.realms.keys().collect::<Vec<_>>(),
            "corosync-key-from-seed": self.seeded_authkey,
            "bootstrap-key-authorized": self.pmx.authorized_keys.lines().any(|l| l.trim() == SIM_BOOTSTRAP_PUB),
            "bootstrap-private-keys-left": self.nodes.iter().filter(|n| n.files.contains_key(hcikit_firstboot::layout::BOOTSTRAP_KEY)).map(|n| n.name.clone()).collect::<Vec<_>>(),
            "mails": self.mails,
            "disk-writes": self.disk_writes,
        })
    }
}

fn fail_text(k: &FailKind) -> String {
    match k {
        FailKind::LockTimeout => {
            "cfs-lock 'file-corosync_conf' error: got lock request timeout".into()
        }
        FailKind::TaskError(m) => m.clone(),
    }
}
