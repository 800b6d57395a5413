//! `hcikit inspect` on a corpus of crafted and damaged images (valid CRCs where the
//! attack needs them): every one must end in a bad-input error that names the image —
//! no panic, no huge allocation, no stack overflow, no endless loop.

mod image_support;

use hcikit::image::Format;
use image_support::*;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

const ESP_AT: u64 = 1 << 20;

fn crc32(bytes: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in bytes {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xEDB8_8320
            } else {
                c >> 1
            };
        }
    }
    !c
}

fn read_at(f: &std::fs::File, off: u64, len: usize) -> Vec<u8> {
    let mut b = vec![0u8; len];
    f.read_exact_at(&mut b, off).unwrap();
    b
}

fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}

/// Changes the primary GPT (header at LBA 1, entries at LBA 2) and fixes both CRCs.
fn patch_gpt(img: &Path, edit: impl FnOnce(&mut [u8], &mut [u8])) {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(img)
        .unwrap();
    let mut header = read_at(&f, 512, 92);
    let mut entries = read_at(&f, 1024, 128 * 128);
    edit(&mut header, &mut entries);
    let (count, size) = (u32_at(&header, 80) as usize, u32_at(&header, 84) as usize);
    let array = &entries[..(count * size).min(entries.len())];
    header[88..92].copy_from_slice(&crc32(array).to_le_bytes());
    header[16..20].copy_from_slice(&[0; 4]);
    let sum = crc32(&header);
    header[16..20].copy_from_slice(&sum.to_le_bytes());
    f.write_all_at(&header, 512).unwrap();
    f.write_all_at(&entries, 1024).unwrap();
}

/// FAT32 geometry of the ESP: (FAT offset, FAT bytes, FAT count, data offset, cluster
/// bytes, root cluster), offsets in the image.
fn fat_geometry(f: &std::fs::File) -> (u64, u64, u64, u64, u64, u32) {
    let bs = read_at(f, ESP_AT, 512);
    let bps = u64::from(u16::from_le_bytes([bs[11], bs[12]]));
    let spc = u64::from(bs[13]);
    let reserved = u64::from(u16::from_le_bytes([bs[14], bs[15]]));
    let fats = u64::from(bs[16]);
    let fat_sz = u64::from(u32_at(&bs, 36)) * bps;
    let fat_at = ESP_AT + reserved * bps;
    (
        fat_at,
        fat_sz,
        fats,
        fat_at + fats * fat_sz,
        bps * spc,
        u32_at(&bs, 44),
    )
}

fn cluster_at(data: u64, cluster_bytes: u64, c: u32) -> u64 {
    data + u64::from(c - 2) * cluster_bytes
}

type Craft = fn(&Path);

