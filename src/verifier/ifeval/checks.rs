//! IFEval's 25 instructions: each read from its id and kwargs into an
//! [`Instruction`], and checked against a response with exactly the
//! reference checker's rules (its counting, splitting, case and language
//! semantics, in [`super::text`], [`super::punkt`], [`super::words`] and
//! [`super::langdetect`]).

use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Map, Value};

use super::text::{
    SPACE_CLASS, contains_word, count_words, is_lower, is_space, is_upper, lower, python_pattern,
    python_source, split_whitespace, strip,
};
use super::{langdetect, punkt, pyjson, words};

/// Every instruction id, in the reference's registry order, with the
/// kwargs it takes.
pub const IDS: &[(&str, &[&str])] = &[
    ("keywords:existence", &["keywords"]),
    ("keywords:frequency", &["keyword", "frequency", "relation"]),
    ("keywords:forbidden_words", &["forbidden_words"]),
    (
        "keywords:letter_frequency",
        &["letter", "let_frequency", "let_relation"],
    ),
    ("language:response_language", &["language"]),
    (
        "length_constraints:number_sentences",
        &["num_sentences", "relation"],
    ),
    ("length_constraints:number_paragraphs", &["num_paragraphs"]),
    (
        "length_constraints:number_words",
        &["num_words", "relation"],
    ),
    (
        "length_constraints:nth_paragraph_first_word",
        &["num_paragraphs", "nth_paragraph", "first_word"],
    ),
    (
        "detectable_content:number_placeholders",
        &["num_placeholders"],
    ),
    ("detectable_content:postscript", &["postscript_marker"]),
    ("detectable_format:number_bullet_lists", &["num_bullets"]),
    ("detectable_format:constrained_response", &[]),
    (
        "detectable_format:number_highlighted_sections",
        &["num_highlights"],
    ),
    (
        "detectable_format:multiple_sections",
        &["section_spliter", "num_sections"],
    ),
    ("detectable_format:json_format", &[]),
    ("detectable_format:title", &[]),
    ("combination:two_responses", &[]),
    ("combination:repeat_prompt", &["prompt_to_repeat"]),
    ("startend:end_checker", &["end_phrase"]),
    (
        "change_case:capital_word_frequency",
        &["capital_frequency", "capital_relation"],
    ),
    ("change_case:english_capital", &[]),
    ("change_case:english_lowercase", &[]),
    ("punctuation:no_comma", &[]),
    ("startend:quotation", &[]),
];

/// `less than` or `at least`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    /// Fewer than the threshold.
    LessThan,
    /// The threshold or more.
    AtLeast,
}

impl Relation {
    fn holds(self, count: usize, threshold: u64) -> bool {
        let count = count as u64;
        match self {
            Relation::LessThan => count < threshold,
            Relation::AtLeast => count >= threshold,
        }
    }
}

/// One instruction with its arguments.
#[derive(Debug, Clone)]
pub enum Instruction {
    /// Every keyword appears (case-insensitive pattern search).
    KeywordsExistence(Vec<Regex>),
    /// A keyword appears less than / at least N times.
    KeywordFrequency(Regex, u64, Relation),
    /// No forbidden word appears as a whole word.
    ForbiddenWords(Vec<Regex>),
    /// A letter appears less than / at least N times (case-insensitive).
    LetterFrequency(String, u64, Relation),
    /// The whole response is in a language.
    ResponseLanguage(String),
    /// Less than / at least N sentences (nltk punkt).
    NumberSentences(u64, Relation),
    /// Exactly N paragraphs separated by `***`.
    NumberParagraphs(u64),
    /// Less than / at least N words.
    NumberWords(u64, Relation),
    /// N paragraphs separated by blank lines, the nth starting with a word.
    NthParagraphFirstWord(u64, u64, String),
    /// At least N `[placeholders]`.
    NumberPlaceholders(u64),
    /// A postscript starting with a marker (the pattern over the
    /// lower-cased response).
    Postscript(Regex),
    /// Exactly N markdown bullets.
    NumberBulletLists(u64),
    /// One of "My answer is yes./no./maybe.".
    ConstrainedResponse,
    /// At least N `*highlighted*` sections.
    NumberHighlightedSections(u64),
    /// At least N sections marked `<splitter> <number>`.
    MultipleSections(Regex, u64),
    /// The whole response is JSON (markdown fences allowed).
    JsonFormat,
    /// A `<<title>>`.
    Title,
    /// Two different responses separated by `******`.
    TwoResponses,
    /// The response starts with the request, repeated.
    RepeatPrompt(String),
    /// The response ends with a phrase.
    EndChecker(String),
    /// Words in capitals appear less than / at least N times.
    CapitalWordFrequency(u64, Relation),
    /// English, all capitals.
    EnglishCapital,
    /// English, all lower case.
    EnglishLowercase,
    /// No commas.
    NoComma,
    /// Wrapped in double quotes.
    Quotation,
}

