//! Validation: every check on a raw [`Spec`], collecting **all** diagnostics at once.
//!
//! Each finding names the dotted key the user wrote and says what would be valid. Errors
//! stop the build; warnings are carried into the Plan. The small parsers at the bottom
//! (speeds, sizes, durations, bandwidth percentages, names) are shared with
//! [`crate::spec::resolve`], so a value is read the same way by both.

use crate::spec::raw::*;
use crate::spec::secrets::SecretValues;
use crate::spec::Diagnostic;
use ipnet::IpNet;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::Path;

/// datacenter.cfg `keyboard` codes (PVE 8, `PVE::DataCenterConfig`).
pub const KEYBOARDS: &[&str] = &[
    "da", "de", "de-ch", "en-gb", "en-us", "es", "fi", "fr", "fr-be", "fr-ca", "fr-ch", "hu", "is",
    "it", "ja", "lt", "mk", "nl", "no", "pl", "pt", "pt-br", "sl", "sv", "tr",
];
/// Linux bonding modes as ifupdown2 spells them.
pub const BOND_MODES: &[&str] = &[
    "balance-rr",
    "active-backup",
    "balance-xor",
    "broadcast",
    "802.3ad",
    "balance-tlb",
    "balance-alb",
];
pub const XMIT_HASH_POLICIES: &[&str] = &["layer2", "layer2+3", "layer3+4", "encap2+3", "encap3+4"];
pub const CEPH_REPOSITORIES: &[&str] = &["no-subscription", "enterprise", "test"];
pub const SHUTDOWN_POLICIES: &[&str] = &["freeze", "failover", "conditional", "migrate"];
pub const BWLIMIT_KEYS: &[&str] = &["clone", "default", "migration", "move", "restore"];
pub const HA_STATES: &[&str] = &["started", "stopped", "enabled", "disabled", "ignored"];
pub const SMTP_MODES: &[&str] = &["insecure", "starttls", "tls"];
pub const SEVERITIES: &[&str] = &["info", "notice", "warning", "error", "unknown"];
/// The notification target that exists on every PVE node.
pub const BUILTIN_TARGET: &str = "mail-to-root";
/// Storage ids a fresh PVE install already has.
pub const RESERVED_STORAGE_IDS: &[&str] = &["local", "local-lvm", "local-zfs"];
/// ceph.conf options hcikit and pveceph write themselves.
pub const MANAGED_CEPH_OPTIONS: &[&str] = &[
    "fsid",
    "mon_host",
    "public_network",
    "cluster_network",
    "osd_pool_default_size",
    "osd_pool_default_min_size",
    "keyring",
];
/// Valid largest placement-group count for one pool (pveceph's `pg_num` maximum).
pub const MAX_PG_NUM: i64 = 32768;
pub const MIN_MTU: u32 = 576;
pub const MAX_MTU: u32 = 9216;

/// Ceph releases: code name, version, PVE majors that ship it.
pub const CEPH_RELEASES: &[(&str, &str, &[u32])] = &[
    ("quincy", "17.2", &[8]),
    ("reef", "18.2", &[8]),
    ("squid", "19.2", &[8, 9]),
    ("tentacle", "20.2", &[9]),
];

/// The Ceph release used when the spec names none.
pub fn default_ceph_release(pve_major: u32) -> &'static str {
    if pve_major >= 9 {
        "tentacle"
    } else {
        "squid"
    }
}

/// PVE major when the spec is silent.
pub const DEFAULT_PVE_MAJOR: u32 = 8;

/// Runs every check. Errors and warnings, in spec order.
pub fn validate(spec: &Spec) -> Vec<Diagnostic> {
    let mut v = Checker::default();
    v.cluster(spec);
    let nets = v.networks(spec);
    v.nodes(spec, &nets);
    v.ceph(spec, &nets);
    v.datacenter(spec, &nets);
    v.ha(spec);
    v.notifications(spec);
    v.realms(spec);
    v.image(spec);
    v.firstboot(spec);
    v.diags
}

/// What the node and datacenter checks need to know about a network.
struct NetInfo {
    net: Option<IpNet>,
    gateway: Option<IpAddr>,
    speed_mbps: Option<u64>,
    corosync_link: Option<u8>,
}

#[derive(Default)]
struct Checker {
    diags: Vec<Diagnostic>,
}

impl Checker {
    fn err(&mut self, key: impl Into<String>, msg: impl Into<String>) {
        self.diags.push(Diagnostic::error(key, msg));
    }
    fn warn(&mut self, key: impl Into<String>, msg: impl Into<String>) {
        self.diags.push(Diagnostic::warning(key, msg));
    }
    fn one_of(&mut self, key: &str, value: &str, valid: &[&str]) -> bool {
        if valid.contains(&value) {
            return true;
        }
        self.err(
            key,
            format!("{value:?} is not valid; use one of {}", valid.join(", ")),
        );
        false
    }

    fn cluster(&mut self, spec: &Spec) {
        let c = &spec.cluster;
        if let Err(m) = check_pve_node_name(&c.name, 15) {
            self.err("cluster.name", m);
        }
        if !is_dns_name(&c.domain) {
            self.err(
                "cluster.domain",
                format!(
                    "{:?} is not a valid DNS domain; use labels of letters, digits and '-' separated by dots, e.g. lab.example.com",
                    c.domain
                ),
            );
        }
        if let Some(tz) = &c.timezone {
            if !is_timezone(tz) {
                self.err(
                    "cluster.timezone",
                    format!("{tz:?} is not an IANA time zone name like Europe/Berlin or UTC"),
                );
            }
        }
        if let Some(kb) = &c.keyboard {
            self.one_of("cluster.keyboard", kb, KEYBOARDS);
        }
        match (&c.root_password_hash, &c.root_password_file) {
            (Some(_), Some(_)) => self.err(
                "cluster.root-password-file",
                "set either root-password-hash or root-password-file, not both",
            ),
            (Some(h), None) => {
                if let Err(m) = check_crypt_hash(h) {
                    self.err("cluster.root-password-hash", m);
                }
            }
            (None, None) if c.admin_ssh_keys.is_empty() => self.warn(
                "cluster",
                "neither root-password-hash nor admin-ssh-keys is set; nobody can log in to the nodes",
            ),
            _ => {}
        }
        for (i, key) in c.admin_ssh_keys.iter().enumerate() {
            if let Err(m) = check_ssh_public_key(key) {
                self.err(format!("cluster.admin-ssh-keys[{i}]"), m);
            }
        }
        if let Some(v) = c.pve_version {
            if v != 8 && v != 9 {
                self.err(
                    "cluster.pve-version",
                    format!("{v} is not supported; use 8 (bookworm) or 9 (trixie)"),
                );
            }
        }
        for (i, s) in c.ntp_servers.iter().enumerate() {
            if s.parse::<IpAddr>().is_err() && !is_dns_name(s) {
                self.err(
                    format!("cluster.ntp-servers[{i}]"),
                    format!("{s:?} is neither an IP address nor a host name"),
                );
            }
        }
    }

