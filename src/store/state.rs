//! `state.json`: the run's format version, per-shard status and counters.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::StoreError;
use super::atomic::write_atomic;
use super::rollout::Validity;

/// Version of the work-dir layout and table schemas; bumped on incompatible change.
pub const FORMAT_VERSION: u32 = 1;

/// Where a shard is in the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShardStatus {
    /// Prepared; no rollout requested yet.
    Pending,
    /// Sampling started and has not finished.
    Running,
    /// Every prompt of the shard is finished.
    Done,
}

/// One shard of `data/input.parquet`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardState {
    /// Shard number, as in the `shard` column.
    pub shard: u32,
    /// Prompts in the shard.
    pub prompts: u64,
    /// Pipeline status.
    pub status: ShardStatus,
}

/// Totals kept across commands.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Counters {
    /// Prompts in `data/input.parquet`.
    pub prompts: u64,
    /// Prompts whose `answer` is null.
    pub prompts_without_answer: u64,
    /// Requests `rsr sample` completed (after retries), over all its runs.
    pub requests: u64,
    /// Retries `rsr sample` made, over all its runs.
    pub retries: u64,
    /// Requests that failed after their retries, over all runs (their
    /// rollouts were requested again).
    pub failed_requests: u64,
    /// Requests sent to the judge server (model verifiers), over all runs.
    pub judge_requests: u64,
    /// Judge requests that failed after their retries.
    pub judge_failed_requests: u64,
    /// Prompt tokens the judge server reported.
    pub judge_prompt_tokens: u64,
    /// Completion tokens the judge server reported.
    pub judge_completion_tokens: u64,
}

/// Contents of `state.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    /// Layout version this work dir was written with ([`FORMAT_VERSION`]).
    pub format_version: u32,
    /// Version of rsr that last wrote the file.
    pub rsr_version: String,
    /// When the work dir was created (RFC 3339).
    pub created_at: String,
    /// When this file was last written (RFC 3339).
    pub updated_at: String,
    /// One entry per shard, in shard order.
    pub shards: Vec<ShardState>,
    /// Run totals.
    pub counters: Counters,
    /// The pitfall guards' figures once their windows filled, by guard
    /// (`truncation`, `identical`, `no_answer`). A guard with a record that
    /// did not fire is not run again on resume.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub guards: BTreeMap<String, GuardRecord>,
    /// What makes a rollout of this run valid (`sampler.drop_truncated`,
    /// frozen when the run is created), for every reader of its rows;
    /// `None` in work dirs prepared before it was kept here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validity: Option<Validity>,
}

/// What a guard saw in its window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuardRecord {
    /// Observations in the window.
    pub seen: u64,
    /// Of which hits (truncated, identical, no answer).
    pub hits: u64,
    /// The threshold the share was held against.
    pub max_rate: f64,
    /// Whether the share was above it.
    pub fired: bool,
}

impl RunState {
    /// A fresh state for a work dir whose input has `shard_sizes[i]` prompts in shard `i`.
    pub fn new(shard_sizes: &[u64], prompts_without_answer: u64) -> Self {
        let now = now_rfc3339();
        Self {
            format_version: FORMAT_VERSION,
            rsr_version: env!("CARGO_PKG_VERSION").to_string(),
            created_at: now.clone(),
            updated_at: now,
            shards: shard_sizes
                .iter()
                .enumerate()
                .map(|(i, &prompts)| ShardState {
                    shard: i as u32,
                    prompts,
                    status: ShardStatus::Pending,
                })
                .collect(),
            counters: Counters {
                prompts: shard_sizes.iter().sum(),
                prompts_without_answer,
                ..Counters::default()
            },
            guards: BTreeMap::new(),
            validity: None,
        }
    }

    /// Reads `path`, refusing work dirs written by a newer, incompatible rsr.
    pub fn load(path: &Path) -> Result<Self, StoreError> {
        let text = std::fs::read_to_string(path).map_err(|source| StoreError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let state: Self = serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        if state.format_version > FORMAT_VERSION {
            return Err(StoreError::Corrupt {
                path: path.to_path_buf(),
                message: format!(
                    "format version {} is newer than this rsr understands ({FORMAT_VERSION}); upgrade rsr",
                    state.format_version
                ),
            });
        }
        Ok(state)
    }

    /// Adds one sampling run's request counts to the saved counters of
    /// `path` (loaded, added, saved: the writer thread may have changed
    /// shard statuses in between).
    pub fn add_requests(
        path: &Path,
        requests: u64,
        retries: u64,
        failed: u64,
    ) -> Result<(), StoreError> {
        let mut state = Self::load(path)?;
        state.counters.requests += requests;
        state.counters.retries += retries;
        state.counters.failed_requests += failed;
        state.save(path)
    }

    /// Adds one judging run's totals (requests, failed requests, prompt and
    /// completion tokens) to the saved counters of `path`.
    pub fn add_judge(
        path: &Path,
        requests: u64,
        failed: u64,
        prompt_tokens: u64,
        completion_tokens: u64,
    ) -> Result<(), StoreError> {
        let mut state = Self::load(path)?;
        let c = &mut state.counters;
        c.judge_requests += requests;
        c.judge_failed_requests += failed;
        c.judge_prompt_tokens += prompt_tokens;
        c.judge_completion_tokens += completion_tokens;
        state.save(path)
    }

    /// Sets `shard`'s status and saves the state when it changed.
    pub fn set_status(
        &mut self,
        path: &Path,
        shard: u32,
        status: ShardStatus,
    ) -> Result<(), StoreError> {
        if let Some(s) = self.shards.iter_mut().find(|s| s.shard == shard)
            && s.status != status
        {
            s.status = status;
            self.save(path)?;
        }
        Ok(())
    }

    /// Writes the state atomically, stamping `updated_at`.
    pub fn save(&mut self, path: &Path) -> Result<(), StoreError> {
        self.updated_at = now_rfc3339();
        self.rsr_version = env!("CARGO_PKG_VERSION").to_string();
        let mut text = serde_json::to_string_pretty(self).expect("state serializes");
        text.push('\n');
        write_atomic(path, text.as_bytes()).map_err(|source| StoreError::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}

fn now_rfc3339() -> String {
    chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_counts_prompts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let mut state = RunState::new(&[3, 3, 1], 2);
        state.save(&path).unwrap();
        let loaded = RunState::load(&path).unwrap();
        assert_eq!(loaded, state);
        assert_eq!(loaded.counters.prompts, 7);
        assert_eq!(loaded.shards[2].status, ShardStatus::Pending);
    }

    #[test]
    fn refuses_a_newer_format() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let mut state = RunState::new(&[1], 0);
        state.format_version = FORMAT_VERSION + 1;
        std::fs::write(&path, serde_json::to_string(&state).unwrap()).unwrap();
        let err = RunState::load(&path).unwrap_err().to_string();
        assert!(err.contains("newer"), "{err}");
    }
}
