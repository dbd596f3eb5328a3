//! The rollout journal: every response is durable the moment it arrives.
//!
//! The writer appends each batch of rows it receives to
//! `rollout/shard_NNNN/part-NNNNNN.journal` (JSON lines, one `write` per
//! batch) before anything counts it, and buffers the rows for the part file
//! of the same number. When that part file is committed (atomic rename) the
//! journal is removed. A process killed in between leaves the journal; the
//! next writer turns it into its part file before reading any saved rows
//! ([`recover`]), so a `kill -9` costs only the requests still in flight.
//! A journal whose part file already exists was committed and is removed.
//! A last line cut off by the kill is dropped (its rollout is requested
//! again).

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

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
    pub fn append(&mut self, rows: &[RolloutRow]) -> Result<(), StoreError> {
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
pub fn recover(root: &Path) -> Result<u64, StoreError> {
    let dir = rollout_dir(root);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| StoreError::Io { path, source }
    };
    let shards = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io(&dir)(e)),
    };
    let mut recovered = 0;
    for shard in shards {
        let shard = shard.map_err(io(&dir))?.path();
        if !shard.is_dir() {
            continue;
        }
        for entry in std::fs::read_dir(&shard).map_err(io(&shard))? {
            let path = entry.map_err(io(&shard))?.path();
            if path.extension().is_some_and(|e| e == "journal") {
                recovered += recover_one(&path)?;
            }
        }
    }
    if recovered > 0 {
        tracing::info!("recovered {recovered} rollout row(s) from the journal of a stopped run");
    }
    Ok(recovered)
}

fn recover_one(journal: &Path) -> Result<u64, StoreError> {
    let part = journal.with_extension("parquet");
    let io = |source| StoreError::Io {
        path: journal.to_path_buf(),
        source,
    };
    if part.exists() {
        // Committed before the kill; only the removal was missed.
        std::fs::remove_file(journal).map_err(io)?;
        return Ok(0);
    }
    let mut rows = Vec::new();
    let mut cut = 0;
    for line in BufReader::new(File::open(journal).map_err(io)?).split(b'\n') {
        let line = line.map_err(io)?;
        match serde_json::from_slice::<RolloutRow>(&line) {
            Ok(row) => rows.push(row),
            Err(_) if line.is_empty() => {}
            Err(_) => cut += 1,
        }
    }
    if cut > 0 {
        tracing::warn!(
            "{}: {cut} line(s) cut off by the kill were dropped; their rollouts are requested again",
            journal.display()
        );
    }
    if !rows.is_empty() {
        let mut file = ParquetFile::create(&part, rollout_schema())?;
        file.write(&to_batch(&rows))?;
        file.commit()?;
    }
    std::fs::remove_file(journal).map_err(io)?;
    Ok(rows.len() as u64)
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
        assert_eq!(recover(root).unwrap(), 3);
        assert!(!journal_path(&part).exists());
        let parts = shard_parts(root, 0).unwrap();
        assert_eq!(parts, vec![part.clone()]);
        let batches = crate::store::parquet::read_batches(&part).unwrap();
        assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 3);
        assert_eq!(recover(root).unwrap(), 0, "nothing left to recover");
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
        assert_eq!(recover(dir.path()).unwrap(), 0);
        assert!(!journal_path(&part).exists());
        let batches = crate::store::parquet::read_batches(&part).unwrap();
        assert_eq!(batches[0].num_rows(), 1, "no row twice");
    }
}
