//! `hcikit-firstboot apply`: early in the first boot, before the network, find this
//! node's folder on the ESP, install its rendered files and secrets, set the host name,
//! record the Plan, and remove the secrets from the ESP.
//!
//! Crash-safe order: files, secrets, `/etc/hcikit/{plan.json,node}`, then the secrets
//! archive is deleted from the ESP. A re-run while `secrets.tar` is still there installs
//! everything again (same bytes); once it is gone and the node is recorded, a re-run is a
//! successful no-op.

use crate::error::BadInput;
use crate::layout::{
    esp_node_dir, ESP_MOUNT, ESP_NODE, ESP_PLAN, FILES_TAR, INSTALLED_NODE, INSTALLED_PLAN,
    LOADER_PARTUUID_VAR, NODE_CMDLINE_ARG, PROC_CMDLINE, SECRETS_TAR, SYS_CLASS_NET,
};
use crate::plan::Plan;
use anyhow::{bail, ensure, Context, Result};
use std::path::{Component, Path, PathBuf};

/// GPT type of an EFI System Partition.
const ESP_TYPE: &str = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b";

#[derive(Debug, Clone)]
pub struct Options {
    /// The ESP folder (holding `hcikit/`); found automatically when `None`.
    pub esp: Option<PathBuf>,
    /// Install prefix (`/` on a node; a temp folder in tests).
    pub root: PathBuf,
}

/// What `apply` did; shown to the user as one line (see its `Display`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Installed {
        node: String,
        files: usize,
        secrets: usize,
    },
    /// Already applied earlier (secrets gone from the ESP): nothing to do.
    AlreadyApplied { node: String },
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Installed {
                node,
                files,
                secrets,
            } => write!(
                f,
                "applied node {node}: {files} files and {secrets} secret files installed; secrets removed from the ESP"
            ),
            Outcome::AlreadyApplied { node } => {
                write!(f, "node {node} was applied before; nothing to do")
            }
        }
    }
}

/// Runs `apply`.
pub fn apply(opts: &Options) -> Result<Outcome> {
    let mut mount = None;
    let esp = match &opts.esp {
        Some(e) => e.clone(),
        None => match find_mounted_esp(&opts.root) {
            Some(e) => e,
            None => {
                let m = EspMount::mount(&opts.root)?;
                let p = m.path.clone();
                mount = Some(m);
                p
            }
        },
    };
    let result = apply_from(&esp, &opts.root);
    if let Some(m) = mount {
        m.close()?;
    }
    result
}

