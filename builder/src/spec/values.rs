//! Value parsers and checks shared by validation and resolution: sizes, speeds,
//! durations, bandwidths, addresses, MACs, device paths and the name formats Proxmox
//! accepts, plus the tables of valid words.

use crate::spec::raw::*;
use ipnet::IpNet;
use std::net::IpAddr;

/// datacenter.cfg `keyboard` codes (PVE 8, `PVE::DataCenterConfig`).
pub const KEYBOARDS: &[&str] = &[
    "da", "de", "de-ch", "en-gb", "en-us", "es", "fi", "fr", "fr-be", "fr-ca", "fr-ch", "hu", "is",
    "it", "ja", "lt", "mk", "nl", "no", "pl", "pt", "pt-br", "sl", "sv", "tr",
];
/// Linux bonding modes as ifupdown2 spells them.
pub const BOND_MODES: &[&str] = &[
    "balance-rr",
    "active-backup",
    "balance-xor",
    "broadcast",
    "802.3ad",
    "balance-tlb",
    "balance-alb",
];
pub const XMIT_HASH_POLICIES: &[&str] = &["layer2", "layer2+3", "layer3+4", "encap2+3", "encap3+4"];
pub const CEPH_REPOSITORIES: &[&str] = &["no-subscription", "enterprise", "test"];
pub const SHUTDOWN_POLICIES: &[&str] = &["freeze", "failover", "conditional", "migrate"];
pub const BWLIMIT_KEYS: &[&str] = &["clone", "default", "migration", "move", "restore"];
pub const HA_STATES: &[&str] = &["started", "stopped", "enabled", "disabled", "ignored"];
pub const SMTP_MODES: &[&str] = &["insecure", "starttls", "tls"];
pub const SEVERITIES: &[&str] = &["info", "notice", "warning", "error", "unknown"];
/// The notification target that exists on every PVE node.
pub const BUILTIN_TARGET: &str = "mail-to-root";
/// Storage ids a fresh PVE install already has.
pub const RESERVED_STORAGE_IDS: &[&str] = &["local", "local-lvm", "local-zfs"];
/// ceph.conf options hcikit and pveceph write themselves.
pub const MANAGED_CEPH_OPTIONS: &[&str] = &[
    "fsid",
    "mon_host",
    "public_network",
    "cluster_network",
    "osd_pool_default_size",
    "osd_pool_default_min_size",
    "keyring",
];
/// Valid largest placement-group count for one pool (pveceph's `pg_num` maximum).
pub const MAX_PG_NUM: i64 = 32768;
pub const MIN_MTU: u32 = 576;
pub const MAX_MTU: u32 = 9216;
/// Smallest ESP hcikit builds.
pub const MIN_ESP_SIZE: u64 = 256 << 20;
/// Smallest root partition hcikit builds.
pub const MIN_ROOT_SIZE: u64 = 4 << 30;

/// A network in CIDR form with the host bits cleared.
pub fn parse_network(cidr: &str) -> Result<IpNet, String> {
    let net: IpNet = cidr
        .parse()
        .map_err(|_| format!("{cidr:?} is not a network in CIDR form like 10.2.21.0/24"))?;
    if net.trunc() != net {
        return Err(format!(
            "{cidr} has host bits set; the network is {} (node addresses go under [[nodes]])",
            net.trunc()
        ));
    }
    Ok(net)
}

/// `ip` is a usable host address of `net` (inside it, not its network or broadcast address).
pub fn check_host_in(ip: IpAddr, net: &IpNet, name: &str) -> Result<(), String> {
    if !net.contains(&ip) {
        return Err(format!("{ip} is not inside network {name} ({net})"));
    }
    if let (IpNet::V4(n), IpAddr::V4(a)) = (net, ip) {
        if n.prefix_len() < 31 && (a == n.network() || a == n.broadcast()) {
            let what = if a == n.network() {
                "network"
            } else {
                "broadcast"
            };
            return Err(format!(
                "{ip} is the {what} address of network {name} ({net}), not a host address"
            ));
        }
    }
    if let (IpNet::V6(n), IpAddr::V6(a)) = (net, ip) {
        if n.prefix_len() < 127 && a == n.network() {
            return Err(format!(
                "{ip} is the subnet-router address of network {name} ({net}), not a host address"
            ));
        }
    }
    Ok(())
}

