//! `hcikit serve` on 127.0.0.1: HEAD and range semantics, many clients at once, path
//! traversal refused, and the fleet progress sink fed by the real report client (the one
//! the installer and the agent use). Every wait has a deadline.

use hcikit::media::serve::Server;
use hcikit_firstboot::host::{Host, RealHost};
use hcikit_firstboot::report::{send, Report, Stage};
use hcikit_tests::hcikit_bin;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

const DEADLINE: Duration = Duration::from_secs(20);

/// A tree with a 3 MiB payload of known bytes, a small script, and a secret beside it.
fn tree() -> (tempfile::TempDir, Vec<u8>) {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("pxe");
    std::fs::create_dir_all(root.join("nodes")).unwrap();
    let payload: Vec<u8> = (0..3u32 << 20).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(root.join("root.ext4.zst"), &payload).unwrap();
    std::fs::write(root.join("boot.ipxe"), b"#!ipxe\necho hello\n").unwrap();
    std::fs::write(root.join("nodes/pve1.head.zst"), b"head").unwrap();
    std::fs::write(d.path().join("secret"), b"do not serve").unwrap();
    (d, payload)
}

fn start(d: &Path) -> Server {
    let (server, _events) = Server::start(&d.join("pxe"), "127.0.0.1:0".parse().unwrap()).unwrap();
    server
}

/// One raw HTTP/1.1 exchange (so the request line is exactly what a hostile client
/// sends); returns status, headers (lower-case names) and body.
fn raw(addr: SocketAddr, request: &str) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header block");
    let head = String::from_utf8(buf[..split].to_vec()).unwrap();
    let body = buf[split + 4..].to_vec();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, body)
}

fn get(addr: SocketAddr, path: &str, extra: &str) -> (u16, Vec<(String, String)>, Vec<u8>) {
    raw(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{extra}\r\n"),
    )
}

fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    h.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

