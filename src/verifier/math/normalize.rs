//! String normalization of math answers before comparison: delimiters,
//! LaTeX spelling variants, spacing, text wrappers and units, degrees,
//! currency, thousands separators, relation symbols, and labels (`x = 5`,
//! `(m, n) = (5, 1)`, `6 \times 7 = 42` → the value on the right).

use std::sync::LazyLock;

use regex::Regex;

use super::expr;

static TEXT_WRAPPER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"\\(?:text|textbf|textit|textrm|textsf|texttt|textnormal|textup|emph|mathrm|mathbf",
        r"|mathit|mathsf|mathnormal|boldsymbol|mbox|operatorname|ang)\s*\{([^{}]*)\}"
    ))
    .expect("valid regex")
});
static THOUSANDS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^-?\d{1,3}(?:(?:,|\s)\d{3})+(?:\.\d+)?$").expect("valid regex"));
/// `14{,}916`, `14 {, }916`, `11,\! 111`: a comma that is only a separator.
static BRACED_COMMA: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(\d)\s*(?:\{\s*,\s*\}|,\\!)\s*(\d)").expect("valid regex"));
/// A value followed by one to three unit words (`240 km`, `12 cm^2`,
/// `7 m/s`, `13 years old`).
static TRAILING_UNITS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(.*?[^\s])\s+((?:[a-zA-Z]+(?:/[a-zA-Z]+)?(?:\^\{?\d\}?)?\.?\s*){1,3})$")
        .expect("valid regex")
});
static DOUBLED_BACKSLASH: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\\\\([a-zA-Z])").expect("valid regex"));
/// `(7,11) or (11,7)`: a list written with words between brackets.
static WORD_BETWEEN_BRACKETS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"([)\]])\s*(?:or|and|,)\s*([(\[])").expect("valid regex"));
/// `x \in [2, 7]`: membership stated, the set is the answer.
static MEMBER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-zA-Z](?:_\{?\w+\}?)?\s*(?:\\in|∈)\s*").expect("valid regex"));
/// `percent`, `pct` and `percentage` after a number are a percent sign.
static PERCENT_WORD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(\d)\s*(?:percent(?:age)?|pct)$").expect("valid regex"));
/// A name on the left of `=`: `x`, `a_1`, `PQ`, `f(x)`, `\theta`, `|AB|`,
/// `\angle ABC`, `x'`, and ratios of names (`V_1:V_2`).
static LABEL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"^(?:(?:[A-Za-z]{1,4}|\\[a-zA-Z]+)(?:_\{?[\w,]+\}?)?'?(?:\([^()=]*\))?",
        r"(?:\s*:\s*(?:[A-Za-z]{1,4}|\\[a-zA-Z]+)(?:_\{?[\w,]+\}?)?)*",
        r"|\|[A-Za-z]{1,4}\||m?\s*\\angle\s*[A-Za-z]{1,3})$"
    ))
    .expect("valid regex")
});
/// LaTeX spellings and what they normalize to, applied in order.
const LATEX_SPELLINGS: &[(&str, &str)] = &[
    ("\\(", ""),
    ("\\)", ""),
    ("\\[", ""),
    ("\\]", ""),
    ("\\$", ""),
    ("\\dfrac", "\\frac"),
    ("\\tfrac", "\\frac"),
    ("\\cfrac", "\\frac"),
    ("\\left", ""),
    ("\\right", ""),
    ("\\displaystyle", ""),
    ("\\!", ""),
    ("\\,", ""),
    ("\\;", ""),
    ("\\:", ""),
    ("\\ ", " "),
    ("\\quad", " "),
    ("\\qquad", " "),
    ("^{\\circ}", ""),
    ("^\\circ", ""),
    ("\\circ", ""),
    ("\\degree", ""),
    ("\\varnothing", "\\emptyset"),
    ("\\{\\}", "\\emptyset"),
    ("+\\infty", "\\infty"),
    ("\\geqslant", "≥"),
    ("\\leqslant", "≤"),
    ("\\neq", "≠"),
    ("\\geq", "≥"),
    ("\\leq", "≤"),
    ("\\lt", "<"),
    ("\\gt", ">"),
];

/// Plain-text spellings (no backslash) and what they normalize to.
const PLAIN_SPELLINGS: &[(&str, &str)] = &[
    ("$", ""),
    ("€", ""),
    ("£", ""),
    ("~", " "),
    ("°", ""),
    (">=", "≥"),
    ("<=", "≤"),
    ("!=", "≠"),
];

/// Words that are math, not units: `2 pi` is not `2`.
const NOT_UNITS: &[&str] = &[
    "pi", "sin", "cos", "tan", "cot", "sec", "csc", "ln", "log", "exp", "and", "or", "sqrt",
    "infty", "i", "e", "x", "y", "z", "n", "k", "t",
];

