//! Rendering: file set, formats against the Proxmox reference layouts, strict mode,
//! overrides, secrets. Tools-based checks are in `render_tools.rs`, goldens in
//! `render_golden.rs`.

mod render_support;

use hcikit::render::files::Placement;
use hcikit::render::{render_all, render_node, RenderOptions};
use hcikit::spec::secrets::{SecretValues, REDACTED};
use hcikit_firstboot::plan::{HaMode, HaResource, Plan, Realm, SecretRef};
use render_support::*;
use std::collections::BTreeMap;

fn render(plan: &Plan, node: &str) -> Vec<hcikit::render::files::NodeFile> {
    render_node(plan, node, &secrets(), &RenderOptions::default()).unwrap()
}

/// The §1.3 reference inputs: `pvecm create pvelab --link0 192.168.1.11 --link1 10.10.10.11`
/// and two joins.
fn reference_plan() -> Plan {
    let mut p = lab_plan(false);
    p.corosync.cluster_name = "pvelab".into();
    p.cluster.name = "pvelab".into();
    for (i, n) in p.nodes.iter_mut().enumerate() {
        let a = format!("192.168.1.{}", 11 + i);
        let b = format!("10.10.10.{}", 11 + i);
        n.primary_ip = a.clone();
        n.addresses[0].ip = a.clone();
        n.addresses[0].ip_cidr = format!("{a}/24");
        n.addresses[1].ip = b.clone();
        n.addresses[1].ip_cidr = format!("{b}/24");
        n.links[0].ip = a;
        n.links[1].ip = b;
    }
    let c = p.ceph.as_mut().unwrap();
    c.public_cidr = "10.10.10.0/24".into();
    c.cluster_cidr = "10.10.10.0/24".into();
    p
}

#[test]
fn corosync_conf_is_exactly_what_pvecm_writes() {
    // Copied from reference/proxmox.md §1.3 (the layout pvecm's writer produces).
    let expected = "\
logging {
  debug: off
  to_syslog: yes
}

nodelist {
  node {
    name: pve1
    nodeid: 1
    quorum_votes: 1
    ring0_addr: 192.168.1.11
    ring1_addr: 10.10.10.11
  }
  node {
    name: pve2
    nodeid: 2
    quorum_votes: 1
    ring0_addr: 192.168.1.12
    ring1_addr: 10.10.10.12
  }
  node {
    name: pve3
    nodeid: 3
    quorum_votes: 1
    ring0_addr: 192.168.1.13
    ring1_addr: 10.10.10.13
  }
}

quorum {
  provider: corosync_votequorum
}

totem {
  cluster_name: pvelab
  config_version: 3
  interface {
    linknumber: 0
  }
  interface {
    linknumber: 1
  }
  ip_version: ipv4-6
  link_mode: passive
  secauth: on
  version: 2
}
";
    let plan = reference_plan();
    for node in ["pve1", "pve2", "pve3"] {
        assert_eq!(
            text(&render(&plan, node), "/etc/pve/corosync.conf"),
            expected
        );
    }
}

#[test]
fn corosync_node_blocks_are_sorted_by_name_and_keep_their_ids() {
    let mut plan = lab_plan(false);
    // Spec order (and so node ids) differs from name order.
    plan.nodes.swap(0, 2);
    plan.nodes[0].name = "zeta".into();
    plan.ceph = None;
    let out = text(&render(&plan, "zeta"), "/etc/pve/corosync.conf");
    let names: Vec<&str> = out
        .lines()
        .filter_map(|l| l.trim().strip_prefix("name: "))
        .collect();
    assert_eq!(names, ["pve1", "pve2", "zeta"]);
    assert!(out.contains("    name: zeta\n    nodeid: 3\n"), "{out}");
}

