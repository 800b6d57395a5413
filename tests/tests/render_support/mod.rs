//! Shared helpers for the render tests: hand-built Plans of the two scenarios (the spec
//! loader is developed in parallel; these keep the render tests independent of it and
//! cover shapes the examples may not, such as a bond), plus small file utilities.

#![allow(dead_code)]

use hcikit::render::files::NodeFile;
use hcikit::spec::secrets::SecretValues;
use hcikit_firstboot::plan::*;
use std::collections::BTreeMap;
use std::path::Path;

pub const SMTP_PASSWORD: &str = "sm7p-Pa55w0rd-do-not-leak";
pub const ROOT_HASH: &str = "$6$rounds=5000$saltsalt$H4shValueThatMustNeverAppearInRenderOutput000";

fn s(v: &str) -> String {
    v.to_string()
}

fn node(
    name: &str,
    id: u32,
    nets: &[(&Network, &str)],
    links: &[(u8, &str, &str)],
    osds: &[&str],
) -> Node {
    let addresses: Vec<NodeAddress> = nets
        .iter()
        .map(|(n, ip)| NodeAddress {
            network: n.name.clone(),
            ip: s(ip),
            ip_cidr: format!("{ip}/{}", n.prefix_len),
            iface: n.address_iface.clone(),
        })
        .collect();
    Node {
        name: s(name),
        fqdn: format!("{name}.lab.example"),
        nodeid: id,
        mac: None,
        install_disk: None,
        install_wipe: false,
        primary_ip: addresses[0].ip.clone(),
        addresses,
        links: links
            .iter()
            .map(|(n, net, ip)| NodeLink {
                number: *n,
                network: s(net),
                ip: s(ip),
            })
            .collect(),
        roles: NodeRoles {
            founder: id == 1,
            mon: true,
            mgr: true,
            mds: true,
        },
        osds: osds
            .iter()
            .map(|d| Osd {
                device: s(d),
                wipe: false,
                device_class: None,
            })
            .collect(),
    }
}

fn common(nodes: Vec<Node>, networks: Vec<Network>, links: Vec<CorosyncLink>) -> Plan {
    let names: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();
    Plan {
        format: PLAN_FORMAT,
        cluster: Cluster {
            name: s("lab"),
            domain: s("lab.example"),
            timezone: s("Europe/Berlin"),
            keyboard: s("en-us"),
            pve_major: 8,
            ntp_servers: vec![s("ntp1.lab.example"), s("ntp2.lab.example")],
            admin_ssh_keys: vec![s(
                "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTests admin@lab",
            )],
            root_password: Some(SecretRef::new("root-password-hash")),
            founder: names[0].clone(),
            join_order: names[1..].to_vec(),
        },
        networks,
        corosync: Corosync {
            cluster_name: s("lab"),
            links,
            config_version: nodes.len() as u32,
        },
        nodes,
        ceph: None,
        datacenter: Datacenter::default(),
        ha: Ha {
            mode: HaMode::Groups,
            groups: vec![],
            resources: vec![],
        },
        notifications: Notifications::default(),
        realms: vec![],
        firstboot: Firstboot {
            peer_timeout_secs: 1800,
            join_timeout_secs: 600,
            health_timeout_secs: 1800,
            backoff_secs: 2,
            max_backoff_secs: 60,
            ceph_install: CephInstall::Preinstalled,
            report_url: None,
        },
        image: Image {
            disk_size: 8 << 30,
            esp_size: 512 << 20,
            base: BaseKind::Debian,
            base_file: None,
            suite: s("bookworm"),
            extra_packages: vec![],
            kernel_cmdline: vec![],
            boot_timeout_secs: 3,
            after_install: AfterInstall::Reboot,
            install_confirm_secs: 10,
        },
        steps: vec![],
        warnings: vec![],
    }
}

