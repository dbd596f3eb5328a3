//! `rsr-mock`: an OpenAI-compatible chat server for tests, the quickstart
//! and benchmarks. Answers `POST /v1/chat/completions` (with `n`) after a
//! configurable latency, right with a per-prompt probability (gold answers
//! read from a file), and injects faults on demand: 429 with Retry-After,
//! 500, 400, timeouts, malformed JSON, dropped connections, truncation, and
//! a server that dies after N requests.
//! Answers judge prompts (rsr's shipped `correctness`, `rubric` and `mcq`
//! templates) with a verdict that is right with a set probability, sometimes
//! one no parser can read, and with `top_logprobs` when asked; and serves
//! reward models' `POST /classify` (vLLM and SGLang shapes), `/pooling` and
//! `/get_reward` with a deterministic reward (higher for right answers).
//! Answers code prompts (a gold holding tests) with a fenced program: the
//! prompt's canonical solution (`metadata.canonical_solution` in the gold
//! file) when right, a program that fails its tests when wrong.
//! Speaks the batch APIs too ([`batches`]): OpenAI's Files + Batches and
//! Anthropic's Message Batches, with a time scale.
//! Also serves `GET /health`, `GET /v1/models` and `GET /stats` (counters).

mod batches;

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use arrow::array::{Array, AsArray};
use bytes_body::{Body, full};
use clap::{Parser, ValueEnum};
use http_body_util::BodyExt;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rsr::sampler::retry::SplitMix;
use serde_json::{Value, json};