fn apply_from(esp: &Path, root: &Path) -> Result<Outcome> {
    let plan_path = esp.join(ESP_PLAN);
    let plan = Plan::load(&plan_path)?;
    let node = pick_node(esp, root, &plan)?;
    check_node_name(&node, "the plan")?;
    let dir = esp.join(esp_node_dir(&node));
    let secrets = dir.join(SECRETS_TAR);
    let installed = std::fs::read_to_string(root.join(INSTALLED_NODE))
        .ok()
        .map(|s| s.trim().to_string());
    if !secrets.exists() {
        if installed.as_deref() == Some(node.as_str()) {
            tracing::info!(node = %node, "already applied; nothing to do");
            return Ok(Outcome::AlreadyApplied { node });
        }
        bail!(
            "{} is missing and node {node} was never applied here: the image is incomplete or was applied elsewhere",
            secrets.display()
        );
    }
    // Both tars are read and checked whole before anything is installed, so a refused
    // entry leaves the root as it was.
    let files = read_tar(&dir.join(FILES_TAR))?;
    let secret_files = read_tar(&secrets)?;
    check_parents(root, &files)?;
    check_parents(root, &secret_files)?;
    let root_hash = match &plan.cluster.root_password {
        Some(secret) => Some(root_password_hash(root, &secret_files, secret)?),
        None => None,
    };
    install_entries(root, &files).context("installing files.tar")?;
    install_entries(root, &secret_files).context("installing secrets.tar")?;
    let (files, n_secrets) = (files.len(), secret_files.len());
    if let Some(hash) = &root_hash {
        set_root_password(root, hash)?;
    }
    let hostname = root.join("etc/hostname");
    if !hostname.exists() {
        crate::host::write_atomic(&hostname, format!("{node}\n").as_bytes(), 0o644)?;
    }
    if root == Path::new("/") {
        nix::unistd::sethostname(&node).context("setting the host name")?;
    }
    let mut pretty = serde_json::to_vec_pretty(&plan)?;
    pretty.push(b'\n');
    crate::host::write_atomic(&root.join(INSTALLED_PLAN), &pretty, 0o644)?;
    crate::host::write_atomic(
        &root.join(INSTALLED_NODE),
        format!("{node}\n").as_bytes(),
        0o644,
    )?;
    std::fs::remove_file(&secrets).with_context(|| format!("removing {}", secrets.display()))?;
    std::fs::File::open(&dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing {}", dir.display()))?;
    tracing::info!(node = %node, files, secrets = n_secrets, "applied; secrets removed from the ESP");
    Ok(Outcome::Installed {
        node,
        files,
        secrets: n_secrets,
    })
}

/// The root password hash `secret` names, from the checked `secrets.tar` entries, and
/// whether `<root>/etc/shadow` can take it: all checked before anything is installed.
fn root_password_hash(
    root: &Path,
    secrets: &[Entry],
    secret: &crate::plan::SecretRef,
) -> Result<String> {
    let want = secret.node_path();
    let want = Path::new(want.trim_start_matches('/'));
    let Some(e) = secrets.iter().find(|e| e.path == want) else {
        return bad(format!(
            "the plan sets a root password, but secrets.tar holds no {}",
            want.display()
        ));
    };
    let hash = String::from_utf8_lossy(&e.data).trim().to_string();
    // Only a crypt hash is accepted, and nothing that could end the shadow field or line.
    if !hash.starts_with('$') || hash.contains([':', '\n', '\r']) {
        return bad(format!(
            "secrets.tar's {} does not hold a crypt hash ($id$salt$hash)",
            want.display()
        ));
    }
    let shadow = root.join("etc/shadow");
    let meta = std::fs::symlink_metadata(&shadow)
        .with_context(|| format!("cannot set root's password: reading {}", shadow.display()))?;
    if !meta.is_file() {
        return bad(format!("{} is not a regular file", shadow.display()));
    }
    let text = std::fs::read_to_string(&shadow)
        .with_context(|| format!("reading {}", shadow.display()))?;
    if shadow_with_root_hash(&text, &hash, 0).is_none() {
        bail!("{} has no entry for root", shadow.display());
    }
    Ok(hash)
}

/// Sets root's password in `<root>/etc/shadow` to the spec's crypt hash: only the hash
/// field of root's entry changes, the file keeps its owner and mode and is replaced
/// atomically. hcikit never knows the clear-text password. A "last change" of 0 (which
/// forces a change at the first login) becomes today.
fn set_root_password(root: &Path, hash: &str) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let shadow = root.join("etc/shadow");
    let meta = std::fs::symlink_metadata(&shadow)
        .with_context(|| format!("reading {}", shadow.display()))?;
    let text = std::fs::read_to_string(&shadow)
        .with_context(|| format!("reading {}", shadow.display()))?;
    let today = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400);
    let updated = shadow_with_root_hash(&text, hash, today)
        .with_context(|| format!("{} has no entry for root", shadow.display()))?;
    let entry = Entry {
        path: PathBuf::from("etc/shadow"),
        data: updated.into_bytes(),
        mode: meta.mode() & 0o777,
        uid: meta.uid(),
        gid: meta.gid(),
    };
    install_entries(root, std::slice::from_ref(&entry)).context("setting root's password")?;
    tracing::info!("root password set from the spec's hash");
    Ok(())
}