/// Normalizes an answer for comparison. Idempotent.
pub fn normalize(answer: &str) -> String {
    let mut s = answer.trim().to_string();
    if s.contains("\\\\") {
        // `\\frac`: a backslash doubled by escaping, not a row break.
        s = DOUBLED_BACKSLASH.replace_all(&s, "\\$1").into_owned();
    }
    if s.contains("approx") {
        s = approximation(&s);
    }
    if s.contains(',') {
        s = BRACED_COMMA.replace_all(&s, "$1,$2").into_owned();
    }
    // Math delimiters, display wrappers and spelling variants; a row break
    // `\\` is kept apart so `\\ ` is not read as a `\ ` space.
    if s.contains('\\') {
        s = s.replace("\\\\", "\u{1}");
        for (from, to) in LATEX_SPELLINGS {
            if s.contains(from) {
                s = s.replace(from, to);
            }
        }
        // `\ge`, `\le`, `\ne` only as whole commands (not `\left`, `\neg`…).
        for (cmd, sym) in [("\\ge", "≥"), ("\\le", "≤"), ("\\ne", "≠")] {
            s = replace_command(&s, cmd, sym);
        }
        s = s.replace('\u{1}', "\\\\");
    }
    for (from, to) in PLAIN_SPELLINGS {
        if s.contains(from) {
            s = s.replace(from, to);
        }
    }
    // \text{cm} and friends: keep the words, spaced, so units can go.
    for _ in 0..4 {
        if !s.contains('\\') {
            break;
        }
        let next = TEXT_WRAPPER.replace_all(&s, " $1").into_owned();
        if next == s {
            break;
        }
        s = next;
    }
    let trimmed = s.trim().trim_end_matches(['.', '。']).trim();
    let mut s = if trimmed.contains(char::is_whitespace) {
        collapse_spaces(trimmed)
    } else {
        trimmed.to_string()
    };
    if (s.contains("percent") || s.contains("pct"))
        && let Some(c) = PERCENT_WORD.captures(&s)
    {
        let at = c.get(0).expect("match").start();
        s = format!("{}{}%", &s[..at], &c[1]);
    }
    if s.contains("or") || s.contains("and") {
        s = WORD_BETWEEN_BRACKETS.replace_all(&s, "$1, $2").into_owned();
    }
    if (s.contains("\\in") || s.contains('∈'))
        && let Some(m) = MEMBER.find(&s)
    {
        s = s[m.end()..].to_string();
    }
    if s.contains('=') {
        s = strip_label(&s);
    }
    if let Some(value) = strip_units(&s) {
        s = value;
    }
    if s.contains([',', ' ']) && THOUSANDS.is_match(&s) {
        return s.replace([',', ' '], "");
    }
    s
}

/// `x = \frac13 \approx 0.33` → `x = \frac13`; `x \approx 11` → `11`: the
/// exact value when one is written, else the approximation.
fn approximation(s: &str) -> String {
    let Some(i) = s.find("\\approx") else {
        return s.to_string();
    };
    let (exact, approx) = (s[..i].trim(), s[i + "\\approx".len()..].trim());
    if exact.is_empty() || is_label(exact) {
        approx.to_string()
    } else {
        exact.to_string()
    }
}

