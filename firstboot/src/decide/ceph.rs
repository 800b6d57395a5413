//! Evaluation of the Ceph steps: packages, init, monitors, managers, OSDs (and the disk
//! safety rules), MDS, pools, CephFS and the final health check.

use super::*;

/// Does the disk show no partition table, file system, mount, holder or signature?
pub fn disk_blank(obs: &Observed, dev: &str) -> bool {
    let Some(path) = obs.resolved.get(dev) else {
        return false;
    };
    let Some(d) = obs
        .lsblk
        .as_ref()
        .and_then(|l| l.iter().find(|d| &d.path == path))
    else {
        return false;
    };
    d.in_use_reasons().is_empty() && obs.signatures.get(path).is_some_and(|s| s.is_empty())
}

impl Ctx<'_> {
    pub(super) fn eval_ceph(&self, step: &Step) -> Eval {
        let plan = self.plan;
        let obs = self.obs;
        match step {
            Step::CephPackages => self.eval_packages(),
            Step::CephInit => {
                let ceph = plan.ceph.as_ref().expect("ceph step without ceph plan");
                match &obs.ceph_conf {
                    Some(c) if c.fsid.is_some() => Eval::Satisfied,
                    _ => {
                        let mut c = CommandLine::new("pveceph")
                            .arg("init")
                            .opt("network", ceph.public_cidr.clone());
                        if ceph.cluster_cidr != ceph.public_cidr {
                            c = c.opt("cluster-network", ceph.cluster_cidr.clone());
                        }
                        run(step.clone(), c, 120, 30)
                    }
                }
            }
            Step::Mon => self.eval_mon(),
            Step::Mgr => self.eval_mgr(step),
            Step::Osd(dev) => self.eval_osd(step, dev),
            Step::Mds => {
                let Some(_) = self.ceph_quorum() else {
                    return dep("Ceph monitor quorum");
                };
                let Some(m) = &obs.mds else {
                    return unobserved("MDS map");
                };
                if m.daemons.contains(&self.me.name) {
                    Eval::Satisfied
                } else {
                    run(
                        step.clone(),
                        CommandLine::new("pveceph").args(["mds", "create"]),
                        300,
                        60,
                    )
                }
            }
            Step::Pool(name) => self.eval_pool(step, name),
            Step::CephFs(name) => self.eval_fs(step, name),
            Step::Health => self.eval_health(),
            _ => unreachable!("{} is not a ceph step", step.id()),
        }
    }

    pub(super) fn eval_packages(&self) -> Eval {
        let plan = self.plan;
        let obs = self.obs;
        if obs.ceph_binaries && !obs.ceph_install_flag {
            return Eval::Satisfied;
        }
        if obs.ceph_install_flag {
            return dep_limit(
                format!("the running Ceph installation ({CEPH_INSTALL_FLAG} exists)"),
                3600,
            );
        }
        let ceph = plan.ceph.as_ref().expect("ceph step without ceph plan");
        match plan.firstboot.ceph_install {
            CephInstall::Pveceph => Eval::Ready(Action {
                step: Step::CephPackages,
                kind: ActionKind::Run(Cmd {
                    line: CommandLine::new("pveceph")
                        .arg("install")
                        .opt("version", ceph.release.clone())
                        .opt("repository", ceph.repository.clone()),
                    // apt inside pveceph asks without -y; answer every prompt.
                    stdin: Some(b"y\n".repeat(32)),
                    timeout_secs: 3600,
                }),
                verify: Verify::Step,
                verify_secs: 30,
            }),
            CephInstall::Preinstalled => Eval::Fatal(format!(
                "Ceph packages are missing on {} ({} not found) and firstboot.ceph-install is 'preinstalled': \
                 build the image from a base with Ceph {} installed, or set ceph-install = \"pveceph\"",
                self.me.name,
                CEPH_BINARIES.join(", "),
                ceph.release
            )),
        }
    }

    pub(super) fn eval_mon(&self) -> Eval {
        let ceph = self.plan.ceph.as_ref().expect("ceph");
        let obs = self.obs;
        let me = &self.me.name;
        let Some(conf) = obs.ceph_conf.as_ref().filter(|c| c.fsid.is_some()) else {
            return dep(format!(
                "{} to initialise Ceph (pveceph init)",
                self.plan.cluster.founder
            ));
        };
        let mons = match (&obs.mons, conf.mon_host.is_empty()) {
            (Some(m), _) => m.clone(),
            (None, true) => MonDump::default(),
            (None, false) => return unobserved("monitor map"),
        };
        if mons.quorum.contains(me) {
            return Eval::Satisfied;
        }
        if mons.mons.contains(me) {
            return dep_limit(format!("mon.{me} to join the monitor quorum"), 600);
        }
        for prev in &ceph.mons {
            if prev == me {
                break;
            }
            if !mons.quorum.contains(prev) {
                return dep(format!(
                    "mon.{prev} to be in quorum (monitors are added one at a time)"
                ));
            }
        }
        run(
            Step::Mon,
            CommandLine::new("pveceph").args(["mon", "create"]),
            600,
            120,
        )
    }

    pub(super) fn eval_mgr(&self, step: &Step) -> Eval {
        let ceph = self.plan.ceph.as_ref().expect("ceph");
        let Some(_) = self.ceph_quorum() else {
            return dep("Ceph monitor quorum");
        };
        let Some(mgrs) = &self.obs.mgrs else {
            return unobserved("manager map");
        };
        if mgrs.contains(&self.me.name) {
            return Eval::Satisfied;
        }
        // The first monitor creates a manager by itself; give it time before adding one.
        if ceph.mons.first() == Some(&self.me.name) && self.waited_ms(step) < 60_000 {
            return dep("the manager that the first monitor creates");
        }
        run(
            step.clone(),
            CommandLine::new("pveceph").args(["mgr", "create"]),
            300,
            60,
        )
    }

    pub(super) fn eval_osd(&self, step: &Step, dev: &str) -> Eval {
        let obs = self.obs;
        let me = &self.me.name;
        let Some(osd) = self.me.osds.iter().find(|o| o.device == dev) else {
            return Eval::Fatal(format!("{dev} is not an OSD disk of {me} in the plan"));
        };
        let Some(fsid) = obs.ceph_conf.as_ref().and_then(|c| c.fsid.clone()) else {
            return dep("Ceph to be initialised");
        };
        if self.ceph_quorum().is_none() {
            return dep("Ceph monitor quorum");
        }
        let (Some(volumes), Some(disks), Some(tree)) = (&obs.volumes, &obs.lsblk, &obs.osd_tree)
        else {
            return unobserved("disks and OSDs");
        };
        let Some(path) = obs.resolved.get(dev) else {
            return Eval::Fatal(format!("disk {dev} not found on {me}"));
        };
        if let Some((id, f)) = volumes.get(path) {
            if *f == fsid {
                return if tree.osd_up(*id) {
                    Eval::Satisfied
                } else {
                    dep_limit(format!("osd.{id} on {dev} to come up"), 600)
                };
            }
        }
        let Some(disk) = disks.iter().find(|d| &d.path == path) else {
            return Eval::Fatal(format!("disk {dev} ({path}) not found on {me} (lsblk)"));
        };
        if disk.holds_root() {
            return Eval::Fatal(format!(
                "refusing {dev} on {me}: it is the boot device (holds the root file system)"
            ));
        }
        let mut reasons = disk.in_use_reasons();
        for s in obs.signatures.get(path).into_iter().flatten() {
            let r = format!("{s} signature");
            if !reasons.contains(&r) {
                reasons.push(r);
            }
        }
        if let Some((id, f)) = volumes.get(path) {
            reasons.push(format!("osd.{id} of another Ceph cluster (fsid {f})"));
        }
        if reasons.is_empty() {
            return Eval::Ready(Action {
                step: step.clone(),
                kind: ActionKind::OsdCreate {
                    device: dev.to_string(),
                    cmd: Cmd::new(
                        {
                            let mut c = CommandLine::new("pveceph").args(["osd", "create", dev]);
                            if let Some(class) = &osd.device_class {
                                c = c.opt("crush-device-class", class.clone());
                            }
                            c
                        },
                        900,
                    ),
                },
                verify: Verify::Step,
                verify_secs: 120,
            });
        }
        let why = reasons.join(", ");
        if self.state.osd_started.contains_key(dev) {
            return Eval::Fatal(format!(
                "{dev} on {me} carries {why} after an interrupted `pveceph osd create` by hcikit; \
                 not zapping a disk an OSD of ours may use: check it and zap it by hand"
            ));
        }
        if !osd.wipe {
            return Eval::Fatal(format!(
                "refusing to use {dev} on {me} for an OSD: it is not blank ({why}); \
                 set wipe = true for this disk in the spec to let hcikit zap it"
            ));
        }
        if self
            .state
            .zaps
            .get(dev)
            .is_some_and(|z| z.done_ms.is_some())
        {
            return Eval::Fatal(format!(
                "{dev} on {me} still carries {why} after hcikit zapped it once; not zapping again"
            ));
        }
        Eval::Ready(Action {
            step: step.clone(),
            kind: ActionKind::Zap {
                device: dev.to_string(),
                cmd: Cmd::new(
                    CommandLine::new("ceph-volume").args(["lvm", "zap", dev, "--destroy"]),
                    600,
                ),
            },
            verify: Verify::DiskBlank(dev.to_string()),
            verify_secs: 30,
        })
    }

    /// `Some(wait)` until OSDs are up on `size` hosts.
    pub(super) fn enough_osd_hosts(&self, size: u8) -> Option<Eval> {
        let Some(tree) = &self.obs.osd_tree else {
            return Some(unobserved("OSD tree"));
        };
        let up = tree.hosts_with_up_osd();
        if up < size as usize {
            return Some(dep(format!("OSDs up on {size} hosts ({up} so far)")));
        }
        None
    }

    pub(super) fn eval_pool(&self, step: &Step, name: &str) -> Eval {
        let ceph = self.plan.ceph.as_ref().expect("ceph");
        let Some(p) = ceph.pools.iter().find(|p| p.name == name) else {
            return Eval::Fatal(format!("pool {name} is not in the plan"));
        };
        let (Some(pools), Some(storages)) = (&self.obs.pools, &self.obs.storages) else {
            return unobserved("pools and storages");
        };
        if let Some(have) = pools.iter().find(|x| x.name == name) {
            if have.size != p.size || have.min_size != p.min_size {
                return Eval::Fatal(format!(
                    "pool {name} exists with size {}/{} but the plan says {}/{}",
                    have.size, have.min_size, p.size, p.min_size
                ));
            }
            if p.add_storage && !storages.contains(name) {
                // The pool task can fail after creating the pool (exit 0 either way).
                return run(
                    step.clone(),
                    CommandLine::new("pvesh")
                        .args(["create", "/storage"])
                        .opt("storage", name)
                        .opt("type", "rbd")
                        .opt("pool", name)
                        .opt("content", "images,rootdir")
                        .opt("krbd", "0"),
                    60,
                    20,
                );
            }
            return Eval::Satisfied;
        }
        if let Some(e) = self.enough_osd_hosts(p.size) {
            return e;
        }
        let mut c = CommandLine::new("pveceph")
            .args(["pool", "create", name])
            .opt("size", p.size.to_string())
            .opt("min_size", p.min_size.to_string())
            .opt("pg_autoscale_mode", p.pg_autoscale_mode.clone());
        if let Some(n) = p.pg_num {
            c = c.opt("pg_num", n.to_string());
        }
        c = c
            .opt("application", p.application.clone())
            .opt("add_storages", if p.add_storage { "1" } else { "0" });
        run(step.clone(), c, 300, 60)
    }

    pub(super) fn eval_fs(&self, step: &Step, name: &str) -> Eval {
        let ceph = self.plan.ceph.as_ref().expect("ceph");
        let Some(f) = ceph.cephfs.iter().find(|f| f.name == name) else {
            return Eval::Fatal(format!("CephFS {name} is not in the plan"));
        };
        let (Some(mds), Some(storages)) = (&self.obs.mds, &self.obs.storages) else {
            return unobserved("MDS map and storages");
        };
        if mds.filesystems.contains_key(name) {
            if f.add_storage && !storages.contains(name) {
                if mds.filesystems[name].is_empty() {
                    return dep(format!("an active MDS for {name}"));
                }
                return run(
                    step.clone(),
                    CommandLine::new("pvesh")
                        .args(["create", "/storage"])
                        .opt("storage", name)
                        .opt("type", "cephfs")
                        .opt("fs-name", name)
                        .opt("content", "backup,iso,vztmpl"),
                    60,
                    20,
                );
            }
            return Eval::Satisfied;
        }
        if let Some(e) = self.enough_osd_hosts(ceph.size) {
            return e;
        }
        if mds.standbys.is_empty() {
            return dep("a standby MDS (pveceph fs create needs one)");
        }
        run(
            step.clone(),
            CommandLine::new("pveceph")
                .args(["fs", "create"])
                .opt("name", name)
                .opt("pg_num", f.pg_num.to_string())
                .opt("add-storage", if f.add_storage { "1" } else { "0" }),
            300,
            60,
        )
    }

    pub(super) fn eval_health(&self) -> Eval {
        let ceph = self.plan.ceph.as_ref().expect("ceph");
        let Some(s) = &self.obs.ceph else {
            return unobserved("Ceph status");
        };
        let mons_ok = ceph.mons.iter().all(|m| s.quorum_names.contains(m));
        let osds_ok = s.num_up_osds == ceph.osd_count && s.num_in_osds == ceph.osd_count;
        if s.health == "HEALTH_OK" && mons_ok && osds_ok {
            return Eval::Satisfied;
        }
        let mut why: Vec<String> = s.checks.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        if !osds_ok {
            why.push(format!(
                "{}/{} OSDs up, {} in",
                s.num_up_osds, ceph.osd_count, s.num_in_osds
            ));
        }
        if !mons_ok {
            why.push(format!("monitors in quorum: {}", s.quorum_names.join(",")));
        }
        dep_limit(
            format!("HEALTH_OK (now {}: {})", s.health, why.join("; ")),
            self.plan.firstboot.health_timeout_secs,
        )
    }
}
