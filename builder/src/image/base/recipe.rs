//! The base recipe: exactly what `mmdebstrap` is asked to do, as a pure function of the
//! Plan and the build host's inputs, so tests can pin it string for string and the cache
//! key covers everything that changes the result.

use super::sources::{self, AptSource};
use crate::error::InputError;
use anyhow::Result;
use hcikit_firstboot::plan::{BaseKind, Plan};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Bumped whenever the recipe below changes in a way the argv does not show (it is part
/// of the cache key either way).
pub const BASE_RECIPE_VERSION: u32 = 2;

/// What a node needs besides the essential set: kernel and boot loader, systemd, the
/// network stack that reads `/etc/network/interfaces`, SSH, time, corosync, and the disk
/// tools the first-boot agent calls.
pub const DEBIAN_PACKAGES: &[&str] = &[
    "linux-image-amd64",
    "systemd",
    "systemd-sysv",
    "systemd-boot-efi",
    "udev",
    "dbus",
    "ifupdown2",
    "openssh-server",
    "chrony",
    "corosync",
    "iproute2",
    "iputils-ping",
    "netbase",
    "procps",
    "tzdata",
    "kmod",
    "util-linux",
    "fdisk",
    "gdisk",
    "e2fsprogs",
    "dosfstools",
    "zstd",
    "ca-certificates",
];

/// What "Install Proxmox VE on Debian 12 Bookworm" installs (kernel first, then
/// `proxmox-ve postfix open-iscsi chrony`), plus the node packages Proxmox does not pull.
pub const PROXMOX_PACKAGES: &[&str] = &[
    "proxmox-default-kernel",
    "proxmox-ve",
    "postfix",
    "open-iscsi",
    "chrony",
    "systemd-boot-efi",
    "ifupdown2",
    "openssh-server",
    "dosfstools",
    "zstd",
];

/// The Ceph packages `pveceph install` would add, pre-installed so first boot needs no
/// internet.
pub const CEPH_PACKAGES: &[&str] = &["ceph", "ceph-common", "ceph-mds", "ceph-fuse", "gdisk"];

/// Drivers the initramfs carries to find the root file system: VM disks, SATA, NVMe,
/// USB sticks, SD/eMMC, ext4. A fixed list because `MODULES=dep` cannot see the target
/// hardware inside a chroot and `MODULES=most` makes a 30 MB initrd.
pub const INITRAMFS_MODULES: &[&str] = &[
    "virtio_pci",
    "virtio_blk",
    "virtio_scsi",
    "sd_mod",
    "ahci",
    "nvme",
    "xhci_pci",
    "ehci_pci",
    "usb_storage",
    "uas",
    "mmc_block",
    "sdhci_pci",
    "sdhci_acpi",
    "hid_generic",
    "usbhid",
    "ext4",
    "crc32c_generic",
    "crc32c_intel",
    "overlay",
];

/// SHA-512 of Proxmox's bookworm release key (`proxmox-release-bookworm.gpg`), as
/// published in "Install Proxmox VE on Debian 12 Bookworm".
pub const PROXMOX_BOOKWORM_KEY_SHA512: &str = "7da6fe34168adc6e479327ba517796d4702fa2f8b4f0a9833f5ea6e6b48f6507a6da403a274fe201595edc86a84463d50383d07f64bdde2e3658108db7d6dc87";
/// Where the key goes inside the base (the path the Proxmox procedure uses).
pub const PROXMOX_KEY_IN_BASE: &str = "/etc/apt/trusted.gpg.d/proxmox-release-bookworm.gpg";

/// Drop-in for ifupdown2's `networking.service` (see [`base_recipe`]).
pub const NETWORKING_DROP_IN: &str = "\
# hcikit: run as a systemd network manager: pull in network.target and order before
# it, after network-pre.target (where hcikit-apply hooks in).
[Unit]
Wants=network.target
After=network-pre.target
Before=network.target
";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    Debian,
    Proxmox,
}

