//! The providers' batch endpoints over HTTP: OpenAI's Files + Batches and
//! Anthropic's Message Batches behind one [`Api`], with both spellings of
//! the statuses read into one [`Remote`]. Transient faults (transport,
//! 429, 5xx) are retried with backoff; anything else is an error carrying
//! the provider's own message.

use std::time::Duration;

use serde_json::{Value, json};

use crate::config::{BatchApi, SamplerConfig};

/// A batch as the provider reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct Remote {
    /// The provider's id.
    pub id: String,
    /// The provider's status word (`in_progress`, `canceling`, `ended`, …).
    pub status: String,
    /// Finished: no further status will come.
    pub ended: bool,
    /// Requests done, failed, in all.
    pub completed: u64,
    /// Requests that failed (errored, and for Anthropic canceled/expired).
    pub failed: u64,
    /// Requests in the batch.
    pub total: u64,
    /// OpenAI: the output and error files.
    pub output_file: Option<String>,
    /// OpenAI: the error file.
    pub error_file: Option<String>,
    /// Anthropic: where the results are.
    pub results_url: Option<String>,
    /// Why the batch failed, in the provider's words.
    pub error: Option<String>,
    /// OpenAI's metadata (`null` for Anthropic).
    pub metadata: Value,
    /// Unix seconds.
    pub created_at: i64,
}

/// An error from a batch endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// What failed, with the provider's message.
    pub message: String,
    /// A wrong key or a missing permission: nothing else will work either.
    pub refused: bool,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// A provider's batch API.
#[derive(Debug, Clone)]
pub struct Api {
    client: reqwest::Client,
    kind: BatchApi,
    base: String,
    key: Option<String>,
    key_env: Option<String>,
    max_retries: u32,
    retry_delay: Duration,
}

