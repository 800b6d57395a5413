//! Resolution: a validated [`Spec`] → the explicit [`Plan`], every default applied here
//! (the named defaults live in [`crate::spec::defaults`]).
//!
//! Runs only after [`crate::spec::validate`] found no errors, and takes the values it parsed
//! (addresses, speeds, MACs, bandwidth limits, HA members and sids) from [`Parsed`] instead
//! of parsing those strings again. Image sizes and first-boot durations are still read
//! here with the same parsers as validation. The few fallbacks below keep this function
//! total; they are not reached for a spec that validated.
//! The output is deterministic: spec order for lists, `BTreeMap` for maps.

use crate::spec::defaults as d;
use crate::spec::raw::*;
use crate::spec::secrets::ROOT_PASSWORD_ID;
use crate::spec::validate::Parsed;
use crate::spec::values as v;
use crate::spec::Diagnostic;
use hcikit_firstboot::plan::*;

mod config;
use config::{datacenter, notifications, realms};

/// Builds the Plan from a spec that passed validation and the values validation parsed.
/// `warnings` are the validation warnings, carried as text.
pub fn resolve(spec: &Spec, parsed: &Parsed, warnings: &[Diagnostic]) -> Plan {
    let pve_major = spec.cluster.pve_version.unwrap_or(d::DEFAULT_PVE_MAJOR);
    let networks = networks(spec, parsed);
    let ceph_spec = spec.ceph.as_ref();
    let all_nodes: Vec<String> = spec.nodes.iter().map(|n| n.name.clone()).collect();
    let roles = ceph_spec.map(|c| CephRoles::of(c, &all_nodes));
    let nodes = nodes(spec, parsed, &networks, roles.as_ref());
    let founder = nodes.first().map(|n| n.name.clone()).unwrap_or_default();

    let cluster = Cluster {
        name: spec.cluster.name.clone(),
        domain: spec.cluster.domain.clone(),
        timezone: spec
            .cluster
            .timezone
            .clone()
            .unwrap_or_else(|| d::TIMEZONE.into()),
        keyboard: spec
            .cluster
            .keyboard
            .clone()
            .unwrap_or_else(|| d::KEYBOARD.into()),
        pve_major: pve_major as u8,
        ntp_servers: spec.cluster.ntp_servers.clone(),
        admin_ssh_keys: spec
            .cluster
            .admin_ssh_keys
            .iter()
            .map(|k| k.trim().to_string())
            .collect(),
        root_password: (spec.cluster.root_password_hash.is_some()
            || spec.cluster.root_password_file.is_some())
        .then(|| SecretRef::new(ROOT_PASSWORD_ID)),
        founder: founder.clone(),
        join_order: nodes.iter().skip(1).map(|n| n.name.clone()).collect(),
    };
    let mut links: Vec<CorosyncLink> = networks
        .iter()
        .filter_map(|n| {
            n.corosync_link.map(|l| CorosyncLink {
                number: l,
                network: n.name.clone(),
            })
        })
        .collect();
    links.sort_by_key(|l| l.number);
    let corosync = Corosync {
        cluster_name: cluster.name.clone(),
        links,
        config_version: nodes.len() as u32,
    };
    let ceph = ceph_spec
        .zip(roles)
        .map(|(c, r)| ceph(c, r, pve_major, &networks, &nodes));
    let datacenter = datacenter(spec, parsed, &networks, &cluster.keyboard);
    let ha = ha(spec, parsed, pve_major);
    let notifications = notifications(spec);
    let realms = realms(spec);
    let firstboot = firstboot(spec);
    let image = image(spec, pve_major);
    let mut plan = Plan {
        format: PLAN_FORMAT,
        cluster,
        networks,
        nodes,
        corosync,
        ceph,
        datacenter,
        ha,
        notifications,
        realms,
        firstboot,
        image,
        steps: Vec::new(),
        warnings: warnings.iter().map(ToString::to_string).collect(),
    };
    plan.steps = steps(&plan);
    plan
}

