//! The OpenAI-compatible chat client: builds `/chat/completions` bodies with
//! the prompt's messages passed through untouched, reads every choice, and
//! retries what is worth retrying.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{Map, Value};

use super::endpoints::EndpointPool;
use super::ratelimit::{RateLimiter, ServerLimits};
use super::retry::{RetryPolicy, SplitMix};
use super::{Choice, Generation};
use crate::config::SamplerConfig;

/// Longest server error text kept in a rollout's `error`.
const MAX_ERROR_TEXT: usize = 300;

/// An OpenAI-compatible HTTP backend over one or several endpoints.
#[derive(Debug)]
pub struct HttpBackend {
    client: reqwest::Client,
    pool: EndpointPool,
    /// The request body's fixed fields, serialized without braces.
    fixed_fields: String,
    /// `sampler.seed`, unless `extra_params` sets the seed itself.
    seed: Option<i64>,
    /// Each sampling request gets its own seed derived from `seed`.
    seed_each_request: bool,
    api_key: Option<String>,
    api_key_env: Option<String>,
    policy: RetryPolicy,
    max_tokens: u32,
    retries: Arc<AtomicU64>,
    tokenize: bool,
    /// Boxed: its state is large, the client is moved by value.
    limiter: Box<RateLimiter>,
}

/// Where a request goes, relative to an endpoint's base URL.
#[derive(Debug, Clone, Copy)]
pub enum Route<'a> {
    /// Below the base URL (`…/v1/chat/completions`).
    V1(&'a str),
    /// Below the server's root: the base URL without its `/v1`
    /// (`…/classify`, `…/pooling`, `…/get_reward`, `…/tokenize`).
    Root(&'a str),
}

impl Route<'_> {
    /// The full URL on the endpoint `base`.
    pub fn url(self, base: &str) -> String {
        match self {
            Route::V1(path) => format!("{base}/{path}"),
            Route::Root(path) => format!("{}/{path}", server_root(base)),
        }
    }
}

/// `base` without a trailing `/v1`.
pub fn server_root(base: &str) -> &str {
    let base = base.trim_end_matches('/');
    base.strip_suffix("/v1").unwrap_or(base)
}

/// A successful answer: the parsed value, who answered, and how long the
/// last attempt took.
#[derive(Debug, Clone)]
pub struct Reply<T> {
    /// What `parse` read from the body.
    pub value: T,
    /// The endpoint that answered.
    pub endpoint: String,
    /// Milliseconds of the successful attempt.
    pub latency_ms: u64,
}

/// Why one attempt failed.
#[derive(Debug)]
struct Failure {
    message: String,
    retryable: bool,
    /// The endpoint itself misbehaved (counts toward its cool-down).
    endpoint_fault: bool,
    retry_after: Option<Duration>,
    /// HTTP 429: the server's rate limit.
    rate_limited: bool,
    /// Why retrying cannot help any request (401, 403, unknown model).
    systemic: Option<&'static str>,
    /// No connection could be made.
    refused: bool,
}

/// A request that failed after its retries.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestFailure {
    /// The last attempt's reason, without the retry count (the API key
    /// redacted): the failure's cause for grouping.
    pub cause: String,
    /// The full message recorded in the rollout rows.
    pub message: String,
    /// The endpoint of the last attempt.
    pub endpoint: String,
    /// Why no retry and no other prompt can change this answer (a refused
    /// key, a model the server does not serve, no server listening): the
    /// run stops at once.
    pub systemic: Option<&'static str>,
}

impl RequestFailure {
    /// A failure whose recorded message is its cause.
    pub fn new(cause: String, endpoint: &str, systemic: Option<&'static str>) -> Self {
        Self {
            message: cause.clone(),
            cause,
            endpoint: endpoint.to_string(),
            systemic,
        }
    }
}

impl Failure {
    fn new(message: String, retryable: bool, endpoint_fault: bool) -> Self {
        Self {
            message,
            retryable,
            endpoint_fault,
            retry_after: None,
            rate_limited: false,
            systemic: None,
            refused: false,
        }
    }
}