/// `shadow` with root's hash field replaced; `None` when root has no entry.
pub fn shadow_with_root_hash(shadow: &str, hash: &str, today: u64) -> Option<String> {
    let mut found = false;
    let mut out = String::with_capacity(shadow.len() + hash.len());
    for line in shadow.split_inclusive('\n') {
        let body = line.trim_end_matches('\n');
        let mut fields: Vec<String> = body.split(':').map(str::to_string).collect();
        if !found && fields.len() >= 3 && fields[0] == "root" {
            found = true;
            fields[1] = hash.to_string();
            if fields[2] == "0" {
                fields[2] = today.to_string();
            }
            out.push_str(&fields.join(":"));
            out.push_str(&line[body.len()..]);
        } else {
            out.push_str(line);
        }
    }
    found.then_some(out)
}

/// This node's name: `hcikit/node` on the ESP, else `hcikit.node=` on the kernel
/// command line, else the Plan node whose MAC is on a local NIC.
pub fn pick_node(esp: &Path, root: &Path, plan: &Plan) -> Result<String> {
    if let Ok(s) = std::fs::read_to_string(esp.join(ESP_NODE)) {
        let n = s.trim().to_string();
        check_node_name(&n, ESP_NODE)?;
        plan.expect_node(&n)
            .map_err(|e| BadInput(format!("{ESP_NODE} on the ESP: {e}")))?;
        return Ok(n);
    }
    if let Ok(cmdline) = std::fs::read_to_string(root.join(PROC_CMDLINE)) {
        if let Some(n) = node_from_cmdline(&cmdline) {
            check_node_name(&n, &format!("kernel argument {NODE_CMDLINE_ARG}="))?;
            ensure!(
                plan.node(&n).is_some(),
                "kernel argument {NODE_CMDLINE_ARG}={n} is not a node of the plan"
            );
            return Ok(n);
        }
    }
    let macs = local_macs(root);
    let hits: Vec<&str> = plan
        .nodes
        .iter()
        .filter(|n| {
            n.mac
                .as_ref()
                .is_some_and(|m| macs.contains(&m.to_ascii_lowercase()))
        })
        .map(|n| n.name.as_str())
        .collect();
    match hits.as_slice() {
        [one] => Ok(one.to_string()),
        [] => bail!(
            "cannot tell which node this is: no {ESP_NODE}, no {NODE_CMDLINE_ARG}= kernel argument, and none of the local MACs ({}) is a node's mac in the plan",
            macs.join(", ")
        ),
        many => bail!("local MACs match several nodes: {}", many.join(", ")),
    }
}

pub fn node_from_cmdline(cmdline: &str) -> Option<String> {
    cmdline
        .split_whitespace()
        .find_map(|a| a.strip_prefix(&format!("{NODE_CMDLINE_ARG}=")))
        .map(str::to_string)
}

fn local_macs(root: &Path) -> Vec<String> {
    let mut v = Vec::new();
    if let Ok(rd) = std::fs::read_dir(root.join(SYS_CLASS_NET)) {
        for e in rd.flatten() {
            if let Ok(m) = std::fs::read_to_string(e.path().join("address")) {
                let m = m.trim().to_ascii_lowercase();
                if !m.is_empty() && m != "00:00:00:00:00:00" {
                    v.push(m);
                }
            }
        }
    }
    v.sort();
    v
}

fn find_mounted_esp(root: &Path) -> Option<PathBuf> {
    ["efi", "boot/efi", "boot"]
        .iter()
        .map(|p| root.join(p))
        .find(|p| p.join(crate::layout::ESP_DIR).is_dir())
}

/// The PARTUUID in systemd-boot's EFI variable: 4 attribute bytes, then UTF-16LE text.
pub fn parse_loader_partuuid(raw: &[u8]) -> Option<String> {
    let body = raw.get(4..)?;
    let units: Vec<u16> = body
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .take_while(|u| *u != 0)
        .collect();
    let s = String::from_utf16(&units).ok()?;
    let s = s.trim().to_ascii_lowercase();
    (!s.is_empty()).then_some(s)
}

/// An ESP mounted read-write at a private mount point; unmounted on `close` (or drop).
struct EspMount {
    path: PathBuf,
    mounted: bool,
}

