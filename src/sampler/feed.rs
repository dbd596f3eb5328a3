//! Prompts to sample, streamed from `data/input.parquet` in shard order,
//! each with the rollouts a previous run already saved for it.
//!
//! Finished shards are skipped without reading their rollouts; the saved
//! rollouts of an unfinished shard are read (a few small columns) when the
//! shard's first prompt comes up, so memory stays bounded by a shard.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::UInt32Type;
use parquet::arrow::arrow_reader::ParquetRecordBatchReader;

use super::plan::{Policy, SavedRollout};
use crate::hygiene::{Exclusion, RowFlags};
use crate::store::StoreError;
use crate::store::parquet::{corrupt, projected};

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
    exclusion: Exclusion,
    batch: Option<RecordBatch>,
    row: usize,
    loaded_shard: Option<u32>,
    saved: HashMap<String, Vec<SavedRollout>>,
    /// Whether the saved rows' texts are read too.
    with_texts: bool,
    texts: HashMap<String, Vec<SavedResponse>>,
}

/// The text of a saved rollout, for a verifier whose verdicts come after
/// the response: a rollout saved before its verdict arrived is judged on
/// resume from it.
#[derive(Debug, Clone, PartialEq)]
pub struct SavedResponse {
    /// `rollout_idx`.
    pub rollout_idx: u32,
    /// `response`.
    pub response: Option<String>,
    /// `reasoning`.
    pub reasoning: Option<String>,
}

/// A prompt to sample with what earlier runs saved for it.
#[derive(Debug)]
pub struct Next {
    /// The prompt.
    pub prompt: Prompt,
    /// Its saved rollouts.
    pub saved: Vec<SavedRollout>,
    /// The texts of its saved rollouts (failed ones left out), when the
    /// feed reads them ([`Feed::with_texts`]).
    pub texts: Vec<SavedResponse>,
}

impl Feed {
    /// Opens `input` of work dir `root`, skipping the shards in `skip` and
    /// the prompts `exclusion` leaves out.
    pub fn open(
        input: &Path,
        root: &Path,
        policy: Policy,
        skip: HashSet<u32>,
        exclusion: Exclusion,
    ) -> Result<Self, StoreError> {
        let reader = projected(
            input,
            &[
                "id",
                "messages",
                "answer",
                "metadata",
                "shard",
                "contaminated",
                "duplicate_of",
            ],
        )?;
        Ok(Self {
            reader,
            path: input.to_path_buf(),
            root: root.to_path_buf(),
            policy,
            skip,
            exclusion,
            batch: None,
            row: 0,
            loaded_shard: None,
            saved: HashMap::new(),
            with_texts: false,
            texts: HashMap::new(),
        })
    }

    /// Reads the saved rows' texts too (a shard's responses at a time).
    pub fn with_texts(mut self) -> Self {
        self.with_texts = true;
        self
    }

    /// The next prompt to sample and its saved rollouts, or `None` at the end.
    pub fn next_prompt(&mut self) -> Result<Option<Next>, StoreError> {
        loop {
            if self.batch.as_ref().is_none_or(|b| self.row >= b.num_rows()) {
                match self.reader.next() {
                    None => return Ok(None),
                    Some(b) => {
                        self.batch = Some(b.map_err(|e| corrupt(&self.path, e))?);
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
                .ok_or_else(|| corrupt(&self.path, "no `shard` column"))?;
            if self.skip.contains(&shard)
                || RowFlags::of(batch).is_some_and(|f| f.excluded(i, self.exclusion))
            {
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
                (self.saved, self.texts) =
                    load_saved(&self.root, shard, &self.policy, self.with_texts)?;
                self.loaded_shard = Some(shard);
            }
            let saved = self.saved.remove(prompt.id.as_ref()).unwrap_or_default();
            let texts = self.texts.remove(prompt.id.as_ref()).unwrap_or_default();
            return Ok(Some(Next {
                prompt,
                saved,
                texts,
            }));
        }
    }
}

/// Saved rollouts and (when asked) their texts, by prompt id.
type Saved = (
    HashMap<String, Vec<SavedRollout>>,
    HashMap<String, Vec<SavedResponse>>,
);

/// The saved rollouts of one shard by prompt id (only what resume needs),
/// with the texts of those that did not fail when `texts`.
pub fn load_saved(
    root: &Path,
    shard: u32,
    policy: &Policy,
    texts: bool,
) -> Result<Saved, StoreError> {
    let mut out: HashMap<String, Vec<SavedRollout>> = HashMap::new();
    let mut responses: HashMap<String, Vec<SavedResponse>> = HashMap::new();
    crate::store::parts::for_each_saved(root, shard, texts, |id, row, text| {
        let valid = policy.is_valid(row.has_response, row.failed, row.truncated);
        out.entry(id.to_string()).or_default().push(SavedRollout {
            rollout_idx: row.rollout_idx,
            step: row.step,
            valid,
            score: row.score,
            failed: row.failed,
        });
        if let Some(t) = text.filter(|_| !row.failed) {
            responses
                .entry(id.to_string())
                .or_default()
                .push(SavedResponse {
                    rollout_idx: row.rollout_idx,
                    response: t.response.map(str::to_string),
                    reasoning: t.reasoning.map(str::to_string),
                });
        }
    })?;
    Ok((out, responses))
}
