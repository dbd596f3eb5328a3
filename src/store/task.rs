//! Sampling tasks: N processes sharing one work dir, each owning a fixed
//! set of shards (`rsr sample --task I/N`).
//!
//! Task `I` of `N` owns the shards `s` with `s % N == I`: every task
//! computes the same split from the numbers alone, whatever order they
//! start in. A task records its progress in `tasks/task-I-of-N.json`
//! ([`TaskState`]: its shards' statuses, its request counters, its guards)
//! instead of `state.json`, which several processes would rewrite over
//! each other; [`super::RunState::load`] folds every task file in, so every
//! reader sees the union. Ownership is enforced, not assumed: a task holds
//! an exclusive `flock` on `rollout/shard_NNNN/.owner` for each shard it
//! samples ([`ShardOwner`]), so two tasks that would sample the same shard
//! (the same task started twice, or tasks split by different `N`) cannot,
//! and the work dir's own lock is held shared by tasks, exclusive by every
//! other writer.

use std::collections::BTreeMap;
use std::fs::{File, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::StoreError;
use super::atomic::write_atomic;
use super::rollout::rollout_shard_dir;
use super::state::{Counters, GuardRecord, ShardStatus};

/// One task of a split: `index` in `0..count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Task {
    /// This task's number, from 0.
    pub index: u32,
    /// How many tasks share the work dir.
    pub count: u32,
}

/// Why a task could not be named.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TaskError {
    /// `--task` was not `I/N` or `auto`.
    #[error("--task {0}: expected I/N (task I of N, from 0: --task 3/8) or auto")]
    Syntax(String),
    /// `I` is not below `N`.
    #[error("--task {index}/{count}: the task number counts from 0, so it must be below {count}")]
    OutOfRange {
        /// The index given.
        index: u32,
        /// The count given.
        count: u32,
    },
    /// `--task auto` found no scheduler's variables.
    #[error(
        "--task auto: no task index in the environment: Slurm arrays set SLURM_ARRAY_TASK_ID and \
         SLURM_ARRAY_TASK_COUNT; a Kubernetes Indexed Job sets JOB_COMPLETION_INDEX, and its \
         manifest must set JOB_COMPLETIONS to .spec.completions; or give --task I/N"
    )]
    NoScheduler,
    /// A scheduler variable was there but unusable.
    #[error("--task auto: {name}={value} is not {what}")]
    BadVariable {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
        /// What it should be.
        what: &'static str,
    },
}

impl Task {
    /// Parses `I/N`.
    pub fn parse(text: &str) -> Result<Self, TaskError> {
        let syntax = || TaskError::Syntax(text.to_string());
        let (i, n) = text.split_once('/').ok_or_else(syntax)?;
        let index: u32 = i.trim().parse().map_err(|_| syntax())?;
        let count: u32 = n.trim().parse().map_err(|_| syntax())?;
        Self::new(index, count)
    }

    /// Task `index` of `count`, checked.
    pub fn new(index: u32, count: u32) -> Result<Self, TaskError> {
        if count == 0 || index >= count {
            return Err(TaskError::OutOfRange { index, count });
        }
        Ok(Self { index, count })
    }

    /// The task a cluster scheduler started this process as, read through
    /// `var`: a Slurm array (`SLURM_ARRAY_TASK_ID` less
    /// `SLURM_ARRAY_TASK_MIN`, of `SLURM_ARRAY_TASK_COUNT`) or a
    /// Kubernetes Indexed Job (`JOB_COMPLETION_INDEX` of `JOB_COMPLETIONS`).
    pub fn from_scheduler(var: impl Fn(&str) -> Option<String>) -> Result<Self, TaskError> {
        let number = |name: &'static str, what: &'static str| -> Result<Option<u32>, TaskError> {
            var(name)
                .map(|v| {
                    v.trim().parse::<u32>().map_err(|_| TaskError::BadVariable {
                        name,
                        value: v,
                        what,
                    })
                })
                .transpose()
        };
        if let Some(id) = number("SLURM_ARRAY_TASK_ID", "a task number")? {
            let count = number("SLURM_ARRAY_TASK_COUNT", "a task count")?.ok_or(
                TaskError::BadVariable {
                    name: "SLURM_ARRAY_TASK_COUNT",
                    value: String::new(),
                    what: "set (Slurm sets it for arrays: is this Slurm older than 17.11?)",
                },
            )?;
            let min = number("SLURM_ARRAY_TASK_MIN", "a task number")?.unwrap_or(0);
            return Self::new(id.saturating_sub(min), count);
        }
        if let Some(index) = number("JOB_COMPLETION_INDEX", "a completion index")? {
            let count =
                number("JOB_COMPLETIONS", "a completion count")?.ok_or(TaskError::BadVariable {
                    name: "JOB_COMPLETIONS",
                    value: String::new(),
                    what: "set: the Job's manifest must set it to .spec.completions",
                })?;
            return Self::new(index, count);
        }
        Err(TaskError::NoScheduler)
    }

