//! The FAT32 repair pass after `fatfs`: the one place that patches ESP bytes by hand.
//!
//! Kept apart because it depends on exactly what `fatfs` 0.3 writes: a `fatfs` update
//! can change what needs fixing, and the byte-level test below is what notices.

use anyhow::Result;

/// Repairs what fatfs 0.3 gets wrong when it creates directories on FAT32, so that
/// `fsck.fat -n` finds nothing: it writes long-name entries in front of `.` and `..`
/// (they must be the first two plain entries) and points `..` of a top-level folder at
/// the root's cluster (it must be 0). Also fills in the FSInfo free-cluster count.
pub(super) fn fix_fat32_dirs(buf: &mut [u8]) -> Result<()> {
    let u16_at = |b: &[u8], o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    let u32_at = |b: &[u8], o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
    let bps = u16_at(buf, 11);
    let cluster = bps * buf[13] as usize;
    let reserved = u16_at(buf, 14);
    let fats = buf[16] as usize;
    let fat_sectors = u32_at(buf, 36) as usize;
    let root = u32_at(buf, 44);
    let fsinfo = u16_at(buf, 48);
    let total_sectors = u32_at(buf, 32) as usize;
    let fat_start = reserved * bps;
    let data_start = (reserved + fats * fat_sectors) * bps;
    let clusters = (total_sectors * bps - data_start) / cluster;
    let fat = |b: &[u8], c: u32| u32_at(b, fat_start + 4 * c as usize) & 0x0FFF_FFFF;
    let chain = |b: &[u8], mut c: u32| {
        let mut v = Vec::new();
        while (2..0x0FFF_FFF8).contains(&c) && v.len() <= clusters {
            v.push(c);
            c = fat(b, c);
        }
        v
    };
    let offset = |c: u32| data_start + (c as usize - 2) * cluster;
    // (dir cluster, its parent's cluster with the root as 0)
    let mut todo: Vec<(u32, u32)> = Vec::new();
    let mut queue = vec![(root, None::<u32>)];
    while let Some((dir, parent)) = queue.pop() {
        let ch = chain(buf, dir);
        let mut slots: Vec<[u8; 32]> = Vec::new();
        for &c in &ch {
            for s in buf[offset(c)..offset(c) + cluster].chunks(32) {
                slots.push(s.try_into().expect("32-byte slot"));
            }
        }
        let end = slots.iter().position(|s| s[0] == 0).unwrap_or(slots.len());
        let mut kept: Vec<[u8; 32]> = Vec::new();
        for (i, s) in slots[..end].iter().enumerate() {
            let is_lfn = s[11] == 0x0F;
            let is_dot = |s: &[u8; 32]| {
                s[11] != 0x0F && (&s[..11] == b".          " || &s[..11] == b"..         ")
            };
            if is_lfn && parent.is_some() {
                // Drop long-name entries that belong to `.` or `..`.
                let owner = slots[i..end].iter().find(|x| x[11] != 0x0F);
                if owner.is_some_and(is_dot) {
                    continue;
                }
            }
            let mut s = *s;
            if &s[..11] == b"..         " {
                let p = parent.unwrap_or(0);
                s[20..22].copy_from_slice(&((p >> 16) as u16).to_le_bytes());
                s[26..28].copy_from_slice(&(p as u16).to_le_bytes());
            }
            if s[0] != 0xE5 && s[11] & 0x10 != 0 && s[11] != 0x0F && !is_dot(&s) {
                let child = (u32::from(u16::from_le_bytes([s[20], s[21]])) << 16)
                    | u32::from(u16::from_le_bytes([s[26], s[27]]));
                todo.push((child, if parent.is_none() { 0 } else { dir }));
            }
            kept.push(s);
        }
        kept.resize(slots.len(), [0; 32]);
        for (k, &c) in ch.iter().enumerate() {
            let per = cluster / 32;
            for (j, s) in kept[k * per..(k + 1) * per].iter().enumerate() {
                let o = offset(c) + j * 32;
                buf[o..o + 32].copy_from_slice(s);
            }
        }
        queue.extend(todo.drain(..).map(|(c, p)| (c, Some(p))));
    }
    let free = (2..clusters as u32 + 2)
        .filter(|&c| fat(buf, c) == 0)
        .count() as u32;
    let fi = fsinfo * bps;
    if fsinfo != 0 && &buf[fi..fi + 4] == b"RRaA" {
        buf[fi + 488..fi + 492].copy_from_slice(&free.to_le_bytes());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// The fields of a FAT32 boot sector this test needs.
    struct Geometry {
        bps: usize,
        cluster: usize,
        fat_start: usize,
        data_start: usize,
        root: u32,
        fsinfo: usize,
        clusters: usize,
    }

    fn u16_at(b: &[u8], o: usize) -> usize {
        u16::from_le_bytes([b[o], b[o + 1]]) as usize
    }
    fn u32_at(b: &[u8], o: usize) -> u32 {
        u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
    }

    fn geometry(b: &[u8]) -> Geometry {
        let bps = u16_at(b, 11);
        let reserved = u16_at(b, 14);
        let data_start = (reserved + b[16] as usize * u32_at(b, 36) as usize) * bps;
        let cluster = bps * b[13] as usize;
        Geometry {
            bps,
            cluster,
            fat_start: reserved * bps,
            data_start,
            root: u32_at(b, 44),
            fsinfo: u16_at(b, 48) * bps,
            clusters: (u32_at(b, 32) as usize * bps - data_start) / cluster,
        }
    }

    /// The 32-byte slots of a directory's first cluster, up to the end marker.
    fn slots(b: &[u8], g: &Geometry, dir: u32) -> Vec<[u8; 32]> {
        let o = g.data_start + (dir as usize - 2) * g.cluster;
        b[o..o + g.cluster]
            .chunks(32)
            .map(|s| s.try_into().unwrap())
            .take_while(|s: &[u8; 32]| s[0] != 0)
            .collect()
    }

    fn first_cluster(s: &[u8; 32]) -> u32 {
        ((u16_at(s, 20) as u32) << 16) | u16_at(s, 26) as u32
    }

    /// The entry named `name` (8.3, space padded) in `dir`.
    fn entry(b: &[u8], g: &Geometry, dir: u32, name: &[u8; 11]) -> [u8; 32] {
        *slots(b, g, dir)
            .iter()
            .find(|s| s[11] != 0x0F && &s[..11] == name)
            .unwrap_or_else(|| panic!("no {:?}", String::from_utf8_lossy(name)))
    }

    /// A fresh FAT32 volume with `EFI/BOOT/` and a file in it, written by `fatfs` alone.
    fn volume() -> Vec<u8> {
        let mut buf = vec![0u8; 64 << 20];
        let mut disk = Cursor::new(&mut buf[..]);
        fatfs::format_volume(
            &mut disk,
            fatfs::FormatVolumeOptions::new().fat_type(fatfs::FatType::Fat32),
        )
        .unwrap();
        disk.set_position(0);
        {
            let fs = fatfs::FileSystem::new(&mut disk, fatfs::FsOptions::new()).unwrap();
            {
                let boot = fs.root_dir().create_dir("EFI").unwrap();
                let boot = boot.create_dir("BOOT").unwrap();
                let mut f = boot.create_file("x.efi").unwrap();
                std::io::Write::write_all(&mut f, b"x").unwrap();
            }
            fs.unmount().unwrap();
        }
        buf
    }

    #[test]
    fn dot_entries_come_first_and_dotdot_points_at_the_parent() {
        let mut b = volume();
        let g = geometry(&b);
        let efi = first_cluster(&entry(&b, &g, g.root, b"EFI        "));
        let boot = first_cluster(&entry(&b, &g, efi, b"BOOT       "));
        // What fatfs 0.3 leaves behind: a long-name slot before `.`, and `..` of a
        // top-level folder naming the root's cluster. If this stops holding, fatfs
        // changed and the pass needs another look.
        assert_eq!(
            slots(&b, &g, efi)[0][11],
            0x0F,
            "fatfs no longer writes an LFN first"
        );
        assert_eq!(first_cluster(&entry(&b, &g, efi, b"..         ")), g.root);

        fix_fat32_dirs(&mut b).unwrap();
        for (dir, parent) in [(efi, 0), (boot, efi)] {
            let s = slots(&b, &g, dir);
            assert_eq!(&s[0][..11], b".          ");
            assert_eq!(&s[1][..11], b"..         ");
            assert_eq!(first_cluster(&s[0]), dir);
            assert_eq!(first_cluster(&s[1]), parent);
        }
        // The named entries survive the repair.
        assert_eq!(first_cluster(&entry(&b, &g, efi, b"BOOT       ")), boot);
        entry(&b, &g, boot, b"X       EFI");
    }

    #[test]
    fn fsinfo_free_count_matches_the_fat() {
        let mut b = volume();
        fix_fat32_dirs(&mut b).unwrap();
        let g = geometry(&b);
        assert_eq!(&b[g.fsinfo..g.fsinfo + 4], b"RRaA");
        let free = (2..g.clusters + 2)
            .filter(|&c| u32_at(&b, g.fat_start + 4 * c) & 0x0FFF_FFFF == 0)
            .count() as u32;
        assert_eq!(u32_at(&b, g.fsinfo + 488), free);
        assert!(free > 0 && (free as usize) < g.clusters);
        assert_eq!(g.bps, 512);
    }
}
