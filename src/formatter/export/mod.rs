//! Exports: formatter rows in the shapes trainers read.
//!
//! - `trl`: SFT rows as `{"messages": [...prompt, assistant]}`, pairs as
//!   `{"prompt": [...], "chosen": [assistant], "rejected": [assistant]}`
//!   (TRL's conversational shapes).
//! - `sharegpt`: `{"conversations": [{"from": "system"?|"human"|"gpt",
//!   "value"}], "images"?}`; pairs add `"chosen"`/`"rejected"` turns
//!   (LLaMA-Factory).
//! - `alpaca`: `{"instruction", "input": "", "output", "system",
//!   "history"}`; pairs have `"chosen"`/`"rejected"` instead of `"output"`.
//! - `parquet`: the `trl` shape as Parquet (`list<struct<role, content,
//!   reasoning_content>>`; non-text content kept as its JSON text).
//!
//! The response's thinking (the `reasoning` column, else an inline
//! `<think>…</think>` block) is dropped, put back inline in `<think>` tags,
//! or given as a separate `reasoning_content` field. Rows are written as
//! they arrive; nothing is held but one batch.

mod alpaca;
mod parquet;
mod sharegpt;
mod trl;

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::DataType;
use serde_json::{Map, Value};

use super::Shape;
use crate::config::{ExportFormat, ReasoningMode};
use crate::store::AtomicFile;
use crate::store::parquet::ParquetFile as ParquetSink;

/// One row's turns, before a shape arranges them.
struct Turns {
    /// The prompt's messages.
    prompt: Vec<Value>,
    /// The assistant turn of the response (a pair's chosen one).
    first: Map<String, Value>,
    /// A pair's rejected assistant turn.
    second: Option<Map<String, Value>>,
}

/// Writes one export file; it appears only on [`ExportWriter::commit`].
pub struct ExportWriter {
    path: PathBuf,
    shape: Shape,
    format: ExportFormat,
    reasoning: ReasoningMode,
    with_ids: bool,
    sink: Sink,
    rows: u64,
    /// Rows whose prompt had a `developer` message.
    developer_rows: u64,
}

enum Sink {
    Jsonl(BufWriter<AtomicFile>),
    Parquet(Box<ParquetSink>, parquet::Rows),
}

/// Errors writing an export.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Writing failed.
    #[error("cannot write {path}: {message}")]
    Write {
        /// The file.
        path: String,
        /// The cause.
        message: String,
    },
    /// The Parquet file cannot be written (the message names it).
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// A row cannot be shaped.
    #[error("row {row} (id {id}): {message}")]
    Row {
        /// 1-based row of the export.
        row: u64,
        /// Prompt id.
        id: String,
        /// What is wrong.
        message: String,
    },
}

impl ExportWriter {
    /// Starts `path` for rows of `shape`.
    pub fn create(
        path: &Path,
        shape: Shape,
        options: crate::config::ExportConfig,
    ) -> Result<Self, ExportError> {
        let crate::config::ExportConfig {
            format,
            reasoning,
            with_ids,
        } = options;
        let err = |e: &dyn std::fmt::Display| ExportError::Write {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        if reasoning == ReasoningMode::Field
            && matches!(format, ExportFormat::Sharegpt | ExportFormat::Alpaca)
        {
            return Err(ExportError::Write {
                path: path.display().to_string(),
                message: field_refusal(format),
            });
        }
        let sink = if format == ExportFormat::Parquet {
            let schema = parquet::schema(shape, with_ids);
            Sink::Parquet(
                Box::new(ParquetSink::create(path, Arc::clone(&schema))?),
                parquet::Rows::new(&schema),
            )
        } else {
            Sink::Jsonl(BufWriter::new(
                AtomicFile::create(path).map_err(|e| err(&e))?,
            ))
        };
        Ok(Self {
            path: path.to_path_buf(),
            shape,
            format,
            reasoning,
            with_ids,
            sink,
            rows: 0,
            developer_rows: 0,
        })
    }

    /// Shapes and writes every row of a formatter batch.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), ExportError> {
        let rows = self.turns(batch)?;
        let indices = index_columns(batch, self.shape);
        self.emit(rows, &indices)
    }

