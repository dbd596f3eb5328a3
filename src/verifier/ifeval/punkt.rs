//! Sentence splitting as nltk's English punkt tokenizer does it (what
//! IFEval counts sentences with): nltk's trained English parameters
//! (abbreviations, collocations, frequent sentence starters, orthographic
//! context; `data/punkt_english.txt`) and its decision procedure: candidate
//! breaks at `.`, `?` and `!` followed by punctuation or a next token, each
//! decided by annotating the words around it (abbreviation, ellipsis,
//! initial, number, then the orthographic, collocation and sentence-starter
//! heuristics), then closing quotes and brackets moved back onto the
//! sentence they end.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use regex::Regex;

use super::text::{is_decimal, is_lower, is_space, is_upper, is_word_char};

const ORTHO_BEG_LC: u32 = 1 << 4;
const ORTHO_MID_UC: u32 = 1 << 2;
const ORTHO_UC: u32 = (1 << 1) | (1 << 2) | (1 << 3);
const ORTHO_LC: u32 = (1 << 4) | (1 << 5) | (1 << 6);

/// nltk's English punkt parameters.
struct Params {
    abbrev_types: HashSet<String>,
    collocations: HashSet<(String, String)>,
    sent_starters: HashSet<String>,
    ortho_context: HashMap<String, u32>,
}

static PARAMS: LazyLock<Params> = LazyLock::new(|| {
    let mut p = Params {
        abbrev_types: HashSet::new(),
        collocations: HashSet::new(),
        sent_starters: HashSet::new(),
        ortho_context: HashMap::new(),
    };
    let mut section = "";
    for line in include_str!("data/punkt_english.txt").split('\n') {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name;
            continue;
        }
        match section {
            "abbrev_types" => {
                p.abbrev_types.insert(line.to_string());
            }
            "sent_starters" => {
                p.sent_starters.insert(line.to_string());
            }
            "collocations" => {
                let (a, b) = line.split_once('\t').expect("two columns");
                p.collocations.insert((a.to_string(), b.to_string()));
            }
            "ortho_context" => {
                let (k, v) = line.split_once('\t').expect("two columns");
                p.ortho_context
                    .insert(k.to_string(), v.parse().expect("a number"));
            }
            other => panic!("unknown punkt section {other}"),
        }
    }
    p
});

static NUMERIC: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^-?[\.,]?\d[\d,\.-]*\.?$").expect("valid regex"));

/// The number of sentences in `text`, as `len(nltk.sent_tokenize(text))`.
pub fn count_sentences(text: &str) -> usize {
    sentences(text).len()
}

/// The sentences of `text` as byte ranges, as nltk's `span_tokenize`.
pub fn sentences(text: &str) -> Vec<(usize, usize)> {
    realign(text, &slices(text))
}

/// A word with its annotations.
#[derive(Debug)]
struct Token<'a> {
    tok: &'a str,
    typ: String,
    sentbreak: bool,
    abbr: bool,
    ellipsis: bool,
}

impl<'a> Token<'a> {
    fn new(tok: &'a str) -> Self {
        let lower = tok.to_lowercase();
        let typ = if NUMERIC.is_match(&lower) {
            "##number##".to_string()
        } else {
            lower
        };
        Token {
            tok,
            typ,
            sentbreak: false,
            abbr: false,
            ellipsis: false,
        }
    }

    fn period_final(&self) -> bool {
        self.tok.ends_with('.')
    }

    fn type_no_period(&self) -> &str {
        if self.typ.chars().count() > 1 && self.typ.ends_with('.') {
            &self.typ[..self.typ.len() - 1]
        } else {
            &self.typ
        }
    }

    fn type_no_sentperiod(&self) -> &str {
        if self.sentbreak {
            self.type_no_period()
        } else {
            &self.typ
        }
    }

    fn first(&self) -> String {
        self.tok
            .chars()
            .next()
            .map(String::from)
            .unwrap_or_default()
    }

    fn first_upper(&self) -> bool {
        is_upper(&self.first())
    }

    fn first_lower(&self) -> bool {
        is_lower(&self.first())
    }

    fn is_ellipsis(&self) -> bool {
        self.tok.len() >= 2 && self.tok.bytes().all(|b| b == b'.')
    }

