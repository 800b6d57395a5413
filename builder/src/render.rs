//! Rendering: (templates, Plan, node) → that node's file set. Pure and deterministic.
//!
//! Which files a node gets, and their mode, owner, placement and secrecy, is decided here
//! in Rust ([`file_specs`]); the text of each file comes from a handlebars template named
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

use crate::error::InputError;
use crate::files::{NodeFile, Placement};
use crate::secrets::{SecretValues, REDACTED};
use anyhow::{anyhow, Context as _, Result};
use handlebars::{Handlebars, RenderErrorReason};
use hcikit_firstboot::plan::{NetDevice, Network, Node, Plan, SecretRef};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

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
        &[$(($path, include_str!(concat!("../../templates/", $path)))),*]
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
        hbs.register_escape_fn(handlebars::no_escape);
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

// ---------------------------------------------------------------------------------------
// Which files a node gets.

/// A file a node gets, before its text is rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSpec {
    pub target: String,
    pub mode: u32,
    pub gid: u32,
    pub placement: Placement,
    pub secret: bool,
}

fn install(target: &str, mode: u32) -> FileSpec {
    FileSpec {
        target: target.into(),
        mode,
        gid: 0,
        placement: Placement::Install,
        secret: false,
    }
}

/// A pmxcfs file: root:www-data, 0640, or 0600 below `priv/`.
fn desired(target: &str, secret: bool) -> FileSpec {
    let private = target.starts_with("/etc/pve/priv/");
    FileSpec {
        target: target.into(),
        mode: if private || secret { 0o600 } else { 0o640 },
        gid: WWW_DATA_GID,
        placement: Placement::Desired,
        secret,
    }
}

/// The files every node gets, in a fixed order (the same set on every node; the contents
/// differ). Conditional files appear only when the plan has something to put in them.
pub fn file_specs(plan: &Plan) -> Vec<FileSpec> {
    let mut v = vec![
        install("/etc/hostname", 0o644),
        install("/etc/hosts", 0o644),
        install("/etc/timezone", 0o644),
    ];
    if !nameservers(plan).is_empty() {
        v.push(install("/etc/resolv.conf", 0o644));
    }
    v.push(install("/etc/network/interfaces", 0o644));
    if !plan.cluster.ntp_servers.is_empty() {
        v.push(install("/etc/chrony/sources.d/hcikit.sources", 0o644));
    }
    if !plan.cluster.admin_ssh_keys.is_empty() {
        v.push(install("/root/.ssh/authorized_keys", 0o600));
    }
    v.push(desired("/etc/pve/corosync.conf", false));
    if plan.ceph.is_some() {
        v.push(desired("/etc/pve/ceph.conf", false));
    }
    if !plan.datacenter.options.is_empty() {
        v.push(desired("/etc/pve/datacenter.cfg", false));
    }
    if plan.ha.uses_rules() {
        if !ha_rules(plan).is_empty() {
            v.push(desired("/etc/pve/ha/rules.cfg", false));
        }
    } else if !plan.ha.groups.is_empty() {
        v.push(desired("/etc/pve/ha/groups.cfg", false));
    }
    if !plan.ha.resources.is_empty() {
        v.push(desired("/etc/pve/ha/resources.cfg", false));
    }
    // With nothing beyond the built-in defaults Proxmox keeps no notifications.cfg at all.
    let n = &plan.notifications;
    if !(n.smtp.is_empty() && n.matchers.is_empty() && n.default_matcher_targets.is_empty()) {
        v.push(desired("/etc/pve/notifications.cfg", false));
    }
    if plan.notifications.smtp.iter().any(|s| s.password.is_some()) {
        v.push(desired("/etc/pve/priv/notifications.cfg", true));
    }
    if !plan.realms.is_empty() {
        // OpenID client keys are stored in domains.cfg itself.
        let secret = plan
            .realms
            .iter()
            .any(|r| r.kind == "openid" && r.secret.is_some());
        v.push(desired("/etc/pve/domains.cfg", secret));
    }
    v
}

// ---------------------------------------------------------------------------------------
// The template context.

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

/// One `key value` line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    pub key: String,
    pub value: String,
}

