//! `rsr run`: the whole pipeline on one config, resumable with `work_dir=`.

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Float64Type, Int64Type};

use super::common::{ConfigArgs, Run, open_run};
use super::prepare::prepare_step;
use super::sample::{Connection, finish, sample_step, unfinished};

/// Run the pipeline: prepare, sample (with inline scoring), format, analyze
///
/// Each stage skips what the work dir already has, so the same command with
/// work_dir=WORK_DIR resumes an interrupted run. The formatters write
/// WORK_DIR/train/, analyze writes WORK_DIR/summary/ (stats, charts,
/// report.html), and a short summary (prompts, rollouts, pass rates,
/// training rows) is printed on stdout.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: ConfigArgs,
}

pub async fn run(args: Args, quiet: bool) -> anyhow::Result<()> {
    let mut run = open_run(&args.config, &[])?;
    super::sample::check_before_sampling(&mut run)?;
    // A new work dir that fails preflight is removed: nothing was made.
    let connection = Connection::external(&run)
        .await
        .inspect_err(|_| run.discard_if_new())?;
    prepare_step(&run).await?;
    let report = sample_step(&run, connection, quiet).await?;
    finish(&run, &report)?;
    let formats = super::format::format_all(&run.wd, &run.resolved.config, None).await?;
    crate::analyze::write_summary(&run.wd, &run.resolved.config, None).await?;
    print_summary(&run).await?;
    for f in &formats {
        println!(
            "train         {}: {} rows from {} prompts -> {}",
            f.name,
            f.rows,
            f.prompts_out,
            f.path.display()
        );
    }
    // Prompts left by failures: the training files hold what finished, and
    // the exit status says the run is not complete.
    unfinished(&run, &report)
}

/// Prints the run's totals over all saved rollouts.
async fn print_summary(run: &Run) -> anyhow::Result<()> {
    let ctx = crate::sql::session(&run.wd).await?;
    let batches = ctx
        .sql(
            "SELECT count(*) AS prompts, \
               CAST(sum(n_rollouts) AS BIGINT) AS rollouts, \
               CAST(sum(n_valid) AS BIGINT) AS valid, \
               CAST(sum(n_pass) AS BIGINT) AS passed, \
               CAST(sum(n_truncated) AS BIGINT) AS truncated, \
               CAST(sum(n_errors) AS BIGINT) AS errors, \
               avg(pass_rate) AS mean_pass_rate, \
               CAST(sum(CASE WHEN pass_rate = 0 THEN 1 ELSE 0 END) AS BIGINT) AS none_pass, \
               CAST(sum(CASE WHEN pass_rate = 1 THEN 1 ELSE 0 END) AS BIGINT) AS all_pass \
             FROM prompts",
        )
        .await?
        .collect()
        .await?;
    let Some(b) = batches.first().filter(|b| b.num_rows() == 1) else {
        return Ok(());
    };
    let int = |i: usize| {
        let c = b.column(i);
        if c.is_null(0) {
            0
        } else {
            c.as_primitive::<Int64Type>().value(0)
        }
    };
    let mean = b.column(6);
    let mean = (!mean.is_null(0)).then(|| mean.as_primitive::<Float64Type>().value(0));
    let root = run.wd.root().display();
    println!("work dir      {root}");
    println!("prompts       {}", int(0));
    println!(
        "rollouts      {} ({} valid, {} truncated; {} failed attempts retried)",
        int(1),
        int(2),
        int(4),
        int(5)
    );
    println!(
        "passed        {} of {} valid ({})",
        int(3),
        int(2),
        if int(2) > 0 {
            format!("{:.1}%", 100.0 * int(3) as f64 / int(2) as f64)
        } else {
            "-".into()
        }
    );
    println!(
        "pass rate     mean {} per prompt; {} prompts never pass, {} always pass",
        mean.map_or("-".into(), |m| format!("{m:.3}")),
        int(7),
        int(8)
    );
    println!("report        {root}/summary/report.html");
    Ok(())
}
