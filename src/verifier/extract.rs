//! Answer-locating helpers shared by verifiers: `\boxed{…}` with nested
//! braces, and `<tag>…</tag>` spans. Linear-time scans, no regex
//! backtracking.

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
