//! The mock's batch APIs: OpenAI's Files + Batches (`/v1/files`,
//! `/v1/batches`) and Anthropic's Message Batches
//! (`/v1/messages/batches`). A batch moves through its statuses in
//! `--batch-seconds` (a "24 h" batch in a second), each request answered by
//! the chat handler itself (the same answers, seeds and counters as
//! online), results written out of order. Faults on demand: a size limit
//! and an enqueued-token limit failing validation, expiry after some
//! requests, cancel.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use http_body_util::BodyExt;
use hyper::{Request, Response, StatusCode};
use serde_json::{Value, json};

use super::{Body, Hangup, Mock, error_response, full, json_response};

/// Which API a batch came through.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    OpenAi,
    Anthropic,
}

/// An uploaded file.
struct File {
    filename: String,
    bytes: Vec<u8>,
}

/// A batch and its requests.
struct Job {
    id: String,
    kind: Kind,
    requests: Vec<(String, Value)>,
    created: Instant,
    created_at: i64,
    metadata: Value,
    input_file: String,
    /// Why validation fails, when it does: (code, message).
    invalid: Option<(String, String)>,
    /// When a cancel was asked.
    cancelled_at: Option<Instant>,
    /// Output and error lines, once ended.
    results: Option<(Vec<String>, Vec<String>)>,
    /// Status when ended.
    end: Option<&'static str>,
}

