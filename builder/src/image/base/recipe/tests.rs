//! Golden tests of the base recipe: the exact mmdebstrap argv and sources.

use super::*;
use crate::image::base::mirrors::Mirrors;
use crate::image::base::sources::parse_deb822;

/// A minimal valid Plan with the given `image.base`.
pub(crate) fn plan(base: &str) -> Plan {
    let json = serde_json::json!({
        "format": 1,
        "cluster": {
            "name": "lab", "domain": "lab.example", "timezone": "UTC", "keyboard": "en-us",
            "pve-major": 8, "ntp-servers": [], "admin-ssh-keys": [], "root-password": null,
            "founder": "pve1", "join-order": []
        },
        "networks": [], "nodes": [],
        "corosync": { "cluster-name": "lab", "links": [], "config-version": 1 },
        "ceph": null,
        "datacenter": { "options": {} },
        "ha": { "mode": "groups", "groups": [], "resources": [] },
        "notifications": { "smtp": [], "matchers": [], "default-matcher-targets": [],
                           "report-target": null, "send-test": false },
        "realms": [],
        "firstboot": { "peer-timeout-secs": 600, "join-timeout-secs": 600,
                       "health-timeout-secs": 1800, "backoff-secs": 2, "max-backoff-secs": 60,
                       "ceph-install": "preinstalled" },
        "image": { "disk-size": 8589934592u64, "esp-size": 536870912, "base": base,
                   "base-file": null, "suite": "bookworm", "extra-packages": [],
                   "kernel-cmdline": [], "boot-timeout-secs": 3 },
        "steps": [], "warnings": []
    });
    serde_json::from_value(json).expect("fixture plan")
}

fn with_ceph(mut p: Plan, repository: &str) -> Plan {
    p.ceph = Some(hcikit_firstboot::plan::Ceph {
        release: "reef".into(),
        version: "18.2".into(),
        repository: repository.into(),
        public_network: "storage".into(),
        public_cidr: "10.2.22.0/24".into(),
        cluster_network: "storage".into(),
        cluster_cidr: "10.2.22.0/24".into(),
        size: 3,
        min_size: 2,
        mons: vec![],
        mgrs: vec![],
        mds: vec![],
        pools: vec![],
        cephfs: vec![],
        extra_config: Default::default(),
        osd_count: 0,
    });
    p
}

const HOST: &str = "\
Types: deb
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian
Suites: bookworm-backports
Components: main
";

const DEBIAN_SOURCES: &str = "\
Types: deb
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
";

fn host(key: Option<Keyring>) -> HostInputs {
    HostInputs {
        apt_sources: parse_deb822(HOST),
        source_date_epoch: 1_704_067_200,
        proxmox_keyring: key,
        mirrors: Mirrors::default(),
    }
}

/// A key file whose checksums are the published ones of `release` (the recipe only sees
/// the checksums).
fn good_key(release: &ProxmoxRelease) -> Keyring {
    let (sha256, sha512) = match release.key_digest {
        (DigestKind::Sha256, d) => (d.to_string(), "0".repeat(128)),
        (DigestKind::Sha512, d) => ("1".repeat(64), d.to_string()),
    };
    Keyring {
        path: format!("/keys/{}", release.key_published_as).into(),
        sha256,
        sha512,
        expected_sha256: None,
    }
}

/// A PVE 9 plan on trixie with Ceph squid from `repository`.
fn pve9(repository: &str) -> Plan {
    let mut p = with_ceph(plan("proxmox"), repository);
    p.cluster.pve_major = 9;
    p.image.suite = "trixie".into();
    let c = p.ceph.as_mut().unwrap();
    c.release = "squid".into();
    c.version = "19.2".into();
    p
}

fn trixie_host(key: Option<Keyring>) -> HostInputs {
    let mut h = host(key);
    for s in &mut h.apt_sources {
        for suite in &mut s.suites {
            *suite = suite.replace("bookworm", "trixie");
        }
    }
    h
}

