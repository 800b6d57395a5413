//! `apply` against hostile ESPs and roots: every tar entry kind the builder never writes,
//! links planted in the tars or in the root, node names that are paths. Nothing may be
//! written, changed or deleted outside the root, nothing installed from a refused ESP,
//! and the binary exits 2. Also: the spec's root password hash lands in `/etc/shadow`.

use hcikit_firstboot::apply::{apply, Options, Outcome};
use hcikit_firstboot::error::BadInput;
use hcikit_firstboot::example;
use hcikit_firstboot::layout::{esp_node_dir, ESP_NODE, ESP_PLAN, FILES_TAR, SECRETS_TAR};
use hcikit_firstboot::plan::{Plan, SecretRef};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One tar entry: path, type, mode, link target, data.
struct E {
    path: &'static str,
    kind: tar::EntryType,
    mode: u32,
    link: Option<String>,
    data: &'static [u8],
}

fn file(path: &'static str, data: &'static [u8]) -> E {
    E {
        path,
        kind: tar::EntryType::Regular,
        mode: 0o644,
        link: None,
        data,
    }
}

fn link(path: &'static str, to: &str) -> E {
    E {
        path,
        kind: tar::EntryType::Symlink,
        mode: 0o777,
        link: Some(to.to_string()),
        data: b"",
    }
}

fn tar_of(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(e.kind);
        h.set_size(e.data.len() as u64);
        h.set_mode(e.mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        if let Some(l) = &e.link {
            h.set_link_name(l).unwrap();
        }
        // Raw names: the tar crate's own `..` check must not stop the test input.
        let name = &mut h.as_gnu_mut().unwrap().name;
        name[..e.path.len()].copy_from_slice(e.path.as_bytes());
        h.set_cksum();
        b.append(&h, e.data).unwrap();
    }
    b.into_inner().unwrap()
}

struct Case {
    _t: tempfile::TempDir,
    esp: PathBuf,
    root: PathBuf,
    outside: PathBuf,
}

/// An ESP for pve1 with the given tars, an empty root and a folder outside the root
/// holding a file `victim` and a `secrets.tar` (what a climbing node name would find).
fn case(plan: &Plan, files: &[E], secrets: &[E]) -> Case {
    let t = tempfile::tempdir().unwrap();
    let (esp, root, outside) = (
        t.path().join("esp"),
        t.path().join("root"),
        t.path().join("outside"),
    );
    for d in [&root, &outside] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(outside.join("victim"), b"untouched\n").unwrap();
    std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir_all(esp.join(esp_node_dir("pve1"))).unwrap();
    std::fs::write(esp.join(ESP_PLAN), serde_json::to_vec(plan).unwrap()).unwrap();
    std::fs::write(esp.join(ESP_NODE), "pve1\n").unwrap();
    let dir = esp.join(esp_node_dir("pve1"));
    std::fs::write(dir.join(FILES_TAR), tar_of(files)).unwrap();
    std::fs::write(dir.join(SECRETS_TAR), tar_of(secrets)).unwrap();
    Case {
        _t: t,
        esp,
        root,
        outside,
    }
}

impl Case {
    fn apply(&self) -> anyhow::Result<Outcome> {
        apply(&Options {
            esp: Some(self.esp.clone()),
            root: self.root.clone(),
        })
    }
    /// What the binary exits with.
    fn exit_code(&self) -> i32 {
        Command::new(env!("CARGO_BIN_EXE_hcikit-firstboot"))
            .arg("apply")
            .arg("--esp")
            .arg(&self.esp)
            .arg("--root")
            .arg(&self.root)
            .env("RUST_LOG", "off")
            .output()
            .unwrap()
            .status
            .code()
            .unwrap_or(-1)
    }
    /// Nothing outside the root changed and nothing was installed in it.
    fn assert_untouched(&self, what: &str) {
        let names: Vec<String> = std::fs::read_dir(&self.outside)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["victim"], "{what}: written outside the root");
        assert_eq!(
            std::fs::read(self.outside.join("victim")).unwrap(),
            b"untouched\n",
            "{what}: outside file changed"
        );
        assert_eq!(
            std::fs::metadata(&self.outside)
                .unwrap()
                .permissions()
                .mode()
                & 0o7777,
            0o755,
            "{what}: outside folder's mode changed"
        );
        let installed: Vec<_> = walk(&self.root)
            .into_iter()
            .filter(|p| !std::fs::symlink_metadata(p).unwrap().is_dir())
            .collect();
        assert!(
            installed.is_empty(),
            "{what}: installed although refused: {installed:?}"
        );
        assert!(
            self.esp
                .join(esp_node_dir("pve1"))
                .join(SECRETS_TAR)
                .exists(),
            "{what}: secrets.tar removed although refused"
        );
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let m = std::fs::symlink_metadata(&p).unwrap();
        if m.is_dir() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}

