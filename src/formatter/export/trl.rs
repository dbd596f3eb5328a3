//! TRL's conversational shapes: SFT rows as `{"messages": [...prompt,
//! assistant]}` (or, prompt-completion, `{"prompt": [...], "completion":
//! [assistant]}`), pairs as `{"prompt": [...], "chosen": [assistant],
//! "rejected": [assistant]}`.

use serde_json::{Value, json};

use super::Turns;

/// One row; `prompt_completion` picks the prompt-completion SFT shape.
pub fn row(turns: Turns, prompt_completion: bool) -> Value {
    let Turns {
        prompt,
        first,
        second,
    } = turns;
    match second {
        None if prompt_completion => {
            json!({ "prompt": prompt, "completion": [Value::Object(first)] })
        }
        None => {
            let mut messages = prompt;
            messages.push(Value::Object(first));
            json!({ "messages": messages })
        }
        Some(rejected) => json!({
            "prompt": prompt,
            "chosen": [Value::Object(first)],
            "rejected": [Value::Object(rejected)],
        }),
    }
}
