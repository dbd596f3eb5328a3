//! `rsr-mock`: an OpenAI-compatible chat server for tests, the quickstart
//! and benchmarks. Answers `POST /v1/chat/completions` (with `n`) after a
//! configurable latency, right with a per-prompt probability (gold answers
//! read from a file), and injects faults on demand: 429 with Retry-After,
//! 500, 400, timeouts, malformed JSON, dropped connections, truncation, and
//! a server that dies after N requests.
//! Also serves `GET /health`, `GET /v1/models` and `GET /stats` (counters).

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
    /// Answer N chat requests, then die when the next one arrives (the
    /// process exits: requests in flight are cut, later connections are
    /// refused), like a server that crashes mid-run.
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
    max_in_flight: AtomicU64,
}

struct Mock {
    args: Args,
    gold: HashMap<String, String>,
    stats: Stats,
    started: Instant,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let gold = match &args.gold {
        Some(path) => load_gold(path)
            .with_context(|| format!("cannot read gold answers from {}", path.display()))?,
        None => HashMap::new(),
    };
    let listener = tokio::net::TcpListener::bind((args.host.as_str(), args.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", args.host, args.port))?;
    let addr: SocketAddr = listener.local_addr()?;
    println!("listening on http://{addr}");
    std::io::stdout().flush()?;
    let mock = Arc::new(Mock {
        args,
        gold,
        stats: Stats::default(),
        started: Instant::now(),
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

impl Mock {
    async fn handle(&self, req: Request<hyper::body::Incoming>) -> Result<Response<Body>, Hangup> {
        let path = req.uri().path().to_string();
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
                let body = req
                    .into_body()
                    .collect()
                    .await
                    .map_err(|_| Hangup)?
                    .to_bytes();
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
                let body = req
                    .into_body()
                    .collect()
                    .await
                    .map_err(|_| Hangup)?
                    .to_bytes();
                let in_flight = self.stats.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
                self.stats
                    .max_in_flight
                    .fetch_max(in_flight, Ordering::Relaxed);
                let out = self.chat(&body).await;
                self.stats.in_flight.fetch_sub(1, Ordering::Relaxed);
                out
            }
            _ => Ok(error_response(StatusCode::NOT_FOUND, "no such route")),
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
        })
    }

    async fn chat(&self, body: &[u8]) -> Result<Response<Body>, Hangup> {
        let a = &self.args;
        let count = self.stats.requests.fetch_add(1, Ordering::Relaxed);
        if a.die_after.is_some_and(|n| count >= n) {
            eprintln!("rsr-mock: dying after {count} chat requests (--die-after)");
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
        let key = messages.to_string();
        let gold = self.gold.get(&key).cloned().unwrap_or_else(|| "42".into());
        let accuracy = a
            .accuracy
            .unwrap_or_else(|| SplitMix::new(fnv(&key)).next_f64());
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

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Gold answers keyed by the compact JSON of the messages.
fn load_gold(path: &Path) -> anyhow::Result<HashMap<String, String>> {
    let mut out = HashMap::new();
    let mut add = |messages: &str, answer: &str| -> anyhow::Result<()> {
        let v: Value = serde_json::from_str(messages).context("`messages` is not JSON")?;
        out.insert(v.to_string(), answer.to_string());
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
            for i in 0..batch.num_rows() {
                if m.is_valid(i) && a.is_valid(i) {
                    add(m.value(i), a.value(i))?;
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
            if let (Some(m), Some(a)) = (v.get("messages"), answer) {
                add(&m.to_string(), &a)?;
            }
        }
    }
    Ok(out)
}
