//! hcikit-firstboot: the on-node agent of hcikit.
//!
//! Modules:
//! - [`plan`]: the resolved cluster Plan (the contract with the builder).
//! - [`pveapi`]: Proxmox API calls whose secret parameters travel on stdin, not argv.
//! - [`layout`]: ESP layout and on-node paths shared with the builder.
//! - [`error`]: bad input (exit 2) as an error type.
//! - [`apply`]: `hcikit-firstboot apply`: install the node's files and secrets from the ESP.
//! - [`cmd`]: the one helper that runs external commands.
//! - [`host`]: the side-effect seam of the cluster run (commands, files, clock, probes).
//! - [`install`]: `hcikit-firstboot install`: the verified USB/network installer.
//! - [`observe`]: pure parsers of Proxmox/Ceph JSON output.
//! - [`state`]: the run's progress file, written atomically.
//! - [`steps`]: the step model: which steps, their ids, summaries and dependencies.
//! - [`decide`]: the pure "what next" function over observed state.
//! - [`run`]: the reconcile loop (observe, decide, act, verify, record).
//! - [`report`]: the fleet progress message POSTed to `hcikit serve`, and its client.
//! - [`status`]: `hcikit-firstboot status`, human and JSON.
//! - [`example`]: the two scenarios as literal Plans, for tests and the simulator.

pub mod apply;
pub mod cmd;
pub mod decide;
pub mod error;
pub mod example;
pub mod host;
pub mod install;
pub mod layout;
pub mod observe;
pub mod plan;
pub mod pveapi;
pub mod report;
pub mod run;
pub mod state;
pub mod status;
pub mod steps;
