//! Pure parsers of the JSON that Proxmox and Ceph tools print, into the small facts the
//! cluster run decides on. Perl APIs print booleans as `1`/`0` and omit fields of offline
//! nodes, so every parser is lenient about types and absence. Tested on captures in
//! `tests/fixtures/` (see its README for where each shape comes from).

use anyhow::{Context, Result};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

fn truthy(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0) != 0,
        Some(Value::String(s)) => s == "1" || s == "true" || s == "yes",
        _ => false,
    }
}

fn str_of(v: Option<&Value>) -> Option<String> {
    match v {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

fn parse(text: &str, what: &str) -> Result<Value> {
    serde_json::from_str(text.trim()).with_context(|| format!("parsing {what} JSON"))
}

/// `pvesh get /cluster/status --output-format json`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClusterStatus {
    /// Cluster name; `None` on a standalone node (no `type: cluster` entry).
    pub name: Option<String>,
    pub quorate: bool,
    pub nodes: Vec<ClusterNode>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterNode {
    pub name: String,
    pub nodeid: u32,
    pub online: bool,
    pub local: bool,
}

impl ClusterStatus {
    pub fn member(&self, name: &str) -> Option<&ClusterNode> {
        self.name.as_ref()?;
        self.nodes.iter().find(|n| n.name == name)
    }
    pub fn online(&self, name: &str) -> bool {
        self.member(name).is_some_and(|n| n.online)
    }
}

pub fn cluster_status(text: &str) -> Result<ClusterStatus> {
    let v = parse(text, "cluster status")?;
    let arr = v.as_array().context("cluster status is not an array")?;
    let mut st = ClusterStatus::default();
    for e in arr {
        match e.get("type").and_then(Value::as_str) {
            Some("cluster") => {
                st.name = str_of(e.get("name"));
                st.quorate = truthy(e.get("quorate"));
            }
            Some("node") => st.nodes.push(ClusterNode {
                name: str_of(e.get("name")).unwrap_or_default(),
                nodeid: e.get("nodeid").and_then(Value::as_u64).unwrap_or(0) as u32,
                online: truthy(e.get("online")),
                local: truthy(e.get("local")),
            }),
            _ => {}
        }
    }
    Ok(st)
}

/// `ceph -s -f json`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CephStatus {
    pub fsid: String,
    pub health: String,
    /// Health check codes (`OSD_DOWN`, `PG_AVAILABILITY`, …) with their summaries.
    pub checks: BTreeMap<String, String>,
    pub quorum_names: Vec<String>,
    pub num_osds: u32,
    pub num_up_osds: u32,
    pub num_in_osds: u32,
    pub mgr_available: bool,
}

pub fn ceph_status(text: &str) -> Result<CephStatus> {
    let v = parse(text, "ceph status")?;
    let u = |p: &str| v.pointer(p).and_then(Value::as_u64).unwrap_or(0) as u32;
    let mut checks = BTreeMap::new();
    if let Some(m) = v.pointer("/health/checks").and_then(Value::as_object) {
        for (k, c) in m {
            let msg = c
                .pointer("/summary/message")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            checks.insert(k.clone(), msg);
        }
    }
    Ok(CephStatus {
        fsid: str_of(v.get("fsid")).unwrap_or_default(),
        health: v
            .pointer("/health/status")
            .and_then(Value::as_str)
            .context("ceph status has no health.status")?
            .to_string(),
        checks,
        quorum_names: v
            .get("quorum_names")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|x| str_of(Some(x))).collect())
            .unwrap_or_default(),
        num_osds: u("/osdmap/num_osds"),
        num_up_osds: u("/osdmap/num_up_osds"),
        num_in_osds: u("/osdmap/num_in_osds"),
        mgr_available: truthy(v.pointer("/mgrmap/available")),
    })
}

