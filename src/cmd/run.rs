//! `rsr run`: the whole pipeline on one config, resumable with `work_dir=`.

use crate::analyze::Stats;
use crate::config::SamplerMode;
use crate::pipeline::{self, Run};

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
    /// Prepare, print the worst case of sampling the unfinished shards
    /// (requests, tokens, cost at pricing.*; with sampler.mode=batch the
    /// batch plan and the saving), and stop before anything is sent.
    #[arg(long)]
    dry_run: bool,
}

pub async fn run(args: Args, quiet: bool) -> anyhow::Result<()> {
    let mut run = open_run(&args.config, &[])?;
    if args.dry_run {
        return dry_run(&mut run).await;
    }
    let report = pipeline::connect_prepare_sample(&mut run, quiet).await?;
    let config = &run.resolved.config;
    if let Err(stopped) = finish(&run, &report) {
        // At a budget, what the finished prompts allow is written (marked
        // partial) so the user sees what the money bought; rule verdicts
        // are inline, the others wait for the rollouts to be finished.
        if stopped.is::<super::BudgetReached>() && !run.scoring.family().scores_after_sampling() {
            write_outputs(&run, None).await?;
        }
        return Err(stopped);
    }
    let scores = if run.scoring.family().scores_after_sampling() {
        // The model verifier or the vote scores the finished rollouts; a
        // run with prompts left unfinished is scored once a resume
        // finishes them.
        unfinished(&run, &report)?;
        super::common::score_after_sampling(&run).await?;
        Some(config.verifier.label())
    } else {
        None
    };
    write_outputs(&run, scores).await?;
    // Prompts left by failures: the training files hold what finished, and
    // the exit status says the run is not complete.
    unfinished(&run, &report)
}

/// The formatters' files, the summary, and the run's totals on stdout.
async fn write_outputs(run: &Run, scores: Option<&str>) -> anyhow::Result<()> {
    let config = &run.resolved.config;
    let formats = crate::formatter::write_all(&run.wd, config, scores).await?;
    let stats = crate::analyze::write_summary(&run.wd, config, scores).await?;
    print_summary(run, &stats);
    for f in &formats {
        println!(
            "train         {}: {} rows from {} prompts -> {}",
            f.name,
            f.rows,
            f.prompts_out,
            f.path.display()
        );
    }
    Ok(())
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
    let pct = |r: Option<f64>| r.map_or_else(|| "-".into(), |r| format!("{:.1}%", 100.0 * r));
    if s.is_vote() {
        // Agreement with the vote is not accuracy: say which it is.
        println!(
            "agree         {} of {} valid agree with their prompt's majority label ({})",
            s.passed,
            s.valid,
            pct(s.pass_rate)
        );
        if let Some(m) = s.vote_accuracy() {
            println!(
                "label right   {} of {} labelled prompts with gold ({})",
                m.label_is_gold,
                m.with_gold,
                pct(Some(m.label_is_gold as f64 / m.with_gold as f64))
            );
        }
    } else {
        println!(
            "passed        {} of {} valid ({})",
            s.passed,
            s.valid,
            pct(s.pass_rate)
        );
    }
    println!(
        "pass rate     mean {} per prompt; {} prompts never pass, {} always pass",
        s.mean_prompt_pass_rate
            .map_or_else(|| "-".into(), |m| format!("{m:.3}")),
        s.prompts_all_fail,
        s.prompts_all_pass
    );
    if let Some(a) = s.accuracy.as_ref().filter(|_| !s.is_vote()) {
        println!("accuracy      {}", a.describe());
    }
    let sp = &s.spending;
    let at = match sp.batch_share.filter(|&s| s > 0.0) {
        Some(share) => format!(
            " (sampling at batch prices, {:.0}% of online: ${:.4} online)",
            share * 100.0,
            sp.cost.unwrap_or(0.0) / share
        ),
        None => String::new(),
    };
    let cost = match (sp.cost, sp.judge_cost) {
        (Some(c), Some(j)) if j > 0.0 => format!(", ${:.4} (judge ${j:.4} of it){at}", c + j),
        (Some(c), _) => format!(", ${c:.4}{at}"),
        (None, _) => ", no cost (set pricing.input and pricing.output)".into(),
    };
    println!(
        "spent         {} requests, {} prompt + {} completion tokens{cost}",
        sp.requests, sp.prompt_tokens, sp.completion_tokens
    );
    println!("report        {root}/summary/report.html");
}

/// The dry run: the server checks a real run makes first (nothing but
/// `GET /models` is sent), then the worst case against the budgets. A work
/// dir this command created is removed again: a dry run leaves nothing.
async fn dry_run(run: &mut Run) -> anyhow::Result<()> {
    let result = async {
        drop(pipeline::connect(run).await?);
        if !run.wd.input_path().is_file() {
            pipeline::prepare(run).await?;
        }
        worst_case(run).await
    }
    .await;
    run.discard_if_new();
    println!("{}", result?);
    Ok(())
}