/// The Proxmox release key as found on the build host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyring {
    pub path: PathBuf,
    /// SHA-512 of the file, hex.
    pub sha512: String,
}

/// What the recipe takes from the build host besides the Plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostInputs {
    /// The host's apt sources; the base uses the same Debian archive.
    pub apt_sources: Vec<AptSource>,
    /// Timestamps in the base (mmdebstrap honours it for reproducible output).
    pub source_date_epoch: u64,
    /// Needed by the `proxmox` flavour only.
    pub proxmox_keyring: Option<Keyring>,
}

/// Everything that decides the base tarball.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseRecipe {
    pub flavour: Flavour,
    pub suite: String,
    /// Packages asked for with `--include`, in order.
    pub packages: Vec<String>,
    /// deb822 sources text, passed to mmdebstrap as the mirror file and pasted into the
    /// base's apt configuration.
    pub sources: String,
    /// The mmdebstrap options (everything before SUITE), hooks included.
    pub options: Vec<String>,
    pub source_date_epoch: u64,
}

impl BaseRecipe {
    /// The whole command line: `mmdebstrap OPTIONS SUITE TARGET SOURCES-FILE`.
    pub fn argv(&self, target: &Path, sources_file: &Path) -> Vec<String> {
        let mut v = vec!["mmdebstrap".to_string()];
        v.extend(self.options.iter().cloned());
        v.push(self.suite.clone());
        v.push(target.display().to_string());
        v.push(sources_file.display().to_string());
        v
    }

    /// Hex SHA-256 over everything that affects the result (not the target or the
    /// temporary sources path, which change per run).
    pub fn cache_key(&self) -> String {
        let mut h = Sha256::new();
        let mut field = |name: &str, value: &str| {
            h.update(name.as_bytes());
            h.update((value.len() as u64).to_le_bytes());
            h.update(value.as_bytes());
        };
        field("recipe-version", &BASE_RECIPE_VERSION.to_string());
        field("suite", &self.suite);
        field("sources", &self.sources);
        field("epoch", &self.source_date_epoch.to_string());
        for p in &self.packages {
            field("package", p);
        }
        for o in &self.options {
            field("option", o);
        }
        hex::encode(h.finalize())
    }

    /// The cached tarball's file name.
    pub fn file_name(&self) -> String {
        format!("base-{}.tar", &self.cache_key()[..16])
    }
}

