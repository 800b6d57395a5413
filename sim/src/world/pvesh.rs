//! The simulated `pvesh get/set/create` (and `ha-manager`, `pveum`): cluster-wide configuration in pmxcfs.

use super::*;

impl World {
    pub(super) fn cluster_status_json(&self, i: usize) -> Value {
        let n = &self.plan.nodes[i];
        match (&self.cluster, self.is_member(i)) {
            (Some(c), true) => {
                let mut v = vec![json!({"type":"cluster","id":"cluster","name":c.name,
                    "nodes": c.members.iter().filter(|m| m.added_at <= self.now).count(),
                    "quorate": u8::from(self.quorate()),"version":c.config_version})];
                for m in c.members.iter().filter(|m| m.added_at <= self.now) {
                    let mi = self.idx(&m.name).unwrap_or(0);
                    v.push(
                        json!({"type":"node","id":format!("node/{}",m.name),"name":m.name,
                        "nodeid":m.nodeid,"ip":self.plan.nodes[mi].primary_ip,"level":"",
                        "local":u8::from(mi==i),"online":u8::from(self.online(m))}),
                    );
                }
                Value::Array(v)
            }
            _ => json!([{"type":"node","id":format!("node/{}",n.name),"name":n.name,"nodeid":0,
                "ip":n.primary_ip,"level":"","local":1,"online":1}]),
        }
    }

    pub(super) fn pvesh_get(&mut self, i: usize, path: &str) -> Reply {
        let q = self.lat.query_ms;
        if !self.pvesh_up(i) {
            return fail(q, 255, "ipcc_send_rec[1] failed: Connection refused\nUnable to load access control list: Connection refused");
        }
        let v = match path {
            "/cluster/status" => self.cluster_status_json(i),
            "/storage" => {
                let mut v = vec![
                    json!({"storage":"local","type":"dir","content":"iso,vztmpl,backup","path":"/var/lib/vz","digest":"sim"}),
                ];
                if self.is_member(i) {
                    for s in self.visible(&self.pmx.storages, |s| s.at) {
                        let mut e = serde_json::to_value(s).expect("json");
                        e["digest"] = json!("sim");
                        v.push(e);
                    }
                }
                Value::Array(v)
            }
            "/cluster/options" => {
                let mut m = serde_json::Map::new();
                if self.is_member(i) {
                    for (k, val) in &self.pmx.options {
                        let as_obj = ["migration", "ha", "bwlimit", "crs"].contains(&k.as_str());
                        if as_obj {
                            // Stored values passed `set_options`, so they parse.
                            let o: serde_json::Map<String, Value> = dc_property(k, val)
                                .unwrap_or_default()
                                .into_iter()
                                .map(|(a, b)| (a, Value::String(b)))
                                .collect();
                            m.insert(k.clone(), Value::Object(o));
                        } else {
                            m.insert(k.clone(), json!(val));
                        }
                    }
                }
                Value::Object(m)
            }
            "/cluster/ha/groups" => Value::Array(
                self.pmx
                    .ha_groups
                    .iter()
                    .map(|(g, o)| {
                        let mut e = json!({"group": g, "type": "group", "digest": "sim"});
                        for (k, val) in o {
                            e[k] = if k == "nodes" || k == "comment" {
                                json!(val)
                            } else {
                                json!(val.parse::<u8>().unwrap_or(0))
                            };
                        }
                        e
                    })
                    .collect(),
            ),
            "/cluster/ha/rules" => {
                if self.plan.cluster.pve_major < 9 {
                    return fail(q, 255, "No 'get' handler defined for '/cluster/ha/rules'");
                }
                Value::Array(
                    self.pmx
                        .ha_rules
                        .keys()
                        .map(|r| json!({"rule": r, "type": "node-affinity"}))
                        .collect(),
                )
            }
            "/cluster/notifications/endpoints/smtp" => Value::Array(
                self.pmx
                    .smtp
                    .iter()
                    .map(|(name, fields)| {
                        let mut e =
                            json!({"name": name, "origin": "user-created", "digest": "sim"});
                        for (k, val) in fields {
                            if k == "mailto" || k == "mailto-user" {
                                let arr = e
                                    .get(k)
                                    .and_then(Value::as_array)
                                    .cloned()
                                    .unwrap_or_default();
                                let mut arr = arr;
                                arr.push(json!(val));
                                e[k] = Value::Array(arr);
                            } else if k != "name" {
                                e[k] = json!(val);
                            }
                        }
                        e
                    })
                    .collect(),
            ),
            "/cluster/notifications/matchers" => {
                let mut v = Vec::new();
                if !self.pmx.matchers.contains_key("default-matcher") {
                    v.push(json!({"name":"default-matcher","mode":"all","target":["mail-to-root"],"origin":"builtin","comment":"Route all notifications to mail-to-root"}));
                }
                for (name, t) in &self.pmx.matchers {
                    let origin = if name == "default-matcher" {
                        "modified-builtin"
                    } else {
                        "user-created"
                    };
                    v.push(json!({"name": name, "mode": "all", "target": t, "origin": origin}));
                }
                Value::Array(v)
            }
            "/access/users/root@pam" => {
                // pve-access-control API2/User.pm read_user: no `email` key when unset.
                let mut u = json!({"enable": 1, "expire": 0, "groups": [], "tokens": {}});
                if let Some(e) = self.pmx.user_emails.get("root@pam") {
                    u["email"] = json!(e);
                }
                u
            }
            "/access/domains" => {
                let mut v = vec![
                    json!({"realm":"pam","type":"pam","comment":"Linux PAM standard authentication"}),
                    json!({"realm":"pve","type":"pve","comment":"Proxmox VE authentication server"}),
                ];
                for (r, o) in &self.pmx.realms {
                    let ty = o
                        .iter()
                        .find(|(k, _)| k == "type")
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default();
                    v.push(json!({"realm": r, "type": ty}));
                }
                Value::Array(v)
            }
            other => return fail(q, 255, format!("sim: GET {other} not simulated")),
        };
        json_out(q, v)
    }

