//! MinHash signatures with an LSH index: near-duplicate prompts found in
//! one pass without comparing every pair.
//!
//! A text's signature is, for each of `num_perm` hash functions, the least
//! hash of its word shingles; two signatures agree at a position with
//! probability equal to the Jaccard similarity of the shingle sets. The
//! signature is cut into `bands` of `rows`; texts that agree on a whole
//! band become candidates, and a candidate is a duplicate when the share of
//! agreeing positions (the Jaccard estimate) reaches the threshold. Bands
//! are chosen so a pair at the threshold becomes a candidate with
//! probability at least 0.995; the estimate then decides.

use super::normalize::{HashKeyed32, mix64};

/// The `num_perm` hash functions of a signature.
#[derive(Debug, Clone)]
pub struct MinHasher {
    mul: Vec<u32>,
    add: Vec<u32>,
}

impl MinHasher {
    /// `num_perm` functions from a fixed seed (signatures are comparable
    /// across runs).
    pub fn new(num_perm: usize) -> Self {
        let mut state: u64 = 0x005e_ed0f_5157_a7e5;
        let mut next = || {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            mix64(state)
        };
        let mul = (0..num_perm).map(|_| (next() as u32) | 1).collect();
        let add = (0..num_perm).map(|_| next() as u32).collect();
        Self { mul, add }
    }

    /// Number of hash functions.
    pub fn num_perm(&self) -> usize {
        self.mul.len()
    }

    /// The signature of a shingle set into `sig` (`num_perm` values; all
    /// `u32::MAX` for an empty set).
    pub fn signature(&self, shingles: &[u64], sig: &mut Vec<u32>) {
        sig.clear();
        sig.resize(self.mul.len(), u32::MAX);
        for &s in shingles {
            let x = (s ^ (s >> 32)) as u32;
            // A multiply-add and an xorshift per position (the shingle hash
            // is mixed already): branch-free, so the loop runs on vector
            // lanes; the estimate test below checks the result.
            for ((out, a), b) in sig.iter_mut().zip(&self.mul).zip(&self.add) {
                let mut v = x.wrapping_mul(*a).wrapping_add(*b);
                v ^= v >> 15;
                *out = (*out).min(v);
            }
        }
    }
}

/// Bands and rows per band for `num_perm` positions and a Jaccard
/// threshold: the most rows per band (fewest candidates) that still make a
/// pair at the threshold a candidate with probability at least 0.995.
pub fn bands_for(num_perm: usize, threshold: f64) -> (usize, usize) {
    let mut best = (num_perm, 1);
    for rows in 1..=num_perm {
        let bands = num_perm / rows;
        if bands == 0 {
            break;
        }
        let p = 1.0 - (1.0 - threshold.powi(rows as i32)).powi(bands as i32);
        if p >= 0.995 {
            best = (bands, rows);
        } else {
            break;
        }
    }
    best
}

/// The share of positions at which two (truncated) signatures agree.
pub fn estimate(a: &[u8], b: &[u8]) -> f64 {
    let same = a.iter().zip(b).filter(|(x, y)| x == y).count();
    same as f64 / a.len().max(1) as f64
}

/// Kept texts' signatures and their band buckets. Memory per kept text:
/// `num_perm` bytes of signature and one 8-byte bucket entry per band.
#[derive(Debug)]
pub struct LshIndex {
    hasher: MinHasher,
    bands: usize,
    rows: usize,
    threshold: f64,
    /// The first kept text in each (band, band hash) bucket, keyed by 32
    /// bits of the hash (a false match costs one signature comparison).
    buckets: HashKeyed32<u32>,
    /// Kept signatures, `num_perm` values each, 8 bits per value: two
    /// different minima agree by chance 1 time in 256, which raises an
    /// estimate by at most (1 − J)/256.
    signatures: Vec<u8>,
    // Buffers reused from text to text.
    sig: Vec<u32>,
    short: Vec<u8>,
    keys: Vec<u32>,
}

impl LshIndex {
    /// An empty index for `num_perm` hash functions and a Jaccard threshold.
    pub fn new(num_perm: usize, threshold: f64) -> Self {
        let (bands, rows) = bands_for(num_perm, threshold);
        Self {
            hasher: MinHasher::new(num_perm),
            bands,
            rows,
            threshold,
            buckets: HashKeyed32::default(),
            signatures: Vec::new(),
            sig: Vec::new(),
            short: Vec::new(),
            keys: Vec::new(),
        }
    }

    /// Bands and rows per band in use.
    pub fn shape(&self) -> (usize, usize) {
        (self.bands, self.rows)
    }

    /// Texts kept so far.
    pub fn len(&self) -> usize {
        self.signatures.len() / self.hasher.num_perm().max(1)
    }

    /// Whether nothing was kept yet.
    pub fn is_empty(&self) -> bool {
        self.signatures.is_empty()
    }

