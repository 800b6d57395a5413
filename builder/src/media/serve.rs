//! `hcikit serve`'s HTTP side: files of one tree (GET, HEAD, single byte ranges) for many
//! clients at once, and the fleet's progress sink (`POST /report`). HTTP parsing is
//! tiny_http's; this module only maps requests to files and reports.

use super::fleet::Fleet;
use anyhow::{Context, Result};
use hcikit_firstboot::report::{Report, MAX_REPORT_BYTES, REPORT_PATH};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::SystemTime;
use tiny_http::{Header, Method, Request, Response, StatusCode};

/// Worker threads: each serves one request at a time, and a node streaming the root
/// holds one for minutes, so there are many more than cores.
pub const WORKERS: usize = 32;
/// `GET /unknown-mac/<mac>`: the boot script's note that a machine is not in the spec.
pub const UNKNOWN_MAC_PATH: &str = "/unknown-mac/";

/// The fleet entry of a machine whose MAC no node has: `unknown-aa-bb-cc-dd-ee-ff`,
/// failed with the reason. `None` unless `mac` is a MAC (iPXE's lower-case colon form).
pub fn unknown_mac_report(mac: &str) -> Option<Report> {
    let ok = mac.len() == 17
        && mac.split(':').count() == 6
        && mac
            .split(':')
            .all(|b| b.len() == 2 && b.bytes().all(|c| c.is_ascii_hexdigit()));
    if !ok {
        return None;
    }
    let mac = mac.to_ascii_lowercase();
    Some(Report::now(
        &format!("unknown-{}", mac.replace(':', "-")),
        hcikit_firstboot::report::Stage::Failed {
            reason: format!(
                "MAC {mac} is not a node of this cluster; nothing installed (add it as nodes[].mac and rebuild with --pxe)"
            ),
        },
    ))
}

/// A running server. Dropping it stops the workers.
pub struct Server {
    http: Arc<tiny_http::Server>,
    workers: Vec<JoinHandle<()>>,
    shared: Arc<Shared>,
    addr: SocketAddr,
}

/// What the workers share.
struct Shared {
    root: PathBuf,
    fleet: Mutex<Fleet>,
    events: Mutex<Sender<(Report, SystemTime)>>,
    bytes_served: AtomicU64,
}

impl Server {
    /// Binds `listen` and serves `root` on [`WORKERS`] threads. Received reports also go
    /// to the returned receiver, in arrival order, for the display.
    pub fn start(
        root: &Path,
        listen: SocketAddr,
    ) -> Result<(Server, Receiver<(Report, SystemTime)>)> {
        let root = root
            .canonicalize()
            .with_context(|| format!("serving {}", root.display()))?;
        anyhow::ensure!(root.is_dir(), "{} is not a folder", root.display());
        let http = tiny_http::Server::http(listen)
            .map_err(|e| anyhow::anyhow!("listening on {listen}: {e}"))?;
        let addr = http
            .server_addr()
            .to_ip()
            .context("the server has no IP address")?;
        let http = Arc::new(http);
        let (tx, rx) = channel();
        let shared = Arc::new(Shared {
            root,
            fleet: Mutex::new(Fleet::default()),
            events: Mutex::new(tx),
            bytes_served: AtomicU64::new(0),
        });
        let workers = (0..WORKERS)
            .map(|_| {
                let http = Arc::clone(&http);
                let shared = Arc::clone(&shared);
                std::thread::spawn(move || {
                    // recv fails only once the server is unblocked: shutting down.
                    while let Ok(req) = http.recv() {
                        shared.handle(req);
                    }
                })
            })
            .collect();
        Ok((
            Server {
                http,
                workers,
                shared,
                addr,
            },
            rx,
        ))
    }

    /// The bound address (the port, when `listen` asked for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A copy of the fleet's state.
    pub fn fleet(&self) -> Fleet {
        self.shared.fleet.lock().expect("fleet lock").clone()
    }

