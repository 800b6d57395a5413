//! The simulated `pveceph install/init/mon/mgr/osd/mds/pool/fs`: the Ceph daemons and pools.

use super::*;

impl World {
    pub(super) fn pveceph_install(&mut self, i: usize, p: &Parsed, stdin: Option<&[u8]>) -> Reply {
        let l = self.lat.ceph_install_ms;
        if !stdin.is_some_and(|s| s.starts_with(b"y") || s.starts_with(b"Y")) {
            return fail(
                self.lat.query_ms * 10,
                255,
                "Do you want to continue? [Y/n] Abort.\napt failed during ceph installation (256)",
            );
        }
        let version = p.opt("version").unwrap_or("quincy").to_string();
        let now = self.now;
        let n = &mut self.nodes[i];
        n.install_window = Some((now, now + l));
        n.ceph_installed_at = Some(now + l);
        n.ceph_version = Some(version.clone());
        ok(l, format!("installed ceph {version} successfully!\n"))
    }

    pub(super) fn pveceph_init(&mut self, i: usize, p: &Parsed) -> Reply {
        let l = self.lat.ceph_init_ms;
        if !self.installed(i) {
            return fail(
                l,
                255,
                "Ceph Nautilus required - please run 'pveceph install'",
            );
        }
        if let Some(r) = self.need_quorum(i) {
            return r;
        }
        if p.has("cluster-network") && !p.has("network") {
            return fail(l, 255, "400 Parameter verification failed.\ncluster-network: 'cluster-network' requires option 'network'");
        }
        if self.ceph.fsid.is_none() {
            self.ceph.fsid = Some(format!(
                "5b0c3e0e-0000-4000-8000-{:012x}",
                self.seed & 0xffff_ffff_ffff
            ));
        }
        self.nodes[i].ceph_symlink = true;
        if let Some(n) = p.opt("network") {
            self.ceph.public_network = Some(n.to_string());
            self.ceph.cluster_network = Some(p.opt("cluster-network").unwrap_or(n).to_string());
        }
        ok(l, "creating /etc/pve/priv/ceph.client.admin.keyring\n")
    }

    pub(super) fn ceph_base_checks(&self, i: usize, binary: &str) -> Option<Reply> {
        let q = self.lat.query_ms;
        if !self.installed(i) {
            return Some(fail(q, 255, format!("binary not installed: {binary}")));
        }
        if !self.ceph_configured(i) {
            return Some(fail(q, 255, "pveceph configuration not initialized - missing '/etc/pve/ceph.conf', missing '/etc/pve/ceph'"));
        }
        None
    }

    pub(super) fn mon_create(&mut self, i: usize, shown: &str) -> Reply {
        let l = self.lat.mon_create_ms;
        if let Some(r) = self.ceph_base_checks(i, "/usr/bin/ceph-mon") {
            return r;
        }
        let me = self.nodes[i].name.clone();
        if self.ceph.mons.iter().any(|m| m.name == me) {
            return fail(
                self.lat.query_ms,
                255,
                format!("monitor '{me}' already exists"),
            );
        }
        let public = self
            .plan
            .ceph
            .as_ref()
            .map(|c| c.public_network.clone())
            .unwrap_or_default();
        if self.node_ip_on(i, &public).is_none() {
            return fail(
                self.lat.query_ms,
                255,
                format!("No active IP found for the requested ceph public network on node '{me}'"),
            );
        }
        if !self.ceph.mons.is_empty() && self.quorum_names().is_empty() {
            return fail(
                10_000,
                255,
                "Could not connect to ceph cluster despite configured monitors",
            );
        }
        if let Some(k) = self.fail_rule(i, shown) {
            return fail(l, 255, format!("TASK ERROR: {}", fail_text(&k)));
        }
        let first = self.ceph.mons.is_empty();
        let at = self.now + l;
        self.nodes[i].ceph_symlink = true;
        self.ceph.mons.push(Daemon {
            name: me.clone(),
            at,
        });
        if first {
            self.ceph.mgrs.push(Daemon {
                name: me.clone(),
                at: at + 1_000,
            });
            self.ceph.pools.push(SimPool {
                name: ".mgr".into(),
                size: 3,
                min_size: 2,
                pg_num: 1,
                pg_autoscale_mode: "on".into(),
                application: "mgr".into(),
                at: at + 1_000,
            });
        }
        ok(
            l,
            format!("creating new monitor '{me}'\nstarting service 'ceph-mon@{me}.service'\n"),
        )
    }

