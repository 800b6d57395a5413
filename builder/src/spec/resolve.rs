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
                    // Validated against BondMode's spellings; an unknown one never gets here.
                    let mode = BondMode::parse(&b.mode).unwrap_or(BondMode::ActiveBackup);
                    let hashes = mode.hashes();
                    NetDevice::Bond {
                        name,
                        slaves: b.slaves.clone(),
                        mode,
                        miimon: b.miimon.unwrap_or(100),
                        // LACP and XOR bonds default to layer3+4 so one VM's flows can spread.
                        xmit_hash_policy: b
                            .xmit_hash_policy
                            .clone()
                            .or_else(|| hashes.then(|| "layer3+4".into())),
                        lacp_rate: b
                            .lacp_rate
                            .clone()
                            .or_else(|| (mode == BondMode::Lacp).then(|| "fast".into())),
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
                install_wipe: n.install_wipe.unwrap_or(false),
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
        mode: if pve_major >= 9 {
            HaMode::Rules
        } else {
            HaMode::Groups
        },
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
        // Validated against CephInstall's spellings.
        ceph_install: f
            .ceph_install
            .as_deref()
            .and_then(CephInstall::parse)
            .unwrap_or(CephInstall::Preinstalled),
        report_url: f.report_url.clone(),
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
    let (base, base_file) = match BaseKind::parse(&base) {
        Some(k @ (BaseKind::Debian | BaseKind::Proxmox)) => (k, None),
        _ => (BaseKind::File, Some(base)),
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
        after_install: im
            .after_install
            .as_deref()
            .and_then(AfterInstall::parse)
            .unwrap_or_default(),
        install_confirm_secs: im.install_confirm.map_or(d::INSTALL_CONFIRM, |t| t as u64),
    }
}

/// The human-readable first-boot sequence: the agent's own steps
/// (`hcikit_firstboot::steps`), so the plan shows exactly what the agent runs.
pub fn steps(plan: &Plan) -> Vec<PlannedStep> {
    hcikit_firstboot::steps::planned(plan)
}