/// Kwargs of one instruction, read with the key named on error.
struct Kwargs<'a> {
    id: &'a str,
    map: &'a Map<String, Value>,
}

impl Kwargs<'_> {
    fn get(&self, key: &str) -> Result<&Value, String> {
        self.map
            .get(key)
            .filter(|v| !v.is_null())
            .ok_or_else(|| format!("{}: kwargs.{key} is missing", self.id))
    }

    fn text(&self, key: &str) -> Result<String, String> {
        match self.get(key)? {
            Value::String(s) => Ok(s.clone()),
            other => Err(format!(
                "{}: kwargs.{key} must be text, got {other}",
                self.id
            )),
        }
    }

    fn count(&self, key: &str) -> Result<u64, String> {
        let v = self.get(key)?;
        v.as_u64()
            .or_else(|| {
                v.as_f64()
                    .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                    .map(|f| f as u64)
            })
            .ok_or_else(|| {
                format!(
                    "{}: kwargs.{key} must be a whole number ≥ 0, got {v}",
                    self.id
                )
            })
    }

    fn relation(&self, key: &str) -> Result<Relation, String> {
        match self.text(key)?.as_str() {
            "less than" => Ok(Relation::LessThan),
            "at least" => Ok(Relation::AtLeast),
            other => Err(format!(
                "{}: kwargs.{key} must be \"less than\" or \"at least\", got \"{other}\"",
                self.id
            )),
        }
    }

    fn list(&self, key: &str) -> Result<Vec<String>, String> {
        match self.get(key)? {
            Value::Array(items) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(format!(
                        "{}: kwargs.{key} must be a list of text, got {other}",
                        self.id
                    )),
                })
                .collect(),
            Value::String(s) => Ok(vec![s.clone()]),
            other => Err(format!(
                "{}: kwargs.{key} must be a list of text, got {other}",
                self.id
            )),
        }
    }
}

impl Instruction {
    /// Reads instruction `id` with its kwargs (null values ignored); an
    /// unknown id, a missing or mistyped kwarg, or one the instruction does
    /// not take is an error naming it.
    pub fn parse(id: &str, kwargs: &Map<String, Value>) -> Result<Self, String> {
        let Some((_, keys)) = IDS.iter().find(|(i, _)| *i == id) else {
            return Err(format!(
                "unknown instruction id `{id}` (the 25 IFEval ids are listed in docs/verifiers.md)"
            ));
        };
        if let Some((extra, _)) = kwargs
            .iter()
            .find(|(k, v)| !v.is_null() && !keys.contains(&k.as_str()))
        {
            return Err(format!(
                "{id}: kwargs.{extra} is not one of its arguments ({})",
                if keys.is_empty() {
                    "it takes none".to_string()
                } else {
                    keys.join(", ")
                }
            ));
        }
        let k = Kwargs { id, map: kwargs };
        let pattern = |s: &str| python_pattern(s, true);
        Ok(match id {
            "keywords:existence" => {
                Self::KeywordsExistence(k.list("keywords")?.iter().map(|s| pattern(s)).collect())
            }
            "keywords:frequency" => Self::KeywordFrequency(
                pattern(strip(&k.text("keyword")?)),
                k.count("frequency")?,
                k.relation("relation")?,
            ),
            "keywords:forbidden_words" => Self::ForbiddenWords(
                k.list("forbidden_words")?
                    .iter()
                    .map(|s| pattern(s))
                    .collect(),
            ),
            "keywords:letter_frequency" => Self::LetterFrequency(
                lower(strip(&k.text("letter")?)),
                k.count("let_frequency")?,
                k.relation("let_relation")?,
            ),
            "language:response_language" => Self::ResponseLanguage(k.text("language")?),
            "length_constraints:number_sentences" => {
                Self::NumberSentences(k.count("num_sentences")?, k.relation("relation")?)
            }
            "length_constraints:number_paragraphs" => {
                Self::NumberParagraphs(k.count("num_paragraphs")?)
            }
            "length_constraints:number_words" => {
                Self::NumberWords(k.count("num_words")?, k.relation("relation")?)
            }
            "length_constraints:nth_paragraph_first_word" => {
                let n = k.count("num_paragraphs")?;
                let nth = k.count("nth_paragraph")?;
                if nth == 0 || nth > n {
                    return Err(format!(
                        "{id}: kwargs.nth_paragraph must be 1..={n} (num_paragraphs), got {nth}"
                    ));
                }
                Self::NthParagraphFirstWord(n, nth, lower(&k.text("first_word")?))
            }
            "detectable_content:number_placeholders" => {
                Self::NumberPlaceholders(k.count("num_placeholders")?)
            }
            "detectable_content:postscript" => {
                Self::Postscript(postscript(strip(&k.text("postscript_marker")?))?)
            }
            "detectable_format:number_bullet_lists" => {
                Self::NumberBulletLists(k.count("num_bullets")?)
            }
            "detectable_format:constrained_response" => Self::ConstrainedResponse,
            "detectable_format:number_highlighted_sections" => {
                Self::NumberHighlightedSections(k.count("num_highlights")?)
            }
            "detectable_format:multiple_sections" => {
                let splitter = k.text("section_spliter")?;
                let source = format!(
                    "{SPACE_CLASS}?{}{SPACE_CLASS}?\\d+{SPACE_CLASS}?",
                    python_source(strip(&splitter))
                );
                let re = Regex::new(&source)
                    .map_err(|e| format!("{id}: kwargs.section_spliter does not compile: {e}"))?;
                Self::MultipleSections(re, k.count("num_sections")?)
            }
            "detectable_format:json_format" => Self::JsonFormat,
            "detectable_format:title" => Self::Title,
            "combination:two_responses" => Self::TwoResponses,
            "combination:repeat_prompt" => {
                let prompt = k.text("prompt_to_repeat")?;
                if prompt.is_empty() {
                    return Err(format!("{id}: kwargs.prompt_to_repeat is empty"));
                }
                Self::RepeatPrompt(lower(strip(&prompt)))
            }
            "startend:end_checker" => Self::EndChecker(lower(strip(&k.text("end_phrase")?))),
            "change_case:capital_word_frequency" => Self::CapitalWordFrequency(
                k.count("capital_frequency")?,
                k.relation("capital_relation")?,
            ),
            "change_case:english_capital" => Self::EnglishCapital,
            "change_case:english_lowercase" => Self::EnglishLowercase,
            "punctuation:no_comma" => Self::NoComma,
            "startend:quotation" => Self::Quotation,
            _ => unreachable!("every id in IDS is handled"),
        })
    }

