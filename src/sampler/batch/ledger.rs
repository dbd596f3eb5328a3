//! The batch ledger: every step rsr takes with a provider's batch API, on
//! disk before the next one starts, so that a run killed at any point
//! resumes without submitting (and paying for) a batch twice.
//!
//! Under `W/batch/`:
//! - `run_id`: eight hex digits naming this work dir to the provider (in
//!   file names, metadata and custom_ids);
//! - `log.jsonl`: one [`Entry`] per line, appended and synced in order:
//!   intent (the request file written and hashed), uploaded, created,
//!   each status change, downloaded, ingested, cancel asked;
//! - `requests/<batch>.jsonl`: the request lines as sent;
//!   `requests/<batch>.map.jsonl`: each custom_id's prompt and rollouts;
//! - `results/<batch>.jsonl`: the provider's result lines (output file,
//!   then error file), as downloaded.
//!
//! Request and result files appear by atomic rename before the log names
//! them.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::BatchApi;
use crate::store::StoreError;
use crate::store::atomic::write_atomic;

/// One step in the ledger's log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Entry {
    /// The request file of `batch` is written: what will be submitted.
    Intent {
        /// Local name.
        batch: String,
        /// Round (1-based).
        round: u32,
        /// The API it goes to.
        api: BatchApi,
        /// Request lines.
        requests: u64,
        /// File size.
        bytes: u64,
        /// FNV-1a 128 of the request file, hex.
        hash: String,
        /// Unix seconds, to find an unrecorded batch by listing.
        at: i64,
        /// Worst-case cost in USD at batch prices, when priced.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        worst_cost: Option<f64>,
        /// Written for running by hand (`rsr batch export`), never sent.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        manual: bool,
    },
    /// The request file is uploaded (OpenAI).
    Uploaded {
        /// Local name.
        batch: String,
        /// The provider's file id.
        file_id: String,
    },
    /// The provider created the batch.
    Created {
        /// Local name.
        batch: String,
        /// The provider's batch id.
        remote_id: String,
    },
    /// The provider reported a new status.
    Status {
        /// Local name.
        batch: String,
        /// The provider's word.
        status: String,
        /// Requests done.
        completed: u64,
        /// Requests failed.
        failed: u64,
        /// Requests in all.
        total: u64,
        /// Why the batch failed, in the provider's words.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// The results are in `results/<batch>.jsonl`.
    Downloaded {
        /// Local name.
        batch: String,
        /// Result lines.
        lines: u64,
    },
    /// Every result reached the rollout journal.
    Ingested {
        /// Local name.
        batch: String,
    },
    /// A cancel was asked of the provider.
    CancelAsked {
        /// Local name.
        batch: String,
    },
}

impl Entry {
    /// The local name of the batch the entry is about.
    pub fn batch(&self) -> &str {
        match self {
            Entry::Intent { batch, .. }
            | Entry::Uploaded { batch, .. }
            | Entry::Created { batch, .. }
            | Entry::Status { batch, .. }
            | Entry::Downloaded { batch, .. }
            | Entry::Ingested { batch }
            | Entry::CancelAsked { batch } => batch,
        }
    }
}

/// What the log says about one batch.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchRecord {
    /// Local name, `b000001`.
    pub name: String,
    /// The round it belongs to (1-based).
    pub round: u32,
    /// The API it went to.
    pub api: BatchApi,
    /// Request lines.
    pub requests: u64,
    /// Request file size.
    pub bytes: u64,
    /// The request file's hash.
    pub hash: String,
    /// When the intent was written (Unix seconds).
    pub at: i64,
    /// Worst-case cost at batch prices, when priced.
    pub worst_cost: Option<f64>,
    /// Written for running by hand, never sent to a provider.
    pub manual: bool,
    /// The uploaded file (OpenAI).
    pub file_id: Option<String>,
    /// The provider's batch id.
    pub remote_id: Option<String>,
    /// The last status seen, with (completed, failed, total).
    pub status: Option<(String, u64, u64, u64)>,
    /// The provider's error for a failed batch.
    pub error: Option<String>,
    /// Result lines on disk.
    pub downloaded: Option<u64>,
    /// Every result reached the rollout journal.
    pub ingested: bool,
    /// A cancel was asked.
    pub cancel_asked: bool,
}

