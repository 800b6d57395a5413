//! GPT reading and the one rewrite the installer makes: moving the backup table to the
//! end of a disk larger than the image and growing the root partition into the space.
//!
//! Pure functions over byte buffers (the first 34 sectors, the last 33), so the result is
//! tested without a disk. Layout facts follow the UEFI specification (chapter 5, "GUID
//! Partition Table Disk Layout"): header at LBA 1, 128 entries of 128 bytes from LBA 2,
//! the backup entries then the backup header in the last 33 sectors.

use anyhow::{bail, ensure, Result};

pub const SECTOR: u64 = 512;
/// Protective MBR + primary header + 128 entries of 128 bytes.
pub const HEAD_BYTES: usize = 34 * SECTOR as usize;
/// Backup entries + backup header.
pub const TAIL_BYTES: usize = 33 * SECTOR as usize;
const ENTRIES_BYTES: usize = 32 * SECTOR as usize;
const ALIGN_SECTORS: u64 = (1 << 20) / SECTOR;
/// GPT type GUID of a Linux x86-64 root partition, as stored on disk.
pub const LINUX_ROOT_X64: &str = "4f68bce3-e8cd-4db1-96e7-fbcaf984b709";
pub const EFI_SYSTEM: &str = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b";

/// CRC-32 (IEEE 802.3, reflected, as GPT uses it).
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}
fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// A GUID as GPT stores it (first three fields little-endian) in the usual text form.
pub fn guid_string(b: &[u8]) -> String {
    format!(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]
    )
}

/// One used partition entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// 1-based entry number.
    pub number: u32,
    pub type_guid: String,
    pub guid: String,
    pub first_lba: u64,
    pub last_lba: u64,
    pub name: String,
}

/// A parsed primary GPT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gpt {
    pub disk_guid: String,
    pub alternate_lba: u64,
    pub last_usable_lba: u64,
    pub partitions: Vec<Partition>,
}

/// Parses the primary GPT from the first 34 sectors of a disk; `None` when there is no
/// valid one (no signature, or a CRC that does not match).
pub fn parse(head: &[u8]) -> Option<Gpt> {
    if head.len() < HEAD_BYTES || &head[512..520] != b"EFI PART" {
        return None;
    }
    let h = &head[512..1024];
    let size = u32_at(h, 12) as usize;
    if !(92..=512).contains(&size) {
        return None;
    }
    let mut hdr = h[..size].to_vec();
    put_u32(&mut hdr, 16, 0);
    if crc32(&hdr) != u32_at(h, 16) {
        return None;
    }
    if u64_at(h, 72) != 2 || u32_at(h, 80) != 128 || u32_at(h, 84) != 128 {
        // Other entry layouts exist but nothing hcikit writes or reads uses them.
        return None;
    }
    let entries = &head[1024..1024 + ENTRIES_BYTES];
    if crc32(entries) != u32_at(h, 88) {
        return None;
    }
    let mut partitions = Vec::new();
    for (i, e) in entries.chunks_exact(128).enumerate() {
        if e[..16].iter().all(|&b| b == 0) {
            continue;
        }
        let units: Vec<u16> = e[56..128]
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .take_while(|&u| u != 0)
            .collect();
        partitions.push(Partition {
            number: i as u32 + 1,
            type_guid: guid_string(&e[0..16]),
            guid: guid_string(&e[16..32]),
            first_lba: u64_at(e, 32),
            last_lba: u64_at(e, 40),
            name: String::from_utf16_lossy(&units),
        });
    }
    Some(Gpt {
        disk_guid: guid_string(&h[56..72]),
        alternate_lba: u64_at(h, 32),
        last_usable_lba: u64_at(h, 48),
        partitions,
    })
}

/// The partition table of an image rewritten for a larger disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grown {
    /// Goes at offset 0: protective MBR, primary header and entries.
    pub head: Vec<u8>,
    /// Goes at `disk_size - tail.len()`: backup entries and header.
    pub tail: Vec<u8>,
    /// The root partition's new end (exclusive), in bytes.
    pub root_end: u64,
}

