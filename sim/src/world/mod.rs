//! The simulated cluster's state and the behaviour of each simulated command.
//!
//! Effects that take time are stored with the virtual time at which they become visible
//! (`at`), so a query from another node during a long command sees the intermediate
//! state (e.g. the founder inquorate while a joiner's corosync is not up yet).

use crate::flags::{self, Parsed};
use crate::Latencies;
use hcikit_firstboot::host::Output;
use hcikit_firstboot::plan::Plan;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

mod ceph;
mod disks;
mod mail;
mod pveceph;
mod pvecm;
mod pvesh;

/// Latency meaning "never returns" (the caller's timeout fires).
pub const HANG: u64 = u64::MAX / 4;

/// The SMTP password every simulated node holds (a secret: must never be shown).
pub const SIM_SMTP_PASSWORD: &str = "sim-Smtp-Pa55word-7c1e";
/// Body of the simulated bootstrap private key (a secret).
pub const SIM_BOOTSTRAP_PRIVATE: &str = "b3BlbnNzaC1rZXktdjEAAAAAsimBootstrapPrivate9f2a";
/// The seeded corosync key every simulated node holds (a secret).
pub const SIM_AUTHKEY: &str = "sim-corosync-authkey-5e1d";
/// The start of every realm secret (bind password, client key) in the simulated world.
pub const SIM_REALM_SECRET: &str = "sim-Realm-Bind-9d2f";
/// The simulated RSA host key line of a node.
/// The value of realm `realm`'s secret file (bind password or client key) in the
/// simulated world: one per realm, so a test can tell which realm got which.
pub fn sim_realm_secret(realm: &str) -> String {
    format!("{SIM_REALM_SECRET}-{realm}")
}

pub fn sim_rsa_pub(node: &str) -> String {
    format!("ssh-rsa AAAAB3NzaC1yc2EsimHostKeyOf{node} root@{node}")
}

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
    /// `pvecm create` wrote corosync.conf and then died before starting corosync.
    pub half_created: bool,
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
    /// osd_pool_default_size/min_size in ceph.conf, written by the first `pveceph init`.
    pub pool_defaults: Option<(u8, u8)>,
    /// Ceph's configuration database (`ceph config set`): `who/option` → value.
    pub config: BTreeMap<String, String>,
    /// `who/option` set after a daemon that reads it was already running.
    pub config_after_daemons: Vec<String>,
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
    /// E-mail addresses of users (`/etc/pve/user.cfg`); root@pam has none unless set.
    pub user_emails: BTreeMap<String, String>,
    /// HA-managed resources (`ha-manager add`, which needs the guest to exist).
    pub ha_resources: BTreeSet<String>,
    /// Public SMTP endpoint fields (`/etc/pve/notifications.cfg`).
    pub smtp: BTreeMap<String, Vec<(String, String)>>,
    /// `/etc/pve/priv/notifications.cfg`: target → password. Never serialised.
    #[serde(skip)]
    pub smtp_passwords: BTreeMap<String, String>,
    pub matchers: BTreeMap<String, Vec<String>>,
    /// Matchers whose severity rules can never all match one notification.
    pub dead_matchers: BTreeSet<String>,
    pub realms: BTreeMap<String, Vec<(String, String)>>,
    /// Realm → bind password (`/etc/pve/priv/realm/<realm>.pw`) or OpenID client key.
    /// Never serialised.
    #[serde(skip)]
    pub realm_secrets: BTreeMap<String, String>,
    pub authorized_keys: String,
    /// `/etc/pve/priv/known_hosts`, made by `pvecm create` (Setup.pm `ssh_merge_known_hosts`).
    pub known_hosts: String,
    /// `/etc/pve/nodes/<node>/ssh_known_hosts` with the time it appears, written at the end
    /// of a join (Setup.pm `ssh_create_node_known_hosts`).
    pub node_known_hosts: BTreeMap<String, (u64, String)>,
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
    /// The worker task fails with this message, with the exit code the tool really gives.
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

