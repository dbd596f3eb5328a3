//! The judged requests of a work dir: `judge/shard_NNNN/part-NNNNNN.parquet`,
//! one row per answered request item (its key, the judge's raw answer,
//! tokens, latency), kept by the shard of the rollout judged. A request
//! whose key is here is never sent again, by this run, a resumed one, or a
//! later `rsr verify` with another label or a fixed parser: verdicts are
//! read from the raw answers each time.
//!
//! Answers are durable as they arrive: each is appended to the part's
//! journal ([`super::journal`]) before it counts, and the part file is
//! committed (atomic rename) when the shard is done. A killed run leaves
//! the journal; [`recover`] turns it into its part file, so a `kill -9`
//! loses only the requests in flight.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Int64Array, RecordBatch, StringArray, UInt32Array, UInt64Array,
};
use arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef, UInt32Type, UInt64Type};
use serde::{Deserialize, Serialize};

use super::StoreError;
use super::journal::{Journal, recover_shards};
use super::judge_dir;
use super::parquet::{ParquetFile, read_batches};

/// One answered request item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The request item's key (`crate::judge::key`).
    pub key: String,
    /// The judge's answer: its text, its first token's logprobs (JSON), or
    /// the reward.
    pub raw: String,
    /// Prompt tokens of the request (shared by a batch's items: counted
    /// once, on its first item).
    pub prompt_tokens: Option<u32>,
    /// Completion tokens of the answer.
    pub completion_tokens: Option<u32>,
    /// Milliseconds the request took.
    pub latency_ms: u64,
    /// The endpoint that answered.
    pub endpoint: String,
    /// The judge model.
    pub model: String,
    /// Unix seconds.
    pub created_at: i64,
}

/// `judge/shard_NNNN/`.
pub fn shard_dir(root: &Path, shard: u32) -> PathBuf {
    judge_dir(root).join(format!("shard_{shard:04}"))
}

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("key", DataType::Utf8, false),
        Field::new("raw", DataType::Utf8, false),
        Field::new("prompt_tokens", DataType::UInt32, true),
        Field::new("completion_tokens", DataType::UInt32, true),
        Field::new("latency_ms", DataType::UInt64, false),
        Field::new("endpoint", DataType::Utf8, false),
        Field::new("model", DataType::Utf8, false),
        Field::new("created_at", DataType::Int64, false),
    ]))
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Every part file and journal of a shard, by number.
fn entries(dir: &Path, ext: &str) -> Result<Vec<(u64, PathBuf)>, StoreError> {
    let read = match std::fs::read_dir(dir) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(dir)(e)),
    };
    let mut out = Vec::new();
    for entry in read {
        let path = entry.map_err(io(dir))?.path();
        if path.extension().is_some_and(|e| e == ext)
            && let Some(n) = path
                .file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.strip_prefix("part-"))
                .and_then(|s| s.parse().ok())
        {
            out.push((n, path));
        }
    }
    out.sort();
    Ok(out)
}

/// Turns every journal a killed run left under `judge/` into its part
/// file (of the shards `owns` says this process has); returns the answers
/// recovered.
pub fn recover(root: &Path, owns: &dyn Fn(u32) -> bool) -> Result<u64, StoreError> {
    let recovered = recover_shards(&judge_dir(root), owns, |part, records: Vec<Record>| {
        write_part(part, &records)
    })?;
    if recovered > 0 {
        tracing::info!("recovered {recovered} judge answer(s) from the journal of a stopped run");
    }
    Ok(recovered)
}

fn write_part(path: &Path, records: &[Record]) -> Result<(), StoreError> {
    let strings = |f: &dyn Fn(&Record) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(records.iter().map(f)))
    };
    let batch = RecordBatch::try_new(
        schema(),
        vec![
            strings(&|r| &r.key),
            strings(&|r| &r.raw),
            Arc::new(UInt32Array::from_iter(
                records.iter().map(|r| r.prompt_tokens),
            )),
            Arc::new(UInt32Array::from_iter(
                records.iter().map(|r| r.completion_tokens),
            )),
            Arc::new(UInt64Array::from_iter_values(
                records.iter().map(|r| r.latency_ms),
            )),
            strings(&|r| &r.endpoint),
            strings(&|r| &r.model),
            Arc::new(Int64Array::from_iter_values(
                records.iter().map(|r| r.created_at),
            )),
        ],
    )
    .expect("columns match the schema");
    let mut file = ParquetFile::create(path, schema())?;
    file.write(&batch)?;
    file.commit()?;
    Ok(())
}

