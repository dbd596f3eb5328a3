//! Untyped config trees: layering YAML documents, dotted-path overrides,
//! `RSR_` environment variables and `???` placeholders.
//!
//! Layers are merged here as plain YAML values; only the merged tree is
//! turned into the typed [`super::Config`].

use serde_yaml_ng::{Mapping, Value};

/// Marker for a value the user must provide.
pub const REQUIRED: &str = "???";

/// Prefix of environment variables read as config.
pub const ENV_PREFIX: &str = "RSR_";

/// Environment variables with the prefix that are not config keys.
pub const ENV_RESERVED: &[&str] = &["RSR_LOG"];

/// Deep-merges `over` into `base`: mappings merge key by key, anything else
/// (scalars, lists) replaces.
pub fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Mapping(base), Value::Mapping(over)) => {
            for (k, v) in over {
                match base.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        base.insert(k, v);
                    }
                }
            }
        }
        (slot, over) => *slot = over,
    }
}

/// Sets `path` (dot-separated; list items by index) to `value`, creating
/// mappings on the way. Index `len` of a list appends an item.
pub fn set_path(root: &mut Value, path: &str, value: Value) -> Result<(), String> {
    let segments: Vec<&str> = path.split('.').collect();
    if segments.iter().any(|s| s.is_empty()) {
        return Err(format!("`{path}` is not a valid key path (empty segment)"));
    }
    let mut node = root;
    for (i, seg) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        if node.is_null() {
            *node = Value::Mapping(Mapping::new());
        }
        node = match node {
            Value::Mapping(map) => {
                let key = Value::String((*seg).to_string());
                if last {
                    map.insert(key, value);
                    return Ok(());
                }
                map.entry(key).or_insert(Value::Null)
            }
            Value::Sequence(items) => {
                let parent = segments[..i].join(".");
                let idx: usize = seg.parse().map_err(|_| {
                    format!("`{parent}` is a list: expected an item index after it, got `{seg}`")
                })?;
                if idx > items.len() {
                    return Err(format!(
                        "`{parent}` has {} item(s): index {idx} would leave a gap (use 0..={})",
                        items.len(),
                        items.len()
                    ));
                }
                if idx == items.len() {
                    items.push(Value::Null);
                }
                if last {
                    items[idx] = value;
                    return Ok(());
                }
                &mut items[idx]
            }
            other => {
                let parent = segments[..i].join(".");
                return Err(format!(
                    "`{parent}` is a single value ({}), it has no key `{seg}`",
                    describe(other)
                ));
            }
        };
    }
    unreachable!("the last segment returns inside the loop")
}