    /// The kept text most similar to `shingles` at or above the threshold
    /// (its index in keeping order, with the estimate); otherwise keeps
    /// this text as the next index and returns `None`.
    pub fn check_or_keep(&mut self, shingles: &[u64]) -> Option<(u32, f64)> {
        let p = self.hasher.num_perm();
        self.hasher.signature(shingles, &mut self.sig);
        self.short.clear();
        self.short.extend(self.sig.iter().map(|v| (v >> 24) as u8));
        self.keys.clear();
        for (b, band) in self
            .sig
            .chunks_exact(self.rows)
            .take(self.bands)
            .enumerate()
        {
            let mut h = mix64(b as u64 + 1);
            for v in band {
                h = mix64(h ^ u64::from(*v));
            }
            self.keys.push(h as u32);
        }
        let mut best: Option<(u32, f64)> = None;
        let mut last = u32::MAX;
        for k in &self.keys {
            let Some(&idx) = self.buckets.get(k) else {
                continue;
            };
            // The same kept text in several bands is checked once in a row.
            if idx == last {
                continue;
            }
            last = idx;
            let at = idx as usize * p;
            let e = estimate(&self.short, &self.signatures[at..at + p]);
            if e >= self.threshold && best.is_none_or(|(_, b)| e > b) {
                best = Some((idx, e));
            }
        }
        if best.is_none() {
            let idx = self.len() as u32;
            self.signatures.extend_from_slice(&self.short);
            for k in &self.keys {
                self.buckets.entry(*k).or_insert(idx);
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::super::normalize::{Words, shingles};
    use super::*;

    /// Exact Jaccard similarity of two shingle sets (sorted and deduplicated
    /// here).
    fn jaccard(a: &[u64], b: &[u64]) -> f64 {
        let (mut a, mut b) = (a.to_vec(), b.to_vec());
        a.sort_unstable();
        a.dedup();
        b.sort_unstable();
        b.dedup();
        super::super::diverse::jaccard_sorted(&a, &b)
    }

    fn shingle_set(text: &str, n: usize) -> Vec<u64> {
        let mut w = Words::default();
        w.fill(text);
        let mut h = Vec::new();
        w.hashes(&mut h);
        let mut s = Vec::new();
        shingles(&h, n, &mut s);
        s
    }

    #[test]
    fn bands_make_a_pair_at_the_threshold_a_candidate() {
        assert_eq!(bands_for(128, 0.8), (21, 6));
        for t in [0.5, 0.7, 0.8, 0.9, 0.95] {
            let (b, r) = bands_for(128, t);
            assert!(b * r <= 128);
            let p = 1.0 - (1.0 - f64::powi(t, r as i32)).powi(b as i32);
            assert!(p >= 0.995, "{t}: {b}x{r} gives {p}");
        }
    }

    /// Sets with a known Jaccard similarity: `shared` common elements and
    /// `own` elements only in each.
    fn pair(seed: u64, shared: u64, own: u64) -> (Vec<u64>, Vec<u64>, f64) {
        let h = |i: u64| mix64(seed * 1_000_003 + i);
        let common: Vec<u64> = (0..shared).map(h).collect();
        let mut a = common.clone();
        let mut b = common;
        a.extend((0..own).map(|i| h(1_000_000 + i)));
        b.extend((0..own).map(|i| h(2_000_000 + i)));
        let j = shared as f64 / (shared + 2 * own) as f64;
        (a, b, j)
    }

    #[test]
    fn the_estimate_follows_exact_jaccard() {
        let hasher = MinHasher::new(128);
        let (mut sa, mut sb) = (Vec::new(), Vec::new());
        let mut worst: f64 = 0.0;
        let mut total = 0.0;
        for seed in 0..200u64 {
            let own = seed % 20;
            let (a, b, j) = pair(seed, 60, own);
            assert!((jaccard(&a, &b) - j).abs() < 1e-12);
            hasher.signature(&a, &mut sa);
            hasher.signature(&b, &mut sb);
            let e = sa.iter().zip(&sb).filter(|(x, y)| x == y).count() as f64 / 128.0;
            worst = worst.max((e - j).abs());
            total += (e - j).abs();
        }
        // The mean error of an unbiased estimate from 128 positions at
        // J ≈ 0.6..1 is about 0.03.
        let mean = total / 200.0;
        assert!(mean < 0.04, "mean error {mean}");
        eprintln!("minhash estimate: worst error {worst:.3}, mean {mean:.4}");
        // 128 positions: the standard error is at most 0.044; 200 pairs
        // stay within 4 of them.
        assert!(worst < 0.18, "worst error {worst}");
    }

    #[test]
    fn the_threshold_separates_near_from_far_pairs() {
        // Far above the threshold: always found; far below: never.
        let (mut above, mut below) = (0, 0);
        for seed in 0..100u64 {
            let mut index = LshIndex::new(128, 0.8);
            let (a, b, j) = pair(seed, 90, 2); // J = 0.957
            assert!(j > 0.95);
            assert!(index.check_or_keep(&a).is_none());
            if index.check_or_keep(&b).is_some() {
                above += 1;
            }
            let mut index = LshIndex::new(128, 0.8);
            let (a, b, j) = pair(seed + 1000, 50, 15); // J = 0.625
            assert!(j < 0.63);
            assert!(index.check_or_keep(&a).is_none());
            if index.check_or_keep(&b).is_some() {
                below += 1;
            }
        }
        assert_eq!((above, below), (100, 0));
    }

    #[test]
    fn near_copies_of_prompts_are_found_and_kept_once() {
        let texts = [
            "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether in April and May?",
            "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell in total in April and May?",
            "Weng earns $12 an hour for babysitting. Yesterday, she just did 50 minutes of babysitting. How much did she earn?",
            "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether in April and May?!",
        ];
        let mut index = LshIndex::new(128, 0.7);
        let found: Vec<Option<u32>> = texts
            .iter()
            .map(|t| index.check_or_keep(&shingle_set(t, 3)).map(|(i, _)| i))
            .collect();
        let exact = jaccard(&shingle_set(texts[0], 3), &shingle_set(texts[1], 3));
        assert!(exact > 0.7, "{exact}");
        assert_eq!(found, vec![None, Some(0), None, Some(0)]);
        assert_eq!(index.len(), 2);
    }
}
