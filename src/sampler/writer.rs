//! The rollout writer: decides when the sampler's rows reach the store.
//! The files themselves are the store's ([`crate::store::parts`],
//! [`crate::store::journal`], [`crate::store::RunState`]).
//!
//! Rows are appended to their shard's journal by the scheduler itself
//! ([`Sink::rows`]), before it sends its next request: a `kill -9` then
//! costs only the requests in flight, however slow the part files are to
//! write. The rows are buffered; a buffer becomes a new part file
//! (`rollout/shard_NNNN/part-NNNNNN.parquet`, atomic rename, then its
//! journal is removed) on the writer thread when it holds `flush_rows`
//! rows or its oldest row is `flush_seconds` old. When the last prompt of
//! a shard is done, the shard's inline verdicts are written as
//! `scores/<label>/shard_NNNN.parquet` and `state.json` marks it `done`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::SampleError;
use crate::store::journal::Journal;
pub use crate::store::parts::RolloutRow;
use crate::store::parts::{write_inline_scores, write_part};
use crate::store::rollout::{part_number, rollout_part_path, rollout_shard_dir, shard_parts};
use crate::store::{RunState, ShardStatus, StateFile, StoreError};

/// What the scheduler tells the writer thread.
#[derive(Debug)]
pub enum WriterMsg {
    /// The first rows of `shard` in this run reached its journal.
    Opened(u32),
    /// A full buffer, to be written as its part file.
    Sealed(Sealed),
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
    /// Where shard statuses and guards are recorded (`state.json`, or a
    /// task's file).
    pub state: StateFile,
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

/// Rows of one shard that are journaled but not yet in a part file.
#[derive(Debug)]
struct ShardBuffer {
    rows: Vec<RolloutRow>,
    /// The journal of the part file `next_part`, once a row arrived.
    journal: Option<Journal>,
    oldest: Option<Instant>,
    next_part: u32,
}

/// A buffer taken for writing: its rows, the part file they become and
/// the journal to remove once it is committed.
#[derive(Debug)]
pub struct Sealed {
    part: PathBuf,
    rows: Vec<RolloutRow>,
    journal: Option<Journal>,
}

impl Sealed {
    /// Writes the part file (atomic rename), then removes its journal.
    fn commit(self) -> Result<u64, StoreError> {
        if self.rows.is_empty() {
            return Ok(0);
        }
        write_part(&self.part, &self.rows)?;
        if let Some(journal) = self.journal {
            journal.remove()?;
        }
        tracing::trace!("wrote {} rows to {}", self.rows.len(), self.part.display());
        Ok(1)
    }
}

/// The buffers of every shard with rows not yet in a part file, shared by
/// the scheduler (which adds) and the writer thread (which seals).
#[derive(Debug)]
struct Buffers {
    root: PathBuf,
    flush_rows: usize,
    shards: HashMap<u32, ShardBuffer>,
}

impl Buffers {
    /// Journals `rows` and buffers them; says whether the shard was opened
    /// by this call, and hands back the buffer when it is full.
    fn add(
        &mut self,
        shard: u32,
        rows: Vec<RolloutRow>,
    ) -> Result<(bool, Option<Sealed>), StoreError> {
        let opened = !self.shards.contains_key(&shard);
        if opened {
            let parts = shard_parts(&self.root, shard).map_err(|source| StoreError::Io {
                path: rollout_shard_dir(&self.root, shard),
                source,
            })?;
            let next_part = parts
                .iter()
                .filter_map(|p| part_number(p))
                .max()
                .map_or(0, |n| n + 1);
            self.shards.insert(
                shard,
                ShardBuffer {
                    rows: Vec::new(),
                    journal: None,
                    oldest: None,
                    next_part,
                },
            );
        }
        let root = &self.root;
        let buf = self.shards.get_mut(&shard).expect("inserted above");
        if buf.journal.is_none() {
            buf.journal = Some(Journal::open(&rollout_part_path(
                root,
                shard,
                buf.next_part,
            ))?);
        }
        buf.journal.as_mut().expect("opened above").append(&rows)?;
        buf.oldest.get_or_insert_with(Instant::now);
        buf.rows.extend(rows);
        let full = buf.rows.len() >= self.flush_rows;
        Ok((opened, full.then(|| seal(root, shard, buf))))
    }

    /// Takes the shard's buffer and forgets the shard (its last prompt is
    /// done).
    fn finish(&mut self, shard: u32) -> Option<Sealed> {
        let mut buf = self.shards.remove(&shard)?;
        Some(seal(&self.root, shard, &mut buf))
    }

    /// Takes every buffer whose oldest row is at least `age` old.
    fn seal_aged(&mut self, now: Instant, age: Duration) -> Vec<Sealed> {
        let root = &self.root;
        self.shards
            .iter_mut()
            .filter(|(_, b)| b.oldest.is_some_and(|t| now.duration_since(t) >= age))
            .map(|(&shard, buf)| seal(root, shard, buf))
            .collect()
    }

