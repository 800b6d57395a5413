//! `hcikit-firstboot install --net`: the network installer, started by the initrd that
//! `hcikit build --pxe` makes. It brings up the NIC iPXE booted from with the address
//! iPXE got by DHCP, fetches the tree's `install.json` (pinned by SHA-256 on the kernel
//! command line, like every payload file), and streams the node's head, the shared root
//! and the tail over HTTP into the same verified writer as the USB install: same
//! identity, disk rules, first MiB last, boot entry. Progress goes to `hcikit serve`.
//!
//! Nothing fetched is trusted unchecked: `install.json`, the bmap, the head and the tail
//! are checked whole before a byte is written; the root is checked range by range against
//! the bmap as it streams and whole at its end, before the partition table is written.

use super::bmap::Bmap;
use super::console::{self, Console};
use super::identity::{self, Identity, NodeId};
use super::payload::{self, Manifest, Opener, Segment};
use super::run::{
    boot_entry, boot_installed_next, kind_name, show_disks, summary, want_for, Outcome,
};
use super::target::{self, Decision};
use super::{gpt, system, write};
use crate::report::{self, Report, Stage};
use anyhow::{bail, ensure, Context, Result};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The tree's manifest for the network installer, beside `boot.ipxe`.
pub const MANIFEST: &str = "install.json";
/// Reconnects per file after a broken connection before the install fails.
pub const MAX_RESUMES: u32 = 5;

/// What the boot script passes on the kernel command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetArgs {
    /// The tree's URL, without a trailing `/`.
    pub url: String,
    pub node: String,
    /// SHA-256 of `install.json`, which pins everything else.
    pub manifest_sha256: String,
    /// The boot script's own pins of the node's files (`head`, `root`, `tail`, `bmap`),
    /// checked against the manifest's.
    pub pins: BTreeMap<String, String>,
    pub net: Option<IpConfig>,
}

/// The address iPXE got by DHCP, handed on so the installer needs no DHCP client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpConfig {
    pub mac: String,
    pub addr: std::net::Ipv4Addr,
    pub prefix: u8,
    pub gateway: Option<std::net::Ipv4Addr>,
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

impl NetArgs {
    /// Reads the installer's arguments from a kernel command line (pure).
    pub fn parse(cmdline: &str) -> Result<NetArgs> {
        let mut kv = BTreeMap::new();
        for a in cmdline.split_whitespace() {
            if let Some((k, v)) = a.split_once('=') {
                if k.starts_with("hcikit.") {
                    kv.insert(k, v);
                }
            }
        }
        let get =
            |k: &str| -> Result<&str> {
                kv.get(k).copied().filter(|v| !v.is_empty()).with_context(|| {
                format!("the kernel command line has no {k}= (boot through the tree's boot.ipxe)")
            })
            };
        let url = get("hcikit.url")?.trim_end_matches('/').to_string();
        ensure!(
            url.starts_with("http://"),
            "hcikit.url={url} is not an http:// URL"
        );
        let node = get("hcikit.node")?.to_string();
        let manifest_sha256 = get("hcikit.sha256.manifest")?.to_string();
        let mut pins = BTreeMap::new();
        for (k, v) in &kv {
            if let Some(name) = k.strip_prefix("hcikit.sha256.") {
                ensure!(
                    is_sha256(v),
                    "{k}={v} is not a SHA-256 (64 lower-case hex digits)"
                );
                if name != "manifest" {
                    pins.insert(name.to_string(), v.to_string());
                }
            }
        }
        let net = match kv.get("hcikit.ip").copied().filter(|v| !v.is_empty()) {
            None => None,
            Some(ip) => {
                let addr = ip
                    .parse()
                    .with_context(|| format!("hcikit.ip={ip} is not an IPv4 address"))?;
                let mask: std::net::Ipv4Addr = get("hcikit.netmask")?
                    .parse()
                    .context("hcikit.netmask is not an IPv4 netmask")?;
                let bits = u32::from(mask);
                ensure!(
                    bits.leading_ones() + bits.trailing_zeros() == 32,
                    "hcikit.netmask={mask} is not a netmask"
                );
                let gateway =
                    match kv.get("hcikit.gateway").copied().filter(|g| !g.is_empty()) {
                        None => None,
                        Some(g) => Some(g.parse().with_context(|| {
                            format!("hcikit.gateway={g} is not an IPv4 address")
                        })?),
                    };
                let mac = get("hcikit.mac")?.to_ascii_lowercase();
                Some(IpConfig {
                    mac,
                    addr,
                    prefix: bits.leading_ones() as u8,
                    gateway: gateway.filter(|g: &std::net::Ipv4Addr| !g.is_unspecified()),
                })
            }
        };
        Ok(NetArgs {
            url,
            node,
            manifest_sha256,
            pins,
            net,
        })
    }
}