    fn networks(&mut self, spec: &Spec) -> BTreeMap<String, NetInfo> {
        let mut out = BTreeMap::new();
        if spec.networks.is_empty() {
            self.err(
                "networks",
                "no network is defined; add at least [networks.mgmt] with interface and cidr",
            );
        }
        // Device names claimed so far, with the key that claimed them.
        let mut devices: BTreeMap<String, String> = BTreeMap::new();
        let mut links: BTreeMap<u8, String> = BTreeMap::new();
        let mut gateway_net: Option<String> = None;
        let mut bond_index = 0;
        for (name, n) in spec.networks.iter() {
            let k = format!("networks.{name}");
            if !is_simple_name(name) {
                self.err(
                    &k,
                    format!("{name:?} is not a valid network name; use lower-case letters, digits, '-' and '_', starting with a letter"),
                );
            }
            let mut claim = |this: &mut Self, dev: &str, key: String| {
                if let Err(m) = check_iface_name(dev) {
                    this.err(&key, m);
                } else if let Some(prev) = devices.get(dev) {
                    this.err(&key, format!("{dev} is already used by {prev}"));
                } else {
                    devices.insert(dev.to_string(), key);
                }
            };
            match (&n.interface, &n.bond) {
                (Some(_), Some(_)) => self.err(
                    format!("{k}.bond"),
                    "set either interface or bond, not both",
                ),
                (None, None) => self.err(
                    &k,
                    "needs interface = \"<nic>\" or bond = { slaves = [...], mode = \"...\" }",
                ),
                (Some(i), None) => claim(self, i, format!("{k}.interface")),
                (None, Some(b)) => {
                    let bname = b
                        .name
                        .clone()
                        .unwrap_or_else(|| format!("bond{bond_index}"));
                    bond_index += 1;
                    claim(self, &bname, format!("{k}.bond.name"));
                    if b.slaves.is_empty() {
                        self.err(
                            format!("{k}.bond.slaves"),
                            "a bond needs at least one slave NIC",
                        );
                    }
                    for (i, s) in b.slaves.iter().enumerate() {
                        claim(self, s, format!("{k}.bond.slaves[{i}]"));
                    }
                    let mode_ok = self.one_of(&format!("{k}.bond.mode"), &b.mode, BOND_MODES);
                    if let Some(x) = &b.xmit_hash_policy {
                        if self.one_of(&format!("{k}.bond.xmit-hash-policy"), x, XMIT_HASH_POLICIES)
                            && mode_ok
                            && !matches!(
                                b.mode.as_str(),
                                "802.3ad" | "balance-xor" | "balance-tlb" | "balance-alb"
                            )
                        {
                            self.err(
                                format!("{k}.bond.xmit-hash-policy"),
                                format!("only applies to modes 802.3ad, balance-xor, balance-tlb and balance-alb, not {}", b.mode),
                            );
                        }
                    }
                    if let Some(r) = &b.lacp_rate {
                        if self.one_of(&format!("{k}.bond.lacp-rate"), r, &["slow", "fast"])
                            && mode_ok
                            && b.mode != "802.3ad"
                        {
                            self.err(
                                format!("{k}.bond.lacp-rate"),
                                format!("only applies to mode 802.3ad, not {}", b.mode),
                            );
                        }
                    }
                    if b.miimon == Some(0) {
                        self.warn(
                            format!("{k}.bond.miimon"),
                            "0 disables link monitoring; the bond will not notice a dead slave (100 is usual)",
                        );
                    }
                }
            }
            if let Some(br) = &n.bridge {
                claim(self, br, format!("{k}.bridge"));
            }
            let net = match parse_network(&n.cidr) {
                Ok(net) => Some(net),
                Err(m) => {
                    self.err(format!("{k}.cidr"), m);
                    None
                }
            };
            let mut gateway = None;
            if let Some(g) = &n.gateway {
                match g.parse::<IpAddr>() {
                    Err(_) => self.err(
                        format!("{k}.gateway"),
                        format!("{g:?} is not an IP address"),
                    ),
                    Ok(ip) => {
                        if let Some(net) = net {
                            if let Err(m) = check_host_in(ip, &net, name) {
                                self.err(format!("{k}.gateway"), m);
                            }
                        }
                        gateway = Some(ip);
                    }
                }
                if let Some(prev) = &gateway_net {
                    self.err(
                        format!("{k}.gateway"),
                        format!("only one network may have the default gateway; networks.{prev} already has one"),
                    );
                } else {
                    gateway_net = Some(name.to_string());
                }
            }
            for (i, d) in n.dns.iter().enumerate() {
                if d.parse::<IpAddr>().is_err() {
                    self.err(
                        format!("{k}.dns[{i}]"),
                        format!("{d:?} is not an IP address"),
                    );
                }
            }
            let mtu = n.mtu.unwrap_or(1500);
            if !(MIN_MTU..=MAX_MTU).contains(&mtu) {
                self.err(
                    format!("{k}.mtu"),
                    format!("{mtu} is out of range; use {MIN_MTU} to {MAX_MTU} (1500 standard, 9000 jumbo frames)"),
                );
            } else if mtu > 1500 {
                self.warn(
                    format!("{k}.mtu"),
                    format!("{mtu} needs every switch port on {name} to allow it too, or large packets are dropped silently"),
                );
            }
            let speed_mbps = match &n.speed {
                None => None,
                Some(s) => match parse_speed(s) {
                    Ok(v) => Some(v),
                    Err(m) => {
                        self.err(format!("{k}.speed"), m);
                        None
                    }
                },
            };
            let mut corosync_link = None;
            if let Some(l) = n.corosync_link {
                if !(0..=7).contains(&l) {
                    self.err(
                        format!("{k}.corosync-link"),
                        format!("{l} is out of range; corosync links are numbered 0 to 7"),
                    );
                } else {
                    let l = l as u8;
                    if let Some(prev) = links.get(&l) {
                        self.err(
                            format!("{k}.corosync-link"),
                            format!("link {l} is already carried by networks.{prev}; give each network its own link number"),
                        );
                    } else {
                        links.insert(l, name.to_string());
                        corosync_link = Some(l);
                    }
                }
            }
            out.insert(
                name.to_string(),
                NetInfo {
                    net,
                    gateway,
                    speed_mbps,
                    corosync_link,
                },
            );
        }
        if !spec.networks.is_empty() && !links.contains_key(&0) {
            self.err(
                "networks",
                "no network carries corosync link 0; set corosync-link = 0 on the management network",
            );
        } else if links.len() == 1 && !spec.networks.is_empty() {
            self.warn(
                "networks",
                "only one corosync link; a single switch or NIC failure splits the cluster (add corosync-link = 1 on a second network)",
            );
        }
        out
    }

    fn nodes(&mut self, spec: &Spec, nets: &BTreeMap<String, NetInfo>) {
        if spec.nodes.is_empty() {
            self.err("nodes", "no node is defined; add [[nodes]] entries");
            return;
        }
        if spec.nodes.len() == 2 {
            self.warn(
                "nodes",
                "a two-node cluster loses quorum when one node fails; use three nodes or add a QDevice",
            );
        }
        let mut names: BTreeMap<String, usize> = BTreeMap::new();
        let mut macs: BTreeMap<String, usize> = BTreeMap::new();
        let mut addrs: BTreeMap<(String, IpAddr), usize> = BTreeMap::new();
        for (i, node) in spec.nodes.iter().enumerate() {
            let k = format!("nodes[{i}]");
            if let Err(m) = check_pve_node_name(&node.name, 63) {
                self.err(format!("{k}.name"), m);
            }
            if let Some(prev) = names.insert(node.name.to_ascii_lowercase(), i) {
                self.err(
                    format!("{k}.name"),
                    format!(
                        "{} is already the name of nodes[{prev}]; node names must be unique",
                        node.name
                    ),
                );
            }
            for (net, ip) in node.addresses.iter() {
                let ak = format!("{k}.addresses.{net}");
                let Some(info) = nets.get(net) else {
                    self.err(
                        &ak,
                        format!(
                            "there is no network {net:?}; defined networks: {}",
                            join_keys(spec.networks.keys())
                        ),
                    );
                    continue;
                };
                if ip.contains('/') {
                    self.err(
                        &ak,
                        format!("{ip} has a prefix; write the bare address, the prefix comes from networks.{net}.cidr"),
                    );
                    continue;
                }
                let Ok(addr) = ip.parse::<IpAddr>() else {
                    self.err(&ak, format!("{ip:?} is not an IP address"));
                    continue;
                };
                if let Some(netw) = info.net {
                    if let Err(m) = check_host_in(addr, &netw, net) {
                        self.err(&ak, m);
                        continue;
                    }
                }
                if info.gateway == Some(addr) {
                    self.err(&ak, format!("{addr} is the gateway of networks.{net}; give the node its own address"));
                }
                if let Some(prev) = addrs.insert((net.to_string(), addr), i) {
                    self.err(
                        &ak,
                        format!("{addr} is already the address of nodes[{prev}] on network {net}"),
                    );
                }
            }
            for net in spec.networks.keys() {
                if node.addresses.get(net).is_none() {
                    self.err(
                        format!("{k}.addresses"),
                        format!(
                            "no address on network {net}; every node needs one address per network"
                        ),
                    );
                }
            }
            if let Some(mac) = &node.mac {
                match check_mac(mac) {
                    Err(m) => self.err(format!("{k}.mac"), m),
                    Ok(norm) => {
                        if let Some(prev) = macs.insert(norm.clone(), i) {
                            self.err(
                                format!("{k}.mac"),
                                format!("{norm} is already the MAC of nodes[{prev}]"),
                            );
                        }
                    }
                }
            }
            if let Some(d) = &node.install_disk {
                if let Err(m) = check_device_path(d) {
                    self.err(format!("{k}.install-disk"), m);
                }
            }
            let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
            for (j, osd) in node.osd_disks.iter().enumerate() {
                let ok = format!("{k}.osd-disks[{j}]");
                if let Err(m) = check_device_path(&osd.device) {
                    self.err(&ok, m);
                    continue;
                }
                if let Some(prev) = seen.insert(osd.device.as_str(), j) {
                    self.err(
                        &ok,
                        format!("{} is already osd-disks[{prev}] of this node", osd.device),
                    );
                }
                if node.install_disk.as_deref() == Some(osd.device.as_str()) {
                    self.err(
                        &ok,
                        format!(
                            "{} is this node's install-disk; an OSD needs a disk of its own",
                            osd.device
                        ),
                    );
                }
                if looks_like_partition(&osd.device) {
                    self.warn(
                        &ok,
                        format!("{} looks like a partition; pveceph creates an OSD on a whole, unused disk", osd.device),
                    );
                }
                if let Some(c) = &osd.class {
                    if !is_simple_name(c) {
                        self.err(
                            format!("{ok}.class"),
                            format!("{c:?} is not a CRUSH device class; use ssd, hdd or nvme"),
                        );
                    }
                }
            }
        }
    }

