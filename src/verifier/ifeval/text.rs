//! Python's string semantics, which IFEval's instructions are defined in:
//! `str.isspace`/`strip`/`split()`, `str.isupper`/`islower`, `str.lower`,
//! and the `re` module's `\w` (letters and numbers of every script, not the
//! combining marks Rust's `\w` also takes: `नमस्ते दुनिया` is five words).

use std::sync::LazyLock;

use regex::Regex;

/// Python's `\w+`: runs of letters (`L*`), numbers (`N*`) and `_`.
pub static WORDS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[\p{L}\p{N}_]+").expect("valid regex"));

static WORD_CHAR: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[\p{L}\p{N}_]$").expect("valid regex"));

static DECIMAL: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^\p{Nd}$").expect("valid regex"));

/// Whether `c` matches Python's `\d` (a decimal digit of any script).
pub fn is_decimal(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_digit();
    }
    let mut buf = [0u8; 4];
    DECIMAL.is_match(c.encode_utf8(&mut buf))
}

static TITLECASE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^\p{Lt}$").expect("valid regex"));

/// Whether `c` matches Python's `\w` (`str.isalnum()` or `_`).
pub fn is_word_char(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphanumeric() || c == '_';
    }
    let mut buf = [0u8; 4];
    WORD_CHAR.is_match(c.encode_utf8(&mut buf))
}

/// Python's `str.isspace()` for one character (also what `\s`, `strip()`
/// and `split()` use): Unicode `White_Space` plus the information
/// separators U+001C–U+001F.
pub fn is_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `str.strip()`.
pub fn strip(s: &str) -> &str {
    s.trim_matches(is_space)
}

/// Python's `str.split()` with no argument.
pub fn split_whitespace(s: &str) -> impl Iterator<Item = &str> {
    s.split(is_space).filter(|w| !w.is_empty())
}

fn is_titlecase(c: char) -> bool {
    if c.is_ascii() {
        return false;
    }
    let mut buf = [0u8; 4];
    TITLECASE.is_match(c.encode_utf8(&mut buf))
}

/// Whether `s` has a cased character and every cased one is `wanted`
/// (none `other`, none title case): `str.isupper`/`str.islower`.
fn all_cased(s: &str, wanted: fn(char) -> bool, other: fn(char) -> bool) -> bool {
    let mut cased = false;
    for c in s.chars() {
        if other(c) || is_titlecase(c) {
            return false;
        }
        cased |= wanted(c);
    }
    cased
}

/// Python's `str.isupper()`: at least one cased character and no lower- or
/// title-case one.
pub fn is_upper(s: &str) -> bool {
    all_cased(s, char::is_uppercase, char::is_lowercase)
}

/// Python's `str.islower()`: at least one cased character and no upper- or
/// title-case one.
pub fn is_lower(s: &str) -> bool {
    all_cased(s, char::is_lowercase, char::is_uppercase)
}

/// Python's `str.lower()`.
pub fn lower(s: &str) -> String {
    s.to_lowercase()
}

/// Python's `len(re.findall(r"\w+", text))`, which is nltk's
/// `RegexpTokenizer(r"\w+")` count IFEval's word limits use.
pub fn count_words(text: &str) -> usize {
    WORDS.find_iter(text).count()
}

/// Python's `\s` as a character class for the `regex` crate.
pub const SPACE_CLASS: &str = r"[\s\x1c-\x1f]";

/// A pattern IFEval gives to Python's `re` (a keyword, a section marker)
/// as `regex` crate syntax: the pattern itself when the crate reads it (with
/// `\w` and `\s` translated to Python's meanings), else its literal text.
pub fn python_source(pattern: &str) -> String {
    let translated = pattern
        .replace(r"\w", r"[\p{L}\p{N}_]")
        .replace(r"\s", SPACE_CLASS);
    if Regex::new(&translated).is_ok() {
        translated
    } else {
        regex::escape(pattern)
    }
}

/// Compiles [`python_source`] of `pattern`.
pub fn python_pattern(pattern: &str, ignore_case: bool) -> Regex {
    regex::RegexBuilder::new(&python_source(pattern))
        .case_insensitive(ignore_case)
        .build()
        .unwrap_or_else(|_| Regex::new(&regex::escape(pattern)).expect("escaped text compiles"))
}

/// Whether `re.search(r"\b" + word + r"\b", text, re.I)` finds a match,
/// with Python's word boundaries (`\w` as [`is_word_char`]).
pub fn contains_word(text: &str, word: &Regex) -> bool {
    let boundary = |at: usize| {
        let before = text[..at].chars().next_back().is_some_and(is_word_char);
        let after = text[at..].chars().next().is_some_and(is_word_char);
        before != after
    };
    let mut from = 0;
    while from <= text.len() {
        let Some(m) = word.find_at(text, from) else {
            return false;
        };
        if boundary(m.start()) && boundary(m.end()) {
            return true;
        }
        // The next possible start: one character after this one.
        from = m.start() + text[m.start()..].chars().next().map_or(1, char::len_utf8);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_count_as_python_counts_them() {
        assert_eq!(count_words("नमस्ते दुनिया"), 5);
        assert_eq!(count_words("Hello, world! It's 3.14 o'clock_now"), 8);
        assert_eq!(count_words("日本語のテキスト"), 1);
        assert_eq!(count_words("①②③ ½"), 2);
        assert_eq!(count_words(""), 0);
    }

    #[test]
    fn case_predicates_follow_python() {
        assert!(is_upper("HELLO, WORLD 123"));
        assert!(!is_upper("123 !"));
        assert!(!is_upper("HELLo"));
        assert!(is_upper("ΑΒΓ"));
        assert!(!is_upper("ǅ"));
        assert!(is_lower("hello ß 123"));
        assert!(!is_lower("ǅa"));
        assert!(!is_lower("..."));
        // Modifier letters with Other_Lowercase are lower case.
        assert!(is_lower("ʰ"));
    }

    #[test]
    fn strip_and_split_use_python_whitespace() {
        assert_eq!(strip("\u{1f} x \u{3000}"), "x");
        assert_eq!(
            split_whitespace("a\u{1c}b  c").collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
    }

    #[test]
    fn word_boundaries_are_pythons() {
        let re = python_pattern("cat", true);
        assert!(contains_word("A CAT.", &re));
        assert!(!contains_word("concatenate", &re));
        assert!(contains_word("concatenate, cat", &re));
        assert!(!contains_word("cat_s", &re));
        // A pattern the regex crate cannot read is literal text.
        let re = python_pattern("C++", false);
        assert!(re.is_match("I like C++"));
    }
}
