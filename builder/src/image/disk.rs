//! The GPT disk layout of a node image: pure computation of offsets and GUIDs, and the
//! partition-table bytes produced with the `gpt` crate into memory.
//!
//! Partition 1 is the ESP (FAT32, per node), partition 2 the root (ext4, identical on
//! every node) filling the rest. Everything is aligned to 1 MiB. The root filesystem is
//! exactly as large as its partition; it grows at first boot when the disk is larger
//! (`x-systemd.growfs` in the root's fstab, and `systemd-repart` grows the partition where
//! installed, see `overlays/etc/repart.d/`).

use crate::error::InputError;
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::io::{self, Read, Seek, SeekFrom, Write};
use uuid::Uuid;

pub const SECTOR: u64 = 512;
pub const ALIGN: u64 = 1 << 20;
/// Protective MBR + primary header + 128 entries of 128 bytes.
pub const HEAD_SECTORS: u64 = 34;
/// Backup entries + backup header.
pub const TAIL_SECTORS: u64 = 33;
/// Smallest root partition we accept.
pub const MIN_ROOT: u64 = 64 << 20;

/// Partition names (GPT labels), also used in the root's fstab.
pub const ESP_NAME: &str = "ESP";
pub const ROOT_NAME: &str = "root";

/// Byte offsets of a node image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Layout {
    pub disk_size: u64,
    pub esp_start: u64,
    pub esp_size: u64,
    pub root_start: u64,
    pub root_size: u64,
}

impl Layout {
    /// Computes the layout; a disk too small for ESP + root is bad input.
    pub fn compute(disk_size: u64, esp_size: u64) -> Result<Layout> {
        if !disk_size.is_multiple_of(ALIGN) {
            return Err(InputError::new(format!(
                "image.disk-size {disk_size} is not a multiple of 1 MiB"
            ))
            .into());
        }
        let esp_size = esp_size.div_ceil(ALIGN) * ALIGN;
        let esp_start = ALIGN;
        let root_start = esp_start + esp_size;
        let last_usable_end = disk_size.saturating_sub(TAIL_SECTORS * SECTOR);
        let root_end = last_usable_end / ALIGN * ALIGN;
        if root_end < root_start + MIN_ROOT {
            return Err(InputError::new(format!(
                "image.disk-size {} MiB is too small: the ESP takes {} MiB and the root needs at least {} MiB",
                disk_size >> 20,
                esp_size >> 20,
                MIN_ROOT >> 20
            ))
            .into());
        }
        Ok(Layout {
            disk_size,
            esp_start,
            esp_size,
            root_start,
            root_size: root_end - root_start,
        })
    }
    pub fn root_end(&self) -> u64 {
        self.root_start + self.root_size
    }
}

/// Namespace for every GUID hcikit derives (uuid v5 of the URL below).
pub fn namespace() -> Uuid {
    Uuid::new_v5(&Uuid::NAMESPACE_URL, b"https://hcikit.invalid/guid")
}

/// A stable GUID for a name path, e.g. `["disk", "lab", "pve1"]`.
pub fn derive_guid(parts: &[&str]) -> Uuid {
    Uuid::new_v5(&namespace(), parts.join("/").as_bytes())
}

/// GUIDs of one node's disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Guids {
    pub disk: Uuid,
    pub esp: Uuid,
    pub root: Uuid,
}

impl Guids {
    pub fn for_node(cluster: &str, node: &str) -> Guids {
        Guids {
            disk: derive_guid(&["disk", cluster, node]),
            esp: derive_guid(&["part", cluster, node, ESP_NAME]),
            root: derive_guid(&["part", cluster, node, ROOT_NAME]),
        }
    }
}

/// The partition table as bytes: `head` goes at offset 0 (protective MBR, primary header
/// and entries), `tail` at `disk_size - tail.len()` (backup entries and header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionTable {
    pub head: Vec<u8>,
    pub tail: Vec<u8>,
}

/// Builds the GPT of a layout with the `gpt` crate, on an in-memory sparse device.
pub fn partition_table(layout: &Layout, guids: &Guids) -> Result<PartitionTable> {
    partition_table_named(layout, guids, [ESP_NAME, ROOT_NAME])
}

/// [`partition_table`] with other partition labels (the installer stick's, which must not
/// be the installed disk's).
pub fn partition_table_named(
    layout: &Layout,
    guids: &Guids,
    names: [&str; 2],
) -> Result<PartitionTable> {
    let mut dev = MemDisk::new(layout.disk_size);
    let sectors = layout.disk_size / SECTOR;
    let mbr = gpt::mbr::ProtectiveMBR::with_lb_size(u32::try_from(sectors - 1).unwrap_or(u32::MAX));
    mbr.overwrite_lba0(&mut dev)
        .context("writing protective MBR")?;
    let mut disk = gpt::GptConfig::new()
        .writable(true)
        .logical_block_size(gpt::disk::LogicalBlockSize::Lb512)
        .create_from_device(dev, Some(guids.disk))
        .context("creating GPT")?;
    let part = |ty: gpt::partition_types::Type, guid: Uuid, start: u64, size: u64, name: &str| {
        gpt::partition::Partition {
            part_type_guid: ty,
            part_guid: guid,
            first_lba: start / SECTOR,
            last_lba: (start + size) / SECTOR - 1,
            flags: 0,
            name: name.to_string(),
        }
    };
    let mut parts = BTreeMap::new();
    parts.insert(
        1,
        part(
            gpt::partition_types::EFI,
            guids.esp,
            layout.esp_start,
            layout.esp_size,
            names[0],
        ),
    );
    parts.insert(
        2,
        part(
            gpt::partition_types::LINUX_ROOT_X64,
            guids.root,
            layout.root_start,
            layout.root_size,
            names[1],
        ),
    );
    disk.update_partitions(parts)
        .context("setting partitions")?;
    let dev = disk.write().context("writing GPT")?;
    let head = dev.read_range(0, HEAD_SECTORS * SECTOR);
    let tail_len = TAIL_SECTORS * SECTOR;
    let tail = dev.read_range(layout.disk_size - tail_len, tail_len);
    let outside = dev.blocks.keys().any(|&b| {
        let off = b * MemDisk::BLOCK;
        off >= HEAD_SECTORS * SECTOR && off + MemDisk::BLOCK <= layout.disk_size - tail_len
    });
    anyhow::ensure!(
        !outside,
        "the gpt crate wrote outside the partition-table areas"
    );
    Ok(PartitionTable { head, tail })
}

