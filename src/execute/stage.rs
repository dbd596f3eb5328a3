//! `code-rlvr` as a stage of sampling ([`VerdictStage`]): each finished
//! rollout is planned ([`super::plan`]), settled at once (no code, another
//! language, no tests, a verdict saved by an earlier run) or queued for the
//! worker threads, which run programs in the sandbox
//! (`verifier.options.workers` at once, one per core by default). Verdicts
//! go to the answer cache as they arrive (journaled first), so the scores
//! written after sampling and a resumed run run nothing twice.

use std::collections::{HashMap, VecDeque};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{CodeRun, CodeSpec, Plan};
use crate::sampler::budget::{Budget, Cap};
use crate::sampler::feed::Prompt;
use crate::sampler::verdicts::{
    Rollout, StageCounters, StageEvent, StageFuture, Verdict, VerdictStage,
};
use crate::sandbox::Sandbox;
use crate::store::StoreError;
use crate::store::judged::{self as cache, OpenShards};

/// Shards whose saved verdicts are held at once.
const MAX_OPEN_SHARDS: usize = 4;

/// A program to run.
struct Job {
    shard: u32,
    key: String,
    program: String,
    gold: String,
}

/// A program's verdict.
struct Done {
    shard: u32,
    key: String,
    run: CodeRun,
    took: Duration,
}

/// The code verifier of a sampling run.
pub struct CodeStage {
    spec: Arc<CodeSpec>,
    python: String,
    jobs: Option<mpsc::Sender<Job>>,
    results: tokio::sync::mpsc::UnboundedReceiver<Done>,
    threads: Vec<std::thread::JoinHandle<()>>,
    workers: usize,
    shards: OpenShards,
    queue: VecDeque<Job>,
    waiters: HashMap<String, Vec<(u64, u32)>>,
    in_flight: usize,
    pending: usize,
    stopping: bool,
    counters: StageCounters,
}

impl CodeStage {
    /// The stage of a run in work dir `root`, running programs in
    /// `sandbox` on `spec.workers()` threads.
    pub fn new(
        wd: &crate::store::WorkDir,
        spec: &CodeSpec,
        sandbox: Sandbox,
    ) -> Result<Self, StoreError> {
        let root = wd.root();
        cache::recover(root, &|s| wd.owns(s))?;
        let workers = spec.workers();
        let spec = Arc::new(spec.clone());
        let (jobs, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let (done, results) = tokio::sync::mpsc::unbounded_channel();
        let threads = (0..workers)
            .map(|slot| {
                let (rx, done, spec, sandbox) = (
                    Arc::clone(&rx),
                    done.clone(),
                    Arc::clone(&spec),
                    sandbox.clone(),
                );
                std::thread::spawn(move || {
                    loop {
                        let job = match rx.lock().map(|r| r.recv()) {
                            Ok(Ok(job)) => job,
                            _ => break,
                        };
                        let started = Instant::now();
                        let run = super::run(&sandbox, slot as u32, &spec, &job.program, &job.gold);
                        let result = Done {
                            shard: job.shard,
                            key: job.key,
                            run,
                            took: started.elapsed(),
                        };
                        if done.send(result).is_err() {
                            break;
                        }
                    }
                })
            })
            .collect();
        Ok(Self {
            python: spec.python.clone(),
            spec,
            jobs: Some(jobs),
            results,
            threads,
            workers,
            shards: OpenShards::new(root, MAX_OPEN_SHARDS),
            queue: VecDeque::new(),
            waiters: HashMap::new(),
            in_flight: 0,
            pending: 0,
            stopping: false,
            counters: StageCounters::default(),
        })
    }

    fn on_done(&mut self, done: Done) -> StageEvent {
        self.in_flight -= 1;
        self.counters.requests += 1;
        let record = super::record(done.key.clone(), &done.run, done.took, &self.python);
        if let Some(o) = self.shards.get_mut(done.shard) {
            o.pending = o.pending.saturating_sub(1);
            // Durable before it counts.
            if let Err(e) = o.writer.append(record.clone()) {
                return StageEvent::Error(e);
            }
            o.saved.insert(record.key.clone(), record);
        }
        let score = done.run.score(self.spec.partial);
        let verdicts: Vec<Verdict> = self
            .waiters
            .remove(&done.key)
            .unwrap_or_default()
            .into_iter()
            .map(|(prompt, rollout_idx)| Verdict {
                prompt,
                rollout_idx,
                score,
            })
            .collect();
        self.pending = self.pending.saturating_sub(verdicts.len());
        self.counters.verdicts += verdicts.len() as u64;
        StageEvent::Verdicts(verdicts)
    }
}

impl VerdictStage for CodeStage {
    fn name(&self) -> &'static str {
        "code"
    }

