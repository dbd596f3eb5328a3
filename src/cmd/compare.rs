//! `rsr compare`: several runs side by side.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::bail;

use crate::analyze::{self, Stats};

use super::format::open_saved;

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
        let (wd, config) = open_saved(dir, &[])?;
        runs.push(analyze::compute(&wd, &config, None).await?);
    }
    if runs.iter().all(|r| r.prompts_sampled == 0) {
        bail!("none of these runs has rollouts yet");
    }
    let stopped_early: Vec<&str> = runs
        .iter()
        .filter(|r| r.early_stop)
        .map(|r| r.work_dir.as_str())
        .collect();
    if !stopped_early.is_empty() {
        tracing::warn!(
            "{} sampled with early stop ({}): a prompt there stops once its formatters are satisfied, so its pass rate and pass@k rest on few rollouts and are biased (pass@k can even fall as k grows); compare runs sampled with sampling.early_stop=false for exact numbers",
            if stopped_early.len() == runs.len() {
                "every run was".to_string()
            } else {
                format!("{} of {} runs were", stopped_early.len(), runs.len())
            },
            stopped_early.join(", ")
        );
    }
    let common_k = runs
        .iter()
        .map(|r| r.pass_at_k.last().map_or(0, |p| p.k))
        .min()
        .unwrap_or(0);
    let mut header = vec![
        "run".to_string(),
        "model".into(),
        "prompts".into(),
        "rollouts".into(),
        "pass_rate".into(),
        "mean_prompt_pass_rate".into(),
        "pass@1".into(),
    ];
    if common_k > 1 {
        header.push(format!("pass@{common_k}"));
    }
    header.extend([
        "rollouts_per_prompt".into(),
        "truncation_rate".into(),
        "best_of_n_error".into(),
    ]);
    let f = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.4}"));
    let at = |r: &Stats, k: u64| r.pass_at_k.iter().find(|p| p.k == k).map(|p| p.value);
    let table: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            let mut row = vec![
                r.work_dir.clone(),
                r.model.clone(),
                r.prompts_sampled.to_string(),
                r.rollouts.to_string(),
                f(r.pass_rate),
                f(r.mean_prompt_pass_rate),
                f(at(r, 1)),
            ];
            if common_k > 1 {
                row.push(f(at(r, common_k)));
            }
            row.extend([
                f(r.mean_rollouts_per_prompt),
                f((r.rollouts > 0).then(|| r.truncated as f64 / r.rollouts as f64)),
                f(r.best_of_n_error.as_ref().and_then(|e| e.mean)),
            ]);
            row
        })
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            table
                .iter()
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
    for row in &table {
        println!("{}", line(row));
    }
    std::fs::create_dir_all(&args.out)?;
    let mut csv = String::new();
    let quote = |s: &str| {
        if s.contains([',', '"', '\n']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    };
    let _ = writeln!(
        csv,
        "{}",
        header
            .iter()
            .map(|h| quote(h))
            .collect::<Vec<_>>()
            .join(",")
    );
    for row in &table {
        let _ = writeln!(
            csv,
            "{}",
            row.iter().map(|c| quote(c)).collect::<Vec<_>>().join(",")
        );
    }
    crate::store::write_atomic(args.out.join("compare.csv"), csv.as_bytes())?;
    let names: Vec<String> = runs
        .iter()
        .map(|r| {
            PathBuf::from(&r.work_dir)
                .file_name()
                .map_or_else(|| r.work_dir.clone(), |n| n.to_string_lossy().into_owned())
        })
        .collect();
    let metric = |value: &dyn Fn(&Stats) -> Option<f64>| runs.iter().map(value).collect();
    let pass_at_k = format!("pass@{common_k}");
    // pass@1 equals the mean per-prompt pass rate, so it is drawn once.
    let mut series: Vec<(&str, Vec<Option<f64>>)> = vec![
        ("pass rate (valid rollouts)", metric(&|r| r.pass_rate)),
        (
            "mean per-prompt pass rate = pass@1",
            metric(&|r| r.mean_prompt_pass_rate),
        ),
    ];
    if common_k > 1 {
        series.push((&pass_at_k, metric(&|r| at(r, common_k))));
    }
    series.push((
        "truncation rate",
        metric(&|r| (r.rollouts > 0).then(|| r.truncated as f64 / r.rollouts as f64)),
    ));
    let png = args.out.join("compare.png");
    let tmp = args.out.join("compare.png.tmp.png");
    analyze::charts::grouped_bars(
        &tmp,
        "Pass rates and truncation by run",
        "rate",
        &names,
        &series,
        1.0,
    )?;
    std::fs::rename(&tmp, &png)?;
    tracing::info!(
        "wrote {} and {}",
        args.out.join("compare.csv").display(),
        png.display()
    );
    Ok(())
}
