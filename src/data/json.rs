//! JSONL and JSON-array readers that build Arrow batches for the `raw` table.
//!
//! Hand-rolled rather than arrow-json's reader so that every error names the
//! line (malformed JSON, non-UTF-8 bytes, a line that is not an object) and so
//! that mixed value types never fail inference: a column whose values are not
//! all of one scalar type, and every nested value (object or array, such as
//! `messages`), reaches SQL as UTF-8 text (JSON text for nested values).

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanBuilder, Float64Builder, Int64Builder, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use serde_json::{Map, Value};

use super::error::{DataError, RowErrors};

/// Rows per Arrow batch built from JSON.
const BATCH_ROWS: usize = 8192;

/// The inferred type of a JSON column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Null,
    Bool,
    Int,
    Float,
    Text,
}

impl Kind {
    fn of(v: &Value) -> Kind {
        match v {
            Value::Null => Kind::Null,
            Value::Bool(_) => Kind::Bool,
            Value::Number(n) if n.is_i64() => Kind::Int,
            Value::Number(_) => Kind::Float,
            _ => Kind::Text,
        }
    }

    fn merge(self, other: Kind) -> Kind {
        match (self, other) {
            (a, b) if a == b => a,
            (Kind::Null, k) | (k, Kind::Null) => k,
            (Kind::Int, Kind::Float) | (Kind::Float, Kind::Int) => Kind::Float,
            _ => Kind::Text,
        }
    }

    fn data_type(self) -> DataType {
        match self {
            Kind::Bool => DataType::Boolean,
            Kind::Int => DataType::Int64,
            Kind::Float => DataType::Float64,
            Kind::Null | Kind::Text => DataType::Utf8,
        }
    }
}

/// Rows read from a JSON file, with where each row came from.
#[derive(Debug)]
pub struct JsonTable {
    /// The inferred schema.
    pub schema: SchemaRef,
    /// The rows, in file order.
    pub batches: Vec<RecordBatch>,
    /// 1-based line (JSONL) or element (JSON array) of each row.
    pub locations: Vec<u64>,
}

/// A checked JSON Lines file: its inferred schema and where each row is.
/// Rows are read again, one batch at a time, by [`JsonlScan::batches`], so
/// memory stays bounded by the batch size.
#[derive(Debug, Clone)]
pub struct JsonlScan {
    path: PathBuf,
    columns: Columns,
    /// The inferred schema.
    pub schema: SchemaRef,
    /// 1-based line number of each row.
    pub locations: Vec<u64>,
}

/// Checks every line of a JSON Lines file (one object per non-blank line)
/// and infers its schema; every bad line is reported with its number.
pub fn scan_jsonl(path: &Path) -> Result<JsonlScan, DataError> {
    let mut errors = RowErrors::new(path);
    let mut columns = Columns::default();
    let mut locations = Vec::new();
    for_each_line(path, |line_no, line| {
        match parse_line(line) {
            Ok(Some(obj)) => {
                columns.observe(&obj);
                locations.push(line_no);
            }
            Ok(None) => {}
            Err(message) => errors.push(format!("{}:{line_no}", path.display()), message),
        }
        Ok(())
    })?;
    errors.into_result()?;
    if locations.is_empty() {
        return Err(DataError::Empty {
            path: path.to_path_buf(),
            expected: "one JSON object per line",
        });
    }
    Ok(JsonlScan {
        path: path.to_path_buf(),
        schema: columns.schema(),
        columns,
        locations,
    })
}

impl JsonlScan {
    /// Reads the rows again as Arrow batches of up to 8,192 rows.
    pub fn batches(&self) -> JsonlBatches {
        JsonlBatches {
            path: self.path.clone(),
            reader: None,
            builder: BatchBuilder::new(&self.columns),
            buf: Vec::new(),
            line_no: 0,
            done: false,
        }
    }
}

