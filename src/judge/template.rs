//! Judge prompts: the shipped templates (`correctness`, `rubric`, `mcq`,
//! in `configs/judge/`) or a user file, and their rendering. A template is
//! text with placeholders in braces: `{question}` (the prompt's last user
//! message), `{conversation}` (every message, `role: text`), `{reference}`
//! (the gold answer), `{answer}` (the response's final part, after its
//! thinking) and `{response}` (the same, with the thinking when
//! `verifier.options.thinking` is true). Braces holding any other text stay
//! as they are.

use serde_json::Value;

use super::verdict::Parser;

/// The shipped templates: name and text.
pub const SHIPPED: &[(&str, &str)] = &[
    (
        "correctness",
        include_str!("../../configs/judge/correctness.txt"),
    ),
    ("rubric", include_str!("../../configs/judge/rubric.txt")),
    ("mcq", include_str!("../../configs/judge/mcq.txt")),
];

/// The placeholders a template may use.
pub const PLACEHOLDERS: &[&str] = &[
    "question",
    "conversation",
    "reference",
    "answer",
    "response",
];

/// A judge prompt template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    /// The shipped name or the file it was read from.
    pub name: String,
    /// The text with its placeholders.
    pub text: String,
}

/// What a template is filled with.
#[derive(Debug, Clone, Copy)]
pub struct Fields<'a> {
    /// The prompt's messages (a JSON array).
    pub messages: &'a str,
    /// The gold answer ("" when none).
    pub reference: &'a str,
    /// The response's final part.
    pub answer: &'a str,
    /// The response as the judge sees it.
    pub response: &'a str,
}

impl Template {
    /// A shipped template by name, or the file at `name`.
    pub fn load(name: &str) -> Result<Self, String> {
        if let Some((_, text)) = SHIPPED.iter().find(|(n, _)| *n == name) {
            return Ok(Self {
                name: name.to_string(),
                text: (*text).to_string(),
            });
        }
        let text = std::fs::read_to_string(name).map_err(|e| {
            let names: Vec<&str> = SHIPPED.iter().map(|(n, _)| *n).collect();
            format!(
                "`{name}` is neither a shipped template ({}) nor a readable file: {e}",
                names.join(", ")
            )
        })?;
        if !text.contains("{response}") && !text.contains("{answer}") {
            return Err(format!(
                "{name} never shows the judge the response: put {{response}} or {{answer}} in it (placeholders: {})",
                PLACEHOLDERS.join(", ")
            ));
        }
        Ok(Self {
            name: name.to_string(),
            text,
        })
    }

    /// Whether it shows the gold answer (and so needs one).
    pub fn uses_reference(&self) -> bool {
        self.text.contains("{reference}")
    }

    /// How its answers are read unless `verifier.options.parser` says
    /// otherwise: a rating for `rubric`, yes/no for the others.
    pub fn default_parser(&self) -> Parser {
        if self.name == "rubric" {
            Parser::Rating
        } else {
            Parser::YesNo
        }
    }

    /// The prompt for one rollout.
    pub fn render(&self, f: &Fields<'_>) -> String {
        let messages: Vec<Value> = serde_json::from_str(f.messages).unwrap_or_default();
        let mut out = String::with_capacity(self.text.len() + f.response.len() + 256);
        let mut rest = self.text.as_str();
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            let name = after.find('}').map(|close| &after[..close]);
            let value = match name {
                Some("question") => Some(last_user(&messages)),
                Some("conversation") => Some(conversation(&messages)),
                Some("reference") => Some(f.reference.trim().to_string()),
                Some("answer") => Some(f.answer.to_string()),
                Some("response") => Some(f.response.to_string()),
                _ => None,
            };
            match (value, name) {
                (Some(v), Some(n)) => {
                    out.push_str(&v);
                    rest = &after[n.len() + 1..];
                }
                _ => {
                    out.push('{');
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        out
    }
}

/// The text of a message's `content` (a string, or the text parts of a list).
pub fn text_of(message: &Value) -> String {
    match message.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

fn last_user(messages: &[Value]) -> String {
    messages
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .map(text_of)
        .unwrap_or_default()
}

fn conversation(messages: &[Value]) -> String {
    messages
        .iter()
        .map(|m| {
            let role = m.get("role").and_then(Value::as_str).unwrap_or("user");
            format!("{role}: {}", text_of(m))
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_and_other_braces_kept() {
        let t = Template {
            name: "t".into(),
            text: "Q: {question}\nAll: {conversation}\nRef: {reference}\nA: {answer}\nR: {response}\nJSON {\"k\": 1} and \\boxed{x} {unknown".into(),
        };
        let messages = r#"[{"role":"system","content":"Be brief."},{"role":"user","content":[{"type":"text","text":"What is 2+2?"}]}]"#;
        let out = t.render(&Fields {
            messages,
            reference: " 4 ",
            answer: "4",
            response: "<think>x</think>4",
        });
        assert_eq!(
            out,
            "Q: What is 2+2?\nAll: system: Be brief.\n\nuser: What is 2+2?\nRef: 4\nA: 4\nR: <think>x</think>4\nJSON {\"k\": 1} and \\boxed{x} {unknown"
        );
    }

    #[test]
    fn shipped_templates_load_and_files_must_show_the_response() {
        for (name, _) in SHIPPED {
            let t = Template::load(name).unwrap();
            assert!(t.text.contains("{response}"), "{name}");
        }
        assert!(Template::load("correctness").unwrap().uses_reference());
        assert!(!Template::load("rubric").unwrap().uses_reference());
        assert_eq!(
            Template::load("rubric").unwrap().default_parser(),
            Parser::Rating
        );
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("t.txt");
        std::fs::write(&bad, "Is {question} hard?").unwrap();
        let e = Template::load(bad.to_str().unwrap()).unwrap_err();
        assert!(e.contains("{response}"), "{e}");
        let e = Template::load("corectness").unwrap_err();
        assert!(e.contains("correctness, rubric, mcq"), "{e}");
    }
}