/// Link speed in Mbit/s: a number, or `"<n>M"`, `"<n>G"` (decimals allowed: `"2.5G"`).
pub fn parse_speed(s: &Speed) -> Result<u64, String> {
    let bad = |t: &str| {
        format!("{t:?} is not a link speed; write Mbit/s as a number (1000) or a string like \"1G\", \"2.5G\", \"10G\", \"100M\"")
    };
    let v = match s {
        Speed::Mbps(v) => u64::try_from(*v)
            .ok()
            .filter(|v| *v > 0)
            .ok_or_else(|| bad(&v.to_string()))?,
        Speed::Text(t) => {
            let u = t.trim().to_ascii_uppercase();
            let u = u
                .strip_suffix("BIT/S")
                .or_else(|| u.strip_suffix("BPS"))
                .unwrap_or(&u);
            let (num, mult) = if let Some(n) = u.strip_suffix('G') {
                (n, 1000)
            } else if let Some(n) = u.strip_suffix('M') {
                (n, 1)
            } else {
                (u, 1)
            };
            let milli = parse_fixed(num.trim(), 3).ok_or_else(|| bad(t))?;
            let v = milli * mult / 1000;
            if v == 0 || milli * mult % 1000 != 0 {
                return Err(bad(t));
            }
            v
        }
    };
    Ok(v)
}

/// A decimal with at most `places` fractional digits, scaled by 10^places.
pub(crate) fn parse_fixed(s: &str, places: u32) -> Option<u64> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || frac.len() > places as usize
        || (s.contains('.') && frac.is_empty())
    {
        return None;
    }
    let scale = 10u64.pow(places);
    let int: u64 = int.parse().ok()?;
    let frac_v: u64 = if frac.is_empty() {
        0
    } else {
        frac.parse::<u64>().ok()? * 10u64.pow(places - frac.len() as u32)
    };
    int.checked_mul(scale)?.checked_add(frac_v)
}

/// A bandwidth limit once read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BwLimit {
    KibPerSec(u64),
    /// Hundredths of a percent (`"90%"` → 9000).
    Percent(u64),
}

pub fn parse_bandwidth(b: &Bandwidth) -> Result<BwLimit, String> {
    match b {
        Bandwidth::KibPerSec(v) if *v >= 1 => Ok(BwLimit::KibPerSec(*v as u64)),
        Bandwidth::KibPerSec(v) => Err(format!(
            "{v} is not a limit; give KiB/s as a positive number or a percentage like \"90%\""
        )),
        Bandwidth::Text(t) => {
            let bad = || {
                format!("{t:?} is not a limit; give KiB/s as a number (115200) or a percentage of the link like \"90%\"")
            };
            let n = t.trim().strip_suffix('%').ok_or_else(bad)?;
            let hundredths = parse_fixed(n.trim(), 2).ok_or_else(bad)?;
            if !(100..=10000).contains(&hundredths) {
                return Err(format!(
                    "{t} is out of range; a percentage must be 1% to 100%"
                ));
            }
            Ok(BwLimit::Percent(hundredths))
        }
    }
}

/// KiB/s for a share of a link: `speed_mbps` Mbit/s (10^6 bit/s) × `hundredths`/10000,
/// converted to bytes (÷8) and KiB (÷1024), rounded down so the limit never exceeds the
/// share asked for.
pub fn percent_to_kib(speed_mbps: u64, hundredths: u64) -> u64 {
    let bits = speed_mbps as u128 * 1_000_000 * hundredths as u128;
    (bits / (8 * 1024 * 10_000)) as u64
}

