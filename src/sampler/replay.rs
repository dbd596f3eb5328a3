//! The replay backend: responses generated elsewhere, fed through the same
//! operator (truncation flags, inline scoring, early stop, storage).
//!
//! Accepted files: JSONL or Parquet with `id` and `response` (optional
//! `reasoning`, `finish_reason`, `completion_tokens`), one row per
//! response; or an OpenAI batch output file (JSONL whose lines carry
//! `custom_id` = the prompt id and `response.body` = a chat completion).
//! A prompt's responses are served in file order; when they run out the
//! prompt is finished.
//!
//! Memory stays bounded by the prompts in flight, not by the file: opening
//! streams the file once and splits it by input shard into spill files
//! (one JSON line per response) in a private directory, and requests load
//! only the spill of their prompt's shard, keeping the few most recently
//! used shards. What the whole run holds is the input's ids.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, UInt32Type};
use serde_json::Value;
use thiserror::Error;

use super::{Choice, Generation};
use crate::store::parquet::projected;

/// Errors reading a replay file.
#[derive(Debug, Error)]
pub enum ReplayError {
    /// A file cannot be read or written.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was being done ("read replay file", "write spill file").
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A line or row is not a response record.
    #[error("{path}:{line}: {message}")]
    Record {
        /// The file.
        path: PathBuf,
        /// 1-based line (JSONL) or row (Parquet).
        line: usize,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A Parquet file cannot be decoded.
    #[error("cannot read {path}: {message}")]
    Parquet {
        /// The file.
        path: PathBuf,
        /// The cause.
        message: String,
    },
}

/// What opening a replay file found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayCounts {
    /// Responses whose id is in the input.
    pub responses: usize,
    /// Input prompts with at least one response.
    pub prompts: usize,
    /// Responses whose id is not in the input (ignored).
    pub unknown: usize,
}

/// Saved responses, split by input shard.
#[derive(Debug)]
pub struct ReplayBackend {
    spill: SpillDir,
    endpoint: String,
    counts: ReplayCounts,
    cache: Mutex<ShardCache>,
}

impl ReplayBackend {
    /// Streams `path` (JSONL or `.parquet`) once, splitting its responses by
    /// the shard of their prompt in `input` (the prepared
    /// `data/input.parquet`) into spill files under `spill_dir`, which is
    /// created afresh now and removed when the backend is dropped. At most
    /// `cached_shards` shards' responses are held at a time.
    pub fn open(
        path: &Path,
        input: &Path,
        spill_dir: PathBuf,
        cached_shards: usize,
    ) -> Result<Self, ReplayError> {
        let shard_of = input_shards(input)?;
        // A killed earlier run may have left its spill behind.
        let _ = std::fs::remove_dir_all(&spill_dir);
        std::fs::create_dir_all(&spill_dir).map_err(|source| ReplayError::Io {
            action: "create spill directory",
            path: spill_dir.clone(),
            source,
        })?;
        let spill = SpillDir(spill_dir);
        let mut splitter = Splitter {
            shard_of,
            writers: HashMap::new(),
            dir: &spill.0,
            counts: ReplayCounts::default(),
        };
        if path.extension().is_some_and(|e| e == "parquet") {
            read_parquet(path, &mut |id, c| splitter.push(id, c))?;
        } else {
            read_jsonl(path, &mut |id, c| splitter.push(id, c))?;
        }
        let counts = splitter.finish()?;
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        Ok(Self {
            spill,
            endpoint: format!("replay:{name}"),
            counts,
            cache: Mutex::new(ShardCache {
                capacity: cached_shards.max(1),
                shards: VecDeque::new(),
            }),
        })
    }

    /// What the file held.
    pub fn counts(&self) -> ReplayCounts {
        self.counts
    }

    /// Up to `n` responses of prompt `id` (of input shard `shard`) starting
    /// at its `ordinal`-th; fewer (or none) when the file has no more.
    pub fn generate(
        &self,
        id: &str,
        shard: u32,
        n: u32,
        ordinal: u32,
    ) -> Result<Generation, String> {
        let saved = self.shard(shard)?;
        let saved = saved.get(id).map_or(&[][..], Vec::as_slice);
        let start = (ordinal as usize).min(saved.len());
        let end = (start + n as usize).min(saved.len());
        Ok(Generation {
            choices: saved[start..end].to_vec(),
            prompt_tokens: None,
            endpoint: self.endpoint.clone(),
            latency_ms: 0,
        })
    }

