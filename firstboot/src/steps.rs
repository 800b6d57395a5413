//! The first-boot step model, in one place: which steps a node runs ([`steps_for`]),
//! their stable ids (the agent's state file, `hcikit plan`), what each does in words
//! ([`planned`], for `hcikit plan` and `docs/spec.md`) and what each waits for on other
//! nodes ([`Step::deps`], for the simulator's critical path). The agent (`decide`), the
//! builder's plan view and the benchmark all read this module, so they cannot disagree.

use crate::plan::{CephInstall, Node, Plan, PlannedStep};

/// The built-in notification target that Proxmox VE's default matcher always names
/// (pve-manager `PVE::API2::Cluster::Notifications`, the `mail-to-root` sendmail target).
pub const BUILTIN_TARGET: &str = "mail-to-root";

/// The four kinds of step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Domain {
    /// Forming the corosync cluster.
    Cluster,
    /// The bootstrap ssh key: installed for the join, removed after it.
    Ssh,
    /// Ceph packages, daemons, pools and health.
    Ceph,
    /// Cluster-wide configuration: options, HA, notifications, realms, mails.
    Config,
}

/// One unit of progress of one node.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    Peers,
    /// Founder: put the seeded corosync key where `pvecm create` keeps it.
    CorosyncKey,
    CreateCluster,
    /// Joiners: make root's ssh use the bootstrap key and pinned host keys for the
    /// founder, since `pvecm add --use_ssh` runs plain `ssh`/`ssh-copy-id`.
    SshConfig,
    JoinCluster,
    CephPackages,
    ClusterComplete,
    CephInit,
    /// Founder: one `[ceph.config.<who>]` option into Ceph's configuration database,
    /// as `who/key`.
    CephConfig(String),
    Mon,
    Mgr,
    Osd(String),
    Mds,
    Pool(String),
    CephFs(String),
    Options,
    /// Founder: root@pam's e-mail address, before any mail can go to it.
    RootEmail,
    HaGroup(String),
    Smtp(String),
    Matcher(String),
    DefaultMatcher,
    Realm(String),
    TestMail(String),
    Health,
    ReadyMail,
    RevokeBootstrap,
    DropBootstrapKey,
}

impl Step {
    /// Stable id, used in the state file and in `PlannedStep::id`-like displays.
    pub fn id(&self) -> String {
        match self {
            Step::Peers => "peers".into(),
            Step::CorosyncKey => "corosync-authkey".into(),
            Step::CreateCluster => "cluster-create".into(),
            Step::SshConfig => "ssh-bootstrap-config".into(),
            Step::JoinCluster => "cluster-join".into(),
            Step::CephPackages => "ceph-packages".into(),
            Step::ClusterComplete => "cluster-complete".into(),
            Step::CephInit => "ceph-init".into(),
            Step::CephConfig(k) => format!("ceph-config:{k}"),
            Step::Mon => "ceph-mon".into(),
            Step::Mgr => "ceph-mgr".into(),
            Step::Osd(d) => format!("ceph-osd:{d}"),
            Step::Mds => "ceph-mds".into(),
            Step::Pool(p) => format!("ceph-pool:{p}"),
            Step::CephFs(f) => format!("cephfs:{f}"),
            Step::Options => "datacenter-options".into(),
            Step::RootEmail => "root-email".into(),
            Step::HaGroup(g) => format!("ha-group:{g}"),
            Step::Smtp(t) => format!("notify-smtp:{t}"),
            Step::Matcher(m) => format!("notify-matcher:{m}"),
            Step::DefaultMatcher => "notify-default-matcher".into(),
            Step::Realm(r) => format!("realm:{r}"),
            Step::TestMail(t) => format!("test-mail:{t}"),
            Step::Health => "ceph-health".into(),
            Step::ReadyMail => "ready-mail".into(),
            Step::RevokeBootstrap => "revoke-bootstrap-key".into(),
            Step::DropBootstrapKey => "drop-bootstrap-key".into(),
        }
    }