    pub(super) fn set_options(&mut self, i: usize, p: &Parsed) -> Reply {
        let q = self.lat.write_ms;
        if let Some(r) = self.need_quorum(i) {
            return r;
        }
        for (k, v) in &p.opts {
            let parsed = dc_property(k, v);
            let field = |f: &str| {
                parsed
                    .as_ref()
                    .ok()
                    .and_then(|m| m.get(f).cloned())
                    .unwrap_or_default()
            };
            let bad = match k.as_str() {
                "ha" => !["freeze", "failover", "conditional", "migrate"]
                    .contains(&field("shutdown_policy").as_str()),
                "migration" => !["secure", "insecure"].contains(&field("type").as_str()),
                "bwlimit" => parsed
                    .as_ref()
                    .map_or(true, |m| m.values().any(|n| n.parse::<u64>().is_err())),
                "crs" => parsed.is_err(),
                _ => false,
            };
            if bad {
                return fail(
                    q,
                    255,
                    format!("400 Parameter verification failed.\n{k}: invalid format - '{v}'"),
                );
            }
        }
        for (k, v) in &p.opts {
            self.pmx.options.insert(k.clone(), v.clone());
        }
        ok(q, "")
    }

    pub(super) fn create_storage(&mut self, i: usize, p: &Parsed) -> Reply {
        let q = self.lat.write_ms;
        if let Some(r) = self.need_quorum(i) {
            return r;
        }
        let id = p.opt("storage").unwrap_or_default().to_string();
        if self.pmx.storages.iter().any(|s| s.storage == id) {
            return fail(
                q,
                255,
                format!("create storage failed: storage ID '{id}' already defined"),
            );
        }
        self.pmx.storages.push(Storage {
            storage: id,
            kind: p.opt("type").unwrap_or_default().to_string(),
            content: p.opt("content").unwrap_or_default().to_string(),
            pool: p.opt("pool").map(str::to_string),
            fs_name: p.opt("fs-name").map(str::to_string),
            at: self.now + q,
        });
        ok(q, "")
    }

