//! Rollout rows and the files made of them: [`RolloutRow`] (one row of the
//! rollout schema, also the journal's line format), rows as an Arrow batch,
//! a part file (`rollout/shard_NNNN/part-NNNNNN.parquet`, written whole by
//! atomic rename), and a shard's inline verdicts as
//! `scores/<label>/shard_NNNN.parquet`.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, RecordBatch, StringBuilder,
    TimestampMillisecondBuilder, UInt32Builder, UInt64Builder,
};
use arrow::compute::cast;
use arrow::datatypes::DataType;

use super::StoreError;
use super::parquet::{ParquetFile, corrupt, projected, read_batches};
use super::rollout::{rollout_schema, score_path, score_schema, shard_parts};

/// One rollout row; each field is the column of the same name in
/// [`rollout_schema`], which documents its meaning.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RolloutRow {
    /// Prompt id.
    #[serde(with = "arc_str")]
    pub id: Arc<str>,
    /// `step * step_size + j`.
    pub rollout_idx: u32,
    /// Sampling step.
    pub step: u32,
    /// Final content; `None` on error.
    pub response: Option<String>,
    /// Reasoning returned apart from the content.
    pub reasoning: Option<String>,
    /// `stop`, `length`, …
    pub finish_reason: Option<String>,
    /// Cut off or thinking never closed.
    pub truncated: bool,
    /// Why the request failed.
    pub error: Option<String>,
    /// Prompt tokens of the request.
    pub prompt_tokens: Option<u32>,
    /// Completion tokens of this response.
    pub completion_tokens: Option<u32>,
    /// Latency of the request's last attempt.
    pub latency_ms: Option<u64>,
    /// Model name.
    #[serde(with = "arc_str")]
    pub model: Arc<str>,
    /// Base URL (or replay file) that answered.
    pub endpoint: String,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
    /// Inline score.
    pub score: Option<f64>,
    /// What the verifier extracted.
    pub pred: Option<String>,
}

/// `Arc<str>` as a JSON string (the journal's format), without serde's
/// `rc` feature.
mod arc_str {
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Arc<str>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Arc<str>, D::Error> {
        String::deserialize(d).map(Arc::from)
    }
}

/// The rows as a record batch of [`rollout_schema`].
pub fn to_batch(rows: &[RolloutRow]) -> RecordBatch {
    let n = rows.len();
    let mut id = StringBuilder::with_capacity(n, n * 16);
    let mut rollout_idx = UInt32Builder::with_capacity(n);
    let mut step = UInt32Builder::with_capacity(n);
    let mut response = StringBuilder::new();
    let mut reasoning = StringBuilder::new();
    let mut finish = StringBuilder::new();
    let mut truncated = BooleanBuilder::with_capacity(n);
    let mut error = StringBuilder::new();
    let mut prompt_tokens = UInt32Builder::with_capacity(n);
    let mut completion_tokens = UInt32Builder::with_capacity(n);
    let mut latency = UInt64Builder::with_capacity(n);
    let mut model = StringBuilder::new();
    let mut endpoint = StringBuilder::new();
    let mut created = TimestampMillisecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut score = Float64Builder::with_capacity(n);
    let mut pred = StringBuilder::new();
    let mut hash = UInt64Builder::with_capacity(n);
    for r in rows {
        id.append_value(&r.id);
        rollout_idx.append_value(r.rollout_idx);
        step.append_value(r.step);
        response.append_option(r.response.as_deref());
        reasoning.append_option(r.reasoning.as_deref());
        finish.append_option(r.finish_reason.as_deref());
        truncated.append_value(r.truncated);
        error.append_option(r.error.as_deref());
        prompt_tokens.append_option(r.prompt_tokens);
        completion_tokens.append_option(r.completion_tokens);
        latency.append_option(r.latency_ms);
        model.append_value(&r.model);
        endpoint.append_value(&r.endpoint);
        created.append_value(r.created_at);
        score.append_option(r.score);
        pred.append_option(r.pred.as_deref());
        hash.append_option(
            r.response
                .as_deref()
                .map(|text| super::rollout::response_hash(text, r.reasoning.as_deref())),
        );
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(id.finish()),
        Arc::new(rollout_idx.finish()),
        Arc::new(step.finish()),
        Arc::new(response.finish()),
        Arc::new(reasoning.finish()),
        Arc::new(finish.finish()),
        Arc::new(truncated.finish()),
        Arc::new(error.finish()),
        Arc::new(prompt_tokens.finish()),
        Arc::new(completion_tokens.finish()),
        Arc::new(latency.finish()),
        Arc::new(model.finish()),
        Arc::new(endpoint.finish()),
        Arc::new(created.finish()),
        Arc::new(score.finish()),
        Arc::new(pred.finish()),
        Arc::new(hash.finish()),
    ];
    RecordBatch::try_new(rollout_schema(), columns).expect("columns match the rollout schema")
}