/// Iterator over the batches of a [`JsonlScan`].
pub struct JsonlBatches {
    path: PathBuf,
    reader: Option<BufReader<File>>,
    builder: BatchBuilder,
    buf: Vec<u8>,
    line_no: u64,
    done: bool,
}

impl JsonlBatches {
    fn next_batch(&mut self) -> Result<Option<RecordBatch>, ArrowError> {
        let io = |e: std::io::Error| ArrowError::ExternalError(Box::new(e));
        if self.reader.is_none() {
            let file = File::open(&self.path).map_err(io)?;
            self.reader = Some(BufReader::with_capacity(1 << 20, file));
        }
        let reader = self.reader.as_mut().expect("opened above");
        loop {
            self.buf.clear();
            if reader.read_until(b'\n', &mut self.buf).map_err(io)? == 0 {
                return self.builder.flush();
            }
            self.line_no += 1;
            match parse_line(trim_line_end(&self.buf)) {
                Ok(Some(obj)) => {
                    if let Some(batch) = self.builder.push(&obj)? {
                        return Ok(Some(batch));
                    }
                }
                Ok(None) => {}
                Err(message) => {
                    return Err(ArrowError::ParseError(format!(
                        "{}:{}: {message} (the file changed while it was read)",
                        self.path.display(),
                        self.line_no
                    )));
                }
            }
        }
    }
}

impl Iterator for JsonlBatches {
    type Item = Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let next = self.next_batch();
        if !matches!(next, Ok(Some(_))) {
            self.done = true;
        }
        next.transpose()
    }
}

/// Reads a JSON file holding one array of objects.
pub fn read_json_array(path: &Path) -> Result<JsonTable, DataError> {
    let bytes = std::fs::read(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(DataError::Empty {
            path: path.to_path_buf(),
            expected: "a JSON array of objects",
        });
    }
    let text = std::str::from_utf8(&bytes).map_err(|e| {
        let line = bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        DataError::single(
            format!("{}:{line}", path.display()),
            "invalid UTF-8 bytes; re-encode the file as UTF-8".to_string(),
        )
    })?;
    let value: Value = serde_json::from_str(text).map_err(|e| {
        DataError::single(
            format!("{}:{}:{}", path.display(), e.line(), e.column()),
            format!("malformed JSON: {e}"),
        )
    })?;
    let Value::Array(items) = value else {
        return Err(DataError::single(
            path.display().to_string(),
            format!(
                "expected a JSON array of objects, found {}; for one object per line use a .jsonl file or data.format=jsonl",
                kind_name(&value)
            ),
        ));
    };
    let mut errors = RowErrors::new(path);
    let mut columns = Columns::default();
    for (i, item) in items.iter().enumerate() {
        match item {
            Value::Object(obj) => columns.observe(obj),
            other => errors.push(
                format!("{}: element {}", path.display(), i + 1),
                format!("expected a JSON object, found {}", kind_name(other)),
            ),
        }
    }
    errors.into_result()?;
    if items.is_empty() {
        return Err(DataError::Empty {
            path: path.to_path_buf(),
            expected: "a JSON array of objects",
        });
    }
    let mut builder = BatchBuilder::new(&columns);
    let mut batches = Vec::new();
    for item in &items {
        if let Value::Object(obj) = item {
            batches.extend(builder.push(obj).map_err(internal)?);
        }
    }
    batches.extend(builder.flush().map_err(internal)?);
    Ok(JsonTable {
        schema: builder.schema.clone(),
        batches,
        locations: (1..=items.len() as u64).collect(),
    })
}

/// Calls `f(line_number, bytes)` for each line, without the line ending.
fn for_each_line(
    path: &Path,
    mut f: impl FnMut(u64, &[u8]) -> Result<(), DataError>,
) -> Result<(), DataError> {
    let io_err = |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut reader = BufReader::with_capacity(1 << 20, File::open(path).map_err(io_err)?);
    let mut buf = Vec::new();
    let mut line_no = 0u64;
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf).map_err(io_err)? == 0 {
            return Ok(());
        }
        line_no += 1;
        f(line_no, trim_line_end(&buf))?;
    }
}

