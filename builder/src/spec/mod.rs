//! Stage 1, the spec: a `cluster.toml` in, a resolved [`Plan`] plus secret values out.
//!
//! In order: [`raw`] parses the TOML into types, [`validate`] checks them (all findings at
//! once, parsing values with [`values`]), [`secrets`] reads the secret files the spec names,
//! [`resolve`] applies the [`defaults`] and builds the Plan. [`schema`] is the JSON Schema of
//! the raw types.
//!
//! `load_str` is pure except for reading the secret files the spec names (relative to
//! `base_dir`); `load` adds reading the spec itself and turns diagnostics into an
//! [`InputError`] (exit code 2) that lists every problem at once.

pub mod defaults;
pub mod raw;
pub mod resolve;
pub mod schema;
pub mod secrets;
pub mod validate;
pub mod values;

use crate::error::InputError;
use crate::spec::raw::Spec;
use crate::spec::secrets::SecretValues;

use hcikit_firstboot::plan::Plan;
use serde::Serialize;
use std::fmt;
use std::path::{Path, PathBuf};

/// A spec that passed validation, resolved.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub plan: Plan,
    pub secrets: SecretValues,
    pub spec_path: PathBuf,
    pub warnings: Vec<Diagnostic>,
    /// `image.mirrors`: where a generated base's archives come from. A build input, not
    /// part of the Plan the nodes carry.
    pub mirrors: crate::image::base::Mirrors,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    Error,
    Warning,
}

/// One finding about a spec, tied to the dotted key the user wrote
/// (`nodes[1].addresses.storage`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub key: String,
    pub message: String,
    pub severity: Severity,
}

impl Diagnostic {
    pub fn error(key: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic {
            key: key.into(),
            message: message.into(),
            severity: Severity::Error,
        }
    }
    pub fn warning(key: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic {
            key: key.into(),
            message: message.into(),
            severity: Severity::Warning,
        }
    }
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Largest spec file read (a spec of 33 nodes is about 10 KiB).
pub const MAX_SPEC_BYTES: u64 = 4 << 20;

/// Reads a regular file of at most `max` bytes. A FIFO, device or folder is refused
/// before it is read, and nothing beyond `max + 1` bytes is ever read, so no input file
/// can block `hcikit` or make it use more memory than that.
pub fn read_bounded(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::{Error, ErrorKind, Read};
    let f = std::fs::File::open(path)?;
    let meta = f.metadata()?;
    if !meta.is_file() {
        return Err(Error::new(ErrorKind::InvalidInput, "not a regular file"));
    }
    let mut out = Vec::new();
    f.take(max + 1).read_to_end(&mut out)?;
    if out.len() as u64 > max {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("larger than {max} bytes"),
        ));
    }
    Ok(out)
}

/// Reads, validates and resolves the spec at `spec_path`. Bad input is an [`InputError`]
/// whose message lists every error diagnostic, one per line.
pub fn load(spec_path: &Path) -> anyhow::Result<Loaded> {
    let text = match read_bounded(spec_path, MAX_SPEC_BYTES).and_then(|b| {
        String::from_utf8(b).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
    }) {
        Ok(t) => t,
        Err(e) => {
            return Err(anyhow::Error::new(InputError::new(format!(
                "cannot read spec {}: {e}",
                spec_path.display()
            ))))
        }
    };
    let base_dir = spec_path
        .parent()
        .map(Path::to_path_buf)
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("."));
    match load_str(&text, &base_dir) {
        Ok(mut loaded) => {
            loaded.spec_path = spec_path.to_path_buf();
            Ok(loaded)
        }
        Err(diags) => {
            let n = diags.iter().filter(|d| d.is_error()).count();
            let msg = format!(
                "{n} error{} in {}:\n{}",
                if n == 1 { "" } else { "s" },
                spec_path.display(),
                format_errors(&diags)
            );
            Err(anyhow::Error::new(InputError::new(msg)))
        }
    }
}

