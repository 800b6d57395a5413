//! Files generated from the code and checked in under `docs/`: man pages, shell
//! completions and the spec's JSON Schema. `tests/tests/drift.rs` fails when a checked-in
//! copy differs from what the code generates now; `just gen` rewrites them.

use crate::cli::Cli;
use anyhow::{Context, Result};
use clap::CommandFactory;
use clap_complete::Shell;

/// Folders whose every file is generated: a file there that [`all`] does not list is stale.
pub const GENERATED_DIRS: [&str; 2] = ["docs/man", "docs/completions"];

/// The top-level man page, as `hcikit man` prints it. Like [`man_pages`] it leaves out
/// the `help` subcommand, which has no page of its own.
pub fn man_page() -> Vec<u8> {
    let mut out = Vec::new();
    clap_mangen::Man::new(Cli::command().disable_help_subcommand(true))
        .render(&mut out)
        .expect("rendering into memory cannot fail");
    out
}

/// `hcikit.1` plus one page per visible subcommand (`hcikit-flash.1`, ...), which the
/// top-level page refers to. clap_mangen only writes these to a folder, so go through one.
pub fn man_pages() -> Result<Vec<(String, Vec<u8>)>> {
    let dir = tempfile::tempdir().context("creating a temp folder for man pages")?;
    clap_mangen::generate_to(Cli::command(), dir.path()).context("generating man pages")?;
    let mut pages = Vec::new();
    for entry in std::fs::read_dir(dir.path())? {
        let path = entry?.path();
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        pages.push((name, std::fs::read(&path)?));
    }
    pages.sort();
    Ok(pages)
}

/// Completions for `shell`, as `hcikit completions SHELL` prints them.
pub fn completions(shell: Shell) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "hcikit", &mut out);
    out
}

/// Every generated file: its path relative to the workspace root and its bytes.
pub fn all() -> Result<Vec<(String, Vec<u8>)>> {
    let mut files: Vec<(String, Vec<u8>)> = man_pages()?
        .into_iter()
        .map(|(name, bytes)| (format!("docs/man/{name}"), bytes))
        .collect();
    for (shell, ext) in [
        (Shell::Bash, "bash"),
        (Shell::Zsh, "zsh"),
        (Shell::Fish, "fish"),
    ] {
        files.push((format!("docs/completions/hcikit.{ext}"), completions(shell)));
    }
    files.push((
        "docs/cluster.schema.json".into(),
        crate::spec::schema::spec_schema().into_bytes(),
    ));
    Ok(files)
}

#[cfg(test)]
mod tests {
    #[test]
    fn top_level_page_is_what_hcikit_man_prints() {
        let pages = super::man_pages().unwrap();
        let top = pages.iter().find(|(n, _)| n == "hcikit.1").unwrap();
        assert_eq!(top.1, super::man_page());
        assert!(pages.iter().any(|(n, _)| n == "hcikit-flash.1"));
        assert!(!pages.iter().any(|(n, _)| n == "hcikit-schema.1"), "hidden");
    }
}
