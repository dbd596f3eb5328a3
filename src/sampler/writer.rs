//! The rollout writer: a thread that owns every file the sampler writes.
//!
//! Rows arrive per shard, are appended to the shard's [`journal`] at once
//! (durable before they count) and buffered; a buffer becomes a new part
//! file (`rollout/shard_NNNN/part-NNNNNN.parquet`, atomic rename, then its
//! journal is removed) when it holds `flush_rows` rows or its oldest row is
//! `flush_seconds` old.
//!
//! [`journal`]: super::journal When the last
//! prompt of a shard is done, the shard's inline verdicts are written as
//! `scores/<label>/shard_NNNN.parquet` and `state.json` marks it `done`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, RecordBatch, StringBuilder,
    TimestampMillisecondBuilder, UInt32Builder, UInt64Builder,
};
use arrow::compute::cast;
use arrow::datatypes::DataType;

use super::journal::Journal;
use crate::store::parquet::{ParquetFile, read_batches};
use crate::store::rollout::{
    part_number, rollout_part_path, rollout_schema, score_path, score_schema, shard_parts,
};
use crate::store::{RunState, ShardStatus, StoreError};

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

/// What the scheduler tells the writer.
#[derive(Debug)]
pub enum WriterMsg {
    /// Finished rollouts of one prompt of `shard`.
    Rows(u32, Vec<RolloutRow>),
    /// One prompt of `shard` needs nothing more.
    PromptDone(u32),
}

/// Where and how the writer writes.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// Work dir root.
    pub root: PathBuf,
    /// `state.json`.
    pub state_path: PathBuf,
    /// Label of `scores/<label>/`.
    pub label: String,
    /// Rows per part file at most.
    pub flush_rows: usize,
    /// Age after which buffered rows are written.
    pub flush_after: Duration,
}

/// Totals of one writer run.
#[derive(Debug, Default, Clone, Copy)]
pub struct WriterReport {
    /// Part files written.
    pub parts: u64,
}

struct ShardBuffer {
    rows: Vec<RolloutRow>,
    /// The journal of the part file `next_part`, once a row arrived.
    journal: Option<Journal>,
    oldest: Option<Instant>,
    next_part: u32,
    remaining: u64,
}

/// Runs the writer until the sender side is dropped, then flushes every
/// buffer. `remaining` is the number of prompts not yet done per shard.
pub fn run(
    cfg: WriterConfig,
    mut state: RunState,
    remaining: HashMap<u32, u64>,
    rx: Receiver<WriterMsg>,
) -> Result<WriterReport, StoreError> {
    let mut report = WriterReport::default();
    let mut shards: HashMap<u32, ShardBuffer> = HashMap::new();
    let tick = cfg.flush_after.min(Duration::from_millis(200));
    loop {
        let msg = match rx.recv_timeout(tick) {
            Ok(m) => Some(m),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        match msg {
            Some(WriterMsg::Rows(shard, rows)) => {
                let buf = open_shard(&cfg, &mut state, &remaining, &mut shards, shard)?;
                if buf.journal.is_none() {
                    let part = rollout_part_path(&cfg.root, shard, buf.next_part);
                    buf.journal = Some(Journal::open(&part)?);
                }
                buf.journal.as_mut().expect("opened above").append(&rows)?;
                buf.oldest.get_or_insert_with(Instant::now);
                buf.rows.extend(rows);
                if buf.rows.len() >= cfg.flush_rows {
                    report.parts += flush(&cfg, shard, buf)?;
                }
            }
            Some(WriterMsg::PromptDone(shard)) => {
                let buf = open_shard(&cfg, &mut state, &remaining, &mut shards, shard)?;
                buf.remaining = buf.remaining.saturating_sub(1);
                if buf.remaining == 0 {
                    report.parts += flush(&cfg, shard, buf)?;
                    shards.remove(&shard);
                    write_scores(&cfg, shard)?;
                    set_status(&cfg, &mut state, shard, ShardStatus::Done)?;
                    tracing::debug!("shard {shard} done");
                }
            }
            None => {}
        }
        let now = Instant::now();
        for (&shard, buf) in shards.iter_mut() {
            if buf
                .oldest
                .is_some_and(|t| now.duration_since(t) >= cfg.flush_after)
            {
                report.parts += flush(&cfg, shard, buf)?;
            }
        }
    }
    for (&shard, buf) in shards.iter_mut() {
        report.parts += flush(&cfg, shard, buf)?;
    }
    Ok(report)
}

fn open_shard<'a>(
    cfg: &WriterConfig,
    state: &mut RunState,
    remaining: &HashMap<u32, u64>,
    shards: &'a mut HashMap<u32, ShardBuffer>,
    shard: u32,
) -> Result<&'a mut ShardBuffer, StoreError> {
    if let std::collections::hash_map::Entry::Vacant(slot) = shards.entry(shard) {
        let parts = shard_parts(&cfg.root, shard).map_err(|source| StoreError::Io {
            path: crate::store::rollout::rollout_shard_dir(&cfg.root, shard),
            source,
        })?;
        let next_part = parts
            .iter()
            .filter_map(|p| part_number(p))
            .max()
            .map_or(0, |n| n + 1);
        slot.insert(ShardBuffer {
            rows: Vec::new(),
            journal: None,
            oldest: None,
            next_part,
            remaining: remaining.get(&shard).copied().unwrap_or(0),
        });
        set_status(cfg, state, shard, ShardStatus::Running)?;
    }
    Ok(shards.get_mut(&shard).expect("inserted above"))
}

fn set_status(
    cfg: &WriterConfig,
    state: &mut RunState,
    shard: u32,
    status: ShardStatus,
) -> Result<(), StoreError> {
    if let Some(s) = state.shards.iter_mut().find(|s| s.shard == shard)
        && s.status != status
    {
        s.status = status;
        state.save(&cfg.state_path)?;
    }
    Ok(())
}

/// Writes the buffered rows as the shard's next part file; returns the
/// number of files written (0 or 1).
fn flush(cfg: &WriterConfig, shard: u32, buf: &mut ShardBuffer) -> Result<u64, StoreError> {
    buf.oldest = None;
    if buf.rows.is_empty() {
        return Ok(0);
    }
    let path = rollout_part_path(&cfg.root, shard, buf.next_part);
    let batch = to_batch(&buf.rows);
    let mut file = ParquetFile::create(&path, rollout_schema())?;
    file.write(&batch)?;
    file.commit()?;
    if let Some(journal) = buf.journal.take() {
        journal.remove()?;
    }
    tracing::trace!("wrote {} rows to {}", buf.rows.len(), path.display());
    buf.rows.clear();
    buf.next_part += 1;
    Ok(1)
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
    ];
    RecordBatch::try_new(rollout_schema(), columns).expect("columns match the rollout schema")
}

/// Writes `scores/<label>/shard_NNNN.parquet` from the shard's inline verdicts.
fn write_scores(cfg: &WriterConfig, shard: u32) -> Result<(), StoreError> {
    let path = score_path(&cfg.root, &cfg.label, shard);
    let parts = shard_parts(&cfg.root, shard).map_err(|source| StoreError::Io {
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
            let verifier: ArrayRef =
                Arc::new(arrow::array::StringArray::from(vec![cfg.label.as_str(); n]));
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