/// The batch state of the mock.
#[derive(Default)]
pub(super) struct Batches {
    files: Mutex<HashMap<String, File>>,
    jobs: tokio::sync::Mutex<Vec<Job>>,
    next: AtomicU64,
    /// Files uploaded, batches created, requests run, cancels.
    pub uploads: AtomicU64,
    pub created: AtomicU64,
    pub requests: AtomicU64,
    pub cancels: AtomicU64,
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Unix seconds as RFC 3339 (`YYYY-MM-DDTHH:MM:SSZ`), as Anthropic writes times.
fn rfc3339(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl Mock {
    /// Routes the batch endpoints (`/v1/files…`, `/v1/batches…`,
    /// `/v1/messages/batches…`).
    pub(super) async fn batch_route(
        &self,
        req: Request<hyper::body::Incoming>,
    ) -> Result<Response<Body>, Hangup> {
        let path = req.uri().path().to_string();
        let query = req.uri().query().unwrap_or("").to_string();
        let method = req.method().as_str().to_string();
        if let Some(refused) = self.refuse_key(&req) {
            return Ok(refused);
        }
        let host = req
            .headers()
            .get("host")
            .and_then(|h| h.to_str().ok())
            .unwrap_or("127.0.0.1")
            .to_string();
        let content_type = req
            .headers()
            .get("content-type")
            .and_then(|h| h.to_str().ok())
            .unwrap_or("")
            .to_string();
        let body = super::read_body(req).await?;
        let parts: Vec<&str> = path.trim_start_matches("/v1/").split('/').collect();
        let param = |k: &str| {
            query
                .split('&')
                .find_map(|kv| kv.strip_prefix(&format!("{k}=")).map(str::to_string))
        };
        let out = match (method.as_str(), parts.as_slice()) {
            ("POST", ["files"]) => self.upload(&content_type, &body),
            ("GET", ["files"]) => {
                let files = self.batches.files.lock().expect("files lock");
                let data: Vec<Value> = files
                    .iter()
                    .map(|(id, f)| json!({"id": id, "object": "file", "filename": f.filename, "purpose": "batch", "bytes": f.bytes.len()}))
                    .collect();
                json_response(StatusCode::OK, json!({"object": "list", "data": data}))
            }
            ("GET", ["files", id, "content"]) => {
                match self.batches.files.lock().expect("files lock").get(*id) {
                    Some(f) => Response::builder()
                        .status(StatusCode::OK)
                        .header("content-type", "application/jsonl")
                        .body(full(f.bytes.clone()))
                        .expect("valid response"),
                    None => error_response(StatusCode::NOT_FOUND, "no such file"),
                }
            }
            ("POST", ["batches"]) => self.create_openai(&body).await,
            ("POST", ["messages", "batches"]) => self.create_anthropic(&body).await,
            ("GET", ["batches"]) => {
                self.list(Kind::OpenAi, param("limit"), param("after"), &host)
                    .await
            }
            ("GET", ["messages", "batches"]) => {
                self.list(Kind::Anthropic, param("limit"), param("after_id"), &host)
                    .await
            }
            ("GET", ["batches", id]) | ("GET", ["messages", "batches", id]) => {
                self.show(id, &host).await
            }
            ("POST", ["batches", id, "cancel"])
            | ("POST", ["messages", "batches", id, "cancel"]) => self.cancel(id, &host).await,
            ("GET", ["messages", "batches", id, "results"]) => self.anthropic_results(id).await,
            _ => error_response(StatusCode::NOT_FOUND, "no such route"),
        };
        Ok(out)
    }

    fn upload(&self, content_type: &str, body: &[u8]) -> Response<Body> {
        let Some(boundary) = content_type.split("boundary=").nth(1) else {
            return error_response(StatusCode::BAD_REQUEST, "expected multipart/form-data");
        };
        let (mut filename, mut file, mut purpose) = (None, None, None);
        let delimiter = format!("--{}", boundary.trim_matches('"'));
        for part in split_bytes(body, delimiter.as_bytes()) {
            let Some(split) = find(part, b"\r\n\r\n") else {
                continue;
            };
            let headers = String::from_utf8_lossy(&part[..split]).to_string();
            let mut content = &part[split + 4..];
            if content.ends_with(b"\r\n") {
                content = &content[..content.len() - 2];
            }
            if headers.contains("name=\"file\"") {
                filename = headers
                    .split("filename=\"")
                    .nth(1)
                    .and_then(|s| s.split('"').next())
                    .map(str::to_string);
                file = Some(content.to_vec());
            } else if headers.contains("name=\"purpose\"") {
                purpose = Some(String::from_utf8_lossy(content).to_string());
            }
        }
        let (Some(bytes), Some("batch")) = (file, purpose.as_deref()) else {
            return error_response(
                StatusCode::BAD_REQUEST,
                "expected a file with purpose batch",
            );
        };
        if bytes.len() as u64 > self.args.batch_max_bytes {
            return error_response(
                StatusCode::BAD_REQUEST,
                &format!(
                    "File is too large: {} bytes; the limit is {} bytes.",
                    bytes.len(),
                    self.args.batch_max_bytes
                ),
            );
        }
        let id = format!("file-{}", self.batches.next.fetch_add(1, Ordering::Relaxed));
        self.batches.uploads.fetch_add(1, Ordering::Relaxed);
        let size = bytes.len();
        let filename = filename.unwrap_or_else(|| "upload.jsonl".into());
        self.batches.files.lock().expect("files lock").insert(
            id.clone(),
            File {
                filename: filename.clone(),
                bytes,
            },
        );
        json_response(
            StatusCode::OK,
            json!({"id": id, "object": "file", "bytes": size, "filename": filename, "purpose": "batch", "created_at": now_unix()}),
        )
    }

    /// Why a batch of `requests` fails validation, if it does.
    fn invalid(&self, requests: &[(String, Value)]) -> Option<(String, String)> {
        let a = &self.args;
        if requests.len() as u64 > a.batch_max_requests {
            return Some((
                "too_many_requests".into(),
                format!(
                    "The batch has {} requests; at most {} requests are allowed per batch.",
                    requests.len(),
                    a.batch_max_requests
                ),
            ));
        }
        if let Some(limit) = a.batch_max_enqueued_tokens {
            let tokens: u64 = requests
                .iter()
                .map(|(_, b)| {
                    let n = b["n"].as_u64().unwrap_or(1);
                    b["max_tokens"].as_u64().unwrap_or(4096) * n
                        + b["messages"].to_string().len() as u64 / 4
                })
                .sum();
            if tokens > limit {
                return Some((
                    "token_limit_exceeded".into(),
                    format!(
                        "Enqueued token limit reached for {} in organization org-mock. Limit: {limit} enqueued tokens. Please try submitting an equivalent job once your existing jobs are finished.",
                        a.model
                    ),
                ));
            }
        }
        None
    }

    async fn create_openai(&self, body: &[u8]) -> Response<Body> {
        let Ok(v) = serde_json::from_slice::<Value>(body) else {
            return error_response(StatusCode::BAD_REQUEST, "invalid JSON");
        };
        let Some(file_id) = v["input_file_id"].as_str() else {
            return error_response(StatusCode::BAD_REQUEST, "input_file_id is required");
        };
        let content = match self.batches.files.lock().expect("files lock").get(file_id) {
            Some(f) => f.bytes.clone(),
            None => {
                return error_response(
                    StatusCode::NOT_FOUND,
                    &format!("No such File object: {file_id}"),
                );
            }
        };
        let mut requests = Vec::new();
        for (i, line) in String::from_utf8_lossy(&content).lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let Ok(l) = serde_json::from_str::<Value>(line) else {
                return error_response(
                    StatusCode::BAD_REQUEST,
                    &format!("line {}: invalid JSON", i + 1),
                );
            };
            requests.push((
                l["custom_id"].as_str().unwrap_or("").to_string(),
                l["body"].clone(),
            ));
        }
        let id = format!(
            "batch_{}",
            self.batches.next.fetch_add(1, Ordering::Relaxed)
        );
        let job = Job {
            id: id.clone(),
            kind: Kind::OpenAi,
            invalid: self.invalid(&requests),
            requests,
            created: Instant::now(),
            created_at: now_unix(),
            metadata: v["metadata"].clone(),
            input_file: file_id.to_string(),
            cancelled_at: None,
            results: None,
            end: None,
        };
        self.batches.created.fetch_add(1, Ordering::Relaxed);
        let mut jobs = self.batches.jobs.lock().await;
        jobs.push(job);
        let view = self.view(jobs.last_mut().expect("pushed"), "").await;
        json_response(StatusCode::OK, view)
    }

    async fn create_anthropic(&self, body: &[u8]) -> Response<Body> {
        let Ok(v) = serde_json::from_slice::<Value>(body) else {
            return error_response(StatusCode::BAD_REQUEST, "invalid JSON");
        };
        let mut requests = Vec::new();
        for r in v["requests"].as_array().into_iter().flatten() {
            let p = &r["params"];
            let mut messages = Vec::new();
            if let Some(system) = p["system"].as_str() {
                messages.push(json!({"role": "system", "content": system}));
            }
            messages.extend(p["messages"].as_array().cloned().unwrap_or_default());
            let chat = json!({
                "model": p["model"], "max_tokens": p["max_tokens"], "n": 1,
                "temperature": p["temperature"], "messages": messages,
            });
            requests.push((r["custom_id"].as_str().unwrap_or("").to_string(), chat));
        }
        if requests.is_empty() {
            return error_response(
                StatusCode::BAD_REQUEST,
                "requests: at least one request is required",
            );
        }
        let invalid = self.invalid(&requests);
        if let Some((_, message)) = invalid {
            // Anthropic refuses at creation.
            return error_response(StatusCode::BAD_REQUEST, &message);
        }
        let id = format!(
            "msgbatch_{:024}",
            self.batches.next.fetch_add(1, Ordering::Relaxed)
        );
        self.batches.created.fetch_add(1, Ordering::Relaxed);
        let mut jobs = self.batches.jobs.lock().await;
        jobs.push(Job {
            id,
            kind: Kind::Anthropic,
            requests,
            created: Instant::now(),
            created_at: now_unix(),
            metadata: Value::Null,
            input_file: String::new(),
            invalid: None,
            cancelled_at: None,
            results: None,
            end: None,
        });
        let view = self.view(jobs.last_mut().expect("pushed"), "").await;
        json_response(StatusCode::OK, view)
    }

    async fn list(
        &self,
        kind: Kind,
        limit: Option<String>,
        after: Option<String>,
        host: &str,
    ) -> Response<Body> {
        let limit: usize = limit
            .and_then(|l| l.parse().ok())
            .unwrap_or(20)
            .clamp(1, 100);
        let mut jobs = self.batches.jobs.lock().await;
        let mut ids: Vec<usize> = (0..jobs.len())
            .filter(|&i| jobs[i].kind == kind)
            .rev()
            .collect();
        if let Some(a) = after
            && let Some(pos) = ids.iter().position(|&i| jobs[i].id == a)
        {
            ids.drain(..=pos);
        }
        let more = ids.len() > limit;
        ids.truncate(limit);
        let mut data = Vec::new();
        for i in ids {
            data.push(self.view(&mut jobs[i], host).await);
        }
        let first = data.first().map(|d| d["id"].clone()).unwrap_or(Value::Null);
        let last = data.last().map(|d| d["id"].clone()).unwrap_or(Value::Null);
        json_response(
            StatusCode::OK,
            json!({"object": "list", "data": data, "has_more": more, "first_id": first, "last_id": last}),
        )
    }

    async fn show(&self, id: &str, host: &str) -> Response<Body> {
        let mut jobs = self.batches.jobs.lock().await;
        match jobs.iter_mut().find(|j| j.id == id) {
            Some(j) => {
                let v = self.view(j, host).await;
                json_response(StatusCode::OK, v)
            }
            None => error_response(StatusCode::NOT_FOUND, &format!("No batch with id {id}")),
        }
    }

    async fn cancel(&self, id: &str, host: &str) -> Response<Body> {
        let mut jobs = self.batches.jobs.lock().await;
        let Some(j) = jobs.iter_mut().find(|j| j.id == id) else {
            return error_response(StatusCode::NOT_FOUND, &format!("No batch with id {id}"));
        };
        if j.end.is_none() && j.cancelled_at.is_none() {
            j.cancelled_at = Some(Instant::now());
            self.batches.cancels.fetch_add(1, Ordering::Relaxed);
        }
        let v = self.view(j, host).await;
        json_response(StatusCode::OK, v)
    }

    async fn anthropic_results(&self, id: &str) -> Response<Body> {
        let jobs = self.batches.jobs.lock().await;
        match jobs
            .iter()
            .find(|j| j.id == id)
            .and_then(|j| j.results.as_ref())
        {
            Some((out, _)) => Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "application/binary")
                .body(full(out.join("\n") + "\n"))
                .expect("valid response"),
            None => error_response(StatusCode::NOT_FOUND, "results are not ready"),
        }
    }

