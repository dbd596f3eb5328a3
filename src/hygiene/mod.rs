//! Data hygiene over the `inputs` table: benchmark decontamination and
//! duplicate prompts, as columns of `data/input.parquet` that SQL, the
//! sampler and the formatters read.
//!
//! Columns added to every input row ([`fields`]): `contaminated`,
//! `contaminated_by` (`file:line` of the matching benchmark problem),
//! `contamination_ngram` (the shared words), `duplicate_of` (the kept
//! prompt's id) and `duplicate_similarity` (1 for exact copies, the MinHash
//! estimate for near ones). They are computed from the user turns of each
//! prompt in one streaming pass ([`Checker`]) at prepare time, or again by
//! `rsr hygiene` on an existing work dir ([`rewrite`]); counts go to
//! `data/hygiene.json`.

pub mod benchmarks;
pub mod diverse;
pub mod minhash;
pub mod ngram;
pub mod normalize;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanBuilder, Float64Builder, RecordBatch, StringBuilder,
};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::config::{DataConfig, DedupMode};
use benchmarks::BenchmarkInfo;
use minhash::LshIndex;
use ngram::NgramIndex;
use normalize::{HashKeyed, Words, ngram_hash, shingles};

/// Checks hygiene's keys of the `data` section: the dedup threshold and
/// hash count, the number of benchmark files.
pub fn check_section(c: &crate::config::Config) -> Result<(), crate::config::SectionError> {
    use crate::config::SectionError;
    let d = &c.data;
    if !(d.dedup.threshold > 0.0 && d.dedup.threshold <= 1.0) {
        return Err(SectionError::new(
            "data.dedup.threshold",
            format!(
                "{} is outside (0, 1]: it is the Jaccard similarity at which prompts are near-duplicates",
                d.dedup.threshold
            ),
        ));
    }
    if d.dedup.num_perm.get() > 1024 {
        return Err(SectionError::new(
            "data.dedup.num_perm",
            format!(
                "{} is more than 1024 hash functions; 128 estimates a Jaccard of 0.8 within ±0.07 (2σ)",
                d.dedup.num_perm
            ),
        ));
    }
    if d.decontaminate.benchmarks.len() > ngram::MAX_FILES {
        return Err(SectionError::new(
            "data.decontaminate.benchmarks",
            format!(
                "{} files: at most {} (concatenate smaller ones)",
                d.decontaminate.benchmarks.len(),
                ngram::MAX_FILES
            ),
        ));
    }
    Ok(())
}

/// Errors of the hygiene checks.
#[derive(Debug, Error)]
pub enum HygieneError {
    /// A benchmark file could not be used.
    #[error("benchmark {}: {message}", path.display())]
    Benchmark {
        /// The file.
        path: PathBuf,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// The inputs could not be read or written.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// An input row could not be read.
    #[error("{0}")]
    Input(String),
}

/// Which flagged prompts are left out of sampling and formatting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Exclusion {
    /// Leave out `contaminated` prompts.
    pub contaminated: bool,
    /// Leave out prompts with a `duplicate_of`.
    pub duplicates: bool,
}

impl Exclusion {
    /// What `data.decontaminate.keep` and `data.dedup.keep` leave out.
    pub fn from_config(d: &DataConfig) -> Self {
        Self {
            contaminated: !d.decontaminate.keep,
            duplicates: !d.dedup.keep,
        }
    }

    /// Whether a prompt with these flags is left out.
    pub fn excludes(&self, contaminated: bool, duplicate: bool) -> bool {
        (self.contaminated && contaminated) || (self.duplicates && duplicate)
    }

    /// The SQL condition a kept prompt meets, over the `prompts` columns;
    /// `None` when nothing is left out.
    pub fn sql(&self) -> Option<String> {
        let mut parts = Vec::new();
        if self.contaminated {
            parts.push("NOT contaminated");
        }
        if self.duplicates {
            parts.push("duplicate_of IS NULL");
        }
        (!parts.is_empty()).then(|| parts.join(" AND "))
    }
}

/// Per-benchmark counts of a check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchmarkCount {
    /// The file, its column and its problems.
    #[serde(flatten)]
    pub info: BenchmarkInfo,
    /// Prompts sharing an n-gram with it.
    pub prompts_flagged: u64,
}