/// The value at `path`, if present.
pub fn get_path<'a>(root: &'a Value, path: &str) -> Option<&'a Value> {
    let mut node = root;
    for seg in path.split('.') {
        node = match node {
            Value::Mapping(map) => map.get(seg)?,
            Value::Sequence(items) => items.get(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(node)
}

/// [`get_path`], mutably.
pub fn get_path_mut<'a>(root: &'a mut Value, path: &str) -> Option<&'a mut Value> {
    let mut node = root;
    for seg in path.split('.') {
        node = match node {
            Value::Mapping(map) => map.get_mut(seg)?,
            Value::Sequence(items) => items.get_mut(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(node)
}

/// Parses a command-line or environment value as a YAML scalar (or flow
/// collection): `32` is a number, `true` a bool, `null` null, `[a, b]` a list,
/// anything unparsable a string.
pub fn parse_scalar(text: &str) -> Value {
    serde_yaml_ng::from_str::<Value>(text).unwrap_or_else(|_| Value::String(text.to_string()))
}

/// Turns `RSR_SAMPLER__MODEL` into `sampler.model`; `None` for variables
/// that are not config keys.
pub fn env_key(name: &str) -> Option<String> {
    let rest = name.strip_prefix(ENV_PREFIX)?;
    if rest.is_empty() || ENV_RESERVED.contains(&name) {
        return None;
    }
    Some(
        rest.split("__")
            .collect::<Vec<_>>()
            .join(".")
            .to_lowercase(),
    )
}

/// Replaces every `???` with null and returns the dotted paths where it stood.
pub fn take_required(root: &mut Value) -> Vec<String> {
    let mut found = Vec::new();
    walk_required(root, String::new(), &mut found);
    found
}

fn walk_required(node: &mut Value, path: String, found: &mut Vec<String>) {
    match node {
        Value::String(s) if s == REQUIRED => {
            *node = Value::Null;
            found.push(path);
        }
        Value::Mapping(map) => {
            for (k, v) in map.iter_mut() {
                let key = key_text(k);
                walk_required(v, join(&path, &key), found);
            }
        }
        Value::Sequence(items) => {
            for (i, v) in items.iter_mut().enumerate() {
                walk_required(v, join(&path, &i.to_string()), found);
            }
        }
        _ => {}
    }
}

/// Every dotted path of a mapping key in `root` (leaves and inner nodes).
pub fn key_paths(root: &Value) -> Vec<String> {
    let mut out = Vec::new();
    collect_keys(root, String::new(), &mut out);
    out
}

fn collect_keys(node: &Value, path: String, out: &mut Vec<String>) {
    match node {
        Value::Mapping(map) => {
            for (k, v) in map {
                let p = join(&path, &key_text(k));
                out.push(p.clone());
                collect_keys(v, p, out);
            }
        }
        Value::Sequence(items) => {
            for (i, v) in items.iter().enumerate() {
                collect_keys(v, join(&path, &i.to_string()), out);
            }
        }
        _ => {}
    }
}

fn key_text(k: &Value) -> String {
    match k {
        Value::String(s) => s.clone(),
        other => serde_yaml_ng::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
}

fn join(path: &str, seg: &str) -> String {
    if path.is_empty() {
        seg.to_string()
    } else {
        format!("{path}.{seg}")
    }
}

/// Short description of a value's kind for messages.
pub fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

/// Levenshtein distance, for "did you mean" suggestions.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(s: &str) -> Value {
        serde_yaml_ng::from_str(s).unwrap()
    }

    #[test]
    fn merge_is_deep_for_maps_and_replaces_lists() {
        let mut base = yaml("a: {b: 1, c: 2}\nl: [1, 2]");
        merge(&mut base, yaml("a: {c: 3}\nl: [9]"));
        assert_eq!(base, yaml("a: {b: 1, c: 3}\nl: [9]"));
    }

    #[test]
    fn set_path_walks_maps_and_list_indices() {
        let mut root = yaml("formatter: [{type: sft}]\nsampler: {extra_params: {}}");
        set_path(&mut root, "formatter.0.type", parse_scalar("dpo")).unwrap();
        set_path(&mut root, "formatter.1.type", parse_scalar("top_k")).unwrap();
        set_path(
            &mut root,
            "sampler.extra_params.reasoning_effort",
            parse_scalar("high"),
        )
        .unwrap();
        assert_eq!(
            root,
            yaml(
                "formatter: [{type: dpo}, {type: top_k}]\nsampler: {extra_params: {reasoning_effort: high}}"
            )
        );
        let err = set_path(&mut root, "formatter.5.type", parse_scalar("x")).unwrap_err();
        assert!(err.contains("gap"), "{err}");
        let err = set_path(&mut root, "formatter.x", parse_scalar("x")).unwrap_err();
        assert!(err.contains("is a list"), "{err}");
    }

    #[test]
    fn scalars_parse_as_yaml() {
        assert_eq!(parse_scalar("32"), yaml("32"));
        assert_eq!(parse_scalar("true"), Value::Bool(true));
        assert_eq!(parse_scalar("null"), Value::Null);
        assert_eq!(
            parse_scalar("qwen/Qwen3-8B"),
            Value::String("qwen/Qwen3-8B".into())
        );
        assert_eq!(parse_scalar("[a, b]"), yaml("[a, b]"));
        assert_eq!(parse_scalar("a: b: c"), Value::String("a: b: c".into()));
    }

    #[test]
    fn env_names_map_to_paths() {
        assert_eq!(
            env_key("RSR_SAMPLER__MODEL").as_deref(),
            Some("sampler.model")
        );
        assert_eq!(
            env_key("RSR_SAMPLING__MAX_ROLLOUTS").as_deref(),
            Some("sampling.max_rollouts")
        );
        assert_eq!(env_key("RSR_WORK_DIR").as_deref(), Some("work_dir"));
        assert_eq!(env_key("RSR_LOG"), None);
        assert_eq!(env_key("HOME"), None);
    }

    #[test]
    fn required_markers_are_collected() {
        let mut root = yaml("a: ???\nb:\n  c: ???\n  d: 1\n");
        assert_eq!(take_required(&mut root), vec!["a", "b.c"]);
        assert_eq!(root, yaml("a: null\nb: {c: null, d: 1}"));
    }

    #[test]
    fn distance() {
        assert_eq!(edit_distance("max_rollout", "max_rollouts"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