fn ceph(public: &str, cidr: &str, nodes: &[&str], mds: bool) -> Ceph {
    let all: Vec<String> = nodes.iter().map(|n| s(n)).collect();
    Ceph {
        release: s("reef"),
        version: s("18.2"),
        repository: s("no-subscription"),
        public_network: s(public),
        public_cidr: s(cidr),
        cluster_network: s(public),
        cluster_cidr: s(cidr),
        size: 3,
        min_size: 2,
        mons: all.clone(),
        mgrs: all.clone(),
        mds: if mds { all } else { vec![] },
        pools: vec![],
        cephfs: vec![],
        extra_config: BTreeMap::new(),
        osd_count: 0,
    }
}

/// Scenario A ("lab"): mgmt on vmbr0 over ens18 (link0, gateway), storage on ens19
/// (link1, Ceph public), or on an LACP bond of ens19+ens20 with MTU 9000 when `bond`.
pub fn lab_plan(bond: bool) -> Plan {
    let mgmt = Network {
        name: s("mgmt"),
        cidr: s("10.2.21.0/24"),
        prefix_len: 24,
        gateway: Some(s("10.2.21.1")),
        dns: vec![s("10.2.21.1")],
        mtu: 1500,
        speed_mbps: Some(1000),
        corosync_link: Some(0),
        device: NetDevice::Interface { name: s("ens18") },
        bridge: Some(s("vmbr0")),
        address_iface: s("vmbr0"),
    };
    let storage = Network {
        name: s("storage"),
        cidr: s("10.2.22.0/24"),
        prefix_len: 24,
        gateway: None,
        dns: vec![],
        mtu: if bond { 9000 } else { 1500 },
        speed_mbps: Some(10000),
        corosync_link: Some(1),
        device: if bond {
            NetDevice::Bond {
                name: s("bond0"),
                slaves: vec![s("ens19"), s("ens20")],
                mode: BondMode::Lacp,
                miimon: 100,
                xmit_hash_policy: Some(s("layer3+4")),
                lacp_rate: Some(s("fast")),
            }
        } else {
            NetDevice::Interface { name: s("ens19") }
        },
        bridge: None,
        address_iface: s(if bond { "bond0" } else { "ens19" }),
    };
    let nodes = (0..3)
        .map(|i| {
            let a = format!("10.2.21.{}", 66 + i);
            let b = format!("10.2.22.{}", 66 + i);
            node(
                &format!("pve{}", i + 1),
                i + 1,
                &[(&mgmt, &a), (&storage, &b)],
                &[(0, "mgmt", &a), (1, "storage", &b)],
                &["/dev/sdb", "/dev/sdc"],
            )
        })
        .collect();
    let mut p = common(
        nodes,
        vec![mgmt, storage],
        vec![
            CorosyncLink {
                number: 0,
                network: s("mgmt"),
            },
            CorosyncLink {
                number: 1,
                network: s("storage"),
            },
        ],
    );
    let mut c = ceph("storage", "10.2.22.0/24", &["pve1", "pve2", "pve3"], true);
    c.osd_count = 6;
    c.pools = vec![Pool {
        name: s("cephrdb01"),
        size: 3,
        min_size: 2,
        pg_num: None,
        pg_autoscale_mode: s("on"),
        application: s("rbd"),
        add_storage: true,
    }];
    c.cephfs = vec![CephFs {
        name: s("cephfs01"),
        pg_num: 128,
        add_storage: true,
    }];
    p.ceph = Some(c);
    p.datacenter.options = BTreeMap::from([
        (s("bwlimit"), s("migration=1105920")),
        (s("ha"), s("shutdown_policy=migrate")),
        (s("keyboard"), s("en-us")),
        (s("migration"), s("type=secure,network=10.2.22.0/24")),
    ]);
    p.ha.groups = vec![HaGroup {
        name: s("prefer-pve1"),
        nodes: vec![
            HaGroupNode {
                node: s("pve1"),
                priority: Some(2),
            },
            HaGroupNode {
                node: s("pve2"),
                priority: None,
            },
            HaGroupNode {
                node: s("pve3"),
                priority: None,
            },
        ],
        restricted: true,
        nofailback: true,
        comment: Some(s("restricted, no failback")),
    }];
    p.notifications = Notifications {
        smtp: vec![SmtpTarget {
            name: s("smtp-relay"),
            server: s("mail.lab.example"),
            port: 587,
            mode: s("starttls"),
            username: Some(s("pve-alerts")),
            password: Some(SecretRef::new("smtp/smtp-relay/password")),
            from_address: s("pve@lab.example"),
            mailto: vec![],
            mailto_user: vec![s("root@pam")],
            author: Some(s("PVE lab")),
            comment: None,
        }],
        matchers: vec![],
        default_matcher_targets: vec![s("smtp-relay")],
        report_target: Some(s("smtp-relay")),
        send_test: true,
    };
    p
}