#[test]
fn get_head_and_ranges() {
    let (d, payload) = tree();
    let server = start(d.path());
    let addr = server.addr();
    let len = payload.len();

    let (st, h, body) = get(addr, "/root.ext4.zst", "");
    assert_eq!(st, 200);
    assert!(body == payload, "whole file differs");
    assert_eq!(header(&h, "accept-ranges"), Some("bytes"));

    let (st, h, body) = raw(
        addr,
        "HEAD /root.ext4.zst HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(st, 200);
    assert_eq!(header(&h, "content-length"), Some(len.to_string().as_str()));
    assert!(body.is_empty(), "HEAD sent {} body bytes", body.len());

    let (st, h, body) = get(addr, "/root.ext4.zst", "Range: bytes=1000-1999\r\n");
    assert_eq!(st, 206);
    assert!(body == payload[1000..2000]);
    assert_eq!(
        header(&h, "content-range"),
        Some(format!("bytes 1000-1999/{len}").as_str())
    );

    let (st, _, body) = get(addr, "/root.ext4.zst", "Range: bytes=-10\r\n");
    assert_eq!(st, 206);
    assert!(body == payload[len - 10..]);

    let (st, _, body) = get(
        addr,
        "/root.ext4.zst",
        &format!("Range: bytes={}-\r\n", len - 5),
    );
    assert_eq!(st, 206);
    assert!(body == payload[len - 5..]);

    let (st, h, _) = get(addr, "/root.ext4.zst", &format!("Range: bytes={len}-\r\n"));
    assert_eq!(st, 416);
    assert_eq!(
        header(&h, "content-range"),
        Some(format!("bytes */{len}").as_str())
    );

    let (st, _, body) = get(addr, "/nodes/pve1.head.zst", "");
    assert_eq!((st, body.as_slice()), (200, &b"head"[..]));
    assert_eq!(get(addr, "/nodes", "").0, 404);
    assert_eq!(get(addr, "/missing", "").0, 404);
    let (st, _, _) = raw(
        addr,
        "DELETE /boot.ipxe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(st, 405);
    assert!(d.path().join("pxe/boot.ipxe").exists());
    assert_eq!(
        server.bytes_served(),
        (len + 1000 + 10 + 5 + 4) as u64,
        "bytes served counts GET bodies only"
    );
}

#[test]
fn traversal_is_refused() {
    let (d, _) = tree();
    let server = start(d.path());
    for path in [
        "/../secret",
        "/nodes/../../secret",
        "/%2e%2e/secret",
        "/nodes/%2E%2E/%2E%2E/secret",
        "/..%2fsecret",
    ] {
        let (st, _, body) = get(server.addr(), path, "");
        assert_eq!(st, 403, "{path}");
        assert!(!String::from_utf8_lossy(&body).contains("do not serve"));
    }
}

#[test]
fn many_clients_at_once_and_a_stalled_one() {
    let (d, payload) = tree();
    let server = start(d.path());
    let addr = server.addr();
    // A client that opens a request and never finishes it holds one worker only.
    let mut stalled = TcpStream::connect(addr).unwrap();
    stalled
        .write_all(b"GET /root.ext4.zst HTTP/1.1\r\nHo")
        .unwrap();
    let t = Instant::now();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..12u64)
            .map(|i| {
                let payload = &payload;
                s.spawn(move || {
                    let a = i * 200_000;
                    let b = a + 150_000 - 1;
                    let (st, _, body) =
                        get(addr, "/root.ext4.zst", &format!("Range: bytes={a}-{b}\r\n"));
                    assert_eq!(st, 206);
                    assert!(body == payload[a as usize..=b as usize], "range {a}-{b}");
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    });
    assert!(t.elapsed() < DEADLINE);
    drop(stalled);
}

#[test]
fn reports_build_the_fleet_table() {
    let (d, _) = tree();
    let (server, events) =
        Server::start(&d.path().join("pxe"), "127.0.0.1:0".parse().unwrap()).unwrap();
    let url = format!("http://{}/report", server.addr());
    for r in [
        Report::now("pve1", Stage::Booted),
        Report::now("pve1", Stage::Writing { percent: 40 }),
        Report::now("pve2", Stage::Installed),
        Report::now(
            "pve3",
            Stage::Failed {
                reason: "payload hash mismatch: root.ext4.zst".into(),
            },
        ),
    ] {
        assert!(send(&url, &r), "report {r:?} not accepted");
    }
    // The agent's production host posts through the same client.
    RealHost::default().post_report(&url, &Report::now("pve2", Stage::Joined));

    let mut seen = Vec::new();
    while seen.len() < 5 {
        let (r, _) = events.recv_timeout(DEADLINE).expect("a report event");
        seen.push(format!("{}: {}", r.node, r.stage));
    }
    assert_eq!(
        seen,
        [
            "pve1: booted",
            "pve1: writing 40 %",
            "pve2: installed",
            "pve3: failed: payload hash mismatch: root.ext4.zst",
            "pve2: joined",
        ]
    );
    let fleet = server.fleet();
    let table = fleet.table(SystemTime::now());
    let rows: Vec<Vec<&str>> = table
        .lines()
        .skip(1)
        .map(|l| {
            l.split("  ")
                .filter(|c| !c.is_empty())
                .map(str::trim)
                .collect()
        })
        .collect();
    assert_eq!(rows.len(), 3, "{table}");
    assert_eq!(rows[0][..2], ["pve1", "writing 40 %"]);
    assert_eq!(rows[1][..2], ["pve2", "joined"]);
    assert_eq!(
        rows[2][..2],
        ["pve3", "failed: payload hash mismatch: root.ext4.zst"]
    );
    assert_eq!(
        fleet.failed(),
        [("pve3", "payload hash mismatch: root.ext4.zst")]
    );
}

#[test]
fn bad_reports_are_refused_and_change_nothing() {
    let (d, _) = tree();
    let server = start(d.path());
    let post = |body: &str| {
        raw(
            server.addr(),
            &format!(
                "POST /report HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ),
        )
    };
    let (st, _, body) = post(r#"{"node":"pve1","stage":"exploded","time":1}"#);
    assert_eq!(st, 400);
    assert!(String::from_utf8_lossy(&body).contains("exploded"));
    let (st, _, _) = post(&format!(
        r#"{{"node":"pve1","stage":"failed","reason":"{}","time":1}}"#,
        "x".repeat(5000)
    ));
    assert_eq!(st, 413);
    assert_eq!(
        post(r#"{"node":"../etc","stage":"booted","time":1}"#).0,
        400
    );
    assert!(server.fleet().nodes.is_empty());
    assert_eq!(post(r#"{"node":"pve1","stage":"booted","time":1}"#).0, 204);
    assert_eq!(server.fleet().nodes.len(), 1);
}

/// The command itself: binds what --listen names, prints the bound address, and writes
/// one JSON line per report with --json.
#[test]
fn cli_json_lines() {
    let (d, _) = tree();
    let mut child = Command::new(hcikit_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--json"])
        .arg(d.path().join("pxe"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let tx2 = tx.clone();
    std::thread::spawn(move || {
        for l in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(("err", l));
        }
    });
    std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx2.send(("out", l));
        }
    });
    let result = (|| {
        let (_, banner) = rx
            .recv_timeout(DEADLINE)
            .map_err(|e| format!("no banner: {e}"))?;
        let addr = banner
            .split("http://")
            .nth(1)
            .and_then(|s| s.split('/').next())
            .ok_or(format!("no address in {banner:?}"))?
            .to_string();
        let url = format!("http://{addr}/report");
        if !send(&url, &Report::now("pve2", Stage::HealthOk)) {
            return Err("report not accepted".to_string());
        }
        let (which, line) = rx
            .recv_timeout(DEADLINE)
            .map_err(|e| format!("no line: {e}"))?;
        Ok((which, line))
    })();
    let _ = child.kill();
    let _ = child.wait();
    let (which, line) = result.unwrap();
    assert_eq!(which, "out");
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["node"], "pve2");
    assert_eq!(v["stage"], "HEALTH_OK");
}

#[test]
fn cli_refuses_bad_listen_and_missing_folder() {
    let (d, _) = tree();
    let out = Command::new(hcikit_bin())
        .args(["serve", "--listen", "localhost"])
        .arg(d.path().join("pxe"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--listen localhost"));
    let out = Command::new(hcikit_bin())
        .args(["serve"])
        .arg(d.path().join("nope"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such folder"));
}

/// The boot script's note for a machine it does not know: iPXE escapes the MAC's colons.
#[test]
fn an_unknown_mac_shows_as_failed() {
    let (d, _) = tree();
    let server = start(d.path());
    let (code, _, _) = get(
        server.addr(),
        "/unknown-mac/52%3A54%3A00%3A99%3A99%3A99",
        "",
    );
    assert_eq!(code, 200);
    let (code, _, _) = get(server.addr(), "/unknown-mac/..%2F..%2Fetc", "");
    assert_eq!(code, 400);
    let fleet = server.fleet();
    assert_eq!(fleet.nodes.len(), 1);
    let failed = fleet.failed();
    assert_eq!(failed[0].0, "unknown-52-54-00-99-99-99");
    assert!(
        failed[0]
            .1
            .starts_with("MAC 52:54:00:99:99:99 is not a node"),
        "{failed:?}"
    );
}