/// The answers saved for a shard, by key.
pub fn load(root: &Path, shard: u32) -> Result<HashMap<String, Record>, StoreError> {
    let mut out = HashMap::new();
    for (_, part) in entries(&shard_dir(root, shard), "parquet")? {
        for batch in read_batches(&part)? {
            let s = |name: &str| batch.column_by_name(name).map(|c| c.as_string::<i32>());
            let (Some(key), Some(raw), Some(endpoint), Some(model)) =
                (s("key"), s("raw"), s("endpoint"), s("model"))
            else {
                return Err(crate::store::parquet::corrupt(
                    &part,
                    "not a judge cache file (columns key, raw, endpoint, model)",
                ));
            };
            let p = batch.column(2).as_primitive::<UInt32Type>();
            let c = batch.column(3).as_primitive::<UInt32Type>();
            let l = batch.column(4).as_primitive::<UInt64Type>();
            let t = batch.column(7).as_primitive::<Int64Type>();
            for i in 0..batch.num_rows() {
                out.insert(
                    key.value(i).to_string(),
                    Record {
                        key: key.value(i).to_string(),
                        raw: raw.value(i).to_string(),
                        prompt_tokens: p.is_valid(i).then(|| p.value(i)),
                        completion_tokens: c.is_valid(i).then(|| c.value(i)),
                        latency_ms: l.value(i),
                        endpoint: endpoint.value(i).to_string(),
                        model: model.value(i).to_string(),
                        created_at: t.value(i),
                    },
                );
            }
        }
    }
    Ok(out)
}

/// The `(prompt, completion)` tokens of every answer saved under `judge/`
/// (every run, every label; a `--refresh` answer beside the one it
/// replaced: both were paid for). Unlike the totals in `state.json`, these
/// include the answers of a killed run once [`recover`] has read its
/// journal, so a budget counts what was really spent.
pub fn spent(root: &Path) -> Result<(u64, u64), StoreError> {
    let dir = judge_dir(root);
    let shards = match std::fs::read_dir(&dir) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((0, 0)),
        Err(e) => return Err(io(&dir)(e)),
    };
    let (mut prompt, mut completion) = (0u64, 0u64);
    for shard in shards {
        let shard = shard.map_err(io(&dir))?.path();
        if !shard.is_dir() {
            continue;
        }
        for (_, part) in entries(&shard, "parquet")? {
            for batch in read_batches(&part)? {
                let tokens = |name: &str| {
                    batch
                        .column_by_name(name)
                        .and_then(|c| c.as_primitive_opt::<UInt32Type>())
                        .map(|c| c.iter().flatten().map(u64::from).sum::<u64>())
                        .ok_or_else(|| {
                            crate::store::parquet::corrupt(
                                &part,
                                format!("not a judge cache file (no {name} column of UInt32)"),
                            )
                        })
                };
                prompt += tokens("prompt_tokens")?;
                completion += tokens("completion_tokens")?;
            }
        }
    }
    Ok((prompt, completion))
}

/// The new answers of one shard in this run: journaled as they arrive,
/// committed as one part file.
#[derive(Debug)]
pub struct ShardWriter {
    part: PathBuf,
    journal: Option<Journal>,
    records: Vec<Record>,
}

impl ShardWriter {
    /// A writer for the next part number of `shard`.
    pub fn open(root: &Path, shard: u32) -> Result<Self, StoreError> {
        let dir = shard_dir(root, shard);
        let next = entries(&dir, "parquet")?.last().map_or(0, |(n, _)| n + 1);
        Ok(Self {
            part: dir.join(format!("part-{next:06}.parquet")),
            journal: None,
            records: Vec::new(),
        })
    }

    /// Saves one answer; it survives a killed process once this returns.
    pub fn append(&mut self, record: Record) -> Result<(), StoreError> {
        if self.journal.is_none() {
            self.journal = Some(Journal::open(&self.part)?);
        }
        let journal = self.journal.as_mut().expect("opened above");
        journal.append(std::slice::from_ref(&record))?;
        self.records.push(record);
        Ok(())
    }

