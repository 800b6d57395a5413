//! APT sources: reading the host's configuration and writing the chroot's.
//!
//! The base is built from whatever archive the build host already uses (a local mirror,
//! a proxy, a snapshot), so no host name is ever written into hcikit. Both apt formats are
//! read: deb822 `*.sources` stanzas and one-line `sources.list` entries. Parsing and
//! rendering are pure; only [`read_host_sources`] touches the file system.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// One apt source: one URI with its suites, as apt sees it after expanding a stanza.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AptSource {
    /// `deb` or `deb-src`.
    pub kind: String,
    pub uri: String,
    pub suites: Vec<String>,
    pub components: Vec<String>,
    /// The `Signed-By` value (a keyring path or an inline key), if any.
    pub signed_by: Option<String>,
}

/// Parses a deb822 `.sources` file. Stanzas with `Enabled: no` are skipped; a stanza with
/// several `Types`/`URIs` gives one [`AptSource`] per combination.
pub fn parse_deb822(text: &str) -> Vec<AptSource> {
    let mut out = Vec::new();
    for stanza in stanzas(text) {
        let field = |name: &str| -> Option<String> {
            stanza
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let words = |name: &str| -> Vec<String> {
            field(name)
                .map(|v| v.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default()
        };
        if field("Enabled").is_some_and(|v| v.trim().eq_ignore_ascii_case("no")) {
            continue;
        }
        let signed_by = field("Signed-By").map(|v| v.trim().to_string());
        for kind in words("Types") {
            for uri in words("URIs") {
                out.push(AptSource {
                    kind: kind.clone(),
                    uri,
                    suites: words("Suites"),
                    components: words("Components"),
                    signed_by: signed_by.clone(),
                });
            }
        }
    }
    out
}

/// Splits deb822 text into stanzas of (field, value); continuation lines are joined with
/// newlines, comment lines dropped.
fn stanzas(text: &str) -> Vec<Vec<(String, String)>> {
    let mut all = Vec::new();
    let mut cur: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !cur.is_empty() {
                all.push(std::mem::take(&mut cur));
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = cur.last_mut() {
                v.push('\n');
                v.push_str(line.trim());
            }
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            cur.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    if !cur.is_empty() {
        all.push(cur);
    }
    all
}

/// Parses one-line `sources.list` text (`deb [opts] URI SUITE COMPONENT...`).
pub fn parse_one_line(text: &str) -> Vec<AptSource> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        let Some((kind, rest)) = line.split_once(char::is_whitespace) else {
            continue;
        };
        if kind != "deb" && kind != "deb-src" {
            continue;
        }
        let mut rest = rest.trim_start();
        let mut signed_by = None;
        if let Some(opts) = rest.strip_prefix('[') {
            let Some((opts, after)) = opts.split_once(']') else {
                continue;
            };
            for opt in opts.split_whitespace() {
                if let Some(v) = opt.strip_prefix("signed-by=") {
                    signed_by = Some(v.to_string());
                }
            }
            rest = after.trim_start();
        }
        let mut words = rest.split_whitespace();
        let (Some(uri), Some(suite)) = (words.next(), words.next()) else {
            continue;
        };
        out.push(AptSource {
            kind: kind.to_string(),
            uri: uri.to_string(),
            suites: vec![suite.to_string()],
            components: words.map(str::to_string).collect(),
            signed_by,
        });
    }
    out
}

/// The host's apt sources files, in the order apt reads them: `sources.list`, then
/// `sources.list.d/*.list` and `*.sources` sorted by name.
pub fn host_source_files(etc_apt: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let main = etc_apt.join("sources.list");
    if main.is_file() {
        files.push(main);
    }
    if let Ok(dir) = std::fs::read_dir(etc_apt.join("sources.list.d")) {
        let mut more: Vec<PathBuf> = dir
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.is_file()
                    && matches!(
                        p.extension().and_then(|e| e.to_str()),
                        Some("list") | Some("sources")
                    )
            })
            .collect();
        more.sort();
        files.extend(more);
    }
    files
}

/// Reads every apt source configured on this host (see [`host_source_files`]).
pub fn read_host_sources(etc_apt: &Path) -> Result<Vec<AptSource>> {
    let mut all = Vec::new();
    for f in host_source_files(etc_apt) {
        let text =
            std::fs::read_to_string(&f).with_context(|| format!("reading {}", f.display()))?;
        if f.extension().is_some_and(|e| e == "sources") {
            all.extend(parse_deb822(&text));
        } else {
            all.extend(parse_one_line(&text));
        }
    }
    Ok(all)
}

/// The Debian archives found among the host's sources: the main archive (which also
/// serves `-updates`) and the security archive, each with the components and keyring
/// the host uses for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebianArchives {
    pub main: ArchiveRef,
    pub security: Option<ArchiveRef>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveRef {
    pub uri: String,
    pub components: Vec<String>,
    pub signed_by: Option<String>,
}

/// Picks the Debian archives out of the host's sources. Backports, proposed-updates and
/// source entries are ignored: a node's base must come from the release itself. `None`
/// when no binary release archive is configured.
pub fn debian_archives(sources: &[AptSource]) -> Option<DebianArchives> {
    let mut main = None;
    let mut security = None;
    for s in sources.iter().filter(|s| s.kind == "deb") {
        for suite in &s.suites {
            let r = ArchiveRef {
                uri: s.uri.trim_end_matches('/').to_string(),
                components: s.components.clone(),
                signed_by: s.signed_by.clone(),
            };
            match classify(suite) {
                SuiteKind::Release if main.is_none() => main = Some(r),
                SuiteKind::Security if security.is_none() => security = Some(r),
                _ => {}
            }
        }
    }
    main.map(|main| DebianArchives { main, security })
}

