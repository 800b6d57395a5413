//! The resolved cluster Plan: the contract between the builder and the first-boot agent.
//!
//! The builder (`hcikit`) turns a user's `cluster.toml` into this explicit form, with every
//! default decided; the first-boot agent reads it from the ESP and never re-derives anything.
//! The consumer owns the contract, so the types live here and the builder depends on them.
//!
//! The Plan holds **no secret values**. Secrets are named by [`SecretRef`]; their values
//! travel separately (the node's `secrets.tar` on the ESP, installed under
//! [`crate::layout::SECRETS_DIR`] with mode 0600 and then removed from the ESP).
//!
//! JSON field names are kebab-case, like the spec. Lists keep spec order; maps are
//! `BTreeMap` so serialisation is deterministic.

use crate::error::BadInput;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Bumped whenever a field changes meaning; the agent refuses a Plan it does not understand.
pub const PLAN_FORMAT: u32 = 2;

/// Re-exported for the builder, which names them through the Plan's module.
pub use crate::layout::{DESIRED_DIR, SECRETS_DIR};

/// Plan values with a fixed set of spellings: serialised as the strings the spec and the
/// Plan JSON use, with `as_str`, `Display` and `parse` (for the builder's resolver).
macro_rules! plan_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vm])* #[serde(rename = $s)] $v),+
        }
        impl $name {
            /// Every value, in documentation order.
            pub const ALL: &'static [$name] = &[$($name::$v),+];
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$v => $s),+
                }
            }
            /// The value spelled `s`, if it is one.
            pub fn parse(s: &str) -> Option<$name> {
                $name::ALL.iter().copied().find(|v| v.as_str() == s)
            }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

plan_enum! {
    /// Where the image's root filesystem comes from.
    BaseKind {
        /// Debian generated with mmdebstrap, Proxmox VE installed at first boot.
        Debian = "debian",
        /// Debian plus the Proxmox VE packages, generated with mmdebstrap.
        Proxmox = "proxmox",
        /// A rootfs archive given by path (`Image::base_file`).
        File = "file",
    }
}

plan_enum! {
    /// How the Ceph packages get onto a node.
    CephInstall {
        /// In the base image already; the agent fails if they are missing.
        Preinstalled = "preinstalled",
        /// `pveceph install` at first boot with explicit version and repository (needs internet).
        Pveceph = "pveceph",
    }
}

plan_enum! {
    /// How HA placement is written: PVE 8 groups or PVE 9 node-affinity rules.
    #[derive(Default)]
    HaMode {
        /// `ha/groups.cfg` (`ha-manager groupadd`), PVE 8; the default (the older form).
        #[default]
        Groups = "groups",
        /// `ha/rules.cfg` (`ha-manager rules add node-affinity`), PVE 9.
        Rules = "rules",
    }
}

plan_enum! {
    /// Linux bonding mode as ifupdown2 spells it (`bond-mode`).
    BondMode {
        BalanceRr = "balance-rr",
        ActiveBackup = "active-backup",
        BalanceXor = "balance-xor",
        Broadcast = "broadcast",
        /// LACP.
        Lacp = "802.3ad",
        BalanceTlb = "balance-tlb",
        BalanceAlb = "balance-alb",
    }
}

plan_enum! {
    /// What the USB installer does once a node is installed.
    #[derive(Default)]
    AfterInstall {
        /// Reboot into the installed system (its UEFI entry is `BootNext`).
        #[default]
        Reboot = "reboot",
        /// Power off, so the stick can be pulled and moved to the next machine.
        Poweroff = "poweroff",
    }
}

impl BondMode {
    /// Modes that spread flows by a transmit hash (`bond-xmit-hash-policy` applies).
    pub fn hashes(self) -> bool {
        matches!(
            self,
            BondMode::Lacp | BondMode::BalanceXor | BondMode::BalanceTlb | BondMode::BalanceAlb
        )
    }
}