    /// A letter (a word character, not a digit) then a period.
    fn is_initial(&self) -> bool {
        let mut chars = self.tok.chars();
        match (chars.next(), chars.next(), chars.next()) {
            (Some(c), Some('.'), None) => is_word_char(c) && !is_decimal(c),
            _ => false,
        }
    }
}

/// Characters that cannot be inside a word.
fn non_word(c: char) -> bool {
    matches!(
        c,
        ')' | '"' | ';' | '}' | ']' | '*' | ':' | '@' | '\'' | '(' | '{' | '[' | '!' | '?'
    )
}

/// Characters a word cannot start with.
fn not_word_start(c: char) -> bool {
    matches!(
        c,
        '(' | '"'
            | '`'
            | '{'
            | '['
            | ':'
            | ';'
            | '&'
            | '#'
            | '*'
            | '@'
            | ')'
            | '}'
            | ']'
            | '-'
            | ','
    )
}

/// The length of a multi-character punctuation mark (`--`, `..`,
/// `. . .`) at the start of `s`, if any.
fn multi_char(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    if b.starts_with(b"--") {
        return Some(b.iter().take_while(|&&c| c == b'-').count());
    }
    if b.starts_with(b"..") {
        return Some(b.iter().take_while(|&&c| c == b'.').count());
    }
    // (?:\.\s){2,}\. : the most pairs that a period follows.
    let mut ends = Vec::new();
    let mut i = 0;
    loop {
        if !s[i..].starts_with('.') {
            break;
        }
        match s[i + 1..].chars().next() {
            Some(c) if is_space(c) => i += 1 + c.len_utf8(),
            _ => break,
        }
        ends.push(i);
    }
    ends.iter()
        .enumerate()
        .rev()
        .find(|&(k, &end)| k >= 1 && s[end..].starts_with('.'))
        .map(|(_, &end)| end + 1)
}

/// punkt's word tokenizer over one line: multi-character punctuation,
/// words up to whitespace or punctuation (a comma only at a word's end),
/// else single characters.
fn word_tokenize(line: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut p = 0;
    while p < line.len() {
        let rest = &line[p..];
        let c = rest.chars().next().expect("not at the end");
        if let Some(n) = multi_char(rest) {
            out.push(&line[p..p + n]);
            p += n;
            continue;
        }
        if is_space(c) {
            p += c.len_utf8();
            continue;
        }
        let mut end = p + c.len_utf8();
        if !not_word_start(c) {
            // \S+? up to a word end.
            loop {
                let after = &line[end..];
                let Some(next) = after.chars().next() else {
                    break;
                };
                if is_space(next) || non_word(next) || multi_char(after).is_some() {
                    break;
                }
                if next == ',' {
                    let after_comma = &after[1..];
                    match after_comma.chars().next() {
                        None => break,
                        Some(n2) if is_space(n2) || non_word(n2) => break,
                        Some(_) if multi_char(after_comma).is_some() => break,
                        Some(_) => {}
                    }
                }
                end += next.len_utf8();
            }
        }
        out.push(&line[p..end]);
        p = end;
    }
    out
}

/// The annotated tokens of `text`, line by line.
fn tokens(text: &str) -> Vec<Token<'_>> {
    let mut out = Vec::new();
    for line in text.split('\n') {
        if super::text::strip(line).is_empty() {
            continue;
        }
        out.extend(word_tokenize(line).into_iter().map(Token::new));
    }
    annotate(&mut out);
    out
}