    pub(super) fn create_smtp(&mut self, i: usize, p: &Parsed) -> Reply {
        let q = self.lat.write_ms;
        if let Some(r) = self.need_quorum(i) {
            return r;
        }
        let Some(name) = p.opt("name").map(str::to_string) else {
            return fail(q, 255, "400 Parameter verification failed.\nname: property is missing and it is not optional");
        };
        for req in ["server", "from-address"] {
            if !p.has(req) {
                return fail(q, 255, format!("400 Parameter verification failed.\n{req}: property is missing and it is not optional"));
            }
        }
        if self.pmx.smtp.contains_key(&name) {
            return fail(q, 255, format!("endpoint '{name}' already exists"));
        }
        let mut public = Vec::new();
        for (k, v) in &p.opts {
            if k == "password" {
                self.pmx.smtp_passwords.insert(name.clone(), v.clone());
            } else if k != "name" {
                public.push((k.clone(), v.clone()));
            }
        }
        self.pmx.smtp.insert(name, public);
        ok(q, "")
    }

    pub(super) fn create_matcher(&mut self, i: usize, p: &Parsed, name: Option<String>) -> Reply {
        let q = self.lat.write_ms;
        if let Some(r) = self.need_quorum(i) {
            return r;
        }
        let creating = name.is_none();
        let Some(name) = name.or_else(|| p.opt("name").map(str::to_string)) else {
            return fail(q, 255, "400 Parameter verification failed.\nname: property is missing and it is not optional");
        };
        if creating && self.pmx.matchers.contains_key(&name) {
            return fail(q, 255, format!("matcher '{name}' already exists"));
        }
        let targets = p.all("target");
        for t in &targets {
            if t != "mail-to-root" && !self.pmx.smtp.contains_key(t) {
                return fail(q, 255, format!("target '{t}' does not exist"));
            }
        }
        // proxmox-notify src/matcher.rs: every match-severity element is one
        // SeverityMatcher (a comma list), and `mode all` (the default) needs every
        // element to match the notification's one severity. Elements without a common
        // severity make a matcher that can never fire.
        let mode_all = p.opt("mode").unwrap_or("all") == "all";
        let sets: Vec<BTreeSet<String>> = p
            .all("match-severity")
            .iter()
            .map(|e| e.split(',').map(|s| s.trim().to_string()).collect())
            .collect();
        let common = sets
            .iter()
            .skip(1)
            .fold(sets.first().cloned().unwrap_or_default(), |acc, s| {
                acc.intersection(s).cloned().collect()
            });
        if mode_all && sets.len() > 1 && common.is_empty() {
            self.pmx.dead_matchers.insert(name.clone());
        } else {
            self.pmx.dead_matchers.remove(&name);
        }
        self.pmx.matchers.insert(name, targets);
        ok(q, "")
    }

