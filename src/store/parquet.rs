//! Parquet files written atomically with rsr's writer settings.

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::datatypes::{DataType, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::arrow::{ArrowWriter, ProjectionMask};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use super::StoreError;
use super::atomic::AtomicFile;

/// Rows per Parquet row group: a writer buffers one row group in memory, so
/// this (with [`ROW_GROUP_BYTES`]) bounds a writer's memory.
pub const ROW_GROUP_ROWS: usize = 64 * 1024;

/// Encoded bytes per row group at most (long responses fill groups early).
pub const ROW_GROUP_BYTES: usize = 64 * 1024 * 1024;

/// Writer settings shared by every Parquet file rsr writes, for a file of
/// `schema`: text and other variable-length columns zstd level 3, which
/// compresses long model responses well at little CPU cost; fixed-width
/// columns (numbers, booleans, hashes) uncompressed, since their encodings
/// leave zstd little to gain and a reader then builds no decompressor for
/// them; row groups small enough to keep memory flat in the number of rows.
pub fn writer_properties(schema: &Schema) -> WriterProperties {
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(3).expect("valid level"),
        ))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_max_row_group_bytes(Some(ROW_GROUP_BYTES));
    for field in schema.fields() {
        if field.data_type().is_primitive() || *field.data_type() == DataType::Boolean {
            builder = builder.set_column_compression(
                parquet::schema::types::ColumnPath::from(field.name().as_str()),
                Compression::UNCOMPRESSED,
            );
        }
    }
    builder.build()
}

/// The Parquet files under `dir` (recursively) whose footer cannot be read,
/// with the reader's complaint, in path order. Reads footers only.
pub fn unreadable(dir: &Path) -> Vec<(PathBuf, String)> {
    files_below(dir)
        .into_iter()
        .filter_map(|path| {
            let problem = match std::fs::File::open(&path) {
                Ok(file) => parquet::file::reader::SerializedFileReader::new(file)
                    .err()
                    .map(|e| e.to_string()),
                Err(e) => Some(e.to_string()),
            };
            problem.map(|p| (path, p))
        })
        .collect()
}

/// The `.parquet` files below `dir` (recursively), in path order; none when
/// `dir` does not exist.
pub fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    collect_parquet(dir, &mut files);
    files.sort();
    files
}

fn collect_parquet(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for path in entries.flatten().map(|e| e.path()) {
        if path.is_dir() {
            collect_parquet(&path, out);
        } else if path.extension().is_some_and(|x| x == "parquet") {
            out.push(path);
        }
    }
}

/// A Parquet file that cannot be read as expected, named.
pub fn corrupt(path: &Path, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// A reader of `columns` of a Parquet file, 1,024 rows a batch.
pub fn projected(path: &Path, columns: &[&str]) -> Result<ParquetRecordBatchReader, StoreError> {
    let file = File::open(path).map_err(|source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| corrupt(path, e))?;
    let schema = builder.parquet_schema();
    let indices: Vec<usize> = (0..schema.num_columns())
        .filter(|&i| columns.contains(&schema.column(i).name()))
        .collect();
    let mask = ProjectionMask::leaves(schema, indices);
    builder
        .with_projection(mask)
        .with_batch_size(1024)
        .build()
        .map_err(|e| corrupt(path, e))
}

/// The Arrow schema of a Parquet file (its footer only is read).
pub fn schema_of(path: &Path) -> Result<arrow::datatypes::SchemaRef, StoreError> {
    let file = File::open(path).map_err(|source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| corrupt(path, e))?;
    Ok(builder.schema().clone())
}

/// The rows of a Parquet file, from its footer.
pub fn row_count(path: &Path) -> Result<u64, StoreError> {
    let file = File::open(path).map_err(|source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| corrupt(path, e))?;
    Ok(builder.metadata().file_metadata().num_rows().max(0) as u64)
}

/// A Parquet file that appears under its final name only on [`ParquetFile::commit`].
pub struct ParquetFile {
    dest: PathBuf,
    writer: ArrowWriter<AtomicFile>,
    rows: u64,
}

impl ParquetFile {
    /// Starts writing `dest` (as `dest.tmp`) with `schema`.
    pub fn create(dest: &Path, schema: SchemaRef) -> Result<Self, StoreError> {
        let file = AtomicFile::create(dest).map_err(|source| StoreError::Io {
            path: dest.to_path_buf(),
            source,
        })?;
        let properties = writer_properties(&schema);
        let writer = ArrowWriter::try_new(file, schema, Some(properties))
            .map_err(|e| parquet_error(dest, e))?;
        Ok(Self {
            dest: dest.to_path_buf(),
            writer,
            rows: 0,
        })
    }

    /// Appends a batch.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), StoreError> {
        self.rows += batch.num_rows() as u64;
        self.writer
            .write(batch)
            .map_err(|e| parquet_error(&self.dest, e))
    }

    /// Writes the footer, fsyncs and renames into place; returns the row count.
    pub fn commit(self) -> Result<u64, StoreError> {
        let file = self
            .writer
            .into_inner()
            .map_err(|e| parquet_error(&self.dest, e))?;
        file.commit().map_err(|source| StoreError::Io {
            path: self.dest.clone(),
            source,
        })?;
        Ok(self.rows)
    }
}

