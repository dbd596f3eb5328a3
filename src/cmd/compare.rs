//! `rsr compare`: several runs side by side.

use std::path::PathBuf;

use anyhow::bail;
use arrow::array::{Array, AsArray, RecordBatch};
use arrow::util::display::{ArrayFormatter, FormatOptions};

use crate::analyze::{self, Stats, compare};

use super::common::open_saved;

/// Compare runs side by side (for example one per checkpoint)
///
/// Prints one column per run — prompts, rollouts, accuracy (every rollout
/// counted, a truncated one as failed) with its 95% interval, the
/// difference from the first run paired by prompt with its interval, pass
/// rate, mean per-prompt pass rate, pass@1 and pass@k at the largest k
/// every run has, mean rollouts per prompt, truncation rate, mean best-of-N
/// error (numeric verifier) — then one line per run against the first, and
/// writes the same table as OUT/compare.csv with a chart of the rates per
/// run (OUT/compare.png) and of accuracy with its interval per run in the
/// order given (OUT/accuracy.png: checkpoints in training order draw a
/// learning curve). Put the baseline first.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run directories.
    #[arg(required = true, num_args = 2..)]
    pub(super) work_dirs: Vec<PathBuf>,
    /// Where compare.csv and compare.png go.
    #[arg(long, value_name = "DIR", default_value = "output/compare")]
    out: PathBuf,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let mut runs: Vec<Stats> = Vec::new();
    let mut diffs = vec![None];
    let mut base = None;
    for dir in &args.work_dirs {
        let (wd, config, _) = open_saved(dir, &[], &[])?;
        // A run scored by a model verifier is compared on its verdicts.
        let label = super::common::scores_label(&config, None);
        runs.push(analyze::compute(&wd, &config, label).await?);
        // The baseline's per-prompt accuracies are held (one number a
        // prompt); each later run's are paired with them and dropped.
        let prompts = compare::prompt_accuracies(&wd, label).await?;
        match &base {
            None => base = Some(prompts),
            Some(b) => diffs.push(compare::difference(b, &prompts)),
        }
    }
    if runs.iter().all(|r| r.prompts_sampled == 0) {
        bail!("none of these runs has rollouts yet");
    }
    if let Some(warning) = compare::early_stop_warning(&runs) {
        tracing::warn!("{warning}");
    }
    let table = compare::table(&runs, &diffs);
    print_aligned(&table)?;
    println!();
    for (run, diff) in runs.iter().zip(&diffs).skip(1) {
        match diff {
            Some(d) => println!("{} vs {}: {}", run.work_dir, runs[0].work_dir, d.describe()),
            None => println!(
                "{} vs {}: no prompt id in common, nothing to pair",
                run.work_dir, runs[0].work_dir
            ),
        }
    }
    std::fs::create_dir_all(&args.out)?;
    let csv = args.out.join("compare.csv");
    compare::write_csv(&csv, &table)?;
    let png = args.out.join("compare.png");
    compare::write_chart(&png, &runs)?;
    let accuracy = args.out.join("accuracy.png");
    compare::write_accuracy_chart(&accuracy, &runs)?;
    tracing::info!(
        "wrote {}, {} and {}",
        csv.display(),
        png.display(),
        accuracy.display()
    );
    Ok(())
}

/// The table on stdout, one metric a line and one run a column (a run per
/// line would not fit a terminal), numbers rounded for reading (the CSV
/// keeps them whole), nulls blank.
fn print_aligned(table: &RecordBatch) -> anyhow::Result<()> {
    let options = FormatOptions::default().with_null("");
    let schema = table.schema();
    let mut lines: Vec<Vec<String>> = Vec::new();
    for (field, column) in schema.fields().iter().zip(table.columns()) {
        let formatter = ArrayFormatter::try_new(column.as_ref(), &options)?;
        let floats = column.as_primitive_opt::<arrow::datatypes::Float64Type>();
        let mut line = vec![field.name().clone()];
        for i in 0..table.num_rows() {
            line.push(match floats {
                Some(f) if f.is_valid(i) => readable(f.value(i)),
                _ => formatter.value(i).to_string(),
            });
        }
        lines.push(line);
    }
    let width = |c: usize| {
        lines
            .iter()
            .map(|l| l[c].chars().count())
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..=table.num_rows()).map(width).collect();
    for line in &lines {
        let text = line
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ");
        println!("{}", text.trim_end());
    }
    Ok(())
}

/// `x` with four significant digits after the point at most
/// (0.15291407999999998 → 0.1529, 0.000847502 → 0.0008475, 2.5 → 2.5).
fn readable(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let magnitude = x.abs().log10().floor() as i32;
    let decimals = (3 - magnitude).clamp(0, 12) as usize;
    let s = format!("{x:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::readable;

    #[test]
    fn floats_are_rounded_for_reading() {
        assert_eq!(readable(0.15291407999999998), "0.1529");
        assert_eq!(readable(0.0008475020994475138), "0.0008475");
        assert_eq!(readable(2.5), "2.5");
        assert_eq!(readable(1234.5678), "1235");
        assert_eq!(readable(0.0), "0");
    }
}
