//! Diverse responses for `top_k` and `multi_sft` (`max_similarity`): of the
//! rows a formatter ranks for a prompt, a row is kept only when its text is
//! not a near-copy of a row kept before it, up to `k` rows.
//!
//! Similarity is the exact Jaccard similarity of the word 3-gram sets of
//! the thinking and the final response together, normalised as everywhere
//! in [`super::normalize`]. Rows must arrive grouped by `id`, best first.

use arrow::array::{Array, AsArray, BooleanArray, RecordBatch};
use arrow::datatypes::DataType;

use super::normalize::{Words, shingles};

/// Words per shingle when comparing responses.
pub const SHINGLE: usize = 3;

/// The running state of the filter across batches.
pub struct Diversity {
    max_similarity: f64,
    k: usize,
    id: Option<String>,
    kept: Vec<Vec<u64>>,
    words: Words,
    hashes: Vec<u64>,
    /// Rows left out as near-copies.
    pub dropped: u64,
}

impl Diversity {
    /// At most `k` rows per prompt, no two above `max_similarity`.
    pub fn new(max_similarity: f64, k: usize) -> Self {
        Self {
            max_similarity,
            k,
            id: None,
            kept: Vec::new(),
            words: Words::default(),
            hashes: Vec::new(),
            dropped: 0,
        }
    }

    /// The rows of `batch` to keep (`id`, `response` and optional
    /// `reasoning` columns are read).
    pub fn filter(&mut self, batch: &RecordBatch) -> Result<RecordBatch, arrow::error::ArrowError> {
        let text = |name: &str| {
            batch
                .column_by_name(name)
                .map(|c| arrow::compute::cast(c, &DataType::Utf8))
                .transpose()
        };
        let ids = text("id")?.ok_or_else(|| missing("id"))?;
        let responses = text("response")?.ok_or_else(|| missing("response"))?;
        let reasoning = text("reasoning")?;
        let (ids, responses) = (ids.as_string::<i32>(), responses.as_string::<i32>());
        let reasoning = reasoning.as_ref().map(|r| r.as_string::<i32>());
        let mut keep = Vec::with_capacity(batch.num_rows());
        for i in 0..batch.num_rows() {
            let id = ids.value(i);
            if self.id.as_deref() != Some(id) {
                self.id = Some(id.to_string());
                self.kept.clear();
            }
            if self.kept.len() >= self.k {
                keep.push(false);
                continue;
            }
            let mut body = String::new();
            if let Some(r) = reasoning
                && r.is_valid(i)
            {
                body.push_str(r.value(i));
                body.push('\n');
            }
            if responses.is_valid(i) {
                body.push_str(responses.value(i));
            }
            self.words.fill(&body);
            self.words.hashes(&mut self.hashes);
            let mut set = Vec::new();
            shingles(&self.hashes, SHINGLE, &mut set);
            set.sort_unstable();
            set.dedup();
            let copy = self
                .kept
                .iter()
                .any(|k| jaccard_sorted(k, &set) > self.max_similarity);
            if copy {
                self.dropped += 1;
            } else {
                self.kept.push(set);
            }
            keep.push(!copy);
        }
        arrow::compute::filter_record_batch(batch, &BooleanArray::from(keep))
    }
}

fn missing(name: &str) -> arrow::error::ArrowError {
    arrow::error::ArrowError::SchemaError(format!(
        "max_similarity needs a `{name}` column in the formatter's output"
    ))
}

/// Jaccard similarity of two sorted, deduplicated sets (1 for two empty ones).
pub fn jaccard_sorted(a: &[u64], b: &[u64]) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    let (mut i, mut j, mut inter) = (0, 0, 0usize);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                inter += 1;
                i += 1;
                j += 1;
            }
        }
    }
    inter as f64 / (a.len() + b.len() - inter) as f64
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::StringArray;
    use arrow::datatypes::{Field, Schema};

    use super::*;

    fn batch(rows: &[(&str, Option<&str>, &str)]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, false),
            Field::new("reasoning", DataType::Utf8, true),
            Field::new("response", DataType::Utf8, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
                Arc::new(StringArray::from_iter(rows.iter().map(|r| r.1))),
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.2))),
            ],
        )
        .unwrap()
    }

    fn kept(b: &RecordBatch) -> Vec<String> {
        let r = b.column_by_name("response").unwrap().as_string::<i32>();
        (0..r.len()).map(|i| r.value(i).to_string()).collect()
    }

    const A: &str =
        "First add 16 and 3 to get 19, then subtract 4 to get 15. So the answer is \\boxed{15}.";
    const A_REWORDED: &str =
        "First, add 16 and 3 to get 19; then subtract 4 to get 15. So the answer is $\\boxed{15}$";
    const B: &str = "Sixteen minus three is thirteen and thirteen plus two is fifteen, which gives \\boxed{15}.";
    const C: &str = "Let x be the eggs left: x = 16 - 3 - 4 + 6 = 15. Answer: 15";

    #[test]
    fn near_copies_give_way_to_the_next_distinct_response() {
        let mut d = Diversity::new(0.7, 2);
        let out = d
            .filter(&batch(&[
                ("p1", None, A),
                ("p1", None, A_REWORDED),
                ("p1", None, B),
                ("p1", None, C),
                ("p2", None, A_REWORDED),
                ("p2", None, A),
            ]))
            .unwrap();
        assert_eq!(kept(&out), vec![A, B, A_REWORDED]);
        assert_eq!(d.dropped, 2);
    }

    #[test]
    fn thinking_counts_and_prompts_continue_across_batches() {
        let mut d = Diversity::new(0.5, 3);
        let think =
            "Janet has 16 eggs per day and eats 3 and bakes 4 so she sells 9 for 2 dollars each.";
        let first = d.filter(&batch(&[("p1", Some(think), "18")])).unwrap();
        assert_eq!(kept(&first), vec!["18"]);
        // The same thinking with another final line is still a near-copy.
        let second = d
            .filter(&batch(&[
                ("p1", Some(think), "The answer is 18."),
                (
                    "p1",
                    Some("Completely different reasoning about eggs sold at market."),
                    "18",
                ),
            ]))
            .unwrap();
        assert_eq!(kept(&second), vec!["18"]);
        assert_eq!(d.dropped, 1);
    }
}