    /// What the step is about; the agent's evaluators are grouped the same way.
    pub fn domain(&self) -> Domain {
        match self {
            Step::Peers
            | Step::CorosyncKey
            | Step::CreateCluster
            | Step::JoinCluster
            | Step::ClusterComplete => Domain::Cluster,
            Step::SshConfig | Step::RevokeBootstrap | Step::DropBootstrapKey => Domain::Ssh,
            Step::CephPackages
            | Step::CephInit
            | Step::CephConfig(_)
            | Step::Mon
            | Step::Mgr
            | Step::Osd(_)
            | Step::Mds
            | Step::Pool(_)
            | Step::CephFs(_)
            | Step::Health => Domain::Ceph,
            Step::Options
            | Step::HaGroup(_)
            | Step::Smtp(_)
            | Step::Matcher(_)
            | Step::DefaultMatcher
            | Step::Realm(_)
            | Step::RootEmail
            | Step::TestMail(_)
            | Step::ReadyMail => Domain::Config,
        }
    }

    /// Floating steps (cluster-wide configuration) may run while an earlier step is
    /// blocked. Package installation is not floating: on a joiner it would delay the
    /// join it is waiting for by the length of the install. The ready mail is not
    /// either: it reports the end of the run.
    pub fn floating(&self) -> bool {
        self.domain() == Domain::Config && *self != Step::ReadyMail
    }
}

/// The ordered steps of node `me`. Cluster-wide steps belong to the founder only.
pub fn steps_for(plan: &Plan, me: &Node) -> Vec<Step> {
    let founder = me.name == plan.cluster.founder;
    let mut s = vec![Step::Peers];
    if founder {
        s.push(Step::CorosyncKey);
        s.push(Step::CreateCluster);
    } else {
        s.push(Step::SshConfig);
        s.push(Step::JoinCluster);
    }
    if plan.ceph.is_some() {
        s.push(Step::CephPackages);
    }
    s.push(Step::ClusterComplete);
    if let Some(ceph) = &plan.ceph {
        if founder {
            s.push(Step::CephInit);
        }
        if ceph.mons.contains(&me.name) {
            s.push(Step::Mon);
        }
        // `ceph config set` needs a monitor; the options go in before any OSD or MDS
        // starts (every OSD and MDS step waits for them).
        if founder {
            s.extend(ceph_config_steps(plan));
        }
        if ceph.mgrs.contains(&me.name) {
            s.push(Step::Mgr);
        }
        s.extend(me.osds.iter().map(|o| Step::Osd(o.device.clone())));
        if ceph.mds.contains(&me.name) {
            s.push(Step::Mds);
        }
        if founder {
            s.extend(ceph.pools.iter().map(|p| Step::Pool(p.name.clone())));
            s.extend(ceph.cephfs.iter().map(|f| Step::CephFs(f.name.clone())));
        }
    }
    if founder {
        if !plan.datacenter.options.is_empty() {
            s.push(Step::Options);
        }
        // PVE 8 groups need no guest. PVE 9 node-affinity rules accept only resources
        // that are already HA-managed, and `ha-manager add` needs the guest to exist:
        // neither can apply on a fresh cluster, so rules (like resources) are deferred
        // (see [`deferred_ha`]).
        if !plan.ha.uses_rules() {
            s.extend(plan.ha.groups.iter().map(|g| Step::HaGroup(g.name.clone())));
        }
        if plan.notifications.root_email.is_some() {
            s.push(Step::RootEmail);
        }
        s.extend(
            plan.notifications
                .smtp
                .iter()
                .map(|t| Step::Smtp(t.name.clone())),
        );
        s.extend(
            plan.notifications
                .matchers
                .iter()
                .map(|m| Step::Matcher(m.name.clone())),
        );
        if !plan.notifications.default_matcher_targets.is_empty() {
            s.push(Step::DefaultMatcher);
        }
        s.extend(plan.realms.iter().map(|r| Step::Realm(r.name.clone())));
        if plan.notifications.send_test {
            s.extend(
                plan.notifications
                    .smtp
                    .iter()
                    .filter(|t| plan.notifications.report_target.as_ref() != Some(&t.name))
                    .map(|t| Step::TestMail(t.name.clone())),
            );
        }
        if plan.ceph.is_some() {
            s.push(Step::Health);
        }
        if plan.notifications.report_target.is_some() {
            s.push(Step::ReadyMail);
        }
        s.push(Step::RevokeBootstrap);
    } else {
        s.push(Step::DropBootstrapKey);
    }
    s
}

