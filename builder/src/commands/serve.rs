//! `hcikit serve`: serve a `--pxe` tree over HTTP and show the fleet's progress until
//! interrupted.

use crate::error::InputError;
use crate::media::fleet::{json_line, plain_line};
use crate::media::serve::Server;
use anyhow::Result;
use hcikit_firstboot::report::REPORT_PATH;
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, SystemTime};

/// The default address: this machine only. Serving a site's network is a decision the
/// admin makes by naming an address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The folder to serve, e.g. out/pxe from `hcikit build --pxe`.
    pub dir: PathBuf,
    /// Address and port to listen on, e.g. 10.0.0.5:8080 or 0.0.0.0:8080.
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_LISTEN)]
    pub listen: String,
    /// One JSON object per received report on stdout, for scripts.
    #[arg(long)]
    pub json: bool,
}

/// How the fleet is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum View {
    Table,
    Lines,
    Json,
}

pub fn run(args: Args) -> Result<()> {
    let listen: SocketAddr = args.listen.parse().map_err(|_| {
        InputError::new(format!(
            "--listen {}: not an address and port (e.g. 127.0.0.1:8080, 10.0.0.5:8080, [::1]:8080)",
            args.listen
        ))
    })?;
    if !args.dir.is_dir() {
        return Err(InputError::new(format!(
            "{}: no such folder (build one with `hcikit build SPEC -o OUT --pxe`, then serve OUT/pxe)",
            args.dir.display()
        ))
        .into());
    }
    let (server, events) = Server::start(&args.dir, listen)?;
    let view = if args.json {
        View::Json
    } else if std::io::stdout().is_terminal() {
        View::Table
    } else {
        View::Lines
    };
    eprintln!(
        "serving {} on http://{}/ ; reports: POST http://{}{REPORT_PATH}",
        args.dir.display(),
        server.addr(),
        server.addr()
    );
    let mut out = std::io::stdout().lock();
    let mut drawn_lines = 0;
    loop {
        // The table refreshes every second so "last seen" keeps counting.
        let event = events.recv_timeout(Duration::from_secs(1));
        match (&event, view) {
            (Err(RecvTimeoutError::Disconnected), _) => return Ok(()),
            (Ok((r, at)), View::Json) => writeln!(out, "{}", json_line(r, *at))?,
            (Ok((r, _)), View::Lines) => writeln!(out, "{}", plain_line(r))?,
            (_, View::Table) => {
                let table = server.fleet().table(SystemTime::now());
                // Move up over the previous table and clear to the end of the screen.
                if drawn_lines > 0 {
                    write!(out, "\x1b[{drawn_lines}A\x1b[J")?;
                }
                write!(out, "{table}")?;
                drawn_lines = table.lines().count();
            }
            (Err(RecvTimeoutError::Timeout), _) => {}
        }
        out.flush()?;
    }
}
