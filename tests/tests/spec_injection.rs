//! No spec value can start a new line, entry or section in a rendered file: for every
//! string value and every free-form key of the example specs (plus the optional sections
//! they leave out: realms, matchers, HA resources, Ceph options), a line break followed by
//! a forged section is injected, and validation must refuse exactly that key.

use hcikit::spec::load_str;
use std::path::Path;

/// The optional sections the examples do not use, so their free text is covered too.
const EXTRA: &str = r#"
[[realms]]
name = "corp"
type = "ldap"
server1 = "ldap.example.com"
base-dn = "dc=example,dc=com"
user-attr = "uid"
bind-dn = "cn=pve,dc=example,dc=com"
bind-password-file = "secrets/smtp-password"
comment = "company directory"

[[realms]]
name = "sso"
type = "openid"
issuer-url = "https://sso.example.com"
client-id = "pve"
comment = "single sign-on"

[[notifications.matchers]]
name = "errors"
targets = ["smtp-relay"]
match-field = ["exact:type=vzdump"]
comment = "backup errors"

[[ha.resources]]
sid = "vm:100"
group = "prefer-pve1"
comment = "the web server"

[ceph.config.osd]
osd_memory_target = "4G"
"#;

/// The string leaves of a TOML tree with their dotted keys, as validation names them.
fn leaves(v: &toml::Value, key: &str, out: &mut Vec<String>) {
    match v {
        toml::Value::String(_) => out.push(key.to_string()),
        toml::Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                leaves(x, &format!("{key}[{i}]"), out);
            }
        }
        toml::Value::Table(t) => {
            for (k, x) in t {
                let p = if key.is_empty() {
                    k.clone()
                } else {
                    format!("{key}.{k}")
                };
                leaves(x, &p, out);
            }
        }
        _ => {}
    }
}

/// Walks `key` (as [`leaves`] writes it) in `v` and returns the value there.
fn at<'a>(v: &'a mut toml::Value, key: &str) -> &'a mut toml::Value {
    let mut cur = v;
    for part in key.split('.') {
        let (name, idx) = match part.split_once('[') {
            Some((n, rest)) => (
                n,
                rest.split('[')
                    .map(|i| i.trim_end_matches(']').parse::<usize>().unwrap())
                    .collect::<Vec<_>>(),
            ),
            None => (part, Vec::new()),
        };
        cur = cur.get_mut(name).unwrap();
        for i in idx {
            cur = cur.get_mut(i).unwrap();
        }
    }
    cur
}

fn spec_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let ex = hcikit_tests::workspace_root().join("examples/secrets");
    std::fs::create_dir_all(dir.path().join("secrets")).unwrap();
    for e in std::fs::read_dir(ex).unwrap() {
        let e = e.unwrap();
        let to = dir.path().join("secrets").join(e.file_name());
        std::fs::copy(e.path(), &to).unwrap();
        std::fs::set_permissions(&to, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    }
    dir
}

fn check_every_value(text: &str, dir: &Path) -> Vec<String> {
    let base: toml::Value = toml::from_str(text).unwrap();
    load_str(text, dir).unwrap_or_else(|d| panic!("the spec itself is valid: {d:?}"));
    let mut keys = Vec::new();
    leaves(&base, "", &mut keys);
    for key in &keys {
        for evil in [
            "\n[mon]\n\tmon_host = 6.6.6.6",
            "\r\nEVIL: x",
            "\u{2028}x",
            "a\tb",
        ] {
            let mut v = base.clone();
            let slot = at(&mut v, key);
            let old = slot.as_str().unwrap().to_string();
            *slot = toml::Value::String(format!("{old}{evil}"));
            let forged = toml::to_string(&v).unwrap();
            let diags = load_str(&forged, dir)
                .err()
                .unwrap_or_else(|| panic!("{key}: a value holding {evil:?} was accepted"));
            assert!(
                diags.iter().any(|d| d.is_error()
                    && d.key == *key
                    && d.message.contains("control character")),
                "{key}: {evil:?} not refused under its key: {diags:?}"
            );
        }
    }
    keys
}

