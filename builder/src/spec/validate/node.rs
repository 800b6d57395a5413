//! Checks of `[[nodes]]`: names, addresses on every network, MACs, disks.

use super::{join_keys, Checker, NetInfo};
use crate::spec::raw::*;
use crate::spec::values::*;
use std::collections::BTreeMap;
use std::net::IpAddr;

impl Checker {
    pub(super) fn nodes(&mut self, spec: &Spec, nets: &BTreeMap<String, NetInfo>) {
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
                        self.parsed.macs.insert(i, norm.clone());
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
            if node.install_wipe == Some(true) && node.install_disk.is_none() {
                self.err(
                    format!("{k}.install-wipe"),
                    "there is no install-disk to wipe; set install-disk or remove install-wipe",
                );
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
}
