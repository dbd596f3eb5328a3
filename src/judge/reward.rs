//! Reward-model servers: the request each API takes and the reward read
//! from its answer. vLLM's `/classify` (`use_activation: false`, so the raw
//! reward, not a sigmoid of it) and `/pooling` take one chat conversation
//! as `messages`; SGLang's `/classify` and OpenRLHF's `/get_reward` take a
//! list of conversations already written as text in the model's chat
//! format ([`ChatFormat`]).

use serde_json::{Value, json};

use super::{ChatFormat, RewardApi};

/// One conversation to score: the prompt's messages with the response as
/// the assistant's turn, as the API takes it (a JSON messages array, or a
/// JSON string of chat-formatted text).
pub fn item(api: RewardApi, format: ChatFormat, messages: &str, response: &str) -> String {
    let mut conversation: Vec<Value> = serde_json::from_str(messages).unwrap_or_default();
    conversation.push(json!({"role": "assistant", "content": response}));
    match api {
        RewardApi::VllmClassify | RewardApi::VllmPooling => Value::Array(conversation).to_string(),
        RewardApi::SglangClassify | RewardApi::Openrlhf => {
            Value::String(render(format, &conversation)).to_string()
        }
    }
}

/// A conversation as one text in `format`.
pub fn render(format: ChatFormat, conversation: &[Value]) -> String {
    let mut out = String::new();
    if format == ChatFormat::Llama3 {
        out.push_str("<|begin_of_text|>");
    }
    for m in conversation {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("user");
        let content = super::template::text_of(m);
        match format {
            ChatFormat::Chatml => {
                out.push_str(&format!("<|im_start|>{role}\n{content}<|im_end|>\n"));
            }
            ChatFormat::Llama3 => out.push_str(&format!(
                "<|start_header_id|>{role}<|end_header_id|>\n\n{content}<|eot_id|>"
            )),
            ChatFormat::Plain => out.push_str(&format!("{role}: {content}\n\n")),
        }
    }
    out
}

/// The request body for `items` (one item for the unbatched APIs).
pub fn body(api: RewardApi, model: &str, items: &[&str]) -> String {
    let list = || format!("[{}]", items.join(","));
    let model = Value::String(model.to_string());
    match api {
        RewardApi::VllmClassify => format!(
            "{{\"model\":{model},\"messages\":{},\"use_activation\":false}}",
            items[0]
        ),
        RewardApi::VllmPooling => format!("{{\"model\":{model},\"messages\":{}}}", items[0]),
        RewardApi::SglangClassify => format!("{{\"model\":{model},\"text\":{}}}", list()),
        RewardApi::Openrlhf => format!("{{\"query\":{}}}", list()),
    }
}

/// The rewards in an answer to a request of `n` conversations, in order.
pub fn parse(api: RewardApi, text: &str, n: usize) -> Result<Vec<f64>, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let rewards = match api {
        RewardApi::VllmClassify => data(&v)?
            .into_iter()
            .map(|d| {
                let probs = d
                    .get("probs")
                    .and_then(Value::as_array)
                    .ok_or("an item without `probs`")?;
                match probs.as_slice() {
                    [one] => one.as_f64().ok_or_else(|| "`probs` is not a number".to_string()),
                    other => Err(format!(
                        "the model has {} classes; a reward model has one (use api: vllm-pooling for other heads)",
                        other.len()
                    )),
                }
            })
            .collect::<Result<Vec<_>, _>>()?,
        RewardApi::VllmPooling => data(&v)?
            .into_iter()
            .map(|d| {
                last_number(d.get("data").unwrap_or(&Value::Null))
                    .ok_or_else(|| "an item whose `data` holds no number".to_string())
            })
            .collect::<Result<Vec<_>, _>>()?,
        RewardApi::SglangClassify => {
            let items = match &v {
                Value::Array(a) => a.clone(),
                Value::Object(_) => vec![v.clone()],
                _ => return Err("expected a list of results".into()),
            };
            items
                .iter()
                .map(|d| {
                    d.get("embedding")
                        .and_then(Value::as_array)
                        .and_then(|e| e.first())
                        .and_then(Value::as_f64)
                        .ok_or_else(|| "a result without a numeric `embedding`".to_string())
                })
                .collect::<Result<Vec<_>, _>>()?
        }
        RewardApi::Openrlhf => v
            .get("rewards")
            .or_else(|| v.get("scores"))
            .and_then(Value::as_array)
            .ok_or("no `rewards` list")?
            .iter()
            .map(|r| r.as_f64().ok_or_else(|| "a reward that is not a number".to_string()))
            .collect::<Result<Vec<_>, _>>()?,
    };
    if rewards.len() != n {
        return Err(format!("{} rewards for {n} conversations", rewards.len()));
    }
    Ok(rewards)
}

