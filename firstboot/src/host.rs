//! The one side-effect seam of the cluster run: commands, files, clock, network probes and
//! progress reports all go through [`Host`]. [`RealHost`] acts on the running node; the
//! simulator (the `hcikit-sim` crate) implements the same trait against a simulated cluster.

use anyhow::{Context, Result};
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Shown in place of a secret argument in logs, errors and command logs.
pub const REDACTED: &str = "<redacted>";

/// One argument of a command line; secret ones never appear in [`CommandLine::display`].
#[derive(Clone, PartialEq, Eq)]
pub struct Arg {
    /// The value, or for a [`Arg::file`] argument the path of the file holding it.
    pub text: String,
    pub secret: bool,
    /// The real value is the content of the file at `text` (read just before running).
    pub file: bool,
}

/// An argv whose secret arguments are redacted whenever it is shown.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct CommandLine {
    pub args: Vec<Arg>,
}

impl CommandLine {
    pub fn new(program: &str) -> Self {
        CommandLine {
            args: vec![Arg {
                text: program.to_string(),
                secret: false,
                file: false,
            }],
        }
    }
    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.args.push(Arg {
            text: a.into(),
            secret: false,
            file: false,
        });
        self
    }
    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, it: I) -> Self {
        for a in it {
            self = self.arg(a);
        }
        self
    }
    /// `--name value`.
    pub fn opt(self, name: &str, value: impl Into<String>) -> Self {
        self.arg(format!("--{name}")).arg(value)
    }
    /// `--name <secret value>`: the value is passed to the program but never shown.
    pub fn secret_opt(mut self, name: &str, value: impl Into<String>) -> Self {
        self = self.arg(format!("--{name}"));
        self.args.push(Arg {
            text: value.into(),
            secret: true,
            file: false,
        });
        self
    }
    /// `--name <content of secret file>`: the plan names secrets by path; the runner
    /// reads the value just before executing ([`CommandLine::materialize`]).
    pub fn secret_file_opt(mut self, name: &str, path: impl Into<String>) -> Self {
        self = self.arg(format!("--{name}"));
        self.args.push(Arg {
            text: path.into(),
            secret: true,
            file: true,
        });
        self
    }
    /// Replaces secret-file arguments by the files' content (trailing newline dropped).
    pub fn materialize(&self, host: &dyn Host) -> Result<CommandLine> {
        let mut out = self.clone();
        for a in out.args.iter_mut().filter(|a| a.file) {
            let bytes = host
                .read(&a.text)?
                .with_context(|| format!("secret file {} is missing", a.text))?;
            let v = String::from_utf8(bytes)
                .with_context(|| format!("secret file {} is not UTF-8", a.text))?;
            a.text = v.trim_end_matches(['\n', '\r']).to_string();
            a.file = false;
        }
        Ok(out)
    }
    /// The real argv (contains secrets: only for executing).
    pub fn argv(&self) -> Vec<&str> {
        self.args.iter().map(|a| a.text.as_str()).collect()
    }
    pub fn program(&self) -> &str {
        &self.args[0].text
    }
    /// The command line for humans, logs and errors, with secrets redacted.
    pub fn display(&self) -> String {
        self.args
            .iter()
            .map(|a| {
                if a.secret {
                    REDACTED.to_string()
                } else {
                    crate::cmd::quote(&a.text)
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
    /// The secret values, so output that echoes one can be scrubbed.
    pub fn secrets(&self) -> impl Iterator<Item = &str> {
        self.args
            .iter()
            .filter(|a| a.secret)
            .map(|a| a.text.as_str())
    }
}

impl std::fmt::Debug for CommandLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display())
    }
}

/// What a finished (or timed-out) command produced.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Output {
    /// Exit code; 124 when it was killed by the timeout (as `timeout(1)` reports).
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == 0 && !self.timed_out
    }
    /// The last lines of stderr (or stdout when stderr is empty), for error messages.
    pub fn tail(&self) -> String {
        let s = if self.stderr.trim().is_empty() {
            &self.stdout
        } else {
            &self.stderr
        };
        crate::cmd::tail(s.as_bytes())
    }
}

