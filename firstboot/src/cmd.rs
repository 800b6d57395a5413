//! The one helper for running external commands: it logs the command line and, on
//! failure, puts the command line and the tail of stderr into the error.

use anyhow::{bail, Context, Result};
use std::ffi::OsStr;
use std::process::{Command, Output, Stdio};

/// How many bytes of stderr go into an error message.
const STDERR_TAIL: usize = 2000;

/// A command line rendered for humans and error messages.
pub fn display(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&quote(a));
    }
    s
}

fn quote(a: &OsStr) -> String {
    let a = a.to_string_lossy();
    if !a.is_empty()
        && a.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@+%".contains(c))
    {
        a.into_owned()
    } else {
        format!("'{}'", a.replace('\'', r"'\''"))
    }
}

/// Tail of a byte buffer as lossy UTF-8, cut at a character boundary.
pub fn tail(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(bytes);
    let s = s.trim_end();
    if s.len() <= STDERR_TAIL {
        return s.to_string();
    }
    let mut start = s.len() - STDERR_TAIL;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    format!("…{}", &s[start..])
}

/// Runs `cmd`, captures stdout and stderr, and fails unless it exits 0.
/// A missing program is reported as such (with `hint`, e.g. the Debian package to install).
pub fn run(cmd: &mut Command, hint: Option<&str>) -> Result<Output> {
    let line = display(cmd);
    tracing::debug!(command = %line, "running");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| spawn_error(e, cmd.get_program(), hint))
        .with_context(|| format!("running `{line}`"))?;
    if !out.status.success() {
        bail!("`{line}` failed ({}): {}", out.status, tail(&out.stderr));
    }
    Ok(out)
}

/// Like [`run`] but returns stdout as a string.
pub fn run_stdout(cmd: &mut Command, hint: Option<&str>) -> Result<String> {
    let out = run(cmd, hint)?;
    String::from_utf8(out.stdout).context("command output is not UTF-8")
}

fn spawn_error(e: std::io::Error, program: &OsStr, hint: Option<&str>) -> anyhow::Error {
    if e.kind() == std::io::ErrorKind::NotFound {
        match hint {
            Some(h) => anyhow::anyhow!("`{}` not found: install {h}", program.to_string_lossy()),
            None => anyhow::anyhow!("`{}` not found", program.to_string_lossy()),
        }
    } else {
        anyhow::Error::new(e)
    }
}

/// Is `program` on PATH?
pub fn have(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failing_command_reports_line_and_stderr() {
        let err = run(
            Command::new("sh").args(["-c", "echo boom >&2; exit 3"]),
            None,
        )
        .unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("sh -c 'echo boom >&2; exit 3'"), "{msg}");
        assert!(msg.contains("boom"), "{msg}");
    }

    #[test]
    fn missing_program_names_the_package() {
        let err = run(
            &mut Command::new("hcikit-no-such-tool"),
            Some("the e2fsprogs package"),
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("install the e2fsprogs package"));
    }

    #[test]
    fn tail_keeps_the_end() {
        let long = "x".repeat(5000) + "END";
        let t = tail(long.as_bytes());
        assert!(t.ends_with("END") && t.len() < 2100);
    }
}