/// `ceph mon dump -f json`: monitor names and which are in quorum.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MonDump {
    pub mons: Vec<String>,
    pub quorum: Vec<String>,
}

pub fn mon_dump(text: &str) -> Result<MonDump> {
    let v = parse(text, "mon dump")?;
    let mut by_rank = BTreeMap::new();
    let mut mons = Vec::new();
    for m in v
        .get("mons")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = str_of(m.get("name")).unwrap_or_default();
        if let Some(r) = m.get("rank").and_then(Value::as_i64) {
            by_rank.insert(r, name.clone());
        }
        mons.push(name);
    }
    let quorum = v
        .get("quorum")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|r| r.as_i64().and_then(|r| by_rank.get(&r).cloned()))
                .collect()
        })
        .unwrap_or_default();
    Ok(MonDump { mons, quorum })
}

/// `ceph mgr dump -f json`: active and standby manager names.
pub fn mgr_names(text: &str) -> Result<BTreeSet<String>> {
    let v = parse(text, "mgr dump")?;
    let mut s = BTreeSet::new();
    if let Some(a) = v.get("active_name").and_then(Value::as_str) {
        if !a.is_empty() {
            s.insert(a.to_string());
        }
    }
    for sb in v
        .get("standbys")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(n) = str_of(sb.get("name")) {
            s.insert(n);
        }
    }
    Ok(s)
}

/// `ceph osd tree -f json`: OSDs by host.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OsdTree {
    /// host name → (osd id, up)
    pub hosts: BTreeMap<String, Vec<(u32, bool)>>,
}

impl OsdTree {
    /// Hosts with at least one OSD up.
    pub fn hosts_with_up_osd(&self) -> usize {
        self.hosts
            .values()
            .filter(|o| o.iter().any(|(_, up)| *up))
            .count()
    }
    pub fn osd_up(&self, id: u32) -> bool {
        self.hosts.values().flatten().any(|(i, up)| *i == id && *up)
    }
}

pub fn osd_tree(text: &str) -> Result<OsdTree> {
    let v = parse(text, "osd tree")?;
    let nodes = v
        .get("nodes")
        .and_then(Value::as_array)
        .context("osd tree has no nodes")?;
    let mut status = BTreeMap::new();
    for n in nodes {
        if n.get("type").and_then(Value::as_str) == Some("osd") {
            if let Some(id) = n.get("id").and_then(Value::as_i64) {
                status.insert(id, n.get("status").and_then(Value::as_str) == Some("up"));
            }
        }
    }
    let mut t = OsdTree::default();
    for n in nodes {
        if n.get("type").and_then(Value::as_str) == Some("host") {
            let name = str_of(n.get("name")).unwrap_or_default();
            let mut osds: Vec<(u32, bool)> = n
                .get("children")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_i64)
                .filter(|id| *id >= 0)
                .map(|id| (id as u32, status.get(&id).copied().unwrap_or(false)))
                .collect();
            osds.sort();
            t.hosts.insert(name, osds);
        }
    }
    Ok(t)
}

/// `ceph mds stat -f json`: standby daemons and file systems with their active MDS.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MdsStat {
    pub standbys: Vec<String>,
    /// All MDS daemon names (standby or in a file system).
    pub daemons: BTreeSet<String>,
    /// fs name → names of its `up:active` daemons.
    pub filesystems: BTreeMap<String, Vec<String>>,
}

pub fn mds_stat(text: &str) -> Result<MdsStat> {
    let v = parse(text, "mds stat")?;
    let fsmap = v.get("fsmap").context("mds stat has no fsmap")?;
    let mut st = MdsStat::default();
    for s in fsmap
        .get("standbys")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(n) = str_of(s.get("name")) {
            st.daemons.insert(n.clone());
            st.standbys.push(n);
        }
    }
    for fs in fsmap
        .get("filesystems")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = fs
            .pointer("/mdsmap/fs_name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let mut active = Vec::new();
        if let Some(info) = fs.pointer("/mdsmap/info").and_then(Value::as_object) {
            for d in info.values() {
                let n = str_of(d.get("name")).unwrap_or_default();
                st.daemons.insert(n.clone());
                if d.get("state").and_then(Value::as_str) == Some("up:active") {
                    active.push(n);
                }
            }
        }
        st.filesystems.insert(name, active);
    }
    Ok(st)
}

