//! Golden files: one bless rule and one diff for every golden test of the workspace.
//!
//! `HCIKIT_BLESS=1` (exactly `1`) rewrites the expected files instead of comparing; any
//! other value, or none, compares. Review `git diff` after blessing.

use similar::TextDiff;
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

/// At most this many diff lines per file in a failure message.
const DIFF_LINES: usize = 60;

/// Whether this run regenerates goldens (`HCIKIT_BLESS=1`, nothing else).
pub fn blessing() -> bool {
    std::env::var_os("HCIKIT_BLESS").is_some_and(|v| v == "1")
}

/// A unified diff of two texts (lossy for non-UTF-8), cut to [`DIFF_LINES`] lines.
pub fn diff(expected: &[u8], actual: &[u8]) -> String {
    let (old, new) = (
        String::from_utf8_lossy(expected),
        String::from_utf8_lossy(actual),
    );
    let text = TextDiff::from_lines(old.as_ref(), new.as_ref())
        .unified_diff()
        .context_radius(2)
        .header("expected", "actual")
        .to_string();
    let lines: Vec<&str> = text.lines().collect();
    let mut out = lines[..lines.len().min(DIFF_LINES)].join("\n");
    if lines.len() > DIFF_LINES {
        out.push_str(&format!("\n… {} more diff lines", lines.len() - DIFF_LINES));
    }
    out
}

/// Compares `actual` with the file at `expected` (a missing file is a mismatch), or
/// rewrites it when blessing. Returns the problem, with a diff, on mismatch.
pub fn check_file(expected: &Path, actual: &[u8]) -> Option<String> {
    let have = fs::read(expected).ok();
    if have.as_deref() == Some(actual) {
        return None;
    }
    if blessing() {
        if let Some(parent) = expected.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        fs::write(expected, actual).unwrap();
        eprintln!("blessed {}", expected.display());
        return None;
    }
    Some(match have {
        None => format!("{}: missing (HCIKIT_BLESS=1 writes it)", expected.display()),
        Some(old) => format!("{}:\n{}", expected.display(), diff(&old, actual)),
    })
}

/// Every regular file below `root`, by path relative to it.
pub fn read_tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.insert(rel, fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// Compares the folder `dir`, which holds nothing but this golden tree, with `want`
/// (relative path → bytes): missing, differing and no-longer-produced files are problems.
/// Blessing replaces the folder's contents with `want`.
pub fn check_tree(dir: &Path, want: &BTreeMap<String, Vec<u8>>) -> Vec<String> {
    let have = read_tree(dir);
    if blessing() {
        if have != *want {
            let _ = fs::remove_dir_all(dir);
            for (rel, bytes) in want {
                let p = dir.join(rel);
                fs::create_dir_all(p.parent().unwrap()).unwrap();
                fs::write(p, bytes).unwrap();
            }
            eprintln!("blessed {}", dir.display());
        }
        return Vec::new();
    }
    let mut problems = Vec::new();
    for (rel, bytes) in want {
        match have.get(rel) {
            None => problems.push(format!("{rel}: missing golden file")),
            Some(g) if g != bytes => problems.push(format!("{rel}:\n{}", diff(g, bytes))),
            Some(_) => {}
        }
    }
    for rel in have.keys().filter(|k| !want.contains_key(*k)) {
        problems.push(format!("{rel}: golden file no longer produced"));
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_check_names_each_kind_of_difference() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("same"), b"a\n").unwrap();
        fs::write(dir.path().join("changed"), b"old\n").unwrap();
        fs::write(dir.path().join("stale"), b"x\n").unwrap();
        let want: BTreeMap<String, Vec<u8>> = [
            ("same".to_string(), b"a\n".to_vec()),
            ("changed".to_string(), b"new\n".to_vec()),
            ("added".to_string(), b"y\n".to_vec()),
        ]
        .into();
        if blessing() {
            return; // the rule under test is the comparing one
        }
        let p = check_tree(dir.path(), &want);
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(p[0].starts_with("added: missing"), "{p:?}");
        assert!(p[1].starts_with("changed:\n") && p[1].contains("-old") && p[1].contains("+new"));
        assert!(p[2].starts_with("stale: golden file no longer produced"));
    }

    #[test]
    fn diff_is_cut_to_a_readable_length() {
        let old: String = (0..500).map(|i| format!("{i}\n")).collect();
        let d = diff(old.as_bytes(), b"");
        assert!(d.lines().count() <= DIFF_LINES + 1);
        assert!(d.ends_with("more diff lines"), "{d}");
    }
}
