//! `/etc/hosts`, `/etc/resolv.conf` and `/etc/network/interfaces`: lines and stanzas.

use super::Entry;
use crate::error::InputError;
use anyhow::{anyhow, Result};
use hcikit_firstboot::plan::*;
use serde::Serialize;
use std::collections::BTreeSet;

#[derive(Debug, Serialize)]
pub(crate) struct HostLine {
    ip: String,
    fqdn: String,
    name: String,
}

pub(crate) fn hosts(plan: &Plan, node: &Node) -> Vec<HostLine> {
    std::iter::once(node)
        .chain(plan.nodes.iter().filter(|n| n.name != node.name))
        .map(|n| HostLine {
            ip: n.primary_ip.clone(),
            fqdn: n.fqdn.clone(),
            name: n.name.clone(),
        })
        .collect()
}

pub(crate) fn nameservers(plan: &Plan) -> Vec<String> {
    let mut seen = BTreeSet::new();
    plan.networks
        .iter()
        .flat_map(|n| n.dns.iter())
        .filter(|d| seen.insert(d.as_str()))
        .cloned()
        .collect()
}

/// One `iface` stanza of `/etc/network/interfaces`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stanza {
    pub name: String,
    pub auto: bool,
    /// `manual` or `static`.
    pub method: String,
    pub options: Vec<Entry>,
    /// A `#...` line after the stanza (Proxmox keeps it as the interface comment).
    pub comment: Option<String>,
}

/// The stanzas of one node, network by network in plan order: physical NICs (manual),
/// then the bond, then the bridge; the address sits on the network's `address-iface`.
pub fn interfaces(plan: &Plan, node: &Node) -> Result<Vec<Stanza>> {
    let mut out: Vec<Stanza> = Vec::new();
    for net in &plan.networks {
        let addr = node
            .address_on(&net.name)
            .ok_or_else(|| anyhow!("node {} has no address on network {}", node.name, net.name))?;
        let mtu = (net.mtu != 1500).then(|| Entry::new("mtu", net.mtu.to_string()));
        let manual = |name: &str| Stanza {
            name: name.into(),
            auto: false,
            method: "manual".into(),
            options: mtu.iter().cloned().collect(),
            comment: None,
        };
        let address_opts = || {
            let mut o = vec![Entry::new("address", addr.ip_cidr.clone())];
            if let Some(gw) = &net.gateway {
                o.push(Entry::new("gateway", gw.clone()));
            }
            o
        };
        let carries_address = |name: &str| name == net.address_iface;
        let mut device_stanzas = Vec::new();
        match &net.device {
            NetDevice::Interface { name } => {
                if carries_address(name) {
                    let mut o = address_opts();
                    o.extend(mtu.clone());
                    device_stanzas.push(Stanza {
                        name: name.clone(),
                        auto: true,
                        method: "static".into(),
                        options: o,
                        comment: Some(network_comment(plan, net)),
                    });
                } else {
                    device_stanzas.push(manual(name));
                }
            }
            NetDevice::Bond {
                name,
                slaves,
                mode,
                miimon,
                xmit_hash_policy,
                lacp_rate,
            } => {
                device_stanzas.extend(slaves.iter().map(|s| manual(s)));
                let here = carries_address(name);
                let mut o = if here { address_opts() } else { Vec::new() };
                o.push(Entry::new("bond-slaves", slaves.join(" ")));
                o.push(Entry::new("bond-miimon", miimon.to_string()));
                o.push(Entry::new("bond-mode", mode.as_str()));
                if let Some(p) = xmit_hash_policy {
                    o.push(Entry::new("bond-xmit-hash-policy", p.clone()));
                }
                if let Some(r) = lacp_rate {
                    o.push(Entry::new("bond-lacp-rate", r.clone()));
                }
                o.extend(mtu.clone());
                device_stanzas.push(Stanza {
                    name: name.clone(),
                    auto: true,
                    method: if here { "static" } else { "manual" }.into(),
                    options: o,
                    comment: here.then(|| network_comment(plan, net)),
                });
            }
        }
        out.extend(device_stanzas);
        if let Some(bridge) = &net.bridge {
            let mut o = address_opts();
            o.push(Entry::new("bridge-ports", net.device.name()));
            o.push(Entry::new("bridge-stp", "off"));
            o.push(Entry::new("bridge-fd", "0"));
            o.extend(mtu.clone());
            out.push(Stanza {
                name: bridge.clone(),
                auto: true,
                method: "static".into(),
                options: o,
                comment: Some(network_comment(plan, net)),
            });
        }
    }
    let mut seen = BTreeSet::new();
    if let Some(dup) = out.iter().find(|s| !seen.insert(s.name.as_str())) {
        return Err(InputError::new(format!(
            "interface {} of node {} is used by more than one network",
            dup.name, node.name
        ))
        .into());
    }
    Ok(out)
}

/// What a network carries, for the comment after its address stanza.
fn network_comment(plan: &Plan, net: &Network) -> String {
    let mut roles = Vec::new();
    if let Some(l) = net.corosync_link {
        roles.push(format!("corosync link{l}"));
    }
    if let Some(c) = &plan.ceph {
        if c.public_network == net.name {
            roles.push("ceph public".to_string());
        }
        if c.cluster_network == net.name && c.cluster_network != c.public_network {
            roles.push("ceph cluster".to_string());
        }
    }
    if roles.is_empty() {
        format!("hcikit network {}", net.name)
    } else {
        format!("hcikit network {}: {}", net.name, roles.join(", "))
    }
}
