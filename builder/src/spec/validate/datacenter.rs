//! Checks of `[datacenter]`: migration, bandwidth limits, CRS, keyboard.

use super::{join_keys, Checker, NetInfo};
use crate::spec::raw::*;
use crate::spec::values::*;
use std::collections::BTreeMap;

impl Checker {
    pub(super) fn datacenter(&mut self, spec: &Spec, nets: &BTreeMap<String, NetInfo>) {
        let d = &spec.datacenter;
        if let Some(m) = &d.migration_network {
            if !nets.contains_key(m) {
                self.err(
                    "datacenter.migration-network",
                    format!(
                        "there is no network {m:?}; defined networks: {}",
                        join_keys(spec.networks.keys())
                    ),
                );
            }
        }
        if let Some(t) = &d.migration_type {
            self.one_of("datacenter.migration-type", t, &["secure", "insecure"]);
        }
        if let Some(p) = &d.ha_shutdown_policy {
            self.one_of("datacenter.ha-shutdown-policy", p, SHUTDOWN_POLICIES);
        }
        let speed = d
            .migration_network
            .as_ref()
            .and_then(|m| nets.get(m))
            .and_then(|n| n.speed_mbps);
        for (key, bw) in &d.bwlimit {
            let k = format!("datacenter.bwlimit.{key}");
            if !BWLIMIT_KEYS.contains(&key.as_str()) {
                self.err(
                    &k,
                    format!(
                        "unknown limit; valid keys here: {}",
                        BWLIMIT_KEYS.join(", ")
                    ),
                );
                continue;
            }
            let limit = parse_bandwidth(bw);
            if let Ok(l) = &limit {
                self.parsed.bwlimits.insert(key.clone(), *l);
            }
            match limit {
                Err(m) => self.err(&k, m),
                Ok(BwLimit::Percent(_)) => {
                    if d.migration_network.is_none() {
                        self.err(&k, "a percentage needs datacenter.migration-network, whose link speed it is taken of");
                    } else if speed.is_none()
                        && d.migration_network
                            .as_ref()
                            .is_some_and(|m| nets.contains_key(m))
                    {
                        self.err(
                            &k,
                            format!(
                                "a percentage needs the link speed of networks.{}; set its speed (e.g. speed = \"10G\") or give KiB/s",
                                d.migration_network.as_deref().unwrap_or_default()
                            ),
                        );
                    }
                }
                Ok(BwLimit::KibPerSec(_)) => {}
            }
        }
        if let Some(e) = &d.email_from {
            if !is_email(e) {
                self.err(
                    "datacenter.email-from",
                    format!("{e:?} is not an e-mail address like pve@example.com"),
                );
            }
        }
        if let Some(kb) = &d.keyboard {
            self.one_of("datacenter.keyboard", kb, KEYBOARDS);
        }
        if let Some(crs) = &d.crs {
            if let Some(h) = &crs.ha {
                self.one_of("datacenter.crs.ha", h, &["basic", "static"]);
            }
        }
    }
}
