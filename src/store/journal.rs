//! The journal: rows are durable the moment they arrive.
//!
//! Whoever writes a part file in pieces (the sampler's rollouts under
//! `rollout/shard_NNNN/`, the judge's answers under `judge/shard_NNNN/`)
//! appends each batch of rows to `part-NNNNNN.journal` beside it (JSON
//! lines, one `write` per batch) before anything counts them. When the part
//! file is committed (atomic rename) the journal is removed. A process
//! killed in between leaves the journal; the next run turns it into its
//! part file before reading any saved rows ([`recover_dir`]), so a
//! `kill -9` costs only the requests in flight. A journal whose part file
//! already exists was committed and is removed. One policy for a last line
//! cut off by the kill: it is dropped with a warning (its request is made
//! again).

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::StoreError;
use super::parquet::ParquetFile;
use super::parts::{RolloutRow, to_batch};
use super::rollout::{rollout_dir, rollout_schema};

/// The journal beside part file `part` (`part-000012.parquet` →
/// `part-000012.journal`).
pub fn journal_path(part: &Path) -> PathBuf {
    part.with_extension("journal")
}

/// An open journal: appends batches of rows, one write each.
#[derive(Debug)]
pub struct Journal {
    file: File,
    path: PathBuf,
    buf: Vec<u8>,
}

impl Journal {
    /// Opens (creating) the journal of part file `part` for appending.
    pub fn open(part: &Path) -> Result<Self, StoreError> {
        let path = journal_path(part);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|source| StoreError::Io {
                path: path.clone(),
                source,
            })?;
        Ok(Self {
            file,
            path,
            buf: Vec::new(),
        })
    }

    /// Appends `rows`; they are in the operating system's hands (safe from
    /// a killed process) when this returns.
    pub fn append<T: Serialize>(&mut self, rows: &[T]) -> Result<(), StoreError> {
        self.buf.clear();
        for r in rows {
            serde_json::to_writer(&mut self.buf, r).expect("rows serialize");
            self.buf.push(b'\n');
        }
        self.file
            .write_all(&self.buf)
            .map_err(|source| StoreError::Io {
                path: self.path.clone(),
                source,
            })
    }

    /// Removes the journal once its part file is committed.
    pub fn remove(self) -> Result<(), StoreError> {
        std::fs::remove_file(&self.path).map_err(|source| StoreError::Io {
            path: self.path,
            source,
        })
    }
}

/// Turns every journal a killed writer left under `root`'s `rollout/` into
/// its part file; returns the rows recovered.
pub fn recover(root: &Path, owns: &dyn Fn(u32) -> bool) -> Result<u64, StoreError> {
    let recovered = recover_shards(&rollout_dir(root), owns, |part, rows: Vec<RolloutRow>| {
        let mut file = ParquetFile::create(part, rollout_schema())?;
        file.write(&to_batch(&rows))?;
        file.commit().map(|_| ())
    })?;
    if recovered > 0 {
        tracing::info!("recovered {recovered} rollout row(s) from the journal of a stopped run");
    }
    Ok(recovered)
}

/// [`recover_dir`] over every shard directory (`shard_NNNN`) of `dir`
/// whose shard `owns` says this process samples (a sampling task leaves
/// the other tasks' journals alone: they may be writing them).
pub fn recover_shards<T: DeserializeOwned>(
    dir: &Path,
    owns: &dyn Fn(u32) -> bool,
    mut write: impl FnMut(&Path, Vec<T>) -> Result<(), StoreError>,
) -> Result<u64, StoreError> {
    let shards = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io_error(dir, e)),
    };
    let mut recovered = 0;
    for shard in shards {
        let shard = shard.map_err(|e| io_error(dir, e))?.path();
        let number = shard
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("shard_"))
            .and_then(|n| n.parse::<u32>().ok());
        if shard.is_dir() && number.is_none_or(owns) {
            recovered += recover_dir(&shard, &mut write)?;
        }
    }
    Ok(recovered)
}