    fn pass_score(&self) -> f64 {
        crate::store::rollout::PASS_SCORE
    }

    fn submit(
        &mut self,
        key: u64,
        prompt: &Arc<Prompt>,
        rollouts: &[Rollout<'_>],
    ) -> Result<Vec<Verdict>, StoreError> {
        let mut ready = Vec::new();
        for r in rollouts {
            let verdict = |score| Verdict {
                prompt: key,
                rollout_idx: r.rollout_idx,
                score,
            };
            let (item, program) =
                match super::plan(&self.spec, r.response, prompt.answer.as_deref()) {
                    Plan::Settled(run) => {
                        ready.push(verdict(run.score(self.spec.partial)));
                        continue;
                    }
                    Plan::Run { key, program } => (key, program),
                };
            let partial = self.spec.partial;
            let saved = self
                .shards
                .open(prompt.shard)?
                .saved
                .get(&item)
                .and_then(|r| super::read(&r.raw));
            if let Some(run) = saved {
                ready.push(verdict(run.score(partial)));
                continue;
            }
            self.pending += 1;
            match self.waiters.get_mut(&item) {
                Some(w) => w.push((key, r.rollout_idx)),
                None => {
                    self.shards.open(prompt.shard)?.pending += 1;
                    self.waiters
                        .insert(item.clone(), vec![(key, r.rollout_idx)]);
                    self.queue.push_back(Job {
                        shard: prompt.shard,
                        key: item,
                        program,
                        gold: prompt.answer.clone().unwrap_or_default(),
                    });
                }
            }
        }
        self.counters.settled += ready.len() as u64;
        self.counters.verdicts += ready.len() as u64;
        Ok(ready)
    }

    fn send(&mut self, _budget: Option<&mut Budget>) -> Option<Cap> {
        while !self.stopping && self.in_flight < self.workers {
            let Some(job) = self.queue.pop_front() else {
                break;
            };
            let Some(jobs) = &self.jobs else {
                break;
            };
            if jobs.send(job).is_err() {
                break;
            }
            self.in_flight += 1;
        }
        None
    }

    fn next(&mut self) -> StageFuture<'_> {
        Box::pin(async move {
            tokio::select! {
                Some(done) = self.results.recv() => self.on_done(done),
                _ = tokio::time::sleep(Duration::from_millis(500)) => StageEvent::Tick,
            }
        })
    }

    fn stop_after(&mut self, _grace: Duration) {
        // Programs running finish within their own time limits.
        self.stopping = true;
    }

    fn abort(&mut self) {
        self.stopping = true;
        self.queue.clear();
    }

    fn is_idle(&self) -> bool {
        self.in_flight == 0
    }

    fn pending(&self) -> usize {
        self.pending
    }

    fn counters(&self) -> StageCounters {
        StageCounters {
            in_flight: self.in_flight as u64,
            pending: self.pending as u64,
            ..self.counters
        }
    }

    fn finish(&mut self) -> Result<(), StoreError> {
        self.jobs = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        self.shards.commit_all()?;
        Ok(())
    }
}