/// The whole resolved cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Plan {
    /// [`PLAN_FORMAT`] of the builder that wrote it.
    pub format: u32,
    pub cluster: Cluster,
    /// Networks in spec order.
    pub networks: Vec<Network>,
    /// Nodes in spec order; `nodes[0]` is the founder.
    pub nodes: Vec<Node>,
    pub corosync: Corosync,
    /// Absent when the spec has no `[ceph]` section.
    pub ceph: Option<Ceph>,
    pub datacenter: Datacenter,
    pub ha: Ha,
    pub notifications: Notifications,
    pub realms: Vec<Realm>,
    pub firstboot: Firstboot,
    pub image: Image,
    /// The first-boot steps node by node (`steps::planned`), for humans (`hcikit plan`);
    /// the agent decides its next step from observed state, not from this list.
    pub steps: Vec<PlannedStep>,
    /// Validation warnings: things that work but are unwise.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Cluster {
    /// Corosync/Proxmox cluster name (pve-node format, at most 15 characters).
    pub name: String,
    /// DNS domain; node FQDN is `<node>.<domain>`.
    pub domain: String,
    /// IANA time zone, e.g. `Europe/Berlin`.
    pub timezone: String,
    /// datacenter.cfg keyboard code, e.g. `en-us`.
    pub keyboard: String,
    /// Target Proxmox VE major version: 8 or 9.
    pub pve_major: u8,
    pub ntp_servers: Vec<String>,
    /// OpenSSH public keys allowed to log in as root on every node.
    pub admin_ssh_keys: Vec<String>,
    /// The root password crypt hash, if the spec set one.
    pub root_password: Option<SecretRef>,
    /// Name of the node that runs `pvecm create` (the first node).
    pub founder: String,
    /// The other nodes, in the order they join (one at a time).
    pub join_order: Vec<String>,
}

/// A named secret. Its value is at `SECRETS_DIR/<id>` on the node.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct SecretRef {
    /// Path-like id, e.g. `root-password-hash`, `smtp/smtp-relay/password`.
    pub id: String,
}

