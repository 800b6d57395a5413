//! The simulated `pvecm create` and `pvecm add`: forming the corosync cluster.

use super::*;

impl World {
    pub(super) fn pvecm_create(&mut self, i: usize, p: &Parsed, shown: &str) -> Reply {
        let l = self.lat.pvecm_create_ms;
        let name = p.pos[0].clone();
        let me = self.nodes[i].name.clone();
        if self
            .cluster
            .as_ref()
            .is_some_and(|c| c.members.iter().any(|m| m.name == me))
        {
            return fail(
                self.lat.query_ms,
                255,
                "cluster config '/etc/pve/corosync.conf' already exists",
            );
        }
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') || name.len() > 15 {
            return fail(self.lat.query_ms, 255, format!("400 Parameter verification failed.\nclustername: value '{name}' does not match the regex pattern"));
        }
        let links = match self.parse_links(i, p) {
            Ok(l) => l,
            Err(e) => return fail(self.lat.query_ms, 255, e),
        };
        if let Some(k) = self.fail_rule(i, shown) {
            return task_error_exit0(l, &fail_text(&k));
        }
        let now = self.now;
        self.cluster = Some(PveCluster {
            name,
            links: links.keys().copied().collect(),
            members: vec![Member {
                name: self.nodes[i].name.clone(),
                nodeid: 1,
                links,
                added_at: now + l - 2_000,
                conf_at: now + l - 2_000,
                online_at: Some(now + l),
            }],
            config_version: 1,
        });
        self.pmx.authorized_keys = String::from_utf8_lossy(
            self.nodes[i]
                .files
                .get("/root/.ssh/authorized_keys")
                .map(Vec::as_slice)
                .unwrap_or_default(),
        )
        .into_owned();
        self.nodes[i].pmxcfs_down = Some((now + l - 2_000, now + l));
        // corosync-keygen runs only when no key is in place.
        self.seeded_authkey = self.nodes[i]
            .files
            .get("/etc/corosync/authkey")
            .map(|k| k == SIM_AUTHKEY.as_bytes());
        ok(
            l,
            "Writing corosync key to /etc/corosync/authkey\nWriting corosync config to /etc/pve/corosync.conf\nRestart corosync and cluster filesystem\nTASK OK\n",
        )
    }

    pub(super) fn parse_links(&self, i: usize, p: &Parsed) -> Result<BTreeMap<u8, String>, String> {
        let mut links = BTreeMap::new();
        for (k, v) in &p.opts {
            if let Some(n) = k.strip_prefix("link") {
                let n: u8 = n.parse().map_err(|_| format!("bad link {k}"))?;
                let ip = v
                    .split(',')
                    .next()
                    .unwrap_or_default()
                    .trim_start_matches("address=")
                    .to_string();
                if !self.plan.nodes[i].addresses.iter().any(|a| a.ip == ip) {
                    return Err(format!(
                        "* link{n}: cannot use IP '{ip}', not found on local node!\nCheck if node may join a cluster failed!"
                    ));
                }
                links.insert(n, ip);
            }
        }
        if links.is_empty() {
            links.insert(0, self.plan.nodes[i].primary_ip.clone());
        }
        Ok(links)
    }

    pub(super) fn pvecm_add(
        &mut self,
        i: usize,
        p: &Parsed,
        shown: &str,
        stdin: Option<&[u8]>,
    ) -> Reply {
        let l = self.lat.pvecm_add_ms;
        let q = self.lat.query_ms;
        if self.is_member(i) {
            return fail(q, 255, "* cluster config '/etc/pve/corosync.conf' already exists\n* corosync is already running, is this node already in a cluster?!\nCheck if node may join a cluster failed!");
        }
        if self.nodes[i].files.contains_key("/etc/corosync/authkey") {
            return fail(
                q,
                255,
                "* authentication key '/etc/corosync/authkey' already exists\nCheck if node may join a cluster failed!",
            );
        }
        let links = match self.parse_links(i, p) {
            Ok(l) => l,
            Err(e) => return fail(q, 255, e),
        };
        if p.opt("use_ssh") != Some("1") {
            // API mode reads the peer's root password from stdin (lae#29: exit 0 on EOF).
            if stdin.is_none_or(|s| s.is_empty()) {
                return task_error_exit0(q, "EOF while reading password");
            }
            return task_error_exit0(q, "sim: password joins are not simulated (use --use_ssh 1)");
        }
        let host = p.pos[0].clone();
        let Some((t, _net)) = self.owner_of(&host) else {
            return fail(HANG, 255, "ssh: connect to host: No route to host");
        };
        if !self.reachable(i, &host) {
            return Reply {
                latency_ms: HANG,
                out: Output::default(),
            };
        }
        // pvecm runs plain ssh/ssh-copy-id: the bootstrap key is offered only when root's
        // ssh config names it for this host; otherwise ssh-copy-id falls back to asking
        // a password, which hangs without a terminal (lae#138).
        if !self.bootstrap_authorized_on(t) || !self.ssh_offers_bootstrap(i, &host) {
            return Reply {
                latency_ms: HANG,
                out: Output::default(),
            };
        }
        let aborted = |msg: &str| {
            task_error_exit0(
                l / 5,
                &format!("An error occurred on the cluster node: {msg}\nCluster join aborted!"),
            )
        };
        if !self.is_member(t) {
            return aborted("node is not in a cluster, no join info available!");
        }
        if let Some(k) = self.fail_rule(i, shown) {
            return aborted(&fail_text(&k));
        }
        let c = self.cluster.as_ref().expect("cluster");
        let visible_members = c.members.iter().filter(|m| m.added_at <= self.now).count();
        if !self.quorate() {
            return aborted("cluster not ready - no quorum?");
        }
        if visible_members > 1 && self.lock_until > self.now {
            return aborted("cfs-lock 'file-corosync_conf' error: got lock request timeout");
        }
        for n in &c.links {
            if !links.contains_key(n) {
                return aborted(&format!(
                    "corosync: link {n} exists in cluster config but wasn't specified for new node"
                ));
            }
        }
        for n in links.keys() {
            if !c.links.contains(n) {
                return aborted(&format!(
                    "corosync: link {n} specified for new node doesn't exist in cluster config"
                ));
            }
        }
        let me = self.nodes[i].name.clone();
        let used: BTreeSet<u32> = c
            .members
            .iter()
            .filter(|m| m.name != me)
            .map(|m| m.nodeid)
            .collect();
        let nodeid = (1..).find(|n| !used.contains(n)).unwrap_or(1);
        // knet (link_mode passive) forms membership over any working link.
        let reaches = links.values().any(|ip| {
            self.owner_of(ip)
                .is_some_and(|(_, net)| self.link_up(i, &net) && self.link_up(t, &net))
        });
        let now = self.now;
        self.lock_until = now + 3_000;
        let c = self.cluster.as_mut().expect("cluster");
        c.members.retain(|m| m.name != me);
        c.members.push(Member {
            name: me.clone(),
            nodeid,
            links,
            added_at: now + 2_000,
            conf_at: now + 3_000,
            online_at: reaches.then_some(now + l - 5_000),
        });
        c.config_version += 1;
        self.pmx.authorized_keys.push_str(&format!(
            "ssh-rsa AAAAB3NzaC1yc2EsimHostKeyOf{me} root@{me}\n"
        ));
        self.nodes[i].pmxcfs_down = Some((now + 3_000, now + 5_000));
        if !reaches {
            return Reply {
                latency_ms: HANG,
                out: Output {
                    stdout: "waiting for quorum...".into(),
                    ..Output::default()
                },
            };
        }
        ok(l, format!("copy corosync auth key\nstopping pve-cluster service\nbackup old database to '/var/lib/pve-cluster/backup/config-sim.sql.gz'\nwaiting for quorum...OK\n(re)generate node files\nsuccessfully added node '{me}' to cluster.\n"))
    }
}