    /// `replay:FILE`, the endpoint recorded in rows.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The responses of `shard`, loaded from its spill file when not cached.
    fn shard(&self, shard: u32) -> Result<Arc<ShardResponses>, String> {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(pos) = cache.shards.iter().position(|(s, _)| *s == shard) {
            let hit = cache.shards.remove(pos).expect("position is in range");
            let responses = Arc::clone(&hit.1);
            cache.shards.push_back(hit);
            return Ok(responses);
        }
        let responses =
            Arc::new(load_spill(&spill_path(&self.spill.0, shard)).map_err(|e| e.to_string())?);
        if cache.shards.len() >= cache.capacity {
            cache.shards.pop_front();
        }
        cache.shards.push_back((shard, Arc::clone(&responses)));
        Ok(responses)
    }
}

type ShardResponses = HashMap<String, Vec<Choice>>;

/// The most recently used shards' responses, oldest first.
#[derive(Debug)]
struct ShardCache {
    capacity: usize,
    shards: VecDeque<(u32, Arc<ShardResponses>)>,
}

/// A directory removed with everything in it when dropped.
#[derive(Debug)]
struct SpillDir(PathBuf);

impl Drop for SpillDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn spill_path(dir: &Path, shard: u32) -> PathBuf {
    dir.join(format!("shard_{shard:04}.jsonl"))
}

fn spill_write_error(dir: &Path, shard: u32, source: std::io::Error) -> ReplayError {
    ReplayError::Io {
        action: "write spill file",
        path: spill_path(dir, shard),
        source,
    }
}

/// One spill line: the prompt id and one response.
#[derive(serde::Serialize, serde::Deserialize)]
struct SpillLine {
    id: String,
    #[serde(flatten)]
    choice: Choice,
}

/// Routes responses to their shard's spill file.
struct Splitter<'a> {
    /// Input id -> (shard, has a response).
    shard_of: HashMap<String, (u32, bool)>,
    writers: HashMap<u32, BufWriter<File>>,
    dir: &'a Path,
    counts: ReplayCounts,
}

impl Splitter<'_> {
    fn push(&mut self, id: String, choice: Choice) -> Result<(), ReplayError> {
        let Some((shard, seen)) = self.shard_of.get_mut(&id) else {
            self.counts.unknown += 1;
            return Ok(());
        };
        let shard = *shard;
        if !*seen {
            *seen = true;
            self.counts.prompts += 1;
        }
        self.counts.responses += 1;
        let dir = self.dir;
        let io = |source| spill_write_error(dir, shard, source);
        let w = match self.writers.entry(shard) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => v.insert(BufWriter::new(
                File::create(spill_path(dir, shard)).map_err(io)?,
            )),
        };
        serde_json::to_writer(&mut *w, &SpillLine { id, choice }).map_err(|e| io(e.into()))?;
        w.write_all(b"\n").map_err(io)
    }

    fn finish(mut self) -> Result<ReplayCounts, ReplayError> {
        for (shard, mut w) in self.writers.drain() {
            w.flush()
                .map_err(|source| spill_write_error(self.dir, shard, source))?;
        }
        Ok(self.counts)
    }
}

/// Every input id with its shard.
fn input_shards(input: &Path) -> Result<HashMap<String, (u32, bool)>, ReplayError> {
    let parquet = |message: String| ReplayError::Parquet {
        path: input.to_path_buf(),
        message,
    };
    let reader = projected(input, &["id", "shard"]).map_err(|e| parquet(e.to_string()))?;
    let mut out = HashMap::new();
    for batch in reader {
        let batch = batch.map_err(|e| parquet(e.to_string()))?;
        let (Some(id), Some(shard)) = (batch.column_by_name("id"), batch.column_by_name("shard"))
        else {
            return Err(parquet(
                "no `id` or `shard` column; run `rsr prepare` again".into(),
            ));
        };
        let (id, shard) = (id.as_string::<i32>(), shard.as_primitive::<UInt32Type>());
        for i in 0..batch.num_rows() {
            out.insert(id.value(i).to_string(), (shard.value(i), false));
        }
    }
    Ok(out)
}

