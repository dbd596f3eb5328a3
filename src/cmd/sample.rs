//! `rsr sample`: the rollout operator over a prepared (or to-be-prepared)
//! work dir, with the backend chosen by `sampler.*`.

use crate::pipeline;

use super::common::{ConfigArgs, finish, open_run, unfinished};

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
/// the batches.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: ConfigArgs,
}

pub async fn run(args: Args, quiet: bool) -> anyhow::Result<()> {
    let mut run = open_run(&args.config, &[])?;
    let report = pipeline::connect_prepare_sample(&mut run, quiet).await?;
    finish(&run, &report)?;
    unfinished(&run, &report)?;
    super::common::score_after_sampling(&run).await?;
    Ok(())
}
