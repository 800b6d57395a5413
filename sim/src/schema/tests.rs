use super::*;

fn v(s: &str) -> Vec<String> {
    s.split(' ').map(str::to_string).collect()
}

fn ok(major: u8, s: &str) -> Parsed {
    match check(&v(s), major) {
        Some(Ok(p)) => p,
        other => panic!("{s}: {other:?}"),
    }
}

fn err(major: u8, s: &str) -> Reject {
    match check(&v(s), major) {
        Some(Err(r)) => r,
        other => panic!("{s} should be rejected: {other:?}"),
    }
}

#[test]
fn both_tables_name_the_commits_they_were_read_from() {
    for m in [8, 9] {
        let t = table(m);
        assert_eq!(t["pve-major"], m as i64);
        for repo in [
            "pve-common",
            "pve-cluster",
            "pve-manager",
            "pve-access-control",
            "pve-ha-manager",
            "pve-storage",
        ] {
            let c = t["sources"][repo].as_str().unwrap_or_default();
            assert_eq!(c.len(), 40, "PVE {m}: commit of {repo}");
        }
    }
}

#[test]
fn the_agents_commands_parse_on_both_majors() {
    for m in [8, 9] {
        let p = ok(m, "pvecm create lab --link0 10.2.21.66 --link1 10.2.22.66");
        assert_eq!(p.cmd, "pvecm create");
        assert_eq!(p.pos, ["lab"]);
        let p = ok(
            m,
            "pvecm add 10.2.21.66 --use_ssh 1 --link0 10.2.21.67 --link1 10.2.22.67",
        );
        assert_eq!(p.pos, ["10.2.21.66"]);
        assert_eq!(p.opt("use_ssh"), Some("1"));
        ok(m, "pveceph init --network 10.2.23.0/24 --cluster-network 10.2.24.0/24 --size 2 --min_size 1");
        ok(m, "pveceph pool create vm --size 3 --min_size 2 --pg_autoscale_mode on --application rbd --add_storages 1");
        ok(
            m,
            "pveceph fs create --name cephfs01 --pg_num 128 --add-storage 1",
        );
        ok(
            m,
            "pveceph osd create /dev/disk/by-id/nvme-x --crush-device-class nvme",
        );
        ok(m, "pveum user modify root@pam --email admin@example.com");
        ok(m, "pvesh create /cluster/notifications/matchers --name m1 --mode all --target t1 --match-severity error,warning");
        ok(m, "pvesh create /cluster/notifications/targets/relay/test");
        ok(m, "pvesh get /cluster/status --output-format json");
        ok(
            m,
            "pvesh set /cluster/options --keyboard de --migration type=secure,network=10.2.22.0/24",
        );
    }
    let p = ok(9, "ha-manager rules add node-affinity prefer-pve1 --resources vm:100,ct:101 --nodes pve1:2,pve2 --strict 1");
    assert_eq!(p.pos, ["node-affinity", "prefer-pve1"]);
    ok(
        8,
        "ha-manager groupadd prefer-pve1 --nodes pve1:2,pve2:1,pve3 --restricted 1 --nofailback 1",
    );
}

#[test]
fn wrong_spelling_is_rejected_like_getopt() {
    let e = err(9, "pveceph pool create vm --add-storage 1");
    assert_eq!(e.code, 255);
    assert!(
        e.msg
            .starts_with("Unknown option: add-storage\n400 unable to parse option\n"),
        "{}",
        e.msg
    );
    let e = err(9, "pveceph fs create --add_storages 1");
    assert!(
        e.msg.starts_with("Unknown option: add_storages\n"),
        "{}",
        e.msg
    );
    // Getopt::Long auto_abbrev: a unique prefix is the option.
    ok(9, "pveceph pool create vm --add_storage 1");
    let e = err(9, "pvecm create");
    assert!(e.msg.starts_with("400 not enough arguments\n"), "{}", e.msg);
}

