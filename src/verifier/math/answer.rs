//! Answer structures and their equality: matrices, tuples and intervals
//! (ordered, bracket kinds significant), sets and comma lists such as roots
//! (unordered), unions of intervals, labelled lists (`PQ=3, RS=8`),
//! relations (`y ≥ 7`, `2x + 4y = 6`: the same relation up to sides and a
//! constant factor), and single values (numbers, expressions, text).

use std::sync::LazyLock;

use regex::Regex;

use super::expr;
use super::normalize::{has_vars, is_label, normalize, strip_percent};

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
    /// `name = value` items, in order.
    Labelled(Vec<(String, String)>),
    /// Sides and the relations between them, oriented so that `>` and `≥`
    /// never appear (`y ≥ 7` is stored as `7 ≤ y`).
    Relation(Vec<String>, Vec<char>),
    Single(String),
}

/// A `name = value` item of a labelled list.
static LABELLED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^([A-Za-z]{1,4}(?:_\{?\w+\}?)?|\\[a-zA-Z]+)\s*=\s*([^=]+)$").expect("valid regex")
});

/// Matrix environments; `array` carries a column spec (`{cc}`) to skip.
const MATRIX_ENVS: &[&str] = &[
    "pmatrix",
    "bmatrix",
    "Bmatrix",
    "vmatrix",
    "Vmatrix",
    "smallmatrix",
    "matrix",
    "array",
];

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
    if let Some(m) = matrix(s) {
        return m;
    }
    // `\pm`: both signs.
    if let Some(i) = s.find("\\pm") {
        let (before, after) = (&s[..i], &s[i + 3..]);
        return Shape::Unordered(vec![
            format!("{before}+{after}"),
            format!("{before}-{after}"),
        ]);
    }
    let unions = split_top(s, "\\cup");
    if unions.len() > 1 {
        return Shape::Unordered(unions);
    }
    for (open, close) in [("\\{", "\\}"), ("{", "}")] {
        if let Some(inner) = s.strip_prefix(open).and_then(|r| r.strip_suffix(close))
            && (open == "\\{" || encloses(s))
        {
            return Shape::Unordered(list_items(inner));
        }
    }
    let first = s.chars().next().unwrap_or(' ');
    let last = s.chars().last().unwrap_or(' ');
    if matches!(first, '(' | '[') && matches!(last, ')' | ']') && s.len() >= 2 && encloses(s) {
        let inner = &s[1..s.len() - 1];
        let mut items = split_top(inner, ",");
        if items.len() == 1 {
            // `(0;-2;6)`: semicolons separate coordinates in some locales.
            items = split_top(inner, ";");
        }
        if items.len() > 1 {
            return Shape::Seq(first, last, items);
        }
    }
    if let Some(tuples) = assignment_groups(s) {
        return Shape::Unordered(tuples);
    }
    let items = list_items(s);
    if items.len() > 1 {
        let labelled: Vec<(String, String)> = items
            .iter()
            .filter_map(|item| {
                LABELLED
                    .captures(item)
                    .map(|c| (c[1].to_string(), c[2].trim().to_string()))
            })
            .collect();
        if labelled.len() == items.len() {
            return Shape::Labelled(labelled);
        }
        return Shape::Unordered(items);
    }
    if let Some(r) = relation(s) {
        return r;
    }
    Shape::Single(s.to_string())
}

/// Solutions written as assignments, one group per solution: `p=3,q=2;
/// p=5,q=2` → the tuples `(3,2)`, `(5,2)`. Every group must assign the
/// same names in the same order, two or more of them.
fn assignment_groups(s: &str) -> Option<Vec<String>> {
    let groups = split_top(s, ";");
    if groups.len() < 2 {
        return None;
    }
    let mut names: Option<Vec<String>> = None;
    let mut tuples = Vec::with_capacity(groups.len());
    for g in &groups {
        let mut these = Vec::new();
        let mut values = Vec::new();
        for item in split_top(g, ",") {
            let c = LABELLED.captures(item.trim())?;
            these.push(c[1].to_string());
            values.push(c[2].trim().to_string());
        }
        if these.len() < 2 || names.as_ref().is_some_and(|n| *n != these) {
            return None;
        }
        names = Some(these);
        tuples.push(format!("({})", values.join(",")));
    }
    Some(tuples)
}

/// Whether the left side of an equation names one quantity (a single
/// term: `\frac{AB}{CD}`, `xy`, `[ABC]`), not an expression to solve.
fn names_a_quantity(lhs: &str) -> bool {
    let t = lhs.trim();
    !t.is_empty() && !t.contains('+') && !t.get(1..).is_some_and(|r| r.contains('-'))
}

