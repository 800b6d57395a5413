//! Progress of the cluster run, kept in [`crate::layout::STATE_FILE`] and written
//! atomically after every change, so a crash, a power cut or a reboot resumes where the
//! run stopped. It also feeds `hcikit-firstboot status`. It never holds a secret.

use crate::host::Host;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Bumped when the meaning of a field changes.
pub const STATE_FORMAT: u32 = 1;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct State {
    pub format: u32,
    pub node: String,
    /// Ids of steps that were done and verified (see `steps::Step::id`), in the order
    /// they were recorded.
    pub done: Vec<String>,
    /// The step being worked on, its display text, and what it waits for, if anything.
    pub step: Option<String>,
    pub doing: Option<String>,
    pub waiting_for: Option<String>,
    /// When a wait on a step began (ms), to bound it.
    pub wait_since: BTreeMap<String, u64>,
    /// Failed attempts per step id.
    pub attempts: BTreeMap<String, u32>,
    /// Last error, with secrets already redacted.
    pub last_error: Option<String>,
    /// Reachability per peer and network, from the last probe.
    pub peers: BTreeMap<String, PeerState>,
    /// Disk zaps: written *before* the zap starts and updated after it, so a crash
    /// never leads to zapping a disk that an OSD of ours may already use.
    pub zaps: BTreeMap<String, ZapRecord>,
    /// OSD creations started (device → ms), written before `pveceph osd create` runs.
    pub osd_started: BTreeMap<String, u64>,
    pub finished: bool,
    /// Fatal error that ended the run (the unit retries on the next boot).
    pub failed: Option<String>,
    pub updated_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct PeerState {
    pub node: String,
    pub network: String,
    pub ip: String,
    pub reachable: bool,
    pub checked_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ZapRecord {
    pub started_ms: u64,
    pub done_ms: Option<u64>,
}

impl State {
    pub fn new(node: &str) -> Self {
        State {
            format: STATE_FORMAT,
            node: node.to_string(),
            ..State::default()
        }
    }

    pub fn is_done(&self, id: &str) -> bool {
        self.done.iter().any(|d| d == id)
    }

    /// Records a step as done (once; a step recorded again keeps its first place).
    pub fn mark_done(&mut self, id: &str) {
        if !self.is_done(id) {
            self.done.push(id.to_string());
        }
    }

    /// Loads the state file, or a fresh state when there is none.
    pub fn load(host: &dyn Host, path: &str, node: &str) -> Result<State> {
        match host.read(path)? {
            None => Ok(State::new(node)),
            Some(bytes) => {
                let s: State = serde_json::from_slice(&bytes)
                    .with_context(|| format!("parsing state file {path}"))?;
                anyhow::ensure!(
                    s.format == STATE_FORMAT,
                    "state file {path} has format {}, this agent understands {STATE_FORMAT}",
                    s.format
                );
                anyhow::ensure!(
                    s.node == node,
                    "state file {path} belongs to node {}, not {node}",
                    s.node
                );
                Ok(s)
            }
        }
    }

    pub fn save(&mut self, host: &dyn Host, path: &str) -> Result<()> {
        self.updated_ms = host.now_ms();
        let mut bytes = serde_json::to_vec_pretty(self).context("serialising state")?;
        bytes.push(b'\n');
        host.write_atomic(path, &bytes, 0o600)
            .with_context(|| format!("writing state file {path}"))
    }
}