/// A disk of a given length held as the 512-byte blocks written to it; reads of
/// untouched blocks give zeros. Lets the `gpt` crate write a multi-GiB disk in memory.
#[derive(Debug)]
struct MemDisk {
    len: u64,
    pos: u64,
    blocks: BTreeMap<u64, [u8; 512]>,
}

impl MemDisk {
    const BLOCK: u64 = 512;
    fn new(len: u64) -> Self {
        MemDisk {
            len,
            pos: 0,
            blocks: BTreeMap::new(),
        }
    }
    fn read_range(&self, off: u64, len: u64) -> Vec<u8> {
        let mut out = vec![0; len as usize];
        for (i, byte) in out.iter_mut().enumerate() {
            let at = off + i as u64;
            if let Some(b) = self.blocks.get(&(at / Self::BLOCK)) {
                *byte = b[(at % Self::BLOCK) as usize];
            }
        }
        out
    }
}

impl Read for MemDisk {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (buf.len() as u64).min(self.len.saturating_sub(self.pos));
        let data = self.read_range(self.pos, n);
        buf[..n as usize].copy_from_slice(&data);
        self.pos += n;
        Ok(n as usize)
    }
}

impl Write for MemDisk {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.pos + buf.len() as u64 > self.len {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "write past the end of the disk",
            ));
        }
        for (i, byte) in buf.iter().enumerate() {
            let at = self.pos + i as u64;
            let block = self.blocks.entry(at / Self::BLOCK).or_insert([0; 512]);
            block[(at % Self::BLOCK) as usize] = *byte;
        }
        self.pos += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for MemDisk {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let new = match to {
            SeekFrom::Start(o) => o as i128,
            SeekFrom::End(o) => self.len as i128 + o as i128,
            SeekFrom::Current(o) => self.pos as i128 + o as i128,
        };
        if new < 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before start",
            ));
        }
        self.pos = new as u64;
        Ok(self.pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_aligned_and_root_fills_the_disk() {
        let l = Layout::compute(2048 << 20, 100 << 20).unwrap();
        assert_eq!(l.esp_start, 1 << 20);
        assert_eq!(l.esp_size, 100 << 20);
        assert_eq!(l.root_start, 101 << 20);
        // The last MiB holds the backup GPT, so the root ends one MiB early.
        assert_eq!(l.root_end(), 2047 << 20);
        assert_eq!(l.root_start % ALIGN + l.root_size % ALIGN, 0);
        // ESP sizes round up to whole MiB.
        assert_eq!(
            Layout::compute(2048 << 20, (64 << 20) + 1)
                .unwrap()
                .esp_size,
            65 << 20
        );
    }

    #[test]
    fn too_small_disk_is_input_error() {
        let err = Layout::compute(128 << 20, 100 << 20).unwrap_err();
        assert_eq!(crate::error::exit_code(&err), 2);
        assert!(format!("{err}").contains("too small"), "{err}");
        assert!(Layout::compute((1 << 30) + 512, 64 << 20).is_err());
    }

    #[test]
    fn guids_are_stable_and_distinct() {
        let a = Guids::for_node("lab", "pve1");
        assert_eq!(a, Guids::for_node("lab", "pve1"));
        assert_ne!(a.root, Guids::for_node("lab", "pve2").root);
        assert_ne!(a.root, Guids::for_node("lab2", "pve1").root);
        assert_ne!(a.esp, a.root);
        assert_eq!(a.disk.get_version_num(), 5);
    }

    #[test]
    fn table_round_trips_through_the_gpt_crate() {
        let layout = Layout::compute(256 << 20, 64 << 20).unwrap();
        let guids = Guids::for_node("lab", "pve1");
        let t = partition_table(&layout, &guids).unwrap();
        assert_eq!(t, partition_table(&layout, &guids).unwrap());
        assert_eq!(&t.head[510..512], &[0x55, 0xaa]);
        assert_eq!(&t.head[512..520], b"EFI PART");
        assert_eq!(&t.tail[t.tail.len() - 512..][..8], b"EFI PART");
        let mut disk = MemDisk::new(layout.disk_size);
        disk.write_all(&t.head).unwrap();
        disk.seek(SeekFrom::Start(layout.disk_size - t.tail.len() as u64))
            .unwrap();
        disk.write_all(&t.tail).unwrap();
        disk.seek(SeekFrom::Start(0)).unwrap();
        let read = gpt::GptConfig::new().open_from_device(disk).unwrap();
        assert_eq!(*read.guid(), guids.disk);
        let p = read.partitions();
        assert_eq!(p[&1].name, "ESP");
        assert_eq!(p[&1].part_guid, guids.esp);
        assert_eq!(p[&1].first_lba * SECTOR, layout.esp_start);
        assert_eq!(p[&2].part_type_guid, gpt::partition_types::LINUX_ROOT_X64);
        assert_eq!((p[&2].last_lba + 1) * SECTOR, layout.root_end());
    }
}
