//! Keys derived from the cluster's secrets seed: per-node SSH host keys, the bootstrap
//! client key that lets joiners reach the founder, and the corosync authkey.
//!
//! The seed is 32 random bytes created once next to the spec (mode 0600, never
//! overwritten). Every key is `sha256(seed ‖ 0 ‖ purpose ‖ 0 ‖ node)` used as an ed25519
//! seed (or expanded by a counter for the authkey), so the same seed gives the same
//! images. Private parts become [`NodeFile`]s with `secret: true`.

use crate::error::InputError;
use crate::render::files::{NodeFile, Placement};
use anyhow::{Context, Result};
use hcikit_firstboot::plan::{Node, Plan};
use sha2::{Digest, Sha256};
use ssh_key::private::Ed25519Keypair;
use ssh_key::{LineEnding, PrivateKey};
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Where the agent installs the corosync key; not `/etc/corosync/authkey`, whose
/// presence makes `pvecm add` refuse to join.
pub const COROSYNC_AUTHKEY: &str = hcikit_firstboot::layout::COROSYNC_AUTHKEY;
/// The bootstrap client key and the pinned host keys on every node: where the agent reads them.
pub use hcikit_firstboot::layout::{BOOTSTRAP_KEY, KNOWN_HOSTS};
pub const HOST_KEY: &str = "/etc/ssh/ssh_host_ed25519_key";
pub const AUTHORIZED_KEYS: &str = "/root/.ssh/authorized_keys";
/// corosync-keygen's default key length.
pub const AUTHKEY_LEN: usize = 256;

/// The 32-byte cluster secret. `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct Seed([u8; 32]);

impl std::fmt::Debug for Seed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Seed(..)")
    }
}

impl Seed {
    pub fn from_bytes(b: [u8; 32]) -> Seed {
        Seed(b)
    }

    /// `sha256(seed ‖ 0 ‖ purpose ‖ 0 ‖ node)`.
    pub fn derive(&self, purpose: &str, node: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.0);
        h.update([0]);
        h.update(purpose.as_bytes());
        h.update([0]);
        h.update(node.as_bytes());
        h.finalize().into()
    }

    /// A fingerprint of the seed (for the manifest), not the seed.
    pub fn id(&self) -> String {
        hex::encode(&self.derive("seed-id", "")[..8])
    }
}

/// Default seed path: `<spec dir>/<cluster>.secrets-seed`.
pub fn seed_path(spec_dir: &Path, cluster: &str) -> PathBuf {
    spec_dir.join(format!("{cluster}.secrets-seed"))
}

/// Reads the seed, or creates it (0600) if it does not exist. A seed readable by group or
/// others is refused (bad input): it would expose every node's keys.
pub fn load_or_create_seed(path: &Path) -> Result<Seed> {
    match std::fs::metadata(path) {
        Ok(meta) => {
            // A folder, FIFO or device is never a seed (a FIFO would block the read).
            if !meta.is_file() {
                return Err(InputError::new(format!(
                    "secrets seed {} is not a regular file; it must hold 64 hex digits",
                    path.display()
                ))
                .into());
            }
            if meta.permissions().mode() & 0o077 != 0 {
                return Err(InputError::new(format!(
                    "secrets seed {} is readable by other users (mode {:o}): run `chmod 600 {}`",
                    path.display(),
                    meta.permissions().mode() & 0o777,
                    path.display()
                ))
                .into());
            }
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading secrets seed {}", path.display()))?;
            let bytes = hex::decode(text.trim())
                .ok()
                .filter(|b| b.len() == 32)
                .ok_or_else(|| {
                    InputError::new(format!(
                        "secrets seed {} is not 64 hex digits",
                        path.display()
                    ))
                })?;
            Ok(Seed(bytes.try_into().expect("length checked")))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut b = [0u8; 32];
            std::fs::File::open("/dev/urandom")
                .and_then(|mut f| f.read_exact(&mut b))
                .context("reading /dev/urandom")?;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .with_context(|| format!("creating secrets seed {}", path.display()))?;
            writeln!(f, "{}", hex::encode(b))?;
            f.sync_all()?;
            tracing::info!(path = %path.display(), "created a new secrets seed");
            Ok(Seed(b))
        }
        Err(e) => Err(e).with_context(|| format!("reading secrets seed {}", path.display())),
    }
}

/// An ed25519 key pair in OpenSSH encodings.
pub struct SshKey {
    pub private_openssh: String,
    pub public_openssh: String,
}

/// Derives an ed25519 key. The OpenSSH private encoding is deterministic too: its
/// check integer comes from the key data, not from a random source.
pub fn ssh_key(seed: &Seed, purpose: &str, node: &str, comment: &str) -> Result<SshKey> {
    let pair = Ed25519Keypair::from_seed(&seed.derive(purpose, node));
    let mut key = PrivateKey::from(pair);
    key.set_comment(comment);
    Ok(SshKey {
        private_openssh: key.to_openssh(LineEnding::LF)?.to_string(),
        public_openssh: key.public_key().to_openssh()?,
    })
}

