//! The n-gram index of benchmark problems that decontamination checks
//! prompts against: every run of `n` normalised words of every problem,
//! hashed, with the first problem it came from.

use super::normalize::{HashKeyed, Words, shingles};

/// Where an n-gram was first seen, and every benchmark file that has it.
#[derive(Debug, Clone, Copy)]
struct Hit {
    problem: u32,
    files: u64,
}

/// A prompt's overlap with the benchmarks.
#[derive(Debug, Clone, PartialEq)]
pub struct Overlap {
    /// `file:line` (or `file: row N`) of the first matching problem.
    pub problem: String,
    /// The shared words (normalised): a run of `n`, or a whole short
    /// problem.
    pub ngram: String,
    /// Benchmark files (indices into the benchmark list) with any match.
    pub files: Vec<usize>,
}

/// Benchmark problems by n-gram.
#[derive(Debug)]
pub struct NgramIndex {
    n: usize,
    ngrams: HashKeyed<Hit>,
    /// Problems shorter than `n` words, by the hash of their whole text.
    whole: HashKeyed<Hit>,
    /// The word counts of those problems with at least [`MIN_CONTAINED`]
    /// words: a prompt containing such a problem as a run is flagged too.
    short_lengths: std::collections::BTreeSet<usize>,
    problems: Vec<String>,
    hashes: Vec<u64>,
    runs: Vec<u64>,
}

/// At most this many benchmark files (one bit each).
pub const MAX_FILES: usize = 64;

/// A problem shorter than `n` words with at least this many is found
/// inside a longer prompt (a template around `Simplify $\sqrt{242}$.`);
/// shorter ones only when the prompt's text is exactly theirs.
pub const MIN_CONTAINED: usize = 3;

impl NgramIndex {
    /// An empty index of `n`-word runs.
    pub fn new(n: usize) -> Self {
        Self {
            n: n.max(1),
            ngrams: HashKeyed::default(),
            whole: HashKeyed::default(),
            short_lengths: std::collections::BTreeSet::new(),
            problems: Vec::new(),
            hashes: Vec::new(),
            runs: Vec::new(),
        }
    }

    /// Problems indexed.
    pub fn problems(&self) -> usize {
        self.problems.len()
    }

    /// Indexes one problem of benchmark file `file` found at `location`.
    pub fn add(&mut self, file: usize, location: String, words: &Words) {
        if words.is_empty() {
            return;
        }
        let hit = Hit {
            problem: self.problems.len() as u32,
            files: 1 << (file % MAX_FILES),
        };
        self.problems.push(location);
        words.hashes(&mut self.hashes);
        shingles(&self.hashes, self.n, &mut self.runs);
        let map = if words.len() < self.n {
            if words.len() >= MIN_CONTAINED {
                self.short_lengths.insert(words.len());
            }
            &mut self.whole
        } else {
            &mut self.ngrams
        };
        for &key in &self.runs {
            map.entry(key)
                .and_modify(|h| h.files |= hit.files)
                .or_insert(hit);
        }
    }

    /// The overlap of a prompt's words with the benchmarks, if any: a
    /// shared run of `n` words; a problem shorter than `n` (of at least
    /// [`MIN_CONTAINED`] words) found as a run of the prompt; or a problem
    /// with exactly the prompt's words. `runs` is a buffer.
    pub fn check(&self, words: &Words, hashes: &[u64], runs: &mut Vec<u64>) -> Option<Overlap> {
        if words.is_empty() {
            return None;
        }
        let mut first: Option<(Hit, usize, usize)> = None;
        let mut files = 0u64;
        let mut look = |map: &HashKeyed<Hit>, len: usize, runs: &[u64]| {
            for (i, key) in runs.iter().enumerate() {
                if let Some(h) = map.get(key) {
                    first.get_or_insert((*h, i, len));
                    files |= h.files;
                }
            }
        };
        if words.len() >= self.n {
            shingles(hashes, self.n, runs);
            look(&self.ngrams, self.n, runs);
        }
        for &len in self.short_lengths.iter().filter(|&&l| l <= words.len()) {
            shingles(hashes, len, runs);
            look(&self.whole, len, runs);
        }
        if words.len() < MIN_CONTAINED {
            shingles(hashes, words.len(), runs);
            look(&self.whole, words.len(), runs);
        }
        let (hit, at, len) = first?;
        Some(Overlap {
            problem: self.problems[hit.problem as usize].clone(),
            ngram: words.span(at, len).to_string(),
            files: (0..MAX_FILES).filter(|b| files & (1 << b) != 0).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(t: &str) -> (Words, Vec<u64>) {
        let mut w = Words::default();
        w.fill(t);
        let mut h = Vec::new();
        w.hashes(&mut h);
        (w, h)
    }

    #[test]
    fn a_shared_run_of_n_words_is_an_overlap() {
        let mut index = NgramIndex::new(8);
        let (p, _) =
            words("Convert the point $(0,3)$ in rectangular coordinates to polar coordinates.");
        index.add(0, "math500.jsonl:1".into(), &p);
        let (short, _) = words("Compute $2+2$.");
        index.add(1, "tiny.csv: row 3".into(), &short);
        assert_eq!(index.problems(), 2);

        let (w, h) =
            words("CONVERT the point (0, 3) in rectangular coordinates TO POLAR coordinates!!");
        let o = index.check(&w, &h, &mut Vec::new()).expect("exact copy");
        assert_eq!(o.problem, "math500.jsonl:1");
        assert_eq!(o.files, vec![0]);
        assert_eq!(o.ngram, "convert the point 0 3 in rectangular coordinates");

        let (w, h) =
            words("Please convert the point (0,3) in rectangular coordinates into polar form.");
        let o = index
            .check(&w, &h, &mut Vec::new())
            .expect("8-word run kept");
        assert_eq!(o.ngram, "convert the point 0 3 in rectangular coordinates");
        let (w, h) = words("Polar coordinates of the point (0, 3), from rectangular ones.");
        assert_eq!(index.check(&w, &h, &mut Vec::new()), None);

        let (w, h) = words("compute 2 + 2");
        assert_eq!(
            index.check(&w, &h, &mut Vec::new()).map(|o| o.problem),
            Some("tiny.csv: row 3".into())
        );
        let (w, h) = words("compute 2 + 3");
        assert_eq!(index.check(&w, &h, &mut Vec::new()), None);
        // A short problem inside a template is found; two words only whole.
        let (w, h) = words(
            "Compute $2+2$.\n\nPlease reason step by step, and put your final answer within \\boxed{}.",
        );
        let o = index.check(&w, &h, &mut Vec::new()).expect("contained");
        assert_eq!(
            (o.problem.as_str(), o.ngram.as_str()),
            ("tiny.csv: row 3", "compute 2 2")
        );
        let (two, _) = words("Find x.");
        index.add(1, "tiny.csv: row 4".into(), &two);
        let (w, h) = words("Find x. Then find y.");
        assert_eq!(index.check(&w, &h, &mut Vec::new()), None);
        let (w, h) = words("find X");
        assert!(index.check(&w, &h, &mut Vec::new()).is_some());
    }

    #[test]
    fn a_prompt_matching_several_benchmarks_names_them_all() {
        let mut index = NgramIndex::new(3);
        let (a, _) = words("one two three four");
        index.add(0, "a:1".into(), &a);
        let (b, _) = words("five six seven");
        index.add(2, "c:1".into(), &b);
        let (w, h) = words("one two three and five six seven");
        let o = index.check(&w, &h, &mut Vec::new()).unwrap();
        assert_eq!(o.problem, "a:1");
        assert_eq!(o.files, vec![0, 2]);
    }
}
