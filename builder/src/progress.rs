//! Progress display: indicatif bars on a terminal, plain lines otherwise (CI logs,
//! pipes). Output goes to stdout; logs and errors go to stderr.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::time::Instant;

#[derive(Debug, Clone, Copy)]
pub struct Progress {
    tty: bool,
    quiet: bool,
}

impl Progress {
    /// Bars when stdout is a terminal, else plain lines.
    pub fn auto() -> Progress {
        Progress {
            tty: std::io::stdout().is_terminal(),
            quiet: false,
        }
    }
    /// No output at all (library callers, tests).
    pub fn quiet() -> Progress {
        Progress {
            tty: false,
            quiet: true,
        }
    }

    /// A task; `total` bytes give a bar, `None` a spinner.
    pub fn task(&self, msg: impl Into<String>, total: Option<u64>) -> Task {
        let msg = msg.into();
        let bar = if self.quiet {
            None
        } else if self.tty {
            let bar = match total {
                Some(n) => ProgressBar::new(n).with_style(
                    ProgressStyle::with_template(
                        "{spinner} {msg:24} [{bar:30}] {bytes}/{total_bytes} {elapsed}",
                    )
                    .expect("valid template")
                    .progress_chars("=> "),
                ),
                None => ProgressBar::new_spinner().with_style(
                    ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                        .expect("valid template"),
                ),
            };
            bar.set_message(msg.clone());
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            Some(bar)
        } else {
            println!("{msg} ...");
            None
        };
        Task {
            bar,
            msg,
            start: Instant::now(),
            quiet: self.quiet,
        }
    }
}

pub struct Task {
    bar: Option<ProgressBar>,
    msg: String,
    start: Instant,
    quiet: bool,
}

impl Task {
    pub fn inc(&self, n: u64) {
        if let Some(b) = &self.bar {
            b.inc(n);
        }
    }

    /// Ends the task with a note (e.g. "cached").
    pub fn finish(self, note: &str) {
        let secs = self.start.elapsed().as_secs_f64();
        match &self.bar {
            Some(b) => b.finish_with_message(format!("{} {note} ({secs:.1}s)", self.msg)),
            None if !self.quiet => println!("{}: {note} ({secs:.1}s)", self.msg),
            None => {}
        }
    }
}
