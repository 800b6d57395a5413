//! Byte counts as people read them, and the zstd magic: one home for the formatters the
//! spec checks, the flasher and progress lines use.
//!
//! Three notations on purpose: [`human_size`] writes a size back the way `cluster.toml`
//! spells it (`16G`), [`human_bytes`] keeps the exact count for comparisons, and
//! [`short_bytes`] is the rounded form for progress lines.

/// The first four bytes of a zstd frame.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// Whether `head`, the first bytes of a file, start a zstd frame.
pub fn is_zstd(head: &[u8]) -> bool {
    head.starts_with(&ZSTD_MAGIC)
}

/// A size in the spec's notation: the largest binary unit that divides it (`16G`,
/// `512M`), or plain bytes.
pub fn human_size(bytes: u64) -> String {
    for (shift, unit) in [(40, "T"), (30, "G"), (20, "M"), (10, "K")] {
        if bytes >= 1 << shift && bytes.is_multiple_of(1 << shift) {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    format!("{bytes}")
}

/// `1.5 GiB (1610612736 bytes)`: the exact count matters when sizes are compared.
pub fn human_bytes(n: u64) -> String {
    if n < 1024 {
        format!("{n} bytes")
    } else {
        format!("{} ({n} bytes)", short_bytes(n))
    }
}

/// `1.5 GiB`, for progress lines.
pub fn short_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", UNITS[u])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes() {
        assert_eq!(human_bytes(512), "512 bytes");
        assert_eq!(human_bytes(3 << 30), "3.0 GiB (3221225472 bytes)");
    }

    #[test]
    fn zstd_is_told_by_its_magic() {
        let frame = zstd::encode_all(&b"x"[..], 3).unwrap();
        assert!(is_zstd(&frame));
        assert!(!is_zstd(b"\x28\xb5"));
        assert!(!is_zstd(&[0; 16]));
    }

    #[test]
    fn spec_sizes_use_the_largest_exact_unit() {
        assert_eq!(human_size(16 << 30), "16G");
        assert_eq!(human_size(1536 << 20), "1536M");
        assert_eq!(human_size(1000), "1000");
    }
}
