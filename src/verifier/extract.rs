//! Answer-locating helpers shared by verifiers: `\boxed{…}` with nested
//! braces, `<tag>…</tag>` spans, and JSON objects that state the answer
//! (`{"answer": "D"}`). Linear-time scans, no regex backtracking.

/// Contents of every `\boxed{…}` / `\fbox{…}` in `text`, in order, with
/// their byte offsets. A box whose brace never closes is skipped. Linear in
/// the text: braces are matched once, with a stack.
pub fn boxed(text: &str) -> Vec<(usize, &str)> {
    boxed_spans(text)
        .into_iter()
        .map(|(start, _, content)| (start, content))
        .collect()
}

/// Every box as (start of `\boxed`, end after its closing brace, content).
pub fn boxed_spans(text: &str) -> Vec<(usize, usize, &str)> {
    if !text.contains("\\boxed") && !text.contains("\\fbox") {
        return Vec::new();
    }
    let closing = matching_braces(text);
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    for macro_name in ["\\boxed", "\\fbox"] {
        for (start, _) in text.match_indices(macro_name) {
            let mut j = start + macro_name.len();
            while j < bytes.len() && bytes[j] == b' ' {
                j += 1;
            }
            if j < bytes.len()
                && bytes[j] == b'{'
                && let Some(&end) = closing.get(&j)
            {
                out.push((start, end + 1, &text[j + 1..end]));
            }
        }
    }
    out.sort_by_key(|(pos, _, _)| *pos);
    out
}

/// The last `\boxed{…}` content.
pub fn last_boxed(text: &str) -> Option<&str> {
    boxed(text).pop().map(|(_, s)| s)
}

/// For each `{` that closes, the byte index of its `}`; escaped braces
/// (`\{`, `\}`) are skipped.
fn matching_braces(text: &str) -> std::collections::HashMap<usize, usize> {
    let bytes = text.as_bytes();
    let mut stack = Vec::new();
    let mut pairs = std::collections::HashMap::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 1,
            b'{' => stack.push(i),
            b'}' => {
                if let Some(open) = stack.pop() {
                    pairs.insert(open, i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    pairs
}

/// Contents of the last `<tag>…</tag>` span (case-sensitive).
pub fn last_tag<'a>(text: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = text.rfind(&open)? + open.len();
    let end = text[start..].find(&close).map_or(text.len(), |e| start + e);
    Some(&text[start..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxed_handles_nesting_and_several_boxes() {
        let t = r"first \boxed{3} then \boxed{\frac{1}{2}} and \fbox{x}";
        let b: Vec<&str> = boxed(t).into_iter().map(|(_, s)| s).collect();
        assert_eq!(b, vec!["3", r"\frac{1}{2}", "x"]);
        assert_eq!(last_boxed(r"\boxed {\{1, 2\}}"), Some(r"\{1, 2\}"));
        assert_eq!(last_boxed(r"\boxed{unclosed"), None);
        assert_eq!(last_boxed("no box"), None);
        assert_eq!(last_boxed(r"\boxed"), None);
    }

    #[test]
    fn tags() {
        assert_eq!(
            last_tag("<answer>1</answer> <answer>2.5</answer>", "answer"),
            Some("2.5")
        );
        assert_eq!(last_tag("<answer>3", "answer"), Some("3"));
        assert_eq!(last_tag("none", "answer"), None);
    }
}

/// The keys read from a JSON answer object unless a verifier is told
/// others (`verifier.options.json_keys`).
pub const JSON_KEYS: &[&str] = &[
    "answer",
    "final_answer",
    "choice",
    "option",
    "correct_answer",
];

/// [`JSON_KEYS`] as the owned list a verifier keeps.
pub fn default_json_keys() -> Vec<String> {
    JSON_KEYS.iter().map(|k| k.to_string()).collect()
}

/// The last JSON object in `text` with one of `keys` (case-insensitive),
/// with its start and the key's value as text (a string as it is, a number
/// or a list as JSON). Objects are parsed where a `{` opens one; text that
/// names none of the keys is not parsed at all.
pub fn json_answer(text: &str, keys: &[String]) -> Option<(usize, String)> {
    if !text.contains('{') || !text.contains('"') {
        return None;
    }
    let lower = text.to_ascii_lowercase();
    if !keys
        .iter()
        .any(|k| lower.contains(&format!("\"{}\"", k.to_ascii_lowercase())))
    {
        return None;
    }
    let mut found = None;
    for (start, _) in text.match_indices('{') {
        let mut values =
            serde_json::Deserializer::from_str(&text[start..]).into_iter::<serde_json::Value>();
        let Some(Ok(serde_json::Value::Object(object))) = values.next() else {
            continue;
        };
        let value = keys.iter().find_map(|k| {
            object
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(k))
                .map(|(_, v)| v)
        });
        let text = match value {
            Some(serde_json::Value::String(s)) => s.trim().to_string(),
            Some(serde_json::Value::Null) | None => continue,
            Some(other) => other.to_string(),
        };
        if !text.is_empty() {
            found = Some((start, text));
        }
    }
    found
}

#[cfg(test)]
mod json_tests {
    use super::*;

    fn keys() -> Vec<String> {
        default_json_keys()
    }

    #[test]
    fn json_answers_are_read_by_key_the_last_one_winning() {
        let k = keys();
        assert_eq!(json_answer(r#"{"answer": "D"}"#, &k), Some((0, "D".into())));
        let t = "Reasoning done.\n{\"choice\": \"B\", \"reason\": \"mass {not} charge\"}";
        assert_eq!(json_answer(t, &k).map(|x| x.1), Some("B".into()));
        assert_eq!(
            json_answer(r#"{"Answer": 42}"#, &k).map(|x| x.1),
            Some("42".into())
        );
        let two = r#"First {"answer": "A"} then {"answer": "C"}"#;
        assert_eq!(json_answer(two, &k).map(|x| x.1), Some("C".into()));
        assert_eq!(json_answer(r#"{"reason": "x"}"#, &k), None);
        assert_eq!(json_answer(r#"{"answer": "#, &k), None);
        assert_eq!(json_answer(r"\frac{1}{2}", &k), None);
        let own = vec!["label".to_string()];
        assert_eq!(
            json_answer(r#"{"label": "B"}"#, &own).map(|x| x.1),
            Some("B".into())
        );
    }
}
