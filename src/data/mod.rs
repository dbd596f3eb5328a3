//! `prepare`: read the raw prompt file, map it with an optional SQL
//! transform, validate every row and write `data/input.parquet`.
//!
//! The raw file becomes a DataFusion table named `raw`; the transform (or
//! `SELECT * FROM raw`) runs in a single-partition session so file order is
//! kept; rows stream through [`validate::Validator`] (and an [`Annotator`]
//! that appends its columns: the hygiene flags) into an atomically written
//! Parquet file, which appears only when every row is valid.

pub mod error;
pub mod json;
pub mod template;
pub mod transforms;
pub mod udf;
pub mod validate;

use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::SchemaRef;
use datafusion::catalog::streaming::StreamingTable;
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use datafusion::execution::TaskContext;
use datafusion::physical_plan::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion::prelude::{CsvReadOptions, ParquetReadOptions, SessionConfig, SessionContext};
use futures::StreamExt;

pub use error::DataError;
pub use validate::{Locator, Summary};

use crate::config::InputFormat;
use crate::store::inputs::inputs_schema;
use crate::store::parquet::ParquetFile;

/// Columns computed from each batch of validated rows and written after
/// them: the hygiene flags ([`crate::store::inputs::hygiene_fields`]).
pub trait Annotator {
    /// The columns for `rows`, one value per row.
    fn columns(&mut self, rows: &RecordBatch) -> Result<Vec<ArrayRef>, DataError>;
}

/// The format of `path`, from `format` or its extension.
pub fn detect_format(path: &Path, format: InputFormat) -> Result<InputFormat, DataError> {
    if format != InputFormat::Auto {
        return Ok(format);
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("jsonl" | "ndjson") => Ok(InputFormat::Jsonl),
        Some("json") => Ok(InputFormat::Json),
        Some("csv") => Ok(InputFormat::Csv),
        Some("parquet" | "pq") => Ok(InputFormat::Parquet),
        _ => Err(DataError::UnknownFormat {
            path: path.to_path_buf(),
        }),
    }
}

/// Reads, transforms and validates `input`, writing `dest` atomically
/// with `annotator`'s columns after the validated ones. Nothing is written
/// when any row is invalid.
pub async fn prepare_file(
    input: &Path,
    data: &crate::config::DataConfig,
    shard_size: u64,
    dest: &Path,
    annotator: &mut dyn Annotator,
    verifier: Option<&dyn crate::verifier::Verifier>,
) -> Result<Summary, DataError> {
    let format = detect_format(input, data.format)?;
    refuse_empty(input, format)?;
    let (source, origin, locator) = Source::open(input, format, data).await?;
    let mut stream = source.rows(data.limit).await?;
    let prompting = validate::Prompting {
        system: data.system_prompt.clone(),
        template: data.prompt_template.clone(),
    };
    let mut validator = validate::Validator::new(
        &stream.schema(),
        &origin,
        data.id_from,
        shard_size,
        locator,
        &prompting,
    )?;
    let mut writer: Option<ParquetFile> = None;
    let mut gold_errors = error::RowErrors::for_origin(origin.clone());
    let mut golds_from_metadata = 0u64;
    while let Some(batch) = stream.next().await {
        let batch = match batch {
            Ok(b) => b,
            Err(e) => return Err(source.error(e.to_string()).await),
        };
        if let Some(rows) = validator.process(&batch)? {
            let mut columns = rows.columns().to_vec();
            if let Some(v) = verifier {
                let (answers, filled) = read_golds(v, &rows, &mut gold_errors);
                columns[2] = answers;
                golds_from_metadata += filled;
            }
            columns.extend(annotator.columns(&rows)?);
            let rows = RecordBatch::try_new(inputs_schema(), columns)
                .map_err(|e| DataError::Internal(e.to_string()))?;
            if writer.is_none() {
                writer = Some(ParquetFile::create(dest, inputs_schema())?);
            }
            writer.as_mut().expect("created above").write(&rows)?;
        }
    }
    gold_errors.into_result()?;
    let has_answer_column = validator.has_answer_column();
    let mut summary = validator.finish()?;
    summary.without_answer -= golds_from_metadata;
    if !has_answer_column {
        log_answers_from_metadata(&origin, &summary);
    }
    match writer {
        Some(w) if summary.rows > 0 => {
            w.commit()?;
        }
        _ => return Err(DataError::NoRows { origin }),
    }
    Ok(summary)
}