    /// Takes every buffer (the run ends).
    fn seal_all(&mut self) -> Vec<Sealed> {
        let root = &self.root;
        self.shards
            .iter_mut()
            .map(|(&shard, buf)| seal(root, shard, buf))
            .collect()
    }
}

/// Takes `buf`'s rows and journal as the part file `next_part`; the next
/// rows go to the part after it.
fn seal(root: &std::path::Path, shard: u32, buf: &mut ShardBuffer) -> Sealed {
    buf.oldest = None;
    let sealed = Sealed {
        part: rollout_part_path(root, shard, buf.next_part),
        rows: std::mem::take(&mut buf.rows),
        journal: buf.journal.take(),
    };
    if !sealed.rows.is_empty() {
        buf.next_part += 1;
    }
    sealed
}

/// The scheduler's side of the writer.
#[derive(Debug)]
pub struct Sink {
    tx: SyncSender<WriterMsg>,
    buffers: Arc<Mutex<Buffers>>,
}

impl Sink {
    /// Appends `rows` of `shard` to its journal (durable against a killed
    /// process when this returns) and buffers them for the writer.
    pub fn rows(&self, shard: u32, rows: Vec<RolloutRow>) -> Result<(), SampleError> {
        let (opened, sealed) = lock(&self.buffers).add(shard, rows)?;
        if opened {
            self.send(WriterMsg::Opened(shard))?;
        }
        match sealed {
            Some(s) => self.send(WriterMsg::Sealed(s)),
            None => Ok(()),
        }
    }

    /// Sends `msg` to the writer thread, in order with the rows before it.
    pub fn send(&self, msg: WriterMsg) -> Result<(), SampleError> {
        self.tx.send(msg).map_err(|_| SampleError::WriterStopped)
    }
}

fn lock(buffers: &Mutex<Buffers>) -> MutexGuard<'_, Buffers> {
    // A panic while holding the lock leaves whole rows behind: keep going.
    buffers.lock().unwrap_or_else(|p| p.into_inner())
}

/// Starts the writer thread; it runs until the [`Sink`] is dropped, then
/// writes every buffer. `remaining` is the number of prompts not yet done
/// per shard.
pub fn start(
    cfg: WriterConfig,
    state: RunState,
    remaining: HashMap<u32, u64>,
) -> (Sink, JoinHandle<Result<WriterReport, StoreError>>) {
    let (tx, rx) = std::sync::mpsc::sync_channel::<WriterMsg>(4096);
    let buffers = Arc::new(Mutex::new(Buffers {
        root: cfg.root.clone(),
        flush_rows: cfg.flush_rows,
        shards: HashMap::new(),
    }));
    let shared = Arc::clone(&buffers);
    let handle = std::thread::Builder::new()
        .name("rsr-writer".into())
        .spawn(move || run(cfg, state, remaining, rx, &shared))
        .expect("spawn writer thread");
    (Sink { tx, buffers }, handle)
}

fn run(
    cfg: WriterConfig,
    mut state: RunState,
    mut remaining: HashMap<u32, u64>,
    rx: Receiver<WriterMsg>,
    buffers: &Mutex<Buffers>,
) -> Result<WriterReport, StoreError> {
    let mut report = WriterReport::default();
    let mut running = std::collections::HashSet::new();
    let mut set_running = |state: &mut RunState, shard: u32| {
        if running.insert(shard) {
            cfg.state.set_status(state, shard, ShardStatus::Running)
        } else {
            Ok(())
        }
    };
    let tick = cfg.flush_after.min(Duration::from_millis(200));
    loop {
        let msg = match rx.recv_timeout(tick) {
            Ok(m) => Some(m),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        match msg {
            Some(WriterMsg::Opened(shard)) => set_running(&mut state, shard)?,
            Some(WriterMsg::Sealed(sealed)) => report.parts += sealed.commit()?,
            Some(WriterMsg::Guard(name, record)) => {
                state.guards.insert(name.to_string(), record);
                cfg.state.save(&mut state)?;
            }
            Some(WriterMsg::PromptDone(shard)) => {
                set_running(&mut state, shard)?;
                let left = remaining.entry(shard).or_insert(0);
                *left = left.saturating_sub(1);
                if *left == 0 {
                    let sealed = lock(buffers).finish(shard);
                    if let Some(sealed) = sealed {
                        report.parts += sealed.commit()?;
                    }
                    if let Some(label) = &cfg.label {
                        write_inline_scores(&cfg.root, label, shard)?;
                    }
                    cfg.state.set_status(&mut state, shard, ShardStatus::Done)?;
                    tracing::debug!("shard {shard} done");
                }
            }
            None => {}
        }
        let aged = lock(buffers).seal_aged(Instant::now(), cfg.flush_after);
        for sealed in aged {
            report.parts += sealed.commit()?;
        }
    }
    let rest = lock(buffers).seal_all();
    for sealed in rest {
        report.parts += sealed.commit()?;
    }
    Ok(report)
}
