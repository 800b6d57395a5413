//! A local signed apt repository of stand-in packages under Proxmox's names, so the
//! `proxmox` base recipe runs end to end through mmdebstrap without Proxmox's servers.
//!
//! Built from scratch in a temporary folder on every run: a throwaway OpenPGP key (its own
//! `GNUPGHOME`), packages made with `dpkg-deb`, indices with `apt-ftparchive`, `InRelease`
//! and `Release.gpg` signed with the key. Two repositories, laid out like Proxmox's
//! (`<root>/pve` with `dists/<suite>/pve-no-subscription`, `<root>/ceph-<release>` with
//! `dists/<suite>/no-subscription`), served as `file://`. Every stand-in says in its
//! description that it is a test fixture; none of it leaves the temporary folder.

#![allow(dead_code)]

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// One stand-in package.
pub struct StandIn {
    pub name: &'static str,
    pub version: &'static str,
    pub depends: &'static str,
    /// Files it ships besides its marker: (path, content, is a conffile).
    pub files: &'static [(&'static str, &'static str, bool)],
}

/// pve-manager's enterprise repository file on PVE 9 (pve-manager `master`
/// `configs/pve-sources.sources`), shipped by the stand-in so the recipe's removal of it
/// is tested against a real dpkg conffile.
pub const PVE9_ENTERPRISE_SOURCES: &str = "Types: deb
URIs: https://enterprise.proxmox.com/debian/pve
Suites: trixie
Components: pve-enterprise
Signed-By: /usr/share/keyrings/proxmox-archive-keyring.gpg
";

/// The PVE repository's stand-ins, with Proxmox's dependency structure where it matters
/// to the recipe: `proxmox-ve` pulls the kernel meta package and pve-manager;
/// `proxmox-default-kernel` pulls a versioned kernel package. The stand-in kernel package
/// depends on Debian's kernel, so the base still boots.
pub const PVE_STAND_INS: &[StandIn] = &[
    StandIn {
        name: "proxmox-ve",
        version: "9.1.0",
        depends: "proxmox-default-kernel, pve-manager (>= 9.0), pve-cluster",
        files: &[],
    },
    StandIn {
        name: "proxmox-default-kernel",
        version: "2.0.0",
        depends: "proxmox-kernel-6.14",
        files: &[],
    },
    StandIn {
        name: "proxmox-kernel-6.14",
        version: "6.14.11-1",
        depends: "linux-image-amd64",
        files: &[],
    },
    StandIn {
        name: "pve-manager",
        version: "9.2.11",
        depends: "pve-cluster, gdisk, ifupdown2",
        files: &[(
            "etc/apt/sources.list.d/pve-enterprise.sources",
            PVE9_ENTERPRISE_SOURCES,
            true,
        )],
    },
    StandIn {
        name: "pve-cluster",
        version: "9.1.6",
        depends: "corosync",
        files: &[],
    },
];

/// The Ceph repository's stand-ins: the packages `pveceph install` asks for and what
/// `ceph` depends on, at a version above Debian's own Ceph (as Proxmox's are).
pub const CEPH_STAND_INS: &[StandIn] = &[
    StandIn {
        name: "ceph",
        version: "19.2.3-pve1",
        depends: "ceph-mgr (= 19.2.3-pve1), ceph-mon (= 19.2.3-pve1), ceph-osd (= 19.2.3-pve1)",
        files: &[],
    },
    StandIn {
        name: "ceph-common",
        version: "19.2.3-pve1",
        depends: "",
        files: &[],
    },
    StandIn {
        name: "ceph-fuse",
        version: "19.2.3-pve1",
        depends: "ceph-common (= 19.2.3-pve1)",
        files: &[],
    },
    StandIn {
        name: "ceph-mds",
        version: "19.2.3-pve1",
        depends: "ceph-common (= 19.2.3-pve1)",
        files: &[],
    },
    StandIn {
        name: "ceph-volume",
        version: "19.2.3-pve1",
        depends: "ceph-osd (= 19.2.3-pve1)",
        files: &[],
    },
    StandIn {
        name: "ceph-mgr",
        version: "19.2.3-pve1",
        depends: "ceph-common (= 19.2.3-pve1)",
        files: &[],
    },
    StandIn {
        name: "ceph-mon",
        version: "19.2.3-pve1",
        depends: "ceph-common (= 19.2.3-pve1)",
        files: &[],
    },
    StandIn {
        name: "ceph-osd",
        version: "19.2.3-pve1",
        depends: "ceph-common (= 19.2.3-pve1)",
        files: &[],
    },
];

/// Where a stand-in's marker file lands in the base.
pub fn marker(name: &str) -> String {
    format!("usr/share/hcikit-test-fixture/{name}")
}

/// A throwaway signing key in its own `GNUPGHOME`.
pub struct TestKey {
    pub home: PathBuf,
    pub fingerprint: String,
    /// The public key, binary OpenPGP (what `Signed-By` reads).
    pub public: PathBuf,
}

fn run(cmd: &mut Command, what: &str) -> Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("running {what} ({cmd:?})"))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn gpg(home: &Path) -> Command {
    let mut c = Command::new("gpg");
    c.env("GNUPGHOME", home)
        .args([
            "--batch",
            "--quiet",
            "--no-tty",
            "--pinentry-mode",
            "loopback",
        ])
        .args(["--passphrase", ""]);
    c
}