/// Reads one shard's spill file; a shard without one has no responses.
fn load_spill(path: &Path) -> Result<ShardResponses, ReplayError> {
    let io = |source| ReplayError::Io {
        action: "read spill file",
        path: path.to_path_buf(),
        source,
    };
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(e) => return Err(io(e)),
    };
    let mut out: ShardResponses = HashMap::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(io)?;
        let SpillLine { id, choice } =
            serde_json::from_str(&line).map_err(|e| ReplayError::Record {
                path: path.to_path_buf(),
                line: i + 1,
                message: format!("corrupt spill line: {e}"),
            })?;
        out.entry(id).or_default().push(choice);
    }
    Ok(out)
}

/// Streams the responses of a JSONL file to `sink` in file order.
fn read_jsonl(
    path: &Path,
    sink: &mut dyn FnMut(String, Choice) -> Result<(), ReplayError>,
) -> Result<(), ReplayError> {
    let io = |source| ReplayError::Io {
        action: "read replay file",
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(io)?;
        if line.trim().is_empty() {
            continue;
        }
        let record = |message: String| ReplayError::Record {
            path: path.to_path_buf(),
            line: i + 1,
            message,
        };
        let v: Value =
            serde_json::from_str(&line).map_err(|e| record(format!("invalid JSON: {e}")))?;
        if let Some(custom_id) = v.get("custom_id").and_then(Value::as_str) {
            for c in batch_choices(&v).map_err(record)? {
                sink(custom_id.to_string(), c)?;
            }
            continue;
        }
        let id = match v.get("id") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => {
                return Err(record(
                    "no `id`: each line needs the prompt's `id` and its `response` \
                     (or `custom_id` for OpenAI batch output)"
                        .into(),
                ));
            }
        };
        let Some(response) = v.get("response").and_then(Value::as_str) else {
            return Err(record("no `response` string".into()));
        };
        let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        sink(
            id,
            Choice {
                content: Some(response.to_string()),
                reasoning: text("reasoning"),
                finish_reason: text("finish_reason").or_else(|| Some("stop".into())),
                completion_tokens: v
                    .get("completion_tokens")
                    .and_then(Value::as_u64)
                    .and_then(|t| u32::try_from(t).ok()),
            },
        )?;
    }
    Ok(())
}

/// The choices of one OpenAI batch output line; a failed request yields none.
fn batch_choices(v: &Value) -> Result<Vec<Choice>, String> {
    let Some(response) = v.get("response").filter(|r| !r.is_null()) else {
        return Ok(Vec::new());
    };
    if response.get("status_code").and_then(Value::as_u64) != Some(200) {
        return Ok(Vec::new());
    }
    let body = response
        .get("body")
        .ok_or("batch output line without `response.body`")?;
    let g = super::client::parse_response(&body.to_string(), 1, u32::MAX)
        .map_err(|e| format!("`response.body` is not a chat completion: {e}"))?;
    Ok(g.choices)
}

/// Streams the responses of a Parquet file to `sink` in row order, one
/// batch at a time.
fn read_parquet(
    path: &Path,
    sink: &mut dyn FnMut(String, Choice) -> Result<(), ReplayError>,
) -> Result<(), ReplayError> {
    let parquet = |message: String| ReplayError::Parquet {
        path: path.to_path_buf(),
        message,
    };
    let wanted = [
        "id",
        "response",
        "reasoning",
        "finish_reason",
        "completion_tokens",
    ];
    let reader = projected(path, &wanted).map_err(|e| parquet(e.to_string()))?;
    let mut row = 0;
    for batch in reader {
        let batch = batch.map_err(|e| parquet(e.to_string()))?;
        let utf8 = |name: &str| {
            string_column(&batch, name).map_err(|m| parquet(format!("column `{name}` {m}")))
        };
        let required = |name: &str| {
            utf8(name)?.ok_or_else(|| {
                parquet(format!(
                    "no `{name}` column: replay Parquet needs `id` and `response`"
                ))
            })
        };
        let ids = required("id")?;
        let responses = required("response")?;
        let reasoning = utf8("reasoning")?;
        let finish = utf8("finish_reason")?;
        let tokens = batch
            .column_by_name("completion_tokens")
            .and_then(|c| arrow::compute::cast(c, &DataType::UInt32).ok());
        for (i, id) in ids.into_iter().enumerate() {
            row += 1;
            let Some(id) = id else {
                return Err(ReplayError::Record {
                    path: path.to_path_buf(),
                    line: row,
                    message: "`id` is null".into(),
                });
            };
            sink(
                id,
                Choice {
                    content: responses[i].clone(),
                    reasoning: reasoning.as_ref().and_then(|r| r[i].clone()),
                    finish_reason: finish
                        .as_ref()
                        .and_then(|f| f[i].clone())
                        .or_else(|| Some("stop".into())),
                    completion_tokens: tokens.as_ref().and_then(|t| {
                        let t = t.as_primitive::<UInt32Type>();
                        t.is_valid(i).then(|| t.value(i))
                    }),
                },
            )?;
        }
    }
    Ok(())
}

