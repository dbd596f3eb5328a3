//! `rsr batch`: the batches of a work dir sampled through a provider's
//! batch API (`sampler.mode: batch`): their status, cancelling them, and
//! rounds exported to and imported from files run by hand.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use super::common::{ConfigArgs, finish, open_run, resolve_checked, unfinished};
use crate::config::{Config, Sources};
use crate::pipeline;
use crate::sampler::batch::api::Api;
use crate::sampler::batch::ledger::{Entry, Ledger};
use crate::store::WorkDir;

/// See, cancel, export and import a work dir's batches
///
/// `status` lists every batch of the work dir by round (local name,
/// provider id, requests, the provider's status and counts, what is on
/// disk), asking the provider about those still running. `cancel` asks the
/// provider to cancel every batch of the work dir still running; what they
/// finished is kept, and the next `rsr sample` / `rsr run` collects it and
/// asks the rest again in new batches. `export` writes the next round's
/// requests in the OpenAI batch input format (for `vllm run-batch` or a
/// provider's console); `import` reads the results back, scores them, and
/// says whether another round is needed.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Rounds, batches, the provider's status and counts
    Status {
        /// The work dir.
        work_dir: PathBuf,
    },
    /// Cancel the work dir's running batches (what finished is kept)
    Cancel {
        /// The work dir.
        work_dir: PathBuf,
    },
    /// Write the next round's requests as OpenAI batch input lines
    Export {
        /// The work dir (prepared if the config names an input).
        work_dir: PathBuf,
        /// The file to write (JSON Lines).
        #[arg(short, long, value_name = "FILE")]
        output: PathBuf,
        /// Overrides (key=value), as for `rsr sample`.
        #[arg(value_name = "KEY=VALUE")]
        overrides: Vec<String>,
    },
    /// Read a round's results (OpenAI batch output lines) and score them
    Import {
        /// The work dir the round was exported from.
        work_dir: PathBuf,
        /// The results: output lines, error lines, or both concatenated.
        results: PathBuf,
    },
}

impl Args {
    /// The work dir the command reads.
    pub fn work_dir(&self) -> &Path {
        match &self.action {
            Action::Status { work_dir }
            | Action::Cancel { work_dir }
            | Action::Export { work_dir, .. }
            | Action::Import { work_dir, .. } => work_dir,
        }
    }
}

pub async fn run(args: Args, quiet: bool) -> anyhow::Result<()> {
    match &args.action {
        Action::Status { work_dir } => status(work_dir).await,
        Action::Cancel { work_dir } => cancel(work_dir).await,
        Action::Export {
            work_dir,
            output,
            overrides,
        } => export(work_dir, output, overrides, quiet).await,
        Action::Import { work_dir, results } => import(work_dir, results, quiet).await,
    }
}

/// Samples `work_dir` through batch files until the next round: results
/// imported are taken in; the next round is written to `export_to`.
async fn through_files(
    work_dir: &Path,
    overrides: &[String],
    export_to: Option<PathBuf>,
    quiet: bool,
) -> anyhow::Result<crate::pipeline::Run> {
    let mut args = vec![format!("work_dir={}", work_dir.display())];
    args.extend(overrides.iter().cloned());
    let config_args = ConfigArgs { config: None, args };
    let mut run = open_run(&config_args, &[])?;
    // Rounds as a batch API's, whatever the work dir was sampled with.
    run.resolved.config.sampler.mode = crate::config::SamplerMode::Batch;
    pipeline::check_before_batch_files(&mut run)?;
    if !run.wd.input_path().is_file() {
        pipeline::prepare(&run).await?;
    }
    let connection = pipeline::Connection::batch_files(&run, export_to)?;
    let report = pipeline::sample(&mut run, Some(connection), quiet).await?;
    finish(&run, &report)?;
    unfinished(&run, &report)?;
    Ok(run)
}