    pub(super) fn mgr_create(&mut self, i: usize, shown: &str) -> Reply {
        let l = self.lat.mgr_create_ms;
        if let Some(r) = self.ceph_base_checks(i, "/usr/bin/ceph-mgr") {
            return r;
        }
        let me = self.nodes[i].name.clone();
        if self.ceph.mgrs.iter().any(|m| m.name == me) {
            return fail(
                self.lat.query_ms,
                255,
                format!("ceph manager directory '/var/lib/ceph/mgr/ceph-{me}' already exists"),
            );
        }
        if self.quorum_names().is_empty() {
            return fail(
                10_000,
                255,
                "[errno 110] RADOS timed out (error connecting to the cluster)",
            );
        }
        if let Some(k) = self.fail_rule(i, shown) {
            return fail(l, 255, format!("TASK ERROR: {}", fail_text(&k)));
        }
        self.nodes[i].ceph_symlink = true;
        self.ceph.mgrs.push(Daemon {
            name: me.clone(),
            at: self.now + l,
        });
        ok(
            l,
            format!("creating manager directory '/var/lib/ceph/mgr/ceph-{me}'\n"),
        )
    }

    pub(super) fn osd_create(&mut self, i: usize, p: &Parsed, shown: &str) -> Reply {
        let l = self.lat.osd_create_ms;
        let q = self.lat.query_ms;
        if let Some(r) = self.ceph_base_checks(i, "/usr/bin/ceph-osd") {
            return r;
        }
        if self.quorum_names().is_empty() {
            return fail(
                10_000,
                255,
                "[errno 110] RADOS timed out (error connecting to the cluster)",
            );
        }
        let dev = p.pos[0].clone();
        let Some(d) = self.nodes[i].disks.iter().find(|d| d.path == dev) else {
            return fail(q, 255, format!("unable to get device info for '{dev}'"));
        };
        if d.boot || d.content != DiskContent::Blank {
            return fail(q, 255, format!("device '{dev}' is already in use"));
        }
        if let Some(k) = self.fail_rule(i, shown) {
            return fail(l, 255, format!("TASK ERROR: {}", fail_text(&k)));
        }
        let id = (0..)
            .find(|n| !self.ceph.osds.iter().any(|o| o.id == *n))
            .unwrap_or(0);
        let fsid = self.ceph.fsid.clone().unwrap_or_default();
        let host = self.nodes[i].name.clone();
        let before = self.nodes[i]
            .disks
            .iter()
            .find(|d| d.path == dev)
            .map(|d| d.content.clone())
            .unwrap_or(DiskContent::Blank);
        self.disk_writes.push(DiskWrite {
            at_ms: self.now,
            node: host.clone(),
            device: dev.clone(),
            op: "osd-create".into(),
            before,
        });
        if let Some(d) = self.disk_mut(i, &dev) {
            d.content = DiskContent::Osd { id, fsid };
        }
        self.ceph.osds.push(SimOsd {
            id,
            host,
            device: dev.clone(),
            at: self.now + l,
        });
        ok(l, format!("create OSD on {dev} (bluestore)\nwiping block device {dev}\n--> ceph-volume lvm create successful for: {dev}\n"))
    }

    pub(super) fn mds_create(&mut self, i: usize, p: &Parsed, shown: &str) -> Reply {
        let l = self.lat.mds_create_ms;
        if let Some(r) = self.ceph_base_checks(i, "/usr/bin/ceph-mds") {
            return r;
        }
        let name = p.opt("name").unwrap_or(&self.nodes[i].name).to_string();
        if name.starts_with(|c: char| c.is_ascii_digit()) {
            return fail(
                self.lat.query_ms,
                255,
                "ID of the MDS cannot start with a number!",
            );
        }
        if self.ceph.mds.iter().any(|m| m.name == name) {
            return fail(
                self.lat.query_ms,
                255,
                format!("ceph MDS directory '/var/lib/ceph/mds/ceph-{name}' already exists"),
            );
        }
        if let Some(k) = self.fail_rule(i, shown) {
            return fail(l, 255, format!("TASK ERROR: {}", fail_text(&k)));
        }
        self.ceph.mds.push(Daemon {
            name: name.clone(),
            at: self.now + l + 2_000,
        });
        ok(l, format!("creating MDS directory '/var/lib/ceph/mds/ceph-{name}'\nstarting service 'ceph-mds@{name}.service'\n"))
    }