fn parquet_error(path: &Path, source: parquet::errors::ParquetError) -> StoreError {
    StoreError::Parquet {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads a whole Parquet file into memory (for small files and tests).
pub fn read_batches(path: &Path) -> Result<Vec<RecordBatch>, StoreError> {
    let file = std::fs::File::open(path).map_err(|source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.build())
        .map_err(|e| parquet_error(path, e))?;
    reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| parquet_error(path, e.into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ArrayRef, StringArray};
    use std::sync::Arc;

    #[test]
    fn written_file_reads_back_and_tmp_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("x.parquet");
        let col: ArrayRef = Arc::new(StringArray::from(vec!["a", "b"]));
        let batch = RecordBatch::try_from_iter([("s", col)]).unwrap();
        let mut f = ParquetFile::create(&dest, batch.schema()).unwrap();
        f.write(&batch).unwrap();
        assert!(!dest.exists());
        assert_eq!(f.commit().unwrap(), 2);
        let back = read_batches(&dest).unwrap();
        assert_eq!(back[0], batch);
        assert!(!super::super::atomic::tmp_path(&dest).exists());
    }

    #[test]
    fn text_is_compressed_and_fixed_width_columns_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("x.parquet");
        let text: ArrayRef = Arc::new(StringArray::from(vec!["the answer is 4"; 64]));
        let score: ArrayRef = Arc::new(arrow::array::Float64Array::from(vec![1.0; 64]));
        let flag: ArrayRef = Arc::new(arrow::array::BooleanArray::from(vec![true; 64]));
        let batch =
            RecordBatch::try_from_iter([("response", text), ("score", score), ("ok", flag)])
                .unwrap();
        let mut f = ParquetFile::create(&dest, batch.schema()).unwrap();
        f.write(&batch).unwrap();
        f.commit().unwrap();
        let reader =
            parquet::file::reader::SerializedFileReader::new(File::open(&dest).unwrap()).unwrap();
        use parquet::file::reader::FileReader;
        let codecs: Vec<String> = reader
            .metadata()
            .row_group(0)
            .columns()
            .iter()
            .map(|c| {
                // The level is not stored in the file: compare the codec only.
                let codec = format!("{:?}", c.compression());
                let codec = codec.split('(').next().unwrap_or_default().to_string();
                format!("{} {codec}", c.column_path().string())
            })
            .collect();
        assert_eq!(
            codecs,
            ["response ZSTD", "score UNCOMPRESSED", "ok UNCOMPRESSED"]
        );
        assert_eq!(read_batches(&dest).unwrap()[0], batch);
    }
}