/// One pool from `ceph osd pool ls detail -f json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolInfo {
    pub name: String,
    pub size: u8,
    pub min_size: u8,
    pub pg_num: u32,
    pub pg_autoscale_mode: String,
    pub applications: Vec<String>,
}

pub fn pools(text: &str) -> Result<Vec<PoolInfo>> {
    let v = parse(text, "pool list")?;
    let arr = v.as_array().context("pool list is not an array")?;
    Ok(arr
        .iter()
        .map(|p| PoolInfo {
            name: str_of(p.get("pool_name")).unwrap_or_default(),
            size: p.get("size").and_then(Value::as_u64).unwrap_or(0) as u8,
            min_size: p.get("min_size").and_then(Value::as_u64).unwrap_or(0) as u8,
            pg_num: p.get("pg_num").and_then(Value::as_u64).unwrap_or(0) as u32,
            pg_autoscale_mode: str_of(p.get("pg_autoscale_mode")).unwrap_or_default(),
            applications: p
                .get("application_metadata")
                .and_then(Value::as_object)
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default(),
        })
        .collect())
}

/// `ceph-volume lvm list --format json`: device → (osd id, cluster fsid).
pub fn ceph_volume_list(text: &str) -> Result<BTreeMap<String, (u32, String)>> {
    let mut out = BTreeMap::new();
    if text.trim().is_empty() {
        return Ok(out);
    }
    let v = parse(text, "ceph-volume lvm list")?;
    let m = v.as_object().context("ceph-volume list is not an object")?;
    for (id, lvs) in m {
        let Ok(id) = id.parse::<u32>() else { continue };
        for lv in lvs.as_array().into_iter().flatten() {
            if lv.get("type").and_then(Value::as_str) != Some("block") {
                continue;
            }
            let fsid = lv
                .pointer("/tags/ceph.cluster_fsid")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            for d in lv
                .get("devices")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(d) = d.as_str() {
                    out.insert(d.to_string(), (id, fsid.clone()));
                }
            }
        }
    }
    Ok(out)
}

/// One device of `lsblk --json -o NAME,PATH,TYPE,FSTYPE,MOUNTPOINT,PTTYPE`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BlockDev {
    pub path: String,
    pub kind: String,
    pub fstype: Option<String>,
    pub pttype: Option<String>,
    pub mountpoint: Option<String>,
    pub children: Vec<BlockDev>,
}

impl BlockDev {
    /// Does this device or anything on it hold the root file system?
    pub fn holds_root(&self) -> bool {
        self.mountpoint.as_deref() == Some("/") || self.children.iter().any(BlockDev::holds_root)
    }
    /// Why the disk is not blank, per lsblk (partitions, file system, LVM, mounts).
    pub fn in_use_reasons(&self) -> Vec<String> {
        let mut r = Vec::new();
        if let Some(p) = &self.pttype {
            r.push(format!("{p} partition table"));
        }
        if let Some(f) = &self.fstype {
            r.push(format!("{f} signature"));
        }
        if let Some(m) = &self.mountpoint {
            r.push(format!("mounted at {m}"));
        }
        if !self.children.is_empty() {
            let names: Vec<_> = self.children.iter().map(|c| c.path.clone()).collect();
            r.push(format!("holds {}", names.join(", ")));
        }
        r
    }
}

