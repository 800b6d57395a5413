//! `hcikit validate`: check a spec and report every problem at once. Writes nothing.

use crate::error::InputError;
use crate::spec::{self, Diagnostic};
use anyhow::Result;
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The cluster spec, e.g. cluster.toml.
    pub spec: PathBuf,
    /// Print a JSON report ({ok, nodes, networks, errors, warnings}) for scripts.
    #[arg(long)]
    pub json: bool,
}

/// The `--json` report.
#[derive(Debug, Serialize)]
pub struct Report {
    pub ok: bool,
    pub nodes: usize,
    pub networks: usize,
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
}

/// Loads `spec` and sorts the outcome into a report; `Err` only when the file is unreadable.
pub fn check(spec: &Path) -> Result<Report> {
    let text = std::fs::read_to_string(spec)
        .map_err(|e| InputError::new(format!("cannot read spec {}: {e}", spec.display())))?;
    let base = spec
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    Ok(match spec::load_str(&text, base) {
        Ok(l) => Report {
            ok: true,
            nodes: l.plan.nodes.len(),
            networks: l.plan.networks.len(),
            errors: Vec::new(),
            warnings: l.warnings,
        },
        Err(diags) => {
            let (errors, warnings) = diags.into_iter().partition(Diagnostic::is_error);
            Report {
                ok: false,
                nodes: 0,
                networks: 0,
                errors,
                warnings,
            }
        }
    })
}

/// The human report: `ok: ...` or every error, then the warnings.
pub fn human(r: &Report) -> String {
    let mut s = String::new();
    if r.ok {
        let plural = |n: usize, w: &str| format!("{n} {w}{}", if n == 1 { "" } else { "s" });
        s.push_str(&format!(
            "ok: {}, {}\n",
            plural(r.nodes, "node"),
            plural(r.networks, "network")
        ));
    } else {
        for e in &r.errors {
            s.push_str(&format!("error: {e}\n"));
        }
    }
    for w in &r.warnings {
        s.push_str(&format!("warning: {w}\n"));
    }
    s
}

pub fn run(args: Args) -> Result<()> {
    let report = check(&args.spec)?;
    let written = if args.json {
        let text = serde_json::to_string_pretty(&report)? + "\n";
        std::io::stdout().lock().write_all(text.as_bytes())
    } else if report.ok {
        std::io::stdout()
            .lock()
            .write_all(human(&report).as_bytes())
    } else {
        eprint!("{}", human(&report));
        Ok(())
    };
    match written {
        // A reader that stops early (`| head`) is not a failure of the check.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        other => other?,
    }
    if report.ok {
        Ok(())
    } else {
        let n = report.errors.len();
        Err(InputError::new(format!(
            "{} has {n} error{}",
            args.spec.display(),
            if n == 1 { "" } else { "s" }
        ))
        .into())
    }
}
