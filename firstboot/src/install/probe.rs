//! What a disk holds, judged from its first and last bytes: partition tables, file
//! systems, LVM, Ceph, RAID and swap signatures, an earlier hcikit install, or nothing.
//!
//! Pure: the caller reads [`PROBE_BYTES`] from the start and the end of the disk (and of
//! each partition it found) and passes the buffers. Magic numbers and offsets are those
//! libblkid probes (util-linux `libblkid/src/superblocks/*.c`, `partitions/*.c`).

use super::gpt;

/// How much of the start and of the end of a disk the probe looks at.
pub const PROBE_BYTES: usize = 1 << 20;

/// A recognised signature, or unrecognised data.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Signature {
    Gpt,
    GptBackup,
    Mbr,
    Ext4,
    Fat,
    Ntfs,
    Exfat,
    Xfs,
    Btrfs,
    Lvm2,
    CephBluestore,
    Luks,
    Swap,
    MdRaid,
    Zfs,
    Iso9660,
    /// Non-zero bytes that match none of the above.
    UnknownData,
}

impl Signature {
    pub fn describe(&self) -> &'static str {
        match self {
            Signature::Gpt => "a GPT partition table",
            Signature::GptBackup => "a backup GPT at the end of the disk",
            Signature::Mbr => "an MBR partition table",
            Signature::Ext4 => "an ext2/3/4 file system",
            Signature::Fat => "a FAT file system",
            Signature::Ntfs => "an NTFS file system",
            Signature::Exfat => "an exFAT file system",
            Signature::Xfs => "an XFS file system",
            Signature::Btrfs => "a Btrfs file system",
            Signature::Lvm2 => "an LVM2 physical volume",
            Signature::CephBluestore => "a Ceph BlueStore OSD",
            Signature::Luks => "a LUKS encrypted volume",
            Signature::Swap => "a swap area",
            Signature::MdRaid => "a Linux software-RAID member",
            Signature::Zfs => "a ZFS pool member",
            Signature::Iso9660 => "an ISO 9660 image",
            Signature::UnknownData => "unrecognised data",
        }
    }
}

fn at(b: &[u8], off: usize, magic: &[u8]) -> bool {
    b.len() >= off + magic.len() && &b[off..off + magic.len()] == magic
}

/// Signatures of a volume (a whole disk or a partition) found at its start.
pub fn volume_signatures(start: &[u8]) -> Vec<Signature> {
    let mut v = Vec::new();
    if at(start, 1024 + 56, &[0x53, 0xef]) {
        v.push(Signature::Ext4);
    }
    let boot_sig = at(start, 510, &[0x55, 0xaa]);
    if boot_sig && (at(start, 54, b"FAT1") || at(start, 82, b"FAT32")) {
        v.push(Signature::Fat);
    }
    if at(start, 3, b"NTFS    ") {
        v.push(Signature::Ntfs);
    }
    if at(start, 3, b"EXFAT   ") {
        v.push(Signature::Exfat);
    }
    if at(start, 0, b"XFSB") {
        v.push(Signature::Xfs);
    }
    if at(start, 0x10040, b"_BHRfS_M") {
        v.push(Signature::Btrfs);
    }
    // LVM2 puts its label in one of the first four sectors.
    if (0..4).any(|s| at(start, s * 512, b"LABELONE") && at(start, s * 512 + 24, b"LVM2 001")) {
        v.push(Signature::Lvm2);
    }
    if at(start, 0, b"bluestore block device") {
        v.push(Signature::CephBluestore);
    }
    if at(start, 0, b"LUKS\xba\xbe") {
        v.push(Signature::Luks);
    }
    if at(start, 4096 - 10, b"SWAPSPACE2") || at(start, 4096 - 10, b"SWAP-SPACE") {
        v.push(Signature::Swap);
    }
    // md superblock 1.1 at 0, 1.2 at 4 KiB (0.90 and 1.0 sit at the end, see below).
    if at(start, 0, &[0xfc, 0x4e, 0x2b, 0xa9]) || at(start, 4096, &[0xfc, 0x4e, 0x2b, 0xa9]) {
        v.push(Signature::MdRaid);
    }
    // ZFS labels 0 and 1: uberblocks from 128 KiB in each 256 KiB label.
    let zfs = [0x0c, 0xb1, 0xba, 0x00, 0, 0, 0, 0];
    if (0..2).any(|l| (0..128).any(|i| at(start, l * (256 << 10) + (128 << 10) + i * 1024, &zfs))) {
        v.push(Signature::Zfs);
    }
    if at(start, 0x8001, b"CD001") {
        v.push(Signature::Iso9660);
    }
    v
}

/// What is on a disk, from its first and last [`PROBE_BYTES`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DiskProbe {
    pub signatures: Vec<Signature>,
    /// The primary GPT when one is valid.
    pub gpt: Option<gpt::Gpt>,
}

impl DiskProbe {
    pub fn is_blank(&self) -> bool {
        self.signatures.is_empty()
    }
    /// "a GPT partition table (partitions: ESP, root), an ext2/3/4 file system".
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        for s in &self.signatures {
            let mut d = s.describe().to_string();
            if *s == Signature::Gpt {
                if let Some(g) = &self.gpt {
                    let names: Vec<String> = g
                        .partitions
                        .iter()
                        .map(|p| {
                            if p.name.is_empty() {
                                format!("#{}", p.number)
                            } else {
                                p.name.clone()
                            }
                        })
                        .collect();
                    d.push_str(&format!(" with {} partition(s)", names.len()));
                    if !names.is_empty() {
                        d.push_str(&format!(" ({})", names.join(", ")));
                    }
                }
            }
            parts.push(d);
        }
        parts.join(", ")
    }
}