    fn ceph(&mut self, spec: &Spec, nets: &BTreeMap<String, NetInfo>) {
        let Some(c) = &spec.ceph else { return };
        let pve = spec.cluster.pve_version.unwrap_or(DEFAULT_PVE_MAJOR);
        if let (Some(r), true) = (&c.release, pve == 8 || pve == 9) {
            match CEPH_RELEASES.iter().find(|(n, _, _)| n == r) {
                None => {
                    let all: Vec<&str> = CEPH_RELEASES.iter().map(|(n, _, _)| *n).collect();
                    self.err(
                        "ceph.release",
                        format!(
                            "{r:?} is not a known Ceph release; use one of {}",
                            all.join(", ")
                        ),
                    );
                }
                Some((_, _, majors)) if !majors.contains(&pve) => {
                    let ok: Vec<&str> = CEPH_RELEASES
                        .iter()
                        .filter(|(_, _, m)| m.contains(&pve))
                        .map(|(n, _, _)| *n)
                        .collect();
                    self.err(
                        "ceph.release",
                        format!(
                            "{r} is not available on Proxmox VE {pve}; use one of {}",
                            ok.join(", ")
                        ),
                    );
                }
                Some(("quincy", _, _)) => self.warn(
                    "ceph.release",
                    "quincy is end of life; prefer reef or squid",
                ),
                Some(_) => {}
            }
        }
        if let Some(r) = &c.repository {
            self.one_of("ceph.repository", r, CEPH_REPOSITORIES);
        }
        let public = match &c.public_network {
            Some(p) => {
                if !nets.contains_key(p) {
                    self.err(
                        "ceph.public-network",
                        format!(
                            "there is no network {p:?}; defined networks: {}",
                            join_keys(spec.networks.keys())
                        ),
                    );
                }
                Some(p.clone())
            }
            None if spec.networks.len() == 1 => spec.networks.keys().next().map(str::to_string),
            None => {
                self.err(
                    "ceph.public-network",
                    format!(
                        "is required when there is more than one network; name one of {}",
                        join_keys(spec.networks.keys())
                    ),
                );
                None
            }
        };
        if let Some(cn) = &c.cluster_network {
            if !nets.contains_key(cn) {
                self.err(
                    "ceph.cluster-network",
                    format!(
                        "there is no network {cn:?}; defined networks: {}",
                        join_keys(spec.networks.keys())
                    ),
                );
            }
        }
        if let Some(info) = public.as_deref().and_then(|p| nets.get(p)) {
            if info.corosync_link.is_some()
                && info.speed_mbps.is_none_or(|s| s <= 1000)
                && c.cluster_network
                    .as_deref()
                    .is_none_or(|cn| Some(cn) == public.as_deref())
            {
                let speed = info
                    .speed_mbps
                    .map(|s| format!("{s} Mbit/s"))
                    .unwrap_or_else(|| "an unknown speed".into());
                self.warn(
                    "ceph.public-network",
                    format!(
                        "{} carries both Ceph traffic and corosync link {} at {speed}; Ceph recovery can starve corosync and fence nodes (a separate 10 GbE Ceph network is recommended)",
                        public.as_deref().unwrap_or_default(),
                        info.corosync_link.unwrap_or_default()
                    ),
                );
            }
        }

        // Hosts that carry OSDs bound the replica count (CRUSH places one copy per host).
        let osd_hosts = spec
            .nodes
            .iter()
            .filter(|n| !n.osd_disks.is_empty())
            .count() as i64;
        let size = c.size.unwrap_or(3);
        let min_size = c.min_size.unwrap_or(2.min(size));
        self.check_replicas("ceph", size, min_size, osd_hosts, c.size.is_some());

        let node_names: BTreeSet<&str> = spec.nodes.iter().map(|n| n.name.as_str()).collect();
        for (role, list) in [("mons", &c.mons), ("mgrs", &c.mgrs), ("mds", &c.mds)] {
            let Some(list) = list else { continue };
            let mut seen = BTreeSet::new();
            for (i, n) in list.iter().enumerate() {
                if !node_names.contains(n.as_str()) {
                    self.err(
                        format!("ceph.{role}[{i}]"),
                        format!(
                            "{n:?} is not a node; nodes: {}",
                            join_keys(node_names.iter().copied())
                        ),
                    );
                } else if !seen.insert(n) {
                    self.err(format!("ceph.{role}[{i}]"), format!("{n} is listed twice"));
                }
            }
        }
        let n_nodes = spec.nodes.len();
        let mons = c.mons.as_ref().map_or(n_nodes, Vec::len);
        if mons == 0 {
            self.err("ceph.mons", "needs at least one monitor");
        } else if n_nodes >= 3 && mons < 3 {
            self.err("ceph.mons", format!("{mons} monitor(s) for {n_nodes} nodes; use at least 3 so the monitors keep quorum when one fails"));
        } else if mons % 2 == 0 {
            self.warn(
                "ceph.mons",
                format!(
                    "{mons} monitors survive no more failures than {} would; use an odd number",
                    mons - 1
                ),
            );
        }
        if c.mgrs.as_ref().is_some_and(Vec::is_empty) {
            self.err("ceph.mgrs", "needs at least one manager");
        } else if n_nodes >= 2 && c.mgrs.as_ref().is_some_and(|m| m.len() == 1) {
            self.warn(
                "ceph.mgrs",
                "a single manager has no standby; list at least two",
            );
        }
        // `pveceph mon create` on the first monitor also creates a manager there.
        let first_mon = c
            .mons
            .as_ref()
            .map_or(spec.nodes.first().map(|n| &n.name), |m| m.first());
        if let (Some(mgrs), Some(first)) = (&c.mgrs, first_mon) {
            if !mgrs.is_empty() && !mgrs.contains(first) {
                self.warn(
                    "ceph.mgrs",
                    format!("{first} gets a manager anyway: creating the first monitor creates one there"),
                );
            }
        }
        // MDS ids are node names and Ceph refuses ids that start with a digit; without an
        // mds list every node runs one as soon as there is a CephFS.
        match &c.mds {
            Some(list) => {
                for (i, n) in list.iter().enumerate() {
                    if n.starts_with(|ch: char| ch.is_ascii_digit()) {
                        self.err(format!("ceph.mds[{i}]"), format!("{n} starts with a digit, which Ceph refuses as an MDS id; leave this node out"));
                    }
                }
            }
            None if !c.cephfs.items.is_empty() => {
                for n in spec
                    .nodes
                    .iter()
                    .filter(|n| n.name.starts_with(|ch: char| ch.is_ascii_digit()))
                {
                    self.err("ceph.mds", format!("{} starts with a digit, which Ceph refuses as an MDS id; list the MDS nodes without it", n.name));
                }
            }
            None => {}
        }

        // Names of pools and storages, to catch collisions with CephFS pools.
        let mut pool_names: BTreeMap<String, String> = BTreeMap::new();
        let mut storage_ids: BTreeMap<String, String> = BTreeMap::new();
        for (i, p) in c.pools.iter().enumerate() {
            let k = format!("ceph.pools[{i}]");
            if let Err(m) = check_pool_name(&p.name) {
                self.err(format!("{k}.name"), m);
            } else if let Some(prev) = pool_names.insert(p.name.clone(), k.clone()) {
                self.err(
                    format!("{k}.name"),
                    format!("pool {} is already defined by {prev}", p.name),
                );
            }
            if let Some(pg) = p.pg_num {
                if let Err(m) = check_pg_num(pg) {
                    self.err(format!("{k}.pg-num"), m);
                }
            }
            if let Some(Autoscale::Text(t)) = &p.autoscale {
                self.one_of(&format!("{k}.autoscale"), t, &["on", "off", "warn"]);
            }
            let app = p.application.as_deref().unwrap_or("rbd");
            self.one_of(&format!("{k}.application"), app, &["rbd", "cephfs", "rgw"]);
            if p.add_storage {
                if app != "rbd" {
                    self.err(
                        format!("{k}.add-storage"),
                        format!("only rbd pools can be added as a storage, this one is {app}"),
                    );
                } else if let Err(m) = check_storage_id(&p.name) {
                    self.err(
                        format!("{k}.name"),
                        format!("{m} (add-storage uses the pool name as storage id)"),
                    );
                } else {
                    storage_ids.insert(p.name.clone(), format!("{k}.name"));
                }
            }
            if p.size.is_some() || p.min_size.is_some() {
                let ps = p.size.unwrap_or(size);
                let pm = p.min_size.unwrap_or(min_size.min(ps));
                self.check_replicas(&k, ps, pm, osd_hosts, p.size.is_some());
            }
        }
        let fs_key = |i| c.cephfs.key("ceph.cephfs", i);
        let mut fs_names = BTreeSet::new();
        for (i, fs) in c.cephfs.items.iter().enumerate() {
            let k = fs_key(i);
            if let Err(m) = check_storage_id(&fs.name) {
                self.err(format!("{k}.name"), m);
                continue;
            }
            if !fs_names.insert(fs.name.clone()) {
                self.err(
                    format!("{k}.name"),
                    format!("CephFS {} is defined twice", fs.name),
                );
                continue;
            }
            if let Some(pg) = fs.pg_num {
                if let Err(m) = check_pg_num(pg) {
                    self.err(format!("{k}.pg-num"), m);
                }
            }
            for suffix in ["_data", "_metadata"] {
                let pool = format!("{}{suffix}", fs.name);
                if let Some(prev) = pool_names.get(&pool) {
                    self.err(format!("{prev}.name"), format!("pool {pool} collides with the {suffix} pool that CephFS {} ({k}) creates", fs.name));
                }
            }
            if fs.add_storage {
                if let Some(prev) = storage_ids.get(&fs.name) {
                    self.err(
                        format!("{k}.name"),
                        format!("storage id {} is already taken by {prev}", fs.name),
                    );
                } else {
                    storage_ids.insert(fs.name.clone(), format!("{k}.name"));
                }
            }
        }
        for (id, key) in &storage_ids {
            if RESERVED_STORAGE_IDS.contains(&id.as_str()) {
                self.err(key, format!("storage id {id} already exists on every Proxmox VE node; pick another name"));
            }
        }
        let n_fs = c.cephfs.items.len();
        if n_fs > 0 {
            let n_mds = c.mds.as_ref().map_or(n_nodes, Vec::len);
            if n_mds < n_fs {
                self.err("ceph.mds", format!("{n_mds} metadata server(s) for {n_fs} CephFS; each file system needs its own active MDS"));
            } else if n_mds == n_fs {
                self.warn(
                    "ceph.mds",
                    "no standby metadata server; a CephFS stalls when its MDS node fails",
                );
            }
        }
        for (section, opts) in &c.config {
            let k = format!("ceph.config.{section}");
            if !is_ceph_section(section) {
                self.err(&k, format!("{section:?} is not a ceph.conf section; use global, mon, mgr, osd, mds, client or one of those with .<id>"));
                continue;
            }
            for (opt, val) in opts {
                let ok = format!("{k}.{opt}");
                let norm = opt.replace([' ', '-'], "_");
                if opt.is_empty()
                    || !opt
                        .chars()
                        .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '_' | ' ' | '-'))
                {
                    self.err(&ok, "is not a ceph.conf option name");
                } else if MANAGED_CEPH_OPTIONS.contains(&norm.as_str()) {
                    self.err(&ok, "is managed by hcikit (set it through ceph.public-network, cluster-network, size or min-size)");
                }
                if ceph_value(val).is_none() {
                    self.err(&ok, "must be a string, number or boolean");
                }
            }
        }
    }

    fn check_replicas(
        &mut self,
        k: &str,
        size: i64,
        min_size: i64,
        osd_hosts: i64,
        size_written: bool,
    ) {
        let mut ok = true;
        if !(1..=7).contains(&size) {
            self.err(
                format!("{k}.size"),
                format!("{size} is out of range; use 1 to 7 replicas (3 is usual)"),
            );
            ok = false;
        }
        if min_size < 1 || (ok && min_size > size) {
            let valid = if ok {
                format!("1 to size ({size})")
            } else {
                "1 to size".to_string()
            };
            self.err(
                format!("{k}.min-size"),
                format!("{min_size} is out of range; use {valid}"),
            );
            ok = false;
        }
        if ok && size > osd_hosts {
            let key = if size_written {
                format!("{k}.size")
            } else {
                k.to_string()
            };
            self.err(
                key,
                format!("{size} replicas need {size} hosts with OSDs, but only {osd_hosts} node(s) have osd-disks"),
            );
        }
        if ok && min_size == 1 && size > 1 {
            self.warn(format!("{k}.min-size"), "1 accepts writes with a single copy left; data loss is one failure away (2 is usual)");
        }
    }

    fn datacenter(&mut self, spec: &Spec, nets: &BTreeMap<String, NetInfo>) {
        let d = &spec.datacenter;
        if let Some(m) = &d.migration_network {
            if !nets.contains_key(m) {
                self.err(
                    "datacenter.migration-network",
                    format!(
                        "there is no network {m:?}; defined networks: {}",
                        join_keys(spec.networks.keys())
                    ),
                );
            }
        }
        if let Some(t) = &d.migration_type {
            self.one_of("datacenter.migration-type", t, &["secure", "insecure"]);
        }
        if let Some(p) = &d.ha_shutdown_policy {
            self.one_of("datacenter.ha-shutdown-policy", p, SHUTDOWN_POLICIES);
        }
        let speed = d
            .migration_network
            .as_ref()
            .and_then(|m| nets.get(m))
            .and_then(|n| n.speed_mbps);
        for (key, bw) in &d.bwlimit {
            let k = format!("datacenter.bwlimit.{key}");
            if !BWLIMIT_KEYS.contains(&key.as_str()) {
                self.err(
                    &k,
                    format!(
                        "unknown limit; valid keys here: {}",
                        BWLIMIT_KEYS.join(", ")
                    ),
                );
                continue;
            }
            match parse_bandwidth(bw) {
                Err(m) => self.err(&k, m),
                Ok(BwLimit::Percent(_)) => {
                    if d.migration_network.is_none() {
                        self.err(&k, "a percentage needs datacenter.migration-network, whose link speed it is taken of");
                    } else if speed.is_none()
                        && d.migration_network
                            .as_ref()
                            .is_some_and(|m| nets.contains_key(m))
                    {
                        self.err(
                            &k,
                            format!(
                                "a percentage needs the link speed of networks.{}; set its speed (e.g. speed = \"10G\") or give KiB/s",
                                d.migration_network.as_deref().unwrap_or_default()
                            ),
                        );
                    }
                }
                Ok(BwLimit::KibPerSec(_)) => {}
            }
        }
        if let Some(e) = &d.email_from {
            if !is_email(e) {
                self.err(
                    "datacenter.email-from",
                    format!("{e:?} is not an e-mail address like pve@example.com"),
                );
            }
        }
        if let Some(kb) = &d.keyboard {
            self.one_of("datacenter.keyboard", kb, KEYBOARDS);
        }
        if let Some(crs) = &d.crs {
            if let Some(h) = &crs.ha {
                self.one_of("datacenter.crs.ha", h, &["basic", "static"]);
            }
        }
    }

    fn ha(&mut self, spec: &Spec) {
        let nodes: BTreeSet<&str> = spec.nodes.iter().map(|n| n.name.as_str()).collect();
        let mut groups = BTreeSet::new();
        for (i, g) in spec.ha.groups.iter().enumerate() {
            let k = format!("ha.groups[{i}]");
            if !is_config_id(&g.name) {
                self.err(format!("{k}.name"), format!("{:?} is not a valid group id; use letters, digits, '-' and '_', starting with a letter", g.name));
            } else if !groups.insert(g.name.as_str()) {
                self.err(
                    format!("{k}.name"),
                    format!("group {} is defined twice", g.name),
                );
            }
            if g.nodes.is_empty() {
                self.err(format!("{k}.nodes"), "a group needs at least one node");
            }
            let mut seen = BTreeSet::new();
            for (j, member) in g.nodes.iter().enumerate() {
                let mk = format!("{k}.nodes[{j}]");
                match parse_group_member(member) {
                    Err(m) => self.err(&mk, m),
                    Ok((node, _)) => {
                        if !nodes.contains(node.as_str()) {
                            self.err(
                                &mk,
                                format!(
                                    "{node:?} is not a node; nodes: {}",
                                    join_keys(nodes.iter().copied())
                                ),
                            );
                        } else if !seen.insert(node.clone()) {
                            self.err(&mk, format!("{node} is listed twice"));
                        }
                    }
                }
            }
        }
        let mut sids = BTreeSet::new();
        for (i, r) in spec.ha.resources.iter().enumerate() {
            let k = format!("ha.resources[{i}]");
            match normalize_sid(&r.sid) {
                Err(m) => self.err(format!("{k}.sid"), m),
                Ok(sid) => {
                    if !sids.insert(sid.clone()) {
                        self.err(format!("{k}.sid"), format!("{sid} is listed twice"));
                    }
                }
            }
            if let Some(g) = &r.group {
                if !groups.contains(g.as_str()) {
                    self.err(
                        format!("{k}.group"),
                        format!("there is no HA group {g:?}; define it under [[ha.groups]]"),
                    );
                }
            }
            for (field, v) in [
                ("max-restart", r.max_restart),
                ("max-relocate", r.max_relocate),
            ] {
                if let Some(v) = v {
                    if !(0..=10).contains(&v) {
                        self.err(
                            format!("{k}.{field}"),
                            format!("{v} is out of range; use 0 to 10"),
                        );
                    }
                }
            }
            if let Some(s) = &r.state {
                self.one_of(&format!("{k}.state"), s, HA_STATES);
            }
        }
    }

    fn notifications(&mut self, spec: &Spec) {
        let n = &spec.notifications;
        let mut targets: BTreeSet<&str> = BTreeSet::new();
        targets.insert(BUILTIN_TARGET);
        for (i, s) in n.smtp.iter().enumerate() {
            let k = format!("notifications.smtp[{i}]");
            if !is_notify_name(&s.name) {
                self.err(
                    format!("{k}.name"),
                    format!(
                        "{:?} is not a valid target name; use letters, digits, '.', '-' and '_'",
                        s.name
                    ),
                );
            } else if !targets.insert(s.name.as_str()) {
                self.err(
                    format!("{k}.name"),
                    format!("target {} already exists", s.name),
                );
            }
            if s.server.parse::<IpAddr>().is_err() && !is_dns_name(&s.server) {
                self.err(
                    format!("{k}.server"),
                    format!("{:?} is neither a host name nor an IP address", s.server),
                );
            }
            let mode = s.mode.as_deref().unwrap_or("tls");
            let mode_ok = self.one_of(&format!("{k}.mode"), mode, SMTP_MODES);
            if let Some(p) = s.port {
                if !(1..=65535).contains(&p) {
                    self.err(
                        format!("{k}.port"),
                        format!("{p} is not a TCP port (1-65535)"),
                    );
                } else if mode_ok {
                    let hint = match (p, mode) {
                        (465, "starttls" | "insecure") => Some("port 465 expects implicit TLS; use mode = \"tls\""),
                        (587, "tls") => Some("port 587 usually expects STARTTLS; use mode = \"starttls\""),
                        (25, "tls") => Some("port 25 rarely speaks implicit TLS; use mode = \"starttls\" or port 465"),
                        _ => None,
                    };
                    if let Some(h) = hint {
                        self.warn(format!("{k}.port"), h);
                    }
                }
            }
            if mode == "insecure" && s.username.is_some() {
                self.warn(
                    format!("{k}.mode"),
                    "insecure sends the password in clear text; use starttls or tls",
                );
            }
            match (&s.username, &s.password_file) {
                (Some(_), None) => self.err(
                    format!("{k}.password-file"),
                    "username is set but no password-file; the relay would refuse to authenticate",
                ),
                (None, Some(_)) => self.err(
                    format!("{k}.username"),
                    "password-file is set but no username to log in with",
                ),
                _ => {}
            }
            match &s.from_address {
                None => self.err(
                    format!("{k}.from-address"),
                    "is required for an SMTP target (the sender address, e.g. pve@example.com)",
                ),
                Some(a) if !is_email(a) => self.err(
                    format!("{k}.from-address"),
                    format!("{a:?} is not an e-mail address like pve@example.com"),
                ),
                _ => {}
            }
            for (j, m) in s.mailto.iter().enumerate() {
                if !is_email(m) {
                    self.err(
                        format!("{k}.mailto[{j}]"),
                        format!("{m:?} is not an e-mail address"),
                    );
                }
            }
            for (j, u) in s.mailto_user.iter().enumerate() {
                if !is_userid(u) {
                    self.err(
                        format!("{k}.mailto-user[{j}]"),
                        format!("{u:?} is not a Proxmox user id like root@pam"),
                    );
                }
            }
            if s.mailto.is_empty() && s.mailto_user.is_empty() {
                self.err(&k, "no recipient; set mailto = [\"ops@example.com\"] or mailto-user = [\"root@pam\"]");
            }
        }
        for (i, m) in n.matchers.iter().enumerate() {
            let k = format!("notifications.matchers[{i}]");
            if !is_notify_name(&m.name) || m.name == "default-matcher" {
                self.err(format!("{k}.name"), format!("{:?} is not a valid matcher name (default-matcher is built in; use default-matcher-targets)", m.name));
            }
            if m.targets.is_empty() {
                self.err(
                    format!("{k}.targets"),
                    "a matcher needs at least one target",
                );
            }
            for (j, t) in m.targets.iter().enumerate() {
                if !targets.contains(t.as_str()) {
                    self.err(
                        format!("{k}.targets[{j}]"),
                        format!(
                            "there is no notification target {t:?}; targets: {}",
                            join_keys(targets.iter().copied())
                        ),
                    );
                }
            }
            if let Some(mode) = &m.mode {
                self.one_of(&format!("{k}.mode"), mode, &["all", "any"]);
            }
            for (j, s) in m.match_severity.iter().enumerate() {
                self.one_of(&format!("{k}.match-severity[{j}]"), s, SEVERITIES);
            }
            for (j, f) in m.match_field.iter().enumerate() {
                let ok = f
                    .split_once(':')
                    .filter(|(kind, rest)| {
                        matches!(*kind, "exact" | "regex")
                            && rest.split_once('=').is_some_and(|(a, _)| !a.is_empty())
                    })
                    .is_some();
                if !ok {
                    self.err(format!("{k}.match-field[{j}]"), format!("{f:?} is not a field rule; write exact:<field>=<value> or regex:<field>=<regex>"));
                }
            }
        }
        for (j, t) in n.default_matcher_targets.iter().enumerate() {
            if !targets.contains(t.as_str()) {
                self.err(
                    format!("notifications.default-matcher-targets[{j}]"),
                    format!(
                        "there is no notification target {t:?}; targets: {}",
                        join_keys(targets.iter().copied())
                    ),
                );
            }
        }
        if let Some(t) = &n.report_target {
            if !targets.contains(t.as_str()) {
                self.err(
                    "notifications.report-target",
                    format!(
                        "there is no notification target {t:?}; targets: {}",
                        join_keys(targets.iter().copied())
                    ),
                );
            }
        }
    }

    fn realms(&mut self, spec: &Spec) {
        let mut names = BTreeSet::new();
        let mut defaults = 0;
        for (i, r) in spec.realms.iter().enumerate() {
            let k = format!("realms[{i}]");
            if !is_realm_name(&r.name) || matches!(r.name.as_str(), "pam" | "pve") {
                self.err(format!("{k}.name"), format!("{:?} is not a usable realm id; use 2 or more letters, digits, '-' or '_' starting with a letter (pam and pve are built in)", r.name));
            } else if !names.insert(r.name.as_str()) {
                self.err(
                    format!("{k}.name"),
                    format!("realm {} is defined twice", r.name),
                );
            }
            if r.default {
                defaults += 1;
                if defaults > 1 {
                    self.err(format!("{k}.default"), "only one realm can be the default");
                }
            }
            let present = |o: &Option<String>| o.is_some();
            let (required, forbidden): (Fields, Fields) = match r.kind.as_str() {
                "ad" => (
                    vec![
                        ("server1", present(&r.server1)),
                        ("domain", present(&r.domain)),
                    ],
                    vec![
                        ("issuer-url", present(&r.issuer_url)),
                        ("client-id", present(&r.client_id)),
                        ("client-key-file", present(&r.client_key_file)),
                        ("username-claim", present(&r.username_claim)),
                    ],
                ),
                "ldap" => (
                    vec![
                        ("server1", present(&r.server1)),
                        ("base-dn", present(&r.base_dn)),
                        ("user-attr", present(&r.user_attr)),
                    ],
                    vec![
                        ("issuer-url", present(&r.issuer_url)),
                        ("client-id", present(&r.client_id)),
                        ("client-key-file", present(&r.client_key_file)),
                        ("username-claim", present(&r.username_claim)),
                    ],
                ),
                "openid" => (
                    vec![
                        ("issuer-url", present(&r.issuer_url)),
                        ("client-id", present(&r.client_id)),
                    ],
                    vec![
                        ("server1", present(&r.server1)),
                        ("server2", present(&r.server2)),
                        ("port", r.port.is_some()),
                        ("mode", present(&r.mode)),
                        ("base-dn", present(&r.base_dn)),
                        ("domain", present(&r.domain)),
                        ("user-attr", present(&r.user_attr)),
                        ("bind-dn", present(&r.bind_dn)),
                        ("bind-password-file", present(&r.bind_password_file)),
                    ],
                ),
                other => {
                    self.err(
                        format!("{k}.type"),
                        format!("{other:?} is not a realm type; use ad, ldap or openid"),
                    );
                    continue;
                }
            };
            for (field, set) in required {
                if !set {
                    self.err(
                        format!("{k}.{field}"),
                        format!("is required for an {} realm", realm_kind(&r.kind)),
                    );
                }
            }
            for (field, set) in forbidden {
                if set {
                    self.err(
                        format!("{k}.{field}"),
                        format!("does not apply to an {} realm", realm_kind(&r.kind)),
                    );
                }
            }
            if let Some(p) = r.port {
                if !(1..=65535).contains(&p) {
                    self.err(
                        format!("{k}.port"),
                        format!("{p} is not a TCP port (1-65535)"),
                    );
                }
            }
            if let Some(m) = &r.mode {
                self.one_of(&format!("{k}.mode"), m, &["ldap", "ldaps", "ldap+starttls"]);
            }
            for (field, v) in [("server1", &r.server1), ("server2", &r.server2)] {
                if let Some(s) = v {
                    if s.parse::<IpAddr>().is_err() && !is_dns_name(s) {
                        self.err(
                            format!("{k}.{field}"),
                            format!("{s:?} is neither a host name nor an IP address"),
                        );
                    }
                }
            }
            if let Some(u) = &r.issuer_url {
                if !(u.starts_with("https://") || u.starts_with("http://")) {
                    self.err(
                        format!("{k}.issuer-url"),
                        format!("{u:?} is not an http(s) URL"),
                    );
                }
            }
            if r.bind_dn.is_some() && r.bind_password_file.is_none() {
                self.err(
                    format!("{k}.bind-password-file"),
                    "bind-dn is set but no bind-password-file",
                );
            }
        }
    }

    fn image(&mut self, spec: &Spec) {
        let im = &spec.image;
        let disk = im.disk_size.as_deref().map(|s| (s, parse_size(s)));
        let esp = im.esp_size.as_deref().map(|s| (s, parse_size(s)));
        let mut disk_bytes = DEFAULT_DISK_SIZE;
        let mut esp_bytes = DEFAULT_ESP_SIZE;
        if let Some((_, r)) = &disk {
            match r {
                Err(m) => self.err("image.disk-size", m.clone()),
                Ok(v) => disk_bytes = *v,
            }
        }
        if let Some((_, r)) = &esp {
            match r {
                Err(m) => self.err("image.esp-size", m.clone()),
                Ok(v) if *v < MIN_ESP_SIZE => self.err(
                    "image.esp-size",
                    format!(
                        "{} is too small; the ESP holds a kernel and initrd, use at least 256M",
                        im.esp_size.as_deref().unwrap_or_default()
                    ),
                ),
                Ok(v) => esp_bytes = *v,
            }
        }
        if disk_bytes < esp_bytes + MIN_ROOT_SIZE {
            self.err(
                "image.disk-size",
                format!(
                    "{} leaves less than 4G for the root file system after the {} ESP",
                    human_size(disk_bytes),
                    human_size(esp_bytes)
                ),
            );
        }
        if let Some(b) = &im.base {
            if !matches!(b.as_str(), "debian" | "proxmox")
                && ![".tar", ".tar.zst", ".tar.gz", ".tar.xz"]
                    .iter()
                    .any(|e| b.ends_with(e))
            {
                self.err("image.base", format!("{b:?} is neither debian, proxmox nor a path to a rootfs .tar, .tar.zst, .tar.gz or .tar.xz"));
            }
        }
        let pve = spec.cluster.pve_version.unwrap_or(DEFAULT_PVE_MAJOR);
        if let Some(s) = &im.suite {
            let want = default_suite(pve);
            if s != want {
                self.err(
                    "image.suite",
                    format!("{s:?} does not match Proxmox VE {pve}, which is built on {want}"),
                );
            }
        }
        for (i, p) in im.extra_packages.iter().enumerate() {
            let ok = p.len() >= 2
                && p.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                && p.chars().all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '+' | '-' | '.')
                });
            if !ok {
                self.err(
                    format!("image.extra-packages[{i}]"),
                    format!("{p:?} is not a Debian package name"),
                );
            }
        }
        for (i, a) in im.kernel_cmdline.iter().enumerate() {
            if a.is_empty() || a.chars().any(char::is_whitespace) {
                self.err(
                    format!("image.kernel-cmdline[{i}]"),
                    format!(
                        "{a:?} must be one argument without spaces; list each argument separately"
                    ),
                );
            }
        }
        if let Some(t) = im.boot_timeout {
            if !(0..=600).contains(&t) {
                self.err(
                    "image.boot-timeout",
                    format!("{t} is out of range; use 0 to 600 seconds"),
                );
            }
        }
    }

    fn firstboot(&mut self, spec: &Spec) {
        let f = &spec.firstboot;
        let mut vals = BTreeMap::new();
        for (name, d) in [
            ("peer-timeout", &f.peer_timeout),
            ("join-timeout", &f.join_timeout),
            ("health-timeout", &f.health_timeout),
            ("backoff", &f.backoff),
            ("max-backoff", &f.max_backoff),
        ] {
            if let Some(d) = d {
                match parse_duration(d) {
                    Err(m) => self.err(format!("firstboot.{name}"), m),
                    Ok(v) => {
                        vals.insert(name, v);
                    }
                }
            }
        }
        let backoff = vals.get("backoff").copied().unwrap_or(DEFAULT_BACKOFF);
        let max = vals
            .get("max-backoff")
            .copied()
            .unwrap_or(DEFAULT_MAX_BACKOFF);
        if backoff > max {
            self.err(
                "firstboot.backoff",
                format!("{backoff}s is longer than max-backoff ({max}s)"),
            );
        }
        if let Some(c) = &f.ceph_install {
            self.one_of("firstboot.ceph-install", c, &["preinstalled", "pveceph"]);
        }
    }
}