/// What one check found (`data/hygiene.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Prompts checked.
    pub prompts: u64,
    /// Prompts without user text (images only): never flagged.
    pub without_text: u64,
    /// `data.decontaminate.ngram`.
    pub ngram: usize,
    /// One entry per benchmark file.
    pub benchmarks: Vec<BenchmarkCount>,
    /// Prompts flagged `contaminated`.
    pub contaminated: u64,
    /// `data.dedup.mode`.
    pub dedup_mode: DedupMode,
    /// `data.dedup.threshold` (near mode).
    pub dedup_threshold: f64,
    /// MinHash bands × rows per band (near mode).
    pub lsh_bands: Option<(usize, usize)>,
    /// Exact copies of a kept prompt.
    pub exact_duplicates: u64,
    /// Near copies (not exact) of a kept prompt.
    pub near_duplicates: u64,
    /// Kept prompts with at least one duplicate.
    pub groups: u64,
    /// Prompts left out of sampling under the config's `keep` settings.
    pub excluded: u64,
}

impl Report {
    /// Whether anything was checked.
    pub fn checked(&self) -> bool {
        !self.benchmarks.is_empty() || self.dedup_mode != DedupMode::Off
    }

    /// One line per finding, for the log.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        for b in &self.benchmarks {
            out.push(format!(
                "decontamination: {} of {} prompts share a run of {} words with {} ({} problem{}, column `{}`)",
                b.prompts_flagged, self.prompts, self.ngram, b.info.path, b.info.problems,
                if b.info.problems == 1 { "" } else { "s" }, b.info.column
            ));
        }
        if self.dedup_mode != DedupMode::Off {
            let near = match self.dedup_mode {
                DedupMode::Near => format!(
                    ", {} near duplicates (Jaccard >= {})",
                    self.near_duplicates, self.dedup_threshold
                ),
                _ => String::new(),
            };
            out.push(format!(
                "dedup ({}): {} exact duplicates{near} in {} groups; the first prompt of each group is kept",
                match self.dedup_mode {
                    DedupMode::Near => "near",
                    _ => "exact",
                },
                self.exact_duplicates,
                self.groups
            ));
        }
        if self.checked() {
            out.push(format!(
                "{} of {} prompts are left out of sampling and formatting (data.decontaminate.keep / data.dedup.keep keep them); see them with rsr sql: SELECT id, contaminated_by, duplicate_of FROM inputs WHERE contaminated OR duplicate_of IS NOT NULL",
                self.excluded, self.prompts
            ));
        }
        out
    }

    /// Writes `data/hygiene.json` of `root` atomically.
    pub fn save(&self, root: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).expect("report serializes");
        crate::store::write_atomic(crate::store::hygiene_report_path(root), text.as_bytes())
    }

    /// The saved report of `root`, if any.
    pub fn load(root: &Path) -> Option<Self> {
        let text = std::fs::read_to_string(crate::store::hygiene_report_path(root)).ok()?;
        serde_json::from_str(&text).ok()
    }
}

/// Flags input rows batch by batch, in file order (the first of a group
/// of duplicates is the one kept).
pub struct Checker {
    contamination: Option<NgramIndex>,
    mode: DedupMode,
    shingle: usize,
    exact: HashKeyed<u32>,
    near: Option<LshIndex>,
    kept: Vec<Box<str>>,
    grouped: HashSet<u32>,
    exclusion: Exclusion,
    report: Report,
    words: Words,
    hashes: Vec<u64>,
    shingles: Vec<u64>,
}