/// A size in bytes: `"16G"`, `"512M"`, `"1T"`, `"4096K"` (binary units), or plain bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let bad = || {
        format!(
            "{s:?} is not a size; write a number with K, M, G or T (binary units), e.g. \"16G\""
        )
    };
    let t = s.trim();
    let t = t
        .strip_suffix("iB")
        .or_else(|| t.strip_suffix('B'))
        .unwrap_or(t);
    let (num, shift) = match t.chars().last() {
        Some('K' | 'k') => (&t[..t.len() - 1], 10),
        Some('M' | 'm') => (&t[..t.len() - 1], 20),
        Some('G' | 'g') => (&t[..t.len() - 1], 30),
        Some('T' | 't') => (&t[..t.len() - 1], 40),
        _ => (t, 0),
    };
    let v: u64 = num.trim().parse().map_err(|_| bad())?;
    v.checked_mul(1u64 << shift)
        .filter(|v| *v > 0)
        .ok_or_else(bad)
}

/// Seconds from a number or a string with `s`, `m` or `h` suffix.
pub fn parse_duration(d: &Duration) -> Result<u64, String> {
    match d {
        Duration::Secs(v) if *v > 0 => Ok(*v as u64),
        Duration::Secs(v) => Err(format!(
            "{v} is not a duration; use a positive number of seconds"
        )),
        Duration::Text(t) => {
            let bad = || {
                format!("{t:?} is not a duration; write seconds (90) or \"90s\", \"15m\", \"1h\"")
            };
            let s = t.trim();
            let (num, mult) = match s.chars().last() {
                Some('s') => (&s[..s.len() - 1], 1),
                Some('m') => (&s[..s.len() - 1], 60),
                Some('h') => (&s[..s.len() - 1], 3600),
                _ => (s, 1),
            };
            let v: u64 = num.trim().parse().map_err(|_| bad())?;
            v.checked_mul(mult).filter(|v| *v > 0).ok_or_else(bad)
        }
    }
}

/// pve-node format: `^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?$`, at most `max` characters.
pub fn check_pve_node_name(name: &str, max: usize) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if !ok {
        return Err(format!(
            "{name:?} is not valid; use letters, digits and '-' (not at the start or end)"
        ));
    }
    if name.len() > max {
        return Err(format!(
            "{name:?} is {} characters long; at most {max} are allowed",
            name.len()
        ));
    }
    Ok(())
}

pub fn is_dns_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

pub(crate) fn is_timezone(tz: &str) -> bool {
    !tz.is_empty()
        && tz.split('/').all(|p| {
            !p.is_empty()
                && p.starts_with(|c: char| c.is_ascii_alphabetic())
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+'))
        })
}

/// Lower-case letters, digits and `-`, starting with a letter.
pub(crate) fn is_simple_name(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// Linux interface names: 1–15 characters, no `/`, whitespace or `:`; we keep to
/// `[A-Za-z0-9_.-]` starting with a letter, which every Proxmox tool accepts.
pub fn check_iface_name(n: &str) -> Result<(), String> {
    if n.is_empty()
        || !n.starts_with(|c: char| c.is_ascii_alphabetic())
        || !n
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    {
        return Err(format!("{n:?} is not an interface name; use letters, digits, '.', '-' and '_', starting with a letter"));
    }
    if n.len() > 15 {
        return Err(format!(
            "{n:?} is {} characters long; Linux interface names have at most 15",
            n.len()
        ));
    }
    Ok(())
}

/// Storage id format of pve-storage: `^[a-z][a-z0-9\-_.]*[a-z0-9]$`.
pub fn check_storage_id(id: &str) -> Result<(), String> {
    let ok = id.len() >= 2
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && id.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!("{id:?} is not a valid storage id; use lower-case letters, digits, '-', '_' and '.', starting with a letter and ending with a letter or digit"))
    }
}

/// A Ceph pool name as Proxmox takes it and as a command-line argument can carry it.
/// Proxmox's API allows `^[^:/\s]+$` (pve-manager `PVE/API2/Ceph/Pool.pm`,
/// `$ceph_pool_common_options`), and with `add_storages` the name must also be a
/// storage id (`PVE::JSONSchema::parse_storage_id`, checked by `createpool`). We take
/// letters, digits, `-`, `_` and `.`, starting with a letter or digit: a name starting
/// with `-` would be read as an option by `pveceph pool create <name>` (pve-common
/// `PVE::JSONSchema::get_options` parses the command line with Getopt::Long before it
/// assigns positional arguments).
pub(crate) fn check_pool_name(n: &str) -> Result<(), String> {
    let ok = n.starts_with(|c: char| c.is_ascii_alphanumeric())
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{n:?} is not a valid pool name; use letters, digits, '-', '_' and '.', starting with a letter or digit"
        ))
    }
}