impl BatchRecord {
    fn apply(&mut self, e: &Entry) {
        match e {
            Entry::Intent { .. } => {}
            Entry::Uploaded { file_id, .. } => self.file_id = Some(file_id.clone()),
            Entry::Created { remote_id, .. } => self.remote_id = Some(remote_id.clone()),
            Entry::Status {
                status,
                completed,
                failed,
                total,
                error,
                ..
            } => {
                self.status = Some((status.clone(), *completed, *failed, *total));
                if error.is_some() {
                    self.error.clone_from(error);
                }
            }
            Entry::Downloaded { lines, .. } => self.downloaded = Some(*lines),
            Entry::Ingested { .. } => self.ingested = true,
            Entry::CancelAsked { .. } => self.cancel_asked = true,
        }
    }
}

/// The ledger of a work dir: its log replayed, open for appending.
#[derive(Debug)]
pub struct Ledger {
    dir: PathBuf,
    run_id: String,
    log: Option<File>,
    /// Every batch by local name, in order.
    pub batches: BTreeMap<String, BatchRecord>,
}

/// `W/batch/`.
pub fn ledger_dir(root: &Path) -> PathBuf {
    root.join("batch")
}

impl Ledger {
    /// Reads the ledger of the work dir at `root` (an empty one when it has
    /// none); nothing is created until [`Ledger::append`] or
    /// [`Ledger::run_id`] needs it. A last log line cut off by a kill is
    /// dropped (its step is taken again).
    pub fn open(root: &Path) -> Result<Self, StoreError> {
        Self::open_dir(&ledger_dir(root))
    }

    /// The ledger kept in `dir` (the judge's is `W/judge/batch/`).
    pub fn open_dir(dir: &Path) -> Result<Self, StoreError> {
        let dir = dir.to_path_buf();
        let run_id = std::fs::read_to_string(dir.join("run_id"))
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        let mut batches: BTreeMap<String, BatchRecord> = BTreeMap::new();
        let log_path = dir.join("log.jsonl");
        if let Ok(f) = File::open(&log_path) {
            for (i, line) in BufReader::new(f).lines().enumerate() {
                let line = line.map_err(|e| io_err(&log_path, e))?;
                if line.trim().is_empty() {
                    continue;
                }
                let entry: Entry = match serde_json::from_str(&line) {
                    Ok(e) => e,
                    Err(e) => {
                        tracing::warn!(
                            "{}:{}: unreadable ledger line dropped ({e}); its step is taken again",
                            log_path.display(),
                            i + 1
                        );
                        continue;
                    }
                };
                if let Entry::Intent { batch, .. } = &entry {
                    batches.insert(batch.clone(), Self::record_of(&entry));
                } else if let Some(b) = batches.get_mut(entry.batch()) {
                    b.apply(&entry);
                }
            }
        }
        Ok(Self {
            dir,
            run_id,
            log: None,
            batches,
        })
    }

    /// Whether the work dir has ever used a batch API.
    pub fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    /// This work dir's id towards providers, made once.
    pub fn run_id(&mut self) -> Result<String, StoreError> {
        if self.run_id.is_empty() {
            let mut rng = crate::sampler::retry::SplitMix::from_entropy();
            let id = format!("{:08x}", rng.next_u64() as u32);
            std::fs::create_dir_all(&self.dir).map_err(|e| io_err(&self.dir, e))?;
            let path = self.dir.join("run_id");
            write_atomic(&path, id.as_bytes()).map_err(|e| io_err(&path, e))?;
            self.run_id = id;
        }
        Ok(self.run_id.clone())
    }

