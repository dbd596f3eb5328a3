//! The replay backend: responses generated elsewhere, fed through the same
//! operator (truncation flags, inline scoring, early stop, storage).
//!
//! Accepted files: JSONL or Parquet with `id` and `response` (optional
//! `reasoning`, `finish_reason`, `completion_tokens`), one row per
//! response; or an OpenAI batch output file (JSONL whose lines carry
//! `custom_id` = the prompt id and `response.body` = a chat completion).
//! A prompt's responses are served in file order; when they run out the
//! prompt is finished.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, UInt32Type};
use serde_json::Value;
use thiserror::Error;

use super::{Choice, Generation};

/// Errors reading a replay file.
#[derive(Debug, Error)]
pub enum ReplayError {
    /// The file cannot be read.
    #[error("cannot read replay file {path}: {source}")]
    Io {
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
    /// The Parquet file cannot be decoded.
    #[error("cannot read replay file {path}: {message}")]
    Parquet {
        /// The file.
        path: PathBuf,
        /// The cause.
        message: String,
    },
}

/// Saved responses by prompt id.
#[derive(Debug)]
pub struct ReplayBackend {
    responses: HashMap<String, Vec<Choice>>,
    endpoint: String,
}

impl ReplayBackend {
    /// Loads every response of `path` (JSONL or `.parquet`).
    pub fn load(path: &Path) -> Result<Self, ReplayError> {
        let responses = if path.extension().is_some_and(|e| e == "parquet") {
            load_parquet(path)?
        } else {
            load_jsonl(path)?
        };
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        Ok(Self {
            responses,
            endpoint: format!("replay:{name}"),
        })
    }

    /// Number of prompts with at least one response.
    pub fn prompts(&self) -> usize {
        self.responses.len()
    }

    /// Up to `n` responses of prompt `id` starting at its `ordinal`-th;
    /// fewer (or none) when the file has no more.
    pub fn generate(&self, id: &str, n: u32, ordinal: u32) -> Generation {
        let saved = self.responses.get(id).map_or(&[][..], Vec::as_slice);
        let start = (ordinal as usize).min(saved.len());
        let end = (start + n as usize).min(saved.len());
        Generation {
            choices: saved[start..end].to_vec(),
            prompt_tokens: None,
            endpoint: self.endpoint.clone(),
            latency_ms: 0,
        }
    }
}

fn load_jsonl(path: &Path) -> Result<HashMap<String, Vec<Choice>>, ReplayError> {
    let io = |source| ReplayError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut out: HashMap<String, Vec<Choice>> = HashMap::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
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
            let choices = batch_choices(&v).map_err(record)?;
            out.entry(custom_id.to_string())
                .or_default()
                .extend(choices);
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
        out.entry(id).or_default().push(Choice {
            content: Some(response.to_string()),
            reasoning: text("reasoning"),
            finish_reason: text("finish_reason").or_else(|| Some("stop".into())),
            completion_tokens: v
                .get("completion_tokens")
                .and_then(Value::as_u64)
                .and_then(|t| u32::try_from(t).ok()),
        });
    }
    Ok(out)
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

fn load_parquet(path: &Path) -> Result<HashMap<String, Vec<Choice>>, ReplayError> {
    let parquet = |message: String| ReplayError::Parquet {
        path: path.to_path_buf(),
        message,
    };
    let batches = crate::store::parquet::read_batches(path).map_err(|e| parquet(e.to_string()))?;
    let mut out: HashMap<String, Vec<Choice>> = HashMap::new();
    let mut row = 0;
    for batch in &batches {
        let utf8 =
            |name: &str, required: bool| -> Result<Option<Vec<Option<String>>>, ReplayError> {
                string_column(batch, name)
                    .map_err(|m| parquet(format!("column `{name}` {m}")))?
                    .map_or_else(
                        || {
                            if required {
                                Err(parquet(format!(
                                    "no `{name}` column: replay Parquet needs `id` and `response`"
                                )))
                            } else {
                                Ok(None)
                            }
                        },
                        |v| Ok(Some(v)),
                    )
            };
        let ids = utf8("id", true)?.unwrap_or_default();
        let responses = utf8("response", true)?.unwrap_or_default();
        let reasoning = utf8("reasoning", false)?;
        let finish = utf8("finish_reason", false)?;
        let tokens = batch
            .column_by_name("completion_tokens")
            .and_then(|c| arrow::compute::cast(c, &DataType::UInt32).ok());
        for i in 0..batch.num_rows() {
            row += 1;
            let Some(id) = ids[i].clone() else {
                return Err(ReplayError::Record {
                    path: path.to_path_buf(),
                    line: row,
                    message: "`id` is null".into(),
                });
            };
            out.entry(id).or_default().push(Choice {
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
            });
        }
    }
    Ok(out)
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
            ),
        )
        .unwrap();
        let r = ReplayBackend::load(&path).unwrap();
        assert_eq!(r.prompts(), 2);
        let g = r.generate("a", 4, 0);
        assert_eq!(g.choices.len(), 2);
        assert_eq!(g.choices[1].finish_reason.as_deref(), Some("length"));
        assert_eq!(g.choices[1].completion_tokens, Some(9));
        assert_eq!(r.generate("a", 4, 1).choices.len(), 1);
        assert!(r.generate("a", 4, 5).choices.is_empty());
        assert_eq!(
            r.generate("b", 1, 0).choices[0].content.as_deref(),
            Some("x")
        );
        assert!(r.generate("zzz", 1, 0).choices.is_empty());
        assert_eq!(g.endpoint, "replay:r.jsonl");
    }

    #[test]
    fn parquet_rows_with_optional_columns() {
        use arrow::array::{ArrayRef, StringArray, UInt32Array};
        use std::sync::Arc;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.parquet");
        let id: ArrayRef = Arc::new(StringArray::from(vec!["a", "a", "b"]));
        let response: ArrayRef = Arc::new(StringArray::from(vec![Some("x"), Some("y"), None]));
        let tokens: ArrayRef = Arc::new(UInt32Array::from(vec![Some(5), None, Some(7)]));
        let batch = RecordBatch::try_from_iter([
            ("id", id),
            ("response", response),
            ("completion_tokens", tokens),
        ])
        .unwrap();
        let mut f = crate::store::parquet::ParquetFile::create(&path, batch.schema()).unwrap();
        f.write(&batch).unwrap();
        f.commit().unwrap();
        let r = ReplayBackend::load(&path).unwrap();
        let a = r.generate("a", 2, 0).choices;
        assert_eq!(a[0].content.as_deref(), Some("x"));
        assert_eq!(a[0].completion_tokens, Some(5));
        assert_eq!(a[1].completion_tokens, None);
        assert_eq!(a[1].finish_reason.as_deref(), Some("stop"));
        assert_eq!(r.generate("b", 1, 0).choices[0].content, None);
    }

    #[test]
    fn bad_lines_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.jsonl");
        std::fs::write(
            &path,
            "{\"id\":\"a\",\"response\":\"x\"}\n{\"response\":\"y\"}\n",
        )
        .unwrap();
        let e = ReplayBackend::load(&path).unwrap_err().to_string();
        assert!(e.contains("r.jsonl:2: no `id`"), "{e}");
    }
}