/// Realm option names with whether the spec sets them.
type Fields<'a> = Vec<(&'a str, bool)>;

pub const DEFAULT_DISK_SIZE: u64 = 8 << 30;
pub const DEFAULT_ESP_SIZE: u64 = 512 << 20;
pub const MIN_ESP_SIZE: u64 = 256 << 20;
pub const MIN_ROOT_SIZE: u64 = 4 << 30;
pub const DEFAULT_BACKOFF: u64 = 5;
pub const DEFAULT_MAX_BACKOFF: u64 = 60;

pub fn default_suite(pve_major: u32) -> &'static str {
    if pve_major >= 9 {
        "trixie"
    } else {
        "bookworm"
    }
}

/// Reads the secret files the spec names (relative to `base_dir`), adding a diagnostic for
/// each unreadable or empty one, and a warning for a world-readable one.
pub fn read_secrets(spec: &Spec, base_dir: &Path, diags: &mut Vec<Diagnostic>) -> SecretValues {
    let mut out = SecretValues::new();
    if let Some(h) = &spec.cluster.root_password_hash {
        out.insert(ROOT_PASSWORD_ID, h.trim().as_bytes().to_vec());
    }
    let mut files: Vec<(String, &str, String)> = Vec::new();
    if let Some(f) = &spec.cluster.root_password_file {
        files.push((
            "cluster.root-password-file".into(),
            f,
            ROOT_PASSWORD_ID.into(),
        ));
    }
    for (i, s) in spec.notifications.smtp.iter().enumerate() {
        if let Some(f) = &s.password_file {
            files.push((
                format!("notifications.smtp[{i}].password-file"),
                f,
                smtp_secret_id(&s.name),
            ));
        }
    }
    for (i, r) in spec.realms.iter().enumerate() {
        if let Some(f) = &r.bind_password_file {
            files.push((
                format!("realms[{i}].bind-password-file"),
                f,
                realm_secret_id(&r.name),
            ));
        }
        if let Some(f) = &r.client_key_file {
            files.push((
                format!("realms[{i}].client-key-file"),
                f,
                realm_secret_id(&r.name),
            ));
        }
    }
    for (key, file, id) in files {
        let path = base_dir.join(file);
        match std::fs::read(&path) {
            Err(e) => diags.push(Diagnostic::error(
                &key,
                format!("cannot read {file}: {}", io_reason(&e)),
            )),
            Ok(bytes) => match secret_value(&bytes) {
                None => diags.push(Diagnostic::error(
                    &key,
                    format!("{file} holds no value (blank and # comment lines are skipped)"),
                )),
                Some(v) => {
                    if id == ROOT_PASSWORD_ID {
                        if let Err(m) = check_crypt_hash(&String::from_utf8_lossy(&v)) {
                            diags.push(Diagnostic::error(&key, format!("{file}: {m}")));
                        }
                    }
                    if world_readable(&path) {
                        diags.push(Diagnostic::warning(
                            &key,
                            format!("{file} is readable by every user; chmod 600 it"),
                        ));
                    }
                    out.insert(id, v);
                }
            },
        }
    }
    out
}

