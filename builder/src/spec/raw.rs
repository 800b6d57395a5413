//! The raw cluster spec: exactly what the user writes in `cluster.toml`.
//!
//! Everything here is "as written": optional where the user may leave a default, strings
//! where the value still has to be checked (addresses, sizes, percentages). Checking is
//! [`crate::spec::validate`]'s job and deciding defaults is [`crate::spec::resolve`]'s; keeping the raw
//! shape separate lets every diagnostic name the key the user actually typed.
//!
//! Keys are kebab-case and unknown keys are rejected, so a typo never silently falls back
//! to a default.

use schemars::JsonSchema;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Spec {
    pub cluster: ClusterSpec,
    /// Networks in the order they appear in the file.
    pub networks: OrderedMap<NetworkSpec>,
    pub nodes: Vec<NodeSpec>,
    pub ceph: Option<CephSpec>,
    #[serde(default)]
    pub datacenter: DatacenterSpec,
    #[serde(default)]
    pub ha: HaSpec,
    #[serde(default)]
    pub notifications: NotificationsSpec,
    #[serde(default)]
    pub realms: Vec<RealmSpec>,
    #[serde(default)]
    pub image: ImageSpec,
    #[serde(default)]
    pub firstboot: FirstbootSpec,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ClusterSpec {
    pub name: String,
    pub domain: String,
    pub timezone: Option<String>,
    pub keyboard: Option<String>,
    pub root_password_hash: Option<String>,
    /// File (relative to the spec) holding the crypt hash.
    pub root_password_file: Option<String>,
    #[serde(default)]
    pub admin_ssh_keys: Vec<String>,
    pub pve_version: Option<u32>,
    #[serde(default)]
    pub ntp_servers: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct NetworkSpec {
    pub interface: Option<String>,
    pub bond: Option<BondSpec>,
    pub bridge: Option<String>,
    pub cidr: String,
    pub gateway: Option<String>,
    #[serde(default)]
    pub dns: Vec<String>,
    pub mtu: Option<u32>,
    pub speed: Option<Speed>,
    pub corosync_link: Option<i64>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct BondSpec {
    /// Bond device name; defaults to `bond0`, `bond1`, ... in network order.
    pub name: Option<String>,
    pub slaves: Vec<String>,
    pub mode: String,
    pub miimon: Option<u32>,
    pub xmit_hash_policy: Option<String>,
    pub lacp_rate: Option<String>,
}

/// Link speed: a number of Mbit/s or a string such as `"1G"`, `"2.5G"`, `"100M"`.
#[derive(Debug, Clone, PartialEq)]
pub enum Speed {
    Mbps(i64),
    Text(String),
}

impl<'de> Deserialize<'de> for Speed {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Speed;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a speed in Mbit/s (1000) or a string like \"1G\", \"10G\", \"100M\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Speed, E> {
                Ok(Speed::Mbps(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Speed, E> {
                Ok(Speed::Mbps(i64::try_from(v).unwrap_or(i64::MAX)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Speed, E> {
                Ok(Speed::Text(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct NodeSpec {
    pub name: String,
    /// Network name → bare IP.
    pub addresses: OrderedMap<String>,
    pub mac: Option<String>,
    pub install_disk: Option<String>,
    /// The USB installer may erase whatever the install disk holds (default false).
    pub install_wipe: Option<bool>,
    #[serde(default)]
    pub osd_disks: Vec<StrOr<OsdDiskSpec>>,
}

/// An OSD disk: `"/dev/sdb"` or `{ device = "/dev/sdb", wipe = true, class = "ssd" }`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct OsdDiskSpec {
    pub device: String,
    #[serde(default)]
    pub wipe: bool,
    pub class: Option<String>,
}

impl<'de> Deserialize<'de> for StrOr<OsdDiskSpec> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        str_or_table(d, "a device path or a table { device, wipe, class }", |s| {
            OsdDiskSpec {
                device: s.to_string(),
                wipe: false,
                class: None,
            }
        })
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct CephSpec {
    pub release: Option<String>,
    pub repository: Option<String>,
    pub public_network: Option<String>,
    pub cluster_network: Option<String>,
    pub size: Option<i64>,
    pub min_size: Option<i64>,
    pub mons: Option<Vec<String>>,
    pub mgrs: Option<Vec<String>>,
    pub mds: Option<Vec<String>>,
    #[serde(default)]
    pub pools: Vec<PoolSpec>,
    #[serde(default)]
    pub cephfs: OneOrMany<CephFsSpec>,
    /// Section → option → value (strings, numbers and booleans are all accepted).
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, BTreeMap<String, crate::spec::schema::ConfigValue>>")]
    pub config: BTreeMap<String, BTreeMap<String, toml::Value>>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct PoolSpec {
    pub name: String,
    pub pg_num: Option<i64>,
    /// `true`/`"on"`, `false`/`"off"` or `"warn"`; defaults to on without `pg-num`.
    pub autoscale: Option<Autoscale>,
    pub application: Option<String>,
    #[serde(default)]
    pub add_storage: bool,
    pub size: Option<i64>,
    pub min_size: Option<i64>,
}

/// Pool autoscale mode as written: a boolean or one of `on`/`off`/`warn`.
#[derive(Debug, Clone, PartialEq)]
pub enum Autoscale {
    Bool(bool),
    Text(String),
}

impl<'de> Deserialize<'de> for Autoscale {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Autoscale;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("true, false, \"on\", \"off\" or \"warn\"")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Autoscale, E> {
                Ok(Autoscale::Bool(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Autoscale, E> {
                Ok(Autoscale::Text(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct CephFsSpec {
    pub name: String,
    pub pg_num: Option<i64>,
    #[serde(default)]
    pub add_storage: bool,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct DatacenterSpec {
    pub migration_network: Option<String>,
    pub migration_type: Option<String>,
    pub ha_shutdown_policy: Option<String>,
    #[serde(default)]
    pub bwlimit: BTreeMap<String, Bandwidth>,
    pub email_from: Option<String>,
    pub keyboard: Option<String>,
    pub crs: Option<CrsSpec>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct CrsSpec {
    /// `basic` or `static`.
    pub ha: Option<String>,
    pub ha_rebalance_on_start: Option<bool>,
}

/// A bandwidth limit as written: KiB/s as a number, or a percentage string like `"90%"`.
#[derive(Debug, Clone, PartialEq)]
pub enum Bandwidth {
    KibPerSec(i64),
    Text(String),
}

impl<'de> Deserialize<'de> for Bandwidth {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Bandwidth;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("KiB/s as a number (115200) or a percentage of the link (\"90%\")")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Bandwidth, E> {
                Ok(Bandwidth::KibPerSec(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Bandwidth, E> {
                Ok(Bandwidth::KibPerSec(i64::try_from(v).unwrap_or(i64::MAX)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Bandwidth, E> {
                Ok(Bandwidth::Text(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct HaSpec {
    #[serde(default)]
    pub groups: Vec<HaGroupSpec>,
    #[serde(default)]
    pub resources: Vec<HaResourceSpec>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct HaGroupSpec {
    pub name: String,
    pub nodes: Vec<StrOr<HaGroupNodeSpec>>,
    #[serde(default)]
    pub restricted: bool,
    #[serde(default)]
    pub nofailback: bool,
    pub comment: Option<String>,
}

/// A group member: `"pve1:2"`, `"pve2"` or `{ node = "pve1", priority = 2 }`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct HaGroupNodeSpec {
    pub node: String,
    pub priority: Option<i64>,
    /// Set when the member was written as a string, so validation can quote it.
    #[serde(skip)]
    pub written: Option<String>,
}

impl<'de> Deserialize<'de> for StrOr<HaGroupNodeSpec> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        str_or_table(
            d,
            "\"node\", \"node:priority\" or { node, priority }",
            |s| HaGroupNodeSpec {
                node: s.to_string(),
                priority: None,
                written: Some(s.to_string()),
            },
        )
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct HaResourceSpec {
    pub sid: String,
    pub group: Option<String>,
    pub max_restart: Option<i64>,
    pub max_relocate: Option<i64>,
    pub state: Option<String>,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct NotificationsSpec {
    #[serde(default)]
    pub smtp: Vec<SmtpSpec>,
    #[serde(default)]
    pub matchers: Vec<MatcherSpec>,
    #[serde(default)]
    pub default_matcher_targets: Vec<String>,
    pub report_target: Option<String>,
    pub send_test: Option<bool>,
    /// root@pam's e-mail address (`pveum user modify root@pam --email`): the recipient of
    /// `mailto-user = ["root@pam"]` and of the built-in `mail-to-root` target.
    pub root_email: Option<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct SmtpSpec {
    pub name: String,
    pub server: String,
    pub port: Option<i64>,
    pub mode: Option<String>,
    pub username: Option<String>,
    pub password_file: Option<String>,
    pub from_address: Option<String>,
    #[serde(default)]
    pub mailto: Vec<String>,
    #[serde(default)]
    pub mailto_user: Vec<String>,
    pub author: Option<String>,
    pub comment: Option<String>,
    #[serde(default)]
    pub add_to_default_matcher: bool,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct MatcherSpec {
    pub name: String,
    pub targets: Vec<String>,
    pub mode: Option<String>,
    #[serde(default)]
    pub match_severity: Vec<String>,
    #[serde(default)]
    pub match_field: Vec<String>,
    #[serde(default)]
    pub invert_match: bool,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RealmSpec {
    pub name: String,
    /// `ad`, `ldap` or `openid`.
    #[serde(rename = "type")]
    pub kind: String,
    pub server1: Option<String>,
    pub server2: Option<String>,
    pub port: Option<i64>,
    pub mode: Option<String>,
    pub base_dn: Option<String>,
    pub domain: Option<String>,
    pub user_attr: Option<String>,
    pub bind_dn: Option<String>,
    pub bind_password_file: Option<String>,
    pub issuer_url: Option<String>,
    pub client_id: Option<String>,
    pub client_key_file: Option<String>,
    pub username_claim: Option<String>,
    #[serde(default)]
    pub autocreate: bool,
    #[serde(default)]
    pub default: bool,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ImageSpec {
    pub disk_size: Option<String>,
    pub esp_size: Option<String>,
    /// `debian`, `proxmox` or a path to a rootfs tar.
    pub base: Option<String>,
    pub suite: Option<String>,
    /// Per archive (`debian`, `debian-security`, `proxmox`, `ceph`), the URI a generated
    /// base is built from instead of the default (a local mirror, a
    /// `proxmox-offline-mirror` export).
    #[serde(default)]
    pub mirrors: BTreeMap<String, String>,
    #[serde(default)]
    pub extra_packages: Vec<String>,
    #[serde(default)]
    pub kernel_cmdline: Vec<String>,
    pub boot_timeout: Option<i64>,
    /// What the USB installer does once a node is installed: `reboot` or `poweroff`.
    pub after_install: Option<String>,
    /// Seconds the USB installer's summary waits for Enter to abort (0: unattended).
    pub install_confirm: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct FirstbootSpec {
    /// Durations: seconds as a number or `"90s"`, `"15m"`, `"1h"`.
    pub peer_timeout: Option<Duration>,
    pub join_timeout: Option<Duration>,
    pub health_timeout: Option<Duration>,
    pub backoff: Option<Duration>,
    pub max_backoff: Option<Duration>,
    /// `preinstalled` or `pveceph`.
    pub ceph_install: Option<String>,
    /// `http://HOST:PORT/PATH` the agent POSTs its stage to, e.g. `hcikit serve`'s
    /// `http://10.0.0.5:8080/report`.
    pub report_url: Option<String>,
}

/// A duration as written: seconds, or a string with an `s`/`m`/`h` suffix.
#[derive(Debug, Clone, PartialEq)]
pub enum Duration {
    Secs(i64),
    Text(String),
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Duration;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("seconds as a number or a string like \"90s\", \"15m\", \"1h\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
                Ok(Duration::Secs(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
                Ok(Duration::Secs(i64::try_from(v).unwrap_or(i64::MAX)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
                Ok(Duration::Text(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// A value written either as a short string or as a full table.
#[derive(Debug, Clone)]
pub struct StrOr<T>(pub T);

impl<T> std::ops::Deref for StrOr<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// Accepts a string (turned into `T` by `from_str`) or a table deserialised as `T`
/// itself, so table errors (unknown keys, wrong types) keep their precise message.
fn str_or_table<'de, D, T, F>(
    d: D,
    expecting: &'static str,
    from_str: F,
) -> Result<StrOr<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
    F: FnOnce(&str) -> T,
{
    struct V<T, F> {
        expecting: &'static str,
        from_str: F,
        _t: PhantomData<T>,
    }
    impl<'de, T: Deserialize<'de>, F: FnOnce(&str) -> T> Visitor<'de> for V<T, F> {
        type Value = StrOr<T>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(self.expecting)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<StrOr<T>, E> {
            Ok(StrOr((self.from_str)(v)))
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<StrOr<T>, A::Error> {
            T::deserialize(de::value::MapAccessDeserializer::new(map)).map(StrOr)
        }
    }
    d.deserialize_any(V {
        expecting,
        from_str,
        _t: PhantomData,
    })
}

/// A TOML table kept in file order (the first network is not the alphabetically first).
#[derive(Debug, Clone, Default)]
pub struct OrderedMap<V>(pub Vec<(String, V)>);

impl<V> OrderedMap<V> {
    pub fn get(&self, key: &str) -> Option<&V> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
    pub fn iter(&self) -> impl Iterator<Item = (&str, &V)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_str())
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for OrderedMap<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Vis<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for Vis<V> {
            type Value = OrderedMap<V>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a table")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OrderedMap<V>, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, V>()? {
                    out.push((k, v));
                }
                Ok(OrderedMap(out))
            }
        }
        d.deserialize_map(Vis(PhantomData))
    }
}

/// `[ceph.cephfs]` (one table) or `[[ceph.cephfs]]` (an array of tables).
#[derive(Debug, Clone)]
pub struct OneOrMany<T> {
    pub items: Vec<T>,
    /// Written as a single table, so diagnostics say `ceph.cephfs.x`, not `ceph.cephfs[0].x`.
    pub single: bool,
}

impl<T> Default for OneOrMany<T> {
    fn default() -> Self {
        OneOrMany {
            items: Vec::new(),
            single: false,
        }
    }
}

impl<T> OneOrMany<T> {
    /// The dotted key of item `i` under `prefix`.
    pub fn key(&self, prefix: &str, i: usize) -> String {
        if self.single {
            prefix.to_string()
        } else {
            format!("{prefix}[{i}]")
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Vis<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for Vis<T> {
            type Value = OneOrMany<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a table or an array of tables")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<OneOrMany<T>, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(|t| OneOrMany {
                    items: vec![t],
                    single: true,
                })
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<OneOrMany<T>, A::Error> {
                let mut out = Vec::new();
                while let Some(t) = seq.next_element()? {
                    out.push(t);
                }
                Ok(OneOrMany {
                    items: out,
                    single: false,
                })
            }
        }
        d.deserialize_any(Vis(PhantomData))
    }
}
