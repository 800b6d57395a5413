//! Every default of the spec: what hcikit picks when `cluster.toml` is silent.
//!
//! Validation reads these to check a value against what would be chosen; resolution
//! writes them into the Plan. Nothing else decides a default.

/// Ceph releases: code name, version, PVE majors that ship it.
pub const CEPH_RELEASES: &[(&str, &str, &[u32])] = &[
    ("quincy", "17.2", &[8]),
    ("reef", "18.2", &[8]),
    ("squid", "19.2", &[8, 9]),
    ("tentacle", "20.2", &[9]),
];

/// The Ceph release used when the spec names none: squid on PVE 8 and 9. Every PVE 9
/// pve-manager installs squid, while tentacle is missing before 9.1.5 and a tech preview
/// that `pveceph install` refuses non-interactively before 9.1.13 (pve-manager
/// `PVE/Ceph/Releases.pm`, commits 153e6203 and f3c0665f) — and hcikit cannot know which
/// pve-manager a node runs when it builds the image.
pub fn default_ceph_release(_pve_major: u32) -> &'static str {
    "squid"
}

/// PVE major when the spec is silent: 9 (Debian 13 trixie). PVE 8 reached end of life in
/// 2026-08 (pve-docs `pve-faq.adoc`, support table).
pub const DEFAULT_PVE_MAJOR: u32 = 9;

/// Disk image size when `image.disk-size` is unset.
pub const DEFAULT_DISK_SIZE: u64 = 8 << 30;
/// ESP size when `image.esp-size` is unset.
pub const DEFAULT_ESP_SIZE: u64 = 512 << 20;
/// First retry delay of the agent, in seconds.
pub const DEFAULT_BACKOFF: u64 = 5;
/// Longest retry delay of the agent, in seconds.
pub const DEFAULT_MAX_BACKOFF: u64 = 60;

/// Debian suite of the base for a PVE major.
pub fn default_suite(pve_major: u32) -> &'static str {
    if pve_major >= 9 {
        "trixie"
    } else {
        "bookworm"
    }
}

/// `cluster.timezone` when unset.
pub const TIMEZONE: &str = "UTC";
/// `cluster.keyboard` when unset (also `datacenter.cfg`'s keyboard).
pub const KEYBOARD: &str = "en-us";
/// A network's MTU when unset.
pub const MTU: u32 = 1500;
/// Replicas of a Ceph pool when neither `ceph.size` nor the pool's `size` is set.
pub const CEPH_SIZE: i64 = 3;
/// Replicas a Ceph pool needs to serve I/O when unset; never above the pool's size.
pub const CEPH_MIN_SIZE: i64 = 2;
/// A Ceph pool's application when unset.
pub const POOL_APPLICATION: &str = "rbd";
/// Placement groups of a CephFS data pool when unset.
pub const CEPHFS_PG_NUM: u32 = 128;
/// Ceph package repository when unset.
pub const CEPH_REPOSITORY: &str = "no-subscription";
/// `datacenter.migration-type` when a migration network is set but no type.
pub const MIGRATION_TYPE: &str = "secure";
/// An HA resource's `max-restart` when unset.
pub const HA_MAX_RESTART: u32 = 1;
/// An HA resource's `max-relocate` when unset.
pub const HA_MAX_RELOCATE: u32 = 1;
/// An HA resource's requested state when unset.
pub const HA_STATE: &str = "started";
/// An SMTP target's `mode` when unset.
pub const SMTP_MODE: &str = "tls";
/// A notification matcher's `mode` when unset.
pub const MATCHER_MODE: &str = "all";
/// The SMTP port for a mode when the target sets none.
pub fn smtp_port(mode: &str) -> u16 {
    match mode {
        "insecure" => 25,
        "starttls" => 587,
        _ => 465,
    }
}
/// How long the founder waits for its peers, in seconds.
pub const PEER_TIMEOUT: u64 = 1800;
/// How long a join may take, in seconds.
pub const JOIN_TIMEOUT: u64 = 600;
/// How long the cluster may take to become healthy, in seconds.
pub const HEALTH_TIMEOUT: u64 = 1800;
/// systemd-boot's menu timeout when `image.boot-timeout` is unset, in seconds.
pub const BOOT_TIMEOUT: u32 = 3;
/// How long the USB installer's summary waits for Enter to abort, in seconds.
pub const INSTALL_CONFIRM: u64 = 10;
