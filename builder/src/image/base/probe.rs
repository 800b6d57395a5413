//! Repository access check before a `proxmox` base is built: can this host reach the
//! Proxmox (and Ceph) repository the recipe names? Without it mmdebstrap would fail after
//! minutes with apt's error; this fails at once with an error naming the mirror option.
//!
//! `file://` repositories are checked on disk; `http://` with one `HEAD` request for the
//! suite's `InRelease` (through `http_proxy` or apt's `Acquire::http::Proxy` when set);
//! `https://` by a TCP connection to the server (or a `CONNECT` through the proxy), since
//! hcikit speaks no TLS. A wrong answer from a reachable server is left to apt.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(10);

/// `Ok` when `uri` serves `dists/<suite>/`, else why not (one line).
pub fn check_repository(uri: &str, suite: &str) -> Result<(), String> {
    let scheme = uri.split_once("://").map_or("", |(s, _)| s);
    check_via(uri, suite, proxy_for(scheme))
}

/// [`check_repository`] through `proxy` (`host:port`), or directly.
fn check_via(uri: &str, suite: &str, proxy: Option<String>) -> Result<(), String> {
    if let Some(path) = uri.strip_prefix("file://") {
        let dists = std::path::Path::new(path).join("dists").join(suite);
        return if dists.join("InRelease").is_file() || dists.join("Release").is_file() {
            Ok(())
        } else {
            Err(format!("{} has no InRelease or Release", dists.display()))
        };
    }
    let (scheme, rest) = uri
        .split_once("://")
        .ok_or_else(|| format!("{uri:?} is not a URI"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let default_port = if scheme == "https" { 443 } else { 80 };
    let host_port = if authority.rsplit_once(':').is_some_and(|(_, p)| {
        !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && !authority.ends_with(']')
    }) {
        authority.to_string()
    } else {
        format!("{authority}:{default_port}")
    };
    let target = format!("{}/dists/{suite}/InRelease", path.trim_end_matches('/'));
    let (connect_to, request) = match (scheme, &proxy) {
        ("https", None) => return connect(&host_port).map(|_| ()),
        ("https", Some(p)) => (
            p.clone(),
            format!("CONNECT {host_port} HTTP/1.1\r\nHost: {host_port}\r\n\r\n"),
        ),
        (_, Some(p)) => (
            p.clone(),
            format!(
                "HEAD http://{authority}{target} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
            ),
        ),
        (_, None) => (
            host_port.clone(),
            format!("HEAD {target} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"),
        ),
    };
    let mut s = connect(&connect_to)?;
    s.write_all(request.as_bytes())
        .map_err(|e| format!("{connect_to}: {e}"))?;
    let mut buf = [0u8; 256];
    let n = s.read(&mut buf).map_err(|e| format!("{connect_to}: {e}"))?;
    let line = String::from_utf8_lossy(&buf[..n]);
    let line = line.lines().next().unwrap_or("").trim().to_string();
    let code: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("{connect_to} answered {line:?}, not HTTP"))?;
    match code {
        200..=399 => Ok(()),
        _ if scheme == "https" => Err(format!("proxy {connect_to} refused: {line}")),
        _ => Err(format!("{uri}/dists/{suite}/InRelease: {line}")),
    }
}

fn connect(host_port: &str) -> Result<TcpStream, String> {
    let addrs: Vec<_> = host_port
        .to_socket_addrs()
        .map_err(|e| format!("{host_port}: {e}"))?
        .collect();
    let mut last = format!("{host_port}: no address");
    for a in addrs {
        match TcpStream::connect_timeout(&a, TIMEOUT) {
            Ok(s) => {
                let _ = s.set_read_timeout(Some(TIMEOUT));
                let _ = s.set_write_timeout(Some(TIMEOUT));
                return Ok(s);
            }
            Err(e) => last = format!("{host_port}: {e}"),
        }
    }
    Err(last)
}

/// `host:port` of the proxy apt would use for `scheme`: the environment first, then apt's
/// own configuration.
fn proxy_for(scheme: &str) -> Option<String> {
    let env = [
        format!("{scheme}_proxy"),
        format!("{}_PROXY", scheme.to_uppercase()),
    ];
    let from_env = env
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()));
    let value = from_env.or_else(|| apt_proxy(scheme))?;
    let rest = value.split_once("://").map_or(value.as_str(), |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let hp = rest.trim_end_matches('/');
    if hp.is_empty() || hp.eq_ignore_ascii_case("direct") {
        return None;
    }
    Some(if hp.contains(':') {
        hp.to_string()
    } else {
        format!("{hp}:80")
    })
}

/// `Acquire::<scheme>::Proxy` from `apt-config`, when apt is installed and sets one.
fn apt_proxy(scheme: &str) -> Option<String> {
    let out = std::process::Command::new("apt-config")
        .args(["shell", "P", &format!("Acquire::{scheme}::Proxy")])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let v = text
        .trim()
        .strip_prefix("P=")?
        .trim_matches('\'')
        .to_string();
    (!v.is_empty()).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn file_repository_needs_a_release_file() {
        let d = tempfile::tempdir().unwrap();
        let uri = format!("file://{}", d.path().display());
        let err = check_repository(&uri, "trixie").unwrap_err();
        assert!(err.contains("dists/trixie has no InRelease"), "{err}");
        std::fs::create_dir_all(d.path().join("dists/trixie")).unwrap();
        std::fs::write(d.path().join("dists/trixie/InRelease"), "x").unwrap();
        check_repository(&uri, "trixie").unwrap();
    }

    /// One HTTP answer from a listener on 127.0.0.1; returns the request it got.
    fn serve_once(answer: &'static str) -> (String, std::thread::JoinHandle<String>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let uri = format!("http://{}/pve", l.local_addr().unwrap());
        let h = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut buf = [0u8; 1024];
            let n = s.read(&mut buf).unwrap();
            s.write_all(answer.as_bytes()).unwrap();
            String::from_utf8_lossy(&buf[..n]).into_owned()
        });
        (uri, h)
    }

    #[test]
    fn http_repository_is_asked_for_the_suite() {
        // Directly, whatever proxy the machine running the tests has.
        let (uri, h) = serve_once("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        check_via(&uri, "trixie", None).unwrap();
        let req = h.join().unwrap();
        assert!(
            req.starts_with("HEAD /pve/dists/trixie/InRelease HTTP/1.1\r\n"),
            "{req}"
        );
        let (uri, h) = serve_once("HTTP/1.1 404 Not Found\r\n\r\n");
        let err = check_via(&uri, "trixie", None).unwrap_err();
        h.join().unwrap();
        assert!(
            err.ends_with("dists/trixie/InRelease: HTTP/1.1 404 Not Found"),
            "{err}"
        );
    }

    #[test]
    fn proxy_gets_the_absolute_uri() {
        let (proxy_uri, h) = serve_once("HTTP/1.1 200 OK\r\n\r\n");
        let proxy = proxy_uri
            .trim_start_matches("http://")
            .trim_end_matches("/pve");
        check_via(
            "http://download.example/debian/pve",
            "trixie",
            Some(proxy.to_string()),
        )
        .unwrap();
        let req = h.join().unwrap();
        assert!(
            req.starts_with(
                "HEAD http://download.example/debian/pve/dists/trixie/InRelease HTTP/1.1\r\n"
            ),
            "{req}"
        );
    }

    #[test]
    fn closed_port_is_unreachable() {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let err = check_via(&format!("http://127.0.0.1:{port}/pve"), "trixie", None).unwrap_err();
        assert!(err.starts_with(&format!("127.0.0.1:{port}: ")), "{err}");
    }
}
