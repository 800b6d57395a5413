//! The base recipe: exactly what `mmdebstrap` is asked to do, as a pure function of the
//! Plan and the build host's inputs, so tests can pin it string for string and the cache
//! key covers everything that changes the result.

use super::mirrors::Mirrors;
use super::sources::{self, AptSource, ArchiveRef, DebianArchives};
use crate::error::InputError;
use anyhow::Result;
use hcikit_firstboot::plan::{BaseKind, Plan};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Bumped whenever the recipe below changes in a way the argv does not show (it is part
/// of the cache key either way).
pub const BASE_RECIPE_VERSION: u32 = 3;

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
    // The USB installer sets the installed disk's UEFI boot entry with it.
    "efibootmgr",
];

/// What "Install Proxmox VE on Debian" installs (kernel first, then `proxmox-ve postfix
/// open-iscsi chrony`), plus the node packages Proxmox does not pull. The procedure starts
/// from an installed Debian; mmdebstrap's `apt` variant is not one, so the pieces of it a
/// node boots with come too (`systemd-sysv` gives `/sbin/init`: without it the apt-repo
/// test's base stopped in the initramfs).
pub const PROXMOX_PACKAGES: &[&str] = &[
    "proxmox-default-kernel",
    "proxmox-ve",
    "postfix",
    "open-iscsi",
    "chrony",
    "systemd",
    "systemd-sysv",
    "systemd-boot-efi",
    "udev",
    "dbus",
    "kmod",
    "ifupdown2",
    "iproute2",
    "iputils-ping",
    "netbase",
    "procps",
    "tzdata",
    "openssh-server",
    "dosfstools",
    "zstd",
    "efibootmgr",
];

/// The Ceph packages `pveceph install` installs, pre-installed so first boot needs no
/// internet: pve-manager `PVE/CLI/pveceph.pm`, `install` (`@ceph_packages`, the same on
/// `master` and `stable-8`).
pub const CEPH_PACKAGES: &[&str] = &[
    "ceph",
    "ceph-common",
    "ceph-fuse",
    "ceph-mds",
    "ceph-volume",
    "gdisk",
    "nvme-cli",
];

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

/// A Proxmox VE major release the `proxmox` flavour builds: its Debian suite, where its
/// archive key lives and what Proxmox publishes as the key file's checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxmoxRelease {
    pub major: u8,
    pub suite: &'static str,
    /// The key file as Proxmox publishes it (under `https://enterprise.proxmox.com/debian/`).
    pub key_published_as: &'static str,
    /// Where the key goes in the base; the repositories' `Signed-By`.
    pub key_in_base: &'static str,
    /// The published checksum of the key file: (algorithm, hex).
    pub key_digest: (DigestKind, &'static str),
    /// The enterprise repository file pve-manager ships (`configs/Makefile`, `install`).
    pub enterprise_file: &'static str,
    /// The PVE test repository's component.
    pub test_component: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestKind {
    Sha256,
    Sha512,
}

impl DigestKind {
    pub fn name(self) -> &'static str {
        match self {
            DigestKind::Sha256 => "SHA-256",
            DigestKind::Sha512 => "SHA-512",
        }
    }
}

/// PVE 9 on trixie. Key, its SHA-256 and the deb822 lines: pve-docs `master`
/// `pve-package-repos.adoc` (SecureApt, repository stanzas); the enterprise file:
/// pve-manager `master` `configs/pve-sources.sources`, installed as
/// `/etc/apt/sources.list.d/pve-enterprise.sources`.
pub const PVE9: ProxmoxRelease = ProxmoxRelease {
    major: 9,
    suite: "trixie",
    key_published_as: "proxmox-archive-keyring-trixie.gpg",
    key_in_base: "/usr/share/keyrings/proxmox-archive-keyring.gpg",
    key_digest: (
        DigestKind::Sha256,
        "136673be77aba35dcce385b28737689ad64fd785a797e57897589aed08db6e45",
    ),
    enterprise_file: "/etc/apt/sources.list.d/pve-enterprise.sources",
    test_component: "pve-test",
};