/// An OpenAI-compatible mock chat server for rsr's tests and benchmarks
#[derive(Debug, Clone, Parser)]
#[command(name = "rsr-mock", version, max_term_width = 100)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port (0: any free port). The address is printed on stdout.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Gold answers: a work dir's data/input.parquet, or JSONL with
    /// `messages` and `answer` (or `metadata.answer`). Prompts are matched
    /// by their messages.
    #[arg(long)]
    gold: Option<PathBuf>,
    /// Probability that a response is right. Default: each prompt gets its
    /// own probability, uniform in [0, 1] (a stable hash of its messages).
    #[arg(long)]
    accuracy: Option<f64>,
    /// Mean response latency in milliseconds.
    #[arg(long, default_value_t = 0.0)]
    latency_ms: f64,
    /// Latency distribution around the mean.
    #[arg(long, value_enum, default_value_t = Dist::Fixed)]
    latency_dist: Dist,
    /// Mean words of thinking per response (right ones 0.5–1.5×, wrong
    /// ones 0.8–2×; completion tokens follow).
    #[arg(long, default_value_t = 40)]
    words: usize,
    /// Where the thinking goes: inline <think>…</think> or reasoning_content.
    #[arg(long, value_enum, default_value_t = Reasoning::Inline)]
    reasoning: Reasoning,
    /// Share of responses cut off (finish_reason=length, thinking unclosed).
    #[arg(long, default_value_t = 0.0)]
    truncate_rate: f64,
    /// Share of requests answered 429 with Retry-After.
    #[arg(long, default_value_t = 0.0)]
    rate_429: f64,
    /// Retry-After seconds sent with 429 and 503.
    #[arg(long, default_value_t = 1.0)]
    retry_after: f64,
    /// Share of requests answered 500.
    #[arg(long, default_value_t = 0.0)]
    rate_500: f64,
    /// Share of requests answered 400 (context length exceeded).
    #[arg(long, default_value_t = 0.0)]
    rate_400: f64,
    /// Share of requests never answered (the client times out).
    #[arg(long, default_value_t = 0.0)]
    rate_timeout: f64,
    /// Share of requests answered 200 with a body that is not JSON.
    #[arg(long, default_value_t = 0.0)]
    rate_malformed: f64,
    /// Share of requests whose connection is closed without an answer.
    #[arg(long, default_value_t = 0.0)]
    rate_drop: f64,
    /// The first N chat requests are answered 503 (with Retry-After).
    #[arg(long, default_value_t = 0)]
    fail_first: u64,
    /// Answer N chat requests, then die when the next one arrives (once
    /// the N answers are out, the process exits: later requests in flight
    /// are cut, later connections refused), like a server that crashes
    /// mid-run.
    #[arg(long, value_name = "N")]
    die_after: Option<u64>,
    /// Refuse n > 1 with 400, like servers without `n`.
    #[arg(long)]
    no_n: bool,
    /// Answer every choice of every request for a prompt with the same
    /// text, as temperature 0 (or a fixed seed with n) does.
    #[arg(long)]
    identical: bool,
    /// End every response without an answer a verifier can find.
    #[arg(long)]
    no_answer: bool,
    /// Report usage.completion_tokens of the first choice only, as
    /// llama.cpp's server does for n > 1.
    #[arg(long)]
    usage_one_choice: bool,
    /// GET /health answers 503 for this long after start.
    #[arg(long, default_value_t = 0)]
    startup_delay_ms: u64,
    /// Require `Authorization: Bearer KEY` on chat requests and
    /// `/v1/models`; a wrong or missing key gets 401 with the given key
    /// echoed in the message, as some proxies do.
    #[arg(long, value_name = "KEY")]
    require_key: Option<String>,
    /// Model name reported by /v1/models and in responses.
    #[arg(long, default_value = "mock")]
    model: String,
    /// Seed of the coin flips.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Probability that a judge verdict (correctness template) is right.
    #[arg(long, default_value_t = 1.0)]
    judge_accuracy: f64,
    /// Share of judge answers no parser can read.
    #[arg(long, default_value_t = 0.0)]
    judge_garbage: f64,
    /// Enforce a limit of requests per minute on chat requests, as a bucket
    /// of one second's worth refilled continuously: over it, 429 with
    /// Retry-After.
    #[arg(long, value_name = "RPM")]
    max_rpm: Option<f64>,
    /// Enforce a limit of tokens per minute the same way: a request needs
    /// its prompt tokens at arrival, and its completion tokens are taken
    /// when it is answered.
    #[arg(long, value_name = "TPM")]
    max_tpm: Option<f64>,
    /// With a limit, do not send the x-ratelimit-* headers.
    #[arg(long)]
    no_ratelimit_headers: bool,
    /// Seconds a batch takes from creation to its end (its "24 h").
    #[arg(long, default_value_t = 1.0)]
    batch_seconds: f64,
    /// Requests a batch may hold; more fail validation.
    #[arg(long, default_value_t = 50_000)]
    batch_max_requests: u64,
    /// Bytes an uploaded file may have; more is refused.
    #[arg(long, default_value_t = 200 << 20)]
    batch_max_bytes: u64,
    /// Tokens a batch may enqueue (max_tokens x n + prompt); more fail
    /// validation with the provider's message.
    #[arg(long, value_name = "TOKENS")]
    batch_max_enqueued_tokens: Option<u64>,
    /// Batches expire after running this many of their requests.
    #[arg(long, value_name = "N")]
    batch_expire_after: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Dist {
    /// Exactly the mean.
    Fixed,
    /// Uniform in [0, 2·mean].
    Uniform,
    /// Exponential with the mean.
    Exp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Reasoning {
    /// `<think>…</think>` inside `content`.
    Inline,
    /// `reasoning_content` beside `content`.
    Field,
}

/// Minimal full-body type for hyper responses.
mod bytes_body {
    pub type Body = http_body_util::Full<hyper::body::Bytes>;

    pub fn full(s: impl Into<hyper::body::Bytes>) -> Body {
        http_body_util::Full::new(s.into())
    }
}

#[derive(Default)]
struct Stats {
    requests: AtomicU64,
    ok: AtomicU64,
    choices: AtomicU64,
    status_429: AtomicU64,
    status_500: AtomicU64,
    status_503: AtomicU64,
    status_400: AtomicU64,
    status_401: AtomicU64,
    timeouts: AtomicU64,
    malformed: AtomicU64,
    dropped: AtomicU64,
    in_flight: AtomicU64,
    /// Chat requests whose handler returned (answered or refused).
    handled: AtomicU64,
    max_in_flight: AtomicU64,
    judge_requests: AtomicU64,
    reward_requests: AtomicU64,
    reward_items: AtomicU64,
}

struct Mock {
    args: Args,
    gold: HashMap<String, String>,
    /// Programs that pass, by prompt: a code gold's prompt with its
    /// canonical solution (`metadata.canonical_solution`), where the gold
    /// file has one.
    solutions: HashMap<String, String>,
    stats: Stats,
    started: Instant,
    requests_bucket: Option<std::sync::Mutex<Bucket>>,
    tokens_bucket: Option<std::sync::Mutex<Bucket>>,
    batches: batches::Batches,
}

/// A rate limit: `capacity` (one second's worth), refilled continuously.
struct Bucket {
    level: f64,
    capacity: f64,
    per_second: f64,
    at: Instant,
}

impl Bucket {
    fn per_minute(limit: f64) -> std::sync::Mutex<Self> {
        let per_second = limit / 60.0;
        std::sync::Mutex::new(Self {
            level: per_second.max(1.0),
            capacity: per_second.max(1.0),
            per_second,
            at: Instant::now(),
        })
    }

    fn refill(&mut self, now: Instant) {
        let dt = now.duration_since(self.at).as_secs_f64();
        self.level = (self.level + dt * self.per_second).min(self.capacity);
        self.at = now;
    }

    /// Seconds until `amount` is available.
    fn wait_for(&self, amount: f64) -> f64 {
        ((amount - self.level) / self.per_second).max(0.0)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let Gold {
        answers: gold,
        solutions,
    } = match &args.gold {
        Some(path) => load_gold(path)
            .with_context(|| format!("cannot read gold answers from {}", path.display()))?,
        None => Gold::default(),
    };
    let listener = tokio::net::TcpListener::bind((args.host.as_str(), args.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", args.host, args.port))?;
    let addr: SocketAddr = listener.local_addr()?;
    println!("listening on http://{addr}");
    std::io::stdout().flush()?;
    let mock = Arc::new(Mock {
        requests_bucket: args.max_rpm.map(Bucket::per_minute),
        tokens_bucket: args.max_tpm.map(Bucket::per_minute),
        args,
        gold,
        solutions,
        stats: Stats::default(),
        started: Instant::now(),
        batches: batches::Batches::default(),
    });
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => accepted?,
            _ = term.recv() => return Ok(()),
            _ = tokio::signal::ctrl_c() => return Ok(()),
        };
        let _ = stream.set_nodelay(true);
        let mock = Arc::clone(&mock);
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let mock = Arc::clone(&mock);
                async move { mock.handle(req).await }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Error type that makes hyper close the connection without an answer.
#[derive(Debug)]
struct Hangup;

impl std::fmt::Display for Hangup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped on purpose")
    }
}

impl std::error::Error for Hangup {}

fn json_response(status: StatusCode, body: Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(full(body.to_string()))
        .expect("valid response")
}

fn error_response(status: StatusCode, message: &str) -> Response<Body> {
    json_response(
        status,
        json!({"error": {"message": message, "type": "mock_error", "code": status.as_u16()}}),
    )
}

/// A request's whole body; a client that hangs up mid-body gets no answer.
async fn read_body(req: Request<hyper::body::Incoming>) -> Result<bytes::Bytes, Hangup> {
    Ok(req
        .into_body()
        .collect()
        .await
        .map_err(|_| Hangup)?
        .to_bytes())
}

impl Mock {
    async fn handle(&self, req: Request<hyper::body::Incoming>) -> Result<Response<Body>, Hangup> {
        let path = req.uri().path().to_string();
        if path.starts_with("/v1/files")
            || path.starts_with("/v1/batches")
            || path.starts_with("/v1/messages/batches")
        {
            return self.batch_route(req).await;
        }
        match (req.method().as_str(), path.as_str()) {
            ("GET", "/health") => {
                let ready =
                    self.started.elapsed() >= Duration::from_millis(self.args.startup_delay_ms);
                Ok(if ready {
                    json_response(StatusCode::OK, json!({"status": "ok"}))
                } else {
                    error_response(StatusCode::SERVICE_UNAVAILABLE, "starting")
                })
            }
            ("GET", "/v1/models") => Ok(match self.refuse_key(&req) {
                Some(refused) => refused,
                None => json_response(
                    StatusCode::OK,
                    json!({"object": "list", "data": [{"id": self.args.model, "object": "model"}]}),
                ),
            }),
            ("GET", "/stats") => Ok(json_response(StatusCode::OK, self.stats_json())),
            ("POST", "/tokenize") => {
                // One token per whitespace-separated word.
                let body = read_body(req).await?;
                let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let words = v
                    .get("content")
                    .and_then(Value::as_str)
                    .map_or(0, |t| t.split_whitespace().count());
                Ok(json_response(
                    StatusCode::OK,
                    json!({ "tokens": (0..words).collect::<Vec<_>>() }),
                ))
            }
            ("POST", "/v1/chat/completions") => {
                if let Some(refused) = self.refuse_key(&req) {
                    return Ok(refused);
                }
                let body = read_body(req).await?;
                let in_flight = self.stats.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
                self.stats
                    .max_in_flight
                    .fetch_max(in_flight, Ordering::Relaxed);
                let out = match self.admit(&body) {
                    Ok(headers) => self.chat(&body).await.map(|mut r| {
                        r.headers_mut().extend(headers);
                        r
                    }),
                    Err(limited) => Ok(*limited),
                };
                self.stats.in_flight.fetch_sub(1, Ordering::Relaxed);
                self.stats.handled.fetch_add(1, Ordering::Relaxed);
                out
            }
            ("POST", "/classify" | "/v1/classify" | "/pooling" | "/get_reward") => {
                if let Some(refused) = self.refuse_key(&req) {
                    return Ok(refused);
                }
                let body = read_body(req).await?;
                Ok(self.reward(&path, &body).await)
            }
            _ => Ok(error_response(StatusCode::NOT_FOUND, "no such route")),
        }
    }

    /// Applies `--max-rpm` / `--max-tpm` to a chat request: its
    /// x-ratelimit-* headers, or a 429 when a limit is used up.
    fn admit(&self, body: &[u8]) -> Result<hyper::HeaderMap, Box<Response<Body>>> {
        let mut headers = hyper::HeaderMap::new();
        if self.requests_bucket.is_none() && self.tokens_bucket.is_none() {
            return Ok(headers);
        }
        let now = Instant::now();
        let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        // Prompt tokens at arrival; completion tokens when answered.
        let tokens = v
            .get("messages")
            .map_or(0, |m| m.to_string().len() as u64 / 4);
        let mut retry: Option<f64> = None;
        let mut report = |name: &str, bucket: &std::sync::Mutex<Bucket>, amount: f64| {
            let mut b = bucket.lock().expect("bucket lock");
            b.refill(now);
            let enough = b.level >= amount;
            if enough {
                b.level -= amount;
            } else {
                retry = Some(retry.unwrap_or(0.0).max(b.wait_for(amount)));
            }
            // As OpenAI: the time until the limit is back to full.
            let reset_ms = (b.wait_for(b.capacity) * 1000.0).ceil() as u64;
            let pairs = [
                (
                    format!("x-ratelimit-limit-{name}"),
                    format!("{}", (b.per_second * 60.0).round()),
                ),
                (
                    format!("x-ratelimit-remaining-{name}"),
                    format!("{}", b.level.max(0.0).floor()),
                ),
                (format!("x-ratelimit-reset-{name}"), format!("{reset_ms}ms")),
            ];
            for (k, v) in pairs {
                headers.insert(
                    hyper::header::HeaderName::from_bytes(k.as_bytes()).expect("header name"),
                    hyper::header::HeaderValue::from_str(&v).expect("header value"),
                );
            }
            enough
        };
        let mut ok = true;
        if let Some(b) = &self.requests_bucket {
            ok &= report("requests", b, 1.0);
        }
        if let Some(b) = &self.tokens_bucket
            && ok
        {
            ok &= report("tokens", b, tokens as f64);
        }
        if self.args.no_ratelimit_headers {
            headers.clear();
        }
        if ok {
            return Ok(headers);
        }
        self.stats.status_429.fetch_add(1, Ordering::Relaxed);
        let mut r = with_retry_after(
            error_response(StatusCode::TOO_MANY_REQUESTS, "Rate limit reached"),
            (retry.unwrap_or(1.0) * 1000.0).ceil() / 1000.0,
        );
        r.headers_mut().extend(headers);
        Err(Box::new(r))
    }

    /// Takes an answer's completion tokens from `--max-tpm`'s bucket.
    fn spend_completion(&self, tokens: u64) {
        if let Some(b) = &self.tokens_bucket {
            let mut b = b.lock().expect("bucket lock");
            b.refill(Instant::now());
            b.level -= tokens as f64;
        }
    }

    /// A reward model's answer: one deterministic reward per conversation,
    /// near 2 when its last turn holds the prompt's gold answer, near -1
    /// otherwise (a hash of the text when the prompt is unknown).
    async fn reward(&self, path: &str, body: &[u8]) -> Response<Body> {
        let count = self.stats.reward_requests.fetch_add(1, Ordering::Relaxed);
        let mut rng = SplitMix::new(self.args.seed ^ count.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        tokio::time::sleep(self.latency(&mut rng)).await;
        let Ok(v) = serde_json::from_slice::<Value>(body) else {
            return error_response(StatusCode::BAD_REQUEST, "invalid JSON");
        };
        let reward_of_text = |t: &str| -> f64 {
            let h = fnv(t);
            -3.0 + 6.0 * ((h % 10_000) as f64 / 10_000.0)
        };
        let reward_of_messages = |m: &Value| -> f64 {
            let Some(turns) = m.as_array() else {
                return 0.0;
            };
            let (last, prompt) = match turns.split_last() {
                Some((l, p)) => (l, p),
                None => return 0.0,
            };
            let reply = last.get("content").and_then(Value::as_str).unwrap_or("");
            let jitter = ((fnv(reply) % 1000) as f64) / 1000.0 - 0.5;
            match self.gold.get(&Value::Array(prompt.to_vec()).to_string()) {
                Some(gold) if boxed(reply).as_deref() == Some(gold.trim()) => 2.0 + jitter,
                Some(_) => -1.0 + jitter,
                None => reward_of_text(reply),
            }
        };
        let texts = |key: &str| -> Vec<String> {
            match v.get(key) {
                Some(Value::String(s)) => vec![s.clone()],
                Some(Value::Array(a)) => a
                    .iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect(),
                _ => Vec::new(),
            }
        };
        let rewards: Vec<f64>;
        let answer = if path == "/get_reward" {
            rewards = texts("query").iter().map(|t| reward_of_text(t)).collect();
            json!({"rewards": rewards, "scores": rewards})
        } else if let Some(m) = v.get("messages") {
            rewards = vec![reward_of_messages(m)];
            if path == "/pooling" {
                json!({"object": "list", "data": [{"index": 0, "object": "pooling", "data": [rewards[0]]}]})
            } else {
                json!({"object": "list", "data": [{"index": 0, "label": "LABEL_0", "probs": [rewards[0]], "num_classes": 1}]})
            }
        } else if v.get("text").is_some() {
            rewards = texts("text").iter().map(|t| reward_of_text(t)).collect();
            Value::Array(
                rewards
                    .iter()
                    .map(|r| json!({"embedding": [r], "meta_info": {}}))
                    .collect(),
            )
        } else {
            return error_response(StatusCode::BAD_REQUEST, "expected messages, text or query");
        };
        self.stats
            .reward_items
            .fetch_add(rewards.len() as u64, Ordering::Relaxed);
        json_response(StatusCode::OK, answer)
    }

    /// The answer to a judge prompt written from rsr's shipped templates,
    /// or `None` for any other prompt.
    fn judge_answer(&self, prompt: &str, rng: &mut SplitMix) -> Option<(String, Option<f64>)> {
        let section = |start: &str, end: &str| -> Option<String> {
            let from = prompt.find(start)? + start.len();
            let to = prompt[from..].find(end).map_or(prompt.len(), |e| from + e);
            Some(prompt[from..to].trim().to_string())
        };
        let a = &self.args;
        let garbage = a.judge_garbage > 0.0 && rng.next_f64() < a.judge_garbage;
        if prompt.contains("[Reference answer]") {
            let reference = section("[Reference answer]", "[Response]")?;
            let response = section("[Response]", "\n\nCompare").unwrap_or_default();
            let right = boxed(&response).as_deref() == Some(reference.as_str());
            let honest = rng.next_f64() < a.judge_accuracy;
            let yes = right == honest;
            if garbage {
                return Some(("I cannot decide without more context.".into(), None));
            }
            let p_yes = if yes { 0.9 } else { 0.1 };
            Some((if yes { "yes" } else { "no" }.into(), Some(p_yes)))
        } else if prompt.contains("[Reply]") {
            if garbage {
                return Some(("A reasonable reply overall.".into(), None));
            }
            // Spread over 1..=10, one rating per question and reply: the
            // same request is rated the same in every run, as a greedy
            // judge would, so two runs that sample the same replies keep
            // the same rows.
            let rating = 1 + SplitMix::new(fnv(prompt)).next_u64() % 10;
            Some((
                format!("The reply addresses the request.\nRating: [[{rating}]]"),
                None,
            ))
        } else if prompt.contains("find the option it chose") {
            if garbage {
                return Some(("It is hard to say.".into(), None));
            }
            let response = section("[Response]", "Which option").unwrap_or_default();
            let letter = response
                .split(|c: char| !c.is_ascii_alphanumeric())
                .rfind(|w| w.len() == 1 && ("A"..="E").contains(w))
                .map_or_else(|| "none".to_string(), str::to_string);
            Some((letter, None))
        } else {
            None
        }
    }

    /// 401 (echoing the key given) when `--require-key` is set and the
    /// request does not carry it.
    fn refuse_key<B>(&self, req: &Request<B>) -> Option<Response<Body>> {
        let key = self.args.require_key.as_ref()?;
        let given = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        (given != key).then(|| {
            self.stats.status_401.fetch_add(1, Ordering::Relaxed);
            error_response(
                StatusCode::UNAUTHORIZED,
                &format!("Incorrect API key provided: {given}"),
            )
        })
    }

    fn stats_json(&self) -> Value {
        let s = &self.stats;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        json!({
            "requests": g(&s.requests), "ok": g(&s.ok), "choices": g(&s.choices),
            "status_429": g(&s.status_429), "status_500": g(&s.status_500),
            "status_503": g(&s.status_503), "status_400": g(&s.status_400),
            "status_401": g(&s.status_401),
            "timeouts": g(&s.timeouts), "malformed": g(&s.malformed), "dropped": g(&s.dropped),
            "in_flight": g(&s.in_flight), "max_in_flight": g(&s.max_in_flight),
            "judge_requests": g(&s.judge_requests),
            "reward_requests": g(&s.reward_requests), "reward_items": g(&s.reward_items),
            "batch_uploads": g(&self.batches.uploads), "batches_created": g(&self.batches.created),
            "batch_requests": g(&self.batches.requests), "batch_cancels": g(&self.batches.cancels),
        })
    }

    async fn chat(&self, body: &[u8]) -> Result<Response<Body>, Hangup> {
        let a = &self.args;
        let count = self.stats.requests.fetch_add(1, Ordering::Relaxed);
        if let Some(n) = a.die_after.filter(|&n| count >= n) {
            // The first n answers go out whole (bounded, for a slow one);
            // then the process dies with everything else in flight.
            let deadline = Instant::now() + Duration::from_secs(10);
            while self.stats.handled.load(Ordering::Relaxed) < n && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            eprintln!("rsr-mock: dying after {n} chat requests (--die-after)");
            std::process::exit(0);
        }
        let mut rng = SplitMix::new(a.seed ^ count.wrapping_mul(0xA24B_AED4_963E_E407));
        let request: Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => {
                return Ok(error_response(
                    StatusCode::BAD_REQUEST,
                    &format!("invalid JSON: {e}"),
                ));
            }
        };
        let Some(messages) = request.get("messages").filter(|m| m.is_array()) else {
            return Ok(error_response(
                StatusCode::BAD_REQUEST,
                "`messages` must be an array",
            ));
        };
        let n = request.get("n").and_then(Value::as_u64).unwrap_or(1).max(1);
        let max_tokens = request
            .get("max_tokens")
            .and_then(Value::as_u64)
            .unwrap_or(4096);
        if a.no_n && n > 1 {
            self.stats.status_400.fetch_add(1, Ordering::Relaxed);
            return Ok(error_response(
                StatusCode::BAD_REQUEST,
                "n > 1 is not supported",
            ));
        }
        tokio::time::sleep(self.latency(&mut rng)).await;
        if count < a.fail_first {
            self.stats.status_503.fetch_add(1, Ordering::Relaxed);
            return Ok(with_retry_after(
                error_response(StatusCode::SERVICE_UNAVAILABLE, "warming up"),
                a.retry_after,
            ));
        }
        let mut roll = |rate: f64| rate > 0.0 && rng.next_f64() < rate;
        if roll(a.rate_drop) {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            return Err(Hangup);
        }
        if roll(a.rate_timeout) {
            self.stats.timeouts.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        if roll(a.rate_429) {
            self.stats.status_429.fetch_add(1, Ordering::Relaxed);
            return Ok(with_retry_after(
                error_response(StatusCode::TOO_MANY_REQUESTS, "rate limited"),
                a.retry_after,
            ));
        }
        if roll(a.rate_500) {
            self.stats.status_500.fetch_add(1, Ordering::Relaxed);
            return Ok(error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error",
            ));
        }
        if roll(a.rate_400) {
            self.stats.status_400.fetch_add(1, Ordering::Relaxed);
            return Ok(error_response(
                StatusCode::BAD_REQUEST,
                "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens.",
            ));
        }
        if roll(a.rate_malformed) {
            self.stats.malformed.fetch_add(1, Ordering::Relaxed);
            return Ok(Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "application/json")
                .body(full("{\"choices\": [{\"message\": "))
                .expect("valid response"));
        }
        let user_text = messages
            .as_array()
            .and_then(|m| m.last())
            .and_then(|m| m.get("content"))
            .and_then(Value::as_str)
            .unwrap_or("");
        if let Some((content, p_yes)) = self.judge_answer(user_text, &mut rng) {
            self.stats.judge_requests.fetch_add(1, Ordering::Relaxed);
            self.stats.ok.fetch_add(1, Ordering::Relaxed);
            let mut choice = json!({
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            });
            if request.get("logprobs").and_then(Value::as_bool) == Some(true) {
                let top = match p_yes {
                    Some(p) => json!([
                        {"token": "yes", "logprob": p.ln()},
                        {"token": "no", "logprob": (1.0 - p).ln()},
                    ]),
                    None => json!([{"token": "I", "logprob": -0.01}]),
                };
                let first = top[0].clone();
                choice["logprobs"] = json!({"content": [{
                    "token": first["token"], "logprob": first["logprob"], "top_logprobs": top,
                }]});
            }
            let prompt_tokens = user_text.len() as u64 / 4;
            self.spend_completion(1 + content.len() as u64 / 4);
            return Ok(json_response(
                StatusCode::OK,
                json!({
                    "id": format!("chatcmpl-mock-{count}"),
                    "object": "chat.completion",
                    "model": request.get("model").cloned().unwrap_or_else(|| a.model.clone().into()),
                    "choices": [choice],
                    "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": 1 + content.len() as u64 / 4,
                              "total_tokens": prompt_tokens + 1 + content.len() as u64 / 4},
                }),
            ));
        }
        let key = messages.to_string();
        let gold = self.gold.get(&key).cloned().unwrap_or_else(|| "42".into());
        let accuracy = a
            .accuracy
            .unwrap_or_else(|| SplitMix::new(fnv(&key)).next_f64());
        if let Some(seed) = request.get("seed").and_then(Value::as_u64) {
            // A seeded request is answered the same way every time it is
            // sent (faults above still come by arrival), as a server with
            // seeded sampling does.
            rng = SplitMix::new(a.seed ^ fnv(&key) ^ seed.wrapping_mul(0xD6E8_FEB8_6659_FD93));
        }
        let mut choices = Vec::with_capacity(n as usize);
        let mut completion_tokens = 0;
        for i in 0..n {
            if a.identical {
                // The same draws for every choice and request of this prompt.
                rng = SplitMix::new(fnv(&key));
            }
            let right = rng.next_f64() < accuracy;
            let cut = rng.next_f64() < a.truncate_rate;
            let answer = if right { gold.clone() } else { wrong(&gold) };
            // Lengths vary; wrong answers ramble longer, as real ones tend to.
            let scale = if right {
                0.5 + rng.next_f64()
            } else {
                0.8 + 1.2 * rng.next_f64()
            };
            let words = ((a.words as f64 * scale).round() as usize).max(1);
            // Words drawn at random from a few hundred: text that
            // compresses like prose, not like one phrase repeated.
            let thinking = (0..words)
                .map(|_| WORDS[(rng.next_u64() % WORDS.len() as u64) as usize])
                .collect::<Vec<_>>()
                .join(" ");
            let final_text = if a.no_answer {
                "I worked through the steps above and will stop here.".to_string()
            } else if let Some(text) = instruction_response(&gold, right, &mut rng) {
                // An instruction-following prompt: a reply that tries to
                // follow its instructions when right, some of them when wrong.
                text
            } else if is_code_gold(&gold) {
                // A code prompt: the passing program where the gold file
                // has one, else (or when wrong) one that fails its tests.
                let program = match self.solutions.get(&key) {
                    Some(p) if right => p.clone(),
                    Some(p) => format!("{p}\nraise SystemExit(1)\n"),
                    None => "def solve():\n    raise NotImplementedError\n".to_string(),
                };
                format!("Here is the program:\n\n```python\n{program}```\n")
            } else {
                format!("The answer is \\boxed{{{answer}}}.")
            };
            let (content, reasoning) = match (a.reasoning, cut) {
                (Reasoning::Inline, false) => (
                    format!("<think>\n{thinking}\n</think>\n\n{final_text}"),
                    None,
                ),
                (Reasoning::Inline, true) => (format!("<think>\n{thinking}"), None),
                (Reasoning::Field, false) => (final_text, Some(thinking)),
                (Reasoning::Field, true) => (String::new(), Some(thinking)),
            };
            let tokens = if cut { max_tokens } else { (words + 8) as u64 };
            if i == 0 || !a.usage_one_choice {
                completion_tokens += tokens;
            }
            let mut message = json!({"role": "assistant", "content": content});
            if let Some(r) = reasoning {
                message["reasoning_content"] = Value::String(r);
            }
            choices.push(json!({
                "index": i,
                "message": message,
                "finish_reason": if cut { "length" } else { "stop" },
            }));
        }
        self.stats.ok.fetch_add(1, Ordering::Relaxed);
        self.stats.choices.fetch_add(n, Ordering::Relaxed);
        self.spend_completion(completion_tokens);
        let prompt_tokens = key.len() as u64 / 4;
        Ok(json_response(
            StatusCode::OK,
            json!({
                "id": format!("chatcmpl-mock-{count}"),
                "object": "chat.completion",
                "created": 0,
                "model": request.get("model").cloned().unwrap_or_else(|| a.model.clone().into()),
                "choices": choices,
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            }),
        ))
    }

    fn latency(&self, rng: &mut SplitMix) -> Duration {
        let mean = self.args.latency_ms.max(0.0);
        let ms = match self.args.latency_dist {
            Dist::Fixed => mean,
            Dist::Uniform => 2.0 * mean * rng.next_f64(),
            Dist::Exp => -mean * (1.0 - rng.next_f64()).ln(),
        };
        Duration::from_secs_f64(ms / 1000.0)
    }
}

