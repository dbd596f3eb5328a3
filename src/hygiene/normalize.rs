//! Text normalisation shared by decontamination, deduplication and the
//! response-similarity ceiling, so "the same words" means one thing
//! everywhere.
//!
//! Text is lowercased; `$` and the LaTeX spacing and sizing commands (`\,`
//! `\;` `\:` `\!` `\ ` `~` `\quad` `\qquad` `\left` `\right`
//! `\displaystyle` `\textstyle`), environment markup (`\begin{array}{cc}`,
//! `\end{array}`) and Asymptote diagrams (`[asy]…[/asy]`) are removed, and
//! `\dfrac`/`\tfrac` read as
//! `\frac`; punctuation, brackets and math symbols are separators. A word
//! is then a run of letters and digits or a LaTeX command (`\frac`), so
//! `x+y = 3` and `X + y=3.` are the same words (`x y 3`). Symbols are not
//! words so that a run of n words always spans n pieces of content, not a
//! formula's operators.

use std::ops::Range;

/// LaTeX commands that only space or size: dropped.
const DROPPED: &[&str] = &[
    "quad",
    "qquad",
    "left",
    "right",
    "displaystyle",
    "textstyle",
    "big",
    "bigl",
    "bigr",
    "Big",
    "Bigl",
    "Bigr",
];

/// The normalised words of a text: `text` holds them separated by single
/// spaces and `words` their byte ranges in it.
#[derive(Debug, Default, Clone)]
pub struct Words {
    /// The normalised text.
    pub text: String,
    /// Byte range of each word in `text`.
    pub words: Vec<Range<usize>>,
}

impl Words {
    /// Normalises `input` into `self`, reusing its buffers. Asymptote
    /// diagrams (`[asy]…[/asy]`) are code, not text: they are skipped, so
    /// boilerplate such as `label("$A$",A,SW);` never makes problems match.
    pub fn fill(&mut self, input: &str) {
        self.text.clear();
        self.words.clear();
        let mut rest = input;
        while let Some(start) = rest.find("[asy]") {
            self.append(&rest[..start]);
            rest = match rest[start..].find("[/asy]") {
                Some(end) => &rest[start + end + "[/asy]".len()..],
                None => "",
            };
        }
        self.append(rest);
    }

    fn append(&mut self, input: &str) {
        let mut chars = input.chars().peekable();
        let mut start: Option<usize> = None;
        while let Some(c) = chars.next() {
            if c.is_ascii_alphanumeric() || (!c.is_ascii() && c.is_alphanumeric()) {
                if start.is_none() {
                    self.open();
                    start = Some(self.text.len());
                }
                if c.is_ascii() {
                    self.text.push(c.to_ascii_lowercase());
                } else {
                    self.text.extend(c.to_lowercase());
                }
                continue;
            }
            self.close(&mut start);
            if c == '\\' {
                match chars.peek() {
                    Some(n) if n.is_ascii_alphabetic() => {
                        let mut name = String::new();
                        while let Some(&n) = chars.peek() {
                            if !n.is_ascii_alphabetic() {
                                break;
                            }
                            name.push(n);
                            chars.next();
                        }
                        if DROPPED.contains(&name.as_str()) {
                            continue;
                        }
                        if name == "begin" || name == "end" {
                            // Environment markup (`\begin{array}{cccc}`) is
                            // layout: the name and a column spec go too.
                            for _ in 0..2 {
                                if chars.peek() != Some(&'{') {
                                    break;
                                }
                                for n in chars.by_ref() {
                                    if n == '}' {
                                        break;
                                    }
                                }
                            }
                            continue;
                        }
                        let name = match name.as_str() {
                            "dfrac" | "tfrac" => "frac".to_string(),
                            _ => name.to_lowercase(),
                        };
                        self.open();
                        let s = self.text.len();
                        self.text.push('\\');
                        self.text.push_str(&name);
                        self.words.push(s..self.text.len());
                    }
                    // `\,`, `\;`, `\ `, `\{`: spacing or an escaped bracket.
                    Some(_) => {
                        chars.next();
                    }
                    None => {}
                }
            }
        }
        self.close(&mut start);
    }

    /// Number of words.
    pub fn len(&self) -> usize {
        self.words.len()
    }

    /// Whether there is no word.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// Word `i`.
    pub fn word(&self, i: usize) -> &str {
        &self.text[self.words[i].clone()]
    }

    /// Words `i..i + n` as text.
    pub fn span(&self, i: usize, n: usize) -> &str {
        &self.text[self.words[i].start..self.words[i + n - 1].end]
    }

    /// A 64-bit hash of each word.
    pub fn hashes(&self, out: &mut Vec<u64>) {
        out.clear();
        out.extend((0..self.len()).map(|i| word_hash(self.word(i))));
    }

    fn open(&mut self) {
        if !self.text.is_empty() {
            self.text.push(' ');
        }
    }

    fn close(&mut self, start: &mut Option<usize>) {
        if let Some(s) = start.take() {
            self.words.push(s..self.text.len());
        }
    }
}

/// A map keyed by values that are hashes already (splitmix64 outputs): the
/// key is its own hash, so lookups skip SipHash.
pub type HashKeyed<V> = std::collections::HashMap<u64, V, std::hash::BuildHasherDefault<KeyIsHash>>;

