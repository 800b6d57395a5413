//! Checks of `[ceph]`: release, daemon placement, pools, CephFS, extra config.

use super::{join_keys, Checker, NetInfo};
use crate::spec::defaults::*;
use crate::spec::raw::*;
use crate::spec::values::*;
use std::collections::{BTreeMap, BTreeSet};

impl Checker {
    pub(super) fn ceph(&mut self, spec: &Spec, nets: &BTreeMap<String, NetInfo>) {
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
                // pve-manager `PVE/Ceph/Releases.pm`: tentacle first ships in 9.1.5 as a
                // tech preview (153e6203) and becomes the default in 9.1.13 (f3c0665f).
                Some(("tentacle", _, _)) => self.warn(
                    "ceph.release",
                    "tentacle needs pve-manager 9.1.13 or later on the nodes: 9.1.5 to 9.1.12 offer it only as a tech preview that pveceph install refuses without allow-experimental, older ones not at all; squid works on every PVE 9",
                ),
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
        let size = c.size.unwrap_or(CEPH_SIZE);
        let min_size = c.min_size.unwrap_or(CEPH_MIN_SIZE.min(size));
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
            let app = p.application.as_deref().unwrap_or(POOL_APPLICATION);
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
                } else if pg < MIN_CEPHFS_PG_NUM {
                    self.err(
                        format!("{k}.pg-num"),
                        format!("{pg} is below the {MIN_CEPHFS_PG_NUM} placement groups pveceph fs create needs; use 8 or more (a power of two)"),
                    );
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
                // Starting with a letter, as every Ceph option does: the name is a
                // positional of `ceph config set`, where a leading '-' would read as an
                // option of the ceph CLI.
                if !opt.starts_with(|ch: char| ch.is_ascii_alphabetic())
                    || !opt
                        .chars()
                        .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '_' | ' ' | '-'))
                {
                    self.err(&ok, "is not a ceph.conf option name; use letters, digits, '_', '-' and spaces, starting with a letter");
                } else if MANAGED_CEPH_OPTIONS.contains(&norm.as_str()) {
                    self.err(&ok, "is managed by hcikit (set it through ceph.public-network, cluster-network, size or min-size)");
                }
                if ceph_value(val).is_none() {
                    self.err(&ok, "must be a string, number or boolean");
                }
            }
        }
    }

    pub(super) fn check_replicas(
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
}
