//! Stage 2, rendering: (templates, Plan, node) → that node's file set. Pure and deterministic.
//!
//! Which files a node gets, and their mode, owner, placement and secrecy, is decided here
//! in Rust ([`files::file_specs`]); the text of each file comes from a handlebars template named
//! after its target path (`/etc/hosts` → `etc/hosts.hbs`). Built-in templates are embedded
//! in the binary; `--templates DIR` replaces any of them file by file.
//!
//! Templates get a context with the whole plan, this `node`, its `peers`, and values
//! precomputed here so that templates stay free of logic: `/etc/hosts` lines, interface
//! stanzas, corosync node blocks sorted the way pvecm writes them, ceph.conf sections in
//! the order and key order of Proxmox's writer, section-config entries with their keys in
//! Proxmox's order. Handlebars runs in strict mode: a missing variable is an error naming
//! the template and the variable.
//!
//! Secrets: a template sees secret values only through `secrets.*`, and they render as
//! [`REDACTED`] unless [`RenderOptions::reveal_secrets`] is set. A file that embeds one is
//! marked `secret` and gets mode 0600 whatever its normal mode.

pub mod files;
pub mod keys;
pub mod views;

use crate::error::InputError;
use crate::render::files::{file_specs, NodeFile};
use crate::spec::secrets::{SecretValues, REDACTED};
use anyhow::{anyhow, Context as _, Result};
use handlebars::{Handlebars, RenderErrorReason};
use hcikit_firstboot::plan::{Node, Plan};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use views::ceph::{ceph, CephView};
use views::corosync::{corosync, CorosyncView};
use views::ha::{ha, HaView};
use views::network::{hosts, interfaces, nameservers, HostLine, Stanza};
use views::notify::notifications;
use views::realms::domains;
use views::secrets::SecretView;
use views::{Entry, Section};

