//! Shared helpers for the workspace tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `target/<profile>/hcikit`, built once per test binary: a test crate does not build
/// other packages' binaries by itself, and a stale binary would test old code.
pub fn hcikit_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let st = Command::new(cargo)
            .args(["build", "-q", "-p", "hcikit", "--bin", "hcikit"])
            .current_dir(workspace_root())
            .status()
            .expect("running cargo build");
        assert!(st.success(), "cargo build of hcikit failed");
        let exe = std::env::current_exe().unwrap();
        // target/debug/deps/<test>-… → target/debug/hcikit
        let bin = exe.parent().and_then(Path::parent).unwrap().join("hcikit");
        assert!(bin.exists(), "{} not built", bin.display());
        bin
    })
}

/// Runs a command to completion: exit code (-1 if killed by a signal), stdout, stderr.
pub fn run(c: &mut Command) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = c.output().expect("running hcikit");
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

/// Runs `hcikit <args>` in process, exactly as `main` does: the exit code and the error
/// chain (`{:#}`, empty on success). Keep to calls that print little: output written
/// straight to stdout escapes the test harness's capture.
pub fn run_cli(args: &[&str]) -> (i32, String) {
    let mut argv = vec!["hcikit"];
    argv.extend_from_slice(args);
    let cli = <hcikit::cli::Cli as clap::Parser>::try_parse_from(argv).expect("arguments parse");
    match hcikit::cli::run(cli) {
        Ok(()) => (0, String::new()),
        Err(e) => (hcikit::error::exit_code(&e), format!("{e:#}")),
    }
}