/// Brings up the NIC with `c.mac` and gives it iPXE's address (and the default route).
fn configure_network(root: &Path, c: &IpConfig) -> Result<String> {
    let mut dev = None;
    for e in std::fs::read_dir(root.join("sys/class/net"))?.flatten() {
        let addr = std::fs::read_to_string(e.path().join("address")).unwrap_or_default();
        if addr.trim().eq_ignore_ascii_case(&c.mac) {
            dev = Some(e.file_name().to_string_lossy().into_owned());
        }
    }
    let dev = dev.with_context(|| {
        format!(
            "no network interface has the MAC {} iPXE booted from (is its driver in the initrd?)",
            c.mac
        )
    })?;
    let ip = |args: &[&str]| {
        crate::cmd::run(
            std::process::Command::new("ip").args(args),
            Some("iproute2"),
        )
    };
    ip(&["link", "set", "dev", "lo", "up"])?;
    ip(&["link", "set", "dev", &dev, "up"])?;
    ip(&[
        "addr",
        "add",
        &format!("{}/{}", c.addr, c.prefix),
        "dev",
        &dev,
    ])?;
    if let Some(g) = c.gateway {
        ip(&[
            "route",
            "add",
            "default",
            "via",
            &g.to_string(),
            "dev",
            &dev,
        ])?;
    }
    Ok(dev)
}

/// Bytes asked for per HTTP request. Each request's body must arrive within
/// [`WINDOW_TIMEOUT`], so a server that stalls without closing the connection is noticed
/// and the window asked for again, instead of an install that waits forever.
pub const WINDOW: u64 = 16 << 20;
/// Time one window may take: 16 MiB at 140 kB/s, plus the pauses the writer takes to
/// read back and verify what it wrote (the clock runs while the writer does not read).
pub const WINDOW_TIMEOUT: Duration = Duration::from_secs(120);

/// An HTTP GET of one file as a `Read`, in byte-range windows of [`WINDOW`]: a broken or
/// stalled transfer is resumed with a `Range` request at the current offset (at most
/// [`MAX_RESUMES`] times in a row without progress), and at the end of the file its
/// SHA-256 is checked against the pin; a mismatch is a read error, so nothing after it
/// is written.
pub struct HttpFile {
    agent: ureq::Agent,
    url: String,
    sha256: String,
    body: Option<Box<dyn Read + Send>>,
    pos: u64,
    /// Where the open response's body ends (exclusive).
    window_end: u64,
    window: u64,
    len: Option<u64>,
    hash: Sha256,
    /// Resumes since bytes last arrived.
    resumes: u32,
    done: bool,
    /// Bytes received, for the measurements.
    pub received: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

fn http_agent(window_timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(10)))
        .timeout_recv_response(Some(Duration::from_secs(30)))
        // ureq's body timeout is for a whole body: one window, never the whole root.
        .timeout_recv_body(Some(window_timeout))
        .http_status_as_error(true)
        .max_redirects(0)
        .build()
        .into()
}

impl HttpFile {
    pub fn new(url: &str, sha256: &str) -> HttpFile {
        HttpFile::with_window(url, sha256, WINDOW, WINDOW_TIMEOUT)
    }

    /// With another window size and timeout (tests).
    pub fn with_window(url: &str, sha256: &str, window: u64, timeout: Duration) -> HttpFile {
        HttpFile {
            agent: http_agent(timeout),
            url: url.to_string(),
            sha256: sha256.to_string(),
            body: None,
            pos: 0,
            window_end: 0,
            window: window.max(1),
            len: None,
            hash: Sha256::new(),
            resumes: 0,
            done: false,
            received: Default::default(),
        }
    }