#[test]
fn no_string_value_of_a_spec_may_hold_a_line_break() {
    let dir = spec_dir();
    let ex = hcikit_tests::workspace_root().join("examples");
    let lab = std::fs::read_to_string(ex.join("lab.toml")).unwrap() + EXTRA;
    let mut covered = check_every_value(&lab, dir.path());
    let minipc = std::fs::read_to_string(ex.join("minipc.toml")).unwrap();
    covered.extend(check_every_value(&minipc, dir.path()));
    // The free-text keys through which injection was shown are all among them.
    for key in [
        "ha.groups[0].comment",
        "ha.resources[0].comment",
        "notifications.smtp[0].username",
        "notifications.smtp[0].author",
        "notifications.matchers[0].match-field[0]",
        "notifications.matchers[0].comment",
        "realms[0].base-dn",
        "realms[0].user-attr",
        "realms[0].bind-dn",
        "realms[0].comment",
        "ceph.config.osd.osd_memory_target",
        "cluster.admin-ssh-keys[0]",
    ] {
        assert!(
            covered.iter().any(|k| k == key),
            "{key} not covered: {covered:?}"
        );
    }
    assert!(covered.len() > 60, "only {} keys covered", covered.len());
}

#[test]
fn keys_of_free_form_tables_may_not_hold_line_breaks_either() {
    let dir = spec_dir();
    let ex = hcikit_tests::workspace_root().join("examples");
    let text = std::fs::read_to_string(ex.join("minipc.toml"))
        .unwrap()
        .replace("[ceph.config.osd]", "[ceph.config.\"osd]\\n[mon\"]");
    let diags = load_str(&text, dir.path()).unwrap_err();
    assert!(
        diags
            .iter()
            .any(|d| d.key.starts_with("ceph.config.") && d.message.contains("control character")),
        "{diags:?}"
    );
}

#[test]
fn an_integer_beyond_64_bits_is_reported_by_its_key() {
    let dir = spec_dir();
    let ex = hcikit_tests::workspace_root().join("examples");
    let text = std::fs::read_to_string(ex.join("lab.toml")).unwrap();
    let text = text.replacen(
        "[networks.mgmt]\n",
        "[networks.mgmt]\nmtu = 99999999999999999999\n",
        1,
    );
    assert!(
        text.contains("99999999999999999999"),
        "the example has [networks.mgmt]"
    );
    let diags = load_str(&text, dir.path()).unwrap_err();
    assert!(
        diags.iter().any(|d| d.key == "networks.mgmt.mtu"),
        "{diags:?}"
    );
}

#[test]
fn rendering_never_starts_a_line_from_a_value() {
    // Values that reach the renderer some other way than a validated spec (a Plan built
    // by hand, a future field) are escaped, never printed raw.
    let dir = spec_dir();
    let ex = hcikit_tests::workspace_root().join("examples");
    // PVE 8: its HA groups are rendered as groups.cfg (PVE 9 turns them into rules).
    let text = std::fs::read_to_string(ex.join("lab-pve8.toml")).unwrap();
    let loaded = load_str(&text, dir.path()).unwrap();
    let mut plan = loaded.plan.clone();
    plan.ha.groups[0].comment = Some("x\n[mon]\n\tmon_host = 6.6.6.6".into());
    let files = hcikit::render::render_node(
        &plan,
        "pve1",
        &loaded.secrets,
        &hcikit::render::RenderOptions::default(),
    )
    .unwrap();
    let groups = files
        .iter()
        .find(|f| f.path.ends_with("ha/groups.cfg"))
        .expect("groups.cfg rendered");
    let text = String::from_utf8_lossy(&groups.contents);
    assert!(
        !text
            .lines()
            .any(|l| l.trim_start().starts_with("[mon]") || l.trim_start().starts_with("mon_host")),
        "{text}"
    );
    assert!(text.contains(r"x\u{a}[mon]"), "{text}");
    assert_eq!(
        hcikit::render::one_line("a\u{2028}b\tc"),
        r"a\u{2028}b\u{9}c"
    );
}

/// Loads the lab example with `edits` (pattern, replacement) applied; returns the
/// errors' keys and messages.
fn lab_errors(edits: &[(&str, &str)]) -> Vec<(String, String)> {
    let dir = spec_dir();
    let ex = hcikit_tests::workspace_root().join("examples");
    let mut text = std::fs::read_to_string(ex.join("lab.toml")).unwrap();
    for (from, to) in edits {
        assert!(text.contains(from), "the example holds {from:?}");
        text = text.replacen(from, to, 1);
    }
    match load_str(&text, dir.path()) {
        Ok(_) => Vec::new(),
        Err(d) => d
            .into_iter()
            .filter(|d| d.is_error())
            .map(|d| (d.key, d.message))
            .collect(),
    }
}

#[test]
fn pool_names_never_start_like_an_option() {
    for bad in ["--size", "-x", ".hidden", "_x", "a b", "a:b"] {
        let errs = lab_errors(&[("name = \"cephrdb01\"", &format!("name = {bad:?}"))]);
        assert!(
            errs.iter().any(|(k, _)| k == "ceph.pools[0].name"),
            "{bad}: {errs:?}"
        );
    }
    assert!(lab_errors(&[("name = \"cephrdb01\"", "name = \"rbd2\"")]).is_empty());
}