/// Parses, validates and resolves spec text. Secret files named in the spec are read
/// relative to `base_dir`. On failure returns every diagnostic (errors and warnings).
/// `Loaded::spec_path` is then `base_dir/cluster.toml`, so that its parent is still the
/// folder relative paths in the spec (such as `image.base`) are resolved against.
pub fn load_str(toml_text: &str, base_dir: &Path) -> Result<Loaded, Vec<Diagnostic>> {
    let spec = parse(toml_text).map_err(|d| vec![d])?;
    let (mut diags, parsed) = validate::validate(&spec);
    diags.extend(control_characters(toml_text));
    let secrets = secrets::read_secrets(&spec, base_dir, &mut diags);
    if diags.iter().any(Diagnostic::is_error) {
        return Err(diags);
    }
    let warnings = diags;
    let plan = resolve::resolve(&spec, &parsed, &warnings);
    let mut mirrors = crate::image::base::Mirrors::default();
    for (kind, uri) in &spec.image.mirrors {
        // Checked by validation above (`image.mirrors.<kind>`).
        mirrors
            .set(kind, uri, "image.mirrors")
            .expect("image.mirrors passed validation");
    }
    Ok(Loaded {
        plan,
        secrets,
        spec_path: base_dir.join("cluster.toml"),
        warnings,
        mirrors,
    })
}