#[test]
fn illegal_values_get_the_verification_message() {
    let e = err(9, "pveceph fs create --pg_num 4");
    assert_eq!(
        e.msg.lines().take(2).collect::<Vec<_>>(),
        [
            "400 Parameter verification failed.",
            "pg_num: value must have a minimum value of 8"
        ]
    );
    let e = err(
        8,
        "pvesh create /cluster/notifications/matchers --name smtp.relay",
    );
    assert!(
        e.msg
            .contains("name: invalid format - invalid configuration ID 'smtp.relay'"),
        "{}",
        e.msg
    );
    let e = err(9, "pveceph install --version quincy");
    assert!(
        e.msg.contains(
            "version: value 'quincy' does not have a value in the enumeration 'squid, tentacle'"
        ),
        "{}",
        e.msg
    );
    let e = err(9, "pveceph init --cluster-network 10.0.0.0/24");
    assert!(
        e.msg
            .contains("network: missing property required by 'cluster-network'"),
        "{}",
        e.msg
    );
    let e = err(9, "pvecm create averyveryverylongname");
    assert!(
        e.msg
            .contains("clustername: value may only be 15 characters long"),
        "{}",
        e.msg
    );
    let e = err(9, "pvesh set /cluster/options --migration type=fast");
    assert!(
        e.msg.contains("migration: invalid format - format error"),
        "{}",
        e.msg
    );
    let e = err(9, "pveum user modify root@pam --email nobody");
    assert!(
        e.msg
            .contains("email: invalid format - value does not look like a valid email address"),
        "{}",
        e.msg
    );
}

#[test]
fn a_command_missing_from_a_major_is_unknown_there() {
    let e = err(
        8,
        "ha-manager rules add node-affinity r --resources vm:100 --nodes pve1",
    );
    assert_eq!(e.code, 255);
    assert!(
        e.msg
            .starts_with("ERROR: unknown command 'ha-manager rules'"),
        "{}",
        e.msg
    );
    let e = err(9, "pvesh create /cluster/nothing");
    assert_eq!(e.msg, "no 'create' handler for '/cluster/nothing'");
}

#[test]
fn repeated_array_options_stay_separate_elements() {
    // JSONSchema get_options: each repetition of an array option is one element.
    let p = ok(9, "pvesh create /cluster/notifications/matchers --name m1 --match-severity error --match-severity warning");
    assert_eq!(p.all("match-severity"), ["error", "warning"]);
    let p = ok(
        9,
        "pvesh create /cluster/notifications/matchers --name m1 --match-severity error,warning",
    );
    assert_eq!(p.all("match-severity"), ["error,warning"]);
}

#[test]
fn every_pattern_and_code_format_of_the_tables_is_modelled() {
    fn walk(v: &Value, pats: &mut Vec<String>, fmts: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    if k == "pattern" {
                        pats.extend(x.as_str().map(str::to_string));
                    }
                    if k == "format" {
                        fmts.extend(x.as_str().map(str::to_string));
                    }
                    walk(x, pats, fmts);
                }
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, pats, fmts)),
            _ => {}
        }
    }
    for m in [8, 9] {
        let (mut pats, mut fmts) = (Vec::new(), Vec::new());
        // Only the parameters of the commands, not the dumps of unrelated formats.
        for part in ["cli", "api"] {
            walk(&table(m)[part], &mut pats, &mut fmts);
        }
        for p in &pats {
            pattern_matches(p, "x");
        }
        let formats = table(m)["formats"].as_object().unwrap();
        for f in fmts {
            let base = f.trim_end_matches("-list").trim_end_matches("-opt");
            let kind = formats
                .get(&f)
                .or_else(|| formats.get(base))
                .map(|d| d["kind"].as_str().unwrap_or(""));
            if kind == Some("property-string") || f == "regex" {
                continue;
            }
            let modelled = MODELLED_FORMATS.contains(&base) || NOT_MODELLED_FORMATS.contains(&base);
            assert!(
                modelled,
                "PVE {m}: format {f} is neither modelled nor listed as unused"
            );
        }
    }
}
