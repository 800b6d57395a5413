//! `hcikit render`: every node's rendered files into `DIR/<node>/<target path>`.
//!
//! Everything is rendered in memory first; the files are then written into a temporary
//! folder beside `DIR` and renamed into place, so a failure leaves no partial output. A
//! previous render output in `DIR` (recognised by its marker file) is replaced; any other
//! non-empty folder is refused rather than overwritten.

use crate::error::InputError;
use crate::render::files::NodeFile;
use crate::render::{render_all, RenderOptions};
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

/// Marks a folder as `hcikit render` output, which a later run may replace.
pub const MARKER: &str = ".hcikit-render";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The cluster spec.
    pub spec: PathBuf,
    /// Output folder; gets one sub-folder per node mirroring the target paths.
    #[arg(short, long, value_name = "DIR")]
    pub output: PathBuf,
    /// Folder of template overrides, laid out like the built-ins (e.g. `etc/hosts.hbs`);
    /// each file there replaces the built-in of the same relative path.
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,
    /// Write secret values instead of `<redacted>` (secret files stay mode 0600).
    #[arg(long)]
    pub reveal_secrets: bool,
    /// Render only this node.
    #[arg(long, value_name = "NAME")]
    pub node: Option<String>,
}

pub fn run(args: Args) -> Result<()> {
    let loaded = super::load_spec(&args.spec)?;
    let opts = RenderOptions {
        templates_dir: args.templates,
        reveal_secrets: args.reveal_secrets,
    };
    let count = render_to_dir(
        &loaded.plan,
        &loaded.secrets,
        &opts,
        args.node.as_deref(),
        &args.output,
    )?;
    println!(
        "rendered {} files for {} into {}",
        count.files,
        count.nodes.join(", "),
        args.output.display()
    );
    Ok(())
}

/// What [`render_to_dir`] wrote.
#[derive(Debug)]
pub struct Written {
    pub nodes: Vec<String>,
    pub files: usize,
}

/// Renders (all nodes, or only `node`) and writes the result to `out` atomically.
pub fn render_to_dir(
    plan: &hcikit_firstboot::plan::Plan,
    secrets: &crate::spec::secrets::SecretValues,
    opts: &RenderOptions,
    node: Option<&str>,
    out: &Path,
) -> Result<Written> {
    let mut rendered = render_all(plan, secrets, opts)?;
    if let Some(n) = node {
        let files = rendered.remove(n).ok_or_else(|| {
            InputError::new(format!(
                "--node {n}: no such node; nodes are {}",
                crate::spec::node_names(plan)
            ))
        })?;
        rendered = BTreeMap::from([(n.to_string(), files)]);
    }
    if opts.reveal_secrets {
        eprintln!(
            "warning: --reveal-secrets: secret values are written in clear text below {}",
            out.display()
        );
    }
    write_output(out, &rendered, opts.reveal_secrets)?;
    Ok(Written {
        nodes: rendered.keys().cloned().collect(),
        files: rendered.values().map(Vec::len).sum(),
    })
}

/// Writes `DIR/<node>/<path>` for every file, with its mode (secret files 0600), through a
/// temporary folder beside `out` that is renamed into place at the end.
pub fn write_output(
    out: &Path,
    rendered: &BTreeMap<String, Vec<NodeFile>>,
    reveal: bool,
) -> Result<()> {
    let name = out
        .file_name()
        .ok_or_else(|| InputError::new(format!("output folder {} has no name", out.display())))?
        .to_string_lossy()
        .into_owned();
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !parent.is_dir() {
        return Err(InputError::new(format!(
            "the folder {} that should hold the output does not exist",
            parent.display()
        ))
        .into());
    }
    let replaces = check_output_dir(out)?;

    let staging = tempfile::Builder::new()
        .prefix(&format!(".{name}.tmp-"))
        .tempdir_in(&parent)
        .with_context(|| format!("creating a temporary folder in {}", parent.display()))?;
    for (node, files) in rendered {
        let node_dir = staging.path().join(safe_component(node)?);
        for f in files {
            write_file(&node_dir, f).with_context(|| format!("writing {} of {node}", f.path))?;
        }
    }
    fs::write(
        staging.path().join(MARKER),
        "Output of `hcikit render`; the next run replaces this folder.\n",
    )
    .context("writing the render marker")?;
    // Revealed output may hold secrets in more than the 0600 files' names: keep it private.
    let mode = if reveal { 0o700 } else { 0o755 };
    fs::set_permissions(staging.path(), fs::Permissions::from_mode(mode))?;

    if replaces {
        // rename(2) may replace an empty folder: park the old output on one, then swap.
        let old = tempfile::Builder::new()
            .prefix(&format!(".{name}.old-"))
            .tempdir_in(&parent)?;
        fs::rename(out, old.path())
            .with_context(|| format!("moving the previous {} aside", out.display()))?;
        if let Err(e) = fs::rename(staging.path(), out) {
            let _ = fs::rename(old.path(), out);
            return Err(e).with_context(|| format!("renaming the output to {}", out.display()));
        }
        // Dropping `old` removes the previous output.
    } else {
        if out.exists() {
            fs::remove_dir(out).with_context(|| format!("replacing empty {}", out.display()))?;
        }
        fs::rename(staging.path(), out)
            .with_context(|| format!("renaming the output to {}", out.display()))?;
    }
    Ok(())
}