/// Scenario B ("minipc"): one 1 GbE network for everything, one OSD per node, HA resources.
pub fn minipc_plan() -> Plan {
    let lan = Network {
        name: s("lan"),
        cidr: s("192.168.1.0/24"),
        prefix_len: 24,
        gateway: Some(s("192.168.1.1")),
        dns: vec![s("192.168.1.1")],
        mtu: 1500,
        speed_mbps: Some(1000),
        corosync_link: Some(0),
        device: NetDevice::Interface { name: s("enp1s0") },
        bridge: Some(s("vmbr0")),
        address_iface: s("vmbr0"),
    };
    let disks = ["/dev/nvme1n1", "/dev/sda", "/dev/sda"];
    let nodes = (0..3)
        .map(|i| {
            let a = format!("192.168.1.{}", 11 + i);
            let mut n = node(
                &format!("mini{}", i + 1),
                i + 1,
                &[(&lan, &a)],
                &[(0, "lan", &a)],
                &[disks[i as usize]],
            );
            n.fqdn = format!("mini{}.home.example", i + 1);
            n.roles.mds = false;
            n
        })
        .collect();
    let mut p = common(
        nodes,
        vec![lan],
        vec![CorosyncLink {
            number: 0,
            network: s("lan"),
        }],
    );
    p.cluster.name = s("minipc");
    p.cluster.domain = s("home.example");
    p.cluster.ntp_servers = vec![];
    p.cluster.admin_ssh_keys = vec![];
    p.corosync.cluster_name = s("minipc");
    let mut c = ceph("lan", "192.168.1.0/24", &["mini1", "mini2", "mini3"], false);
    c.mgrs = vec![s("mini1"), s("mini2")];
    c.osd_count = 3;
    c.extra_config = BTreeMap::from([(
        s("osd"),
        BTreeMap::from([(s("osd_memory_target"), s("2147483648"))]),
    )]);
    p.ceph = Some(c);
    p.datacenter.options = BTreeMap::from([(s("ha"), s("shutdown_policy=migrate"))]);
    p.ha.groups = vec![HaGroup {
        name: s("all"),
        nodes: ["mini1", "mini2", "mini3"]
            .iter()
            .map(|n| HaGroupNode {
                node: s(n),
                priority: None,
            })
            .collect(),
        restricted: false,
        nofailback: false,
        comment: None,
    }];
    p.ha.resources = vec![HaResource {
        sid: s("vm:100"),
        group: Some(s("all")),
        max_restart: 2,
        max_relocate: 1,
        state: s("started"),
        comment: None,
    }];
    p
}

/// The Plan of a shipped example (`examples/<name>.toml`), through the real loader.
pub fn example_plan(name: &str) -> Plan {
    let spec = hcikit_tests::workspace_root()
        .join("examples")
        .join(format!("{name}.toml"));
    hcikit::load(&spec).unwrap().plan
}

pub fn secrets() -> SecretValues {
    let mut v = SecretValues::new();
    v.insert("smtp/smtp-relay/password", SMTP_PASSWORD);
    v.insert("root-password-hash", ROOT_HASH);
    v
}

pub fn file<'a>(files: &'a [NodeFile], path: &str) -> &'a NodeFile {
    files
        .iter()
        .find(|f| f.path == path)
        .unwrap_or_else(|| panic!("no {path} among {files:?}"))
}

pub fn text(files: &[NodeFile], path: &str) -> String {
    String::from_utf8(file(files, path).contents.clone()).unwrap()
}

/// Is `program` installed? If not, print why the test does nothing (CI installs them all).
pub fn write(dir: &Path, name: &str, contents: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, contents).unwrap();
    p
}