fn is_bad_input(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.is::<BadInput>())
}

#[test]
fn hostile_tar_entries_are_refused_before_anything_is_installed() {
    let plan = example::lab_plan();
    let out = "../outside";
    type Tars = (Vec<E>, Vec<E>);
    type Make = Box<dyn Fn(&Path) -> Tars>;
    let cases: Vec<(&str, Make)> = vec![
        (
            "symlink to an absolute path, then a file through it",
            Box::new(|o: &Path| {
                (
                    vec![
                        file("etc/early", b"x\n"),
                        link("evil", o.to_str().unwrap()),
                        file("evil/pwned", b"x\n"),
                    ],
                    vec![],
                )
            }),
        ),
        (
            "relative symlink, then overwrite through it",
            Box::new(move |_: &Path| {
                (
                    vec![
                        link("evil", &format!("{out}/..")),
                        file("evil/outside/victim", b"x"),
                    ],
                    vec![],
                )
            }),
        ),
        (
            "symlink, then a symlink entry over the victim",
            Box::new(|o: &Path| {
                (
                    vec![link("evil", o.to_str().unwrap()), link("evil/victim", "/x")],
                    vec![],
                )
            }),
        ),
        (
            "symlink, then a folder entry with mode 0777",
            Box::new(|o: &Path| {
                let mut d = file("evil/", b"");
                d.kind = tar::EntryType::Directory;
                d.mode = 0o777;
                (vec![link("evil", o.to_str().unwrap()), d], vec![])
            }),
        ),
        (
            "the same trick in secrets.tar",
            Box::new(|o: &Path| {
                (
                    vec![file("etc/hostname", b"pve1\n")],
                    vec![link("k", o.to_str().unwrap()), file("k/key", b"SECRET")],
                )
            }),
        ),
        (
            "a folder entry that would make /etc 07777",
            Box::new(|_: &Path| {
                let mut d = file("etc", b"");
                d.kind = tar::EntryType::Directory;
                d.mode = 0o7777;
                (vec![d], vec![])
            }),
        ),
        (
            "a setuid file",
            Box::new(|_: &Path| {
                let mut f = file("usr/bin/sh2", b"#!/bin/sh\n");
                f.mode = 0o4755;
                (vec![f], vec![])
            }),
        ),
        (
            "a hard link to a file outside",
            Box::new(|o: &Path| {
                let mut l = link("etc/passwd2", o.join("victim").to_str().unwrap());
                l.kind = tar::EntryType::Link;
                (vec![l], vec![])
            }),
        ),
        (
            "a device node",
            Box::new(|_: &Path| {
                let mut d = file("dev-sda", b"");
                d.kind = tar::EntryType::Block;
                (vec![d], vec![])
            }),
        ),
        (
            "`..` after a good entry",
            Box::new(|_: &Path| {
                (
                    vec![file("etc/early", b"x\n"), file("../outside/late", b"x\n")],
                    vec![],
                )
            }),
        ),
        (
            "`..` in secrets.tar after good files",
            Box::new(|_: &Path| {
                (
                    vec![file("etc/early", b"x\n")],
                    vec![
                        file("etc/hcikit/secrets/a", b"s"),
                        file("../outside/s", b"s"),
                    ],
                )
            }),
        ),
    ];
    for (what, make) in cases {
        // The outside folder's path is only known once the case exists.
        let c0 = case(&plan, &[], &[]);
        let (files, secrets) = make(&c0.outside);
        let dir = c0.esp.join(esp_node_dir("pve1"));
        std::fs::write(dir.join(FILES_TAR), tar_of(&files)).unwrap();
        std::fs::write(dir.join(SECRETS_TAR), tar_of(&secrets)).unwrap();
        let err = c0.apply().expect_err(what);
        assert!(is_bad_input(&err), "{what}: not bad input: {err:#}");
        c0.assert_untouched(what);
        assert_eq!(c0.exit_code(), 2, "{what}");
        c0.assert_untouched(what);
    }
}