    /// Each row of `batch` as its turns (the prompt with its system turn
    /// first, the responses with their thinking as the export keeps it),
    /// with its index in the batch and its id.
    fn turns(&mut self, batch: &RecordBatch) -> Result<Vec<(usize, String, Turns)>, ExportError> {
        let text = |name: &str| -> Option<Vec<Option<String>>> {
            let col = batch.column_by_name(name)?;
            let col = arrow::compute::cast(col, &DataType::Utf8).ok()?;
            let col = col.as_string::<i32>();
            Some(
                (0..col.len())
                    .map(|i| col.is_valid(i).then(|| col.value(i).to_string()))
                    .collect(),
            )
        };
        let none = || vec![None; batch.num_rows()];
        let ids = text("id").unwrap_or_else(none);
        let messages = text("messages").unwrap_or_else(none);
        let (a, a_reasoning, b, b_reasoning) = match self.shape {
            Shape::Sft => (text("response"), text("reasoning"), None, None),
            Shape::Pairs => (
                text("chosen"),
                text("chosen_reasoning"),
                text("rejected"),
                text("rejected_reasoning"),
            ),
        };
        let a = a.unwrap_or_else(none);
        let a_reasoning = a_reasoning.unwrap_or_else(none);
        let b = b.unwrap_or_else(none);
        let b_reasoning = b_reasoning.unwrap_or_else(none);
        let mut rows = Vec::with_capacity(batch.num_rows());
        for i in 0..batch.num_rows() {
            self.rows += 1;
            let id = ids[i].clone().unwrap_or_default();
            let row_err = |message: String| ExportError::Row {
                row: self.rows,
                id: id.clone(),
                message,
            };
            let prompt: Vec<Value> = match messages[i].as_deref().map(serde_json::from_str::<Value>)
            {
                Some(Ok(Value::Array(m))) => m,
                _ => return Err(row_err("`messages` is not a JSON array".into())),
            };
            let (prompt, had_developer) = system_first(prompt);
            self.developer_rows += u64::from(had_developer);
            let Some(first) = a[i].as_deref() else {
                return Err(row_err("the response is null".into()));
            };
            let first = self.assistant(first, a_reasoning[i].as_deref());
            let second = match self.shape {
                Shape::Pairs => {
                    let Some(r) = b[i].as_deref() else {
                        return Err(row_err("`rejected` is null".into()));
                    };
                    Some(self.assistant(r, b_reasoning[i].as_deref()))
                }
                Shape::Sft => None,
            };
            let turns = Turns {
                prompt,
                first,
                second,
            };
            rows.push((i, id, turns));
        }
        Ok(rows)
    }

    /// Writes shaped rows to the sink (with their ids and rollout indices
    /// when asked).
    fn emit(
        &mut self,
        rows: Vec<(usize, String, Turns)>,
        indices: &[(&str, Option<arrow::array::UInt64Array>)],
    ) -> Result<(), ExportError> {
        let path = self.path.display().to_string();
        let (format, with_ids) = (self.format, self.with_ids);
        match &mut self.sink {
            Sink::Jsonl(w) => {
                for (i, id, turns) in rows {
                    let mut line = shape_row(format, turns);
                    if with_ids && let Value::Object(m) = &mut line {
                        m.insert("id".into(), id.into());
                        for (name, col) in indices {
                            if let Some(c) = col.as_ref().filter(|c| c.is_valid(i)) {
                                m.insert((*name).into(), c.value(i).into());
                            }
                        }
                    }
                    serde_json::to_writer(&mut *w, &line)
                        .map_err(std::io::Error::from)
                        .and_then(|()| w.write_all(b"\n"))
                        .map_err(|e| ExportError::Write {
                            path: path.clone(),
                            message: e.to_string(),
                        })?;
                }
            }
            Sink::Parquet(file, gathered) => {
                for (i, id, turns) in rows {
                    let idx: Vec<Option<u64>> = indices
                        .iter()
                        .map(|(_, c)| c.as_ref().filter(|c| c.is_valid(i)).map(|c| c.value(i)))
                        .collect();
                    gathered.push(&id, turns, &idx);
                }
                file.write(&gathered.finish())?;
            }
        }
        Ok(())
    }

    /// The shape of the rows it writes.
    pub fn shape(&self) -> Shape {
        self.shape
    }

    /// Makes the file visible.
    pub fn commit(self) -> Result<u64, ExportError> {
        let path = self.path.display().to_string();
        if self.developer_rows > 0 {
            tracing::info!(
                "{path}: {} row(s) had a `developer` message: written as the system message (OpenAI's name for it; open-model chat templates and LLaMA-Factory know no developer role)",
                self.developer_rows
            );
        }
        let err = |e: &dyn std::fmt::Display| ExportError::Write {
            path: path.clone(),
            message: e.to_string(),
        };
        match self.sink {
            Sink::Jsonl(w) => {
                let file = w.into_inner().map_err(|e| err(&e))?;
                file.commit().map_err(|e| err(&e))?;
            }
            Sink::Parquet(file, _) => {
                file.commit()?;
            }
        }
        Ok(self.rows)
    }

    /// The assistant turn for a response, thinking handled per the mode.
    fn assistant(&self, response: &str, reasoning: Option<&str>) -> Map<String, Value> {
        let (thinking, final_text) = match crate::verifier::split::split(response) {
            crate::verifier::split::Split::Final { answer, thinking } => (thinking, answer),
            crate::verifier::split::Split::Unclosed { thinking } => (Some(thinking), ""),
        };
        let thinking = reasoning
            .or(thinking)
            .map(str::trim)
            .filter(|t| !t.is_empty());
        let final_text = final_text.trim();
        let mut m = Map::new();
        m.insert("role".into(), "assistant".into());
        match (self.reasoning, thinking) {
            (ReasoningMode::ThinkTags, Some(t)) => {
                m.insert(
                    "content".into(),
                    format!("<think>\n{t}\n</think>\n\n{final_text}").into(),
                );
            }
            (ReasoningMode::Field, Some(t)) => {
                m.insert("content".into(), final_text.into());
                m.insert("reasoning_content".into(), t.into());
            }
            _ => {
                m.insert("content".into(), final_text.into());
            }
        }
        m
    }
}

