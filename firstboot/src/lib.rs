//! hcikit-firstboot: the on-node agent of hcikit.
//!
//! Modules:
//! - [`plan`]: the resolved cluster Plan (the contract with the builder).
//! - [`layout`]: ESP layout and on-node paths shared with the builder.
//! - [`cmd`]: the one helper that runs external commands.

pub mod cmd;
pub mod layout;
pub mod plan;
