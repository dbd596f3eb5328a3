//! String normalization of math answers before comparison: delimiters,
//! LaTeX spelling variants, spacing, units, degrees, currency, thousands
//! separators, `x = 5` → `5`.

use std::sync::LazyLock;

use regex::Regex;

static TEXT_WRAPPER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\\(?:text|textbf|textit|mathrm|mathbf|mbox|operatorname)\s*\{([^{}]*)\}")
        .expect("valid regex")
});
static THOUSANDS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^-?\d{1,3}(?:,\d{3})+(?:\.\d+)?$").expect("valid regex"));
static LHS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:[a-zA-Z](?:_\{?\w+\}?)?|\\[a-zA-Z]+)\s*=\s*").expect("valid regex")
});
static NUMBER_WITH_UNIT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(-?[\d.,]+(?:\s*/\s*\d+)?)\s+(?:[a-zA-Z]+\.?\s*){1,3}$").expect("valid regex")
});

/// Normalizes an answer for comparison. Idempotent.
pub fn normalize(answer: &str) -> String {
    let mut s = answer.trim().to_string();
    // Math delimiters and display wrappers.
    for (from, to) in [
        ("\\(", ""),
        ("\\)", ""),
        ("\\[", ""),
        ("\\]", ""),
        ("\\$", ""),
        ("$", ""),
        ("\\dfrac", "\\frac"),
        ("\\tfrac", "\\frac"),
        ("\\left", ""),
        ("\\right", ""),
        ("\\displaystyle", ""),
        ("\\!", ""),
        ("\\,", ""),
        ("\\;", ""),
        ("\\:", ""),
        ("\\quad", " "),
        ("\\qquad", " "),
        ("~", " "),
        ("^{\\circ}", ""),
        ("^\\circ", ""),
        ("°", ""),
        ("\\circ", ""),
    ] {
        s = s.replace(from, to);
    }
    // \text{cm} and friends: keep the words, the unit rule below drops them.
    for _ in 0..4 {
        let next = TEXT_WRAPPER.replace_all(&s, "$1").into_owned();
        if next == s {
            break;
        }
        s = next;
    }
    let mut s = s.trim().trim_end_matches(['.', '。']).trim().to_string();
    if let Some(m) = LHS.find(&s)
        && !s[m.end()..].contains('=')
    {
        s = s[m.end()..].to_string();
    }
    if let Some(c) = NUMBER_WITH_UNIT.captures(&s) {
        s = c[1].to_string();
    }
    let s = s.trim().to_string();
    if THOUSANDS.is_match(&s) {
        return s.replace(',', "");
    }
    s
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
            (r"90^\circ", "90"),
            (r"90^{\circ}", "90"),
            (r"\$18.50", "18.50"),
            ("18.", "18"),
            ("x = 5", "5"),
            (r"y=\frac{1}{2}", r"\frac{1}{2}"),
            ("1,000", "1000"),
            ("-12,345.5", "-12345.5"),
            ("1, 2, 3", "1, 2, 3"),
            ("5 dollars", "5"),
            (r"\text{Monday}", "Monday"),
            (r"3\,000", "3000"),
            (r"\mbox{(C)}", "(C)"),
        ];
        for (input, want) in cases {
            assert_eq!(normalize(input), want, "{input}");
            assert_eq!(normalize(&normalize(input)), want, "idempotent: {input}");
        }
    }

    #[test]
    fn inequalities_survive() {
        assert_eq!(normalize(r"x \leq 3"), r"x \leq 3");
        assert_eq!(normalize(r"x \ge 3"), r"x \ge 3");
    }

    #[test]
    fn percent() {
        assert_eq!(strip_percent(r"50\%"), ("50".to_string(), true));
        assert_eq!(strip_percent("12.5%"), ("12.5".to_string(), true));
        assert_eq!(strip_percent("12"), ("12".to_string(), false));
    }
}