fn annotate(tokens: &mut [Token<'_>]) {
    let params = &*PARAMS;
    for t in tokens.iter_mut() {
        first_pass(t, params);
    }
    for i in 0..tokens.len() {
        if i + 1 < tokens.len() {
            let (a, b) = tokens.split_at_mut(i + 1);
            second_pass(&mut a[i], &b[0], params);
        }
    }
}

fn first_pass(t: &mut Token<'_>, params: &Params) {
    let tok = t.tok;
    if matches!(tok, "." | "?" | "!") {
        t.sentbreak = true;
    } else if t.is_ellipsis() {
        t.ellipsis = true;
    } else if t.period_final() && !tok.ends_with("..") {
        let stem = tok[..tok.len() - 1].to_lowercase();
        let last = stem.rsplit('-').next().unwrap_or_default();
        if params.abbrev_types.contains(&stem) || params.abbrev_types.contains(last) {
            t.abbr = true;
        } else {
            t.sentbreak = true;
        }
    }
}

/// `Some(true)`: starts a sentence; `Some(false)`: does not; `None`: unknown.
fn ortho_heuristic(t: &Token<'_>, params: &Params) -> Option<bool> {
    if matches!(t.tok, ";" | ":" | "," | "." | "!" | "?") {
        return Some(false);
    }
    let ortho = params
        .ortho_context
        .get(t.type_no_sentperiod())
        .copied()
        .unwrap_or(0);
    if t.first_upper() && ortho & ORTHO_LC != 0 && ortho & ORTHO_MID_UC == 0 {
        return Some(true);
    }
    if t.first_lower() && (ortho & ORTHO_UC != 0 || ortho & ORTHO_BEG_LC == 0) {
        return Some(false);
    }
    None
}

fn second_pass(t1: &mut Token<'_>, t2: &Token<'_>, params: &Params) {
    if !t1.period_final() {
        return;
    }
    let typ = t1.type_no_period().to_string();
    let next_typ = t2.type_no_sentperiod();
    let initial = t1.is_initial();
    if params
        .collocations
        .contains(&(typ.clone(), next_typ.to_string()))
    {
        t1.sentbreak = false;
        t1.abbr = true;
        return;
    }
    if (t1.abbr || t1.ellipsis) && !initial {
        if ortho_heuristic(t2, params) == Some(true) {
            t1.sentbreak = true;
            return;
        }
        if t2.first_upper() && params.sent_starters.contains(next_typ) {
            t1.sentbreak = true;
            return;
        }
    }
    if initial || typ == "##number##" {
        let starter = ortho_heuristic(t2, params);
        if starter == Some(false) {
            t1.sentbreak = false;
            t1.abbr = true;
            return;
        }
        let ortho = params.ortho_context.get(next_typ).copied().unwrap_or(0);
        if starter.is_none() && initial && t2.first_upper() && ortho & ORTHO_LC == 0 {
            t1.sentbreak = false;
            t1.abbr = true;
        }
    }
}

/// Whether a token after the first sentence break exists in `context`.
fn contains_sentbreak(context: &str) -> bool {
    let toks = tokens(context);
    let mut found = false;
    for t in &toks {
        if found {
            return true;
        }
        found |= t.sentbreak;
    }
    false
}

/// A candidate break: the punctuation mark's offset, the end of what
/// follows it (`after_tok`), and where the next token starts, if one does.
struct Candidate {
    at: usize,
    after_end: usize,
    next_tok: Option<usize>,
}

/// `[.?!]` followed by other punctuation, or by whitespace and a token.
fn candidates(text: &str) -> Vec<Candidate> {
    let mut out = Vec::new();
    for (at, c) in text.char_indices() {
        if !matches!(c, '.' | '?' | '!') {
            continue;
        }
        let rest = &text[at + 1..];
        match rest.chars().next() {
            Some(n) if non_word(n) => out.push(Candidate {
                at,
                after_end: at + 1 + n.len_utf8(),
                next_tok: None,
            }),
            Some(n) if is_space(n) => {
                let ws = rest.find(|c: char| !is_space(c)).unwrap_or(rest.len());
                if ws == rest.len() {
                    continue;
                }
                let tok_start = at + 1 + ws;
                let tok_len = text[tok_start..]
                    .find(is_space)
                    .unwrap_or(text.len() - tok_start);
                out.push(Candidate {
                    at,
                    after_end: tok_start + tok_len,
                    next_tok: Some(tok_start),
                });
            }
            _ => {}
        }
    }
    out
}

/// The start of the word before `end` (after the last ASCII whitespace in
/// `text[from..end]`), as nltk's `_match_potential_end_contexts`, whose
/// "none found" also covers a space at the very first position.
fn word_start(text: &str, from: usize, end: usize, fallback: usize) -> usize {
    match text[from..end].rfind([' ', '\t', '\n', '\r', '\x0b', '\x0c']) {
        Some(i) if i > 0 => from + i + 1,
        _ => fallback,
    }
}

/// Candidate breaks with their context (the word before, the mark and what
/// follows), overlapping contexts merged as nltk does.
fn end_contexts(text: &str) -> Vec<(Candidate, String)> {
    let mut out = Vec::new();
    let mut prev_slice = (0usize, 0usize);
    let mut prev: Option<Candidate> = None;
    let context = |slice: (usize, usize), m: &Candidate| {
        format!("{}{}", &text[slice.0..slice.1], &text[m.at..m.after_end])
    };
    for m in candidates(text) {
        let start = word_start(text, prev_slice.1, m.at, prev_slice.0);
        let word = (start, m.at);
        if let Some(p) = prev.take()
            && prev_slice.1 <= word.0
        {
            let c = context(prev_slice, &p);
            out.push((p, c));
        }
        prev = Some(m);
        prev_slice = word;
    }
    if let Some(p) = prev {
        let c = context(prev_slice, &p);
        out.push((p, c));
    }
    out
}

fn slices(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut last_break = 0;
    for (m, context) in end_contexts(text) {
        if contains_sentbreak(&context) {
            out.push((last_break, m.at + 1));
            last_break = m.next_tok.unwrap_or(m.at + 1);
        }
    }
    out.push((last_break, text.trim_end_matches(is_space).len()));
    out
}

/// Closing punctuation right after a break: `["')\]}]+?` then whitespace,
/// `--` or a line end; its length without the whitespace and in all.
fn realignment(s: &str) -> Option<(usize, usize)> {
    let mut k = 0;
    for c in s.chars() {
        if !matches!(c, '"' | '\'' | ')' | ']' | '}') {
            return None;
        }
        k += 1;
        let rest = &s[k..];
        let ws = rest.find(|c: char| !is_space(c)).unwrap_or(rest.len());
        if ws > 0 {
            return Some((k, k + ws));
        }
        if rest.starts_with("--") || rest.is_empty() || rest.starts_with('\n') {
            return Some((k, k));
        }
    }
    None
}

fn realign(text: &str, slices: &[(usize, usize)]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut shift = 0;
    for (i, &(start, stop)) in slices.iter().enumerate() {
        let s1 = (start + shift, stop);
        let non_empty = s1.0 < s1.1;
        let Some(&(s2_start, s2_stop)) = slices.get(i + 1) else {
            if non_empty {
                out.push(s1);
            }
            continue;
        };
        match realignment(&text[s2_start..s2_stop.max(s2_start)]) {
            Some((kept, all)) => {
                out.push((s1.0, s2_start + kept));
                shift = all;
            }
            None => {
                shift = 0;
                if non_empty {
                    out.push(s1);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(text: &str) -> Vec<&str> {
        sentences(text).iter().map(|&(a, b)| &text[a..b]).collect()
    }

    #[test]
    fn abbreviations_decimals_and_initials_do_not_end_sentences() {
        assert_eq!(
            split("Mr. Smith paid $3.50 at 5 p.m. yesterday. He left."),
            ["Mr. Smith paid $3.50 at 5 p.m. yesterday.", "He left."]
        );
        assert_eq!(
            split("J. K. Rowling wrote it. Did she? Yes!"),
            ["J. K. Rowling wrote it.", "Did she?", "Yes!"]
        );
        assert_eq!(
            split("(This is one.) And another. \"Quoted.\" End"),
            ["(This is one.)", "And another.", "\"Quoted.\"", "End"]
        );
    }

    #[test]
    fn counts_like_nltk() {
        assert_eq!(count_sentences(""), 0);
        assert_eq!(count_sentences("No period at all"), 1);
        assert_eq!(count_sentences("One. Two. Three."), 3);
        assert_eq!(count_sentences("Wait... what? Really!!! Yes."), 3);
        assert_eq!(count_sentences("I live in the U.S. It is big."), 2);
        assert_eq!(count_sentences("Line one\n\nLine two."), 1);
    }

    #[test]
    fn words_split_like_punkt() {
        assert_eq!(
            word_tokenize("Hello, world... (fine) e.g. x--y \"q\"."),
            [
                "Hello", ",", "world", "...", "(", "fine", ")", "e.g.", "x", "--", "y", "\"", "q",
                "\"", "."
            ]
        );
    }
}