impl TestKey {
    /// Generates an ed25519 signing key named `uid` under `dir`.
    pub fn generate(dir: &Path, uid: &str) -> Result<TestKey> {
        let home = dir.join("gnupg");
        std::fs::create_dir_all(&home)?;
        std::fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
        run(
            gpg(&home).args(["--quick-gen-key", uid, "ed25519", "sign", "never"]),
            "gpg --quick-gen-key (package gnupg)",
        )?;
        let colons = run(
            gpg(&home).args(["--with-colons", "--list-keys", uid]),
            "gpg --list-keys",
        )?;
        let fingerprint = colons
            .lines()
            .find_map(|l| l.strip_prefix("fpr:"))
            .and_then(|l| l.split(':').find(|f| f.len() == 40))
            .context("no fingerprint in gpg --list-keys")?
            .to_string();
        let public = dir.join("key.gpg");
        let bytes = gpg(&home)
            .args(["--export", &fingerprint])
            .output()
            .context("gpg --export")?
            .stdout;
        std::fs::write(&public, bytes)?;
        Ok(TestKey {
            home,
            fingerprint,
            public,
        })
    }

    fn sign(&self, release: &Path) -> Result<()> {
        let dir = release.parent().unwrap();
        run(
            gpg(&self.home)
                .args([
                    "--yes",
                    "--local-user",
                    &self.fingerprint,
                    "--clearsign",
                    "-o",
                ])
                .arg(dir.join("InRelease"))
                .arg(release),
            "gpg --clearsign",
        )?;
        run(
            gpg(&self.home)
                .args([
                    "--yes",
                    "--local-user",
                    &self.fingerprint,
                    "--armor",
                    "--detach-sign",
                    "-o",
                ])
                .arg(dir.join("Release.gpg"))
                .arg(release),
            "gpg --detach-sign",
        )?;
        Ok(())
    }
}

/// Builds one `.deb` of a stand-in into `pool`.
fn build_deb(s: &StandIn, work: &Path, pool: &Path) -> Result<PathBuf> {
    let root = work.join(format!("pkg-{}", s.name));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("DEBIAN"))?;
    let mut control = format!(
        "Package: {}\nVersion: {}\nArchitecture: all\nMaintainer: hcikit tests <tests@hcikit.invalid>\n\
         Section: admin\nPriority: optional\n",
        s.name, s.version
    );
    if !s.depends.is_empty() {
        control.push_str(&format!("Depends: {}\n", s.depends));
    }
    control.push_str(&format!(
        "Description: TEST FIXTURE standing in for Proxmox's {} package\n \
         Built by hcikit's apt repository test in a temporary folder; it contains no\n \
         Proxmox software and is never shipped.\n",
        s.name
    ));
    std::fs::write(root.join("DEBIAN/control"), control)?;
    let mut conffiles = String::new();
    let mut files: Vec<(String, String)> = vec![(
        marker(s.name),
        format!("test fixture standing in for {} {}\n", s.name, s.version),
    )];
    for (path, content, conf) in s.files {
        files.push((path.to_string(), content.to_string()));
        if *conf {
            conffiles.push_str(&format!("/{path}\n"));
        }
    }
    for (path, content) in &files {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().unwrap())?;
        std::fs::write(&p, content)?;
    }
    if !conffiles.is_empty() {
        std::fs::write(root.join("DEBIAN/conffiles"), conffiles)?;
    }
    std::fs::create_dir_all(pool)?;
    let deb = pool.join(format!("{}_{}_all.deb", s.name, s.version));
    run(
        Command::new("dpkg-deb")
            .args(["--root-owner-group", "-Zxz", "--build"])
            .arg(&root)
            .arg(&deb),
        "dpkg-deb --build (package dpkg)",
    )?;
    Ok(deb)
}

/// Writes a signed repository at `root` with `packages` in `suite`/`component`.
pub fn build_repository(
    root: &Path,
    work: &Path,
    suite: &str,
    component: &str,
    packages: &[StandIn],
    key: &TestKey,
) -> Result<()> {
    let pool = root.join("pool").join(component);
    for p in packages {
        build_deb(p, work, &pool)?;
    }
    let bin = root.join(format!("dists/{suite}/{component}/binary-amd64"));
    std::fs::create_dir_all(&bin)?;
    let index = run(
        Command::new("apt-ftparchive")
            .current_dir(root)
            .args(["packages", &format!("pool/{component}")]),
        "apt-ftparchive packages (package apt-utils)",
    )?;
    std::fs::write(bin.join("Packages"), index)?;
    let release = run(
        Command::new("apt-ftparchive").current_dir(root).args([
            "-o",
            &format!("APT::FTPArchive::Release::Suite={suite}"),
            "-o",
            &format!("APT::FTPArchive::Release::Codename={suite}"),
            "-o",
            &format!("APT::FTPArchive::Release::Components={component}"),
            "-o",
            "APT::FTPArchive::Release::Architectures=amd64",
            "-o",
            "APT::FTPArchive::Release::Origin=hcikit test fixture",
            "release",
            &format!("dists/{suite}"),
        ]),
        "apt-ftparchive release",
    )?;
    let release_file = root.join(format!("dists/{suite}/Release"));
    std::fs::write(&release_file, release)?;
    key.sign(&release_file)
}
