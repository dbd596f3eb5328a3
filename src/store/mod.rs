//! The work directory: every path in it, atomic writes, Parquet, the
//! journal, `state.json`, the table contracts and resume.
//!
//! Every command reads and writes a run through [`WorkDir`] and the path
//! functions here and in [`rollout`], so the layout lives in one place:
//!
//! ```text
//! WORK_DIR/config.yaml                      resolved config, no secrets
//! WORK_DIR/state.json                       format version, shards, counters, validity
//! WORK_DIR/data/input.parquet               prepared prompts (inputs)
//! WORK_DIR/data/hygiene.json                the last hygiene check's counts
//! WORK_DIR/rollout/shard_NNNN/part-*.parquet rollouts (and a journal per part being written)
//! WORK_DIR/scores/<label>/shard_NNNN.parquet verdicts per label, with verifier.json
//! WORK_DIR/judge/shard_NNNN/part-*.parquet  the judge's answered requests
//! WORK_DIR/train/                           training files, manifests, dataset card
//! WORK_DIR/summary/                         statistics, charts, report.html
//! WORK_DIR/logs/run.log                     every log line of every command
//! WORK_DIR/logs/task-I-of-N.log             a sampling task's log lines
//! WORK_DIR/logs/task-I-of-N/                the servers a sampling task launched
//! WORK_DIR/.replay-spill/                   a replay file split per shard, while replaying
//! WORK_DIR/tasks/task-I-of-N.json           a sampling task's shard statuses and counters
//! WORK_DIR/rollout/shard_NNNN/.owner        locked by the task sampling the shard
//! WORK_DIR/.lock                            held by the command writing the work dir
//!                                           (shared by sampling tasks)
//! WORK_DIR/.prepare.lock                    held by the sampling task preparing it
//! ```

pub mod atomic;
pub mod inputs;
pub mod journal;
pub mod judged;
pub mod lock;
pub mod parquet;
pub mod parts;
pub mod rollout;
pub mod state;
pub mod task;

use std::io;
use std::path::{Path, PathBuf};

use thiserror::Error;

pub use atomic::{AtomicFile, write_atomic};
pub use lock::WorkDirLock;
pub use state::{RunState, ShardStatus, StateFile};
pub use task::{ShardOwner, Task};

/// Errors of the work-dir layer.
#[derive(Debug, Error)]
pub enum StoreError {
    /// A file or directory could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A work-dir file exists but cannot be understood.
    #[error("{}: {message}", path.display())]
    Corrupt {
        /// The file involved.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The directory is not an rsr work dir (or has not been prepared).
    #[error(
        "{} is not an rsr work dir (no data/input.parquet): check the path (runs go to output/<timestamp>/ unless work_dir= says otherwise)",
        path.display()
    )]
    NotPrepared {
        /// The directory given.
        path: PathBuf,
    },
    /// Another process is writing the work dir.
    #[error(
        "{} is in use by another rsr process ({holder}); wait for it to finish or stop it, then run the command again",
        path.display()
    )]
    Locked {
        /// The work dir.
        path: PathBuf,
        /// Who holds the lock (pid, command, since when), as it wrote it.
        holder: String,
    },
    /// Another sampling task holds a shard this task owns.
    #[error(
        "shard {shard} is being sampled by {holder}: a task of another split (or this task \
         started twice) is running on the same work dir; wait for it or stop it, and give every \
         task of a run the same N"
    )]
    ShardTaken {
        /// The shard.
        shard: u32,
        /// Who holds it (task, pid, host, since when), as it wrote it.
        holder: String,
    },
    /// Writing a Parquet file failed.
    #[error("{}: {source}", path.display())]
    Parquet {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        source: ::parquet::errors::ParquetError,
    },
}

/// A run's directory and the paths inside it.
#[derive(Debug, Clone)]
pub struct WorkDir {
    root: PathBuf,
    lock: Option<WorkDirLock>,
    /// The sampling task this process is, when it shares the work dir.
    task: Option<Task>,
    /// The shards this task holds ([`WorkDir::take_shards`]).
    owners: std::sync::Arc<Vec<ShardOwner>>,
}

