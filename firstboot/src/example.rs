//! Example Plans of the two scenarios (a lab with Ceph on two networks, three mini PCs on
//! one), built as literals so the agent's tests, the simulator and its benchmark run
//! without the builder's spec loader.

use crate::plan::*;
use std::collections::BTreeMap;

fn node(
    name: &str,
    nodeid: u32,
    mac: &str,
    nets: &[(&str, &str, &str, Option<u8>)],
    roles: NodeRoles,
    osds: &[(&str, bool)],
    domain: &str,
) -> Node {
    let addresses: Vec<NodeAddress> = nets
        .iter()
        .map(|(net, ip, iface, _)| NodeAddress {
            network: net.to_string(),
            ip: ip.to_string(),
            ip_cidr: format!("{ip}/24"),
            iface: iface.to_string(),
        })
        .collect();
    let links = nets
        .iter()
        .filter_map(|(net, ip, _, link)| {
            link.map(|number| NodeLink {
                number,
                network: net.to_string(),
                ip: ip.to_string(),
            })
        })
        .collect();
    Node {
        name: name.into(),
        fqdn: format!("{name}.{domain}"),
        nodeid,
        mac: Some(mac.into()),
        install_disk: None,
        install_wipe: false,
        primary_ip: addresses[0].ip.clone(),
        addresses,
        links,
        roles,
        osds: osds
            .iter()
            .map(|(d, wipe)| Osd {
                device: d.to_string(),
                wipe: *wipe,
                device_class: Some("ssd".into()),
            })
            .collect(),
    }
}

fn network(
    name: &str,
    cidr: &str,
    gw: Option<&str>,
    link: Option<u8>,
    nic: &str,
    bridge: Option<&str>,
) -> Network {
    Network {
        name: name.into(),
        cidr: cidr.into(),
        prefix_len: 24,
        gateway: gw.map(str::to_string),
        dns: gw.map(|g| vec![g.to_string()]).unwrap_or_default(),
        mtu: 1500,
        speed_mbps: Some(1000),
        corosync_link: link,
        device: NetDevice::Interface { name: nic.into() },
        bridge: bridge.map(str::to_string),
        address_iface: bridge.unwrap_or(nic).to_string(),
    }
}

fn firstboot() -> Firstboot {
    Firstboot {
        peer_timeout_secs: 1800,
        join_timeout_secs: 600,
        health_timeout_secs: 1800,
        backoff_secs: 2,
        max_backoff_secs: 30,
        ceph_install: CephInstall::Preinstalled,
        report_url: None,
    }
}

fn image() -> Image {
    Image {
        disk_size: 8 << 30,
        esp_size: 512 << 20,
        base: BaseKind::Proxmox,
        base_file: None,
        suite: "bookworm".into(),
        extra_packages: vec![],
        kernel_cmdline: vec![],
        boot_timeout_secs: 3,
        after_install: AfterInstall::Reboot,
        install_confirm_secs: 10,
    }
}

/// Scenario A: three nodes, management (link0, vmbr0) and storage (link1, Ceph) networks.
pub fn lab_plan() -> Plan {
    let names = ["pve1", "pve2", "pve3"];
    let nodes: Vec<Node> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            node(
                n,
                i as u32 + 1,
                &format!("bc:24:11:00:00:0{}", i + 1),
                &[
                    ("mgmt", &format!("10.2.21.{}", 66 + i), "vmbr0", Some(0)),
                    ("storage", &format!("10.2.22.{}", 66 + i), "ens19", Some(1)),
                ],
                NodeRoles {
                    founder: i == 0,
                    mon: true,
                    mgr: true,
                    mds: true,
                },
                &[("/dev/sdb", false), ("/dev/sdc", false)],
                "lab.example",
            )
        })
        .collect();
    let all: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let mut dc = BTreeMap::new();
    dc.insert(
        "migration".into(),
        "type=secure,network=10.2.22.0/24".into(),
    );
    dc.insert("ha".into(), "shutdown_policy=migrate".into());
    dc.insert("bwlimit".into(), "migration=109863".into());
    dc.insert("keyboard".into(), "en-us".into());
    Plan {
        format: PLAN_FORMAT,
        cluster: Cluster {
            name: "pvelab".into(),
            domain: "lab.example".into(),
            timezone: "Europe/Berlin".into(),
            keyboard: "en-us".into(),
            pve_major: 8,
            ntp_servers: vec![],
            admin_ssh_keys: vec!["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAdmin admin@lab".into()],
            root_password: None,
            founder: "pve1".into(),
            join_order: vec!["pve2".into(), "pve3".into()],
        },
        networks: vec![
            network(
                "mgmt",
                "10.2.21.0/24",
                Some("10.2.21.1"),
                Some(0),
                "ens18",
                Some("vmbr0"),
            ),
            network("storage", "10.2.22.0/24", None, Some(1), "ens19", None),
        ],
        corosync: Corosync {
            cluster_name: "pvelab".into(),
            links: vec![
                CorosyncLink {
                    number: 0,
                    network: "mgmt".into(),
                },
                CorosyncLink {
                    number: 1,
                    network: "storage".into(),
                },
            ],
            config_version: 3,
        },
        ceph: Some(Ceph {
            release: "reef".into(),
            version: "18.2".into(),
            repository: "no-subscription".into(),
            public_network: "storage".into(),
            public_cidr: "10.2.22.0/24".into(),
            cluster_network: "storage".into(),
            cluster_cidr: "10.2.22.0/24".into(),
            size: 3,
            min_size: 2,
            mons: all.clone(),
            mgrs: all.clone(),
            mds: all.clone(),
            pools: vec![Pool {
                name: "cephrdb01".into(),
                size: 3,
                min_size: 2,
                pg_num: None,
                pg_autoscale_mode: "on".into(),
                application: "rbd".into(),
                add_storage: true,
            }],
            cephfs: vec![CephFs {
                name: "cephfs01".into(),
                pg_num: 128,
                add_storage: true,
            }],
            extra_config: BTreeMap::new(),
            osd_count: 6,
        }),
        nodes,
        datacenter: Datacenter { options: dc },
        ha: Ha {
            mode: HaMode::Groups,
            groups: vec![HaGroup {
                name: "ha-group01".into(),
                nodes: all
                    .iter()
                    .map(|n| HaGroupNode {
                        node: n.clone(),
                        priority: None,
                    })
                    .collect(),
                restricted: true,
                nofailback: true,
                comment: None,
            }],
            resources: vec![],
        },
        notifications: Notifications {
            smtp: vec![SmtpTarget {
                name: "smtp-relay".into(),
                server: "mail.example.com".into(),
                port: 587,
                mode: "starttls".into(),
                username: Some("pve-alerts".into()),
                password: Some(SecretRef::new("smtp/smtp-relay/password")),
                from_address: "pve@lab.example".into(),
                mailto: vec![],
                mailto_user: vec!["root@pam".into()],
                author: Some("PVE lab".into()),
                comment: None,
            }],
            matchers: vec![],
            default_matcher_targets: vec!["smtp-relay".into()],
            report_target: Some("smtp-relay".into()),
            send_test: true,
        },
        realms: vec![],
        firstboot: firstboot(),
        image: image(),
        steps: vec![],
        warnings: vec![],
    }
}

