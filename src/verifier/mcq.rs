//! `mcq-rlvr`: multiple-choice answers as option letters.
//!
//! The letter is looked for in the final part of the response only, in
//! this order:
//!
//! 1. every explicit statement, the last one winning: a box (`\boxed{B}`,
//!    `\boxed{C. Helium}`), an answer phrase ("the answer is (B)",
//!    `**Answer: BD**`, "I pick C", "That matches option D", "答案是B",
//!    "故选：D", "正确选项为（C）"), a letter with a verdict ("D is
//!    correct", "B项正确"), a correction ("Wait, actually it's C"); a hedge
//!    ("B or C", "between A and C") is a statement of no answer;
//! 2. without a statement, a last line that is only letters (`B`, `(C)`,
//!    `**D**`, `C) 17`, `(B)(D)`), then a first line that starts with one;
//! 3. an exact match with one option's text, when the metadata holds the
//!    options (`choices` or `options`).
//!
//! A JSON object with an answer key (`{"answer": "D"}`, `{"choice": "B",
//! "reason": …}`; the keys are `verifier.options.json_keys`) is an explicit
//! statement too, and so are `answer=D` and `Answer -> B`.
//!
//! Capital letters count anywhere a statement puts them; a lower-case
//! letter only right after an answer phrase and alone (`so the answer is
//! c.`, `answer: (d)`, `i'd go with c.`), never as a word ("the answer is a
//! bit tricky"). A letter followed by a letter is a word ("Answer:
//! Because…", "A careful reading…"). A stated letter followed by what it is
//! not ("D, not C or A") is no hedge; a slash between letters ("A/D") is.
//! Full-width letters and brackets are folded to ASCII. Multi-answer golds
//! (`AC`, `A, C`) compare as sets; against one, boxes kept apart only by
//! "and" or commas, and every option declared correct in turn ("Option A
//! is correct. … Option D is correct."), add up.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use regex::Regex;

use super::extract;
use super::split::split;
use super::{Sample, Verdict, Verifier};

/// The multiple-choice verifier.
#[derive(Debug)]
pub struct Mcq {
    /// The keys of a JSON answer object.
    json_keys: Vec<String>,
}

impl Default for Mcq {
    fn default() -> Self {
        Self {
            json_keys: extract::default_json_keys(),
        }
    }
}

/// `verifier.options` of `mcq-rlvr`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    json_keys: Option<Vec<String>>,
}

impl Mcq {
    /// Builds from `verifier.options`: `json_keys`, the keys of a JSON
    /// answer object (default `answer`, `final_answer`, `choice`,
    /// `option`, `correct_answer`).
    pub fn from_options(
        options: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Self, super::VerifierError> {
        let o: Options = super::read_options("mcq-rlvr", options)?;
        let mut v = Self::default();
        if let Some(keys) = o.json_keys {
            if keys.is_empty() {
                return Err(super::VerifierError::Option {
                    verifier: "mcq-rlvr",
                    key: "json_keys".into(),
                    message: "expected at least one key".into(),
                });
            }
            v.json_keys = keys;
        }
        Ok(v)
    }
}

impl Verifier for Mcq {
    fn name(&self) -> &'static str {
        "mcq-rlvr"
    }

