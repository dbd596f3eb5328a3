//! Reading a judge's answer: a yes/no verdict, a 1–10 rating, an option
//! letter, or P(yes) from the first token's `top_logprobs`. Pure functions
//! over the saved answer text, so a fixed parser re-reads saved answers
//! without asking the judge again. An answer none of them can read is
//! `None`: recorded as unparsed, never guessed.

use std::sync::LazyLock;

use regex::Regex;
use serde::Deserialize;
use serde_json::Value;

use crate::verifier::split::{Split, split};

/// How a verdict text is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Parser {
    /// yes / no (and the other pass and fail words): score 1 or 0.
    YesNo,
    /// A 1–10 rating, `Rating: [[7]]`: score (rating − 1) / 9.
    Rating,
}

impl Parser {
    /// The option value naming it.
    pub fn name(self) -> &'static str {
        match self {
            Parser::YesNo => "yes-no",
            Parser::Rating => "rating",
        }
    }
}

/// The words that mean pass and fail, and an optional pattern whose first
/// group holds the verdict word.
#[derive(Debug, Clone)]
pub struct Words {
    pass: Vec<String>,
    fail: Vec<String>,
    pattern: Option<Regex>,
}

const PASS: &[&str] = &["yes", "correct", "true", "right", "equivalent"];
const FAIL: &[&str] = &["no", "incorrect", "false", "wrong", "inequivalent"];

impl Words {
    /// The default words unless given; `pattern` must compile and have a group.
    pub fn new(
        pass: Option<Vec<String>>,
        fail: Option<Vec<String>>,
        pattern: Option<&str>,
    ) -> Result<Self, String> {
        let lower = |v: Option<Vec<String>>, d: &[&str]| -> Vec<String> {
            v.unwrap_or_else(|| d.iter().map(|s| s.to_string()).collect())
                .into_iter()
                .map(|w| w.trim().to_lowercase())
                .filter(|w| !w.is_empty())
                .collect()
        };
        let pattern = match pattern {
            None => None,
            Some(p) => {
                let re = Regex::new(p).map_err(|e| format!("not a regular expression: {e}"))?;
                if re.captures_len() < 2 {
                    return Err(format!(
                        "`{p}` has no group: put the verdict word in parentheses, e.g. `Verdict: (\\w+)`"
                    ));
                }
                Some(re)
            }
        };
        Ok(Self {
            pass: lower(pass, PASS),
            fail: lower(fail, FAIL),
            pattern,
        })
    }

    /// 1.0 for a pass word, 0.0 for a fail word.
    fn classify(&self, word: &str) -> Option<f64> {
        let w = word.trim().to_lowercase();
        if self.pass.contains(&w) {
            Some(1.0)
        } else if self.fail.contains(&w) {
            Some(0.0)
        } else {
            None
        }
    }
}

/// The judge's final answer: after its thinking (a reasoning judge), with
/// markdown emphasis removed. `None` when its thinking never closed.
fn final_text(raw: &str) -> Option<String> {
    match split(raw) {
        Split::Final { answer, .. } => Some(answer.replace(['*', '_', '`', '#'], "")),
        Split::Unclosed { .. } => None,
    }
}

/// Reads a verdict text: `(score, what was read)`.
pub fn read(parser: Parser, words: &Words, raw: &str) -> Option<(f64, String)> {
    let text = final_text(raw)?;
    match parser {
        Parser::YesNo => yes_no(words, &text),
        Parser::Rating => rating(&text).map(|r| ((r - 1.0) / 9.0, format_number(r))),
    }
}

fn format_number(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x}")
    }
}

static LABELLED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(?:final verdict|verdict|judgement|judgment|decision|final answer|answer)\s*(?:is)?\s*[:：=\-]?\s*\W{0,3}([a-z]+)")
        .expect("valid regex")
});

static WORD: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"[A-Za-z]+").expect("valid regex"));

