//! One module per subcommand: its clap arguments and its `run`; [`load_spec`] is the
//! front door every verb that needs a valid spec goes through.

pub mod build;
pub mod flash;
pub mod inspect;
pub mod plan;
pub mod render;
pub mod serve;
pub mod simulate;
pub mod validate;

use crate::spec::Loaded;
use std::path::Path;

/// Loads a spec for a verb that needs a valid one, and prints each validation warning on
/// stderr as `warning: <key>: <message>`, the way `hcikit validate` reports them, so that no
/// verb builds from a spec while hiding what is questionable about it.
pub fn load_spec(spec_path: &Path) -> anyhow::Result<Loaded> {
    let loaded = crate::spec::load(spec_path)?;
    for w in &loaded.warnings {
        eprintln!("warning: {w}");
    }
    Ok(loaded)
}