const WORDS: &[&str] = &[
    "the",
    "a",
    "of",
    "to",
    "and",
    "in",
    "is",
    "it",
    "that",
    "we",
    "for",
    "on",
    "as",
    "with",
    "this",
    "be",
    "are",
    "by",
    "at",
    "so",
    "from",
    "or",
    "an",
    "if",
    "then",
    "there",
    "when",
    "which",
    "can",
    "all",
    "each",
    "more",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "half",
    "twice",
    "total",
    "sum",
    "product",
    "difference",
    "number",
    "numbers",
    "value",
    "values",
    "step",
    "steps",
    "first",
    "second",
    "third",
    "next",
    "last",
    "left",
    "right",
    "after",
    "before",
    "let",
    "me",
    "check",
    "again",
    "wait",
    "compute",
    "find",
    "solve",
    "write",
    "note",
    "that",
    "since",
    "because",
    "therefore",
    "thus",
    "hence",
    "so",
    "far",
    "means",
    "gives",
    "get",
    "got",
    "leaves",
    "remaining",
    "each",
    "per",
    "times",
    "plus",
    "minus",
    "divided",
    "multiplied",
    "equals",
    "equal",
    "less",
    "greater",
    "than",
    "both",
    "only",
    "problem",
    "question",
    "answer",
    "result",
    "amount",
    "price",
    "cost",
    "each",
    "box",
    "boxes",
    "apples",
    "books",
    "pencils",
    "marbles",
    "cookies",
    "stamps",
    "shells",
    "people",
    "friends",
    "students",
    "hours",
    "minutes",
    "days",
    "weeks",
    "dollars",
    "cents",
    "miles",
    "meters",
    "liters",
    "pages",
    "tickets",
    "cars",
    "bags",
    "cups",
    "buys",
    "sells",
    "gives",
    "takes",
    "has",
    "had",
    "have",
    "spends",
    "earns",
    "saves",
    "reads",
    "walks",
    "runs",
    "makes",
    "uses",
    "needs",
    "wants",
    "starts",
    "ends",
    "adds",
    "removes",
    "shares",
    "splits",
    "doubles",
    "halves",
    "start",
    "end",
    "begin",
    "end",
    "morning",
    "evening",
    "week",
    "month",
    "year",
    "rate",
    "speed",
    "distance",
    "time",
    "area",
    "perimeter",
    "length",
    "width",
    "height",
    "side",
    "angle",
    "triangle",
    "square",
    "circle",
    "radius",
    "fraction",
    "percent",
    "ratio",
    "average",
    "mean",
    "remainder",
    "digit",
    "digits",
    "odd",
    "even",
    "prime",
    "factor",
    "multiple",
    "divisible",
    "count",
    "counted",
    "counting",
    "case",
    "cases",
    "possible",
    "way",
    "ways",
    "hmm",
    "okay",
    "right",
    "sure",
    "actually",
    "maybe",
    "perhaps",
    "probably",
    "clearly",
    "indeed",
    "simply",
    "just",
    "also",
    "still",
    "already",
    "only",
    "even",
    "again",
    "instead",
    "otherwise",
    "similarly",
    "likewise",
    "original",
    "new",
    "old",
    "same",
    "different",
    "other",
    "another",
    "rest",
    "whole",
    "part",
    "parts",
    "group",
    "groups",
    "row",
    "rows",
    "column",
    "table",
    "list",
    "set",
    "pair",
    "pairs",
    "unit",
    "units",
];