    /// Whether `value` follows the instruction.
    pub fn follows(&self, value: &str) -> bool {
        match self {
            Self::KeywordsExistence(keywords) => keywords.iter().all(|k| k.is_match(value)),
            Self::KeywordFrequency(keyword, n, rel) => {
                rel.holds(keyword.find_iter(value).count(), *n)
            }
            Self::ForbiddenWords(words) => !words.iter().any(|w| contains_word(value, w)),
            Self::LetterFrequency(letter, n, rel) => {
                let lowered = lower(value);
                let count = if letter.chars().count() == 1 {
                    let c = letter.chars().next().expect("one char");
                    lowered.chars().filter(|&x| x == c).count()
                } else {
                    0
                };
                rel.holds(count, *n)
            }
            Self::ResponseLanguage(lang) => {
                langdetect::detect(value).is_none_or(|detected| detected == *lang)
            }
            Self::NumberSentences(n, rel) => rel.holds(punkt::count_sentences(value), *n),
            Self::NumberParagraphs(n) => star_paragraphs(value) == Some(*n as usize),
            Self::NumberWords(n, rel) => rel.holds(count_words(value), *n),
            Self::NthParagraphFirstWord(n, nth, word) => nth_paragraph(value, *n, *nth, word),
            Self::NumberPlaceholders(n) => PLACEHOLDER.find_iter(value).count() as u64 >= *n,
            Self::Postscript(re) => re.is_match(&lower(value)),
            Self::NumberBulletLists(n) => {
                (STAR_BULLET.find_iter(value).count() + DASH_BULLET.find_iter(value).count()) as u64
                    == *n
            }
            Self::ConstrainedResponse => {
                let v = strip(value);
                [
                    "My answer is yes.",
                    "My answer is no.",
                    "My answer is maybe.",
                ]
                .iter()
                .any(|o| v.contains(o))
            }
            Self::NumberHighlightedSections(n) => highlights(value) >= *n,
            Self::MultipleSections(re, n) => re.find_iter(value).count() as u64 >= *n,
            Self::JsonFormat => json_format(value),
            Self::Title => TITLE.find_iter(value).any(|m| {
                !strip(m.as_str().trim_start_matches('<').trim_end_matches('>')).is_empty()
            }),
            Self::TwoResponses => two_responses(value),
            Self::RepeatPrompt(prompt) => lower(strip(value)).starts_with(prompt.as_str()),
            Self::EndChecker(phrase) => {
                lower(strip(value).trim_matches('"')).ends_with(phrase.as_str())
            }
            Self::CapitalWordFrequency(n, rel) => rel.holds(
                words::word_tokenize(value)
                    .iter()
                    .filter(|w| is_upper(w))
                    .count(),
                *n,
            ),
            Self::EnglishCapital => {
                is_upper(value) && langdetect::detect(value).is_none_or(|l| l == "en")
            }
            Self::EnglishLowercase => {
                is_lower(value) && langdetect::detect(value).is_none_or(|l| l == "en")
            }
            Self::NoComma => !value.contains(','),
            Self::Quotation => {
                let v = strip(value);
                v.chars().count() > 1 && v.starts_with('"') && v.ends_with('"')
            }
        }
    }
}