    /// The share of a batch's time gone, in [0, ∞).
    fn progress(&self, since: Instant) -> f64 {
        since.elapsed().as_secs_f64() / self.args.batch_seconds.max(1e-3)
    }

    /// Advances a batch to now and shows it in its API's shape.
    async fn view(&self, j: &mut Job, host: &str) -> Value {
        let t = self.progress(j.created);
        let cancel_done = j.cancelled_at.map(|c| self.progress(c) >= 0.1);
        if j.end.is_none() {
            if j.invalid.is_some() && t >= 0.1 {
                j.end = Some("failed");
                j.results = Some((Vec::new(), Vec::new()));
            } else if cancel_done == Some(true) {
                // The requests whose time had come before the cancel ran.
                let at = j
                    .cancelled_at
                    .expect("cancelled")
                    .duration_since(j.created)
                    .as_secs_f64()
                    / self.args.batch_seconds.max(1e-3);
                let done = ((at - 0.1).max(0.0) / 0.8 * j.requests.len() as f64) as usize;
                self.run(j, done.min(j.requests.len()), "cancelled").await;
            } else if t >= 1.0 {
                let (done, end) = match self.args.batch_expire_after {
                    Some(k) if (k as usize) < j.requests.len() => (k as usize, "expired"),
                    _ => (j.requests.len(), "completed"),
                };
                self.run(j, done, end).await;
            }
        }
        let total = j.requests.len() as u64;
        let (ok, failed) = match &j.results {
            Some((out, err)) => (out.len() as u64, err.len() as u64),
            None => {
                let share = ((t - 0.1) / 0.8).clamp(0.0, 1.0);
                ((share * total as f64) as u64, 0)
            }
        };
        match j.kind {
            Kind::OpenAi => {
                let status = match (j.end, j.cancelled_at) {
                    (Some(e), _) => e,
                    (None, Some(_)) => "cancelling",
                    (None, None) if t < 0.1 => "validating",
                    (None, None) if t < 0.9 => "in_progress",
                    _ => "finalizing",
                };
                let (output, errors) = match (&j.results, j.end) {
                    (Some((out, err)), Some(e)) if e != "failed" => (
                        (!out.is_empty()).then(|| format!("{}-output", j.id)),
                        (!err.is_empty()).then(|| format!("{}-errors", j.id)),
                    ),
                    _ => (None, None),
                };
                let errors_obj = j.invalid.as_ref().filter(|_| j.end == Some("failed")).map(|(code, message)| {
                    json!({"object": "list", "data": [{"code": code, "message": message, "line": null, "param": null}]})
                });
                json!({
                    "id": j.id, "object": "batch", "endpoint": "/v1/chat/completions",
                    "errors": errors_obj, "input_file_id": j.input_file,
                    "completion_window": "24h", "status": status,
                    "output_file_id": output, "error_file_id": errors,
                    "created_at": j.created_at,
                    "request_counts": {"total": total, "completed": ok, "failed": failed},
                    "metadata": j.metadata,
                })
            }
            Kind::Anthropic => {
                let ended = j.end.is_some();
                let status = match (ended, j.cancelled_at) {
                    (true, _) => "ended",
                    (false, Some(_)) => "canceling",
                    (false, None) => "in_progress",
                };
                let counts = match &j.results {
                    Some((out, _)) => {
                        let count = |t: &str| {
                            out.iter()
                                .filter(|l| l.contains(&format!("\"type\":\"{t}\"")))
                                .count()
                        };
                        json!({"processing": 0, "succeeded": count("succeeded"), "errored": count("errored"),
                               "canceled": count("canceled"), "expired": count("expired")})
                    }
                    None => {
                        json!({"processing": total, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0})
                    }
                };
                json!({
                    "id": j.id, "type": "message_batch", "processing_status": status,
                    "request_counts": counts,
                    "created_at": rfc3339(j.created_at),
                    "ended_at": ended.then(|| rfc3339(now_unix())),
                    "cancel_initiated_at": j.cancelled_at.map(|_| rfc3339(now_unix())),
                    "results_url": ended.then(|| format!("http://{host}/v1/messages/batches/{}/results", j.id)),
                })
            }
        }
    }

