//! Scores every saved rollout of a work dir with `code-rlvr` into
//! `scores/<label>/shard_NNNN.parquet`: the verdicts saved in the answer
//! cache are read back (those of the sampling run's stage, or of an earlier
//! `rsr verify`), the other programs run in the sandbox on every worker,
//! each verdict journaled as it arrives. The columns beyond the rule
//! verifiers' five: `outcome`, `tests_passed`, `tests_total`, `statuses`
//! (`AC WA TLE …` in the tests' order), `detail` (what explains the first
//! test that did not pass), `tests` (every test's status and detail, as a
//! JSON list) and `run_ms`.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray, UInt32Array, UInt64Array};
use arrow::datatypes::{DataType, Field, SchemaRef};
use futures::StreamExt;

use super::{CodeOutcome, CodeRun, CodeSpec, Plan};
use crate::config::Config;
use crate::sandbox::Sandbox;
use crate::sql::columns::{u32s, utf8};
use crate::store::judged::{self as cache, ShardWriter};
use crate::store::parquet::ParquetFile;
use crate::store::rollout;
use crate::store::{RunState, StoreError, WorkDir};

/// What a scoring run did.
#[derive(Debug, Clone, Default)]
pub struct CodeReport {
    /// Rollouts given a verdict row.
    pub scored: u64,
    /// Of those, passing (score 1, or all tests with `partial`).
    pub passed: u64,
    /// Rollouts by outcome.
    pub outcomes: BTreeMap<&'static str, u64>,
    /// Test statuses over every tested rollout.
    pub statuses: BTreeMap<String, u64>,
    /// Programs run now.
    pub runs: u64,
    /// Programs whose verdict was saved already.
    pub cached: u64,
    /// Shards written.
    pub shards: u64,
    /// Wall time of the runs.
    pub running: std::time::Duration,
}

/// The scores columns of `code-rlvr`.
pub fn code_score_schema() -> SchemaRef {
    rollout::score_schema_with([
        Field::new("outcome", DataType::Utf8, true),
        Field::new("tests_passed", DataType::UInt32, true),
        Field::new("tests_total", DataType::UInt32, true),
        Field::new("statuses", DataType::Utf8, true),
        Field::new("detail", DataType::Utf8, true),
        Field::new("tests", DataType::Utf8, true),
        Field::new("run_ms", DataType::UInt64, true),
    ])
}

struct Row {
    id: String,
    rollout_idx: u32,
    plan: Plan,
}

/// Scores the saved rollouts of `wd` with `spec` in `sandbox` under the
/// label of `config.verifier`.
pub async fn score(
    wd: &WorkDir,
    config: &Config,
    spec: &CodeSpec,
    sandbox: &Sandbox,
) -> Result<CodeReport, crate::judge::JudgeError> {
    cache::recover(wd.root(), &|_| true)?;
    let label = config.verifier.label().to_string();
    let state = RunState::load(&wd.state_path())?;
    let session = crate::sql::session(wd).await?;
    let mut report = CodeReport::default();
    if !session.table_exist("rollouts")? {
        return Err(crate::judge::JudgeError::Nothing(format!(
            "{} has no rollouts yet: run rsr sample first",
            wd.root().display()
        )));
    }
    for s in &state.shards {
        let rows = read_shard(&session, spec, s.shard).await?;
        let mut saved = cache::load(wd.root(), s.shard)?;
        let mut todo: Vec<(String, String, String)> = Vec::new();
        let mut seen = HashSet::new();
        for r in &rows {
            if let Plan::Run { key, program } = r.plan()
                && seen.insert(key.clone())
            {
                if saved.contains_key(key) {
                    report.cached += 1;
                } else {
                    todo.push((key.clone(), program.clone(), r.gold.clone()));
                }
            }
        }
        let started = Instant::now();
        let writer = Mutex::new(ShardWriter::open(wd.root(), s.shard)?);
        for record in run_all(sandbox, spec, todo, &writer)? {
            saved.insert(record.key.clone(), record);
            report.runs += 1;
        }
        writer.into_inner().expect("no worker panicked").commit()?;
        report.running += started.elapsed();
        write_shard(wd, &label, spec, s.shard, &rows, &saved, &mut report)?;
        report.shards += 1;
    }
    let mut record = serde_json::json!({
        "type": config.verifier.kind,
        "options": config.verifier.options,
    });
    rollout::ScoreMeaning::BINARY.record(&mut record);
    rollout::write_scores_record(wd.root(), &label, &record)?;
    Ok(report)
}

/// A shard's rollouts with their plans and golds.
async fn read_shard(
    session: &datafusion::prelude::SessionContext,
    spec: &CodeSpec,
    shard: u32,
) -> Result<Vec<RowPlan>, crate::judge::JudgeError> {
    let query = format!(
        "SELECT r.id, r.rollout_idx, r.response, i.answer \
         FROM rollouts r JOIN inputs i ON r.id = i.id \
         WHERE i.shard = {shard} AND r.error IS NULL ORDER BY r.id, r.rollout_idx"
    );
    let mut stream = session.sql(&query).await?.execute_stream().await?;
    let mut out = Vec::new();
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        let (id, response, answer) = (
            utf8(&batch, "id")?,
            utf8(&batch, "response")?,
            utf8(&batch, "answer")?,
        );
        let idx = u32s(&batch, "rollout_idx")?;
        use arrow::array::Array;
        for i in 0..batch.num_rows() {
            let response = response.is_valid(i).then(|| response.value(i));
            let gold = answer.is_valid(i).then(|| answer.value(i));
            out.push(RowPlan {
                row: Row {
                    id: id.value(i).to_string(),
                    rollout_idx: idx.value(i),
                    plan: super::plan(spec, response, gold),
                },
                gold: gold.unwrap_or_default().to_string(),
            });
        }
    }
    Ok(out)
}

