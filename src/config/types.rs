//! The typed configuration. Field names and defaults mirror
//! `configs/default.yaml`, which is the reference for every key.

use std::num::{NonZeroU32, NonZeroU64, NonZeroUsize};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A fully resolved and validated rsr configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Run directory; resolved to `output/<timestamp>` when not given.
    pub work_dir: Option<PathBuf>,
    /// Input data and its preparation.
    pub data: DataConfig,
    /// Sharding of the prepared input.
    pub shard: ShardConfig,
    /// Per-prompt rollout policy.
    pub sampling: SamplingConfig,
    /// The model server and request parameters.
    pub sampler: SamplerConfig,
    /// How responses are scored.
    pub verifier: VerifierConfig,
    /// The model server of the verifiers that call a model.
    pub judge: JudgeConfig,
    /// Prices per million tokens, for cost figures and `budget.max_cost`.
    pub pricing: PricingConfig,
    /// Caps on what the work dir spends, over all its runs.
    pub budget: BudgetConfig,
    /// Training sets to build from the scored rollouts.
    pub formatter: Vec<FormatterConfig>,
    /// Shape of the training files.
    pub export: ExportConfig,
    /// What the dataset card says that rsr cannot know.
    pub card: CardConfig,
}

/// `card.*`: what the dataset card beside the training files says that
/// rsr cannot know.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardConfig {
    /// The data's license (a Hugging Face license id); never guessed.
    pub license: Option<String>,
    /// Languages, ISO 639-1.
    pub language: Vec<String>,
    /// Hugging Face ids of the prompts' source datasets.
    pub source_datasets: Vec<String>,
    /// The card's title (none: the work dir's name).
    pub pretty_name: Option<String>,
}

/// `export.*`: the shape of `train/` files.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportConfig {
    /// Row shape and file type.
    pub format: ExportFormat,
    /// What happens to the responses' thinking.
    pub reasoning: ReasoningMode,
    /// Add each row's prompt `id` and the `rollout_idx` of its response(s)
    /// to JSON Lines rows, to trace a training row back to its rollout.
    pub with_ids: bool,
}

/// Export shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    /// TRL conversational JSONL (`messages`; `prompt`/`chosen`/`rejected`).
    Trl,
    /// TRL conversational prompt-completion JSONL (`prompt`/`completion`,
    /// so SFT computes the loss on the completion only; pairs as `trl`).
    /// Both spellings are accepted everywhere (config, flags).
    #[serde(rename = "trl_prompt_completion", alias = "trl-prompt-completion")]
    #[value(alias = "trl_prompt_completion")]
    TrlPromptCompletion,
    /// ShareGPT JSONL (LLaMA-Factory).
    Sharegpt,
    /// Alpaca JSONL (LLaMA-Factory).
    Alpaca,
    /// The TRL shape as Parquet.
    Parquet,
}

impl ExportFormat {
    /// File extension of the format.
    pub fn extension(self) -> &'static str {
        match self {
            ExportFormat::Parquet => "parquet",
            _ => "jsonl",
        }
    }
}

/// Handling of the responses' thinking in exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum ReasoningMode {
    /// Final answer only.
    Drop,
    /// `<think>…</think>` before the final answer (`think_tags` or
    /// `think-tags`, in config and flags alike).
    #[serde(alias = "think-tags")]
    #[value(alias = "think_tags")]
    ThinkTags,
    /// A separate `reasoning_content` field.
    Field,
}

/// `data.*`: where prompts come from and how they are mapped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// Prompt file (JSONL, JSON array, CSV or Parquet). Required by `prepare`.
    pub input_path: Option<PathBuf>,
    /// File format; `auto` picks it from the extension.
    pub format: InputFormat,
    /// Optional SQL mapping of the raw table.
    pub preprocess: PreprocessConfig,
    /// Keep only the first N prompts.
    pub limit: Option<u64>,
    /// Where prompt ids come from.
    pub id_from: IdFrom,
    /// A system message put first in every prompt that has none.
    pub system_prompt: Option<String>,
    /// The user message built from each input row's fields (`{question}`).
    pub prompt_template: Option<String>,
    /// Benchmark overlap checked at prepare time.
    pub decontaminate: DecontaminateConfig,
    /// Duplicate prompts flagged at prepare time.
    pub dedup: DedupConfig,
}