impl HttpBackend {
    /// A client for `urls` with the request parameters of `s`; the API key
    /// is read from the variable named by `s.api_key_env` (optional).
    /// `retries` counts every retry made.
    pub fn new(
        s: &SamplerConfig,
        model: &str,
        urls: &[String],
        retries: Arc<AtomicU64>,
    ) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs_f64(s.timeout))
            .connect_timeout(Duration::from_secs(10))
            .pool_max_idle_per_host(s.concurrent_requests.get())
            .build()?;
        let api_key = s
            .api_key_env
            .as_deref()
            .and_then(|name| std::env::var(name).ok())
            .filter(|k| !k.is_empty());
        Ok(Self {
            client,
            pool: {
                let pool = EndpointPool::new(urls).with_routing(s.routing);
                match &s.endpoints_file {
                    Some(path) => pool.watching(path.clone()),
                    None => pool,
                }
            },
            fixed_fields: fixed_fields(s, model),
            seed: s.seed.filter(|_| !s.extra_params.contains_key("seed")),
            seed_each_request: false,
            api_key,
            api_key_env: s.api_key_env.clone(),
            policy: RetryPolicy {
                max_retries: s.max_retries,
                base: Duration::from_secs_f64(s.retry_delay),
                cap: Duration::from_secs(60),
            },
            max_tokens: s.max_tokens.get(),
            retries,
            tokenize: false,
            limiter: Box::new(RateLimiter::new(s.max_rpm, s.max_tpm)),
        })
    }

    /// Per-choice completion tokens from the server's `/tokenize` when a
    /// request returns several choices (llama.cpp's `usage` counts one).
    pub fn count_tokens_by_tokenizing(&mut self) {
        self.tokenize = true;
    }

    /// Gives each sampling request its own seed, derived from
    /// `sampler.seed`, the prompt id and the request's first rollout index
    /// (see [`request_seed`]), instead of one seed for every request.
    pub fn seed_each_request(&mut self) {
        self.seed_each_request = true;
    }

    /// The endpoints' base URLs.
    pub fn urls(&self) -> Vec<String> {
        self.pool.urls()
    }

    /// `GET url` with the API key: the status and body, or why no answer came.
    pub(super) async fn get(&self, url: &str, timeout: Duration) -> Result<(u16, String), String> {
        let mut request = self.client.get(url).timeout(timeout);
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key);
        }
        let outcome = async {
            let response = request.send().await?;
            let status = response.status().as_u16();
            Ok((status, response.text().await?))
        }
        .await;
        outcome.map_err(|e| self.redact(&transport_failure(e).message))
    }

    /// `text` with the API key replaced by `***`.
    pub(super) fn redact(&self, text: &str) -> String {
        redact(text, self.api_key.as_deref())
    }

    /// What to do about a refused key: which variable to set, and whether
    /// it is set now (never its value).
    pub(super) fn key_hint(&self) -> String {
        match (&self.api_key_env, &self.api_key) {
            (Some(name), None) => format!(
                "the variable named by sampler.api_key_env ({name}) is not set: export {name}=... with a valid key"
            ),
            (Some(name), Some(_)) => format!(
                "check the key in {name} (named by sampler.api_key_env) and that it may use this server"
            ),
            (None, _) => {
                "sampler.api_key_env is null, so no key is sent: set it to the variable that holds the key".into()
            }
        }
    }

    /// Requests `n` responses to `messages` (a JSON array, sent as is) of
    /// prompt `id`, rollouts from `first_rollout` on, retrying per the
    /// policy. The error is the last attempt's reason.
    pub async fn generate(
        &self,
        id: &str,
        messages: &str,
        n: u32,
        first_rollout: u32,
    ) -> Result<Generation, RequestFailure> {
        let body = self.sample_body(id, messages, n, first_rollout);
        let max_tokens = self.max_tokens;
        let reply = self
            .post_for(Some(id), Route::V1("chat/completions"), &body, |text| {
                parse_response(text, n, max_tokens)
            })
            .await?;
        let mut generation = reply.value;
        if self.tokenize && generation.choices.len() > 1 {
            self.tokenize_choices(&reply.endpoint, &mut generation)
                .await;
        }
        generation.endpoint = reply.endpoint;
        generation.latency_ms = reply.latency_ms;
        Ok(generation)
    }

    /// The `/chat/completions` body for `messages` (a JSON array) with the
    /// configured model and parameters.
    pub fn chat_body(&self, messages: &str, n: u32) -> String {
        body(messages, n, self.seed, &self.fixed_fields)
    }

    /// The body of a sampling request: [`chat_body`](Self::chat_body) with
    /// the request's own seed when [`seed_each_request`](Self::seed_each_request)
    /// is on.
    pub fn sample_body(&self, id: &str, messages: &str, n: u32, first_rollout: u32) -> String {
        let seed = match self.seed {
            Some(base) if self.seed_each_request => Some(request_seed(base, id, first_rollout)),
            seed => seed,
        };
        body(messages, n, seed, &self.fixed_fields)
    }

    /// `POST`s `body` to `route` on the least-loaded endpoint and reads the
    /// answer with `parse`, retrying per the policy (an answer `parse`
    /// rejects counts as a malformed response). The error is the last
    /// attempt's reason. Every request rsr sends goes through here: the
    /// sampler's and the judge's.
    pub async fn post<T>(
        &self,
        route: Route<'_>,
        body: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Reply<T>, RequestFailure> {
        self.post_for(None, route, body, parse).await
    }

    /// [`post`](Self::post) for a request of prompt `key`, which the
    /// routing may keep on the prompt's server
    /// ([`EndpointPool::acquire_for`]).
    pub async fn post_for<T>(
        &self,
        key: Option<&str>,
        route: Route<'_>,
        body: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Reply<T>, RequestFailure> {
        let mut rng = SplitMix::from_entropy();
        let mut attempt = 0;
        // Tokens this request is expected to use, for `max_tpm`: its body
        // (about four bytes a token) and the completions seen so far.
        let estimate = (body.len() / 4) as u64 + self.limiter.completion_estimate(self.max_tokens);
        loop {
            // Also held back when the server said a limit is used up.
            self.limiter.acquire(estimate).await;
            let lease = self.pool.acquire_for(key);
            let started = Instant::now();
            let url = route.url(lease.url());
            let result = self.attempt(&url, body, &parse).await;
            if self.limiter.counts_tokens()
                && let Ok((_, Some((prompt, completion)))) = &result
            {
                let taken = self.limiter.taken(estimate);
                self.limiter
                    .settle(taken, prompt + completion, Some(*completion));
            }
            let result = result.map(|(value, _)| value).map_err(|mut f| {
                // A server or proxy may echo the key back; it never reaches
                // a row, a log line or an error from here.
                f.message = redact(&f.message, self.api_key.as_deref());
                f
            });
            match &result {
                Ok(_) => self.limiter.answered(),
                Err(f) if f.rate_limited => {
                    self.limiter
                        .throttled(f.retry_after, started, Instant::now());
                }
                Err(_) => {}
            }
            match result {
                Ok(value) => {
                    lease.success();
                    return Ok(Reply {
                        value,
                        endpoint: lease.url().to_string(),
                        latency_ms: started.elapsed().as_millis() as u64,
                    });
                }
                Err(failure) => {
                    if failure.endpoint_fault {
                        lease.failure();
                    }
                    lease.connected(!failure.refused);
                    let endpoint = lease.url().to_string();
                    drop(lease);
                    if failure.refused && self.pool.all_unreachable() {
                        // Every server refuses connections: retrying only
                        // delays the stop.
                        return Err(RequestFailure::new(
                            failure.message,
                            &endpoint,
                            Some(
                                "every endpoint refused its last connections: no server is listening",
                            ),
                        ));
                    }
                    if !failure.retryable {
                        return Err(RequestFailure::new(
                            failure.message,
                            &endpoint,
                            failure.systemic,
                        ));
                    }
                    if attempt >= self.policy.max_retries {
                        let tries = attempt + 1;
                        let mut gave_up = RequestFailure::new(failure.message, &endpoint, None);
                        gave_up.message = format!(
                            "{} (gave up after {tries} attempt{})",
                            gave_up.cause,
                            if tries == 1 { "" } else { "s" }
                        );
                        return Err(gave_up);
                    }
                    let delay = self
                        .policy
                        .delay(attempt, failure.retry_after, rng.next_f64());
                    tracing::debug!(
                        "retrying in {:.1} s after: {}",
                        delay.as_secs_f64(),
                        failure.message
                    );
                    self.retries.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
            }
        }
    }

    /// Counts each choice's tokens with `POST /tokenize` (a cut choice
    /// counts `max_tokens`); a choice that cannot be counted keeps no count.
    async fn tokenize_choices(&self, base: &str, generation: &mut Generation) {
        let root = server_root(base);
        for c in &mut generation.choices {
            if c.finish_reason.as_deref() == Some("length") {
                c.completion_tokens = Some(self.max_tokens);
                continue;
            }
            let text = format!(
                "{}{}",
                c.reasoning.as_deref().unwrap_or(""),
                c.content.as_deref().unwrap_or("")
            );
            let counted = async {
                let r = self
                    .client
                    .post(format!("{root}/tokenize"))
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(serde_json::json!({ "content": text }).to_string())
                    .send()
                    .await
                    .ok()?;
                let v: Value = serde_json::from_str(&r.text().await.ok()?).ok()?;
                Some(v.get("tokens")?.as_array()?.len() as u32)
            };
            c.completion_tokens = counted.await;
        }
    }

    /// One attempt: the parsed answer, and its `usage` (prompt, completion
    /// tokens) when `max_tpm` needs it.
    async fn attempt<T>(
        &self,
        url: &str,
        body: &str,
        parse: &impl Fn(&str) -> Result<T, String>,
    ) -> Result<(T, Option<(u64, u64)>), Failure> {
        let mut request = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string());
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.map_err(transport_failure)?;
        let status = response.status();
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok());
        self.limiter.observe(
            &ServerLimits::read(|n| header(n).map(str::to_string)),
            Instant::now(),
        );
        // Read before the body consumes the response; only failures use it.
        let retry_after = if status.is_success() {
            None
        } else {
            super::retry::server_hint(
                header("retry-after-ms"),
                header("retry-after"),
                std::time::SystemTime::now(),
            )
        };
        let text = response.text().await.map_err(transport_failure)?;
        if !status.is_success() {
            let code = status.as_u16();
            let retryable = matches!(code, 408 | 409 | 429) || status.is_server_error();
            let mut f = Failure::new(
                format!("HTTP {code}: {}", error_text(&text)),
                retryable,
                status.is_server_error(),
            );
            f.retry_after = retry_after;
            f.rate_limited = code == 429;
            // A refused key or an unknown model (OpenAI, vLLM and SGLang
            // answer 404 for a model they do not serve) fails every request.
            f.systemic = match code {
                401 | 403 => Some("the server refused the API key"),
                404 => Some("the server does not serve this model (or the URL is wrong)"),
                _ => None,
            };
            return Err(f);
        }
        let value = parse(&text)
            .map_err(|e| Failure::new(format!("malformed response: {e}"), true, true))?;
        let usage = if self.limiter.counts_tokens() {
            serde_json::from_str::<UsageOnly>(&text)
                .ok()
                .and_then(|u| u.usage)
                .map(|u| {
                    (
                        u64::from(u.prompt_tokens.unwrap_or(0)),
                        u64::from(u.completion_tokens.unwrap_or(0)),
                    )
                })
        } else {
            None
        };
        Ok((value, usage))
    }
}

