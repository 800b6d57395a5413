//! Checks of `[networks.*]`: addresses, devices, bonds, bridges, corosync links.

use super::{Checker, NetInfo};
use crate::spec::defaults::MTU;
use crate::spec::raw::*;
use crate::spec::values::*;
use std::collections::BTreeMap;
use std::net::IpAddr;

impl Checker {
    pub(super) fn networks(&mut self, spec: &Spec) -> BTreeMap<String, NetInfo> {
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
        let mut cidrs: Vec<(String, ipnet::IpNet)> = Vec::new();
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
                Ok(net) => {
                    // Networks that share addresses make routing ambiguous, and a second
                    // corosync link over them adds no redundancy.
                    for (other, o) in &cidrs {
                        if o.contains(&net.network()) || net.contains(&o.network()) {
                            self.err(
                                format!("{k}.cidr"),
                                format!("{net} overlaps networks.{other} ({o}); every network needs its own address range"),
                            );
                        }
                    }
                    cidrs.push((name.to_string(), net));
                    Some(net)
                }
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
            let mtu = n.mtu.unwrap_or(MTU);
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
}