    /// Asks for the next window from the current offset.
    fn open(&mut self) -> io::Result<()> {
        let mut last = self.pos + self.window - 1;
        if let Some(l) = self.len {
            last = last.min(l.saturating_sub(1));
        }
        let resp = self
            .agent
            .get(&self.url)
            .header("Range", &format!("bytes={}-{last}", self.pos))
            .call()
            .map_err(|e| io::Error::other(format!("GET {}: {e}", self.url)))?;
        let header = |n: &str| {
            resp.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        match resp.status().as_u16() {
            206 => {
                let range = header("content-range").unwrap_or_default();
                let (_, end, total) = content_range(&range)
                    .filter(|&(s, e, t)| {
                        s == self.pos
                            && e >= s
                            && t.is_some()
                            && self.len.is_none_or(|l| t == Some(l))
                    })
                    .ok_or_else(|| {
                        io::Error::other(format!(
                            "{}: the server cannot resume at byte {} (Content-Range {range:?})",
                            self.url, self.pos
                        ))
                    })?;
                if self.len.is_none() {
                    self.len = total;
                }
                self.window_end = end + 1;
            }
            // A server without byte ranges sends the whole file: acceptable only from the
            // start, and only when it fits one window's timeout.
            status => {
                let length: Option<u64> = header("content-length").and_then(|v| v.parse().ok());
                if self.pos > 0 || length.is_none_or(|l| l > self.window) {
                    return Err(io::Error::other(format!(
                        "{}: the server answers no byte ranges (status {status}) and cannot resume at byte {}: serve the tree with `hcikit serve` or any server with Range support",
                        self.url, self.pos
                    )));
                }
                self.len = length;
                self.window_end = length.unwrap_or(0);
            }
        }
        self.body = Some(Box::new(resp.into_body().into_reader()));
        Ok(())
    }

    /// Drops the connection and opens a new one at the current offset, or fails when the
    /// retries are used up.
    fn resume(&mut self, why: io::Error) -> io::Result<()> {
        self.body = None;
        self.resumes += 1;
        if self.resumes > MAX_RESUMES {
            return Err(io::Error::other(format!(
                "{}: the connection broke at byte {} and {MAX_RESUMES} resumes did not help: {why}",
                self.url, self.pos
            )));
        }
        tracing::warn!(
            "{}: connection broke at byte {} ({why}); resuming",
            self.url,
            self.pos
        );
        std::thread::sleep(Duration::from_millis(500 * u64::from(self.resumes)));
        self.open()
    }

    fn finish(&mut self) -> io::Result<usize> {
        let got = hex::encode(std::mem::take(&mut self.hash).finalize());
        self.done = true;
        if got != self.sha256 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{}: SHA-256 {got} does not match the pinned {}: the file was changed or damaged on the server",
                    self.url, self.sha256
                ),
            ));
        }
        Ok(0)
    }
}

/// `Content-Range: bytes START-END/TOTAL` as `(START, END, TOTAL)`, TOTAL `None` for `*`
/// (pure).
pub fn content_range(value: &str) -> Option<(u64, u64, Option<u64>)> {
    let r = value.trim().strip_prefix("bytes ")?;
    let (span, total) = r.split_once('/')?;
    let (start, end) = span.split_once('-')?;
    let total = match total {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    Some((start.parse().ok()?, end.parse().ok()?, total))
}

impl Read for HttpFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        loop {
            if self.body.is_none() {
                if self.resumes == 0 {
                    self.open()?;
                } else {
                    self.resume(io::Error::other("reconnecting"))?;
                }
            }
            let r = self.body.as_mut().expect("opened").read(buf);
            match r {
                Ok(0) if self.pos < self.window_end => {
                    let e = io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("body ended at byte {}", self.pos),
                    );
                    self.resume(e)?;
                }
                Ok(0) => {
                    self.body = None;
                    if self.len.is_some_and(|l| self.pos < l) {
                        // The window is done; the next request asks for the next one.
                        continue;
                    }
                    return self.finish();
                }
                Ok(n) => {
                    // More bytes than the window promised: the server is not answering
                    // the range asked for.
                    if self.pos + n as u64 > self.window_end {
                        return Err(io::Error::other(format!(
                            "{}: the server sent more than the range asked for at byte {}",
                            self.url, self.pos
                        )));
                    }
                    self.hash.update(&buf[..n]);
                    self.pos += n as u64;
                    self.resumes = 0;
                    self.received
                        .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => self.resume(e)?,
            }
        }
    }
}

/// Fetches a whole (small) file and checks its pin.
pub fn fetch_verified(url: &str, sha256: &str, limit: u64) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    HttpFile::new(url, sha256)
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(anyhow::Error::new)?;
    ensure!(
        out.len() as u64 <= limit,
        "{url} is larger than {limit} bytes"
    );
    // `take` may stop exactly at the end without the final EOF read: check here too.
    ensure!(
        hex::encode(Sha256::digest(&out)) == sha256,
        "{url}: SHA-256 does not match the pinned {sha256}: the file was changed or damaged on the server"
    );
    Ok(out)
}

