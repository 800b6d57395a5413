//! hcikit: from one cluster.toml to bootable Proxmox VE + Ceph node images.
//!
//! Modules:
//! - [`cli`]: clap definition and dispatch; [`commands`]: one module per subcommand.
//! - [`error`]: the bad-input error kind and exit codes.

pub mod cli;
pub mod commands;
pub mod error;
