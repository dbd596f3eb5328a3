//! Row validation: turns the (transformed) raw rows into the `inputs` table
//! — `id`, `messages`, `answer`, `metadata`, `shard` — or a list of errors
//! that name each bad row.
//!
//! `messages` and `metadata` are stored as canonical JSON text (keys sorted,
//! no insignificant whitespace), so the same prompts give the same bytes
//! whether they came from JSONL text or from Parquet structs.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, StringArray, StringBuilder, UInt32Array};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Schema};
use arrow::json::writer::{EncoderOptions, make_encoder};
use arrow::record_batch::RecordBatch;
use serde_json::{Map, Value};

use super::error::{DataError, RowErrors, snippet};
use super::template::Template;
use crate::config::IdFrom;
use crate::store::inputs::base_fields;

/// Roles a chat message may have.
pub const ROLES: &[&str] = &["system", "developer", "user", "assistant", "tool"];

/// Columns with a fixed meaning; every other column goes into `metadata`
/// when the input has no `metadata` column.
const RESERVED: &[&str] = &["id", "messages", "prompt", "answer", "metadata", "shard"];

/// A gold answer given as a JSON value (`metadata.answer`) as text: a
/// string as it is, a number or any other value as its JSON, null as none.
pub fn gold_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// The columns of `schema`, comma-separated, for error messages.
pub fn column_names(schema: &Schema) -> String {
    schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Names the place of a 0-based row in error messages.
pub enum Locator {
    /// 1-based line (JSONL) or element (JSON array) numbers of each row.
    Lines(std::path::PathBuf, Vec<u64>),
    /// Rows of a CSV or Parquet file.
    Rows(std::path::PathBuf),
    /// Output rows of a transform (its name) over an input file.
    Transform(String, std::path::PathBuf),
}

impl Locator {
    /// `file:line`, `file: row N` or `transform: output row N (input file)`.
    pub fn full(&self, row: u64) -> String {
        match self {
            Locator::Lines(path, lines) => match lines.get(row as usize) {
                Some(line) => format!("{}:{line}", path.display()),
                None => format!("{}: row {}", path.display(), row + 1),
            },
            Locator::Rows(path) => format!("{}: row {}", path.display(), row + 1),
            Locator::Transform(origin, path) => {
                format!(
                    "{origin}: output row {} (input {})",
                    row + 1,
                    path.display()
                )
            }
        }
    }

    /// The same place without the file: `line 3`, `row 3`, `output row 3`.
    pub fn short(&self, row: u64) -> String {
        match self {
            Locator::Lines(_, lines) => match lines.get(row as usize) {
                Some(line) => format!("line {line}"),
                None => format!("row {}", row + 1),
            },
            Locator::Rows(_) => format!("row {}", row + 1),
            Locator::Transform(..) => format!("output row {}", row + 1),
        }
    }
}

enum MessagesFrom {
    Messages(usize),
    Prompt(usize),
    Template(Template),
}

/// How prompts are built besides the input's own columns.
#[derive(Debug, Clone, Default)]
pub struct Prompting {
    /// `data.system_prompt`: a system message put first.
    pub system: Option<String>,
    /// `data.prompt_template`: the user message, from the row's fields.
    pub template: Option<String>,
}

enum MetadataFrom {
    Column(usize),
    Rest(Vec<usize>),
}

/// Checks rows batch by batch and builds the `inputs` batches.
pub struct Validator {
    id: Option<usize>,
    messages: MessagesFrom,
    system: Option<String>,
    /// Prompts that had a system message of their own (kept).
    own_system: u64,
    answer: Option<usize>,
    metadata: MetadataFrom,
    id_from: IdFrom,
    shard_size: u64,
    locate: Locator,
    /// 128-bit hashes of the ids seen, with their rows: 24 bytes per prompt.
    seen: HashMap<u128, u64>,
    rows: u64,
    without_answer: u64,
    answers_from_metadata: u64,
    shard_sizes: Vec<u64>,
    errors: RowErrors,
}

/// What a successful validation found.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Valid rows.
    pub rows: u64,
    /// Rows whose `answer` is null.
    pub without_answer: u64,
    /// Rows whose gold answer was read from `metadata.answer` (the input
    /// has no `answer` column).
    pub answers_from_metadata: u64,
    /// Rows per shard.
    pub shard_sizes: Vec<u64>,
}