    pub(super) fn test_target(&mut self, i: usize, t: &str) -> Reply {
        let q = self.lat.write_ms * 2;
        if !self.is_member(i) {
            return fail(q, 255, "sim: not in a cluster");
        }
        if t != "mail-to-root" && !self.pmx.smtp.contains_key(t) {
            return fail(q, 255, format!("Target '{t}' does not exist"));
        }
        if let Some(f) = self.pmx.smtp.get(t) {
            if f.iter().any(|(k, _)| k == "username") && !self.pmx.smtp_passwords.contains_key(t) {
                return fail(q, 255, format!("could not notify via target(s): {t}: username is set but no password was provided"));
            }
        }
        // proxmox-notify endpoints/common/mail.rs get_recipients: mailto addresses plus
        // the e-mail of each mailto-user (users without one are skipped); lettre then
        // refuses a message without recipients (MissingTo), which test_target reports.
        let fields = self
            .pmx
            .smtp
            .get(t)
            .cloned()
            .unwrap_or_else(|| vec![("mailto-user".to_string(), "root@pam".to_string())]);
        let recipients = fields
            .iter()
            .filter(|(k, v)| {
                k == "mailto" || (k == "mailto-user" && self.pmx.user_emails.contains_key(v))
            })
            .count();
        if recipients == 0 {
            let msg = if t == "mail-to-root" {
                // proxmox-sendmail: bail!("no recipients provided for the mail, cannot send it.")
                "no recipients provided for the mail, cannot send it.".to_string()
            } else {
                "missing destination address".to_string()
            };
            return fail(
                q,
                255,
                format!("Could not test target: could not notify via endpoint(s): {t}: {msg}"),
            );
        }
        let from = self.nodes[i].name.clone();
        self.mails.push(Mail {
            at_ms: self.now + q,
            from_node: from,
            target: t.to_string(),
            subject: format!("Test notification from {t}"),
        });
        ok(q, "")
    }

    /// `pveum user modify USERID --email ADDR` (pve-access-control API2/User.pm
    /// update_user); the schema check has already validated the address.
    pub(super) fn user_modify(&mut self, i: usize, p: &Parsed) -> Reply {
        let q = self.lat.write_ms;
        if let Some(r) = self.need_quorum(i) {
            return r;
        }
        let user = p.pos[0].clone();
        if user != "root@pam" {
            return fail(q, 255, format!("no such user ('{user}')"));
        }
        match p.opt("email") {
            Some("") => {
                self.pmx.user_emails.remove(&user);
            }
            Some(e) => {
                self.pmx.user_emails.insert(user, e.to_string());
            }
            None => {}
        }
        ok(q, "")
    }

    pub(super) fn ha_groupadd(&mut self, i: usize, p: &Parsed) -> Reply {
        let q = self.lat.write_ms;
        if self.plan.cluster.pve_major >= 9 {
            return fail(q, 255, "ha groups have been migrated to rules");
        }
        if let Some(r) = self.need_quorum(i) {
            return r;
        }
        let g = p.pos[0].clone();
        if self.pmx.ha_groups.contains_key(&g) {
            return fail(q, 255, format!("ha group ID '{g}' already defined"));
        }
        let Some(nodes) = p.opt("nodes") else {
            return fail(q, 255, "400 Parameter verification failed.\nnodes: property is missing and it is not optional");
        };
        for n in nodes.split(',') {
            let name = n.split(':').next().unwrap_or_default();
            if self.idx(name).is_none() {
                return fail(q, 255, format!("400 Parameter verification failed.\nnodes: invalid format - value '{name}' does not look like a valid node name"));
            }
        }
        let o = p.opts.iter().cloned().collect();
        self.pmx.ha_groups.insert(g, o);
        ok(q, "")
    }

    pub(super) fn ha_rules_add(&mut self, i: usize, p: &Parsed) -> Reply {
        let q = self.lat.write_ms;
        if self.plan.cluster.pve_major < 9 {
            return fail(q, 255, "unknown command 'ha-manager rules'");
        }
        if let Some(r) = self.need_quorum(i) {
            return r;
        }
        let id = p.pos[1].clone();
        if self.pmx.ha_rules.contains_key(&id) {
            return fail(q, 255, format!("rule '{id}' already defined"));
        }
        // pve-ha-manager src/PVE/API2/HA/Rules.pm `$assert_valid_resources_param`: every
        // resource must already be HA-managed (in resources.cfg), which `ha-manager add`
        // allows only for an existing guest (HA/Resources/PVEVM.pm `exists`). The
        // simulator has no guests, so nothing ever becomes managed.
        let resources: Vec<String> = p
            .opt("resources")
            .unwrap_or_default()
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        if resources.is_empty() {
            return fail(q, 255, "no resources were specified");
        }
        let mut unmanaged: Vec<String> = resources
            .into_iter()
            .filter(|r| !self.pmx.ha_resources.contains(r))
            .collect();
        unmanaged.sort();
        if !unmanaged.is_empty() {
            return fail(
                q,
                255,
                format!("cannot use unmanaged resource(s) {}.", unmanaged.join(", ")),
            );
        }
        self.pmx
            .ha_rules
            .insert(id, p.opts.iter().cloned().collect());
        ok(q, "")
    }

