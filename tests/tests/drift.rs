//! Generated files checked in under `docs/` (man pages, shell completions, the JSON Schema
//! of cluster.toml) must match what the code generates now, so a new flag or spec key
//! cannot leave them stale. `just gen` (`HCIKIT_BLESS=1` for this test) rewrites them.

use hcikit_tests::workspace_root;
use std::collections::BTreeSet;
use std::fs;

#[test]
fn generated_files_are_current() {
    let root = workspace_root();
    let bless = hcikit_tests::golden::blessing();
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
            Some(old) => format!("{rel}:\n{}", hcikit_tests::golden::diff(&old, bytes)),
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
