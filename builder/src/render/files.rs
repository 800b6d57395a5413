//! A node's file set: what rendering produces and the image carries to the node.

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
