//! The simulator's command-line check for Proxmox's tools: the API parameter schemas of
//! the source (`sim/schemas/pve{8,9}.json`, written by `scripts/pve-schemas/extract.sh`),
//! applied the way the CLI applies them, with the CLI's messages and exit codes.
//!
//! Followed, in pve-common: `src/PVE/CLIHandler.pm` `resolve_cmd`/`$handle_cmd` (command
//! lookup, `ERROR: unknown command`), `src/PVE/JSONSchema.pm` `get_options` (Getopt::Long
//! with `prefix_pattern=(--|-)`, booleans `:s`, arrays and `-list` formats repeatable,
//! positional `arg_param`), `check_prop`/`check_object`/`check_type`/`check_format`
//! (the verification messages), `parse_property_string`, `parse_boolean`, `is_integer`,
//! `is_number`; `src/PVE/RESTHandler.pm` `cli_handler` (a parameter exception gets the
//! usage appended) and `src/PVE/Exception.pm` `stringify` (`<code> <msg>` then
//! `<param>: <error>` lines). An uncaught `die` ends the Perl CLI with exit code 255.
//! pve-manager `PVE/CLI/pvesh.pm` `call_api_method` (`no '<cmd>' handler for '<path>'`).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use regex_automata::meta::Regex;
use serde_json::Value;

use crate::flags::{Parsed, Reject};

/// The Proxmox tools whose command lines are checked against the schema tables.
pub const TOOLS: &[&str] = &["pvecm", "pveceph", "pveum", "ha-manager", "pvesh"];

const PVE8: &str = include_str!("../schemas/pve8.json");
const PVE9: &str = include_str!("../schemas/pve9.json");

/// The schema table of one PVE major version.
pub fn table(major: u8) -> &'static Value {
    static T8: OnceLock<Value> = OnceLock::new();
    static T9: OnceLock<Value> = OnceLock::new();
    let (cell, text) = if major >= 9 { (&T9, PVE9) } else { (&T8, PVE8) };
    cell.get_or_init(|| serde_json::from_str(text).expect("checked-in schema table is JSON"))
}

/// Exit code of a Perl CLI that dies (`die` with `$!` and `$?` clear), and of
/// CLIHandler's `$abort` (`exit(-1)`).
pub const DIE: i32 = 255;

fn die(msg: String) -> Reject {
    Reject { code: DIE, msg }
}

/// Checks a command line of one of [`TOOLS`]; `None` for any other program.
pub fn check(argv: &[String], major: u8) -> Option<Result<Parsed, Reject>> {
    let tool = argv.first()?.rsplit('/').next()?.to_string();
    if !TOOLS.contains(&tool.as_str()) {
        return None;
    }
    let t = table(major);
    Some(if tool == "pvesh" {
        check_pvesh(t, argv)
    } else {
        check_cli(t, &tool, argv)
    })
}

fn check_cli(t: &Value, tool: &str, argv: &[String]) -> Result<Parsed, Reject> {
    // The longest table entry whose words start the command line (CLIHandler resolve_cmd
    // walks $cmddef word by word).
    let cli = t["cli"].as_object().expect("cli table");
    let best = cli
        .iter()
        .filter_map(|(key, def)| {
            let words: Vec<&str> = key.split(' ').collect();
            (words[0] == tool
                && argv.len() >= words.len()
                && words[1..].iter().zip(&argv[1..]).all(|(w, a)| w == a))
            .then_some((key, def, words.len()))
        })
        .max_by_key(|(_, _, n)| *n);
    let Some((key, def, n)) = best else {
        // resolve_cmd stops at the first word that is not a (sub)command; $abort prints
        // the short usage on stderr and exits -1.
        let word = argv
            .get(1)
            .map(|w| format!(" {w}"))
            .unwrap_or_else(|| " ".into());
        let msg = if argv.len() < 2 {
            "ERROR: no command specified".to_string()
        } else {
            format!("ERROR: unknown command '{tool}{word}'")
        };
        return Err(die(format!(
            "{msg}\nUSAGE: {tool} <COMMAND> [ARGS] [OPTIONS]"
        )));
    };
    let arg_param: Vec<String> = strings(&def["arg-param"]);
    let fixed: Vec<String> = strings(&def["fixed-param"]);
    let usage = usage(key, &arg_param);
    let params = parse_and_verify(&def["parameters"], &argv[n..], &arg_param, &fixed, &usage)?;
    Ok(to_parsed(key.clone(), &arg_param, params))
}