impl Entry {
    fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        Entry {
            key: key.into(),
            value: value.into(),
        }
    }
}

/// A section of a sectioned file (ceph.conf `[name]`, or section-config `kind: name`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Section {
    pub kind: String,
    pub name: String,
    pub entries: Vec<Entry>,
}

#[derive(Debug, Serialize)]
struct HostLine {
    ip: String,
    fqdn: String,
    name: String,
}

fn hosts(plan: &Plan, node: &Node) -> Vec<HostLine> {
    std::iter::once(node)
        .chain(plan.nodes.iter().filter(|n| n.name != node.name))
        .map(|n| HostLine {
            ip: n.primary_ip.clone(),
            fqdn: n.fqdn.clone(),
            name: n.name.clone(),
        })
        .collect()
}

fn nameservers(plan: &Plan) -> Vec<String> {
    let mut seen = BTreeSet::new();
    plan.networks
        .iter()
        .flat_map(|n| n.dns.iter())
        .filter(|d| seen.insert(d.as_str()))
        .cloned()
        .collect()
}

/// One `iface` stanza of `/etc/network/interfaces`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stanza {
    pub name: String,
    pub auto: bool,
    /// `manual` or `static`.
    pub method: String,
    pub options: Vec<Entry>,
    /// A `#...` line after the stanza (Proxmox keeps it as the interface comment).
    pub comment: Option<String>,
}

/// The stanzas of one node, network by network in plan order: physical NICs (manual),
/// then the bond, then the bridge; the address sits on the network's `address-iface`.
pub fn interfaces(plan: &Plan, node: &Node) -> Result<Vec<Stanza>> {
    let mut out: Vec<Stanza> = Vec::new();
    for net in &plan.networks {
        let addr = node
            .address_on(&net.name)
            .ok_or_else(|| anyhow!("node {} has no address on network {}", node.name, net.name))?;
        let mtu = (net.mtu != 1500).then(|| Entry::new("mtu", net.mtu.to_string()));
        let manual = |name: &str| Stanza {
            name: name.into(),
            auto: false,
            method: "manual".into(),
            options: mtu.iter().cloned().collect(),
            comment: None,
        };
        let address_opts = || {
            let mut o = vec![Entry::new("address", addr.ip_cidr.clone())];
            if let Some(gw) = &net.gateway {
                o.push(Entry::new("gateway", gw.clone()));
            }
            o
        };
        let carries_address = |name: &str| name == net.address_iface;
        let mut device_stanzas = Vec::new();
        match &net.device {
            NetDevice::Interface { name } => {
                if carries_address(name) {
                    let mut o = address_opts();
                    o.extend(mtu.clone());
                    device_stanzas.push(Stanza {
                        name: name.clone(),
                        auto: true,
                        method: "static".into(),
                        options: o,
                        comment: Some(network_comment(plan, net)),
                    });
                } else {
                    device_stanzas.push(manual(name));
                }
            }
            NetDevice::Bond {
                name,
                slaves,
                mode,
                miimon,
                xmit_hash_policy,
                lacp_rate,
            } => {
                device_stanzas.extend(slaves.iter().map(|s| manual(s)));
                let here = carries_address(name);
                let mut o = if here { address_opts() } else { Vec::new() };
                o.push(Entry::new("bond-slaves", slaves.join(" ")));
                o.push(Entry::new("bond-miimon", miimon.to_string()));
                o.push(Entry::new("bond-mode", mode.as_str()));
                if let Some(p) = xmit_hash_policy {
                    o.push(Entry::new("bond-xmit-hash-policy", p.clone()));
                }
                if let Some(r) = lacp_rate {
                    o.push(Entry::new("bond-lacp-rate", r.clone()));
                }
                o.extend(mtu.clone());
                device_stanzas.push(Stanza {
                    name: name.clone(),
                    auto: true,
                    method: if here { "static" } else { "manual" }.into(),
                    options: o,
                    comment: here.then(|| network_comment(plan, net)),
                });
            }
        }
        out.extend(device_stanzas);
        if let Some(bridge) = &net.bridge {
            let mut o = address_opts();
            o.push(Entry::new("bridge-ports", net.device.name()));
            o.push(Entry::new("bridge-stp", "off"));
            o.push(Entry::new("bridge-fd", "0"));
            o.extend(mtu.clone());
            out.push(Stanza {
                name: bridge.clone(),
                auto: true,
                method: "static".into(),
                options: o,
                comment: Some(network_comment(plan, net)),
            });
        }
    }
    let mut seen = BTreeSet::new();
    if let Some(dup) = out.iter().find(|s| !seen.insert(s.name.as_str())) {
        return Err(InputError::new(format!(
            "interface {} of node {} is used by more than one network",
            dup.name, node.name
        ))
        .into());
    }
    Ok(out)
}