/// Replaces the LaTeX command `cmd` where it is not the start of a longer
/// command name.
fn replace_command(s: &str, cmd: &str, with: &str) -> String {
    if !s.contains(cmd) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(cmd) {
        let after = &rest[i + cmd.len()..];
        out.push_str(&rest[..i]);
        if after.starts_with(|c: char| c.is_ascii_alphabetic()) {
            out.push_str(cmd);
        } else {
            out.push_str(with);
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

fn collapse_spaces(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut space = false;
    for c in s.chars() {
        if c.is_whitespace() {
            space = true;
        } else {
            if space && !out.is_empty() {
                out.push(' ');
            }
            space = false;
            out.push(c);
        }
    }
    out
}

/// Whether `s` is a name (`y`, `f(x)`, `a_1`, `PQ`, `\\theta`, `V_1:V_2`)
/// rather than an expression.
pub fn is_label(s: &str) -> bool {
    LABEL.is_match(s.trim())
}

/// `label = value` → `value`, where every part left of the last top-level
/// `=` is a name ([`LABEL`], or a tuple of names) or arithmetic without
/// variables (`6 \times 7 = 42`), and the value itself has no variables (so
/// `y = 2x + 3` stays an equation).
fn strip_label(s: &str) -> String {
    let parts = split_top_eq(s);
    if parts.len() < 2 {
        return s.to_string();
    }
    let (value, names) = parts.split_last().expect("two parts");
    let value = value.trim();
    let is_name = |p: &str| {
        let p = p.trim();
        is_label(p)
            || p.strip_prefix('(')
                .and_then(|r| r.strip_suffix(')'))
                .is_some_and(|inner| inner.split(',').all(is_label))
            || expr::parse(p).is_some_and(|e| e.vars().iter().all(|v| v == "e"))
    };
    if names.iter().all(|p| is_name(p)) && !has_vars(value) {
        return value.to_string();
    }
    s.to_string()
}

/// The parts of `s` between top-level `=` signs (outside brackets; `≤`,
/// `≥` and `≠` are single characters, so they never split here).
pub fn split_top_eq(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut last = 0;
    for (i, b) in s.bytes().enumerate() {
        match b {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth -= 1,
            b'=' if depth == 0 => {
                parts.push(&s[last..i]);
                last = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[last..]);
    parts
}

/// Whether `s` reads as an expression with a variable (other than `e`).
pub fn has_vars(s: &str) -> bool {
    expr::parse(s).is_some_and(|e| e.vars().iter().any(|v| v != "e"))
}

/// A value with trailing unit words, the value alone: `240 km`,
/// `\frac{2}{5} liters`, `12 cm^2`, `5 dollars`. Words that are math
/// (`pi`, `and`, a lone variable) are not units.
fn strip_units(s: &str) -> Option<String> {
    // Only a last word with a letter in it can be a unit.
    let (_, last_word) = s.rsplit_once(' ')?;
    if !last_word.contains(|c: char| c.is_ascii_alphabetic()) {
        return None;
    }
    let c = TRAILING_UNITS.captures(s)?;
    let (value, units) = (c[1].trim(), &c[2]);
    let words: Vec<&str> = units.split_whitespace().collect();
    let plain_number = value
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | ',' | '-' | '/' | ' '));
    let short = |w: &&str| w.chars().take_while(char::is_ascii_alphabetic).count() < 2;
    if !plain_number && words.iter().any(short) {
        return None;
    }
    if words.iter().any(|w| {
        let bare = w.trim_end_matches('.');
        let base = bare.split(['^', '/']).next().unwrap_or(bare);
        NOT_UNITS.contains(&base.to_lowercase().as_str())
    }) {
        return None;
    }
    // The value must itself be a number or an expression with a digit or a
    // command in it (`no solution` is text, not `no` with a unit).
    let mathy = value.contains(|c: char| c.is_ascii_digit() || c == '\\');
    (plain_number || (mathy && expr::parse(value).is_some())).then(|| value.to_string())
}

/// A percent sign at the end, removed: `50\%` → (`50`, true).
pub fn strip_percent(s: &str) -> (String, bool) {
    let t = s.trim();
    for suffix in ["\\%", "%"] {
        if let Some(rest) = t.strip_suffix(suffix) {
            return (rest.trim().to_string(), true);
        }
    }
    (t.to_string(), false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_common_variants() {
        let cases = [
            (r"$\dfrac{1}{2}$", r"\frac{1}{2}"),
            (r"\left( 3, \frac{\pi}{2} \right)", r"( 3, \frac{\pi}{2} )"),
            (r"10\text{ cm}", "10"),
            (r"240\textnormal{ km}", "240"),
            (r"\frac{2}{5} \textbf{liters}", r"\frac{2}{5}"),
            (r"12 \text{ cm}^2", "12"),
            (r"7\,\mathrm{m/s}", "7"),
            (r"90^\circ", "90"),
            (r"90^{\circ}", "90"),
            (r"72\degree", "72"),
            (r"\$18.50", "18.50"),
            ("18.", "18"),
            ("x = 5", "5"),
            (r"y=\frac{1}{2}", r"\frac{1}{2}"),
            ("1,000", "1000"),
            ("2 000", "2000"),
            (r"23{,}415", "23415"),
            (r"11,\! 111,\! 100", "11111100"),
            ("-12,345.5", "-12345.5"),
            ("1, 2, 3", "1, 2, 3"),
            ("5 dollars", "5"),
            (r"\text{Monday}", "Monday"),
            (r"3\,000", "3000"),
            (r"\mbox{(C)}", "(C)"),
            (r"6 \times 7 = 42", "42"),
            ("z = 1 + 1 = 2", "2"),
            ("(m,n)=(5,1)", "(5,1)"),
            ("f(2) = 11", "11"),
            ("28 percent", "28%"),
            (r"x \geq 3", "x ≥ 3"),
            (r"x \ge 3", "x ≥ 3"),
            ("x >= 3", "x ≥ 3"),
            (r"y \neq 1", "y ≠ 1"),
        ];
        for (input, want) in cases {
            assert_eq!(normalize(input), want, "{input}");
            assert_eq!(normalize(&normalize(input)), want, "idempotent: {input}");
        }
    }

    #[test]
    fn equations_and_math_words_stay() {
        assert_eq!(normalize("y = 2x + 3"), "y = 2x + 3");
        assert_eq!(normalize("x^2 + y^2 = 25"), "x^2 + y^2 = 25");
        assert_eq!(normalize("2 pi"), "2 pi");
        assert_eq!(normalize(r"\left\{ x \right\}"), r"\{ x \}");
        assert_eq!(normalize("3 and 4"), "3 and 4");
    }

    #[test]
    fn percent() {
        assert_eq!(strip_percent(r"50\%"), ("50".to_string(), true));
        assert_eq!(strip_percent("12.5%"), ("12.5".to_string(), true));
        assert_eq!(strip_percent("12"), ("12".to_string(), false));
    }
}