fn with_retry_after(mut r: Response<Body>, secs: f64) -> Response<Body> {
    r.headers_mut().insert(
        "retry-after",
        hyper::header::HeaderValue::from_str(&format!("{secs}")).expect("number header"),
    );
    r
}

/// A wrong answer of the same kind as `gold`.
fn wrong(gold: &str) -> String {
    let g = gold.trim();
    if let Ok(x) = g.replace(',', "").parse::<f64>() {
        return format!("{}", x + 1.0);
    }
    let mut chars = g.chars();
    if let (Some(c), None) = (chars.next(), chars.next())
        && c.is_ascii_uppercase()
    {
        return if c == 'A' { "B".into() } else { "A".into() };
    }
    format!("{g} + 1")
}

/// The content of the last `\boxed{…}` in `text`.
fn boxed(text: &str) -> Option<String> {
    let start = text.rfind("\\boxed{")? + "\\boxed{".len();
    let mut depth = 1;
    for (i, c) in text[start..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(text[start..start + i].trim().to_string());
                }
            }
            _ => {}
        }
    }
    None
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Gold answers keyed by the compact JSON of the messages.
/// What `--gold` gives, by prompt (its messages as JSON).
#[derive(Default)]
struct Gold {
    /// Gold answers.
    answers: HashMap<String, String>,
    /// Passing programs of code prompts (prompt + canonical solution).
    solutions: HashMap<String, String>,
}

