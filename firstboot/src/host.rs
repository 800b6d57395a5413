//! The one side-effect seam of the cluster run: commands, files, clock, network probes and
//! progress reports all go through [`Host`]. [`RealHost`] acts on the running node; the
//! simulator (the `hcikit-sim` crate) implements the same trait against a simulated cluster.

use anyhow::{Context, Result};
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Shown in place of a secret value in logs, errors and command logs.
pub const REDACTED: &str = "<redacted>";

/// An argv plus the secret API parameters that go to the program on stdin.
///
/// A secret can never be part of the argv: there is no method to put one there, so no
/// secret shows in `ps` or `/proc/<pid>/cmdline`. The plan names secrets by the path of
/// their file on the node; [`CommandLine::secret_stdin`] reads them just before running.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct CommandLine {
    args: Vec<String>,
    /// `(API parameter, path of the file holding its value)`, fed by
    /// [`crate::pveapi`]'s stdin.
    secret_params: Vec<(String, String)>,
    /// A [`crate::pveapi::command`]: its program comes on stdin, secrets or not.
    api_script: bool,
}

/// What a command with secret parameters is fed on stdin, and the values it holds (so
/// output that echoes one can be scrubbed).
pub struct SecretStdin {
    pub data: Vec<u8>,
    pub values: Vec<String>,
}

impl CommandLine {
    pub fn new(program: &str) -> Self {
        CommandLine {
            args: vec![program.to_string()],
            secret_params: Vec::new(),
            api_script: false,
        }
    }
    /// Marks a [`crate::pveapi::command`], whose program is fed on stdin.
    pub(crate) fn api_script(mut self) -> Self {
        self.api_script = true;
        self
    }
    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.args.push(a.into());
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
    /// API parameter `name` with the content of the secret file at `path` as its value,
    /// passed on stdin (see [`crate::pveapi`]); only for [`crate::pveapi::command`]s.
    pub fn secret_param(mut self, name: &str, path: impl Into<String>) -> Self {
        self.secret_params.push((name.to_string(), path.into()));
        self
    }
    /// The names of the secret parameters.
    pub fn secret_names(&self) -> impl Iterator<Item = &str> {
        self.secret_params.iter().map(|(n, _)| n.as_str())
    }
    /// Reads the secret files (trailing newline dropped) and builds the stdin of a
    /// [`crate::pveapi::command`] that carries them; `None` for any other command.
    pub fn secret_stdin(&self, host: &dyn Host) -> Result<Option<SecretStdin>> {
        if !self.api_script {
            anyhow::ensure!(
                self.secret_params.is_empty(),
                "secret parameters of {} have no way to the program",
                self.display()
            );
            return Ok(None);
        }
        let mut pairs = Vec::new();
        for (name, path) in &self.secret_params {
            let bytes = host
                .read(path)?
                .with_context(|| format!("secret file {path} is missing"))?;
            let v = String::from_utf8(bytes)
                .with_context(|| format!("secret file {path} is not UTF-8"))?;
            pairs.push((name.clone(), v.trim_end_matches(['\n', '\r']).to_string()));
        }
        Ok(Some(SecretStdin {
            data: crate::pveapi::stdin(&pairs),
            values: pairs.into_iter().map(|(_, v)| v).collect(),
        }))
    }
    /// The argv (never holds a secret).
    pub fn argv(&self) -> Vec<&str> {
        self.args.iter().map(String::as_str).collect()
    }
    pub fn program(&self) -> &str {
        &self.args[0]
    }
    /// The command line for humans, logs and errors; secret parameters are named, with
    /// their values redacted, after the argv.
    pub fn display(&self) -> String {
        let mut s = self
            .args
            .iter()
            .map(|a| crate::cmd::quote(a))
            .collect::<Vec<_>>()
            .join(" ");
        for (name, _) in &self.secret_params {
            s.push_str(&format!(" <stdin: {name}={REDACTED}>"));
        }
        s
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

    /// A host whose only file is one secret, for [`CommandLine::secret_stdin`].
    struct OneFile(&'static str, &'static [u8]);
    impl Host for OneFile {
        fn run(&self, _: &CommandLine, _: Option<&[u8]>, _: Duration) -> Result<Output> {
            unreachable!()
        }
        fn read(&self, path: &str) -> Result<Option<Vec<u8>>> {
            Ok((path == self.0).then(|| self.1.to_vec()))
        }
        fn write_atomic(&self, _: &str, _: &[u8], _: u32) -> Result<()> {
            unreachable!()
        }
        fn remove(&self, _: &str) -> Result<()> {
            unreachable!()
        }
        fn exists(&self, _: &str) -> bool {
            unreachable!()
        }
        fn resolve(&self, p: &str) -> Result<String> {
            Ok(p.into())
        }
        fn now_ms(&self) -> u64 {
            0
        }
        fn sleep(&self, _: Duration) {}
        fn reachable(&self, _: &str) -> bool {
            false
        }
        fn report(&self, _: &str) {}
    }

    #[test]
    fn secret_parameters_go_to_stdin_never_to_argv() {
        let c = crate::pveapi::command("create", "/cluster/notifications/endpoints/smtp")
            .opt("name", "mail")
            .secret_param("password", "/etc/hcikit/secrets/smtp")
            .opt("comment", "two words");
        let d = c.display();
        assert_eq!(
            d,
            "perl - create /cluster/notifications/endpoints/smtp --name mail --comment 'two words' <stdin: password=<redacted>>"
        );
        assert_eq!(format!("{c:?}"), d);
        let h = OneFile("/etc/hcikit/secrets/smtp", b"hunter2\n");
        let s = c.secret_stdin(&h).unwrap().unwrap();
        assert_eq!(s.values, ["hunter2"]);
        let (script, m) = crate::pveapi::split_stdin(&s.data).unwrap();
        assert_eq!(script, crate::pveapi::SCRIPT);
        assert_eq!(m["password"], "hunter2");
        assert!(c.argv().iter().all(|a| !a.contains("hunter2")));
        // Without secrets the script still comes on stdin, with no parameters.
        let plain = crate::pveapi::command("create", "/access/domains").opt("realm", "x");
        let s = plain.secret_stdin(&h).unwrap().unwrap();
        assert!(s.values.is_empty());
        assert!(crate::pveapi::split_stdin(&s.data).unwrap().1.is_empty());
        // Other commands have no such stdin, and cannot take secret parameters; a missing
        // secret file is an error naming it.
        assert!(CommandLine::new("true").secret_stdin(&h).unwrap().is_none());
        assert!(CommandLine::new("pvesh")
            .secret_param("password", "/etc/hcikit/secrets/smtp")
            .secret_stdin(&h)
            .is_err());
        let e = crate::pveapi::command("create", "/access/domains")
            .secret_param("password", "/nope")
            .secret_stdin(&h)
            .err()
            .unwrap();
        assert!(format!("{e:#}").contains("/nope"), "{e:#}");
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