enum SuiteKind {
    Release,
    Security,
    Other,
}

fn classify(suite: &str) -> SuiteKind {
    if suite.ends_with("-security") || suite.ends_with("/updates") {
        SuiteKind::Security
    } else if suite.ends_with("-backports")
        || suite.ends_with("-backports-sloppy")
        || suite.ends_with("-proposed-updates")
        || suite.ends_with("-updates")
    {
        // `-updates` lives on the main archive; the release entry covers it.
        SuiteKind::Other
    } else {
        SuiteKind::Release
    }
}

/// Suites without `-updates` and `-security` archives.
fn is_rolling(suite: &str) -> bool {
    matches!(suite, "sid" | "unstable" | "experimental")
}

/// The deb822 sources text for a Debian `suite` from the given archives: release and
/// `-updates` from the main archive, `-security` from the security archive.
pub fn render_debian(archives: &DebianArchives, suite: &str) -> String {
    let mut out = String::new();
    let main_suites = if is_rolling(suite) {
        suite.to_string()
    } else {
        format!("{suite} {suite}-updates")
    };
    push_stanza(&mut out, &archives.main, &main_suites);
    if let (Some(sec), false) = (&archives.security, is_rolling(suite)) {
        push_stanza(&mut out, sec, &format!("{suite}-security"));
    }
    out
}

fn push_stanza(out: &mut String, a: &ArchiveRef, suites: &str) {
    if !out.is_empty() {
        out.push('\n');
    }
    out.push_str("Types: deb\n");
    out.push_str(&format!("URIs: {}\n", a.uri));
    out.push_str(&format!("Suites: {suites}\n"));
    let comps = if a.components.is_empty() {
        "main".to_string()
    } else {
        a.components.join(" ")
    };
    out.push_str(&format!("Components: {comps}\n"));
    if let Some(k) = &a.signed_by {
        // An inline key spans lines; deb822 continuation lines start with a space and an
        // empty line is written as " .".
        let mut lines = k.lines();
        out.push_str(&format!("Signed-By: {}\n", lines.next().unwrap_or("")));
        for l in lines {
            let l = if l.is_empty() { "." } else { l };
            out.push_str(&format!(" {l}\n"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST_DEB822: &str = "\
Types: deb
# http://snapshot.example/archive/debian/20250520T000000Z
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
";

    const HOST_BACKPORTS: &str = "\
Types: deb
URIs: http://mirror.example/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
";

    #[test]
    fn deb822_stanzas_expand_per_uri() {
        let s = parse_deb822(
            "Types: deb deb-src\nURIs: http://a/d http://b/d\nSuites: x\nComponents: main contrib\n\n\
             Types: deb\nEnabled: no\nURIs: http://c/d\nSuites: y\n",
        );
        assert_eq!(s.len(), 4);
        assert_eq!(s[0].kind, "deb");
        assert_eq!(s[0].uri, "http://a/d");
        assert_eq!(s[1].uri, "http://b/d");
        assert_eq!(s[2].kind, "deb-src");
        assert_eq!(s[0].components, ["main", "contrib"]);
        assert!(
            s.iter().all(|s| s.uri != "http://c/d"),
            "disabled stanza kept"
        );
    }

    #[test]
    fn one_line_format_with_options() {
        let s = parse_one_line(
            "# comment\ndeb [arch=amd64 signed-by=/k.gpg] http://m/debian bookworm main non-free-firmware\n\
             deb-src http://m/debian bookworm main\nnonsense line\n",
        );
        assert_eq!(
            s[0],
            AptSource {
                kind: "deb".into(),
                uri: "http://m/debian".into(),
                suites: vec!["bookworm".into()],
                components: vec!["main".into(), "non-free-firmware".into()],
                signed_by: Some("/k.gpg".into()),
            }
        );
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn host_archives_ignore_backports_and_rewrite_the_suite() {
        // backports.sources sorts before debian.sources, as on the build host.
        let mut all = parse_deb822(HOST_BACKPORTS);
        all.extend(parse_deb822(HOST_DEB822));
        let a = debian_archives(&all).unwrap();
        assert_eq!(a.main.uri, "http://mirror.example/debian");
        assert_eq!(
            a.security.as_ref().unwrap().uri,
            "http://mirror.example/debian-security"
        );
        assert_eq!(
            render_debian(&a, "trixie"),
            "\
Types: deb
URIs: http://mirror.example/debian
Suites: trixie trixie-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: trixie-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"
        );
    }

    #[test]
    fn only_backports_is_not_an_archive() {
        assert_eq!(debian_archives(&parse_deb822(HOST_BACKPORTS)), None);
    }

    #[test]
    fn sid_has_no_updates_or_security() {
        let a = debian_archives(&parse_deb822(HOST_DEB822)).unwrap();
        assert_eq!(
            render_debian(&a, "sid"),
            "Types: deb\nURIs: http://mirror.example/debian\nSuites: sid\nComponents: main\n\
             Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
        );
    }

    #[test]
    fn reads_the_files_apt_reads() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("sources.list.d")).unwrap();
        std::fs::write(d.path().join("sources.list.d/debian.sources"), HOST_DEB822).unwrap();
        std::fs::write(
            d.path().join("sources.list.d/old.list.disabled"),
            "deb http://x/ y z",
        )
        .unwrap();
        std::fs::write(
            d.path().join("sources.list"),
            "deb http://one/debian bookworm main\n",
        )
        .unwrap();
        let all = read_host_sources(d.path()).unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].uri, "http://one/debian");
        let a = debian_archives(&all).unwrap();
        assert_eq!(a.main.uri, "http://one/debian");
        assert_eq!(a.main.signed_by, None);
    }
}