/// `data.decontaminate.*`: prompts sharing a run of `ngram` normalised
/// words with a benchmark problem are flagged (`contaminated`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecontaminateConfig {
    /// Benchmark files (JSONL, JSON, CSV or Parquet).
    pub benchmarks: Vec<BenchmarkFile>,
    /// Words per n-gram.
    pub ngram: NonZeroUsize,
    /// Sample and format flagged prompts anyway (they stay flagged).
    pub keep: bool,
}

/// One benchmark file: a path, or `{path, column}` naming its text column.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchmarkFile {
    /// The file.
    pub path: PathBuf,
    /// Its text column; default `problem`, `question`, `prompt` or the user
    /// turns of `messages`, whichever it has.
    pub column: Option<String>,
}

impl Serialize for BenchmarkFile {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match &self.column {
            None => self.path.serialize(s),
            Some(c) => {
                let mut m = s.serialize_map(Some(2))?;
                m.serialize_entry("path", &self.path)?;
                m.serialize_entry("column", c)?;
                m.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for BenchmarkFile {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = BenchmarkFile;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a file path, or a mapping with `path` and `column`")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<BenchmarkFile, E> {
                Ok(BenchmarkFile {
                    path: PathBuf::from(v),
                    column: None,
                })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<BenchmarkFile, A::Error> {
                let (mut path, mut column) = (None, None);
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "path" => path = Some(map.next_value::<PathBuf>()?),
                        "column" => column = map.next_value::<Option<String>>()?,
                        other => {
                            return Err(serde::de::Error::unknown_field(
                                other,
                                &["path", "column"],
                            ));
                        }
                    }
                }
                let path = path.ok_or_else(|| serde::de::Error::missing_field("path"))?;
                Ok(BenchmarkFile { path, column })
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// `data.dedup.*`: duplicate prompts flagged (`duplicate_of`), the first of
/// each group kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DedupConfig {
    /// off, exact (same normalised text) or near (MinHash, Jaccard at
    /// least `threshold`, exact copies included).
    pub mode: DedupMode,
    /// Jaccard similarity of word shingles at which prompts are near-duplicates.
    pub threshold: f64,
    /// MinHash hash functions per signature.
    pub num_perm: NonZeroUsize,
    /// Words per shingle.
    pub shingle: NonZeroUsize,
    /// Sample and format duplicates anyway (they stay flagged).
    pub keep: bool,
}

/// How duplicate prompts are found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DedupMode {
    /// Not checked.
    Off,
    /// The same normalised text.
    Exact,
    /// MinHash with LSH over word shingles.
    Near,
}

/// `data.preprocess.*`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreprocessConfig {
    /// SQL file run over the table `raw`.
    pub transform: Option<PathBuf>,
}

/// Input file formats `prepare` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InputFormat {
    /// From the file extension.
    Auto,
    /// One JSON object per line.
    Jsonl,
    /// A JSON array of objects.
    Json,
    /// Comma-separated with a header row.
    Csv,
    /// Apache Parquet (Hugging Face dataset files as-is).
    Parquet,
}

/// Where prompt ids come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IdFrom {
    /// The `id` column.
    Column,
    /// A stable hash of the canonical messages JSON.
    Hash,
}

/// `shard.*`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardConfig {
    /// Prompts per shard.
    pub size: NonZeroUsize,
}

