//! Preflight: before the first prompt is sampled (and on every resume),
//! each endpoint is asked `GET {base_url}/models` with the API key, so that
//! a server that is down, a refused key or a model name the server does not
//! serve stops the run before anything is consumed, with the fix named.
//!
//! A server without a `/models` route (or one that answers something else
//! than OpenAI's model list) only gets a warning: the chat requests are the
//! judge then.

use std::time::Duration;

use serde_json::Value;
use thiserror::Error;

use super::client::HttpBackend;

/// Longest wait for one `/models` answer.
const PREFLIGHT_TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts per endpoint when the failure may pass (connection, timeout, 5xx).
const ATTEMPTS: u32 = 3;

/// Why an endpoint cannot be sampled from.
#[derive(Debug, Error)]
pub enum PreflightError {
    /// Nothing answered, or the connection failed.
    #[error(
        "cannot reach the server at {url} (GET {url}/models: {cause}). Is it running and is sampler.base_url right? Nothing was sampled"
    )]
    Unreachable {
        /// The endpoint.
        url: String,
        /// What went wrong.
        cause: String,
    },
    /// 401 or 403.
    #[error(
        "the server at {url} refused the API key (HTTP {status}: {message}); {hint}. Nothing was sampled"
    )]
    Unauthorized {
        /// The endpoint.
        url: String,
        /// 401 or 403.
        status: u16,
        /// The server's message (key redacted).
        message: String,
        /// Which variable to set.
        hint: String,
    },
    /// The server does not serve `sampler.model`.
    #[error(
        "the server at {url} does not serve model `{model}`; it serves: {served}. Set sampler.model to one of them. Nothing was sampled"
    )]
    UnknownModel {
        /// The endpoint.
        url: String,
        /// `sampler.model`.
        model: String,
        /// The ids it lists.
        served: String,
    },
    /// The URL is an OpenAI base URL with a part missing or too much.
    #[error(
        "sampler.base_url {url} is not the server's OpenAI base URL ({why}); use {fixed}. Nothing was sampled"
    )]
    WrongPath {
        /// The endpoint as given.
        url: String,
        /// What is wrong with it.
        why: String,
        /// The URL to use.
        fixed: String,
    },
    /// Another answer that says the endpoint is unusable.
    #[error(
        "the server at {url} answered GET {url}/models with HTTP {status}: {message}. Nothing was sampled"
    )]
    Status {
        /// The endpoint.
        url: String,
        /// HTTP status.
        status: u16,
        /// The server's message.
        message: String,
    },
}

/// Checks every endpoint of `backend` for `model`; returns the warnings
/// (endpoints whose model list could not be read) or the first failure.
pub async fn check(backend: &HttpBackend, model: &str) -> Result<Vec<String>, PreflightError> {
    check_servers(backend, model, false).await
}

/// [`check`] for servers that come and go (`sampler.endpoints_file`): one
/// that cannot be reached is a warning, as long as one can.
pub async fn check_changing(
    backend: &HttpBackend,
    model: &str,
) -> Result<Vec<String>, PreflightError> {
    check_servers(backend, model, true).await
}

async fn check_servers(
    backend: &HttpBackend,
    model: &str,
    changing: bool,
) -> Result<Vec<String>, PreflightError> {
    let mut warnings = Vec::new();
    let mut unreachable = Vec::new();
    let urls = backend.urls();
    for url in &urls {
        match check_one(backend, url, model).await {
            Ok(w) => warnings.extend(w),
            Err(PreflightError::Unreachable { url, cause }) if changing => {
                warnings.push(format!(
                    "{url} does not answer ({cause}): it gets requests once it does"
                ));
                unreachable.push(PreflightError::Unreachable { url, cause });
            }
            Err(e) => return Err(e),
        }
    }
    if unreachable.len() == urls.len()
        && let Some(e) = unreachable.into_iter().next()
    {
        return Err(e);
    }
    Ok(warnings)
}

/// A route pasted after the base URL (`…/v1/chat/completions`): the base
/// URL without it.
fn pasted_route(url: &str) -> Option<(&'static str, String)> {
    let trimmed = url.trim_end_matches('/');
    [
        "/chat/completions",
        "/completions",
        "/models",
        "/embeddings",
    ]
    .into_iter()
    .find(|r| trimmed.ends_with(r))
    .map(|r| (r, trimmed[..trimmed.len() - r.len()].to_string()))
}

