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

/// The Ceph release used when the spec names none.
pub fn default_ceph_release(pve_major: u32) -> &'static str {
    if pve_major >= 9 {
        "tentacle"
    } else {
        "squid"
    }
}

/// PVE major when the spec is silent.
pub const DEFAULT_PVE_MAJOR: u32 = 8;

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
