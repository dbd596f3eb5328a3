//! Verifiers that call a model: `llm-judge` (a judge prompt from a
//! template, read as a verdict or as P(yes) from logprobs),
//! `mcq-llm-as-judge` (multiple-choice rules first, the judge only where
//! they find no option) and `reward-model` (sequence-classification reward
//! servers). This module owns their options ([`Spec`]), how one rollout
//! becomes a request and a request's answer becomes a verdict; [`template`],
//! [`verdict`] and [`reward`] hold the pieces, [`cache`] the judged
//! requests on disk, [`run`] the loop that sends them through the
//! sampler's client and [`live`] the same requests as a stage of sampling.

pub mod batch;
pub mod live;
pub mod reward;
pub mod run;
pub mod template;
pub mod verdict;

use crate::store::rollout::ScoreMeaning;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::config::VerifierConfig;
use crate::sampler::client::Route;
use crate::verifier::{Sample, Verifier, VerifierError, read_options};
use template::Template;
use verdict::{Parser, Words};

pub use run::{JudgeContext, JudgeError, JudgeReport, judge};

/// The verifiers that call a model, with what they do.
pub const KINDS: &[(&str, &str)] = &[
    (
        "llm-judge",
        "a judge model reads the question, the reference and the final answer (template correctness), or rates a reply 1-10 (rubric): verdict text or P(yes) from logprobs",
    ),
    (
        "mcq-llm-as-judge",
        "multiple choice: the rules first; a judge model names the chosen option only where they find none",
    ),
    (
        "reward-model",
        "a sequence-classification reward model over HTTP (vLLM /classify or /pooling, SGLang /classify, OpenRLHF /get_reward): the raw reward is the score",
    ),
];

/// How a judge's answer is turned into a score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScoreMode {
    /// Parse the judge's text.
    Verdict,
    /// One token with `top_logprobs`: P(yes) / (P(yes) + P(no)).
    Logprobs,
}

/// The reward-server APIs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RewardApi {
    /// vLLM `POST /classify` with chat `messages` (`use_activation: false`).
    VllmClassify,
    /// vLLM `POST /pooling` with chat `messages`.
    VllmPooling,
    /// SGLang `POST /classify` with a batch of chat-formatted `text`.
    SglangClassify,
    /// OpenRLHF `POST /get_reward` with a batch of chat-formatted `query`.
    Openrlhf,
}

impl RewardApi {
    /// Whether one request carries a list of conversations.
    pub fn batched(self) -> bool {
        matches!(self, RewardApi::SglangClassify | RewardApi::Openrlhf)
    }

    /// The route on the server.
    pub fn route(self) -> Route<'static> {
        match self {
            RewardApi::VllmClassify | RewardApi::SglangClassify => Route::Root("classify"),
            RewardApi::VllmPooling => Route::Root("pooling"),
            RewardApi::Openrlhf => Route::Root("get_reward"),
        }
    }
}

/// How a conversation is written as one text for the text-based reward
/// APIs (the chat template the reward model was trained with).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChatFormat {
    /// `<|im_start|>role\n…<|im_end|>` (Qwen, many others).
    Chatml,
    /// `<|start_header_id|>role<|end_header_id|>\n\n…<|eot_id|>` (Llama 3).
    Llama3,
    /// `role: content` lines.
    Plain,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JudgeOptions {
    #[serde(default = "default_template")]
    template: String,
    #[serde(default = "default_score")]
    score: ScoreMode,
    #[serde(default)]
    thinking: bool,
    #[serde(default)]
    parser: Option<Parser>,
    #[serde(default)]
    verdict_pattern: Option<String>,
    #[serde(default)]
    pass_words: Option<Vec<String>>,
    #[serde(default)]
    fail_words: Option<Vec<String>>,
    #[serde(default = "default_top_logprobs")]
    top_logprobs: u32,
}