fn load_gold(path: &Path) -> anyhow::Result<Gold> {
    let mut out = Gold::default();
    let mut add = |messages: &str, answer: &str, metadata: Option<&str>| -> anyhow::Result<()> {
        let v: Value = serde_json::from_str(messages).context("`messages` is not JSON")?;
        let key = v.to_string();
        if let Some(solution) = metadata.and_then(|m| code_solution(answer, m)) {
            out.solutions.insert(key.clone(), solution);
        }
        out.answers.insert(key, answer.to_string());
        Ok(())
    };
    if path.extension().is_some_and(|e| e == "parquet") {
        for batch in rsr::store::parquet::read_batches(path)? {
            let (Some(m), Some(a)) = (
                batch.column_by_name("messages"),
                batch.column_by_name("answer"),
            ) else {
                anyhow::bail!("needs `messages` and `answer` columns");
            };
            let (m, a) = (m.as_string::<i32>(), a.as_string::<i32>());
            let meta = batch
                .column_by_name("metadata")
                .map(|c| c.as_string::<i32>());
            for i in 0..batch.num_rows() {
                if m.is_valid(i) && a.is_valid(i) {
                    let metadata = meta.filter(|c| c.is_valid(i)).map(|c| c.value(i));
                    add(m.value(i), a.value(i), metadata)?;
                }
            }
        }
    } else {
        let file = std::fs::File::open(path)?;
        for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            let v: Value =
                serde_json::from_str(&line).with_context(|| format!("line {}", i + 1))?;
            // `answer`, else `metadata.answer`, as rsr prepare reads it.
            let answer = v
                .get("answer")
                .or_else(|| v.get("metadata").and_then(|m| m.get("answer")))
                .and_then(rsr::data::validate::gold_text);
            let metadata = v.get("metadata").map(Value::to_string);
            if let (Some(m), Some(a)) = (v.get("messages"), answer) {
                add(&m.to_string(), &a, metadata.as_deref())?;
            }
        }
    }
    Ok(out)
}