impl EspMount {
    fn mount(root: &Path) -> Result<EspMount> {
        let dev = match std::fs::read(root.join(LOADER_PARTUUID_VAR))
            .ok()
            .and_then(|raw| parse_loader_partuuid(&raw))
        {
            Some(uuid) => format!("/dev/disk/by-partuuid/{uuid}"),
            None => esp_on_root_disk()?,
        };
        let path = root.join(ESP_MOUNT);
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        crate::cmd::run(
            std::process::Command::new("mount")
                .args(["-o", "rw"])
                .arg(&dev)
                .arg(&path),
            Some("util-linux"),
        )
        .with_context(|| format!("mounting the ESP {dev}"))?;
        Ok(EspMount {
            path,
            mounted: true,
        })
    }

    fn close(mut self) -> Result<()> {
        self.mounted = false;
        crate::cmd::run(std::process::Command::new("umount").arg(&self.path), None)
            .map(|_| ())
            .context("unmounting the ESP")
    }
}

impl Drop for EspMount {
    fn drop(&mut self) {
        if self.mounted {
            let _ = std::process::Command::new("umount")
                .arg(&self.path)
                .status();
        }
    }
}

/// The ESP-type partition on the disk that holds `/`.
fn esp_on_root_disk() -> Result<String> {
    let out = crate::cmd::run_stdout(
        std::process::Command::new("lsblk").args([
            "--json",
            "-o",
            "PATH,PARTTYPE,MOUNTPOINT,PKNAME,TYPE",
        ]),
        Some("util-linux"),
    )?;
    let v: serde_json::Value = serde_json::from_str(&out).context("parsing lsblk")?;
    let devs = v["blockdevices"].as_array().cloned().unwrap_or_default();
    fn walk(d: &serde_json::Value, out: &mut Vec<serde_json::Value>) {
        out.push(d.clone());
        for c in d["children"].as_array().into_iter().flatten() {
            walk(c, out);
        }
    }
    for disk in &devs {
        let mut all = Vec::new();
        walk(disk, &mut all);
        if all.iter().any(|d| d["mountpoint"] == "/") {
            if let Some(p) = all.iter().find(|d| {
                d["parttype"]
                    .as_str()
                    .is_some_and(|t| t.eq_ignore_ascii_case(ESP_TYPE))
            }) {
                return Ok(p["path"].as_str().unwrap_or_default().to_string());
            }
        }
    }
    bail!("no ESP found: none of /efi, /boot/efi, /boot holds hcikit/, no LoaderDevicePartUUID, and no EFI System Partition on the root disk")
}

/// Bad input ([`BadInput`], exit code 2): what `apply` refuses on the ESP — a tar entry
/// the builder never writes, a node name that is not a host name — or a root whose
/// folders are links.
fn bad<T>(msg: impl Into<String>) -> Result<T> {
    Err(BadInput(msg.into()).into())
}

/// A node name as Proxmox takes it: a host name label (`pve-common` `PVE::JSONSchema`
/// format `pve-node`, which is a `pve-configid`-like DNS label): letters, digits and `-`,
/// starting and ending with a letter or digit, at most 63 characters. Such a name can
/// never be `..` or hold a `/`, so joining it to a path stays inside that folder.
pub fn check_node_name(name: &str, source: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        bad(format!(
            "{source} names node {name:?}, which is not a valid node name (letters, digits and '-', at most 63)"
        ))
    }
}

/// One regular file of a node tar, checked and read into memory (the tars are small).
struct Entry {
    path: PathBuf,
    data: Vec<u8>,
    mode: u32,
    uid: u32,
    gid: u32,
}