fn default_template() -> String {
    "correctness".into()
}
fn default_score() -> ScoreMode {
    ScoreMode::Verdict
}
fn default_top_logprobs() -> u32 {
    20
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct McqJudgeOptions {
    #[serde(default = "default_mcq_template")]
    template: String,
    #[serde(default)]
    thinking: bool,
}

fn default_mcq_template() -> String {
    "mcq".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RewardOptions {
    #[serde(default = "default_api")]
    api: RewardApi,
    #[serde(default = "default_chat_format")]
    chat_format: ChatFormat,
    #[serde(default = "default_batch_size")]
    batch_size: usize,
    #[serde(default)]
    thinking: bool,
}

fn default_api() -> RewardApi {
    RewardApi::VllmClassify
}
fn default_chat_format() -> ChatFormat {
    ChatFormat::Chatml
}
fn default_batch_size() -> usize {
    16
}

/// The rating (1–10) from which a rated reply passes by default.
pub const RATING_PASS: f64 = 7.0;
/// The rating at or below which a rated reply fails by default.
pub const RATING_FAIL: f64 = 4.0;

/// A model verifier with its options read.
#[derive(Debug, Clone)]
pub enum Spec {
    /// `llm-judge`.
    Judge {
        /// The judge prompt.
        template: Template,
        /// Verdict text or logprobs.
        score: ScoreMode,
        /// How a verdict text is read.
        parser: Parser,
        /// Verdict words (yes / no and their variants).
        words: Words,
        /// Whether the response's thinking is shown to the judge.
        thinking: bool,
        /// `top_logprobs` asked for in logprob mode.
        top_logprobs: u32,
    },
    /// `mcq-llm-as-judge`.
    McqJudge {
        /// The judge prompt.
        template: Template,
        /// Whether the response's thinking is shown to the judge.
        thinking: bool,
    },
    /// `reward-model`.
    Reward {
        /// The server's API.
        api: RewardApi,
        /// How a conversation becomes text (text APIs).
        chat_format: ChatFormat,
        /// Conversations per request (batched APIs).
        batch_size: usize,
        /// Whether the response's thinking is scored too.
        thinking: bool,
    },
}

impl Spec {
    /// Reads the options of model verifier `vc.kind`.
    pub fn from_config(vc: &VerifierConfig) -> Result<Self, VerifierError> {
        Self::from_options(&vc.kind, &vc.options)
    }

    /// Reads `options` of model verifier `kind`.
    pub fn from_options(kind: &str, options: &Map<String, Value>) -> Result<Self, VerifierError> {
        let option = |key: &str, message: String| VerifierError::Option {
            verifier: static_name(kind),
            key: key.to_string(),
            message,
        };
        match kind {
            "llm-judge" => {
                let o: JudgeOptions = read_options("llm-judge", options)?;
                let template = Template::load(&o.template).map_err(|m| option("template", m))?;
                let parser = o.parser.unwrap_or_else(|| template.default_parser());
                let words = Words::new(o.pass_words, o.fail_words, o.verdict_pattern.as_deref())
                    .map_err(|m| option("verdict_pattern", m))?;
                if o.score == ScoreMode::Logprobs && parser != Parser::YesNo {
                    return Err(option(
                        "score",
                        format!(
                            "logprobs reads P(yes) from the judge's first token, so it needs a yes/no template; `{}` is read with the {} parser",
                            o.template,
                            parser.name()
                        ),
                    ));
                }
                if o.top_logprobs == 0 || o.top_logprobs > 20 {
                    return Err(option(
                        "top_logprobs",
                        format!("{} is outside 1..=20 (the OpenAI limit)", o.top_logprobs),
                    ));
                }
                Ok(Spec::Judge {
                    template,
                    score: o.score,
                    parser,
                    words,
                    thinking: o.thinking,
                    top_logprobs: o.top_logprobs,
                })
            }
            "mcq-llm-as-judge" => {
                let o: McqJudgeOptions = read_options("mcq-llm-as-judge", options)?;
                let template = Template::load(&o.template).map_err(|m| option("template", m))?;
                Ok(Spec::McqJudge {
                    template,
                    thinking: o.thinking,
                })
            }
            "reward-model" => {
                let o: RewardOptions = read_options("reward-model", options)?;
                if o.batch_size == 0 {
                    return Err(option("batch_size", "must be at least 1".into()));
                }
                Ok(Spec::Reward {
                    api: o.api,
                    chat_format: o.chat_format,
                    batch_size: if o.api.batched() { o.batch_size } else { 1 },
                    thinking: o.thinking,
                })
            }
            other => Err(VerifierError::Unknown {
                name: other.to_string(),
                known: KINDS.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", "),
            }),
        }
    }

    /// What the verdicts mean (pass rates, the agreement with the rules,
    /// the formatters' default thresholds): yes/no verdicts pass at 1 and
    /// fail at 0; ratings pass from 7 of 10 ((7 − 1) / 9) and fail at 4 or
    /// less; P(yes) from logprobs passes from 0.5; a Bradley-Terry reward
    /// passes from zero; the last two fail below their pass score.
    pub fn meaning(&self) -> ScoreMeaning {
        match self {
            Spec::Judge {
                score: ScoreMode::Logprobs,
                ..
            } => ScoreMeaning::split_at(0.5, Some(1.0)),
            Spec::Judge {
                parser: Parser::Rating,
                ..
            } => ScoreMeaning {
                pass: (RATING_PASS - 1.0) / 9.0,
                fail: (RATING_FAIL - 1.0) / 9.0,
                max: Some(1.0),
            },
            Spec::Reward { .. } => ScoreMeaning::split_at(0.0, None),
            _ => ScoreMeaning::BINARY,
        }
    }

    /// The score from which a verdict counts as a pass ([`Self::meaning`]).
    pub fn pass_score(&self) -> f64 {
        self.meaning().pass
    }

    /// Whether scoring needs the prompt's gold answer.
    pub fn needs_gold(&self) -> bool {
        match self {
            Spec::Judge { template, .. } => template.uses_reference(),
            Spec::McqJudge { .. } => true,
            Spec::Reward { .. } => false,
        }
    }

    /// Conversations per request.
    pub fn batch_size(&self) -> usize {
        match self {
            Spec::Reward { batch_size, .. } => *batch_size,
            _ => 1,
        }
    }

    /// The route requests go to.
    pub fn route(&self) -> Route<'static> {
        match self {
            Spec::Reward { api, .. } => api.route(),
            _ => Route::V1("chat/completions"),
        }
    }

    /// The judge server's sampler config for this verifier: logprob mode
    /// asks for one token with `top_logprobs`.
    pub fn server_config(
        &self,
        judge: &crate::config::JudgeConfig,
    ) -> crate::config::SamplerConfig {
        let mut s = judge.as_sampler();
        if let Spec::Judge {
            score: ScoreMode::Logprobs,
            top_logprobs,
            ..
        } = self
        {
            s.max_tokens = std::num::NonZeroU32::MIN;
            s.extra_params.insert("logprobs".into(), true.into());
            s.extra_params
                .insert("top_logprobs".into(), (*top_logprobs).into());
        }
        s
    }
}

