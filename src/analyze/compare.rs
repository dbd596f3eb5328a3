//! Several runs side by side: one row of numbers per run (prompts,
//! rollouts, accuracy with its 95% interval, the paired difference from the
//! first run, pass rates, pass@1 and pass@k at the largest k every run has,
//! rollouts per prompt, truncation rate, best-of-N error, tokens, cost,
//! early-stop savings and tokens and cost per kept row) as an Arrow batch,
//! written as CSV by arrow's writer, a grouped-bar chart of the rates and a
//! chart of accuracy per run with its interval.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema};
use thiserror::Error;

use super::accuracy::Difference;
use super::charts::{self, ChartError};
use super::{AnalyzeError, Stats};
use crate::store::AtomicFile;

/// Errors writing a comparison.
#[derive(Debug, Error)]
pub enum CompareError {
    /// A file cannot be written.
    #[error("cannot write {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The CSV writer failed.
    #[error("cannot write {}: {source}", path.display())]
    Csv {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: arrow::error::ArrowError,
    },
    /// The chart cannot be drawn.
    #[error(transparent)]
    Chart(#[from] ChartError),
}

/// The largest k with pass@k in every run (0 when one run has none).
pub fn common_k(runs: &[Stats]) -> u64 {
    runs.iter()
        .map(|r| r.pass_at_k.last().map_or(0, |p| p.k))
        .min()
        .unwrap_or(0)
}

fn pass_at(r: &Stats, k: u64) -> Option<f64> {
    r.pass_at_k.iter().find(|p| p.k == k).map(|p| p.value)
}

fn truncation_rate(r: &Stats) -> Option<f64> {
    (r.rollouts > 0).then(|| r.truncated as f64 / r.rollouts as f64)
}

/// A rate to four decimals, as printed and written.
fn round4(v: Option<f64>) -> Option<f64> {
    v.map(|v| (v * 1e4).round() / 1e4)
}

/// Each sampled prompt's accuracy (passing / finished rollouts) by id,
/// with `label`'s verdicts or the inline ones.
pub async fn prompt_accuracies(
    wd: &crate::store::WorkDir,
    label: Option<&str>,
) -> Result<std::collections::HashMap<String, f64>, AnalyzeError> {
    use futures::StreamExt;
    let ctx = crate::sql::session_with_scores(wd, label).await?;
    let mut out = std::collections::HashMap::new();
    if ctx.table("prompts").await.is_err() {
        return Ok(out);
    }
    let mut stream = ctx
        .sql(
            "SELECT id, CAST(n_pass AS DOUBLE) / CAST(n_rollouts AS DOUBLE) AS accuracy \
             FROM prompts WHERE n_rollouts > 0",
        )
        .await?
        .execute_stream()
        .await?;
    while let Some(batch) = stream.next().await {
        let b = batch?;
        let arrow = |e| datafusion::error::DataFusionError::ArrowError(Box::new(e), None);
        let ids = crate::sql::columns::utf8(&b, "id").map_err(arrow)?;
        let acc = crate::sql::columns::f64s(&b, "accuracy").map_err(arrow)?;
        for i in 0..b.num_rows() {
            out.insert(ids.value(i).to_string(), acc.value(i));
        }
    }
    Ok(out)
}

/// The paired difference of `run` from `base` over the prompt ids both have.
pub fn difference(
    base: &std::collections::HashMap<String, f64>,
    run: &std::collections::HashMap<String, f64>,
) -> Option<Difference> {
    Difference::paired(
        run.iter()
            .filter_map(|(id, r)| base.get(id).map(|b| (*b, *r))),
    )
}

/// One row per run. pass@k is a column only when every run has k > 1.
/// `diffs[i]` is run i's paired difference from the first run (none for
/// the first).
pub fn table(runs: &[Stats], diffs: &[Option<Difference>]) -> RecordBatch {
    let k = common_k(runs);
    let rate = |f: &dyn Fn(&Stats) -> Option<f64>| -> ArrayRef {
        Arc::new(Float64Array::from_iter(runs.iter().map(|r| round4(f(r)))))
    };
    let mut fields = vec![
        Field::new("run", DataType::Utf8, false),
        Field::new("model", DataType::Utf8, false),
        Field::new("prompts", DataType::UInt64, false),
        Field::new("rollouts", DataType::UInt64, false),
        Field::new("accuracy", DataType::Float64, true),
        Field::new("accuracy_lo", DataType::Float64, true),
        Field::new("accuracy_hi", DataType::Float64, true),
        Field::new("diff_vs_first", DataType::Float64, true),
        Field::new("diff_lo", DataType::Float64, true),
        Field::new("diff_hi", DataType::Float64, true),
        Field::new("shared_prompts", DataType::UInt64, true),
        Field::new("better", DataType::UInt64, true),
        Field::new("worse", DataType::UInt64, true),
        Field::new("pass_rate", DataType::Float64, true),
        Field::new("mean_prompt_pass_rate", DataType::Float64, true),
        Field::new("pass@1", DataType::Float64, true),
    ];
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            runs.iter().map(|r| r.work_dir.as_str()),
        )),
        Arc::new(StringArray::from_iter_values(
            runs.iter().map(|r| r.model.as_str()),
        )),
        Arc::new(UInt64Array::from_iter_values(
            runs.iter().map(|r| r.prompts_sampled),
        )),
        Arc::new(UInt64Array::from_iter_values(
            runs.iter().map(|r| r.rollouts),
        )),
        rate(&|r| r.accuracy.as_ref().map(|a| a.value)),
        rate(&|r| r.accuracy.as_ref().map(|a| a.lo)),
        rate(&|r| r.accuracy.as_ref().map(|a| a.hi)),
    ];
    let diff = |f: &dyn Fn(&Difference) -> f64| -> ArrayRef {
        Arc::new(Float64Array::from_iter(
            (0..runs.len()).map(|i| round4(diffs.get(i)?.as_ref().map(f))),
        ))
    };
    let count = |f: &dyn Fn(&Difference) -> u64| -> ArrayRef {
        Arc::new(UInt64Array::from_iter(
            (0..runs.len()).map(|i| diffs.get(i)?.as_ref().map(f)),
        ))
    };
    columns.extend([
        diff(&|d| d.value),
        diff(&|d| d.lo),
        diff(&|d| d.hi),
        count(&|d| d.shared),
        count(&|d| d.better),
        count(&|d| d.worse),
        rate(&|r| r.pass_rate),
        rate(&|r| r.mean_prompt_pass_rate),
        rate(&|r| pass_at(r, 1)),
    ]);
    if k > 1 {
        fields.push(Field::new(format!("pass@{k}"), DataType::Float64, true));
        columns.push(rate(&|r| pass_at(r, k)));
    }
    fields.extend([
        Field::new("rollouts_per_prompt", DataType::Float64, true),
        Field::new("truncation_rate", DataType::Float64, true),
        Field::new("best_of_n_error", DataType::Float64, true),
    ]);
    columns.extend([
        rate(&|r| r.mean_rollouts_per_prompt),
        rate(&truncation_rate),
        rate(&|r| r.best_of_n_error.as_ref().and_then(|e| e.mean)),
    ]);
    // Spending: tokens, cost (by each run's prices), what early stop saved,
    // and per kept row of each formatter any run has.
    let exact = |f: &dyn Fn(&Stats) -> Option<f64>| -> ArrayRef {
        Arc::new(Float64Array::from_iter(runs.iter().map(f)))
    };
    fields.extend([
        Field::new("tokens", DataType::UInt64, false),
        Field::new("cost", DataType::Float64, true),
        Field::new("early_stop_saved_tokens", DataType::Float64, true),
    ]);
    columns.extend([
        Arc::new(UInt64Array::from_iter_values(runs.iter().map(|r| {
            r.spending.prompt_tokens + r.spending.completion_tokens
        }))) as ArrayRef,
        exact(&|r| {
            r.spending
                .cost
                .map(|c| c + r.spending.judge_cost.unwrap_or(0.0))
        }),
        exact(&|r| r.spending.early_stop_saved_tokens.map(f64::round)),
    ]);
    let formatters: std::collections::BTreeSet<&str> = runs
        .iter()
        .flat_map(|r| r.spending.per_row.iter().map(|p| p.formatter.as_str()))
        .collect();
    for name in formatters {
        let of = |r: &Stats| {
            r.spending
                .per_row
                .iter()
                .find(|p| p.formatter == name)
                .cloned()
        };
        fields.push(Field::new(
            format!("tokens_per_{name}_row"),
            DataType::Float64,
            true,
        ));
        columns.push(exact(&|r| {
            of(r).and_then(|p| p.tokens_per_row).map(f64::round)
        }));
        fields.push(Field::new(
            format!("cost_per_{name}_row"),
            DataType::Float64,
            true,
        ));
        columns.push(exact(&|r| of(r).and_then(|p| p.cost_per_row)));
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .expect("columns match their fields")
}