#[test]
fn ceph_conf_is_what_pveceph_leaves_after_init_mons_and_mds_without_fsid() {
    // reference/proxmox.md §2.2 for `--network 10.10.10.0/24`, 3 mons, 3 mds; fsid is
    // generated on the node by `pveceph init`, so the desired file has none.
    let expected = "\
[global]
\tauth_client_required = cephx
\tauth_cluster_required = cephx
\tauth_service_required = cephx
\tcluster_network = 10.10.10.0/24
\tmon_allow_pool_delete = true
\tmon_host = 10.10.10.11 10.10.10.12 10.10.10.13
\tms_bind_ipv4 = true
\tms_bind_ipv6 = false
\tosd_pool_default_min_size = 2
\tosd_pool_default_size = 3
\tpublic_network = 10.10.10.0/24

[client]
\tkeyring = /etc/pve/priv/$cluster.$name.keyring

[client.crash]
\tkeyring = /etc/pve/ceph/$cluster.$name.keyring

[mds]
\tkeyring = /var/lib/ceph/mds/ceph-$id/keyring

[mds.pve1]
\thost = pve1
\tmds_standby_for_name = pve

[mds.pve2]
\thost = pve2
\tmds_standby_for_name = pve

[mds.pve3]
\thost = pve3
\tmds_standby_for_name = pve

[mon.pve1]
\tpublic_addr = 10.10.10.11

[mon.pve2]
\tpublic_addr = 10.10.10.12

[mon.pve3]
\tpublic_addr = 10.10.10.13

";
    assert_eq!(
        text(&render(&reference_plan(), "pve2"), "/etc/pve/ceph.conf"),
        expected
    );
}

#[test]
fn ceph_extra_config_lands_in_its_section_in_key_order() {
    let mut plan = minipc_plan();
    let extra = &mut plan.ceph.as_mut().unwrap().extra_config;
    extra.insert(
        "global".into(),
        BTreeMap::from([("mon_allow_pool_delete".into(), "false".into())]),
    );
    let out = text(&render(&plan, "mini1"), "/etc/pve/ceph.conf");
    assert!(out.contains("\tmon_allow_pool_delete = false\n"), "{out}");
    assert!(!out.contains("mon_allow_pool_delete = true"), "{out}");
    // `[osd]` comes after the mon sections, like Proxmox's writer puts it.
    let osd = out
        .find("[osd]\n\tosd_memory_target = 2147483648\n")
        .expect(&out);
    assert!(osd > out.find("[mon.mini3]").unwrap(), "{out}");
    // No MDS planned in minipc: no MDS sections.
    assert!(!out.contains("[mds"), "{out}");
}

#[test]
fn hosts_lists_every_node_and_never_loopback_for_the_hostname() {
    let plan = lab_plan(false);
    let out = text(&render(&plan, "pve2"), "/etc/hosts");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "127.0.0.1 localhost.localdomain localhost");
    assert_eq!(lines[1], "10.2.21.67 pve2.lab.example pve2");
    assert!(lines.contains(&"10.2.21.66 pve1.lab.example pve1"));
    assert!(lines.contains(&"10.2.21.68 pve3.lab.example pve3"));
    assert!(!out.contains("127.0.1.1"), "{out}");
    assert!(out.contains("::1     ip6-localhost ip6-loopback"));
}

#[test]
fn pmxcfs_files_are_desired_and_owned_by_www_data() {
    let files = render(&lab_plan(false), "pve1");
    for f in &files {
        if f.path.starts_with("/etc/pve/") {
            assert_eq!(f.placement, Placement::Desired, "{f:?}");
            assert_eq!((f.uid, f.gid), (0, 33), "{f:?}");
            let want = if f.path.starts_with("/etc/pve/priv/") {
                0o600
            } else {
                0o640
            };
            assert_eq!(f.mode, want, "{f:?}");
        } else {
            assert_eq!(f.placement, Placement::Install, "{f:?}");
            assert_eq!((f.uid, f.gid), (0, 0), "{f:?}");
        }
    }
    let secret: Vec<&str> = files
        .iter()
        .filter(|f| f.secret)
        .map(|f| f.path.as_str())
        .collect();
    assert_eq!(secret, ["/etc/pve/priv/notifications.cfg"]);
    assert_eq!(file(&files, "/root/.ssh/authorized_keys").mode, 0o600);
}

