//! Whether a program's standard output matches a test's expected output.
//!
//! [`Compare::Lines`] (the default) reads both the way LiveCodeBench does:
//! surrounding blank space dropped, then line by line with each line's own
//! surrounding space dropped; lines that differ as text still match when
//! they hold the same count of whitespace-separated tokens and each pair is
//! the same text or the same number (within a relative and absolute
//! tolerance of 1e-6, so `0.5` matches `0.50000000` and `1e3` matches
//! `1000`). [`Compare::Exact`] wants the same bytes.

use serde::Deserialize;

/// How an output is compared with the expected one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compare {
    /// Line by line, stripped, numbers as numbers.
    #[default]
    Lines,
    /// Byte for byte.
    Exact,
}

/// Relative and absolute tolerance of numbers.
const TOLERANCE: f64 = 1e-6;

impl Compare {
    /// Whether `got` matches `expected`.
    pub fn matches(self, expected: &str, got: &str) -> bool {
        match self {
            Compare::Exact => expected == got,
            Compare::Lines => {
                let (e, g) = (lines(expected), lines(got));
                e.len() == g.len() && e.iter().zip(&g).all(|(a, b)| line_matches(a, b))
            }
        }
    }
}

/// The lines of an output without surrounding blank space, each stripped
/// (Windows line ends included).
fn lines(s: &str) -> Vec<&str> {
    let s = s.trim();
    if s.is_empty() {
        return Vec::new();
    }
    s.lines().map(str::trim).collect()
}

fn line_matches(expected: &str, got: &str) -> bool {
    if expected == got {
        return true;
    }
    let (e, g): (Vec<&str>, Vec<&str>) = (
        expected.split_whitespace().collect(),
        got.split_whitespace().collect(),
    );
    e.len() == g.len() && e.iter().zip(&g).all(|(a, b)| a == b || same_number(a, b))
}

fn same_number(a: &str, b: &str) -> bool {
    match (number(a), number(b)) {
        (Some(x), Some(y)) => x == y || (x - y).abs() <= TOLERANCE * x.abs().max(y.abs()).max(1.0),
        _ => false,
    }
}

/// A token read as a finite number (`inf` and `nan` are words).
fn number(s: &str) -> Option<f64> {
    s.parse::<f64>().ok().filter(|x| x.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_stripped_and_numbers_compared_as_numbers() {
        let m = |e: &str, g: &str| Compare::Lines.matches(e, g);
        assert!(m("3\n1 2 3\n", "3\n1 2 3"));
        assert!(m("YES\n", "  YES  \r\n\n"));
        assert!(m("0.5\n", "0.50000000\n"));
        assert!(m("1000", "1e3"));
        assert!(m("0.3333333", "0.33333333333"));
        assert!(m("", "\n  \n"));
        assert!(!m("1 2 3", "1 2"));
        assert!(!m("YES", "yes"));
        assert!(!m("0.5", "0.51"));
        assert!(!m("1\n2", "1 2"));
        assert!(!m("inf", "nan"));
        assert!(!m("4", ""));
        // Spacing inside a line is not content.
        assert!(m("a  b", "a b"));
    }

    #[test]
    fn exact_wants_the_same_bytes() {
        assert!(Compare::Exact.matches("1 2\n", "1 2\n"));
        assert!(!Compare::Exact.matches("1 2\n", "1 2"));
        assert!(!Compare::Exact.matches("0.5", "0.50"));
    }
}