/// The items of a list: separated by top-level `,`, `;`, ` and `, ` or `.
fn list_items(s: &str) -> Vec<String> {
    let mut items = vec![s.to_string()];
    for sep in [",", ";", " and ", " or "] {
        items = items.iter().flat_map(|i| split_top(i, sep)).collect();
    }
    items.retain(|i| !i.is_empty());
    items
}

fn matrix(s: &str) -> Option<Shape> {
    if !s.contains("\\begin{") {
        return None;
    }
    for env in MATRIX_ENVS {
        let begin = format!("\\begin{{{env}}}");
        let end = format!("\\end{{{env}}}");
        let (Some(b), Some(e)) = (s.find(&begin), s.rfind(&end)) else {
            continue;
        };
        let mut body = s.get(b + begin.len()..e)?.trim_start();
        if *env == "array"
            && let Some(rest) = body.strip_prefix('{')
        {
            body = &rest[rest.find('}')? + 1..];
        }
        let rows = body
            .split("\\\\")
            .map(str::trim)
            .filter(|r| !r.is_empty() && *r != "\\hline")
            .map(|r| r.split('&').map(|c| c.trim().to_string()).collect())
            .collect();
        return Some(Shape::Matrix(rows));
    }
    None
}

/// `a < b`, `y ≥ 7`, `1 ≤ |z| ≤ 3/2`, `2x + 4y = 6`, `x ≠ 4`: sides and
/// operators at the top level, oriented to `<`/`≤`. An equation whose left
/// side is a name and right side a constant (`x = 5`) was already reduced
/// to its value by normalization.
fn relation(s: &str) -> Option<Shape> {
    let mut sides = Vec::new();
    let mut ops = Vec::new();
    let mut depth = 0i32;
    let mut last = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            '<' | '>' | '≤' | '≥' | '≠' | '=' if depth == 0 => {
                sides.push(s[last..i].trim().to_string());
                ops.push(c);
                last = i + c.len_utf8();
            }
            _ => {}
        }
    }
    if ops.is_empty() {
        return None;
    }
    sides.push(s[last..].trim().to_string());
    if sides.iter().any(String::is_empty) {
        return None;
    }
    let greater = ops.iter().any(|o| matches!(o, '>' | '≥'));
    let less = ops.iter().any(|o| matches!(o, '<' | '≤'));
    if greater && less {
        return None;
    }
    if greater {
        sides.reverse();
        ops.reverse();
        for o in &mut ops {
            *o = if *o == '>' { '<' } else { '≤' };
        }
    }
    Some(Shape::Relation(sides, ops))
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
        // Sets: any order, a repeated element counted once.
        (Shape::Unordered(x), Shape::Unordered(y)) => {
            let (x, y) = (distinct(x), distinct(y));
            x.len() == y.len() && matching(&x, &y, |p, q| equal(p, q, cmp))
        }
        (Shape::Labelled(x), Shape::Labelled(y)) => {
            x.len() == y.len()
                && matching(&x, &y, |(n, v), (m, w)| {
                    n.eq_ignore_ascii_case(m) && equal(v, w, cmp)
                })
        }
        // A labelled list against the bare values: in order.
        (Shape::Labelled(x), Shape::Unordered(y)) | (Shape::Unordered(y), Shape::Labelled(x)) => {
            x.len() == y.len() && x.iter().zip(&y).all(|((_, v), w)| equal(v, w, cmp))
        }
        (Shape::Relation(sx, ox), Shape::Relation(sy, oy)) => {
            relation_equal(&sx, &ox, &sy, &oy, cmp)
        }
        // A stated equation against a value: `\frac{n(n-3)}{2} = 20` against
        // a gold `20` (the prediction computed the constant), `g(t) = 2t`
        // against `2t` either way (the value of a named equation). A gold
        // equation `a + 3z = 0` is not answered by `0`.
        (Shape::Relation(sides, ops), Shape::Single(gold)) => {
            let value = sides.last().expect("a relation has sides");
            ops.iter().all(|o| *o == '=')
                && (is_label(&sides[0]) || (!has_vars(value) && !has_vars(&gold)))
                && equal(value, &gold, cmp)
        }
        // A gold that names a quantity and gives its value, `\frac{AB}{CD} =
        // \frac{1}{\sqrt{5}}`, is answered by the value; an equation to
        // solve (`a + 3z = 0`: a sum on the left) is not.
        (Shape::Single(pred), Shape::Relation(sides, ops)) => {
            ops == ['=']
                && (is_label(&sides[0]) || (names_a_quantity(&sides[0]) && !has_vars(&sides[1])))
                && equal(&pred, &sides[1], cmp)
        }
        // `-793 < a < 10` is the interval `(-793, 10)`.
        (Shape::Relation(sides, ops), Shape::Seq(open, close, items))
        | (Shape::Seq(open, close, items), Shape::Relation(sides, ops)) => {
            sides.len() == 3
                && items.len() == 2
                && is_label(&sides[1])
                && open == if ops[0] == '<' { '(' } else { '[' }
                && close == if ops[1] == '<' { ')' } else { ']' }
                && equal(&sides[0], &items[0], cmp)
                && equal(&sides[2], &items[1], cmp)
        }
        (Shape::Single(x), Shape::Single(y)) => single_equal(&x, &y, cmp),
        _ => false,
    }
}

