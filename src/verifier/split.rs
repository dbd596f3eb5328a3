//! Splitting a response into its thinking and its final part.
//!
//! Answers are only ever looked for in the final part: reasoning models
//! mention (often wrong) candidate answers while thinking. Handled layouts:
//! `<think>…</think>final` (also `<thinking>`, and a bare `…</think>final`
//! when the chat template opened the block in the prompt), and the harmony
//! layout `<|channel|>analysis<|message|>…<|end|><|start|>assistant<|channel|>final<|message|>final<|return|>`.

/// A response split at the end of its thinking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split<'a> {
    /// The final part, and the thinking before it (if any).
    Final {
        /// Text after the thinking: where answers are looked for.
        answer: &'a str,
        /// The thinking, without its tags.
        thinking: Option<&'a str>,
    },
    /// Thinking that never closed: the response has no final part and is
    /// treated as truncated.
    Unclosed {
        /// The thinking written so far.
        thinking: &'a str,
    },
}

impl<'a> Split<'a> {
    /// The final part, or `None` when the thinking never closed.
    pub fn final_part(&self) -> Option<&'a str> {
        match self {
            Split::Final { answer, .. } => Some(answer),
            Split::Unclosed { .. } => None,
        }
    }
}

const HARMONY_FINAL: &str = "<|channel|>final";
const HARMONY_MESSAGE: &str = "<|message|>";
const HARMONY_ENDS: &[&str] = &["<|return|>", "<|end|>", "<|call|>"];
const HARMONY_THINKING: &[&str] = &["<|channel|>analysis", "<|channel|>commentary"];

/// Splits `response` at the end of its thinking.
pub fn split(response: &str) -> Split<'_> {
    if let Some(pos) = response.rfind(HARMONY_FINAL) {
        let rest = &response[pos + HARMONY_FINAL.len()..];
        let body = match rest.find(HARMONY_MESSAGE) {
            Some(m) => &rest[m + HARMONY_MESSAGE.len()..],
            None => rest,
        };
        let end = HARMONY_ENDS
            .iter()
            .filter_map(|e| body.find(e))
            .min()
            .unwrap_or(body.len());
        return Split::Final {
            answer: &body[..end],
            thinking: Some(&response[..pos]),
        };
    }
    if HARMONY_THINKING.iter().any(|t| response.contains(t)) {
        return Split::Unclosed { thinking: response };
    }
    for (open, close) in [("<think>", "</think>"), ("<thinking>", "</thinking>")] {
        if let Some(end) = response.rfind(close) {
            let before = &response[..end];
            let thinking = match before.find(open) {
                Some(start) => &before[start + open.len()..],
                None => before,
            };
            return Split::Final {
                answer: &response[end + close.len()..],
                thinking: Some(thinking),
            };
        }
        if let Some(start) = response.find(open) {
            return Split::Unclosed {
                thinking: &response[start + open.len()..],
            };
        }
    }
    Split::Final {
        answer: response,
        thinking: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_responses_are_all_final() {
        assert_eq!(
            split("The answer is 4.").final_part(),
            Some("The answer is 4.")
        );
    }

    #[test]
    fn think_blocks_are_split_off() {
        let s = split("<think>maybe 3? no, 4</think>\n\\boxed{4}");
        assert_eq!(s.final_part(), Some("\n\\boxed{4}"));
        assert_eq!(
            s,
            Split::Final {
                answer: "\n\\boxed{4}",
                thinking: Some("maybe 3? no, 4")
            }
        );
        // Template opened the block in the prompt: only the close tag is generated.
        assert_eq!(
            split("so 3\n</think>\n\nIt is 4.").final_part(),
            Some("\n\nIt is 4.")
        );
        assert_eq!(split("<thinking>x</thinking>B").final_part(), Some("B"));
    }

    #[test]
    fn the_last_close_tag_wins() {
        let s = split("<think>a</think>b</think>c");
        assert_eq!(s.final_part(), Some("c"));
    }

    #[test]
    fn unclosed_thinking_has_no_final_part() {
        let s = split("<think>let me see, \\boxed{3} maybe");
        assert_eq!(
            s,
            Split::Unclosed {
                thinking: "let me see, \\boxed{3} maybe"
            }
        );
        assert_eq!(s.final_part(), None);
    }

    #[test]
    fn harmony_layout() {
        let r = "<|channel|>analysis<|message|>2+2 is 5? no 4<|end|><|start|>assistant<|channel|>final<|message|>**4**<|return|>";
        assert_eq!(split(r).final_part(), Some("**4**"));
        let r = "<|channel|>analysis<|message|>thinking about 5";
        assert_eq!(split(r).final_part(), None);
        assert_eq!(
            split("<|channel|>final<|message|>B").final_part(),
            Some("B")
        );
    }
}