    pub(super) fn pool_create(&mut self, i: usize, p: &Parsed, shown: &str) -> Reply {
        let l = self.lat.pool_create_ms;
        if let Some(r) = self.need_quorum(i) {
            return r;
        }
        if !self.ceph_configured(i) {
            return fail(
                self.lat.query_ms,
                255,
                "pveceph configuration not initialized",
            );
        }
        let name = p.pos[0].clone();
        if let Some(k) = self.fail_rule(i, shown) {
            return task_error_exit0(l, &fail_text(&k));
        }
        let num = |k: &str, d: u32| p.opt(k).and_then(|v| v.parse().ok()).unwrap_or(d);
        let mode = p.opt("pg_autoscale_mode").unwrap_or("warn").to_string();
        if !["on", "off", "warn"].contains(&mode.as_str()) {
            return fail(
                self.lat.query_ms,
                255,
                "400 Parameter verification failed.\npg_autoscale_mode: value is not a valid enum",
            );
        }
        let pool = SimPool {
            name: name.clone(),
            size: num("size", 3) as u8,
            min_size: num("min_size", 2) as u8,
            pg_num: num("pg_num", 128),
            pg_autoscale_mode: mode,
            application: p.opt("application").unwrap_or("rbd").to_string(),
            at: self.now + l,
        };
        match self.ceph.pools.iter_mut().find(|x| x.name == name) {
            Some(existing) => {
                // Ceph treats an existing pool as success; settings are re-applied.
                existing.size = pool.size;
                existing.min_size = pool.min_size;
                existing.pg_autoscale_mode = pool.pg_autoscale_mode.clone();
            }
            None => self.ceph.pools.push(pool),
        }
        if p.opt("add_storages") == Some("1") {
            if self.pmx.storages.iter().any(|s| s.storage == name) {
                return task_error_exit0(l, &format!("adding PVE storage for ceph pool '{name}' failed, check log and add manually! storage ID '{name}' already defined"));
            }
            self.pmx.storages.push(Storage {
                storage: name.clone(),
                kind: "rbd".into(),
                content: "images,rootdir".into(),
                pool: Some(name.clone()),
                fs_name: None,
                at: self.now + l,
            });
        }
        ok(
            l,
            format!("pool {name}: applying size = {}\nTASK OK\n", num("size", 3)),
        )
    }

    pub(super) fn fs_create(&mut self, i: usize, p: &Parsed, shown: &str) -> Reply {
        let l = self.lat.fs_create_ms;
        if let Some(r) = self.need_quorum(i) {
            return r;
        }
        let name = p.opt("name").unwrap_or("cephfs").to_string();
        if let Some(k) = self.fail_rule(i, shown) {
            return task_error_exit0(l, &fail_text(&k));
        }
        if self.ceph.fs.iter().any(|f| f.name == name) {
            return task_error_exit0(l / 4, &format!("ceph fs '{name}' already exists"));
        }
        let data = format!("{name}_data");
        let meta = format!("{name}_metadata");
        if self
            .ceph
            .pools
            .iter()
            .any(|x| x.name == data || x.name == meta)
        {
            return task_error_exit0(
                l / 4,
                &format!("ceph pools '{data}' and/or '{meta}' already exist"),
            );
        }
        let standby = self
            .visible(&self.ceph.mds, |d| d.at)
            .into_iter()
            .map(|d| d.name.clone())
            .find(|n| !self.ceph.fs.iter().any(|f| &f.active == n));
        let Some(active) = standby else {
            return task_error_exit0(l / 4, "no standby Metadata Server (MDS) found!");
        };
        let pg: u32 = p.opt("pg_num").and_then(|v| v.parse().ok()).unwrap_or(128);
        let at = self.now + l;
        let size = self
            .plan
            .ceph
            .as_ref()
            .map(|c| (c.size, c.min_size))
            .unwrap_or((3, 2));
        for (n, pg) in [(data, pg), (meta, (pg / 4).max(8))] {
            self.ceph.pools.push(SimPool {
                name: n,
                size: size.0,
                min_size: size.1,
                pg_num: pg,
                pg_autoscale_mode: "on".into(),
                application: "cephfs".into(),
                at,
            });
        }
        self.ceph.fs.push(SimFs {
            name: name.clone(),
            active,
            at,
        });
        if p.opt("add-storage") == Some("1") {
            self.pmx.storages.push(Storage {
                storage: name.clone(),
                kind: "cephfs".into(),
                content: "backup,iso,vztmpl".into(),
                pool: None,
                fs_name: Some(name.clone()),
                at,
            });
        }
        ok(l, format!("creating data pool '{name}_data'...\ncreating metadata pool '{name}_metadata'...\nconfiguring new CephFS '{name}'\nSuccessfully create CephFS '{name}'\nAdding '{name}' to storage configuration...\nTASK OK\n"))
    }
}