/// PVE 8 on bookworm (end of life). Key and its SHA-512: pve-docs `stable-bookworm`
/// `pve-package-repos.adoc`; the enterprise file: pve-manager `stable-8`
/// `configs/Makefile` (`pve-sources.list` installed as `pve-enterprise.list`).
pub const PVE8: ProxmoxRelease = ProxmoxRelease {
    major: 8,
    suite: "bookworm",
    key_published_as: "proxmox-release-bookworm.gpg",
    key_in_base: "/etc/apt/trusted.gpg.d/proxmox-release-bookworm.gpg",
    key_digest: (
        DigestKind::Sha512,
        "7da6fe34168adc6e479327ba517796d4702fa2f8b4f0a9833f5ea6e6b48f6507a6da403a274fe201595edc86a84463d50383d07f64bdde2e3658108db7d6dc87",
    ),
    enterprise_file: "/etc/apt/sources.list.d/pve-enterprise.list",
    test_component: "pvetest",
};

/// The release for a PVE major, if the `proxmox` flavour builds it.
pub fn proxmox_release(major: u8) -> Option<ProxmoxRelease> {
    [PVE9, PVE8].into_iter().find(|r| r.major == major)
}

/// Where the base's Proxmox and Ceph repositories are written: the names Proxmox uses for
/// them (pve-docs `pve-package-repos.adoc`; pve-manager `PVE/CLI/pveceph.pm` `install`
/// writes `ceph.sources` on PVE 9), so a later `pveceph install` replaces the Ceph file
/// instead of adding a second entry.
pub const PROXMOX_SOURCES_FILE: &str = "/etc/apt/sources.list.d/proxmox.sources";
pub const CEPH_SOURCES_FILE: &str = "/etc/apt/sources.list.d/ceph.sources";

/// Name of the Debian sources file handed to mmdebstrap (in a folder of its own) and
/// kept in the base.
pub const SOURCES_FILE_NAME: &str = "debian.sources";

/// Drop-in for ifupdown2's `networking.service` (see [`base_recipe`]).
pub const NETWORKING_DROP_IN: &str = "\
# hcikit: run as a systemd network manager: pull in network.target and order before
# it, after network-pre.target (where hcikit-apply hooks in), and after udev has named
# the NICs (ens18 was still eth0 when a bridge came up without it).
[Unit]
Wants=network.target systemd-udev-settle.service
After=network-pre.target systemd-udev-settle.service
Before=network.target
";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    Debian,
    Proxmox,
}

/// The Proxmox archive key as found on the build host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyring {
    pub path: PathBuf,
    /// SHA-256 of the file, hex.
    pub sha256: String,
    /// SHA-512 of the file, hex.
    pub sha512: String,
    /// The SHA-256 the user vouches for instead of Proxmox's published checksum: the key
    /// of a mirror that re-signs Proxmox's packages (`--proxmox-key-sha256`).
    pub expected_sha256: Option<String>,
}

impl Keyring {
    /// Reads the key file and computes its checksums.
    pub fn read(path: &Path, expected_sha256: Option<String>) -> Result<Keyring> {
        use sha2::Sha512;
        let bytes = std::fs::read(path).map_err(|e| {
            InputError::new(format!("cannot read Proxmox key {}: {e}", path.display()))
        })?;
        // Absolute: the build's apt reads it by this path (see `base_recipe`).
        let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        Ok(Keyring {
            path,
            sha256: hex::encode(Sha256::digest(&bytes)),
            sha512: hex::encode(Sha512::digest(&bytes)),
            expected_sha256: expected_sha256.map(|s| s.trim().to_ascii_lowercase()),
        })
    }