/// `value` with every control character and Unicode line separator written as a visible
/// escape (`\u{a}`), so that a value can never start a new line, entry or section.
pub fn one_line(value: &str) -> String {
    if !value
        .chars()
        .any(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}'))
    {
        return value.to_string();
    }
    value
        .chars()
        .map(|c| {
            if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// How to render.
#[derive(Debug, Clone, Default)]
pub struct RenderOptions {
    /// A folder of templates: a file there replaces the built-in of the same relative path
    /// (e.g. `DIR/etc/hosts.hbs`).
    pub templates_dir: Option<PathBuf>,
    /// Write secret values instead of [`REDACTED`].
    pub reveal_secrets: bool,
}

/// The gid of `www-data` on Debian, which owns everything in pmxcfs (`/etc/pve`).
pub const WWW_DATA_GID: u32 = 33;

macro_rules! builtin {
    ($($path:literal),* $(,)?) => {
        &[$(($path, include_str!(concat!("../../../templates/", $path)))),*]
    };
}

/// Built-in templates, by path relative to the templates folder.
pub const BUILTIN_TEMPLATES: &[(&str, &str)] = builtin![
    "etc/hostname.hbs",
    "etc/hosts.hbs",
    "etc/timezone.hbs",
    "etc/resolv.conf.hbs",
    "etc/network/interfaces.hbs",
    "etc/chrony/sources.d/hcikit.sources.hbs",
    "root/.ssh/authorized_keys.hbs",
    "etc/pve/corosync.conf.hbs",
    "etc/pve/ceph.conf.hbs",
    "etc/pve/datacenter.cfg.hbs",
    "etc/pve/ha/groups.cfg.hbs",
    "etc/pve/ha/rules.cfg.hbs",
    "etc/pve/ha/resources.cfg.hbs",
    "etc/pve/notifications.cfg.hbs",
    "etc/pve/priv/notifications.cfg.hbs",
    "etc/pve/domains.cfg.hbs",
];

/// Template name (path relative to the templates folder) of a target file.
pub fn template_name(target: &str) -> String {
    format!("{}.hbs", target.trim_start_matches('/'))
}

/// Renders one node's files.
pub fn render_node(
    plan: &Plan,
    node: &str,
    secrets: &SecretValues,
    opts: &RenderOptions,
) -> Result<Vec<NodeFile>> {
    let templates = Templates::load(opts.templates_dir.as_deref())?;
    templates.render_node(plan, node, secrets, opts.reveal_secrets)
}

/// Renders every node's files, keyed by node name.
pub fn render_all(
    plan: &Plan,
    secrets: &SecretValues,
    opts: &RenderOptions,
) -> Result<BTreeMap<String, Vec<NodeFile>>> {
    let templates = Templates::load(opts.templates_dir.as_deref())?;
    plan.nodes
        .iter()
        .map(|n| {
            let files = templates.render_node(plan, &n.name, secrets, opts.reveal_secrets)?;
            Ok((n.name.clone(), files))
        })
        .collect()
}

/// The registered templates: built-ins, with overrides applied.
pub struct Templates {
    hbs: Handlebars<'static>,
    /// Templates replaced from `--templates`: their failures are the user's input errors.
    overridden: BTreeSet<String>,
}

impl Templates {
    /// Built-ins plus the `.hbs` files of `dir` (each must replace a built-in).
    pub fn load(dir: Option<&Path>) -> Result<Self> {
        let mut sources: BTreeMap<String, String> = BUILTIN_TEMPLATES
            .iter()
            .map(|(name, text)| (name.to_string(), text.to_string()))
            .collect();
        let mut overridden = BTreeSet::new();
        if let Some(dir) = dir {
            for (name, text) in read_overrides(dir)? {
                if !sources.contains_key(&name) {
                    return Err(InputError::new(format!(
                        "template override {} does not replace a built-in template; known: {}",
                        dir.join(&name).display(),
                        sources.keys().cloned().collect::<Vec<_>>().join(", ")
                    ))
                    .into());
                }
                sources.insert(name.clone(), text);
                overridden.insert(name);
            }
        }
        let mut hbs = Handlebars::new();
        hbs.set_strict_mode(true);
        // Values are printed as they are, except that none may start a new line: every
        // target format is line-based (section config, ceph.conf, corosync.conf,
        // interfaces). Validation refuses such characters in the spec already; this
        // holds for values from anywhere else too (`{{{…}}}` is never used).
        hbs.register_escape_fn(one_line);
        hbs.register_helper("join", Box::new(join_helper));
        // The built-in `if`/`unless` treat a missing variable as false even in strict mode,
        // which would let a misspelt condition silently drop a line.
        hbs.register_helper("if", Box::new(StrictIf { positive: true }));
        hbs.register_helper("unless", Box::new(StrictIf { positive: false }));
        for (name, text) in &sources {
            hbs.register_template_string(name, text)
                .map_err(|e| InputError::new(format!("template {name}: {e}")))?;
        }
        Ok(Templates { hbs, overridden })
    }

    fn render_node(
        &self,
        plan: &Plan,
        node_name: &str,
        secrets: &SecretValues,
        reveal: bool,
    ) -> Result<Vec<NodeFile>> {
        let node = plan
            .node(node_name)
            .ok_or_else(|| InputError::new(format!("no node named {node_name:?} in the plan")))?;
        let secret_view = SecretView::new(plan, secrets, reveal)?;
        // What a file embedding a secret contains: the placeholder, or the values.
        let markers: Vec<String> = if reveal {
            secret_view.values().map(str::to_string).collect()
        } else {
            vec![REDACTED.to_string()]
        };
        let ctx = RenderContext::new(plan, node, secret_view)
            .with_context(|| format!("preparing the files of {node_name}"))?;
        let data = serde_json::to_value(&ctx).context("serialising the template context")?;
        file_specs(plan)
            .into_iter()
            .map(|spec| {
                let name = template_name(&spec.target);
                let text = self
                    .hbs
                    .render(&name, &data)
                    .map_err(|e| {
                        let e = render_error(&name, e);
                        if self.overridden.contains(&name) {
                            InputError::new(format!("{e} (overridden template)")).into()
                        } else {
                            e
                        }
                    })
                    .with_context(|| format!("rendering {} of {node_name}", spec.target))?;
                // An override may pull a secret into any file; such a file is secret too.
                let secret = spec.secret
                    || markers
                        .iter()
                        .any(|m| !m.is_empty() && text.contains(m.as_str()));
                Ok(NodeFile {
                    path: spec.target,
                    mode: if secret { 0o600 } else { spec.mode },
                    uid: 0,
                    gid: spec.gid,
                    contents: text.into_bytes(),
                    secret,
                    placement: spec.placement,
                })
            })
            .collect()
    }
}

/// Reads every `*.hbs` below `dir`, keyed by relative path with `/` separators.
fn read_overrides(dir: &Path) -> Result<BTreeMap<String, String>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) -> Result<()> {
        let mut entries = std::fs::read_dir(dir)
            .with_context(|| format!("reading templates folder {}", dir.display()))?
            .collect::<std::io::Result<Vec<_>>>()
            .with_context(|| format!("reading templates folder {}", dir.display()))?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let path = e.path();
            if path.is_dir() {
                walk(root, &path, out)?;
            } else if path.extension().is_some_and(|x| x == "hbs") {
                let rel = path.strip_prefix(root).expect("walked below root");
                let name = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("reading template {}", path.display()))?;
                out.insert(name, text);
            }
        }
        Ok(())
    }
    if !dir.is_dir() {
        return Err(
            InputError::new(format!("templates folder {} does not exist", dir.display())).into(),
        );
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out)?;
    Ok(out)
}

