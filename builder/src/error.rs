//! Error kinds that decide the exit code: bad input (2) versus everything else (1).

/// Bad input from the user: a spec, a base archive, an image path. Exit code 2.
/// The message names the key or file and what would be valid.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InputError(pub String);

impl InputError {
    pub fn new(msg: impl Into<String>) -> Self {
        InputError(msg.into())
    }
}

/// Exit code for an error chain: 2 when any link is an [`InputError`], else 1.
pub fn exit_code(err: &anyhow::Error) -> i32 {
    if err.chain().any(|e| e.is::<InputError>()) {
        2
    } else {
        1
    }
}

/// Shorthand: `Err(InputError)` wrapped in anyhow.
pub fn input_error<T>(msg: impl Into<String>) -> anyhow::Result<T> {
    Err(InputError::new(msg).into())
}
