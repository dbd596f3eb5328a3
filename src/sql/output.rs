//! Writing query results: an aligned table, CSV, JSON, JSON Lines or
//! Parquet, to stdout or (atomically) to a file. Everything but the table
//! streams batch by batch.

use std::io::Write;
use std::path::Path;

use arrow::record_batch::RecordBatch;
use datafusion::physical_plan::SendableRecordBatchStream;
use futures::StreamExt;

use crate::store::parquet::ParquetFile;
use crate::store::{AtomicFile, StoreError};

/// Errors writing a query's result.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// Parquet asked for on stdout.
    #[error("Parquet is binary: write it to a file with --output FILE.parquet")]
    ParquetNeedsFile,
    /// The query failed while its rows were read.
    #[error("{0}")]
    Query(#[from] datafusion::error::DataFusionError),
    /// A Parquet file cannot be written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A file cannot be written.
    #[error("cannot write {}: {source}", path.display())]
    File {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: WriteError,
    },
    /// Standard output cannot be written (a closed pipe included).
    #[error("cannot write to stdout: {0}")]
    Stdout(#[source] WriteError),
}

/// Why writing text failed: the writer's own error or the stream's. Each
/// keeps its cause as its source, so a closed pipe can be told apart.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// An I/O error.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// An Arrow writer error (its I/O errors included).
    #[error("{0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// The query failed mid-stream.
    #[error("{0}")]
    Query(#[from] datafusion::error::DataFusionError),
}

/// Result formats of `rsr sql`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// An aligned text table (collects the whole result).
    Table,
    /// CSV with a header row.
    Csv,
    /// One JSON array of row objects.
    Json,
    /// One JSON object per line.
    Jsonl,
    /// Apache Parquet (files only).
    Parquet,
}

impl OutputFormat {
    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Table => "table",
            Self::Csv => "csv",
            Self::Json => "json",
            Self::Jsonl => "jsonl",
            Self::Parquet => "parquet",
        }
    }

    /// The format implied by a file extension.
    pub fn from_path(path: &Path) -> Option<Self> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "csv" => Some(Self::Csv),
            "json" => Some(Self::Json),
            "jsonl" | "ndjson" => Some(Self::Jsonl),
            "parquet" | "pq" => Some(Self::Parquet),
            "txt" => Some(Self::Table),
            _ => None,
        }
    }
}

/// Writes the stream to `output` (a file, or stdout when `None` or `-`);
/// returns the number of rows.
pub async fn write_stream(
    mut stream: SendableRecordBatchStream,
    format: OutputFormat,
    output: Option<&Path>,
) -> Result<u64, OutputError> {
    let output = output.filter(|p| p.as_os_str() != "-");
    if format == OutputFormat::Parquet {
        let Some(path) = output else {
            return Err(OutputError::ParquetNeedsFile);
        };
        let mut file = ParquetFile::create(path, stream.schema())?;
        while let Some(batch) = stream.next().await {
            file.write(&batch?)?;
        }
        return Ok(file.commit()?);
    }
    match output {
        Some(path) => {
            let file_error = |source: WriteError| OutputError::File {
                path: path.to_path_buf(),
                source,
            };
            let mut file = AtomicFile::create(path).map_err(|e| file_error(e.into()))?;
            let rows = write_text(&mut stream, format, &mut file)
                .await
                .map_err(file_error)?;
            file.commit().map_err(|e| file_error(e.into()))?;
            Ok(rows)
        }
        None => {
            let stdout = std::io::stdout();
            let mut lock = std::io::BufWriter::new(stdout.lock());
            let rows = write_text(&mut stream, format, &mut lock)
                .await
                .map_err(OutputError::Stdout)?;
            lock.flush().map_err(|e| OutputError::Stdout(e.into()))?;
            Ok(rows)
        }
    }
}

/// A writer that remembers a closed pipe: arrow's CSV writer turns I/O
/// errors into text, and a closed pipe must stay recognizable (`rsr sql …
/// | head` is a success).
struct Watched<W> {
    inner: W,
    broken_pipe: bool,
}

impl<W: Write> Write for Watched<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let r = self.inner.write(buf);
        self.broken_pipe |= r
            .as_ref()
            .is_err_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe);
        r
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let r = self.inner.flush();
        self.broken_pipe |= r
            .as_ref()
            .is_err_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe);
        r
    }
}

async fn write_text<W: Write>(
    stream: &mut SendableRecordBatchStream,
    format: OutputFormat,
    out: &mut W,
) -> Result<u64, WriteError> {
    let mut watched = Watched {
        inner: out,
        broken_pipe: false,
    };
    let result = write_rows(stream, format, &mut watched).await;
    match result {
        Err(_) if watched.broken_pipe => {
            Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe).into())
        }
        other => other,
    }
}

async fn write_rows<W: Write>(
    stream: &mut SendableRecordBatchStream,
    format: OutputFormat,
    out: &mut W,
) -> Result<u64, WriteError> {
    let mut rows = 0u64;
    match format {
        OutputFormat::Table => {
            let mut batches: Vec<RecordBatch> = Vec::new();
            while let Some(batch) = stream.next().await {
                let batch = batch?;
                rows += batch.num_rows() as u64;
                batches.push(batch);
            }
            if batches.is_empty() {
                batches.push(RecordBatch::new_empty(stream.schema()));
            }
            let table = arrow::util::pretty::pretty_format_batches(&batches)?;
            writeln!(out, "{table}")?;
        }
        OutputFormat::Csv => {
            let mut writer = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(out);
            let mut wrote = false;
            while let Some(batch) = stream.next().await {
                let batch = batch?;
                rows += batch.num_rows() as u64;
                writer.write(&batch)?;
                wrote = true;
            }
            if !wrote {
                writer.write(&RecordBatch::new_empty(stream.schema()))?;
            }
        }
        OutputFormat::Jsonl => {
            let mut writer = arrow::json::LineDelimitedWriter::new(out);
            while let Some(batch) = stream.next().await {
                let batch = batch?;
                rows += batch.num_rows() as u64;
                writer.write(&batch)?;
            }
            writer.finish()?;
        }
        OutputFormat::Json => {
            let mut writer = arrow::json::ArrayWriter::new(&mut *out);
            while let Some(batch) = stream.next().await {
                let batch = batch?;
                rows += batch.num_rows() as u64;
                writer.write(&batch)?;
            }
            writer.finish()?;
            drop(writer);
            writeln!(out)?;
        }
        OutputFormat::Parquet => unreachable!("handled by write_stream"),
    }
    Ok(rows)
}