fn check_pvesh(t: &Value, argv: &[String]) -> Result<Parsed, Reject> {
    let verb = argv.get(1).map(String::as_str).unwrap_or("");
    if !["get", "set", "create", "delete", "ls", "usage"].contains(&verb) {
        return Err(die(format!(
            "ERROR: unknown command 'pvesh {verb}'\nUSAGE: pvesh <COMMAND> [ARGS] [OPTIONS]"
        )));
    }
    let Some(path) = argv.get(2) else {
        return Err(die(format!(
            "400 not enough arguments\npvesh {verb} <api_path> [OPTIONS] [FORMAT_OPTIONS]"
        )));
    };
    let api = t["api"].as_object().expect("api table");
    let found = api.iter().find_map(|(key, def)| {
        let (kverb, kpath) = key.split_once(' ')?;
        (kverb == verb).then_some(())?;
        let uri = match_path(kpath, path)?;
        Some((kpath, def, uri))
    });
    let Some((kpath, def, uri)) = found else {
        return Err(die(format!("no '{verb}' handler for '{path}'")));
    };
    // pvesh merges the standard output options into GET methods
    // ($cond_add_standard_output_properties) and removes the URI parameters from the
    // options (remove_schema_properties).
    let mut schema = def["parameters"].clone();
    if let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) {
        for k in uri.keys() {
            props.remove(k);
        }
        if verb == "get" {
            if let Some(std) = t["standard-output-options"].as_object() {
                for (k, v) in std {
                    props.insert(k.clone(), v.clone());
                }
            }
        }
    }
    let usage = format!("USAGE: pvesh {verb} <api_path> [OPTIONS] [FORMAT_OPTIONS]");
    let mut params = parse_and_verify(&schema, &argv[3..], &[], &[], &usage)?;
    // The concrete path stays the first positional for the simulator's handlers, the
    // command is named with `*` for each URI parameter.
    params.retain(|(k, _)| !uri.contains_key(k));
    let cmd = format!(
        "pvesh {verb} {}",
        kpath
            .split('/')
            .map(|s| if s.starts_with('{') { "*" } else { s })
            .collect::<Vec<_>>()
            .join("/")
    );
    Ok(Parsed {
        cmd,
        pos: vec![path.clone()],
        opts: flatten(params),
    })
}

/// Matches `/cluster/notifications/matchers/{name}` against a concrete path and returns
/// the URI parameters.
fn match_path(template: &str, path: &str) -> Option<BTreeMap<String, String>> {
    let t: Vec<&str> = template.trim_matches('/').split('/').collect();
    let p: Vec<&str> = path.trim_matches('/').split('/').collect();
    if t.len() != p.len() {
        return None;
    }
    let mut uri = BTreeMap::new();
    for (a, b) in t.iter().zip(&p) {
        if let Some(name) = a.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            uri.insert(name.to_string(), b.to_string());
        } else if a != b {
            return None;
        }
    }
    Some(uri)
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn usage(key: &str, arg_param: &[String]) -> String {
    let args: String = arg_param.iter().map(|a| format!(" <{a}>")).collect();
    format!("USAGE: {key}{args} [OPTIONS]")
}

/// A parameter value after Getopt: one string, or the elements of a repeated option.
#[derive(Debug, Clone, PartialEq)]
enum Val {
    One(String),
    Many(Vec<String>),
}

fn flatten(params: Vec<(String, Val)>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (k, v) in params {
        match v {
            Val::One(s) => out.push((k, s)),
            Val::Many(vs) => out.extend(vs.into_iter().map(|s| (k.clone(), s))),
        }
    }
    out
}