static PLACEHOLDER: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\[.*?\]").expect("valid"));
static STAR_BULLET: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?m)^[\s\x1c-\x1f]*\*[^\*].*$").expect("valid"));
static DASH_BULLET: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?m)^[\s\x1c-\x1f]*-.*$").expect("valid"));
static HIGHLIGHT: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\*[^\n\*]*\*").expect("valid"));
static DOUBLE_HIGHLIGHT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\*\*[^\n\*]*\*\*").expect("valid"));
static TITLE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"<<[^\n]+>>").expect("valid"));
static STARS_DIVIDER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[\s\x1c-\x1f]?\*\*\*[\s\x1c-\x1f]?").expect("valid"));
static PS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?m)[\s\x1c-\x1f]*p\.[\s\x1c-\x1f]?s\..*$").expect("valid"));
static PPS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?m)[\s\x1c-\x1f]*p\.[\s\x1c-\x1f]?p\.[\s\x1c-\x1f]?s.*$").expect("valid")
});

/// Paragraphs split by `***`; `None` when an inner one is empty.
fn star_paragraphs(value: &str) -> Option<usize> {
    let parts: Vec<&str> = STARS_DIVIDER.split(value).collect();
    let mut n = parts.len();
    for (i, p) in parts.iter().enumerate() {
        if strip(p).is_empty() {
            if i == 0 || i == parts.len() - 1 {
                n -= 1;
            } else {
                return None;
            }
        }
    }
    Some(n)
}

fn nth_paragraph(value: &str, n: u64, nth: u64, first_word: &str) -> bool {
    let paragraphs: Vec<&str> = value.split("\n\n").collect();
    let count = paragraphs.iter().filter(|p| !strip(p).is_empty()).count() as u64;
    if nth > count {
        return false;
    }
    let paragraph = strip(paragraphs[nth as usize - 1]);
    if paragraph.is_empty() {
        return false;
    }
    let word = split_whitespace(paragraph).next().unwrap_or_default();
    let word = strip(word).trim_start_matches('\'').trim_start_matches('"');
    let first: String = word
        .chars()
        .take_while(|c| !matches!(c, '.' | ',' | '?' | '!' | '\'' | '"'))
        .flat_map(char::to_lowercase)
        .collect();
    count == n && first == first_word
}

/// The reference's postscript pattern for `marker`: `P.S.` and `P.P.S`
/// with optional spaces between the letters, any other marker as a pattern.
fn postscript(marker: &str) -> Result<Regex, String> {
    match marker {
        "P.P.S" => Ok(PPS.clone()),
        "P.S." => Ok(PS.clone()),
        other => Regex::new(&format!(
            "(?m){SPACE_CLASS}*{}.*$",
            python_source(&lower(other))
        ))
        .map_err(|e| format!("detectable_content:postscript: kwargs.postscript_marker: {e}")),
    }
}

fn highlights(value: &str) -> u64 {
    let single = HIGHLIGHT
        .find_iter(value)
        .filter(|m| !strip(m.as_str().trim_matches('*')).is_empty())
        .count();
    let double = DOUBLE_HIGHLIGHT
        .find_iter(value)
        .filter(|m| {
            let s = m.as_str();
            !strip(&s[2..s.len() - 2]).is_empty()
        })
        .count();
    (single + double) as u64
}

fn json_format(value: &str) -> bool {
    let mut v = strip(value);
    for prefix in ["```json", "```Json", "```JSON", "```"] {
        v = v.strip_prefix(prefix).unwrap_or(v);
    }
    let v = v.strip_suffix("```").unwrap_or(v);
    pyjson::loads(strip(v))
}

fn two_responses(value: &str) -> bool {
    let parts: Vec<&str> = value.split("******").collect();
    let mut valid = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        if strip(p).is_empty() {
            if i != 0 && i != parts.len() - 1 {
                return false;
            }
        } else {
            valid.push(*p);
        }
    }
    valid.len() == 2 && strip(valid[0]) != strip(valid[1])
}

/// Whether a response is checked at all: the reference skips (fails) a
/// variant that is empty after `strip()`.
pub fn checkable(value: &str) -> bool {
    !value.chars().all(is_space)
}
