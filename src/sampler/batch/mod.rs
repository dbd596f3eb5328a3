//! Sampling through a provider's batch API (`sampler.mode: batch`).
//!
//! The scheduler runs as it does online, and its requests are *parked*
//! here instead of sent ([`BatchBackend::park`]). When the scheduler can
//! send nothing more and every finished request has been taken in
//! ([`BatchBackend::seal`]), the parked requests are a round: the next step
//! of every prompt still sampling. The driver task splits a round into
//! batches under the API's limits and takes each through the steps in
//! [`ledger`], every one on disk before the next: request file, intent,
//! upload, create, status changes, results, ingestion. Early stop is thus
//! decided between rounds by the same policy as between steps online, and
//! the rows, scores and statistics are an online run's.
//!
//! On resume the ledger says where each batch stopped: a request file not
//! known to be uploaded is looked for among the provider's files, a batch
//! not known to be created is looked for among its batches (OpenAI by the
//! metadata rsr gave it, Anthropic by its request count and time), results
//! on disk are used as they are. The scheduler asks again for exactly the
//! requests the saved rows lack; those a batch already holds wait for it,
//! so no batch is submitted and no request paid for twice. Requests a batch
//! did not run (it expired or was cancelled) go into the next round; failed
//! ones follow the retry rules of online requests.

pub mod api;
pub mod ledger;
pub mod lines;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::sync::{mpsc, oneshot};

use super::Generation;
use super::client::{HttpBackend, RequestFailure};
use super::feed::Prompt;
use crate::config::{BatchApi, Config};
use crate::store::StoreError;
use api::{Api, ApiError, Remote};
use ledger::{Entry, Ledger, MapLine};
use lines::Outcome;

/// What a parked request is answered with.
pub type Reply = Result<Generation, RequestFailure>;

/// A parked request's answer, when its batch has ended.
pub type Ticket = oneshot::Receiver<Reply>;

/// A request's identity across runs: its prompt and the rollouts it asks.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    id: String,
    rollouts: Vec<(u32, u32)>,
}

/// A request waiting for a round or for its batch.
struct Parked {
    key: Key,
    body: String,
    tx: oneshot::Sender<Reply>,
}

/// What the scheduler and the driver share.
#[derive(Default)]
struct Shared {
    /// The next round.
    parked: Vec<Parked>,
    /// Requests a batch in flight holds, waiting for it.
    waiting: HashMap<Key, Parked>,
    /// Requests of batches in flight, by key: the batch's name.
    remote: HashMap<Key, String>,
    /// Results on disk that no request has claimed yet.
    ready: HashMap<Key, (Outcome, String)>,
    /// Batches submitted whose results are not in.
    open: usize,
    /// Batches whose results were handed out, to mark ingested once the
    /// scheduler has taken them in.
    dispatched: Vec<String>,
    /// Why the driver stopped, when it did.
    failed: Option<RequestFailure>,
}

/// Messages to the driver.
enum ToDriver {
    Round(Vec<Parked>),
    Ingested(Vec<String>),
}

/// The batch transport: parks the scheduler's requests and hands them to
/// the driver task round by round.
pub struct BatchBackend {
    shared: Arc<Mutex<Shared>>,
    bodies: HttpBackend,
    mode: Mode,
}

/// Where rounds go.
enum Mode {
    /// A provider's API, followed by the driver task.
    Provider {
        to_driver: mpsc::UnboundedSender<ToDriver>,
        client: Api,
    },
    /// Files run by hand (`rsr batch export` / `import`): the run pauses
    /// at the next round, written to `export_to` when given.
    Files {
        ledger: Mutex<Ledger>,
        run_id: String,
        export_to: Option<PathBuf>,
    },
}

/// What [`BatchBackend::seal`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sealed {
    /// No round yet (or none left).
    Nothing,
    /// A round went to the provider.
    Round,
    /// The next round is written to a file (or, importing, not needed):
    /// the run pauses here.
    Pause,
}

impl std::fmt::Debug for BatchBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchBackend").finish_non_exhaustive()
    }
}

/// Settings of the driver from the config.
#[derive(Debug, Clone)]
struct Settings {
    max_requests: usize,
    max_bytes: u64,
    completion_window: String,
    poll: Duration,
    max_tokens: u32,
    /// Worst-case USD of a request's completion at batch prices, per token.
    output_price: Option<f64>,
}