/// Every spec value the agent passes as a positional argument (cluster name to `pvecm
/// create`, pool name to `pveceph pool create`, HA group name to `ha-manager groupadd`
/// and `rules add`, Ceph section and option name to `ceph config set`, OSD device to
/// `pveceph osd create`) is refused when it starts with '-', so none can be read as an
/// option; realm names are passed as `--realm` values. (Ceph option values are the one
/// free-form positional: see docs/security.md.)
#[test]
fn no_positional_argument_from_the_spec_starts_like_an_option() {
    let cases: &[(&str, &str, &str)] = &[
        ("name = \"lab\"", "name = \"-lab\"", "cluster.name"),
        ("name = \"lab\"", "name = \"--help\"", "cluster.name"),
        (
            "name = \"cephrdb01\"",
            "name = \"-p\"",
            "ceph.pools[0].name",
        ),
        (
            "name = \"prefer-pve1\"",
            "name = \"-g1\"",
            "ha.groups[0].name",
        ),
        (
            "osd-disks = [\"/dev/sdb\"",
            "osd-disks = [\"-dev\"",
            "nodes[0].osd-disks[0]",
        ),
        (
            "[[ha.groups]]",
            "[ceph.config.global]\n\"-debug_ms\" = \"0/5\"\n\n[[ha.groups]]",
            "ceph.config.global.-debug_ms",
        ),
        (
            "[[ha.groups]]",
            "[ceph.config.-osd]\ndebug_ms = \"0/5\"\n\n[[ha.groups]]",
            "ceph.config.-osd",
        ),
    ];
    for (from, to, key) in cases {
        let errs = lab_errors(&[(from, to)]);
        assert!(errs.iter().any(|(k, _)| k == key), "{to}: {errs:?}");
    }
    // The well-formed forms pass.
    assert!(lab_errors(&[(
        "[[ha.groups]]",
        "[ceph.config.global]\n\"debug ms\" = \"0/5\"\n\n[[ha.groups]]"
    )])
    .is_empty());
}

#[test]
fn networks_may_not_share_addresses() {
    for (mgmt, storage) in [
        ("10.2.0.0/16", "10.2.22.0/24"),
        ("10.2.22.0/24", "10.2.22.0/24"),
    ] {
        let errs = lab_errors(&[
            ("cidr = \"10.2.21.0/24\"", &format!("cidr = {mgmt:?}")),
            ("cidr = \"10.2.22.0/24\"", &format!("cidr = {storage:?}")),
        ]);
        assert!(
            errs.iter()
                .any(|(k, m)| k.ends_with(".cidr") && m.contains("overlaps")),
            "{mgmt} + {storage}: {errs:?}"
        );
    }
}

#[test]
fn image_sizes_that_build_would_refuse_are_refused_by_validate() {
    let image = "[notifications]";
    for (size, needle) in [
        ("4563402753", "whole number of MiB"),
        ("16000000T", "larger than"),
    ] {
        let errs = lab_errors(&[(
            image,
            &format!("[image]\ndisk-size = {size:?}\n\n[notifications]"),
        )]);
        assert!(
            errs.iter()
                .any(|(k, m)| k == "image.disk-size" && m.contains(needle)),
            "{size}: {errs:?}"
        );
    }
}

#[test]
fn spec_and_secret_files_are_read_with_bounds() {
    // A device as the spec: refused before reading (it used to grow until the OOM kill).
    let e = hcikit::spec::load(Path::new("/dev/zero")).err().unwrap();
    assert_eq!(hcikit::error::exit_code(&e), 2);
    assert!(format!("{e:#}").contains("not a regular file"), "{e:#}");
    let dir = spec_dir();
    let big = dir.path().join("big.toml");
    std::fs::write(
        &big,
        vec![b'#'; (hcikit::spec::MAX_SPEC_BYTES + 1) as usize],
    )
    .unwrap();
    let e = hcikit::spec::load(&big).err().unwrap();
    assert!(format!("{e:#}").contains("larger than"), "{e:#}");
    // A password file that is a device, or far larger than any password.
    let huge = dir.path().join("huge");
    std::fs::write(&huge, vec![b'x'; 1 << 20]).unwrap();
    for (file, needle) in [
        ("/dev/zero", "not a regular file"),
        (huge.to_str().unwrap(), "larger than"),
    ] {
        let errs = lab_errors(&[(
            "password-file = \"secrets/smtp-password\"",
            &format!("password-file = {file:?}"),
        )]);
        assert!(
            errs.iter()
                .any(|(k, m)| k == "notifications.smtp[0].password-file" && m.contains(needle)),
            "{file}: {errs:?}"
        );
    }
}
