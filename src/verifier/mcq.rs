//! `mcq-rlvr`: multiple-choice answers as option letters.
//!
//! The letter is looked for in the final part of the response only. Every
//! explicit statement is found — `\boxed{B}`, "the answer is (B)",
//! `**Answer: B**`, "答案是B", "【答案】B", "故选B" — and the last one wins,
//! so letters mentioned while reasoning lose to the final statement. Without
//! a statement, a leading "B." / "(B)" / bare letter counts, then an exact
//! match with one option's text when the metadata holds the options
//! (`choices` or `options`). Full-width letters and brackets are folded to
//! ASCII. Multi-answer golds (`AC`, `A, C`) compare as sets.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use regex::Regex;

use super::extract;
use super::split::split;
use super::{Sample, Verdict, Verifier};

/// The multiple-choice verifier.
#[derive(Debug, Default)]
pub struct Mcq;

impl Verifier for Mcq {
    fn name(&self) -> &'static str {
        "mcq-rlvr"
    }

    fn verify(&self, sample: &Sample<'_>) -> Verdict {
        let Some(final_part) = split(sample.response).final_part() else {
            return Verdict::unclosed();
        };
        let options = options_from_metadata(sample.metadata);
        let pred = extract_letters(final_part, options.as_deref());
        let gold = gold_letters(sample.gold, options.as_deref());
        let score = match (&pred, &gold) {
            (Some(p), Some(g)) if p == g => 1.0,
            _ => 0.0,
        };
        Verdict {
            score,
            pred: pred.map(|set| set.into_iter().collect()),
            error: None,
            unclosed: false,
        }
    }
}

static STATEMENT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?:(?i:answer)(?:\s*(?i:is|was|would be|should be|choice|option))?\s*[:：]?",
        r"|(?i:(?:correct|right|best)\s+(?:option|choice))(?:\s*(?i:is))?\s*[:：]?",
        r"|答案(?:是|为|應為|应为|选)?\s*[:：]?|【答案】|故选|故答案为|所以选|应选|选择)",
        r"\s*(?:\*\*|\*|__)?\s*(?:(?i:option|choice)\s*)?[\(\[]?\s*",
        r"([A-Z](?:\s*(?:,|、|，|and|&|和)\s*[A-Z])*)",
    ))
    .expect("valid regex")
});

static LEADING: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s*(?:\*\*)?\s*(?:[\(\[]([A-Z])[\)\]]|([A-Z])(?:[.:]|\*\*|\s*$))")
        .expect("valid regex")
});

static LETTER_SET: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[\s\(\[]*([A-Z](?:[\s,、，]*(?:and\s*)?[A-Z])*)[\s\)\]\.]*$")
        .expect("valid regex")
});

/// Folds full-width Latin letters, digits and brackets to ASCII.
fn fold_width(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            'Ａ'..='Ｚ' | 'ａ'..='ｚ' | '０'..='９' => {
                char::from_u32(c as u32 - 0xFEE0).unwrap_or(c)
            }
            '（' => '(',
            '）' => ')',
            '：' => ':',
            '，' => ',',
            _ => c,
        })
        .collect()
}

fn letters(run: &str) -> BTreeSet<char> {
    run.chars().filter(char::is_ascii_uppercase).collect()
}

/// The set of option letters the final part states, if any.
pub fn extract_letters(final_part: &str, options: Option<&[String]>) -> Option<BTreeSet<char>> {
    let text = fold_width(final_part);
    let in_range = |set: &BTreeSet<char>| match options {
        Some(opts) => set
            .iter()
            .all(|&c| ((c as u8 - b'A') as usize) < opts.len()),
        None => true,
    };
    let mut best: Option<(usize, BTreeSet<char>)> = None;
    let mut consider = |pos: usize, set: BTreeSet<char>| {
        if !set.is_empty() && in_range(&set) && best.as_ref().is_none_or(|(p, _)| pos >= *p) {
            best = Some((pos, set));
        }
    };
    for (pos, content) in extract::boxed(&text) {
        let cleaned = strip_latex_text(content);
        if let Some(c) = LETTER_SET.captures(&cleaned) {
            consider(pos, letters(&c[1]));
        }
    }
    for c in STATEMENT.captures_iter(&text) {
        let run = c.get(1).expect("group 1");
        // "Answer: Because…" is not the letter B.
        let next = text[run.end()..].chars().next();
        if next.is_some_and(|ch| ch.is_ascii_alphabetic()) {
            continue;
        }
        consider(c.get(0).expect("match").start(), letters(run.as_str()));
    }
    if let Some((_, set)) = best {
        return Some(set);
    }
    if let Some(c) = LEADING.captures(&text) {
        let letter = c.get(1).or_else(|| c.get(2)).expect("one group matches");
        let set = letters(letter.as_str());
        if in_range(&set) {
            return Some(set);
        }
    }
    let opts = options?;
    let answer = normalize_text(&text);
    let matches: Vec<usize> = opts
        .iter()
        .enumerate()
        .filter(|(_, o)| normalize_text(o) == answer)
        .map(|(i, _)| i)
        .collect();
    match matches.as_slice() {
        [i] => Some(BTreeSet::from([(b'A' + *i as u8) as char])),
        _ => None,
    }
}