/// Rewrites the image's GPT (its first 34 sectors) for a disk of `disk_size` bytes: the
/// backup table moves to the disk's end, the last usable LBA follows it, and the Linux
/// root partition (which must be the last one) grows to the last whole MiB before it.
/// Disk and partition GUIDs are kept: they are the node's own, derived at build time.
pub fn grow(image_head: &[u8], image_size: u64, disk_size: u64) -> Result<Grown> {
    ensure!(
        disk_size >= image_size,
        "the disk ({disk_size} bytes) is smaller than the image ({image_size} bytes)"
    );
    ensure!(
        disk_size.is_multiple_of(SECTOR),
        "the disk size {disk_size} is not a multiple of {SECTOR} bytes"
    );
    let Some(gpt) = parse(image_head) else {
        bail!("the image has no valid primary GPT in its first 34 sectors");
    };
    ensure!(
        gpt.alternate_lba == image_size / SECTOR - 1,
        "the image's backup GPT is not at its end (LBA {})",
        gpt.alternate_lba
    );
    let sectors = disk_size / SECTOR;
    let last = sectors - 1;
    let last_usable = sectors - 34;
    let mut head = image_head[..HEAD_BYTES].to_vec();
    // Protective MBR: the 0xEE partition covers the disk, capped at 32 bits.
    let mbr_size = u32::try_from(sectors - 1).unwrap_or(u32::MAX);
    put_u32(&mut head, 446 + 12, mbr_size);

    let root = gpt
        .partitions
        .iter()
        .filter(|p| p.type_guid == LINUX_ROOT_X64)
        .max_by_key(|p| p.last_lba);
    let Some(root) = root else {
        bail!("the image's GPT has no Linux root (x86-64) partition to grow");
    };
    ensure!(
        gpt.partitions.iter().all(|p| p.last_lba <= root.last_lba),
        "the root partition is not the last partition of the image; cannot grow it"
    );
    let new_last = (last_usable + 1) / ALIGN_SECTORS * ALIGN_SECTORS - 1;
    let new_last = new_last.max(root.last_lba);
    let entry_at = 1024 + (root.number as usize - 1) * 128;
    put_u64(&mut head, entry_at + 40, new_last);
    let entries_crc = crc32(&head[1024..1024 + ENTRIES_BYTES]);

    let header = |head: &mut [u8], my: u64, alt: u64, entries_lba: u64| {
        let h = &mut head[512..1024];
        put_u64(h, 24, my);
        put_u64(h, 32, alt);
        put_u64(h, 48, last_usable);
        put_u64(h, 72, entries_lba);
        put_u32(h, 88, entries_crc);
        put_u32(h, 16, 0);
        let size = u32_at(h, 12) as usize;
        let crc = crc32(&h[..size]);
        put_u32(h, 16, crc);
    };
    header(&mut head, 1, last, 2);

    let mut tail = vec![0u8; TAIL_BYTES];
    tail[..ENTRIES_BYTES].copy_from_slice(&head[1024..1024 + ENTRIES_BYTES]);
    let mut backup = head.clone();
    header(&mut backup, last, 1, sectors - 33);
    tail[ENTRIES_BYTES..].copy_from_slice(&backup[512..1024]);
    Ok(Grown {
        head,
        tail,
        root_end: (new_last + 1) * SECTOR,
    })
}