fn trim_line_end(mut line: &[u8]) -> &[u8] {
    while let [rest @ .., b'\n' | b'\r'] = line {
        line = rest;
    }
    line
}

fn internal(e: ArrowError) -> DataError {
    DataError::Internal(e.to_string())
}

/// Parses one JSONL line; `Ok(None)` for a blank line.
fn parse_line(line: &[u8]) -> Result<Option<Map<String, Value>>, String> {
    let text = std::str::from_utf8(line).map_err(|e| {
        format!(
            "invalid UTF-8 byte at column {}; re-encode the file as UTF-8",
            e.valid_up_to() + 1
        )
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Ok(None);
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(obj)) => Ok(Some(obj)),
        Ok(other) => Err(format!(
            "expected a JSON object, found {}: {}",
            kind_name(&other),
            super::error::snippet(text)
        )),
        Err(e) => Err(format!(
            "malformed JSON at column {}: {e}: {}",
            e.column(),
            super::error::snippet(text)
        )),
    }
}

fn kind_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Column names in first-seen order with their merged kinds.
#[derive(Debug, Clone, Default)]
struct Columns {
    names: Vec<String>,
    kinds: Vec<Kind>,
    index: HashMap<String, usize>,
}

impl Columns {
    fn schema(&self) -> SchemaRef {
        let fields: Vec<Field> = self
            .names
            .iter()
            .zip(&self.kinds)
            .map(|(n, k)| Field::new(n, k.data_type(), true))
            .collect();
        Arc::new(Schema::new(fields))
    }

    fn observe(&mut self, obj: &Map<String, Value>) {
        for (k, v) in obj {
            let kind = Kind::of(v);
            match self.index.get(k) {
                Some(&i) => self.kinds[i] = self.kinds[i].merge(kind),
                None => {
                    self.index.insert(k.clone(), self.names.len());
                    self.names.push(k.clone());
                    self.kinds.push(kind);
                }
            }
        }
    }
}

enum ColumnBuilder {
    Bool(BooleanBuilder),
    Int(Int64Builder),
    Float(Float64Builder),
    Text(StringBuilder),
}

impl ColumnBuilder {
    fn new(kind: Kind) -> Self {
        match kind {
            Kind::Bool => Self::Bool(BooleanBuilder::new()),
            Kind::Int => Self::Int(Int64Builder::new()),
            Kind::Float => Self::Float(Float64Builder::new()),
            Kind::Null | Kind::Text => Self::Text(StringBuilder::new()),
        }
    }

    fn push(&mut self, v: Option<&Value>) {
        let v = v.filter(|v| !v.is_null());
        match self {
            Self::Bool(b) => b.append_option(v.and_then(Value::as_bool)),
            Self::Int(b) => b.append_option(v.and_then(Value::as_i64)),
            Self::Float(b) => b.append_option(v.and_then(Value::as_f64)),
            Self::Text(b) => match v {
                None => b.append_null(),
                Some(Value::String(s)) => b.append_value(s),
                Some(other) => b.append_value(other.to_string()),
            },
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Self::Bool(b) => Arc::new(b.finish()),
            Self::Int(b) => Arc::new(b.finish()),
            Self::Float(b) => Arc::new(b.finish()),
            Self::Text(b) => Arc::new(b.finish()),
        }
    }
}

struct BatchBuilder {
    schema: SchemaRef,
    names: Vec<String>,
    builders: Vec<ColumnBuilder>,
    rows: usize,
}

impl BatchBuilder {
    fn new(columns: &Columns) -> Self {
        Self {
            schema: columns.schema(),
            names: columns.names.clone(),
            builders: columns
                .kinds
                .iter()
                .map(|&k| ColumnBuilder::new(k))
                .collect(),
            rows: 0,
        }
    }

