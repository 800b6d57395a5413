//! `hcikit-firstboot`: thin entry point; the work is in the library.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use hcikit_firstboot::{apply, host::RealHost, layout, plan::Plan, run, state::State, status};
use std::path::PathBuf;

/// The first-boot agent of hcikit: applies this node's configuration and forms the
/// Proxmox VE + Ceph cluster.
#[derive(Debug, Parser)]
#[command(name = "hcikit-firstboot", version)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Early boot: install this node's files and secrets from the ESP.
    Apply {
        /// ESP folder holding `hcikit/` (default: found or mounted automatically).
        #[arg(long)]
        esp: Option<PathBuf>,
        /// Install prefix.
        #[arg(long, default_value = "/")]
        root: PathBuf,
    },
    /// Form the cluster: the resumable reconcile loop.
    Run {
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Show the run's progress from the state file.
    Status {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        #[arg(long, default_value = layout::STATE_FILE)]
        state: PathBuf,
    },
    /// Show what the run would do now, given the observed state.
    Plan {
        /// Required: only print, never act.
        #[arg(long, required = true)]
        dry_run: bool,
        #[command(flatten)]
        node: NodeArgs,
    },
}

#[derive(Debug, clap::Args)]
struct NodeArgs {
    /// The Plan (written by `apply`).
    #[arg(long, default_value = "/etc/hcikit/plan.json")]
    plan: PathBuf,
    /// This node's name (default: the content of /etc/hcikit/node).
    #[arg(long)]
    node: Option<String>,
}

impl NodeArgs {
    fn load(&self) -> Result<(Plan, String)> {
        let bytes = std::fs::read(&self.plan)
            .with_context(|| format!("reading {}", self.plan.display()))?;
        let plan: Plan = serde_json::from_slice(&bytes)
            .with_context(|| format!("parsing {}", self.plan.display()))?;
        let node = match &self.node {
            Some(n) => n.clone(),
            None => std::fs::read_to_string("/etc/hcikit/node")
                .context("reading /etc/hcikit/node (run `hcikit-firstboot apply` first)")?
                .trim()
                .to_string(),
        };
        Ok((plan, node))
    }
}

fn main() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    if let Err(e) = dispatch(cli.command) {
        eprintln!("hcikit-firstboot: {e:#}");
        // Bad input (what the ESP holds) is 2, like the builder's; anything else 1.
        let bad = e.chain().any(|c| c.is::<apply::BadInput>());
        std::process::exit(if bad { 2 } else { 1 });
    }
}

fn dispatch(cmd: Cmd) -> Result<()> {
    match cmd {
        Cmd::Apply { esp, root } => {
            let out = apply::apply(&apply::Options { esp, root })?;
            println!("{out:?}");
            Ok(())
        }
        Cmd::Run { node } => {
            let (plan, me) = node.load()?;
            run::run(&RealHost::new(), &plan, &me)
        }
        Cmd::Status { json, state } => {
            let bytes =
                std::fs::read(&state).with_context(|| format!("reading {}", state.display()))?;
            let st: State = serde_json::from_slice(&bytes)
                .with_context(|| format!("parsing {}", state.display()))?;
            print!("{}", status::render(&st, json));
            Ok(())
        }
        Cmd::Plan { dry_run: _, node } => {
            let (plan, me) = node.load()?;
            for line in run::dry_run(&RealHost::new(), &plan, &me)? {
                println!("{line}");
            }
            Ok(())
        }
    }
}
