//! Alpaca (LLaMA-Factory): `{"instruction", "input": "", "output",
//! "system"?, "history"?, "images"?}`; pairs have `"chosen"`/`"rejected"`
//! instead of `"output"`.

use serde_json::{Map, Value, json};

use super::{Turns, turn_text};

/// One row: the last user turn as the instruction, earlier exchanges as
/// history, the response (or the pair's two) as the output.
pub fn row(t: Turns) -> Value {
    let mut out = Map::new();
    let mut images = Vec::new();
    let mut turns: Vec<(String, String)> = Vec::new();
    for m in &t.prompt {
        let (role, text) = turn_text(m, &mut images);
        if role == "system" {
            out.insert("system".into(), text.into());
        } else {
            turns.push((role, text));
        }
    }
    let instruction = turns
        .iter()
        .rposition(|(r, _)| r == "user")
        .map(|i| turns.remove(i).1)
        .unwrap_or_default();
    // Earlier user/assistant exchanges become `history` pairs.
    let history: Vec<Value> = turns
        .chunks(2)
        .filter(|c| c.len() == 2)
        .map(|c| json!([c[0].1, c[1].1]))
        .collect();
    out.insert("instruction".into(), instruction.into());
    out.insert("input".into(), "".into());
    let content = |m: &Map<String, Value>| m.get("content").cloned().unwrap_or_default();
    match &t.second {
        None => {
            out.insert("output".into(), content(&t.first));
        }
        Some(rejected) => {
            out.insert("chosen".into(), content(&t.first));
            out.insert("rejected".into(), content(rejected));
        }
    }
    if let Some(r) = t.first.get("reasoning_content") {
        out.insert("reasoning_content".into(), r.clone());
    }
    if !history.is_empty() {
        out.insert("history".into(), history.into());
    }
    if !images.is_empty() {
        out.insert("images".into(), images.into());
    }
    Value::Object(out)
}
