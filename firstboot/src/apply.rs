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
    let files = install_tar(&dir.join(FILES_TAR), root).context("installing files.tar")?;
    let n_secrets = install_tar(&secrets, root).context("installing secrets.tar")?;
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

/// This node's name: `hcikit/node` on the ESP, else `hcikit.node=` on the kernel
/// command line, else the Plan node whose MAC is on a local NIC.
pub fn pick_node(esp: &Path, root: &Path, plan: &Plan) -> Result<String> {
    if let Ok(s) = std::fs::read_to_string(esp.join(ESP_NODE)) {
        let n = s.trim().to_string();
        plan.expect_node(&n)
            .map_err(|e| BadInput(format!("{ESP_NODE} on the ESP: {e}")))?;
        return Ok(n);
    }
    if let Ok(cmdline) = std::fs::read_to_string(root.join(PROC_CMDLINE)) {
        if let Some(n) = node_from_cmdline(&cmdline) {
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

/// Extracts a tar below `root` with the archive's modes and owners; returns the number
/// of files. Refuses absolute escapes (`..`).
fn install_tar(tar_path: &Path, root: &Path) -> Result<usize> {
    use std::os::unix::fs::PermissionsExt;
    let f =
        std::fs::File::open(tar_path).with_context(|| format!("opening {}", tar_path.display()))?;
    let mut ar = tar::Archive::new(f);
    let as_root = nix::unistd::geteuid().is_root();
    let mut n = 0;
    for entry in ar.entries().context("reading tar")? {
        let mut e = entry.context("reading tar entry")?;
        let rel: PathBuf = e.path().context("tar entry path")?.into_owned();
        let mut clean = PathBuf::new();
        for c in rel.components() {
            match c {
                Component::Normal(p) => clean.push(p),
                Component::RootDir | Component::CurDir => {}
                _ => bail!("refusing tar entry {}: it leaves the root", rel.display()),
            }
        }
        if clean.as_os_str().is_empty() {
            continue;
        }
        let target = root.join(&clean);
        let h = e.header().clone();
        let mode = h.mode().unwrap_or(0o644) & 0o7777;
        let (uid, gid) = (h.uid().unwrap_or(0) as u32, h.gid().unwrap_or(0) as u32);
        match h.entry_type() {
            tar::EntryType::Directory => {
                std::fs::create_dir_all(&target)?;
                std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode))?;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let mut data = Vec::new();
                std::io::Read::read_to_end(&mut e, &mut data)?;
                crate::host::write_atomic(&target, &data, mode)
                    .with_context(|| format!("installing {}", clean.display()))?;
                n += 1;
            }
            tar::EntryType::Symlink => {
                let to = h
                    .link_name()?
                    .context("symlink without target")?
                    .into_owned();
                if let Some(p) = target.parent() {
                    std::fs::create_dir_all(p)?;
                }
                let _ = std::fs::remove_file(&target);
                std::os::unix::fs::symlink(&to, &target)?;
                continue;
            }
            other => {
                tracing::warn!(path = %clean.display(), "skipping tar entry of type {other:?}");
                continue;
            }
        }
        if as_root {
            std::os::unix::fs::chown(&target, Some(uid), Some(gid))
                .with_context(|| format!("chown {}", target.display()))?;
        }
    }
    Ok(n)
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
}
