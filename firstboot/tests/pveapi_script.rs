//! The agent's API script (`hcikit_firstboot::pveapi::SCRIPT`) run by the real `perl`
//! against stand-ins for the three PVE modules it uses, so its own glue is tested here:
//! options from argv, secret parameters from stdin, URI parameters, its refusals. The
//! stand-ins record what `$handler->handle` receives; Proxmox's parsing and handlers
//! themselves are what the simulator models from the schema tables.

use hcikit_firstboot::pveapi;
use std::io::Write;
use std::process::{Command, Stdio};

/// `PVE::API2->find_handler` knows `POST /access/domains` and `PUT /things/{name}`;
/// `get_options` takes `--key value` pairs of the schema's properties (as pve-common's
/// does for string properties); `handle` prints the parameters as canonical JSON.
const STUBS: &[(&str, &str)] = &[
    (
        "PVE/RPCEnvironment.pm",
        "package PVE::RPCEnvironment; sub setup_default_cli_env { $main::cli_env = 1 } 1;",
    ),
    (
        "PVE/API2.pm",
        r#"package PVE::API2;
my $props = { realm => {}, type => {}, password => {}, name => {}, comment => {} };
sub find_handler {
    my ($class, $method, $path, $uri) = @_;
    if ($method eq 'POST' && $path eq '/access/domains') {
        return ('Stub::Handler', { parameters => { properties => $props } });
    }
    if ($method eq 'PUT' && $path =~ m!^/things/([^/]+)$!) {
        $uri->{name} = $1;
        return ('Stub::Handler', { parameters => { properties => $props } });
    }
    return;
}
package Stub::Handler;
use JSON;
sub handle {
    my ($class, $info, $param) = @_;
    die "not set up\n" if !$main::cli_env;
    print JSON->new->canonical->encode($param);
}
1;"#,
    ),
    (
        "PVE/JSONSchema.pm",
        r#"package PVE::JSONSchema;
sub get_options {
    my ($schema, $args, $arg_param, $fixed) = @_;
    my $res = {};
    my @a = @$args;
    while (@a) {
        my $k = shift @a;
        $k =~ s/^--?// or die "400 too many arguments\n";
        die "400 Parameter verification failed.\n$k: property is not defined in schema\n"
            if !$schema->{properties}->{$k};
        $res->{$k} = shift @a;
    }
    return $res;
}
1;"#,
    ),
];

fn run(args: &[&str], secrets: &[(&str, &str)]) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in STUBS {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    let pairs: Vec<(String, String)> = secrets
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let c = pveapi::command(args[0], args[1]).args(args[2..].iter().copied());
    let argv = c.argv();
    let mut child = Command::new(argv[0])
        .args(&argv[1..])
        .env("PERL5LIB", dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("perl is part of every Debian, and of this test's environment");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&pveapi::stdin(&pairs))
        .unwrap();
    let o = child.wait_with_output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn secrets_from_stdin_join_the_options_from_argv() {
    let secret = "bind \"pw\" with spaces\\ and é";
    let (code, out, err) = run(
        &[
            "create",
            "/access/domains",
            "--realm",
            "corp",
            "--type",
            "ldap",
        ],
        &[("password", secret)],
    );
    assert_eq!(code, 0, "{err}");
    let got: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        got,
        serde_json::json!({"realm": "corp", "type": "ldap", "password": secret})
    );
}

#[test]
fn uri_parameters_are_added_and_refusals_are_clear() {
    let (code, out, err) = run(&["set", "/things/a1", "--comment", "x"], &[]);
    assert_eq!(code, 0, "{err}");
    let got: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(got, serde_json::json!({"name": "a1", "comment": "x"}));

    let (code, _, err) = run(
        &["create", "/access/domains", "--password", "a"],
        &[("password", "b")],
    );
    assert_eq!(code, 255);
    assert!(
        err.contains("parameter 'password' given on the command line and on stdin"),
        "{err}"
    );
    let (code, _, err) = run(&["delete", "/access/domains"], &[]);
    assert_eq!(code, 255);
    assert!(err.contains("unknown command 'delete'"), "{err}");
    let (code, _, err) = run(&["create", "/nowhere"], &[]);
    assert_eq!(code, 255);
    assert!(err.contains("no 'create' handler for '/nowhere'"), "{err}");
}