fn yes_no(words: &Words, text: &str) -> Option<(f64, String)> {
    let verdict = |w: &str| words.classify(w).map(|s| (s, w.trim().to_lowercase()));
    if let Some(re) = &words.pattern {
        let last = re.captures_iter(text).last()?;
        return verdict(last.get(1)?.as_str());
    }
    // "Verdict: yes", "Final answer: **No**".
    if let Some(found) = LABELLED
        .captures_iter(text)
        .filter_map(|c| verdict(c.get(1)?.as_str()))
        .last()
    {
        return Some(found);
    }
    // "Yes." / "No, the answer differs."
    let tokens: Vec<&str> = WORD.find_iter(text).map(|m| m.as_str()).collect();
    if let Some(first) = tokens.first().and_then(|w| verdict(w)) {
        return Some(first);
    }
    // One kind of verdict word in the text, with "not correct" as a fail.
    let mut seen: Option<(f64, String)> = None;
    for (i, w) in tokens.iter().enumerate() {
        let Some((mut score, mut word)) = verdict(w) else {
            continue;
        };
        let negated = i > 0 && matches!(tokens[i - 1].to_lowercase().as_str(), "not" | "isn" | "t");
        if negated && score == 1.0 {
            score = 0.0;
            word = format!("not {word}");
        }
        match &seen {
            Some((s, _)) if *s != score => return None,
            _ => seen = Some((score, word)),
        }
    }
    seen
}

static DOUBLE_BRACKET: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\[\[\s*(\d+(?:\.\d+)?)\s*\]\]").expect("valid regex"));
static RATING_LABEL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(?:rating|score)\s*[:：=]?\s*\[?\s*(\d+(?:\.\d+)?)\s*(?:/\s*10)?")
        .expect("valid regex")
});

/// A 1–10 rating: the last `[[N]]`, else the last `Rating: N`.
fn rating(text: &str) -> Option<f64> {
    let last = |re: &Regex| {
        re.captures_iter(text)
            .filter_map(|c| c.get(1)?.as_str().parse::<f64>().ok())
            .last()
    };
    last(&DOUBLE_BRACKET)
        .or_else(|| last(&RATING_LABEL))
        .filter(|r| (1.0..=10.0).contains(r))
}

/// P(yes) / (P(yes) + P(no)) from a saved logprob answer
/// (`{"text": …, "top_logprobs": [{"token": …, "logprob": …}, …]}`), the
/// probabilities of every spelling of a pass or fail word summed. `None`
/// when neither appears among the top tokens.
pub fn from_logprobs(words: &Words, raw: &str) -> Option<(f64, String)> {
    let v: Value = serde_json::from_str(raw).ok()?;
    let (mut yes, mut no) = (0.0, 0.0);
    for t in v.get("top_logprobs")?.as_array()? {
        let (Some(token), Some(lp)) = (
            t.get("token").and_then(Value::as_str),
            t.get("logprob").and_then(Value::as_f64),
        ) else {
            continue;
        };
        let word: String = token
            .chars()
            .filter(|c| c.is_alphabetic())
            .collect::<String>();
        match words.classify(&word) {
            Some(1.0) => yes += lp.exp(),
            Some(_) => no += lp.exp(),
            None => {}
        }
    }
    if yes + no <= 0.0 {
        return None;
    }
    let p = yes / (yes + no);
    Some((p, if p >= 0.5 { "yes" } else { "no" }.to_string()))
}

static OPTION_LABEL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(?:option|answer|choice|letter)\s*(?:is)?\s*[:：]?\s*\(?([A-Z])\b")
        .expect("valid regex")
});