impl Validator {
    /// Plans the column mapping for `schema`; `origin` names the input in
    /// messages and `locate` names each row's place in it.
    pub fn new(
        schema: &Schema,
        origin: &str,
        id_from: IdFrom,
        shard_size: u64,
        locate: Locator,
        prompting: &Prompting,
    ) -> Result<Self, DataError> {
        let find = |name: &str| schema.index_of(name).ok();
        let columns = || column_names(schema);
        let id = find("id");
        if id.is_none() && id_from == IdFrom::Column {
            return Err(DataError::MissingColumn {
                origin: origin.to_string(),
                column: "id",
                columns: columns(),
                fix: "add one in a transform (e.g. `row_number() OVER () AS id`) or set data.id_from=hash",
            });
        }
        let template = prompting.template.as_deref();
        let messages = match (find("messages"), find("prompt"), template) {
            (Some(_), _, Some(_)) => {
                return Err(DataError::Config(format!(
                    "data.prompt_template builds each prompt's messages, but {origin} has a `messages` column already: drop one of them"
                )));
            }
            (None, _, Some(text)) => {
                MessagesFrom::Template(Template::parse(text, schema).map_err(DataError::Config)?)
            }
            (Some(i), _, None) => MessagesFrom::Messages(i),
            (None, Some(i), None) => MessagesFrom::Prompt(i),
            (None, None, None) => {
                return Err(DataError::MissingColumn {
                    origin: origin.to_string(),
                    column: "messages",
                    columns: columns(),
                    fix: "give a `messages` list of {role, content} (or a `prompt` string), mapping your columns with data.preprocess.transform",
                });
            }
        };
        let metadata = match find("metadata") {
            Some(i) => MetadataFrom::Column(i),
            None => MetadataFrom::Rest(
                schema
                    .fields()
                    .iter()
                    .enumerate()
                    .filter(|(_, f)| !RESERVED.contains(&f.name().as_str()))
                    .map(|(i, _)| i)
                    .collect(),
            ),
        };
        Ok(Self {
            id,
            messages,
            system: prompting.system.clone(),
            own_system: 0,
            answer: find("answer"),
            metadata,
            id_from,
            shard_size,
            locate,
            seen: HashMap::new(),
            rows: 0,
            without_answer: 0,
            answers_from_metadata: 0,
            shard_sizes: Vec::new(),
            errors: RowErrors::for_origin(origin.to_string()),
        })
    }

    /// Whether the input has an `answer` column at all.
    pub fn has_answer_column(&self) -> bool {
        self.answer.is_some()
    }

    /// Validates a batch. Returns its `inputs` rows, or `None` once any row
    /// so far was bad (later batches are still checked, to count errors).
    pub fn process(&mut self, batch: &RecordBatch) -> Result<Option<RecordBatch>, DataError> {
        let n = batch.num_rows();
        let schema = batch.schema();
        let ids = match self.id {
            Some(i) => Some(to_utf8(batch.column(i))?),
            None => None,
        };
        let answers = match self.answer {
            Some(i) => Some(to_utf8(batch.column(i))?),
            None => None,
        };
        let options = EncoderOptions::default();
        let mut messages = match &self.messages {
            MessagesFrom::Messages(i) => {
                JsonColumn::new(&schema.fields()[*i], batch.column(*i), &options)?
            }
            MessagesFrom::Prompt(i) => JsonColumn::Prompt(to_utf8(batch.column(*i))?),
            MessagesFrom::Template(t) => {
                JsonColumn::Rendered(t.render(batch).map_err(DataError::Config)?)
            }
        };
        let mut metadata = match &self.metadata {
            MetadataFrom::Column(i) => {
                vec![(
                    None,
                    JsonColumn::new(&schema.fields()[*i], batch.column(*i), &options)?,
                )]
            }
            MetadataFrom::Rest(cols) => cols
                .iter()
                .map(|&i| {
                    let f = &schema.fields()[i];
                    Ok((
                        Some(f.name().clone()),
                        JsonColumn::new(f, batch.column(i), &options)?,
                    ))
                })
                .collect::<Result<Vec<_>, DataError>>()?,
        };

        let mut out_id = StringBuilder::new();
        let mut out_messages = StringBuilder::new();
        let mut out_metadata = StringBuilder::new();
        // No `answer` column: the gold is `metadata.answer`, when present.
        let mut meta_answers = answers.is_none().then(StringBuilder::new);
        let mut shards = Vec::with_capacity(n);
        for row in 0..n {
            let global = self.rows + row as u64;
            let result = self.check_row(
                row,
                global,
                ids.as_ref(),
                &mut messages,
                &mut metadata,
                answers.as_ref(),
            );
            match result {
                Ok((id, msgs, meta, gold)) => {
                    if let Some(b) = meta_answers.as_mut() {
                        b.append_option(gold);
                    }
                    out_id.append_value(id);
                    out_messages.append_value(msgs);
                    out_metadata.append_value(meta);
                    let shard = global / self.shard_size;
                    shards.push(shard as u32);
                    if self.shard_sizes.len() <= shard as usize {
                        self.shard_sizes.push(0);
                    }
                    self.shard_sizes[shard as usize] += 1;
                }
                Err(message) => self.errors.push(self.locate.full(global), message),
            }
        }
        self.rows += n as u64;
        let answers = answers.or_else(|| meta_answers.map(|mut b| b.finish()));
        if let Some(a) = &answers {
            self.without_answer += a.null_count() as u64;
            if self.answer.is_none() {
                self.answers_from_metadata += (a.len() - a.null_count()) as u64;
            }
        }
        if self.errors.total() > 0 {
            return Ok(None);
        }
        let answer: ArrayRef = match answers {
            Some(a) => Arc::new(a),
            None => Arc::new(StringArray::new_null(n)),
        };
        let columns: Vec<ArrayRef> = vec![
            Arc::new(out_id.finish()),
            Arc::new(out_messages.finish()),
            answer,
            Arc::new(out_metadata.finish()),
            Arc::new(UInt32Array::from(shards)),
        ];
        RecordBatch::try_new(Arc::new(Schema::new(base_fields())), columns)
            .map(Some)
            .map_err(|e| DataError::Internal(e.to_string()))
    }

