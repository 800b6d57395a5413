//! The base root file system: a Debian (or Debian + Proxmox VE) tarball built with
//! `mmdebstrap` from the build host's own apt sources, cached by a hash of its recipe.
//!
//! - [`recipe`]: the pure recipe (argv, sources, packages, hooks) and its cache key.
//! - [`sources`]: reading the host's apt sources and writing the base's.
//!
//! [`ensure_base`] is the I/O: return the cached tarball or build it, atomically.

pub mod recipe;
pub mod sources;

pub use recipe::{base_recipe, BaseRecipe, Flavour, HostInputs, Keyring};

use crate::error::InputError;
use anyhow::{Context, Result};
use hcikit_firstboot::cmd;
use hcikit_firstboot::plan::{BaseKind, Plan};
use sha2::{Digest, Sha512};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Timestamps of a generated base when `SOURCE_DATE_EPOCH` is unset (2024-01-01 UTC), so
/// two builds of the same recipe from the same mirror state agree without extra setup.
pub const DEFAULT_SOURCE_DATE_EPOCH: u64 = 1_704_067_200;

/// Environment variable naming the Proxmox release key file (also `--proxmox-key`).
pub const PROXMOX_KEY_ENV: &str = "HCIKIT_PROXMOX_KEY";

/// Build-host settings for the base.
#[derive(Debug, Clone, Default)]
pub struct BaseOptions {
    /// Proxmox release key; default: `HCIKIT_PROXMOX_KEY`, else the key a Proxmox host
    /// has at [`recipe::PROXMOX_KEY_IN_BASE`].
    pub proxmox_key: Option<PathBuf>,
    /// apt configuration folder to read sources from; default `/etc/apt`.
    pub etc_apt: Option<PathBuf>,
}

/// The base tarball for `plan.image.base`: the given archive for `file`, else the cached
/// or freshly built `cache_dir/base-<hash>.tar`.
pub fn ensure_base(plan: &Plan, cache_dir: &Path) -> Result<PathBuf> {
    ensure_base_with(plan, cache_dir, &BaseOptions::default())
}

/// [`ensure_base`] with explicit build-host settings.
pub fn ensure_base_with(plan: &Plan, cache_dir: &Path, opts: &BaseOptions) -> Result<PathBuf> {
    if plan.image.base == BaseKind::File {
        let f = plan.image.base_file.as_deref().ok_or_else(|| {
            InputError::new("image.base = \"file\" needs image.base-file (a .tar or .tar.zst)")
        })?;
        let f = PathBuf::from(f);
        if !f.is_file() {
            return Err(
                InputError::new(format!("base archive {} does not exist", f.display())).into(),
            );
        }
        return Ok(f);
    }
    let host = host_inputs(plan, opts)?;
    let recipe = base_recipe(plan, &host)?;
    let target = cache_dir.join(recipe.file_name());
    if target.is_file() {
        tracing::info!(base = %target.display(), "reusing cached base");
        return Ok(target);
    }
    build(&recipe, cache_dir, &target)
        .with_context(|| format!("building the {} base with mmdebstrap", plan.image.base))?;
    Ok(target)
}

/// Reads what the recipe needs from the build host.
pub fn host_inputs(plan: &Plan, opts: &BaseOptions) -> Result<HostInputs> {
    let etc_apt = opts
        .etc_apt
        .clone()
        .unwrap_or_else(|| PathBuf::from("/etc/apt"));
    let apt_sources = sources::read_host_sources(&etc_apt)?;
    let source_date_epoch = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) => v.trim().parse().map_err(|_| {
            InputError::new(format!(
                "SOURCE_DATE_EPOCH={v:?} is not a number of seconds"
            ))
        })?,
        Err(_) => DEFAULT_SOURCE_DATE_EPOCH,
    };
    let proxmox_keyring = if plan.image.base == BaseKind::Proxmox {
        let path = opts
            .proxmox_key
            .clone()
            .or_else(|| std::env::var_os(PROXMOX_KEY_ENV).map(PathBuf::from))
            .or_else(|| {
                let p = PathBuf::from(recipe::PROXMOX_KEY_IN_BASE);
                p.is_file().then_some(p)
            });
        match path {
            Some(path) => {
                let bytes = std::fs::read(&path).map_err(|e| {
                    InputError::new(format!("cannot read Proxmox key {}: {e}", path.display()))
                })?;
                Some(Keyring {
                    sha512: hex::encode(Sha512::digest(&bytes)),
                    path,
                })
            }
            None => None,
        }
    } else {
        None
    };
    Ok(HostInputs {
        apt_sources,
        source_date_epoch,
        proxmox_keyring,
    })
}