/// The payload's files: the small ones fetched and checked before writing, the rest
/// streamed.
struct NetOpener {
    base: String,
    pins: BTreeMap<String, String>,
    fetched: BTreeMap<String, Vec<u8>>,
    received: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Opener for NetOpener {
    fn file(&self, path: &str) -> Result<Box<dyn Read + Send>> {
        if let Some(b) = self.fetched.get(path) {
            return Ok(Box::new(io::Cursor::new(b.clone())));
        }
        let sha = self
            .pins
            .get(path)
            .with_context(|| format!("{path} has no pinned SHA-256 in {MANIFEST}"))?;
        let mut f = HttpFile::new(&format!("{}/{path}", self.base), sha);
        f.received = self.received.clone();
        Ok(Box::new(f))
    }
    fn partition(&self, partuuid: &str) -> Result<File> {
        bail!("{MANIFEST} names a partition ({partuuid}), which a network install does not have")
    }
}

/// Options of a network install.
#[derive(Debug, Clone)]
pub struct Options {
    pub root: PathBuf,
    /// The kernel command line (default: `<root>/proc/cmdline`).
    pub cmdline: Option<String>,
    pub no_finish: bool,
    pub consoles: Vec<PathBuf>,
}

/// Peak memory of this process (`VmHWM`, KiB), for the measurements.
pub fn peak_rss_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn mem_used_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/meminfo").ok()?;
    let field = |k: &str| -> Option<u64> {
        s.lines()
            .find_map(|l| l.strip_prefix(k))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    };
    Some(field("MemTotal:")?.saturating_sub(field("MemAvailable:")?))
}

/// Runs the network install; every stage is reported to `hcikit serve`.
pub fn install(opts: &Options) -> Result<Outcome> {
    let consoles: Vec<PathBuf> = if opts.consoles.is_empty() {
        console::CONSOLES.iter().map(PathBuf::from).collect()
    } else {
        opts.consoles.clone()
    };
    let mut con = Console::open(&consoles, true);
    let cmdline = match &opts.cmdline {
        Some(c) => c.clone(),
        None => std::fs::read_to_string(opts.root.join("proc/cmdline")).unwrap_or_default(),
    };
    let args = match NetArgs::parse(&cmdline) {
        Ok(a) => a,
        Err(e) => {
            con.say(&format!("hcikit-install: FAILED: {e:#}"));
            con.say("hcikit-install: result=failed");
            return Err(e);
        }
    };
    let sink = format!("{}{}", args.url, report::REPORT_PATH);
    let node = args.node.clone();
    let tell = |stage: Stage| {
        report::send(&sink, &Report::now(&node, stage));
    };
    let mut peak_used = 0u64;
    let mut after = String::from("poweroff");
    let result = session(opts, &args, &mut con, &tell, &mut peak_used, &mut after);
    con.say(&format!(
        "hcikit-install: memory peak-rss-kib={} peak-used-kib={}",
        peak_rss_kib().unwrap_or(0),
        peak_used.max(mem_used_kib().unwrap_or(0))
    ));
    match result {
        Ok(o) => {
            match &o {
                Outcome::Installed { .. } | Outcome::AlreadyInstalled { .. } => {
                    tell(Stage::Installed)
                }
                Outcome::Refused { message, .. } => tell(Stage::Failed {
                    reason: message.clone(),
                }),
                Outcome::Aborted { .. } => tell(Stage::Failed {
                    reason: "aborted at the console; nothing was written".into(),
                }),
                _ => {}
            }
            con.say(&o.result_line());
            if !opts.no_finish
                && matches!(
                    o,
                    Outcome::Installed { .. } | Outcome::AlreadyInstalled { .. }
                )
            {
                con.say(&format!(
                    "Installed. The machine will {after} now (image.after-install)."
                ));
                finish(&after)?;
            }
            Ok(o)
        }
        Err(e) => {
            con.say(&format!("hcikit-install: FAILED: {e:#}"));
            con.say("hcikit-install: result=failed");
            tell(Stage::Failed {
                reason: format!("{e:#}"),
            });
            Err(e)
        }
    }
}