fn to_parsed(cmd: String, arg_param: &[String], params: Vec<(String, Val)>) -> Parsed {
    let mut pos = Vec::new();
    for a in arg_param {
        if let Some((_, Val::One(v))) = params.iter().find(|(k, _)| k == a) {
            pos.push(v.clone());
        }
    }
    let rest = params
        .into_iter()
        .filter(|(k, _)| !arg_param.contains(k))
        .collect();
    Parsed {
        cmd,
        pos,
        opts: flatten(rest),
    }
}

/// Every property an option may name: all properties of the schema, of its `allOf`
/// parts and of every `oneOf` variant (JSONSchema `for_each_property`).
fn all_props(schema: &Value, out: &mut BTreeMap<String, Value>) {
    if let Some(p) = schema["properties"].as_object() {
        for (k, v) in p {
            out.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    for part in ["allOf", "oneOf"] {
        if let Some(a) = schema[part].as_array() {
            for s in a {
                all_props(s, out);
            }
        }
    }
    if let (Some(tp), Some(ts)) = (
        schema["type-property"].as_str(),
        schema.get("type-property-schema"),
    ) {
        out.entry(tp.to_string()).or_insert_with(|| ts.clone());
    }
}

/// The properties that apply to this call: with a `oneOf` keyed by a type property,
/// only the variant whose `instance-type` is the given type (JSONSchema
/// `get_instance_type`, `check_one_of`).
fn effective_props(schema: &Value, given: &BTreeMap<String, Val>) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    collect_effective(schema, given, &mut out);
    out
}

fn collect_effective(
    schema: &Value,
    given: &BTreeMap<String, Val>,
    out: &mut BTreeMap<String, Value>,
) {
    if let Some(p) = schema["properties"].as_object() {
        for (k, v) in p {
            out.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    if let Some(a) = schema["allOf"].as_array() {
        for s in a {
            collect_effective(s, given, out);
        }
    }
    if let Some(variants) = schema["oneOf"].as_array() {
        let tp = schema["type-property"].as_str().unwrap_or("type");
        if let Some(ts) = schema.get("type-property-schema") {
            out.insert(tp.to_string(), ts.clone());
        }
        if let Some(Val::One(ty)) = given.get(tp) {
            if let Some(v) = variants
                .iter()
                .find(|v| v["instance-type"].as_str() == Some(ty))
            {
                collect_effective(v, given, out);
            }
        }
    }
}

fn is_bool(pd: &Value) -> bool {
    pd["type"].as_str() == Some("boolean")
}

fn is_list(pd: &Value) -> bool {
    pd["format"].as_str().is_some_and(|f| f.contains("-list"))
}

fn is_array(pd: &Value) -> bool {
    pd["type"].as_str() == Some("array") || is_list(pd)
}

/// JSONSchema `get_options` followed by RESTHandler `handle`'s `validate`.
fn parse_and_verify(
    schema: &Value,
    args: &[String],
    arg_param: &[String],
    fixed: &[String],
    usage: &str,
) -> Result<Vec<(String, Val)>, Reject> {
    let mut props = BTreeMap::new();
    all_props(schema, &mut props);
    let options: Vec<(&String, &Value)> =
        props.iter().filter(|(k, _)| !fixed.contains(k)).collect();

    // Getopt::Long: permute (options anywhere), ignore_case, auto_abbrev, `--` ends
    // the options. Its warnings go to stderr before the 400.
    let mut given: BTreeMap<String, Val> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut rest: Vec<String> = Vec::new();
    let mut warnings = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if a == "--" {
            rest.extend(args[i + 1..].iter().cloned());
            break;
        }
        let Some(body) = a
            .strip_prefix("--")
            .or_else(|| a.strip_prefix('-'))
            .filter(|b| !b.is_empty())
        else {
            rest.push(a.clone());
            i += 1;
            continue;
        };
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        let lower = name.to_lowercase();
        let exact = options.iter().find(|(k, _)| k.to_lowercase() == lower);
        let cands: Vec<&(&String, &Value)> = match exact {
            Some(e) => vec![e],
            None => options
                .iter()
                .filter(|(k, _)| k.to_lowercase().starts_with(&lower))
                .collect(),
        };
        let (key, pd) = match cands.as_slice() {
            [one] => **one,
            [] => {
                warnings.push(format!("Unknown option: {lower}"));
                i += 1;
                continue;
            }
            many => {
                let names: Vec<&str> = many.iter().map(|(k, _)| k.as_str()).collect();
                warnings.push(format!(
                    "Option {lower} is ambiguous ({})",
                    names.join(", ")
                ));
                i += 1;
                continue;
            }
        };
        i += 1;
        let value = if let Some(v) = inline {
            v
        } else if is_bool(pd) {
            // `:s`: the next word is the value unless it looks like an option.
            match args.get(i) {
                Some(n) if !n.starts_with('-') => {
                    i += 1;
                    n.clone()
                }
                _ => String::new(),
            }
        } else {
            match args.get(i) {
                Some(n) => {
                    i += 1;
                    n.clone()
                }
                None => {
                    warnings.push(format!("Option {key} requires an argument"));
                    continue;
                }
            }
        };
        if !order.contains(key) {
            order.push(key.clone());
        }
        if is_array(pd) {
            match given
                .entry(key.clone())
                .or_insert_with(|| Val::Many(Vec::new()))
            {
                Val::Many(v) => v.push(value),
                one => *one = Val::Many(vec![value]),
            }
        } else {
            // A scalar option given twice keeps the last value.
            given.insert(key.clone(), Val::One(value));
        }
    }
    if !warnings.is_empty() {
        return Err(die(format!(
            "{}\n400 unable to parse option\n{usage}",
            warnings.join("\n")
        )));
    }

    // Positional parameters (arg_param), in order.
    let mut rest = rest.into_iter();
    for name in arg_param {
        match rest.next() {
            Some(v) => {
                order.push(name.clone());
                given.insert(name.clone(), Val::One(v));
            }
            None => {
                let optional = props
                    .get(name)
                    .is_some_and(|p| p["optional"].as_i64() == Some(1));
                if !optional {
                    return Err(die(format!("400 not enough arguments\n{usage}")));
                }
            }
        }
    }
    if rest.next().is_some() {
        return Err(die(format!("400 too many arguments\n{usage}")));
    }

    // Booleans to 0/1, `-list` formats joined (get_options' last loop).
    for (k, v) in given.iter_mut() {
        let Some(pd) = props.get(k) else { continue };
        if is_bool(pd) {
            if let Val::One(s) = v {
                if s.is_empty() {
                    *s = "1".into();
                } else if let Some(b) = parse_boolean(s) {
                    *s = if b { "1" } else { "0" }.into();
                } else {
                    return Err(die(format!("400 unable to parse boolean option\n{usage}")));
                }
            }
        } else if is_list(pd) {
            if let Val::Many(vs) = v {
                *v = Val::One(vs.join(","));
            }
        }
    }

    // validate(): every property of the effective schema, then `requires`.
    let eff = effective_props(schema, &given);
    let mut errors: BTreeMap<String, String> = BTreeMap::new();
    for (k, pd) in &eff {
        if fixed.contains(k) {
            continue;
        }
        match given.get(k) {
            None => {
                if pd["optional"].as_i64() != Some(1) {
                    errors.insert(
                        k.clone(),
                        "property is missing and it is not optional".into(),
                    );
                }
            }
            Some(Val::One(s)) => {
                if let Err(e) = check_value(pd, s) {
                    errors.insert(k.clone(), e);
                }
            }
            Some(Val::Many(vs)) => {
                if pd["type"].as_str() != Some("array") {
                    errors.insert(k.clone(), "type check ('string') failed - got ARRAY".into());
                    continue;
                }
                for (n, s) in vs.iter().enumerate() {
                    if let Err(e) = check_value(&pd["items"], s) {
                        errors.insert(format!("{k}[{n}]"), e);
                    }
                }
            }
        }
    }
    for k in given.keys() {
        match eff.get(k) {
            None => {
                errors.insert(
                    k.clone(),
                    "property is not defined in schema and the schema does not allow additional properties".into(),
                );
            }
            Some(pd) => {
                if let Some(req) = pd["requires"].as_str() {
                    if !given.contains_key(req) {
                        errors.insert(
                            req.to_string(),
                            format!("missing property required by '{k}'"),
                        );
                    }
                }
            }
        }
    }
    if !errors.is_empty() {
        let lines: String = errors.iter().map(|(k, e)| format!("{k}: {e}\n")).collect();
        return Err(die(format!(
            "400 Parameter verification failed.\n{lines}{usage}"
        )));
    }
    Ok(order
        .into_iter()
        .filter_map(|k| given.remove(&k).map(|v| (k, v)))
        .collect())
}

/// pve-common `PVE::JSONSchema::parse_boolean`.
pub fn parse_boolean(s: &str) -> Option<bool> {
    match s.to_lowercase().as_str() {
        "1" | "on" | "yes" | "true" => Some(true),
        "0" | "off" | "no" | "false" => Some(false),
        _ => None,
    }
}

fn is_integer(s: &str) -> bool {
    let d = s.strip_prefix(['+', '-']).unwrap_or(s);
    !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())
}

fn is_number(s: &str) -> bool {
    // /^[+-]?(\d+\.\d+|\d+\.|\.\d+|\d+)([eE][+-]?\d+)?$/
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (mant, exp) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let mant_ok = match mant.split_once('.') {
        Some((a, b)) => {
            (!a.is_empty() || !b.is_empty())
                && a.bytes().all(|c| c.is_ascii_digit())
                && b.bytes().all(|c| c.is_ascii_digit())
        }
        None => !mant.is_empty() && mant.bytes().all(|c| c.is_ascii_digit()),
    };
    let exp_ok = match exp {
        Some(e) => is_integer(e),
        None => true,
    };
    mant_ok && exp_ok
}

fn num(v: &Value) -> Option<f64> {
    v.as_f64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

fn fmt_num(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// JSONSchema `check_prop` for one scalar: type, format, pattern, length, range, enum,
/// in that order, stopping at the first failure.
fn check_value(pd: &Value, s: &str) -> Result<(), String> {
    let ty = pd["type"].as_str().unwrap_or("string");
    match ty {
        "boolean" if s != "0" && s != "1" => {
            return Err(format!("type check ('boolean') failed - got '{s}'"))
        }
        "integer" if !is_integer(s) => {
            return Err(format!("type check ('integer') failed - got '{s}'"))
        }
        "number" if !is_number(s) => {
            return Err(format!("type check ('number') failed - got '{s}'"))
        }
        _ => {}
    }
    if let Some(f) = pd.get("format") {
        if let Err(e) = check_format(f, s) {
            return Err(format!("invalid format - {e}"));
        }
    }
    if let Some(p) = pd["pattern"].as_str() {
        if !pattern_matches(p, s) {
            return Err("value does not match the regex pattern".into());
        }
    }
    if let Some(max) = pd["maxLength"].as_u64() {
        if s.chars().count() as u64 > max {
            return Err(format!("value may only be {max} characters long"));
        }
    }
    if let Some(min) = pd["minLength"].as_u64() {
        if (s.chars().count() as u64) < min {
            return Err(format!("value must be at least {min} characters long"));
        }
    }
    if is_number(s) {
        let x: f64 = s.parse().unwrap_or(f64::NAN);
        if let Some(max) = pd.get("maximum").filter(|m| num(m).is_some()) {
            if x > num(max).unwrap_or(f64::MAX) {
                return Err(format!(
                    "value must have a maximum value of {}",
                    fmt_num(max)
                ));
            }
        }
        if let Some(min) = pd.get("minimum").filter(|m| num(m).is_some()) {
            if x < num(min).unwrap_or(f64::MIN) {
                return Err(format!(
                    "value must have a minimum value of {}",
                    fmt_num(min)
                ));
            }
        }
    }
    if let Some(e) = pd["enum"].as_array() {
        if !e.iter().any(|v| v.as_str() == Some(s)) {
            let list: Vec<String> = e.iter().map(fmt_num).collect();
            return Err(format!(
                "value '{s}' does not have a value in the enumeration '{}'",
                list.join(", ")
            ));
        }
    }
    Ok(())
}

/// Perl patterns of the schemas as Rust regexes: `(?^i:` is Perl's "default flags plus
/// i" group; the API anchors every pattern (`m/^$pattern$/`).
fn pattern_matches(p: &str, s: &str) -> bool {
    let rust = p.replace("(?^i:", "(?i:").replace("(?^:", "(?:");
    match Regex::new(&format!("^(?:{rust})$")) {
        Ok(re) => re.is_match(s),
        Err(_) => panic!("schema pattern {p:?} is not a regex the simulator can run"),
    }
}

/// JSONSchema `check_format`: a property-string format (a hash), or a named format with
/// an optional `-list`/`-opt` suffix.
fn check_format(f: &Value, s: &str) -> Result<(), String> {
    if f.is_object() {
        return check_property_string(f, s);
    }
    let Some(name) = f.as_str() else {
        return Ok(());
    };
    if name == "regex" {
        return Ok(());
    }
    let (base, kind) = if let Some(b) = name.strip_suffix("-list") {
        (b, "list")
    } else if let Some(b) = name.strip_suffix("-opt") {
        (b, "opt")
    } else {
        (name, "none")
    };
    match kind {
        "list" => split_list(s).iter().try_for_each(|v| named_format(base, v)),
        "opt" if s.is_empty() => Ok(()),
        _ => named_format(base, s),
    }
}

/// pve-common `PVE::ParseUtils::split_list`.
fn split_list(s: &str) -> Vec<String> {
    if s.contains('\0') {
        return s.split('\0').map(str::to_string).collect();
    }
    s.split([',', ';', ' ', '\t', '\n'])
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

/// JSONSchema `parse_property_string` then `check_object` on the keys.
fn check_property_string(format: &Value, s: &str) -> Result<(), String> {
    let keys = format.as_object().cloned().unwrap_or_default();
    let mut res: BTreeMap<String, String> = BTreeMap::new();
    let mut default_used = false;
    for part in s.split(',') {
        if part.trim().is_empty() {
            continue;
        }
        if let Some((k, v)) = part.split_once('=').filter(|(_, v)| !v.is_empty()) {
            if res.contains_key(k) {
                return Err(format!(
                    "duplicate key in comma-separated list property: {k}\n"
                ));
            }
            let Some(pd) = keys.get(k) else {
                return Err(format!(
                    "invalid key in comma-separated list property: {k}\n"
                ));
            };
            let v = if is_bool(pd) {
                parse_boolean(v).map_or(v.to_string(), |b| if b { "1" } else { "0" }.into())
            } else {
                v.to_string()
            };
            res.insert(k.to_string(), v);
        } else if !part.contains('=') {
            let Some((dk, _)) = keys
                .iter()
                .find(|(_, pd)| pd["default_key"].as_i64() == Some(1))
            else {
                return Err("value without key, but schema does not define a default key\n".into());
            };
            if default_used || res.contains_key(dk) {
                return Err(format!(
                    "duplicate key in comma-separated list property: {dk}\n"
                ));
            }
            default_used = true;
            res.insert(dk.clone(), part.to_string());
        } else {
            return Err("missing key in comma-separated list property\n".into());
        }
    }
    let mut errs = Vec::new();
    for (k, pd) in &keys {
        match res.get(k) {
            None if pd["optional"].as_i64() != Some(1) => {
                errs.push(format!("{k}: property is missing and it is not optional"))
            }
            None => {}
            Some(v) => {
                if let Err(e) = check_value(pd, v) {
                    errs.push(format!("{k}: {e}"));
                }
            }
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(format!("format error\n{}", errs.join("\n")))
    }
}

/// The named formats the agent's parameters use, each as the sub that registers it.
/// `Err` carries the sub's `die` text.
fn named_format(name: &str, s: &str) -> Result<(), String> {
    let ok = |c: bool, msg: String| if c { Ok(()) } else { Err(msg) };
    match name {
        // pve-common JSONSchema.pm pve_verify_configid ($CONFIGID_RE)
        "pve-configid" => ok(is_configid(s), format!("invalid configuration ID '{s}'\n")),
        // pve-common JSONSchema.pm parse_storage_id -> parse_id
        "pve-storage-id" => parse_id(s, "storage"),
        // pve-common JSONSchema.pm pve_verify_node_name
        "pve-node" => ok(
            is_node_name(s),
            "value does not look like a valid node name\n".into(),
        ),
        // pve-common JSONSchema.pm pve_verify_email (ParseUtils $EMAIL_RE)
        "email" => ok(
            is_email(s),
            "value does not look like a valid email address\n".into(),
        ),
        // pve-common JSONSchema.pm pve_verify_email_or_username ($EMAIL_USER_RE)
        "email-or-username" => ok(
            is_email(s) || is_email_user(s),
            "value does not look like a valid email address or user name\n".into(),
        ),
        // pve-common JSONSchema.pm pve_verify_ip
        "ip" => ok(
            s.parse::<std::net::IpAddr>().is_ok(),
            "value does not look like a valid IP address\n".into(),
        ),
        // pve-common JSONSchema.pm pve_verify_cidr (v4 prefix 8..32, v6 8..128)
        "CIDR" => ok(
            is_cidr(s),
            "value does not look like a valid CIDR network\n".into(),
        ),
        // pve-common JSONSchema.pm pve_verify_address (ip or dns-name)
        "address" => ok(
            s.parse::<std::net::IpAddr>().is_ok() || is_dns_name(s),
            format!("value does not look like a valid address: {s}\n"),
        ),
        // pve-access-control Auth/Plugin.pm pve_verify_realm ($realm_regex)
        "pve-realm" => ok(
            is_realm(s),
            "value does not look like a valid realm\n".into(),
        ),
        // pve-access-control Auth/Plugin.pm verify_username
        "pve-userid" => verify_username(s),
        // pve-ha-manager HA/Tools.pm pve_verify_ha_resource_id
        "pve-ha-resource-id" => ok(
            is_ha_resource_id(s),
            "value does not look like a valid ha resource id\n".into(),
        ),
        // pve-ha-manager HA/Tools.pm pve_verify_ha_resource_or_vm_id
        "pve-ha-resource-or-vm-id" => ok(
            is_ha_resource_id(s) || (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())),
            "value does not look like a valid ha resource id\n".into(),
        ),
        // pve-ha-manager HA/Tools.pm pve_verify_ha_node; PVE 8's HA/Groups.pm registers
        // the same check as pve-ha-group-node
        "pve-ha-node" | "pve-ha-group-node" => ok(
            {
                let (n, p) = s.split_once(':').unwrap_or((s, "0"));
                is_node_name(n) && !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())
            },
            "value does not look like a valid ha node\n".into(),
        ),
        // pve-storage Storage/Plugin.pm verify_content: content types are checked
        // against the plugin later; the format itself accepts word lists.
        "pve-storage-content" => ok(
            !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
            format!("invalid content type '{s}'\n"),
        ),
        _ if NOT_MODELLED_FORMATS.contains(&name) => Ok(()),
        _ => Err(format!(
            "format '{name}' is not modelled by the simulator\n"
        )),
    }
}

/// Named formats `named_format` implements; a test holds every code format of the
/// agent's parameters to this list.
pub const MODELLED_FORMATS: &[&str] = &[
    "pve-configid",
    "pve-storage-id",
    "pve-node",
    "email",
    "email-or-username",
    "ip",
    "CIDR",
    "address",
    "pve-realm",
    "pve-userid",
    "pve-ha-resource-id",
    "pve-ha-resource-or-vm-id",
    "pve-ha-node",
    "pve-ha-group-node",
    "pve-storage-content",
];

/// Code formats of parameters the agent never passes; the simulator accepts any value
/// for them and docs/simulator.md lists them.
pub const NOT_MODELLED_FORMATS: &[&str] = &[
    "ip-list",
    "mac-prefix",
    "pve-groupid",
    "pve-storage-path",
    "pve-storage-server",
    "pve-storage-portal-dns",
    "pve-storage-vgname",
    "pve-storage-options",
    "pve-volume-id",
    "pve-dir-override",
    "pve-storage-zfs-blocksize",
    "ldap-simple-attr",
    "pve-task-status-type",
    "pve-vmid",
    "pve-ha-node",
];

/// `$CONFIGID_RE = qr/[a-z][a-z0-9_-]+/i`
pub fn is_configid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_alphabetic()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-')
}

fn parse_id(s: &str, what: &str) -> Result<(), String> {
    if s.chars().count() < 2 {
        return Err(format!(
            "{what} ID '{s}' cannot be shorter than 2 characters\n"
        ));
    }
    let b = s.as_bytes();
    let ok = b[0].is_ascii_alphabetic()
        && b.last().is_some_and(|c| c.is_ascii_alphanumeric())
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!("{what} ID '{s}' contains illegal characters\n"))
    }
}