/// A synced worker task that failed, from the CLI of a command without `$upid_exit`
/// (`pvecm create/add`, `pveceph pool/fs create`): the task's output went to stdout, the
/// bare error message to stderr, `TASK ERROR:` only to the task log, and the exit code is
/// 0 (pve-common `src/PVE/RESTEnvironment.pm` `fork_worker`, `$tee_worker`).
fn task_error_exit0(latency_ms: u64, msg: &str) -> Reply {
    task_failed(latency_ms, "", msg, 0)
}

/// A synced worker task that failed: `stdout` is the task's output up to the error.
fn task_failed(latency_ms: u64, stdout: &str, msg: &str, code: i32) -> Reply {
    Reply {
        latency_ms,
        out: Output {
            code,
            stdout: stdout.to_string(),
            stderr: format!("{}\n", msg.trim_end()),
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
    /// The pve-manager version of the nodes; `None`: the schema table's.
    pub pve_manager: Option<String>,
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
                // The host keys the image ships: ed25519 and RSA, every node's pinned.
                files.insert(
                    hcikit_firstboot::layout::SSH_HOST_RSA_PUB.to_string(),
                    format!("{}\n", sim_rsa_pub(&n.name)).into_bytes(),
                );
                let known: String = plan
                    .nodes
                    .iter()
                    .map(|m| {
                        let names = format!("{},{},{}", m.name, m.fqdn, m.primary_ip);
                        format!(
                            "{names} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5simHostKeyOf{0}\n{names} {1}\n",
                            m.name,
                            sim_rsa_pub(&m.name).rsplit_once(' ').map_or("", |x| x.0)
                        )
                    })
                    .collect();
                files.insert(
                    hcikit_firstboot::layout::KNOWN_HOSTS.to_string(),
                    known.clone().into_bytes(),
                );
                files.insert(
                    hcikit_firstboot::layout::PINNED_KNOWN_HOSTS.to_string(),
                    known.into_bytes(),
                );
                for r in &plan.realms {
                    if let Some(sec) = &r.secret {
                        files.insert(
                            sec.node_path(),
                            format!("{}\n", sim_realm_secret(&r.name)).into_bytes(),
                        );
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
                let preinstalled =
                    plan.firstboot.ceph_install == hcikit_firstboot::plan::CephInstall::Preinstalled;
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
                    half_created: false,
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
            pve_manager: None,
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
            "/etc/pve/corosync.conf" if self.nodes[i].half_created => {
                Some(b"# written by a pvecm create that died\n".to_vec())
            }
            "/etc/pve/corosync.conf" => {
                self.is_member(i).then(|| self.corosync_conf().into_bytes())
            }
            "/etc/pve/priv/known_hosts" => self
                .is_member(i)
                .then(|| self.pmx.known_hosts.clone().into_bytes()),
            p if p.starts_with("/etc/pve/nodes/") && p.ends_with("/ssh_known_hosts") => {
                let node = p.split('/').nth(4).unwrap_or_default();
                self.pmx
                    .node_known_hosts
                    .get(node)
                    .filter(|(at, _)| *at <= self.now && self.is_member(i))
                    .map(|(_, text)| text.clone().into_bytes())
            }
            // `pvecm create` made it a link to the cluster-wide file on the founder.
            "/etc/ssh/ssh_known_hosts"
                if self.nodes[i]
                    .files
                    .contains_key("/etc/ssh/.sim-known-hosts-link") =>
            {
                self.is_member(i)
                    .then(|| self.pmx.known_hosts.clone().into_bytes())
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
        let translated;
        let argv = if argv.first().map(String::as_str) == Some("perl") {
            match api_script_argv(argv, stdin) {
                Ok(a) => {
                    translated = a;
                    &translated[..]
                }
                Err(mut r) => {
                    r.latency_ms = q;
                    return r;
                }
            }
        } else {
            argv
        };
        // Proxmox's tools are checked against the schemas of the source for this PVE
        // major; the other programs against their hand-written synopses.
        let parsed = crate::schema::check(argv, self.plan.cluster.pve_major)
            .unwrap_or_else(|| flags::parse(argv));
        let mut p = match parsed {
            Ok(p) => p,
            Err(r) => return fail(q, r.code, r.msg),
        };
        if p.cmd.starts_with("pvesh get ") {
            p.cmd = "pvesh get".into();
        }
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
            "pveum realm add" => {
                let r = p.pos[0].clone();
                self.realm_add(i, &r, &p)
            }
            "pvesh create /access/domains" => match p.opt("realm").map(str::to_string) {
                Some(r) => self.realm_add(i, &r, &p),
                None => fail(
                    self.lat.write_ms,
                    255,
                    "400 Parameter verification failed.\nrealm: property is missing and it is not optional",
                ),
            },
            "pveum user modify" => self.user_modify(i, &p),
            "ceph -s"
            | "ceph mon dump"
            | "ceph mgr dump"
            | "ceph osd tree"
            | "ceph mds stat"
            | "ceph osd pool ls detail"
            | "ceph fs ls"
            | "ceph config dump"
            | "ceph config set" => self.ceph_query(i, &p),
            "ceph-volume lvm list" => self.volume_list(i),
            "ceph-volume lvm zap" => self.zap(i, &p),
            "lsblk" => self.lsblk(i),
            "wipefs" => self.wipefs(i, &p),
            "sendmail" => self.sendmail(i, stdin),
            "cat" => match self.read_file(i, &p.pos[0]) {
                Some(b) => ok(q, String::from_utf8_lossy(&b)),
                None => fail(
                    q,
                    1,
                    format!("cat: {}: No such file or directory", p.pos[0]),
                ),
            },
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
                "config": self.ceph.config,
                "config-set-after-daemons": self.ceph.config_after_daemons,
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
                "matchers-that-never-match": self.pmx.dead_matchers,
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

/// The agent's API script (`perl -`, [`hcikit_firstboot::pveapi::SCRIPT`] on stdin) as
/// the equivalent `pvesh` argv, the secret parameters from stdin appended as options, so
/// the schema check and the handlers see what the script's `$handler->handle` gets. Any
/// other Perl program is not simulated. The script's own refusals, in its words: a verb
/// other than create/set, a parameter both on argv and on stdin.
fn api_script_argv(argv: &[String], stdin: Option<&[u8]>) -> Result<Vec<String>, Reply> {
    use hcikit_firstboot::pveapi;
    let script = stdin.and_then(pveapi::split_stdin);
    let (Some("-"), Some((program, secrets))) = (argv.get(1).map(String::as_str), script) else {
        return Err(fail(0, 255, "sim: this perl program is not simulated"));
    };
    if program != pveapi::SCRIPT {
        return Err(fail(0, 255, "sim: this perl program is not simulated"));
    }
    let verb = argv.get(2).map(String::as_str).unwrap_or_default();
    if verb != "create" && verb != "set" {
        return Err(fail(0, 255, format!("ERROR: unknown command '{verb}'")));
    }
    let mut out = vec!["pvesh".to_string()];
    out.extend(argv[2..].iter().cloned());
    for (k, v) in secrets {
        let flag = format!("--{k}");
        if argv[3..]
            .iter()
            .any(|a| *a == flag || *a == format!("-{k}"))
        {
            return Err(fail(
                0,
                255,
                format!("parameter '{k}' given on the command line and on stdin"),
            ));
        }
        let serde_json::Value::String(v) = v else {
            return Err(fail(
                0,
                255,
                format!("sim: secret parameter {k} is not a string"),
            ));
        };
        out.push(flag);
        out.push(v);
    }
    Ok(out)
}
