//! The one command runner of hcikit, for the builder and the agent: it starts a process
//! with piped output, feeds its stdin, bounds it by a timeout, and renders command lines
//! for humans. [`run`] is the builder's "must succeed" form; the agent's
//! `host::RealHost::run` uses [`execute`] and judges the output itself.

use anyhow::{bail, Context, Result};
use std::ffi::OsStr;
use std::io::{Read, Write};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How many bytes of stderr go into an error message.
const STDERR_TAIL: usize = 2000;

/// A command line rendered for humans and error messages.
pub fn display(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&quote(&a.to_string_lossy()));
    }
    s
}

/// One argument as a POSIX shell would need it: bare when it is plainly safe, else in
/// single quotes.
pub fn quote(a: &str) -> String {
    if !a.is_empty()
        && a.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@+%".contains(c))
    {
        a.to_string()
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

/// What a finished (or timed-out) process produced.
#[derive(Debug)]
pub struct Finished {
    /// `None` when the timeout killed it.
    pub status: Option<ExitStatus>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Finished {
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }
    pub fn timed_out(&self) -> bool {
        self.status.is_none()
    }
}

/// How often a process with a timeout is checked for having exited.
const POLL: Duration = Duration::from_millis(100);

/// Runs `cmd` to completion: stdout and stderr always piped (any redirection the caller
/// set is replaced) and drained on threads (so a chatty program cannot block on a full
/// pipe), `stdin` fed when given (else `/dev/null`), and killed after `timeout`. `Err`
/// only when it could not be started.
pub fn execute(
    cmd: &mut Command,
    stdin: Option<&[u8]>,
    timeout: Option<Duration>,
) -> std::io::Result<Finished> {
    let mut child = cmd
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let (Some(data), Some(mut w)) = (stdin, child.stdin.take()) {
        // A program that exits without reading its stdin closes the pipe: not an error.
        let _ = w.write_all(data);
    }
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut b = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut b);
            }
            b
        })
    };
    let out_t = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err_t = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let status = match timeout {
        None => Some(child.wait()?),
        Some(limit) => {
            let start = Instant::now();
            loop {
                if let Some(st) = child.try_wait()? {
                    break Some(st);
                }
                if start.elapsed() >= limit {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
                std::thread::sleep(POLL);
            }
        }
    };
    Ok(Finished {
        status,
        stdout: out_t.join().unwrap_or_default(),
        stderr: err_t.join().unwrap_or_default(),
    })
}

/// Runs `cmd` (no stdin, no timeout), captures stdout and stderr, and fails unless it
/// exits 0. A missing program is reported as such (with `hint`, e.g. the Debian package
/// to install).
pub fn run(cmd: &mut Command, hint: Option<&str>) -> Result<Finished> {
    let line = display(cmd);
    tracing::debug!(command = %line, "running");
    // `output()` captures stdout and stderr unless the caller redirected them (an
    // `xz -dc` into a file, say), which `execute` would override.
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| spawn_error(e, cmd.get_program(), hint))
        .with_context(|| format!("running `{line}`"))?;
    if !out.status.success() {
        bail!("`{line}` failed ({}): {}", out.status, tail(&out.stderr));
    }
    Ok(Finished {
        status: Some(out.status),
        stdout: out.stdout,
        stderr: out.stderr,
    })
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

    #[test]
    fn execute_feeds_stdin_and_kills_at_the_timeout() {
        let out = execute(
            Command::new("sh").args(["-c", "cat; echo err >&2"]),
            Some(b"in\n"),
            Some(Duration::from_secs(10)),
        )
        .unwrap();
        assert!(out.success());
        assert_eq!(out.stdout, b"in\n");
        assert_eq!(out.stderr, b"err\n");
        let slow = execute(
            Command::new("sleep").arg("5"),
            None,
            Some(Duration::from_millis(200)),
        )
        .unwrap();
        assert!(slow.timed_out() && !slow.success());
    }

    #[test]
    fn quote_leaves_plain_words_bare() {
        assert_eq!(quote("--link0"), "--link0");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
    }
}