/// Writes `rows` as the part file `path`, whole or not at all.
pub fn write_part(path: &Path, rows: &[RolloutRow]) -> Result<(), StoreError> {
    let mut file = ParquetFile::create(path, rollout_schema())?;
    file.write(&to_batch(rows))?;
    file.commit()?;
    Ok(())
}

/// Writes `scores/<label>/shard_NNNN.parquet` from the shard's inline verdicts.
pub fn write_inline_scores(root: &Path, label: &str, shard: u32) -> Result<(), StoreError> {
    let path = score_path(root, label, shard);
    let parts = shard_parts(root, shard).map_err(|source| StoreError::Io {
        path: path.clone(),
        source,
    })?;
    let mut file = ParquetFile::create(&path, score_schema())?;
    for part in parts {
        // A part file is read back from disk: a column it lacks or of
        // another type (an altered or foreign file) is an error naming it.
        let corrupt = |message: String| StoreError::Corrupt {
            path: part.clone(),
            message,
        };
        for batch in read_batches(&part)? {
            let column = |name: &str| {
                batch
                    .column_by_name(name)
                    .cloned()
                    .ok_or_else(|| corrupt(format!("no `{name}` column: not a rollout part file")))
            };
            let n = batch.num_rows();
            let verifier: ArrayRef = Arc::new(arrow::array::StringArray::from(vec![label; n]));
            let pred = cast(&column("pred")?, &DataType::Utf8)
                .map_err(|e| corrupt(format!("`pred`: {e}")))?;
            let scores = RecordBatch::try_new(
                score_schema(),
                vec![
                    column("id")?,
                    column("rollout_idx")?,
                    column("score")?,
                    pred,
                    verifier,
                ],
            )
            .map_err(|e| corrupt(format!("its columns do not match the rollout schema: {e}")))?;
            // A failed request's row is no rollout: it gets no verdict.
            let keep = arrow::compute::is_null(&column("error")?)
                .map_err(|e| corrupt(format!("`error`: {e}")))?;
            let scores = arrow::compute::filter_record_batch(&scores, &keep)
                .expect("the mask has the batch's length");
            file.write(&scores)?;
        }
    }
    file.commit()?;
    Ok(())
}

/// What resume needs of one saved row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SavedRow {
    /// `rollout_idx`.
    pub rollout_idx: u32,
    /// `step`.
    pub step: u32,
    /// Whether `response` is set.
    pub has_response: bool,
    /// `truncated`.
    pub truncated: bool,
    /// Whether `error` is set (a failed request's row).
    pub failed: bool,
    /// `score`.
    pub score: Option<f64>,
}

/// A saved row's text, for a verifier whose verdicts come after the
/// response (a judge asks about a row saved before its verdict arrived).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SavedText<'a> {
    /// `response`.
    pub response: Option<&'a str>,
    /// `reasoning`.
    pub reasoning: Option<&'a str>,
}