    /// Writes the part file (when there is anything new) and removes the
    /// journal; returns the answers written.
    pub fn commit(self) -> Result<usize, StoreError> {
        let Some(journal) = self.journal else {
            return Ok(0);
        };
        write_part(&self.part, &self.records)?;
        journal.remove()?;
        Ok(self.records.len())
    }
}

/// One shard's saved answers and the writer of this run's new ones, for a
/// loop that answers rollouts as sampling brings them.
#[derive(Debug)]
pub struct OpenShard {
    /// The answers saved (and those added in this run), by key.
    pub saved: HashMap<String, Record>,
    /// This run's new answers.
    pub writer: ShardWriter,
    /// Requests of this shard queued or in flight.
    pub pending: usize,
}

/// The shards a loop answers into, at most `max` open at once: the least
/// recently opened one with nothing pending is committed and closed to
/// open another (a shard that comes back is read again).
#[derive(Debug)]
pub struct OpenShards {
    root: PathBuf,
    max: usize,
    shards: HashMap<u32, OpenShard>,
    /// Open shards, least recently opened first.
    opened: std::collections::VecDeque<u32>,
}

impl OpenShards {
    /// No shard open yet, in work dir `root`.
    pub fn new(root: &Path, max: usize) -> Self {
        Self {
            root: root.to_path_buf(),
            max,
            shards: HashMap::new(),
            opened: std::collections::VecDeque::new(),
        }
    }

    /// Shard `shard`, its saved answers read when it opens.
    pub fn open(&mut self, shard: u32) -> Result<&mut OpenShard, StoreError> {
        if !self.shards.contains_key(&shard) {
            if self.shards.len() >= self.max
                && let Some(i) = self
                    .opened
                    .iter()
                    .position(|s| self.shards.get(s).is_some_and(|o| o.pending == 0))
            {
                let old = self.opened.remove(i).expect("found above");
                if let Some(o) = self.shards.remove(&old) {
                    o.writer.commit()?;
                }
            }
            let open = OpenShard {
                saved: load(&self.root, shard)?,
                writer: ShardWriter::open(&self.root, shard)?,
                pending: 0,
            };
            self.shards.insert(shard, open);
            self.opened.push_back(shard);
        }
        Ok(self.shards.get_mut(&shard).expect("opened above"))
    }

    /// Shard `shard` if it is open.
    pub fn get_mut(&mut self, shard: u32) -> Option<&mut OpenShard> {
        self.shards.get_mut(&shard)
    }

    /// Commits every open shard's new answers.
    pub fn commit_all(&mut self) -> Result<(), StoreError> {
        self.opened.clear();
        for (_, open) in self.shards.drain() {
            open.writer.commit()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::fs::OpenOptions;
    use std::io::Write;

    use super::*;

    fn record(key: &str) -> Record {
        Record {
            key: key.into(),
            raw: format!("answer {key}"),
            prompt_tokens: Some(10),
            completion_tokens: None,
            latency_ms: 5,
            endpoint: "http://e".into(),
            model: "j".into(),
            created_at: 1,
        }
    }

    #[test]
    fn answers_survive_commit_and_kill() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let mut w = ShardWriter::open(root, 3).unwrap();
        w.append(record("a")).unwrap();
        w.append(record("b")).unwrap();
        assert_eq!(w.commit().unwrap(), 2);
        let saved = load(root, 3).unwrap();
        assert_eq!(saved.len(), 2);
        assert_eq!(saved["a"], record("a"));

        // A killed run: journal only, with a cut last line.
        let mut w = ShardWriter::open(root, 3).unwrap();
        w.append(record("c")).unwrap();
        let journal = w.part.with_extension("journal");
        drop(w);
        let mut f = OpenOptions::new().append(true).open(&journal).unwrap();
        f.write_all(b"{\"key\":\"d\",\"ra").unwrap();
        assert_eq!(recover(root, &|_| true).unwrap(), 1);
        assert!(!journal.exists());
        let saved = load(root, 3).unwrap();
        assert_eq!(saved.len(), 3);
        assert!(saved.contains_key("c") && !saved.contains_key("d"));
        // Every saved answer's tokens, the recovered one's too.
        assert_eq!(spent(root).unwrap(), (30, 0));
        // The next writer takes the next number.
        let w = ShardWriter::open(root, 3).unwrap();
        assert!(
            w.part.ends_with("part-000002.parquet"),
            "{}",
            w.part.display()
        );
        assert_eq!(load(root, 9).unwrap().len(), 0);
    }
}