/// Only the `usage` of an answer (for `max_tpm`).
#[derive(Deserialize)]
struct UsageOnly {
    #[serde(default)]
    usage: Option<Usage>,
}

/// What a transport error says, as rsr words it everywhere.
pub fn transport_message(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "request timed out".to_string()
    } else if e.is_connect() {
        format!("cannot connect: {}", root_cause(e))
    } else {
        format!("connection failed: {}", root_cause(e))
    }
}

fn transport_failure(e: reqwest::Error) -> Failure {
    let message = transport_message(&e);
    let mut f = Failure::new(message, true, true);
    f.refused = e.is_connect() && !e.is_timeout();
    f
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// `text` with every occurrence of `secret` replaced by `***`.
fn redact(text: &str, secret: Option<&str>) -> String {
    match secret {
        Some(k) if !k.is_empty() => text.replace(k, "***"),
        _ => text.to_string(),
    }
}

/// The server's error message (OpenAI's `{"error": {"message": …}}` when
/// present), shortened.
pub(super) fn error_text(body: &str) -> String {
    let message = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| {
            let e = v.get("error")?;
            e.get("message")
                .and_then(Value::as_str)
                .or_else(|| e.as_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| body.trim().to_string());
    let mut message = message.replace('\n', " ");
    if message.len() > MAX_ERROR_TEXT {
        let mut end = MAX_ERROR_TEXT;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push('…');
    }
    message
}

/// A `/chat/completions` body: `messages`, `n`, `seed` if any, and the
/// fixed fields.
fn body(messages: &str, n: u32, seed: Option<i64>, fixed: &str) -> String {
    match seed {
        Some(seed) => format!("{{\"messages\":{messages},\"n\":{n},\"seed\":{seed},{fixed}}}"),
        None => format!("{{\"messages\":{messages},\"n\":{n},{fixed}}}"),
    }
}

/// The seed of the sampling request for rollouts `first_rollout..` of
/// prompt `id` under `sampler.seed = base`: the same request gets the same
/// seed in every run (resumed, repeated, online or batch), different
/// requests of a prompt get different ones. In `0..2^31`, which every
/// server's seed field accepts.
pub fn request_seed(base: i64, id: &str, first_rollout: u32) -> i64 {
    let key = crate::data::validate::fnv1a64(id.as_bytes())
        ^ (u64::from(first_rollout)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mixed = SplitMix::new(key ^ base as u64).next_u64();
    (mixed >> 33) as i64
}

/// The body fields every request shares but `messages`, `n` and `seed`,
/// as `"k":v,...` (no braces).
fn fixed_fields(s: &SamplerConfig, model: &str) -> String {
    let mut m = Map::new();
    m.insert("model".into(), model.into());
    m.insert("temperature".into(), s.temperature.into());
    m.insert("top_p".into(), s.top_p.into());
    m.insert("max_tokens".into(), s.max_tokens.get().into());
    if let Some(stop) = &s.stop {
        m.insert("stop".into(), stop.clone().into());
    }
    for (k, v) in &s.extra_params {
        m.insert(k.clone(), v.clone());
    }
    m.remove("messages");
    m.remove("n");
    let object = Value::Object(m).to_string();
    object[1..object.len() - 1].to_string()
}

#[derive(Deserialize)]
struct ChatResponse {
    choices: Vec<ChatChoice>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct ChatChoice {
    #[serde(default)]
    index: Option<u32>,
    #[serde(default)]
    message: Option<ChatMessage>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct ChatMessage {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    reasoning_content: Option<String>,
    #[serde(default)]
    reasoning: Option<String>,
}

#[derive(Deserialize)]
struct Usage {
    #[serde(default)]
    prompt_tokens: Option<u32>,
    #[serde(default)]
    completion_tokens: Option<u32>,
}

/// Parses a chat completion: choices in `index` order, per-choice tokens
/// from `usage` (exact for one choice, split by text length for several,
/// with `length`-truncated choices at `max_tokens`).
pub fn parse_response(text: &str, n: u32, max_tokens: u32) -> Result<Generation, String> {
    let parsed: ChatResponse = serde_json::from_str(text).map_err(|e| e.to_string())?;
    if parsed.choices.is_empty() && n > 0 {
        return Err("no choices".into());
    }
    let mut choices: Vec<(u32, Choice)> = parsed
        .choices
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let (content, reasoning) = match c.message {
                Some(m) => (m.content, m.reasoning_content.or(m.reasoning)),
                None => (None, None),
            };
            (
                c.index.unwrap_or(i as u32),
                Choice {
                    content,
                    reasoning: reasoning.filter(|r| !r.is_empty()),
                    finish_reason: c.finish_reason,
                    completion_tokens: None,
                },
            )
        })
        .collect();
    choices.sort_by_key(|(i, _)| *i);
    let mut choices: Vec<Choice> = choices.into_iter().map(|(_, c)| c).collect();
    let usage = parsed.usage.unwrap_or(Usage {
        prompt_tokens: None,
        completion_tokens: None,
    });
    if let Some(total) = usage.completion_tokens {
        split_tokens(&mut choices, total, max_tokens);
    }
    Ok(Generation {
        choices,
        prompt_tokens: usage.prompt_tokens,
        endpoint: String::new(),
        latency_ms: 0,
    })
}

fn split_tokens(choices: &mut [Choice], total: u32, max_tokens: u32) {
    if let [only] = choices {
        only.completion_tokens = Some(total);
        return;
    }
    let is_cut = |c: &Choice| c.finish_reason.as_deref() == Some("length");
    let cut = choices.iter().filter(|c| is_cut(c)).count() as u64;
    let rest = u64::from(total).saturating_sub(cut * u64::from(max_tokens));
    let len = |c: &Choice| {
        (c.content.as_deref().map_or(0, str::len) + c.reasoning.as_deref().map_or(0, str::len))
            as u64
    };
    let chars: u64 = choices.iter().filter(|c| !is_cut(c)).map(len).sum();
    let others = choices.len() as u64 - cut;
    for c in choices.iter_mut() {
        let tokens = if is_cut(c) {
            u64::from(max_tokens)
        } else {
            (rest * len(c))
                .checked_div(chars)
                .unwrap_or(rest / others.max(1))
        };
        c.completion_tokens = Some(u32::try_from(tokens).unwrap_or(u32::MAX));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_in_index_order_with_reasoning_and_tokens() {
        let body = r#"{"id":"x","choices":[
            {"index":1,"message":{"role":"assistant","content":"bbbb"},"finish_reason":"stop"},
            {"index":0,"message":{"role":"assistant","content":"aa","reasoning_content":"think"},"finish_reason":"stop"},
            {"index":2,"message":{"role":"assistant","content":"cut"},"finish_reason":"length"}],
            "usage":{"prompt_tokens":12,"completion_tokens":130}}"#;
        let g = parse_response(body, 3, 100).unwrap();
        assert_eq!(g.prompt_tokens, Some(12));
        assert_eq!(g.choices[0].content.as_deref(), Some("aa"));
        assert_eq!(g.choices[0].reasoning.as_deref(), Some("think"));
        assert_eq!(g.choices[1].content.as_deref(), Some("bbbb"));
        let tokens: Vec<_> = g.choices.iter().map(|c| c.completion_tokens).collect();
        // 100 for the cut one; the other 30 split 7:4 by text length.
        assert_eq!(tokens, vec![Some(19), Some(10), Some(100)]);
    }

    #[test]
    fn one_choice_gets_the_exact_usage_and_reasoning_field_is_read() {
        let body = r#"{"choices":[{"message":{"content":"x","reasoning":"r"},"finish_reason":"stop"}],
            "usage":{"prompt_tokens":3,"completion_tokens":7}}"#;
        let g = parse_response(body, 1, 100).unwrap();
        assert_eq!(g.choices[0].completion_tokens, Some(7));
        assert_eq!(g.choices[0].reasoning.as_deref(), Some("r"));
    }

    #[test]
    fn malformed_bodies_are_errors() {
        assert!(parse_response("{not json", 1, 10).is_err());
        assert!(parse_response(r#"{"choices":[]}"#, 1, 10).is_err());
        assert!(parse_response(r#"{"object":"error"}"#, 1, 10).is_err());
    }

    #[test]
    fn server_error_messages_are_read_and_shortened() {
        assert_eq!(
            error_text(r#"{"error":{"message":"maximum context length is 4096"}}"#),
            "maximum context length is 4096"
        );
        assert_eq!(error_text("  bad gateway\n"), "bad gateway");
        assert!(error_text(&"é".repeat(400)).ends_with('…'));
    }

    #[test]
    fn the_key_is_redacted() {
        let m = "HTTP 401: Incorrect API key provided: sk-abc (sk-abc)";
        assert_eq!(
            redact(m, Some("sk-abc")),
            "HTTP 401: Incorrect API key provided: *** (***)"
        );
        assert_eq!(redact(m, Some("")), m);
        assert_eq!(redact(m, None), m);
    }

    #[test]
    fn fixed_fields_merge_extra_params() {
        let sources = crate::config::Sources {
            file: None,
            env: vec![],
            overrides: vec![],
        };
        let mut s = crate::config::resolve(&sources, &[])
            .unwrap()
            .config
            .sampler;
        s.seed = Some(3);
        s.stop = Some(vec!["</answer>".into()]);
        s.extra_params.insert(
            "chat_template_kwargs".into(),
            serde_json::json!({"enable_thinking": true}),
        );
        s.extra_params.insert("top_p".into(), 0.95.into());
        let body = body("[]", 2, s.seed, &fixed_fields(&s, "m"));
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["model"], "m");
        assert_eq!(v["n"], 2);
        assert_eq!(v["seed"], 3);
        assert_eq!(v["top_p"], 0.95);
        assert_eq!(v["stop"][0], "</answer>");
        assert_eq!(v["chat_template_kwargs"]["enable_thinking"], true);
    }

    #[test]
    fn request_seeds_are_stable_distinct_and_in_31_bits() {
        let a = request_seed(7, "p1", 0);
        assert_eq!(a, request_seed(7, "p1", 0));
        let others = [
            request_seed(7, "p1", 2),
            request_seed(7, "p2", 0),
            request_seed(8, "p1", 0),
        ];
        assert!(others.iter().all(|&o| o != a), "{a} {others:?}");
        let all = (0..1000).map(|i| request_seed(-1, &format!("id{i}"), i));
        assert!(all.chain([a]).all(|s| (0..1 << 31).contains(&s)));
    }
}
