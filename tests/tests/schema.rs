//! `docs/cluster.schema.json` against the spec parser: over every golden spec and example,
//! the schema accepts a file exactly when `cluster.toml` deserialization does. Semantic
//! checks (addresses, names, ranges) are `hcikit validate`'s and out of the schema's reach,
//! so fail cases that parse must pass the schema too.
//!
//! The checker below implements the part of JSON Schema draft 7 the generated schema uses
//! (`$ref`, `anyOf`, `type`, `properties`, `required`, `additionalProperties`, `items`,
//! `minimum`); it fails loudly on any other keyword so it cannot silently under-check.

use hcikit_tests::workspace_root;
use serde_json::{Map, Value};
use std::path::PathBuf;

const KNOWN: [&str; 14] = [
    "$schema",
    "title",
    "definitions",
    "$ref",
    "anyOf",
    "type",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "minimum",
    "format",
    "default",
    "description",
];

fn check(v: &Value, schema: &Value, root: &Value, path: &str, errs: &mut Vec<String>) {
    let Some(s) = schema.as_object() else {
        panic!("schema at {path} is not an object: {schema}");
    };
    for k in s.keys() {
        assert!(
            KNOWN.contains(&k.as_str()),
            "schema keyword {k} at {path} not checked here"
        );
    }
    if let Some(r) = s.get("$ref").and_then(Value::as_str) {
        let name = r.strip_prefix("#/definitions/").expect("local ref");
        check(v, &root["definitions"][name], root, path, errs);
    }
    if let Some(branches) = s.get("anyOf").and_then(Value::as_array) {
        let ok = branches.iter().any(|b| {
            let mut e = Vec::new();
            check(v, b, root, path, &mut e);
            e.is_empty()
        });
        if !ok {
            errs.push(format!("{path}: matches no alternative"));
        }
    }
    if let Some(t) = s.get("type") {
        let types: Vec<&str> = match t {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => panic!("bad type at {path}"),
        };
        let fits = types.iter().any(|t| match *t {
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            "boolean" => v.is_boolean(),
            "integer" => v.is_i64() || v.is_u64(),
            "number" => v.is_number(),
            other => panic!("type {other} at {path}"),
        });
        if !fits {
            errs.push(format!("{path}: {v} is not {types:?}"));
            return;
        }
    }
    if let (Some(min), Some(n)) = (s.get("minimum").and_then(Value::as_f64), v.as_f64()) {
        if n < min {
            errs.push(format!("{path}: {n} < {min}"));
        }
    }
    if let Some(obj) = v.as_object() {
        check_object(obj, s, root, path, errs);
    }
    if let (Some(items), Some(arr)) = (s.get("items"), v.as_array()) {
        for (i, item) in arr.iter().enumerate() {
            check(item, items, root, &format!("{path}[{i}]"), errs);
        }
    }
}

fn check_object(
    obj: &Map<String, Value>,
    s: &Map<String, Value>,
    root: &Value,
    path: &str,
    errs: &mut Vec<String>,
) {
    let props = s.get("properties").and_then(Value::as_object);
    for req in s
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if !obj.contains_key(req.as_str().unwrap()) {
            errs.push(format!("{path}: missing {req}"));
        }
    }
    for (k, val) in obj {
        let sub = format!("{path}.{k}");
        match (props.and_then(|p| p.get(k)), s.get("additionalProperties")) {
            (Some(p), _) => check(val, p, root, &sub, errs),
            (None, Some(Value::Bool(false))) => errs.push(format!("{sub}: unknown key")),
            (None, Some(extra)) if extra.is_object() => check(val, extra, root, &sub, errs),
            (None, _) => {}
        }
    }
}

fn specs() -> Vec<PathBuf> {
    let root = workspace_root();
    let mut out = Vec::new();
    for dir in ["tests/golden/spec/ok", "tests/golden/spec/fail", "examples"] {
        for e in std::fs::read_dir(root.join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "toml") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn schema_accepts_exactly_what_the_parser_accepts() {
    let schema: Value =
        serde_json::from_str(&hcikit::spec::schema::spec_schema()).expect("schema is JSON");
    let mut disagreements = Vec::new();
    let mut counted = (0, 0);
    for path in specs() {
        let text = std::fs::read_to_string(&path).unwrap();
        // Not TOML at all (syntax-error cases): nothing for a schema to say.
        let Ok(value) = toml::from_str::<toml::Value>(&text) else {
            continue;
        };
        let json = serde_json::to_value(&value).unwrap();
        let mut errs = Vec::new();
        check(&json, &schema, &schema, "", &mut errs);
        let parses = toml::from_str::<hcikit::spec::raw::Spec>(&text);
        if parses.is_ok() {
            counted.0 += 1;
        } else {
            counted.1 += 1;
        }
        let name = path.strip_prefix(workspace_root()).unwrap().display();
        match (&parses, errs.is_empty()) {
            (Ok(_), false) => disagreements.push(format!("{name}: parses, schema says {errs:?}")),
            (Err(e), true) => {
                disagreements.push(format!("{name}: schema accepts, parser says {e}"))
            }
            _ => {}
        }
    }
    assert!(
        counted.0 > 10 && counted.1 > 0,
        "too few specs: {counted:?}"
    );
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}