impl Checker {
    /// Reads the benchmarks of `data` and prepares the checks it sets.
    pub async fn from_config(data: &DataConfig) -> Result<Self, HygieneError> {
        let d = &data.decontaminate;
        let (contamination, infos) = if d.benchmarks.is_empty() {
            (None, Vec::new())
        } else {
            let (index, infos) = benchmarks::load(&d.benchmarks, d.ngram.get()).await?;
            (Some(index), infos)
        };
        let dd = &data.dedup;
        let near =
            (dd.mode == DedupMode::Near).then(|| LshIndex::new(dd.num_perm.get(), dd.threshold));
        let report = Report {
            prompts: 0,
            without_text: 0,
            ngram: d.ngram.get(),
            benchmarks: infos
                .into_iter()
                .map(|info| BenchmarkCount {
                    info,
                    prompts_flagged: 0,
                })
                .collect(),
            contaminated: 0,
            dedup_mode: dd.mode,
            dedup_threshold: dd.threshold,
            lsh_bands: near.as_ref().map(LshIndex::shape),
            exact_duplicates: 0,
            near_duplicates: 0,
            groups: 0,
            excluded: 0,
        };
        Ok(Self {
            contamination,
            mode: dd.mode,
            shingle: dd.shingle.get(),
            exact: HashKeyed::default(),
            near,
            kept: Vec::new(),
            grouped: HashSet::new(),
            exclusion: Exclusion::from_config(data),
            report,
            words: Words::default(),
            hashes: Vec::new(),
            shingles: Vec::new(),
        })
    }

    /// The hygiene columns ([`fields`]) for a batch with `id` and
    /// `messages` (JSON text) columns.
    pub fn columns(&mut self, batch: &RecordBatch) -> Result<Vec<ArrayRef>, HygieneError> {
        let text_col = |name: &str| {
            batch
                .column_by_name(name)
                .and_then(|c| c.as_string_opt::<i32>())
                .ok_or_else(|| {
                    HygieneError::Input(format!("the inputs have no `{name}` text column"))
                })
        };
        let ids = text_col("id")?;
        let messages = text_col("messages")?;
        let n = batch.num_rows();
        let mut contaminated = BooleanBuilder::with_capacity(n);
        let mut by = StringBuilder::new();
        let mut ngram = StringBuilder::new();
        let mut dup_of = StringBuilder::new();
        let mut similarity = Float64Builder::with_capacity(n);
        for row in 0..n {
            self.report.prompts += 1;
            let text = match serde_json::from_str::<serde_json::Value>(messages.value(row)) {
                Ok(serde_json::Value::Array(items)) => benchmarks::user_turns(&items),
                _ => {
                    return Err(HygieneError::Input(format!(
                        "prompt {}: `messages` is not a JSON list",
                        ids.value(row)
                    )));
                }
            };
            self.words.fill(&text);
            self.words.hashes(&mut self.hashes);
            if self.words.is_empty() {
                self.report.without_text += 1;
            }
            let overlap = self
                .contamination
                .as_ref()
                .and_then(|index| index.check(&self.words, &self.hashes, &mut self.shingles));
            match &overlap {
                Some(o) => {
                    contaminated.append_value(true);
                    by.append_value(&o.problem);
                    ngram.append_value(&o.ngram);
                    self.report.contaminated += 1;
                    for &f in &o.files {
                        if let Some(b) = self.report.benchmarks.get_mut(f) {
                            b.prompts_flagged += 1;
                        }
                    }
                }
                None => {
                    contaminated.append_value(false);
                    by.append_null();
                    ngram.append_null();
                }
            }
            let duplicate = self.duplicate(ids.value(row));
            match duplicate {
                Some((kept, s)) => {
                    dup_of.append_value(&self.kept[kept as usize]);
                    similarity.append_value(s);
                }
                None => {
                    dup_of.append_null();
                    similarity.append_null();
                }
            }
            if self
                .exclusion
                .excludes(overlap.is_some(), duplicate.is_some())
            {
                self.report.excluded += 1;
            }
        }
        Ok(vec![
            Arc::new(contaminated.finish()),
            Arc::new(by.finish()),
            Arc::new(ngram.finish()),
            Arc::new(dup_of.finish()),
            Arc::new(similarity.finish()),
        ])
    }

    /// The kept prompt this one duplicates (its index and similarity), or
    /// `None` after keeping it.
    fn duplicate(&mut self, id: &str) -> Option<(u32, f64)> {
        if self.mode == DedupMode::Off || self.words.is_empty() {
            return None;
        }
        let key = ngram_hash(&self.hashes);
        if let Some(&k) = self.exact.get(&key) {
            self.report.exact_duplicates += 1;
            if self.grouped.insert(k) {
                self.report.groups += 1;
            }
            return Some((k, 1.0));
        }
        if let Some(index) = self.near.as_mut() {
            shingles(&self.hashes, self.shingle, &mut self.shingles);
            if let Some((k, e)) = index.check_or_keep(&self.shingles) {
                self.report.near_duplicates += 1;
                if self.grouped.insert(k) {
                    self.report.groups += 1;
                }
                return Some((k, e));
            }
        }
        let k = self.kept.len() as u32;
        self.exact.insert(key, k);
        self.kept.push(id.into());
        None
    }