pub const ROOT_PASSWORD_ID: &str = "root-password-hash";
pub fn smtp_secret_id(name: &str) -> String {
    format!("smtp/{name}/password")
}
pub fn realm_secret_id(name: &str) -> String {
    format!("realm/{name}/secret")
}

/// The value in a secret file: its first line that is neither blank nor a `#` comment,
/// without the line ending. `None` when there is none.
pub fn secret_value(bytes: &[u8]) -> Option<Vec<u8>> {
    bytes
        .split(|b| *b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .find(|l| !l.iter().all(u8::is_ascii_whitespace) && !l.starts_with(b"#"))
        .map(<[u8]>::to_vec)
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string().to_lowercase(),
    }
}

#[cfg(unix)]
fn world_readable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o004 != 0)
}
#[cfg(not(unix))]
fn world_readable(_: &Path) -> bool {
    false
}

// ---- pure parsers and checks, shared with resolve ----

/// A network in CIDR form with the host bits cleared.
pub fn parse_network(cidr: &str) -> Result<IpNet, String> {
    let net: IpNet = cidr
        .parse()
        .map_err(|_| format!("{cidr:?} is not a network in CIDR form like 10.2.21.0/24"))?;
    if net.trunc() != net {
        return Err(format!(
            "{cidr} has host bits set; the network is {} (node addresses go under [[nodes]])",
            net.trunc()
        ));
    }
    Ok(net)
}

