//! Errors of `prepare`, and the collector that lists the first few bad rows
//! with a total.

use std::fmt;
use std::path::{Path, PathBuf};

use thiserror::Error;

/// Bad rows listed in full before the rest are only counted.
pub const MAX_LISTED: usize = 10;

/// Longest excerpt of an offending value shown in a message.
const SNIPPET_CHARS: usize = 80;

/// Errors of reading, transforming and validating input data.
#[derive(Debug, Error)]
pub enum DataError {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The input file holds no rows.
    #[error("{} is empty: expected {expected}", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
        /// What a valid file holds.
        expected: &'static str,
    },
    /// The input format could not be determined.
    #[error(
        "cannot tell the format of {} from its extension; use .jsonl, .json, .csv or .parquet, or set data.format",
        path.display()
    )]
    UnknownFormat {
        /// The file.
        path: PathBuf,
    },
    /// A `data.*` setting does not fit the input.
    #[error("{0}")]
    Config(String),
    /// DataFusion could not read the input file.
    #[error("cannot read {}: {message}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// DataFusion's message.
        message: String,
    },
    /// The SQL transform failed.
    #[error("transform {origin} failed: {message}\n  table `raw` has columns: {columns}")]
    Transform {
        /// The transform file (or built-in name).
        origin: String,
        /// DataFusion's message.
        message: String,
        /// Columns of `raw`, to help fix the query.
        columns: String,
    },
    /// A required column is missing from the (transformed) input.
    #[error("{origin} has no `{column}` column (columns: {columns}); {fix}")]
    MissingColumn {
        /// The input file or transform.
        origin: String,
        /// The missing column.
        column: &'static str,
        /// Columns that are there.
        columns: String,
        /// How to fix it.
        fix: &'static str,
    },
    /// No rows remain after the transform and limit.
    #[error("{origin} produced no rows; nothing was written")]
    NoRows {
        /// The input file or transform.
        origin: String,
    },
    /// One or more rows are invalid; nothing was written.
    #[error("{0}")]
    Invalid(InvalidRows),
    /// Writing `data/input.parquet` failed (a full disk, a read-only work
    /// dir); the message names the file.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The columns an [`super::Annotator`] adds could not be computed.
    #[error(transparent)]
    Annotate(Box<dyn std::error::Error + Send + Sync>),
    /// A bug in rsr.
    #[error("internal error: {0}")]
    Internal(String),
}

impl DataError {
    /// An [`DataError::Invalid`] with a single entry.
    pub fn single(location: String, message: String) -> Self {
        DataError::Invalid(InvalidRows {
            listed: vec![(location, message)],
            total: 1,
            origin: None,
        })
    }
}

/// The first [`MAX_LISTED`] bad rows and the total count.
#[derive(Debug)]
pub struct InvalidRows {
    /// `(location, message)` of the first bad rows.
    pub listed: Vec<(String, String)>,
    /// How many rows were bad in all.
    pub total: usize,
    origin: Option<String>,
}

impl fmt::Display for InvalidRows {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rows = if self.total == 1 { "row" } else { "rows" };
        match &self.origin {
            Some(origin) => write!(f, "{} invalid {rows} in {origin}", self.total)?,
            None => write!(f, "{} invalid {rows}", self.total)?,
        }
        write!(f, "; nothing was written")?;
        for (location, message) in &self.listed {
            write!(f, "\n  {location}: {message}")?;
        }
        if self.total > self.listed.len() {
            write!(f, "\n  ... and {} more", self.total - self.listed.len())?;
        }
        Ok(())
    }
}

/// Collects row errors while a whole file is checked.
#[derive(Debug)]
pub struct RowErrors {
    inner: InvalidRows,
}

impl RowErrors {
    /// A collector for errors in `path`.
    pub fn new(path: &Path) -> Self {
        Self::for_origin(path.display().to_string())
    }

    /// A collector for errors in a named source.
    pub fn for_origin(origin: String) -> Self {
        Self {
            inner: InvalidRows {
                listed: Vec::new(),
                total: 0,
                origin: Some(origin),
            },
        }
    }

    /// Records one bad row.
    pub fn push(&mut self, location: String, message: String) {
        self.inner.total += 1;
        if self.inner.listed.len() < MAX_LISTED {
            self.inner.listed.push((location, message));
        }
    }

    /// Bad rows so far.
    pub fn total(&self) -> usize {
        self.inner.total
    }

    /// `Ok` when no row was bad.
    pub fn into_result(self) -> Result<(), DataError> {
        if self.inner.total == 0 {
            Ok(())
        } else {
            Err(DataError::Invalid(self.inner))
        }
    }
}

/// An offending value cut to a readable length, in backticks.
pub fn snippet(text: &str) -> String {
    let mut chars = text.chars();
    let cut: String = chars.by_ref().take(SNIPPET_CHARS).collect();
    if chars.next().is_some() {
        format!("`{cut}…`")
    } else {
        format!("`{cut}`")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_the_first_rows_and_counts_the_rest() {
        let mut e = RowErrors::new(Path::new("x.jsonl"));
        for i in 0..12 {
            e.push(format!("x.jsonl:{i}"), "bad".into());
        }
        let msg = e.into_result().unwrap_err().to_string();
        assert!(msg.starts_with("12 invalid rows in x.jsonl; nothing was written"));
        assert!(msg.contains("x.jsonl:9: bad"));
        assert!(!msg.contains("x.jsonl:10: bad"));
        assert!(msg.ends_with("... and 2 more"));
    }

    #[test]
    fn snippets_are_cut() {
        assert_eq!(snippet("abc"), "`abc`");
        let long = "x".repeat(200);
        assert!(snippet(&long).ends_with("…`"));
        assert_eq!(snippet(&long).chars().count(), 83);
    }
}