    /// Whether this task samples `shard`.
    pub fn owns(&self, shard: u32) -> bool {
        shard % self.count == self.index
    }

    /// `task-0003-of-0008`: the stem of this task's files.
    pub fn name(&self) -> String {
        format!("task-{:04}-of-{:04}", self.index, self.count)
    }

    /// The task a file stem names (`task-0003-of-0008`).
    fn from_name(stem: &str) -> Option<Self> {
        let rest = stem.strip_prefix("task-")?;
        let (i, n) = rest.split_once("-of-")?;
        Self::new(i.parse().ok()?, n.parse().ok()?).ok()
    }
}

impl std::fmt::Display for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// `tasks/`: one state file per task that sampled the work dir.
pub fn tasks_dir(root: &Path) -> PathBuf {
    root.join("tasks")
}

/// `tasks/task-I-of-N.json`.
pub fn task_state_path(root: &Path, task: Task) -> PathBuf {
    tasks_dir(root).join(format!("{}.json", task.name()))
}

/// `rollout/shard_NNNN/.owner`: locked by the task sampling the shard.
pub fn shard_owner_path(root: &Path, shard: u32) -> PathBuf {
    rollout_shard_dir(root, shard).join(".owner")
}

/// What one task recorded: `tasks/task-I-of-N.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskState {
    /// The task's number.
    pub task: u32,
    /// Of how many.
    pub tasks: u32,
    /// The host it last ran on.
    pub host: String,
    /// Its process id there.
    pub pid: u32,
    /// When it last started (RFC 3339).
    pub started_at: String,
    /// When this file was last written (RFC 3339).
    pub updated_at: String,
    /// Status of each shard it owns that it has started.
    pub shards: BTreeMap<u32, ShardStatus>,
    /// Its own request counters, over all its runs (the prompt counts
    /// stay in `state.json`).
    pub counters: Counters,
    /// The pitfall guards' records it made.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub guards: BTreeMap<String, GuardRecord>,
}

impl TaskState {
    /// The task's saved state, or a fresh one when it never ran.
    pub fn load_or_new(root: &Path, task: Task) -> Result<Self, StoreError> {
        let path = task_state_path(root, task);
        if path.is_file() {
            return Self::load(&path);
        }
        Ok(Self {
            task: task.index,
            tasks: task.count,
            host: String::new(),
            pid: 0,
            started_at: String::new(),
            updated_at: String::new(),
            shards: BTreeMap::new(),
            counters: Counters::default(),
            guards: BTreeMap::new(),
        })
    }

    fn load(path: &Path) -> Result<Self, StoreError> {
        let text = std::fs::read_to_string(path).map_err(|source| StoreError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }

    /// This record's task.
    pub fn task(&self) -> Option<Task> {
        Task::new(self.task, self.tasks).ok()
    }

    /// Writes the file atomically, stamping `updated_at`.
    pub fn save(&mut self, root: &Path) -> Result<(), StoreError> {
        let task = Task::new(self.task, self.tasks).map_err(|e| StoreError::Corrupt {
            path: tasks_dir(root),
            message: e.to_string(),
        })?;
        let path = task_state_path(root, task);
        self.updated_at = super::state::now_rfc3339();
        let mut text = serde_json::to_string_pretty(self).expect("task state serializes");
        text.push('\n');
        write_atomic(&path, text.as_bytes()).map_err(|source| StoreError::Io { path, source })
    }
}

/// Every task file of the work dir at `root`, in task order.
pub fn load_all(root: &Path) -> Result<Vec<TaskState>, StoreError> {
    let dir = tasks_dir(root);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(StoreError::Io { path: dir, source }),
    };
    let mut states = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|source| StoreError::Io {
                path: dir.clone(),
                source,
            })?
            .path();
        let named = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".json"))
            .and_then(Task::from_name);
        if named.is_some() {
            states.push(TaskState::load(&path)?);
        }
    }
    states.sort_by_key(|s| (s.tasks, s.task));
    Ok(states)
}

/// This machine's name, for the records that say where a task runs.
pub fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at
    // most that many bytes.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// The exclusive lock on one shard's `.owner` file, held by the task that
/// samples it; released when dropped or when the process ends.
#[derive(Debug)]
pub struct ShardOwner {
    _file: File,
}