    /// Runs the first `done` requests of a batch through the chat handler
    /// and ends it as `end`; the rest are expired (error lines) or, after
    /// a cancel, not run (no line at all, OpenAI) or `canceled`.
    async fn run(&self, j: &mut Job, done: usize, end: &'static str) {
        let mut out = Vec::new();
        let mut err = Vec::new();
        for (i, (custom_id, body)) in j.requests.iter().enumerate() {
            if i >= done {
                match (j.kind, end) {
                    (Kind::OpenAi, "expired") => err.push(json!({
                        "id": format!("batch_req_{i}"), "custom_id": custom_id, "response": null,
                        "error": {"code": "batch_expired", "message": "This request could not be executed before the completion window expired."}
                    }).to_string()),
                    (Kind::Anthropic, "expired") => out.push(json!({"custom_id": custom_id, "result": {"type": "expired"}}).to_string()),
                    (Kind::Anthropic, _) => out.push(json!({"custom_id": custom_id, "result": {"type": "canceled"}}).to_string()),
                    _ => {}
                }
                continue;
            }
            self.batches.requests.fetch_add(1, Ordering::Relaxed);
            let bytes = serde_json::to_vec(body).expect("serializes");
            let (status, answer) = match self.chat(&bytes).await {
                Ok(r) => {
                    let status = r.status().as_u16();
                    let b = r
                        .into_body()
                        .collect()
                        .await
                        .map(|b| b.to_bytes())
                        .unwrap_or_default();
                    (
                        status,
                        serde_json::from_slice::<Value>(&b)
                            .unwrap_or_else(|_| json!({"error": {"message": "malformed"}})),
                    )
                }
                Err(_) => (
                    500,
                    json!({"error": {"message": "the server dropped the request"}}),
                ),
            };
            match j.kind {
                Kind::OpenAi => {
                    let line = json!({
                        "id": format!("batch_req_{i}"), "custom_id": custom_id,
                        "response": {"status_code": status, "request_id": format!("req_{i}"), "body": answer},
                        "error": null,
                    })
                    .to_string();
                    if status == 200 {
                        out.push(line)
                    } else {
                        err.push(line)
                    }
                }
                Kind::Anthropic => {
                    let result = if status == 200 {
                        let c = &answer["choices"][0];
                        let text = c["message"]["content"].as_str().unwrap_or("");
                        let stop = if c["finish_reason"] == "length" {
                            "max_tokens"
                        } else {
                            "end_turn"
                        };
                        json!({"type": "succeeded", "message": {
                            "id": format!("msg_{i}"), "type": "message", "role": "assistant",
                            "content": [{"type": "text", "text": text}], "stop_reason": stop,
                            "usage": {"input_tokens": answer["usage"]["prompt_tokens"], "output_tokens": answer["usage"]["completion_tokens"]},
                        }})
                    } else {
                        json!({"type": "errored", "error": {"type": "error", "error": {"type": "api_error", "message": answer["error"]["message"]}}})
                    };
                    out.push(json!({"custom_id": custom_id, "result": result}).to_string());
                }
            }
        }
        // Results come in any order.
        out.reverse();
        if j.kind == Kind::OpenAi {
            let mut files = self.batches.files.lock().expect("files lock");
            if !out.is_empty() {
                files.insert(
                    format!("{}-output", j.id),
                    File {
                        filename: "output.jsonl".into(),
                        bytes: (out.join("\n") + "\n").into_bytes(),
                    },
                );
            }
            if !err.is_empty() {
                files.insert(
                    format!("{}-errors", j.id),
                    File {
                        filename: "errors.jsonl".into(),
                        bytes: (err.join("\n") + "\n").into_bytes(),
                    },
                );
            }
        }
        j.results = Some((out, err));
        j.end = Some(end);
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn split_bytes<'a>(mut hay: &'a [u8], delimiter: &[u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    while let Some(i) = find(hay, delimiter) {
        out.push(&hay[..i]);
        hay = &hay[i + delimiter.len()..];
    }
    out.push(hay);
    out
}
