//! `rsr compare`: several runs side by side.

use std::path::PathBuf;

use anyhow::bail;
use arrow::array::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};

use crate::analyze::{self, Stats, compare};

use super::common::open_saved;

/// Compare runs side by side (for example one per checkpoint)
///
/// Prints one row per run — prompts, rollouts, pass rate, mean per-prompt
/// pass rate, pass@1 and pass@k at the largest k every run has, mean
/// rollouts per prompt, truncation rate, mean best-of-N error (numeric
/// verifier) — and writes the same table as OUT/compare.csv with a chart of
/// the rates (pass rate, pass@k, truncation rate) per run, OUT/compare.png.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run directories.
    #[arg(required = true, num_args = 2..)]
    work_dirs: Vec<PathBuf>,
    /// Where compare.csv and compare.png go.
    #[arg(long, value_name = "DIR", default_value = "output/compare")]
    out: PathBuf,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let dirs = args.work_dirs.clone();
    super::common::naming_damaged(dirs, run_in(args)).await
}

async fn run_in(args: Args) -> anyhow::Result<()> {
    let mut runs: Vec<Stats> = Vec::new();
    for dir in &args.work_dirs {
        let (wd, config) = open_saved(dir, &[], &[])?;
        // A run scored by a model verifier is compared on its verdicts.
        let label = super::common::scores_label(&config, None);
        runs.push(analyze::compute(&wd, &config, label).await?);
    }
    if runs.iter().all(|r| r.prompts_sampled == 0) {
        bail!("none of these runs has rollouts yet");
    }
    if let Some(warning) = compare::early_stop_warning(&runs) {
        tracing::warn!("{warning}");
    }
    let table = compare::table(&runs);
    print_aligned(&table)?;
    std::fs::create_dir_all(&args.out)?;
    let csv = args.out.join("compare.csv");
    compare::write_csv(&csv, &table)?;
    let png = args.out.join("compare.png");
    compare::write_chart(&png, &runs)?;
    tracing::info!("wrote {} and {}", csv.display(), png.display());
    Ok(())
}

/// The table on stdout, columns aligned, nulls blank.
fn print_aligned(table: &RecordBatch) -> anyhow::Result<()> {
    let options = FormatOptions::default().with_null("");
    let formatters = table
        .columns()
        .iter()
        .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
        .collect::<Result<Vec<_>, _>>()?;
    let header: Vec<String> = table
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let rows: Vec<Vec<String>> = (0..table.num_rows())
        .map(|i| formatters.iter().map(|f| f.value(i).to_string()).collect())
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            rows.iter()
                .map(|row| row[c].chars().count())
                .chain([header[c].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[String]| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    println!("{}", line(&header));
    for row in &rows {
        println!("{}", line(row));
    }
    Ok(())
}