/// Everything the cluster run does to the world.
pub trait Host {
    /// Runs `cmd` with optional stdin, killing it after `timeout`. `Err` only when it
    /// could not be started at all.
    fn run(&self, cmd: &CommandLine, stdin: Option<&[u8]>, timeout: Duration) -> Result<Output>;
    /// Reads a file; `None` if it does not exist.
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>>;
    /// Writes a file atomically: temp file, fsync, rename, fsync of the folder.
    fn write_atomic(&self, path: &str, data: &[u8], mode: u32) -> Result<()>;
    /// Removes a file; a missing file is not an error.
    fn remove(&self, path: &str) -> Result<()>;
    fn exists(&self, path: &str) -> bool;
    /// Canonical form of a device path (`/dev/disk/by-id/…` → `/dev/sdb`).
    fn resolve(&self, path: &str) -> Result<String>;
    /// Milliseconds since the Unix epoch (virtual in the simulator).
    fn now_ms(&self) -> u64;
    fn sleep(&self, d: Duration);
    /// Does `ip` answer (TCP connect to its SSH port)?
    fn reachable(&self, ip: &str) -> bool;
    /// A progress line for humans: console, service status, journal.
    fn report(&self, line: &str);
    /// The run verified (or failed to verify) the effect of its last command for `step`.
    /// Only the simulator records this (in its command log); the journal has it anyway.
    fn verified(&self, _step: &str, _ok: bool) {}
    /// Sends a fleet progress report to the spec's report URL. Best effort: never fails
    /// the run. The simulator has no sink and keeps the default, which sends nothing.
    fn post_report(&self, _url: &str, _report: &crate::report::Report) {}
}

/// The running node.
#[derive(Debug, Default)]
pub struct RealHost {
    _private: (),
}

impl RealHost {
    pub fn new() -> Self {
        RealHost { _private: () }
    }
}

/// How long a reachability probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

impl Host for RealHost {
    fn run(&self, cmd: &CommandLine, stdin: Option<&[u8]>, timeout: Duration) -> Result<Output> {
        let line = cmd.display();
        tracing::info!(command = %line, "running");
        let argv = cmd.argv();
        let done =
            crate::cmd::execute(Command::new(argv[0]).args(&argv[1..]), stdin, Some(timeout))
                .with_context(|| format!("starting `{line}`"))?;
        Ok(Output {
            // 124 for a timeout, as timeout(1) reports; 128 for a signal.
            code: match done.status {
                None => 124,
                Some(st) => st.code().unwrap_or(128),
            },
            timed_out: done.timed_out(),
            stdout: String::from_utf8_lossy(&done.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&done.stderr).into_owned(),
        })
    }

    fn read(&self, path: &str) -> Result<Option<Vec<u8>>> {
        match std::fs::read(path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {path}")),
        }
    }

    fn write_atomic(&self, path: &str, data: &[u8], mode: u32) -> Result<()> {
        write_atomic(Path::new(path), data, mode)
    }

    fn remove(&self, path: &str) -> Result<()> {
        match std::fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).with_context(|| format!("removing {path}")),
        }
    }

    fn exists(&self, path: &str) -> bool {
        Path::new(path).exists()
    }

    fn resolve(&self, path: &str) -> Result<String> {
        let p = std::fs::canonicalize(path).with_context(|| format!("resolving {path}"))?;
        Ok(p.to_string_lossy().into_owned())
    }

    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }

    fn sleep(&self, d: Duration) {
        std::thread::sleep(d)
    }

    fn reachable(&self, ip: &str) -> bool {
        let Ok(addr) = format!("{ip}:22").parse::<std::net::SocketAddr>() else {
            return false;
        };
        std::net::TcpStream::connect_timeout(&addr, PROBE_TIMEOUT).is_ok()
    }

    fn report(&self, line: &str) {
        tracing::info!("{line}");
        if Path::new("/dev/console").exists() {
            if let Ok(mut c) = std::fs::OpenOptions::new().write(true).open("/dev/console") {
                let _ = writeln!(c, "hcikit: {line}");
            }
        }
        sd_notify_status(line);
    }

    fn post_report(&self, url: &str, report: &crate::report::Report) {
        crate::report::send(url, report);
    }
}