/// A row, its plan, and its prompt's gold.
struct RowPlan {
    row: Row,
    gold: String,
}

impl RowPlan {
    fn plan(&self) -> &Plan {
        &self.row.plan
    }
}

/// Runs the programs on `spec.workers()` threads, each verdict journaled
/// in `writer` as it arrives (a killed run keeps those); their records.
fn run_all(
    sandbox: &Sandbox,
    spec: &CodeSpec,
    todo: Vec<(String, String, String)>,
    writer: &Mutex<ShardWriter>,
) -> Result<Vec<crate::store::judged::Record>, StoreError> {
    let queue = Mutex::new(VecDeque::from(todo));
    let out = Mutex::new(Vec::new());
    let failed = Mutex::new(None);
    std::thread::scope(|s| {
        for slot in 0..spec.workers() {
            let (queue, out, failed) = (&queue, &out, &failed);
            s.spawn(move || {
                while let Some((key, program, gold)) =
                    queue.lock().ok().and_then(|mut q| q.pop_front())
                {
                    let started = Instant::now();
                    let run = super::run(sandbox, slot as u32, spec, &program, &gold);
                    let record = super::record(key, &run, started.elapsed(), &spec.python);
                    let appended = writer
                        .lock()
                        .map_err(|_| StoreError::Io {
                            path: Default::default(),
                            source: std::io::Error::other("a worker panicked"),
                        })
                        .and_then(|mut w| w.append(record.clone()));
                    match appended {
                        Ok(()) => out.lock().expect("no worker panicked").push(record),
                        Err(e) => {
                            *failed.lock().expect("no worker panicked") = Some(e);
                            break;
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = failed.into_inner().expect("no worker panicked") {
        return Err(e);
    }
    Ok(out.into_inner().expect("no worker panicked"))
}

fn write_shard(
    wd: &WorkDir,
    label: &str,
    spec: &CodeSpec,
    shard: u32,
    rows: &[RowPlan],
    saved: &HashMap<String, crate::store::judged::Record>,
    report: &mut CodeReport,
) -> Result<(), StoreError> {
    let n = rows.len();
    let mut score = Vec::with_capacity(n);
    let mut pred = Vec::with_capacity(n);
    let mut outcome = Vec::with_capacity(n);
    let (mut passed, mut total, mut statuses, mut detail, mut tests, mut ms) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    for r in rows {
        let (run, took): (CodeRun, Option<u64>) = match r.plan() {
            Plan::Settled(run) => (run.clone(), None),
            Plan::Run { key, .. } => match saved
                .get(key)
                .and_then(|rec| super::read(&rec.raw).map(|run| (run, rec.latency_ms)))
            {
                Some((run, ms)) => (run, Some(ms)),
                None => (
                    CodeRun {
                        outcome: CodeOutcome::Failed,
                        tests: Vec::new(),
                        note: "no verdict saved".into(),
                    },
                    None,
                ),
            },
        };
        let s = run.score(spec.partial);
        report.scored += 1;
        report.passed += u64::from(s.is_some_and(|s| s >= rollout::PASS_SCORE));
        *report.outcomes.entry(run.outcome.name()).or_default() += 1;
        for t in &run.tests {
            *report.statuses.entry(t.status.clone()).or_default() += 1;
        }
        let tested = run.outcome == CodeOutcome::Tested;
        score.push(s);
        pred.push(run.pred());
        outcome.push(run.outcome.name());
        passed.push(tested.then_some(run.passed() as u32));
        total.push(tested.then_some(run.tests.len() as u32));
        statuses.push(tested.then(|| {
            run.tests
                .iter()
                .map(|t| t.status.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        }));
        detail.push(
            run.tests
                .iter()
                .find(|t| t.status != "AC")
                .map(|t| t.detail.clone())
                .or_else(|| (!run.note.is_empty()).then(|| run.note.clone())),
        );
        tests.push(tested.then(|| serde_json::to_string(&run.tests).expect("results serialize")));
        ms.push(took);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.row.id.as_str()),
        )),
        Arc::new(UInt32Array::from_iter_values(
            rows.iter().map(|r| r.row.rollout_idx),
        )),
        Arc::new(Float64Array::from(score)),
        Arc::new(StringArray::from(pred)),
        Arc::new(StringArray::from(vec![label; n])),
        Arc::new(StringArray::from(outcome)),
        Arc::new(UInt32Array::from(passed)),
        Arc::new(UInt32Array::from(total)),
        Arc::new(StringArray::from(statuses)),
        Arc::new(StringArray::from(detail)),
        Arc::new(StringArray::from(tests)),
        Arc::new(UInt64Array::from(ms)),
    ];
    let batch =
        RecordBatch::try_new(code_score_schema(), columns).map_err(|e| StoreError::Corrupt {
            path: rollout::score_path(wd.root(), label, shard),
            message: e.to_string(),
        })?;
    let mut file = ParquetFile::create(
        &rollout::score_path(wd.root(), label, shard),
        code_score_schema(),
    )?;
    file.write(&batch)?;
    file.commit()?;
    Ok(())
}
