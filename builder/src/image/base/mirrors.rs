//! Mirrors: where the base's Debian, Proxmox and Ceph archives come from instead of the
//! build host's Debian sources and Proxmox's own servers (`image.mirrors`, `--mirror`).
//!
//! A mirror is the URI apt would fetch `dists/<suite>/InRelease` below, the same layout
//! `proxmox-offline-mirror` exports and any apt mirror serves. Parsing is pure.

use crate::error::InputError;
use anyhow::Result;

/// The archives a base can take from a mirror, by the name the spec and `--mirror` use.
pub const MIRROR_KINDS: &[(&str, &str)] = &[
    ("debian", "the Debian archive (release and -updates)"),
    ("debian-security", "the Debian security archive"),
    (
        "proxmox",
        "the Proxmox VE repository (in place of http://download.proxmox.com/debian/pve)",
    ),
    (
        "ceph",
        "the Proxmox Ceph repository of the spec's release (in place of http://download.proxmox.com/debian/ceph-<release>)",
    ),
];

/// Mirror URIs by archive; `None` keeps the default (the host's Debian sources, Proxmox's
/// servers).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mirrors {
    pub debian: Option<String>,
    pub debian_security: Option<String>,
    pub proxmox: Option<String>,
    pub ceph: Option<String>,
}

impl Mirrors {
    /// Sets one archive's mirror after checking it (see [`check`]); `what` names the key
    /// or flag in the error (`image.mirrors.proxmox`, `--mirror`).
    pub fn set(&mut self, kind: &str, uri: &str, what: &str) -> Result<()> {
        let uri = check(kind, uri).map_err(|m| InputError::new(format!("{what}: {m}")))?;
        let slot = match kind {
            "debian" => &mut self.debian,
            "debian-security" => &mut self.debian_security,
            "proxmox" => &mut self.proxmox,
            _ => &mut self.ceph,
        };
        *slot = Some(uri);
        Ok(())
    }

    /// Applies `--mirror KIND=URI` flags on top of these (a flag wins over the spec).
    pub fn with_flags(mut self, flags: &[String]) -> Result<Self> {
        for f in flags {
            let Some((kind, uri)) = f.split_once('=') else {
                return Err(InputError::new(format!(
                    "--mirror {f:?}: expected KIND=URI, e.g. --mirror proxmox=file:///srv/mirror/pve"
                ))
                .into());
            };
            self.set(kind.trim(), uri.trim(), "--mirror")?;
        }
        Ok(self)
    }

    /// True when no archive is mirrored.
    pub fn is_empty(&self) -> bool {
        *self == Mirrors::default()
    }
}

/// Checks one mirror: a known archive `kind` and a URI apt can fetch from (`http://`,
/// `https://` or an absolute `file:///`). Returns the URI without its trailing slash, or
/// what is wrong (for the caller to prefix with the key or flag).
pub fn check(kind: &str, uri: &str) -> std::result::Result<String, String> {
    if !MIRROR_KINDS.iter().any(|(k, _)| *k == kind) {
        let kinds: Vec<&str> = MIRROR_KINDS.iter().map(|(k, _)| *k).collect();
        return Err(format!(
            "{kind:?} is not an archive hcikit mirrors; use one of {}",
            kinds.join(", ")
        ));
    }
    let ok = match uri.split_once("://") {
        Some(("http" | "https", rest)) => !rest.is_empty() && !rest.starts_with('/'),
        Some(("file", rest)) => rest.starts_with('/'),
        _ => false,
    };
    if !ok || uri.chars().any(char::is_whitespace) {
        return Err(format!(
            "{uri:?} is not a mirror URI; use http://HOST/PATH, https://HOST/PATH or file:///PATH"
        ));
    }
    Ok(uri.trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_and_are_checked() {
        let mut m = Mirrors::default();
        m.set("proxmox", "http://10.0.0.5/pve/", "image.mirrors.proxmox")
            .unwrap();
        let m = m
            .with_flags(&[
                "proxmox=file:///srv/pve".into(),
                "ceph = http://127.0.0.1:8080/ceph-squid".into(),
            ])
            .unwrap();
        assert_eq!(m.proxmox.as_deref(), Some("file:///srv/pve"));
        assert_eq!(m.ceph.as_deref(), Some("http://127.0.0.1:8080/ceph-squid"));
        assert!(m.debian.is_none());
        assert!(!m.is_empty());
    }

    #[test]
    fn bad_mirrors_name_the_flag_and_what_is_valid() {
        for (flag, want) in [
            ("proxmox", "expected KIND=URI"),
            ("pbs=http://x/pbs", "debian, debian-security, proxmox, ceph"),
            ("debian=ftp://x/debian", "http://HOST/PATH"),
            ("debian=file://relative/path", "file:///PATH"),
        ] {
            let err = Mirrors::default()
                .with_flags(&[flag.to_string()])
                .unwrap_err();
            let msg = format!("{err}");
            assert!(msg.contains("--mirror") && msg.contains(want), "{msg}");
            assert!(err.is::<InputError>());
        }
    }
}