/// 256 bytes: `sha256(seed ‖ "corosync-authkey" ‖ i)` blocks.
pub fn corosync_authkey(seed: &Seed, cluster: &str) -> Vec<u8> {
    (0..AUTHKEY_LEN / 32)
        .flat_map(|i| seed.derive("corosync-authkey", &format!("{cluster}/{i}")))
        .collect()
}

fn file(path: &str, mode: u32, contents: impl Into<Vec<u8>>, secret: bool) -> NodeFile {
    NodeFile {
        path: path.to_string(),
        mode,
        uid: 0,
        gid: 0,
        contents: contents.into(),
        secret,
        placement: Placement::Install,
    }
}

/// Host-key line names: short name, FQDN and every address.
fn host_names(node: &Node) -> String {
    let mut names = vec![node.name.clone(), node.fqdn.clone()];
    for a in &node.addresses {
        if !names.contains(&a.ip) {
            names.push(a.ip.clone());
        }
    }
    names.join(",")
}

/// The key files of one node: its host key pair, `ssh_known_hosts` pinning every node,
/// `authorized_keys` (bootstrap + admin keys), the bootstrap key pair, corosync authkey.
pub fn node_key_files(plan: &Plan, node: &Node, seed: &Seed) -> Result<Vec<NodeFile>> {
    let cluster = &plan.cluster.name;
    let mut known = String::from("# hcikit: host keys of every node, pinned at build time\n");
    for n in &plan.nodes {
        let k = ssh_key(
            seed,
            "ssh-host-ed25519",
            &n.name,
            &format!("root@{}", n.name),
        )?;
        let public = k
            .public_openssh
            .split(' ')
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        known.push_str(&format!("{} {public}\n", host_names(n)));
    }
    let host = ssh_key(
        seed,
        "ssh-host-ed25519",
        &node.name,
        &format!("root@{}", node.name),
    )?;
    let boot = ssh_key(
        seed,
        "bootstrap",
        "",
        &format!("hcikit-bootstrap@{cluster}"),
    )?;
    let mut auth = format!("{}\n", boot.public_openssh);
    for k in &plan.cluster.admin_ssh_keys {
        auth.push_str(k.trim());
        auth.push('\n');
    }
    Ok(vec![
        file(HOST_KEY, 0o600, host.private_openssh, true),
        file(
            &format!("{HOST_KEY}.pub"),
            0o644,
            format!("{}\n", host.public_openssh),
            false,
        ),
        file(KNOWN_HOSTS, 0o644, known, false),
        file(AUTHORIZED_KEYS, 0o600, auth, false),
        file(BOOTSTRAP_KEY, 0o600, boot.private_openssh, true),
        file(
            &format!("{BOOTSTRAP_KEY}.pub"),
            0o644,
            format!("{}\n", boot.public_openssh),
            false,
        ),
        file(
            COROSYNC_AUTHKEY,
            0o400,
            corosync_authkey(seed, cluster),
            true,
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_that_is_not_a_file_is_bad_input_and_never_read() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("folder.secrets-seed");
        std::fs::create_dir(&folder).unwrap();
        std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o700)).unwrap();
        let fifo = dir.path().join("fifo.secrets-seed");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        // A FIFO would block a reader forever: the check must come before any open.
        for p in [folder, fifo] {
            let e = load_or_create_seed(&p).unwrap_err();
            assert_eq!(crate::error::exit_code(&e), 2, "{e:#}");
            assert!(format!("{e:#}").contains("not a regular file"), "{e:#}");
        }
    }

    #[test]
    fn derivation_is_stable_and_separated() {
        let s = Seed([7; 32]);
        assert_eq!(s.derive("a", "n1"), s.derive("a", "n1"));
        assert_ne!(s.derive("a", "n1"), s.derive("a", "n2"));
        assert_ne!(s.derive("a", "n1"), s.derive("an", "1"));
        assert_ne!(s.derive("a", "n1"), Seed([8; 32]).derive("a", "n1"));
        assert_eq!(corosync_authkey(&s, "lab").len(), AUTHKEY_LEN);
        assert!(!format!("{s:?}").contains('7'));
    }

    #[test]
    fn ssh_keys_are_deterministic_and_parse_back() {
        let s = Seed([1; 32]);
        let a = ssh_key(&s, "ssh-host-ed25519", "pve1", "root@pve1").unwrap();
        let b = ssh_key(&s, "ssh-host-ed25519", "pve1", "root@pve1").unwrap();
        assert_eq!(a.private_openssh, b.private_openssh);
        assert!(a.public_openssh.starts_with("ssh-ed25519 AAAA"));
        let parsed = PrivateKey::from_openssh(&a.private_openssh).unwrap();
        assert_eq!(parsed.public_key().to_openssh().unwrap(), a.public_openssh);
        let other = ssh_key(&s, "ssh-host-ed25519", "pve2", "root@pve2").unwrap();
        assert_ne!(a.public_openssh, other.public_openssh);
    }

    #[test]
    fn seed_is_created_private_and_reused_and_open_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("lab.secrets-seed");
        let a = load_or_create_seed(&p).unwrap();
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(load_or_create_seed(&p).unwrap(), a);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = load_or_create_seed(&p).unwrap_err();
        assert_eq!(crate::error::exit_code(&err), 2);
        assert!(format!("{err}").contains("chmod 600"), "{err}");
    }
}