#[test]
fn conditional_files_follow_the_plan() {
    let lab = render(&lab_plan(false), "pve1");
    let paths = |f: &[hcikit::render::files::NodeFile]| -> Vec<String> {
        f.iter().map(|x| x.path.clone()).collect()
    };
    let lab_paths = paths(&lab);
    assert!(lab_paths.contains(&"/etc/pve/ha/groups.cfg".to_string()));
    assert!(!lab_paths.contains(&"/etc/pve/ha/resources.cfg".to_string()));
    assert!(!lab_paths.contains(&"/etc/pve/domains.cfg".to_string()));

    let mini = paths(&render(&minipc_plan(), "mini1"));
    // No SMTP password, no NTP servers, no admin keys in the minipc fixture.
    for absent in [
        "/etc/pve/priv/notifications.cfg",
        "/etc/chrony/sources.d/hcikit.sources",
        "/root/.ssh/authorized_keys",
    ] {
        assert!(!mini.contains(&absent.to_string()), "{absent} in {mini:?}");
    }
    assert!(mini.contains(&"/etc/pve/ha/resources.cfg".to_string()));
    // Only the built-in notification defaults: no file, as on a fresh Proxmox.
    assert!(!mini.contains(&"/etc/pve/notifications.cfg".to_string()));
    assert!(lab_paths.contains(&"/etc/pve/notifications.cfg".to_string()));

    let mut no_ceph = minipc_plan();
    no_ceph.ceph = None;
    assert!(!paths(&render(&no_ceph, "mini1")).contains(&"/etc/pve/ceph.conf".to_string()));
}

#[test]
fn pve8_groups_and_resources_use_section_config() {
    let files = render(&minipc_plan(), "mini2");
    assert_eq!(
        text(&files, "/etc/pve/ha/groups.cfg"),
        "group: all\n\tnodes mini1,mini2,mini3\n\tnofailback 0\n\trestricted 0\n\n"
    );
    assert_eq!(
        text(&files, "/etc/pve/ha/resources.cfg"),
        "vm: 100\n\tgroup all\n\tmax_relocate 1\n\tmax_restart 2\n\tstate started\n\n"
    );
}

#[test]
fn pve9_renders_node_affinity_rules_instead_of_groups() {
    let mut plan = lab_plan(false);
    plan.cluster.pve_major = 9;
    plan.ha.mode = HaMode::Rules;
    plan.ha.resources = vec![HaResource {
        sid: "vm:100".into(),
        group: Some("prefer-pve1".into()),
        max_restart: 1,
        max_relocate: 1,
        state: "started".into(),
        comment: None,
    }];
    let files = render(&plan, "pve1");
    assert!(files.iter().all(|f| f.path != "/etc/pve/ha/groups.cfg"));
    assert_eq!(
        text(&files, "/etc/pve/ha/rules.cfg"),
        "node-affinity: prefer-pve1\n\tcomment restricted, no failback\n\
         \tnodes pve1:2,pve2,pve3\n\tresources vm:100\n\tstrict 1\n\n"
    );
    // The group's nofailback moves to the resource; groups do not exist in PVE 9.
    assert_eq!(
        text(&files, "/etc/pve/ha/resources.cfg"),
        "vm: 100\n\tfailback 0\n\tmax_relocate 1\n\tmax_restart 1\n\tstate started\n\n"
    );
}