/// The hooks shared by both flavours, as mmdebstrap receives them.
const INITRAMFS_CONF_HOOK: &str = "--essential-hook=mkdir -p \"$1/etc/initramfs-tools/conf.d\" && printf '%s' '# hcikit: a fixed driver list (see modules.d/hcikit).\nMODULES=list\nCOMPRESS=zstd\n' > \"$1/etc/initramfs-tools/conf.d/hcikit\"";
const INITRAMFS_MODULES_HOOK: &str = "--essential-hook=mkdir -p \"$1/usr/share/initramfs-tools/modules.d\" && printf '%s' 'virtio_pci\nvirtio_blk\nvirtio_scsi\nsd_mod\nahci\nnvme\nxhci_pci\nehci_pci\nusb_storage\nuas\nmmc_block\nsdhci_pci\nsdhci_acpi\nhid_generic\nusbhid\next4\ncrc32c_generic\ncrc32c_intel\noverlay\n' > \"$1/usr/share/initramfs-tools/modules.d/hcikit\"";
const NETWORKING_HOOK: &str = "--essential-hook=mkdir -p \"$1/etc/systemd/system/networking.service.d\" && printf '%s' '# hcikit: run as a systemd network manager: pull in network.target and order before\n# it, after network-pre.target (where hcikit-apply hooks in), and after udev has named\n# the NICs (ens18 was still eth0 when a bridge came up without it).\n[Unit]\nWants=network.target systemd-udev-settle.service\nAfter=network-pre.target systemd-udev-settle.service\nBefore=network.target\n' > \"$1/etc/systemd/system/networking.service.d/hcikit.conf\"";
const DPKG_FILTERS: [&str; 7] = [
    "--dpkgopt=path-exclude=/usr/share/man/*",
    "--dpkgopt=path-exclude=/usr/share/info/*",
    "--dpkgopt=path-exclude=/usr/share/locale/*",
    "--dpkgopt=path-include=/usr/share/locale/locale.alias",
    "--dpkgopt=path-exclude=/usr/share/doc/*",
    "--dpkgopt=path-include=/usr/share/doc/*/copyright",
    "--dpkgopt=path-exclude=/usr/share/lintian/*",
];
const RM_MMDEBSTRAP_SOURCES_HOOK: &str =
    r#"--customize-hook=rm -f "$1/etc/apt/sources.list.d/0000debian.sources""#;

/// The customize hooks that leave `text` as the base's debian.sources.
fn debian_sources_hooks(text: &str) -> [String; 2] {
    [
        RM_MMDEBSTRAP_SOURCES_HOOK.into(),
        format!(
            "--customize-hook=mkdir -p \"$1/etc/apt/sources.list.d\" && printf '%s' '{text}' > \
             \"$1/etc/apt/sources.list.d/debian.sources\""
        ),
    ]
}
const CLEAN_IDENTITY_HOOK: &str =
    r#"--customize-hook=rm -f "$1"/etc/ssh/ssh_host_* "$1/etc/hostname" "$1/etc/resolv.conf""#;