impl SecretRef {
    pub fn new(id: impl Into<String>) -> Self {
        SecretRef { id: id.into() }
    }
    /// Where the agent finds the value on the node.
    pub fn node_path(&self) -> String {
        format!("{SECRETS_DIR}/{}", self.id)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Network {
    /// Spec name, e.g. `mgmt`, `storage`.
    pub name: String,
    /// Network in CIDR form with host bits cleared, e.g. `10.2.21.0/24`.
    pub cidr: String,
    pub prefix_len: u8,
    pub gateway: Option<String>,
    pub dns: Vec<String>,
    /// Resolved MTU (1500 when the spec is silent).
    pub mtu: u32,
    /// Link speed in Mbit/s, when known (needed for percentage bandwidth limits).
    pub speed_mbps: Option<u64>,
    /// Corosync link number (0-7) carried by this network, if any.
    pub corosync_link: Option<u8>,
    /// The physical side: one NIC or a bond.
    pub device: NetDevice,
    /// Bridge on top of the device (e.g. `vmbr0`), which then carries the address.
    pub bridge: Option<String>,
    /// The interface that carries the node's address: the bridge if any, else the bond or NIC.
    pub address_iface: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    rename_all = "kebab-case",
    rename_all_fields = "kebab-case",
    tag = "kind",
    deny_unknown_fields
)]
pub enum NetDevice {
    /// A single NIC, e.g. `ens18`.
    Interface { name: String },
    /// A Linux bond of several NICs.
    Bond {
        name: String,
        slaves: Vec<String>,
        mode: BondMode,
        miimon: u32,
        /// e.g. `layer3+4`; only for modes that hash.
        xmit_hash_policy: Option<String>,
        /// `fast`/`slow`; only for 802.3ad.
        lacp_rate: Option<String>,
    },
}

impl NetDevice {
    /// The device name (`ens18` or `bond0`).
    pub fn name(&self) -> &str {
        match self {
            NetDevice::Interface { name } | NetDevice::Bond { name, .. } => name,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Node {
    pub name: String,
    pub fqdn: String,
    /// Corosync node id (1-based, in spec order, as pvecm assigns them when joining in order).
    pub nodeid: u32,
    /// Lower-case MAC of the identity NIC, used by fleet images to pick the node.
    pub mac: Option<String>,
    /// Disk the USB installer writes to (e.g. `/dev/nvme0n1`).
    pub install_disk: Option<String>,
    /// The USB installer may erase whatever the install disk holds. (The installer keys
    /// default when absent, so Plans written before them stay readable.)
    #[serde(default)]
    pub install_wipe: bool,
    /// One address per network, in network order.
    pub addresses: Vec<NodeAddress>,
    /// The address the host name resolves to (`/etc/hosts`): the management network's
    /// (the one with the gateway, else corosync link 0, else the first).
    pub primary_ip: String,
    /// Corosync links of this node, by link number.
    pub links: Vec<NodeLink>,
    pub roles: NodeRoles,
    /// OSD disks on this node, in spec order.
    pub osds: Vec<Osd>,
}

impl Node {
    /// This node's address on the named network.
    pub fn address_on(&self, network: &str) -> Option<&NodeAddress> {
        self.addresses.iter().find(|a| a.network == network)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct NodeAddress {
    pub network: String,
    /// Bare IP, e.g. `10.2.21.66`.
    pub ip: String,
    /// IP with prefix, e.g. `10.2.21.66/24`.
    pub ip_cidr: String,
    /// Interface that carries it (copied from the network's `address-iface`).
    pub iface: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct NodeLink {
    pub number: u8,
    pub network: String,
    pub ip: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct NodeRoles {
    pub founder: bool,
    pub mon: bool,
    pub mgr: bool,
    pub mds: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Osd {
    /// Absolute device path as named in the spec (`/dev/sdb`, `/dev/disk/by-id/...`).
    pub device: String,
    /// Whether the agent may zap this disk if it carries any signature.
    pub wipe: bool,
    /// CRUSH device class (`ssd`, `hdd`, `nvme`), if set.
    pub device_class: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Corosync {
    pub cluster_name: String,
    /// Link numbers in ascending order with the network each runs on.
    pub links: Vec<CorosyncLink>,
    /// `config_version` of the final corosync.conf: 1 after create, +1 per join.
    pub config_version: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct CorosyncLink {
    pub number: u8,
    pub network: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Ceph {
    /// Release code name, e.g. `reef`, `squid`.
    pub release: String,
    /// Major.minor of that release, e.g. `18.2`.
    pub version: String,
    /// `no-subscription`, `enterprise` or `test`.
    pub repository: String,
    /// Network names and CIDRs.
    pub public_network: String,
    pub public_cidr: String,
    pub cluster_network: String,
    pub cluster_cidr: String,
    /// Pool defaults (`osd_pool_default_size` / `_min_size`).
    pub size: u8,
    pub min_size: u8,
    /// Node names, in spec order.
    pub mons: Vec<String>,
    pub mgrs: Vec<String>,
    pub mds: Vec<String>,
    pub pools: Vec<Pool>,
    pub cephfs: Vec<CephFs>,
    /// Extra ceph.conf options: section (`global`, `osd`, …) → key → value.
    pub extra_config: BTreeMap<String, BTreeMap<String, String>>,
    /// Total number of OSDs over all nodes.
    pub osd_count: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Pool {
    pub name: String,
    pub size: u8,
    pub min_size: u8,
    /// Fixed placement-group count; `None` with autoscale `on`.
    pub pg_num: Option<u32>,
    /// `on`, `off` or `warn` (passed explicitly; the backend default is `warn`).
    pub pg_autoscale_mode: String,
    /// `rbd`, `cephfs` or `rgw`.
    pub application: String,
    /// Add as a Proxmox storage with id = pool name.
    pub add_storage: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct CephFs {
    pub name: String,
    pub pg_num: u32,
    pub add_storage: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Datacenter {
    /// `datacenter.cfg` options with fully rendered values, e.g.
    /// `migration` → `type=secure,network=10.2.22.0/24`, `bwlimit` → `migration=115200`.
    /// The same strings are passed to `pvesh set /cluster/options --<key> <value>`.
    pub options: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Ha {
    pub mode: HaMode,
    pub groups: Vec<HaGroup>,
    pub resources: Vec<HaResource>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct HaGroup {
    pub name: String,
    pub nodes: Vec<HaGroupNode>,
    pub restricted: bool,
    pub nofailback: bool,
    pub comment: Option<String>,
}

impl Ha {
    /// PVE 9 node-affinity rules (`ha/rules.cfg`) rather than PVE 8 groups.
    pub fn uses_rules(&self) -> bool {
        self.mode == HaMode::Rules
    }

    /// The SIDs of the resources placed in `group`, in plan order.
    pub fn resources_in(&self, group: &str) -> Vec<&str> {
        self.resources
            .iter()
            .filter(|r| r.group.as_deref() == Some(group))
            .map(|r| r.sid.as_str())
            .collect()
    }
}

impl HaGroup {
    /// `pve1:2,pve2`: the members as ha-manager takes and writes them.
    pub fn nodes_arg(&self) -> String {
        self.nodes
            .iter()
            .map(|n| match n.priority {
                Some(p) => format!("{}:{p}", n.node),
                None => n.node.clone(),
            })
            .collect::<Vec<_>>()
            .join(",")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct HaGroupNode {
    pub node: String,
    pub priority: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct HaResource {
    /// `vm:100` or `ct:101`.
    pub sid: String,
    pub group: Option<String>,
    pub max_restart: u32,
    pub max_relocate: u32,
    /// `started`, `stopped`, `enabled`, `disabled` or `ignored`.
    pub state: String,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Notifications {
    pub smtp: Vec<SmtpTarget>,
    pub matchers: Vec<Matcher>,
    /// Targets added to the built-in `default-matcher` (besides `mail-to-root`).
    pub default_matcher_targets: Vec<String>,
    /// Target that receives the "cluster ready" / failure mail, if any.
    pub report_target: Option<String>,
    /// Send a test mail through every SMTP target once configured.
    pub send_test: bool,
    /// root@pam's e-mail address, set before any notification step.
    #[serde(default)]
    pub root_email: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct SmtpTarget {
    pub name: String,
    pub server: String,
    /// Resolved port (25 insecure, 587 starttls, 465 tls unless set).
    pub port: u16,
    /// `insecure`, `starttls` or `tls`.
    pub mode: String,
    pub username: Option<String>,
    pub password: Option<SecretRef>,
    pub from_address: String,
    pub mailto: Vec<String>,
    pub mailto_user: Vec<String>,
    pub author: Option<String>,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Matcher {
    pub name: String,
    pub targets: Vec<String>,
    /// `all` or `any`.
    pub mode: String,
    pub match_severity: Vec<String>,
    pub match_field: Vec<String>,
    pub invert_match: bool,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Realm {
    /// Realm id (e.g. `corp`).
    pub name: String,
    /// `ad`, `ldap` or `openid`.
    pub kind: String,
    /// Options as written in `domains.cfg` / passed to `POST /access/domains`, e.g.
    /// `server1` → `dc1.corp.example`, `base_dn` → `dc=corp,dc=example`.
    pub options: BTreeMap<String, String>,
    /// Bind password (LDAP/AD) or client key (OpenID), if any.
    pub secret: Option<SecretRef>,
    pub default: bool,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Firstboot {
    /// How long to wait for every peer on every network before giving up (seconds).
    pub peer_timeout_secs: u64,
    /// External bound on one `pvecm add` (its own quorum wait has none).
    pub join_timeout_secs: u64,
    /// How long to wait for `HEALTH_OK` at the end.
    pub health_timeout_secs: u64,
    /// First retry delay; doubles up to `max_backoff_secs`.
    pub backoff_secs: u64,
    pub max_backoff_secs: u64,
    pub ceph_install: CephInstall,
    /// Where the agent POSTs its stage (`report::Report`), `http://HOST:PORT/PATH`;
    /// `hcikit serve` listens on `/report`. Absent: no report is sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Image {
    /// Whole disk image size in bytes.
    pub disk_size: u64,
    /// ESP size in bytes.
    pub esp_size: u64,
    pub base: BaseKind,
    /// Base archive path when `base = "file"`.
    pub base_file: Option<String>,
    /// Debian suite of a generated base, e.g. `bookworm`.
    pub suite: String,
    /// Packages added to a generated base.
    pub extra_packages: Vec<String>,
    /// Extra kernel command-line arguments.
    pub kernel_cmdline: Vec<String>,
    /// systemd-boot menu timeout in seconds.
    pub boot_timeout_secs: u32,
    /// What the USB installer does once a node is installed.
    #[serde(default)]
    pub after_install: AfterInstall,
    /// Seconds the USB installer's summary waits for Enter to abort (0: unattended).
    #[serde(default = "default_install_confirm")]
    pub install_confirm_secs: u64,
}

/// `install_confirm_secs` of a Plan written before the key existed.
fn default_install_confirm() -> u64 {
    10
}

/// One step of the first boot, for display and for `plan --json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct PlannedStep {
    /// Stable step id, as the agent records it in its state file (`steps::Step::id`),
    /// e.g. `cluster-create`, `cluster-join`, `ceph-osd:/dev/sdb`; unique per node.
    pub id: String,
    /// Node that runs it.
    pub node: String,
    /// What it does, in words, e.g. `pvecm create lab --link0 10.2.21.66 --link1 10.2.22.66`.
    pub summary: String,
}

impl Plan {
    /// Reads and checks a Plan file; every problem is [`BadInput`] naming the file.
    pub fn load(path: &Path) -> Result<Plan, BadInput> {
        let bytes = std::fs::read(path)
            .map_err(|e| BadInput(format!("cannot read the plan {}: {e}", path.display())))?;
        let plan: Plan = serde_json::from_slice(&bytes).map_err(|e| {
            BadInput(format!(
                "{} is not a valid hcikit plan: {e} (write it with `hcikit build` or `hcikit plan --json`)",
                path.display()
            ))
        })?;
        if plan.format != PLAN_FORMAT {
            return Err(BadInput(format!(
                "{} has plan format {}, this agent understands {PLAN_FORMAT}: build the image with the matching hcikit",
                path.display(),
                plan.format
            )));
        }
        Ok(plan)
    }

    /// The node named `name`, or [`BadInput`] listing the plan's nodes.
    pub fn expect_node(&self, name: &str) -> Result<&Node, BadInput> {
        self.node(name).ok_or_else(|| {
            let names: Vec<&str> = self.nodes.iter().map(|n| n.name.as_str()).collect();
            BadInput(format!(
                "node {name} is not in the plan (its nodes: {})",
                names.join(", ")
            ))
        })
    }

    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }
    pub fn network(&self, name: &str) -> Option<&Network> {
        self.networks.iter().find(|n| n.name == name)
    }
    pub fn founder(&self) -> &Node {
        &self.nodes[0]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The JSON spelling of every enum value is its `as_str`, and `parse` reads it back.
    #[test]
    fn enum_spellings_agree() {
        fn check<T: Serialize + for<'de> Deserialize<'de> + PartialEq + std::fmt::Debug + Copy>(
            all: &[T],
            as_str: fn(T) -> &'static str,
            parse: fn(&str) -> Option<T>,
        ) {
            for v in all {
                let json = serde_json::to_string(v).unwrap();
                assert_eq!(json, format!("\"{}\"", as_str(*v)));
                assert_eq!(serde_json::from_str::<T>(&json).unwrap(), *v);
                assert_eq!(parse(as_str(*v)), Some(*v));
            }
            assert_eq!(parse("no-such-value"), None);
        }
        check(BaseKind::ALL, BaseKind::as_str, BaseKind::parse);
        check(CephInstall::ALL, CephInstall::as_str, CephInstall::parse);
        check(HaMode::ALL, HaMode::as_str, HaMode::parse);
        check(BondMode::ALL, BondMode::as_str, BondMode::parse);
        check(AfterInstall::ALL, AfterInstall::as_str, AfterInstall::parse);
        assert_eq!(
            serde_json::to_string(&BondMode::Lacp).unwrap(),
            "\"802.3ad\""
        );
    }
}
