//! Word tokens as `nltk.word_tokenize` gives them (what IFEval counts
//! capitalised words with): the text split into sentences by
//! [`super::punkt`], then each sentence through nltk's improved Treebank
//! rules: quotes, punctuation, brackets and dashes set apart, clitics
//! (`'s`, `n't`, `'ll`) split off, and `cannot`, `gonna`, `wanna`… split in
//! two.

use std::sync::LazyLock;

use regex::Regex;

use super::punkt;
use super::text::{is_word_char, split_whitespace};

/// `nltk.word_tokenize(text)`.
pub fn word_tokenize(text: &str) -> Vec<String> {
    punkt::sentences(text)
        .into_iter()
        .flat_map(|(a, b)| treebank(&text[a..b]))
        .collect()
}

struct Rule(Regex, &'static str);

fn rules(list: &[(&str, &'static str)]) -> Vec<Rule> {
    list.iter()
        .map(|(p, r)| Rule(Regex::new(p).expect("valid regex"), r))
        .collect()
}

static STARTING: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    rules(&[
        (r"([«“‘„]|[`]+)", " $1 "),
        (r#"^""#, "``"),
        (r"(``)", " $1 "),
        (r#"([ \(\[{<])("|'{2})"#, "$1 `` "),
    ])
});

static PUNCTUATION: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    rules(&[
        (
            r#"([^\.])(\.)([\]\)}>"'»”’ ]*)[\s\x1c-\x1f]*$"#,
            "$1 $2 $3 ",
        ),
        (r"([:,])([^\d])", " $1 $2"),
        (r"([:,])$", " $1 "),
        (r"\.{2,}", " $0 "),
        (r"[;@#$%&]", " $0 "),
        (r#"([^\.])(\.)([\]\)}>"']*)[\s\x1c-\x1f]*$"#, "$1 $2$3 "),
        (r"[?!]", " $0 "),
        (r"([^'])' ", "$1 ' "),
        (r"[*]", " $0 "),
        (r"[\]\[\(\)\{\}<>]", " $0 "),
        (r"--", " -- "),
    ])
});

static ENDING: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    rules(&[
        (r"([»”’])", " $1 "),
        (r"''", " '' "),
        (r#"""#, " '' "),
        (r"[\s\x1c-\x1f]+", " "),
        (r"([^' ])('[sS]|'[mM]|'[dD]|') ", "$1 $2 "),
        (r"([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) ", "$1 $2 "),
    ])
});

static CONTRACTIONS: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    rules(&[
        (r"(?i)\b(can)(not)\b", " $1 $2 "),
        (r"(?i)\b(d)('ye)\b", " $1 $2 "),
        (r"(?i)\b(gim)(me)\b", " $1 $2 "),
        (r"(?i)\b(gon)(na)\b", " $1 $2 "),
        (r"(?i)\b(got)(ta)\b", " $1 $2 "),
        (r"(?i)\b(lem)(me)\b", " $1 $2 "),
        (r"(?i)\b(more)('n)\b", " $1 $2 "),
        // `(?=\s)` in nltk: the whitespace is matched and put back.
        (r"(?i)\b(wan)(na)([\s\x1c-\x1f])", " $1 $2 $3"),
        (r"(?i) ('t)(is)\b", " $1 $2 "),
        (r"(?i) ('t)(was)\b", " $1 $2 "),
    ])
});

fn apply(text: String, rules: &[Rule]) -> String {
    rules.iter().fold(text, |t, Rule(re, with)| {
        match re.replace_all(&t, *with) {
            // No match: keep the text without copying it.
            std::borrow::Cow::Borrowed(_) => t,
            std::borrow::Cow::Owned(changed) => changed,
        }
    })
}

/// nltk's `(?i)(\')(?!re|ve|ll|m|t|s|d|n)(\w)\b` → `\1 \2`: a quote before
/// a one-letter word that is no clitic is set apart.
fn split_quoted_letter(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len() + 8);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' && i + 1 < chars.len() {
            let next = chars[i + 1];
            let lower = |k: usize| chars.get(k).map(|c| c.to_ascii_lowercase());
            let clitic = matches!(
                (lower(i + 1), lower(i + 2)),
                (Some('r' | 'v'), Some('e')) | (Some('l'), Some('l'))
            ) || matches!(lower(i + 1), Some('m' | 't' | 's' | 'd' | 'n'));
            let boundary_after = chars.get(i + 2).is_none_or(|&c| !is_word_char(c));
            if !clitic && is_word_char(next) && boundary_after {
                out.push('\'');
                out.push(' ');
                out.push(next);
                i += 2;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    out
}

/// nltk's `NLTKWordTokenizer.tokenize` on one sentence.
fn treebank(sentence: &str) -> Vec<String> {
    let text = apply(sentence.to_string(), &STARTING);
    let text = split_quoted_letter(&text);
    let text = apply(text, &PUNCTUATION);
    let text = apply(format!(" {text} "), &ENDING);
    let text = apply(text, &CONTRACTIONS);
    split_whitespace(&text).map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_follow_nltk() {
        assert_eq!(
            word_tokenize(
                "Good muffins cost $3.88\nin New York.  Please buy me two of them.\nThanks."
            ),
            [
                "Good", "muffins", "cost", "$", "3.88", "in", "New", "York", ".", "Please", "buy",
                "me", "two", "of", "them", ".", "Thanks", "."
            ]
        );
        assert_eq!(
            word_tokenize("I DON'T think JOHN'S car, \"the BIG one\", CANNOT go."),
            [
                "I", "DO", "N'T", "think", "JOHN", "'S", "car", ",", "``", "the", "BIG", "one",
                "''", ",", "CAN", "NOT", "go", "."
            ]
        );
    }
}