    /// Appends `entry` to the log and syncs it; the record follows.
    pub fn append(&mut self, entry: Entry) -> Result<(), StoreError> {
        let path = self.dir.join("log.jsonl");
        if self.log.is_none() {
            std::fs::create_dir_all(&self.dir).map_err(|e| io_err(&self.dir, e))?;
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| io_err(&path, e))?;
            self.log = Some(f);
        }
        let mut line = serde_json::to_string(&entry).expect("entries serialize");
        line.push('\n');
        let f = self.log.as_mut().expect("opened above");
        f.write_all(line.as_bytes())
            .and_then(|()| f.sync_data())
            .map_err(|e| io_err(&path, e))?;
        if let Entry::Intent { batch, .. } = &entry {
            // A record is made by the intent, as when the log is replayed.
            let replayed = Self::record_of(&entry);
            self.batches.insert(batch.clone(), replayed);
        } else if let Some(b) = self.batches.get_mut(entry.batch()) {
            b.apply(&entry);
        }
        Ok(())
    }

    fn record_of(entry: &Entry) -> BatchRecord {
        let Entry::Intent {
            batch,
            round,
            api,
            requests,
            bytes,
            hash,
            at,
            worst_cost,
            manual,
        } = entry
        else {
            unreachable!("an intent")
        };
        BatchRecord {
            name: batch.clone(),
            round: *round,
            api: *api,
            requests: *requests,
            bytes: *bytes,
            hash: hash.clone(),
            at: *at,
            worst_cost: *worst_cost,
            manual: *manual,
            file_id: None,
            remote_id: None,
            status: None,
            error: None,
            downloaded: None,
            ingested: false,
            cancel_asked: false,
        }
    }

    /// The next batch's local name.
    pub fn next_name(&self) -> String {
        format!("b{:06}", self.batches.len() + 1)
    }

    /// The last round the log knows of (0: none).
    pub fn last_round(&self) -> u32 {
        self.batches.values().map(|b| b.round).max().unwrap_or(0)
    }

    /// `requests/<batch>.jsonl`.
    pub fn requests_path(&self, batch: &str) -> PathBuf {
        self.dir.join("requests").join(format!("{batch}.jsonl"))
    }

    /// `requests/<batch>.map.jsonl`.
    pub fn map_path(&self, batch: &str) -> PathBuf {
        self.dir.join("requests").join(format!("{batch}.map.jsonl"))
    }

    /// `results/<batch>.jsonl`.
    pub fn results_path(&self, batch: &str) -> PathBuf {
        self.dir.join("results").join(format!("{batch}.jsonl"))
    }

    /// Writes `bytes` to `path` by atomic rename, its folder made.
    pub fn write_file(&self, path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io_err(parent, e))?;
        }
        write_atomic(path, bytes).map_err(|e| io_err(path, e))
    }
}

fn io_err(path: &Path, source: std::io::Error) -> StoreError {
    StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One request of a batch: its custom_id and what it asks for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MapLine {
    /// The id the provider echoes (≤ 64 of `[A-Za-z0-9_-]`).
    pub custom_id: String,
    /// The prompt id.
    pub id: String,
    /// `(rollout_idx, ordinal)` of each response asked for.
    pub rollouts: Vec<(u32, u32)>,
}

/// Reads a batch's map file.
pub fn read_map(path: &Path) -> Result<Vec<MapLine>, StoreError> {
    let f = File::open(path).map_err(|e| io_err(path, e))?;
    let mut out = Vec::new();
    for (i, line) in BufReader::new(f).lines().enumerate() {
        let line = line.map_err(|e| io_err(path, e))?;
        let m: MapLine = serde_json::from_str(&line).map_err(|e| StoreError::Corrupt {
            path: path.to_path_buf(),
            message: format!("line {}: {e}", i + 1),
        })?;
        out.push(m);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn intent(batch: &str) -> Entry {
        Entry::Intent {
            batch: batch.into(),
            round: 1,
            api: BatchApi::Openai,
            requests: 3,
            bytes: 10,
            hash: "h".into(),
            at: 5,
            worst_cost: None,
            manual: false,
        }
    }

    #[test]
    fn the_log_replays_into_the_records_and_survives_a_cut_line() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(dir.path()).unwrap();
        assert!(l.is_empty());
        let id = l.run_id().unwrap();
        assert_eq!(id.len(), 8);
        l.append(intent("b000001")).unwrap();
        l.append(Entry::Uploaded {
            batch: "b000001".into(),
            file_id: "file-1".into(),
        })
        .unwrap();
        l.append(Entry::Created {
            batch: "b000001".into(),
            remote_id: "batch_1".into(),
        })
        .unwrap();
        assert_eq!(l.next_name(), "b000002");
        // A kill in the middle of a line.
        let log = ledger_dir(dir.path()).join("log.jsonl");
        let mut f = OpenOptions::new().append(true).open(&log).unwrap();
        f.write_all(b"{\"event\":\"downlo").unwrap();
        let again = Ledger::open(dir.path()).unwrap();
        let b = &again.batches["b000001"];
        assert_eq!(b.file_id.as_deref(), Some("file-1"));
        assert_eq!(b.remote_id.as_deref(), Some("batch_1"));
        assert_eq!(b.downloaded, None);
        assert_eq!(again.batches, l.batches);
        let mut again = again;
        assert_eq!(again.run_id().unwrap(), id);
    }
}
