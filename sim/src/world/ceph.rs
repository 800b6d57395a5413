//! The simulated `ceph` queries (`-s`, `mon dump`, `osd tree`, …) and the health they report.

use super::*;

impl World {
    pub(super) fn health(&self) -> (String, BTreeMap<String, String>) {
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

    pub(super) fn ceph_query(&mut self, i: usize, p: &Parsed) -> Reply {
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
}