/// Reads and checks every entry of a node tar. The builder writes only regular files
/// with plain permission bits below `/` (`hcikit::esp::files_tar`); anything else —
/// links, folders, devices, `..`, set-id bits — is refused, and nothing is installed
/// from a tar with one such entry.
fn read_tar(tar_path: &Path) -> Result<Vec<Entry>> {
    let f =
        std::fs::File::open(tar_path).with_context(|| format!("opening {}", tar_path.display()))?;
    let mut ar = tar::Archive::new(f);
    let mut out = Vec::new();
    let what = tar_path.display();
    for entry in ar.entries().with_context(|| format!("reading {what}"))? {
        let mut e = entry.with_context(|| format!("reading an entry of {what}"))?;
        let rel: PathBuf = e
            .path()
            .with_context(|| format!("an entry path in {what}"))?
            .into_owned();
        let mut clean = PathBuf::new();
        for c in rel.components() {
            match c {
                Component::Normal(p) => clean.push(p),
                Component::RootDir | Component::CurDir => {}
                _ => {
                    return bad(format!(
                        "refusing {what}: entry {} leaves the root",
                        rel.display()
                    ))
                }
            }
        }
        let h = e.header().clone();
        match h.entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => {}
            other => {
                return bad(format!(
                    "refusing {what}: entry {} is a {other:?}; node tars hold only regular files",
                    rel.display()
                ))
            }
        }
        if clean.as_os_str().is_empty() {
            return bad(format!("refusing {what}: an entry without a name"));
        }
        let mode = match h.mode() {
            Ok(m) => m,
            Err(err) => return bad(format!("refusing {what}: mode of {}: {err}", rel.display())),
        };
        if mode & !0o777 != 0 {
            return bad(format!(
                "refusing {what}: entry {} has mode {mode:o}; node files carry only permission bits",
                rel.display()
            ));
        }
        let id = |v: std::io::Result<u64>| -> Result<u32> {
            match v.map(u32::try_from) {
                Ok(Ok(v)) => Ok(v),
                Ok(Err(_)) => bad(format!(
                    "refusing {what}: owner of {} out of range",
                    rel.display()
                )),
                Err(err) => bad(format!(
                    "refusing {what}: owner of {}: {err}",
                    rel.display()
                )),
            }
        };
        let (uid, gid) = (id(h.uid())?, id(h.gid())?);
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data)
            .with_context(|| format!("reading {} in {what}", rel.display()))?;
        out.push(Entry {
            path: clean,
            data,
            mode,
            uid,
            gid,
        });
    }
    Ok(out)
}

/// Refuses entries whose folders under `root` exist as anything but real folders (a
/// symlink there would carry the write elsewhere), before anything is installed.
fn check_parents(root: &Path, entries: &[Entry]) -> Result<()> {
    for e in entries {
        let mut at = root.to_path_buf();
        let parts: Vec<_> = e.path.components().collect();
        for c in &parts[..parts.len() - 1] {
            at.push(c);
            match std::fs::symlink_metadata(&at) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return bad(format!(
                        "refusing to install {}: {} is not a folder (a link or a file)",
                        e.path.display(),
                        at.display()
                    ))
                }
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => break,
                Err(err) => return Err(err).with_context(|| format!("checking {}", at.display())),
            }
        }
        if let Ok(m) = std::fs::symlink_metadata(root.join(&e.path)) {
            if m.is_dir() {
                return bad(format!(
                    "refusing to install {}: a folder of that name exists",
                    e.path.display()
                ));
            }
        }
    }
    Ok(())
}