    /// Checks the key against what `release` publishes (or the user's own checksum).
    pub fn check(&self, release: &ProxmoxRelease) -> Result<()> {
        let (kind, have, want) = match &self.expected_sha256 {
            Some(want) => (DigestKind::Sha256, &self.sha256, want.as_str()),
            None => match release.key_digest {
                (DigestKind::Sha256, want) => (DigestKind::Sha256, &self.sha256, want),
                (DigestKind::Sha512, want) => (DigestKind::Sha512, &self.sha512, want),
            },
        };
        if have != want {
            let whose = if self.expected_sha256.is_some() {
                "the key given with --proxmox-key-sha256".to_string()
            } else {
                format!(
                    "Proxmox's {} archive key ({}, as published)",
                    release.suite, release.key_published_as
                )
            };
            return Err(InputError::new(format!(
                "{} is not {whose}: its {} is {have}, expected {want}",
                self.path.display(),
                kind.name()
            ))
            .into());
        }
        Ok(())
    }
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
    /// Mirrors for the Debian, Proxmox and Ceph archives.
    pub mirrors: Mirrors,
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
    /// The Proxmox and Ceph repositories the `proxmox` flavour installs from, as
    /// (URI, suite): checked for access before mmdebstrap runs.
    pub proxmox_repositories: Vec<(String, String)>,
    /// SHA-256 of the Proxmox key file (its content is part of the cache key, its path
    /// only through the hook).
    pub key_sha256: Option<String>,
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
        if let Some(k) = &self.key_sha256 {
            field("key", k);
        }
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
    let archives = debian_archives(&host.apt_sources, &host.mirrors)?;
    let sources_text = sources::render_debian(&archives, &suite);
    let mut proxmox_repositories = Vec::new();
    let mut key_sha256 = None;

