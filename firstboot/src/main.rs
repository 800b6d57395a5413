//! `hcikit-firstboot`: thin entry point; the work is in the library.

use anyhow::Result;
use clap::{Parser, Subcommand};
use hcikit_firstboot::error::{exit_code, BadInput};
use hcikit_firstboot::{
    apply, host::RealHost, install, layout, plan::Plan, run, state::State, status,
};
use std::path::{Path, PathBuf};

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
    /// Install this machine's node from the installer stick onto its install disk (started
    /// by the stick's default boot entry; refuses with a reason rather than guess).
    Install {
        /// The stick's ESP folder (default: the partition systemd-boot was loaded from,
        /// mounted at /run/hcikit/stick).
        #[arg(long)]
        stick: Option<PathBuf>,
        /// Identify the node and decide the disk, show the summary, write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Write, but set no UEFI boot entry and do not power off or reboot.
        #[arg(long)]
        no_finish: bool,
        /// Network install (started by the `--pxe` tree's initrd): the tree's URL, the
        /// node and the pinned SHA-256 of every file come from the kernel command line.
        #[arg(long, conflicts_with_all = ["stick", "dry_run"])]
        net: bool,
        /// A fake machine's root (`sys/`, `dev/`, `proc/` files) instead of `/`, for the
        /// install benchmark (`scripts/bench-install.sh`); the console is then stderr.
        #[arg(long, hide = true, default_value = "/")]
        root: PathBuf,
    },
    /// Show what the run would do now, given the observed state (only prints, never acts).
    Plan {
        #[command(flatten)]
        node: NodeArgs,
    },
}

#[derive(Debug, clap::Args)]
struct NodeArgs {
    /// The Plan (written by `apply`).
    #[arg(long, default_value = layout::PLAN_FILE)]
    plan: PathBuf,
    /// This node's name (default: the content of /etc/hcikit/node).
    #[arg(long)]
    node: Option<String>,
}

impl NodeArgs {
    /// The Plan and this node's name; anything missing or wrong is [`BadInput`].
    fn load(&self) -> Result<(Plan, String)> {
        let plan = Plan::load(&self.plan)?;
        let node = match &self.node {
            Some(n) => n.clone(),
            None => std::fs::read_to_string(layout::NODE_FILE)
                .map_err(|e| {
                    BadInput(format!(
                        "cannot read {}: {e} (run `hcikit-firstboot apply` first, or pass --node)",
                        layout::NODE_FILE
                    ))
                })?
                .trim()
                .to_string(),
        };
        plan.expect_node(&node)?;
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
        std::process::exit(exit_code(&e));
    }
}

fn dispatch(cmd: Cmd) -> Result<()> {
    match cmd {
        Cmd::Apply { esp, root } => {
            let out = apply::apply(&apply::Options { esp, root })?;
            println!("{out}");
            Ok(())
        }
        Cmd::Run { node } => {
            let (plan, me) = node.load()?;
            run::run(&RealHost::new(), &plan, &me)
        }
        Cmd::Status { json, state } => {
            let bytes = std::fs::read(&state).map_err(|e| {
                BadInput(format!(
                    "cannot read the state file {}: {e} (has `hcikit-firstboot run` started?)",
                    state.display()
                ))
            })?;
            let st: State = serde_json::from_slice(&bytes).map_err(|e| {
                BadInput(format!(
                    "{} is not an hcikit state file: {e}",
                    state.display()
                ))
            })?;
            print!("{}", status::render(&st, json));
            Ok(())
        }
        Cmd::Install {
            net: true,
            no_finish,
            ..
        } => {
            let outcome = install::net::install(&install::net::Options {
                root: PathBuf::from("/"),
                cmdline: None,
                no_finish,
                consoles: Vec::new(),
            })?;
            match outcome {
                install::run::Outcome::Refused { .. } | install::run::Outcome::Aborted { .. } => {
                    std::process::exit(2)
                }
                _ => Ok(()),
            }
        }
        Cmd::Install {
            stick,
            dry_run,
            no_finish,
            root,
            ..
        } => {
            // A fake machine has no consoles of its own: a path that does not exist makes
            // the installer print to stderr.
            let consoles = if root == Path::new("/") {
                Vec::new()
            } else {
                vec![root.join("dev/no-console")]
            };
            let (outcome, _) = install::run::install(&install::run::Options {
                stick,
                root,
                dry_run,
                no_finish,
                consoles,
            })?;
            println!("{}", outcome.result_line());
            match outcome {
                install::run::Outcome::Refused { .. } | install::run::Outcome::Aborted { .. } => {
                    std::process::exit(2)
                }
                _ => Ok(()),
            }
        }
        Cmd::Plan { node } => {
            let (plan, me) = node.load()?;
            for line in run::dry_run(&RealHost::new(), &plan, &me)? {
                println!("{line}");
            }
            Ok(())
        }
    }
}