fn string_column(batch: &RecordBatch, name: &str) -> Result<Option<Vec<Option<String>>>, String> {
    let Some(col) = batch.column_by_name(name) else {
        return Ok(None);
    };
    let col =
        arrow::compute::cast(col, &DataType::Utf8).map_err(|e| format!("is not text: {e}"))?;
    let col = col.as_string::<i32>();
    Ok(Some(
        (0..col.len())
            .map(|i| col.is_valid(i).then(|| col.value(i).to_string()))
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ArrayRef, StringArray, UInt32Array};

    fn write_parquet(path: &Path, columns: Vec<(&str, ArrayRef)>) {
        let batch = RecordBatch::try_from_iter(columns).unwrap();
        let mut f = crate::store::parquet::ParquetFile::create(path, batch.schema()).unwrap();
        f.write(&batch).unwrap();
        f.commit().unwrap();
    }

    /// An input of prompts `ids` with their shards.
    fn input(dir: &Path, ids: &[(&str, u32)]) -> PathBuf {
        let path = dir.join("input.parquet");
        let id: ArrayRef = Arc::new(StringArray::from_iter_values(ids.iter().map(|p| p.0)));
        let shard: ArrayRef = Arc::new(UInt32Array::from_iter_values(ids.iter().map(|p| p.1)));
        write_parquet(&path, vec![("id", id), ("shard", shard)]);
        path
    }

    fn open(dir: &Path, path: &Path, ids: &[(&str, u32)], cached: usize) -> ReplayBackend {
        let input = input(dir, ids);
        ReplayBackend::open(path, &input, dir.join("spill"), cached).unwrap()
    }

    #[test]
    fn jsonl_and_batch_output_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.jsonl");
        std::fs::write(
            &path,
            concat!(
                r#"{"id":"a","response":"one"}"#, "\n",
                r#"{"id":"a","response":"two","finish_reason":"length","completion_tokens":9}"#, "\n",
                "\n",
                r#"{"custom_id":"b","response":{"status_code":200,"body":{"choices":[{"message":{"content":"x"},"finish_reason":"stop"}]}}}"#, "\n",
                r#"{"custom_id":"b","response":null,"error":{"message":"failed"}}"#, "\n",
                r#"{"id":"not-an-input","response":"lost"}"#, "\n",
            ),
        )
        .unwrap();
        let r = open(dir.path(), &path, &[("a", 0), ("b", 1), ("c", 1)], 2);
        let counts = ReplayCounts {
            responses: 3,
            prompts: 2,
            unknown: 1,
        };
        assert_eq!(r.counts(), counts);
        let g = r.generate("a", 0, 4, 0).unwrap();
        assert_eq!(g.choices.len(), 2);
        assert_eq!(g.choices[0].content.as_deref(), Some("one"));
        assert_eq!(g.choices[1].finish_reason.as_deref(), Some("length"));
        assert_eq!(g.choices[1].completion_tokens, Some(9));
        assert_eq!(r.generate("a", 0, 4, 1).unwrap().choices.len(), 1);
        assert!(r.generate("a", 0, 4, 5).unwrap().choices.is_empty());
        let b = r.generate("b", 1, 1, 0).unwrap();
        assert_eq!(b.choices[0].content.as_deref(), Some("x"));
        assert!(r.generate("c", 1, 1, 0).unwrap().choices.is_empty());
        assert_eq!(g.endpoint, "replay:r.jsonl");
    }

    #[test]
    fn shards_are_loaded_on_demand_and_the_spill_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.jsonl");
        let lines: String = (0..6)
            .map(|i| format!("{{\"id\":\"p{i}\",\"response\":\"r{i}\"}}\n"))
            .collect();
        std::fs::write(&path, lines).unwrap();
        let ids: Vec<(String, u32)> = (0..6).map(|i| (format!("p{i}"), i / 2)).collect();
        let ids: Vec<(&str, u32)> = ids.iter().map(|(s, n)| (s.as_str(), *n)).collect();
        let r = open(dir.path(), &path, &ids, 1);
        let spill = dir.path().join("spill");
        assert!(spill.join("shard_0002.jsonl").is_file());
        // One shard cached: going back and forth reloads from the spill.
        for (id, shard) in [("p0", 0), ("p5", 2), ("p1", 0), ("p3", 1)] {
            let g = r.generate(id, shard, 1, 0).unwrap();
            assert_eq!(
                g.choices[0].content.as_deref(),
                Some(&*id.replace('p', "r"))
            );
            let cache = r.cache.lock().unwrap();
            assert_eq!(cache.shards.len(), 1);
            assert_eq!(cache.shards[0].0, shard);
        }
        drop(r);
        assert!(!spill.exists());
    }

    #[test]
    fn a_stale_spill_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let spill = dir.path().join("spill");
        std::fs::create_dir_all(&spill).unwrap();
        std::fs::write(
            spill.join("shard_0000.jsonl"),
            "{\"id\":\"a\",\"content\":\"stale\",\"reasoning\":null,\"finish_reason\":\"stop\",\"completion_tokens\":null}\n",
        )
        .unwrap();
        let path = dir.path().join("r.jsonl");
        std::fs::write(&path, "{\"id\":\"b\",\"response\":\"x\"}\n").unwrap();
        let r = open(dir.path(), &path, &[("a", 0), ("b", 1)], 2);
        assert!(r.generate("a", 0, 1, 0).unwrap().choices.is_empty());
    }

    #[test]
    fn parquet_rows_with_optional_columns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.parquet");
        let id: ArrayRef = Arc::new(StringArray::from(vec!["a", "a", "b"]));
        let response: ArrayRef = Arc::new(StringArray::from(vec![Some("x"), Some("y"), None]));
        let tokens: ArrayRef = Arc::new(UInt32Array::from(vec![Some(5), None, Some(7)]));
        write_parquet(
            &path,
            vec![
                ("id", id),
                ("response", response),
                ("completion_tokens", tokens),
            ],
        );
        let r = open(dir.path(), &path, &[("a", 0), ("b", 0)], 2);
        let a = r.generate("a", 0, 2, 0).unwrap().choices;
        assert_eq!(a[0].content.as_deref(), Some("x"));
        assert_eq!(a[0].completion_tokens, Some(5));
        assert_eq!(a[1].completion_tokens, None);
        assert_eq!(a[1].finish_reason.as_deref(), Some("stop"));
        assert_eq!(r.generate("b", 0, 1, 0).unwrap().choices[0].content, None);
    }

    #[test]
    fn bad_records_name_the_line_or_the_column() {
        let dir = tempfile::tempdir().unwrap();
        let input = input(dir.path(), &[("a", 0)]);
        let path = dir.path().join("r.jsonl");
        std::fs::write(
            &path,
            "{\"id\":\"a\",\"response\":\"x\"}\n{\"response\":\"y\"}\n",
        )
        .unwrap();
        let e = ReplayBackend::open(&path, &input, dir.path().join("s"), 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("r.jsonl:2: no `id`"), "{e}");

        let path = dir.path().join("r.parquet");
        let id: ArrayRef = Arc::new(StringArray::from(vec!["a"]));
        write_parquet(&path, vec![("id", id)]);
        let e = ReplayBackend::open(&path, &input, dir.path().join("s"), 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no `response` column"), "{e}");
    }
}
