//! No log level reveals a secret: every command that reads secrets is run at `-vv` and
//! with `RUST_LOG` asking every crate for traces, and nothing it prints may hold a secret
//! value (SMTP and realm passwords, an OpenID client key, the secrets seed).

mod image_support;

use hcikit_tests::{hcikit_bin, run};
use image_support::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

const SMTP: &str = "smtp-secret-7a1c9e";
const BIND: &str = "ldap-bind-secret-44d0";
const CLIENT_KEY: &str = "openid-client-key-93be";

fn secret_file(dir: &Path, name: &str, value: &str) {
    let p = dir.join(name);
    std::fs::write(&p, format!("{value}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
}

#[test]
fn no_log_level_reveals_a_secret() {
    let fx = Fixture::new();
    let dir = fx.dir.path();
    let ex = hcikit_tests::workspace_root().join("examples");
    std::fs::create_dir_all(dir.join("secrets")).unwrap();
    secret_file(&dir.join("secrets"), "smtp-password", SMTP);
    secret_file(&dir.join("secrets"), "bind", BIND);
    secret_file(&dir.join("secrets"), "client-key", CLIENT_KEY);
    let mut spec = std::fs::read_to_string(ex.join("lab.toml")).unwrap();
    spec.push_str(
        "\n[[realms]]\nname = \"corp\"\ntype = \"ldap\"\nserver1 = \"ldap.example.com\"\n\
         base-dn = \"dc=example,dc=com\"\nuser-attr = \"uid\"\nbind-dn = \"cn=pve,dc=example,dc=com\"\n\
         bind-password-file = \"secrets/bind\"\n\
         \n[[realms]]\nname = \"sso\"\ntype = \"openid\"\nissuer-url = \"https://sso.example.com\"\n\
         client-id = \"pve\"\nclient-key-file = \"secrets/client-key\"\n\
         \n[image]\ndisk-size = \"4608M\"\nesp-size = \"256M\"\n",
    );
    let spec_path = dir.join("lab.toml");
    std::fs::write(&spec_path, spec).unwrap();
    // The seed is created by the first command that needs it; its value is a secret too.
    let out = dir.join("out");
    let render_out = dir.join("render");
    let runs: Vec<(&str, Vec<String>, Option<&str>)> = vec![
        ("validate", vec!["-vv".into(), "validate".into()], None),
        (
            "plan",
            vec!["-vv".into(), "plan".into(), "--json".into()],
            None,
        ),
        (
            "render --reveal-secrets",
            vec![
                "-vv".into(),
                "render".into(),
                "--reveal-secrets".into(),
                "-o".into(),
                render_out.display().to_string(),
            ],
            Some("trace"),
        ),
        (
            "build",
            vec![
                "-vv".into(),
                "build".into(),
                "-o".into(),
                out.display().to_string(),
                "--node".into(),
                "pve1".into(),
            ],
            None,
        ),
        (
            "build with RUST_LOG=handlebars=trace",
            vec![
                "build".into(),
                "-o".into(),
                out.display().to_string(),
                "--node".into(),
                "pve2".into(),
            ],
            Some("handlebars=trace,trace"),
        ),
    ];
    let mut checked = 0;
    for (what, args, rust_log) in runs {
        let mut c = Command::new(hcikit_bin());
        // The spec goes after the verb, so insert it after the first non-flag word.
        let verb = args.iter().position(|a| !a.starts_with('-')).unwrap();
        c.args(&args[..=verb])
            .arg(&spec_path)
            .args(&args[verb + 1..]);
        if what.starts_with("build") {
            c.arg("--base")
                .arg(&fx.base)
                .arg("--cache")
                .arg(dir.join("cache"))
                .arg("--agent")
                .arg(&fx.agent)
                .env("HCIKIT_OVERLAYS", &fx.overlays)
                .env("SOURCE_DATE_EPOCH", EPOCH.to_string());
        }
        match rust_log {
            Some(l) => c.env("RUST_LOG", l),
            None => c.env_remove("RUST_LOG"),
        };
        let (code, stdout, stderr) = run(&mut c);
        assert_eq!(code, 0, "{what}: {stdout}\n{stderr}");
        let seed = std::fs::read_to_string(dir.join("lab.secrets-seed")).ok();
        let seed = seed.as_deref().map(str::trim).filter(|s| !s.is_empty());
        for secret in [SMTP, BIND, CLIENT_KEY].into_iter().chain(seed) {
            for (stream, text) in [("stdout", &stdout), ("stderr", &stderr)] {
                assert!(
                    !text.contains(secret),
                    "{what} revealed a secret on {stream}"
                );
            }
        }
        if stderr.contains("DEBUG") {
            checked += 1;
        }
    }
    // Debug logging was on (the builds log the commands they run): the checks above
    // looked at real verbose output.
    assert!(checked >= 2, "the verbose runs logged nothing at debug");
}