impl BatchBackend {
    /// Opens the ledger of `root`, starts the driver (resuming what the
    /// ledger left unfinished) and returns the backend. `bodies` builds the
    /// request bodies (seeded per request when `sampler.seed` is set).
    pub fn open(
        config: &Config,
        root: &std::path::Path,
        bodies: HttpBackend,
    ) -> Result<Self, BatchError> {
        Self::open_dir(config, &ledger::ledger_dir(root), bodies)
    }

    /// [`BatchBackend::open`] with the ledger in `dir`, for `config.sampler`
    /// (the judge's batches run on a copy whose sampler is the judge).
    pub fn open_dir(
        config: &Config,
        dir: &std::path::Path,
        bodies: HttpBackend,
    ) -> Result<Self, BatchError> {
        let s = &config.sampler;
        let api = Api::new(s).map_err(BatchError::Api)?;
        let (max_requests, max_bytes) = s.batch.limits();
        let settings = Settings {
            max_requests,
            max_bytes,
            completion_window: s.batch.completion_window.clone(),
            poll: Duration::from_secs_f64(s.batch.poll_interval.max(0.01)),
            max_tokens: s.max_tokens.get(),
            output_price: config
                .pricing
                .output
                .map(|p| p * config.pricing.batch_discount / 1e6),
        };
        let mut ledger = Ledger::open_dir(dir)?;
        let run_id = ledger.run_id()?;
        let shared = Arc::new(Mutex::new(Shared::default()));
        let (tx, rx) = mpsc::unbounded_channel();
        let client = api.clone();
        let driver = Driver {
            endpoint: format!("{} batch", api.base()),
            api,
            ledger,
            run_id,
            shared: Arc::clone(&shared),
            settings,
            open: Vec::new(),
        };
        load(
            &driver.ledger,
            &shared,
            s.max_tokens.get(),
            Some(driver.api.base()),
        )?;
        tokio::spawn(driver.run(rx));
        Ok(Self {
            shared,
            bodies,
            mode: Mode::Provider {
                to_driver: tx,
                client,
            },
        })
    }

    /// The transport of `rsr batch export` (rounds written to `export_to`
    /// in the OpenAI batch line format) and `rsr batch import` (`None`):
    /// results imported into the ledger answer the requests they hold, and
    /// the run pauses at the next round.
    pub fn files(
        config: &Config,
        root: &std::path::Path,
        bodies: HttpBackend,
        export_to: Option<PathBuf>,
    ) -> Result<Self, BatchError> {
        let mut ledger = Ledger::open(root)?;
        let run_id = ledger.run_id()?;
        let shared = Arc::new(Mutex::new(Shared::default()));
        load(&ledger, &shared, config.sampler.max_tokens.get(), None)?;
        Ok(Self {
            shared,
            bodies,
            mode: Mode::Files {
                ledger: Mutex::new(ledger),
                run_id,
                export_to,
            },
        })
    }

    /// Checks the URL and the key by listing the provider's batches.
    pub async fn preflight(&self) -> Result<(), BatchError> {
        match &self.mode {
            Mode::Provider { client, .. } => {
                client.list_since(i64::MAX).await.map(|_| ()).map_err(|mut e| {
                    if !e.refused {
                        e.message = format!(
                            "{}: check sampler.base_url ({}) and that the provider's batch API is reachable; nothing was submitted",
                            e.message,
                            client.base()
                        );
                    }
                    BatchError::Api(e)
                })
            }
            Mode::Files { .. } => Ok(()),
        }
    }

    /// Parks the request for `rollouts` of `prompt`: answered from results
    /// already on disk, by the batch in flight that holds it, or by the next
    /// round's.
    pub fn park(&self, prompt: &Prompt, rollouts: &[(u32, u32)]) -> Ticket {
        let key = Key {
            id: prompt.id.to_string(),
            rollouts: rollouts.to_vec(),
        };
        let first = rollouts.first().map_or(0, |r| r.0);
        self.park_key(key, || {
            self.bodies
                .sample_body(&prompt.id, &prompt.messages, rollouts.len() as u32, first)
        })
    }

    /// Parks a request whose body is built already, under `key` (the
    /// judge's request key): answered from results on disk, by the batch
    /// in flight that holds it, or by the next round's.
    pub fn park_body(&self, key: &str, body: String) -> Ticket {
        let key = Key {
            id: key.to_string(),
            rollouts: Vec::new(),
        };
        self.park_key(key, || body)
    }

