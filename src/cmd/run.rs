//! `rsr run`: the whole pipeline on one config, resumable with `work_dir=`.

use crate::analyze::Stats;
use crate::pipeline::{self, Connection, Run};

use super::common::{ConfigArgs, finish, open_run, unfinished};

/// Run the pipeline: prepare, sample (with inline scoring), judge, format, analyze
///
/// Each stage skips what the work dir already has, so the same command with
/// work_dir=WORK_DIR resumes an interrupted run. A verifier that calls a
/// model (llm-judge, mcq-llm-as-judge, reward-model) scores every rollout
/// after sampling, into WORK_DIR/scores/<label>/. The formatters write
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
    pipeline::check_before_sampling(&mut run)?;
    // A new work dir that fails preflight is removed: nothing was made.
    let connection = Connection::external(&run)
        .await
        .inspect_err(|_| run.discard_if_new())?;
    pipeline::prepare(&run).await?;
    let report = pipeline::sample(&run, connection, quiet).await?;
    finish(&run, &report)?;
    let config = &run.resolved.config;
    let scores = if crate::judge::is_model_verifier(&config.verifier.kind) {
        // The model verifier scores the finished rollouts; a run with
        // prompts left unfinished is judged once a resume finishes them.
        unfinished(&run, &report)?;
        pipeline::judge(&run.wd, config).await?;
        Some(config.verifier.label())
    } else {
        None
    };
    let formats = crate::formatter::write_all(&run.wd, config, scores).await?;
    let stats = crate::analyze::write_summary(&run.wd, config, scores).await?;
    print_summary(&run, &stats);
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

/// Prints the run's totals, from the statistics `analyze` computed.
fn print_summary(run: &Run, s: &Stats) {
    let root = run.wd.root().display();
    println!("work dir      {root}");
    println!("prompts       {}", s.prompts);
    println!(
        "rollouts      {} ({} valid, {} truncated; {} failed attempts retried)",
        s.rollouts, s.valid, s.truncated, s.errors
    );
    println!(
        "passed        {} of {} valid ({})",
        s.passed,
        s.valid,
        s.pass_rate
            .map_or_else(|| "-".into(), |r| format!("{:.1}%", 100.0 * r))
    );
    println!(
        "pass rate     mean {} per prompt; {} prompts never pass, {} always pass",
        s.mean_prompt_pass_rate
            .map_or_else(|| "-".into(), |m| format!("{m:.3}")),
        s.prompts_all_fail,
        s.prompts_all_pass
    );
    println!("report        {root}/summary/report.html");
}
