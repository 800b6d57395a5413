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
//! - [`rootfs`]: the shared root as one deterministic tar stream (base + overlays + agent).
//! - [`ext4`]: that tar turned into the ext4 root with `mke2fs -d`.
//! - [`keys`]: the secrets seed and the SSH / corosync keys derived from it.
//! - [`esp`]: a node's EFI system partition (FAT32 via `fatfs`).
//! - [`disk`]: GPT layout, GUIDs and partition-table bytes (via `gpt`).
//! - [`output`]: sparse / zstd images, bmap, checksums, atomic renames.
//! - [`build`]: `hcikit build` as a library call (root cache, per-node images, manifest).
//! - [`progress`]: progress bars on a terminal, plain lines otherwise.
//! - [`inspect`]: what an image holds, read back (`hcikit inspect`).
//! - [`installer`]: the USB installer stick's layout, boot entries and node payloads.
//! - [`spec`]: the raw `cluster.toml` types; [`validate`]: every check, all diagnostics at
//!   once; [`resolve`]: spec → Plan with every default decided; [`load`]: the entry point.
//! - [`render`]: templates + Plan → each node's rendered files.
//! - [`base`]: the generated Debian / Proxmox base root file system (mmdebstrap, cached).

pub mod artifacts;
pub mod base;
pub mod build;
pub mod cli;
pub mod commands;
pub mod disk;
pub mod error;
pub mod esp;
pub mod ext4;
pub mod files;
pub mod flash;
pub mod inspect;
pub mod installer;
pub mod keys;
pub mod load;
pub mod output;
pub mod progress;
pub mod render;
pub mod resolve;
pub mod rootfs;
pub mod schema;
pub mod secrets;
pub mod spec;
pub mod validate;

pub use load::{load, load_str, Diagnostic, Loaded, Severity};