    /// Parks the request `key` (its body built only when it is sent).
    fn park_key(&self, key: Key, body: impl FnOnce() -> String) -> Ticket {
        let (tx, rx) = oneshot::channel();
        let mut s = self.shared.lock().expect("batch state lock");
        if let Some(f) = &s.failed {
            let _ = tx.send(Err(f.clone()));
            return rx;
        }
        if let Some((outcome, endpoint)) = s.ready.remove(&key) {
            let _ = tx.send(reply(outcome, &endpoint));
            return rx;
        }
        let parked = Parked {
            key,
            body: body(),
            tx,
        };
        if s.remote.contains_key(&parked.key) {
            s.waiting.insert(parked.key.clone(), parked);
        } else {
            s.parked.push(parked);
        }
        rx
    }

    /// Requests parked for the next round and waiting for a batch out.
    pub fn pending(&self) -> usize {
        let s = self.shared.lock().expect("batch state lock");
        s.parked.len() + s.waiting.len()
    }

    /// Ends the round when the scheduler can send nothing more, every
    /// request it has in flight (`in_flight`) is parked or waiting (none
    /// answered and not yet taken in), and no batch is out: the parked
    /// requests go to the driver. Batches whose results were all taken in
    /// are marked ingested. Returns whether a round was sealed.
    pub fn seal(&self, in_flight: usize) -> Result<Sealed, StoreError> {
        let mut s = self.shared.lock().expect("batch state lock");
        if in_flight != s.parked.len() + s.waiting.len() {
            return Ok(Sealed::Nothing);
        }
        let done = std::mem::take(&mut s.dispatched);
        match &self.mode {
            Mode::Provider { to_driver, .. } => {
                if !done.is_empty() {
                    let _ = to_driver.send(ToDriver::Ingested(done));
                }
                if s.open > 0 || s.parked.is_empty() || !s.waiting.is_empty() {
                    return Ok(Sealed::Nothing);
                }
                let round = std::mem::take(&mut s.parked);
                s.open += 1; // held until the driver has submitted the round
                Ok(if to_driver.send(ToDriver::Round(round)).is_ok() {
                    Sealed::Round
                } else {
                    Sealed::Nothing
                })
            }
            Mode::Files {
                ledger,
                run_id,
                export_to,
            } => {
                let mut ledger = ledger.lock().expect("ledger lock");
                for batch in done {
                    ledger.append(Entry::Ingested { batch })?;
                }
                if s.parked.is_empty() {
                    return Ok(Sealed::Nothing);
                }
                if let Some(path) = export_to {
                    // The requests stay parked (never answered): the pause
                    // abandons them unanswered, so no row is written.
                    export_round(&mut ledger, run_id, &s.parked, path)?;
                }
                Ok(Sealed::Pause)
            }
        }
    }

    /// The API's base URL and kind, for messages.
    pub fn describe(&self) -> String {
        match &self.mode {
            Mode::Provider { client, .. } => {
                let api = match client.kind() {
                    BatchApi::Openai => "OpenAI batches",
                    BatchApi::Anthropic => "Anthropic message batches",
                };
                format!("{api} at {}", client.base())
            }
            Mode::Files { .. } => "batch files run by hand".into(),
        }
    }
}

/// The answer a request gets for a result line.
fn reply(outcome: Outcome, endpoint: &str) -> Reply {
    match outcome {
        Outcome::Answered(mut g) => {
            g.endpoint = endpoint.to_string();
            Ok(g)
        }
        Outcome::Failed(message) | Outcome::NotRun(message) => {
            Err(RequestFailure::new(message, endpoint, None))
        }
    }
}

/// Why the batch transport could not start.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// The ledger could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The provider refused or failed.
    #[error("{0}")]
    Api(ApiError),
}

/// A batch the driver follows.
struct OpenBatch {
    name: String,
    remote_id: String,
    status: String,
    map: Vec<MapLine>,
    created: std::time::Instant,
}

/// The driver task: submits rounds, polls batches, downloads and hands out
/// results; the only writer of the ledger while a run goes.
struct Driver {
    api: Api,
    /// `<base URL> batch`, what rows record as their endpoint.
    endpoint: String,
    ledger: Ledger,
    run_id: String,
    shared: Arc<Mutex<Shared>>,
    settings: Settings,
    open: Vec<OpenBatch>,
}

