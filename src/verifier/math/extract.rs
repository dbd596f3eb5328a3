//! Where a math answer is in the final part of a response, in priority
//! order:
//!
//! 1. the last `\boxed{…}` / `\fbox{…}`, joined with the boxes just before
//!    it when only separators stand between them (`\boxed{4}, \boxed{5}`);
//! 2. the last stated answer — "final answer is", "the answer is",
//!    "Answer:", GSM8K's `####` — read as its math span when it has one,
//!    else to the end of its sentence;
//! 3. the last LaTeX span (`$…$`, `$$…$$`, `\(…\)`, `\[…\]`);
//! 4. a last line that is a bare answer (`\frac{11}{7}`, `2 000`);
//! 5. the fallback: the last number (or nothing).

use std::sync::LazyLock;

use regex::Regex;

use super::super::extract;

/// What to use when no explicit answer is stated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fallback {
    /// The last number in the final part.
    LastNumber,
    /// Nothing: no statement, no answer.
    None,
}

/// The longest stated sentence read, in bytes.
const MAX_SENTENCE: usize = 400;

/// The phrases that state an answer; the text after the last one is read.
static STATED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?i:final answer(?:\s+is)?|(?:the\s+)?answer\s+(?:is|would be|should be)",
        r"|\banswer\s*(?:\*\*)?\s*[:：]|the result is)\s*(?:\*\*)?\s*[:：]?|####|答案(?:是|为)?\s*[:：]?"
    ))
    .expect("valid regex")
});
/// A part label between boxes: "for part (a)", "in part ii", "part 2",
/// "(b)".
static PART_LABEL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?i)\b(?:(?:for|in)\s+)?parts?\s*\(?\s*(?:[a-h]|[ivx]{1,4}|\d{1,2})\s*\)?",
        r"|\(\s*(?:[a-h]|[ivx]{1,4})\s*\)",
    ))
    .expect("valid regex")
});

/// A concluding sentence of prose: "Therefore, …", "Thus …", "So …", "In
/// total …", up to its end; a `$` inside makes it math, not prose.
static CONCLUSION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)(?:^|[.!?]\s+|\n|\$\s+|\\\]\s+)(?:therefore|thus|hence|so|in\s+total|altogether|in\s+conclusion)\b[^.!?\n$]*",
    )
    .expect("valid regex")
});

/// A single variable, perhaps with a subscript: `n`, `x_1`, `a_{n}`.
static LONE_VARIABLE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z](?:_\{?[A-Za-z0-9]+\}?)?$").expect("valid regex"));

static LAST_NUMBER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:/\d+)?|-?\.\d+").expect("valid regex")
});
/// A word of prose: two or more letters not part of a LaTeX command.
static WORD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?:^|[^\\A-Za-z])[A-Za-z]{2,}").expect("valid regex"));
/// LaTeX commands whose braces hold prose-free math or a short label.
static TEXT_CMD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\\(?:text|mathrm|mathbf|textbf|mbox)\s*\{[^{}]*\}").expect("valid regex")
});

/// A command with a one-word argument: `\begin{pmatrix}`, `\mathbb{R}`.
static ENV: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\\[a-zA-Z]+\s*\{[a-zA-Z*]*\}(?:\{[a-z|]*\})?").expect("valid regex")
});

