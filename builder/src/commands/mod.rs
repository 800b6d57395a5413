//! One module per subcommand: its clap arguments and its `run`.

pub mod build;
pub mod flash;
pub mod inspect;
pub mod plan;
pub mod render;
pub mod simulate;
pub mod validate;