impl WorkDir {
    /// The default location of a new run: `output/YYYYMMDD_HHMMSS`.
    pub fn default_path() -> PathBuf {
        let stamp = chrono::Local::now().format("%Y%m%d_%H%M%S");
        PathBuf::from("output").join(stamp.to_string())
    }

    /// Opens `root` for writing, creating it and its subdirectories when
    /// missing, takes its lock ([`WorkDir::locked`]) and removes `*.tmp`
    /// leftovers of an interrupted earlier command.
    pub fn create_or_open(root: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let dir = Self::unlocked(root.into(), None);
        dir.make_dirs()?;
        // Lock first: `*.tmp` files of a writer still running are not leftovers.
        let dir = dir.locked()?;
        let removed = atomic::clean_tmp_files(&dir.root).map_err(|source| StoreError::Io {
            path: dir.root.clone(),
            source,
        })?;
        if removed > 0 {
            tracing::info!(
                removed,
                "removed unfinished *.tmp files of an interrupted run"
            );
        }
        Ok(dir)
    }

    fn unlocked(root: PathBuf, task: Option<Task>) -> Self {
        Self {
            root,
            lock: None,
            task,
            owners: Default::default(),
        }
    }

    fn make_dirs(&self) -> Result<(), StoreError> {
        for sub in [self.data_dir(), self.logs_dir()] {
            std::fs::create_dir_all(&sub).map_err(|source| StoreError::Io { path: sub, source })?;
        }
        Ok(())
    }

    /// Opens `root` for sampling task `task`, creating it when missing,
    /// without a lock yet: the task then holds the work dir's lock shared
    /// ([`WorkDir::share`]), prepares it under `.prepare.lock` when no task
    /// has ([`WorkDir::hold_prepare_lock`]), and takes its shards
    /// ([`WorkDir::take_shards`]).
    pub fn for_task(root: impl Into<PathBuf>, task: Task) -> Result<Self, StoreError> {
        let dir = Self::unlocked(root.into(), Some(task));
        dir.make_dirs()?;
        Ok(dir)
    }

    /// The sampling task this process is, if it is one.
    pub fn task(&self) -> Option<Task> {
        self.task
    }

    /// Whether this process samples `shard`: every shard, unless it is a
    /// task.
    pub fn owns(&self, shard: u32) -> bool {
        self.task.is_none_or(|t| t.owns(shard))
    }

    /// Where this process records shard statuses and counters.
    pub fn state_file(&self) -> StateFile {
        match self.task {
            Some(task) => StateFile::Task {
                root: self.root.clone(),
                task,
            },
            None => StateFile::Run(self.state_path()),
        }
    }

    /// Joins the sampling tasks of the work dir: its lock, held shared
    /// (refused, naming the holder, while a whole-dir writer has it).
    pub fn share(&mut self) -> Result<(), StoreError> {
        if self.lock.is_none() {
            self.lock = Some(WorkDirLock::acquire_shared(&self.root)?);
        }
        Ok(())
    }

    /// Holds `.prepare.lock`, waiting while another task has it: the
    /// sampling tasks prepare the work dir (or save their config) one at a
    /// time. Released when the returned file is dropped.
    pub fn hold_prepare_lock(&self) -> Result<std::fs::File, StoreError> {
        let path = self.root.join(PREPARE_LOCK);
        if let Ok(file) = lock::try_exclusive(&path) {
            return Ok(file);
        }
        tracing::info!("waiting for another task to prepare the work dir");
        lock::wait_exclusive(&path)
    }

    /// Takes the `.owner` lock of each shard in `shards` this task owns
    /// and removes its `*.tmp` leftovers there; refused when another
    /// process holds one of them. Nothing for a process that is not a task.
    pub fn take_shards(&mut self, shards: &[u32]) -> Result<(), StoreError> {
        let Some(task) = self.task else {
            return Ok(());
        };
        let mut owners = Vec::new();
        for &shard in shards.iter().filter(|&&s| task.owns(s)) {
            owners.push(ShardOwner::acquire(&self.root, shard, task)?);
            let removed = clean_shard_tmp(&self.root, shard).map_err(|source| StoreError::Io {
                path: rollout::rollout_shard_dir(&self.root, shard),
                source,
            })?;
            if removed > 0 {
                tracing::info!(
                    shard,
                    removed,
                    "removed unfinished *.tmp files of an interrupted task"
                );
            }
        }
        self.owners = std::sync::Arc::new(owners);
        Ok(())
    }

