//! The value formats of Proxmox's JSON schema (pve-common `PVE::JSONSchema` `check_format`
//! and the registered format subs) and property strings, as the CLI checks them.

use super::*;

/// JSONSchema `check_format`: a property-string format (a hash), or a named format with
/// an optional `-list`/`-opt` suffix.
pub(super) fn check_format(f: &Value, s: &str) -> Result<(), String> {
    if f.is_object() {
        return check_property_string(f, s);
    }
    let Some(name) = f.as_str() else {
        return Ok(());
    };
    if name == "regex" {
        return Ok(());
    }
    let (base, kind) = if let Some(b) = name.strip_suffix("-list") {
        (b, "list")
    } else if let Some(b) = name.strip_suffix("-opt") {
        (b, "opt")
    } else {
        (name, "none")
    };
    match kind {
        "list" => split_list(s).iter().try_for_each(|v| named_format(base, v)),
        "opt" if s.is_empty() => Ok(()),
        _ => named_format(base, s),
    }
}

/// pve-common `PVE::ParseUtils::split_list`.
pub(super) fn split_list(s: &str) -> Vec<String> {
    if s.contains('\0') {
        return s.split('\0').map(str::to_string).collect();
    }
    s.split([',', ';', ' ', '\t', '\n'])
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

/// JSONSchema `parse_property_string` then `check_object` on the keys.
pub(super) fn check_property_string(format: &Value, s: &str) -> Result<(), String> {
    let keys = format.as_object().cloned().unwrap_or_default();
    let mut res: BTreeMap<String, String> = BTreeMap::new();
    let mut default_used = false;
    for part in s.split(',') {
        if part.trim().is_empty() {
            continue;
        }
        if let Some((k, v)) = part.split_once('=').filter(|(_, v)| !v.is_empty()) {
            if res.contains_key(k) {
                return Err(format!(
                    "duplicate key in comma-separated list property: {k}\n"
                ));
            }
            let Some(pd) = keys.get(k) else {
                return Err(format!(
                    "invalid key in comma-separated list property: {k}\n"
                ));
            };
            let v = if is_bool(pd) {
                parse_boolean(v).map_or(v.to_string(), |b| if b { "1" } else { "0" }.into())
            } else {
                v.to_string()
            };
            res.insert(k.to_string(), v);
        } else if !part.contains('=') {
            let Some((dk, _)) = keys
                .iter()
                .find(|(_, pd)| pd["default_key"].as_i64() == Some(1))
            else {
                return Err("value without key, but schema does not define a default key\n".into());
            };
            if default_used || res.contains_key(dk) {
                return Err(format!(
                    "duplicate key in comma-separated list property: {dk}\n"
                ));
            }
            default_used = true;
            res.insert(dk.clone(), part.to_string());
        } else {
            return Err("missing key in comma-separated list property\n".into());
        }
    }
    let mut errs = Vec::new();
    for (k, pd) in &keys {
        match res.get(k) {
            None if pd["optional"].as_i64() != Some(1) => {
                errs.push(format!("{k}: property is missing and it is not optional"))
            }
            None => {}
            Some(v) => {
                if let Err(e) = check_value(pd, v) {
                    errs.push(format!("{k}: {e}"));
                }
            }
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(format!("format error\n{}", errs.join("\n")))
    }
}

/// The named formats the agent's parameters use, each as the sub that registers it.
/// `Err` carries the sub's `die` text.
pub(super) fn named_format(name: &str, s: &str) -> Result<(), String> {
    let ok = |c: bool, msg: String| if c { Ok(()) } else { Err(msg) };
    match name {
        // pve-common JSONSchema.pm pve_verify_configid ($CONFIGID_RE)
        "pve-configid" => ok(is_configid(s), format!("invalid configuration ID '{s}'\n")),
        // pve-common JSONSchema.pm parse_storage_id -> parse_id
        "pve-storage-id" => parse_id(s, "storage"),
        // pve-common JSONSchema.pm pve_verify_node_name
        "pve-node" => ok(
            is_node_name(s),
            "value does not look like a valid node name\n".into(),
        ),
        // pve-common JSONSchema.pm pve_verify_email (ParseUtils $EMAIL_RE)
        "email" => ok(
            is_email(s),
            "value does not look like a valid email address\n".into(),
        ),
        // pve-common JSONSchema.pm pve_verify_email_or_username ($EMAIL_USER_RE)
        "email-or-username" => ok(
            is_email(s) || is_email_user(s),
            "value does not look like a valid email address or user name\n".into(),
        ),
        // pve-common JSONSchema.pm pve_verify_ip
        "ip" => ok(
            s.parse::<std::net::IpAddr>().is_ok(),
            "value does not look like a valid IP address\n".into(),
        ),
        // pve-common JSONSchema.pm pve_verify_cidr (v4 prefix 8..32, v6 8..128)
        "CIDR" => ok(
            is_cidr(s),
            "value does not look like a valid CIDR network\n".into(),
        ),
        // pve-common JSONSchema.pm pve_verify_address (ip or dns-name)
        "address" => ok(
            s.parse::<std::net::IpAddr>().is_ok() || is_dns_name(s),
            format!("value does not look like a valid address: {s}\n"),
        ),
        // pve-access-control Auth/Plugin.pm pve_verify_realm ($realm_regex)
        "pve-realm" => ok(
            is_realm(s),
            "value does not look like a valid realm\n".into(),
        ),
        // pve-access-control Auth/Plugin.pm verify_username
        "pve-userid" => verify_username(s),
        // pve-ha-manager HA/Tools.pm pve_verify_ha_resource_id
        "pve-ha-resource-id" => ok(
            is_ha_resource_id(s),
            "value does not look like a valid ha resource id\n".into(),
        ),
        // pve-ha-manager HA/Tools.pm pve_verify_ha_resource_or_vm_id
        "pve-ha-resource-or-vm-id" => ok(
            is_ha_resource_id(s) || (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())),
            "value does not look like a valid ha resource id\n".into(),
        ),
        // pve-ha-manager HA/Tools.pm pve_verify_ha_node; PVE 8's HA/Groups.pm registers
        // the same check as pve-ha-group-node
        "pve-ha-node" | "pve-ha-group-node" => ok(
            {
                let (n, p) = s.split_once(':').unwrap_or((s, "0"));
                is_node_name(n) && !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())
            },
            "value does not look like a valid ha node\n".into(),
        ),
        // pve-storage Storage/Plugin.pm verify_content: content types are checked
        // against the plugin later; the format itself accepts word lists.
        "pve-storage-content" => ok(
            !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
            format!("invalid content type '{s}'\n"),
        ),
        _ if NOT_MODELLED_FORMATS.contains(&name) => Ok(()),
        _ => Err(format!(
            "format '{name}' is not modelled by the simulator\n"
        )),
    }
}

