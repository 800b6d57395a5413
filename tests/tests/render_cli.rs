//! `hcikit render` end to end on the shipped examples, through the CLI entry point:
//! output layout and modes, no secret in redacted output, `--reveal-secrets`, `--node`,
//! `--templates`, and nothing written on failure.

use hcikit_tests::{run_cli, workspace_root};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

fn example(name: &str) -> PathBuf {
    workspace_root().join("examples").join(name)
}

fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(all_files(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// Every secret value the lab example carries (root password hash, SMTP password, ...),
/// as the loader reads them, SMTP password first.
fn example_secrets() -> Vec<String> {
    let loaded = hcikit::load(&example("lab.toml")).unwrap();
    let mut v: Vec<(String, String)> = loaded
        .secrets
        .iter()
        .map(|(id, val)| {
            (
                id.to_string(),
                String::from_utf8_lossy(val).trim().to_string(),
            )
        })
        .collect();
    v.sort_by_key(|(id, _)| !id.starts_with("smtp/"));
    let ids: Vec<&str> = v.iter().map(|(id, _)| id.as_str()).collect();
    assert!(ids[0].starts_with("smtp/"), "{ids:?}");
    assert!(ids.iter().any(|i| i.contains("root")), "{ids:?}");
    let lab = std::fs::read_to_string(example("lab.toml")).unwrap();
    let hash = v.iter().find(|(id, _)| id.contains("root")).unwrap();
    assert!(
        lab.contains(&hash.1),
        "the root hash is the one written in lab.toml"
    );
    v.into_iter().map(|(_, val)| val).collect()
}

#[test]
fn render_writes_every_node_without_secrets() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let spec = example("lab.toml");
    let (code, err) = run_cli(&[
        "render",
        spec.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");

    for node in ["pve1", "pve2", "pve3"] {
        let hostname = std::fs::read_to_string(out.join(node).join("etc/hostname")).unwrap();
        assert_eq!(hostname, format!("{node}\n"));
        assert_eq!(mode(&out.join(node).join("etc/pve/corosync.conf")), 0o640);
        assert_eq!(
            mode(&out.join(node).join("etc/pve/priv/notifications.cfg")),
            0o600
        );
    }
    let secrets = example_secrets();
    let files = all_files(&out);
    assert!(files.len() > 30, "{files:?}");
    for f in &files {
        let text = String::from_utf8_lossy(&std::fs::read(f).unwrap()).into_owned();
        for s in &secrets {
            assert!(!text.contains(s.as_str()), "secret in {}", f.display());
        }
    }
    let priv_cfg =
        std::fs::read_to_string(out.join("pve1/etc/pve/priv/notifications.cfg")).unwrap();
    assert!(priv_cfg.contains("password <redacted>"), "{priv_cfg}");

    // Revealed, one node only: the password is there, the file still 0600, the
    // previous output replaced.
    let (code, err) = run_cli(&[
        "render",
        spec.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--reveal-secrets",
        "--node",
        "pve2",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.join("pve1").exists());
    let p = out.join("pve2/etc/pve/priv/notifications.cfg");
    assert!(std::fs::read_to_string(&p)
        .unwrap()
        .contains(&format!("password {}", secrets[0])));
    assert_eq!(mode(&p), 0o600);
}

#[test]
fn template_override_and_failures() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = example("minipc.toml");
    let templates = tmp.path().join("tpl");
    std::fs::create_dir_all(templates.join("etc")).unwrap();
    std::fs::write(templates.join("etc/hostname.hbs"), "{{node.fqdn}}\n").unwrap();
    let out = tmp.path().join("out");
    let (code, err) = run_cli(&[
        "render",
        spec.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--templates",
        templates.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let h = std::fs::read_to_string(out.join("mini1/etc/hostname")).unwrap();
    assert_eq!(h, "mini1.home.arpa\n");

    // A broken override fails the whole run and writes nothing.
    std::fs::write(templates.join("etc/hostname.hbs"), "{{node.fqnd}}\n").unwrap();
    let out2 = tmp.path().join("out2");
    let (code, err) = run_cli(&[
        "render",
        spec.to_str().unwrap(),
        "-o",
        out2.to_str().unwrap(),
        "--templates",
        templates.to_str().unwrap(),
    ]);
    assert_ne!(code, 0, "the broken override must fail");
    assert!(err.contains("node.fqnd"), "{err}");
    assert!(!out2.exists());

    // An unknown node is bad input (exit code 2).
    let (code, err) = run_cli(&[
        "render",
        spec.to_str().unwrap(),
        "-o",
        out2.to_str().unwrap(),
        "--node",
        "nosuch",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(!out2.exists());
}