/// Calls `f` with the prompt id and the [`SavedRow`] of every row of
/// `shard`'s part files, reading only the columns resume needs (with
/// `text`, the response and reasoning too).
pub fn for_each_saved(
    root: &Path,
    shard: u32,
    text: bool,
    mut f: impl FnMut(&str, SavedRow, Option<SavedText<'_>>),
) -> Result<(), StoreError> {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{Float64Type, UInt32Type};

    let dir = super::rollout::rollout_shard_dir(root, shard);
    let parts = shard_parts(root, shard).map_err(|source| StoreError::Io { path: dir, source })?;
    let mut wanted = vec![
        "id",
        "rollout_idx",
        "step",
        "response",
        "truncated",
        "error",
        "score",
    ];
    if text {
        wanted.push("reasoning");
    }
    for part in parts {
        for batch in projected(&part, &wanted)? {
            let batch = batch.map_err(|e| corrupt(&part, e))?;
            let col = |name: &str| {
                batch
                    .column_by_name(name)
                    .cloned()
                    .ok_or_else(|| corrupt(&part, format!("no `{name}` column")))
            };
            let (id, idx, step) = (col("id")?, col("rollout_idx")?, col("step")?);
            let (response, truncated, error, score) = (
                col("response")?,
                col("truncated")?,
                col("error")?,
                col("score")?,
            );
            let reasoning = if text { Some(col("reasoning")?) } else { None };
            let id = id.as_string::<i32>();
            let idx = idx.as_primitive::<UInt32Type>();
            let step = step.as_primitive::<UInt32Type>();
            let truncated = truncated.as_boolean();
            let score = score.as_primitive::<Float64Type>();
            let responses = response.as_string::<i32>();
            let reasoning = reasoning.as_ref().map(|r| r.as_string::<i32>());
            for i in 0..batch.num_rows() {
                let text = reasoning.map(|r| SavedText {
                    response: responses.is_valid(i).then(|| responses.value(i)),
                    reasoning: r.is_valid(i).then(|| r.value(i)),
                });
                f(
                    id.value(i),
                    SavedRow {
                        rollout_idx: idx.value(i),
                        step: step.value(i),
                        has_response: response.is_valid(i),
                        truncated: truncated.value(i),
                        failed: error.is_valid(i),
                        score: score.is_valid(i).then(|| score.value(i)),
                    },
                    text,
                );
            }
        }
    }
    Ok(())
}

/// Calls `f` with the id, `step`, `created_at`, `prompt_tokens` and
/// `completion_tokens` of every row of `shard` without an error (what was
/// spent; rows of one request share its step and time).
pub fn for_each_spent(
    root: &Path,
    shard: u32,
    mut f: impl FnMut(&str, u32, i64, Option<u64>, Option<u64>),
) -> Result<(), StoreError> {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{DataType, Int64Type, UInt32Type, UInt64Type};

    let dir = super::rollout::rollout_shard_dir(root, shard);
    let parts = shard_parts(root, shard).map_err(|source| StoreError::Io { path: dir, source })?;
    let wanted = [
        "id",
        "step",
        "created_at",
        "prompt_tokens",
        "completion_tokens",
        "error",
    ];
    for part in parts {
        for batch in projected(&part, &wanted)? {
            let batch = batch.map_err(|e| corrupt(&part, e))?;
            let col = |name: &str, to: &DataType| {
                let c = batch
                    .column_by_name(name)
                    .ok_or_else(|| corrupt(&part, format!("no `{name}` column")))?;
                arrow::compute::cast(c, to).map_err(|e| corrupt(&part, e))
            };
            let id = col("id", &DataType::Utf8)?;
            let step = col("step", &DataType::UInt32)?;
            let at = col("created_at", &DataType::Int64)?;
            let prompt = col("prompt_tokens", &DataType::UInt64)?;
            let completion = col("completion_tokens", &DataType::UInt64)?;
            let error = batch
                .column_by_name("error")
                .ok_or_else(|| corrupt(&part, "no `error` column"))?;
            let (id, step, at) = (
                id.as_string::<i32>(),
                step.as_primitive::<UInt32Type>(),
                at.as_primitive::<Int64Type>(),
            );
            let (prompt, completion) = (
                prompt.as_primitive::<UInt64Type>(),
                completion.as_primitive::<UInt64Type>(),
            );
            for i in 0..batch.num_rows() {
                if error.is_valid(i) {
                    continue;
                }
                f(
                    id.value(i),
                    step.value(i),
                    at.value(i),
                    prompt.is_valid(i).then(|| prompt.value(i)),
                    completion.is_valid(i).then(|| completion.value(i)),
                );
            }
        }
    }
    Ok(())
}
