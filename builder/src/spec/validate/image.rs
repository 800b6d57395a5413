//! Checks of `[image]`: sizes, base, suite, packages, kernel command line.

use super::Checker;
use crate::spec::defaults::*;
use crate::spec::raw::*;
use crate::spec::values::*;
use crate::units::human_size;
use hcikit_firstboot::plan::AfterInstall;

/// Largest `image.disk-size` taken (16 TiB).
const MAX_DISK_SIZE: u64 = 16 << 40;

impl Checker {
    pub(super) fn image(&mut self, spec: &Spec) {
        let im = &spec.image;
        let disk = im.disk_size.as_deref().map(|s| (s, parse_size(s)));
        let esp = im.esp_size.as_deref().map(|s| (s, parse_size(s)));
        let mut disk_bytes = DEFAULT_DISK_SIZE;
        let mut esp_bytes = DEFAULT_ESP_SIZE;
        if let Some((_, r)) = &disk {
            match r {
                Err(m) => self.err("image.disk-size", m.clone()),
                // The partitions are aligned to 1 MiB; `build` would refuse it later.
                Ok(v) if v % (1 << 20) != 0 => self.err(
                    "image.disk-size",
                    format!("{v} bytes is not a whole number of MiB; use a size like \"8G\" or \"4352M\""),
                ),
                // Larger images take hours to checksum and flash, and mke2fs's limits
                // (resize_inode reserve, 2^32 inodes) are near; the root grows at first boot.
                Ok(v) if *v > MAX_DISK_SIZE => self.err(
                    "image.disk-size",
                    format!(
                        "{} is larger than {}; build a small image, the root file system grows to fill the disk at first boot",
                        human_size(*v),
                        human_size(MAX_DISK_SIZE)
                    ),
                ),
                Ok(v) => disk_bytes = *v,
            }
        }
        if let Some((_, r)) = &esp {
            match r {
                Err(m) => self.err("image.esp-size", m.clone()),
                Ok(v) if *v < MIN_ESP_SIZE => self.err(
                    "image.esp-size",
                    format!(
                        "{} is too small; the ESP holds a kernel and initrd, use at least 256M",
                        im.esp_size.as_deref().unwrap_or_default()
                    ),
                ),
                Ok(v) => esp_bytes = *v,
            }
        }
        if disk_bytes < esp_bytes + MIN_ROOT_SIZE {
            self.err(
                "image.disk-size",
                format!(
                    "{} leaves less than 4G for the root file system after the {} ESP",
                    human_size(disk_bytes),
                    human_size(esp_bytes)
                ),
            );
        }
        if let Some(b) = &im.base {
            if !matches!(b.as_str(), "debian" | "proxmox")
                && ![".tar", ".tar.zst", ".tar.gz", ".tar.xz"]
                    .iter()
                    .any(|e| b.ends_with(e))
            {
                self.err("image.base", format!("{b:?} is neither debian, proxmox nor a path to a rootfs .tar, .tar.zst, .tar.gz or .tar.xz"));
            }
        }
        let pve = spec.cluster.pve_version.unwrap_or(DEFAULT_PVE_MAJOR);
        if let Some(s) = &im.suite {
            let want = default_suite(pve);
            if s != want {
                self.err(
                    "image.suite",
                    format!("{s:?} does not match Proxmox VE {pve}, which is built on {want}"),
                );
            }
        }
        for (kind, uri) in &im.mirrors {
            if let Err(m) = crate::image::base::mirrors::check(kind, uri) {
                self.err(format!("image.mirrors.{kind}"), m);
            }
        }
        for (i, p) in im.extra_packages.iter().enumerate() {
            let ok = p.len() >= 2
                && p.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                && p.chars().all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '+' | '-' | '.')
                });
            if !ok {
                self.err(
                    format!("image.extra-packages[{i}]"),
                    format!("{p:?} is not a Debian package name"),
                );
            }
        }
        for (i, a) in im.kernel_cmdline.iter().enumerate() {
            if a.is_empty() || a.chars().any(char::is_whitespace) {
                self.err(
                    format!("image.kernel-cmdline[{i}]"),
                    format!(
                        "{a:?} must be one argument without spaces; list each argument separately"
                    ),
                );
            }
        }
        if let Some(t) = im.boot_timeout {
            if !(0..=600).contains(&t) {
                self.err(
                    "image.boot-timeout",
                    format!("{t} is out of range; use 0 to 600 seconds"),
                );
            }
        }
        if let Some(a) = &im.after_install {
            let valid: Vec<&str> = AfterInstall::ALL.iter().map(|a| a.as_str()).collect();
            self.one_of("image.after-install", a, &valid);
        }
        if let Some(t) = im.install_confirm {
            if !(0..=3600).contains(&t) {
                self.err(
                    "image.install-confirm",
                    format!("{t} is out of range; use 0 (unattended) to 3600 seconds"),
                );
            }
        }
    }
}