fn networks(spec: &Spec, parsed: &Parsed) -> Vec<Network> {
    let mut bond_index = 0;
    spec.networks
        .iter()
        .map(|(name, n)| {
            let net = parsed.nets.get(name);
            let device = match (&n.interface, &n.bond) {
                (_, Some(b)) => {
                    let name = b
                        .name
                        .clone()
                        .unwrap_or_else(|| format!("bond{bond_index}"));
                    bond_index += 1;
                    let hashes = matches!(
                        b.mode.as_str(),
                        "802.3ad" | "balance-xor" | "balance-tlb" | "balance-alb"
                    );
                    NetDevice::Bond {
                        name,
                        slaves: b.slaves.clone(),
                        mode: b.mode.clone(),
                        miimon: b.miimon.unwrap_or(100),
                        // LACP and XOR bonds default to layer3+4 so one VM's flows can spread.
                        xmit_hash_policy: b
                            .xmit_hash_policy
                            .clone()
                            .or_else(|| hashes.then(|| "layer3+4".into())),
                        lacp_rate: b
                            .lacp_rate
                            .clone()
                            .or_else(|| (b.mode == "802.3ad").then(|| "fast".into())),
                    }
                }
                (Some(i), None) => NetDevice::Interface { name: i.clone() },
                (None, None) => NetDevice::Interface {
                    name: String::new(),
                },
            };
            let address_iface = n
                .bridge
                .clone()
                .unwrap_or_else(|| device.name().to_string());
            Network {
                name: name.to_string(),
                cidr: net.map(|n| n.to_string()).unwrap_or_else(|| n.cidr.clone()),
                prefix_len: net.map(|n| n.prefix_len()).unwrap_or_default(),
                gateway: n.gateway.clone(),
                dns: n.dns.clone(),
                mtu: n.mtu.unwrap_or(d::MTU),
                speed_mbps: parsed.speeds.get(name).copied(),
                corosync_link: n.corosync_link.map(|l| l as u8),
                device,
                bridge: n.bridge.clone(),
                address_iface,
            }
        })
        .collect()
}

/// Ceph daemon placement with defaults applied.
struct CephRoles {
    mons: Vec<String>,
    mgrs: Vec<String>,
    mds: Vec<String>,
}

impl CephRoles {
    fn of(c: &CephSpec, all: &[String]) -> Self {
        // MDS daemons only make sense with a CephFS, so they default to none without one.
        let mds_default = if c.cephfs.items.is_empty() {
            Vec::new()
        } else {
            all.to_vec()
        };
        CephRoles {
            mons: c.mons.clone().unwrap_or_else(|| all.to_vec()),
            mgrs: c.mgrs.clone().unwrap_or_else(|| all.to_vec()),
            mds: c.mds.clone().unwrap_or(mds_default),
        }
    }
}

fn nodes(
    spec: &Spec,
    parsed: &Parsed,
    networks: &[Network],
    roles: Option<&CephRoles>,
) -> Vec<Node> {
    let has = |list: Option<&Vec<String>>, n: &str| list.is_some_and(|l| l.iter().any(|x| x == n));
    spec.nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let addresses: Vec<NodeAddress> = networks
                .iter()
                .filter_map(|net| {
                    n.addresses.get(&net.name).map(|ip| NodeAddress {
                        network: net.name.clone(),
                        ip: ip.clone(),
                        ip_cidr: format!("{ip}/{}", net.prefix_len),
                        iface: net.address_iface.clone(),
                    })
                })
                .collect();
            let ip_on = |pred: &dyn Fn(&Network) -> bool| {
                networks
                    .iter()
                    .find(|x| pred(x))
                    .and_then(|net| n.addresses.get(&net.name))
                    .cloned()
            };
            let primary_ip = ip_on(&|x| x.gateway.is_some())
                .or_else(|| ip_on(&|x| x.corosync_link == Some(0)))
                .or_else(|| addresses.first().map(|a| a.ip.clone()))
                .unwrap_or_default();
            let mut links: Vec<NodeLink> = networks
                .iter()
                .filter_map(|net| {
                    let l = net.corosync_link?;
                    Some(NodeLink {
                        number: l,
                        network: net.name.clone(),
                        ip: n.addresses.get(&net.name)?.clone(),
                    })
                })
                .collect();
            links.sort_by_key(|l| l.number);
            Node {
                name: n.name.clone(),
                fqdn: format!("{}.{}", n.name, spec.cluster.domain),
                nodeid: i as u32 + 1,
                mac: parsed.macs.get(&i).cloned(),
                install_disk: n.install_disk.clone(),
                addresses,
                primary_ip,
                links,
                roles: NodeRoles {
                    founder: i == 0,
                    mon: has(roles.map(|r| &r.mons), &n.name),
                    mgr: has(roles.map(|r| &r.mgrs), &n.name),
                    mds: has(roles.map(|r| &r.mds), &n.name),
                },
                osds: n
                    .osd_disks
                    .iter()
                    .map(|d| Osd {
                        device: d.device.clone(),
                        wipe: d.wipe,
                        device_class: d.class.clone(),
                    })
                    .collect(),
            }
        })
        .collect()
}