/// The answer a response states, from its final part; a JSON object with
/// one of `json_keys` (`{"answer": "42"}`) states it too, and wins over a
/// box written before it.
pub fn extract_answer(
    final_part: &str,
    fallback: Fallback,
    json_keys: &[String],
) -> Option<String> {
    let json = extract::json_answer(final_part, json_keys);
    // A box wins unless a statement follows it ("… = \\boxed{255}. … The
    // final answer is $10,455$"): only the text after the box is searched.
    if let Some((end, boxed)) = boxed_answer(final_part) {
        if let Some((_, value)) = json.filter(|(at, _)| *at >= end) {
            return Some(value);
        }
        return Some(stated_answer(&final_part[end..]).unwrap_or(boxed));
    }
    if let Some((_, value)) = json {
        return Some(value);
    }
    if let Some(stated) = stated_answer(final_part) {
        return Some(stated);
    }
    if let Some(&(start, span)) = math_spans(final_part).last() {
        // Inside math, `!` is a factorial, not punctuation.
        if let Some(answer) = clean(span, &['.', ',', ';']) {
            // A lone variable names the unknown ("there are $n$ ways; …
            // gives 35 ways"): a number in the prose after it is the value.
            // A value in the span (`$x = 4$. Check: 2·4 = 8`) stays.
            let after = start + final_part[start..].find(span).map_or(0, |i| i + span.len());
            let prose = final_part.get(after..).unwrap_or("");
            if let Some(number) = concluded_number(prose) {
                return Some(number);
            }
            if LONE_VARIABLE.is_match(&answer)
                && let Some(number) = last_number(prose)
            {
                return Some(number);
            }
            return Some(answer);
        }
    }
    if let Some(line) = final_part.lines().rev().find(|l| !l.trim().is_empty())
        && let Some(answer) = clean(line.trim().trim_start_matches('='), &['.', ',', ';'])
        && is_bare(&answer)
    {
        return Some(answer);
    }
    match fallback {
        Fallback::LastNumber => last_number(final_part),
        Fallback::None => None,
    }
}

/// The last box, with the boxes before it that only separators (spaces,
/// commas, "and", "or", math delimiters) keep apart: `\boxed{4}, \boxed{5}
/// and \boxed{6}` → `4, 5, 6`; with the end of the last box.
fn boxed_answer(text: &str) -> Option<(usize, String)> {
    let boxes = extract::boxed_spans(text);
    let (mut start, _, last) = *boxes.last()?;
    let mut parts = vec![last];
    for &(s, end, content) in boxes.iter().rev().skip(1) {
        // A box inside another one has no gap before the next.
        let Some(gap) = text.get(end..start) else {
            break;
        };
        // `\boxed{(2, 2)} for part (a) and \boxed{(0, 0)}`: part labels
        // join the answers of one question.
        let gap = PART_LABEL.replace_all(gap, " ");
        let only_separators = gap
            .replace("\\text{and}", "")
            .replace("\\text{ and }", "")
            .replace("\\quad", "")
            .split(|c: char| {
                c.is_whitespace() || matches!(c, ',' | ';' | ':' | '$' | '&' | '\\' | '(' | ')')
            })
            .all(|w| w.is_empty() || w == "and" || w == "or");
        if !only_separators {
            break;
        }
        if !parts.contains(&content) {
            parts.push(content);
        }
        start = s;
    }
    parts.reverse();
    let joined = parts.join(", ");
    Some((boxes.last()?.1, clean(&joined, &['.', ',', ';'])?))
}

/// The last stated answer: its math span when the statement starts with
/// one (`The final answer is $y = 41$. I hope it is correct.`), else its
/// sentence, and from a sentence of prose its last math span, the value
/// after its last "is", or its last number.
fn stated_answer(text: &str) -> Option<String> {
    let statements: Vec<usize> = STATED.find_iter(text).map(|m| m.end()).collect();
    statements
        .into_iter()
        .rev()
        .find_map(|at| statement(&text[at..]))
}

/// The answer in the text after an answer phrase.
fn statement(text: &str) -> Option<String> {
    let after = text.trim_start_matches(|c: char| c.is_whitespace() || c == '*');
    if let Some(span) = leading_span(after) {
        return clean(span, &['.', ',', ';']);
    }
    let sentence = sentence(after);
    let answer = clean(sentence, &['.', ',', ';', '!'])?;
    if is_bare(&answer) {
        return Some(answer);
    }
    // "The volume of $ABCDEFGH$ is 120": the value after the last "is".
    if let Some(i) = answer.rfind(" is ")
        && let Some(value) = clean(&answer[i + 4..], &['.', ',', ';', '!'])
        && is_bare(&value)
    {
        return Some(value);
    }
    if let Some((_, span)) = math_spans(sentence).last() {
        return clean(span, &['.', ',', ';']);
    }
    // `3 + 4 = 7 apples`: the equation up to the number right after its
    // last `=`, for the normalizer to read; else the sentence's last number.
    if let Some(eq) = answer.rfind('=')
        && let Some(n) = LAST_NUMBER.find(&answer[eq + 1..])
        && answer[eq + 1..eq + 1 + n.start()].trim().is_empty()
    {
        let lhs = answer[..eq].trim_end();
        return Some(if is_bare(lhs) {
            format!("{lhs} = {}", n.as_str())
        } else {
            n.as_str().to_string()
        });
    }
    if let Some(n) = last_number(sentence) {
        return Some(n);
    }
    None
}