/// Whether every item of `x` pairs with its own item of `y`.
fn matching<T>(x: &[T], y: &[T], eq: impl Fn(&T, &T) -> bool) -> bool {
    let mut used = vec![false; y.len()];
    x.iter().all(|p| {
        let found = (0..y.len()).find(|&j| !used[j] && eq(p, &y[j]));
        found.map(|j| used[j] = true).is_some()
    })
}

/// The items with repeats (after normalization) removed, in order.
fn distinct(items: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    items
        .into_iter()
        .filter(|i| seen.insert(normalize(i).replace(' ', "")))
        .collect()
}

/// Two relations are equal when their operators match and either each side
/// is equal, or (two sides) the differences `left − right` are proportional:
/// by any non-zero constant for `=` and `≠`, by a positive one for `<`, `≤`.
fn relation_equal(sx: &[String], ox: &[char], sy: &[String], oy: &[char], cmp: &Compare) -> bool {
    if ox != oy || sx.len() != sy.len() {
        return false;
    }
    if sx.iter().zip(sy).all(|(a, b)| equal(a, b, cmp)) {
        return true;
    }
    if sx.len() != 2 {
        return false;
    }
    let diff = |s: &[String]| {
        Some(expr::Expr::Sub(
            Box::new(expr::parse(&s[0])?),
            Box::new(expr::parse(&s[1])?),
        ))
    };
    let (Some(dx), Some(dy)) = (diff(sx), diff(sy)) else {
        return false;
    };
    let positive = matches!(ox[0], '<' | '≤');
    expr::proportional(&dx, &dy, cmp.rel_tol, positive)
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
    fn relations_up_to_sides_and_factor() {
        assert!(eq(r"y \geq 7", "7 <= y"));
        assert!(eq("2x + 4y = 6", "x + 2y = 3"));
        assert!(eq(r"y = -\frac{1}{2}x + 4", "x + 2y = 8"));
        assert!(!eq("2x + 4y = 6", "x + 2y = 6"));
        // A negative factor flips an inequality.
        assert!(!eq("x + y < 1", "-x - y < -1"));
        assert!(eq("-793 < a < 10", "(-793, 10)"));
        assert!(!eq("x > 3", r"x \geq 3"));
    }

    #[test]
    fn equations_against_values() {
        assert!(eq(r"\frac{n(n-3)}{2} = 20", "20"));
        assert!(eq("g(t) = 2t", "2t"));
        assert!(eq("2t", "g(t) = 2t"));
        // A gold equation is not answered by its constant.
        assert!(!eq("0", "a + 3z = 0"));
    }

    #[test]
    fn labelled_lists() {
        assert!(eq("PQ=3, RS=8", "RS=8, PQ=3"));
        assert!(eq("a = 3, b = 4", "3, 4"));
        assert!(!eq("a = 3, b = 4", "4, 3"));
        assert!(!eq("PQ=8, RS=3", "PQ=3, RS=8"));
        assert!(eq(
            r"p=-1, p=\frac{15}{8}",
            r"p = \frac{15}{8} \text{ and } p = -1"
        ));
    }

    #[test]
    fn matrices() {
        let a = r"\begin{pmatrix} 1 & \frac12 \\ 0 & 3 \end{pmatrix}";
        let b = r"\begin{pmatrix}1&0.5\\0&3\end{pmatrix}";
        assert!(eq(a, b));
        assert!(!eq(a, r"\begin{pmatrix}1&0.5\\3&0\end{pmatrix}"));
        assert!(eq(
            r"\left[\begin{array}{cc} 1 & 2 \\ 3 & 4 \end{array}\right]",
            r"\begin{bmatrix}1&2\\3&4\end{bmatrix}"
        ));
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
