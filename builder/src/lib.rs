//! hcikit: from one cluster.toml to bootable Proxmox VE + Ceph node images.
//!
//! Modules, in pipeline order:
//! - [`cli`]: clap definition and dispatch; [`commands`]: one module per verb.
//! - [`spec`]: stage 1, `cluster.toml` → validated spec → resolved Plan.
//! - [`render`]: stage 2, Plan → each node's files, keys and secrets.
//! - [`image`]: stage 3, base + rootfs + ESP + GPT → image files, bmap, manifest.
//! - [`media`]: images after the build: flashing and inspecting.
//! - [`progress`]: progress bars on a terminal, plain lines otherwise; [`units`]: byte
//!   counts as people read them, and the zstd magic.
//! - [`artifacts`]: the generated files checked in under `docs/` (man page, completions,
//!   schema).
//! - [`error`]: the bad-input error kind and exit codes.

pub mod artifacts;
pub mod cli;
pub mod commands;
pub mod error;
pub mod image;
pub mod media;
pub mod progress;
pub mod render;
pub mod spec;
pub mod units;

pub use spec::{load, load_str, Diagnostic, Loaded, Severity};