pub(crate) fn check_pg_num(pg: i64) -> Result<(), String> {
    if !(1..=MAX_PG_NUM).contains(&pg) || (pg & (pg - 1)) != 0 {
        let lower = if pg > 1 {
            1i64 << (63 - pg.leading_zeros())
        } else {
            1
        };
        let hint = if (1..=MAX_PG_NUM).contains(&pg) {
            format!(" (e.g. {lower} or {})", lower * 2)
        } else {
            String::new()
        };
        return Err(format!(
            "{pg} is not a power of two between 1 and {MAX_PG_NUM}{hint}"
        ));
    }
    Ok(())
}

pub(crate) fn is_ceph_section(s: &str) -> bool {
    let (base, id) = s.split_once('.').map_or((s, None), |(b, i)| (b, Some(i)));
    matches!(base, "global" | "mon" | "mgr" | "osd" | "mds" | "client")
        && id.is_none_or(|i| {
            !i.is_empty()
                && i.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        })
        && !(base == "global" && id.is_some())
}

/// A ceph.conf value as text, or `None` for arrays and tables.
pub fn ceph_value(v: &toml::Value) -> Option<String> {
    match v {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

/// PVE config ids (HA groups): letters, digits, `-`, `_`, starting with a letter, ≥2 chars.
pub(crate) fn is_config_id(s: &str) -> bool {
    s.len() >= 2
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
}

pub(crate) fn is_realm_name(s: &str) -> bool {
    is_config_id(s)
}

/// proxmox-notify entity names.
pub(crate) fn is_notify_name(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

pub fn is_email(s: &str) -> bool {
    match s.rsplit_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !local.chars().any(|c| {
                    c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | '@')
                })
                && is_dns_name(domain)
                && domain.contains('.')
        }
        None => false,
    }
}

/// `user@realm`, e.g. `root@pam`.
pub(crate) fn is_userid(s: &str) -> bool {
    match s.rsplit_once('@') {
        Some((user, realm)) => {
            !user.is_empty()
                && !user
                    .chars()
                    .any(|c| c.is_whitespace() || c == ':' || c == '/')
                && realm.len() >= 2
                && realm
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        }
        None => false,
    }
}

/// `vm:100`, `ct:101` or a bare VMID (taken as a VM) → normalised sid.
pub fn normalize_sid(sid: &str) -> Result<String, String> {
    let (kind, id) = sid.split_once(':').unwrap_or(("vm", sid));
    let id_ok = !id.is_empty()
        && id.bytes().all(|b| b.is_ascii_digit())
        && id
            .parse::<u64>()
            .is_ok_and(|v| (100..=999_999_999).contains(&v));
    if !matches!(kind, "vm" | "ct") || !id_ok {
        return Err(format!(
            "{sid:?} is not a resource id; write vm:<vmid> or ct:<vmid> with a VMID of 100 or more"
        ));
    }
    Ok(format!("{kind}:{id}"))
}

/// A group member as (node, priority).
pub fn parse_group_member(m: &StrOr<HaGroupNodeSpec>) -> Result<(String, Option<u32>), String> {
    let m = &m.0;
    let (node, prio) = match &m.written {
        Some(w) => match w.split_once(':') {
            Some((n, p)) => match p.parse::<u32>() {
                Ok(p) => (n.to_string(), Some(p as i64)),
                Err(_) => {
                    return Err(format!(
                        "{w:?} has no valid priority; write \"node\" or \"node:<number>\""
                    ))
                }
            },
            None => (w.clone(), None),
        },
        None => (m.node.clone(), m.priority),
    };
    let prio = match prio {
        Some(p) if !(0..=1000).contains(&p) => {
            return Err(format!(
                "priority {p} is out of range; use 0 to 1000 (higher is preferred)"
            ))
        }
        Some(p) => Some(p as u32),
        None => None,
    };
    Ok((node, prio))
}