    /// The counts, consuming the checker (its memory is freed).
    pub fn into_report(self) -> Report {
        self.report
    }
}

impl crate::data::Annotator for Checker {
    fn columns(&mut self, rows: &RecordBatch) -> Result<Vec<ArrayRef>, crate::data::DataError> {
        Checker::columns(self, rows).map_err(|e| crate::data::DataError::Annotate(Box::new(e)))
    }
}

/// Recomputes the hygiene columns of `data/input.parquet` with `data`'s
/// settings (`rsr hygiene`): the file is rewritten with the same rows and
/// replaced atomically, and the report saved.
pub async fn rewrite(
    wd: &crate::store::WorkDir,
    data: &DataConfig,
) -> Result<Report, HygieneError> {
    let root = wd.root();
    let input = wd.input_path();
    let mut checker = Checker::from_config(data).await?;
    let base = crate::store::inputs::base_columns();
    let reader = crate::store::parquet::projected(&input, base)?;
    let mut writer =
        crate::store::parquet::ParquetFile::create(&input, crate::store::inputs::inputs_schema())?;
    for batch in reader {
        let batch = batch.map_err(|e| crate::store::parquet::corrupt(&input, e))?;
        let mut columns: Vec<ArrayRef> = Vec::new();
        for name in base {
            let c = batch.column_by_name(name).ok_or_else(|| {
                crate::store::parquet::corrupt(&input, format!("no `{name}` column"))
            })?;
            columns.push(c.clone());
        }
        columns.extend(checker.columns(&batch)?);
        let out = RecordBatch::try_new(crate::store::inputs::inputs_schema(), columns)
            .map_err(|e| crate::store::parquet::corrupt(&input, e))?;
        writer.write(&out)?;
    }
    writer.commit()?;
    let report = checker.into_report();
    report
        .save(root)
        .map_err(|source| crate::store::StoreError::Io {
            path: crate::store::hygiene_report_path(root),
            source,
        })?;
    Ok(report)
}

/// Prompts a shard leaves out, read from the hygiene columns of `input`
/// (none in older work dirs); by shard.
pub fn excluded_per_shard(
    input: &Path,
    exclusion: Exclusion,
) -> Result<HashMap<u32, u64>, crate::store::StoreError> {
    let mut out = HashMap::new();
    if exclusion == Exclusion::default() {
        return Ok(out);
    }
    let reader =
        crate::store::parquet::projected(input, &["shard", "contaminated", "duplicate_of"])?;
    for batch in reader {
        let batch = batch.map_err(|e| crate::store::parquet::corrupt(input, e))?;
        let Some(flags) = RowFlags::of(&batch) else {
            return Ok(out);
        };
        let shards = batch
            .column_by_name("shard")
            .map(|c| c.as_primitive::<arrow::datatypes::UInt32Type>().clone())
            .ok_or_else(|| crate::store::parquet::corrupt(input, "no `shard` column"))?;
        for i in 0..batch.num_rows() {
            if flags.excluded(i, exclusion) {
                *out.entry(shards.value(i)).or_default() += 1;
            }
        }
    }
    Ok(out)
}

/// The hygiene flags of a batch of input rows.
pub struct RowFlags<'a> {
    contaminated: &'a arrow::array::BooleanArray,
    duplicate_of: &'a arrow::array::StringArray,
}

impl<'a> RowFlags<'a> {
    /// The flags of `batch`, or `None` when it has no hygiene columns.
    pub fn of(batch: &'a RecordBatch) -> Option<Self> {
        Some(Self {
            contaminated: batch.column_by_name("contaminated")?.as_boolean_opt()?,
            duplicate_of: batch
                .column_by_name("duplicate_of")?
                .as_string_opt::<i32>()?,
        })
    }

    /// Whether row `i` is left out under `exclusion`.
    pub fn excluded(&self, i: usize, exclusion: Exclusion) -> bool {
        exclusion.excludes(
            self.contaminated.is_valid(i) && self.contaminated.value(i),
            self.duplicate_of.is_valid(i),
        )
    }
}