/// `STATUS=` for `systemctl status`, when started by systemd with a notify socket.
fn sd_notify_status(line: &str) {
    use std::os::unix::net::UnixDatagram;
    let Some(sock) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let Ok(s) = UnixDatagram::unbound() else {
        return;
    };
    let msg = format!("STATUS={}", line.replace('\n', " "));
    let sock = sock.to_string_lossy().into_owned();
    if let Some(name) = sock.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        if let Ok(addr) = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()) {
            let _ = s.send_to_addr(msg.as_bytes(), &addr);
        }
    } else {
        let _ = s.send_to(msg.as_bytes(), sock);
    }
}

/// Temp file in the same folder, fsync, rename over, fsync the folder.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let dir = path
        .parent()
        .with_context(|| format!("{} has no parent folder", path.display()))?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let name = path
        .file_name()
        .with_context(|| format!("{} has no file name", path.display()))?
        .to_string_lossy();
    let tmp = dir.join(format!(".{name}.hcikit-tmp"));
    {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(data)
            .with_context(|| format!("writing {}", tmp.display()))?;
        // pmxcfs (/etc/pve) fixes modes itself and refuses chmod; elsewhere the mode must
        // hold despite the umask.
        if let Err(e) = f.set_permissions(std::fs::Permissions::from_mode(mode)) {
            if !path.starts_with("/etc/pve") {
                return Err(e).with_context(|| format!("setting mode of {}", tmp.display()));
            }
        }
        f.sync_all()
            .with_context(|| format!("syncing {}", tmp.display()))?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("renaming into {}", path.display()))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_host_runs_with_stdin_exit_code_and_timeout() {
        let h = RealHost::new();
        let sh = CommandLine::new("sh")
            .arg("-c")
            .arg("cat; echo oops >&2; exit 3");
        let o = h.run(&sh, Some(b"hello"), Duration::from_secs(10)).unwrap();
        assert_eq!((o.code, o.timed_out), (3, false));
        assert_eq!((o.stdout.as_str(), o.stderr.as_str()), ("hello", "oops\n"));
        let slow = CommandLine::new("sleep").arg("5");
        let o = h.run(&slow, None, Duration::from_millis(200)).unwrap();
        assert_eq!((o.code, o.timed_out), (124, true));
        assert!(h
            .run(
                &CommandLine::new("hcikit-no-such-tool"),
                None,
                Duration::from_secs(1)
            )
            .is_err());
    }

    #[test]
    fn secret_arguments_are_redacted_in_display() {
        let c = CommandLine::new("pvesh")
            .arg("create")
            .secret_opt("password", "hunter2")
            .opt("comment", "two words");
        let d = c.display();
        assert_eq!(
            d,
            "pvesh create --password <redacted> --comment 'two words'"
        );
        assert_eq!(c.argv()[3], "hunter2");
        assert_eq!(format!("{c:?}"), d);
    }

    #[test]
    fn real_host_runs_with_stdin_and_timeout() {
        let h = RealHost::new();
        let out = h
            .run(
                &CommandLine::new("sh")
                    .arg("-c")
                    .arg("read x; echo got $x; exit 3"),
                Some(b"hello\n"),
                Duration::from_secs(10),
            )
            .unwrap();
        assert_eq!(out.code, 3);
        assert_eq!(out.stdout.trim(), "got hello");
        let out = h
            .run(
                &CommandLine::new("sleep").arg("5"),
                None,
                Duration::from_millis(300),
            )
            .unwrap();
        assert!(out.timed_out && out.code == 124);
    }

    #[test]
    fn atomic_write_replaces_and_sets_mode() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sub/state.json");
        write_atomic(&p, b"one", 0o600).unwrap();
        write_atomic(&p, b"two", 0o600).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(std::fs::read_dir(p.parent().unwrap()).unwrap().count(), 1);
    }
}
