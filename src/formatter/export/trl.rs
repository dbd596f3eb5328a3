//! TRL's conversational shapes: SFT rows as `{"messages": [...prompt,
//! assistant]}` (or, prompt-completion, `{"prompt": [...], "completion":
//! [assistant]}`), pairs as `{"prompt": [...], "chosen": [assistant],
//! "rejected": [assistant]}`.

use serde_json::{Value, json};

use super::Turns;

/// One row; `prompt_completion` picks the prompt-completion SFT shape.
pub fn row(turns: Turns, prompt_completion: bool) -> Value {
    match turns.second {
        None if prompt_completion => {
            json!({ "prompt": turns.prompt, "completion": [Value::Object(turns.first)] })
        }
        None => {
            let mut messages = turns.prompt;
            messages.push(Value::Object(turns.first));
            json!({ "messages": messages })
        }
        Some(rejected) => json!({
            "prompt": turns.prompt,
            "chosen": [Value::Object(turns.first)],
            "rejected": [Value::Object(rejected)],
        }),
    }
}
