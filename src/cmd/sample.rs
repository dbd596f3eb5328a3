//! `rsr sample`: the rollout operator over a prepared (or to-be-prepared)
//! work dir, with the backend chosen by `sampler.*`.

use anyhow::bail;

use crate::config::SamplerMode;
use crate::pipeline;
use crate::store::Task;

use super::common::{ConfigArgs, finish, open_run_as, unfinished};

/// Sample rollouts for every prompt (prepares the input first if needed)
///
/// Each prompt is sampled in steps of sampling.step_size from the
/// OpenAI-compatible server(s) at sampler.base_url, from servers rsr launches
/// (sampler.type=vllm|sglang with sampler.model_path, or sampler.launch), or
/// from saved responses (sampler.type=replay). Every response is scored
/// inline by the verifier and stored in WORK_DIR/rollout/ as it arrives; a
/// prompt stops at sampling.max_rollouts valid rollouts, at
/// sampling.max_steps, or once every formatter is satisfied. Ctrl-C saves
/// what arrived; running the same command with work_dir=WORK_DIR resumes
/// exactly where it stopped. A verifier that calls a model (llm-judge,
/// mcq-llm-as-judge, reward-model) scores the rollouts after sampling,
/// through the judge.* server, into WORK_DIR/scores/<label>/. With
/// sampler.mode=batch the requests go through the provider's batch API
/// (sampler.batch.api=openai|anthropic) at pricing.batch_discount, in
/// rounds with early stop between them; `rsr batch status WORK_DIR` shows
/// the batches. With --task I/N, N processes (a Slurm array, a Kubernetes
/// Indexed Job) sample one work dir together, task I taking the shards s
/// with s % N == I; `rsr status WORK_DIR` shows each task's progress.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: ConfigArgs,
    /// Sample only the shards of task I of N (from 0): shards I, I+N,
    /// I+2N, … Several tasks share the work dir; the first prepares it.
    /// `auto` reads SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT or
    /// JOB_COMPLETION_INDEX/JOB_COMPLETIONS.
    #[arg(long, value_name = "I/N|auto")]
    task: Option<String>,
}

pub async fn run(args: Args, quiet: bool) -> anyhow::Result<()> {
    let task = match args.task.as_deref() {
        None => None,
        Some("auto") => Some(Task::from_scheduler(|k| std::env::var(k).ok())?),
        Some(spec) => Some(Task::parse(spec)?),
    };
    let mut run = open_run_as(&args.config, &[], task)?;
    if let Some(task) = task {
        if run.resolved.config.sampler.mode == SamplerMode::Batch {
            bail!(
                "--task with sampler.mode=batch: the provider runs a batch run's requests, so one \
                 process drives it; run rsr sample without --task"
            );
        }
        tracing::info!("sampling as task {task}");
    }
    let report = pipeline::connect_prepare_sample(&mut run, quiet).await?;
    finish(&run, &report)?;
    unfinished(&run, &report)?;
    match task {
        Some(task) if run.scoring.family().scores_after_sampling() => tracing::info!(
            "task {task} sampled its shards; verifier {} scores the whole work dir after sampling: \
             once every task is done, run rsr verify {}",
            run.resolved.config.verifier.kind,
            run.wd.root().display()
        ),
        Some(_) => {}
        None => super::common::score_after_sampling(&run).await?,
    }
    Ok(())
}
