//! ShareGPT (LLaMA-Factory): `{"conversations": [{"from": "system"?|
//! "human"|"gpt", "value"}], "images"?}`; pairs add `"chosen"`/`"rejected"`
//! turns. The system prompt is the first turn, which LLaMA-Factory reads
//! with no column mapping (a top-level `system` key needs one that its own
//! preference example leaves out).

use serde_json::{Map, Value, json};

use super::{Turns, turn_text};

/// One row: the prompt's turns, then the response (or the chosen and
/// rejected turns of a pair).
pub fn row(turns: Turns) -> Value {
    let mut out = Map::new();
    let mut conversations = Vec::new();
    let mut images = Vec::new();
    for m in &turns.prompt {
        let (role, text) = turn_text(m, &mut images);
        match role.as_str() {
            "system" => conversations.push(json!({"from": "system", "value": text})),
            "assistant" => conversations.push(json!({"from": "gpt", "value": text})),
            "tool" => conversations.push(json!({"from": "observation", "value": text})),
            _ => conversations.push(json!({"from": "human", "value": text})),
        }
    }
    let gpt = |m: Map<String, Value>| {
        let mut t = Map::new();
        t.insert("from".into(), "gpt".into());
        t.insert(
            "value".into(),
            m.get("content").cloned().unwrap_or_default(),
        );
        Value::Object(t)
    };
    match turns.second {
        None => conversations.push(gpt(turns.first)),
        Some(rejected) => {
            out.insert("chosen".into(), gpt(turns.first));
            out.insert("rejected".into(), gpt(rejected));
        }
    }
    out.insert("conversations".into(), conversations.into());
    if !images.is_empty() {
        out.insert("images".into(), images.into());
    }
    Value::Object(out)
}
