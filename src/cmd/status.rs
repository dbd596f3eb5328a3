//! `rsr status`: where a work dir's sampling is, shard by shard and task
//! by task, read from `state.json`, the task files, the shards' `.owner`
//! locks and the part files' footers. Changes nothing, takes no lock.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::store::rollout::shard_parts;
use crate::store::task::{self, ShardOwner, TaskState};
use crate::store::{RunState, ShardStatus, Task, WorkDir};

/// Where sampling is: shards done, sampling and pending, per task
///
/// Reads the work dir without changing it (safe while tasks run): each
/// shard's status, the rollouts saved (part files and journals), and for runs
/// split into tasks (rsr sample --task I/N) one line per task: its shards,
/// rollouts, requests, and whether a live process is sampling them now
/// (from the shards' locks) or it stopped before finishing.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The work dir.
    pub work_dir: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// One shard.
#[derive(Debug, Serialize)]
struct Shard {
    shard: u32,
    prompts: u64,
    status: ShardStatus,
    rollouts: u64,
    /// The live process sampling it, as it described itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    sampled_by: Option<String>,
}

/// One task of a split.
#[derive(Debug, Serialize)]
struct TaskLine {
    task: String,
    shards: u64,
    done: u64,
    sampling: u64,
    pending: u64,
    prompts: u64,
    rollouts: u64,
    requests: u64,
    retries: u64,
    failed_requests: u64,
    /// `running`, `finished`, or `stopped` (a shard not done, no process
    /// on it).
    state: &'static str,
    host: String,
    pid: u32,
    updated_at: String,
}

#[derive(Debug, Serialize)]
struct Status {
    work_dir: PathBuf,
    prompts: u64,
    shards: Vec<Shard>,
    tasks: Vec<TaskLine>,
    requests: u64,
    retries: u64,
    failed_requests: u64,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let wd = WorkDir::open_prepared(&args.work_dir)?;
    let state = RunState::load(&wd.state_path())?;
    let root = wd.root();
    let mut shards = Vec::with_capacity(state.shards.len());
    for s in &state.shards {
        let mut rollouts = journaled(root, s.shard);
        for part in shard_parts(root, s.shard)? {
            rollouts += crate::store::parquet::row_count(&part)?;
        }
        shards.push(Shard {
            shard: s.shard,
            prompts: s.prompts,
            status: s.status,
            rollouts,
            sampled_by: ShardOwner::holder(root, s.shard),
        });
    }
    let tasks = task::load_all(root)?
        .iter()
        .filter_map(|t| Some(task_line(t, t.task()?, &shards)))
        .collect();
    let c = &state.counters;
    let status = Status {
        work_dir: args.work_dir.clone(),
        prompts: c.prompts,
        shards,
        tasks,
        requests: c.requests,
        retries: c.retries,
        failed_requests: c.failed_requests,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print!("{}", table(&status));
    }
    Ok(())
}

/// Rows of `shard` in journals whose part file is not written yet (a
/// running or killed sampler's latest rows): one per complete line. A
/// journal committed while it is read counts as nothing.
fn journaled(root: &std::path::Path, shard: u32) -> u64 {
    let dir = crate::store::rollout::rollout_shard_dir(root, shard);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "journal"))
        .filter(|p| !p.with_extension("parquet").exists())
        .filter_map(|p| std::fs::read(p).ok())
        .map(|bytes| bytes.iter().filter(|&&b| b == b'\n').count() as u64)
        .sum()
}

fn task_line(record: &TaskState, task: Task, shards: &[Shard]) -> TaskLine {
    let owned: Vec<&Shard> = shards.iter().filter(|s| task.owns(s.shard)).collect();
    let count = |status| owned.iter().filter(|s| s.status == status).count() as u64;
    let live = owned.iter().any(|s| {
        s.sampled_by
            .as_deref()
            .is_some_and(|h| h.starts_with(&format!("task {task} ")))
    });
    let done = count(ShardStatus::Done);
    let state = if live {
        "running"
    } else if done == owned.len() as u64 {
        "finished"
    } else {
        "stopped"
    };
    let c = &record.counters;
    TaskLine {
        task: task.to_string(),
        shards: owned.len() as u64,
        done,
        sampling: count(ShardStatus::Running),
        pending: count(ShardStatus::Pending),
        prompts: owned.iter().map(|s| s.prompts).sum(),
        rollouts: owned.iter().map(|s| s.rollouts).sum(),
        requests: c.requests,
        retries: c.retries,
        failed_requests: c.failed_requests,
        state,
        host: record.host.clone(),
        pid: record.pid,
        updated_at: record.updated_at.clone(),
    }
}

fn table(s: &Status) -> String {
    let mut by_status: BTreeMap<ShardStatus, u64> = BTreeMap::new();
    for shard in &s.shards {
        *by_status.entry(shard.status).or_default() += 1;
    }
    let n = |st| by_status.get(&st).copied().unwrap_or(0);
    let rollouts: u64 = s.shards.iter().map(|x| x.rollouts).sum();
    let mut out = format!(
        "{}: {} prompts in {} shards: {} done, {} sampling, {} pending\n\
         {rollouts} rollouts saved; {} requests ({} retries, {} failed)\n",
        s.work_dir.display(),
        s.prompts,
        s.shards.len(),
        n(ShardStatus::Done),
        n(ShardStatus::Running),
        n(ShardStatus::Pending),
        s.requests,
        s.retries,
        s.failed_requests,
    );
    if !s.tasks.is_empty() {
        out.push_str(&format!(
            "\n{:<9} {:>6} {:>5} {:>8} {:>7} {:>8} {:>9} {:>9} {:>7}  {:<11} {}\n",
            "task",
            "shards",
            "done",
            "sampling",
            "pending",
            "prompts",
            "rollouts",
            "requests",
            "failed",
            "state",
            "where, last update"
        ));
        for t in &s.tasks {
            out.push_str(&format!(
                "{:<9} {:>6} {:>5} {:>8} {:>7} {:>8} {:>9} {:>9} {:>7}  {:<11} {} pid {}, {}\n",
                t.task,
                t.shards,
                t.done,
                t.sampling,
                t.pending,
                t.prompts,
                t.rollouts,
                t.requests,
                t.failed_requests,
                t.state,
                t.host,
                t.pid,
                t.updated_at
            ));
        }
    }
    let sampling: Vec<String> = s
        .shards
        .iter()
        .filter_map(|x| {
            x.sampled_by
                .as_ref()
                .map(|h| format!("  shard {}: {h}", x.shard))
        })
        .collect();
    if !sampling.is_empty() && s.tasks.is_empty() {
        out.push_str("\nsampling now:\n");
        out.push_str(&sampling.join("\n"));
        out.push('\n');
    }
    out
}