fn is_node_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
}

fn is_dns_name(s: &str) -> bool {
    !s.is_empty() && s.split('.').all(is_node_name)
}

/// ParseUtils `$EMAIL_USER_RE = qr/[\w\+\-\~]+(\.[\w\+\-\~]+)*/`
fn is_email_user(s: &str) -> bool {
    !s.is_empty()
        && s.split('.')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_alphanumeric() || "_+-~".contains(c)))
}

/// ParseUtils `$EMAIL_RE = qr/$EMAIL_USER_RE@[a-zA-Z0-9\-]+(\.[a-zA-Z0-9\-]+)*/`
pub fn is_email(s: &str) -> bool {
    let Some((user, domain)) = s.rsplit_once('@') else {
        return false;
    };
    is_email_user(user)
        && domain
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-'))
}

fn is_cidr(s: &str) -> bool {
    let Some((ip, len)) = s.split_once('/') else {
        return false;
    };
    let Ok(len) = len.parse::<u32>() else {
        return false;
    };
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => (8..=32).contains(&len),
        Ok(std::net::IpAddr::V6(_)) => (8..=128).contains(&len),
        Err(_) => false,
    }
}

/// pve-access-control `$realm_regex = qr/[A-Za-z][A-Za-z0-9\.\-_]+/`
pub fn is_realm(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_alphabetic()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || b".-_".contains(c))
}