#[test]
fn notifications_extend_the_built_in_default_matcher() {
    let out = text(
        &render(&lab_plan(false), "pve1"),
        "/etc/pve/notifications.cfg",
    );
    assert!(out.starts_with(
        "sendmail: mail-to-root\n\tcomment Send mails to root@pam's email address\n\tmailto-user root@pam\n\n"
    ), "{out}");
    // proxmox-rs writes sections separated by one blank line, none after the last.
    assert!(out.ends_with(
        "\n\nmatcher: default-matcher\n\tcomment Route all notifications to mail-to-root\n\tmode all\n\ttarget mail-to-root\n\ttarget smtp-relay\n"
    ), "{out}");
    assert!(out.contains("smtp: smtp-relay\n"), "{out}");
    assert!(out.contains("\tfrom-address pve@lab.example\n"), "{out}");
    assert!(
        out.contains("\tport 587\n\tserver mail.lab.example\n\tusername pve-alerts\n"),
        "{out}"
    );
    assert!(!out.contains("password"), "{out}");
}

#[test]
fn secrets_are_redacted_unless_revealed() {
    let plan = lab_plan(false);
    let redacted = render_all(&plan, &secrets(), &RenderOptions::default()).unwrap();
    for (node, files) in &redacted {
        for f in files {
            let t = String::from_utf8_lossy(&f.contents);
            assert!(!t.contains(SMTP_PASSWORD), "{node}:{}", f.path);
            assert!(!t.contains(ROOT_HASH), "{node}:{}", f.path);
        }
        let p = file(files, "/etc/pve/priv/notifications.cfg");
        assert!(p.secret && p.mode == 0o600);
        assert_eq!(
            String::from_utf8_lossy(&p.contents),
            format!("smtp: smtp-relay\n\tpassword {REDACTED}\n")
        );
    }
    let opts = RenderOptions {
        reveal_secrets: true,
        ..Default::default()
    };
    let files = render_node(&plan, "pve3", &secrets(), &opts).unwrap();
    let p = file(&files, "/etc/pve/priv/notifications.cfg");
    assert_eq!(
        String::from_utf8_lossy(&p.contents),
        format!("smtp: smtp-relay\n\tpassword {SMTP_PASSWORD}\n")
    );
    assert_eq!(p.mode, 0o600);
}

#[test]
fn revealing_needs_every_referenced_secret() {
    let opts = RenderOptions {
        reveal_secrets: true,
        ..Default::default()
    };
    let err = render_node(&lab_plan(false), "pve1", &SecretValues::new(), &opts).unwrap_err();
    assert!(
        format!("{err:#}").contains("smtp/smtp-relay/password"),
        "{err:#}"
    );
    assert_eq!(hcikit::error::exit_code(&err), 2);
    // Redacted rendering does not need the values at all.
    render_node(
        &lab_plan(false),
        "pve1",
        &SecretValues::new(),
        &RenderOptions::default(),
    )
    .unwrap();
}

#[test]
fn realms_render_after_the_built_in_ones_and_openid_key_makes_the_file_secret() {
    let mut plan = lab_plan(false);
    plan.realms = vec![
        Realm {
            name: "corp".into(),
            kind: "ad".into(),
            options: BTreeMap::from([
                ("domain".into(), "corp.example".into()),
                ("server1".into(), "dc1.corp.example".into()),
            ]),
            secret: Some(SecretRef::new("realm/corp/password")),
            default: true,
            comment: Some("Active Directory".into()),
        },
        Realm {
            name: "sso".into(),
            kind: "openid".into(),
            options: BTreeMap::from([
                ("client-id".into(), "pve".into()),
                ("issuer-url".into(), "https://id.example".into()),
            ]),
            secret: Some(SecretRef::new("realm/sso/client-key")),
            default: false,
            comment: None,
        },
    ];
    let mut s = secrets();
    s.insert("realm/corp/password", "ad-bind-secret");
    s.insert("realm/sso/client-key", "oidc-client-secret");
    let files = render_node(&plan, "pve1", &s, &RenderOptions::default()).unwrap();
    let d = file(&files, "/etc/pve/domains.cfg");
    assert!(d.secret && d.mode == 0o600);
    let out = String::from_utf8_lossy(&d.contents);
    assert_eq!(
        out,
        format!(
            "pam: pam\n\tcomment Linux PAM standard authentication\n\n\
             pve: pve\n\tcomment Proxmox VE authentication server\n\n\
             ad: corp\n\tcomment Active Directory\n\tdomain corp.example\n\tserver1 dc1.corp.example\n\tdefault 1\n\n\
             openid: sso\n\tclient-id pve\n\tissuer-url https://id.example\n\tclient-key {REDACTED}\n\n"
        )
    );
    // The AD bind password is not in any rendered file (the agent passes it to pveum).
    for f in &files {
        assert!(!String::from_utf8_lossy(&f.contents).contains("ad-bind-secret"));
    }
}