async fn check_one(
    backend: &HttpBackend,
    url: &str,
    model: &str,
) -> Result<Option<String>, PreflightError> {
    if let Some((route, fixed)) = pasted_route(url) {
        return Err(PreflightError::WrongPath {
            url: url.to_string(),
            why: format!("it ends with the route {route}, which rsr adds itself"),
            fixed,
        });
    }
    let (status, body) = get_models(backend, url).await?;
    if matches!(status, 404 | 405) && !url.trim_end_matches('/').ends_with("/v1") {
        // The most common slip: the server's address without `/v1`.
        let with_v1 = format!("{}/v1", url.trim_end_matches('/'));
        if let Ok((200..=299, body)) = get_models(backend, &with_v1).await
            && model_ids(&body).is_some()
        {
            return Err(PreflightError::WrongPath {
                url: url.to_string(),
                why: format!("{url}/models is HTTP {status}, {with_v1}/models lists the models"),
                fixed: with_v1,
            });
        }
    }
    check_answer(backend, url, model, status, &body)
}

/// `GET {url}/models`, tried again while the failure may pass.
async fn get_models(backend: &HttpBackend, url: &str) -> Result<(u16, String), PreflightError> {
    let mut attempt = 0;
    Ok(loop {
        attempt += 1;
        let outcome = backend
            .get(&format!("{url}/models"), PREFLIGHT_TIMEOUT)
            .await;
        let again = match &outcome {
            Err(_) => true,
            Ok((status, _)) => *status >= 500 || *status == 429,
        };
        if !again || attempt >= ATTEMPTS {
            break match outcome {
                Ok(answer) => answer,
                Err(cause) => {
                    return Err(PreflightError::Unreachable {
                        url: url.to_string(),
                        cause,
                    });
                }
            };
        }
        tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
    })
}

/// What `GET {url}/models` answering `status` with `body` says of the
/// endpoint for `model`.
fn check_answer(
    backend: &HttpBackend,
    url: &str,
    model: &str,
    status: u16,
    body: &str,
) -> Result<Option<String>, PreflightError> {
    let message = || super::client::error_text(&backend.redact(body));
    match status {
        200..=299 => {}
        401 | 403 => {
            return Err(PreflightError::Unauthorized {
                url: url.to_string(),
                status,
                message: message(),
                hint: backend.key_hint(),
            });
        }
        404 | 405 => {
            return Ok(Some(format!(
                "{url} has no /models route (HTTP {status}): the model name `{model}` and the API key are checked by the first requests instead"
            )));
        }
        _ => {
            return Err(PreflightError::Status {
                url: url.to_string(),
                status,
                message: message(),
            });
        }
    }
    let Some(served) = model_ids(body) else {
        return Ok(Some(format!(
            "{url}/models did not answer an OpenAI model list: the model name `{model}` is checked by the first requests instead"
        )));
    };
    if served.is_empty() || served.iter().any(|id| id == model) {
        tracing::debug!("preflight: {url} serves `{model}`");
        return Ok(None);
    }
    Err(PreflightError::UnknownModel {
        url: url.to_string(),
        model: model.to_string(),
        served: served.join(", "),
    })
}

/// The ids of an OpenAI model list (`{"data": [{"id": …}, …]}`).
fn model_ids(body: &str) -> Option<Vec<String>> {
    let v: Value = serde_json::from_str(body).ok()?;
    let data = v.get("data")?.as_array()?;
    Some(
        data.iter()
            .filter_map(|m| m.get("id").and_then(Value::as_str).map(str::to_string))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_lists_are_read() {
        let body = r#"{"object":"list","data":[{"id":"a","object":"model"},{"id":"b"}]}"#;
        assert_eq!(model_ids(body), Some(vec!["a".into(), "b".into()]));
        assert_eq!(model_ids(r#"{"data":[]}"#), Some(vec![]));
        assert_eq!(model_ids("<html>"), None);
        assert_eq!(model_ids(r#"{"models":["a"]}"#), None);
    }

    #[test]
    fn pasted_routes_are_named_with_the_base_url() {
        assert_eq!(
            pasted_route("http://h:8000/v1/chat/completions"),
            Some(("/chat/completions", "http://h:8000/v1".into()))
        );
        assert_eq!(
            pasted_route("http://h:8000/v1/completions/"),
            Some(("/completions", "http://h:8000/v1".into()))
        );
        assert_eq!(pasted_route("http://h:8000/v1"), None);
        assert_eq!(pasted_route("https://api.deepseek.com"), None);
    }
}
