//! The rollout writer: a thread that decides when the sampler's rows reach
//! the store. The files themselves are the store's ([`crate::store::parts`],
//! [`crate::store::journal`], [`crate::store::RunState`]).
//!
//! Rows arrive per shard, are appended to the shard's journal at once
//! (durable before they count) and buffered; a buffer becomes a new part
//! file (`rollout/shard_NNNN/part-NNNNNN.parquet`, atomic rename, then its
//! journal is removed) when it holds `flush_rows` rows or its oldest row is
//! `flush_seconds` old. When the last prompt of a shard is done, the
//! shard's inline verdicts are written as `scores/<label>/shard_NNNN.parquet`
//! and `state.json` marks it `done`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use crate::store::journal::Journal;
pub use crate::store::parts::RolloutRow;
use crate::store::parts::{write_inline_scores, write_part};
use crate::store::rollout::{part_number, rollout_part_path, shard_parts};
use crate::store::{RunState, ShardStatus, StoreError};

/// What the scheduler tells the writer.
#[derive(Debug)]
pub enum WriterMsg {
    /// Finished rollouts of one prompt of `shard`.
    Rows(u32, Vec<RolloutRow>),
    /// One prompt of `shard` needs nothing more.
    PromptDone(u32),
    /// A guard's window filled: its figures for `state.json`.
    Guard(&'static str, crate::store::state::GuardRecord),
}

/// Where and how the writer writes.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// Work dir root.
    pub root: PathBuf,
    /// `state.json`.
    pub state_path: PathBuf,
    /// Label of `scores/<label>/` for the inline verdicts; `None` when a
    /// model verifier scores after sampling (its own step writes there).
    pub label: Option<String>,
    /// Rows per part file at most.
    pub flush_rows: usize,
    /// Age after which buffered rows are written.
    pub flush_after: Duration,
}

/// Totals of one writer run.
#[derive(Debug, Default, Clone, Copy)]
pub struct WriterReport {
    /// Part files written.
    pub parts: u64,
}

struct ShardBuffer {
    rows: Vec<RolloutRow>,
    /// The journal of the part file `next_part`, once a row arrived.
    journal: Option<Journal>,
    oldest: Option<Instant>,
    next_part: u32,
    remaining: u64,
}

/// Runs the writer until the sender side is dropped, then flushes every
/// buffer. `remaining` is the number of prompts not yet done per shard.
pub fn run(
    cfg: WriterConfig,
    mut state: RunState,
    remaining: HashMap<u32, u64>,
    rx: Receiver<WriterMsg>,
) -> Result<WriterReport, StoreError> {
    let mut report = WriterReport::default();
    let mut shards: HashMap<u32, ShardBuffer> = HashMap::new();
    let tick = cfg.flush_after.min(Duration::from_millis(200));
    loop {
        let msg = match rx.recv_timeout(tick) {
            Ok(m) => Some(m),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        match msg {
            Some(WriterMsg::Rows(shard, rows)) => {
                let buf = open_shard(&cfg, &mut state, &remaining, &mut shards, shard)?;
                if buf.journal.is_none() {
                    let part = rollout_part_path(&cfg.root, shard, buf.next_part);
                    buf.journal = Some(Journal::open(&part)?);
                }
                buf.journal.as_mut().expect("opened above").append(&rows)?;
                buf.oldest.get_or_insert_with(Instant::now);
                buf.rows.extend(rows);
                if buf.rows.len() >= cfg.flush_rows {
                    report.parts += flush(&cfg, shard, buf)?;
                }
            }
            Some(WriterMsg::Guard(name, record)) => {
                state.guards.insert(name.to_string(), record);
                state.save(&cfg.state_path)?;
            }
            Some(WriterMsg::PromptDone(shard)) => {
                let buf = open_shard(&cfg, &mut state, &remaining, &mut shards, shard)?;
                buf.remaining = buf.remaining.saturating_sub(1);
                if buf.remaining == 0 {
                    report.parts += flush(&cfg, shard, buf)?;
                    shards.remove(&shard);
                    if let Some(label) = &cfg.label {
                        write_inline_scores(&cfg.root, label, shard)?;
                    }
                    state.set_status(&cfg.state_path, shard, ShardStatus::Done)?;
                    tracing::debug!("shard {shard} done");
                }
            }
            None => {}
        }
        let now = Instant::now();
        for (&shard, buf) in shards.iter_mut() {
            if buf
                .oldest
                .is_some_and(|t| now.duration_since(t) >= cfg.flush_after)
            {
                report.parts += flush(&cfg, shard, buf)?;
            }
        }
    }
    for (&shard, buf) in shards.iter_mut() {
        report.parts += flush(&cfg, shard, buf)?;
    }
    Ok(report)
}

fn open_shard<'a>(
    cfg: &WriterConfig,
    state: &mut RunState,
    remaining: &HashMap<u32, u64>,
    shards: &'a mut HashMap<u32, ShardBuffer>,
    shard: u32,
) -> Result<&'a mut ShardBuffer, StoreError> {
    if let std::collections::hash_map::Entry::Vacant(slot) = shards.entry(shard) {
        let parts = shard_parts(&cfg.root, shard).map_err(|source| StoreError::Io {
            path: crate::store::rollout::rollout_shard_dir(&cfg.root, shard),
            source,
        })?;
        let next_part = parts
            .iter()
            .filter_map(|p| part_number(p))
            .max()
            .map_or(0, |n| n + 1);
        slot.insert(ShardBuffer {
            rows: Vec::new(),
            journal: None,
            oldest: None,
            next_part,
            remaining: remaining.get(&shard).copied().unwrap_or(0),
        });
        state.set_status(&cfg.state_path, shard, ShardStatus::Running)?;
    }
    Ok(shards.get_mut(&shard).expect("inserted above"))
}

/// Writes the buffered rows as the shard's next part file; returns the
/// number of files written (0 or 1).
fn flush(cfg: &WriterConfig, shard: u32, buf: &mut ShardBuffer) -> Result<u64, StoreError> {
    buf.oldest = None;
    if buf.rows.is_empty() {
        return Ok(0);
    }
    let path = rollout_part_path(&cfg.root, shard, buf.next_part);
    write_part(&path, &buf.rows)?;
    if let Some(journal) = buf.journal.take() {
        journal.remove()?;
    }
    tracing::trace!("wrote {} rows to {}", buf.rows.len(), path.display());
    buf.rows.clear();
    buf.next_part += 1;
    Ok(1)
}