/// `sampling.*`: how many rollouts each prompt gets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamplingConfig {
    /// Valid rollouts after which a prompt stops.
    pub max_rollouts: NonZeroUsize,
    /// Rollouts requested per step.
    pub step_size: NonZeroUsize,
    /// Steps per prompt at most.
    pub max_steps: NonZeroUsize,
    /// Stop a prompt once every formatter is satisfied.
    pub early_stop: bool,
    /// Prompts in flight at once.
    pub concurrent_prompts: NonZeroUsize,
    /// Rollouts waiting for a verdict that arrives after the response (a
    /// judge, a reward model) above which no new sampling request is sent
    /// until verdicts arrive.
    pub max_pending_verdicts: NonZeroUsize,
    /// Keep going when the truncation guard trips.
    pub allow_truncation: bool,
    /// Finished responses the truncation guard looks at.
    pub truncation_window: NonZeroUsize,
    /// Truncated share of the window above which the run stops.
    pub max_truncation_rate: f64,
    /// Keep going when the sampling guard trips.
    pub allow_identical: bool,
    /// Prompts (with two or more valid responses) the sampling guard
    /// looks at.
    pub identical_window: NonZeroUsize,
    /// Share of those prompts with only identical responses above which
    /// the run stops.
    pub max_identical_rate: f64,
    /// Keep going when the extraction guard trips.
    pub allow_no_answer: bool,
    /// Valid responses with a gold answer the extraction guard looks at.
    pub no_answer_window: NonZeroUsize,
    /// Share of those responses without an answer the verifier can find
    /// above which the run stops.
    pub max_no_answer_rate: f64,
    /// Failed requests per prompt and run before the prompt is left for
    /// the next resume.
    pub max_failed_attempts: NonZeroUsize,
    /// Requests the circuit breaker looks at (the most recent ones).
    pub failure_window: NonZeroUsize,
    /// Failed share of the window above which the run stops.
    pub max_failure_rate: f64,
    /// Rollout rows buffered per shard before a part file is written.
    pub flush_rows: NonZeroUsize,
    /// Seconds after which buffered rollout rows are written anyway.
    pub flush_seconds: f64,
}

/// Kinds of sampler backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SamplerType {
    /// Any OpenAI-compatible server at `base_url`.
    Openai,
    /// A vLLM server, launched by rsr when `base_url` is not given.
    Vllm,
    /// An SGLang server, launched by rsr when `base_url` is not given.
    Sglang,
    /// llama.cpp's `llama-server` on a GGUF file, launched by rsr when
    /// `base_url` is not given (CPU machines, laptops).
    #[serde(rename = "llama-cpp")]
    LlamaCpp,
    /// Responses generated elsewhere, read from `replay_path`.
    Replay,
}

/// `sampler.*`: the model server and request parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamplerConfig {
    /// Backend kind.
    #[serde(rename = "type")]
    pub kind: SamplerType,
    /// Model name sent in requests.
    pub model: Option<String>,
    /// One or several OpenAI-compatible base URLs; none when rsr launches
    /// the servers.
    pub base_url: Option<Endpoints>,
    /// A file of base URLs, one per line, read again when it changes
    /// during a run (servers that come and go); fills `base_url`.
    #[serde(default)]
    pub endpoints_file: Option<PathBuf>,
    /// Which server a request goes to.
    #[serde(default)]
    pub routing: Routing,
    /// Environment variable holding the API key.
    pub api_key_env: Option<String>,
    /// Weights for a launched server.
    pub model_path: Option<PathBuf>,
    /// GPUs per launched server (the tensor-parallel size).
    pub num_gpus: NonZeroUsize,
    /// Servers to launch; none: one per `num_gpus` visible GPUs, at least one.
    pub num_servers: Option<NonZeroUsize>,
    /// Launch command template; none: the default of `type`.
    pub launch: Option<String>,
    /// The server program for `{server_bin}` (`type: llama-cpp`); none:
    /// `llama-server` beside rsr or on `PATH`.
    pub server_bin: Option<PathBuf>,
    /// Seconds a launched server may take to become healthy.
    pub startup_timeout: f64,
    /// File of responses for `type: replay`.
    pub replay_path: Option<PathBuf>,
    /// Sampling temperature.
    pub temperature: f64,
    /// Nucleus sampling mass.
    pub top_p: f64,
    /// Completion token budget per response.
    pub max_tokens: NonZeroU32,
    /// Seed of each request, derived from this one, the prompt id and the
    /// request's first rollout index; none: the server's own randomness.
    pub seed: Option<i64>,
    /// Stop sequences.
    pub stop: Option<Vec<String>>,
    /// One request with `n=step_size` per step; `false`: `step_size`
    /// requests with `n=1`, for servers without `n`.
    pub use_n: bool,
    /// Requests in flight at once.
    pub concurrent_requests: NonZeroUsize,
    /// Requests per minute at most, spaced evenly; none: no pacing.
    #[serde(default)]
    pub max_rpm: Option<f64>,
    /// Prompt + completion tokens per minute at most (a token bucket, the
    /// completion side estimated and corrected by usage); none: no pacing.
    #[serde(default)]
    pub max_tpm: Option<f64>,
    /// Seconds per request.
    pub timeout: f64,
    /// Retries of a failed request.
    pub max_retries: u32,
    /// Seconds before the first retry; each next one waits twice as long.
    pub retry_delay: f64,
    /// Whether truncated responses count as valid rollouts.
    pub drop_truncated: bool,
    /// Extra fields merged into each request body.
    pub extra_params: serde_json::Map<String, serde_json::Value>,
    /// Requests one by one, or through the provider's batch API.
    pub mode: SamplerMode,
    /// `sampler.batch.*`: the batch API, with `mode: batch`.
    pub batch: BatchConfig,
}

