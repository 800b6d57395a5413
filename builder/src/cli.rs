//! Command-line interface: the clap definition and the dispatch to the command modules.

use crate::commands;
use anyhow::Result;
use clap::{Parser, Subcommand};
use std::io::Write;

/// Build bootable Proxmox VE + Ceph cluster node images from one cluster.toml.
///
/// A typical session: `hcikit validate cluster.toml`, `hcikit plan cluster.toml`,
/// `hcikit build cluster.toml -o out/`, then flash `out/<node>.img` to each machine.
#[derive(Debug, Parser)]
#[command(name = "hcikit", version, propagate_version = true)]
pub struct Cli {
    /// More log output (-v: debug, -vv: trace). Logs go to stderr.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a cluster spec and report every problem at once.
    Validate(commands::validate::Args),
    /// Show the resolved plan: nodes, networks, links, disks, first-boot steps.
    Plan(commands::plan::Args),
    /// Render every node's configuration files into a folder (secrets redacted).
    Render(commands::render::Args),
    /// Build bootable disk images for every node.
    ///
    /// What the nodes run comes from the base (--base, or image.base in the spec):
    /// `proxmox` gives real Proxmox VE nodes (Debian + Proxmox VE + the spec's Ceph release),
    /// and needs Proxmox's repositories or a mirror of them (--mirror, image.mirrors) plus
    /// Proxmox's archive key (--proxmox-key); `debian` (the default) gives the same nodes
    /// without Proxmox VE — networking, SSH, corosync, the first-boot agent — for trying
    /// hcikit offline and for the tests; their cluster run stops at its first Proxmox step.
    /// Both follow cluster.pve-version: Debian 13 trixie for PVE 9, Debian 12 bookworm for PVE 8.
    Build(commands::build::Args),
    /// Show what an image holds: partitions, ESP files, node identity, checksums.
    Inspect(commands::inspect::Args),
    /// Write an image to a block device using its bmap, then verify it.
    Flash(commands::flash::Args),
    /// Run the whole first boot of every node against the simulated cluster.
    Simulate(commands::simulate::Args),
    /// Serve a --pxe tree over HTTP and show the fleet's install and first-boot progress.
    Serve(commands::serve::Args),
    /// Print shell completions.
    Completions {
        /// Shell to generate completions for.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff).
    Man,
    /// Print the JSON Schema of cluster.toml.
    #[command(hide = true)]
    Schema,
}

/// Logs go to stderr; `RUST_LOG` overrides the level chosen by `-v`. Whatever the level,
/// other crates' events below warnings are dropped: they log their inputs (handlebars
/// logs every helper call with the template context, and `build` renders with secrets),
/// and only our own events are written knowing what a secret is.
pub fn init_logging(verbose: u8) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    let level = match verbose {
        0 => "warn",
        1 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .without_time()
        .with_filter(filter)
        .with_filter(tracing_subscriber::filter::filter_fn(|m| {
            may_log(m.target(), *m.level())
        }));
    let _ = tracing_subscriber::registry().with(layer).try_init();
}

/// Whether an event of `target` at `level` may be logged: ours at any level, other
/// crates' only from warnings up (see [`init_logging`]).
pub fn may_log(target: &str, level: tracing::Level) -> bool {
    let ours = ["hcikit", "hcikit_firstboot"]
        .iter()
        .any(|c| target == *c || target.starts_with(&format!("{c}::")));
    ours || level <= tracing::Level::WARN
}

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Validate(a) => commands::validate::run(a),
        Command::Plan(a) => commands::plan::run(a),
        Command::Render(a) => commands::render::run(a),
        Command::Build(a) => commands::build::run(a),
        Command::Inspect(a) => commands::inspect::run(a),
        Command::Flash(a) => commands::flash::run(a),
        Command::Simulate(a) => commands::simulate::run(a),
        Command::Serve(a) => commands::serve::run(a),
        // The same bytes as the checked-in copies under docs/ (see `artifacts`).
        Command::Completions { shell } => print(&crate::artifacts::completions(shell)),
        Command::Man => print(&crate::artifacts::man_page()),
        Command::Schema => print(crate::spec::schema::spec_schema().as_bytes()),
    }
}

fn print(bytes: &[u8]) -> Result<()> {
    std::io::stdout().lock().write_all(bytes)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::may_log;
    use tracing::Level;

    #[test]
    fn other_crates_log_only_warnings_and_errors() {
        assert!(may_log("hcikit::build", Level::TRACE));
        assert!(may_log("hcikit_firstboot::cmd", Level::DEBUG));
        assert!(!may_log("handlebars::render", Level::DEBUG));
        assert!(!may_log("hcikitx", Level::INFO));
        assert!(may_log("handlebars::render", Level::WARN));
    }
}
