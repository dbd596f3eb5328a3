//! `rsr batch`: the batches of a work dir sampled through a provider's
//! batch API (`sampler.mode: batch`): their status, and cancelling them.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use super::common::resolve_checked;
use crate::config::{Config, Sources};
use crate::sampler::batch::api::Api;
use crate::sampler::batch::ledger::{Entry, Ledger};
use crate::store::WorkDir;

/// See and cancel a work dir's provider batches
///
/// `status` lists every batch of the work dir by round (local name,
/// provider id, requests, the provider's status and counts, what is on
/// disk), asking the provider about those still running. `cancel` asks the
/// provider to cancel every batch of the work dir still running; what they
/// finished is kept, and the next `rsr sample` / `rsr run` collects it and
/// asks the rest again in new batches.
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
}

impl Args {
    /// The work dir the command reads.
    pub fn work_dir(&self) -> &Path {
        match &self.action {
            Action::Status { work_dir } | Action::Cancel { work_dir } => work_dir,
        }
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    match &args.action {
        Action::Status { work_dir } => status(work_dir).await,
        Action::Cancel { work_dir } => cancel(work_dir).await,
    }
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
    let api = Api::new(&config.sampler).map_err(|e| anyhow::anyhow!("{e}"))?;
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
            match api.get(id).await {
                Ok(r) => (status, done, failed) = (r.status, r.completed, r.failed),
                Err(e) => status = format!("? ({e})"),
            }
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