#[test]
fn rendering_is_deterministic() {
    let plan = lab_plan(true);
    let a = render_all(&plan, &secrets(), &RenderOptions::default()).unwrap();
    let b = render_all(&plan, &secrets(), &RenderOptions::default()).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.keys().collect::<Vec<_>>(), ["pve1", "pve2", "pve3"]);
}

#[test]
fn strict_mode_names_the_template_and_the_missing_variable() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("etc")).unwrap();
    std::fs::write(dir.path().join("etc/hostname.hbs"), "{{node.nmae}}\n").unwrap();
    let opts = RenderOptions {
        templates_dir: Some(dir.path().to_path_buf()),
        reveal_secrets: false,
    };
    let err = render_node(&lab_plan(false), "pve1", &secrets(), &opts).unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("etc/hostname.hbs"), "{msg}");
    assert!(msg.contains("node.nmae"), "{msg}");
    assert!(msg.contains("pve1"), "{msg}");
}

#[test]
fn a_template_override_replaces_only_its_built_in() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("etc")).unwrap();
    std::fs::write(
        dir.path().join("etc/hostname.hbs"),
        "custom-{{node.name}}-{{plan.cluster.name}}\n",
    )
    .unwrap();
    let opts = RenderOptions {
        templates_dir: Some(dir.path().to_path_buf()),
        reveal_secrets: false,
    };
    let plan = lab_plan(false);
    let over = render_node(&plan, "pve2", &secrets(), &opts).unwrap();
    let base = render(&plan, "pve2");
    assert_eq!(text(&over, "/etc/hostname"), "custom-pve2-lab\n");
    assert_eq!(text(&base, "/etc/hostname"), "pve2\n");
    assert_eq!(text(&over, "/etc/hosts"), text(&base, "/etc/hosts"));
}

#[test]
fn unknown_node_is_bad_input() {
    let err = render_node(
        &lab_plan(false),
        "pve9",
        &secrets(),
        &RenderOptions::default(),
    )
    .unwrap_err();
    assert_eq!(hcikit::error::exit_code(&err), 2);
    assert!(format!("{err:#}").contains("pve9"));
}

#[test]
fn one_nic_in_two_networks_is_refused() {
    let mut plan = lab_plan(false);
    plan.networks[1].device = hcikit_firstboot::plan::NetDevice::Interface {
        name: "ens18".into(),
    };
    plan.networks[1].address_iface = "ens18".into();
    let err = render_node(&plan, "pve1", &secrets(), &RenderOptions::default()).unwrap_err();
    assert!(format!("{err:#}").contains("ens18"), "{err:#}");
    assert_eq!(hcikit::error::exit_code(&err), 2);
}

#[test]
fn strict_mode_covers_conditions_too() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("etc")).unwrap();
    std::fs::write(
        dir.path().join("etc/timezone.hbs"),
        "{{#if plan.cluster.timezon}}x{{/if}}\n",
    )
    .unwrap();
    let opts = RenderOptions {
        templates_dir: Some(dir.path().to_path_buf()),
        reveal_secrets: false,
    };
    let err = render_node(&lab_plan(false), "pve1", &secrets(), &opts).unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("etc/timezone.hbs"), "{msg}");
    assert!(msg.contains("plan.cluster.timezon"), "{msg}");
}