/// The `answer` column as the run's verifier reads each row's gold
/// ([`crate::verifier::Verifier::read_gold`]), and how many rows had none
/// before; a gold it cannot read is a row error naming the prompt.
fn read_golds(
    verifier: &dyn crate::verifier::Verifier,
    rows: &RecordBatch,
    errors: &mut error::RowErrors,
) -> (ArrayRef, u64) {
    use arrow::array::{Array, AsArray, StringArray};
    let ids = rows.column(0).as_string::<i32>();
    let answers = rows.column(2).as_string::<i32>();
    let metadata = rows.column(3).as_string::<i32>();
    let mut filled = 0;
    let out: StringArray = (0..rows.num_rows())
        .map(|i| {
            let answer = (!answers.is_null(i)).then(|| answers.value(i));
            let meta = (!metadata.is_null(i)).then(|| metadata.value(i));
            match verifier.read_gold(answer, meta) {
                Ok(gold) => {
                    filled += u64::from(answer.is_none() && gold.is_some());
                    gold
                }
                Err(e) => {
                    errors.push(
                        format!("prompt {}", ids.value(i)),
                        format!("gold for verifier {}: {e}", verifier.name()),
                    );
                    None
                }
            }
        })
        .collect();
    (Arc::new(out), filled)
}

/// An empty input file is refused with what it should hold.
fn refuse_empty(input: &Path, format: InputFormat) -> Result<(), DataError> {
    let meta = std::fs::metadata(input).map_err(|source| DataError::Io {
        path: input.to_path_buf(),
        source,
    })?;
    if meta.len() > 0 {
        return Ok(());
    }
    Err(DataError::Empty {
        path: input.to_path_buf(),
        expected: match format {
            InputFormat::Csv => "a header row and one prompt per row",
            InputFormat::Parquet => "a Parquet file",
            InputFormat::Json => "a JSON array of objects",
            _ => "one JSON object per line",
        },
    })
}

/// Says where the gold answers of an input without an `answer` column come
/// from (`metadata.answer`), or that there are none.
fn log_answers_from_metadata(origin: &str, summary: &Summary) {
    if summary.answers_from_metadata > 0 {
        tracing::info!(
            "{origin} has no `answer` column: the gold answer is read from metadata.answer ({} of {} prompts have one)",
            summary.answers_from_metadata,
            summary.rows
        );
    } else {
        tracing::warn!(
            "{origin} has no `answer` column and no metadata.answer: verifiers will have no gold answer"
        );
    }
}

/// The raw input as the table `raw` of a one-partition session (file order
/// kept), with the transform that maps it, if any.
struct Source<'a> {
    ctx: SessionContext,
    input: &'a Path,
    transform: Option<transforms::Transform>,
}

impl<'a> Source<'a> {
    /// Registers `input`; returns the source, how the rows are named in
    /// messages (the transform or the file) and where each row came from.
    async fn open(
        input: &'a Path,
        format: InputFormat,
        data: &crate::config::DataConfig,
    ) -> Result<(Self, String, Locator), DataError> {
        let mut ctx =
            SessionContext::new_with_config(SessionConfig::new().with_target_partitions(1));
        for f in udf::transform_udfs() {
            ctx.register_udf(f);
        }
        datafusion_functions_json::register_all(&mut ctx)
            .map_err(|e| DataError::Internal(format!("cannot register the JSON functions: {e}")))?;
        let locator = register_raw(&ctx, input, format).await?;
        let transform = match &data.preprocess.transform {
            Some(t) => Some(transforms::load(t)?),
            None => None,
        };
        let (origin, locator) = match &transform {
            Some(t) => (
                t.origin.clone(),
                Locator::Transform(t.origin.clone(), input.to_path_buf()),
            ),
            None => (input.display().to_string(), locator),
        };
        let source = Self {
            ctx,
            input,
            transform,
        };
        Ok((source, origin, locator))
    }