    /// Opens an existing, prepared work dir without changing anything in it.
    pub fn open_prepared(root: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let dir = Self::unlocked(root.into(), None);
        if !dir.input_path().is_file() {
            return Err(StoreError::NotPrepared { path: dir.root });
        }
        Ok(dir)
    }

    /// This work dir with its writer lock held ([`WorkDirLock`]): every
    /// command that writes to it calls this first. A second writer gets
    /// [`StoreError::Locked`] at once.
    pub fn locked(mut self) -> Result<Self, StoreError> {
        if self.lock.is_none() {
            self.lock = Some(WorkDirLock::acquire(&self.root)?);
        }
        Ok(self)
    }

    /// Whether `root` holds a saved config (a run started there before).
    pub fn has_saved_config(root: &Path) -> bool {
        root.join(CONFIG_FILE).is_file()
    }

    /// Whether anything was sampled into `root`: a rollout part file or a
    /// journal of rows not yet flushed. A work dir with neither produced
    /// nothing that a changed setting could contradict.
    pub fn has_sampled(root: &Path) -> bool {
        let shards = std::fs::read_dir(rollout::rollout_dir(root))
            .into_iter()
            .flatten();
        shards.flatten().any(|shard| {
            std::fs::read_dir(shard.path())
                .into_iter()
                .flatten()
                .flatten()
                .any(|f| {
                    let p = f.path();
                    matches!(
                        p.extension().and_then(|e| e.to_str()),
                        Some("parquet" | "journal")
                    )
                })
        })
    }

    /// The work dir itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `config.yaml`: the resolved config of the run.
    pub fn config_path(&self) -> PathBuf {
        self.root.join(CONFIG_FILE)
    }

    /// `state.json`.
    pub fn state_path(&self) -> PathBuf {
        state_path(&self.root)
    }

    /// `data/`.
    pub fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    /// `data/input.parquet`: the prepared prompts.
    pub fn input_path(&self) -> PathBuf {
        self.data_dir().join("input.parquet")
    }

    /// `logs/`.
    pub fn logs_dir(&self) -> PathBuf {
        self.root.join("logs")
    }

    /// `logs/run.log`, or a sampling task's `logs/task-I-of-N.log`.
    pub fn run_log_path(&self) -> PathBuf {
        match self.task {
            Some(task) => self.logs_dir().join(format!("{}.log", task.name())),
            None => self.logs_dir().join("run.log"),
        }
    }

    /// `.replay-spill/`, or a sampling task's `.replay-spill/task-I-of-N/`.
    pub fn replay_spill_dir(&self) -> PathBuf {
        let dir = replay_spill_dir(&self.root);
        match self.task {
            Some(task) => dir.join(task.name()),
            None => dir,
        }
    }

    /// Where the servers this process launches log: `logs/`, or a sampling
    /// task's `logs/task-I-of-N/` (each task may launch its own).
    pub fn server_logs_dir(&self) -> PathBuf {
        match self.task {
            Some(task) => self.logs_dir().join(task.name()),
            None => self.logs_dir(),
        }
    }

    /// `logs/judge/` (a task's under its own server logs): the logs of a
    /// judge server rsr launched.
    pub fn judge_logs_dir(&self) -> PathBuf {
        self.server_logs_dir().join("judge")
    }

    /// `data/hygiene.json`.
    pub fn hygiene_report_path(&self) -> PathBuf {
        hygiene_report_path(&self.root)
    }
}