/// The HA intent the first boot cannot apply, as the commands that apply it once the
/// guests exist (pve-ha-manager `src/PVE/API2/HA/Resources.pm` `create` needs the guest,
/// `src/PVE/API2/HA/Rules.pm` `create_rule` needs managed resources). They are run by
/// hand, in this order, once the guests exist; the founder shows them when it finishes
/// and `hcikit-firstboot status` keeps them.
pub fn deferred_ha(plan: &Plan) -> Vec<String> {
    let rules = plan.ha.uses_rules();
    let mut out: Vec<String> = plan
        .ha
        .resources
        .iter()
        .map(|r| {
            let mut c = format!(
                "ha-manager add {} --state {} --max_restart {} --max_relocate {}",
                r.sid, r.state, r.max_restart, r.max_relocate
            );
            let group = r
                .group
                .as_ref()
                .and_then(|g| plan.ha.groups.iter().find(|x| &x.name == g));
            match group {
                Some(g) if !rules => c.push_str(&format!(" --group {}", g.name)),
                Some(g) if g.nofailback => c.push_str(" --failback 0"),
                _ => {}
            }
            c
        })
        .collect();
    if rules {
        for g in &plan.ha.groups {
            let res = plan.ha.resources_in(&g.name);
            if res.is_empty() {
                continue;
            }
            out.push(format!(
                "ha-manager rules add node-affinity {} --resources {} --nodes {} --strict {}",
                g.name,
                res.join(","),
                g.nodes_arg(),
                u8::from(g.restricted)
            ));
        }
    }
    out
}

/// The `[ceph.config.*]` options, one step each (`who/key`).
pub fn ceph_config_steps(plan: &Plan) -> Vec<Step> {
    plan.ceph
        .iter()
        .flat_map(|c| c.extra_config.iter())
        .flat_map(|(who, kv)| {
            kv.keys()
                .map(move |k| Step::CephConfig(format!("{who}/{k}")))
        })
        .collect()
}

/// A step of another (or this) node that a step waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepRef {
    pub node: String,
    pub step: Step,
}

/// What a step waits for besides the steps before it on its own node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deps {
    /// Every one of these must be done.
    pub all: Vec<StepRef>,
    /// At least `k` of these must be done (placement groups need `size` OSDs on
    /// distinct hosts before a pool can become active).
    pub at_least: Option<(usize, Vec<StepRef>)>,
}

fn at(node: &str, step: Step) -> StepRef {
    StepRef {
        node: node.to_string(),
        step,
    }
}

