//! Validation: every check on a raw [`Spec`], collecting **all** diagnostics at once.
//!
//! Each finding names the dotted key the user wrote and says what would be valid. Errors
//! stop the build; warnings are carried into the Plan. One file per part of the spec; the
//! value parsers live in [`crate::spec::values`], shared with [`crate::spec::resolve`], so
//! a value is read the same way by both.

use crate::spec::raw::*;
use crate::spec::values::BwLimit;
use crate::spec::Diagnostic;
use ipnet::IpNet;
use std::collections::BTreeMap;
use std::net::IpAddr;

mod ceph;
mod cluster;
mod datacenter;
mod ha;
mod image;
mod network;
mod node;
mod notify;
mod realm;

/// What validation parsed on its way, handed to [`crate::spec::resolve`] so that no
/// string is parsed twice. Holds every value that parsed: complete when validation found
/// no errors, which is the only time resolution runs.
#[derive(Debug, Clone, Default)]
pub struct Parsed {
    /// Each network's address range (host bits cleared), by network name.
    pub nets: BTreeMap<String, IpNet>,
    /// Each network's link speed in Mbit/s, by network name, where the spec gives one.
    pub speeds: BTreeMap<String, u64>,
    /// Each node's MAC, lower-cased, by node index, where the spec gives one.
    pub macs: BTreeMap<usize, String>,
    /// `datacenter.bwlimit` values, by key.
    pub bwlimits: BTreeMap<String, BwLimit>,
    /// Each HA group's members as (node, priority), by group index.
    pub group_members: BTreeMap<usize, Vec<(String, Option<u32>)>>,
    /// Each HA resource's sid in `vm:100` form, by resource index.
    pub sids: BTreeMap<usize, String>,
}

/// Runs every check. Errors and warnings, in spec order, and the values that parsed.
pub fn validate(spec: &Spec) -> (Vec<Diagnostic>, Parsed) {
    let mut v = Checker::default();
    v.cluster(spec);
    let nets = v.networks(spec);
    for (name, n) in &nets {
        if let Some(net) = n.net {
            v.parsed.nets.insert(name.clone(), net);
        }
        if let Some(s) = n.speed_mbps {
            v.parsed.speeds.insert(name.clone(), s);
        }
    }
    v.nodes(spec, &nets);
    v.ceph(spec, &nets);
    v.datacenter(spec, &nets);
    v.ha(spec);
    v.notifications(spec);
    v.realms(spec);
    v.image(spec);
    v.firstboot(spec);
    (v.diags, v.parsed)
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
    parsed: Parsed,
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
}

/// `a, b, c` for a message listing the valid keys, or `none`.
fn join_keys<'a>(keys: impl Iterator<Item = &'a str>) -> String {
    let v: Vec<&str> = keys.collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}
