//! Where things live: the ESP layout the builder writes and the agent reads, and the
//! agent's paths in the root filesystem. Both sides use these constants, never literals.

/// Folder on the ESP that holds everything hcikit puts there.
pub const ESP_DIR: &str = "hcikit";
/// The whole cluster Plan (no secret values), as JSON.
pub const ESP_PLAN: &str = "hcikit/plan.json";
/// Text file with this image's node name; absent in a fleet image (the node is then
/// picked by MAC or the `hcikit.node=` kernel argument).
pub const ESP_NODE: &str = "hcikit/node";
/// Per-node folder on the ESP: `hcikit/nodes/<name>/`.
pub const ESP_NODES_DIR: &str = "hcikit/nodes";
/// In a node folder: rendered, non-secret files as a tar with modes and owners; paths in
/// the tar are relative to `/`.
pub const FILES_TAR: &str = "files.tar";
/// In a node folder: secret files (SSH host keys, bootstrap key, password hashes, SMTP
/// passwords) as a tar; removed from the ESP once installed.
pub const SECRETS_TAR: &str = "secrets.tar";
/// Kernel command-line argument that names the node in a fleet image.
pub const NODE_CMDLINE_ARG: &str = "hcikit.node";
/// Kernel command-line argument that starts the USB installer.
pub const INSTALL_CMDLINE_ARG: &str = "hcikit.install";

/// The agent binary in the root filesystem.
pub const AGENT_BIN: &str = "/usr/sbin/hcikit-firstboot";
/// Agent state folder.
pub const STATE_DIR: &str = "/var/lib/hcikit";
/// Progress of the cluster run, written atomically.
pub const STATE_FILE: &str = "/var/lib/hcikit/state.json";
/// Pending flags (units run while the flag exists; removed in `ExecStartPost`).
pub const APPLY_PENDING: &str = "/var/lib/hcikit/apply-pending";
pub const RUN_PENDING: &str = "/var/lib/hcikit/firstboot-pending";

/// The cluster's corosync key as `apply` installs it from `secrets.tar` (derived from the
/// secrets seed). Not `/etc/corosync/authkey`, whose presence makes `pvecm add` refuse;
/// the founder copies it there just before `pvecm create`, which then keeps it.
pub const COROSYNC_AUTHKEY: &str = "/etc/hcikit/corosync/authkey";

/// The Plan as `apply` installs it, and this node's name (relative to the install root,
/// `/` on a node).
pub const INSTALLED_PLAN: &str = "etc/hcikit/plan.json";
pub const INSTALLED_NODE: &str = "etc/hcikit/node";
/// The same two on a running node, where `run` and `status` read them.
pub const PLAN_FILE: &str = "/etc/hcikit/plan.json";
pub const NODE_FILE: &str = "/etc/hcikit/node";
/// Private mount point (below the root) for an ESP that is not mounted yet.
pub const ESP_MOUNT: &str = "run/hcikit/esp";
/// systemd-boot's `LoaderDevicePartUUID` EFI variable (below the root): the ESP it booted from.
pub const LOADER_PARTUUID_VAR: &str =
    "sys/firmware/efi/efivars/LoaderDevicePartUUID-4a67b082-0a4c-41cf-b6c7-440b29bb8c4f";
/// The kernel command line and the network interfaces (below the root).
pub const PROC_CMDLINE: &str = "proc/cmdline";
pub const SYS_CLASS_NET: &str = "sys/class/net";

/// Where secret files are installed on a node (root-only, mode 0700 directory, 0600 files).
pub const SECRETS_DIR: &str = "/etc/hcikit/secrets";
/// Where the desired copies of cluster-wide files (those that live in pmxcfs, `/etc/pve`)
/// are installed on a node, mirroring their real path below this prefix. The agent creates
/// the real ones through the Proxmox API and compares.
pub const DESIRED_DIR: &str = "/etc/hcikit/desired";

/// The private half of the bootstrap key that joins use, installed by `apply`.
pub const BOOTSTRAP_KEY: &str = "/root/.ssh/hcikit-bootstrap";
pub const BOOTSTRAP_PUB: &str = "/root/.ssh/hcikit-bootstrap.pub";
/// The cluster-wide authorized_keys (`/root/.ssh/authorized_keys` links here once clustered).
pub const CLUSTER_AUTHORIZED_KEYS: &str = "/etc/pve/priv/authorized_keys";
pub const KNOWN_HOSTS: &str = "/etc/ssh/ssh_known_hosts";
/// root's ssh client configuration, where joiners get a marked block for the founder.
pub const SSH_CONFIG: &str = "/root/.ssh/config";
/// Where corosync (and `pvecm create`) look for the cluster key.
pub const COROSYNC_KEY: &str = "/etc/corosync/authkey";
/// Exists once a node is in a cluster (pmxcfs).
pub const COROSYNC_CONF: &str = "/etc/pve/corosync.conf";
/// The cluster's Ceph configuration (pmxcfs), written by `pveceph init`.
pub const CEPH_CONF: &str = "/etc/pve/ceph.conf";
/// Exists while `pveceph install` runs (pve-manager `PVE::CLI::pveceph`, `install`).
pub const CEPH_INSTALL_FLAG: &str = "/run/pve-ceph-install-flag";
/// Exists once notifications are configured cluster-wide.
pub const NOTIFICATIONS_CFG: &str = "/etc/pve/notifications.cfg";
/// Where a failure mail is handed to the local mail system (root's mail goes to the
/// notification system through `proxmox-mail-forward`).
pub const SENDMAIL: &str = "/usr/sbin/sendmail";
/// Proxmox VE's command-line tools. Without them no Proxmox step can ever succeed, so
/// their absence fails the run at once instead of waiting for pve-cluster forever.
pub const PVE_BINARIES: [&str; 2] = ["/usr/bin/pvecm", "/usr/bin/pvesh"];
/// Ceph's daemons and volume tool: present once the Ceph packages are installed.
pub const CEPH_BINARIES: [&str; 3] = [
    "/usr/bin/ceph-mon",
    "/usr/bin/ceph-osd",
    "/usr/sbin/ceph-volume",
];

/// ESP folder of a node.
pub fn esp_node_dir(node: &str) -> String {
    format!("{ESP_NODES_DIR}/{node}")
}
