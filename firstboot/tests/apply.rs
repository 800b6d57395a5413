//! `apply` against a temporary ESP and root prefix.

use hcikit_firstboot::apply::{apply, Options, Outcome};
use hcikit_firstboot::example;
use hcikit_firstboot::layout::{esp_node_dir, ESP_NODE, ESP_PLAN, FILES_TAR, SECRETS_TAR};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn tar_of(files: &[(&str, u32, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, mode, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(*mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_cksum();
        b.append_data(&mut h, path, *data).unwrap();
    }
    b.into_inner().unwrap()
}

/// An ESP with every node's folder (a fleet layout); `node` writes `hcikit/node`.
fn make_esp(esp: &Path, node: Option<&str>) {
    let plan = example::lab_plan();
    std::fs::create_dir_all(esp.join("hcikit")).unwrap();
    std::fs::write(esp.join(ESP_PLAN), serde_json::to_vec(&plan).unwrap()).unwrap();
    if let Some(n) = node {
        std::fs::write(esp.join(ESP_NODE), format!("{n}\n")).unwrap();
    }
    for n in &plan.nodes {
        let dir = esp.join(esp_node_dir(&n.name));
        std::fs::create_dir_all(&dir).unwrap();
        let interfaces = format!(
            "auto vmbr0\niface vmbr0 inet static\n\taddress {}\n",
            n.addresses[0].ip_cidr
        );
        std::fs::write(
            dir.join(FILES_TAR),
            tar_of(&[
                ("etc/network/interfaces", 0o644, interfaces.as_bytes()),
                ("etc/hostname", 0o644, format!("{}\n", n.name).as_bytes()),
                (
                    "etc/hcikit/desired/etc/pve/datacenter.cfg",
                    0o640,
                    b"keyboard: en-us\n",
                ),
            ]),
        )
        .unwrap();
        std::fs::write(
            dir.join(SECRETS_TAR),
            tar_of(&[
                ("root/.ssh/hcikit-bootstrap", 0o600, b"PRIVATE KEY\n"),
                (
                    "etc/hcikit/secrets/smtp/smtp-relay/password",
                    0o600,
                    b"pw\n",
                ),
            ]),
        )
        .unwrap();
    }
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

#[test]
fn installs_files_with_modes_removes_secrets_and_reruns_as_noop() {
    let t = tempfile::tempdir().unwrap();
    let (esp, root) = (t.path().join("esp"), t.path().join("root"));
    make_esp(&esp, Some("pve2"));
    let opts = Options {
        esp: Some(esp.clone()),
        root: root.clone(),
    };
    let out = apply(&opts).unwrap();
    assert_eq!(
        out,
        Outcome::Installed {
            node: "pve2".into(),
            files: 3,
            secrets: 2
        }
    );
    let ifaces = std::fs::read_to_string(root.join("etc/network/interfaces")).unwrap();
    assert!(ifaces.contains("10.2.21.67/24"));
    assert_eq!(mode(&root.join("etc/network/interfaces")), 0o644);
    assert_eq!(
        mode(&root.join("etc/hcikit/desired/etc/pve/datacenter.cfg")),
        0o640
    );
    assert_eq!(mode(&root.join("root/.ssh/hcikit-bootstrap")), 0o600);
    assert_eq!(
        mode(&root.join("etc/hcikit/secrets/smtp/smtp-relay/password")),
        0o600
    );
    assert_eq!(
        std::fs::read_to_string(root.join("etc/hcikit/node")).unwrap(),
        "pve2\n"
    );
    let plan: hcikit_firstboot::plan::Plan =
        serde_json::from_slice(&std::fs::read(root.join("etc/hcikit/plan.json")).unwrap()).unwrap();
    assert_eq!(plan, example::lab_plan());
    let node_dir = esp.join(esp_node_dir("pve2"));
    assert!(
        !node_dir.join(SECRETS_TAR).exists(),
        "secrets removed from the ESP"
    );
    assert!(node_dir.join(FILES_TAR).exists());
    // Re-run after success: a no-op that succeeds and changes nothing.
    std::fs::write(root.join("etc/network/interfaces"), "local edit\n").unwrap();
    assert_eq!(
        apply(&opts).unwrap(),
        Outcome::AlreadyApplied {
            node: "pve2".into()
        }
    );
    assert_eq!(
        std::fs::read_to_string(root.join("etc/network/interfaces")).unwrap(),
        "local edit\n"
    );
}

#[test]
fn rerun_after_a_crash_before_secret_removal_reinstalls() {
    let t = tempfile::tempdir().unwrap();
    let (esp, root) = (t.path().join("esp"), t.path().join("root"));
    make_esp(&esp, Some("pve1"));
    let opts = Options {
        esp: Some(esp.clone()),
        root: root.clone(),
    };
    apply(&opts).unwrap();
    // As if the first run died before deleting secrets.tar: it is back on the ESP.
    make_esp(&esp, Some("pve1"));
    std::fs::remove_file(root.join("root/.ssh/hcikit-bootstrap")).unwrap();
    let out = apply(&opts).unwrap();
    assert!(matches!(out, Outcome::Installed { .. }));
    assert!(root.join("root/.ssh/hcikit-bootstrap").exists());
    assert!(!esp.join(esp_node_dir("pve1")).join(SECRETS_TAR).exists());
}

#[test]
fn fleet_image_picks_the_node_by_mac() {
    let t = tempfile::tempdir().unwrap();
    let (esp, root) = (t.path().join("esp"), t.path().join("root"));
    make_esp(&esp, None);
    for (nic, mac) in [
        ("lo", "00:00:00:00:00:00"),
        ("ens18", "BC:24:11:00:00:03"),
        ("ens19", "bc:24:11:99:99:99"),
    ] {
        std::fs::create_dir_all(root.join("sys/class/net").join(nic)).unwrap();
        std::fs::write(
            root.join("sys/class/net").join(nic).join("address"),
            format!("{mac}\n"),
        )
        .unwrap();
    }
    let out = apply(&Options {
        esp: Some(esp.clone()),
        root: root.clone(),
    })
    .unwrap();
    assert!(
        matches!(out, Outcome::Installed { ref node, .. } if node == "pve3"),
        "{out:?}"
    );
    // The other nodes' secrets stay untouched on the fleet ESP.
    assert!(esp.join(esp_node_dir("pve1")).join(SECRETS_TAR).exists());
}

#[test]
fn kernel_argument_names_the_node_and_unknown_nodes_fail() {
    let t = tempfile::tempdir().unwrap();
    let (esp, root) = (t.path().join("esp"), t.path().join("root"));
    make_esp(&esp, None);
    std::fs::create_dir_all(root.join("proc")).unwrap();
    std::fs::write(root.join("proc/cmdline"), "quiet hcikit.node=pve9\n").unwrap();
    let err = apply(&Options {
        esp: Some(esp.clone()),
        root: root.clone(),
    })
    .unwrap_err();
    assert!(format!("{err:#}").contains("pve9"), "{err:#}");
    std::fs::write(root.join("proc/cmdline"), "quiet hcikit.node=pve1\n").unwrap();
    let out = apply(&Options {
        esp: Some(esp),
        root: root.clone(),
    })
    .unwrap();
    assert!(matches!(out, Outcome::Installed { ref node, .. } if node == "pve1"));
}

#[test]
fn finds_the_esp_below_the_root_and_refuses_escaping_paths() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    make_esp(&root.join("boot/efi"), Some("pve1"));
    let out = apply(&Options {
        esp: None,
        root: root.clone(),
    })
    .unwrap();
    assert!(matches!(out, Outcome::Installed { .. }));
    // A files.tar entry that climbs out of the root is refused.
    let t2 = tempfile::tempdir().unwrap();
    let (esp, root2) = (t2.path().join("esp"), t2.path().join("root"));
    make_esp(&esp, Some("pve1"));
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(1);
    h.set_mode(0o644);
    h.set_cksum();
    // Write the raw name to get around the builder's own `..` check.
    h.as_gnu_mut().unwrap().name[..8].copy_from_slice(b"../evil\0");
    h.set_cksum();
    b.append(&h, &b"x"[..]).unwrap();
    std::fs::write(
        esp.join(esp_node_dir("pve1")).join(FILES_TAR),
        b.into_inner().unwrap(),
    )
    .unwrap();
    let err = apply(&Options {
        esp: Some(esp),
        root: root2,
    })
    .unwrap_err();
    assert!(format!("{err:#}").contains("leaves the root"), "{err:#}");
    assert!(!t2.path().join("evil").exists());
}
