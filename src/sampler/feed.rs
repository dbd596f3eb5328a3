//! Prompts to sample, streamed from `data/input.parquet` in shard order,
//! each with the rollouts a previous run already saved for it.
//!
//! Finished shards are skipped without reading their rollouts; the saved
//! rollouts of an unfinished shard are read (a few small columns) when the
//! shard's first prompt comes up, so memory stays bounded by a shard.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Float64Type, UInt32Type};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};

use super::plan::{Policy, SavedRollout};
use crate::store::StoreError;
use crate::store::rollout::shard_parts;

/// One prompt of the input.
#[derive(Debug)]
pub struct Prompt {
    /// `id`.
    pub id: Arc<str>,
    /// `messages` (JSON array, sent as is).
    pub messages: String,
    /// `answer`.
    pub answer: Option<String>,
    /// `metadata` (JSON object).
    pub metadata: Option<String>,
    /// `shard`.
    pub shard: u32,
}

/// Input rows in order, with their saved rollouts.
pub struct Feed {
    reader: ParquetRecordBatchReader,
    path: PathBuf,
    root: PathBuf,
    policy: Policy,
    skip: HashSet<u32>,
    batch: Option<RecordBatch>,
    row: usize,
    loaded_shard: Option<u32>,
    saved: HashMap<String, Vec<SavedRollout>>,
}

fn parquet_error(path: &Path, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// A reader of `columns` of a Parquet file, 1,024 rows a batch.
pub(super) fn projected(
    path: &Path,
    columns: &[&str],
) -> Result<ParquetRecordBatchReader, StoreError> {
    let file = File::open(path).map_err(|source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| parquet_error(path, e))?;
    let schema = builder.parquet_schema();
    let indices: Vec<usize> = (0..schema.num_columns())
        .filter(|&i| columns.contains(&schema.column(i).name()))
        .collect();
    let mask = ProjectionMask::leaves(schema, indices);
    builder
        .with_projection(mask)
        .with_batch_size(1024)
        .build()
        .map_err(|e| parquet_error(path, e))
}

impl Feed {
    /// Opens `input` of work dir `root`, skipping the shards in `skip`.
    pub fn open(
        input: &Path,
        root: &Path,
        policy: Policy,
        skip: HashSet<u32>,
    ) -> Result<Self, StoreError> {
        let reader = projected(input, &["id", "messages", "answer", "metadata", "shard"])?;
        Ok(Self {
            reader,
            path: input.to_path_buf(),
            root: root.to_path_buf(),
            policy,
            skip,
            batch: None,
            row: 0,
            loaded_shard: None,
            saved: HashMap::new(),
        })
    }

    /// The next prompt to sample and its saved rollouts, or `None` at the end.
    pub fn next_prompt(&mut self) -> Result<Option<(Prompt, Vec<SavedRollout>)>, StoreError> {
        loop {
            if self.batch.as_ref().is_none_or(|b| self.row >= b.num_rows()) {
                match self.reader.next() {
                    None => return Ok(None),
                    Some(b) => {
                        self.batch = Some(b.map_err(|e| parquet_error(&self.path, e))?);
                        self.row = 0;
                        continue;
                    }
                }
            }
            let batch = self.batch.as_ref().expect("checked above");
            let i = self.row;
            self.row += 1;
            let shard = batch
                .column_by_name("shard")
                .map(|c| c.as_primitive::<UInt32Type>().value(i))
                .ok_or_else(|| parquet_error(&self.path, "no `shard` column"))?;
            if self.skip.contains(&shard) {
                continue;
            }
            let text = |name: &str| {
                batch.column_by_name(name).and_then(|c| {
                    let c = c.as_string::<i32>();
                    c.is_valid(i).then(|| c.value(i).to_string())
                })
            };
            let prompt = Prompt {
                id: Arc::from(text("id").unwrap_or_default()),
                messages: text("messages").unwrap_or_else(|| "[]".into()),
                answer: text("answer"),
                metadata: text("metadata"),
                shard,
            };
            if self.loaded_shard != Some(shard) {
                self.saved = load_saved(&self.root, shard, &self.policy)?;
                self.loaded_shard = Some(shard);
            }
            let saved = self.saved.remove(prompt.id.as_ref()).unwrap_or_default();
            return Ok(Some((prompt, saved)));
        }
    }
}

/// The saved rollouts of one shard by prompt id (only what resume needs).
pub fn load_saved(
    root: &Path,
    shard: u32,
    policy: &Policy,
) -> Result<HashMap<String, Vec<SavedRollout>>, StoreError> {
    let dir = crate::store::rollout::rollout_shard_dir(root, shard);
    let parts = shard_parts(root, shard).map_err(|source| StoreError::Io { path: dir, source })?;
    let mut out: HashMap<String, Vec<SavedRollout>> = HashMap::new();
    for part in parts {
        let wanted = [
            "id",
            "rollout_idx",
            "step",
            "response",
            "truncated",
            "error",
            "score",
        ];
        let reader = projected(&part, &wanted)?;
        for batch in reader {
            let batch = batch.map_err(|e| parquet_error(&part, e))?;
            let col = |name: &str| {
                batch
                    .column_by_name(name)
                    .cloned()
                    .ok_or_else(|| parquet_error(&part, format!("no `{name}` column")))
            };
            let (id, idx, step) = (col("id")?, col("rollout_idx")?, col("step")?);
            let (response, truncated, error, score) = (
                col("response")?,
                col("truncated")?,
                col("error")?,
                col("score")?,
            );
            let id = id.as_string::<i32>();
            let idx = idx.as_primitive::<UInt32Type>();
            let step = step.as_primitive::<UInt32Type>();
            let truncated = truncated.as_boolean();
            let score = score.as_primitive::<Float64Type>();
            for i in 0..batch.num_rows() {
                let valid =
                    policy.is_valid(response.is_valid(i), error.is_valid(i), truncated.value(i));
                out.entry(id.value(i).to_string())
                    .or_default()
                    .push(SavedRollout {
                        rollout_idx: idx.value(i),
                        step: step.value(i),
                        valid,
                        score: score.is_valid(i).then(|| score.value(i)),
                        failed: error.is_valid(i),
                    });
            }
        }
    }
    Ok(out)
}