/// vLLM's `data` list, in `index` order.
fn data(v: &Value) -> Result<Vec<&Value>, String> {
    let mut items: Vec<&Value> = v
        .get("data")
        .and_then(Value::as_array)
        .ok_or("no `data` list")?
        .iter()
        .collect();
    items.sort_by_key(|d| d.get("index").and_then(Value::as_u64).unwrap_or(0));
    Ok(items)
}

/// The last number in a (nested) list: the sequence's reward of a
/// per-token output.
fn last_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::Array(a) => a.iter().rev().find_map(last_number),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MESSAGES: &str = r#"[{"role":"user","content":"Hi"}]"#;

    #[test]
    fn bodies_in_each_api_shape() {
        let m = item(
            RewardApi::VllmClassify,
            ChatFormat::Chatml,
            MESSAGES,
            "Hello!",
        );
        let b: Value = serde_json::from_str(&body(RewardApi::VllmClassify, "rm", &[&m])).unwrap();
        assert_eq!(b["messages"][1]["content"], "Hello!");
        assert_eq!(b["use_activation"], false);
        let t = item(RewardApi::Openrlhf, ChatFormat::Chatml, MESSAGES, "Hello!");
        let b: Value = serde_json::from_str(&body(RewardApi::Openrlhf, "rm", &[&t, &t])).unwrap();
        assert_eq!(
            b["query"][1],
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n"
        );
        let t = item(
            RewardApi::SglangClassify,
            ChatFormat::Llama3,
            MESSAGES,
            "Yo",
        );
        let b: Value = serde_json::from_str(&body(RewardApi::SglangClassify, "rm", &[&t])).unwrap();
        assert!(
            b["text"][0]
                .as_str()
                .unwrap()
                .starts_with("<|begin_of_text|><|start_header_id|>user")
        );
    }

    #[test]
    fn rewards_are_read_from_each_answer_shape() {
        let vllm = r#"{"data":[{"index":1,"probs":[-0.5],"num_classes":1},{"index":0,"probs":[2.25],"num_classes":1}]}"#;
        assert_eq!(
            parse(RewardApi::VllmClassify, vllm, 2).unwrap(),
            vec![2.25, -0.5]
        );
        let two = r#"{"data":[{"index":0,"probs":[0.4,0.6],"num_classes":2}]}"#;
        assert!(
            parse(RewardApi::VllmClassify, two, 1)
                .unwrap_err()
                .contains("2 classes")
        );
        let pooling = r#"{"data":[{"index":0,"object":"pooling","data":[[0.1],[0.2],[1.5]]}]}"#;
        assert_eq!(
            parse(RewardApi::VllmPooling, pooling, 1).unwrap(),
            vec![1.5]
        );
        let sglang = r#"[{"embedding":[0.75]},{"embedding":[-1.0]}]"#;
        assert_eq!(
            parse(RewardApi::SglangClassify, sglang, 2).unwrap(),
            vec![0.75, -1.0]
        );
        let rlhf = r#"{"rewards":[1.0,2.0,3.0],"scores":[1.0,2.0,3.0]}"#;
        assert_eq!(
            parse(RewardApi::Openrlhf, rlhf, 3).unwrap(),
            vec![1.0, 2.0, 3.0]
        );
        assert!(
            parse(RewardApi::Openrlhf, rlhf, 2)
                .unwrap_err()
                .contains("3 rewards")
        );
        assert!(parse(RewardApi::Openrlhf, "<html>", 1).is_err());
    }
}