/// Scenario B: three mini PCs on one gigabit network, one (wiped) SSD each.
pub fn minipc_plan() -> Plan {
    let names = ["pve1", "pve2", "pve3"];
    let nodes: Vec<Node> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            node(
                n,
                i as u32 + 1,
                &format!("bc:24:11:00:01:0{}", i + 1),
                &[("lan", &format!("192.168.1.{}", 11 + i), "vmbr0", Some(0))],
                NodeRoles {
                    founder: i == 0,
                    mon: true,
                    mgr: i < 2,
                    mds: false,
                },
                &[("/dev/sdb", true)],
                "home.example",
            )
        })
        .collect();
    let all: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let mut dc = BTreeMap::new();
    dc.insert(
        "migration".into(),
        "type=secure,network=192.168.1.0/24".into(),
    );
    dc.insert("ha".into(), "shutdown_policy=migrate".into());
    Plan {
        format: PLAN_FORMAT,
        cluster: Cluster {
            name: "minipc".into(),
            domain: "home.example".into(),
            timezone: "Europe/Berlin".into(),
            keyboard: "en-us".into(),
            pve_major: 8,
            ntp_servers: vec![],
            admin_ssh_keys: vec![],
            root_password: None,
            founder: "pve1".into(),
            join_order: vec!["pve2".into(), "pve3".into()],
        },
        networks: vec![network(
            "lan",
            "192.168.1.0/24",
            Some("192.168.1.1"),
            Some(0),
            "enp1s0",
            Some("vmbr0"),
        )],
        corosync: Corosync {
            cluster_name: "minipc".into(),
            links: vec![CorosyncLink {
                number: 0,
                network: "lan".into(),
            }],
            config_version: 3,
        },
        ceph: Some(Ceph {
            release: "reef".into(),
            version: "18.2".into(),
            repository: "no-subscription".into(),
            public_network: "lan".into(),
            public_cidr: "192.168.1.0/24".into(),
            cluster_network: "lan".into(),
            cluster_cidr: "192.168.1.0/24".into(),
            size: 3,
            min_size: 2,
            mons: all.clone(),
            mgrs: vec!["pve1".into(), "pve2".into()],
            mds: vec![],
            pools: vec![Pool {
                name: "vmpool".into(),
                size: 3,
                min_size: 2,
                pg_num: Some(64),
                pg_autoscale_mode: "on".into(),
                application: "rbd".into(),
                add_storage: true,
            }],
            cephfs: vec![],
            extra_config: BTreeMap::new(),
            osd_count: 3,
        }),
        nodes,
        datacenter: Datacenter { options: dc },
        ha: Ha {
            mode: HaMode::Groups,
            groups: vec![],
            resources: vec![],
        },
        notifications: Notifications::default(),
        realms: vec![],
        firstboot: Firstboot {
            ceph_install: CephInstall::Pveceph,
            ..firstboot()
        },
        image: image(),
        steps: vec![],
        warnings: vec![],
    }
}