fn session(
    opts: &Options,
    args: &NetArgs,
    con: &mut Console,
    tell: &dyn Fn(Stage),
    peak_used: &mut u64,
    after: &mut String,
) -> Result<Outcome> {
    if let Some(c) = &args.net {
        let dev = configure_network(&opts.root, c)?;
        con.say(&format!(
            "network: {dev} ({}) has {}/{} from iPXE's DHCP lease",
            c.mac, c.addr, c.prefix
        ));
    }
    tell(Stage::Booted);
    let murl = format!("{}/{MANIFEST}", args.url);
    // The link may need a moment after coming up: retry the first fetch.
    let mut tries = 0;
    let mbytes = loop {
        match fetch_verified(&murl, &args.manifest_sha256, 1 << 20) {
            Ok(b) => break b,
            Err(e) if tries < 10 && !format!("{e:#}").contains("SHA-256") => {
                tries += 1;
                tracing::warn!("{e:#}; retrying");
                std::thread::sleep(Duration::from_secs(2));
            }
            Err(e) => return Err(e),
        }
    };
    let m = Manifest::parse(&mbytes)?;
    *after = m.after_install.clone();
    con.say(&format!(
        "hcikit network installer for cluster {} ({} nodes), from {}",
        m.cluster,
        m.nodes.len(),
        args.url
    ));
    let mut machine = system::machine(&opts.root);
    machine.cmdline = cmdline_for_identity(&machine.cmdline, &args.node);
    let ids: Vec<NodeId> = m
        .nodes
        .iter()
        .map(|n| NodeId {
            name: n.node.clone(),
            mac: n.mac.clone(),
        })
        .collect();
    let node = match identity::identify(&ids, &machine) {
        Identity::Found { node, .. } => node,
        Identity::Refused(msg) => {
            con.say(&format!("REFUSED: {msg}\nNothing was written to any disk."));
            return Ok(Outcome::Refused {
                node: None,
                kind: "identity".into(),
                message: msg,
            });
        }
        Identity::AskConsole { .. } => {
            let msg = identity::unknown_machine_message(&m.cluster, &ids, &machine);
            con.say(&msg);
            return Ok(Outcome::Refused {
                node: None,
                kind: "unknown-machine".into(),
                message: msg,
            });
        }
    };
    let np = m
        .node(&node)
        .with_context(|| format!("node {node} is not in {MANIFEST}"))?
        .clone();
    // The boot script's pins and the manifest's must agree: both came from one build.
    let mut pins = BTreeMap::new();
    pins.insert(np.bmap.clone(), np.bmap_sha256.clone());
    for s in &np.segments {
        match s {
            Segment::Image { path, sha256, .. } => {
                pins.insert(path.clone(), sha256.clone());
            }
            other => bail!("{MANIFEST} has a segment a network install cannot read: {other:?}"),
        }
    }
    for (what, sha) in &args.pins {
        ensure!(
            pins.values().any(|v| v == sha),
            "the boot script pins {what} to {sha}, which {MANIFEST} does not list: the script and the tree come from different builds"
        );
    }
    let bmap_bytes = fetch_verified(
        &format!("{}/{}", args.url, np.bmap),
        &np.bmap_sha256,
        64 << 20,
    )?;
    let bmap = Bmap::parse(&bmap_bytes).context("reading the node's bmap")?;
    ensure!(
        bmap.image_size == np.image_size,
        "the bmap describes a {}-byte image, {MANIFEST} a {}-byte one",
        bmap.image_size,
        np.image_size
    );
    // Every segment but the largest (the shared root) is fetched and checked before a
    // byte is written.
    let largest = np
        .segments
        .iter()
        .enumerate()
        .max_by_key(|(_, s)| match s {
            Segment::Image { length, .. } => *length,
            _ => 0,
        })
        .map(|(i, _)| i);
    let received = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(
        (mbytes.len() + bmap_bytes.len()) as u64,
    ));
    let mut fetched = BTreeMap::new();
    for (i, s) in np.segments.iter().enumerate() {
        if let Segment::Image { path, sha256, .. } = s {
            if Some(i) != largest {
                let b = fetch_verified(&format!("{}/{path}", args.url), sha256, 512 << 20)?;
                received.fetch_add(b.len() as u64, std::sync::atomic::Ordering::Relaxed);
                fetched.insert(path.clone(), b);
            }
        }
    }
    *peak_used = (*peak_used).max(mem_used_kib().unwrap_or(0));
    let opener = NetOpener {
        base: args.url.clone(),
        pins,
        fetched,
        received: received.clone(),
    };
    let mut want = want_for(&m, &np, false);
    want.stick_disk_guid = None;
    let observed = system::observe(&opts.root, &[])?;
    show_disks(con, &observed);
    let (disk, erases, warnings) = match target::decide(&observed, &want) {
        Decision::Refused(r) => {
            con.say(&format!(
                "REFUSED: {}\nNothing was written to any disk.",
                r.message
            ));
            return Ok(Outcome::Refused {
                node: Some(node),
                kind: kind_name(r.kind).into(),
                message: r.message,
            });
        }
        Decision::AlreadyInstalled { disk } => {
            con.say(&format!(
                "Disk {} already holds node {node} of cluster {}: not reinstalling.",
                disk.describe(),
                m.cluster
            ));
            if !opts.no_finish {
                boot_installed_next(con, &m.cluster, &node)?;
            }
            return Ok(Outcome::AlreadyInstalled {
                node,
                disk: disk.name,
            });
        }
        Decision::Write {
            disk,
            erases,
            warnings,
        } => (disk, erases, warnings),
    };
    con.say(&summary(
        &node,
        &disk,
        &erases,
        &warnings,
        bmap.mapped_bytes(),
        bmap.image_size,
    ));
    if !super::run::confirm(con, m.confirm_secs, &opts.root, &[], &want, &node, &disk)? {
        return Ok(Outcome::Aborted { node });
    }
    let dev_path = system::dev_path(&opts.root, &disk.name);
    let mut dev = write::FileDevice::open(&dev_path)?;
    let head = image_head(&np, &opener)?;
    let plan = write::plan(&head, bmap.image_size, write::Device::size(&dev))?;
    let mut source = payload::open_stream(&np, &bmap, &opener)?;
    con.say(&format!("writing node {node} to /dev/{}", disk.name));
    tell(Stage::Writing { percent: 0 });
    let mut last = Instant::now();
    let stats = write::write(&bmap, &mut source, &mut dev, &plan, &mut |p| {
        if p.stage != "writing" || last.elapsed() >= Duration::from_secs(3) {
            last = Instant::now();
            con.say(&format!("  {}", p.line()));
            *peak_used = (*peak_used).max(mem_used_kib().unwrap_or(0));
            if p.stage == "writing" {
                tell(Stage::Writing {
                    percent: p.percent() as u8,
                });
            }
        }
    })
    .with_context(|| format!("node {node}: writing /dev/{}", disk.name))?;
    drop(dev);
    con.say(&format!(
        "written and verified: {} of image data, {} read back, in {:.1} s; {} bytes received",
        target::human(stats.data_written),
        target::human(stats.verified),
        stats.elapsed.as_secs_f64(),
        received.load(std::sync::atomic::Ordering::Relaxed)
    ));
    if !opts.no_finish {
        boot_entry(con, &plan.gpt.head, &disk.name, &m.cluster, &node)?;
    }
    Ok(Outcome::Installed {
        node,
        disk: disk.name,
        stats,
    })
}