/// Probes a disk: `head` and `tail` are its first and last bytes (up to
/// [`PROBE_BYTES`] each; shorter for tiny disks), `partition_starts` the first bytes of
/// each partition the partition table lists.
pub fn probe_disk(head: &[u8], tail: &[u8], partition_starts: &[Vec<u8>]) -> DiskProbe {
    let mut sig = Vec::new();
    let gpt = gpt::parse(head);
    if gpt.is_some() || at(head, 512, b"EFI PART") {
        sig.push(Signature::Gpt);
    }
    if tail.len() >= 512 && at(tail, tail.len() - 512, b"EFI PART") {
        sig.push(Signature::GptBackup);
    }
    let mbr_used = at(head, 510, &[0x55, 0xaa])
        && (0..4).any(|i| {
            head.get(446 + i * 16 + 4)
                .is_some_and(|&t| t != 0 && t != 0xee)
        });
    if mbr_used && !volume_signatures(head).contains(&Signature::Fat) {
        sig.push(Signature::Mbr);
    }
    sig.extend(volume_signatures(head));
    // md 0.90 and 1.0 superblocks live near the end of the device.
    if tail.len() >= 8192
        && tail[tail.len() - 8192..]
            .windows(4)
            .any(|w| w == [0xfc, 0x4e, 0x2b, 0xa9])
    {
        sig.push(Signature::MdRaid);
    }
    for p in partition_starts {
        sig.extend(volume_signatures(p));
    }
    if sig.is_empty() && (head.iter().any(|&b| b != 0) || tail.iter().any(|&b| b != 0)) {
        sig.push(Signature::UnknownData);
    }
    sig.sort();
    sig.dedup();
    DiskProbe {
        signatures: sig,
        gpt,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blank() -> Vec<u8> {
        vec![0; PROBE_BYTES]
    }

    #[test]
    fn blank_disk_is_blank() {
        let p = probe_disk(&blank(), &blank(), &[]);
        assert!(p.is_blank(), "{p:?}");
    }

    type Setter = Box<dyn Fn(&mut Vec<u8>)>;

    #[test]
    fn each_signature_is_recognised() {
        let cases: Vec<(Signature, Setter)> = vec![
            (
                Signature::Ext4,
                Box::new(|b| b[1080..1082].copy_from_slice(&[0x53, 0xef])),
            ),
            (
                Signature::Fat,
                Box::new(|b| {
                    b[82..87].copy_from_slice(b"FAT32");
                    b[510..512].copy_from_slice(&[0x55, 0xaa]);
                }),
            ),
            (
                Signature::Xfs,
                Box::new(|b| b[..4].copy_from_slice(b"XFSB")),
            ),
            (
                Signature::Btrfs,
                Box::new(|b| b[0x10040..0x10048].copy_from_slice(b"_BHRfS_M")),
            ),
            (
                Signature::Lvm2,
                Box::new(|b| {
                    b[512..520].copy_from_slice(b"LABELONE");
                    b[536..544].copy_from_slice(b"LVM2 001");
                }),
            ),
            (
                Signature::CephBluestore,
                Box::new(|b| b[..22].copy_from_slice(b"bluestore block device")),
            ),
            (
                Signature::Luks,
                Box::new(|b| b[..6].copy_from_slice(b"LUKS\xba\xbe")),
            ),
            (
                Signature::Swap,
                Box::new(|b| b[4086..4096].copy_from_slice(b"SWAPSPACE2")),
            ),
            (
                Signature::MdRaid,
                Box::new(|b| b[4096..4100].copy_from_slice(&[0xfc, 0x4e, 0x2b, 0xa9])),
            ),
            (
                Signature::Iso9660,
                Box::new(|b| b[0x8001..0x8006].copy_from_slice(b"CD001")),
            ),
            (
                Signature::Zfs,
                Box::new(|b| {
                    b[(128 << 10) + 3072..(128 << 10) + 3080]
                        .copy_from_slice(&[0x0c, 0xb1, 0xba, 0, 0, 0, 0, 0])
                }),
            ),
            (
                Signature::Mbr,
                Box::new(|b| {
                    b[446 + 4] = 0x83;
                    b[510..512].copy_from_slice(&[0x55, 0xaa]);
                }),
            ),
        ];
        for (want, set) in cases {
            let mut head = blank();
            set(&mut head);
            let p = probe_disk(&head, &blank(), &[]);
            assert_eq!(p.signatures, vec![want.clone()], "{want:?}");
        }
    }

    #[test]
    fn filesystems_inside_partitions_and_stray_bytes() {
        let mut part = vec![0u8; 8192];
        part[1080..1082].copy_from_slice(&[0x53, 0xef]);
        let p = probe_disk(&blank(), &blank(), &[part]);
        assert_eq!(p.signatures, [Signature::Ext4]);
        let mut tail = blank();
        tail[77] = 1;
        assert_eq!(
            probe_disk(&blank(), &tail, &[]).signatures,
            [Signature::UnknownData]
        );
    }

    #[test]
    fn gpt_and_its_backup_are_named_with_partitions() {
        let (head, tail) = gpt::tests::image_head(64 << 20, 8, [1; 16]);
        let mut h = blank();
        h[..head.len()].copy_from_slice(&head);
        let mut t = blank();
        let n = t.len();
        t[n - tail.len()..].copy_from_slice(&tail);
        let p = probe_disk(&h, &t, &[]);
        assert_eq!(p.signatures, [Signature::Gpt, Signature::GptBackup]);
        assert!(p.describe().contains("(ESP, root)"), "{}", p.describe());
        assert!(p.gpt.is_some());
    }
}