    fn verify(&self, sample: &Sample<'_>) -> Verdict {
        let Some(final_part) = split(sample.response).final_part() else {
            return Verdict::unclosed();
        };
        let options = options_from_metadata(sample.metadata);
        let gold = gold_letters(sample.gold, options.as_deref());
        let reading = Reading {
            options: options.as_deref(),
            json_keys: &self.json_keys,
            multi: gold.as_ref().is_some_and(|g| g.len() > 1),
        };
        let pred = reading.letters(final_part);
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

/// A run of option letters: `B`, `BD`, `A, C`, `A and D`, `(B)(D)`,
/// `(A), (C)`, `A、B`. Letters are only capitals.
macro_rules! run {
    () => {
        r"([A-Z](?:(?:\)?\s*(?:,\s*(?:and\s+)?|、|，|\band\b|&|和)\s*\(?|\)\s*\()?[A-Z])*)"
    };
}

/// An answer phrase, then the letters.
static STATEMENT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?:",
        r"(?i:\banswers?(?:\s+(?:is|are|was|would\s+be|should\s+be|will\s+be|must\s+be))?)\s*(?:[:：=]|-{1,2}>?|=>|→|–|—)?",
        r"|(?i:\b(?:correct|right|best|final)\s+(?:answers?|options?|choices?|responses?)(?:\s+(?:here|then|now|thus|therefore|clearly))?(?:\s+(?:is|are|would\s+be|should\s+be))?)\s*[:：]?",
        r"|(?i:\b(?:pick|choose|select|go\s+with|going\s+with|opt\s+for)\b)",
        r"|(?i:\b(?:matches|corresponds\s+to|consistent\s+with)\b)",
        r"|(?i:\b(?:it|this|that)\s+(?:has\s+to|must|should)\s+be\b)",
        r"|答案(?:是|为|應為|应为|选|應該是|应该是)?|【答案】|故选|所以选|应选|应该选|选择|选|最终答案|正确答案(?:是|为|选)?",
        r"|正确(?:的)?选项(?:是|为)|选项(?:是|为)|正确的是",
        r")",
        r"\s*[:：]?\s*(?:\*\*|\*|__)?\s*(?:(?i:options?|choices?)\s*)?[\(\[]?\s*",
        r"(?:",
        run!(),
        // One lower-case letter (`so the answer is c.`, `answer: (d)`):
        // whether it stands alone is checked after the match.
        r"|([a-z]))",
    ))
    .expect("valid regex")
});

/// Letters, then a verdict on them: "D is correct", "Option C is the best
/// answer", "B项正确".
static VERDICT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?:(?i:options?|choices?|statements?\s+in)\s*)?[\(\[]?",
        run!(),
        r"[\)\]]?\s*(?:",
        r"(?i:(?:is|are)\s+(?:the\s+)?(?:correct|right|true|best|consistent|the\s+answer)\b)",
        r"|(?:项|选项)?\s*(?:正确|是正确的|符合题意)",
        r")",
    ))
    .expect("valid regex")
});

/// A correction: "Wait, actually it's C.", "No — on reflection, D."
static CORRECTION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?i:\b(?:it'?s|it\s+is|actually|rather|instead|on\s+reflection|on\s+second\s+thought|no)\b)",
        r"[\s,:—–-]*(?:(?i:options?)\s*)?[\(\[]?([A-Z])[\)\]]?\s*(?:[.!;,—–]|$)",
    ))
    .expect("valid regex")
});

/// A hedge between letters: "B or C", "either A or D", "between A and C".
static HEDGE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?:^|[^A-Za-z])[\(\[]?[A-Z][\)\]]?,?\s+(?i:or)\s+(?:(?i:maybe|perhaps|possibly)\s+)?[\(\[]?[A-Z][\)\]]?(?:[^A-Za-z]|$)",
        r"|(?i:between)\s+[\(\[]?[A-Z][\)\]]?\s+(?i:and)\s+[\(\[]?[A-Z][\)\]]?(?:[^A-Za-z]|$)",
        r"|(?i:both)\s+[\(\[]?[A-Z][\)\]]?\s+(?i:and)\s+[\(\[]?[A-Z][\)\]]?\s+(?i:seem|look|could|might|may)",
    ))
    .expect("valid regex")
});

/// A line that starts with a letter: `B.`, `(B)`, `**B**`, `C) 17`, `> C`.
static LEADING: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s*(?:>\s*)?(?:\*\*)?\s*(?:[\(\[]([A-Z])[\)\]]|([A-Z])(?:[.:)]|\*\*|\s*$))")
        .expect("valid regex")
});

/// A text that is only letters: `B`, `BD`, `(B)(D)`, `A, C`, `(A), (B)`.
static LETTER_SET: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[\s\(\[]*([A-Z](?:[\s,、，\)\(\]\[]*(?:and\s*)?[A-Z])*)[\s\)\]\.。]*$")
        .expect("valid regex")
});

/// A box that starts with a letter and goes on with the option text.
static BOX_LEADING: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s*(?:[\(\[]([A-Z])[\)\]]|([A-Z])\s*(?:[.:)]|\s-\s))").expect("valid regex")
});

/// Folds full-width Latin letters, digits and brackets to ASCII.
fn fold_width(text: &str) -> std::borrow::Cow<'_, str> {
    if text.is_ascii() {
        return std::borrow::Cow::Borrowed(text);
    }
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
        .collect::<String>()
        .into()
}