/// [`HashKeyed`] with 32-bit keys (half the memory per entry).
pub type HashKeyed32<V> =
    std::collections::HashMap<u32, V, std::hash::BuildHasherDefault<KeyIsHash>>;

/// The [`std::hash::Hasher`] of [`HashKeyed`].
#[derive(Debug, Default, Clone, Copy)]
pub struct KeyIsHash(u64);

impl std::hash::Hasher for KeyIsHash {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = mix64(self.0 ^ u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }

    /// A 32-bit key spread over all 64 bits (the table reads the top ones).
    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// FNV-1a over a word's bytes, finished with a multiply-xorshift so nearby
/// words spread over all 64 bits.
pub fn word_hash(word: &str) -> u64 {
    mix64(crate::data::validate::fnv1a64(word.as_bytes()))
}

/// A 64-bit finaliser (splitmix64's).
pub fn mix64(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The multiplier of the polynomial hash of a word run.
const RUN_BASE: u64 = 0x100_0000_01b3;

/// The hash of a run of word hashes, order-sensitive: the polynomial
/// Σ wᵢ·Bⁿ⁻¹⁻ⁱ (wrapping), finished by [`mix64`]. [`shingles`] computes the
/// same value for every window in one rolling pass.
pub fn ngram_hash(hashes: &[u64]) -> u64 {
    mix64(
        hashes
            .iter()
            .fold(0u64, |h, &w| h.wrapping_mul(RUN_BASE).wrapping_add(w)),
    )
}

/// Hashes of every run of `n` consecutive words, in order (the whole text
/// as one run when it has fewer than `n` words but at least one); each
/// equals [`ngram_hash`] of its run.
pub fn shingles(hashes: &[u64], n: usize, out: &mut Vec<u64>) {
    out.clear();
    if hashes.is_empty() {
        return;
    }
    if hashes.len() < n {
        out.push(ngram_hash(hashes));
        return;
    }
    // B^(n-1): what the word leaving the window was multiplied by.
    let top = (1..n).fold(1u64, |p, _| p.wrapping_mul(RUN_BASE));
    let mut h = hashes[..n]
        .iter()
        .fold(0u64, |h, &w| h.wrapping_mul(RUN_BASE).wrapping_add(w));
    out.push(mix64(h));
    for i in n..hashes.len() {
        h = h
            .wrapping_sub(hashes[i - n].wrapping_mul(top))
            .wrapping_mul(RUN_BASE)
            .wrapping_add(hashes[i]);
        out.push(mix64(h));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The normalised text of `input` (words separated by single spaces).
    fn normalize(input: &str) -> String {
        let mut w = Words::default();
        w.fill(input);
        w.text
    }

    #[test]
    fn case_whitespace_punctuation_and_latex_spacing_are_ignored() {
        let a = normalize("What is  $x+y$, if x = 2 and y=3?");
        let b = normalize("what is x + y if X=2 AND y = 3");
        assert_eq!(a, b);
        assert_eq!(a, "what is x y if x 2 and y 3");
        assert_eq!(
            normalize(r"Find $\dfrac{1}{2}\,\cdot\left(4\right)$."),
            normalize(r"find \frac{1}{2} \cdot (4)")
        );
        assert_eq!(normalize(r"a\quad b~c"), "a b c");
        assert_eq!(normalize("Janet’s ducks"), "janet s ducks");
        assert_eq!(normalize("Ünïcode ÀB"), "ünïcode àb");
        assert_eq!(normalize("  "), "");
        assert_eq!(
            normalize(
                "Find $AB$.\n[asy]\ndraw(A--B);\nlabel(\"$A$\",A,SW);\n[/asy]\nGive it in cm."
            ),
            "find ab give it in cm"
        );
        assert_eq!(normalize("x [asy]draw(A--B);"), "x");
        assert_eq!(
            normalize(
                r"A = \begin{array}{cc} 1 & 2 \\ 3 & 4 \end{array} and \begin{pmatrix} x \end{pmatrix}"
            ),
            "a 1 2 3 4 and x"
        );
    }

    #[test]
    fn words_and_spans() {
        let mut w = Words::default();
        w.fill("The sum: 1+2.");
        assert_eq!(w.len(), 4);
        assert_eq!(w.word(2), "1");
        assert_eq!(w.span(1, 3), "sum 1 2");
    }

    #[test]
    fn shingles_of_short_texts_are_the_whole_text() {
        let mut w = Words::default();
        w.fill("two words");
        let mut h = Vec::new();
        w.hashes(&mut h);
        let mut s = Vec::new();
        shingles(&h, 3, &mut s);
        assert_eq!(s.len(), 1);
        w.fill("one two three four five");
        w.hashes(&mut h);
        shingles(&h, 3, &mut s);
        assert_eq!(s.len(), 3);
        assert_ne!(s[0], s[1]);
        // The rolling hashes equal the hash of each window.
        for (i, x) in s.iter().enumerate() {
            assert_eq!(*x, ngram_hash(&h[i..i + 3]));
        }
        shingles(&[], 3, &mut s);
        assert!(s.is_empty());
    }
}
