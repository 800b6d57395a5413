//! Secret values: what the Plan names by [`SecretRef`] but never contains.
//!
//! Values come from the spec (root password hash, SMTP passwords, realm bind passwords,
//! read from files next to the spec) and from the cluster's secrets seed (SSH host keys,
//! the bootstrap key, the corosync authkey). `Debug` never prints a value.

use crate::spec::raw::Spec;
use crate::spec::values::check_crypt_hash;
use crate::spec::Diagnostic;
use hcikit_firstboot::plan::SecretRef;
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

/// Placeholder written instead of a secret when rendering without `--reveal-secrets`.
pub const REDACTED: &str = "<redacted>";

#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretValues {
    values: BTreeMap<String, Vec<u8>>,
}

impl SecretValues {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn insert(&mut self, id: impl Into<String>, value: impl Into<Vec<u8>>) {
        self.values.insert(id.into(), value.into());
    }
    pub fn get(&self, r: &SecretRef) -> Option<&[u8]> {
        self.values.get(&r.id).map(Vec::as_slice)
    }
    pub fn get_id(&self, id: &str) -> Option<&[u8]> {
        self.values.get(id).map(Vec::as_slice)
    }
    /// Secret ids in sorted order.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str)
    }
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.values.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }
}

impl fmt::Debug for SecretValues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.values.keys()).finish()
    }
}

/// Reads the secret files the spec names (relative to `base_dir`), adding a diagnostic for
/// each unreadable or empty one, and a warning for a world-readable one.
pub fn read_secrets(spec: &Spec, base_dir: &Path, diags: &mut Vec<Diagnostic>) -> SecretValues {
    let mut out = SecretValues::new();
    if let Some(h) = &spec.cluster.root_password_hash {
        out.insert(ROOT_PASSWORD_ID, h.trim().as_bytes().to_vec());
    }
    let mut files: Vec<(String, &str, String)> = Vec::new();
    if let Some(f) = &spec.cluster.root_password_file {
        files.push((
            "cluster.root-password-file".into(),
            f,
            ROOT_PASSWORD_ID.into(),
        ));
    }
    for (i, s) in spec.notifications.smtp.iter().enumerate() {
        if let Some(f) = &s.password_file {
            files.push((
                format!("notifications.smtp[{i}].password-file"),
                f,
                smtp_secret_id(&s.name),
            ));
        }
    }
    for (i, r) in spec.realms.iter().enumerate() {
        if let Some(f) = &r.bind_password_file {
            files.push((
                format!("realms[{i}].bind-password-file"),
                f,
                realm_secret_id(&r.name),
            ));
        }
        if let Some(f) = &r.client_key_file {
            files.push((
                format!("realms[{i}].client-key-file"),
                f,
                realm_secret_id(&r.name),
            ));
        }
    }
    for (key, file, id) in files {
        let path = base_dir.join(file);
        // Secrets end up in files and command lines (128 KiB argv limit): 64 KiB is more
        // than any password, hash or client key.
        match super::read_bounded(&path, 64 << 10) {
            Err(e) => diags.push(Diagnostic::error(
                &key,
                format!("cannot read {file}: {}", io_reason(&e)),
            )),
            Ok(bytes) => match secret_value(&bytes) {
                None => diags.push(Diagnostic::error(
                    &key,
                    format!("{file} holds no value (blank and # comment lines are skipped)"),
                )),
                Some(v) => {
                    if id == ROOT_PASSWORD_ID {
                        if let Err(m) = check_crypt_hash(&String::from_utf8_lossy(&v)) {
                            diags.push(Diagnostic::error(&key, format!("{file}: {m}")));
                        }
                    }
                    if world_readable(&path) {
                        diags.push(Diagnostic::warning(
                            &key,
                            format!("{file} is readable by every user; chmod 600 it"),
                        ));
                    }
                    out.insert(id, v);
                }
            },
        }
    }
    out
}

pub const ROOT_PASSWORD_ID: &str = "root-password-hash";
pub fn smtp_secret_id(name: &str) -> String {
    format!("smtp/{name}/password")
}
pub fn realm_secret_id(name: &str) -> String {
    format!("realm/{name}/secret")
}

/// The value in a secret file: its first line that is neither blank nor a `#` comment,
/// without the line ending. `None` when there is none.
pub fn secret_value(bytes: &[u8]) -> Option<Vec<u8>> {
    bytes
        .split(|b| *b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .find(|l| !l.iter().all(u8::is_ascii_whitespace) && !l.starts_with(b"#"))
        .map(<[u8]>::to_vec)
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string().to_lowercase(),
    }
}

#[cfg(unix)]
fn world_readable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o004 != 0)
}
#[cfg(not(unix))]
fn world_readable(_: &Path) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_ids_not_values() {
        let mut s = SecretValues::new();
        s.insert("smtp/relay/password", "hunter2");
        let d = format!("{s:?}");
        assert!(d.contains("smtp/relay/password") && !d.contains("hunter2"));
    }

    #[test]
    fn secret_value_skips_comments() {
        assert_eq!(
            secret_value(b"# dummy\n\nhunter2\n"),
            Some(b"hunter2".to_vec())
        );
        assert_eq!(secret_value(b"# only a comment\n"), None);
        assert_eq!(secret_value(b"pw\r\n"), Some(b"pw".to_vec()));
    }
}