async fn export(
    work_dir: &Path,
    output: &Path,
    overrides: &[String],
    quiet: bool,
) -> anyhow::Result<()> {
    let before = Ledger::open(work_dir).map(|l| l.batches.len()).unwrap_or(0);
    let run = through_files(work_dir, overrides, Some(output.to_path_buf()), quiet).await?;
    let ledger = Ledger::open(work_dir)?;
    match ledger.batches.values().nth(before).filter(|b| b.manual) {
        Some(b) => println!(
            "round {}: {} requests written to {} (batch {}). Run them, for example\n  \
             vllm run-batch -i {} -o results.jsonl --model {}\nthen: rsr batch import {} results.jsonl",
            b.round,
            b.requests,
            output.display(),
            b.name,
            output.display(),
            run.resolved
                .config
                .sampler
                .model
                .as_deref()
                .unwrap_or("MODEL"),
            work_dir.display()
        ),
        None => println!(
            "every prompt of {} is sampled: nothing to export; rsr run work_dir={} writes the training data",
            work_dir.display(),
            work_dir.display()
        ),
    }
    Ok(())
}

async fn import(work_dir: &Path, results: &Path, quiet: bool) -> anyhow::Result<()> {
    let mut ledger = Ledger::open(work_dir)?;
    let text = std::fs::read_to_string(results)
        .with_context(|| format!("cannot read {}", results.display()))?;
    // The custom_ids name their batch: <run_id>-<batch>-<i>.
    let mut batch: Option<String> = None;
    let mut ids = std::collections::HashSet::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let v: serde_json::Value = serde_json::from_str(line)
            .with_context(|| format!("{}:{}: not JSON", results.display(), i + 1))?;
        let Some(id) = v["custom_id"].as_str() else {
            bail!(
                "{}:{}: no custom_id: not an OpenAI batch output line",
                results.display(),
                i + 1
            );
        };
        let name = id.split('-').nth(1).unwrap_or("").to_string();
        match &batch {
            None => batch = Some(name),
            Some(b) if *b != name => bail!(
                "{}:{}: custom_id {id} is not of batch {b} like the lines before it: import one exported round per file",
                results.display(),
                i + 1
            ),
            Some(_) => {}
        }
        ids.insert(id.to_string());
    }
    let Some(name) = batch else {
        bail!("{} has no result lines", results.display());
    };
    let Some(record) = ledger.batches.get(&name).filter(|b| b.manual).cloned() else {
        bail!(
            "{}: its custom_ids name batch {name}, which {} did not export (rsr batch status {} lists its batches)",
            results.display(),
            work_dir.display(),
            work_dir.display()
        );
    };
    if record.downloaded.is_some() {
        bail!(
            "batch {name} was imported already; export the next round (rsr batch export {} -o FILE)",
            work_dir.display()
        );
    }
    let map = crate::sampler::batch::ledger::read_map(&ledger.map_path(&name))?;
    let known: std::collections::HashSet<&str> = map.iter().map(|m| m.custom_id.as_str()).collect();
    if let Some(stray) = ids.iter().find(|id| !known.contains(id.as_str())) {
        bail!(
            "{}: custom_id {stray} is not in batch {name}",
            results.display()
        );
    }
    let path = ledger.results_path(&name);
    ledger.write_file(&path, text.as_bytes())?;
    ledger.append(Entry::Downloaded {
        batch: name.clone(),
        lines: ids.len() as u64,
    })?;
    drop(ledger);
    let missing = map.len() - ids.len();
    let run = through_files(work_dir, &[], None, quiet).await?;
    let left = if pipeline::fully_sampled(&run) {
        format!(
            "every prompt is sampled: rsr run work_dir={} writes the training data",
            work_dir.display()
        )
    } else {
        format!(
            "prompts still sampling: rsr batch export {} -o next.jsonl writes the next round",
            work_dir.display()
        )
    };
    println!(
        "batch {name} (round {}): {} results of {} requests imported{}; {left}",
        record.round,
        ids.len(),
        map.len(),
        if missing > 0 {
            format!(" ({missing} without a result go into the next round)")
        } else {
            String::new()
        }
    );
    Ok(())
}