    fn check_row(
        &mut self,
        row: usize,
        global: u64,
        ids: Option<&StringArray>,
        messages: &mut JsonColumn<'_>,
        metadata: &mut [(Option<String>, JsonColumn<'_>)],
        _answers: Option<&StringArray>,
    ) -> Result<(String, String, String, Option<String>), String> {
        let msgs = messages.value(row)?.ok_or_else(|| {
            "`messages` is null; expected a non-empty list of messages".to_string()
        })?;
        let msgs = match (&self.system, msgs) {
            (Some(system), Value::Array(mut items)) => {
                let has_own = items
                    .first()
                    .and_then(|m| m.get("role"))
                    .is_some_and(|r| r == "system");
                if has_own {
                    self.own_system += 1;
                } else {
                    items.insert(0, serde_json::json!({"role": "system", "content": system}));
                }
                Value::Array(items)
            }
            (_, msgs) => msgs,
        };
        let msgs = canonical_messages(msgs)?;
        let meta = match metadata {
            [(None, col)] => match col.value(row)? {
                None => Value::Object(Map::new()),
                Some(Value::Object(m)) => Value::Object(
                    m.into_iter()
                        .map(|(k, v)| (k, embed_json_text(v)))
                        .collect(),
                ),
                Some(other) => {
                    return Err(format!(
                        "`metadata` must be a JSON object, found {}",
                        snippet(&other.to_string())
                    ));
                }
            },
            cols => {
                let mut obj = Map::new();
                for (name, col) in cols.iter_mut() {
                    if let Some(v) = col.value(row)? {
                        obj.insert(name.clone().unwrap_or_default(), embed_json_text(v));
                    }
                }
                Value::Object(obj)
            }
        };
        let id = match self.id_from {
            IdFrom::Hash => format!("{:016x}", fnv1a64(msgs.as_bytes())),
            IdFrom::Column => {
                let ids = ids.expect("id column checked in new()");
                if ids.is_null(row) {
                    return Err("`id` is null; every prompt needs a unique, non-empty id (or set data.id_from=hash)".into());
                }
                let id = ids.value(row);
                if id.trim().is_empty() {
                    return Err(format!(
                        "`id` is empty ({}); every prompt needs a unique, non-empty id",
                        snippet(id)
                    ));
                }
                id.to_string()
            }
        };
        let key = fnv1a128(id.as_bytes());
        if let Some(&first) = self.seen.get(&key) {
            let what = match self.id_from {
                IdFrom::Hash => "the same messages as",
                IdFrom::Column => "duplicate id, first used at",
            };
            return Err(format!(
                "{what} {} (id {}); ids must be unique{}",
                self.locate.short(first),
                snippet(&id),
                if self.id_from == IdFrom::Hash {
                    ": drop duplicate prompts, e.g. with SELECT DISTINCT in a transform"
                } else {
                    ""
                }
            ));
        }
        self.seen.insert(key, global);
        let gold = meta.get("answer").and_then(gold_text);
        Ok((id, msgs, canonical(meta).to_string(), gold))
    }

    /// Ends validation: the summary, or every error found.
    pub fn finish(self) -> Result<Summary, DataError> {
        self.errors.into_result()?;
        if self.own_system > 0 {
            tracing::info!(
                "{} prompt(s) have a system message of their own: data.system_prompt was not added to them",
                self.own_system
            );
        }
        Ok(Summary {
            rows: self.rows,
            without_answer: self.without_answer,
            answers_from_metadata: self.answers_from_metadata,
            shard_sizes: self.shard_sizes,
        })
    }
}

/// A column read as JSON values, row by row.
pub(crate) enum JsonColumn<'a> {
    /// UTF-8 text holding JSON.
    Text(StringArray),
    /// A string column whose values become a single user message.
    Prompt(StringArray),
    /// User messages rendered from `data.prompt_template` (or why not).
    Rendered(Vec<Result<String, String>>),
    /// Any other Arrow type, encoded to JSON by arrow-json.
    Encoded(arrow::json::writer::NullableEncoder<'a>, Vec<u8>),
    /// A plain string column (metadata): values stay strings.
    Plain(StringArray),
}

impl<'a> JsonColumn<'a> {
    /// Reads `array` (the column `field`) as JSON values.
    pub(crate) fn new(
        field: &'a arrow::datatypes::FieldRef,
        array: &'a ArrayRef,
        options: &'a EncoderOptions,
    ) -> Result<Self, DataError> {
        let holds_json = field.name() == "messages" || field.name() == "metadata";
        match array.data_type() {
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
                let text = to_utf8(array)?;
                Ok(if holds_json {
                    JsonColumn::Text(text)
                } else {
                    JsonColumn::Plain(text)
                })
            }
            _ => make_encoder(field, array.as_ref(), options)
                .map(|e| JsonColumn::Encoded(e, Vec::new()))
                .map_err(|e| {
                    DataError::Internal(format!("cannot encode column `{}`: {e}", field.name()))
                }),
        }
    }

    /// The value at `row` (`None` for null), or why it is not JSON.
    pub(crate) fn value(&mut self, row: usize) -> Result<Option<Value>, String> {
        match self {
            JsonColumn::Text(a) => {
                if a.is_null(row) {
                    return Ok(None);
                }
                serde_json::from_str(a.value(row)).map(Some).map_err(|_| {
                    format!(
                        "expected a JSON list or object, found the text {}; a plain prompt string belongs in a `prompt` column",
                        snippet(a.value(row))
                    )
                })
            }
            JsonColumn::Prompt(a) => Ok((!a.is_null(row))
                .then(|| serde_json::json!([{"role": "user", "content": a.value(row)}]))),
            JsonColumn::Rendered(rows) => match &rows[row] {
                Ok(text) => Ok(Some(serde_json::json!([{"role": "user", "content": text}]))),
                Err(e) => Err(e.clone()),
            },
            JsonColumn::Plain(a) => {
                Ok((!a.is_null(row)).then(|| Value::String(a.value(row).to_string())))
            }
            JsonColumn::Encoded(enc, buf) => {
                if enc.is_null(row) {
                    return Ok(None);
                }
                buf.clear();
                enc.encode(row, buf);
                serde_json::from_slice(buf)
                    .map(Some)
                    .map_err(|e| format!("cannot read value as JSON: {e}"))
            }
        }
    }
}

/// Validates a chat message list and returns its canonical JSON text.
pub fn canonical_messages(v: Value) -> Result<String, String> {
    let Value::Array(items) = &v else {
        return Err(format!(
            "`messages` must be a list of {{role, content}} objects, found {}",
            snippet(&v.to_string())
        ));
    };
    if items.is_empty() {
        return Err("`messages` is empty; a prompt needs at least one message".into());
    }
    for (i, m) in items.iter().enumerate() {
        let n = i + 1;
        let Value::Object(obj) = m else {
            return Err(format!(
                "message {n} must be a {{role, content}} object, found {}",
                snippet(&m.to_string())
            ));
        };
        let role = match obj.get("role") {
            Some(Value::String(r)) => r.as_str(),
            Some(other) => {
                return Err(format!(
                    "message {n}: `role` must be a string, found {}",
                    snippet(&other.to_string())
                ));
            }
            None => return Err(format!("message {n} has no `role`")),
        };
        if !ROLES.contains(&role) {
            return Err(format!(
                "message {n}: unknown role {}; expected one of {}",
                snippet(role),
                ROLES.join(", ")
            ));
        }
        match obj.get("content") {
            Some(Value::String(_)) => {}
            Some(Value::Array(parts)) => {
                for (j, part) in parts.iter().enumerate() {
                    if !matches!(part.get("type"), Some(Value::String(_))) {
                        return Err(format!(
                            "message {n}, content part {}: expected an object with a `type` (text, image_url, ...), found {}",
                            j + 1,
                            snippet(&part.to_string())
                        ));
                    }
                }
            }
            Some(Value::Null) | None if role == "assistant" && obj.contains_key("tool_calls") => {}
            None => return Err(format!("message {n} ({role}) has no `content`")),
            Some(other) => {
                return Err(format!(
                    "message {n}: `content` must be a string or a list of content parts, found {}",
                    snippet(&other.to_string())
                ));
            }
        }
    }
    Ok(canonical(v).to_string())
}

/// The value with every object's keys sorted, whatever map order serde_json uses.
fn canonical(v: Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, canonical(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(canonical).collect()),
        other => other,
    }
}