/// Turns every journal in `dir` into its part file with `write` (or
/// removes it when the part was committed); returns the rows recovered.
pub fn recover_dir<T: DeserializeOwned>(
    dir: &Path,
    mut write: impl FnMut(&Path, Vec<T>) -> Result<(), StoreError>,
) -> Result<u64, StoreError> {
    let mut recovered = 0;
    for entry in std::fs::read_dir(dir).map_err(|e| io_error(dir, e))? {
        let journal = entry.map_err(|e| io_error(dir, e))?.path();
        if journal.extension().is_none_or(|e| e != "journal") {
            continue;
        }
        let part = journal.with_extension("parquet");
        if !part.exists() {
            // Not committed before the kill: its rows become the part.
            let rows = read_journal::<T>(&journal)?;
            if !rows.is_empty() {
                recovered += rows.len() as u64;
                write(&part, rows)?;
            }
        }
        std::fs::remove_file(&journal).map_err(|e| io_error(&journal, e))?;
    }
    Ok(recovered)
}

/// The rows of a journal; a line cut off by a kill is dropped with a
/// warning.
pub fn read_journal<T: DeserializeOwned>(journal: &Path) -> Result<Vec<T>, StoreError> {
    let io = |source| io_error(journal, source);
    let mut rows = Vec::new();
    let mut cut = 0;
    for line in BufReader::new(File::open(journal).map_err(io)?).split(b'\n') {
        let line = line.map_err(io)?;
        match serde_json::from_slice::<T>(&line) {
            Ok(row) => rows.push(row),
            Err(_) if line.is_empty() => {}
            Err(_) => cut += 1,
        }
    }
    if cut > 0 {
        tracing::warn!(
            "{}: {cut} line(s) cut off by the kill were dropped; their requests are made again",
            journal.display()
        );
    }
    Ok(rows)
}

fn io_error(path: &Path, source: std::io::Error) -> StoreError {
    StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::store::rollout::{rollout_part_path, shard_parts};

    fn row(idx: u32) -> RolloutRow {
        RolloutRow {
            id: Arc::from("p1"),
            rollout_idx: idx,
            step: 0,
            response: Some(format!("answer {idx}\nwith \"quotes\"")),
            reasoning: None,
            finish_reason: Some("stop".into()),
            truncated: false,
            error: None,
            prompt_tokens: Some(3),
            completion_tokens: Some(5),
            latency_ms: Some(7),
            model: Arc::from("m"),
            endpoint: "http://x/v1".into(),
            created_at: 1_700_000_000_000,
            score: Some(1.0),
            pred: Some("4".into()),
        }
    }

    #[test]
    fn a_left_journal_becomes_its_part_file_and_a_torn_line_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let part = rollout_part_path(root, 0, 3);
        std::fs::create_dir_all(part.parent().unwrap()).unwrap();
        let mut j = Journal::open(&part).unwrap();
        j.append(&[row(0), row(1)]).unwrap();
        j.append(&[row(2)]).unwrap();
        drop(j);
        // A kill in the middle of a write.
        let mut f = OpenOptions::new()
            .append(true)
            .open(journal_path(&part))
            .unwrap();
        f.write_all(br#"{"id":"p1","rollout_idx":3,"st"#).unwrap();
        assert_eq!(recover(root, &|_| true).unwrap(), 3);
        assert!(!journal_path(&part).exists());
        let parts = shard_parts(root, 0).unwrap();
        assert_eq!(parts, vec![part.clone()]);
        let batches = crate::store::parquet::read_batches(&part).unwrap();
        assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 3);
        assert_eq!(
            recover(root, &|_| true).unwrap(),
            0,
            "nothing left to recover"
        );
    }

    #[test]
    fn a_journal_whose_part_was_committed_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let part = rollout_part_path(dir.path(), 1, 0);
        std::fs::create_dir_all(part.parent().unwrap()).unwrap();
        let mut file = ParquetFile::create(&part, rollout_schema()).unwrap();
        file.write(&to_batch(&[row(0)])).unwrap();
        file.commit().unwrap();
        Journal::open(&part).unwrap().append(&[row(0)]).unwrap();
        assert_eq!(recover(dir.path(), &|_| true).unwrap(), 0);
        assert!(!journal_path(&part).exists());
        let batches = crate::store::parquet::read_batches(&part).unwrap();
        assert_eq!(batches[0].num_rows(), 1, "no row twice");
    }
}