/// The plan's node names, `, `-separated, for messages that name a node that is not there.
pub fn node_names(plan: &Plan) -> String {
    plan.nodes
        .iter()
        .map(|n| n.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every error line of `diags`, in order, warnings left out.
pub fn format_errors(diags: &[Diagnostic]) -> String {
    let lines: Vec<String> = diags
        .iter()
        .filter(|d| d.is_error())
        .map(ToString::to_string)
        .collect();
    lines.join("\n")
}

/// Errors for every string value or key of the spec that holds a control character (line
/// break, tab, escape, NUL, …) or a Unicode line or paragraph separator. No value of a
/// spec is more than one line of text, and every rendered file format (Proxmox section
/// config, ceph.conf, corosync.conf, interfaces, authorized_keys) is line-based: one such
/// character would start a new line, entry or section there. Walking the TOML tree
/// covers every key, including keys added later and free-form tables (`ceph.config`).
pub fn control_characters(toml_text: &str) -> Vec<Diagnostic> {
    fn bad(s: &str) -> Option<char> {
        s.chars()
            .find(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}'))
    }
    fn walk(v: &toml::Value, key: &str, out: &mut Vec<Diagnostic>) {
        match v {
            toml::Value::String(s) => {
                if let Some(c) = bad(s) {
                    out.push(Diagnostic::error(
                        key,
                        format!(
                            "holds the control character {:?}; values are one line of printable text",
                            c
                        ),
                    ));
                }
            }
            toml::Value::Array(items) => {
                for (i, x) in items.iter().enumerate() {
                    walk(x, &format!("{key}[{i}]"), out);
                }
            }
            toml::Value::Table(t) => {
                for (k, x) in t {
                    let shown = if bad(k).is_some() || k.contains('.') || k.is_empty() {
                        format!("{k:?}")
                    } else {
                        k.clone()
                    };
                    let path = if key.is_empty() {
                        shown
                    } else {
                        format!("{key}.{shown}")
                    };
                    if let Some(c) = bad(k) {
                        out.push(Diagnostic::error(
                            &path,
                            format!("this key holds the control character {c:?}"),
                        ));
                    }
                    walk(x, &path, out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Ok(v) = toml_text.parse::<toml::Table>() {
        walk(&toml::Value::Table(v), "", &mut out);
    }
    out
}

/// The dotted key that `line` (1-based) of `text` sets, from the table headers above it:
/// for parse errors that the TOML reader reports by line only (an integer too large for
/// 64 bits fails before serde knows the key).
pub fn key_at_line(text: &str, line: usize) -> Option<String> {
    let mut table = String::new();
    let mut counts: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    for (i, l) in text.lines().enumerate().take(line) {
        let t = l.trim();
        if let Some(h) = t.strip_prefix("[[").and_then(|r| r.split("]]").next()) {
            let h = h.trim().to_string();
            let n = counts.entry(h.clone()).and_modify(|n| *n += 1).or_insert(0);
            table = format!("{h}[{n}]");
        } else if let Some(h) = t.strip_prefix('[').and_then(|r| r.split(']').next()) {
            table = h.trim().to_string();
        } else if i + 1 == line {
            let (k, _) = t.split_once('=')?;
            let k = k.trim().trim_matches('"');
            return Some(if table.is_empty() {
                k.to_string()
            } else {
                format!("{table}.{k}")
            });
        }
    }
    None
}

/// TOML text → raw [`Spec`]. Syntax and type errors stop parsing, so there is at most one;
/// it is mapped to the dotted key serde was at and the line it points to.
pub fn parse(toml_text: &str) -> Result<Spec, Diagnostic> {
    let de = toml::Deserializer::new(toml_text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let mut path = e.path().to_string();
        let inner = e.into_inner();
        let line = inner.span().map(|s| {
            toml_text[..s.start.min(toml_text.len())]
                .matches('\n')
                .count()
                + 1
        });
        // Errors of the TOML reader itself come without a serde path.
        if path == "." || path.is_empty() {
            if let Some(k) = line.and_then(|l| key_at_line(toml_text, l)) {
                path = k;
            }
        }
        serde_error_diagnostic(&path, inner.message(), line)
    })
}

/// Turns serde's wording into `<key>: <message>`: unknown and missing fields name the key
/// itself instead of its parent table.
fn serde_error_diagnostic(path: &str, message: &str, line: Option<usize>) -> Diagnostic {
    let parent = if path == "." { "" } else { path };
    let join = |field: &str| {
        if parent.is_empty() {
            field.to_string()
        } else {
            format!("{parent}.{field}")
        }
    };
    let at = line.map(|l| format!(" (line {l})")).unwrap_or_default();
    // One line per diagnostic, and TOML words rather than Rust type names.
    let message = message
        .trim()
        .lines()
        .map(str::trim)
        .collect::<Vec<_>>()
        .join("; ")
        .replace("expected i64", "expected an integer")
        .replace("expected u32", "expected a non-negative integer")
        .replace("expected a sequence", "expected an array")
        .replace("expected a map", "expected a table");
    let message = message.as_str();
    if let Some(rest) = message.strip_prefix("unknown field `") {
        if let Some((field, expected)) = rest.split_once('`') {
            let expected = expected.trim_start_matches(',').trim();
            let valid: Vec<String> = expected
                .strip_prefix("expected one of ")
                .or_else(|| expected.strip_prefix("expected "))
                .map(|list| {
                    list.split(", ")
                        .map(|k| k.trim_matches('`').to_string())
                        .collect()
                })
                .unwrap_or_default();
            let expected = match (closest(field, &valid), valid.len()) {
                (_, 0) => "; no keys are valid here".to_string(),
                (Some(near), _) => format!(
                    "; did you mean {near}? valid keys here: {}",
                    valid.join(", ")
                ),
                (None, _) => format!("; valid keys here: {}", valid.join(", ")),
            };
            // The path already ends at the unknown key itself.
            let key = if parent == field || parent.ends_with(&format!(".{field}")) {
                parent.to_string()
            } else {
                join(field)
            };
            return Diagnostic::error(key, format!("unknown key{expected}{at}"));
        }
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        if let Some((field, _)) = rest.split_once('`') {
            // A missing top-level table has no useful line to point at.
            return if parent.is_empty() {
                Diagnostic::error(field, "is required in the spec")
            } else {
                Diagnostic::error(join(field), format!("is required in {parent}{at}"))
            };
        }
    }
    let key = if parent.is_empty() {
        line.map(|l| format!("line {l}"))
            .unwrap_or_else(|| "spec".to_string())
    } else {
        parent.to_string()
    };
    let at = if parent.is_empty() { String::new() } else { at };
    Diagnostic::error(key, format!("{message}{at}"))
}

/// The valid key closest to a misspelt one, if it is plausibly a typo of it (at most two
/// single-character edits, or one of them written with `_` instead of `-`).
fn closest<'a>(typo: &str, valid: &'a [String]) -> Option<&'a str> {
    let typo_kebab = typo.replace('_', "-");
    valid
        .iter()
        .map(|v| (edit_distance(&typo_kebab, v), v))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, v)| v.as_str())
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typo_suggestions() {
        let valid: Vec<String> = ["timezone", "keyboard", "pve-version"]
            .map(String::from)
            .into();
        assert_eq!(closest("time-zone", &valid), Some("timezone"));
        assert_eq!(closest("pve_version", &valid), Some("pve-version"));
        assert_eq!(closest("colour", &valid), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn parse_errors_name_the_key_and_line() {
        let d = parse("[cluster]\nname = \"x\"\ndomain = \"y\"\nkeybord = \"de\"\n").unwrap_err();
        assert_eq!(d.key, "cluster.keybord");
        assert!(
            d.message
                .starts_with("unknown key; did you mean keyboard? valid keys here: name, domain,"),
            "{}",
            d.message
        );
        assert!(d.message.ends_with("(line 4)"), "{}", d.message);
    }
}