    /// Adds a row; returns a full batch every [`BATCH_ROWS`] rows.
    fn push(&mut self, obj: &Map<String, Value>) -> Result<Option<RecordBatch>, ArrowError> {
        for (name, builder) in self.names.iter().zip(&mut self.builders) {
            builder.push(obj.get(name));
        }
        self.rows += 1;
        if self.rows == BATCH_ROWS {
            return self.flush();
        }
        Ok(None)
    }

    /// The rows added since the last batch, if any.
    fn flush(&mut self) -> Result<Option<RecordBatch>, ArrowError> {
        if self.rows == 0 {
            return Ok(None);
        }
        let columns: Vec<ArrayRef> = self.builders.iter_mut().map(|b| b.finish()).collect();
        let options = RecordBatchOptions::new().with_row_count(Some(self.rows));
        self.rows = 0;
        RecordBatch::try_new_with_options(self.schema.clone(), columns, &options).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::Int64Type;

    fn read_jsonl(path: &Path) -> Result<JsonTable, DataError> {
        let scan = scan_jsonl(path)?;
        let batches = scan.batches().collect::<Result<Vec<_>, _>>().unwrap();
        Ok(JsonTable {
            schema: scan.schema.clone(),
            batches,
            locations: scan.locations,
        })
    }

    fn write(dir: &tempfile::TempDir, name: &str, text: &[u8]) -> std::path::PathBuf {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn infers_types_and_keeps_nested_values_as_json_text() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            &dir,
            "a.jsonl",
            b"{\"id\": 1, \"x\": 1, \"m\": [{\"role\": \"user\"}]}\n\n{\"id\": 2, \"x\": 2.5, \"m\": \"hi\", \"y\": true}\n",
        );
        let t = read_jsonl(&p).unwrap();
        assert_eq!(t.locations, vec![1, 3]);
        let b = &t.batches[0];
        assert_eq!(b.num_rows(), 2);
        assert_eq!(b.column(0).as_primitive::<Int64Type>().value(1), 2);
        let col = |name: &str| b.column(b.schema().index_of(name).unwrap()).clone();
        assert_eq!(col("x").data_type(), &DataType::Float64);
        let m = col("m");
        let m = m.as_string::<i32>();
        assert_eq!(m.value(0), r#"[{"role":"user"}]"#);
        assert_eq!(m.value(1), "hi");
        assert!(col("y").is_null(0));
    }

    #[test]
    fn reports_every_bad_line_with_its_number() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            &dir,
            "b.jsonl",
            b"{\"a\": 1}\n{\"a\": \n[1, 2]\n{\"a\": \xff}\n",
        );
        let err = read_jsonl(&p).unwrap_err().to_string();
        assert!(err.contains("b.jsonl:2: malformed JSON"), "{err}");
        assert!(
            err.contains("b.jsonl:3: expected a JSON object, found an array"),
            "{err}"
        );
        assert!(err.contains("b.jsonl:4: invalid UTF-8"), "{err}");
        assert!(err.contains("3 invalid rows"), "{err}");
    }

    #[test]
    fn empty_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(&dir, "e.jsonl", b"\n \n");
        assert!(matches!(read_jsonl(&p), Err(DataError::Empty { .. })));
        let p = write(&dir, "e.json", b"[]");
        assert!(matches!(read_json_array(&p), Err(DataError::Empty { .. })));
    }

    #[test]
    fn json_arrays_read_like_jsonl() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(&dir, "a.json", b"[{\"q\": \"a\"}, {\"q\": \"b\"}]");
        let t = read_json_array(&p).unwrap();
        assert_eq!(t.batches[0].num_rows(), 2);
        let p = write(&dir, "o.json", b"{\"q\": 1}");
        let err = read_json_array(&p).unwrap_err().to_string();
        assert!(err.contains("expected a JSON array"), "{err}");
    }
}