/// The distinct letters of a run; `None` when a letter repeats (`BECAUSE`
/// is a word, not options).
fn letters(run: &str) -> Option<BTreeSet<char>> {
    let all: Vec<char> = run.chars().filter(char::is_ascii_uppercase).collect();
    let set: BTreeSet<char> = all.iter().copied().collect();
    (set.len() == all.len() && !set.is_empty()).then_some(set)
}

/// Whether the text just before `at`, in the same clause, negates what
/// follows ("not", "nor", "neither"): "neither A nor B; it is C" states C.
fn negated(text: &str, at: usize) -> bool {
    let start = text[..at]
        .char_indices()
        .rev()
        .nth(11)
        .map_or(0, |(i, _)| i);
    let window = &text[start..at];
    let clause = window
        .rfind([';', '.', '!', '?', '\n'])
        .map_or(window, |i| &window[i + 1..]);
    let before = clause.to_lowercase();
    ["not ", "nor ", "neither ", "n't "]
        .iter()
        .any(|w| before.contains(w))
}

/// Whether the run at `start..end` is the pronoun "I" or the article "A"
/// opening a sentence after a colon or dash ("Answer: I need more
/// information", "Answer: A careful reading…").
fn starts_sentence(text: &str, start: usize, end: usize) -> bool {
    let run = &text[start..end];
    let after = &text[end..];
    let word_follows = after.starts_with(' ')
        && after
            .trim_start()
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase());
    let before = text[..start].trim_end_matches([' ', '*', '(']);
    (run == "I" || run == "A") && word_follows && before.ends_with([':', '：', '-', '—', '–'])
}

/// How a final part is read: the question's options, the JSON answer keys,
/// and whether the gold holds several letters (then boxes joined by "and"
/// and successive "X is correct" statements add up).
struct Reading<'a> {
    options: Option<&'a [String]>,
    json_keys: &'a [String],
    multi: bool,
}

/// What a statement at a position says.
#[derive(Debug, Clone, PartialEq)]
enum Said {
    /// These letters.
    Letters(BTreeSet<char>),
    /// A hedge between letters: no answer.
    Hedge,
}

