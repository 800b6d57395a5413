//! Bad input (a missing or invalid Plan, an unknown node) as an error type, so the
//! command line can tell it from a failed run: bad input exits 2, anything else 1.

/// The input the agent was given is wrong; the message names the file or value and what
/// would be valid.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

/// The process exit code for an error: 2 for [`BadInput`] anywhere in its chain, else 1.
pub fn exit_code(e: &anyhow::Error) -> i32 {
    if e.chain().any(|c| c.is::<BadInput>()) {
        2
    } else {
        1
    }
}