/// Writes `table` as CSV with a header row, atomically.
pub fn write_csv(path: &Path, table: &RecordBatch) -> Result<(), CompareError> {
    let io = |source| CompareError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = AtomicFile::create(path).map_err(io)?;
    let mut writer = arrow::csv::WriterBuilder::new()
        .with_header(true)
        .build(file);
    writer.write(table).map_err(|source| CompareError::Csv {
        path: path.to_path_buf(),
        source,
    })?;
    writer.into_inner().commit().map_err(io)
}

/// The grouped-bar chart of the rates per run, written to `path` (PNG).
pub fn write_chart(path: &Path, runs: &[Stats]) -> Result<(), CompareError> {
    let names: Vec<String> = runs.iter().map(run_name).collect();
    let k = common_k(runs);
    let metric = |value: &dyn Fn(&Stats) -> Option<f64>| runs.iter().map(value).collect();
    let pass_at_k = format!("pass@{k}");
    // pass@1 equals the mean per-prompt pass rate, so it is drawn once.
    let mut series: Vec<(&str, Vec<Option<f64>>)> = vec![
        ("pass rate (valid rollouts)", metric(&|r| r.pass_rate)),
        (
            "mean per-prompt pass rate = pass@1",
            metric(&|r| r.mean_prompt_pass_rate),
        ),
    ];
    if k > 1 {
        series.push((&pass_at_k, metric(&|r| pass_at(r, k))));
    }
    series.push(("truncation rate", metric(&truncation_rate)));
    let tmp = path.with_extension("png.tmp.png");
    charts::grouped_bars(
        &tmp,
        "Pass rates and truncation by run",
        "rate",
        &names,
        &series,
        1.0,
    )?;
    std::fs::rename(&tmp, path).map_err(|source| CompareError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Accuracy per run with its 95% interval, the runs in the order given
/// (checkpoints in training order draw a learning curve), written to
/// `path` (PNG).
pub fn write_accuracy_chart(path: &Path, runs: &[Stats]) -> Result<(), CompareError> {
    let points: Vec<(String, Option<charts::Interval>)> = runs
        .iter()
        .map(|r| {
            (
                run_name(r),
                r.accuracy.as_ref().map(|a| (a.value, a.lo, a.hi)),
            )
        })
        .collect();
    let tmp = path.with_extension("png.tmp.png");
    charts::intervals(&tmp, "Accuracy per run (95% interval)", "accuracy", &points)?;
    std::fs::rename(&tmp, path).map_err(|source| CompareError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// A run's short name: its work dir's last component.
fn run_name(r: &Stats) -> String {
    Path::new(&r.work_dir)
        .file_name()
        .map_or_else(|| r.work_dir.clone(), |n| n.to_string_lossy().into_owned())
}

/// The warning for runs sampled with early stop, whose rates rest on few
/// rollouts per prompt; `None` when no run was.
pub fn early_stop_warning(runs: &[Stats]) -> Option<String> {
    let early: Vec<&str> = runs
        .iter()
        .filter(|r| r.early_stop)
        .map(|r| r.work_dir.as_str())
        .collect();
    if early.is_empty() {
        return None;
    }
    let which = if early.len() == runs.len() {
        "every run was".to_string()
    } else {
        format!("{} of {} runs were", early.len(), runs.len())
    };
    Some(format!(
        "{which} sampled with early stop ({}): a prompt there stops once its formatters are \
         satisfied, so its pass rate and pass@k rest on few rollouts and are biased (pass@k can \
         even fall as k grows); compare runs sampled with sampling.early_stop=false for exact \
         numbers",
        early.join(", ")
    ))
}
