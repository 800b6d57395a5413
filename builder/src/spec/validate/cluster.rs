//! Checks of `[cluster]` and `[firstboot]`: names, versions, time, keys, timeouts.

use super::Checker;
use crate::spec::defaults::*;
use crate::spec::raw::*;
use crate::spec::values::*;
use std::collections::BTreeMap;
use std::net::IpAddr;

impl Checker {
    pub(super) fn cluster(&mut self, spec: &Spec) {
        let c = &spec.cluster;
        if let Err(m) = check_pve_node_name(&c.name, 15) {
            self.err("cluster.name", m);
        }
        if !is_dns_name(&c.domain) {
            self.err(
                "cluster.domain",
                format!(
                    "{:?} is not a valid DNS domain; use labels of letters, digits and '-' separated by dots, e.g. lab.example.com",
                    c.domain
                ),
            );
        }
        if let Some(tz) = &c.timezone {
            if !is_timezone(tz) {
                self.err(
                    "cluster.timezone",
                    format!("{tz:?} is not an IANA time zone name like Europe/Berlin or UTC"),
                );
            }
        }
        if let Some(kb) = &c.keyboard {
            self.one_of("cluster.keyboard", kb, KEYBOARDS);
        }
        match (&c.root_password_hash, &c.root_password_file) {
            (Some(_), Some(_)) => self.err(
                "cluster.root-password-file",
                "set either root-password-hash or root-password-file, not both",
            ),
            (Some(h), None) => {
                if let Err(m) = check_crypt_hash(h) {
                    self.err("cluster.root-password-hash", m);
                }
            }
            (None, None) if c.admin_ssh_keys.is_empty() => self.warn(
                "cluster",
                "neither root-password-hash nor admin-ssh-keys is set; nobody can log in to the nodes",
            ),
            _ => {}
        }
        for (i, key) in c.admin_ssh_keys.iter().enumerate() {
            if let Err(m) = check_ssh_public_key(key) {
                self.err(format!("cluster.admin-ssh-keys[{i}]"), m);
            }
        }
        if let Some(v) = c.pve_version {
            if v != 8 && v != 9 {
                self.err(
                    "cluster.pve-version",
                    format!("{v} is not supported; use 8 (bookworm) or 9 (trixie)"),
                );
            } else if v == 8 {
                // pve-docs `pve-faq.adoc`, support table: PVE 8 / bookworm EOL 2026-08.
                self.warn(
                    "cluster.pve-version",
                    "Proxmox VE 8 (Debian 12 bookworm) reached end of life in 2026-08; \
                     hcikit still builds it, but a new cluster should use 9 (trixie)",
                );
            }
        }
        for (i, s) in c.ntp_servers.iter().enumerate() {
            if s.parse::<IpAddr>().is_err() && !is_dns_name(s) {
                self.err(
                    format!("cluster.ntp-servers[{i}]"),
                    format!("{s:?} is neither an IP address nor a host name"),
                );
            }
        }
    }

    pub(super) fn firstboot(&mut self, spec: &Spec) {
        let f = &spec.firstboot;
        let mut vals = BTreeMap::new();
        for (name, d) in [
            ("peer-timeout", &f.peer_timeout),
            ("join-timeout", &f.join_timeout),
            ("health-timeout", &f.health_timeout),
            ("backoff", &f.backoff),
            ("max-backoff", &f.max_backoff),
        ] {
            if let Some(d) = d {
                match parse_duration(d) {
                    Err(m) => self.err(format!("firstboot.{name}"), m),
                    Ok(v) => {
                        vals.insert(name, v);
                    }
                }
            }
        }
        let backoff = vals.get("backoff").copied().unwrap_or(DEFAULT_BACKOFF);
        let max = vals
            .get("max-backoff")
            .copied()
            .unwrap_or(DEFAULT_MAX_BACKOFF);
        if backoff > max {
            self.err(
                "firstboot.backoff",
                format!("{backoff}s is longer than max-backoff ({max}s)"),
            );
        }
        if let Some(c) = &f.ceph_install {
            self.one_of("firstboot.ceph-install", c, &["preinstalled", "pveceph"]);
        }
        if let Some(u) = &f.report_url {
            if let Err(m) = hcikit_firstboot::report::check_url(u) {
                self.err("firstboot.report-url", format!("{u:?} {m}"));
            }
        }
    }
}