/// The backup header (last sector) of a disk is valid for the primary it mirrors.
pub fn backup_matches(tail: &[u8], primary: &Gpt) -> bool {
    if tail.len() < TAIL_BYTES {
        return false;
    }
    let h = &tail[tail.len() - 512..];
    if &h[..8] != b"EFI PART" {
        return false;
    }
    let size = u32_at(h, 12) as usize;
    if !(92..=512).contains(&size) {
        return false;
    }
    let mut hdr = h[..size].to_vec();
    put_u32(&mut hdr, 16, 0);
    crc32(&hdr) == u32_at(h, 16) && guid_string(&h[56..72]) == primary.disk_guid
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// A minimal valid GPT image head for tests: ESP at 1 MiB (`esp_mib` long), root after
    /// it up to the last whole MiB before the backup table.
    pub fn image_head(image_size: u64, esp_mib: u64, disk_guid: [u8; 16]) -> (Vec<u8>, Vec<u8>) {
        let sectors = image_size / SECTOR;
        let mut head = vec![0u8; HEAD_BYTES];
        head[446 + 4] = 0xee;
        put_u32(&mut head, 446 + 8, 1);
        put_u32(&mut head, 446 + 12, (sectors - 1) as u32);
        head[510] = 0x55;
        head[511] = 0xaa;
        let entry =
            |head: &mut [u8], i: usize, ty: &[u8; 16], g: u8, first: u64, last: u64, name: &str| {
                let e = &mut head[1024 + i * 128..1024 + (i + 1) * 128];
                e[..16].copy_from_slice(ty);
                e[16..32].copy_from_slice(&[g; 16]);
                put_u64(e, 32, first);
                put_u64(e, 40, last);
                for (k, u) in name.encode_utf16().enumerate() {
                    e[56 + 2 * k..58 + 2 * k].copy_from_slice(&u.to_le_bytes());
                }
            };
        let esp_ty = [
            0x28, 0x73, 0x2a, 0xc1, 0x1f, 0xf8, 0xd2, 0x11, 0xba, 0x4b, 0x00, 0xa0, 0xc9, 0x3e,
            0xc9, 0x3b,
        ];
        let root_ty = [
            0xe3, 0xbc, 0x68, 0x4f, 0xcd, 0xe8, 0xb1, 0x4d, 0x96, 0xe7, 0xfb, 0xca, 0xf9, 0x84,
            0xb7, 0x09,
        ];
        let esp_first = ALIGN_SECTORS;
        let esp_last = esp_first + esp_mib * ALIGN_SECTORS - 1;
        let root_last = (sectors - 33) / ALIGN_SECTORS * ALIGN_SECTORS - 1;
        entry(&mut head, 0, &esp_ty, 0x11, esp_first, esp_last, "ESP");
        entry(
            &mut head,
            1,
            &root_ty,
            0x22,
            esp_last + 1,
            root_last,
            "root",
        );
        let h = &mut head[512..1024];
        h[..8].copy_from_slice(b"EFI PART");
        put_u32(h, 8, 0x0001_0000);
        put_u32(h, 12, 92);
        put_u64(h, 40, 34);
        h[56..72].copy_from_slice(&disk_guid);
        put_u32(h, 80, 128);
        put_u32(h, 84, 128);
        let grown = grow_unchecked(&mut head, sectors);
        (head, grown)
    }

    fn grow_unchecked(head: &mut [u8], sectors: u64) -> Vec<u8> {
        let entries_crc = crc32(&head[1024..1024 + ENTRIES_BYTES]);
        let set = |head: &mut [u8], my: u64, alt: u64, ent: u64| {
            let h = &mut head[512..1024];
            put_u64(h, 24, my);
            put_u64(h, 32, alt);
            put_u64(h, 48, sectors - 34);
            put_u64(h, 72, ent);
            put_u32(h, 88, entries_crc);
            put_u32(h, 16, 0);
            let c = crc32(&h[..92]);
            put_u32(h, 16, c);
        };
        let mut backup = head.to_vec();
        set(head, 1, sectors - 1, 2);
        set(&mut backup, sectors - 1, 1, sectors - 33);
        let mut tail = head[1024..1024 + ENTRIES_BYTES].to_vec();
        tail.extend_from_slice(&backup[512..1024]);
        tail
    }

    #[test]
    fn crc32_known_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn parses_what_it_builds() {
        let (head, tail) = image_head(64 << 20, 8, [7; 16]);
        let g = parse(&head).unwrap();
        assert_eq!(g.disk_guid, "07070707-0707-0707-0707-070707070707");
        assert_eq!(g.partitions.len(), 2);
        assert_eq!(g.partitions[0].name, "ESP");
        assert_eq!(g.partitions[0].type_guid, EFI_SYSTEM);
        assert_eq!(g.partitions[1].type_guid, LINUX_ROOT_X64);
        assert!(backup_matches(&tail, &g));
        let mut bad = head.clone();
        bad[1024 + 60] ^= 1;
        assert!(parse(&bad).is_none(), "entry CRC must be checked");
    }

    #[test]
    fn grow_moves_backup_and_extends_root() {
        let (head, _) = image_head(64 << 20, 8, [7; 16]);
        let disk = 200 << 20;
        let g = grow(&head, 64 << 20, disk).unwrap();
        let p = parse(&g.head).unwrap();
        assert_eq!(p.alternate_lba, disk / SECTOR - 1);
        assert_eq!(p.last_usable_lba, disk / SECTOR - 34);
        let root = &p.partitions[1];
        assert_eq!((root.last_lba + 1) * SECTOR, g.root_end);
        assert_eq!(
            g.root_end,
            199 << 20,
            "root ends at the last whole MiB before the backup"
        );
        assert_eq!(p.partitions[0], parse(&head).unwrap().partitions[0]);
        assert_eq!(p.disk_guid, parse(&head).unwrap().disk_guid);
        assert!(backup_matches(&g.tail, &p));
        assert_eq!(u32_at(&g.head, 446 + 12), (disk / SECTOR - 1) as u32);
        // Same size: only the headers are rewritten, to the same values.
        let same = grow(&head, 64 << 20, 64 << 20).unwrap();
        assert_eq!(same.head, head);
    }

    #[test]
    fn grow_refuses_a_smaller_disk_and_a_non_gpt() {
        let (head, _) = image_head(64 << 20, 8, [7; 16]);
        assert!(grow(&head, 64 << 20, 32 << 20).is_err());
        assert!(grow(&vec![0; HEAD_BYTES], 64 << 20, 64 << 20).is_err());
    }
}
