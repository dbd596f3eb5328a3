//! Judging through a provider's batch API (`judge.mode: batch`): every
//! request the saved answers lack goes out in batches (through the
//! sampler's batch transport, its ledger in `W/judge/batch/`), round by
//! round of at most `judge.batch.round_prompts` requests read shard by
//! shard, and each answer is saved as the online judge saves it. The
//! judging loop that follows then answers every rollout from the saved
//! answers; requests a batch failed are the only ones it sends.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use super::run::{JudgeContext, JudgeError, prepare};
use super::{ScoreMode, Spec};
use crate::config::Config;
use crate::sampler::batch::{BatchBackend, Ticket};
use crate::sampler::client::HttpBackend;
use crate::store::judged::{self as cache, Record, ShardWriter};
use crate::store::rollout::Validity;
use crate::store::{RunState, WorkDir};

/// What the batches answered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Prefilled {
    /// Requests the saved answers lacked.
    pub asked: u64,
    /// Answers saved.
    pub answered: u64,
    /// Requests a batch failed (the judging loop asks them online).
    pub failed: u64,
}

/// Whether `spec` can be judged through a batch API, and why not.
pub fn batchable(spec: &Spec) -> Result<(), String> {
    match spec {
        Spec::Reward { .. } => Err(
            "reward models are not served by batch APIs: set judge.mode=online for verifier reward-model"
                .into(),
        ),
        Spec::Judge {
            score: ScoreMode::Logprobs,
            ..
        } => Err(
            "verifier.options.score=logprobs reads the judge's first-token logprobs, which rsr asks online only: set judge.mode=online or score: verdict".into(),
        ),
        _ => Ok(()),
    }
}

/// Asks every judge request of `wd` its saved answers lack through the
/// judge's batch API and saves the answers.
pub async fn prefill(
    wd: &WorkDir,
    config: &Config,
    spec: &Spec,
    ctx: &JudgeContext,
) -> Result<Prefilled, JudgeError> {
    batchable(spec).map_err(JudgeError::Nothing)?;
    let root = wd.root();
    cache::recover(root, &|_| true)?;
    let state = RunState::load(&wd.state_path())?;
    let session = crate::sql::session(wd).await?;
    if !session.table_exist("rollouts")? {
        return Err(JudgeError::Nothing(format!(
            "{} has no rollouts yet: run rsr sample first",
            root.display()
        )));
    }
    // The batch transport runs on the judge as its sampler, at its prices.
    let mut batch_config = config.clone();
    batch_config.sampler = config.judge.as_sampler();
    batch_config.pricing.output = config.pricing.judge_output;
    let bodies = HttpBackend::new(
        &batch_config.sampler,
        &ctx.model,
        &[],
        Arc::new(AtomicU64::new(0)),
    )
    .map_err(|e| JudgeError::Nothing(e.to_string()))?;
    let dir = crate::store::judge_dir(root).join("batch");
    let backend = BatchBackend::open_dir(&batch_config, &dir, bodies)
        .map_err(|e| JudgeError::Nothing(format!("the judge's batch API: {e}")))?;
    backend
        .preflight()
        .await
        .map_err(|e| JudgeError::Nothing(format!("the judge's batch API: {e}")))?;
    let round_max = config.judge.batch.round_prompts.get();
    let validity = Validity {
        drop_truncated: config.sampler.drop_truncated,
    };
    let mut shards = state.shards.iter().map(|s| s.shard).peekable();
    let mut out = Prefilled::default();
    while shards.peek().is_some() {
        let mut tickets: Vec<(u32, String, Ticket)> = Vec::new();
        while tickets.len() < round_max {
            let Some(shard) = shards.next() else { break };
            let work = prepare(wd, &session, spec, ctx, shard, validity).await?;
            for (key, item) in work.into_queue().into_iter().flatten() {
                let ticket = backend.park_body(&key, item);
                tickets.push((shard, key, ticket));
            }
        }
        out.asked += tickets.len() as u64;
        tracing::debug!(
            "judge round: {} request(s), {} parked or waiting",
            tickets.len(),
            backend.pending()
        );
        let mut writers: HashMap<u32, ShardWriter> = HashMap::new();
        let result = collect(&backend, tickets, ctx, root, &mut writers, &mut out).await;
        for (_, w) in writers {
            w.commit()?;
        }
        result?;
    }
    if out.asked > 0 {
        let failed = if out.failed > 0 {
            format!(
                ", {} failed (the judging loop asks them online)",
                out.failed
            )
        } else {
            String::new()
        };
        tracing::info!(
            "judged through batches: {} request(s), {} answered{failed}",
            out.asked,
            out.answered
        );
    }
    Ok(out)
}

/// Seals rounds until every ticket is answered (requests a batch did not
/// run go into the next one) and saves each answer.
async fn collect(
    backend: &BatchBackend,
    mut tickets: Vec<(u32, String, Ticket)>,
    ctx: &JudgeContext,
    root: &std::path::Path,
    writers: &mut HashMap<u32, ShardWriter>,
    out: &mut Prefilled,
) -> Result<(), JudgeError> {
    while !tickets.is_empty() {
        backend.seal(backend.pending())?;
        let mut left = Vec::with_capacity(tickets.len());
        for (shard, key, mut ticket) in tickets {
            match ticket.try_recv() {
                Ok(Ok(g)) => {
                    let choice = g.choices.first();
                    let content = choice.and_then(|c| c.content.clone()).unwrap_or_default();
                    let raw = match choice.and_then(|c| c.reasoning.as_deref()) {
                        Some(r) => format!("<think>{r}</think>{content}"),
                        None => content,
                    };
                    let record = Record {
                        key,
                        raw,
                        prompt_tokens: g.prompt_tokens,
                        completion_tokens: choice.and_then(|c| c.completion_tokens),
                        latency_ms: g.latency_ms,
                        endpoint: g.endpoint.clone(),
                        model: ctx.model.clone(),
                        created_at: chrono::Utc::now().timestamp(),
                    };
                    let writer = match writers.entry(shard) {
                        std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                        std::collections::hash_map::Entry::Vacant(v) => {
                            v.insert(ShardWriter::open(root, shard)?)
                        }
                    };
                    writer.append(record)?;
                    out.answered += 1;
                }
                Ok(Err(f)) if f.systemic.is_some() => {
                    return Err(JudgeError::Nothing(format!(
                        "judging through batches stopped: {}. Answers received are saved; run the same command again to finish (no batch is submitted twice)",
                        f.message
                    )));
                }
                Ok(Err(f)) => {
                    tracing::debug!("judge request failed in its batch: {}", f.message);
                    out.failed += 1;
                }
                Err(tokio::sync::oneshot::error::TryRecvError::Empty) => {
                    left.push((shard, key, ticket))
                }
                Err(tokio::sync::oneshot::error::TryRecvError::Closed) => {
                    return Err(JudgeError::Nothing(
                        "the judge's batch transport stopped".into(),
                    ));
                }
            }
        }
        tickets = left;
        if !tickets.is_empty() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(())
}