/// A MAC as `xx:xx:xx:xx:xx:xx` (or with `-`), lower-cased; unicast only.
pub fn check_mac(mac: &str) -> Result<String, String> {
    let norm = mac.to_ascii_lowercase().replace('-', ":");
    let parts: Vec<&str> = norm.split(':').collect();
    if parts.len() != 6
        || !parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err(format!(
            "{mac:?} is not a MAC address like bc:24:11:00:00:01"
        ));
    }
    let first = u8::from_str_radix(parts[0], 16).unwrap_or(0);
    if first & 1 == 1 {
        return Err(format!(
            "{mac} is a multicast address; a NIC has a unicast MAC"
        ));
    }
    Ok(norm)
}

/// An absolute device path under `/dev/`.
pub fn check_device_path(d: &str) -> Result<(), String> {
    let ok = d.starts_with("/dev/")
        && d.len() > 5
        && !d.ends_with('/')
        && !d.split('/').any(|p| p == ".." || p == ".")
        && !d.chars().any(|c| c.is_whitespace() || c == ',');
    if ok {
        Ok(())
    } else {
        Err(format!("{d:?} is not a disk; use an absolute path under /dev, e.g. /dev/sdb or /dev/disk/by-id/..."))
    }
}

/// `/dev/sdb1`, `/dev/nvme0n1p2`, `/dev/mmcblk0p1`, `/dev/disk/by-id/...-part1`.
pub fn looks_like_partition(dev: &str) -> bool {
    let name = dev.rsplit('/').next().unwrap_or(dev);
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if let Some((_, n)) = name.rsplit_once("-part") {
        return digits(n);
    }
    for prefix in ["sd", "vd", "hd", "xvd"] {
        if let Some(rest) = name.strip_prefix(prefix) {
            let letters = rest.trim_end_matches(|c: char| c.is_ascii_digit());
            return letters.len() < rest.len()
                && !letters.is_empty()
                && letters.bytes().all(|b| b.is_ascii_lowercase());
        }
    }
    if name.starts_with("nvme") || name.starts_with("mmcblk") {
        return name
            .rsplit_once('p')
            .is_some_and(|(head, n)| digits(n) && head.len() > 4);
    }
    false
}

/// A crypt(3) hash: `$<id>$...` with a known scheme.
pub fn check_crypt_hash(h: &str) -> Result<(), String> {
    let h = h.trim();
    let known = ["$y$", "$gy$", "$7$", "$6$", "$5$", "$2b$", "$2y$", "$2a$"];
    if known.iter().any(|p| h.starts_with(p)) && h.len() > 20 && !h.chars().any(char::is_whitespace)
    {
        return Ok(());
    }
    if h.starts_with("$1$") {
        return Err(
            "MD5 crypt ($1$) is too weak; use yescrypt or SHA-512 (mkpasswd -m yescrypt)".into(),
        );
    }
    Err("is not a crypt hash ($y$..., $6$...); create one with `mkpasswd -m yescrypt` (never put the plain password here)".into())
}

