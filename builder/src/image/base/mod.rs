//! The base root file system: a Debian (or Debian + Proxmox VE) tarball built with
//! `mmdebstrap` from the build host's own apt sources, cached by a hash of its recipe.
//!
//! - [`recipe`]: the pure recipe (argv, sources, packages, hooks) and its cache key.
//! - [`sources`]: reading the host's apt sources and writing the base's.
//! - [`mirrors`]: `image.mirrors` / `--mirror` in place of the default archives.
//! - [`probe`]: can this host reach the Proxmox repositories at all?
//!
//! [`ensure_base`] is the I/O: return the cached tarball or build it, atomically.

pub mod mirrors;
pub mod probe;
pub mod recipe;
pub mod sources;

pub use mirrors::Mirrors;
pub use recipe::{base_recipe, BaseRecipe, Flavour, HostInputs, Keyring};

use crate::error::InputError;
use anyhow::{Context, Result};
use hcikit_firstboot::cmd;
use hcikit_firstboot::plan::{BaseKind, Plan};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Timestamps of a generated base when `SOURCE_DATE_EPOCH` is unset (2024-01-01 UTC), so
/// two builds of the same recipe from the same mirror state agree without extra setup.
pub const DEFAULT_SOURCE_DATE_EPOCH: u64 = 1_704_067_200;

/// Environment variable naming the Proxmox archive key file (also `--proxmox-key`).
pub const PROXMOX_KEY_ENV: &str = "HCIKIT_PROXMOX_KEY";
/// Environment variable with the SHA-256 of a mirror's own key (also
/// `--proxmox-key-sha256`), accepted instead of Proxmox's published checksum.
pub const PROXMOX_KEY_SHA256_ENV: &str = "HCIKIT_PROXMOX_KEY_SHA256";

/// Build-host settings for the base.
#[derive(Debug, Clone, Default)]
pub struct BaseOptions {
    /// Proxmox archive key; default: `HCIKIT_PROXMOX_KEY`, else the key a Proxmox host of
    /// the same release has where the base puts it.
    pub proxmox_key: Option<PathBuf>,
    /// The key's SHA-256 when it is a mirror's own key, not Proxmox's; default
    /// `HCIKIT_PROXMOX_KEY_SHA256`, else Proxmox's published checksum is required.
    pub proxmox_key_sha256: Option<String>,
    /// Mirrors for the Debian, Proxmox and Ceph archives.
    pub mirrors: Mirrors,
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
    check_proxmox_access(&recipe)?;
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
        let in_base = recipe::proxmox_release(plan.cluster.pve_major).map(|r| r.key_in_base);
        let path = opts
            .proxmox_key
            .clone()
            .or_else(|| std::env::var_os(PROXMOX_KEY_ENV).map(PathBuf::from))
            .or_else(|| in_base.map(PathBuf::from).filter(|p| p.is_file()));
        let expected = opts.proxmox_key_sha256.clone().or_else(|| {
            std::env::var(PROXMOX_KEY_SHA256_ENV)
                .ok()
                .filter(|v| !v.trim().is_empty())
        });
        match path {
            Some(path) => Some(Keyring::read(&path, expected)?),
            None => None,
        }
    } else {
        None
    };
    Ok(HostInputs {
        apt_sources,
        source_date_epoch,
        proxmox_keyring,
        mirrors: opts.mirrors.clone(),
    })
}

/// Fails with bad input (exit 2, nothing written yet) when a Proxmox or Ceph repository
/// of the recipe cannot be reached, naming the mirror option.
fn check_proxmox_access(recipe: &BaseRecipe) -> Result<()> {
    for (uri, suite) in &recipe.proxmox_repositories {
        if let Err(why) = probe::check_repository(uri, suite) {
            return Err(InputError::new(format!(
                "--base proxmox: cannot reach the repository {uri} ({why}). A Proxmox base \
                 needs Proxmox's repositories or a mirror of them: set image.mirrors.proxmox \
                 and image.mirrors.ceph (or --mirror proxmox=URI --mirror ceph=URI) to a local \
                 mirror or a proxmox-offline-mirror export, or build with --base debian \
                 (the same nodes without Proxmox VE)"
            ))
            .into());
        }
    }
    Ok(())
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
    // The file's name ends up in the base (see recipe::SOURCES_FILE_NAME): a folder of
    // its own keeps it fixed while two builds run side by side.
    let sources_dir = tempfile::Builder::new()
        .prefix(".base-sources-")
        .tempdir_in(cache_dir)
        .with_context(|| format!("creating a temporary folder in {}", cache_dir.display()))?;
    let sources_path = sources_dir.path().join(recipe::SOURCES_FILE_NAME);
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
            ..Default::default()
        };
        let err = ensure_base_with(&plan, d.path(), &opts).unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.contains("is not Proxmox's bookworm archive key (proxmox-release-bookworm.gpg"),
            "{msg}"
        );
        assert_eq!(crate::error::exit_code(&err), 2);
        assert_eq!(
            std::fs::read_dir(d.path()).unwrap().count(),
            2,
            "something written"
        );
    }

    #[test]
    fn unreachable_proxmox_repository_names_the_mirror_option() {
        let d = tempfile::tempdir().unwrap();
        let key = d.path().join("key.gpg");
        std::fs::write(&key, b"a mirror's own key").unwrap();
        let sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
            b"a mirror's own key",
        ));
        let mut plan = recipe::tests::plan("proxmox");
        plan.cluster.pve_major = 9;
        plan.image.suite = "trixie".into();
        let apt = d.path().join("apt");
        std::fs::create_dir_all(&apt).unwrap();
        std::fs::write(
            apt.join("sources.list"),
            "deb http://m/debian trixie main\n",
        )
        .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut mirrors = Mirrors::default();
        mirrors
            .set("proxmox", &format!("http://127.0.0.1:{port}/pve"), "test")
            .unwrap();
        let opts = BaseOptions {
            proxmox_key: Some(key),
            proxmox_key_sha256: Some(sha256),
            mirrors,
            etc_apt: Some(apt),
        };
        let cache = d.path().join("cache");
        let err = ensure_base_with(&plan, &cache, &opts).unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.contains(&format!(
                "cannot reach the repository http://127.0.0.1:{port}/pve"
            )) && msg.contains("--mirror proxmox=URI")
                && msg.contains("image.mirrors.proxmox"),
            "{msg}"
        );
        assert_eq!(crate::error::exit_code(&err), 2);
        assert!(!cache.exists(), "the cache folder was created");
    }
}