/// The registry name as a `'static` string, for errors.
fn static_name(kind: &str) -> &'static str {
    KINDS
        .iter()
        .map(|(k, _)| *k)
        .find(|k| *k == kind)
        .unwrap_or("judge")
}

/// One saved rollout to score, with its prompt.
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    /// The response (`None`: no response).
    pub response: Option<&'a str>,
    /// Separate reasoning, when the server split it out.
    pub reasoning: Option<&'a str>,
    /// The prompt's messages (a JSON array).
    pub messages: &'a str,
    /// The gold answer.
    pub gold: Option<&'a str>,
    /// The prompt's metadata JSON.
    pub metadata: Option<&'a str>,
}

/// How a rollout's verdict was reached: the `outcome` column of a model
/// verifier's scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Settled by the multiple-choice rules (`mcq-llm-as-judge`).
    Rules,
    /// The judge (or reward model) answered and its answer was read.
    Judged,
    /// The judge answered something the parser cannot read: no score.
    Unparsed,
    /// The request failed after its retries: no score (asked again next time).
    Failed,
    /// No response to judge.
    NoResponse,
    /// The template needs a reference answer and the prompt has none.
    NoReference,
    /// The thinking never closed: no final answer to judge (score 0).
    Unclosed,
}

impl Outcome {
    /// The name stored in the `outcome` column.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Rules => "rules",
            Outcome::Judged => "judged",
            Outcome::Unparsed => "unparsed",
            Outcome::Failed => "failed",
            Outcome::NoResponse => "no_response",
            Outcome::NoReference => "no_reference",
            Outcome::Unclosed => "unclosed",
        }
    }
}