fn corpus() -> Vec<(&'static str, Craft)> {
    vec![
        ("gpt-end-before-start", |img| {
            patch_gpt(img, |_, e| {
                let first = u64::from_le_bytes(e[32..40].try_into().unwrap());
                e[40..48].copy_from_slice(&(first - 7).to_le_bytes());
            })
        }),
        ("gpt-huge-esp", |img| {
            patch_gpt(img, |_, e| {
                let first = u64::from_le_bytes(e[32..40].try_into().unwrap());
                e[40..48].copy_from_slice(&(first + (1 << 40)).to_le_bytes());
            })
        }),
        ("gpt-start-beyond-u64-bytes", |img| {
            patch_gpt(img, |_, e| {
                e[32..40].copy_from_slice(&(u64::MAX / 256).to_le_bytes());
                e[40..48].copy_from_slice(&(u64::MAX / 256 + 10).to_le_bytes());
            })
        }),
        ("gpt-million-entries", |img| {
            patch_gpt(img, |h, _| {
                h[80..84].copy_from_slice(&1_000_000u32.to_le_bytes())
            })
        }),
        ("fat-folder-pointing-at-root", |img| {
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(img)
                .unwrap();
            let (_, _, _, data, cb, root) = fat_geometry(&f);
            let dir = read_at(&f, cluster_at(data, cb, root), cb as usize);
            let slot = dir.chunks(32).position(|s| s[0] == 0).unwrap() as u64;
            let mut e = [0u8; 32];
            e[..11].copy_from_slice(b"LOOP       ");
            e[11] = 0x10;
            e[20..22].copy_from_slice(&((root >> 16) as u16).to_le_bytes());
            e[26..28].copy_from_slice(&(root as u16).to_le_bytes());
            f.write_all_at(&e, cluster_at(data, cb, root) + slot * 32)
                .unwrap();
        }),
        ("fat-root-chain-loops", |img| {
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(img)
                .unwrap();
            let (fat_at, fat_sz, fats, data, cb, root) = fat_geometry(&f);
            for i in 0..fats {
                f.write_all_at(
                    &root.to_le_bytes(),
                    fat_at + i * fat_sz + 4 * u64::from(root),
                )
                .unwrap();
            }
            // Every entry deleted, so a reader never finds the end marker.
            let at = cluster_at(data, cb, root);
            let mut dir = read_at(&f, at, cb as usize);
            for s in dir.chunks_mut(32) {
                s[0] = 0xE5;
            }
            f.write_all_at(&dir, at).unwrap();
        }),
        ("fat-chain-points-outside", |img| {
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(img)
                .unwrap();
            let (fat_at, _, _, _, _, root) = fat_geometry(&f);
            f.write_all_at(&0x0FFF_FF00u32.to_le_bytes(), fat_at + 4 * u64::from(root))
                .unwrap();
        }),
        ("esp-boot-sector-zeroed", |img| {
            let f = std::fs::OpenOptions::new().write(true).open(img).unwrap();
            f.write_all_at(&[0; 512], ESP_AT).unwrap();
        }),
        ("esp-bytes-per-sector-0", |img| {
            let f = std::fs::OpenOptions::new().write(true).open(img).unwrap();
            f.write_all_at(&[0, 0], ESP_AT + 11).unwrap();
        }),
        ("esp-sectors-per-cluster-0", |img| {
            let f = std::fs::OpenOptions::new().write(true).open(img).unwrap();
            f.write_all_at(&[0], ESP_AT + 13).unwrap();
        }),
        ("cut-inside-esp", |img| {
            let f = std::fs::OpenOptions::new().write(true).open(img).unwrap();
            f.set_len(ESP_AT + (10 << 20)).unwrap();
        }),
        ("cut-inside-root", |img| {
            let f = std::fs::OpenOptions::new().write(true).open(img).unwrap();
            f.set_len(ESP_AT + ESP + (50 << 20)).unwrap();
        }),
    ]
}

#[test]
fn crafted_images_are_bad_input_naming_the_image() {
    let fx = Fixture::new();
    let out = fx.dir.path().join("out");
    let mut opts = fx.options(&out, &fx.dir.path().join("cache"), Format::Raw);
    opts.nodes = vec!["pve1".into()];
    build(&opts).unwrap();
    let good = out.join("pve1.img");
    hcikit::media::inspect::inspect(&good).expect("the untouched image inspects");
    for (name, craft) in corpus() {
        let img: PathBuf = fx.dir.path().join(format!("{name}.img"));
        std::fs::copy(&good, &img).unwrap();
        craft(&img);
        let (tx, rx) = std::sync::mpsc::channel();
        let p = img.clone();
        std::thread::spawn(move || {
            let r = hcikit::media::inspect::inspect(&p)
                .map_err(|e| (hcikit::error::exit_code(&e), format!("{e:#}")));
            let _ = tx.send(r.map(|_| ()));
        });
        let got = rx
            .recv_timeout(Duration::from_secs(120))
            .unwrap_or_else(|_| panic!("{name}: inspect hangs (or panicked)"));
        let (code, msg) = got.expect_err(name);
        assert_eq!(code, 2, "{name}: {msg}");
        assert!(
            msg.contains(img.to_str().unwrap()),
            "{name}: image not named: {msg}"
        );
        std::fs::remove_file(&img).unwrap();
    }
}
