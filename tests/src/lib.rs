//! Shared helpers for the workspace tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

pub mod golden;

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `target/<profile>/hcikit`, built once per test binary with the profile this test was
/// built with: a test crate does not build other packages' binaries by itself, and a
/// stale binary (or the debug one under `cargo test --release`) would test other code.
pub fn hcikit_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().unwrap();
        // target/<profile dir>/deps/<test>-… → target/<profile dir>/hcikit
        let profile_dir = exe.parent().and_then(Path::parent).unwrap();
        let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") => "dev".to_string(),
            Some(other) => other.to_string(),
            None => panic!(
                "test binary {} is not under target/<profile>",
                exe.display()
            ),
        };
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let st = Command::new(cargo)
            .args([
                "build",
                "-q",
                "--profile",
                &profile,
                "-p",
                "hcikit",
                "--bin",
                "hcikit",
            ])
            .current_dir(workspace_root())
            .status()
            .expect("running cargo build");
        assert!(
            st.success(),
            "cargo build --profile {profile} of hcikit failed"
        );
        let bin = profile_dir.join("hcikit");
        assert!(bin.exists(), "{} not built", bin.display());
        bin
    })
}

/// Whether missing tools must fail tests instead of skipping them: under CI (`CI=true`,
/// which installs every tool, so a skip there would hide a missing install step) or with
/// `HCIKIT_REQUIRE_TOOLS=1`.
pub fn tools_required() -> bool {
    let set = |k: &str, v: &str| std::env::var(k).is_ok_and(|x| x == v);
    set("CI", "true") || set("HCIKIT_REQUIRE_TOOLS", "1")
}

/// Whether `program` is on PATH. When it is not: panics under [`tools_required`], else
/// prints a SKIPPED note naming the Debian package and returns false.
pub fn require_tool(program: &str, package: &str) -> bool {
    if hcikit_firstboot::cmd::have(program) {
        return true;
    }
    skip_or_fail(&format!(
        "`{program}` is not installed (Debian package {package}; scripts/setup.sh installs it)"
    ))
}

/// A test that cannot run here for `reason`: fails under [`tools_required`], otherwise
/// prints a SKIPPED note and returns false so the caller can return early.
pub fn skip_or_fail(reason: &str) -> bool {
    assert!(!tools_required(), "required under CI, but {reason}");
    eprintln!("SKIPPED: {reason}");
    false
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