/// pve-access-control Auth/Plugin.pm `verify_username`: length 1..64, then
/// `$user_regex@$realm_regex` with `$user_regex = qr![^\s:/]+!`.
fn verify_username(s: &str) -> Result<(), String> {
    let len = s.chars().count();
    if len < 3 {
        return Err(format!("user name '{s}' is too short\n"));
    }
    if len > 64 {
        return Err(format!("user name '{s}' is too long ({len} > 64)\n"));
    }
    let ok = s.rsplit_once('@').is_some_and(|(u, r)| {
        !u.is_empty()
            && !u.chars().any(|c| c.is_whitespace() || c == ':' || c == '/')
            && is_realm(r)
    });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "value '{s}' does not look like a valid user name\n"
        ))
    }
}

fn is_ha_resource_id(s: &str) -> bool {
    // /^[a-z]+:\S+$/
    s.split_once(':').is_some_and(|(t, n)| {
        !t.is_empty()
            && t.bytes().all(|b| b.is_ascii_lowercase())
            && !n.is_empty()
            && !n.chars().any(char::is_whitespace)
    })
}

#[cfg(test)]
mod tests {
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
            ok(m, "pvesh set /cluster/options --keyboard de --migration type=secure,network=10.2.22.0/24");
        }
        let p = ok(9, "ha-manager rules add node-affinity prefer-pve1 --resources vm:100,ct:101 --nodes pve1:2,pve2 --strict 1");
        assert_eq!(p.pos, ["node-affinity", "prefer-pve1"]);
        ok(8, "ha-manager groupadd prefer-pve1 --nodes pve1:2,pve2:1,pve3 --restricted 1 --nofailback 1");
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
        assert!(e.msg.contains("version: value 'quincy' does not have a value in the enumeration 'squid, tentacle'"), "{}", e.msg);
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
                let modelled =
                    MODELLED_FORMATS.contains(&base) || NOT_MODELLED_FORMATS.contains(&base);
                assert!(
                    modelled,
                    "PVE {m}: format {f} is neither modelled nor listed as unused"
                );
            }
        }
    }
}