/// A rollout's verdict from a model verifier.
#[derive(Debug, Clone, PartialEq)]
pub struct Judged {
    /// The score: [0, 1] for judges, the raw reward for reward models.
    pub score: Option<f64>,
    /// What the judge answered, read (`yes`, `7`, `B`) or the reward.
    pub pred: Option<String>,
    /// How the verdict was reached.
    pub outcome: Outcome,
}

impl Judged {
    fn none(outcome: Outcome) -> Self {
        Self {
            score: None,
            pred: None,
            outcome,
        }
    }
}

/// What to do with one rollout: its verdict is known without asking, or
/// the judge must be asked `item` (cached under `key`).
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// Known without a request.
    Settled(Judged),
    /// One item to send: a chat body, or a reward API's conversation.
    Ask {
        /// A hash of everything that decides the answer (route, model,
        /// parameters, prompt, response): the cache key.
        key: String,
        /// The request body (chat judges) or the conversation item that a
        /// batch body is built from (reward models).
        item: String,
    },
}

/// Plans one rollout. `body` builds a chat request body from a messages
/// JSON array (the judge client's model and parameters); `model` is the
/// judge model's name (part of reward-model keys).
pub fn plan(spec: &Spec, row: &Row<'_>, body: &dyn Fn(&str) -> String, model: &str) -> Plan {
    let Some(response) = row.response else {
        return Plan::Settled(Judged::none(Outcome::NoResponse));
    };
    let (final_part, inline_thinking) = match crate::verifier::split::split(response) {
        crate::verifier::split::Split::Final { answer, thinking } => (answer, thinking),
        crate::verifier::split::Split::Unclosed { .. } => {
            return Plan::Settled(Judged {
                score: Some(0.0),
                pred: None,
                outcome: Outcome::Unclosed,
            });
        }
    };
    let thinking_text = || {
        row.reasoning
            .or(inline_thinking)
            .filter(|t| !t.trim().is_empty())
    };
    let shown = |with_thinking: bool| match (with_thinking, thinking_text()) {
        (true, Some(t)) => format!("<think>\n{}\n</think>\n\n{}", t.trim(), final_part.trim()),
        _ => final_part.trim().to_string(),
    };
    let chat = |template: &Template, thinking: bool| -> Plan {
        if template.uses_reference() && row.gold.is_none() {
            return Plan::Settled(Judged::none(Outcome::NoReference));
        }
        let prompt = template.render(&template::Fields {
            messages: row.messages,
            reference: row.gold.unwrap_or(""),
            answer: final_part.trim(),
            response: &shown(thinking),
        });
        let messages = serde_json::json!([{"role": "user", "content": prompt}]).to_string();
        let item = body(&messages);
        Plan::Ask {
            key: key(&["chat/completions", &item]),
            item,
        }
    };
    match spec {
        Spec::Judge {
            template, thinking, ..
        } => chat(template, *thinking),
        Spec::McqJudge { template, thinking } => {
            let gold = row.gold.unwrap_or("");
            if row.gold.is_none() {
                return Plan::Settled(Judged::none(Outcome::NoReference));
            }
            let rules = crate::verifier::mcq::Mcq::default().verify(&Sample {
                response,
                gold,
                metadata: row.metadata,
            });
            if rules.pred.is_some() {
                return Plan::Settled(Judged {
                    score: Some(rules.score),
                    pred: rules.pred,
                    outcome: Outcome::Rules,
                });
            }
            chat(template, *thinking)
        }
        Spec::Reward {
            api,
            chat_format,
            thinking,
            ..
        } => {
            let item = reward::item(*api, *chat_format, row.messages, &shown(*thinking));
            Plan::Ask {
                key: key(&[&format!("{api:?}"), model, &item]),
                item,
            }
        }
    }
}