/// What a network carries, for the comment after its address stanza.
fn network_comment(plan: &Plan, net: &Network) -> String {
    let mut roles = Vec::new();
    if let Some(l) = net.corosync_link {
        roles.push(format!("corosync link{l}"));
    }
    if let Some(c) = &plan.ceph {
        if c.public_network == net.name {
            roles.push("ceph public".to_string());
        }
        if c.cluster_network == net.name && c.cluster_network != c.public_network {
            roles.push("ceph cluster".to_string());
        }
    }
    if roles.is_empty() {
        format!("hcikit network {}", net.name)
    } else {
        format!("hcikit network {}: {}", net.name, roles.join(", "))
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
struct CorosyncView {
    /// Node blocks sorted by name, as pvecm writes them.
    nodes: Vec<CorosyncNode>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
struct CorosyncNode {
    name: String,
    nodeid: u32,
    quorum_votes: u32,
    /// `ringN_addr` by ascending link number.
    rings: Vec<Ring>,
}

#[derive(Debug, Serialize)]
struct Ring {
    number: u8,
    addr: String,
}

fn corosync(plan: &Plan) -> Result<CorosyncView> {
    let mut nodes = plan
        .nodes
        .iter()
        .map(|n| {
            let mut rings = plan
                .corosync
                .links
                .iter()
                .map(|l| {
                    let ip = n
                        .links
                        .iter()
                        .find(|nl| nl.number == l.number)
                        .map(|nl| nl.ip.clone())
                        .ok_or_else(|| {
                            anyhow!(
                                "node {} has no address for corosync link{}",
                                n.name,
                                l.number
                            )
                        })?;
                    Ok(Ring {
                        number: l.number,
                        addr: ip,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            rings.sort_by_key(|r| r.number);
            Ok(CorosyncNode {
                name: n.name.clone(),
                nodeid: n.nodeid,
                quorum_votes: 1,
                rings,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    // pvecm sorts node blocks by name (Perl string order = byte order).
    nodes.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(CorosyncView { nodes })
}

#[derive(Debug, Serialize)]
struct CephView {
    sections: Vec<Section>,
}

/// The ceph.conf that `pveceph init` + `mon create` (+ `mds create`) on the planned nodes
/// leave behind, with `extra-config` merged in. `fsid` is left out: it is generated by
/// `pveceph init` on the node, so the agent compares with the real file's `fsid` removed.
fn ceph(plan: &Plan) -> Result<CephView> {
    let c = plan.ceph.as_ref().expect("called with ceph");
    let mut conf: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let ip_on = |node: &str, network: &str| -> Result<String> {
        plan.node(node)
            .and_then(|n| n.address_on(network))
            .map(|a| a.ip.clone())
            .ok_or_else(|| anyhow!("ceph daemon node {node} has no address on network {network}"))
    };
    let ipv6 = c.public_cidr.contains(':');
    let mon_ips = c
        .mons
        .iter()
        .map(|m| ip_on(m, &c.public_network))
        .collect::<Result<Vec<_>>>()?;
    {
        let g = conf.entry("global".into()).or_default();
        for k in [
            "auth_client_required",
            "auth_cluster_required",
            "auth_service_required",
        ] {
            g.insert(k.into(), "cephx".into());
        }
        g.insert("cluster_network".into(), c.cluster_cidr.clone());
        g.insert("mon_allow_pool_delete".into(), "true".into());
        g.insert("osd_pool_default_min_size".into(), c.min_size.to_string());
        g.insert("osd_pool_default_size".into(), c.size.to_string());
        g.insert("public_network".into(), c.public_cidr.clone());
        if !mon_ips.is_empty() {
            g.insert("mon_host".into(), mon_ips.join(" "));
            g.insert("ms_bind_ipv4".into(), (!ipv6).to_string());
            g.insert("ms_bind_ipv6".into(), ipv6.to_string());
        }
    }
    conf.entry("client".into()).or_default().insert(
        "keyring".into(),
        "/etc/pve/priv/$cluster.$name.keyring".into(),
    );
    if !c.mons.is_empty() {
        conf.entry("client.crash".into()).or_default().insert(
            "keyring".into(),
            "/etc/pve/ceph/$cluster.$name.keyring".into(),
        );
    }
    for (mon, ip) in c.mons.iter().zip(&mon_ips) {
        conf.entry(format!("mon.{mon}"))
            .or_default()
            .insert("public_addr".into(), ip.clone());
    }
    if !c.mds.is_empty() {
        conf.entry("mds".into()).or_default().insert(
            "keyring".into(),
            "/var/lib/ceph/mds/ceph-$id/keyring".into(),
        );
    }
    for mds in &c.mds {
        let s = conf.entry(format!("mds.{mds}")).or_default();
        s.insert("host".into(), mds.clone());
        s.insert("mds_standby_for_name".into(), "pve".into());
    }
    for (section, kv) in &c.extra_config {
        let s = conf.entry(section.clone()).or_default();
        for (k, v) in kv {
            // Ceph treats spaces and underscores in keys alike; Proxmox writes underscores.
            s.insert(k.trim().replace(' ', "_"), v.clone());
        }
    }
    Ok(CephView {
        sections: ceph_sections(conf),
    })
}

/// Orders ceph.conf sections like Proxmox's writer (`global`, `client`, `client.*`, `mds`,
/// `mds.*`, `mon`, `mon.*`, `osd`, `osd.*`, `mgr`, `mgr.*`, the rest; each group sorted),
/// keys sorted, `#` and `;` in values escaped.
pub fn ceph_sections(conf: BTreeMap<String, BTreeMap<String, String>>) -> Vec<Section> {
    fn group(name: &str) -> usize {
        const ORDER: [&str; 5] = ["client", "mds", "mon", "osd", "mgr"];
        if name == "global" {
            return 0;
        }
        for (i, g) in ORDER.iter().enumerate() {
            if name == *g {
                return 1 + 2 * i;
            }
            if name.strip_prefix(g).is_some_and(|r| r.starts_with('.')) {
                return 2 + 2 * i;
            }
        }
        usize::MAX
    }
    let mut sections: Vec<Section> = conf
        .into_iter()
        .map(|(name, kv)| Section {
            kind: String::new(),
            entries: kv
                .into_iter()
                .map(|(k, v)| Entry::new(k, escape_ceph_comment_chars(&v)))
                .collect(),
            name,
        })
        .collect();
    // BTreeMap order within a group is byte order, like Perl's `sort`.
    sections.sort_by_key(|s| group(&s.name));
    sections
}

/// Proxmox escapes `#` and `;` (comment characters) that are not already escaped.
fn escape_ceph_comment_chars(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut prev = None;
    for ch in v.chars() {
        if (ch == '#' || ch == ';') && prev != Some('\\') {
            out.push('\\');
        }
        out.push(ch);
        prev = Some(ch);
    }
    out
}

#[derive(Debug, Serialize)]
struct HaView {
    /// `ha/groups.cfg` sections (PVE 8).
    groups: Vec<Section>,
    /// `ha/rules.cfg` sections (PVE 9).
    rules: Vec<Section>,
    /// `ha/resources.cfg` sections.
    resources: Vec<Section>,
}

/// Options a Perl section-config type requires; its writer puts them before the optional
/// ones (PVE::SectionConfig `write_config`).
fn required_keys(kind: &str) -> &'static [&'static str] {
    match kind {
        "group" => &["nodes"],
        "node-affinity" => &["nodes", "resources"],
        "ad" => &["domain", "server1"],
        "ldap" => &["base_dn", "server1", "user_attr"],
        "openid" => &["client-id", "issuer-url"],
        _ => &[],
    }
}

/// Proxmox section-config order: `comment` first, then the type's required keys sorted,
/// then the other keys sorted.
fn section(kind: &str, name: &str, mut entries: Vec<Entry>) -> Section {
    let required = required_keys(kind);
    let rank = |k: &str| match k {
        "comment" => 0,
        k if required.contains(&k) => 1,
        _ => 2,
    };
    // A stable sort keeps repeated keys (e.g. `mailto`) in their given order.
    entries.sort_by(|a, b| (rank(&a.key), &a.key).cmp(&(rank(&b.key), &b.key)));
    Section {
        kind: kind.into(),
        name: name.into(),
        entries,
    }
}

fn bool01(b: bool) -> String {
    if b { "1" } else { "0" }.into()
}

/// PVE 9 node-affinity rules: one per group that has resources (a rule needs at least one
/// resource); `strict` is the group's `restricted`.
fn ha_rules(plan: &Plan) -> Vec<Section> {
    plan.ha
        .groups
        .iter()
        .filter_map(|g| {
            let resources = plan.ha.resources_in(&g.name);
            if resources.is_empty() {
                return None;
            }
            let mut e = vec![
                Entry::new("nodes", g.nodes_arg()),
                Entry::new("resources", resources.join(",")),
                Entry::new("strict", bool01(g.restricted)),
            ];
            if let Some(c) = &g.comment {
                e.push(Entry::new("comment", c.clone()));
            }
            Some(section("node-affinity", &g.name, e))
        })
        .collect()
}

fn ha(plan: &Plan) -> HaView {
    let rules_mode = plan.ha.uses_rules();
    let groups = plan
        .ha
        .groups
        .iter()
        .map(|g| {
            let mut e = vec![
                Entry::new("nodes", g.nodes_arg()),
                Entry::new("nofailback", bool01(g.nofailback)),
                Entry::new("restricted", bool01(g.restricted)),
            ];
            if let Some(c) = &g.comment {
                e.push(Entry::new("comment", c.clone()));
            }
            section("group", &g.name, e)
        })
        .collect();
    let resources = plan
        .ha
        .resources
        .iter()
        .map(|r| {
            let (kind, id) = r.sid.split_once(':').unwrap_or(("vm", r.sid.as_str()));
            let mut e = vec![
                Entry::new("max_relocate", r.max_relocate.to_string()),
                Entry::new("max_restart", r.max_restart.to_string()),
                Entry::new("state", r.state.clone()),
            ];
            if let Some(c) = &r.comment {
                e.push(Entry::new("comment", c.clone()));
            }
            if let Some(g) = &r.group {
                if rules_mode {
                    // PVE 9 moved nofailback from the group to the resource (`failback`).
                    let nofailback = plan.ha.groups.iter().any(|x| &x.name == g && x.nofailback);
                    if nofailback {
                        e.push(Entry::new("failback", "0"));
                    }
                } else {
                    e.push(Entry::new("group", g.clone()));
                }
            }
            section(kind, id, e)
        })
        .collect();
    HaView {
        groups,
        rules: if rules_mode {
            ha_rules(plan)
        } else {
            Vec::new()
        },
        resources,
    }
}

/// Order of proxmox-rs' section-config writer (notifications): keys as a serde_json map
/// iterates them, i.e. sorted, repeated keys one line per item in order.
fn rust_section(kind: &str, name: &str, mut entries: Vec<Entry>) -> Section {
    entries.sort_by(|a, b| a.key.cmp(&b.key));
    Section {
        kind: kind.into(),
        name: name.into(),
        entries,
    }
}

/// `notifications.cfg`: the built-in `mail-to-root` target, the SMTP targets, the built-in
/// `default-matcher` with the extra targets added, then the spec's matchers.
fn notifications(plan: &Plan) -> Vec<Section> {
    let n = &plan.notifications;
    let mut out = vec![rust_section(
        "sendmail",
        "mail-to-root",
        vec![
            Entry::new("comment", "Send mails to root@pam's email address"),
            Entry::new("mailto-user", "root@pam"),
        ],
    )];
    for s in &n.smtp {
        let mut e = vec![
            Entry::new("from-address", s.from_address.clone()),
            Entry::new("mode", s.mode.clone()),
            Entry::new("port", s.port.to_string()),
            Entry::new("server", s.server.clone()),
        ];
        e.extend(s.mailto.iter().map(|m| Entry::new("mailto", m.clone())));
        e.extend(
            s.mailto_user
                .iter()
                .map(|m| Entry::new("mailto-user", m.clone())),
        );
        if let Some(u) = &s.username {
            e.push(Entry::new("username", u.clone()));
        }
        if let Some(a) = &s.author {
            e.push(Entry::new("author", a.clone()));
        }
        if let Some(c) = &s.comment {
            e.push(Entry::new("comment", c.clone()));
        }
        out.push(rust_section("smtp", &s.name, e));
    }
    let mut default_targets = vec!["mail-to-root".to_string()];
    default_targets.extend(
        n.default_matcher_targets
            .iter()
            .filter(|t| *t != "mail-to-root")
            .cloned(),
    );
    let mut e = vec![
        Entry::new("comment", "Route all notifications to mail-to-root"),
        Entry::new("mode", "all"),
    ];
    e.extend(default_targets.into_iter().map(|t| Entry::new("target", t)));
    out.push(rust_section("matcher", "default-matcher", e));
    for m in &n.matchers {
        let mut e = vec![Entry::new("mode", m.mode.clone())];
        e.extend(m.targets.iter().map(|t| Entry::new("target", t.clone())));
        if !m.match_severity.is_empty() {
            e.push(Entry::new("match-severity", m.match_severity.join(",")));
        }
        e.extend(
            m.match_field
                .iter()
                .map(|f| Entry::new("match-field", f.clone())),
        );
        if m.invert_match {
            e.push(Entry::new("invert-match", "true"));
        }
        if let Some(c) = &m.comment {
            e.push(Entry::new("comment", c.clone()));
        }
        out.push(rust_section("matcher", &m.name, e));
    }
    out
}

/// `domains.cfg`: the built-in `pam` and `pve` realms, then the spec's realms. An OpenID
/// realm's client key lives in this file (LDAP/AD bind passwords live in
/// `priv/realm/<realm>.pw`, written by the agent through `pveum realm add --password`).
fn domains(plan: &Plan, secrets: &SecretView) -> Vec<Section> {
    let mut out = vec![
        section(
            "pam",
            "pam",
            vec![Entry::new("comment", "Linux PAM standard authentication")],
        ),
        section(
            "pve",
            "pve",
            vec![Entry::new("comment", "Proxmox VE authentication server")],
        ),
    ];
    for r in &plan.realms {
        let mut e: Vec<Entry> = r
            .options
            .iter()
            .map(|(k, v)| Entry::new(k.clone(), v.clone()))
            .collect();
        if r.default {
            e.push(Entry::new("default", "1"));
        }
        if let Some(c) = &r.comment {
            e.push(Entry::new("comment", c.clone()));
        }
        if r.kind == "openid" {
            if let Some(v) = secrets.realms.iter().find(|s| s.name == r.name) {
                e.push(Entry::new("client-key", v.value.clone()));
            }
        }
        out.push(section(&r.kind, &r.name, e));
    }
    out
}

// ---------------------------------------------------------------------------------------
// Secrets.

/// The only way secret values reach templates: each rendered or [`REDACTED`].
#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct SecretView {
    /// SMTP target passwords (`priv/notifications.cfg`), targets without one left out.
    smtp: Vec<NamedSecret>,
    /// Realm secrets (OpenID client key, LDAP/AD bind password).
    realms: Vec<NamedSecret>,
}

#[derive(Serialize)]
struct NamedSecret {
    name: String,
    value: String,
}

impl SecretView {
    /// Every value the view holds (placeholders when redacted).
    fn values(&self) -> impl Iterator<Item = &str> {
        self.smtp
            .iter()
            .chain(&self.realms)
            .map(|s| s.value.as_str())
    }

    fn new(plan: &Plan, values: &SecretValues, reveal: bool) -> Result<Self> {
        let get = |name: &str, r: &SecretRef| -> Result<NamedSecret> {
            Ok(NamedSecret {
                name: name.into(),
                value: if reveal {
                    secret_text(values, r)?
                } else {
                    REDACTED.into()
                },
            })
        };
        Ok(SecretView {
            smtp: plan
                .notifications
                .smtp
                .iter()
                .filter_map(|s| s.password.as_ref().map(|r| get(&s.name, r)))
                .collect::<Result<_>>()?,
            realms: plan
                .realms
                .iter()
                .filter_map(|x| x.secret.as_ref().map(|r| get(&x.name, r)))
                .collect::<Result<_>>()?,
        })
    }
}

/// A secret as one line of text: one trailing newline dropped, no other line break.
fn secret_text(values: &SecretValues, r: &SecretRef) -> Result<String> {
    let raw = values
        .get(r)
        .ok_or_else(|| InputError::new(format!("secret {} has no value", r.id)))?;
    let text = std::str::from_utf8(raw)
        .map_err(|_| InputError::new(format!("secret {} is not UTF-8 text", r.id)))?;
    let text = text
        .strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(text);
    if text.contains(['\n', '\r']) {
        return Err(InputError::new(format!(
            "secret {} contains a line break; it must be a single line",
            r.id
        ))
        .into());
    }
    Ok(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceph_sections_follow_the_proxmox_writer_order() {
        let mut conf: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for s in [
            "zzz",
            "mgr.a",
            "osd",
            "mon.b",
            "mon.a",
            "mds.a",
            "mds",
            "client.crash",
            "client",
            "global",
            "mon",
            "osd.3",
            "mgr",
            "clientx",
        ] {
            conf.entry(s.into())
                .or_default()
                .insert("k".into(), "v".into());
        }
        let names: Vec<String> = ceph_sections(conf).into_iter().map(|s| s.name).collect();
        assert_eq!(
            names,
            [
                "global",
                "client",
                "client.crash",
                "mds",
                "mds.a",
                "mon",
                "mon.a",
                "mon.b",
                "osd",
                "osd.3",
                "mgr",
                "mgr.a",
                "clientx",
                "zzz"
            ]
        );
    }

    #[test]
    fn ceph_values_escape_comment_characters_once() {
        assert_eq!(escape_ceph_comment_chars("a#b;c"), r"a\#b\;c");
        assert_eq!(escape_ceph_comment_chars(r"a\#b"), r"a\#b");
    }

    #[test]
    fn section_config_puts_comment_first_and_keeps_repeats_in_order() {
        let s = section(
            "smtp",
            "x",
            vec![
                Entry::new("server", "s"),
                Entry::new("mailto", "b@x"),
                Entry::new("comment", "c"),
                Entry::new("mailto", "a@x"),
            ],
        );
        let keys: Vec<_> = s
            .entries
            .iter()
            .map(|e| format!("{} {}", e.key, e.value))
            .collect();
        assert_eq!(keys, ["comment c", "mailto b@x", "mailto a@x", "server s"]);
    }

    #[test]
    fn section_config_writes_required_keys_before_optional_ones() {
        let s = section(
            "ad",
            "corp",
            vec![
                Entry::new("default", "1"),
                Entry::new("server1", "dc"),
                Entry::new("case-sensitive", "0"),
                Entry::new("domain", "corp.example"),
            ],
        );
        let keys: Vec<_> = s.entries.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["domain", "server1", "case-sensitive", "default"]);
    }

    #[test]
    fn secret_text_drops_one_newline_and_rejects_inner_ones() {
        let mut v = SecretValues::new();
        v.insert("a", "pw\n");
        v.insert("b", "p\nw");
        assert_eq!(secret_text(&v, &SecretRef::new("a")).unwrap(), "pw");
        assert!(secret_text(&v, &SecretRef::new("b")).is_err());
        assert!(secret_text(&v, &SecretRef::new("c")).is_err());
    }

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
