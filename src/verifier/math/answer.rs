//! Answer structures and their equality: matrices, tuples and intervals
//! (ordered, bracket kinds significant), sets and comma lists such as roots
//! (unordered), unions of intervals, and single values (numbers, expressions,
//! text).

use super::expr;
use super::normalize::{normalize, strip_percent};

/// How two answers are compared.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Compare {
    /// Relative tolerance for numbers and expression values.
    pub rel_tol: f64,
    /// Also treat `50%` as equal to `0.5` (it always equals `50`).
    pub percent: bool,
}

impl Default for Compare {
    fn default() -> Self {
        Self {
            rel_tol: 1e-6,
            percent: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Shape {
    Matrix(Vec<Vec<String>>),
    Seq(char, char, Vec<String>),
    Unordered(Vec<String>),
    Single(String),
}

/// Splits at top-level occurrences of `sep` (outside any bracket).
fn split_top(s: &str, sep: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut last = 0;
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth -= 1,
            _ => {
                // `sep` is ASCII, so a byte match is always at a char boundary.
                if depth == 0 && bytes[i..].starts_with(sep.as_bytes()) {
                    out.push(s[last..i].trim().to_string());
                    i += sep.len();
                    last = i;
                    continue;
                }
            }
        }
        i += 1;
    }
    out.push(s[last..].trim().to_string());
    out
}

/// Whether the bracket opening at byte 0 closes at the last byte.
fn encloses(s: &str) -> bool {
    let mut depth = 0i32;
    for (i, b) in s.bytes().enumerate() {
        match b {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => {
                depth -= 1;
                if depth == 0 && i + 1 != s.len() {
                    return false;
                }
            }
            _ => {}
        }
    }
    depth == 0
}

fn shape(s: &str) -> Shape {
    let s = s.trim();
    for env in ["pmatrix", "bmatrix", "Bmatrix", "vmatrix", "matrix"] {
        let begin = format!("\\begin{{{env}}}");
        let end = format!("\\end{{{env}}}");
        if let (Some(b), Some(e)) = (s.find(&begin), s.rfind(&end))
            && b + begin.len() <= e
        {
            let body = &s[b + begin.len()..e];
            let rows = body
                .split("\\\\")
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(|r| r.split('&').map(|c| c.trim().to_string()).collect())
                .collect();
            return Shape::Matrix(rows);
        }
    }
    let unions = split_top(s, "\\cup");
    if unions.len() > 1 {
        return Shape::Unordered(unions);
    }
    if let Some(inner) = s.strip_prefix("\\{").and_then(|r| r.strip_suffix("\\}")) {
        return Shape::Unordered(split_top(inner, ","));
    }
    let first = s.chars().next().unwrap_or(' ');
    let last = s.chars().last().unwrap_or(' ');
    if matches!(first, '(' | '[') && matches!(last, ')' | ']') && s.len() >= 2 && encloses(s) {
        let items = split_top(&s[1..s.len() - 1], ",");
        if items.len() > 1 {
            return Shape::Seq(first, last, items);
        }
    }
    let items = split_top(s, ",");
    if items.len() > 1 {
        return Shape::Unordered(items);
    }
    Shape::Single(s.to_string())
}

/// Whether two answers (as written) are equal.
pub fn equal(a: &str, b: &str, cmp: &Compare) -> bool {
    let (a, b) = (normalize(a), normalize(b));
    if a == b {
        return true;
    }
    // Answers are short; a long one is compared as written (this also keeps
    // the structural comparison's cost bounded).
    if a.len() > expr::MAX_LEN || b.len() > expr::MAX_LEN {
        return false;
    }
    match (shape(&a), shape(&b)) {
        (Shape::Matrix(x), Shape::Matrix(y)) => {
            x.len() == y.len()
                && x.iter().zip(&y).all(|(r, s)| {
                    r.len() == s.len() && r.iter().zip(s).all(|(p, q)| equal(p, q, cmp))
                })
        }
        (Shape::Seq(o1, c1, x), Shape::Seq(o2, c2, y)) => {
            o1 == o2
                && c1 == c2
                && x.len() == y.len()
                && x.iter().zip(&y).all(|(p, q)| equal(p, q, cmp))
        }
        (Shape::Unordered(x), Shape::Unordered(y)) => {
            if x.len() != y.len() {
                return false;
            }
            let mut used = vec![false; y.len()];
            x.iter().all(|p| {
                let found = y
                    .iter()
                    .enumerate()
                    .find(|(j, q)| !used[*j] && equal(p, q, cmp))
                    .map(|(j, _)| j);
                found.map(|j| used[j] = true).is_some()
            })
        }
        (Shape::Single(x), Shape::Single(y)) => single_equal(&x, &y, cmp),
        _ => false,
    }
}

fn single_equal(a: &str, b: &str, cmp: &Compare) -> bool {
    let (a, pa) = strip_percent(a);
    let (b, pb) = strip_percent(b);
    let compact = |s: &str| {
        s.chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_lowercase()
    };
    // A dropped percent sign is not a different answer: `50\%` = `50`.
    if compact(&a) == compact(&b) {
        return true;
    }
    let (Some(x), Some(y)) = (expr::parse(&a), expr::parse(&b)) else {
        return false;
    };
    if expr::equivalent(&x, &y, cmp.rel_tol) {
        return true;
    }
    if cmp.percent && pa != pb && x.vars().is_empty() && y.vars().is_empty() {
        let (vx, vy) = (x.eval(&|_| f64::NAN), y.eval(&|_| f64::NAN));
        let (vx, vy) = if pa {
            (vx / 100.0, vy)
        } else {
            (vx, vy / 100.0)
        };
        return expr::close(vx, vy, cmp.rel_tol);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eq(a: &str, b: &str) -> bool {
        equal(a, b, &Compare::default())
    }

    #[test]
    fn numbers_and_expressions() {
        assert!(eq("18", "18.0"));
        assert!(eq("1,000", "1000"));
        assert!(eq(r"\frac{1}{3}", "1/3"));
        assert!(eq(r"\dfrac{\sqrt{3}}{2}", r"\frac{\sqrt3}{2}"));
        assert!(eq(r"2\sqrt{2}", r"\sqrt{8}"));
        assert!(eq(r"\frac{\pi}{2}", r"0.5\pi"));
        assert!(eq("x = 5", "5"));
        assert!(eq(r"10\text{ cm}", "10"));
        assert!(eq(r"90^\circ", "90"));
        assert!(!eq("18", "19"));
        assert!(!eq(r"\frac{1}{3}", "0.333"));
    }

    #[test]
    fn tuples_and_intervals_are_ordered_with_brackets() {
        assert!(eq(
            r"\left( 3, \frac{\pi}{2} \right)",
            r"(3, \frac{\pi}{2})"
        ));
        assert!(!eq("(3, 2)", "(2, 3)"));
        assert!(eq("[2, 5)", "[2,5)"));
        assert!(!eq("[2, 5)", "(2, 5)"));
        assert!(eq(r"(-\infty, 2] \cup (3, 4)", r"(3,4) \cup (-\infty,2]"));
    }

    #[test]
    fn sets_and_roots_are_unordered() {
        assert!(eq(r"\{1, 2, 3\}", r"\{3, 1, 2\}"));
        assert!(eq("1, -2", "-2, 1"));
        assert!(eq(r"\frac12, 3", r"3, 0.5"));
        assert!(!eq("1, 2", "1, 2, 3"));
        assert!(!eq("1, 1", "1, 2"));
    }

    #[test]
    fn matrices() {
        let a = r"\begin{pmatrix} 1 & \frac12 \\ 0 & 3 \end{pmatrix}";
        let b = r"\begin{pmatrix}1&0.5\\0&3\end{pmatrix}";
        assert!(eq(a, b));
        assert!(!eq(a, r"\begin{pmatrix}1&0.5\\3&0\end{pmatrix}"));
    }

    #[test]
    fn text_answers() {
        assert!(eq(r"\text{Monday}", "monday"));
        assert!(eq(r"\text{(C)}", "(C)"));
        assert!(!eq("Monday", "Tuesday"));
    }

    #[test]
    fn percent_only_when_configured() {
        assert!(eq(r"50\%", "50"));
        assert!(!eq(r"50\%", "0.5"));
        let pct = Compare {
            percent: true,
            ..Compare::default()
        };
        assert!(equal(r"50\%", "0.5", &pct));
        assert!(equal("0.5", r"50\%", &pct));
    }
}