/// One OpenSSH public key line (`ssh-ed25519 AAAA... comment`). The key text is never
/// echoed back, in case someone pasted a private key.
pub fn check_ssh_public_key(line: &str) -> Result<(), String> {
    let l = line.trim();
    if l.contains("PRIVATE KEY") {
        return Err("is a private key; put the public key (the .pub file) here and keep the private key secret".into());
    }
    ssh_key::PublicKey::from_openssh(l)
        .map(|_| ())
        .map_err(|_| {
            "is not an OpenSSH public key line like \"ssh-ed25519 AAAA... user@host\"".to_string()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_of_ten_gigabit_rounds_down() {
        // 10 Gbit/s = 1_250_000_000 B/s = 1_220_703.125 KiB/s; 90% = 1_098_632.8 → 1_098_632.
        assert_eq!(percent_to_kib(10_000, 9000), 1_098_632);
        assert_eq!(percent_to_kib(1000, 10000), 122_070);
        assert_eq!(percent_to_kib(1000, 50), 610);
    }

    #[test]
    fn bandwidth_forms() {
        assert_eq!(
            parse_bandwidth(&Bandwidth::Text("90%".into())),
            Ok(BwLimit::Percent(9000))
        );
        assert_eq!(
            parse_bandwidth(&Bandwidth::Text("12.5%".into())),
            Ok(BwLimit::Percent(1250))
        );
        assert_eq!(
            parse_bandwidth(&Bandwidth::KibPerSec(115200)),
            Ok(BwLimit::KibPerSec(115200))
        );
        assert!(parse_bandwidth(&Bandwidth::Text("0%".into())).is_err());
        assert!(parse_bandwidth(&Bandwidth::Text("101%".into())).is_err());
        assert!(parse_bandwidth(&Bandwidth::Text("90".into())).is_err());
        assert!(parse_bandwidth(&Bandwidth::KibPerSec(0)).is_err());
    }

    #[test]
    fn speeds() {
        assert_eq!(parse_speed(&Speed::Text("10G".into())), Ok(10_000));
        assert_eq!(parse_speed(&Speed::Text("2.5G".into())), Ok(2_500));
        assert_eq!(parse_speed(&Speed::Text("100M".into())), Ok(100));
        assert_eq!(parse_speed(&Speed::Mbps(1000)), Ok(1000));
        assert!(parse_speed(&Speed::Text("fast".into())).is_err());
        assert!(parse_speed(&Speed::Mbps(0)).is_err());
    }

    #[test]
    fn cidr_checks() {
        let net = parse_network("10.2.22.0/24").unwrap();
        assert!(check_host_in("10.2.22.66".parse().unwrap(), &net, "storage").is_ok());
        assert_eq!(
            check_host_in("10.2.23.67".parse().unwrap(), &net, "storage").unwrap_err(),
            "10.2.23.67 is not inside network storage (10.2.22.0/24)"
        );
        assert!(check_host_in("10.2.22.0".parse().unwrap(), &net, "s").is_err());
        assert!(check_host_in("10.2.22.255".parse().unwrap(), &net, "s").is_err());
        assert!(parse_network("10.2.22.66/24")
            .unwrap_err()
            .contains("10.2.22.0/24"));
        assert!(parse_network("10.2.22.0").is_err());
        assert!(parse_network("fd00::/64").is_ok());
    }

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_size("16G"), Ok(16 << 30));
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("512MiB"), Ok(512 << 20));
        assert!(parse_size("big").is_err());
        assert_eq!(parse_duration(&Duration::Text("15m".into())), Ok(900));
        assert_eq!(parse_duration(&Duration::Secs(30)), Ok(30));
        assert!(parse_duration(&Duration::Secs(0)).is_err());
    }

    #[test]
    fn names() {
        assert!(check_pve_node_name("pve1", 15).is_ok());
        assert!(check_pve_node_name("-pve", 15).is_err());
        assert!(check_pve_node_name("a-very-long-cluster", 15).is_err());
        assert!(check_storage_id("cephrdb01").is_ok());
        assert!(check_storage_id("Ceph").is_err());
        assert!(check_storage_id("pool-").is_err());
        assert_eq!(normalize_sid("100"), Ok("vm:100".into()));
        assert!(normalize_sid("vm:99").is_err());
        assert_eq!(
            check_mac("BC:24:11:00:00:01"),
            Ok("bc:24:11:00:00:01".into())
        );
        assert!(check_mac("01:00:5e:00:00:01").is_err());
    }

    #[test]
    fn partitions() {
        for p in [
            "/dev/sdb1",
            "/dev/nvme0n1p2",
            "/dev/mmcblk0p1",
            "/dev/disk/by-id/ata-X-part1",
            "/dev/vdc12",
        ] {
            assert!(looks_like_partition(p), "{p}");
        }
        for d in [
            "/dev/sdb",
            "/dev/nvme0n1",
            "/dev/mmcblk0",
            "/dev/disk/by-id/ata-Samsung_SSD_870",
            "/dev/vdaa",
        ] {
            assert!(!looks_like_partition(d), "{d}");
        }
    }
}