    /// File bytes sent so far (bodies only).
    pub fn bytes_served(&self) -> u64 {
        self.shared.bytes_served.load(Ordering::Relaxed)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        for _ in &self.workers {
            self.http.unblock();
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

impl Shared {
    fn handle(&self, mut req: Request) {
        let method = req.method().clone();
        let url = req.url().to_string();
        tracing::debug!("{method} {url} from {:?}", req.remote_addr());
        let result = match (&method, url.split('?').next().unwrap_or("")) {
            (Method::Post, REPORT_PATH) => {
                let r = self.report(&mut req);
                req.respond(r)
            }
            (Method::Get, path) if path.starts_with(UNKNOWN_MAC_PATH) => {
                // iPXE escapes the colons of `${net0/mac}` in a URL (`%3A`).
                let mac = percent_decode(&path[UNKNOWN_MAC_PATH.len()..]).unwrap_or_default();
                let r = self.unknown_mac(&mac);
                req.respond(r)
            }
            (Method::Get | Method::Head, path) => match self.file(path, &req) {
                Ok(r) => req.respond(r),
                Err(r) => req.respond(r),
            },
            _ => req.respond(text(405, "only GET, HEAD and POST /report\n")),
        };
        if let Err(e) = result {
            tracing::debug!("{method} {url}: client went away: {e}");
        }
    }

    /// Records a machine the boot script did not know (it fetches this URL before it
    /// stops), so the fleet view shows it as failed with its MAC.
    fn unknown_mac(&self, mac: &str) -> Response<std::io::Cursor<Vec<u8>>> {
        let Some(r) = unknown_mac_report(mac) else {
            return text(400, "not a MAC address (aa:bb:cc:dd:ee:ff)\n");
        };
        let now = SystemTime::now();
        self.fleet.lock().expect("fleet lock").apply(&r, now);
        let _ = self.events.lock().expect("events lock").send((r, now));
        text(200, "recorded\n")
    }

    /// Reads and records one report; 204 on success.
    fn report(&self, req: &mut Request) -> Response<std::io::Cursor<Vec<u8>>> {
        let mut body = Vec::new();
        if let Err(e) = req
            .as_reader()
            .take(MAX_REPORT_BYTES + 1)
            .read_to_end(&mut body)
        {
            return text(400, &format!("reading the report: {e}\n"));
        }
        if body.len() as u64 > MAX_REPORT_BYTES {
            return text(
                413,
                &format!("a report is at most {MAX_REPORT_BYTES} bytes\n"),
            );
        }
        match Report::parse(&body) {
            Err(m) => text(400, &format!("{m}\n")),
            Ok(r) => {
                let now = SystemTime::now();
                self.fleet.lock().expect("fleet lock").apply(&r, now);
                // The display may have gone; the fleet state still holds the report.
                let _ = self.events.lock().expect("events lock").send((r, now));
                text(204, "")
            }
        }
    }

    /// A file of the tree, whole or one byte range.
    fn file(
        &self,
        url_path: &str,
        req: &Request,
    ) -> Result<Response<Body>, Response<std::io::Cursor<Vec<u8>>>> {
        let path = resolve(&self.root, url_path).map_err(|m| text(m.0, &m.1))?;
        let mut f = File::open(&path).map_err(|_| text(404, "not found\n"))?;
        let len = f.metadata().map_err(|_| text(404, "not found\n"))?.len();
        let range = req
            .headers()
            .iter()
            .find(|h| h.field.equiv("Range"))
            .map(|h| h.value.as_str().to_string());
        let (status, start, count) = match range.as_deref().map(|r| parse_range(r, len)) {
            None | Some(RangeAnswer::Whole) => (200, 0, len),
            Some(RangeAnswer::Part(a, b)) => (206, a, b - a + 1),
            Some(RangeAnswer::Unsatisfiable) => {
                return Err(text(416, "range not satisfiable\n")
                    .with_header(header("Content-Range", &format!("bytes */{len}"))));
            }
        };
        f.seek(SeekFrom::Start(start))
            .map_err(|_| text(500, "seek failed\n"))?;
        if *req.method() == Method::Get {
            self.bytes_served.fetch_add(count, Ordering::Relaxed);
        }
        let mut headers = vec![
            header("Accept-Ranges", "bytes"),
            header("Content-Type", content_type(&path)),
        ];
        if status == 206 {
            headers.push(header(
                "Content-Range",
                &format!("bytes {start}-{}/{len}", start + count - 1),
            ));
        }
        // The length is known: Content-Length, never chunked (iPXE and the installer
        // check the length of what they fetched).
        Ok(Response::new(
            StatusCode(status),
            headers,
            f.take(count),
            Some(count as usize),
            None,
        )
        .with_chunked_threshold(usize::MAX))
    }
}

type Body = std::io::Take<File>;

/// What a `Range` header asks of a file of `len` bytes. Only one range is honoured; a
/// multi-range request gets the whole file, as RFC 9110 section 14.2 allows.
#[derive(Debug, PartialEq, Eq)]
pub enum RangeAnswer {
    Whole,
    /// First and last byte, inclusive.
    Part(u64, u64),
    Unsatisfiable,
}

/// Parses `bytes=A-B`, `bytes=A-` and `bytes=-N` against a file of `len` bytes.
pub fn parse_range(value: &str, len: u64) -> RangeAnswer {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return RangeAnswer::Whole;
    };
    if spec.contains(',') {
        return RangeAnswer::Whole;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeAnswer::Whole;
    };
    let (a, b) = (a.trim(), b.trim());
    let num = |s: &str| s.parse::<u64>().ok();
    match (a.is_empty(), b.is_empty()) {
        // A suffix: the last N bytes.
        (true, false) => match num(b) {
            Some(0) => RangeAnswer::Unsatisfiable,
            Some(n) if len > 0 => RangeAnswer::Part(len.saturating_sub(n), len - 1),
            Some(_) => RangeAnswer::Unsatisfiable,
            None => RangeAnswer::Whole,
        },
        (false, true) => match num(a) {
            Some(a) if a < len => RangeAnswer::Part(a, len - 1),
            Some(_) => RangeAnswer::Unsatisfiable,
            None => RangeAnswer::Whole,
        },
        (false, false) => match (num(a), num(b)) {
            (Some(a), Some(b)) if a <= b && a < len => RangeAnswer::Part(a, b.min(len - 1)),
            (Some(a), Some(b)) if a <= b => RangeAnswer::Unsatisfiable,
            _ => RangeAnswer::Whole,
        },
        (true, true) => RangeAnswer::Whole,
    }
}

/// Maps a URL path to a regular file under `root`. Refused: percent-escapes that do not
/// decode, NUL, backslashes, `.`/`..` segments, and anything whose real path (symlinks
/// followed) leaves `root`. Directories are not listed.
pub fn resolve(root: &Path, url_path: &str) -> Result<PathBuf, (u16, String)> {
    let refuse = || (403, "forbidden path\n".to_string());
    let decoded = percent_decode(url_path).ok_or_else(refuse)?;
    if !decoded.starts_with('/') || decoded.contains(['\0', '\\']) {
        return Err(refuse());
    }
    let mut path = root.to_path_buf();
    for seg in decoded.split('/').filter(|s| !s.is_empty()) {
        if seg == "." || seg == ".." {
            return Err(refuse());
        }
        path.push(seg);
    }
    let real = path
        .canonicalize()
        .map_err(|_| (404, "not found\n".to_string()))?;
    if !real.starts_with(root) {
        return Err(refuse());
    }
    if !real.is_file() {
        return Err((404, "not found\n".to_string()));
    }
    Ok(real)
}

/// `%XX` decoding to UTF-8; `None` for a broken escape or non-UTF-8 result.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("ipxe" | "txt" | "example" | "json") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("valid header")
}

fn text(status: u16, body: &str) -> Response<std::io::Cursor<Vec<u8>>> {
    Response::from_string(body)
        .with_status_code(status)
        .with_header(header("Content-Type", "text/plain; charset=utf-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_macs_become_failed_entries() {
        let r = unknown_mac_report("52:54:00:99:AA:01").unwrap();
        assert_eq!(r.node, "unknown-52-54-00-99-aa-01");
        assert!(r
            .stage
            .to_string()
            .starts_with("failed: MAC 52:54:00:99:aa:01 is not a node"));
        assert!(Report::parse(serde_json::to_string(&r).unwrap().as_bytes()).is_ok());
        for bad in [
            "",
            "52:54:00:99:aa",
            "52:54:00:99:aa:zz",
            "../../etc/passwd",
            "52-54-00-99-aa-01",
        ] {
            assert!(unknown_mac_report(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn ranges() {
        use RangeAnswer::*;
        for (h, want) in [
            ("bytes=0-9", Part(0, 9)),
            ("bytes=10-", Part(10, 99)),
            ("bytes=-10", Part(90, 99)),
            ("bytes=-500", Part(0, 99)),
            ("bytes=90-500", Part(90, 99)),
            ("bytes=100-", Unsatisfiable),
            ("bytes=100-200", Unsatisfiable),
            ("bytes=-0", Unsatisfiable),
            ("bytes=0-1,5-6", Whole),
            ("bytes=9-3", Whole),
            ("items=0-1", Whole),
            ("bytes=x-1", Whole),
        ] {
            assert_eq!(parse_range(h, 100), want, "{h}");
        }
        assert_eq!(parse_range("bytes=0-", 0), Unsatisfiable);
    }

    #[test]
    fn paths_stay_inside_the_tree() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("tree");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/a b"), b"x").unwrap();
        std::fs::write(d.path().join("secret"), b"s").unwrap();
        std::os::unix::fs::symlink(d.path().join("secret"), root.join("link")).unwrap();
        let root = root.canonicalize().unwrap();
        assert_eq!(resolve(&root, "/sub/a%20b").unwrap(), root.join("sub/a b"));
        for bad in [
            "/../secret",
            "/sub/../../secret",
            "/%2e%2e/secret",
            "/sub/%2E%2E/%2E%2E/secret",
            "/link",
            "/sub%5c..%5csecret",
            "/a%00b",
            "/%zz",
        ] {
            assert_eq!(resolve(&root, bad).unwrap_err().0, 403, "{bad}");
        }
        assert_eq!(resolve(&root, "/sub").unwrap_err().0, 404);
        assert_eq!(resolve(&root, "/nope").unwrap_err().0, 404);
    }
}