/// `ip` is a usable host address of `net` (inside it, not its network or broadcast address).
pub fn check_host_in(ip: IpAddr, net: &IpNet, name: &str) -> Result<(), String> {
    if !net.contains(&ip) {
        return Err(format!("{ip} is not inside network {name} ({net})"));
    }
    if let (IpNet::V4(n), IpAddr::V4(a)) = (net, ip) {
        if n.prefix_len() < 31 && (a == n.network() || a == n.broadcast()) {
            let what = if a == n.network() {
                "network"
            } else {
                "broadcast"
            };
            return Err(format!(
                "{ip} is the {what} address of network {name} ({net}), not a host address"
            ));
        }
    }
    if let (IpNet::V6(n), IpAddr::V6(a)) = (net, ip) {
        if n.prefix_len() < 127 && a == n.network() {
            return Err(format!(
                "{ip} is the subnet-router address of network {name} ({net}), not a host address"
            ));
        }
    }
    Ok(())
}

/// Link speed in Mbit/s: a number, or `"<n>M"`, `"<n>G"` (decimals allowed: `"2.5G"`).
pub fn parse_speed(s: &Speed) -> Result<u64, String> {
    let bad = |t: &str| {
        format!("{t:?} is not a link speed; write Mbit/s as a number (1000) or a string like \"1G\", \"2.5G\", \"10G\", \"100M\"")
    };
    let v = match s {
        Speed::Mbps(v) => u64::try_from(*v)
            .ok()
            .filter(|v| *v > 0)
            .ok_or_else(|| bad(&v.to_string()))?,
        Speed::Text(t) => {
            let u = t.trim().to_ascii_uppercase();
            let u = u
                .strip_suffix("BIT/S")
                .or_else(|| u.strip_suffix("BPS"))
                .unwrap_or(&u);
            let (num, mult) = if let Some(n) = u.strip_suffix('G') {
                (n, 1000)
            } else if let Some(n) = u.strip_suffix('M') {
                (n, 1)
            } else {
                (u, 1)
            };
            let milli = parse_fixed(num.trim(), 3).ok_or_else(|| bad(t))?;
            let v = milli * mult / 1000;
            if v == 0 || milli * mult % 1000 != 0 {
                return Err(bad(t));
            }
            v
        }
    };
    Ok(v)
}

