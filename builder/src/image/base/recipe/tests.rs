//! Golden tests of the base recipe: the exact mmdebstrap argv and sources.

use super::*;
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
    }
}

fn good_key() -> Keyring {
    Keyring {
        path: "/keys/proxmox-release-bookworm.gpg".into(),
        sha512: PROXMOX_BOOKWORM_KEY_SHA512.into(),
    }
}

/// The hooks shared by both flavours, as mmdebstrap receives them.
const INITRAMFS_CONF_HOOK: &str = "--essential-hook=mkdir -p \"$1/etc/initramfs-tools/conf.d\" && printf '%s' '# hcikit: a fixed driver list (see modules.d/hcikit).\nMODULES=list\nCOMPRESS=zstd\n' > \"$1/etc/initramfs-tools/conf.d/hcikit\"";
const INITRAMFS_MODULES_HOOK: &str = "--essential-hook=mkdir -p \"$1/usr/share/initramfs-tools/modules.d\" && printf '%s' 'virtio_pci\nvirtio_blk\nvirtio_scsi\nsd_mod\nahci\nnvme\nxhci_pci\nehci_pci\nusb_storage\nuas\nmmc_block\nsdhci_pci\nsdhci_acpi\nhid_generic\nusbhid\next4\ncrc32c_generic\ncrc32c_intel\noverlay\n' > \"$1/usr/share/initramfs-tools/modules.d/hcikit\"";
const NETWORKING_HOOK: &str = "--essential-hook=mkdir -p \"$1/etc/systemd/system/networking.service.d\" && printf '%s' '# hcikit: run as a systemd network manager: pull in network.target and order before\n# it, after network-pre.target (where hcikit-apply hooks in).\n[Unit]\nWants=network.target\nAfter=network-pre.target\nBefore=network.target\n' > \"$1/etc/systemd/system/networking.service.d/hcikit.conf\"";
const DPKG_FILTERS: [&str; 7] = [
    "--dpkgopt=path-exclude=/usr/share/man/*",
    "--dpkgopt=path-exclude=/usr/share/info/*",
    "--dpkgopt=path-exclude=/usr/share/locale/*",
    "--dpkgopt=path-include=/usr/share/locale/locale.alias",
    "--dpkgopt=path-exclude=/usr/share/doc/*",
    "--dpkgopt=path-include=/usr/share/doc/*/copyright",
    "--dpkgopt=path-exclude=/usr/share/lintian/*",
];
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
         util-linux,fdisk,gdisk,e2fsprogs,dosfstools,zstd,ca-certificates,htop"
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

#[test]
fn proxmox_recipe_is_pinned() {
    let p = with_ceph(plan("proxmox"), "no-subscription");
    let r = base_recipe(&p, &host(Some(good_key()))).unwrap();
    assert_eq!(r.flavour, Flavour::Proxmox);
    assert_eq!(
        r.sources,
        DEBIAN_SOURCES.to_string()
            + "
Types: deb
URIs: http://download.proxmox.com/debian/pve
Suites: bookworm
Components: pve-no-subscription

Types: deb
URIs: http://download.proxmox.com/debian/ceph-reef
Suites: bookworm
Components: no-subscription
"
    );
    let mut expected: Vec<String> = vec![
        "mmdebstrap".into(),
        "--variant=apt".into(),
        "--format=tar".into(),
        r#"--setup-hook=mkdir -p "$1/etc/apt/trusted.gpg.d""#.into(),
        "--setup-hook=copy-in '/keys/proxmox-release-bookworm.gpg' /etc/apt/trusted.gpg.d/".into(),
        "--essential-hook=printf '%s\\n' 'postfix postfix/main_mailer_type select Local only' \
         'postfix postfix/mailname string localhost' | chroot \"$1\" debconf-set-selections"
            .into(),
    ];
    expected.extend(DPKG_FILTERS.iter().map(|s| s.to_string()));
    expected.push(
        "--include=proxmox-default-kernel,proxmox-ve,postfix,open-iscsi,chrony,systemd-boot-efi,\
         ifupdown2,openssh-server,dosfstools,zstd,ceph,ceph-common,ceph-mds,ceph-fuse,gdisk"
            .into(),
    );
    expected.push(INITRAMFS_CONF_HOOK.into());
    expected.push(INITRAMFS_MODULES_HOOK.into());
    expected.push(NETWORKING_HOOK.into());
    expected.push(
        r#"--customize-hook=chroot "$1" sh -c 'if dpkg-query -W os-prober >/dev/null 2>&1; then apt-get -y purge os-prober; fi'"#
            .into(),
    );
    expected
        .push(r#"--customize-hook=rm -f "$1/etc/apt/sources.list.d/pve-enterprise.list""#.into());
    expected.push(CLEAN_IDENTITY_HOOK.into());
    expected.extend(["bookworm".into(), "/t.tar".into(), "/s".into()]);
    assert_eq!(r.argv(Path::new("/t.tar"), Path::new("/s")), expected);
}

#[test]
fn proxmox_enterprise_keeps_the_enterprise_list() {
    let p = with_ceph(plan("proxmox"), "enterprise");
    let r = base_recipe(&p, &host(Some(good_key()))).unwrap();
    assert!(r.sources.ends_with(
        "
Types: deb
URIs: https://enterprise.proxmox.com/debian/pve
Suites: bookworm
Components: pve-enterprise

Types: deb
URIs: https://enterprise.proxmox.com/debian/ceph-reef
Suites: bookworm
Components: enterprise
"
    ));
    assert!(!r.options.iter().any(|o| o.contains("pve-enterprise.list")));
}

#[test]
fn proxmox_without_ceph_has_no_ceph_repository() {
    let r = base_recipe(&plan("proxmox"), &host(Some(good_key()))).unwrap();
    assert!(!r.sources.contains("ceph"), "{}", r.sources);
    assert!(!r.packages.iter().any(|p| p.starts_with("ceph")));
}

#[test]
fn proxmox_needs_the_key_and_bookworm() {
    let err = base_recipe(&plan("proxmox"), &host(None)).unwrap_err();
    assert!(
        format!("{err}").contains("needs Proxmox's release key"),
        "{err}"
    );
    assert!(err.is::<InputError>());
    let mut p = plan("proxmox");
    p.image.suite = "trixie".into();
    let err = base_recipe(&p, &host(Some(good_key()))).unwrap_err();
    assert!(
        format!("{err}").contains("Proxmox VE 8 on bookworm only"),
        "{err}"
    );
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