impl Reading<'_> {
    fn in_range(&self, set: &BTreeSet<char>) -> bool {
        match self.options {
            Some(opts) => set
                .iter()
                .all(|&c| ((c as u8 - b'A') as usize) < opts.len()),
            None => true,
        }
    }

    /// The letters the final part states, if any.
    fn letters(&self, final_part: &str) -> Option<BTreeSet<char>> {
        let text = fold_width(final_part);
        let mut said: Vec<(usize, Said, bool)> = Vec::new();
        // (position, what, whether it is a verdict on letters)
        let mut consider = |pos: usize, what: Said, verdict: bool| {
            if let Said::Letters(set) = &what
                && !self.in_range(set)
            {
                return;
            }
            said.push((pos, what, verdict));
        };
        let boxes = extract::boxed_spans(&text);
        let mut last_box: Option<(usize, BTreeSet<char>)> = None;
        for &(pos, end, content) in &boxes {
            let Some(set) = box_letters(content, self.options) else {
                continue;
            };
            // Boxes kept apart only by "and" or commas add up for a
            // multi-answer question: `$\boxed{A}$ and $\boxed{D}$`.
            let joined = match &last_box {
                Some((prev_end, prev)) if self.multi && only_connectors(&text[*prev_end..pos]) => {
                    prev.union(&set).copied().collect()
                }
                _ => set,
            };
            consider(pos, Said::Letters(joined.clone()), false);
            last_box = Some((end, joined));
        }
        if let Some((pos, value)) = extract::json_answer(&text, self.json_keys)
            && let Some(set) = json_letters(&value, self.options)
        {
            consider(pos, Said::Letters(set), false);
        }
        // Cheap word checks first: most final parts need only STATEMENT.
        let lower = text.to_ascii_lowercase();
        let has = |words: &[&str]| words.iter().any(|w| lower.contains(w));
        let patterns = [
            (&*STATEMENT, true, false),
            (
                &*VERDICT,
                has(&[
                    "correct",
                    "right",
                    "true",
                    "best",
                    "consistent",
                    " is the answer",
                    "正确",
                    "符合",
                ]),
                true,
            ),
            (
                &*CORRECTION,
                has(&[
                    "it",
                    "actually",
                    "rather",
                    "instead",
                    "reflection",
                    "thought",
                    "no",
                ]),
                false,
            ),
        ];
        for (re, wanted, verdict) in patterns {
            if !wanted {
                continue;
            }
            for c in re.captures_iter(&text) {
                let start = c.get(0).expect("match").start();
                let Some(run) = c.get(1) else {
                    // A lower-case letter after an answer phrase.
                    if let Some(m) = c.get(2) {
                        let letter = m.as_str().chars().next().expect("one letter");
                        // Options run from a; without them, at most ten.
                        let plausible = self.options.is_some() || letter <= 'j';
                        if plausible
                            && stands_alone(letter, &text[m.end()..])
                            && !negated(&text, start)
                        {
                            let set = BTreeSet::from([letter.to_ascii_uppercase()]);
                            consider(start, Said::Letters(set), false);
                        }
                    }
                    continue;
                };
                // "Answer: Because…" is not the letter B.
                let next = text[run.end()..].chars().next();
                if next.is_some_and(|ch| ch.is_ascii_alphabetic()) {
                    continue;
                }
                if negated(&text, start) || starts_sentence(&text, run.start(), run.end()) {
                    continue;
                }
                // "A/D": a slash between letters is a hedge.
                if slash_hedge(&text[run.end()..]) {
                    consider(start, Said::Hedge, false);
                    continue;
                }
                if let Some(set) = letters(run.as_str()) {
                    consider(start, Said::Letters(set), verdict);
                }
            }
        }
        if has(&[" or ", "between", "both"]) {
            for m in HEDGE.find_iter(&text) {
                // "D, not C or A" says what the answer is not.
                if !negated(&text, m.start() + 1) {
                    consider(m.start() + 1, Said::Hedge, false);
                }
            }
        }
        said.sort_by_key(|(pos, _, _)| *pos);
        if let Some((_, last, verdict)) = said.last().cloned() {
            return match last {
                Said::Hedge => None,
                Said::Letters(set) if self.multi && verdict => {
                    // Successive "X is correct" statements add up.
                    let mut all = set;
                    for (_, what, v) in said.iter().rev().skip(1) {
                        match what {
                            Said::Letters(s) if *v => all.extend(s.iter().copied()),
                            _ => break,
                        }
                    }
                    Some(all)
                }
                Said::Letters(set) => Some(set),
            };
        }
        let last_line = text.lines().rev().find(|l| !l.trim().is_empty())?;
        let first_line = text.lines().find(|l| !l.trim().is_empty())?;
        for line in [last_line, first_line] {
            let found = LETTER_SET
                .captures(line)
                .and_then(|c| letters(&c[1]))
                .or_else(|| {
                    let c = LEADING.captures(line)?;
                    letters(c.get(1).or_else(|| c.get(2))?.as_str())
                });
            if let Some(set) = found.filter(|s| self.in_range(s)) {
                return Some(set);
            }
        }
        let opts = self.options?;
        option_by_text(&text, opts).or_else(|| option_by_text(last_line, opts))
    }
}

/// The letters a JSON answer value states: letters (`"D"`, `"(B)"`, `"A,
/// C"`), one lower-case letter (`"b"`), or an option's text.
fn json_letters(value: &str, options: Option<&[String]>) -> Option<BTreeSet<char>> {
    let v = value.trim();
    let v = if v.len() == 1 {
        v.to_ascii_uppercase()
    } else {
        v.to_string()
    };
    LETTER_SET
        .captures(&v)
        .and_then(|c| letters(&c[1]))
        .or_else(|| option_by_text(&v, options?))
}

/// Whether the text between two boxes only joins them: spaces, commas,
/// "and", "&", math delimiters.
fn only_connectors(gap: &str) -> bool {
    gap.replace("\\text{and}", "")
        .replace("and", "")
        .chars()
        .all(|c| c.is_whitespace() || ",$&\\()[]".contains(c))
}