/// A decimal with at most `places` fractional digits, scaled by 10^places.
fn parse_fixed(s: &str, places: u32) -> Option<u64> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || frac.len() > places as usize
        || (s.contains('.') && frac.is_empty())
    {
        return None;
    }
    let scale = 10u64.pow(places);
    let int: u64 = int.parse().ok()?;
    let frac_v: u64 = if frac.is_empty() {
        0
    } else {
        frac.parse::<u64>().ok()? * 10u64.pow(places - frac.len() as u32)
    };
    int.checked_mul(scale)?.checked_add(frac_v)
}

/// A bandwidth limit once read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BwLimit {
    KibPerSec(u64),
    /// Hundredths of a percent (`"90%"` → 9000).
    Percent(u64),
}

pub fn parse_bandwidth(b: &Bandwidth) -> Result<BwLimit, String> {
    match b {
        Bandwidth::KibPerSec(v) if *v >= 1 => Ok(BwLimit::KibPerSec(*v as u64)),
        Bandwidth::KibPerSec(v) => Err(format!(
            "{v} is not a limit; give KiB/s as a positive number or a percentage like \"90%\""
        )),
        Bandwidth::Text(t) => {
            let bad = || {
                format!("{t:?} is not a limit; give KiB/s as a number (115200) or a percentage of the link like \"90%\"")
            };
            let n = t.trim().strip_suffix('%').ok_or_else(bad)?;
            let hundredths = parse_fixed(n.trim(), 2).ok_or_else(bad)?;
            if !(100..=10000).contains(&hundredths) {
                return Err(format!(
                    "{t} is out of range; a percentage must be 1% to 100%"
                ));
            }
            Ok(BwLimit::Percent(hundredths))
        }
    }
}

/// KiB/s for a share of a link: `speed_mbps` Mbit/s (10^6 bit/s) × `hundredths`/10000,
/// converted to bytes (÷8) and KiB (÷1024), rounded down so the limit never exceeds the
/// share asked for.
pub fn percent_to_kib(speed_mbps: u64, hundredths: u64) -> u64 {
    let bits = speed_mbps as u128 * 1_000_000 * hundredths as u128;
    (bits / (8 * 1024 * 10_000)) as u64
}

/// A size in bytes: `"16G"`, `"512M"`, `"1T"`, `"4096K"` (binary units), or plain bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let bad = || {
        format!(
            "{s:?} is not a size; write a number with K, M, G or T (binary units), e.g. \"16G\""
        )
    };
    let t = s.trim();
    let t = t
        .strip_suffix("iB")
        .or_else(|| t.strip_suffix('B'))
        .unwrap_or(t);
    let (num, shift) = match t.chars().last() {
        Some('K' | 'k') => (&t[..t.len() - 1], 10),
        Some('M' | 'm') => (&t[..t.len() - 1], 20),
        Some('G' | 'g') => (&t[..t.len() - 1], 30),
        Some('T' | 't') => (&t[..t.len() - 1], 40),
        _ => (t, 0),
    };
    let v: u64 = num.trim().parse().map_err(|_| bad())?;
    v.checked_mul(1u64 << shift)
        .filter(|v| *v > 0)
        .ok_or_else(bad)
}

pub fn human_size(bytes: u64) -> String {
    for (shift, unit) in [(40, "T"), (30, "G"), (20, "M"), (10, "K")] {
        if bytes >= 1 << shift && bytes.is_multiple_of(1 << shift) {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    format!("{bytes}")
}

/// Seconds from a number or a string with `s`, `m` or `h` suffix.
pub fn parse_duration(d: &Duration) -> Result<u64, String> {
    match d {
        Duration::Secs(v) if *v > 0 => Ok(*v as u64),
        Duration::Secs(v) => Err(format!(
            "{v} is not a duration; use a positive number of seconds"
        )),
        Duration::Text(t) => {
            let bad = || {
                format!("{t:?} is not a duration; write seconds (90) or \"90s\", \"15m\", \"1h\"")
            };
            let s = t.trim();
            let (num, mult) = match s.chars().last() {
                Some('s') => (&s[..s.len() - 1], 1),
                Some('m') => (&s[..s.len() - 1], 60),
                Some('h') => (&s[..s.len() - 1], 3600),
                _ => (s, 1),
            };
            let v: u64 = num.trim().parse().map_err(|_| bad())?;
            v.checked_mul(mult).filter(|v| *v > 0).ok_or_else(bad)
        }
    }
}

/// pve-node format: `^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?$`, at most `max` characters.
pub fn check_pve_node_name(name: &str, max: usize) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if !ok {
        return Err(format!(
            "{name:?} is not valid; use letters, digits and '-' (not at the start or end)"
        ));
    }
    if name.len() > max {
        return Err(format!(
            "{name:?} is {} characters long; at most {max} are allowed",
            name.len()
        ));
    }
    Ok(())
}

pub fn is_dns_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

fn is_timezone(tz: &str) -> bool {
    !tz.is_empty()
        && tz.split('/').all(|p| {
            !p.is_empty()
                && p.starts_with(|c: char| c.is_ascii_alphabetic())
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+'))
        })
}

/// Lower-case letters, digits and `-`, starting with a letter.
fn is_simple_name(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// Linux interface names: 1–15 characters, no `/`, whitespace or `:`; we keep to
/// `[A-Za-z0-9_.-]` starting with a letter, which every Proxmox tool accepts.
pub fn check_iface_name(n: &str) -> Result<(), String> {
    if n.is_empty()
        || !n.starts_with(|c: char| c.is_ascii_alphabetic())
        || !n
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    {
        return Err(format!("{n:?} is not an interface name; use letters, digits, '.', '-' and '_', starting with a letter"));
    }
    if n.len() > 15 {
        return Err(format!(
            "{n:?} is {} characters long; Linux interface names have at most 15",
            n.len()
        ));
    }
    Ok(())
}

/// Storage id format of pve-storage: `^[a-z][a-z0-9\-_.]*[a-z0-9]$`.
pub fn check_storage_id(id: &str) -> Result<(), String> {
    let ok = id.len() >= 2
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && id.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!("{id:?} is not a valid storage id; use lower-case letters, digits, '-', '_' and '.', starting with a letter and ending with a letter or digit"))
    }
}

fn check_pool_name(n: &str) -> Result<(), String> {
    let ok = !n.is_empty()
        && !n.starts_with('.')
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{n:?} is not a valid pool name; use letters, digits, '-', '_' and '.'"
        ))
    }
}

fn check_pg_num(pg: i64) -> Result<(), String> {
    if !(1..=MAX_PG_NUM).contains(&pg) || (pg & (pg - 1)) != 0 {
        let lower = if pg > 1 {
            1i64 << (63 - pg.leading_zeros())
        } else {
            1
        };
        let hint = if (1..=MAX_PG_NUM).contains(&pg) {
            format!(" (e.g. {lower} or {})", lower * 2)
        } else {
            String::new()
        };
        return Err(format!(
            "{pg} is not a power of two between 1 and {MAX_PG_NUM}{hint}"
        ));
    }
    Ok(())
}

fn is_ceph_section(s: &str) -> bool {
    let (base, id) = s.split_once('.').map_or((s, None), |(b, i)| (b, Some(i)));
    matches!(base, "global" | "mon" | "mgr" | "osd" | "mds" | "client")
        && id.is_none_or(|i| {
            !i.is_empty()
                && i.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        })
        && !(base == "global" && id.is_some())
}

/// A ceph.conf value as text, or `None` for arrays and tables.
pub fn ceph_value(v: &toml::Value) -> Option<String> {
    match v {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

/// PVE config ids (HA groups): letters, digits, `-`, `_`, starting with a letter, ≥2 chars.
fn is_config_id(s: &str) -> bool {
    s.len() >= 2
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
}

fn is_realm_name(s: &str) -> bool {
    is_config_id(s)
}

/// proxmox-notify entity names.
fn is_notify_name(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

pub fn is_email(s: &str) -> bool {
    match s.rsplit_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !local.chars().any(|c| {
                    c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | '@')
                })
                && is_dns_name(domain)
                && domain.contains('.')
        }
        None => false,
    }
}

/// `user@realm`, e.g. `root@pam`.
fn is_userid(s: &str) -> bool {
    match s.rsplit_once('@') {
        Some((user, realm)) => {
            !user.is_empty()
                && !user
                    .chars()
                    .any(|c| c.is_whitespace() || c == ':' || c == '/')
                && realm.len() >= 2
                && realm
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        }
        None => false,
    }
}

/// `vm:100`, `ct:101` or a bare VMID (taken as a VM) → normalised sid.
pub fn normalize_sid(sid: &str) -> Result<String, String> {
    let (kind, id) = sid.split_once(':').unwrap_or(("vm", sid));
    let id_ok = !id.is_empty()
        && id.bytes().all(|b| b.is_ascii_digit())
        && id
            .parse::<u64>()
            .is_ok_and(|v| (100..=999_999_999).contains(&v));
    if !matches!(kind, "vm" | "ct") || !id_ok {
        return Err(format!(
            "{sid:?} is not a resource id; write vm:<vmid> or ct:<vmid> with a VMID of 100 or more"
        ));
    }
    Ok(format!("{kind}:{id}"))
}