/// The content of a math span starting `text`, if it does.
fn leading_span(text: &str) -> Option<&str> {
    let (open, close) = [("$$", "$$"), ("$", "$"), ("\\[", "\\]"), ("\\(", "\\)")]
        .into_iter()
        .find(|(open, _)| text.starts_with(open))?;
    let end = find_close(text, open.len(), close)?;
    let content = &text[open.len()..end];
    (open != "$" || is_math(content)).then_some(content)
}

/// Every LaTeX math span (`$$…$$`, `$…$`, `\[…\]`, `\(…\)`) with its start,
/// in order. An escaped dollar (`\$`) is a currency sign, not a delimiter;
/// an inline span does not cross a blank line.
fn math_spans(text: &str) -> Vec<(usize, &str)> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let (open, close): (&str, &str) = match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'$') => ("$$", "$$"),
            b'$' => ("$", "$"),
            b'\\' if bytes.get(i + 1) == Some(&b'[') => ("\\[", "\\]"),
            b'\\' if bytes.get(i + 1) == Some(&b'(') => ("\\(", "\\)"),
            b'\\' => {
                i += 2;
                continue;
            }
            _ => {
                i += 1;
                continue;
            }
        };
        let from = i + open.len();
        match find_close(text, from, close) {
            // A `$…$` holding prose is two currency signs (`$2 each, making
            // $18`), not math.
            Some(end) if open != "$" || is_math(&text[from..end]) => {
                out.push((i, &text[from..end]));
                i = end + close.len();
            }
            _ => i = from,
        }
    }
    out
}

/// The position of `close` after `from`, skipping escaped dollars; a
/// single `$` followed by a digit opens an amount (`$3 = $8`), it does not
/// close a span, and an inline span ends at a blank line.
fn find_close(text: &str, from: usize, close: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut j = from;
    while j < bytes.len() {
        if bytes[j] == b'\\' && close.starts_with('$') {
            j += 2;
            continue;
        }
        if close == "$" && bytes[j..].starts_with(b"\n\n") {
            return None;
        }
        // `close` is ASCII, so a byte match is at a char boundary.
        if bytes[j..].starts_with(close.as_bytes())
            && !(close == "$" && bytes.get(j + 1).is_some_and(u8::is_ascii_digit))
        {
            return Some(j);
        }
        j += 1;
    }
    None
}

/// Whether a `$…$` span holds math: no prose, or a single token (`$even$`).
fn is_math(s: &str) -> bool {
    let t = s.trim();
    !t.is_empty() && (is_bare(t) || !t.contains(char::is_whitespace))
}

/// Whether `s` is an answer with no prose in it: math, numbers, and at
/// most short `\text{…}` labels.
fn is_bare(s: &str) -> bool {
    let t = s.trim();
    if t.is_empty() || t.len() > 200 || t.contains('\n') {
        return false;
    }
    let without_text = TEXT_CMD.replace_all(t, "x");
    let without_text = ENV.replace_all(&without_text, "x");
    !WORD.is_match(&without_text)
        || TEXT_CMD
            .find(t)
            .is_some_and(|m| m.as_str().len() == t.len())
}