#[test]
fn debian_recipe_is_pinned() {
    let mut p = plan("debian");
    p.image.extra_packages = vec!["htop".into(), "chrony".into()];
    let r = base_recipe(&p, &host(None)).unwrap();
    assert_eq!(r.flavour, Flavour::Debian);
    assert_eq!(r.sources, DEBIAN_SOURCES);
    let mut expected: Vec<String> = vec![
        "mmdebstrap".into(),
        "--variant=apt".into(),
        "--format=tar".into(),
        r#"--aptopt=APT::Install-Recommends "false""#.into(),
    ];
    expected.extend(DPKG_FILTERS.iter().map(|s| s.to_string()));
    expected.push(
        "--include=linux-image-amd64,systemd,systemd-sysv,systemd-boot-efi,udev,dbus,ifupdown2,\
         openssh-server,chrony,corosync,iproute2,iputils-ping,netbase,procps,tzdata,kmod,\
         util-linux,fdisk,gdisk,e2fsprogs,dosfstools,zstd,ca-certificates,efibootmgr,htop"
            .into(),
    );
    expected.push(INITRAMFS_CONF_HOOK.into());
    expected.push(INITRAMFS_MODULES_HOOK.into());
    expected.push(NETWORKING_HOOK.into());
    expected.push(
        "--essential-hook=mkdir -p \"$1/etc/systemd/system-preset\" && printf '%s' '# hcikit: \
         ifupdown2 owns the network, chrony the clock; corosync starts\n# once the cluster is \
         configured.\ndisable corosync.service\ndisable systemd-networkd.service\ndisable \
         systemd-networkd-wait-online.service\ndisable systemd-network-generator.service\n\
         disable systemd-resolved.service\ndisable systemd-timesyncd.service\n' > \
         \"$1/etc/systemd/system-preset/10-hcikit.preset\""
            .into(),
    );
    expected.push(r#"--customize-hook=systemctl --root="$1" disable corosync.service"#.into());
    expected.extend(debian_sources_hooks(DEBIAN_SOURCES));
    expected.push(CLEAN_IDENTITY_HOOK.into());
    expected.extend([
        "bookworm".into(),
        "/cache/base.tar".into(),
        "/cache/sources".into(),
    ]);
    assert_eq!(
        r.argv(Path::new("/cache/base.tar"), Path::new("/cache/sources")),
        expected
    );
}

const TRIXIE_SOURCES: &str = "\
Types: deb
URIs: http://mirror.example/debian
Suites: trixie trixie-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: trixie-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
";

const POSTFIX_HOOK: &str =
    "--essential-hook=printf '%s\\n' 'postfix postfix/main_mailer_type select Local only' \
     'postfix postfix/mailname string localhost' | chroot \"$1\" debconf-set-selections";
const OS_PROBER_HOOK: &str = r#"--customize-hook=chroot "$1" sh -c 'if dpkg-query -W os-prober >/dev/null 2>&1; then apt-get -y purge os-prober; fi'"#;

#[test]
fn proxmox_9_recipe_is_pinned() {
    let p = pve9("no-subscription");
    let r = base_recipe(&p, &trixie_host(Some(good_key(&PVE9)))).unwrap();
    assert_eq!(r.flavour, Flavour::Proxmox);
    assert_eq!(r.suite, "trixie");
    // The Debian archives go to mmdebstrap; Proxmox's are written by setup hooks under
    // the names Proxmox uses, in the deb822 lines of pve-docs and pveceph.
    assert_eq!(r.sources, TRIXIE_SOURCES);
    let mut expected: Vec<String> = vec![
        "mmdebstrap".into(),
        "--variant=apt".into(),
        "--format=tar".into(),
        r#"--setup-hook=mkdir -p "$1/usr/share/keyrings""#.into(),
        "--setup-hook=upload '/keys/proxmox-archive-keyring-trixie.gpg' \
         /usr/share/keyrings/proxmox-archive-keyring.gpg"
            .into(),
        "--setup-hook=mkdir -p \"$1/etc/apt/sources.list.d\" && printf '%s' 'Types: deb\n\
         URIs: http://download.proxmox.com/debian/pve\nSuites: trixie\n\
         Components: pve-no-subscription\n\
         Signed-By: /keys/proxmox-archive-keyring-trixie.gpg\n' > \
         \"$1/etc/apt/sources.list.d/proxmox.sources\""
            .into(),
        "--setup-hook=mkdir -p \"$1/etc/apt/sources.list.d\" && printf '%s' 'Types: deb\n\
         URIs: http://download.proxmox.com/debian/ceph-squid\nSuites: trixie\n\
         Components: no-subscription\n\
         Signed-By: /keys/proxmox-archive-keyring-trixie.gpg\n' > \
         \"$1/etc/apt/sources.list.d/ceph.sources\""
            .into(),
        POSTFIX_HOOK.into(),
    ];
    expected.extend(DPKG_FILTERS.iter().map(|s| s.to_string()));
    expected.push(
        "--include=proxmox-default-kernel,proxmox-ve,postfix,open-iscsi,chrony,systemd,\
         systemd-sysv,systemd-boot-efi,udev,dbus,kmod,ifupdown2,iproute2,iputils-ping,netbase,\
         procps,tzdata,openssh-server,dosfstools,zstd,efibootmgr,ceph,ceph-common,ceph-fuse,\
         ceph-mds,ceph-volume,gdisk,nvme-cli"
            .into(),
    );
    expected.push(INITRAMFS_CONF_HOOK.into());
    expected.push(INITRAMFS_MODULES_HOOK.into());
    expected.push(NETWORKING_HOOK.into());
    // The node's apt reads the key in the base.
    expected.push(
        "--customize-hook=mkdir -p \"$1/etc/apt/sources.list.d\" && printf '%s' 'Types: deb\n\
         URIs: http://download.proxmox.com/debian/pve\nSuites: trixie\n\
         Components: pve-no-subscription\n\
         Signed-By: /usr/share/keyrings/proxmox-archive-keyring.gpg\n' > \
         \"$1/etc/apt/sources.list.d/proxmox.sources\""
            .into(),
    );
    expected.push(
        "--customize-hook=mkdir -p \"$1/etc/apt/sources.list.d\" && printf '%s' 'Types: deb\n\
         URIs: http://download.proxmox.com/debian/ceph-squid\nSuites: trixie\n\
         Components: no-subscription\n\
         Signed-By: /usr/share/keyrings/proxmox-archive-keyring.gpg\n' > \
         \"$1/etc/apt/sources.list.d/ceph.sources\""
            .into(),
    );
    expected.push(OS_PROBER_HOOK.into());
    expected.push(
        r#"--customize-hook=rm -f "$1/etc/apt/sources.list.d/pve-enterprise.sources""#.into(),
    );
    expected.extend(debian_sources_hooks(TRIXIE_SOURCES));
    expected.push(CLEAN_IDENTITY_HOOK.into());
    expected.extend(["trixie".into(), "/t.tar".into(), "/s".into()]);
    assert_eq!(r.argv(Path::new("/t.tar"), Path::new("/s")), expected);
    assert_eq!(
        r.proxmox_repositories,
        [
            (
                "http://download.proxmox.com/debian/pve".into(),
                "trixie".into()
            ),
            (
                "http://download.proxmox.com/debian/ceph-squid".into(),
                "trixie".into()
            )
        ]
    );
    assert!(!r.packages.contains(&"linux-image-amd64".to_string()));
}

#[test]
fn proxmox_8_recipe_is_pinned() {
    let p = with_ceph(plan("proxmox"), "no-subscription");
    let r = base_recipe(&p, &host(Some(good_key(&PVE8)))).unwrap();
    assert_eq!(r.sources, DEBIAN_SOURCES);
    let hooks: Vec<&String> = r.options.iter().filter(|o| o.contains("hook=")).collect();
    assert_eq!(
        hooks[..4],
        [
            r#"--setup-hook=mkdir -p "$1/etc/apt/trusted.gpg.d""#,
            "--setup-hook=upload '/keys/proxmox-release-bookworm.gpg' \
             /etc/apt/trusted.gpg.d/proxmox-release-bookworm.gpg",
            "--setup-hook=mkdir -p \"$1/etc/apt/sources.list.d\" && printf '%s' 'Types: deb\n\
             URIs: http://download.proxmox.com/debian/pve\nSuites: bookworm\n\
             Components: pve-no-subscription\n\
             Signed-By: /keys/proxmox-release-bookworm.gpg\n' > \
             \"$1/etc/apt/sources.list.d/proxmox.sources\"",
            "--setup-hook=mkdir -p \"$1/etc/apt/sources.list.d\" && printf '%s' 'Types: deb\n\
             URIs: http://download.proxmox.com/debian/ceph-reef\nSuites: bookworm\n\
             Components: no-subscription\n\
             Signed-By: /keys/proxmox-release-bookworm.gpg\n' > \
             \"$1/etc/apt/sources.list.d/ceph.sources\"",
        ]
    );
    assert!(r.options.contains(
        &r#"--customize-hook=rm -f "$1/etc/apt/sources.list.d/pve-enterprise.list""#.into()
    ));
    assert!(r.options.iter().any(|o| o.starts_with("--customize-hook=")
        && o.contains("Signed-By: /etc/apt/trusted.gpg.d/proxmox-release-bookworm.gpg")));
    assert_eq!(r.suite, "bookworm");
}

#[test]
fn proxmox_enterprise_keeps_proxmox_s_own_file() {
    let p = pve9("enterprise");
    let r = base_recipe(&p, &trixie_host(Some(good_key(&PVE9)))).unwrap();
    let hooks = r.options.join("\n");
    assert!(hooks.contains("URIs: https://enterprise.proxmox.com/debian/pve\nSuites: trixie\nComponents: pve-enterprise"), "{hooks}");
    assert!(hooks.contains("URIs: https://enterprise.proxmox.com/debian/ceph-squid\nSuites: trixie\nComponents: enterprise"), "{hooks}");
    // pve-manager's pve-enterprise.sources says the same as hcikit's proxmox.sources.
    assert!(r
        .options
        .contains(&r#"--customize-hook=rm -f "$1/etc/apt/sources.list.d/proxmox.sources""#.into()));
    assert!(!hooks.contains("pve-enterprise.sources"), "{hooks}");
}

#[test]
fn proxmox_test_repository_components_follow_the_release() {
    let r9 = base_recipe(&pve9("test"), &trixie_host(Some(good_key(&PVE9)))).unwrap();
    assert!(r9.options.join("\n").contains("Components: pve-test\n"));
    let r8 = base_recipe(
        &with_ceph(plan("proxmox"), "test"),
        &host(Some(good_key(&PVE8))),
    )
    .unwrap();
    assert!(r8.options.join("\n").contains("Components: pvetest\n"));
}

#[test]
fn mirrors_replace_the_uris_only() {
    let mut h = trixie_host(Some(good_key(&PVE9)));
    h.mirrors = Mirrors::default()
        .with_flags(&[
            "debian=http://127.0.0.1:3142/debian".into(),
            "proxmox=file:///srv/mirror/pve".into(),
            "ceph=file:///srv/mirror/ceph-squid".into(),
        ])
        .unwrap();
    // Enterprise behind a mirror: the mirror is used, Proxmox's enterprise file goes.
    let r = base_recipe(&pve9("enterprise"), &h).unwrap();
    assert!(r.sources.starts_with(
        "Types: deb\nURIs: http://127.0.0.1:3142/debian\nSuites: trixie trixie-updates\n\
         Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
    ));
    assert!(r
        .sources
        .contains("URIs: http://mirror.example/debian-security\n"));
    let hooks = r.options.join("\n");
    assert!(
        hooks.contains("URIs: file:///srv/mirror/pve\nSuites: trixie\nComponents: pve-enterprise")
    );
    assert!(hooks
        .contains("URIs: file:///srv/mirror/ceph-squid\nSuites: trixie\nComponents: enterprise"));
    assert!(!hooks.contains("proxmox.com"), "{hooks}");
    assert!(r.options.contains(
        &r#"--customize-hook=rm -f "$1/etc/apt/sources.list.d/pve-enterprise.sources""#.into()
    ));
    assert_eq!(r.proxmox_repositories[0].0, "file:///srv/mirror/pve");
    // mmdebstrap's apt copies file:// packages into its cache (copy://); the node keeps
    // file://.
    let hook = |file: &str, prefix: &str| {
        r.options
            .iter()
            .find(|o| o.starts_with(prefix) && o.ends_with(&format!("{file}\"")))
            .cloned()
            .unwrap_or_default()
    };
    assert!(hook("proxmox.sources", "--setup-hook=").contains("URIs: copy:///srv/mirror/pve\n"));
    assert!(hook("proxmox.sources", "--customize-hook=").contains("URIs: file:///srv/mirror/pve\n"));
    assert!(hook("ceph.sources", "--setup-hook=").contains("URIs: copy:///srv/mirror/ceph-squid\n"));

    // A mirror is enough without any host source (an air-gapped build host).
    let mut h = trixie_host(None);
    h.apt_sources.clear();
    h.mirrors = Mirrors::default()
        .with_flags(&["debian=file:///srv/debian".into()])
        .unwrap();
    let mut p = plan("debian");
    p.image.suite = "trixie".into();
    let r = base_recipe(&p, &h).unwrap();
    let final_text = "Types: deb\nURIs: file:///srv/debian\nSuites: trixie trixie-updates\n\
                      Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n";
    assert_eq!(r.sources, final_text.replace("file://", "copy://"));
    assert!(r.options.ends_with(
        &[
            debian_sources_hooks(final_text).to_vec(),
            vec![CLEAN_IDENTITY_HOOK.to_string()]
        ]
        .concat()
    ));
}

#[test]
fn proxmox_without_ceph_has_no_ceph_repository() {
    let r = base_recipe(&plan("proxmox"), &host(Some(good_key(&PVE8)))).unwrap();
    assert!(!r.options.join(" ").contains("ceph"), "{:?}", r.options);
    assert!(!r.packages.iter().any(|p| p.starts_with("ceph")));
    assert_eq!(r.proxmox_repositories.len(), 1);
}

#[test]
fn proxmox_key_is_checked_against_the_published_checksum() {
    let err = base_recipe(&plan("proxmox"), &host(None)).unwrap_err();
    assert!(
        format!("{err}").contains(
            "needs Proxmox's archive key for bookworm (proxmox-release-bookworm.gpg, from \
             https://enterprise.proxmox.com/debian/proxmox-release-bookworm.gpg)"
        ),
        "{err}"
    );
    assert!(err.is::<InputError>());
    // The bookworm key does not open trixie.
    let err = base_recipe(
        &pve9("no-subscription"),
        &trixie_host(Some(good_key(&PVE8))),
    )
    .unwrap_err();
    assert!(err.is::<InputError>());
    assert!(
        format!("{err}").contains(
            "/keys/proxmox-release-bookworm.gpg is not Proxmox's trixie archive key \
             (proxmox-archive-keyring-trixie.gpg, as published): its SHA-256 is 1111"
        ),
        "{err}"
    );
    // A mirror's own key, vouched for by its SHA-256.
    let mut own = good_key(&PVE8);
    own.expected_sha256 = Some(own.sha256.clone());
    let r = base_recipe(&pve9("no-subscription"), &trixie_host(Some(own.clone()))).unwrap();
    assert_eq!(r.key_sha256.as_deref(), Some(own.sha256.as_str()));
    own.expected_sha256 = Some("2".repeat(64));
    let err = base_recipe(&pve9("no-subscription"), &trixie_host(Some(own))).unwrap_err();
    assert!(
        format!("{err}").contains("is not the key given with --proxmox-key-sha256"),
        "{err}"
    );
}

#[test]
fn proxmox_versions_and_suites_must_match() {
    let mut p = pve9("no-subscription");
    p.image.suite = "bookworm".into();
    let err = base_recipe(&p, &trixie_host(Some(good_key(&PVE9)))).unwrap_err();
    assert_eq!(
        format!("{err}"),
        "image.suite = \"bookworm\": Proxmox VE 9 is built on trixie"
    );
    let mut p = pve9("no-subscription");
    p.cluster.pve_major = 7;
    let err = base_recipe(&p, &trixie_host(Some(good_key(&PVE9)))).unwrap_err();
    assert!(
        format!("{err}").contains("builds Proxmox VE 9 (trixie) and 8 (bookworm)"),
        "{err}"
    );
}

#[test]
fn key_file_is_read_and_checked() {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("k.gpg");
    std::fs::write(&f, b"abc").unwrap();
    let k = Keyring::read(
        &f,
        Some(" BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD ".into()),
    )
    .unwrap();
    assert_eq!(
        k.sha256,
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    k.check(&PVE9).unwrap();
    let k = Keyring::read(&f, None).unwrap();
    assert!(k.check(&PVE9).is_err() && k.check(&PVE8).is_err());
    let err = Keyring::read(&d.path().join("missing.gpg"), None).unwrap_err();
    assert!(err.is::<InputError>());
}

#[test]
fn no_debian_archive_is_bad_input() {
    let mut h = host(None);
    h.apt_sources
        .retain(|s| s.suites.iter().all(|x| x.contains("backports")));
    let err = base_recipe(&plan("debian"), &h).unwrap_err();
    assert!(err.is::<InputError>());
    assert!(format!("{err}").contains("no Debian archive"), "{err}");
}

#[test]
fn cache_key_follows_every_input() {
    let base = base_recipe(&plan("debian"), &host(None)).unwrap();
    let key = base.cache_key();
    assert_eq!(key.len(), 64);
    assert_eq!(
        key,
        base_recipe(&plan("debian"), &host(None))
            .unwrap()
            .cache_key()
    );

    let mut p = plan("debian");
    p.image.extra_packages = vec!["htop".into()];
    assert_ne!(key, base_recipe(&p, &host(None)).unwrap().cache_key());

    let mut p = plan("debian");
    p.image.suite = "trixie".into();
    assert_ne!(key, base_recipe(&p, &host(None)).unwrap().cache_key());

    let mut h = host(None);
    h.source_date_epoch += 1;
    assert_ne!(key, base_recipe(&plan("debian"), &h).unwrap().cache_key());

    let mut h = host(None);
    h.apt_sources[0].uri = "http://other.example/debian".into();
    assert_ne!(key, base_recipe(&plan("debian"), &h).unwrap().cache_key());

    assert!(base.file_name().starts_with("base-") && base.file_name().ends_with(".tar"));
}

#[test]
fn shell_quoting_survives_quotes() {
    assert_eq!(shell_quote("it's"), r"'it'\''s'");
    let out = std::process::Command::new("sh")
        .args(["-c", &format!("printf '%s' {}", shell_quote("a'b\n$c"))])
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"a'b\n$c");
}