/// Reads a judge's saved answer (`raw`) for one rollout.
pub fn read_answer(spec: &Spec, raw: &str, row: &Row<'_>) -> Judged {
    match spec {
        Spec::Judge {
            score,
            parser,
            words,
            ..
        } => {
            let read = match score {
                ScoreMode::Verdict => verdict::read(*parser, words, raw),
                ScoreMode::Logprobs => verdict::from_logprobs(words, raw),
            };
            read.map_or_else(
                || Judged::none(Outcome::Unparsed),
                |(score, pred)| Judged {
                    score: Some(score),
                    pred: Some(pred),
                    outcome: Outcome::Judged,
                },
            )
        }
        Spec::McqJudge { .. } => match verdict::letter(raw) {
            None => Judged::none(Outcome::Unparsed),
            Some(None) => Judged {
                score: Some(0.0),
                pred: Some("none".into()),
                outcome: Outcome::Judged,
            },
            Some(Some(letter)) => {
                let v = crate::verifier::mcq::Mcq::default().verify(&Sample {
                    response: &format!("Answer: {letter}"),
                    gold: row.gold.unwrap_or(""),
                    metadata: row.metadata,
                });
                Judged {
                    score: Some(v.score),
                    pred: Some(letter.to_string()),
                    outcome: Outcome::Judged,
                }
            }
        },
        Spec::Reward { .. } => match raw.trim().parse::<f64>() {
            Ok(r) if r.is_finite() => Judged {
                score: Some(r),
                pred: Some(raw.trim().to_string()),
                outcome: Outcome::Judged,
            },
            _ => Judged::none(Outcome::Unparsed),
        },
    }
}

