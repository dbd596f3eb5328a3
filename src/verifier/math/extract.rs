//! Where a math answer is in the final part of a response, in priority
//! order: the last `\boxed{…}` / `\fbox{…}`, "final answer is …", GSM8K's
//! `#### …`, "Answer: …", "the answer is …", then the fallback (by default
//! the last number).

use std::sync::LazyLock;

use regex::Regex;

use super::super::extract;

/// What to use when no explicit answer is stated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    /// The last number in the final part.
    LastNumber,
    /// Nothing: no statement, no answer.
    None,
}

static FINAL_ANSWER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)final answer(?: is)?\s*[:：]?\s*(.+)").expect("valid regex"));
static HASHES: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"####\s*(.+)").expect("valid regex"));
static ANSWER_COLON: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\banswer\s*[:：]\s*(.+)").expect("valid regex"));
static ANSWER_IS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\bthe answer is\s*[:：]?\s*(.+)").expect("valid regex"));
static LAST_NUMBER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:/\d+)?|-?\.\d+").expect("valid regex")
});

/// The answer a response states, from its final part.
pub fn extract_answer(final_part: &str, fallback: Fallback) -> Option<String> {
    if let Some(boxed) = extract::last_boxed(final_part) {
        // Inside a box `!` is a factorial, not punctuation.
        return clean(boxed, &['.', ',', ';']);
    }
    for re in [&*FINAL_ANSWER, &*HASHES, &*ANSWER_COLON, &*ANSWER_IS] {
        if let Some(c) = re.captures_iter(final_part).last() {
            let text = c.get(1).expect("group 1").as_str();
            if let Some(answer) = clean(sentence(text), &['.', ',', ';', '!']) {
                return Some(answer);
            }
        }
    }
    match fallback {
        Fallback::LastNumber => LAST_NUMBER
            .find_iter(final_part)
            .last()
            .map(|m| m.as_str().to_string()),
        Fallback::None => None,
    }
}

/// The statement up to the end of its sentence (a `.` followed by a space or
/// the end; decimals such as `3.5` do not end it).
fn sentence(text: &str) -> &str {
    let bytes = text.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'\n' {
            return &text[..i];
        }
        if b == b'.' && bytes.get(i + 1).is_none_or(|n| n.is_ascii_whitespace()) {
            return &text[..i];
        }
    }
    text
}

/// Strips markdown emphasis, math delimiters and trailing punctuation.
fn clean(s: &str, trailing: &[char]) -> Option<String> {
    let mut t = s.trim();
    for _ in 0..3 {
        t = t
            .trim_matches(|c: char| c == '*' || c == '_' || c.is_whitespace())
            .trim_end_matches(trailing)
            .trim();
        for (open, close) in [("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")] {
            if let Some(inner) = t.strip_prefix(open).and_then(|r| r.strip_suffix(close)) {
                t = inner.trim();
            }
        }
    }
    (!t.is_empty()).then(|| t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(s: &str) -> Option<String> {
        extract_answer(s, Fallback::LastNumber)
    }

    #[test]
    fn priority_order() {
        assert_eq!(
            ex(r"so \boxed{\frac{1}{2}}. The answer is 3").as_deref(),
            Some(r"\frac{1}{2}")
        );
        assert_eq!(ex("The final answer is $18$.").as_deref(), Some("18"));
        assert_eq!(
            ex("Final Answer: 3.5 dollars\nthanks").as_deref(),
            Some("3.5 dollars")
        );
        assert_eq!(ex("She makes 18 a day.\n#### 18").as_deref(), Some("18"));
        assert_eq!(ex("**Answer:** 42").as_deref(), Some("42"));
        assert_eq!(ex("So the answer is 7. Done.").as_deref(), Some("7"));
        assert_eq!(
            ex("We get 4 then 12, total 1,200").as_deref(),
            Some("1,200")
        );
        assert_eq!(extract_answer("We get 4 then 12", Fallback::None), None);
        assert_eq!(ex("no numbers"), None);
    }

    #[test]
    fn the_last_statement_wins() {
        assert_eq!(ex(r"\boxed{3} wait, no: \boxed{4}").as_deref(), Some("4"));
        assert_eq!(ex("Answer: 3\nActually, Answer: 5").as_deref(), Some("5"));
    }
}