    let mut options: Vec<String> = vec!["--variant=apt".into(), "--format=tar".into()];
    let mut packages: Vec<String>;
    match flavour {
        Flavour::Debian => {
            // Recommends would add ~150 MB (firmware, man-db, …) a cluster node never uses.
            options.push(r#"--aptopt=APT::Install-Recommends "false""#.into());
            packages = DEBIAN_PACKAGES.iter().map(|s| s.to_string()).collect();
        }
        Flavour::Proxmox => {
            let major = plan.cluster.pve_major;
            let release = proxmox_release(major).ok_or_else(|| {
                InputError::new(format!(
                    "image.base = \"proxmox\" builds Proxmox VE 9 (trixie) and 8 (bookworm), \
                     not cluster.pve-version = {major}"
                ))
            })?;
            if suite != release.suite {
                return Err(InputError::new(format!(
                    "image.suite = {suite:?}: Proxmox VE {major} is built on {}",
                    release.suite
                ))
                .into());
            }
            let key = host.proxmox_keyring.as_ref().ok_or_else(|| {
                InputError::new(format!(
                    "image.base = \"proxmox\" needs Proxmox's archive key for {suite} \
                     ({k}, from https://enterprise.proxmox.com/debian/{k}): pass its path \
                     with --proxmox-key or HCIKIT_PROXMOX_KEY. It also needs Proxmox's \
                     repositories or a mirror of them (--mirror proxmox=URI, image.mirrors); \
                     --base debian builds the same nodes without Proxmox VE",
                    k = release.key_published_as
                ))
            })?;
            key.check(&release)?;
            key_sha256 = Some(key.sha256.clone());
            let repos = proxmox_repos(plan, &release, &host.mirrors);
            // The key and the repositories must be in place before apt's first update;
            // both stay in the base, under the names Proxmox uses.
            options.push(format!(
                "--setup-hook=mkdir -p \"$1{}\"",
                parent_dir(release.key_in_base)
            ));
            options.push(format!(
                "--setup-hook=upload {} {}",
                shell_quote(&key.path.display().to_string()),
                release.key_in_base
            ));
            // apt runs outside the chroot while mmdebstrap installs, so `Signed-By` is
            // read on the build host: during the build the stanzas name the key file
            // given to hcikit; a customize hook writes their final form (see below).
            let host_key = key.path.display().to_string();
            for (file, stanza) in repos.stanzas(&release, &host_key) {
                options.push(format!(
                    "--setup-hook={}",
                    write_file_hook(file, &for_build(&stanza))
                ));
            }
            proxmox_repositories.push((repos.pve_uri.clone(), suite.clone()));
            packages = PROXMOX_PACKAGES.iter().map(|s| s.to_string()).collect();
            if let Some(uri) = &repos.ceph_uri {
                proxmox_repositories.push((uri.clone(), suite.clone()));
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
        let release = proxmox_release(plan.cluster.pve_major).expect("checked above");
        let repos = proxmox_repos(plan, &release, &host.mirrors);
        // The repositories as a node reads them: signed by the key in the base.
        for (file, stanza) in repos.stanzas(&release, release.key_in_base) {
            options.push(format!(
                "--customize-hook={}",
                write_file_hook(file, &stanza)
            ));
        }
        // From the Proxmox procedure: os-prober would list other disks' systems in the
        // boot menu, and without a subscription the enterprise repository only fails.
        options.push(
            r#"--customize-hook=chroot "$1" sh -c 'if dpkg-query -W os-prober >/dev/null 2>&1; then apt-get -y purge os-prober; fi'"#
                .into(),
        );
        // pve-manager installs the enterprise repository file; without a subscription
        // (or behind a mirror) it only fails. With the enterprise repository and no
        // mirror, Proxmox's file is the same entry as hcikit's, so hcikit's goes.
        let redundant = if repos.keeps_enterprise_file {
            PROXMOX_SOURCES_FILE
        } else {
            release.enterprise_file
        };
        options.push(format!(r#"--customize-hook=rm -f "$1{redundant}""#));
    }
    // mmdebstrap keeps the sources file it was given as `0000<its name>`; the base gets
    // it under the name Debian uses (trixie's `debian.sources`), with file:// mirrors as
    // a node reads them (see `for_build`).
    options.push(format!(
        r#"--customize-hook=rm -f "$1/etc/apt/sources.list.d/0000{SOURCES_FILE_NAME}""#
    ));
    options.push(format!(
        "--customize-hook={}",
        write_file_hook(
            &format!("/etc/apt/sources.list.d/{SOURCES_FILE_NAME}"),
            &sources_text
        )
    ));
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
        sources: for_build(&sources_text),
        options,
        source_date_epoch: host.source_date_epoch,
        proxmox_repositories,
        key_sha256,
    })
}

/// The Debian archives: the host's, with any mirror in place of its URI. A mirror needs
/// no host sources (an air-gapped build host); it keeps the host's components and
/// keyring when the host has the archive, else `main` and Debian's keyring.
fn debian_archives(host: &[AptSource], mirrors: &Mirrors) -> Result<DebianArchives> {
    let found = sources::debian_archives(host);
    let mirrored = |uri: &String, host: Option<&ArchiveRef>| ArchiveRef {
        uri: uri.clone(),
        components: host.map_or_else(|| vec!["main".into()], |h| h.components.clone()),
        signed_by: host.map_or_else(
            || Some("/usr/share/keyrings/debian-archive-keyring.gpg".into()),
            |h| h.signed_by.clone(),
        ),
    };
    let main = match (&mirrors.debian, &found) {
        (Some(m), f) => mirrored(m, f.as_ref().map(|f| &f.main)),
        (None, Some(f)) => f.main.clone(),
        (None, None) => {
            return Err(InputError::new(
                "no Debian archive in this host's apt sources (/etc/apt/sources.list, \
                 /etc/apt/sources.list.d/): the base is built from the archive the host uses, \
                 or from a mirror (image.mirrors.debian, --mirror debian=URI)",
            )
            .into())
        }
    };
    let host_security = found.as_ref().and_then(|f| f.security.as_ref());
    let security = match &mirrors.debian_security {
        Some(m) => Some(mirrored(m, host_security)),
        None => host_security.cloned(),
    };
    Ok(DebianArchives { main, security })
}

/// The Proxmox repositories of a `proxmox` base: `ceph.repository` picks enterprise,
/// no-subscription or test (`no-subscription` without a Ceph section); a mirror replaces a
/// repository's URI, never its suite or component.
struct ProxmoxRepos {
    pve_uri: String,
    pve_component: String,
    ceph_uri: Option<String>,
    ceph_component: String,
    /// Keep pve-manager's enterprise file (and drop hcikit's identical entry).
    keeps_enterprise_file: bool,
}

impl ProxmoxRepos {
    /// (file, deb822 stanza) of each repository, signed by the key at `signed_by`.
    fn stanzas(&self, release: &ProxmoxRelease, signed_by: &str) -> Vec<(&'static str, String)> {
        let stanza = |uri: &str, component: &str| {
            format!(
                "Types: deb\nURIs: {uri}\nSuites: {}\nComponents: {component}\nSigned-By: {signed_by}\n",
                release.suite
            )
        };
        let mut out = vec![(
            PROXMOX_SOURCES_FILE,
            stanza(&self.pve_uri, &self.pve_component),
        )];
        if let Some(uri) = &self.ceph_uri {
            out.push((CEPH_SOURCES_FILE, stanza(uri, &self.ceph_component)));
        }
        out
    }
}

/// The repository lines of pve-docs `pve-package-repos.adoc` and of pve-manager
/// `PVE/CLI/pveceph.pm` `install` (`$cdn/debian/ceph-$cephver`, component = the
/// repository name), with mirrors applied.
fn proxmox_repos(plan: &Plan, release: &ProxmoxRelease, mirrors: &Mirrors) -> ProxmoxRepos {
    let repo = plan
        .ceph
        .as_ref()
        .map(|c| c.repository.as_str())
        .unwrap_or("no-subscription");
    let (cdn, pve_component) = match repo {
        "enterprise" => ("https://enterprise.proxmox.com", "pve-enterprise"),
        "test" => ("http://download.proxmox.com", release.test_component),
        _ => ("http://download.proxmox.com", "pve-no-subscription"),
    };
    let ceph_component = match repo {
        "enterprise" | "test" => repo,
        _ => "no-subscription",
    };
    ProxmoxRepos {
        pve_uri: mirrors
            .proxmox
            .clone()
            .unwrap_or_else(|| format!("{cdn}/debian/pve")),
        pve_component: pve_component.into(),
        ceph_uri: plan.ceph.as_ref().map(|c| {
            mirrors
                .ceph
                .clone()
                .unwrap_or_else(|| format!("{cdn}/debian/ceph-{}", c.release))
        }),
        ceph_component: ceph_component.into(),
        keeps_enterprise_file: repo == "enterprise" && mirrors.proxmox.is_none(),
    }
}

fn parent_dir(path: &str) -> String {
    Path::new(path)
        .parent()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "/".into())
}

/// Sources text as mmdebstrap's apt reads it: `file://` repositories as `copy://`. apt
/// reads a file:// repository in place and hands dpkg, which runs inside the chroot,
/// paths that exist only outside it; `copy://` makes apt copy the packages into its
/// cache first. (mmdebstrap's file-mirror-automount hooks bind-mount instead, and leave
/// the mounts behind when apt fails.)
fn for_build(sources: &str) -> String {
    sources
        .lines()
        .map(|l| match l.strip_prefix("URIs: file://") {
            Some(rest) => format!("URIs: copy://{rest}\n"),
            None => format!("{l}\n"),
        })
        .collect()
}

/// A hook that writes `content` to `path` inside the chroot (`$1`).
fn write_file_hook(path: &str, content: &str) -> String {
    let dir = parent_dir(path);
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
