//! Reading benchmark files (`data.decontaminate.benchmarks`) into the
//! n-gram index: any format `prepare` reads, the text column found by name,
//! each problem located by file and line (or row) for the evidence.

use std::sync::Arc;

use arrow::datatypes::Field;
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::StreamExt;
use serde_json::Value;

use super::HygieneError;
use super::ngram::NgramIndex;
use super::normalize::Words;
use crate::config::{BenchmarkFile, InputFormat};

/// Column names tried, in order, when a benchmark names none.
pub const TEXT_COLUMNS: &[&str] = &["problem", "question", "prompt", "messages"];

/// One benchmark file as read.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BenchmarkInfo {
    /// The file, as configured.
    pub path: String,
    /// The column its text came from.
    pub column: String,
    /// Problems read (rows with text).
    pub problems: u64,
}

/// Reads every benchmark into one index of `n`-word runs.
pub async fn load(
    files: &[BenchmarkFile],
    n: usize,
) -> Result<(NgramIndex, Vec<BenchmarkInfo>), HygieneError> {
    let mut index = NgramIndex::new(n);
    let mut infos = Vec::new();
    for (i, file) in files.iter().enumerate() {
        infos.push(read_one(i, file, &mut index).await?);
    }
    Ok((index, infos))
}

async fn read_one(
    i: usize,
    file: &BenchmarkFile,
    index: &mut NgramIndex,
) -> Result<BenchmarkInfo, HygieneError> {
    let path = &file.path;
    let err = |message: String| HygieneError::Benchmark {
        path: path.clone(),
        message,
    };
    if !path.is_file() {
        return Err(err(
            "no such file (data.decontaminate.benchmarks; a path in a config file is relative to that file)"
                .into(),
        ));
    }
    let format =
        crate::data::detect_format(path, InputFormat::Auto).map_err(|e| err(e.to_string()))?;
    let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(1));
    let locator = crate::data::register_raw(&ctx, path, format)
        .await
        .map_err(|e| err(e.to_string()))?;
    let table = ctx.table("raw").await.map_err(|e| err(e.to_string()))?;
    let schema = table.schema().as_arrow().clone();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let column = match &file.column {
        Some(c) if names.contains(&c.as_str()) => c.clone(),
        Some(c) => {
            return Err(err(format!(
                "no column `{c}` (columns: {})",
                names.join(", ")
            )));
        }
        None => match TEXT_COLUMNS.iter().find(|c| names.contains(c)) {
            Some(c) => c.to_string(),
            None => {
                return Err(err(format!(
                    "none of the columns {} (columns: {}); name its text column: {{path: {}, column: NAME}}",
                    TEXT_COLUMNS.join(", "),
                    names.join(", "),
                    path.display()
                )));
            }
        },
    };
    let df = table
        .select_columns(&[column.as_str()])
        .map_err(|e| err(e.to_string()))?;
    let mut stream = df.execute_stream().await.map_err(|e| err(e.to_string()))?;
    let options = arrow::json::writer::EncoderOptions::default();
    let mut words = Words::default();
    let mut row: u64 = 0;
    let mut problems = 0;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(|e| err(e.to_string()))?;
        let field: Arc<Field> = batch.schema().field(0).clone().into();
        let array = batch.column(0);
        let mut values = crate::data::validate::JsonColumn::new(&field, array, &options)
            .map_err(|e| err(e.to_string()))?;
        for r in 0..batch.num_rows() {
            let value = values
                .value(r)
                .map_err(|m| err(format!("{}: {m}", locator.short(row))))?;
            if let Some(v) = value {
                words.fill(&text_of(&v));
                if !words.is_empty() {
                    index.add(i, locator.full(row), &words);
                    problems += 1;
                }
            }
            row += 1;
        }
    }
    Ok(BenchmarkInfo {
        path: path.display().to_string(),
        column,
        problems,
    })
}

/// The text of a value: a string as it is, a message list as its user turns
/// (string contents and `text` parts), anything else as its JSON.
pub fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => user_turns(items),
        other => other.to_string(),
    }
}

/// The user turns of a message list, one per line.
pub fn user_turns(items: &[Value]) -> String {
    let mut out = String::new();
    for m in items {
        if m.get("role").and_then(Value::as_str) != Some("user") {
            continue;
        }
        match m.get("content") {
            Some(Value::String(s)) => push_line(&mut out, s),
            Some(Value::Array(parts)) => {
                for p in parts {
                    if let Some(t) = p.get("text").and_then(Value::as_str) {
                        push_line(&mut out, t);
                    }
                }
            }
            _ => {}
        }
    }
    out
}

fn push_line(out: &mut String, s: &str) {
    if !out.is_empty() {
        out.push('\n');
    }
    out.push_str(s);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_turns_skip_system_and_assistant_and_read_text_parts() {
        let v: Value = serde_json::from_str(
            r#"[{"role":"system","content":"Be brief."},
                {"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}},{"type":"text","text":"What is shown?"}]},
                {"role":"assistant","content":"A cat."},
                {"role":"user","content":"And its colour?"}]"#,
        )
        .unwrap();
        assert_eq!(text_of(&v), "What is shown?\nAnd its colour?");
        assert_eq!(text_of(&Value::String("plain".into())), "plain");
    }
}