/// A 128-bit FNV-1a hash of `parts` (each followed by a 0 byte), as 32 hex
/// digits: stable across runs and versions, so the judge cache keeps.
pub fn key(parts: &[&str]) -> String {
    let mut h: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    for part in parts {
        for &b in part.as_bytes().iter().chain(std::iter::once(&0u8)) {
            h ^= u128::from(b);
            h = h.wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013B);
        }
    }
    format!("{h:032x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(json: &str) -> Map<String, Value> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn options_are_checked_with_their_keys() {
        let e = Spec::from_options("llm-judge", &opts(r#"{"templat": "rubric"}"#)).unwrap_err();
        assert!(e.to_string().contains("verifier.options.templat"), "{e}");
        let e = Spec::from_options("llm-judge", &opts(r#"{"template": "nope.txt"}"#)).unwrap_err();
        assert!(e.to_string().contains("nope.txt"), "{e}");
        let e = Spec::from_options(
            "llm-judge",
            &opts(r#"{"template": "rubric", "score": "logprobs"}"#),
        )
        .unwrap_err();
        assert!(e.to_string().contains("yes/no template"), "{e}");
        let e = Spec::from_options("reward-model", &opts(r#"{"api": "tgi"}"#)).unwrap_err();
        assert!(e.to_string().contains("vllm-classify"), "{e}");
        assert!(Spec::from_options("llm-judge", &Map::new()).is_ok());
        assert!(Spec::from_options("mcq-llm-as-judge", &Map::new()).is_ok());
        let s = Spec::from_options("reward-model", &opts(r#"{"api": "openrlhf"}"#)).unwrap();
        assert_eq!(s.batch_size(), 16);
        let s = Spec::from_options("reward-model", &Map::new()).unwrap();
        assert_eq!(s.batch_size(), 1, "vLLM /classify with messages takes one");
    }

    #[test]
    fn keys_are_stable_and_separate_their_parts() {
        assert_eq!(key(&["a", "b"]), key(&["a", "b"]));
        assert_ne!(key(&["ab", ""]), key(&["a", "b"]));
        assert_eq!(key(&[]).len(), 32);
        // Fixed forever: the cache on disk depends on it.
        assert_eq!(key(&["x"]), key(&["x"]));
        assert_eq!(key(&[""]), "d228cb69101a8caf78912b704e4a147f");
    }

    fn row<'a>(response: &'a str, gold: Option<&'a str>) -> Row<'a> {
        Row {
            response: Some(response),
            reasoning: None,
            messages: r#"[{"role":"user","content":"What is 2+2?"}]"#,
            gold,
            metadata: None,
        }
    }

    #[test]
    fn the_judge_sees_the_final_answer_not_the_thinking() {
        let spec = Spec::from_options("llm-judge", &Map::new()).unwrap();
        let body = |m: &str| m.to_string();
        let Plan::Ask { item, .. } = plan(
            &spec,
            &row("<think>maybe 5? secret</think>The answer is 4.", Some("4")),
            &body,
            "j",
        ) else {
            panic!("asks")
        };
        assert!(
            item.contains("The answer is 4.") && !item.contains("secret"),
            "{item}"
        );
        assert!(item.contains("What is 2+2?") && item.contains("[Reference answer]\\n4"));
        let with = Spec::from_options("llm-judge", &opts(r#"{"thinking": true}"#)).unwrap();
        let Plan::Ask { item, .. } = plan(
            &with,
            &row("<think>maybe 5? secret</think>The answer is 4.", Some("4")),
            &body,
            "j",
        ) else {
            panic!("asks")
        };
        assert!(item.contains("secret"), "{item}");
        // No reference: correctness cannot judge; rubric can.
        assert_eq!(
            plan(&spec, &row("4", None), &body, "j"),
            Plan::Settled(Judged::none(Outcome::NoReference))
        );
        let rubric = Spec::from_options("llm-judge", &opts(r#"{"template": "rubric"}"#)).unwrap();
        assert!(matches!(
            plan(&rubric, &row("4", None), &body, "j"),
            Plan::Ask { .. }
        ));
        // Unclosed thinking: score 0 without asking.
        assert!(matches!(
            plan(&spec, &row("<think>still going", Some("4")), &body, "j"),
            Plan::Settled(Judged {
                outcome: Outcome::Unclosed,
                ..
            })
        ));
    }

    #[test]
    fn mcq_judge_asks_only_where_the_rules_find_nothing() {
        let spec = Spec::from_options("mcq-llm-as-judge", &Map::new()).unwrap();
        let body = |m: &str| m.to_string();
        let settled = plan(&spec, &row("The answer is (B).", Some("B")), &body, "j");
        assert!(matches!(
            settled,
            Plan::Settled(Judged {
                score: Some(1.0),
                outcome: Outcome::Rules,
                ..
            })
        ));
        let asked = plan(
            &spec,
            &row("I would go with the second one, helium.", Some("B")),
            &body,
            "j",
        );
        assert!(matches!(asked, Plan::Ask { .. }));
        let r = row("x", Some("B"));
        assert_eq!(read_answer(&spec, "B", &r).score, Some(1.0));
        assert_eq!(read_answer(&spec, "**C**", &r).score, Some(0.0));
        assert_eq!(read_answer(&spec, "none", &r).pred.as_deref(), Some("none"));
        assert_eq!(read_answer(&spec, "", &r).outcome, Outcome::Unparsed);
    }
}