    /// pve-access-control `PVE::API2::Domains` `create` (what `pveum realm add` calls):
    /// `domain '<realm>' already exists`, reserved names; the password goes to
    /// `PVE::Auth::LDAP` `on_add_hook` (`/etc/pve/priv/realm/<realm>.pw`), the OpenID
    /// client key into the realm's `domains.cfg` entry: both kept out of the public
    /// listing (`GET /access/domains` returns neither).
    pub(super) fn realm_add(&mut self, i: usize, r: &str, p: &Parsed) -> Reply {
        let q = self.lat.write_ms;
        if let Some(r) = self.need_quorum(i) {
            return r;
        }
        if self.pmx.realms.contains_key(r) {
            return fail(
                q,
                255,
                format!("add auth server failed: domain '{r}' already exists"),
            );
        }
        if r == "pam" || r == "pve" {
            return fail(
                q,
                255,
                format!("add auth server failed: unable to use reserved name '{r}'"),
            );
        }
        let mut opts = Vec::new();
        for (k, v) in &p.opts {
            match k.as_str() {
                "password" | "client-key" => {
                    self.pmx.realm_secrets.insert(r.to_string(), v.clone());
                }
                "realm" => {}
                _ => opts.push((k.clone(), v.clone())),
            }
        }
        self.pmx.realms.insert(r.to_string(), opts);
        ok(q, "")
    }
}

/// A datacenter.cfg property string as Proxmox reads it: comma-separated `key=value`
/// pairs, where a bare value is allowed only if the option's format has a `default_key`
/// (pve-common `PVE::JSONSchema::parse_property_string`; the formats are pve-cluster
/// `PVE::DataCenterConfig`'s `$migration_format` (default key `type`), `$ha_format`,
/// `$crs_format` and the `bwlimit` standard option, which have none). Written for the
/// simulator; the agent's own reader (`observe`) is what the simulator's output tests.
fn dc_property(option: &str, s: &str) -> Result<BTreeMap<String, String>, String> {
    let default_key = (option == "migration").then_some("type");
    let mut m = BTreeMap::new();
    for part in s.split(',').filter(|p| !p.is_empty()) {
        let (k, v) = match (part.split_once('='), default_key) {
            (Some((k, v)), _) => (k, v),
            (None, Some(d)) => (d, part),
            (None, None) => {
                return Err(format!(
                    "{option}: value without key, but schema does not define a default key"
                ))
            }
        };
        if m.insert(k.to_string(), v.to_string()).is_some() {
            return Err(format!(
                "{option}: duplicate key in comma-separated list property: {k}"
            ));
        }
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::dc_property;

    #[test]
    fn property_strings_follow_the_option_formats() {
        let m = dc_property("migration", "secure,network=10.2.22.0/24").unwrap();
        assert_eq!(m["type"], "secure");
        assert_eq!(m["network"], "10.2.22.0/24");
        assert!(dc_property("ha", "failover")
            .unwrap_err()
            .contains("does not define a default key"));
        assert_eq!(
            dc_property("ha", "shutdown_policy=failover").unwrap()["shutdown_policy"],
            "failover"
        );
        assert!(dc_property("migration", "secure,type=insecure")
            .unwrap_err()
            .contains("duplicate key"));
    }
}