/// A string holding a JSON object or array (nested values of JSONL inputs
/// reach SQL as text) becomes that value again inside `metadata`.
fn embed_json_text(v: Value) -> Value {
    if let Value::String(s) = &v {
        let t = s.trim_start();
        if (t.starts_with('{') || t.starts_with('['))
            && let Ok(parsed) = serde_json::from_str::<Value>(s)
        {
            return parsed;
        }
    }
    v
}

fn to_utf8(array: &ArrayRef) -> Result<StringArray, DataError> {
    let cast = cast(array, &DataType::Utf8).map_err(|e| {
        DataError::Internal(format!(
            "cannot read a {} column as text: {e}",
            array.data_type()
        ))
    })?;
    Ok(cast.as_string::<i32>().clone())
}

/// 64-bit FNV-1a: a stable, dependency-free hash for derived ids.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// 128-bit FNV-1a: the uniqueness check keys ids by this hash instead of
/// keeping every id string (collisions are negligible: ~1e-26 at 10^6 ids).
pub fn fnv1a128(bytes: &[u8]) -> u128 {
    let mut h: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    for &b in bytes {
        h ^= u128::from(b);
        h = h.wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013b);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn accepts_strings_content_parts_and_tool_calls() {
        let ok = canonical_messages(json!([
            {"role": "system", "content": "be brief"},
            {"content": [{"type": "text", "text": "what is this?"},
                         {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA"}}],
             "role": "user"},
            {"role": "assistant", "content": null, "tool_calls": []}
        ]))
        .unwrap();
        assert!(
            ok.starts_with(r#"[{"content":"be brief","role":"system"}"#),
            "{ok}"
        );
        assert!(
            ok.contains(r#"{"image_url":{"url":"data:image/png;base64,AAA"},"type":"image_url"}"#)
        );
    }

    #[test]
    fn rejects_bad_shapes_with_the_message_number() {
        let cases = [
            (json!("hi"), "must be a list"),
            (json!([]), "is empty"),
            (
                json!([{"role": "bot", "content": "x"}]),
                "message 1: unknown role `bot`",
            ),
            (json!([{"content": "x"}]), "message 1 has no `role`"),
            (
                json!([{"role": "user", "content": "a"}, {"role": "user"}]),
                "message 2 (user) has no `content`",
            ),
            (
                json!([{"role": "user", "content": 3}]),
                "`content` must be a string",
            ),
            (
                json!([{"role": "user", "content": [{"text": "x"}]}]),
                "content part 1",
            ),
        ];
        for (v, want) in cases {
            let err = canonical_messages(v.clone()).unwrap_err();
            assert!(err.contains(want), "{v}: {err}");
        }
    }

    #[test]
    fn canonical_sorts_keys_recursively() {
        let v = canonical(json!({"b": 1, "a": {"d": 1, "c": [{"z": 1, "y": 2}]}}));
        assert_eq!(v.to_string(), r#"{"a":{"c":[{"y":2,"z":1}],"d":1},"b":1}"#);
    }

    #[test]
    fn embedded_json_text_is_parsed_back() {
        assert_eq!(embed_json_text(json!("[1, 2]")), json!([1, 2]));
        assert_eq!(embed_json_text(json!("[not json")), json!("[not json"));
        assert_eq!(embed_json_text(json!("plain")), json!("plain"));
    }

    #[test]
    fn fnv_is_stable() {
        assert_eq!(fnv1a64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a128(b""), 0x6c62272e07bb014262b821756295c58d);
        assert_eq!(fnv1a128(b"a"), 0xd228cb696f1a8caf78912b704e4a8964);
    }
}