/// The command line identity reads: the kernel's, with the node the boot script chose.
fn cmdline_for_identity(cmdline: &str, node: &str) -> String {
    if cmdline
        .split_whitespace()
        .any(|a| a.starts_with("hcikit.node="))
    {
        cmdline.to_string()
    } else {
        format!("{cmdline} hcikit.node={node}")
    }
}

/// The first 34 sectors of the node image, from the head segment (image byte 0 on).
fn image_head(np: &payload::NodePayload, opener: &dyn Opener) -> Result<Vec<u8>> {
    let Some(Segment::Image {
        path,
        zstd,
        image_offset: 0,
        ..
    }) = np.segments.first()
    else {
        bail!(
            "{MANIFEST}: the first segment of node {} does not start at image byte 0",
            np.node
        );
    };
    let r = opener.file(path)?;
    let mut r: Box<dyn Read> = if *zstd {
        Box::new(zstd::stream::read::Decoder::new(r)?)
    } else {
        r
    };
    let mut head = vec![0u8; gpt::HEAD_BYTES];
    r.read_exact(&mut head)
        .context("reading the image's partition table")?;
    Ok(head)
}

/// After the install: power off or reboot without an init system (the initrd has none).
pub fn finish(after_install: &str) -> Result<()> {
    nix::unistd::sync();
    let mode = if after_install == "reboot" {
        nix::sys::reboot::RebootMode::RB_AUTOBOOT
    } else {
        nix::sys::reboot::RebootMode::RB_POWER_OFF
    };
    nix::sys::reboot::reboot(mode).context("powering off")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;

    fn sha(b: &[u8]) -> String {
        hex::encode(Sha256::digest(b))
    }

    #[test]
    fn kernel_arguments_parse() {
        let h = |c: char| c.to_string().repeat(64);
        let line = format!(
            "initrd=initrd.img hcikit.install=1 hcikit.node=pve2 hcikit.url=http://10.77.0.1:8080/ \
             hcikit.sha256.root={} hcikit.sha256.head={} hcikit.sha256.manifest={} \
             hcikit.mac=52:54:00:AA:00:02 hcikit.ip=10.77.0.57 hcikit.netmask=255.255.255.0 \
             hcikit.gateway= console=ttyS0",
            h('a'),
            h('b'),
            h('c')
        );
        let a = NetArgs::parse(&line).unwrap();
        assert_eq!(a.url, "http://10.77.0.1:8080");
        assert_eq!(a.node, "pve2");
        assert_eq!(a.manifest_sha256, h('c'));
        assert_eq!(a.pins.len(), 2, "{:?}", a.pins);
        assert_eq!(
            a.net,
            Some(IpConfig {
                mac: "52:54:00:aa:00:02".into(),
                addr: "10.77.0.57".parse().unwrap(),
                prefix: 24,
                gateway: None,
            })
        );
        let with_gw = line.replace("hcikit.gateway=", "hcikit.gateway=10.77.0.254");
        assert_eq!(
            NetArgs::parse(&with_gw).unwrap().net.unwrap().gateway,
            Some("10.77.0.254".parse().unwrap())
        );
        for (from, to, want) in [
            ("hcikit.node=pve2", "", "hcikit.node"),
            (
                &format!("manifest={}", h('c')),
                "manifest=abc",
                "not a SHA-256",
            ),
            (
                &format!("root={}", h('a')),
                &format!("root={}", h('A')),
                "not a SHA-256",
            ),
            ("255.255.255.0", "255.0.255.0", "not a netmask"),
            ("http://10.77", "ftp://10.77", "not an http"),
        ] {
            let bad = line.replace(from, to);
            let e = NetArgs::parse(&bad).unwrap_err();
            assert!(format!("{e:#}").contains(want), "{e:#} lacks {want}");
        }
    }

    #[test]
    fn content_range_parses_start_end_and_total() {
        assert_eq!(
            content_range("bytes 100-199/200"),
            Some((100, 199, Some(200)))
        );
        assert_eq!(content_range("bytes 100-199/*"), Some((100, 199, None)));
        assert_eq!(content_range(""), None);
        assert_eq!(content_range("bytes 100/200"), None);
        assert_eq!(content_range("items 1-2/3"), None);
    }

    /// How the test server answers one request.
    #[derive(Clone, Copy)]
    struct Answer {
        /// Body bytes sent before the connection is closed (or stalls).
        cut: usize,
        /// Answer a Range request with 206 and the range; `false`: 200 and the whole file.
        ranges: bool,
        /// After `cut` bytes, keep the connection open and silent for 30 s.
        stall: bool,
    }

    const WHOLE: Answer = Answer {
        cut: usize::MAX,
        ranges: true,
        stall: false,
    };

    fn cut(cut: usize) -> Answer {
        Answer { cut, ..WHOLE }
    }

    /// A server on 127.0.0.1 that answers each request with the next of `plan` and
    /// returns the ranges it was asked for (`from-to`).
    fn server(body: Vec<u8>, plan: Vec<Answer>) -> (String, std::thread::JoinHandle<Vec<String>>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/f", l.local_addr().unwrap());
        let h = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for a in plan {
                let (s, _) = l.accept().unwrap();
                let mut r = BufReader::new(s.try_clone().unwrap());
                let (mut from, mut to) = (0usize, body.len() - 1);
                loop {
                    let mut line = String::new();
                    r.read_line(&mut line).unwrap();
                    let l = line.trim().to_ascii_lowercase();
                    if l.is_empty() {
                        break;
                    }
                    if let Some(v) = l.strip_prefix("range: bytes=") {
                        let (f, t) = v.split_once('-').unwrap();
                        from = f.parse().unwrap();
                        to = t.parse::<usize>().unwrap().min(body.len() - 1);
                        seen.push(format!("{from}-{to}"));
                    }
                }
                let mut s = s;
                let (head, send) = if a.ranges {
                    (
                        format!(
                            "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {from}-{to}/{}\r\nConnection: close\r\n\r\n",
                            to + 1 - from,
                            body.len()
                        ),
                        &body[from..=to],
                    )
                } else {
                    (
                        format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        ),
                        &body[..],
                    )
                };
                s.write_all(head.as_bytes()).unwrap();
                let _ = s.write_all(&send[..a.cut.min(send.len())]);
                if a.stall {
                    // Silent but open, while the next request is answered.
                    std::thread::spawn(move || {
                        std::thread::sleep(Duration::from_secs(30));
                        drop(s);
                    });
                }
            }
            seen
        });
        (url, h)
    }

    fn body() -> Vec<u8> {
        (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect()
    }

    #[test]
    fn a_broken_transfer_resumes_with_a_range_request() {
        let b = body();
        let (url, h) = server(b.clone(), vec![cut(100_000), cut(50_000), WHOLE]);
        let mut got = Vec::new();
        HttpFile::new(&url, &sha(&b)).read_to_end(&mut got).unwrap();
        assert!(got == b);
        // The whole file fits one window: every request asks for the rest of it.
        assert!(WINDOW as usize > b.len());
        assert_eq!(
            h.join().unwrap(),
            [
                format!("0-{}", b.len() - 1),
                format!("100000-{}", b.len() - 1),
                format!("150000-{}", b.len() - 1)
            ]
        );
    }

    #[test]
    fn a_file_comes_in_windows_of_the_asked_size() {
        let b = body();
        let (url, h) = server(b.clone(), vec![WHOLE, WHOLE, WHOLE]);
        let mut got = Vec::new();
        HttpFile::with_window(&url, &sha(&b), 100_000, Duration::from_secs(30))
            .read_to_end(&mut got)
            .unwrap();
        assert!(got == b);
        assert_eq!(
            h.join().unwrap(),
            ["0-99999", "100000-199999", "200000-299999"]
        );
    }

    #[test]
    fn a_stalled_connection_times_out_and_resumes() {
        let b = body();
        let stall = Answer {
            cut: 50_000,
            stall: true,
            ..WHOLE
        };
        let (url, h) = server(b.clone(), vec![stall, WHOLE]);
        let mut got = Vec::new();
        let t = Instant::now();
        HttpFile::with_window(&url, &sha(&b), WINDOW, Duration::from_secs(1))
            .read_to_end(&mut got)
            .unwrap();
        assert!(got == b);
        // Resumed after the timeout, not after the server gave up on the connection.
        assert!(t.elapsed() < Duration::from_secs(15), "{:?}", t.elapsed());
        assert_eq!(h.join().unwrap()[1], format!("50000-{}", b.len() - 1));
    }

    #[test]
    fn a_small_file_from_a_server_without_ranges_is_accepted_whole() {
        let b = body();
        let no_ranges = Answer {
            ranges: false,
            ..WHOLE
        };
        let (url, h) = server(b.clone(), vec![no_ranges]);
        let mut got = Vec::new();
        HttpFile::new(&url, &sha(&b)).read_to_end(&mut got).unwrap();
        assert!(got == b);
        h.join().unwrap();
    }

    #[test]
    fn a_server_that_cannot_resume_fails_clearly() {
        let b = body();
        let no_ranges = Answer {
            ranges: false,
            ..WHOLE
        };
        let (url, h) = server(b.clone(), vec![cut(100_000), no_ranges]);
        let mut got = Vec::new();
        let e = HttpFile::new(&url, &sha(&b))
            .read_to_end(&mut got)
            .unwrap_err();
        assert!(
            e.to_string().contains("cannot resume at byte 100000"),
            "{e}"
        );
        h.join().unwrap();
    }

    #[test]
    fn a_large_file_from_a_server_without_ranges_is_refused() {
        let b = body();
        let no_ranges = Answer {
            ranges: false,
            ..WHOLE
        };
        let (url, h) = server(b.clone(), vec![no_ranges]);
        let mut got = Vec::new();
        let e = HttpFile::with_window(&url, &sha(&b), 1000, Duration::from_secs(30))
            .read_to_end(&mut got)
            .unwrap_err();
        assert!(e.to_string().contains("answers no byte ranges"), "{e}");
        h.join().unwrap();
    }

    #[test]
    fn a_changed_file_is_a_read_error_at_its_end() {
        let b = body();
        let (url, h) = server(b.clone(), vec![WHOLE]);
        let mut got = Vec::new();
        let e = HttpFile::new(&url, &"0".repeat(64))
            .read_to_end(&mut got)
            .unwrap_err();
        assert!(e.to_string().contains("does not match the pinned"), "{e}");
        h.join().unwrap();
    }
}
