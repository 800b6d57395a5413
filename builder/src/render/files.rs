//! A node's file set: which files a node gets (mode, owner, placement, secrecy), and what
//! rendering produces and the image carries to the node.

use super::views::{ha::ha_rules, network::nameservers};
use super::WWW_DATA_GID;
use hcikit_firstboot::plan::Plan;

/// Where the agent puts a file on the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Placement {
    /// Installed at `path` by `hcikit-firstboot apply`.
    Install,
    /// A cluster-wide file that lives in pmxcfs (`/etc/pve/...`): installed below
    /// `hcikit_firstboot::plan::DESIRED_DIR` for verification; the agent creates the real
    /// one through the Proxmox API.
    Desired,
}

/// One rendered file for one node.
#[derive(Clone, PartialEq, Eq)]
pub struct NodeFile {
    /// Absolute target path on the node, e.g. `/etc/network/interfaces`.
    pub path: String,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub contents: Vec<u8>,
    /// Holds a secret: goes into `secrets.tar`, never into `render` output unless revealed.
    pub secret: bool,
    pub placement: Placement,
}

impl std::fmt::Debug for NodeFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeFile")
            .field("path", &self.path)
            .field("mode", &format_args!("{:o}", self.mode))
            .field("uid", &self.uid)
            .field("gid", &self.gid)
            .field("len", &self.contents.len())
            .field("secret", &self.secret)
            .field("placement", &self.placement)
            .finish()
    }
}

/// A file a node gets, before its text is rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSpec {
    pub target: String,
    pub mode: u32,
    pub gid: u32,
    pub placement: Placement,
    pub secret: bool,
}

fn install(target: &str, mode: u32) -> FileSpec {
    FileSpec {
        target: target.into(),
        mode,
        gid: 0,
        placement: Placement::Install,
        secret: false,
    }
}

/// A pmxcfs file: root:www-data, 0640, or 0600 below `priv/`.
fn desired(target: &str, secret: bool) -> FileSpec {
    let private = target.starts_with("/etc/pve/priv/");
    FileSpec {
        target: target.into(),
        mode: if private || secret { 0o600 } else { 0o640 },
        gid: WWW_DATA_GID,
        placement: Placement::Desired,
        secret,
    }
}

/// The files every node gets, in a fixed order (the same set on every node; the contents
/// differ). Conditional files appear only when the plan has something to put in them.
pub fn file_specs(plan: &Plan) -> Vec<FileSpec> {
    let mut v = vec![
        install("/etc/hostname", 0o644),
        install("/etc/hosts", 0o644),
        install("/etc/timezone", 0o644),
    ];
    if !nameservers(plan).is_empty() {
        v.push(install("/etc/resolv.conf", 0o644));
    }
    v.push(install("/etc/network/interfaces", 0o644));
    if !plan.cluster.ntp_servers.is_empty() {
        v.push(install("/etc/chrony/sources.d/hcikit.sources", 0o644));
    }
    if !plan.cluster.admin_ssh_keys.is_empty() {
        v.push(install("/root/.ssh/authorized_keys", 0o600));
    }
    v.push(desired("/etc/pve/corosync.conf", false));
    if plan.ceph.is_some() {
        v.push(desired("/etc/pve/ceph.conf", false));
    }
    if !plan.datacenter.options.is_empty() {
        v.push(desired("/etc/pve/datacenter.cfg", false));
    }
    if plan.ha.uses_rules() {
        if !ha_rules(plan).is_empty() {
            v.push(desired("/etc/pve/ha/rules.cfg", false));
        }
    } else if !plan.ha.groups.is_empty() {
        v.push(desired("/etc/pve/ha/groups.cfg", false));
    }
    if !plan.ha.resources.is_empty() {
        v.push(desired("/etc/pve/ha/resources.cfg", false));
    }
    // With nothing beyond the built-in defaults Proxmox keeps no notifications.cfg at all.
    let n = &plan.notifications;
    if !(n.smtp.is_empty() && n.matchers.is_empty() && n.default_matcher_targets.is_empty()) {
        v.push(desired("/etc/pve/notifications.cfg", false));
    }
    if plan.notifications.smtp.iter().any(|s| s.password.is_some()) {
        v.push(desired("/etc/pve/priv/notifications.cfg", true));
    }
    if !plan.realms.is_empty() {
        // OpenID client keys are stored in domains.cfg itself.
        let secret = plan
            .realms
            .iter()
            .any(|r| r.kind == "openid" && r.secret.is_some());
        v.push(desired("/etc/pve/domains.cfg", secret));
    }
    v
}