impl Api {
    /// The batch API of `sampler.*` (its first base URL, its key).
    pub fn new(s: &SamplerConfig) -> Result<Self, ApiError> {
        let base = s
            .base_url
            .as_ref()
            .and_then(|b| b.urls().first().cloned())
            .ok_or_else(|| ApiError {
                message: "sampler.mode: batch needs sampler.base_url (the provider's API, https://api.openai.com/v1 say)".into(),
                refused: true,
            })?;
        let key = s
            .api_key_env
            .as_deref()
            .and_then(|n| std::env::var(n).ok())
            .filter(|k| !k.is_empty());
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs_f64(s.timeout.max(60.0)))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| ApiError {
                message: e.to_string(),
                refused: true,
            })?;
        Ok(Self {
            client,
            kind: s.batch.api,
            base: base.trim_end_matches('/').to_string(),
            key,
            key_env: s.api_key_env.clone(),
            max_retries: s.max_retries,
            retry_delay: Duration::from_secs_f64(s.retry_delay),
        })
    }

    /// Which API this is.
    pub fn kind(&self) -> BatchApi {
        self.kind
    }

    /// The API's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        let r = self.client.request(method, url);
        match (self.kind, &self.key) {
            (BatchApi::Openai, Some(k)) => r.bearer_auth(k),
            (BatchApi::Anthropic, Some(k)) => r
                .header("x-api-key", k)
                .header("anthropic-version", "2023-06-01"),
            (BatchApi::Anthropic, None) => r.header("anthropic-version", "2023-06-01"),
            (BatchApi::Openai, None) => r,
        }
    }

    /// Sends a request built by `build`, retrying transient faults; the
    /// answer's body on success.
    async fn send(
        &self,
        what: &str,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<bytes::Bytes, ApiError> {
        let mut attempt = 0;
        loop {
            let (message, retryable, refused) = match build().send().await {
                Ok(r) if r.status().is_success() => match r.bytes().await {
                    Ok(b) => return Ok(b),
                    Err(e) => (format!("reading the answer: {e}"), true, false),
                },
                Ok(r) => {
                    let status = r.status();
                    let body = r.text().await.unwrap_or_default();
                    let message = provider_message(&body);
                    let code = status.as_u16();
                    (
                        format!("HTTP {code}: {message}"),
                        code == 408 || code == 409 || code == 429 || code >= 500,
                        code == 401 || code == 403,
                    )
                }
                Err(e) => (crate::sampler::client::transport_message(&e), true, false),
            };
            let message = self.redact(&message);
            if !retryable || attempt >= self.max_retries {
                let hint = if refused {
                    self.key_hint()
                } else {
                    String::new()
                };
                return Err(ApiError {
                    message: format!("{what}: {message}{hint}"),
                    refused,
                });
            }
            let delay = self.retry_delay.saturating_mul(1 << attempt.min(6));
            tracing::debug!("{what}: {message}; retrying in {delay:?}");
            tokio::time::sleep(delay.min(Duration::from_secs(60))).await;
            attempt += 1;
        }
    }

    fn redact(&self, text: &str) -> String {
        match &self.key {
            Some(k) if k.len() >= 4 => text.replace(k.as_str(), "***"),
            _ => text.to_string(),
        }
    }

    fn key_hint(&self) -> String {
        match (&self.key_env, &self.key) {
            (Some(n), None) => format!(" (sampler.api_key_env names {n}, which is not set)"),
            (Some(n), Some(_)) => format!(" (check the key in {n})"),
            (None, _) => " (sampler.api_key_env is null: no key is sent)".into(),
        }
    }

    async fn json(
        &self,
        what: &str,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Value, ApiError> {
        let bytes = self.send(what, build).await?;
        serde_json::from_slice(&bytes).map_err(|e| ApiError {
            message: format!("{what}: the answer is not JSON ({e})"),
            refused: false,
        })
    }

    /// OpenAI: uploads a request file as `filename` (purpose `batch`).
    pub async fn upload(&self, filename: &str, content: &[u8]) -> Result<String, ApiError> {
        let boundary = format!("rsr{:016x}", crate::data::validate::fnv1a64(content));
        let mut body = Vec::with_capacity(content.len() + 512);
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n\
                 --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n\
                 Content-Type: application/jsonl\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(content);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let url = format!("{}/files", self.base);
        let v = self
            .json("uploading the request file", || {
                self.request(reqwest::Method::POST, &url)
                    .header(
                        "content-type",
                        format!("multipart/form-data; boundary={boundary}"),
                    )
                    .body(body.clone())
            })
            .await?;
        id_of(&v, "uploading the request file")
    }

    /// OpenAI: the uploaded file named `filename`, if there is one.
    pub async fn find_file(&self, filename: &str) -> Result<Option<String>, ApiError> {
        let url = format!("{}/files?purpose=batch", self.base);
        let v = self
            .json("listing files", || self.request(reqwest::Method::GET, &url))
            .await?;
        Ok(v["data"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|f| f["filename"] == filename)
            .and_then(|f| f["id"].as_str().map(str::to_string)))
    }

    /// Creates a batch: OpenAI from an uploaded file with `metadata`;
    /// Anthropic from the request lines themselves.
    pub async fn create(
        &self,
        file_id: Option<&str>,
        lines: &[u8],
        metadata: &Value,
        completion_window: &str,
    ) -> Result<Remote, ApiError> {
        match self.kind {
            BatchApi::Openai => {
                let url = format!("{}/batches", self.base);
                let body = json!({
                    "input_file_id": file_id,
                    "endpoint": "/v1/chat/completions",
                    "completion_window": completion_window,
                    "metadata": metadata,
                });
                let v = self
                    .json("creating the batch", || {
                        self.request(reqwest::Method::POST, &url)
                            .header("content-type", "application/json")
                            .body(body.to_string())
                    })
                    .await?;
                self.read(&v)
            }
            BatchApi::Anthropic => {
                let url = format!("{}/messages/batches", self.base);
                let mut body = b"{\"requests\":[".to_vec();
                for (i, line) in lines
                    .split(|&b| b == b'\n')
                    .filter(|l| !l.is_empty())
                    .enumerate()
                {
                    if i > 0 {
                        body.push(b',');
                    }
                    body.extend_from_slice(line);
                }
                body.extend_from_slice(b"]}");
                let v = self
                    .json("creating the batch", || {
                        self.request(reqwest::Method::POST, &url)
                            .header("content-type", "application/json")
                            .body(body.clone())
                    })
                    .await?;
                self.read(&v)
            }
        }
    }

    /// A batch's status.
    pub async fn get(&self, id: &str) -> Result<Remote, ApiError> {
        let url = format!("{}/{}/{id}", self.base, self.collection());
        let v = self
            .json("checking the batch", || {
                self.request(reqwest::Method::GET, &url)
            })
            .await?;
        self.read(&v)
    }

    /// Asks the provider to cancel a batch.
    pub async fn cancel(&self, id: &str) -> Result<Remote, ApiError> {
        let url = format!("{}/{}/{id}/cancel", self.base, self.collection());
        let v = self
            .json("cancelling the batch", || {
                self.request(reqwest::Method::POST, &url)
            })
            .await?;
        self.read(&v)
    }

    /// Batches created at or after `since` (Unix seconds), newest first, as
    /// far as the listing goes back.
    pub async fn list_since(&self, since: i64) -> Result<Vec<Remote>, ApiError> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..100 {
            let mut url = format!("{}/{}?limit=100", self.base, self.collection());
            if let Some(a) = &after {
                let key = match self.kind {
                    BatchApi::Openai => "after",
                    BatchApi::Anthropic => "after_id",
                };
                url.push_str(&format!("&{key}={a}"));
            }
            let v = self
                .json("listing batches", || {
                    self.request(reqwest::Method::GET, &url)
                })
                .await?;
            let mut older = false;
            for b in v["data"].as_array().into_iter().flatten() {
                let r = self.read(b)?;
                if r.created_at < since {
                    older = true;
                    continue;
                }
                out.push(r);
            }
            let more = v["has_more"].as_bool().unwrap_or(false);
            after = v["last_id"]
                .as_str()
                .map(str::to_string)
                .or_else(|| out.last().map(|r| r.id.clone()));
            if !more || older || after.is_none() {
                break;
            }
        }
        Ok(out)
    }

    /// The result lines of an ended batch: OpenAI's output file then its
    /// error file (either may be missing), or Anthropic's results.
    pub async fn results(&self, r: &Remote) -> Result<Vec<u8>, ApiError> {
        let mut out = Vec::new();
        let mut add = |bytes: bytes::Bytes| {
            out.extend_from_slice(&bytes);
            if !out.is_empty() && !out.ends_with(b"\n") {
                out.push(b'\n');
            }
        };
        match self.kind {
            BatchApi::Openai => {
                for file in [&r.output_file, &r.error_file].into_iter().flatten() {
                    let url = format!("{}/files/{file}/content", self.base);
                    add(self
                        .send("downloading results", || {
                            self.request(reqwest::Method::GET, &url)
                        })
                        .await?);
                }
            }
            BatchApi::Anthropic => {
                if let Some(url) = &r.results_url {
                    add(self
                        .send("downloading results", || {
                            self.request(reqwest::Method::GET, url)
                        })
                        .await?);
                }
            }
        }
        Ok(out)
    }

    fn collection(&self) -> &'static str {
        match self.kind {
            BatchApi::Openai => "batches",
            BatchApi::Anthropic => "messages/batches",
        }
    }

    /// Reads a batch object in either API's spelling.
    fn read(&self, v: &Value) -> Result<Remote, ApiError> {
        let id = id_of(v, "reading the batch")?;
        let text = |k: &str| v[k].as_str().map(str::to_string);
        let n = |x: &Value| x.as_u64().unwrap_or(0);
        Ok(match self.kind {
            BatchApi::Openai => {
                let status = text("status").unwrap_or_default();
                let c = &v["request_counts"];
                let error = v["errors"]["data"].as_array().and_then(|d| {
                    let all: Vec<String> = d
                        .iter()
                        .map(|e| {
                            let m = e["message"].as_str().unwrap_or("");
                            match e["code"].as_str() {
                                Some(code) => format!("{code}: {m}"),
                                None => m.to_string(),
                            }
                        })
                        .collect();
                    (!all.is_empty()).then(|| all.join("; "))
                });
                Remote {
                    id,
                    ended: matches!(
                        status.as_str(),
                        "completed" | "failed" | "expired" | "cancelled"
                    ),
                    status,
                    completed: n(&c["completed"]),
                    failed: n(&c["failed"]),
                    total: n(&c["total"]),
                    output_file: text("output_file_id"),
                    error_file: text("error_file_id"),
                    results_url: None,
                    error,
                    metadata: v["metadata"].clone(),
                    created_at: v["created_at"].as_i64().unwrap_or(0),
                }
            }
            BatchApi::Anthropic => {
                let status = text("processing_status").unwrap_or_default();
                let c = &v["request_counts"];
                let failed = n(&c["errored"]) + n(&c["canceled"]) + n(&c["expired"]);
                let completed = n(&c["succeeded"]);
                Remote {
                    id,
                    ended: status == "ended",
                    status,
                    completed,
                    failed,
                    total: completed + failed + n(&c["processing"]),
                    output_file: None,
                    error_file: None,
                    results_url: text("results_url"),
                    error: None,
                    metadata: Value::Null,
                    created_at: v["created_at"]
                        .as_str()
                        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                        .map_or(0, |t| t.timestamp()),
                }
            }
        })
    }
}

fn id_of(v: &Value, what: &str) -> Result<String, ApiError> {
    v["id"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| ApiError {
            message: format!("{what}: the answer has no id: {}", short(&v.to_string())),
            refused: false,
        })
}

/// The provider's error message in an error body, or the body itself.
fn provider_message(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    v["error"]["message"]
        .as_str()
        .or_else(|| v["message"].as_str())
        .map(str::to_string)
        .unwrap_or_else(|| short(body.trim()))
}

fn short(s: &str) -> String {
    let mut end = s.len().min(300);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}