impl Step {
    /// The steps of other nodes this one waits for (the agent observes them; it does not
    /// read this). Steps before it on its own node are implied, except for floating ones.
    pub fn deps(&self, plan: &Plan, me: &Node) -> Deps {
        let founder = plan.cluster.founder.as_str();
        let mut d = Deps::default();
        let first_mon = plan.ceph.as_ref().and_then(|c| c.mons.first());
        match self {
            Step::JoinCluster => {
                d.all.push(at(founder, Step::CreateCluster));
                // `pvecm add` takes the cluster lock; joins go one at a time, in order.
                let order = &plan.cluster.join_order;
                if let Some(i) = order.iter().position(|j| *j == me.name) {
                    if i > 0 {
                        d.all.push(at(&order[i - 1], Step::JoinCluster));
                    }
                }
            }
            Step::ClusterComplete => {
                d.all.push(at(founder, Step::CreateCluster));
                d.all.extend(
                    plan.cluster
                        .join_order
                        .iter()
                        .map(|j| at(j, Step::JoinCluster)),
                );
            }
            Step::Mon => {
                d.all.push(at(founder, Step::CephInit));
                // Monitors are created one at a time, in the plan's order, so each new
                // one joins a quorum that already has the previous ones.
                if let Some(ceph) = &plan.ceph {
                    if let Some(i) = ceph.mons.iter().position(|m| *m == me.name) {
                        if i > 0 {
                            d.all.push(at(&ceph.mons[i - 1], Step::Mon));
                        }
                    }
                }
            }
            Step::Mgr | Step::Osd(_) | Step::Mds => {
                if let Some(m) = first_mon {
                    if *m != me.name {
                        d.all.push(at(m, Step::Mon));
                    }
                }
                if matches!(self, Step::Osd(_) | Step::Mds) {
                    d.all
                        .extend(ceph_config_steps(plan).into_iter().map(|s| at(founder, s)));
                }
            }
            Step::CephConfig(_) => {
                if let Some(m) = first_mon {
                    d.all.push(at(m, Step::Mon));
                }
            }
            Step::Pool(_) => {
                if let Some(ceph) = &plan.ceph {
                    let size = ceph
                        .pools
                        .iter()
                        .find(|p| Step::Pool(p.name.clone()) == *self)
                        .map_or(ceph.size, |p| p.size);
                    d.at_least = Some((size as usize, first_osds(plan)));
                }
            }
            Step::CephFs(_) => {
                if let Some(ceph) = &plan.ceph {
                    if let Some(m) = ceph.mds.first() {
                        d.all.push(at(m, Step::Mds));
                    }
                    d.at_least = Some((ceph.size as usize, first_osds(plan)));
                }
            }
            Step::TestMail(t) => d.all.push(at(founder, Step::Smtp(t.clone()))),
            Step::Health => {
                for n in &plan.nodes {
                    for s in steps_for(plan, n) {
                        let counts = matches!(s, Step::Mon | Step::Osd(_))
                            || (n.name == founder
                                && (s.floating() || matches!(s, Step::Pool(_) | Step::CephFs(_))));
                        if counts {
                            d.all.push(at(&n.name, s));
                        }
                    }
                }
            }
            _ => {}
        }
        d
    }