/// The gold answer as a set of letters: `B`, `AC`, `A, C`, or an option text.
pub fn gold_letters(gold: &str, options: Option<&[String]>) -> Option<BTreeSet<char>> {
    let gold = fold_width(gold);
    if let Some(c) = LETTER_SET.captures(gold.trim()) {
        return Some(letters(&c[1]));
    }
    let opts = options?;
    let g = normalize_text(&gold);
    opts.iter()
        .position(|o| normalize_text(o) == g)
        .map(|i| BTreeSet::from([(b'A' + i as u8) as char]))
}

fn strip_latex_text(s: &str) -> String {
    let mut out = s.to_string();
    for wrapper in ["\\text{", "\\textbf{", "\\mathrm{", "\\mathbf{"] {
        out = out.replace(wrapper, "");
    }
    out.replace(['{', '}'], "")
}

fn normalize_text(s: &str) -> String {
    s.trim()
        .trim_end_matches(['.', '。'])
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

fn options_from_metadata(metadata: Option<&str>) -> Option<Vec<String>> {
    let meta: serde_json::Value = serde_json::from_str(metadata?).ok()?;
    let list = meta.get("choices").or_else(|| meta.get("options"))?;
    let list = match list {
        serde_json::Value::String(s) => serde_json::from_str(s).ok()?,
        other => other.clone(),
    };
    list.as_array()?
        .iter()
        .map(|v| match v {
            serde_json::Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pred(response: &str) -> Option<String> {
        Mcq.verify(&Sample {
            response,
            gold: "B",
            metadata: None,
        })
        .pred
    }

    fn score(response: &str, gold: &str, metadata: Option<&str>) -> f64 {
        Mcq.verify(&Sample {
            response,
            gold,
            metadata,
        })
        .score
    }

    #[test]
    fn explicit_statements() {
        for r in [
            r"\boxed{B}",
            r"so \boxed{\text{B}}",
            "The answer is (B).",
            "the answer is B",
            "**Answer: B**",
            "Final answer: B",
            "答案是B",
            "【答案】B",
            "故选B",
            "答案：Ｂ",
            "The correct answer is option B.",
            "The correct option is B.",
        ] {
            assert_eq!(pred(r).as_deref(), Some("B"), "{r}");
            assert_eq!(score(r, "B", None), 1.0, "{r}");
        }
    }

    #[test]
    fn leading_letters() {
        for r in ["B. Because the moons…", "(B) Saturn", "B", "**B**", " B \n"] {
            assert_eq!(pred(r).as_deref(), Some("B"), "{r}");
        }
    }

    #[test]
    fn the_final_statement_wins_over_reasoning() {
        let r = "<think>A looks right... the answer is A? No.</think>Option A is wrong since... The answer is (C).";
        assert_eq!(pred(r).as_deref(), Some("C"));
        assert_eq!(score(r, "C", None), 1.0);
        assert_eq!(score(r, "A", None), 0.0);
    }

    #[test]
    fn letters_inside_thinking_never_count() {
        let r = "<think>The answer is B.</think>I am not sure.";
        assert_eq!(pred(r), None);
        let v = Mcq.verify(&Sample {
            response: "<think>The answer is B",
            gold: "B",
            metadata: None,
        });
        assert!(v.unclosed);
        assert_eq!((v.score, v.pred), (0.0, None));
    }

    #[test]
    fn words_are_not_letters() {
        assert_eq!(pred("Answer: Based on the data, none."), None);
        assert_eq!(pred("I think it is a trick question"), None);
    }

    #[test]
    fn option_text_matching() {
        let meta = r#"{"choices": ["Earth", "Mars", "Saturn", "Mercury"]}"#;
        assert_eq!(score("Saturn.", "C", Some(meta)), 1.0);
        assert_eq!(score("Mars", "C", Some(meta)), 0.0);
        assert_eq!(score(r"\boxed{C}", "Saturn", Some(meta)), 1.0);
        // A letter beyond the options is not an answer.
        assert_eq!(score(r"\boxed{F}", "C", Some(meta)), 0.0);
    }

    #[test]
    fn multi_answer_sets() {
        assert_eq!(score(r"\boxed{A, C}", "AC", None), 1.0);
        assert_eq!(score("The answer is C and A", "A,C", None), 1.0);
        assert_eq!(score(r"\boxed{A}", "AC", None), 0.0);
        assert_eq!(score("答案是A、C", "AC", None), 1.0);
    }
}