fn open(dir: &Path) -> anyhow::Result<(Config, Ledger)> {
    if !WorkDir::has_saved_config(dir) {
        bail!("{} has no config.yaml: not an rsr work dir", dir.display());
    }
    let ledger = Ledger::open(dir)?;
    if ledger.is_empty() {
        bail!(
            "{} has no batches: it was not sampled with sampler.mode=batch (or no round was submitted yet)",
            dir.display()
        );
    }
    let sources = Sources::from_process_env(None, vec![format!("work_dir={}", dir.display())]);
    let (resolved, _) = resolve_checked(&sources, &[])?;
    Ok((resolved.config, ledger))
}

async fn status(dir: &Path) -> anyhow::Result<()> {
    let (config, ledger) = open(dir)?;
    // Rounds run by hand need no API.
    let api = Api::new(&config.sampler);
    println!(
        "{:<8} {:>5} {:<32} {:>8} {:<11} {:>9} {:>7}  on disk",
        "batch", "round", "provider id", "requests", "status", "done", "failed"
    );
    let mut totals = (0u64, 0u64, 0u64);
    for b in ledger.batches.values() {
        let (mut status, mut done, mut failed) = b
            .status
            .as_ref()
            .map_or(("not created".to_string(), 0, 0), |s| {
                (s.0.clone(), s.1, s.2)
            });
        // The provider knows better about batches without results yet.
        if b.downloaded.is_none()
            && let Some(id) = &b.remote_id
        {
            match &api {
                Ok(api) => match api.get(id).await {
                    Ok(r) => (status, done, failed) = (r.status, r.completed, r.failed),
                    Err(e) => status = format!("? ({e})"),
                },
                Err(e) => status = format!("? ({e})"),
            }
        } else if b.manual && b.downloaded.is_none() {
            status = "exported".into();
        }
        let disk = match (b.downloaded, b.ingested) {
            (Some(_), true) => "results, ingested".to_string(),
            (Some(n), false) => format!("{n} result lines"),
            (None, _) => "requests".into(),
        };
        totals.0 += b.requests;
        totals.1 += done;
        totals.2 += failed;
        println!(
            "{:<8} {:>5} {:<32} {:>8} {:<11} {:>9} {:>7}  {disk}{}",
            b.name,
            b.round,
            b.remote_id.as_deref().unwrap_or("-"),
            b.requests,
            status,
            done,
            failed,
            if b.cancel_asked {
                " (cancel asked)"
            } else {
                ""
            }
        );
    }
    println!(
        "{} batch(es) in {} round(s): {} requests, {} done, {} failed",
        ledger.batches.len(),
        ledger.last_round(),
        totals.0,
        totals.1,
        totals.2
    );
    Ok(())
}

async fn cancel(dir: &Path) -> anyhow::Result<()> {
    // No run may follow the batches while their ledger is written.
    let _wd = WorkDir::open_prepared(dir)?
        .locked()
        .context("stop the run that follows these batches (Ctrl-C) first")?;
    let (config, mut ledger) = open(dir)?;
    let api = Api::new(&config.sampler).map_err(|e| anyhow::anyhow!("{e}"))?;
    let running: Vec<(String, String)> = ledger
        .batches
        .values()
        .filter(|b| b.downloaded.is_none())
        .filter_map(|b| b.remote_id.clone().map(|id| (b.name.clone(), id)))
        .collect();
    if running.is_empty() {
        println!(
            "no batch of {} is running: nothing to cancel",
            dir.display()
        );
        return Ok(());
    }
    for (name, id) in &running {
        let r = api.cancel(id).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        ledger.append(Entry::CancelAsked {
            batch: name.clone(),
        })?;
        println!("{name} ({id}): {}", r.status);
    }
    println!(
        "cancel asked for {} batch(es); what they finished is kept: rsr sample work_dir={} collects it and asks the rest again",
        running.len(),
        dir.display()
    );
    Ok(())
}