    /// The rows of the transform (or of `raw`), the first `limit` only.
    async fn rows(&self, limit: Option<u64>) -> Result<SendableRecordBatchStream, DataError> {
        let sql = self
            .transform
            .as_ref()
            .map_or_else(|| "SELECT * FROM raw".to_string(), |t| t.sql.clone());
        let mut df = match self.ctx.sql(&sql).await {
            Ok(df) => df,
            Err(e) => return Err(self.error(e.to_string()).await),
        };
        if let Some(limit) = limit {
            df = df
                .limit(0, Some(limit as usize))
                .map_err(|e| DataError::Internal(e.to_string()))?;
        }
        match df.execute_stream().await {
            Ok(s) => Ok(s),
            Err(e) => Err(self.error(e.to_string()).await),
        }
    }

    /// A failed query: the transform's error with the raw columns it could
    /// use, or the input's read error.
    async fn error(&self, message: String) -> DataError {
        match &self.transform {
            Some(t) => DataError::Transform {
                origin: t.origin.clone(),
                message,
                columns: self.raw_columns().await,
            },
            None => DataError::Read {
                path: self.input.to_path_buf(),
                message,
            },
        }
    }

    /// The columns of `raw` with their types, for a transform's error.
    async fn raw_columns(&self) -> String {
        match self.ctx.table("raw").await {
            Ok(t) => t
                .schema()
                .fields()
                .iter()
                .map(|f| format!("{} ({})", f.name(), f.data_type()))
                .collect::<Vec<_>>()
                .join(", "),
            Err(_) => "(unknown)".into(),
        }
    }
}

/// Registers `input` as the table `raw` of `ctx`; returns how its rows are
/// named in messages.
pub(crate) async fn register_raw(
    ctx: &SessionContext,
    input: &Path,
    format: InputFormat,
) -> Result<Locator, DataError> {
    let read_error = |e: datafusion::error::DataFusionError| DataError::Read {
        path: input.to_path_buf(),
        message: e.to_string(),
    };
    let path_str = input.to_str().ok_or_else(|| DataError::Read {
        path: input.to_path_buf(),
        message: "the path is not valid UTF-8".into(),
    })?;
    let ext = input
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| format!(".{e}"))
        .unwrap_or_default();
    match format {
        InputFormat::Jsonl => {
            let scan = json::scan_jsonl(input)?;
            let locations = scan.locations.clone();
            let partition: Arc<dyn PartitionStream> = Arc::new(JsonlPartition(scan));
            let table = StreamingTable::try_new(partition.schema().clone(), vec![partition])
                .map_err(|e| DataError::Internal(e.to_string()))?;
            ctx.register_table("raw", Arc::new(table))
                .map_err(|e| DataError::Internal(e.to_string()))?;
            Ok(Locator::Lines(input.to_path_buf(), locations))
        }
        InputFormat::Json => {
            let table = json::read_json_array(input)?;
            let mem = MemTable::try_new(table.schema.clone(), vec![table.batches])
                .map_err(|e| DataError::Internal(e.to_string()))?;
            ctx.register_table("raw", Arc::new(mem))
                .map_err(|e| DataError::Internal(e.to_string()))?;
            Ok(Locator::Lines(input.to_path_buf(), table.locations))
        }
        InputFormat::Csv => {
            let options = CsvReadOptions::new()
                .has_header(true)
                .file_extension(&ext)
                .schema_infer_max_records(100_000);
            ctx.register_csv("raw", path_str, options)
                .await
                .map_err(read_error)?;
            Ok(Locator::Rows(input.to_path_buf()))
        }
        InputFormat::Parquet => {
            let options = ParquetReadOptions::new().file_extension(&ext);
            ctx.register_parquet("raw", path_str, options)
                .await
                .map_err(read_error)?;
            Ok(Locator::Rows(input.to_path_buf()))
        }
        InputFormat::Auto => unreachable!("detect_format resolves auto"),
    }
}

/// A JSONL file as a DataFusion stream source: batches are built as the
/// query pulls them.
#[derive(Debug)]
struct JsonlPartition(json::JsonlScan);

impl PartitionStream for JsonlPartition {
    fn schema(&self) -> &SchemaRef {
        &self.0.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let batches = self.0.batches().map(|b| b.map_err(DataFusionError::from));
        Box::pin(RecordBatchStreamAdapter::new(
            self.0.schema.clone(),
            futures::stream::iter(batches),
        ))
    }
}
