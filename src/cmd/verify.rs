//! `rsr verify`: re-score saved rollouts with any verifier.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type};
use futures::StreamExt;

use crate::config::{self, Sources};
use crate::sql;
use crate::store::parquet::ParquetFile;
use crate::store::{RunState, WorkDir, rollout};
use crate::verifier::{self, REGISTRY};

/// Re-score saved rollouts with any verifier (no inference)
///
/// Scores every saved response in WORK_DIR/rollout/ against its prompt's
/// gold answer with verifier.type (default: the run's verifier) and
/// verifier.options, and writes scores/<label>/shard_NNNN.parquet (label:
/// verifier.label, default the verifier name). Prints how many verdicts
/// changed against the scores given while sampling. Rollouts are only read.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run directory.
    #[arg(required_unless_present = "list")]
    work_dir: Option<PathBuf>,
    /// Verifier overrides: verifier.type=mcq-rlvr verifier.label=mcq-v2
    /// verifier.options.tolerance=1e-4
    #[arg(value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// List the verifiers and exit.
    #[arg(long)]
    list: bool,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let dirs = args.work_dir.iter().cloned().collect::<Vec<_>>();
    super::common::naming_damaged(dirs, run_in(args)).await
}

async fn run_in(args: Args) -> anyhow::Result<()> {
    if args.list {
        for entry in REGISTRY {
            println!("{:<10} {}", entry.name, entry.description);
        }
        return Ok(());
    }
    let dir = args.work_dir.expect("clap requires work_dir");
    let wd = WorkDir::open_prepared(&dir)?.locked()?;
    if !WorkDir::has_saved_config(&dir) {
        bail!("{} has no config.yaml: not an rsr work dir", dir.display());
    }
    for o in &args.overrides {
        if !o.starts_with("verifier.") {
            bail!("`{o}`: rsr verify takes only verifier.* overrides");
        }
    }
    let mut overrides = vec![format!("work_dir={}", dir.display())];
    overrides.extend(args.overrides.iter().cloned());
    let resolved = config::resolve(&Sources::from_process_env(None, overrides), &["verifier"])?;
    crate::logging::attach_run_log(&wd.run_log_path())?;
    let vc = &resolved.config.verifier;
    let verifier = verifier::build(&vc.kind, &vc.options)?;
    let label = vc.label().to_string();
    if !rollout::has_parquet(&rollout::rollout_dir(wd.root())) {
        bail!(
            "no rollouts in {}: sample first (rsr sample), or copy rollout part files there",
            rollout::rollout_dir(wd.root()).display()
        );
    }
    let state = RunState::load(&wd.state_path())?;
    let ctx = sql::session(&wd).await?;

    let mut totals = Totals::default();
    for shard in &state.shards {
        let query = format!(
            "SELECT r.id, r.rollout_idx, r.response, r.score AS inline_score, \
             (r.response IS NOT NULL AND NOT r.truncated) AS valid, i.answer, i.metadata \
             FROM rollouts r JOIN inputs i ON r.id = i.id \
             WHERE i.shard = {} AND r.error IS NULL",
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
            file.commit()
                .with_context(|| format!("cannot write {}", path.display()))?;
            totals.shards += 1;
        }
    }
    let record = serde_json::json!({"type": vc.kind, "options": vc.options});
    let record_path = rollout::scores_verifier_path(wd.root(), &label);
    crate::store::write_atomic(&record_path, format!("{record:#}\n").as_bytes())
        .with_context(|| format!("cannot write {}", record_path.display()))?;
    let pass_rate = if totals.valid == 0 {
        "-".to_string()
    } else {
        format!("{:.1}%", 100.0 * totals.pass as f64 / totals.valid as f64)
    };
    tracing::info!(
        "scored {} rollouts with {} -> {} ({} shard file(s)): {} of {} valid rollouts pass ({pass_rate}); {} verdicts changed against the inline scores ({} up, {} down), {} had no inline score, {} had no response",
        totals.scored,
        vc.kind,
        rollout::scores_dir(wd.root()).join(&label).display(),
        totals.shards,
        totals.pass,
        totals.valid,
        totals.up + totals.down,
        totals.up,
        totals.down,
        totals.no_inline,
        totals.no_response,
    );
    Ok(())
}

#[derive(Debug, Default)]
struct Totals {
    scored: u64,
    /// Valid rollouts (a response, not truncated): the pass rate's denominator.
    valid: u64,
    /// Valid rollouts that pass.
    pass: u64,
    up: u64,
    down: u64,
    no_inline: u64,
    no_response: u64,
    shards: u64,
}

fn utf8(batch: &RecordBatch, name: &str) -> anyhow::Result<StringArray> {
    let col = batch.column_by_name(name).context(name.to_string())?;
    Ok(cast(col, &DataType::Utf8)?.as_string::<i32>().clone())
}

fn score_batch(
    verifier: &dyn verifier::Verifier,
    label: &str,
    batch: &RecordBatch,
    totals: &mut Totals,
) -> anyhow::Result<RecordBatch> {
    let responses = utf8(batch, "response")?;
    let gold = utf8(batch, "answer")?;
    let metadata = utf8(batch, "metadata")?;
    let verdicts = verifier::verify_batch(verifier, &responses, &gold, Some(&metadata));
    let inline = cast(
        batch
            .column_by_name("inline_score")
            .context("inline_score")?,
        &DataType::Float64,
    )?;
    let inline = inline.as_primitive::<Float64Type>();
    let valid = batch.column_by_name("valid").context("valid")?.as_boolean();
    for i in 0..batch.num_rows() {
        totals.scored += 1;
        if responses.is_null(i) {
            totals.no_response += 1;
        }
        let new = (!verdicts.score.is_null(i)).then(|| verdicts.score.value(i));
        if valid.value(i) {
            totals.valid += 1;
            totals.pass += u64::from(new.is_some_and(|s| s >= crate::store::rollout::PASS_SCORE));
        }
        match ((!inline.is_null(i)).then(|| inline.value(i)), new) {
            (None, _) => totals.no_inline += 1,
            (Some(old), Some(new)) if new > old => totals.up += 1,
            (Some(old), Some(new)) if new < old => totals.down += 1,
            _ => {}
        }
    }
    let ids = cast(batch.column_by_name("id").context("id")?, &DataType::Utf8)?;
    let idx = cast(
        batch.column_by_name("rollout_idx").context("rollout_idx")?,
        &DataType::UInt32,
    )?;
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