/// Whether the lower-case `letter` with `after` after it is an option
/// letter, not a word: not glued to more letters (`because`, `b's`), and
/// for `a`, the article, nothing but an end of line or a bracket after it
/// ("the answer is a bit tricky" is prose).
fn stands_alone(letter: char, after: &str) -> bool {
    // "e.g.", "i.e.", "a.m.": an abbreviation.
    let mut next = after.chars();
    if next.next() == Some('.') && next.next().is_some_and(|c| c.is_ascii_alphabetic()) {
        return false;
    }
    match after.chars().next() {
        None => true,
        Some(c) if c.is_alphanumeric() || c == '\'' || c == '-' => false,
        Some(c) if c.is_whitespace() => {
            let line = after.split('\n').next().unwrap_or("").trim();
            letter != 'a' || line.is_empty() || line.starts_with('(')
        }
        Some(_) => true,
    }
}

/// Whether `after` a stated letter goes on with `/` and another letter
/// (`A/D`): two answers at once, which is a hedge.
fn slash_hedge(after: &str) -> bool {
    let rest = after.trim_start_matches([')', ']', ' ']);
    rest.strip_prefix('/').is_some_and(|r| {
        r.trim_start_matches([' ', '('])
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_uppercase())
    })
}

/// The letters a box states: only letters (`B`, `A, C`, `(A), (B)`), a
/// letter before the option text (`C. Helium`, `(A) Storing glucose`), or
/// an option's exact text.
fn box_letters(content: &str, options: Option<&[String]>) -> Option<BTreeSet<char>> {
    let cleaned = strip_latex_text(content);
    if let Some(c) = LETTER_SET.captures(&cleaned) {
        return letters(&c[1]);
    }
    if let Some(c) = BOX_LEADING.captures(&cleaned) {
        return letters(c.get(1).or_else(|| c.get(2))?.as_str());
    }
    option_by_text(&cleaned, options?)
}

/// The letter of the one option whose text is `text`.
fn option_by_text(text: &str, options: &[String]) -> Option<BTreeSet<char>> {
    let answer = normalize_text(text);
    let matches: Vec<usize> = options
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
        return letters(&c[1]);
    }
    let opts = options?;
    let g = normalize_text(&gold);
    opts.iter()
        .position(|o| normalize_text(o) == g)
        .map(|i| BTreeSet::from([(b'A' + i as u8) as char]))
}

fn strip_latex_text(s: &str) -> String {
    let mut out = s.to_string();
    for wrapper in [
        "\\text{",
        "\\textbf{",
        "\\mathrm{",
        "\\mathbf{",
        "\\textnormal{",
    ] {
        out = out.replace(wrapper, "");
    }
    out.replace("\\ ", " ").replace(['{', '}'], "")
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
        Mcq::default()
            .verify(&Sample {
                response,
                gold: "B",
                metadata: None,
            })
            .pred
    }

    fn score(response: &str, gold: &str, metadata: Option<&str>) -> f64 {
        Mcq::default()
            .verify(&Sample {
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
        let v = Mcq::default().verify(&Sample {
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
    fn statements_in_prose_and_corrections() {
        for (r, want) in [
            ("Looking at the options, I pick C.", Some("C")),
            ("Therefore, D is correct.", Some("D")),
            ("That matches option D", Some("D")),
            ("Answer - B", Some("B")),
            ("The answer is B. Wait, actually it's C.", Some("C")),
            ("正确选项为（Ｃ）1911年。", Some("C")),
            ("由此可知，B项正确。", Some("B")),
            (r"\boxed{C. Helium}", Some("C")),
            ("The second one fits.\n\nC) 17", Some("C")),
            ("The answer is either B or C.", None),
            ("I'm torn between A and C.", None),
            ("Neither A nor B is correct.", None),
            ("Answer: I need more information.", None),
            ("A careful reading shows nothing.", None),
        ] {
            assert_eq!(pred(r).as_deref(), want, "{r}");
        }
    }

    #[test]
    fn multi_answer_sets() {
        assert_eq!(score(r"\boxed{A, C}", "AC", None), 1.0);
        assert_eq!(score("The answer is C and A", "A,C", None), 1.0);
        assert_eq!(score(r"\boxed{A}", "AC", None), 0.0);
        assert_eq!(score("答案是A、C", "AC", None), 1.0);
        assert_eq!(score("**Answer: BD**", "BD", None), 1.0);
        assert_eq!(score("(B)(D)", "DB", None), 1.0);
        assert_eq!(score("The answer is BECAUSE of C", "C", None), 0.0);
    }
}