fn ceph(
    c: &CephSpec,
    roles: CephRoles,
    pve_major: u32,
    networks: &[Network],
    nodes: &[Node],
) -> Ceph {
    let release = c
        .release
        .clone()
        .unwrap_or_else(|| d::default_ceph_release(pve_major).into());
    let version = d::CEPH_RELEASES
        .iter()
        .find(|(n, _, _)| *n == release)
        .map(|(_, ver, _)| ver.to_string())
        .unwrap_or_default();
    let public = c
        .public_network
        .clone()
        .or_else(|| networks.first().map(|n| n.name.clone()))
        .unwrap_or_default();
    let cluster = c.cluster_network.clone().unwrap_or_else(|| public.clone());
    let cidr = |name: &str| {
        networks
            .iter()
            .find(|n| n.name == name)
            .map(|n| n.cidr.clone())
            .unwrap_or_default()
    };
    let size = c.size.unwrap_or(d::CEPH_SIZE) as u8;
    let min_size = c.min_size.unwrap_or(d::CEPH_MIN_SIZE.min(size as i64)) as u8;
    let pools = c
        .pools
        .iter()
        .map(|p| {
            let autoscale = match &p.autoscale {
                Some(Autoscale::Bool(true)) => "on".to_string(),
                Some(Autoscale::Bool(false)) => "off".to_string(),
                Some(Autoscale::Text(t)) => t.clone(),
                // A fixed pg-num means the user wants that count, so the autoscaler stays off.
                None if p.pg_num.is_some() => "off".to_string(),
                None => "on".to_string(),
            };
            let psize = p.size.map_or(size, |s| s as u8);
            Pool {
                name: p.name.clone(),
                size: psize,
                min_size: p.min_size.map_or(min_size.min(psize), |s| s as u8),
                pg_num: p.pg_num.map(|n| n as u32),
                pg_autoscale_mode: autoscale,
                application: p
                    .application
                    .clone()
                    .unwrap_or_else(|| d::POOL_APPLICATION.into()),
                add_storage: p.add_storage,
            }
        })
        .collect();
    let cephfs = c
        .cephfs
        .items
        .iter()
        .map(|f| CephFs {
            name: f.name.clone(),
            pg_num: f.pg_num.map_or(d::CEPHFS_PG_NUM, |n| n as u32),
            add_storage: f.add_storage,
        })
        .collect();
    let extra_config = c
        .config
        .iter()
        .map(|(s, opts)| {
            (
                s.clone(),
                opts.iter()
                    .filter_map(|(k, val)| Some((k.clone(), v::ceph_value(val)?)))
                    .collect(),
            )
        })
        .collect();
    Ceph {
        release,
        version,
        repository: c
            .repository
            .clone()
            .unwrap_or_else(|| d::CEPH_REPOSITORY.into()),
        public_cidr: cidr(&public),
        cluster_cidr: cidr(&cluster),
        public_network: public,
        cluster_network: cluster,
        size,
        min_size,
        mons: roles.mons,
        mgrs: roles.mgrs,
        mds: roles.mds,
        pools,
        cephfs,
        extra_config,
        osd_count: nodes.iter().map(|n| n.osds.len() as u32).sum(),
    }
}