/// Named formats `named_format` implements; a test holds every code format of the
/// agent's parameters to this list.
pub const MODELLED_FORMATS: &[&str] = &[
    "pve-configid",
    "pve-storage-id",
    "pve-node",
    "email",
    "email-or-username",
    "ip",
    "CIDR",
    "address",
    "pve-realm",
    "pve-userid",
    "pve-ha-resource-id",
    "pve-ha-resource-or-vm-id",
    "pve-ha-node",
    "pve-ha-group-node",
    "pve-storage-content",
];

/// Code formats of parameters the agent never passes; the simulator accepts any value
/// for them and docs/simulator.md lists them.
pub const NOT_MODELLED_FORMATS: &[&str] = &[
    "ip-list",
    "mac-prefix",
    "pve-groupid",
    "pve-storage-path",
    "pve-storage-server",
    "pve-storage-portal-dns",
    "pve-storage-vgname",
    "pve-storage-options",
    "pve-volume-id",
    "pve-dir-override",
    "pve-storage-zfs-blocksize",
    "ldap-simple-attr",
    "pve-task-status-type",
    "pve-vmid",
    "pve-ha-node",
];

/// `$CONFIGID_RE = qr/[a-z][a-z0-9_-]+/i`
pub fn is_configid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_alphabetic()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-')
}

pub(super) fn parse_id(s: &str, what: &str) -> Result<(), String> {
    if s.chars().count() < 2 {
        return Err(format!(
            "{what} ID '{s}' cannot be shorter than 2 characters\n"
        ));
    }
    let b = s.as_bytes();
    let ok = b[0].is_ascii_alphabetic()
        && b.last().is_some_and(|c| c.is_ascii_alphanumeric())
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!("{what} ID '{s}' contains illegal characters\n"))
    }
}

pub(super) fn is_node_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
}

pub(super) fn is_dns_name(s: &str) -> bool {
    !s.is_empty() && s.split('.').all(is_node_name)
}

/// ParseUtils `$EMAIL_USER_RE = qr/[\w\+\-\~]+(\.[\w\+\-\~]+)*/`
pub(super) fn is_email_user(s: &str) -> bool {
    !s.is_empty()
        && s.split('.')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_alphanumeric() || "_+-~".contains(c)))
}

/// ParseUtils `$EMAIL_RE = qr/$EMAIL_USER_RE@[a-zA-Z0-9\-]+(\.[a-zA-Z0-9\-]+)*/`
pub fn is_email(s: &str) -> bool {
    let Some((user, domain)) = s.rsplit_once('@') else {
        return false;
    };
    is_email_user(user)
        && domain
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-'))
}

pub(super) fn is_cidr(s: &str) -> bool {
    let Some((ip, len)) = s.split_once('/') else {
        return false;
    };
    let Ok(len) = len.parse::<u32>() else {
        return false;
    };
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => (8..=32).contains(&len),
        Ok(std::net::IpAddr::V6(_)) => (8..=128).contains(&len),
        Err(_) => false,
    }
}

/// pve-access-control `$realm_regex = qr/[A-Za-z][A-Za-z0-9\.\-_]+/`
pub fn is_realm(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_alphabetic()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || b".-_".contains(c))
}

/// pve-access-control Auth/Plugin.pm `verify_username`: length 1..64, then
/// `$user_regex@$realm_regex` with `$user_regex = qr![^\s:/]+!`.
pub(super) fn verify_username(s: &str) -> Result<(), String> {
    let len = s.chars().count();
    if len < 3 {
        return Err(format!("user name '{s}' is too short\n"));
    }
    if len > 64 {
        return Err(format!("user name '{s}' is too long ({len} > 64)\n"));
    }
    let ok = s.rsplit_once('@').is_some_and(|(u, r)| {
        !u.is_empty()
            && !u.chars().any(|c| c.is_whitespace() || c == ':' || c == '/')
            && is_realm(r)
    });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "value '{s}' does not look like a valid user name\n"
        ))
    }
}

pub(super) fn is_ha_resource_id(s: &str) -> bool {
    // /^[a-z]+:\S+$/
    s.split_once(':').is_some_and(|(t, n)| {
        !t.is_empty()
            && t.bytes().all(|b| b.is_ascii_lowercase())
            && !n.is_empty()
            && !n.chars().any(char::is_whitespace)
    })
}
