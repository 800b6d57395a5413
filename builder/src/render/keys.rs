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
pub use hcikit_firstboot::layout::{PINNED_KNOWN_HOSTS, SSH_HOST_RSA_KEY, SSH_HOST_RSA_PUB};
/// Size of the RSA host keys (OpenSSH's default).
pub const RSA_BITS: usize = 3072;
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

/// Derives a node's RSA host key: the prime search of the `rsa` crate driven by a
/// ChaCha20 stream seeded with `derive("ssh-host-rsa", node)`, so the same seed gives the
/// same key. Proxmox needs it: `pvecm create` and the end of every join read
/// `/etc/ssh/ssh_host_rsa_key.pub` and die unless it holds an `ssh-rsa` key (pve-cluster
/// `src/PVE/Cluster/Setup.pm` `ssh_merge_known_hosts`, `ssh_create_node_known_hosts`).
/// Generation takes about a second, so keys are memoised per derived seed.
pub fn rsa_host_key(seed: &Seed, node: &str, comment: &str) -> Result<SshKey> {
    use rand_core::SeedableRng;
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    /// (derived seed, comment) → (private, public) OpenSSH encodings.
    type Memo = HashMap<([u8; 32], String), (String, String)>;
    static MEMO: OnceLock<Mutex<Memo>> = OnceLock::new();
    let derived = seed.derive("ssh-host-rsa", node);
    let memo = MEMO.get_or_init(Default::default);
    let key = (derived, comment.to_string());
    if let Some((private_openssh, public_openssh)) =
        memo.lock().expect("rsa memo").get(&key).cloned()
    {
        return Ok(SshKey {
            private_openssh,
            public_openssh,
        });
    }
    let mut rng = rand_chacha::ChaCha20Rng::from_seed(derived);
    let pair = ssh_key::private::RsaKeypair::random(&mut rng, RSA_BITS)
        .context("generating an RSA host key")?;
    let mut k = PrivateKey::new(ssh_key::private::KeypairData::Rsa(pair), comment)?;
    k.set_comment(comment);
    let out = (
        k.to_openssh(LineEnding::LF)?.to_string(),
        k.public_key().to_openssh()?,
    );
    memo.lock().expect("rsa memo").insert(key, out.clone());
    Ok(SshKey {
        private_openssh: out.0,
        public_openssh: out.1,
    })
}

/// `type base64` of an OpenSSH public key line (no comment).
fn key_body(public_openssh: &str) -> String {
    public_openssh
        .split(' ')
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
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
    // Both key types of every node. The ssh-rsa lines matter beyond the first boot:
    // `pvecm create` replaces /etc/ssh/ssh_known_hosts with a link to the cluster-wide
    // /etc/pve/priv/known_hosts and copies only the ssh-rsa lines of the old file into it
    // (pve-cluster Setup.pm `ssh_merge_known_hosts`), so these pins are what stays.
    let mut known = String::from("# hcikit: host keys of every node, pinned at build time\n");
    for n in &plan.nodes {
        let comment = format!("root@{}", n.name);
        let ed = ssh_key(seed, "ssh-host-ed25519", &n.name, &comment)?;
        known.push_str(&format!(
            "{} {}\n",
            host_names(n),
            key_body(&ed.public_openssh)
        ));
        let rsa = rsa_host_key(seed, &n.name, &comment)?;
        known.push_str(&format!(
            "{} {}\n",
            host_names(n),
            key_body(&rsa.public_openssh)
        ));
    }
    let rsa = rsa_host_key(seed, &node.name, &format!("root@{}", node.name))?;
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
        file(SSH_HOST_RSA_KEY, 0o600, rsa.private_openssh, true),
        file(
            SSH_HOST_RSA_PUB,
            0o644,
            format!("{}\n", rsa.public_openssh),
            false,
        ),
        file(KNOWN_HOSTS, 0o644, known.clone(), false),
        file(PINNED_KNOWN_HOSTS, 0o644, known, false),
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

    /// Item 1: every node ships an RSA host key derived from the seed, and every node's
    /// ssh-rsa key is pinned (the only lines `pvecm create` keeps).
    #[test]
    fn item1_every_node_ships_a_pinned_rsa_host_key() {
        let plan = hcikit_firstboot::example::lab_plan();
        let seed = Seed([3; 32]);
        let node = &plan.nodes[1];
        let files = node_key_files(&plan, node, &seed).unwrap();
        let get = |p: &str| {
            files
                .iter()
                .find(|f| f.path == p)
                .unwrap_or_else(|| panic!("{p} is not shipped"))
        };
        let public = String::from_utf8(get(SSH_HOST_RSA_PUB).contents.clone()).unwrap();
        assert!(public.starts_with("ssh-rsa AAAA"), "{public}");
        let private = get(SSH_HOST_RSA_KEY);
        assert!(private.secret && private.mode == 0o600);
        let parsed =
            PrivateKey::from_openssh(String::from_utf8_lossy(&private.contents).as_ref()).unwrap();
        assert_eq!(
            format!("{}\n", parsed.public_key().to_openssh().unwrap()),
            public
        );
        let ssh_key::public::KeyData::Rsa(k) = parsed.public_key().key_data() else {
            panic!("not RSA")
        };
        assert_eq!(k.n.as_positive_bytes().unwrap().len() * 8, RSA_BITS);
        // Deterministic: the same seed gives the same key.
        assert_eq!(
            rsa_host_key(&seed, &node.name, "root@pve2")
                .unwrap()
                .public_openssh,
            public.trim_end()
        );
        for path in [KNOWN_HOSTS, PINNED_KNOWN_HOSTS] {
            let known = String::from_utf8(get(path).contents.clone()).unwrap();
            for n in &plan.nodes {
                let rsa = rsa_host_key(&seed, &n.name, &format!("root@{}", n.name)).unwrap();
                let body = key_body(&rsa.public_openssh);
                let line = known
                    .lines()
                    .find(|l| l.ends_with(&body))
                    .unwrap_or_else(|| panic!("{path}: no ssh-rsa pin for {}", n.name));
                let names: Vec<&str> = line.split(' ').next().unwrap().split(',').collect();
                assert!(names.contains(&n.name.as_str()) && names.contains(&n.primary_ip.as_str()));
            }
        }
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
