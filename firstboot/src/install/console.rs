//! The installer's console: every line goes to each console (VGA `tty1` and serial
//! `ttyS0` when present, else stderr) and into the log that is written back to the stick
//! (`hcikit/logs/<node>-<time>.log`), redacted. Questions are read from any console.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

/// Consoles the installer talks on, when they exist.
pub const CONSOLES: &[&str] = &["/dev/tty1", "/dev/ttyS0"];

pub struct Console {
    outs: Vec<File>,
    ins: Option<Receiver<String>>,
    log: Vec<String>,
    start: Instant,
}

impl Console {
    /// Opens the given consoles (those that fail to open are skipped); with none, lines go
    /// to stderr and questions are never answered.
    pub fn open(paths: &[PathBuf], interactive: bool) -> Console {
        let mut outs = Vec::new();
        let (tx, rx) = channel();
        let mut any_in = false;
        for p in paths {
            if let Ok(f) = std::fs::OpenOptions::new().write(true).open(p) {
                outs.push(f);
            }
            if interactive {
                if let Ok(f) = File::open(p) {
                    any_in = true;
                    let tx = tx.clone();
                    // One reader per console; lines from any of them answer a question.
                    std::thread::spawn(move || {
                        for line in BufReader::new(f).lines() {
                            let Ok(line) = line else { break };
                            if tx.send(line).is_err() {
                                break;
                            }
                        }
                    });
                }
            }
        }
        Console {
            outs,
            ins: any_in.then_some(rx),
            log: Vec::new(),
            start: Instant::now(),
        }
    }

    /// A console that only logs (tests, `--dry-run` output captured by the caller).
    pub fn quiet() -> Console {
        Console {
            outs: Vec::new(),
            ins: None,
            log: Vec::new(),
            start: Instant::now(),
        }
    }

    pub fn interactive(&self) -> bool {
        self.ins.is_some()
    }

    /// Shows a line on every console and records it.
    pub fn say(&mut self, text: &str) {
        for line in text.lines() {
            let stamped = format!("[{:7.1}s] {line}", self.start.elapsed().as_secs_f64());
            self.log.push(redact(&stamped));
            if self.outs.is_empty() {
                eprintln!("{line}");
            }
            for o in &mut self.outs {
                // Consoles in raw-ish modes need the carriage return.
                let _ = o.write_all(format!("{line}\r\n").as_bytes());
            }
        }
    }

    /// Waits up to `timeout` (forever when `None`) for a line typed on any console.
    pub fn ask(&mut self, timeout: Option<Duration>) -> Option<String> {
        let rx = self.ins.as_ref()?;
        while rx.try_recv().is_ok() {} // drop what was typed before the question
        match timeout {
            Some(t) => rx.recv_timeout(t).ok(),
            None => rx.recv().ok(),
        }
    }

    pub fn log_text(&self) -> String {
        let mut s = self.log.join("\n");
        s.push('\n');
        s
    }
}

/// Removes what must never reach a log: private keys, password hashes, tokens.
pub fn redact(line: &str) -> String {
    if line.contains("PRIVATE KEY") {
        return "[redacted line]".into();
    }
    let mut out = Vec::new();
    for word in line.split(' ') {
        let w = word.trim_matches(|c: char| "\"',;()".contains(c));
        let secret = w.starts_with("$6$")
            || w.starts_with("$5$")
            || w.starts_with("$y$")
            || w.starts_with("$2b$")
            || ["password=", "pass=", "token=", "secret=", "key="]
                .iter()
                .any(|k| w.to_ascii_lowercase().starts_with(k));
        out.push(if secret { "[redacted]" } else { word });
    }
    out.join(" ")
}

/// `<node>-<YYYYMMDD>-<HHMMSS>.log` for a UTC time in seconds since the epoch.
pub fn log_name(node: &str, epoch: u64) -> String {
    let days = (epoch / 86_400) as i64;
    let secs = epoch % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{node}-{y:04}{m:02}{d:02}-{:02}{:02}{:02}.log",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Writes the log into `<stick>/hcikit/logs/` and syncs it (the stick may be pulled as
/// soon as the machine powers off). Never replaces an earlier log: two runs in the same
/// second (or a guest clock that went back) get `-2`, `-3`, … before `.log`.
pub fn write_log(stick_esp: &Path, name: &str, text: &str) -> anyhow::Result<PathBuf> {
    use anyhow::Context;
    let dir = stick_esp.join(crate::layout::ESP_DIR).join("logs");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let stem = name.strip_suffix(".log").unwrap_or(name);
    let mut n = 1;
    let (path, mut f) = loop {
        let path = if n == 1 {
            dir.join(name)
        } else {
            dir.join(format!("{stem}-{n}.log"))
        };
        match File::options().write(true).create_new(true).open(&path) {
            Ok(f) => break (path, f),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 100 => n += 1,
            Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
        }
    };
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    File::open(&dir)?.sync_all()?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted() {
        assert_eq!(
            redact("hash $6$abc$def and password=hunter2 ok"),
            "hash [redacted] and [redacted] ok"
        );
        assert_eq!(
            redact("x -----BEGIN OPENSSH PRIVATE KEY-----"),
            "[redacted line]"
        );
        assert_eq!(redact("writing 42.0 % 12 MB/s"), "writing 42.0 % 12 MB/s");
    }

    #[test]
    fn log_names_use_utc_dates() {
        assert_eq!(log_name("pve1", 0), "pve1-19700101-000000.log");
        assert_eq!(log_name("pve2", 1_795_995_180), "pve2-20261129-233300.log");
        assert_eq!(log_name("n", 951_782_400), "n-20000229-000000.log");
    }

    #[test]
    fn log_lands_on_the_stick_and_is_redacted() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Console::quiet();
        c.say("node pve1\nroot hash $6$x$y");
        assert!(!c.interactive());
        assert_eq!(c.ask(Some(Duration::from_millis(1))), None);
        let p = write_log(dir.path(), "pve1-x.log", &c.log_text()).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        // A second run with the same name keeps the first log.
        let p2 = write_log(dir.path(), "pve1-x.log", "second").unwrap();
        assert_eq!(p2.file_name().unwrap(), "pve1-x-2.log");
        assert_eq!(std::fs::read_to_string(&p).unwrap(), text);
        assert!(
            text.contains("node pve1") && text.contains("[redacted]") && !text.contains("$6$"),
            "{text}"
        );
    }
}
