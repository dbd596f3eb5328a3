//! The batch APIs' line formats, as pure functions: a chat request as an
//! OpenAI batch line or an Anthropic message-batch request, custom_ids, and
//! a result line read back into a [`Generation`], a failure, or "not run".

use serde_json::{Map, Value, json};

use crate::sampler::Choice;
use crate::sampler::Generation;
use crate::sampler::client::parse_response;

/// The custom_id of request `i` of `batch` in run `run_id`: short and safe
/// (`[A-Za-z0-9_-]`, ≤ 64), mapped back to its prompt by the batch's map.
pub fn custom_id(run_id: &str, batch: &str, i: usize) -> String {
    format!("{run_id}-{batch}-{i}")
}

/// Whether `s` is a custom_id every batch API accepts.
pub fn is_safe_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// An OpenAI batch input line for a `/chat/completions` body.
pub fn openai_line(custom_id: &str, body: &str) -> String {
    format!(
        "{{\"custom_id\":\"{custom_id}\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\",\"body\":{body}}}"
    )
}

/// An Anthropic message-batch request for a `/chat/completions` body:
/// system turns become `system`, `stop` becomes `stop_sequences`; `n`,
/// `seed` and OpenAI-only fields are left out (a message has one response).
pub fn anthropic_request(custom_id: &str, body: &str) -> Result<Value, String> {
    let v: Value = serde_json::from_str(body).map_err(|e| e.to_string())?;
    let mut params = Map::new();
    let mut system = Vec::new();
    let mut messages = Vec::new();
    for m in v["messages"].as_array().into_iter().flatten() {
        if m["role"] == "system" {
            match &m["content"] {
                Value::String(s) => system.push(s.clone()),
                other => system.push(other.to_string()),
            }
        } else {
            messages.push(json!({"role": m["role"], "content": m["content"]}));
        }
    }
    for key in ["model", "max_tokens", "temperature", "top_p"] {
        if let Some(x) = v.get(key) {
            params.insert(key.into(), x.clone());
        }
    }
    if !system.is_empty() {
        params.insert("system".into(), system.join("\n\n").into());
    }
    params.insert("messages".into(), messages.into());
    if let Some(stop) = v.get("stop").filter(|s| !s.is_null()) {
        params.insert("stop_sequences".into(), stop.clone());
    }
    // Anthropic's own fields given in extra_params pass through.
    for key in ["thinking", "top_k", "metadata", "tools", "tool_choice"] {
        if let Some(x) = v.get(key) {
            params.insert(key.into(), x.clone());
        }
    }
    Ok(json!({"custom_id": custom_id, "params": params}))
}

/// What one result line says about its request.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The responses.
    Answered(Generation),
    /// The request failed: the provider's message.
    Failed(String),
    /// The request never ran (the batch expired or was cancelled first):
    /// why, in a word.
    NotRun(String),
}

/// Reads an OpenAI batch output or error line: `(custom_id, outcome)`.
/// `n_of` gives a custom_id's number of responses asked and `max_tokens`
/// is the requests', for the per-choice tokens.
pub fn read_openai(
    line: &str,
    n_of: &dyn Fn(&str) -> u32,
    max_tokens: u32,
) -> Result<(String, Outcome), String> {
    let v: Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
    let id = v["custom_id"].as_str().ok_or("no custom_id")?.to_string();
    let n = n_of(&id);
    if let Some(err) = v.get("error").filter(|e| !e.is_null()) {
        let code = err["code"].as_str().unwrap_or("");
        let message = err["message"].as_str().unwrap_or(code).to_string();
        let outcome = if matches!(code, "batch_expired" | "batch_cancelled" | "batch_canceled") {
            Outcome::NotRun(code.trim_start_matches("batch_").to_string())
        } else {
            Outcome::Failed(format!("{code}: {message}"))
        };
        return Ok((id, outcome));
    }
    let response = &v["response"];
    let status = response["status_code"].as_u64().unwrap_or(0);
    let body = &response["body"];
    if status != 200 {
        let message = body["error"]["message"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| body.to_string());
        return Ok((id, Outcome::Failed(format!("HTTP {status}: {message}"))));
    }
    let outcome = match parse_response(&body.to_string(), n, max_tokens) {
        Ok(g) => Outcome::Answered(g),
        Err(e) => Outcome::Failed(format!("malformed response: {e}")),
    };
    Ok((id, outcome))
}