#[test]
fn links_planted_in_the_root_are_not_followed() {
    let plan = example::lab_plan();
    // A parent folder of an entry is a link out of the root: refused, nothing written.
    let c = case(
        &plan,
        &[file("etc/hostname", b"pve1\n"), file("etc/ssh/x", b"x")],
        &[],
    );
    std::fs::create_dir_all(c.root.join("etc")).unwrap();
    std::os::unix::fs::symlink(&c.outside, c.root.join("etc/ssh")).unwrap();
    let err = c.apply().unwrap_err();
    assert!(is_bad_input(&err), "{err:#}");
    assert!(format!("{err:#}").contains("etc/ssh"), "{err:#}");
    assert!(
        !c.root.join("etc/hostname").exists(),
        "installed before refusing"
    );
    assert_eq!(c.exit_code(), 2);
    assert_eq!(
        std::fs::read_dir(&c.outside).unwrap().count(),
        1,
        "written outside"
    );

    // The final name is a link out of the root: replaced by the file, never followed.
    let c = case(&plan, &[file("etc/hostname", b"pve1\n")], &[]);
    std::fs::create_dir_all(c.root.join("etc")).unwrap();
    std::os::unix::fs::symlink(c.outside.join("victim"), c.root.join("etc/hostname")).unwrap();
    c.apply().unwrap();
    let m = std::fs::symlink_metadata(c.root.join("etc/hostname")).unwrap();
    assert!(m.is_file(), "the link was kept");
    assert_eq!(
        std::fs::read(c.root.join("etc/hostname")).unwrap(),
        b"pve1\n"
    );
    assert_eq!(
        std::fs::read(c.outside.join("victim")).unwrap(),
        b"untouched\n"
    );
}

#[test]
fn node_names_that_are_paths_are_refused() {
    for name in ["../../outside", "..", "pve1/../../outside", "a b"] {
        let mut plan = example::lab_plan();
        plan.nodes[0].name = name.to_string();
        let c = case(&plan, &[file("etc/hostname", b"x\n")], &[]);
        std::fs::write(c.esp.join(ESP_NODE), format!("{name}\n")).unwrap();
        // What a climbing name would reach: an ESP-like folder outside.
        std::fs::write(c.outside.join(SECRETS_TAR), b"").unwrap();
        let err = c.apply().unwrap_err();
        assert!(is_bad_input(&err), "{name}: {err:#}");
        assert!(
            c.outside.join(SECRETS_TAR).exists(),
            "{name}: deleted outside"
        );
        assert_eq!(c.exit_code(), 2, "{name}");
        assert!(
            c.outside.join(SECRETS_TAR).exists(),
            "{name}: deleted outside"
        );
    }
    // The same through the kernel command line of a fleet image.
    let plan = example::lab_plan();
    let c = case(&plan, &[], &[]);
    std::fs::remove_file(c.esp.join(ESP_NODE)).unwrap();
    std::fs::create_dir_all(c.root.join("proc")).unwrap();
    std::fs::write(c.root.join("proc/cmdline"), "quiet hcikit.node=../x\n").unwrap();
    assert!(is_bad_input(&c.apply().unwrap_err()));
}

#[test]
fn the_root_password_hash_from_the_spec_is_set_in_shadow() {
    let mut plan = example::lab_plan();
    plan.cluster.root_password = Some(SecretRef::new("root-password-hash"));
    let hash = "$6$hcikittest$Zm9vYmFyYmF6cXV4";
    let secrets = [E {
        path: "etc/hcikit/secrets/root-password-hash",
        kind: tar::EntryType::Regular,
        mode: 0o600,
        link: None,
        data: b"$6$hcikittest$Zm9vYmFyYmF6cXV4\n",
    }];
    let c = case(&plan, &[file("etc/hostname", b"pve1\n")], &secrets);
    std::fs::create_dir_all(c.root.join("etc")).unwrap();
    let shadow = c.root.join("etc/shadow");
    std::fs::write(
        &shadow,
        "root:*:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n",
    )
    .unwrap();
    std::fs::set_permissions(&shadow, std::fs::Permissions::from_mode(0o640)).unwrap();
    c.apply().unwrap();
    let text = std::fs::read_to_string(&shadow).unwrap();
    assert_eq!(
        text,
        format!("root:{hash}:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n")
    );
    assert_eq!(
        std::fs::metadata(&shadow).unwrap().permissions().mode() & 0o777,
        0o640
    );
    // Only the hash reaches the node: the secrets carry no clear text to compare, and the
    // shadow entry is exactly the spec's hash.

    // A "hash" that would add a shadow field or line is bad input, shadow unchanged.
    let bad = [E {
        path: "etc/hcikit/secrets/root-password-hash",
        kind: tar::EntryType::Regular,
        mode: 0o600,
        link: None,
        data: b"$6$x:0:0\n",
    }];
    let c = case(&plan, &[], &bad);
    std::fs::create_dir_all(c.root.join("etc")).unwrap();
    std::fs::write(c.root.join("etc/shadow"), "root:*:1:::::\n").unwrap();
    assert!(is_bad_input(&c.apply().unwrap_err()));
    assert_eq!(
        std::fs::read_to_string(c.root.join("etc/shadow")).unwrap(),
        "root:*:1:::::\n"
    );
}