/// May `out` be (re)placed? Returns whether it holds a previous render output.
fn check_output_dir(out: &Path) -> Result<bool> {
    match fs::symlink_metadata(out) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).with_context(|| format!("reading {}", out.display())),
        // The output folder is replaced by a rename, which would replace the link itself.
        Ok(m) if m.file_type().is_symlink() => Err(InputError::new(format!(
            "output {} is a symbolic link (to {}); name the folder itself, render replaces it as a whole",
            out.display(),
            fs::read_link(out).map_or_else(|_| "?".into(), |t| t.display().to_string())
        ))
        .into()),
        Ok(m) if !m.is_dir() => Err(InputError::new(format!(
            "output {} exists and is not a folder",
            out.display()
        ))
        .into()),
        Ok(_) => {
            if out.join(MARKER).is_file() {
                return Ok(true);
            }
            let empty = fs::read_dir(out)
                .with_context(|| format!("reading {}", out.display()))?
                .next()
                .is_none();
            if empty {
                Ok(false)
            } else {
                Err(InputError::new(format!(
                    "output folder {} is not empty and not a previous `hcikit render` output; \
                     choose a new or empty folder",
                    out.display()
                ))
                .into())
            }
        }
    }
}

/// A node name as one path component.
fn safe_component(s: &str) -> Result<&str> {
    let mut c = Path::new(s).components();
    match (c.next(), c.next()) {
        (Some(Component::Normal(_)), None) => Ok(s),
        _ => Err(InputError::new(format!("node name {s:?} is not usable as a folder name")).into()),
    }
}

fn write_file(node_dir: &Path, f: &NodeFile) -> Result<()> {
    let rel = Path::new(&f.path)
        .strip_prefix("/")
        .map_err(|_| anyhow::anyhow!("target path {} is not absolute", f.path))?;
    if !rel.components().all(|c| matches!(c, Component::Normal(_))) {
        anyhow::bail!("target path {} is not a plain absolute path", f.path);
    }
    let path = node_dir.join(rel);
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let mode = if f.secret { 0o600 } else { f.mode };
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?;
    file.write_all(&f.contents)?;
    // Set the exact mode after writing, independent of the umask.
    file.set_permissions(fs::Permissions::from_mode(mode))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::files::Placement;

    fn nf(path: &str, mode: u32, secret: bool, text: &str) -> NodeFile {
        NodeFile {
            path: path.into(),
            mode,
            uid: 0,
            gid: 0,
            contents: text.as_bytes().to_vec(),
            secret,
            placement: Placement::Install,
        }
    }

    fn sample() -> BTreeMap<String, Vec<NodeFile>> {
        BTreeMap::from([
            (
                "pve1".to_string(),
                vec![
                    nf("/etc/hostname", 0o644, false, "pve1\n"),
                    nf("/etc/pve/priv/x.cfg", 0o640, true, "s\n"),
                ],
            ),
            (
                "pve2".to_string(),
                vec![nf("/etc/hostname", 0o644, false, "pve2\n")],
            ),
        ])
    }

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    fn leftovers(parent: &Path) -> Vec<String> {
        fs::read_dir(parent)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect()
    }

    #[test]
    fn writes_every_node_with_modes_and_replaces_its_own_output() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        write_output(&out, &sample(), false).unwrap();
        assert_eq!(
            fs::read_to_string(out.join("pve2/etc/hostname")).unwrap(),
            "pve2\n"
        );
        assert_eq!(mode(&out.join("pve1/etc/hostname")), 0o644);
        assert_eq!(mode(&out.join("pve1/etc/pve/priv/x.cfg")), 0o600);
        assert_eq!(mode(&out), 0o755);

        let mut again = sample();
        again.remove("pve2");
        write_output(&out, &again, true).unwrap();
        assert!(
            !out.join("pve2").exists(),
            "previous output was not replaced"
        );
        assert_eq!(mode(&out), 0o700);
        assert!(
            leftovers(tmp.path()).is_empty(),
            "{:?}",
            leftovers(tmp.path())
        );
    }

    #[test]
    fn refuses_a_foreign_non_empty_folder() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("precious"), "x").unwrap();
        let err = write_output(tmp.path(), &sample(), false).unwrap_err();
        assert_eq!(crate::error::exit_code(&err), 2);
        assert!(tmp.path().join("precious").exists());
    }

    #[test]
    fn a_missing_parent_is_bad_input() {
        let tmp = tempfile::tempdir().unwrap();
        let err = write_output(&tmp.path().join("no/out"), &sample(), false).unwrap_err();
        assert_eq!(crate::error::exit_code(&err), 2, "{err:#}");
    }

    #[test]
    fn a_failure_writes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let mut bad = sample();
        bad.get_mut("pve2")
            .unwrap()
            .push(nf("/etc/../../escape", 0o644, false, "x"));
        assert!(write_output(&out, &bad, false).is_err());
        assert!(!out.exists());
        assert!(
            leftovers(tmp.path()).is_empty(),
            "{:?}",
            leftovers(tmp.path())
        );
    }
}