#[test]
fn an_override_that_embeds_a_secret_makes_its_file_secret() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("etc")).unwrap();
    std::fs::write(
        dir.path().join("etc/hostname.hbs"),
        "{{node.name}}{{#each secrets.smtp}} {{value}}{{/each}}\n",
    )
    .unwrap();
    for reveal in [false, true] {
        let opts = RenderOptions {
            templates_dir: Some(dir.path().to_path_buf()),
            reveal_secrets: reveal,
        };
        let files = render_node(&lab_plan(false), "pve1", &secrets(), &opts).unwrap();
        let h = file(&files, "/etc/hostname");
        assert!(h.secret && h.mode == 0o600, "reveal={reveal}: {h:?}");
        assert!(!file(&files, "/etc/hosts").secret);
    }
}

#[test]
fn a_broken_override_is_bad_input_a_built_in_is_not_involved() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("etc")).unwrap();
    std::fs::write(dir.path().join("etc/hostname.hbs"), "{{nope}}\n").unwrap();
    let opts = RenderOptions {
        templates_dir: Some(dir.path().to_path_buf()),
        reveal_secrets: false,
    };
    let err = render_node(&lab_plan(false), "pve1", &secrets(), &opts).unwrap_err();
    assert_eq!(hcikit::error::exit_code(&err), 2, "{err:#}");
    // A syntax error in an override is bad input as well.
    std::fs::write(dir.path().join("etc/hostname.hbs"), "{{#each}}\n").unwrap();
    let err = render_node(&lab_plan(false), "pve1", &secrets(), &opts).unwrap_err();
    assert_eq!(hcikit::error::exit_code(&err), 2, "{err:#}");
    assert!(format!("{err:#}").contains("etc/hostname.hbs"), "{err:#}");
}

#[test]
fn several_targets_and_matchers_in_proxmox_rs_layout() {
    let mut plan = lab_plan(false);
    let mut second = plan.notifications.smtp[0].clone();
    second.name = "backup-relay".into();
    second.password = Some(SecretRef::new("smtp/backup-relay/password"));
    second.mailto = vec!["b@lab.example".into(), "a@lab.example".into()];
    plan.notifications.smtp.push(second);
    plan.notifications.matchers = vec![hcikit_firstboot::plan::Matcher {
        name: "not-backups".into(),
        targets: vec!["backup-relay".into()],
        mode: "any".into(),
        match_severity: vec!["warning".into(), "error".into()],
        match_field: vec!["exact:type=vzdump".into()],
        invert_match: true,
        comment: None,
    }];
    let mut s = secrets();
    s.insert("smtp/backup-relay/password", "second-secret");
    let opts = RenderOptions {
        reveal_secrets: true,
        ..Default::default()
    };
    let files = render_node(&plan, "pve1", &s, &opts).unwrap();
    assert_eq!(
        text(&files, "/etc/pve/priv/notifications.cfg"),
        format!(
            "smtp: smtp-relay\n\tpassword {SMTP_PASSWORD}\n\n\
             smtp: backup-relay\n\tpassword second-secret\n"
        )
    );
    let out = text(&files, "/etc/pve/notifications.cfg");
    // Repeated keys keep their order; booleans are written as serde_json writes them.
    assert!(
        out.contains("\tmailto b@lab.example\n\tmailto a@lab.example\n"),
        "{out}"
    );
    assert!(
        out.ends_with(
            "matcher: not-backups\n\tinvert-match true\n\tmatch-field exact:type=vzdump\n\
             \tmatch-severity warning,error\n\tmode any\n\ttarget backup-relay\n"
        ),
        "{out}"
    );
}