/// Why `--reasoning field` is refused for `format`: its readers ignore
/// the field, so the thinking would be lost.
pub fn field_refusal(format: ExportFormat) -> String {
    format!(
        "reasoning `field` cannot be written as {}: LLaMA-Factory ignores a reasoning_content key \
         (and a reasoning template then trains an empty think block); use think_tags, which it \
         reads from the response, or drop (with template qwen3_nothink or enable_thinking: false)",
        match format {
            ExportFormat::Alpaca => "alpaca",
            _ => "sharegpt",
        }
    )
}

/// The prompt with its `system` and `developer` messages as one leading
/// system message (their texts joined by a blank line; `developer` is
/// OpenAI's name for the system prompt, which open-model templates and
/// LLaMA-Factory do not know), and whether it had a developer message.
fn system_first(prompt: Vec<Value>) -> (Vec<Value>, bool) {
    let role = |m: &Value| m.get("role").and_then(Value::as_str).map(str::to_string);
    let is_system = |m: &Value| matches!(role(m).as_deref(), Some("system" | "developer"));
    let had_developer = prompt
        .iter()
        .any(|m| role(m).as_deref() == Some("developer"));
    let systems = prompt.iter().filter(|m| is_system(m)).count();
    if !had_developer && systems <= 1 && prompt.first().is_none_or(is_system) {
        return (prompt, false);
    }
    if systems == 0 {
        return (prompt, had_developer);
    }
    let mut images = Vec::new();
    let text: Vec<String> = prompt
        .iter()
        .filter(|m| is_system(m))
        .map(|m| turn_text(m, &mut images).1)
        .collect();
    let mut out = vec![serde_json::json!({"role": "system", "content": text.join("\n\n")})];
    out.extend(prompt.into_iter().filter(|m| !is_system(m)));
    (out, had_developer)
}

/// A JSON Lines row in `format`.
fn shape_row(format: ExportFormat, turns: Turns) -> Value {
    match format {
        ExportFormat::Trl => trl::row(turns, false),
        ExportFormat::TrlPromptCompletion => trl::row(turns, true),
        ExportFormat::Sharegpt => sharegpt::row(turns),
        ExportFormat::Alpaca => alpaca::row(turns),
        ExportFormat::Parquet => unreachable!("Parquet rows go to parquet::Rows"),
    }
}

/// A message's role and its text; content parts are joined, images become
/// `<image>` in the text and their URLs are collected.
fn turn_text(m: &Value, images: &mut Vec<Value>) -> (String, String) {
    let role = m
        .get("role")
        .and_then(Value::as_str)
        .unwrap_or("user")
        .to_string();
    let text = match m.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| match p.get("type").and_then(Value::as_str) {
                Some("text") => p.get("text").and_then(Value::as_str).map(str::to_string),
                Some("image_url") => {
                    if let Some(url) = p.pointer("/image_url/url") {
                        images.push(url.clone());
                    }
                    Some("<image>".to_string())
                }
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("\n"),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    (role, text)
}

/// The rollout-index columns of `batch` its shape has, as numbers.
fn index_columns(
    batch: &RecordBatch,
    shape: Shape,
) -> Vec<(&'static str, Option<arrow::array::UInt64Array>)> {
    let index = |name: &str| {
        let col = batch.column_by_name(name)?;
        let col = arrow::compute::cast(col, &DataType::UInt64).ok()?;
        let col = col.as_primitive::<arrow::datatypes::UInt64Type>().clone();
        Some(col)
    };
    parquet::index_names(shape)
        .iter()
        .map(|name| (*name, index(name)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn developer_and_system_messages_become_one_leading_system_message() {
        let (p, dev) = system_first(vec![
            json!({"role": "user", "content": "Q"}),
            json!({"role": "developer", "content": "Be brief."}),
        ]);
        assert!(dev);
        assert_eq!(
            p,
            vec![
                json!({"role": "system", "content": "Be brief."}),
                json!({"role": "user", "content": "Q"}),
            ]
        );
        let (p, dev) = system_first(vec![
            json!({"role": "system", "content": "S"}),
            json!({"role": "developer", "content": "D"}),
            json!({"role": "user", "content": "Q"}),
        ]);
        assert!(dev);
        assert_eq!(p[0], json!({"role": "system", "content": "S\n\nD"}));
        assert_eq!(p.len(), 2);
        let plain = vec![
            json!({"role": "system", "content": "S"}),
            json!({"role": "user", "content": "Q"}),
        ];
        assert_eq!(system_first(plain.clone()), (plain, false));
    }
}