fn ha(spec: &Spec, parsed: &Parsed, pve_major: u32) -> Ha {
    Ha {
        mode: if pve_major >= 9 { "rules" } else { "groups" }.into(),
        groups: spec
            .ha
            .groups
            .iter()
            .enumerate()
            .map(|(i, g)| HaGroup {
                name: g.name.clone(),
                nodes: parsed
                    .group_members
                    .get(&i)
                    .into_iter()
                    .flatten()
                    .map(|(node, priority)| HaGroupNode {
                        node: node.clone(),
                        priority: *priority,
                    })
                    .collect(),
                restricted: g.restricted,
                nofailback: g.nofailback,
                comment: g.comment.clone(),
            })
            .collect(),
        resources: spec
            .ha
            .resources
            .iter()
            .enumerate()
            .map(|(i, r)| HaResource {
                sid: parsed
                    .sids
                    .get(&i)
                    .cloned()
                    .unwrap_or_else(|| r.sid.clone()),
                group: r.group.clone(),
                max_restart: r.max_restart.map_or(d::HA_MAX_RESTART, |x| x as u32),
                max_relocate: r.max_relocate.map_or(d::HA_MAX_RELOCATE, |x| x as u32),
                state: r.state.clone().unwrap_or_else(|| d::HA_STATE.into()),
                comment: r.comment.clone(),
            })
            .collect(),
    }
}

fn firstboot(spec: &Spec) -> Firstboot {
    let f = &spec.firstboot;
    let secs = |d: &Option<Duration>, default: u64| {
        d.as_ref()
            .and_then(|d| v::parse_duration(d).ok())
            .unwrap_or(default)
    };
    Firstboot {
        peer_timeout_secs: secs(&f.peer_timeout, d::PEER_TIMEOUT),
        join_timeout_secs: secs(&f.join_timeout, d::JOIN_TIMEOUT),
        health_timeout_secs: secs(&f.health_timeout, d::HEALTH_TIMEOUT),
        backoff_secs: secs(&f.backoff, d::DEFAULT_BACKOFF),
        max_backoff_secs: secs(&f.max_backoff, d::DEFAULT_MAX_BACKOFF),
        ceph_install: f
            .ceph_install
            .clone()
            .unwrap_or_else(|| "preinstalled".into()),
    }
}

fn image(spec: &Spec, pve_major: u32) -> Image {
    let im = &spec.image;
    let size = |s: &Option<String>, d: u64| {
        s.as_deref()
            .and_then(|s| v::parse_size(s).ok())
            .unwrap_or(d)
    };
    let base = im.base.clone().unwrap_or_else(|| "debian".into());
    let (base, base_file) = match base.as_str() {
        "debian" | "proxmox" => (base, None),
        _ => ("file".to_string(), Some(base)),
    };
    Image {
        disk_size: size(&im.disk_size, d::DEFAULT_DISK_SIZE),
        esp_size: size(&im.esp_size, d::DEFAULT_ESP_SIZE),
        base,
        base_file,
        suite: im
            .suite
            .clone()
            .unwrap_or_else(|| d::default_suite(pve_major).into()),
        extra_packages: im.extra_packages.clone(),
        kernel_cmdline: im.kernel_cmdline.clone(),
        boot_timeout_secs: im.boot_timeout.map_or(d::BOOT_TIMEOUT, |t| t as u32),
    }
}

