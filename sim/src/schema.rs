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

mod formats;
use formats::*;
pub use formats::{is_configid, is_email, is_realm, MODELLED_FORMATS, NOT_MODELLED_FORMATS};

#[cfg(test)]
mod tests;