/// The most sampling the unfinished shards can spend: every prompt taking
/// `max_steps` steps of `step_size` responses (truncated responses do not
/// count toward `max_rollouts`), each of `max_tokens`.
async fn worst_case(run: &Run) -> anyhow::Result<String> {
    let c = &run.resolved.config;
    let state = crate::store::RunState::load(&run.wd.state_path())?;
    let todo: Vec<String> = state
        .shards
        .iter()
        .filter(|s| s.status != crate::store::ShardStatus::Done)
        .map(|s| s.shard.to_string())
        .collect();
    if todo.is_empty() {
        return Ok("dry run: every shard is sampled already; nothing would be sent".into());
    }
    let (prompts, chars) = prompts_and_chars(run, &todo).await?;
    let s = &c.sampling;
    let responses = (s.max_steps.get() * s.step_size.get()) as u64;
    let per_prompt_requests = if c.sampler.sends_n() {
        s.max_steps.get() as u64
    } else {
        responses
    };
    let requests = prompts * per_prompt_requests;
    // About four bytes a token; each request sends its prompt.
    let prompt_tokens = chars / 4 * per_prompt_requests;
    let completion_tokens = prompts * responses * u64::from(c.sampler.max_tokens.get());
    let worst =
        |(i, o): (f64, f64)| (prompt_tokens as f64 * i + completion_tokens as f64 * o) / 1e6;
    let cost = match (
        c.pricing.sampling(c.sampler.mode),
        c.pricing.sampling(SamplerMode::Online),
    ) {
        (Some(batch), Some(online)) if c.sampler.mode == SamplerMode::Batch => format!(
            "${:.2} at batch prices ({}% of pricing.input={} and pricing.output={} per million tokens), against ${:.2} online: ${:.2} saved",
            worst(batch),
            c.pricing.batch_discount * 100.0,
            online.0,
            online.1,
            worst(online),
            worst(online) - worst(batch)
        ),
        (Some((i, o)), _) => format!(
            "${:.2} at pricing.input={i} and pricing.output={o} per million tokens",
            worst((i, o))
        ),
        _ => "no cost: set pricing.input and pricing.output (USD per million tokens)".into(),
    };
    let plan = if c.sampler.mode == SamplerMode::Batch {
        let per_step = per_prompt_requests / s.max_steps.get() as u64;
        let window = (c.sampler.batch.round_prompts.get() as u64).min(prompts);
        let max_requests = c.sampler.batch.limits().0 as u64;
        let first = window * per_step;
        format!(
            " Batch plan: prompts in rounds of at most {window}, each prompt in at most {} rounds; a first round of {first} requests in {} batch(es) of at most {max_requests} requests, later rounds only for the prompts still sampling.",
            s.max_steps,
            first.div_ceil(max_requests.max(1))
        )
    } else {
        String::new()
    };
    let notes = budget_notes(run, &state, requests, prompt_tokens, completion_tokens)?;
    let notes = if notes.is_empty() {
        String::new()
    } else {
        format!(" {}.", notes.join("; "))
    };
    Ok(format!(
        "dry run: {prompts} prompts to sample; at most {requests} requests, {prompt_tokens} prompt + \
         {completion_tokens} completion tokens ({responses} responses of sampler.max_tokens={} per \
         prompt at most); {cost}. Real runs spend less: early stop, and responses shorter than \
         max_tokens.{plan}{notes} The servers were checked; nothing was sampled.",
        c.sampler.max_tokens
    ))
}

/// The prompts of shards `todo` and the characters of their messages.
async fn prompts_and_chars(run: &Run, todo: &[String]) -> anyhow::Result<(u64, u64)> {
    let ctx = crate::sql::session(&run.wd).await?;
    let batches = ctx
        .sql(&format!(
            "SELECT count(*), sum(length(messages)) FROM inputs WHERE shard IN ({})",
            todo.join(", ")
        ))
        .await?
        .collect()
        .await?;
    let value = |i: usize| -> u64 {
        use arrow::array::AsArray;
        let col = arrow::compute::cast(batches[0].column(i), &arrow::datatypes::DataType::UInt64)
            .expect("counts cast");
        let col = col.as_primitive::<arrow::datatypes::UInt64Type>();
        if col.is_empty() || arrow::array::Array::is_null(col, 0) {
            0
        } else {
            col.value(0)
        }
    };
    Ok((value(0), value(1)))
}

/// What earlier runs spent, and each budget this worst case would pass.
fn budget_notes(
    run: &Run,
    state: &crate::store::RunState,
    requests: u64,
    prompt_tokens: u64,
    completion_tokens: u64,
) -> anyhow::Result<Vec<String>> {
    let c = &run.resolved.config;
    let prices = c.pricing.sampling(c.sampler.mode);
    let shards: Vec<u32> = state.shards.iter().map(|s| s.shard).collect();
    let earlier = crate::sampler::budget::saved_spent(run.wd.root(), &shards)?;
    let mut notes = Vec::new();
    if earlier.requests > 0 {
        notes.push(format!(
            "earlier runs of this work dir spent {} requests, {} prompt + {} completion tokens{}",
            earlier.requests,
            earlier.prompt_tokens,
            earlier.completion_tokens,
            prices.map_or(String::new(), |(i, o)| format!(
                ", ${:.4}",
                earlier.cost(i, o)
            ))
        ));
    }
    let worst = crate::sampler::budget::Spent {
        requests: earlier.requests + requests,
        prompt_tokens: earlier.prompt_tokens + prompt_tokens,
        completion_tokens: earlier.completion_tokens + completion_tokens,
    };
    let b = &c.budget;
    let caps = [
        (
            "budget.max_requests",
            b.max_requests.map(|m| m as f64),
            Some(worst.requests as f64),
        ),
        (
            "budget.max_completion_tokens",
            b.max_completion_tokens.map(|m| m as f64),
            Some(worst.completion_tokens as f64),
        ),
        (
            "budget.max_cost",
            b.max_cost,
            prices.map(|(i, o)| worst.cost(i, o)),
        ),
    ];
    for (key, cap, worst) in caps {
        if let (Some(cap), Some(worst)) = (cap, worst)
            && worst > cap
        {
            notes.push(format!(
                "{key}={cap} is below this worst case ({worst:.4}): the run spends up to it and stops there (exit 5) unless early stop and shorter responses keep it under"
            ));
        }
    }
    Ok(notes)
}