/// Removes the `*.tmp` leftovers of `shard` (its rollout and judge
/// directories, its score files) and returns how many there were.
fn clean_shard_tmp(root: &Path, shard: u32) -> io::Result<usize> {
    let mut removed = 0;
    for dir in [
        rollout::rollout_shard_dir(root, shard),
        judge_dir(root).join(format!("shard_{shard:04}")),
    ] {
        if dir.is_dir() {
            removed += atomic::clean_tmp_files(&dir)?;
        }
    }
    if let Ok(labels) = std::fs::read_dir(rollout::scores_dir(root)) {
        for label in labels.flatten() {
            let tmp = atomic::tmp_path(&rollout::score_path(
                root,
                &label.file_name().to_string_lossy(),
                shard,
            ));
            if tmp.is_file() {
                std::fs::remove_file(&tmp)?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}

/// Held by the sampling task preparing the work dir.
const PREPARE_LOCK: &str = ".prepare.lock";

/// File name of the saved config inside a work dir.
pub const CONFIG_FILE: &str = "config.yaml";

/// `state.json` of the work dir `root`.
pub fn state_path(root: &Path) -> PathBuf {
    root.join("state.json")
}

/// What makes a rollout of the run in `root` valid: kept in `state.json`
/// since the run was prepared; for a work dir prepared before that, its
/// saved `sampler.drop_truncated` (read as plain YAML), else the default.
pub fn saved_validity(root: &Path) -> Result<rollout::Validity, StoreError> {
    let state = state_path(root);
    if state.is_file()
        && let Some(v) = RunState::load(&state)?.validity
    {
        return Ok(v);
    }
    let path = root.join(CONFIG_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(rollout::Validity::default()),
        Err(source) => return Err(StoreError::Io { path, source }),
    };
    let yaml: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&text).map_err(|e| StoreError::Corrupt {
            path: path.clone(),
            message: e.to_string(),
        })?;
    let drop_truncated = yaml
        .get("sampler")
        .and_then(|s| s.get("drop_truncated"))
        .and_then(serde_yaml_ng::Value::as_bool)
        .unwrap_or(true);
    Ok(rollout::Validity { drop_truncated })
}

/// `data/hygiene.json`: the counts of the last hygiene check.
pub fn hygiene_report_path(root: &Path) -> PathBuf {
    root.join("data").join("hygiene.json")
}

/// `train/`: the formatters' training files, their manifests and the
/// dataset card.
pub fn train_dir(root: &Path) -> PathBuf {
    root.join("train")
}

/// `summary/`: the analysis of the run (`stats.json`, `report.md`, the
/// pass-rate table).
pub fn summary_dir(root: &Path) -> PathBuf {
    root.join("summary")
}

/// `summary/charts/`: the analysis charts.
pub fn charts_dir(root: &Path) -> PathBuf {
    summary_dir(root).join("charts")
}

/// `judge/`: the judged requests, journaled per shard.
pub fn judge_dir(root: &Path) -> PathBuf {
    root.join("judge")
}

/// `.replay-spill/`: a replay file's responses split per shard while a run
/// replays it (removed when it ends).
pub fn replay_spill_dir(root: &Path) -> PathBuf {
    root.join(".replay-spill")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_path_is_a_timestamp_under_output() {
        let p = WorkDir::default_path();
        let name = p.file_name().unwrap().to_str().unwrap();
        assert!(p.starts_with("output"));
        assert_eq!(name.len(), 15, "{name}");
        assert_eq!(&name[8..9], "_");
    }

    #[test]
    fn create_makes_the_layout_and_cleans_leftovers() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("run");
        std::fs::create_dir_all(root.join("data")).unwrap();
        std::fs::write(root.join("data/input.parquet.tmp"), b"x").unwrap();
        let wd = WorkDir::create_or_open(&root).unwrap();
        assert!(wd.logs_dir().is_dir());
        assert!(!root.join("data/input.parquet.tmp").exists());
        assert!(matches!(
            WorkDir::open_prepared(&root),
            Err(StoreError::NotPrepared { .. })
        ));
    }

    #[test]
    fn validity_comes_from_the_state_then_an_older_config_then_the_default() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let keep = rollout::Validity {
            drop_truncated: false,
        };
        assert_eq!(saved_validity(root).unwrap(), rollout::Validity::default());
        // A work dir prepared before the state kept it: its config says.
        std::fs::write(
            root.join(CONFIG_FILE),
            "sampler:\n  model: m\n  drop_truncated: false\n",
        )
        .unwrap();
        assert_eq!(saved_validity(root).unwrap(), keep);
        let mut state = RunState::new(&[3], 0);
        state.save(&state_path(root)).unwrap();
        assert_eq!(
            saved_validity(root).unwrap(),
            keep,
            "no validity in the state"
        );
        state.validity = Some(rollout::Validity::default());
        state.save(&state_path(root)).unwrap();
        assert_eq!(saved_validity(root).unwrap(), rollout::Validity::default());
    }
}