pub fn lsblk(text: &str) -> Result<Vec<BlockDev>> {
    fn conv(v: &Value) -> BlockDev {
        let s = |k: &str| str_of(v.get(k)).filter(|s| !s.is_empty());
        BlockDev {
            path: s("path").unwrap_or_else(|| format!("/dev/{}", s("name").unwrap_or_default())),
            kind: s("type").unwrap_or_default(),
            fstype: s("fstype"),
            pttype: s("pttype"),
            mountpoint: s("mountpoint"),
            children: v
                .get("children")
                .and_then(Value::as_array)
                .map(|a| a.iter().map(conv).collect())
                .unwrap_or_default(),
        }
    }
    let v = parse(text, "lsblk")?;
    Ok(v.get("blockdevices")
        .and_then(Value::as_array)
        .context("lsblk output has no blockdevices")?
        .iter()
        .map(conv)
        .collect())
}

/// `wipefs --no-act --json DEV`: signature types (empty output means none).
pub fn wipefs(text: &str) -> Result<Vec<String>> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let v = parse(text, "wipefs")?;
    Ok(v.get("signatures")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| str_of(s.get("type")))
        .collect())
}

/// A list of objects keyed by `key` (`pvesh get /storage`, `/cluster/ha/groups`, …): the key values.
pub fn names(text: &str, key: &str) -> Result<BTreeSet<String>> {
    let v = parse(text, "listing")?;
    Ok(v.as_array()
        .context("listing is not an array")?
        .iter()
        .filter_map(|e| str_of(e.get(key)))
        .collect())
}

/// `pvesh get /cluster/notifications/matchers`: matcher → targets.
pub fn matchers(text: &str) -> Result<BTreeMap<String, Vec<String>>> {
    let v = parse(text, "matchers")?;
    let mut m = BTreeMap::new();
    for e in v.as_array().context("matchers is not an array")? {
        let Some(name) = str_of(e.get("name")) else {
            continue;
        };
        let targets = match e.get("target") {
            Some(Value::Array(a)) => a.iter().filter_map(|t| str_of(Some(t))).collect(),
            Some(Value::String(s)) => vec![s.clone()],
            _ => Vec::new(),
        };
        m.insert(name, targets);
    }
    Ok(m)
}

/// `pvesh get /cluster/options`: each option normalised to `k=v` pairs, so that a
/// property string (`type=secure,network=…`) and the API's object form compare equal.
pub fn cluster_options(text: &str) -> Result<BTreeMap<String, BTreeMap<String, String>>> {
    let v = parse(text, "cluster options")?;
    let mut out = BTreeMap::new();
    for (k, val) in v.as_object().context("cluster options is not an object")? {
        let m = match val {
            Value::Object(o) => o
                .iter()
                .filter_map(|(ik, iv)| str_of(Some(iv)).map(|s| (ik.clone(), s)))
                .collect(),
            other => match str_of(Some(other)) {
                Some(s) => property_string(k, &s),
                None => continue,
            },
        };
        out.insert(k.clone(), m);
    }
    Ok(out)
}

/// Splits a datacenter.cfg property string; a bare value belongs to the option's default key.
pub fn property_string(option: &str, s: &str) -> BTreeMap<String, String> {
    let default_key = match option {
        "migration" => "type",
        "ha" => "shutdown_policy",
        _ => "",
    };
    let mut m = BTreeMap::new();
    if !s.contains('=') && default_key.is_empty() {
        m.insert(String::new(), s.to_string());
        return m;
    }
    for part in s.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('=') {
            Some((k, v)) => m.insert(k.trim().to_string(), v.trim().to_string()),
            None => m.insert(default_key.to_string(), part.trim().to_string()),
        };
    }
    m
}

/// `fsid` and `mon_host` from `/etc/pve/ceph.conf`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CephConf {
    pub fsid: Option<String>,
    pub mon_host: Vec<String>,
}