/// A group member as (node, priority).
pub fn parse_group_member(m: &StrOr<HaGroupNodeSpec>) -> Result<(String, Option<u32>), String> {
    let m = &m.0;
    let (node, prio) = match &m.written {
        Some(w) => match w.split_once(':') {
            Some((n, p)) => match p.parse::<u32>() {
                Ok(p) => (n.to_string(), Some(p as i64)),
                Err(_) => {
                    return Err(format!(
                        "{w:?} has no valid priority; write \"node\" or \"node:<number>\""
                    ))
                }
            },
            None => (w.clone(), None),
        },
        None => (m.node.clone(), m.priority),
    };
    let prio = match prio {
        Some(p) if !(0..=1000).contains(&p) => {
            return Err(format!(
                "priority {p} is out of range; use 0 to 1000 (higher is preferred)"
            ))
        }
        Some(p) => Some(p as u32),
        None => None,
    };
    Ok((node, prio))
}

/// A MAC as `xx:xx:xx:xx:xx:xx` (or with `-`), lower-cased; unicast only.
pub fn check_mac(mac: &str) -> Result<String, String> {
    let norm = mac.to_ascii_lowercase().replace('-', ":");
    let parts: Vec<&str> = norm.split(':').collect();
    if parts.len() != 6
        || !parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err(format!(
            "{mac:?} is not a MAC address like bc:24:11:00:00:01"
        ));
    }
    let first = u8::from_str_radix(parts[0], 16).unwrap_or(0);
    if first & 1 == 1 {
        return Err(format!(
            "{mac} is a multicast address; a NIC has a unicast MAC"
        ));
    }
    Ok(norm)
}

/// An absolute device path under `/dev/`.
pub fn check_device_path(d: &str) -> Result<(), String> {
    let ok = d.starts_with("/dev/")
        && d.len() > 5
        && !d.ends_with('/')
        && !d.split('/').any(|p| p == ".." || p == ".")
        && !d.chars().any(|c| c.is_whitespace() || c == ',');
    if ok {
        Ok(())
    } else {
        Err(format!("{d:?} is not a disk; use an absolute path under /dev, e.g. /dev/sdb or /dev/disk/by-id/..."))
    }
}

/// `/dev/sdb1`, `/dev/nvme0n1p2`, `/dev/mmcblk0p1`, `/dev/disk/by-id/...-part1`.
pub fn looks_like_partition(dev: &str) -> bool {
    let name = dev.rsplit('/').next().unwrap_or(dev);
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if let Some((_, n)) = name.rsplit_once("-part") {
        return digits(n);
    }
    for prefix in ["sd", "vd", "hd", "xvd"] {
        if let Some(rest) = name.strip_prefix(prefix) {
            let letters = rest.trim_end_matches(|c: char| c.is_ascii_digit());
            return letters.len() < rest.len()
                && !letters.is_empty()
                && letters.bytes().all(|b| b.is_ascii_lowercase());
        }
    }
    if name.starts_with("nvme") || name.starts_with("mmcblk") {
        return name
            .rsplit_once('p')
            .is_some_and(|(head, n)| digits(n) && head.len() > 4);
    }
    false
}

/// A crypt(3) hash: `$<id>$...` with a known scheme.
pub fn check_crypt_hash(h: &str) -> Result<(), String> {
    let h = h.trim();
    let known = ["$y$", "$gy$", "$7$", "$6$", "$5$", "$2b$", "$2y$", "$2a$"];
    if known.iter().any(|p| h.starts_with(p)) && h.len() > 20 && !h.chars().any(char::is_whitespace)
    {
        return Ok(());
    }
    if h.starts_with("$1$") {
        return Err(
            "MD5 crypt ($1$) is too weak; use yescrypt or SHA-512 (mkpasswd -m yescrypt)".into(),
        );
    }
    Err("is not a crypt hash ($y$..., $6$...); create one with `mkpasswd -m yescrypt` (never put the plain password here)".into())
}

/// One OpenSSH public key line (`ssh-ed25519 AAAA... comment`). The key text is never
/// echoed back, in case someone pasted a private key.
pub fn check_ssh_public_key(line: &str) -> Result<(), String> {
    let l = line.trim();
    if l.contains("PRIVATE KEY") {
        return Err("is a private key; put the public key (the .pub file) here and keep the private key secret".into());
    }
    ssh_key::PublicKey::from_openssh(l)
        .map(|_| ())
        .map_err(|_| {
            "is not an OpenSSH public key line like \"ssh-ed25519 AAAA... user@host\"".to_string()
        })
}

fn realm_kind(kind: &str) -> &'static str {
    match kind {
        "ad" => "AD",
        "ldap" => "LDAP",
        _ => "OpenID",
    }
}

fn join_keys<'a>(keys: impl Iterator<Item = &'a str>) -> String {
    let v: Vec<&str> = keys.collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_of_ten_gigabit_rounds_down() {
        // 10 Gbit/s = 1_250_000_000 B/s = 1_220_703.125 KiB/s; 90% = 1_098_632.8 → 1_098_632.
        assert_eq!(percent_to_kib(10_000, 9000), 1_098_632);
        assert_eq!(percent_to_kib(1000, 10000), 122_070);
        assert_eq!(percent_to_kib(1000, 50), 610);
    }

    #[test]
    fn bandwidth_forms() {
        assert_eq!(
            parse_bandwidth(&Bandwidth::Text("90%".into())),
            Ok(BwLimit::Percent(9000))
        );
        assert_eq!(
            parse_bandwidth(&Bandwidth::Text("12.5%".into())),
            Ok(BwLimit::Percent(1250))
        );
        assert_eq!(
            parse_bandwidth(&Bandwidth::KibPerSec(115200)),
            Ok(BwLimit::KibPerSec(115200))
        );
        assert!(parse_bandwidth(&Bandwidth::Text("0%".into())).is_err());
        assert!(parse_bandwidth(&Bandwidth::Text("101%".into())).is_err());
        assert!(parse_bandwidth(&Bandwidth::Text("90".into())).is_err());
        assert!(parse_bandwidth(&Bandwidth::KibPerSec(0)).is_err());
    }

    #[test]
    fn speeds() {
        assert_eq!(parse_speed(&Speed::Text("10G".into())), Ok(10_000));
        assert_eq!(parse_speed(&Speed::Text("2.5G".into())), Ok(2_500));
        assert_eq!(parse_speed(&Speed::Text("100M".into())), Ok(100));
        assert_eq!(parse_speed(&Speed::Mbps(1000)), Ok(1000));
        assert!(parse_speed(&Speed::Text("fast".into())).is_err());
        assert!(parse_speed(&Speed::Mbps(0)).is_err());
    }

    #[test]
    fn cidr_checks() {
        let net = parse_network("10.2.22.0/24").unwrap();
        assert!(check_host_in("10.2.22.66".parse().unwrap(), &net, "storage").is_ok());
        assert_eq!(
            check_host_in("10.2.23.67".parse().unwrap(), &net, "storage").unwrap_err(),
            "10.2.23.67 is not inside network storage (10.2.22.0/24)"
        );
        assert!(check_host_in("10.2.22.0".parse().unwrap(), &net, "s").is_err());
        assert!(check_host_in("10.2.22.255".parse().unwrap(), &net, "s").is_err());
        assert!(parse_network("10.2.22.66/24")
            .unwrap_err()
            .contains("10.2.22.0/24"));
        assert!(parse_network("10.2.22.0").is_err());
        assert!(parse_network("fd00::/64").is_ok());
    }

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_size("16G"), Ok(16 << 30));
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("512MiB"), Ok(512 << 20));
        assert!(parse_size("big").is_err());
        assert_eq!(parse_duration(&Duration::Text("15m".into())), Ok(900));
        assert_eq!(parse_duration(&Duration::Secs(30)), Ok(30));
        assert!(parse_duration(&Duration::Secs(0)).is_err());
    }

    #[test]
    fn names() {
        assert!(check_pve_node_name("pve1", 15).is_ok());
        assert!(check_pve_node_name("-pve", 15).is_err());
        assert!(check_pve_node_name("a-very-long-cluster", 15).is_err());
        assert!(check_storage_id("cephrdb01").is_ok());
        assert!(check_storage_id("Ceph").is_err());
        assert!(check_storage_id("pool-").is_err());
        assert_eq!(normalize_sid("100"), Ok("vm:100".into()));
        assert!(normalize_sid("vm:99").is_err());
        assert_eq!(
            check_mac("BC:24:11:00:00:01"),
            Ok("bc:24:11:00:00:01".into())
        );
        assert!(check_mac("01:00:5e:00:00:01").is_err());
    }

    #[test]
    fn partitions() {
        for p in [
            "/dev/sdb1",
            "/dev/nvme0n1p2",
            "/dev/mmcblk0p1",
            "/dev/disk/by-id/ata-X-part1",
            "/dev/vdc12",
        ] {
            assert!(looks_like_partition(p), "{p}");
        }
        for d in [
            "/dev/sdb",
            "/dev/nvme0n1",
            "/dev/mmcblk0",
            "/dev/disk/by-id/ata-Samsung_SSD_870",
            "/dev/vdaa",
        ] {
            assert!(!looks_like_partition(d), "{d}");
        }
    }

    #[test]
    fn secret_value_skips_comments() {
        assert_eq!(
            secret_value(b"# dummy\n\nhunter2\n"),
            Some(b"hunter2".to_vec())
        );
        assert_eq!(secret_value(b"# only a comment\n"), None);
        assert_eq!(secret_value(b"pw\r\n"), Some(b"pw".to_vec()));
    }
}
