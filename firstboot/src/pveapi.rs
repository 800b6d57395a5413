//! Proxmox API calls whose secret parameters travel on stdin, never on argv.
//!
//! `pvesh` takes every API parameter from its command line and has no parameter mapping
//! (pve-manager `PVE/CLI/pvesh.pm`: no `param_mapping`, `call_api_method` passes the
//! parsed options straight to the handler); `pveum` maps a password prompt only for
//! `passwd` and `ticket` (pve-access-control `src/PVE/CLI/pveum.pm` `param_mapping`,
//! `change_password`/`create_ticket`), and that prompt reads a terminal (pve-common
//! `PVE::PTY::read_password`), not a pipe. So an SMTP password (pve-manager
//! `PVE::API2::Cluster::Notifications` `create_smtp_endpoint`), an LDAP/AD bind password
//! (pve-access-control `PVE::API2::Domains` `create`, stored by `PVE::Auth::LDAP`
//! `on_add_hook` → `ldap_set_credentials` in `/etc/pve/priv/realm/<realm>.pw`) or an
//! OpenID client key (a `domains.cfg` property of `PVE::Auth::OpenId`) would be in
//! `/proc/<pid>/cmdline` if given to either tool.
//!
//! Instead the agent runs [`SCRIPT`] with `perl -`: the program and, after `__DATA__`,
//! a JSON object of the secret parameters arrive on stdin. The script does what pvesh's
//! `call_api_method` does for a local (not proxied) method: `setup_default_cli_env`
//! (root@pam), `PVE::API2->find_handler`, the options parsed by pve-common
//! `PVE::JSONSchema::get_options` with the URI parameters removed from the schema
//! (pvesh `remove_schema_properties`) and added back, then `$handler->handle`, which
//! verifies every parameter against the method's schema (pve-common `PVE::RESTHandler`
//! `handle` → `PVE::JSONSchema::validate`). Proxmox's own handler then stores each secret
//! where and how it always does (locks, private files, modes), on PVE 8 and 9 alike:
//! the agent never writes Proxmox's private files itself.

/// The Perl program fed on stdin (`perl - <create|set> <api-path> [--option value]…`).
/// Everything after its `__DATA__` line is a JSON object of the secret parameters.
pub const SCRIPT: &str = r#"use strict;
use warnings;
use JSON;
use PVE::API2;
use PVE::JSONSchema;
use PVE::RPCEnvironment;

sub main {
    my ($verb, $path, @args) = @ARGV;
    $verb //= '';
    my $method = { create => 'POST', set => 'PUT' }->{$verb}
        // die "ERROR: unknown command '$verb'\n";
    die "400 not enough arguments\n" if !defined($path);
    PVE::RPCEnvironment->setup_default_cli_env();
    my $uri_param = {};
    my ($handler, $info) = PVE::API2->find_handler($method, $path, $uri_param);
    die "no '$verb' handler for '$path'\n" if !$handler || !$info;
    die "'$path' is proxied to another node: not supported\n" if $info->{proxyto};
    my $schema = { %{ $info->{parameters} } };
    $schema->{properties} = { %{ $schema->{properties} // {} } };
    delete $schema->{properties}->{$_} for keys %$uri_param;
    my $param = PVE::JSONSchema::get_options($schema, \@args, [], {});
    my $secret = JSON->new->decode(do { local $/; <DATA> });
    die "the secret parameters are not a JSON object\n" if ref($secret) ne 'HASH';
    for my $k (sort keys %$secret) {
        die "parameter '$k' given on the command line and on stdin\n" if exists $param->{$k};
        $param->{$k} = $secret->{$k};
    }
    $param->{$_} = $uri_param->{$_} for keys %$uri_param;
    $handler->handle($info, $param);
}

# An error exits 255 whatever errno a `die` would leave as the exit code.
eval { main(); 1 } or do { print STDERR $@; exit(255) };
"#;

/// Separates [`SCRIPT`] from the secret parameters on stdin (Perl's `__DATA__`).
pub const DATA_MARKER: &str = "__DATA__\n";

/// `perl - <verb> <path>`: add the public options with [`crate::host::CommandLine::opt`]
/// and the secret ones with [`crate::host::CommandLine::secret_param`].
pub fn command(verb: &str, path: &str) -> crate::host::CommandLine {
    crate::host::CommandLine::new("perl")
        .args(["-", verb, path])
        .api_script()
}

/// The stdin of a [`command`]: the program, the marker, then the secret parameters.
pub fn stdin(secrets: &[(String, String)]) -> Vec<u8> {
    let obj: serde_json::Map<String, serde_json::Value> = secrets
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    let mut out = String::with_capacity(SCRIPT.len() + 64);
    out.push_str(SCRIPT);
    out.push_str(DATA_MARKER);
    out.push_str(&serde_json::Value::Object(obj).to_string());
    out.push('\n');
    out.into_bytes()
}

/// Splits a [`command`]'s stdin into the program and the secret parameters (for the
/// simulator, which runs the program only when it is exactly [`SCRIPT`]).
pub fn split_stdin(data: &[u8]) -> Option<(&str, serde_json::Map<String, serde_json::Value>)> {
    let text = std::str::from_utf8(data).ok()?;
    let (script, rest) = text.split_once(DATA_MARKER)?;
    let serde_json::Value::Object(m) = serde_json::from_str(rest).ok()? else {
        return None;
    };
    Some((script, m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stdin_carries_the_script_then_the_secrets_as_json() {
        let s = stdin(&[("password".into(), "p\"w\\ \u{e9}".into())]);
        let (script, m) = split_stdin(&s).unwrap();
        assert_eq!(script, SCRIPT);
        assert_eq!(m["password"], "p\"w\\ \u{e9}");
        assert_eq!(m.len(), 1);
        // The marker appears once: the script itself never contains it before the end.
        assert_eq!(
            String::from_utf8(s).unwrap().matches(DATA_MARKER).count(),
            1
        );
    }

    #[test]
    fn the_command_line_names_only_the_verb_and_path() {
        let c = command("create", "/access/domains").opt("realm", "corp");
        assert_eq!(
            c.argv(),
            ["perl", "-", "create", "/access/domains", "--realm", "corp"]
        );
    }
}