pub fn ceph_conf(text: &str) -> CephConf {
    let mut c = CephConf::default();
    let mut in_global = false;
    for line in text.lines() {
        let l = line.trim();
        if l.starts_with('[') {
            in_global = l == "[global]";
            continue;
        }
        if !in_global {
            continue;
        }
        if let Some((k, v)) = l.split_once('=') {
            let k = k.trim().replace(' ', "_");
            match k.as_str() {
                "fsid" => c.fsid = Some(v.trim().to_string()),
                "mon_host" => {
                    c.mon_host = v.split_whitespace().map(str::to_string).collect();
                }
                _ => {}
            }
        }
    }
    c
}

/// `ceph config dump -f json`: a list of `{section, name, value, ...}` (Ceph
/// `ConfigMonitor`'s dump; the same entries `ceph config get` reads).
pub fn ceph_config_dump(text: &str) -> Result<BTreeMap<(String, String), String>> {
    let v: Value = serde_json::from_str(text).context("ceph config dump is not JSON")?;
    let mut out = BTreeMap::new();
    for e in v.as_array().context("ceph config dump is not a list")? {
        let (Some(who), Some(name), Some(value)) = (
            e["section"].as_str(),
            e["name"].as_str(),
            e["value"].as_str(),
        ) else {
            continue;
        };
        out.insert((who.to_string(), name.to_string()), value.to_string());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let p = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
    }

    #[test]
    fn cluster_status_of_three_members() {
        let s = cluster_status(&fixture("pvesh-cluster-status.json")).unwrap();
        assert_eq!(s.name.as_deref(), Some("pvelab"));
        assert!(s.quorate);
        assert_eq!(s.nodes.len(), 3);
        assert!(s.online("pve2"));
        assert!(!s.online("pve3"), "pve3 is listed offline in the capture");
        assert!(s.member("pve1").unwrap().local);
    }

    #[test]
    fn standalone_node_has_no_cluster() {
        let s = cluster_status(&fixture("pvesh-cluster-status-standalone.json")).unwrap();
        assert_eq!(s.name, None);
        assert!(s.member("pve1").is_none());
    }

    #[test]
    fn ceph_status_fields() {
        let s = ceph_status(&fixture("ceph-s.json")).unwrap();
        assert_eq!(s.health, "HEALTH_WARN");
        assert!(s.checks.contains_key("OSD_DOWN"));
        assert_eq!(s.quorum_names, ["pve1", "pve2", "pve3"]);
        assert_eq!((s.num_osds, s.num_up_osds, s.num_in_osds), (6, 5, 6));
        assert!(s.mgr_available);
    }

    #[test]
    fn mon_dump_maps_quorum_ranks_to_names() {
        let m = mon_dump(&fixture("ceph-mon-dump.json")).unwrap();
        assert_eq!(m.mons, ["pve1", "pve2", "pve3"]);
        assert_eq!(m.quorum, ["pve1", "pve2"]);
    }

    #[test]
    fn mgr_dump_active_and_standbys() {
        let m = mgr_names(&fixture("ceph-mgr-dump.json")).unwrap();
        assert_eq!(m.into_iter().collect::<Vec<_>>(), ["pve1", "pve2"]);
    }

    #[test]
    fn osd_tree_by_host() {
        let t = osd_tree(&fixture("ceph-osd-tree.json")).unwrap();
        assert_eq!(t.hosts["pve1"], [(0, true), (1, true)]);
        assert_eq!(t.hosts["pve2"], [(2, true), (3, false)]);
        assert_eq!(t.hosts_with_up_osd(), 2);
        assert!(!t.osd_up(3));
    }

    #[test]
    fn mds_stat_standbys_and_active() {
        let m = mds_stat(&fixture("ceph-mds-stat.json")).unwrap();
        assert_eq!(m.standbys, ["pve2", "pve3"]);
        assert_eq!(m.filesystems["cephfs01"], ["pve1"]);
        assert_eq!(m.daemons.len(), 3);
    }

    #[test]
    fn pool_details() {
        let p = pools(&fixture("ceph-osd-pool-ls-detail.json")).unwrap();
        let rbd = p.iter().find(|p| p.name == "cephrdb01").unwrap();
        assert_eq!((rbd.size, rbd.min_size, rbd.pg_num), (3, 2, 128));
        assert_eq!(rbd.pg_autoscale_mode, "on");
        assert_eq!(rbd.applications, ["rbd"]);
    }

    #[test]
    fn ceph_volume_devices() {
        let m = ceph_volume_list(&fixture("ceph-volume-lvm-list.json")).unwrap();
        assert_eq!(m["/dev/sdb"].0, 0);
        assert_eq!(m["/dev/sdb"].1, "5b0c3e0e-2d1c-4c43-9a43-7d6d2f1d1a11");
        assert!(ceph_volume_list("").unwrap().is_empty());
    }

    #[test]
    fn lsblk_finds_root_disk_and_dirty_disks() {
        let d = lsblk(&fixture("lsblk.json")).unwrap();
        let sda = d.iter().find(|d| d.path == "/dev/sda").unwrap();
        assert!(sda.holds_root());
        let sdb = d.iter().find(|d| d.path == "/dev/sdb").unwrap();
        assert!(!sdb.holds_root() && sdb.in_use_reasons().is_empty());
        let sdc = d.iter().find(|d| d.path == "/dev/sdc").unwrap();
        assert_eq!(sdc.in_use_reasons(), ["ext4 signature"]);
    }

    #[test]
    fn wipefs_signatures() {
        assert_eq!(wipefs(&fixture("wipefs.json")).unwrap(), ["gpt", "PMBR"]);
        assert!(wipefs("").unwrap().is_empty());
    }

    #[test]
    fn options_object_and_string_forms_compare_equal() {
        let o = cluster_options(&fixture("pvesh-cluster-options.json")).unwrap();
        assert_eq!(
            o["migration"],
            property_string("migration", "type=secure,network=10.2.22.0/24")
        );
        assert_eq!(o["ha"], property_string("ha", "shutdown_policy=migrate"));
        assert_eq!(o["keyboard"], property_string("keyboard", "en-us"));
        assert_eq!(
            property_string("migration", "secure,network=10.0.0.0/8")["type"],
            "secure"
        );
    }

    #[test]
    fn listings_and_matchers() {
        let s = names(&fixture("pvesh-storage.json"), "storage").unwrap();
        assert!(s.contains("cephrdb01") && s.contains("local"));
        let m = matchers(&fixture("pvesh-notification-matchers.json")).unwrap();
        assert_eq!(m["default-matcher"], ["mail-to-root"]);
    }

    #[test]
    fn ceph_conf_fsid_and_mons() {
        let c = ceph_conf(
            "[global]\n\tfsid = abc\n\tmon_host = 10.0.0.1 10.0.0.2\n[mon.pve1]\n\tpublic_addr = 10.0.0.1\n",
        );
        assert_eq!(c.fsid.as_deref(), Some("abc"));
        assert_eq!(c.mon_host, ["10.0.0.1", "10.0.0.2"]);
    }

    #[test]
    fn ceph_config_dump_keys_by_section_and_name() {
        // Shape of Ceph's ConfigMonitor dump (`ceph config dump -f json`).
        let t = r#"[{"section":"global","name":"mon_allow_pool_delete","value":"true","level":"advanced","can_update_at_runtime":true,"mask":""},
                    {"section":"osd","name":"osd_memory_target","value":"2147483648","level":"basic","can_update_at_runtime":true,"mask":""}]"#;
        let d = ceph_config_dump(t).unwrap();
        assert_eq!(
            d.get(&("osd".to_string(), "osd_memory_target".to_string()))
                .map(String::as_str),
            Some("2147483648")
        );
        assert_eq!(d.len(), 2);
        assert!(ceph_config_dump("{}").is_err());
    }
}
