//! Generated files checked in under `docs/` (man pages, shell completions, the JSON Schema
//! of cluster.toml) must match what the code generates now, so a new flag or spec key
//! cannot leave them stale. `just gen` (`HCIKIT_BLESS=1` for this test) rewrites them.

use hcikit_tests::workspace_root;
use similar::TextDiff;
use std::collections::BTreeSet;
use std::fs;

/// At most this many diff lines per file in the failure message.
const DIFF_LINES: usize = 40;

fn blessing() -> bool {
    std::env::var_os("HCIKIT_BLESS").is_some_and(|v| !v.is_empty() && v != "0")
}

#[test]
fn generated_files_are_current() {
    let root = workspace_root();
    let bless = blessing();
    let generated = hcikit::artifacts::all().unwrap();
    let mut problems = Vec::new();
    for (rel, bytes) in &generated {
        let path = root.join(rel);
        let checked_in = fs::read(&path).ok();
        if checked_in.as_deref() == Some(&bytes[..]) {
            continue;
        }
        if bless {
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, bytes).unwrap();
            eprintln!("wrote {rel}");
            continue;
        }
        problems.push(match checked_in {
            None => format!("{rel}: missing"),
            Some(old) => format!("{rel}:\n{}", diff_excerpt(&old, bytes)),
        });
    }

    // A removed subcommand leaves its man page behind unless someone notices.
    let known: BTreeSet<&str> = generated.iter().map(|(rel, _)| rel.as_str()).collect();
    for dir in hcikit::artifacts::GENERATED_DIRS {
        let Ok(entries) = fs::read_dir(root.join(dir)) else {
            continue;
        };
        for entry in entries {
            let rel = format!("{dir}/{}", entry.unwrap().file_name().to_string_lossy());
            if known.contains(rel.as_str()) {
                continue;
            }
            if bless {
                fs::remove_file(root.join(&rel)).unwrap();
                eprintln!("removed {rel}");
            } else {
                problems.push(format!("{rel}: no longer generated"));
            }
        }
    }

    assert!(
        problems.is_empty(),
        "generated files differ from the checked-in copies:\n\n{}\n\nIf the change is \
         intended, run `just gen` (HCIKIT_BLESS=1 cargo test -p hcikit-tests --test drift) \
         and review `git diff docs/`.",
        problems.join("\n\n")
    );
}

fn diff_excerpt(old: &[u8], new: &[u8]) -> String {
    let (old, new) = (String::from_utf8_lossy(old), String::from_utf8_lossy(new));
    let diff = TextDiff::from_lines(old.as_ref(), new.as_ref())
        .unified_diff()
        .context_radius(2)
        .header("checked in", "generated")
        .to_string();
    let lines: Vec<&str> = diff.lines().collect();
    let mut out = lines[..lines.len().min(DIFF_LINES)].join("\n");
    if lines.len() > DIFF_LINES {
        out.push_str(&format!("\n… {} more diff lines", lines.len() - DIFF_LINES));
    }
    out
}