impl SamplerConfig {
    /// Whether a step is one request with `n` responses: `use_n`, except
    /// through Anthropic's batches (a message has one response).
    pub fn sends_n(&self) -> bool {
        self.use_n && !(self.mode == SamplerMode::Batch && self.batch.api == BatchApi::Anthropic)
    }
}

/// Which server a sampling request goes to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Routing {
    /// The healthy server with the fewest requests in flight.
    #[default]
    LeastLoaded,
    /// Every request of a prompt to the same server (its prefix cache
    /// holds the prompt), unless that server is above 1.5 times the
    /// average load plus 4; servers joining or leaving move only their
    /// share of prompts.
    PrefixAffinity,
}

/// How sampling requests are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SamplerMode {
    /// One by one, as slots free up.
    Online,
    /// In rounds of provider batches, at the batch discount.
    Batch,
}

/// Which batch API a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BatchApi {
    /// Files + Batches (`/v1/files`, `/v1/batches`): OpenAI, Azure OpenAI,
    /// Together, Groq, kluster.ai, OpenRouter and other OpenAI-shaped APIs.
    Openai,
    /// Message Batches (`/v1/messages/batches`).
    Anthropic,
}

/// `sampler.batch.*`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchConfig {
    /// The API.
    pub api: BatchApi,
    /// Prompts in a round at most (what the client holds at once).
    pub round_prompts: NonZeroUsize,
    /// Requests per batch at most; none: the API's limit.
    pub max_requests: Option<NonZeroUsize>,
    /// Bytes per batch at most; none: the API's limit.
    pub max_bytes: Option<NonZeroU64>,
    /// OpenAI's `completion_window`.
    pub completion_window: String,
    /// Seconds between status checks.
    pub poll_interval: f64,
}

impl BatchConfig {
    /// Requests and bytes per batch: `max_requests` and `max_bytes`, at
    /// most the API's limits (OpenAI 50,000 and 200 MB, Anthropic 100,000
    /// and 256 MB).
    pub fn limits(&self) -> (usize, u64) {
        let (requests, bytes) = match self.api {
            BatchApi::Openai => (50_000, 200 << 20),
            BatchApi::Anthropic => (100_000, 256 << 20),
        };
        (
            self.max_requests
                .map_or(requests, |n| n.get().min(requests)),
            self.max_bytes.map_or(bytes, |n| n.get().min(bytes)),
        )
    }
}

impl Default for BatchConfig {
    /// `configs/default.yaml`'s values.
    fn default() -> Self {
        Self {
            api: BatchApi::Openai,
            round_prompts: NonZeroUsize::new(10_000).expect("non-zero"),
            max_requests: None,
            max_bytes: None,
            completion_window: "24h".into(),
            poll_interval: 30.0,
        }
    }
}