/// The option letter a judge named: `Some(Some('B'))`, `Some(None)` for
/// "none", `None` when the answer cannot be read.
pub fn letter(raw: &str) -> Option<Option<char>> {
    let text = final_text(raw)?;
    let t = text.trim();
    let first: String = t
        .trim_start_matches(|c: char| !c.is_alphanumeric())
        .chars()
        .take_while(|c| c.is_alphanumeric())
        .collect();
    if first.eq_ignore_ascii_case("none") || first.eq_ignore_ascii_case("neither") {
        return Some(None);
    }
    let mut chars = first.chars();
    if let (Some(c), None) = (chars.next(), chars.next())
        && c.is_ascii_uppercase()
    {
        // "B", "B.", "A) Paris", "C: helium"; not the word in "I cannot tell".
        let start = t.find(c).unwrap_or(0);
        let after = &t[start + 1..];
        let a_word = after.starts_with(char::is_whitespace)
            && after.trim_start().starts_with(char::is_lowercase);
        if !a_word {
            return Some(Some(c));
        }
    }
    OPTION_LABEL
        .captures_iter(t)
        .filter_map(|c| c.get(1)?.as_str().chars().next())
        .map(|c| Some(c.to_ascii_uppercase()))
        .last()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words() -> Words {
        Words::new(None, None, None).unwrap()
    }

    #[test]
    fn yes_no_as_judges_write_it() {
        let w = words();
        let yn = |t: &str| read(Parser::YesNo, &w, t).map(|(s, _)| s);
        for (text, want) in [
            ("yes", Some(1.0)),
            ("Yes.", Some(1.0)),
            ("**No**", Some(0.0)),
            ("No, the response says 5 but the reference is 4.", Some(0.0)),
            (
                "The final answer matches the reference. Verdict: yes",
                Some(1.0),
            ),
            (
                "Both are 1/2, so they match.\n\nFinal answer: **Yes**",
                Some(1.0),
            ),
            ("<think>Is 0.5 = 1/2? yes... but no</think>\nYes", Some(1.0)),
            ("The response is correct.", Some(1.0)),
            ("The response is incorrect.", Some(0.0)),
            ("The response is not correct.", Some(0.0)),
            ("Correct", Some(1.0)),
            ("It is hard to say.", None),
            (
                "yes or no? I would say it depends: no idea, yes maybe",
                Some(1.0),
            ),
            ("The model says yes but the right value is no", None),
            ("<think>still thinking", None),
            ("", None),
        ] {
            assert_eq!(yn(text), want, "{text:?}");
        }
        let custom = Words::new(
            Some(vec!["PASS".into()]),
            Some(vec!["FAIL".into()]),
            Some(r"GRADE:\s*(\w+)"),
        )
        .unwrap();
        assert_eq!(
            read(Parser::YesNo, &custom, "GRADE: FAIL ... GRADE: PASS").map(|r| r.0),
            Some(1.0)
        );
        assert_eq!(read(Parser::YesNo, &custom, "yes"), None);
        assert!(Words::new(None, None, Some("no group")).is_err());
        assert!(Words::new(None, None, Some("(")).is_err());
    }

    #[test]
    fn ratings() {
        let w = words();
        let r = |t: &str| read(Parser::Rating, &w, t);
        assert_eq!(
            r("Clear and correct.\nRating: [[10]]"),
            Some((1.0, "10".into()))
        );
        assert_eq!(r("Rating: [[1]]"), Some((0.0, "1".into())));
        assert_eq!(r("Good. Rating: 7/10").map(|x| x.1), Some("7".into()));
        assert_eq!(
            r("[[4]] at first, then [[5.5]]").map(|x| x.1),
            Some("5.5".into())
        );
        assert_eq!(r("Rating: [[11]]"), None);
        assert_eq!(r("A fine answer."), None);
    }

    #[test]
    fn logprobs_give_p_yes() {
        let w = words();
        let raw = r#"{"text":"Yes","top_logprobs":[{"token":"Yes","logprob":-0.2},{"token":" yes","logprob":-2.5},{"token":"No","logprob":-1.8},{"token":"Maybe","logprob":-4}]}"#;
        let (p, pred) = from_logprobs(&w, raw).unwrap();
        let (y, n) = ((-0.2f64).exp() + (-2.5f64).exp(), (-1.8f64).exp());
        assert!((p - y / (y + n)).abs() < 1e-12);
        assert_eq!(pred, "yes");
        assert_eq!(
            from_logprobs(
                &w,
                r#"{"text":"The","top_logprobs":[{"token":"The","logprob":-0.1}]}"#
            ),
            None
        );
        assert_eq!(from_logprobs(&w, "not json"), None);
    }

    #[test]
    fn option_letters() {
        for (text, want) in [
            ("B", Some(Some('B'))),
            ("(C)", Some(Some('C'))),
            ("**D**.", Some(Some('D'))),
            ("A) Paris", Some(Some('A'))),
            ("The response chose option C.", Some(Some('C'))),
            ("none", Some(None)),
            ("None of them.", Some(None)),
            ("I cannot tell.", None),
        ] {
            assert_eq!(letter(text), want, "{text:?}");
        }
    }
}
