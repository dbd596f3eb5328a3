//! Re-scoring: every saved rollout of a work dir scored again with a
//! verifier (no inference), written to `scores/<label>/shard_NNNN.parquet`
//! with `verifier.json` beside them, and counted against the inline
//! verdicts. Streamed shard by shard, batch by batch: memory stays bounded
//! by the batch size.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch, StringArray};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use futures::StreamExt;
use thiserror::Error;

use crate::config::Config;
use crate::sql::columns::{bools, column, f64s, utf8};
use crate::store::parquet::ParquetFile;
use crate::store::rollout::{self, PASS_SCORE, Validity};
use crate::store::{RunState, StoreError, WorkDir};
use crate::verifier::{self, Verifier, VerifierError};

/// Errors of [`rescore`].
#[derive(Debug, Error)]
pub enum RescoreError {
    /// The verifier cannot be built from its options.
    #[error(transparent)]
    Verifier(#[from] VerifierError),
    /// Reading the work dir or writing a scores file failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The query over the saved rollouts failed.
    #[error("reading the saved rollouts: {0}")]
    Sql(#[from] datafusion::error::DataFusionError),
    /// A batch of verdicts cannot be assembled (a bug).
    #[error("assembling verdicts: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
}

/// What a re-scoring did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct RescoreReport {
    /// Rollouts scored.
    pub scored: u64,
    /// Valid rollouts (by the run's validity): the pass rate's denominator.
    pub valid: u64,
    /// Valid rollouts that pass.
    pub pass: u64,
    /// Verdicts higher than the inline ones.
    pub up: u64,
    /// Verdicts lower than the inline ones.
    pub down: u64,
    /// Rollouts with no inline verdict.
    pub no_inline: u64,
    /// Rollouts with no response.
    pub no_response: u64,
    /// Shard files written.
    pub shards: u64,
}

/// Scores every saved rollout of `wd` with `config.verifier` and writes the
/// verdicts under its label.
pub async fn rescore(wd: &WorkDir, config: &Config) -> Result<RescoreReport, RescoreError> {
    let vc = &config.verifier;
    let verifier = verifier::build(&vc.kind, &vc.options)?;
    let label = vc.label().to_string();
    let validity = Validity {
        drop_truncated: config.sampler.drop_truncated,
    };
    let mut totals = RescoreReport::default();
    let state = RunState::load(&wd.state_path())?;
    let ctx = crate::sql::session(wd).await?;

    for shard in &state.shards {
        let query = format!(
            "SELECT r.id, r.rollout_idx, r.response, r.score AS inline_score, \
             {} AS valid, i.answer, i.metadata \
             FROM rollouts r JOIN inputs i ON r.id = i.id \
             WHERE i.shard = {} AND r.error IS NULL",
            validity.sql("r"),
            shard.shard
        );
        // Streamed batch by batch: memory stays bounded by the batch size.
        let mut stream = ctx.sql(&query).await?.execute_stream().await?;
        let path = rollout::score_path(wd.root(), &label, shard.shard);
        let mut file: Option<ParquetFile> = None;
        while let Some(batch) = stream.next().await {
            let batch = batch?;
            if batch.num_rows() == 0 {
                continue;
            }
            let scored = score_batch(verifier.as_ref(), &label, &batch, &mut totals)?;
            if file.is_none() {
                file = Some(ParquetFile::create(&path, rollout::score_schema())?);
            }
            file.as_mut().expect("created above").write(&scored)?;
        }
        if let Some(file) = file {
            file.commit()?;
            totals.shards += 1;
        }
    }
    let record =
        serde_json::json!({"type": vc.kind, "options": vc.options, "pass_score": PASS_SCORE});
    rollout::write_scores_record(wd.root(), &label, &record)?;
    Ok(totals)
}

fn score_batch(
    verifier: &dyn Verifier,
    label: &str,
    batch: &RecordBatch,
    totals: &mut RescoreReport,
) -> Result<RecordBatch, RescoreError> {
    let responses = utf8(batch, "response")?;
    let gold = utf8(batch, "answer")?;
    let metadata = utf8(batch, "metadata")?;
    let verdicts = verifier::verify_batch(verifier, &responses, &gold, Some(&metadata));
    let inline = f64s(batch, "inline_score")?;
    let valid = bools(batch, "valid");
    for i in 0..batch.num_rows() {
        totals.scored += 1;
        if responses.is_null(i) {
            totals.no_response += 1;
        }
        let new = (!verdicts.score.is_null(i)).then(|| verdicts.score.value(i));
        if valid.value(i) {
            totals.valid += 1;
            totals.pass += u64::from(new.is_some_and(|s| s >= PASS_SCORE));
        }
        match ((!inline.is_null(i)).then(|| inline.value(i)), new) {
            (None, _) => totals.no_inline += 1,
            (Some(old), Some(new)) if new > old => totals.up += 1,
            (Some(old), Some(new)) if new < old => totals.down += 1,
            _ => {}
        }
    }
    let ids = cast(column(batch, "id"), &DataType::Utf8)?;
    let idx = cast(column(batch, "rollout_idx"), &DataType::UInt32)?;
    let label_col: ArrayRef = Arc::new(StringArray::from(vec![label; batch.num_rows()]));
    Ok(RecordBatch::try_new(
        rollout::score_schema(),
        vec![
            ids,
            idx,
            Arc::new(verdicts.score),
            Arc::new(verdicts.pred),
            label_col,
        ],
    )?)
}