/// `judge.*`: the server the model-calling verifiers (`llm-judge`,
/// `mcq-llm-as-judge`, `reward-model`) send their requests to. The keys and
/// their meaning are the sampler's; [`JudgeConfig::as_sampler`] turns them
/// into a [`SamplerConfig`] so that both use one client, one endpoint pool,
/// one retry policy, one preflight and one server launcher.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JudgeConfig {
    /// Backend kind (`replay` is not a judge).
    #[serde(rename = "type")]
    pub kind: SamplerType,
    /// Model name sent in requests.
    pub model: Option<String>,
    /// One or several base URLs; none when rsr launches the servers.
    pub base_url: Option<Endpoints>,
    /// Environment variable holding the API key.
    pub api_key_env: Option<String>,
    /// Weights for a launched server.
    pub model_path: Option<PathBuf>,
    /// GPUs per launched server.
    pub num_gpus: NonZeroUsize,
    /// Servers to launch; none: one per `num_gpus` visible GPUs.
    pub num_servers: Option<NonZeroUsize>,
    /// Launch command template; none: the default of `type`.
    pub launch: Option<String>,
    /// The server program for `{server_bin}` (`type: llama-cpp`).
    pub server_bin: Option<PathBuf>,
    /// Seconds a launched server may take to become healthy.
    pub startup_timeout: f64,
    /// Sampling temperature of judge requests.
    pub temperature: f64,
    /// Nucleus sampling mass.
    pub top_p: f64,
    /// Completion token budget per judge answer.
    pub max_tokens: NonZeroU32,
    /// Request seed; none: the server's own randomness.
    pub seed: Option<i64>,
    /// Judge requests in flight at once.
    pub concurrent_requests: NonZeroUsize,
    /// Judge requests per minute at most; none: no pacing.
    #[serde(default)]
    pub max_rpm: Option<f64>,
    /// Judge tokens per minute at most; none: no pacing.
    #[serde(default)]
    pub max_tpm: Option<f64>,
    /// Seconds per request.
    pub timeout: f64,
    /// Retries of a failed request.
    pub max_retries: u32,
    /// Seconds before the first retry.
    pub retry_delay: f64,
    /// Extra fields merged into each request body.
    pub extra_params: serde_json::Map<String, serde_json::Value>,
    /// Judge requests one by one (while sampling), or through the
    /// provider's batch API after sampling.
    pub mode: SamplerMode,
    /// `judge.batch.*`, with `mode: batch` (`round_prompts`: judge
    /// requests per round).
    pub batch: BatchConfig,
}

impl JudgeConfig {
    /// The judge's server keys as a sampler config (one response per
    /// request, no stop sequences), for the shared client and launcher.
    pub fn as_sampler(&self) -> SamplerConfig {
        SamplerConfig {
            kind: self.kind,
            model: self.model.clone(),
            base_url: self.base_url.clone(),
            endpoints_file: None,
            routing: Routing::LeastLoaded,
            api_key_env: self.api_key_env.clone(),
            model_path: self.model_path.clone(),
            num_gpus: self.num_gpus,
            num_servers: self.num_servers,
            launch: self.launch.clone(),
            server_bin: self.server_bin.clone(),
            startup_timeout: self.startup_timeout,
            replay_path: None,
            temperature: self.temperature,
            top_p: self.top_p,
            max_tokens: self.max_tokens,
            seed: self.seed,
            stop: None,
            use_n: false,
            concurrent_requests: self.concurrent_requests,
            max_rpm: self.max_rpm,
            max_tpm: self.max_tpm,
            timeout: self.timeout,
            max_retries: self.max_retries,
            retry_delay: self.retry_delay,
            drop_truncated: true,
            extra_params: self.extra_params.clone(),
            mode: self.mode,
            batch: self.batch.clone(),
        }
    }
}

/// `pricing.*`: USD per million tokens (none: unknown).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PricingConfig {
    /// The sampler model's prompt tokens.
    pub input: Option<f64>,
    /// The sampler model's completion tokens.
    pub output: Option<f64>,
    /// The judge model's prompt tokens.
    pub judge_input: Option<f64>,
    /// The judge model's completion tokens.
    pub judge_output: Option<f64>,
    /// Share of the online price a batch API charges (0.5: half price).
    pub batch_discount: f64,
}