    /// What the step does, in words: the command it runs or what it waits for.
    pub fn summary(&self, plan: &Plan, me: &Node) -> String {
        let links = |n: &Node| -> String {
            n.links
                .iter()
                .map(|l| format!(" --link{} {}", l.number, l.ip))
                .collect()
        };
        let ceph = plan.ceph.as_ref();
        match self {
            Step::Peers => {
                let peers: Vec<&str> = plan
                    .nodes
                    .iter()
                    .filter(|p| p.name != me.name)
                    .map(|p| p.name.as_str())
                    .collect();
                if peers.is_empty() {
                    "no peers to wait for".into()
                } else {
                    let nets: Vec<&str> = plan.networks.iter().map(|n| n.name.as_str()).collect();
                    format!(
                        "wait until {} answer on {} (up to {}s)",
                        peers.join(", "),
                        nets.join(" and "),
                        plan.firstboot.peer_timeout_secs
                    )
                }
            }
            Step::CorosyncKey => "install the seeded corosync key as /etc/corosync/authkey".into(),
            Step::CreateCluster => format!("pvecm create {}{}", plan.cluster.name, links(me)),
            Step::SshConfig => {
                "point root's ssh at the founder with the bootstrap key and pinned host keys"
                    .into()
            }
            Step::JoinCluster => {
                let f = plan.founder();
                let ip = f.links.first().map_or(f.primary_ip.as_str(), |l| l.ip.as_str());
                format!("pvecm add {ip} --use_ssh 1{}", links(me))
            }
            Step::CephPackages => match ceph {
                Some(c) if plan.firstboot.ceph_install == CephInstall::Pveceph => format!(
                    "yes | pveceph install --repository {} --version {}",
                    c.repository, c.release
                ),
                Some(c) => format!(
                    "check Ceph {} ({}) packages are installed",
                    c.version, c.release
                ),
                None => "no Ceph".into(),
            },
            Step::ClusterComplete => format!(
                "wait until {} members are online and quorate",
                plan.nodes.len()
            ),
            Step::CephInit => match ceph {
                Some(c) => {
                    let mut s = format!("pveceph init --network {}", c.public_cidr);
                    if c.cluster_cidr != c.public_cidr {
                        s.push_str(&format!(" --cluster-network {}", c.cluster_cidr));
                    }
                    s.push_str(&format!(" --size {} --min_size {}", c.size, c.min_size));
                    s
                }
                None => "no Ceph".into(),
            },
            Step::Mon => {
                if ceph.and_then(|c| c.mons.first()) == Some(&me.name) {
                    "pveceph mon create (also creates this node's first manager)".into()
                } else {
                    "pveceph mon create".into()
                }
            }
            Step::Mgr => {
                if ceph.and_then(|c| c.mons.first()) == Some(&me.name) {
                    "verify the manager created with the first monitor".into()
                } else {
                    "pveceph mgr create".into()
                }
            }
            Step::Osd(dev) => {
                let Some(o) = me.osds.iter().find(|o| o.device == *dev) else {
                    return format!("pveceph osd create {dev}");
                };
                let mut s = String::new();
                if o.wipe {
                    s.push_str(&format!(
                        "if {dev} carries any signature: ceph-volume lvm zap {dev} --destroy (wipe = true); "
                    ));
                }
                s.push_str(&format!("pveceph osd create {dev}"));
                if let Some(cls) = &o.device_class {
                    s.push_str(&format!(" --crush-device-class {cls}"));
                }
                if !o.wipe {
                    s.push_str(" (refused if the disk is not empty)");
                }
                s
            }
            Step::Mds => "pveceph mds create".into(),
            Step::CephConfig(k) => {
                let (who, key) = k.split_once('/').unwrap_or(("global", k));
                let value = ceph
                    .and_then(|c| c.extra_config.get(who))
                    .and_then(|kv| kv.get(key))
                    .cloned()
                    .unwrap_or_default();
                format!("ceph config set {who} {key} {value} (read back with ceph config dump)")
            }
            Step::Pool(name) => match ceph.and_then(|c| c.pools.iter().find(|p| p.name == *name)) {
                Some(p) => {
                    let mut s = format!(
                        "pveceph pool create {} --size {} --min_size {}",
                        p.name, p.size, p.min_size
                    );
                    if let Some(pg) = p.pg_num {
                        s.push_str(&format!(" --pg_num {pg}"));
                    }
                    s.push_str(&format!(
                        " --pg_autoscale_mode {} --application {}",
                        p.pg_autoscale_mode, p.application
                    ));
                    if p.add_storage {
                        s.push_str(" --add_storages 1");
                    }
                    s
                }
                None => format!("pveceph pool create {name}"),
            },
            Step::CephFs(name) => match ceph.and_then(|c| c.cephfs.iter().find(|f| f.name == *name)) {
                Some(fs) => format!(
                    "pveceph fs create --name {} --pg_num {} --add-storage {} (once a standby MDS is up)",
                    fs.name,
                    fs.pg_num,
                    u8::from(fs.add_storage)
                ),
                None => format!("pveceph fs create --name {name}"),
            },
            Step::Options => {
                let dc: Vec<String> = plan
                    .datacenter
                    .options
                    .iter()
                    .map(|(k, v)| format!("--{k} {v}"))
                    .collect();
                format!("pvesh set /cluster/options {}", dc.join(" "))
            }
            Step::HaGroup(name) => {
                let Some(g) = plan.ha.groups.iter().find(|g| g.name == *name) else {
                    return format!("ha group {name}");
                };
                let nodes = g.nodes_arg();
                if plan.ha.uses_rules() {
                    format!(
                        "ha-manager rules add node-affinity {} --resources {} --nodes {nodes} --strict {}{}",
                        g.name,
                        plan.ha.resources_in(&g.name).join(","),
                        u8::from(g.restricted),
                        if g.nofailback { " (PVE 9 keeps nofailback as failback 0 on the resources)" } else { "" }
                    )
                } else {
                    format!(
                        "ha-manager groupadd {} --nodes {nodes} --restricted {} --nofailback {}",
                        g.name,
                        u8::from(g.restricted),
                        u8::from(g.nofailback)
                    )
                }
            }
            Step::RootEmail => format!(
                "pveum user modify root@pam --email {}",
                plan.notifications.root_email.as_deref().unwrap_or_default()
            ),
            Step::Smtp(name) => {
                let Some(s) = plan.notifications.smtp.iter().find(|t| t.name == *name) else {
                    return format!("smtp target {name}");
                };
                let mut c = format!(
                    "perl - create /cluster/notifications/endpoints/smtp --name {} --server {} --port {} --mode {} --from-address {}",
                    s.name, s.server, s.port, s.mode, s.from_address
                );
                if let Some(u) = &s.username {
                    c.push_str(&format!(" --username {u}"));
                }
                for m in &s.mailto {
                    c.push_str(&format!(" --mailto {m}"));
                }
                for m in &s.mailto_user {
                    c.push_str(&format!(" --mailto-user {m}"));
                }
                // As `CommandLine::display` shows it: the secret goes on stdin.
                if let Some(p) = &s.password {
                    c.push_str(&format!(" <stdin: password={}>", p.id));
                }
                c
            }
            Step::Matcher(name) => {
                let Some(m) = plan.notifications.matchers.iter().find(|m| m.name == *name) else {
                    return format!("matcher {name}");
                };
                let t: String = m.targets.iter().map(|t| format!(" --target {t}")).collect();
                format!(
                    "pvesh create /cluster/notifications/matchers --name {} --mode {}{t}",
                    m.name, m.mode
                )
            }
            Step::DefaultMatcher => {
                let t: String = std::iter::once(BUILTIN_TARGET)
                    .chain(
                        plan.notifications
                            .default_matcher_targets
                            .iter()
                            .map(String::as_str),
                    )
                    .map(|t| format!(" --target {t}"))
                    .collect();
                format!("pvesh set /cluster/notifications/matchers/default-matcher{t}")
            }
            Step::Realm(name) => {
                let Some(r) = plan.realms.iter().find(|r| r.name == *name) else {
                    return format!("realm {name}");
                };
                let opts: String = r
                    .options
                    .iter()
                    .map(|(k, v)| format!(" --{k} {v}"))
                    .collect();
                let secret = match (&r.secret, r.kind.as_str()) {
                    (Some(s), "openid") => format!(" <stdin: client-key={}>", s.id),
                    (Some(s), _) => format!(" <stdin: password={}>", s.id),
                    (None, _) => String::new(),
                };
                format!(
                    "perl - create /access/domains --realm {} --type {}{opts}{secret}",
                    r.name, r.kind
                )
            }
            Step::TestMail(t) => {
                format!("pvesh create /cluster/notifications/targets/{t}/test")
            }
            Step::Health => match ceph {
                Some(c) => format!(
                    "wait until {} nodes are online and quorate and Ceph reports HEALTH_OK with {} OSDs up and in (up to {}s)",
                    plan.nodes.len(),
                    c.osd_count,
                    plan.firstboot.health_timeout_secs
                ),
                None => format!(
                    "wait until {} nodes are online and quorate (up to {}s)",
                    plan.nodes.len(),
                    plan.firstboot.health_timeout_secs
                ),
            },
            Step::ReadyMail => match &plan.notifications.report_target {
                Some(t) => format!("send \"cluster ready\" through {t}"),
                None => "log \"cluster ready\"".into(),
            },
            Step::RevokeBootstrap => {
                "remove the bootstrap key from the cluster's authorized_keys".into()
            }
            Step::DropBootstrapKey => "delete this node's copy of the bootstrap key".into(),
        }
    }
}

/// The first OSD of every node that has one: one per host counts towards a pool's size.
fn first_osds(plan: &Plan) -> Vec<StepRef> {
    plan.nodes
        .iter()
        .filter_map(|n| {
            n.osds
                .first()
                .map(|o| at(&n.name, Step::Osd(o.device.clone())))
        })
        .collect()
}

/// Every step of every node, node by node in plan order (the founder first), each node's
/// steps in the order its agent works through them: what `hcikit plan` shows.
pub fn planned(plan: &Plan) -> Vec<PlannedStep> {
    plan.nodes
        .iter()
        .flat_map(|n| {
            steps_for(plan, n).into_iter().map(move |s| PlannedStep {
                id: s.id(),
                node: n.name.clone(),
                summary: s.summary(plan, n),
            })
        })
        .collect()
}