/// The number of a concluding sentence in prose ("Therefore, there are 12
/// sequences …", "Thus it increases by 100%."), with its percent sign: a
/// conclusion written after the last math span states the answer; a check
/// ("Check: 2·4 = 8") does not.
fn concluded_number(prose: &str) -> Option<String> {
    let sentence = CONCLUSION.find_iter(prose).last()?.as_str();
    let m = last_number_match(sentence)?;
    let percent = sentence[m.end()..].starts_with('%');
    Some(format!("{}{}", m.as_str(), if percent { "%" } else { "" }))
}

/// The last number not glued to a preceding letter (`K2` and `H2O` hold no
/// number).
fn last_number(text: &str) -> Option<String> {
    last_number_match(text).map(|m| m.as_str().to_string())
}

/// The last number of `text` not glued to a preceding letter.
fn last_number_match(text: &str) -> Option<regex::Match<'_>> {
    LAST_NUMBER
        .find_iter(text)
        .filter(|m| {
            !text[..m.start()]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_ascii_alphabetic())
        })
        .last()
}

/// The statement up to the end of its sentence (a `.` followed by a space or
/// the end; decimals such as `3.5` do not end it), and at most
/// [`MAX_SENTENCE`] bytes: a stated answer is short, and the bound keeps
/// a response of ten thousand "the answer is" linear to read.
fn sentence(text: &str) -> &str {
    let bytes = text.as_bytes();
    for (i, &b) in bytes.iter().enumerate().take(MAX_SENTENCE) {
        if b == b'\n' {
            return &text[..i];
        }
        if b == b'.' && bytes.get(i + 1).is_none_or(|n| n.is_ascii_whitespace()) {
            return &text[..i];
        }
    }
    let mut end = text.len().min(MAX_SENTENCE);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
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
    use crate::verifier::extract::default_json_keys;

    fn ex(s: &str) -> Option<String> {
        extract_answer(s, Fallback::LastNumber, &default_json_keys())
    }

    #[test]
    fn priority_order() {
        assert_eq!(
            ex(r"The answer is 3, so \boxed{\frac{1}{2}}.").as_deref(),
            Some(r"\frac{1}{2}")
        );
        // A statement after the box is the later word.
        assert_eq!(
            ex(r"so \boxed{255}. In total, the final answer is $10,455$.").as_deref(),
            Some("10,455")
        );
        assert_eq!(
            ex(r"\boxed{4}, \boxed{5} and \boxed{6}").as_deref(),
            Some("4, 5, 6")
        );
        assert_eq!(
            ex("Final Answer: The final answer is $y = 41$. I hope it is correct.").as_deref(),
            Some("y = 41")
        );
        assert_eq!(
            ex(r"so $m = \frac{2}{5}$").as_deref(),
            Some(r"m = \frac{2}{5}")
        );
        assert_eq!(ex(r"\frac{11}{7}").as_deref(), Some(r"\frac{11}{7}"));
        // Dollar amounts are not math spans.
        assert_eq!(
            ex("She sells 9 eggs at $2 each, making $18.").as_deref(),
            Some("18")
        );
        assert_eq!(ex("The final answer is $18$.").as_deref(), Some("18"));
        assert_eq!(
            ex("Final Answer: 3.5 dollars\nthanks").as_deref(),
            Some("3.5")
        );
        assert_eq!(ex("She makes 18 a day.\n#### 18").as_deref(), Some("18"));
        assert_eq!(ex("**Answer:** 42").as_deref(), Some("42"));
        assert_eq!(ex("So the answer is 7. Done.").as_deref(), Some("7"));
        assert_eq!(
            ex("We get 4 then 12, total 1,200").as_deref(),
            Some("1,200")
        );
        assert_eq!(
            extract_answer("We get 4 then 12", Fallback::None, &default_json_keys()),
            None
        );
        assert_eq!(ex("no numbers"), None);
    }

    #[test]
    fn the_last_statement_wins() {
        assert_eq!(ex(r"\boxed{3} wait, no: \boxed{4}").as_deref(), Some("4"));
        assert_eq!(ex("Answer: 3\nActually, Answer: 5").as_deref(), Some("5"));
    }
}