/// Removes a temporary path unless disarmed.
struct TempPath(Option<PathBuf>);

impl TempPath {
    fn keep(mut self) -> PathBuf {
        self.0.take().expect("temp path already taken")
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(&p);
        }
    }
}

/// Runs mmdebstrap into a temporary name beside `target`, then renames it.
fn build(recipe: &BaseRecipe, cache_dir: &Path, target: &Path) -> Result<()> {
    if !cmd::have("mmdebstrap") {
        anyhow::bail!("`mmdebstrap` not found: install the Debian package mmdebstrap");
    }
    std::fs::create_dir_all(cache_dir)
        .with_context(|| format!("creating cache folder {}", cache_dir.display()))?;
    let pid = std::process::id();
    let sources = TempPath(Some(cache_dir.join(format!(".base-sources-{pid}.sources"))));
    let sources_path = sources.0.clone().unwrap();
    std::fs::write(&sources_path, &recipe.sources)
        .with_context(|| format!("writing {}", sources_path.display()))?;
    let partial = TempPath(Some(
        cache_dir.join(format!(".{}.partial-{pid}", recipe.file_name())),
    ));
    let partial_path = partial.0.clone().unwrap();
    let argv = recipe.argv(&partial_path, &sources_path);
    tracing::info!(suite = %recipe.suite, "building base with mmdebstrap (a few minutes)");
    let mut c = Command::new(&argv[0]);
    c.args(&argv[1..])
        .env("SOURCE_DATE_EPOCH", recipe.source_date_epoch.to_string());
    cmd::run(&mut c, Some("the Debian package mmdebstrap"))?;
    let done = partial.keep();
    std::fs::rename(&done, target)
        .with_context(|| format!("renaming {} to {}", done.display(), target.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_base_is_passed_through_or_refused() {
        let d = tempfile::tempdir().unwrap();
        let mut plan = recipe::tests::plan("file");
        plan.image.base_file = Some(d.path().join("nope.tar").display().to_string());
        let err = ensure_base(&plan, d.path()).unwrap_err();
        assert_eq!(crate::error::exit_code(&err), 2, "{err:#}");
        std::fs::write(d.path().join("nope.tar"), b"").unwrap();
        assert_eq!(
            ensure_base(&plan, d.path()).unwrap(),
            d.path().join("nope.tar")
        );
    }

    #[test]
    fn cached_base_is_reused_without_mmdebstrap() {
        let d = tempfile::tempdir().unwrap();
        let apt = d.path().join("apt");
        std::fs::create_dir_all(apt.join("sources.list.d")).unwrap();
        std::fs::write(
            apt.join("sources.list"),
            "deb http://mirror.example/debian bookworm main\n",
        )
        .unwrap();
        let plan = recipe::tests::plan("debian");
        let opts = BaseOptions {
            etc_apt: Some(apt),
            ..Default::default()
        };
        let host = host_inputs(&plan, &opts).unwrap();
        let cached = d
            .path()
            .join(base_recipe(&plan, &host).unwrap().file_name());
        std::fs::write(&cached, b"cached").unwrap();
        // A hit returns before any build (the fake mirror would make one fail).
        assert_eq!(ensure_base_with(&plan, d.path(), &opts).unwrap(), cached);
    }

    #[test]
    fn proxmox_key_is_checked_against_the_pinned_hash() {
        let d = tempfile::tempdir().unwrap();
        let key = d.path().join("key.gpg");
        std::fs::write(&key, b"not the key").unwrap();
        let mut plan = recipe::tests::plan("proxmox");
        plan.image.suite = "bookworm".into();
        let apt = d.path().join("apt");
        std::fs::create_dir_all(&apt).unwrap();
        std::fs::write(
            apt.join("sources.list"),
            "deb http://m/debian bookworm main\n",
        )
        .unwrap();
        let opts = BaseOptions {
            proxmox_key: Some(key.clone()),
            etc_apt: Some(apt),
        };
        let err = ensure_base_with(&plan, d.path(), &opts).unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.contains("is not Proxmox's bookworm release key"),
            "{msg}"
        );
        assert_eq!(crate::error::exit_code(&err), 2);
    }
}