/// The human-readable first-boot sequence, in the order the agent works through it.
pub fn steps(plan: &Plan) -> Vec<PlannedStep> {
    let mut out = Vec::new();
    let mut step = |id: String, node: &str, summary: String| {
        out.push(PlannedStep {
            id,
            node: node.to_string(),
            summary,
        });
    };
    let founder = plan.founder().name.clone();
    let nets: Vec<&str> = plan.networks.iter().map(|n| n.name.as_str()).collect();
    for n in &plan.nodes {
        let peers: Vec<&str> = plan
            .nodes
            .iter()
            .filter(|p| p.name != n.name)
            .map(|p| p.name.as_str())
            .collect();
        let summary = if peers.is_empty() {
            "no peers to wait for".to_string()
        } else {
            format!(
                "wait until {} answer on {} (up to {}s)",
                peers.join(", "),
                nets.join(" and "),
                plan.firstboot.peer_timeout_secs
            )
        };
        step(format!("wait-peers:{}", n.name), &n.name, summary);
    }
    let link_args = |n: &Node| -> String {
        n.links
            .iter()
            .map(|l| format!(" --link{} {}", l.number, l.ip))
            .collect()
    };
    let f = plan.founder();
    step(
        "cluster-create".into(),
        &founder,
        format!("pvecm create {}{}", plan.cluster.name, link_args(f)),
    );
    let founder_ip = f
        .links
        .first()
        .map(|l| l.ip.clone())
        .unwrap_or_else(|| f.primary_ip.clone());
    for (i, n) in plan.nodes.iter().enumerate().skip(1) {
        step(
            format!("join:{}", n.name),
            &n.name,
            format!(
                "pvecm add {founder_ip} --use_ssh 1{}; then wait until {} members are online and quorate",
                link_args(n),
                i + 1
            ),
        );
    }
    if let Some(c) = &plan.ceph {
        for n in &plan.nodes {
            let summary = if plan.firstboot.ceph_install == "pveceph" {
                format!(
                    "yes | pveceph install --repository {} --version {}",
                    c.repository, c.release
                )
            } else {
                format!(
                    "check Ceph {} ({}) packages are installed",
                    c.version, c.release
                )
            };
            step(format!("ceph-install:{}", n.name), &n.name, summary);
        }
        let mut init = format!("pveceph init --network {}", c.public_cidr);
        if c.cluster_cidr != c.public_cidr {
            init.push_str(&format!(" --cluster-network {}", c.cluster_cidr));
        }
        init.push_str(&format!(" --size {} --min_size {}", c.size, c.min_size));
        step("ceph-init".into(), &founder, init);
        if !c.extra_config.is_empty() {
            let opts: Vec<String> = c
                .extra_config
                .iter()
                .flat_map(|(s, o)| o.iter().map(move |(k, val)| format!("[{s}] {k} = {val}")))
                .collect();
            step(
                "ceph-config".into(),
                &founder,
                format!("set in ceph.conf: {}", opts.join("; ")),
            );
        }
        for (i, m) in c.mons.iter().enumerate() {
            let extra = if i == 0 {
                " (also creates this node's first manager)"
            } else {
                ""
            };
            step(format!("mon:{m}"), m, format!("pveceph mon create{extra}"));
        }
        let first_mon = c.mons.first();
        for m in &c.mgrs {
            if Some(m) == first_mon {
                step(
                    format!("mgr:{m}"),
                    m,
                    "verify the manager created with the first monitor".into(),
                );
            } else {
                step(format!("mgr:{m}"), m, "pveceph mgr create".into());
            }
        }
        for n in &plan.nodes {
            for o in &n.osds {
                let mut s = String::new();
                if o.wipe {
                    s.push_str(&format!(
                        "if {0} carries any signature: ceph-volume lvm zap {0} --destroy (wipe = true); ",
                        o.device
                    ));
                }
                s.push_str(&format!("pveceph osd create {}", o.device));
                if let Some(cls) = &o.device_class {
                    s.push_str(&format!(" --crush-device-class {cls}"));
                }
                if !o.wipe {
                    s.push_str(" (refused if the disk is not empty)");
                }
                step(format!("osd:{}:{}", n.name, o.device), &n.name, s);
            }
        }
        for p in &c.pools {
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
            step(format!("pool:{}", p.name), &founder, s);
        }
        for m in &c.mds {
            step(format!("mds:{m}"), m, "pveceph mds create".into());
        }
        for fs in &c.cephfs {
            step(
                format!("cephfs:{}", fs.name),
                &founder,
                format!(
                    "pveceph fs create --name {} --pg_num {} --add-storage {} (once a standby MDS is up)",
                    fs.name,
                    fs.pg_num,
                    u8::from(fs.add_storage)
                ),
            );
        }
    }
    let dc: Vec<String> = plan
        .datacenter
        .options
        .iter()
        .map(|(k, val)| format!("--{k} {val}"))
        .collect();
    step(
        "datacenter".into(),
        &founder,
        format!("pvesh set /cluster/options {}", dc.join(" ")),
    );
    let mut group_steps = Vec::new();
    let mut resource_steps = Vec::new();
    for g in &plan.ha.groups {
        let nodes = g.nodes_arg();
        let summary = if plan.ha.uses_rules() {
            let res = plan.ha.resources_in(&g.name);
            format!(
                "ha-manager rules add node-affinity {} --resources {} --nodes {nodes} --strict {}{}",
                g.name,
                if res.is_empty() { "<none yet>".to_string() } else { res.join(",") },
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
        };
        group_steps.push((format!("ha-group:{}", g.name), summary));
    }
    for r in &plan.ha.resources {
        let mut s = format!("ha-manager add {}", r.sid);
        if plan.ha.mode == "groups" {
            if let Some(g) = &r.group {
                s.push_str(&format!(" --group {g}"));
            }
        }
        s.push_str(&format!(
            " --max_restart {} --max_relocate {} --state {} (once the guest exists)",
            r.max_restart, r.max_relocate, r.state
        ));
        resource_steps.push((format!("ha-resource:{}", r.sid), s));
    }
    // PVE 8 resources name their group, so groups come first; PVE 9 rules name their
    // resources, so resources come first.
    let ha_steps = if plan.ha.uses_rules() {
        resource_steps.into_iter().chain(group_steps)
    } else {
        group_steps.into_iter().chain(resource_steps)
    };
    for (id, summary) in ha_steps.collect::<Vec<_>>() {
        step(id, &founder, summary);
    }
    for r in &plan.realms {
        let opts: Vec<String> = r
            .options
            .iter()
            .map(|(k, val)| format!("--{k} {val}"))
            .collect();
        step(
            format!("realm:{}", r.name),
            &founder,
            format!(
                "pveum realm add {} --type {} {}",
                r.name,
                r.kind,
                opts.join(" ")
            ),
        );
    }
    for s in &plan.notifications.smtp {
        let mut c = format!(
            "pvesh create /cluster/notifications/endpoints/smtp --name {} --server {} --port {} --mode {} --from-address {}",
            s.name, s.server, s.port, s.mode, s.from_address
        );
        if let Some(u) = &s.username {
            c.push_str(&format!(
                " --username {u} --password <{}>",
                s.password.as_ref().map_or("", |p| p.id.as_str())
            ));
        }
        for m in &s.mailto {
            c.push_str(&format!(" --mailto {m}"));
        }
        for m in &s.mailto_user {
            c.push_str(&format!(" --mailto-user {m}"));
        }
        step(format!("notify-target:{}", s.name), &founder, c);
    }
    for m in &plan.notifications.matchers {
        let t: String = m.targets.iter().map(|t| format!(" --target {t}")).collect();
        step(
            format!("notify-matcher:{}", m.name),
            &founder,
            format!(
                "pvesh create /cluster/notifications/matchers --name {} --mode {}{t}",
                m.name, m.mode
            ),
        );
    }
    if !plan.notifications.default_matcher_targets.is_empty() {
        let t: String = std::iter::once(v::BUILTIN_TARGET)
            .chain(
                plan.notifications
                    .default_matcher_targets
                    .iter()
                    .map(String::as_str),
            )
            .map(|t| format!(" --target {t}"))
            .collect();
        step(
            "notify-default-matcher".into(),
            &founder,
            format!("pvesh set /cluster/notifications/matchers/default-matcher{t}"),
        );
    }
    if plan.notifications.send_test {
        for s in &plan.notifications.smtp {
            step(
                format!("notify-test:{}", s.name),
                &founder,
                format!(
                    "pvesh create /cluster/notifications/targets/{}/test",
                    s.name
                ),
            );
        }
    }
    let health = match &plan.ceph {
        Some(c) => format!(
            "wait until {} nodes are online and quorate and Ceph reports HEALTH_OK with {} OSDs up and in (up to {}s)",
            plan.nodes.len(),
            c.osd_count,
            plan.firstboot.health_timeout_secs
        ),
        None => format!("wait until {} nodes are online and quorate (up to {}s)", plan.nodes.len(), plan.firstboot.health_timeout_secs),
    };
    step("health".into(), &founder, health);
    let report = match &plan.notifications.report_target {
        Some(t) => {
            format!("send \"cluster ready\" through {t}, revoke the bootstrap key, mark done")
        }
        None => "log \"cluster ready\", revoke the bootstrap key, mark done".into(),
    };
    step("report".into(), &founder, report);
    out
}
