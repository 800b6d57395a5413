//! hcikit: from one cluster.toml to bootable Proxmox VE + Ceph node images.
//!
//! Modules:
//! - [`cli`]: clap definition and dispatch; [`commands`]: one module per subcommand.
//! - [`artifacts`]: the generated files checked in under `docs/` (man page, completions,
//!   schema); [`schema`]: the JSON Schema of `cluster.toml`.
//! - [`error`]: the bad-input error kind and exit codes.
//! - [`secrets`]: secret values named by the Plan, kept out of logs.
//! - [`files`]: a node's rendered file set.
//! - [`flash`]: bmap-guided image writing with read-back verification.
//! - [`spec`]: the raw `cluster.toml` types; [`validate`]: every check, all diagnostics at
//!   once; [`resolve`]: spec → Plan with every default decided; [`load`]: the entry point.

pub mod artifacts;
pub mod cli;
pub mod commands;
pub mod error;
pub mod files;
pub mod flash;
pub mod load;
pub mod resolve;
pub mod schema;
pub mod secrets;
pub mod spec;
pub mod validate;

pub use load::{load, load_str, Diagnostic, Loaded, Severity};
