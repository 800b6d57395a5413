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
        // pve-cluster API2/ClusterConfig.pm `create` worker: corosync.conf is written, then
        // Setup.pm `ssh_merge_known_hosts` reads the RSA host key (file_get_contents dies
        // on a missing file, the regex on a non-RSA key), and only then corosync and
        // pve-cluster restart. The CLI has no $upid_exit: exit 0.
        let written = "Writing corosync key to /etc/corosync/authkey\nWriting corosync config to /etc/pve/corosync.conf\n";
        let Some(rsa) = self.rsa_host_key(i) else {
            self.nodes[i].half_created = true;
            return task_failed(l / 2, written, &rsa_missing(&self.nodes[i].files), 0);
        };
        let now = self.now;
        let ip = self.plan.nodes[i].primary_ip.clone();
        self.merge_known_hosts(i, &me, &ip, &rsa);
        // pve-cluster.service runs `pvecm updatecerts --silent` when it starts, which
        // writes this node's ssh_known_hosts (Setup.pm updatecerts_and_ssh).
        self.pmx
            .node_known_hosts
            .insert(me.clone(), (now + l, format!("{me} {rsa}")));
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

    /// `ssh-rsa <base64>` of node `i`'s `/etc/ssh/ssh_host_rsa_key.pub` (Setup.pm:
    /// `m/^(ssh-rsa\s\S+)(\s.*)?$/m`).
    fn rsa_host_key(&self, i: usize) -> Option<String> {
        let b = self.nodes[i]
            .files
            .get(hcikit_firstboot::layout::SSH_HOST_RSA_PUB)?;
        String::from_utf8_lossy(b).lines().find_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some("ssh-rsa"))
                .then(|| w.next().map(|k| format!("ssh-rsa {k}")))
                .flatten()
        })
    }

    /// Setup.pm `ssh_merge_known_hosts`: the cluster file keeps its own lines plus only
    /// the `ssh-rsa` lines of the node's /etc/ssh/ssh_known_hosts, adds this node's name
    /// and IP, and /etc/ssh/ssh_known_hosts becomes a link to it.
    fn merge_known_hosts(&mut self, i: usize, name: &str, ip: &str, rsa: &str) {
        let old = std::mem::take(&mut self.pmx.known_hosts);
        let system = self.nodes[i]
            .files
            .get(hcikit_firstboot::layout::KNOWN_HOSTS)
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default();
        let mut data = String::new();
        let (mut found_name, mut found_ip) = (false, false);
        let mut seen = BTreeSet::new();
        let all_lines = old
            .lines()
            .map(|l| (l, true))
            .chain(system.lines().map(|l| (l, false)));
        for (line, all) in all_lines {
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let mut w = line.split_whitespace();
            let (Some(key), Some(kind), Some(body)) = (w.next(), w.next(), w.next()) else {
                continue;
            };
            if kind == "ssh-rsa" {
                if seen.insert(key.to_lowercase()) {
                    let k = key.to_lowercase();
                    let same = format!("{kind} {body}") == rsa;
                    found_ip |= k == ip.to_lowercase() && same;
                    found_name |= k == name.to_lowercase() && same;
                    data.push_str(line);
                    data.push('\n');
                }
            } else if all {
                data.push_str(line);
                data.push('\n');
            }
        }
        if !found_name {
            data.push_str(&format!("{} {rsa}\n", name.to_lowercase()));
        }
        if !found_ip {
            data.push_str(&format!("{} {rsa}\n", ip.to_lowercase()));
        }
        self.pmx.known_hosts = data;
        self.nodes[i]
            .files
            .insert("/etc/ssh/.sim-known-hosts-link".into(), Vec::new());
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
        // pvecm.pm `add` (use_ssh): the remote `pvecm addnode` fails, its message lands in
        // the task output (stdout), and the worker dies with "unable to add node".
        let me_name = self.nodes[i].name.clone();
        let addnode = format!(
            "ssh {host} -o BatchMode=yes pvecm addnode {me_name} --force 1{}",
            links
                .iter()
                .map(|(n, ip)| format!(" --link{n} {ip}"))
                .collect::<String>()
        );
        let aborted = |msg: &str| {
            task_failed(
                l / 5,
                &format!("{msg}\n"),
                &format!("unable to add node: command failed ({addnode})"),
                0,
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
        // finish_join: quorum, then updatecerts_and_ssh, whose ssh_create_node_known_hosts
        // writes /etc/pve/nodes/<me>/ssh_known_hosts (or dies without an RSA host key),
        // then pvedaemon/pveproxy reload and the command returns.
        let rsa = self.rsa_host_key(i);
        if let Some(rsa) = &rsa {
            self.pmx
                .node_known_hosts
                .insert(me.clone(), (now + l, format!("{me} {rsa}")));
        }
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
        let log = "copy corosync auth key\nstopping pve-cluster service\nbackup old database to '/var/lib/pve-cluster/backup/config-sim.sql.gz'\nwaiting for quorum...OK\n(re)generate node files\nmerge authorized SSH keys\n";
        if rsa.is_none() {
            return task_failed(l, log, &rsa_missing(&self.nodes[i].files), 0);
        }
        ok(l, format!("{log}generated new node certificate, restart pveproxy and pvedaemon services\nsuccessfully added node '{me}' to cluster.\n"))
    }
}

/// What Setup.pm dies with when the RSA host key is missing or not RSA.
fn rsa_missing(files: &BTreeMap<String, Vec<u8>>) -> String {
    let path = hcikit_firstboot::layout::SSH_HOST_RSA_PUB;
    if files.contains_key(path) {
        // die without a newline: Perl appends the location.
        format!("can't parse {path} at /usr/share/perl5/PVE/Cluster/Setup.pm line 265.")
    } else {
        // PVE::Tools::file_get_contents
        format!("unable to open file '{path}' - No such file or directory")
    }
}