/// Turns a handlebars error into one that names the template and, in strict mode, the
/// missing variable in plain words.
fn render_error(template: &str, e: handlebars::RenderError) -> anyhow::Error {
    let at = match (e.line_no, e.column_no) {
        (Some(l), Some(c)) => format!(" at line {l}, column {c}"),
        _ => String::new(),
    };
    match e.reason() {
        RenderErrorReason::MissingVariable(var) => anyhow!(
            "template {template}{at}: variable `{}` is missing (templates render in strict mode)",
            var.as_deref().unwrap_or("?")
        ),
        _ => anyhow!("template {template}{at}: {e}"),
    }
}

/// `{{#if x}}` / `{{#unless x}}` that fail when `x` does not exist.
struct StrictIf {
    positive: bool,
}

impl handlebars::HelperDef for StrictIf {
    fn call<'reg: 'rc, 'rc>(
        &self,
        h: &handlebars::Helper<'rc>,
        r: &'reg Handlebars<'reg>,
        ctx: &'rc handlebars::Context,
        rc: &mut handlebars::RenderContext<'reg, 'rc>,
        out: &mut dyn handlebars::Output,
    ) -> handlebars::HelperResult {
        use handlebars::{JsonTruthy, Renderable};
        let name = if self.positive { "if" } else { "unless" };
        let param = h
            .param(0)
            .ok_or(RenderErrorReason::ParamNotFoundForIndex(name, 0))?;
        if param.is_value_missing() {
            return Err(RenderErrorReason::MissingVariable(
                param.relative_path().map(ToOwned::to_owned),
            )
            .into());
        }
        let truthy = param.value().is_truthy(false) == self.positive;
        match if truthy { h.template() } else { h.inverse() } {
            Some(t) => t.render(r, ctx, rc, out),
            None => Ok(()),
        }
    }
}

/// `{{join list ", "}}`: the items of a list joined by a separator (default `,`).
fn join_helper(
    h: &handlebars::Helper,
    _: &Handlebars,
    _: &handlebars::Context,
    _: &mut handlebars::RenderContext,
    out: &mut dyn handlebars::Output,
) -> handlebars::HelperResult {
    let list = h
        .param(0)
        .ok_or_else(|| RenderErrorReason::ParamNotFoundForIndex("join", 0))?;
    let sep = h.param(1).and_then(|p| p.value().as_str()).unwrap_or(",");
    let items = list
        .value()
        .as_array()
        .ok_or_else(|| RenderErrorReason::InvalidParamType("array"))?;
    let parts: Vec<String> = items
        .iter()
        .map(|v| match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect();
    out.write(&parts.join(sep))?;
    Ok(())
}

/// No `Debug`: it holds secret values when revealing, which must never reach a log.
#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct RenderContext<'a> {
    plan: &'a Plan,
    node: &'a Node,
    peers: Vec<&'a Node>,
    /// `/etc/hosts` lines: this node first, then its peers in plan order.
    hosts: Vec<HostLine>,
    /// `/etc/resolv.conf` name servers (all networks', deduplicated, in order).
    nameservers: Vec<String>,
    /// `/etc/network/interfaces` stanzas after `lo`.
    interfaces: Vec<Stanza>,
    corosync: CorosyncView,
    ceph: Option<CephView>,
    /// `datacenter.cfg` lines, sorted by key.
    datacenter: Vec<Entry>,
    ha: HaView,
    /// `notifications.cfg` sections.
    notifications: Vec<Section>,
    /// `domains.cfg` sections (the built-in `pam` and `pve` realms first).
    domains: Vec<Section>,
    secrets: SecretView,
}

impl<'a> RenderContext<'a> {
    fn new(plan: &'a Plan, node: &'a Node, secrets: SecretView) -> Result<Self> {
        Ok(RenderContext {
            plan,
            node,
            peers: plan.nodes.iter().filter(|n| n.name != node.name).collect(),
            hosts: hosts(plan, node),
            nameservers: nameservers(plan),
            interfaces: interfaces(plan, node)?,
            corosync: corosync(plan)?,
            ceph: plan.ceph.as_ref().map(|_| ceph(plan)).transpose()?,
            datacenter: plan
                .datacenter
                .options
                .iter()
                .map(|(k, v)| Entry::new(k, v))
                .collect(),
            ha: ha(plan),
            notifications: notifications(plan),
            domains: domains(plan, &secrets),
            secrets,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_file_is_built_in() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../templates");
        let on_disk: BTreeSet<String> = read_overrides(&root).unwrap().into_keys().collect();
        let built_in: BTreeSet<String> = BUILTIN_TEMPLATES
            .iter()
            .map(|(n, _)| n.to_string())
            .collect();
        assert_eq!(on_disk, built_in);
    }

    #[test]
    fn unknown_override_is_bad_input() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join("etc/nosuch.hbs"), "x").unwrap();
        let err = Templates::load(Some(dir.path())).err().unwrap();
        assert_eq!(crate::error::exit_code(&err), 2);
        assert!(format!("{err:#}").contains("etc/nosuch.hbs"), "{err:#}");
    }
}
