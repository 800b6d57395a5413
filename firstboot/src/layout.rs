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

/// ESP folder of a node.
pub fn esp_node_dir(node: &str) -> String {
    format!("{ESP_NODES_DIR}/{node}")
}