impl ShardOwner {
    /// Takes shard `shard` for `task` without waiting; the error names the
    /// process that has it.
    pub fn acquire(root: &Path, shard: u32, task: Task) -> Result<Self, StoreError> {
        let path = shard_owner_path(root, shard);
        let io = |source| StoreError::Io {
            path: path.clone(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut file = super::lock::open_rw(&path).map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                return Err(StoreError::ShardTaken {
                    shard,
                    holder: holder.trim().to_string(),
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        let who = format!(
            "task {task} (pid {} on {}) since {}\n",
            std::process::id(),
            host_name(),
            super::state::now_rfc3339()
        );
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        file.write_all(who.as_bytes()).map_err(io)?;
        Ok(Self { _file: file })
    }

    /// Who samples `shard` now, when a live process holds it.
    pub fn holder(root: &Path, shard: u32) -> Option<String> {
        let path = shard_owner_path(root, shard);
        let mut file = File::open(&path).ok()?;
        match file.try_lock_shared() {
            Ok(()) => None,
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                Some(holder.trim().to_string())
            }
            Err(TryLockError::Error(_)) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        assert_eq!(Task::parse("3/8").unwrap(), Task { index: 3, count: 8 });
        assert_eq!(Task::parse(" 0 / 1 ").unwrap(), Task { index: 0, count: 1 });
        assert!(matches!(
            Task::parse("8/8"),
            Err(TaskError::OutOfRange { .. })
        ));
        assert!(matches!(
            Task::parse("0/0"),
            Err(TaskError::OutOfRange { .. })
        ));
        assert!(matches!(Task::parse("3"), Err(TaskError::Syntax(_))));
        assert!(matches!(Task::parse("a/b"), Err(TaskError::Syntax(_))));
    }

    #[test]
    fn every_shard_has_exactly_one_owner() {
        for count in 1..6 {
            for shard in 0..40 {
                let owners = (0..count)
                    .filter(|&i| Task::new(i, count).unwrap().owns(shard))
                    .count();
                assert_eq!(owners, 1, "shard {shard} of {count} tasks");
            }
        }
    }

    #[test]
    fn reads_slurm_and_kubernetes() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let slurm = env(&[
            ("SLURM_ARRAY_TASK_ID", "5"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_COUNT", "8"),
        ]);
        assert_eq!(
            Task::from_scheduler(slurm).unwrap(),
            Task { index: 4, count: 8 }
        );
        let k8s = env(&[("JOB_COMPLETION_INDEX", "2"), ("JOB_COMPLETIONS", "4")]);
        assert_eq!(
            Task::from_scheduler(k8s).unwrap(),
            Task { index: 2, count: 4 }
        );
        let half = env(&[("JOB_COMPLETION_INDEX", "2")]);
        let err = Task::from_scheduler(half).unwrap_err().to_string();
        assert!(err.contains("JOB_COMPLETIONS"), "{err}");
        assert_eq!(
            Task::from_scheduler(env(&[])).unwrap_err(),
            TaskError::NoScheduler
        );
        let bad = env(&[
            ("SLURM_ARRAY_TASK_ID", "x"),
            ("SLURM_ARRAY_TASK_COUNT", "2"),
        ]);
        assert!(
            Task::from_scheduler(bad)
                .unwrap_err()
                .to_string()
                .contains("=x")
        );
    }

    #[test]
    fn names_round_trip() {
        let t = Task::new(3, 12).unwrap();
        assert_eq!(t.name(), "task-0003-of-0012");
        assert_eq!(Task::from_name(&t.name()), Some(t));
        assert_eq!(Task::from_name("task-0003"), None);
    }

    #[test]
    fn a_shard_has_one_owner_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let t = Task::new(0, 2).unwrap();
        let owner = ShardOwner::acquire(dir.path(), 4, t).unwrap();
        assert!(
            ShardOwner::holder(dir.path(), 4)
                .unwrap()
                .contains("task 0/2")
        );
        let err = ShardOwner::acquire(dir.path(), 4, Task::new(0, 4).unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains("shard 4") && err.contains("task 0/2"), "{err}");
        drop(owner);
        assert_eq!(ShardOwner::holder(dir.path(), 4), None);
        ShardOwner::acquire(dir.path(), 4, t).unwrap();
    }

    #[test]
    fn task_files_load_in_task_order() {
        let dir = tempfile::tempdir().unwrap();
        for i in [2, 0, 1] {
            let mut s = TaskState::load_or_new(dir.path(), Task::new(i, 3).unwrap()).unwrap();
            s.counters.requests = u64::from(i) + 10;
            s.save(dir.path()).unwrap();
        }
        std::fs::write(tasks_dir(dir.path()).join("notes.json"), "{}").unwrap();
        let all = load_all(dir.path()).unwrap();
        let order: Vec<u32> = all.iter().map(|s| s.task).collect();
        assert_eq!(order, [0, 1, 2]);
        assert_eq!(all[2].counters.requests, 12);
    }
}
