//! `state.json`: the run's format version, per-shard status and counters,
//! with the records of sampling tasks ([`super::task`]) folded in.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::StoreError;
use super::atomic::write_atomic;
use super::rollout::Validity;
use super::task::{Task, TaskState};

/// Version of the work-dir layout and table schemas; bumped on incompatible change.
pub const FORMAT_VERSION: u32 = 1;

/// Where a shard is in the pipeline (ordered: a later status wins when
/// records are folded together).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
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

impl Counters {
    /// Adds (`sign` 1) or takes away (`sign` -1) the request counters of
    /// `other` (the prompt counts are the work dir's, not a task's).
    fn fold(&mut self, other: &Counters, sign: i8) {
        let pairs = [
            (&mut self.requests, other.requests),
            (&mut self.retries, other.retries),
            (&mut self.failed_requests, other.failed_requests),
            (&mut self.judge_requests, other.judge_requests),
            (&mut self.judge_failed_requests, other.judge_failed_requests),
            (&mut self.judge_prompt_tokens, other.judge_prompt_tokens),
            (
                &mut self.judge_completion_tokens,
                other.judge_completion_tokens,
            ),
        ];
        for (mine, theirs) in pairs {
            *mine = if sign >= 0 {
                *mine + theirs
            } else {
                mine.saturating_sub(theirs)
            };
        }
    }
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
    /// The tasks' counters folded into `counters` by [`RunState::load`]
    /// (taken out again when saved: the task files keep them).
    #[serde(skip)]
    from_tasks: Counters,
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
            from_tasks: Counters::default(),
        }
    }

    /// Reads `path` with the records of every sampling task beside it
    /// (`tasks/*.json`) folded in: a shard's latest status, the sum of
    /// the counters, every guard's record. Refuses work dirs written by a
    /// newer, incompatible rsr.
    pub fn load(path: &Path) -> Result<Self, StoreError> {
        let mut state = Self::load_own(path)?;
        if let Some(root) = path.parent() {
            for task in super::task::load_all(root)? {
                state.fold_task(&task);
            }
        }
        Ok(state)
    }

    fn fold_task(&mut self, task: &TaskState) {
        for s in &mut self.shards {
            if let Some(&status) = task.shards.get(&s.shard) {
                s.status = s.status.max(status);
            }
        }
        self.counters.fold(&task.counters, 1);
        self.from_tasks.fold(&task.counters, 1);
        for (name, record) in &task.guards {
            let keep = self.guards.get(name).is_some_and(|r| r.fired);
            if !keep {
                self.guards.insert(name.clone(), record.clone());
            }
        }
    }

    /// `state.json` alone.
    fn load_own(path: &Path) -> Result<Self, StoreError> {
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

    /// Writes the state atomically, stamping `updated_at`.
    /// The tasks' counters stay in their own files.
    pub fn save(&mut self, path: &Path) -> Result<(), StoreError> {
        self.updated_at = now_rfc3339();
        self.rsr_version = env!("CARGO_PKG_VERSION").to_string();
        let mut own = self.clone();
        own.counters.fold(&self.from_tasks, -1);
        let mut text = serde_json::to_string_pretty(&own).expect("state serializes");
        text.push('\n');
        write_atomic(path, text.as_bytes()).map_err(|source| StoreError::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}

/// Where a command records shard statuses, guards and counters: the
/// work dir's `state.json`, or a sampling task's own file.
#[derive(Debug, Clone)]
pub enum StateFile {
    /// `state.json`: a command that holds the whole work dir.
    Run(PathBuf),
    /// `tasks/task-I-of-N.json` of the work dir at `root`.
    Task {
        /// The work dir.
        root: PathBuf,
        /// The task.
        task: Task,
    },
}

impl StateFile {
    /// `state.json`, as every record folds into it.
    pub fn load(&self) -> Result<RunState, StoreError> {
        RunState::load(&self.state_json())
    }

    fn state_json(&self) -> PathBuf {
        match self {
            Self::Run(path) => path.clone(),
            Self::Task { root, .. } => super::state_path(root),
        }
    }

    /// Records `state`: all of it in `state.json`, or the statuses of the
    /// task's shards and the guards in the task's file.
    pub fn save(&self, state: &mut RunState) -> Result<(), StoreError> {
        match self {
            Self::Run(path) => state.save(path),
            Self::Task { root, task } => {
                let mut own = TaskState::load_or_new(root, *task)?;
                own.shards = state
                    .shards
                    .iter()
                    .filter(|s| task.owns(s.shard) && s.status != ShardStatus::Pending)
                    .map(|s| (s.shard, s.status))
                    .collect();
                own.guards = state.guards.clone();
                own.save(root)
            }
        }
    }

    /// Sets `shard`'s status and records it when it changed.
    pub fn set_status(
        &self,
        state: &mut RunState,
        shard: u32,
        status: ShardStatus,
    ) -> Result<(), StoreError> {
        if let Some(s) = state.shards.iter_mut().find(|s| s.shard == shard)
            && s.status != status
        {
            s.status = status;
            self.save(state)?;
        }
        Ok(())
    }

    /// Marks the task's start in its file (host, pid, time); nothing for
    /// `state.json`.
    pub fn start(&self) -> Result<(), StoreError> {
        if let Self::Task { root, task } = self {
            let mut own = TaskState::load_or_new(root, *task)?;
            own.host = super::task::host_name();
            own.pid = std::process::id();
            own.started_at = now_rfc3339();
            own.save(root)?;
        }
        Ok(())
    }

    /// Adds to the saved counters with `add` (loaded, added, saved: the
    /// writer thread may have changed shard statuses in between).
    fn add(&self, add: impl FnOnce(&mut Counters)) -> Result<(), StoreError> {
        match self {
            Self::Run(path) => {
                let mut state = RunState::load(path)?;
                add(&mut state.counters);
                state.save(path)
            }
            Self::Task { root, task } => {
                let mut own = TaskState::load_or_new(root, *task)?;
                add(&mut own.counters);
                own.save(root)
            }
        }
    }

    /// Adds one sampling run's request counts.
    pub fn add_requests(&self, requests: u64, retries: u64, failed: u64) -> Result<(), StoreError> {
        self.add(|c| {
            c.requests += requests;
            c.retries += retries;
            c.failed_requests += failed;
        })
    }

    /// Adds one judging run's totals (requests, failed requests, prompt and
    /// completion tokens).
    pub fn add_judge(
        &self,
        requests: u64,
        failed: u64,
        prompt_tokens: u64,
        completion_tokens: u64,
    ) -> Result<(), StoreError> {
        self.add(|c| {
            c.judge_requests += requests;
            c.judge_failed_requests += failed;
            c.judge_prompt_tokens += prompt_tokens;
            c.judge_completion_tokens += completion_tokens;
        })
    }
}

/// Now, as the records write it.
pub(crate) fn now_rfc3339() -> String {
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
    fn task_records_fold_in_and_stay_out_of_state_json() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let mut state = RunState::new(&[3, 3, 3, 3], 0);
        state.counters.requests = 5;
        state.save(&path).unwrap();
        for i in 0..2 {
            let file = StateFile::Task {
                root: dir.path().to_path_buf(),
                task: Task::new(i, 2).unwrap(),
            };
            let mut seen = file.load().unwrap();
            file.set_status(&mut seen, i, ShardStatus::Done).unwrap();
            file.set_status(&mut seen, i + 2, ShardStatus::Running)
                .unwrap();
            file.add_requests(10, 1, 0).unwrap();
        }
        let all = RunState::load(&path).unwrap();
        let statuses: Vec<_> = all.shards.iter().map(|s| s.status).collect();
        use ShardStatus::*;
        assert_eq!(statuses, [Done, Done, Running, Running]);
        assert_eq!((all.counters.requests, all.counters.retries), (25, 2));
        // A whole-dir writer adds its own and saves: the tasks' counts are
        // not written into state.json (they would count twice).
        StateFile::Run(path.clone()).add_requests(1, 0, 0).unwrap();
        assert_eq!(RunState::load(&path).unwrap().counters.requests, 26);
        assert_eq!(RunState::load_own(&path).unwrap().counters.requests, 6);
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