/// The recipe for `plan.image.base` (`debian` or `proxmox`). Pure: same inputs, same
/// recipe. Bad input (no usable apt source, a missing or wrong Proxmox key, an
/// unsupported suite) is an [`InputError`].
pub fn base_recipe(plan: &Plan, host: &HostInputs) -> Result<BaseRecipe> {
    let flavour = match plan.image.base {
        BaseKind::Debian => Flavour::Debian,
        BaseKind::Proxmox => Flavour::Proxmox,
        BaseKind::File => {
            return Err(InputError::new(
                "image.base names a base file, which hcikit reads instead of generating \
                 (a recipe exists only for \"debian\" and \"proxmox\")",
            )
            .into())
        }
    };
    let suite = plan.image.suite.clone();
    let archives = sources::debian_archives(&host.apt_sources).ok_or_else(|| {
        InputError::new(
            "no Debian archive in this host's apt sources (/etc/apt/sources.list, \
             /etc/apt/sources.list.d/): the base is built from the archive the host uses",
        )
    })?;
    let mut sources_text = sources::render_debian(&archives, &suite);

    let mut options: Vec<String> = vec!["--variant=apt".into(), "--format=tar".into()];
    let mut packages: Vec<String>;
    match flavour {
        Flavour::Debian => {
            // Recommends would add ~150 MB (firmware, man-db, …) a cluster node never uses.
            options.push(r#"--aptopt=APT::Install-Recommends "false""#.into());
            packages = DEBIAN_PACKAGES.iter().map(|s| s.to_string()).collect();
        }
        Flavour::Proxmox => {
            if suite != "bookworm" || plan.cluster.pve_major != 8 {
                return Err(InputError::new(format!(
                    "image.base = \"proxmox\" builds Proxmox VE 8 on bookworm only \
                     (got suite {suite:?}, pve-major {})",
                    plan.cluster.pve_major
                ))
                .into());
            }
            let key = host.proxmox_keyring.as_ref().ok_or_else(|| {
                InputError::new(
                    "image.base = \"proxmox\" needs Proxmox's release key \
                     (proxmox-release-bookworm.gpg): pass its path with --proxmox-key \
                     or HCIKIT_PROXMOX_KEY",
                )
            })?;
            if key.sha512 != PROXMOX_BOOKWORM_KEY_SHA512 {
                return Err(InputError::new(format!(
                    "{} is not Proxmox's bookworm release key: its SHA-512 is {}, \
                     expected {PROXMOX_BOOKWORM_KEY_SHA512}",
                    key.path.display(),
                    key.sha512
                ))
                .into());
            }
            // The key must be trusted before apt's first update and stay in the base.
            options.push(r#"--setup-hook=mkdir -p "$1/etc/apt/trusted.gpg.d""#.into());
            options.push(format!(
                "--setup-hook=copy-in {} /etc/apt/trusted.gpg.d/",
                shell_quote(&key.path.display().to_string())
            ));
            let (pve_uri, pve_comp, ceph_uri_base, ceph_comp) = proxmox_repos(plan);
            sources_text.push_str(&format!(
                "\nTypes: deb\nURIs: {pve_uri}\nSuites: bookworm\nComponents: {pve_comp}\n"
            ));
            packages = PROXMOX_PACKAGES.iter().map(|s| s.to_string()).collect();
            if let Some(ceph) = &plan.ceph {
                sources_text.push_str(&format!(
                    "\nTypes: deb\nURIs: {ceph_uri_base}/ceph-{}\nSuites: bookworm\nComponents: {ceph_comp}\n",
                    ceph.release
                ));
                packages.extend(CEPH_PACKAGES.iter().map(|s| s.to_string()));
            }
            // postfix asks how to deliver mail; answer before it is installed. Root mail
            // goes to the notification system through /root/.forward, so local only.
            options.push(
                "--essential-hook=printf '%s\\n' 'postfix postfix/main_mailer_type select Local only' \
                 'postfix postfix/mailname string localhost' | chroot \"$1\" debconf-set-selections"
                    .into(),
            );
        }
    }
    for p in &plan.image.extra_packages {
        if !packages.contains(p) {
            packages.push(p.clone());
        }
    }

    // Docs, man pages and translations: ~100 MB nobody reads on a node. The dpkg filter
    // stays in the base, so later installs skip them too.
    for o in [
        "path-exclude=/usr/share/man/*",
        "path-exclude=/usr/share/info/*",
        "path-exclude=/usr/share/locale/*",
        "path-include=/usr/share/locale/locale.alias",
        "path-exclude=/usr/share/doc/*",
        "path-include=/usr/share/doc/*/copyright",
        "path-exclude=/usr/share/lintian/*",
    ] {
        options.push(format!("--dpkgopt={o}"));
    }
    options.push(format!("--include={}", packages.join(",")));

    // Before the kernel is installed, so its initramfs is built small from the start.
    options.push(format!(
        "--essential-hook={}",
        write_file_hook(
            "/etc/initramfs-tools/conf.d/hcikit",
            "# hcikit: a fixed driver list (see modules.d/hcikit).\nMODULES=list\nCOMPRESS=zstd\n",
        )
    ));
    options.push(format!(
        "--essential-hook={}",
        write_file_hook(
            "/usr/share/initramfs-tools/modules.d/hcikit",
            &(INITRAMFS_MODULES.join("\n") + "\n"),
        )
    ));
    // ifupdown2's networking.service neither pulls in network.target nor orders itself
    // after network-pre.target, so nothing hooked there (hcikit-apply, firewalls) would
    // run, or run first. This makes it behave like a systemd network manager should.
    options.push(format!(
        "--essential-hook={}",
        write_file_hook(
            "/etc/systemd/system/networking.service.d/hcikit.conf",
            NETWORKING_DROP_IN,
        )
    ));
    if flavour == Flavour::Debian {
        // The root file system ships without a machine id, so systemd applies presets on
        // the first boot and would enable corosync (with its sample config) and
        // systemd-networkd next to ifupdown2. hcikit starts corosync itself.
        options.push(format!(
            "--essential-hook={}",
            write_file_hook(
                "/etc/systemd/system-preset/10-hcikit.preset",
                "# hcikit: ifupdown2 owns the network, chrony the clock; corosync starts\n\
                 # once the cluster is configured.\n\
                 disable corosync.service\n\
                 disable systemd-networkd.service\n\
                 disable systemd-networkd-wait-online.service\n\
                 disable systemd-network-generator.service\n\
                 disable systemd-resolved.service\n\
                 disable systemd-timesyncd.service\n",
            )
        ));
        options.push(r#"--customize-hook=systemctl --root="$1" disable corosync.service"#.into());
    } else {
        // From the Proxmox procedure: os-prober would list other disks' systems in the
        // boot menu, and without a subscription the enterprise repository only fails.
        options.push(
            r#"--customize-hook=chroot "$1" sh -c 'if dpkg-query -W os-prober >/dev/null 2>&1; then apt-get -y purge os-prober; fi'"#
                .into(),
        );
        if proxmox_repos(plan).1 != "pve-enterprise" {
            options.push(
                r#"--customize-hook=rm -f "$1/etc/apt/sources.list.d/pve-enterprise.list""#.into(),
            );
        }
    }
    // Per-node identity is installed at first boot; baked-in host keys would be shared by
    // every node, and the build host's name and resolver do not belong in a node.
    options.push(
        r#"--customize-hook=rm -f "$1"/etc/ssh/ssh_host_* "$1/etc/hostname" "$1/etc/resolv.conf""#
            .into(),
    );

    Ok(BaseRecipe {
        flavour,
        suite,
        packages,
        sources: sources_text,
        options,
        source_date_epoch: host.source_date_epoch,
    })
}

/// (PVE URI, PVE component, Ceph URI prefix, Ceph component) for the Plan's repository
/// choice (`plan.ceph.repository`, `no-subscription` when there is no Ceph section).
fn proxmox_repos(plan: &Plan) -> (&'static str, &'static str, &'static str, &'static str) {
    let repo = plan
        .ceph
        .as_ref()
        .map(|c| c.repository.as_str())
        .unwrap_or("no-subscription");
    match repo {
        "enterprise" => (
            "https://enterprise.proxmox.com/debian/pve",
            "pve-enterprise",
            "https://enterprise.proxmox.com/debian",
            "enterprise",
        ),
        "test" => (
            "http://download.proxmox.com/debian/pve",
            "pvetest",
            "http://download.proxmox.com/debian",
            "test",
        ),
        _ => (
            "http://download.proxmox.com/debian/pve",
            "pve-no-subscription",
            "http://download.proxmox.com/debian",
            "no-subscription",
        ),
    }
}

/// A hook that writes `content` to `path` inside the chroot (`$1`).
fn write_file_hook(path: &str, content: &str) -> String {
    let dir = Path::new(path)
        .parent()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "/".into());
    format!(
        "mkdir -p \"$1{dir}\" && printf '%s' {} > \"$1{path}\"",
        shell_quote(content)
    )
}

/// Single-quotes a string for sh.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
pub(crate) mod tests;