/// Installs checked entries below `root`. Every folder is opened relative to its parent
/// with `O_NOFOLLOW | O_DIRECTORY` (created 0755 when missing), so no link — planted in
/// the root or raced in — can take a write outside it; each file is written to a fresh
/// temporary name (`O_EXCL`, created with its final mode), synced, owned, and renamed
/// over the final name, which replaces a link there instead of following it.
fn install_entries(root: &Path, entries: &[Entry]) -> Result<()> {
    use rustix::fs::{
        fchmod, fchown, fsync, mkdirat, openat, renameat, unlinkat, AtFlags, Mode, OFlags, CWD,
    };
    use rustix::io::Errno;
    let as_root = nix::unistd::geteuid().is_root();
    let dir_flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    std::fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
    let root_fd = openat(
        CWD,
        root,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("opening {}", root.display()))?;
    for e in entries {
        let parts: Vec<&std::ffi::OsStr> = e.path.iter().collect();
        let (name, folders) = parts.split_last().expect("checked: not empty");
        let mut dir = root_fd.try_clone()?;
        let mut walked = root.to_path_buf();
        for f in folders {
            walked.push(f);
            let next = match openat(&dir, *f, dir_flags, Mode::empty()) {
                Err(Errno::NOENT) => {
                    match mkdirat(&dir, *f, Mode::from_raw_mode(0o755)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(err) => {
                            return Err(err)
                                .with_context(|| format!("creating {}", walked.display()))
                        }
                    }
                    openat(&dir, *f, dir_flags, Mode::empty())
                }
                other => other,
            };
            dir = match next {
                Ok(d) => d,
                Err(Errno::LOOP | Errno::NOTDIR) => {
                    return bad(format!(
                        "refusing to install {}: {} is not a folder (a link or a file)",
                        e.path.display(),
                        walked.display()
                    ))
                }
                Err(err) => {
                    return Err(err).with_context(|| format!("opening {}", walked.display()))
                }
            };
        }
        let target = root.join(&e.path);
        let tmp = format!(
            ".{}.hcikit-tmp-{}",
            name.to_string_lossy(),
            std::process::id()
        );
        // A leftover of an interrupted run of this same process id; never followed.
        let _ = unlinkat(&dir, tmp.as_str(), AtFlags::empty());
        let fd = openat(
            &dir,
            tmp.as_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(e.mode),
        )
        .with_context(|| format!("creating a temporary file for {}", target.display()))?;
        let mut file = std::fs::File::from(fd);
        let written = (|| -> Result<()> {
            std::io::Write::write_all(&mut file, &e.data)?;
            if as_root {
                fchown(
                    &file,
                    Some(rustix::fs::Uid::from_raw(e.uid)),
                    Some(rustix::fs::Gid::from_raw(e.gid)),
                )?;
            }
            // The umask may have cut bits from the creation mode. (pmxcfs refuses chmod,
            // but node tars never write below /etc/pve.)
            fchmod(&file, Mode::from_raw_mode(e.mode))?;
            file.sync_all()?;
            renameat(&dir, tmp.as_str(), &dir, *name)?;
            Ok(())
        })();
        if let Err(err) = written {
            let _ = unlinkat(&dir, tmp.as_str(), AtFlags::empty());
            return Err(err).with_context(|| format!("installing {}", target.display()));
        }
        fsync(&dir).with_context(|| format!("syncing the folder of {}", target.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmdline_and_efivar() {
        assert_eq!(
            node_from_cmdline("quiet root=UUID=x hcikit.node=pve2 ro").as_deref(),
            Some("pve2")
        );
        assert_eq!(node_from_cmdline("quiet"), None);
        let mut raw = vec![7, 0, 0, 0];
        for u in "ABCD-1234".encode_utf16().chain([0]) {
            raw.extend(u.to_le_bytes());
        }
        assert_eq!(parse_loader_partuuid(&raw).as_deref(), Some("abcd-1234"));
        assert_eq!(parse_loader_partuuid(&[1, 2]), None);
    }

    #[test]
    fn only_roots_hash_changes_in_shadow() {
        let shadow = "daemon:*:19000:0:99999:7:::\nroot:*:0:0:99999:7:::\nrootx:!:1::::::\n";
        assert_eq!(
            shadow_with_root_hash(shadow, "$6$s$h", 20000).unwrap(),
            "daemon:*:19000:0:99999:7:::\nroot:$6$s$h:20000:0:99999:7:::\nrootx:!:1::::::\n"
        );
        assert_eq!(
            shadow_with_root_hash("root::19500::::::", "$y$j9T$a$b", 1).unwrap(),
            "root:$y$j9T$a$b:19500::::::"
        );
        assert_eq!(shadow_with_root_hash("daemon:*:1::::::\n", "$6$x", 1), None);
    }

    #[test]
    fn node_names_are_host_name_labels() {
        for ok in ["pve1", "a", "node-07", &"x".repeat(63)] {
            check_node_name(ok, "t").unwrap();
        }
        for bad_name in [
            "",
            "..",
            "../x",
            "a/b",
            "-a",
            "a-",
            "pve 1",
            "pvе1",
            &"x".repeat(64),
        ] {
            let e = check_node_name(bad_name, "t").unwrap_err();
            assert!(e.is::<BadInput>(), "{bad_name:?}");
        }
    }
}
