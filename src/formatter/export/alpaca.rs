//! Alpaca (LLaMA-Factory): `{"instruction", "input": "", "output",
//! "system", "history", "images"?}`; pairs have `"chosen"`/`"rejected"`
//! instead of `"output"`. `system` (empty when the prompt has none) and
//! `history` (empty for a single question) are on every row, so that one
//! column mapping fits every file: LLaMA-Factory refuses a mapping that
//! names a column the file lacks.

use serde_json::{Map, Value, json};

use super::{Turns, turn_text};

/// One row: the last user turn as the instruction, earlier exchanges (a
/// user turn and the assistant turn that answers it) as history, the
/// response (or the pair's two) as the output.
pub fn row(t: Turns) -> Value {
    let mut out = Map::new();
    out.insert("system".into(), "".into());
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
    let mut history: Vec<Value> = Vec::new();
    let mut asked: Option<String> = None;
    for (role, text) in turns {
        match role.as_str() {
            "assistant" => history.push(json!([asked.take().unwrap_or_default(), text])),
            _ => {
                // Two user turns in a row (or a tool's): one question.
                asked = Some(match asked.take() {
                    Some(q) => format!("{q}\n\n{text}"),
                    None => text,
                });
            }
        }
    }
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
    out.insert("history".into(), history.into());
    if !images.is_empty() {
        out.insert("images".into(), images.into());
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_pairs_each_question_with_its_answer() {
        let turns = Turns {
            prompt: vec![
                json!({"role": "system", "content": "S"}),
                json!({"role": "user", "content": "U1"}),
                json!({"role": "assistant", "content": "A1"}),
                json!({"role": "user", "content": "U2"}),
            ],
            first: json!({"role": "assistant", "content": "A2"})
                .as_object()
                .cloned()
                .unwrap(),
            second: None,
        };
        let row = row(turns);
        assert_eq!(row["system"], "S");
        assert_eq!(row["instruction"], "U2");
        assert_eq!(row["history"], json!([["U1", "A1"]]));
        assert_eq!(row["output"], "A2");
    }
}