impl PricingConfig {
    /// These prices as `sampler.mode` pays them: the sampling prices times
    /// `batch_discount` through a batch API (the judge's stay online).
    pub fn for_mode(&self, mode: SamplerMode) -> PricingConfig {
        let share = match mode {
            SamplerMode::Online => 1.0,
            SamplerMode::Batch => self.batch_discount,
        };
        PricingConfig {
            input: self.input.map(|p| p * share),
            output: self.output.map(|p| p * share),
            ..self.clone()
        }
    }

    /// `(input, output)` sampling prices as `mode` pays them, when both
    /// are known.
    pub fn sampling(&self, mode: SamplerMode) -> Option<(f64, f64)> {
        let p = self.for_mode(mode);
        p.input.zip(p.output)
    }
}

/// `budget.*`: caps over every run of a work dir (none: no cap).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetConfig {
    /// USD, from `pricing` (sampling and judging).
    pub max_cost: Option<f64>,
    /// Completion tokens of sampling.
    pub max_completion_tokens: Option<u64>,
    /// Sampling requests.
    pub max_requests: Option<u64>,
}

/// One URL or a list of URLs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Endpoints {
    /// A single server.
    One(String),
    /// Several servers, load-balanced.
    Many(Vec<String>),
}

impl Endpoints {
    /// The URLs as a slice.
    pub fn urls(&self) -> &[String] {
        match self {
            Endpoints::One(url) => std::slice::from_ref(url),
            Endpoints::Many(urls) => urls,
        }
    }
}

/// `verifier.*`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifierConfig {
    /// Verifier name.
    #[serde(rename = "type")]
    pub kind: String,
    /// Directory name under `scores/`; defaults to the verifier name.
    pub label: Option<String>,
    /// Verifier-specific options.
    pub options: serde_json::Map<String, serde_json::Value>,
}

impl VerifierConfig {
    /// The label used for `scores/<label>/`.
    pub fn label(&self) -> &str {
        self.label.as_deref().unwrap_or(&self.kind)
    }
}

/// One item of `formatter`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormatterConfig {
    /// Built-in name (`sft`, `dpo`, `top_k`, `multi_sft`) or a `.sql` file.
    #[serde(rename = "type")]
    pub kind: String,
    /// Output name (`train/<name>.jsonl`); default the type or file stem.
    #[serde(default)]
    pub name: Option<String>,
    /// A rollout passes when its score is at least this; none: the pass
    /// score of the verdicts formatted (1 for rule verdicts, 0.5 for a
    /// judge's P(yes), a rating of 7 of 10, a reward of 0).
    #[serde(default)]
    pub pass_threshold: Option<f64>,
    /// A rollout fails when its score is at most this; none: the verdicts'
    /// fail score (0 for rule verdicts, below the pass score for P(yes)
    /// and rewards, a rating of 4 of 10).
    #[serde(default)]
    pub fail_threshold: Option<f64>,
    /// Responses per prompt for `top_k` / `multi_sft`.
    #[serde(default)]
    pub k: Option<NonZeroUsize>,
    /// `dpo`: the chosen response's score must exceed the rejected one's by
    /// at least this (rewards); none: 0.
    #[serde(default)]
    pub min_margin: Option<f64>,
    /// Keep prompts whose pass rate is at least this.
    #[serde(default)]
    pub min_pass_rate: Option<f64>,
    /// Keep prompts whose pass rate is at most this.
    #[serde(default)]
    pub max_pass_rate: Option<f64>,
    /// Free SQL predicate over the `prompts` view.
    #[serde(default, rename = "where")]
    pub filter: Option<String>,
    /// `top_k` / `multi_sft`: no two responses kept for a prompt have a
    /// Jaccard similarity of word 3-grams above this; a near-copy gives way
    /// to the next response in rank. None: only exact copies are collapsed.
    #[serde(default)]
    pub max_similarity: Option<f64>,
}