/// A code gold's passing program: HumanEval's prompt (from the gold) with
/// the canonical solution (from the metadata).
fn code_solution(gold: &str, metadata: &str) -> Option<String> {
    let gold: Value = serde_json::from_str(gold).ok()?;
    let meta: Value = serde_json::from_str(metadata).ok()?;
    let body = meta.get("canonical_solution")?.as_str()?;
    let prompt = gold.get("prompt").and_then(Value::as_str).unwrap_or("");
    Some(format!("{prompt}{body}"))
}

/// A reply to an instruction-following prompt (a gold with
/// `instruction_id_list` and `kwargs`): prose that tries to follow each
/// instruction (nine times in ten when `follow`, four in ten otherwise),
/// sometimes opened by a chatty line or with markdown bold, as models write.
/// `None` for other golds.
fn instruction_response(gold: &str, follow: bool, rng: &mut SplitMix) -> Option<String> {
    let gold: Value = serde_json::from_str(gold).ok()?;
    let ids: Vec<&str> = gold
        .get("instruction_id_list")?
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let empty = serde_json::Map::new();
    let kwargs: Vec<&serde_json::Map<String, Value>> = gold
        .get("kwargs")
        .and_then(Value::as_array)
        .map(|k| k.iter().map(|v| v.as_object().unwrap_or(&empty)).collect())
        .unwrap_or_default();
    let pick = |rng: &mut SplitMix| WORDS[(rng.next_u64() % WORDS.len() as u64) as usize];
    let sentence = |rng: &mut SplitMix| {
        let n = 5 + (rng.next_u64() % 9) as usize;
        let mut words: Vec<String> = (0..n).map(|_| pick(rng).to_string()).collect();
        if rng.next_f64() < 0.3 {
            words[n / 2].push(',');
        }
        let mut s = words.join(" ");
        s[..1].make_ascii_uppercase();
        s.push(if rng.next_f64() < 0.1 { '!' } else { '.' });
        s
    };
    let mut paragraphs: Vec<Vec<String>> = (0..3)
        .map(|_| (0..3).map(|_| sentence(rng)).collect())
        .collect();
    let text = |kw: &serde_json::Map<String, Value>, k: &str| {
        kw.get(k).and_then(Value::as_str).unwrap_or("").to_string()
    };
    let num = |kw: &serde_json::Map<String, Value>, k: &str| {
        kw.get(k).and_then(Value::as_u64).unwrap_or(1) as usize
    };
    let (mut divider, mut extra, mut prefix, mut suffix) =
        ("\n\n".to_string(), Vec::new(), Vec::new(), Vec::new());
    let (mut case, mut no_comma, mut json_wrap, mut quote, mut two) =
        (0, false, false, false, false);
    let mut sections: Option<(String, usize)> = None;
    for (i, id) in ids.iter().enumerate() {
        let kw = kwargs.get(i).copied().unwrap_or(&empty);
        if rng.next_f64() >= if follow { 0.9 } else { 0.4 } {
            continue;
        }
        let at_least = text(kw, "relation") != "less than";
        match *id {
            "keywords:existence" => {
                let words: Vec<String> = kw
                    .get("keywords")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default();
                extra.push(format!("This touches on {}.", words.join(" and ")));
            }
            "keywords:frequency" if at_least => {
                let w = text(kw, "keyword");
                extra.push(format!("{}.", vec![w; num(kw, "frequency")].join(" ")));
            }
            "keywords:letter_frequency" if text(kw, "let_relation") != "less than" => {
                extra.push(format!(
                    "{}.",
                    text(kw, "letter").repeat(num(kw, "let_frequency"))
                ));
            }
            "length_constraints:number_sentences" => {
                let n = num(kw, "num_sentences");
                let n = if at_least {
                    n
                } else {
                    n.saturating_sub(1).max(1)
                };
                paragraphs = vec![(0..n).map(|_| sentence(rng)).collect()];
            }
            "length_constraints:number_paragraphs" => {
                paragraphs.resize_with(num(kw, "num_paragraphs"), || vec![sentence(rng)]);
                divider = "\n\n***\n\n".into();
            }
            "length_constraints:nth_paragraph_first_word" => {
                paragraphs.resize_with(num(kw, "num_paragraphs"), || vec![sentence(rng)]);
                let nth = num(kw, "nth_paragraph").clamp(1, paragraphs.len());
                let first = text(kw, "first_word");
                paragraphs[nth - 1].insert(
                    0,
                    format!("{}{} begins here.", first[..1].to_uppercase(), &first[1..]),
                );
            }
            "length_constraints:number_words" => {
                let n = num(kw, "num_words");
                if at_least {
                    extra.push(format!(
                        "{}.",
                        (0..n).map(|_| pick(rng)).collect::<Vec<_>>().join(" ")
                    ));
                } else {
                    paragraphs = vec![vec![sentence(rng)]];
                }
            }
            "detectable_content:number_placeholders" => {
                extra.push(
                    (0..num(kw, "num_placeholders"))
                        .map(|k| format!("[field {k}]"))
                        .collect::<Vec<_>>()
                        .join(" "),
                );
            }
            "detectable_content:postscript" => {
                suffix.push(format!(
                    "{} {}",
                    text(kw, "postscript_marker"),
                    sentence(rng)
                ));
            }
            "detectable_format:number_bullet_lists" => {
                extra.push(
                    (0..num(kw, "num_bullets"))
                        .map(|_| format!("* {}", sentence(rng)))
                        .collect::<Vec<_>>()
                        .join("\n"),
                );
            }
            "detectable_format:constrained_response" => {
                prefix.push(
                    [
                        "My answer is yes.",
                        "My answer is no.",
                        "My answer is maybe.",
                    ][(rng.next_u64() % 3) as usize]
                        .to_string(),
                );
            }
            "detectable_format:number_highlighted_sections" => {
                for k in 0..num(kw, "num_highlights") {
                    let p = k % paragraphs.len();
                    paragraphs[p].push(format!("*{}*", sentence(rng)));
                }
            }
            "detectable_format:multiple_sections" => {
                sections = Some((text(kw, "section_spliter"), num(kw, "num_sections")));
            }
            "detectable_format:json_format" => json_wrap = true,
            "detectable_format:title" => prefix.insert(0, format!("<<{}>>", pick(rng))),
            "combination:two_responses" => two = true,
            "combination:repeat_prompt" => prefix.insert(0, text(kw, "prompt_to_repeat")),
            "startend:end_checker" => suffix.push(text(kw, "end_phrase")),
            "change_case:capital_word_frequency" if text(kw, "capital_relation") != "less than" => {
                extra.push(
                    (0..num(kw, "capital_frequency"))
                        .map(|_| pick(rng).to_uppercase())
                        .collect::<Vec<_>>()
                        .join(" "),
                );
            }
            "change_case:english_capital" => case = 1,
            "change_case:english_lowercase" => case = 2,
            "punctuation:no_comma" => no_comma = true,
            "startend:quotation" => quote = true,
            _ => {}
        }
    }
    let mut body: Vec<String> = match sections {
        Some((name, n)) => (1..=n)
            .map(|k| format!("{name} {k}\n{}", sentence(rng)))
            .collect(),
        None => paragraphs.iter().map(|p| p.join(" ")).collect(),
    };
    body.extend(extra);
    let mut out = prefix;
    out.push(body.join(&divider));
    out.extend(suffix);
    let mut reply = out.join("\n\n");
    if two {
        reply = format!("{reply}\n******\n{}", sentence(rng));
    }
    match case {
        1 => reply = reply.to_uppercase(),
        2 => reply = reply.to_lowercase(),
        _ => {}
    }
    if no_comma {
        reply = reply.replace(',', "");
    }
    if json_wrap {
        reply = format!("```json\n{}\n```", json!({"answer": reply}));
    }
    if quote {
        reply = format!("\"{reply}\"");
    }
    if rng.next_f64() < 0.2 {
        reply = reply.replacen(". ", ". **", 1).replacen(". ", "** ", 1);
    }
    if rng.next_f64() < 0.25 {
        reply = format!("Sure, here is my response:\n{reply}");
    }
    Some(reply)
}

/// Whether a gold holds the tests of a code prompt (a JSON object with
/// HumanEval, MBPP, APPS or open-r1 tests).
fn is_code_gold(gold: &str) -> bool {
    gold.trim_start().starts_with('{')
        && serde_json::from_str::<Value>(gold).is_ok_and(|v| {
            [
                "test",
                "test_list",
                "inputs",
                "input_output",
                "test_cases",
                "tests",
            ]
            .iter()
            .any(|k| v.get(k).is_some())
        })
}