/// Reads an Anthropic message-batch result line: `(custom_id, outcome)`.
pub fn read_anthropic(line: &str) -> Result<(String, Outcome), String> {
    let v: Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
    let id = v["custom_id"].as_str().ok_or("no custom_id")?.to_string();
    let result = &v["result"];
    let outcome = match result["type"].as_str().unwrap_or("") {
        "succeeded" => {
            let m = &result["message"];
            let mut text = String::new();
            let mut thinking = String::new();
            for block in m["content"].as_array().into_iter().flatten() {
                match block["type"].as_str() {
                    Some("text") => text.push_str(block["text"].as_str().unwrap_or("")),
                    Some("thinking") => thinking.push_str(block["thinking"].as_str().unwrap_or("")),
                    _ => {}
                }
            }
            let finish = match m["stop_reason"].as_str() {
                Some("max_tokens") => "length",
                _ => "stop",
            };
            Outcome::Answered(Generation {
                choices: vec![Choice {
                    content: Some(text),
                    reasoning: (!thinking.is_empty()).then_some(thinking),
                    finish_reason: Some(finish.into()),
                    completion_tokens: m["usage"]["output_tokens"].as_u64().map(|t| t as u32),
                }],
                prompt_tokens: m["usage"]["input_tokens"].as_u64().map(|t| t as u32),
                endpoint: String::new(),
                latency_ms: 0,
            })
        }
        "errored" => {
            let e = &result["error"]["error"];
            let kind = e["type"].as_str().unwrap_or("error");
            let message = e["message"].as_str().unwrap_or("");
            Outcome::Failed(format!("{kind}: {message}"))
        }
        other @ ("canceled" | "expired") => Outcome::NotRun(other.to_string()),
        other => Outcome::Failed(format!("unknown result type `{other}`")),
    };
    Ok((id, outcome))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_ids_are_short_and_safe() {
        let id = custom_id("0a1b2c3d", "b000001", 49_999);
        assert!(is_safe_id(&id), "{id}");
        assert!(!is_safe_id("a/b"));
        assert!(!is_safe_id(&"x".repeat(65)));
    }

    #[test]
    fn an_openai_line_wraps_the_body() {
        let line = openai_line("r-b1-0", r#"{"messages":[],"n":2,"model":"m"}"#);
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["url"], "/v1/chat/completions");
        assert_eq!(v["body"]["n"], 2);
    }

    #[test]
    fn an_anthropic_request_moves_system_and_drops_n_and_seed() {
        let body = r#"{"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"2+2?"}],
            "n":1,"seed":5,"model":"claude","max_tokens":100,"temperature":0.7,"top_p":1.0,"stop":["END"]}"#;
        let v = anthropic_request("c-1", body).unwrap();
        let p = &v["params"];
        assert_eq!(p["system"], "Be brief.");
        assert_eq!(p["messages"].as_array().unwrap().len(), 1);
        assert_eq!(p["stop_sequences"][0], "END");
        assert!(p.get("n").is_none() && p.get("seed").is_none());
        assert_eq!(p["max_tokens"], 100);
    }

    #[test]
    fn openai_results_answered_failed_and_not_run() {
        let ok = r#"{"id":"r1","custom_id":"c1","response":{"status_code":200,"body":
            {"choices":[{"index":0,"message":{"content":"4"},"finish_reason":"stop"}],
             "usage":{"prompt_tokens":9,"completion_tokens":2}}},"error":null}"#;
        let (id, o) = read_openai(&ok.replace('\n', ""), &|_| 1, 100).unwrap();
        assert_eq!(id, "c1");
        let Outcome::Answered(g) = o else { panic!() };
        assert_eq!(g.choices[0].content.as_deref(), Some("4"));
        assert_eq!(g.prompt_tokens, Some(9));
        let bad = r#"{"custom_id":"c2","response":{"status_code":400,"body":{"error":{"message":"context too long"}}},"error":null}"#;
        assert_eq!(
            read_openai(bad, &|_| 1, 100).unwrap().1,
            Outcome::Failed("HTTP 400: context too long".into())
        );
        let expired = r#"{"custom_id":"c3","response":null,"error":{"code":"batch_expired","message":"This request could not be executed before the completion window expired."}}"#;
        assert!(matches!(
            read_openai(expired, &|_| 1, 100).unwrap().1,
            Outcome::NotRun(_)
        ));
    }

    #[test]
    fn anthropic_results_with_thinking_and_every_type() {
        let ok = r#"{"custom_id":"c1","result":{"type":"succeeded","message":{"content":[
            {"type":"thinking","thinking":"2+2"},{"type":"text","text":"4"}],
            "stop_reason":"max_tokens","usage":{"input_tokens":7,"output_tokens":100}}}}"#;
        let Outcome::Answered(g) = read_anthropic(&ok.replace('\n', "")).unwrap().1 else {
            panic!()
        };
        assert_eq!(g.choices[0].reasoning.as_deref(), Some("2+2"));
        assert_eq!(g.choices[0].finish_reason.as_deref(), Some("length"));
        assert_eq!(g.choices[0].completion_tokens, Some(100));
        let err = r#"{"custom_id":"c2","result":{"type":"errored","error":{"type":"error","error":{"type":"invalid_request_error","message":"bad"}}}}"#;
        assert_eq!(
            read_anthropic(err).unwrap().1,
            Outcome::Failed("invalid_request_error: bad".into())
        );
        for t in ["canceled", "expired"] {
            let line = format!(r#"{{"custom_id":"c3","result":{{"type":"{t}"}}}}"#);
            assert!(matches!(
                read_anthropic(&line).unwrap().1,
                Outcome::NotRun(_)
            ));
        }
    }
}