/// Kills the process at a named step when the `FAILPOINTS` variable names it: how
/// the tests prove that a kill at every step of a batch resumes exactly.
fn failpoint(name: &str) {
    if std::env::var("FAILPOINTS").is_ok_and(|v| v == name) {
        eprintln!("rsr: failpoint {name}: killed");
        // SAFETY: sends SIGKILL to this process; nothing after it runs.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}

impl Driver {
    fn endpoint(&self, remote_id: &str) -> String {
        format!("{} {remote_id}", self.endpoint)
    }

    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<ToDriver>) {
        if let Err(e) = self.drive(&mut rx).await {
            self.fail(e);
        }
    }

    /// Recovers, then submits rounds and polls batches until the run
    /// drops its end of `rx` or a step fails.
    async fn drive(
        &mut self,
        rx: &mut mpsc::UnboundedReceiver<ToDriver>,
    ) -> Result<(), DriverError> {
        self.recover().await?;
        let mut polls = 0u64;
        loop {
            // Rounds and ingestion marks first, without waiting.
            loop {
                match rx.try_recv() {
                    Ok(msg) => self.handle(msg).await?,
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => return Ok(()),
                }
            }
            if self.open.is_empty() {
                match rx.recv().await {
                    Some(msg) => self.handle(msg).await?,
                    None => return Ok(()),
                }
                continue;
            }
            self.poll().await?;
            polls += 1;
            if self.open.is_empty() {
                continue;
            }
            if polls.is_multiple_of(20) {
                let requests: usize = self.open.iter().map(|b| b.map.len()).sum();
                let waited = self.open[0].created.elapsed().as_secs();
                tracing::info!(
                    "waiting for {} batch(es), {requests} requests, for {}m{:02}s (Ctrl-C stops rsr; the batches go on, a resume collects them)",
                    self.open.len(),
                    waited / 60,
                    waited % 60
                );
            }
            tokio::select! {
                _ = tokio::time::sleep(self.settings.poll) => {}
                msg = rx.recv() => match msg {
                    Some(msg) => self.handle(msg).await?,
                    None => return Ok(()),
                },
            }
        }
    }

    async fn handle(&mut self, msg: ToDriver) -> Result<(), DriverError> {
        match msg {
            ToDriver::Round(round) => {
                let result = self.submit_round(round).await;
                self.shared.lock().expect("batch state lock").open -= 1;
                result
            }
            ToDriver::Ingested(names) => {
                for batch in names {
                    self.ledger.append(Entry::Ingested { batch })?;
                }
                Ok(())
            }
        }
    }

    /// Every request still waiting gets the driver's failure; later ones too.
    fn fail(&mut self, e: DriverError) {
        let (message, why) = match &e {
            DriverError::Api(a) if a.refused => {
                (a.message.clone(), "the batch API refused the key")
            }
            DriverError::Api(a) => (a.message.clone(), "the batch API is failing"),
            DriverError::Store(s) => (s.to_string(), "the batch ledger cannot be written"),
            DriverError::Rejected(m) => (m.clone(), "the provider rejected a batch"),
        };
        tracing::error!("{message}");
        let failure = RequestFailure::new(message, self.api.base(), Some(why));
        let mut s = self.shared.lock().expect("batch state lock");
        s.failed = Some(failure.clone());
        let parked = std::mem::take(&mut s.parked);
        let waiting: Vec<Parked> = s.waiting.drain().map(|(_, p)| p).collect();
        for p in parked.into_iter().chain(waiting) {
            let _ = p.tx.send(Err(failure.clone()));
        }
    }

    /// Finishes submitting what an earlier run began and follows every
    /// batch without results.
    async fn recover(&mut self) -> Result<(), DriverError> {
        let pending: Vec<ledger::BatchRecord> = self
            .ledger
            .batches
            .values()
            .filter(|b| b.downloaded.is_none() && !b.ingested && !b.manual)
            .filter(|b| b.status.as_ref().is_none_or(|st| st.0 != "failed"))
            .cloned()
            .collect();
        for b in pending {
            let map = ledger::read_map(&self.ledger.map_path(&b.name))?;
            let remote_id = match b.remote_id.clone() {
                Some(id) => id,
                None => {
                    tracing::info!(
                        "batch {}: the last run stopped before its id was recorded; looking for it at the provider",
                        b.name
                    );
                    self.submit(&b.name, b.round, b.at, b.file_id.clone())
                        .await?
                }
            };
            self.open.push(OpenBatch {
                name: b.name.clone(),
                remote_id,
                status: b.status.map(|s| s.0).unwrap_or_default(),
                map,
                created: std::time::Instant::now(),
            });
        }
        if !self.open.is_empty() {
            tracing::info!(
                "{} batch(es) from an earlier run are followed again ({})",
                self.open.len(),
                self.open
                    .iter()
                    .map(|b| b.remote_id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        Ok(())
    }

    /// Splits a round into batches and submits each.
    async fn submit_round(&mut self, round: Vec<Parked>) -> Result<(), DriverError> {
        let number = self.ledger.last_round() + 1;
        let mut chunk: Vec<(Parked, String)> = Vec::new();
        let mut bytes = 0u64;
        let total = round.len();
        let mut batches = 0;
        for p in round {
            let i = chunk.len();
            let line = self.line(
                &p.body,
                &lines::custom_id(&self.run_id, &self.ledger.next_name(), i),
            )?;
            let size = line.len() as u64 + 1;
            if !chunk.is_empty()
                && (chunk.len() >= self.settings.max_requests
                    || bytes + size > self.settings.max_bytes)
            {
                self.submit_chunk(number, std::mem::take(&mut chunk))
                    .await?;
                batches += 1;
                bytes = 0;
                // Rebuilt: the custom_id names the batch.
                let line = self.line(
                    &p.body,
                    &lines::custom_id(&self.run_id, &self.ledger.next_name(), 0),
                )?;
                bytes += line.len() as u64 + 1;
                chunk.push((p, line));
                continue;
            }
            bytes += size;
            chunk.push((p, line));
        }
        if !chunk.is_empty() {
            self.submit_chunk(number, chunk).await?;
            batches += 1;
        }
        tracing::info!("round {number}: {total} requests in {batches} batch(es)");
        Ok(())
    }

    fn line(&self, body: &str, custom_id: &str) -> Result<String, DriverError> {
        Ok(match self.api.kind() {
            BatchApi::Openai => lines::openai_line(custom_id, body),
            BatchApi::Anthropic => lines::anthropic_request(custom_id, body)
                .map_err(|e| DriverError::Rejected(format!("a request body is not JSON: {e}")))?
                .to_string(),
        })
    }

    /// Writes a batch's files and intent, moves its requests to waiting,
    /// then submits it.
    async fn submit_chunk(
        &mut self,
        round: u32,
        chunk: Vec<(Parked, String)>,
    ) -> Result<(), DriverError> {
        let name = self.ledger.next_name();
        let mut file = Vec::new();
        let mut map = Vec::with_capacity(chunk.len());
        let mut map_file = Vec::new();
        let mut worst_tokens = 0u64;
        for (i, (p, line)) in chunk.iter().enumerate() {
            file.extend_from_slice(line.as_bytes());
            file.push(b'\n');
            let m = MapLine {
                custom_id: lines::custom_id(&self.run_id, &name, i),
                id: p.key.id.clone(),
                rollouts: p.key.rollouts.clone(),
            };
            map_file.extend_from_slice(serde_json::to_string(&m).expect("serializes").as_bytes());
            map_file.push(b'\n');
            worst_tokens += p.key.rollouts.len() as u64 * u64::from(self.settings.max_tokens);
            map.push(m);
        }
        self.ledger
            .write_file(&self.ledger.map_path(&name), &map_file)?;
        self.ledger
            .write_file(&self.ledger.requests_path(&name), &file)?;
        let at = chrono::Utc::now().timestamp();
        self.ledger.append(Entry::Intent {
            batch: name.clone(),
            round,
            api: self.api.kind(),
            requests: chunk.len() as u64,
            bytes: file.len() as u64,
            hash: format!("{:032x}", crate::data::validate::fnv1a128(&file)),
            at,
            worst_cost: self.settings.output_price.map(|p| p * worst_tokens as f64),
            manual: false,
        })?;
        {
            let mut s = self.shared.lock().expect("batch state lock");
            for (p, _) in chunk {
                s.remote.insert(p.key.clone(), name.clone());
                s.waiting.insert(p.key.clone(), p);
            }
            s.open += 1;
        }
        failpoint("batch-after-intent");
        let remote_id = self.submit(&name, round, at, None).await?;
        self.open.push(OpenBatch {
            name,
            remote_id,
            status: String::new(),
            map,
            created: std::time::Instant::now(),
        });
        Ok(())
    }

    /// Uploads (unless `file_id` says it is) and creates batch `name`,
    /// each step recorded; on resume, a file or batch the provider already
    /// has is found and recorded instead of made again. The batch's id.
    async fn submit(
        &mut self,
        name: &str,
        round: u32,
        at: i64,
        file_id: Option<String>,
    ) -> Result<String, DriverError> {
        let content =
            std::fs::read(self.ledger.requests_path(name)).map_err(|e| StoreError::Io {
                path: self.ledger.requests_path(name),
                source: e,
            })?;
        let filename = format!("rsr-{}-{name}.jsonl", self.run_id);
        let since = at - 600;
        let file_id = match (self.api.kind(), file_id) {
            (BatchApi::Openai, Some(f)) => Some(f),
            (BatchApi::Openai, None) => {
                let found = self.api.find_file(&filename).await?;
                let id = match found {
                    Some(id) => id,
                    None => self.api.upload(&filename, &content).await?,
                };
                self.ledger.append(Entry::Uploaded {
                    batch: name.to_string(),
                    file_id: id.clone(),
                })?;
                failpoint("batch-after-upload");
                Some(id)
            }
            (BatchApi::Anthropic, _) => None,
        };
        // A batch created before a kill cut its record short.
        let known: Vec<String> = self
            .ledger
            .batches
            .values()
            .filter_map(|b| b.remote_id.clone())
            .collect();
        let listed = self.api.list_since(since).await?;
        let existing = listed.into_iter().rev().find(|r| match self.api.kind() {
            BatchApi::Openai => {
                r.metadata["rsr_run"] == self.run_id.as_str() && r.metadata["rsr_batch"] == name
            }
            BatchApi::Anthropic => {
                let requests = self.ledger.batches.get(name).map_or(0, |b| b.requests);
                !known.contains(&r.id) && r.total == requests
            }
        });
        let remote = match existing {
            Some(r) => {
                tracing::info!(
                    "batch {name}: found at the provider as {} (not submitted again)",
                    r.id
                );
                r
            }
            None => {
                let metadata = json!({
                    "rsr_run": self.run_id,
                    "rsr_batch": name,
                    "rsr_round": round.to_string(),
                    "rsr_hash": self.ledger.batches.get(name).map(|b| b.hash.clone()).unwrap_or_default(),
                });
                let r = self
                    .api
                    .create(
                        file_id.as_deref(),
                        &content,
                        &metadata,
                        &self.settings.completion_window,
                    )
                    .await?;
                failpoint("batch-after-create");
                r
            }
        };
        self.ledger.append(Entry::Created {
            batch: name.to_string(),
            remote_id: remote.id.clone(),
        })?;
        tracing::info!(
            "batch {name} (round {round}, {} requests) submitted as {}",
            self.ledger.batches.get(name).map_or(0, |b| b.requests),
            remote.id
        );
        Ok(remote.id)
    }

    /// Checks every open batch; an ended one's results are downloaded,
    /// recorded and handed out.
    async fn poll(&mut self) -> Result<(), DriverError> {
        let mut i = 0;
        while i < self.open.len() {
            let remote = self.api.get(&self.open[i].remote_id).await?;
            let b = &mut self.open[i];
            if remote.status != b.status {
                b.status = remote.status.clone();
                let name = b.name.clone();
                tracing::info!(
                    "batch {name} ({}): {}, {} of {} done, {} failed",
                    remote.id,
                    remote.status,
                    remote.completed,
                    remote.total,
                    remote.failed
                );
                self.ledger.append(Entry::Status {
                    batch: name,
                    status: remote.status.clone(),
                    completed: remote.completed,
                    failed: remote.failed,
                    total: remote.total,
                    error: remote.error.clone(),
                })?;
                failpoint("batch-polling");
            }
            if remote.ended {
                let b = self.open.remove(i);
                self.finish(b, &remote).await?;
            } else {
                i += 1;
            }
        }
        Ok(())
    }

    /// Downloads an ended batch's results and hands them out.
    async fn finish(&mut self, b: OpenBatch, remote: &Remote) -> Result<(), DriverError> {
        let failed_whole = remote.status == "failed";
        let bytes = if failed_whole {
            Vec::new()
        } else {
            self.api.results(remote).await?
        };
        failpoint("batch-download");
        let path = self.ledger.results_path(&b.name);
        self.ledger.write_file(&path, &bytes)?;
        let lines_n = bytes
            .split(|&c| c == b'\n')
            .filter(|l| !l.is_empty())
            .count() as u64;
        self.ledger.append(Entry::Downloaded {
            batch: b.name.clone(),
            lines: lines_n,
        })?;
        let endpoint = self.endpoint(&b.remote_id);
        if failed_whole {
            let error = remote
                .error
                .clone()
                .unwrap_or_else(|| "no reason given".into());
            let mut advice = "fix the cause, then resume";
            if error.contains("token") && error.to_lowercase().contains("limit") {
                advice = "lower sampler.batch.max_requests (a smaller batch enqueues fewer tokens) or wait for the batches queued at the provider to finish, then resume";
            }
            let mut s = self.shared.lock().expect("batch state lock");
            for m in &b.map {
                s.remote.remove(&key_of(m));
            }
            s.open -= 1;
            drop(s);
            return Err(DriverError::Rejected(format!(
                "batch {} ({}) failed at the provider: {error}; {advice}",
                b.name, b.remote_id
            )));
        }
        let mut results = read_results(&path, self.api.kind(), &b.map, self.settings.max_tokens)?;
        let mut not_run: std::collections::BTreeMap<String, usize> = Default::default();
        let half = results.len() / 2;
        for (i, m) in b.map.iter().enumerate() {
            if i == half {
                failpoint("batch-ingest");
            }
            let key = key_of(m);
            let outcome = results
                .remove(&key)
                .unwrap_or_else(|| Outcome::NotRun("no result".into()));
            let mut s = self.shared.lock().expect("batch state lock");
            s.remote.remove(&key);
            match (s.waiting.remove(&key), outcome) {
                (Some(p), Outcome::NotRun(why)) => {
                    *not_run.entry(why).or_default() += 1;
                    s.parked.push(p);
                }
                (Some(p), outcome) => {
                    let mut r = reply(outcome, &endpoint);
                    if let Ok(g) = &mut r {
                        g.latency_ms = b.created.elapsed().as_millis() as u64;
                    }
                    let _ = p.tx.send(r);
                }
                (None, Outcome::NotRun(_)) => {}
                (None, outcome) => {
                    s.ready.insert(key, (outcome, endpoint.clone()));
                }
            }
        }
        let mut s = self.shared.lock().expect("batch state lock");
        s.open -= 1;
        s.dispatched.push(b.name.clone());
        drop(s);
        if !not_run.is_empty() {
            let total: usize = not_run.values().sum();
            let why: Vec<String> = not_run.iter().map(|(w, n)| format!("{n} {w}")).collect();
            tracing::warn!(
                "batch {} ({}) ended ({}) with {total} request(s) not run ({}): they go into the next round",
                b.name,
                b.remote_id,
                remote.status,
                why.join(", ")
            );
        }
        Ok(())
    }
}

/// Reads what earlier runs left in the ledger: results on disk become
/// ready answers (their batches are marked ingested at the next seal);
/// with a `provider` (its base URL), the requests of batches still out are marked as held
/// by them. Batches written for running by hand and never imported hold
/// nothing: their requests are asked again.
fn load(
    ledger: &Ledger,
    shared: &Mutex<Shared>,
    max_tokens: u32,
    provider: Option<&str>,
) -> Result<(), BatchError> {
    let mut s = shared.lock().expect("batch state lock");
    for b in ledger.batches.values() {
        let failed = b.status.as_ref().is_some_and(|st| st.0 == "failed");
        if b.ingested || (failed || b.manual) && b.downloaded.is_none() {
            continue;
        }
        let map = ledger::read_map(&ledger.map_path(&b.name))?;
        match b.downloaded {
            Some(_) => {
                let endpoint = match (&b.remote_id, provider) {
                    (Some(id), Some(base)) => format!("{base} batch {id}"),
                    (Some(id), None) => format!("batch {id}"),
                    (None, _) => format!("batch file {}", b.name),
                };
                let api = if b.manual { BatchApi::Openai } else { b.api };
                let results = read_results(&ledger.results_path(&b.name), api, &map, max_tokens)?;
                for (key, outcome) in results {
                    if !matches!(outcome, Outcome::NotRun(_)) {
                        s.ready.insert(key, (outcome, endpoint.clone()));
                    }
                }
                s.dispatched.push(b.name.clone());
            }
            None if provider.is_some() => {
                for m in &map {
                    s.remote.insert(key_of(m), b.name.clone());
                }
                s.open += 1;
            }
            None => {
                return Err(BatchError::Api(ApiError {
                    message: format!(
                        "batch {} is still out at the provider ({}): finish it first with rsr sample (sampler.mode=batch), or cancel it with rsr batch cancel",
                        b.name,
                        b.remote_id.as_deref().unwrap_or("id not recorded")
                    ),
                    refused: false,
                }));
            }
        }
    }
    Ok(())
}

/// Writes `round` as a batch to run by hand: its request file (OpenAI
/// batch lines), map and intent in the ledger, and a copy at `path`.
fn export_round(
    ledger: &mut Ledger,
    run_id: &str,
    round: &[Parked],
    path: &std::path::Path,
) -> Result<(), StoreError> {
    let name = ledger.next_name();
    let number = ledger.last_round() + 1;
    let mut file = Vec::new();
    let mut map_file = Vec::new();
    for (i, p) in round.iter().enumerate() {
        let custom_id = lines::custom_id(run_id, &name, i);
        file.extend_from_slice(lines::openai_line(&custom_id, &p.body).as_bytes());
        file.push(b'\n');
        let m = MapLine {
            custom_id,
            id: p.key.id.clone(),
            rollouts: p.key.rollouts.clone(),
        };
        map_file.extend_from_slice(serde_json::to_string(&m).expect("serializes").as_bytes());
        map_file.push(b'\n');
    }
    ledger.write_file(&ledger.map_path(&name), &map_file)?;
    ledger.write_file(&ledger.requests_path(&name), &file)?;
    ledger.append(Entry::Intent {
        batch: name.clone(),
        round: number,
        api: BatchApi::Openai,
        requests: round.len() as u64,
        bytes: file.len() as u64,
        hash: format!("{:032x}", crate::data::validate::fnv1a128(&file)),
        at: chrono::Utc::now().timestamp(),
        worst_cost: None,
        manual: true,
    })?;
    ledger.write_file(path, &file)
}

fn key_of(m: &MapLine) -> Key {
    Key {
        id: m.id.clone(),
        rollouts: m.rollouts.clone(),
    }
}

/// The result lines of a batch on disk, by request.
fn read_results(
    path: &std::path::Path,
    api: BatchApi,
    map: &[MapLine],
    max_tokens: u32,
) -> Result<HashMap<Key, Outcome>, StoreError> {
    let by_id: HashMap<&str, &MapLine> = map.iter().map(|m| (m.custom_id.as_str(), m)).collect();
    let text = std::fs::read_to_string(path).map_err(|e| StoreError::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    let mut out = HashMap::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let n_of = |id: &str| by_id.get(id).map_or(1, |m| m.rollouts.len() as u32);
        let parsed = match api {
            BatchApi::Openai => lines::read_openai(line, &n_of, max_tokens),
            BatchApi::Anthropic => lines::read_anthropic(line),
        };
        let (id, outcome) = parsed.map_err(|e| StoreError::Corrupt {
            path: path.to_path_buf(),
            message: format!("line {}: {e}", i + 1),
        })?;
        match by_id.get(id.as_str()) {
            Some(m) => {
                // An answer wins over an error line for the same request.
                let key = key_of(m);
                if !matches!(out.get(&key), Some(Outcome::Answered(_))) {
                    out.insert(key, outcome);
                }
            }
            None => tracing::warn!(
                "{}:{}: custom_id {id} is not this batch's: ignored",
                path.display(),
                i + 1
            ),
        }
    }
    Ok(out)
}

/// Why the driver stopped.
#[derive(Debug)]
enum DriverError {
    Api(ApiError),
    Store(StoreError),
    Rejected(String),
}

impl From<ApiError> for DriverError {
    fn from(e: ApiError) -> Self {
        DriverError::Api(e)
    }
}

impl From<StoreError> for DriverError {
    fn from(e: StoreError) -> Self {
        DriverError::Store(e)
    }
}
