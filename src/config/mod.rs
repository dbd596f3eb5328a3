//! Configuration: built-in defaults, a YAML file, `RSR_*` environment
//! variables and `key.path=value` overrides, resolved (in that order of
//! precedence) into one typed, validated [`Config`].
//!
//! Resolution also owns resume: when `work_dir` names a directory that holds
//! a saved `config.yaml`, that file replaces the built-in defaults as the base
//! and overrides that would change already-produced data are refused.

mod tree;
mod types;

use std::path::{Path, PathBuf};

use serde_yaml_ng::Value;
use thiserror::Error;

pub use tree::edit_distance;
pub use types::*;

/// The built-in defaults, shipped as `configs/default.yaml`.
pub const DEFAULT_YAML: &str = include_str!("../../configs/default.yaml");

/// Keys whose values shape what a run produces: changing them on resume
/// would mix incompatible data, so resuming refuses it.
pub const FROZEN_KEYS: &[&str] = &[
    "data.input_path",
    "data.format",
    "data.preprocess",
    "data.limit",
    "data.id_from",
    "data.system_prompt",
    "data.prompt_template",
    // Changed only by `rsr hygiene`, which recomputes the flags; `keep`
    // may change on resume.
    "data.decontaminate.benchmarks",
    "data.decontaminate.ngram",
    "data.dedup.mode",
    "data.dedup.threshold",
    "data.dedup.num_perm",
    "data.dedup.shingle",
    "shard",
    "sampling.max_rollouts",
    "sampling.step_size",
    "sampling.max_steps",
    "sampling.early_stop",
    "sampler.type",
    "sampler.model",
    "sampler.model_path",
    "sampler.temperature",
    "sampler.top_p",
    "sampler.max_tokens",
    "sampler.seed",
    "sampler.stop",
    "sampler.replay_path",
    "sampler.drop_truncated",
    "sampler.extra_params",
    "verifier",
];

/// Errors found while resolving the configuration.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {}: {error}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The config file is not valid YAML or not a mapping.
    #[error("{origin}: {message}")]
    Parse {
        /// File or source that failed.
        origin: String,
        /// Parser message.
        message: String,
    },
    /// A `key=value` argument or environment variable is malformed.
    #[error("{origin}: {message}")]
    Override {
        /// The argument or variable.
        origin: String,
        /// What is wrong.
        message: String,
    },
    /// Several unknown keys, each with its suggestion: all of them at once,
    /// so that one run shows every typo.
    #[error("{} unknown keys:\n  {}", .0.len(), .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n  "))]
    UnknownKeys(Vec<ConfigError>),
    /// A key that rsr does not know.
    #[error("unknown key `{key}` (from {origin}){hint}")]
    UnknownKey {
        /// Dotted path of the key.
        key: String,
        /// Where it was set.
        origin: String,
        /// A suggestion, starting with `; `.
        hint: String,
    },
    /// A value of the wrong type or out of range.
    #[error("invalid `{key}` (from {origin}): {message}")]
    Invalid {
        /// Dotted path of the key.
        key: String,
        /// Where it was set.
        origin: String,
        /// What is expected.
        message: String,
    },
    /// A required value (`???`) was never set.
    #[error(
        "`{key}` is required but not set (it is `???`); set it in the config file or pass {key}=VALUE"
    )]
    Missing {
        /// Dotted path of the key.
        key: String,
    },
    /// An API key or other secret was put into the config.
    #[error(
        "`{key}` (from {origin}) looks like a secret; secrets never go into a config: put the key in an environment variable and name it with sampler.api_key_env"
    )]
    Secret {
        /// Dotted path of the key.
        key: String,
        /// Where it was set.
        origin: String,
    },
    /// Resuming with a value that would change already-produced data.
    #[error(
        "cannot change `{key}` when resuming {}: the run was produced with {saved}, the new value is {given}. Keep the saved value, or start a new run (leave work_dir unset)",
        work_dir.display()
    )]
    ResumeConflict {
        /// Dotted path of the key.
        key: String,
        /// Saved value (YAML).
        saved: String,
        /// New value (YAML).
        given: String,
        /// The work dir being resumed.
        work_dir: PathBuf,
    },
}

/// Where configuration comes from, besides the built-in defaults.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// A YAML config file.
    pub file: Option<PathBuf>,
    /// `(NAME, value)` pairs of the process environment; only `RSR_*` are read.
    pub env: Vec<(String, String)>,
    /// `key.path=value` arguments, in order.
    pub overrides: Vec<String>,
}

impl Sources {
    /// Sources with the current process environment.
    pub fn from_process_env(file: Option<PathBuf>, overrides: Vec<String>) -> Self {
        Self {
            file,
            env: std::env::vars().collect(),
            overrides,
        }
    }
}

/// A resolved config and how it was obtained.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The typed config; `work_dir` is always set.
    pub config: Config,
    /// Keys left at `???`.
    pub missing: Vec<String>,
    /// Whether `work_dir` held a saved config that was resumed.
    pub resumed: bool,
    /// Which layer set each key, for messages.
    origins: Origins,
}

/// A check of one section by the module that owns it (the formatters,
/// hygiene, the scoring registry): the key at fault and why.
/// [`Resolved::check`] turns it into the [`ConfigError::Invalid`] the user
/// sees, with the key's origin.
#[derive(Debug, Clone, PartialEq)]
pub struct SectionError {
    /// Dotted path of the key at fault.
    pub key: String,
    /// What is wrong and how to fix it.
    pub message: String,
    /// The key whose origin the error names, when not `key` itself (a
    /// value never set is named where the choice that needs it was made).
    pub origin_of: Option<String>,
}

impl SectionError {
    /// An error about `key`.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
            origin_of: None,
        }
    }
}

/// A section check: what a module that owns a section knows of it.
pub type SectionCheck = fn(&Config) -> Result<(), SectionError>;

impl Resolved {
    /// Runs the section checks of the modules that own them, in order; the
    /// first failure becomes the error of its key, naming where it was set.
    pub fn check(&self, checks: &[SectionCheck]) -> Result<(), ConfigError> {
        for check in checks {
            check(&self.config).map_err(|e| self.invalid(e))?;
        }
        Ok(())
    }

    /// A section check's error as the user sees it: the key, where it (or
    /// the key it names) was set, and the message.
    pub fn invalid(&self, e: SectionError) -> ConfigError {
        ConfigError::Invalid {
            origin: self.origins.of(e.origin_of.as_deref().unwrap_or(&e.key)),
            key: e.key,
            message: e.message,
        }
    }

    /// The run directory.
    pub fn work_dir(&self) -> &Path {
        self.config
            .work_dir
            .as_deref()
            .expect("work_dir is resolved")
    }

    /// Where `key` was set: a config file, an environment variable, a
    /// command-line override, a resumed run's config or the defaults.
    pub fn origin(&self, key: &str) -> String {
        self.origins.of(key)
    }

    /// Fails with [`ConfigError::Missing`] when `key` was left at `???`.
    pub fn require(&self, key: &str) -> Result<(), ConfigError> {
        if self.missing.iter().any(|m| m == key) {
            return Err(ConfigError::Missing {
                key: key.to_string(),
            });
        }
        Ok(())
    }

    /// The config as YAML for `WORK_DIR/config.yaml`: no secrets, unset
    /// required keys kept as `???`.
    pub fn to_yaml(&self) -> String {
        let mut value = serde_yaml_ng::to_value(&self.config).expect("config serializes");
        if self.config.sampler.endpoints_file.is_some() {
            // Read from the file at every start, not frozen into the run.
            tree::set_path(&mut value, "sampler.base_url", Value::Null)
                .expect("sampler.base_url is a key");
        }
        for key in &self.missing {
            tree::set_path(&mut value, key, Value::String(tree::REQUIRED.into()))
                .expect("path of a resolved key");
        }
        let body = serde_yaml_ng::to_string(&value).expect("config serializes");
        format!(
            "# Resolved rsr config (defaults < file < RSR_* env < overrides). No secrets.\n\
             # Resume this run with: rsr run work_dir={}\n{body}",
            self.work_dir().display()
        )
    }
}

/// One layer's record of the keys it set, to name the source in errors.
#[derive(Debug, Clone)]
struct Origins(Vec<(String, String)>);

impl Origins {
    fn of(&self, key: &str) -> String {
        self.0
            .iter()
            .rev()
            .find(|(path, _)| {
                path == key
                    || key.starts_with(&format!("{path}."))
                    || path.starts_with(&format!("{key}."))
            })
            .map(|(_, origin)| origin.clone())
            .unwrap_or_else(|| "the built-in defaults".to_string())
    }
}

/// Resolves the configuration. When the resulting `work_dir` holds a saved
/// config, it is resumed: the saved config is the base (over the defaults,
/// for keys newer than the run), and changes to
/// [`FROZEN_KEYS`] (other than those in `allow_changes`) are refused.
pub fn resolve(sources: &Sources, allow_changes: &[&str]) -> Result<Resolved, ConfigError> {
    let defaults: Value = serde_yaml_ng::from_str(DEFAULT_YAML).expect("default.yaml parses");
    let file = match &sources.file {
        Some(path) => {
            let mut value = read_yaml_file(path)?;
            anchor_paths(&mut value, path.parent().unwrap_or(Path::new("")));
            Some((path.clone(), value))
        }
        None => None,
    };
    let (tree, origins) = layer(defaults, file.as_ref(), sources)?;

    let work_dir = match tree::get_path(&tree, "work_dir") {
        Some(Value::String(s)) if !s.is_empty() => Some(PathBuf::from(s)),
        _ => None,
    };
    if let Some(dir) = work_dir.filter(|d| crate::store::WorkDir::has_saved_config(d)) {
        let saved_tree = saved_tree(&dir)?;
        let saved = build(saved_tree.clone(), &Origins(vec![]))?;
        let (tree, origins) = layer(saved_tree, file.as_ref(), sources)?;
        let mut resolved = build(tree, &origins)?;
        check_resume(&saved, &resolved, allow_changes, &dir)?;
        resolved.config.work_dir = Some(dir);
        resolved.resumed = true;
        return Ok(resolved);
    }

    let mut resolved = build(tree, &origins)?;
    if resolved.config.work_dir.is_none() {
        resolved.config.work_dir = Some(crate::store::WorkDir::default_path());
    }
    Ok(resolved)
}

/// The saved config of a work dir as a tree: keys added to rsr after the
/// run was created take their defaults; every key the run saved keeps its
/// saved value.
fn saved_tree(dir: &Path) -> Result<Value, ConfigError> {
    let mut tree: Value = serde_yaml_ng::from_str(DEFAULT_YAML).expect("default.yaml parses");
    tree::merge(
        &mut tree,
        read_yaml_file(&dir.join(crate::store::CONFIG_FILE))?,
    );
    Ok(tree)
}

/// The config a work dir was created with (`WORK_DIR/config.yaml`), or
/// `None` when it has none (a work dir prepared by an older rsr, or not a
/// work dir).
pub fn saved(dir: &Path) -> Result<Option<Config>, ConfigError> {
    if !crate::store::WorkDir::has_saved_config(dir) {
        return Ok(None);
    }
    Ok(Some(build(saved_tree(dir)?, &Origins(vec![]))?.config))
}

/// The servers `sampler.endpoints_file` lists: one base URL per line,
/// blank lines and `#` comments skipped. An error names the file and the
/// line of a URL that is not one, or says that it lists none.
pub fn read_endpoints_file(path: &Path) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("sampler.endpoints_file {}: {e}", path.display()))?;
    let mut urls = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let url = line.split('#').next().unwrap_or("").trim();
        if url.is_empty() {
            continue;
        }
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(format!(
                "sampler.endpoints_file {} line {}: `{url}` is not a base URL (http://host:port/v1)",
                path.display(),
                i + 1
            ));
        }
        if !urls.iter().any(|u| u == url) {
            urls.push(url.to_string());
        }
    }
    if urls.is_empty() {
        return Err(format!(
            "sampler.endpoints_file {} lists no server: write one base URL per line (http://host:port/v1)",
            path.display()
        ));
    }
    Ok(urls)
}

/// Makes the relative paths a config file names relative to the file's
/// directory, so a config works from any current directory. Paths on the
/// command line and in the environment stay relative to the current
/// directory, and so does `work_dir` (output goes where the command runs).
/// Names that are not paths are left alone: a shipped transform (`gsm8k`),
/// a built-in formatter (`sft`), a program looked up on PATH
/// (`llama-server`), and a `model_path` that is not a file or directory
/// beside the config (a Hugging Face model id such as `Qwen/Qwen3-8B`).
fn anchor_paths(file: &mut Value, dir: &Path) {
    if dir.as_os_str().is_empty() {
        return;
    }
    let anchor = |v: &mut Value, when: &dyn Fn(&str) -> bool| {
        if let Value::String(s) = v
            && s != tree::REQUIRED
            && Path::new(s.as_str()).is_relative()
            && when(s)
        {
            *s = dir.join(s.as_str()).display().to_string();
        }
    };
    let always = |_: &str| true;
    let looks_like_path = |s: &str| s.contains('/') || s.ends_with(".sql");
    let beside = |s: &str| dir.join(s).exists();
    for (key, when) in [
        ("data.input_path", &always as &dyn Fn(&str) -> bool),
        ("data.preprocess.transform", &looks_like_path),
        ("sampler.replay_path", &always),
        ("sampler.endpoints_file", &always),
        ("sampler.server_bin", &looks_like_path),
        ("sampler.model_path", &beside),
        ("judge.server_bin", &looks_like_path),
        ("judge.model_path", &beside),
        ("verifier.options.template", &beside),
    ] {
        if let Some(v) = tree::get_path_mut(file, key) {
            anchor(v, when);
        }
    }
    if let Some(Value::Sequence(items)) = tree::get_path_mut(file, "data.decontaminate.benchmarks")
    {
        for item in items {
            if let Value::Mapping(_) = item {
                if let Some(v) = tree::get_path_mut(item, "path") {
                    anchor(v, &always);
                }
            } else {
                anchor(item, &always);
            }
        }
    }
    if let Some(Value::Sequence(items)) = tree::get_path_mut(file, "formatter") {
        for item in items {
            if let Some(v) = tree::get_path_mut(item, "type") {
                anchor(v, &|s: &str| s.ends_with(".sql"));
            }
        }
    }
}

fn read_yaml_file(path: &Path) -> Result<Value, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
        path: path.to_path_buf(),
        error,
    })?;
    let value: Value = serde_yaml_ng::from_str(&text).map_err(|e| ConfigError::Parse {
        origin: path.display().to_string(),
        message: e.to_string(),
    })?;
    match value {
        Value::Mapping(_) => Ok(value),
        Value::Null => Ok(Value::Mapping(Default::default())),
        other => Err(ConfigError::Parse {
            origin: path.display().to_string(),
            message: format!(
                "expected a mapping of config keys at the top level, found {}",
                tree::describe(&other)
            ),
        }),
    }
}

/// Applies file, environment and overrides on top of `base`.
fn layer(
    mut base: Value,
    file: Option<&(PathBuf, Value)>,
    sources: &Sources,
) -> Result<(Value, Origins), ConfigError> {
    let mut origins = Vec::new();
    if let Some((path, value)) = file {
        for key in tree::key_paths(value) {
            origins.push((key, path.display().to_string()));
        }
        tree::merge(&mut base, value.clone());
    }
    let mut env: Vec<_> = sources
        .env
        .iter()
        .filter_map(|(name, value)| tree::env_key(name).map(|key| (name, key, value)))
        .collect();
    env.sort();
    for (name, key, value) in env {
        let origin = format!("environment variable {name}");
        tree::set_path(&mut base, &key, tree::parse_scalar(value)).map_err(|message| {
            ConfigError::Override {
                origin: origin.clone(),
                message,
            }
        })?;
        origins.push((key, origin));
    }
    for arg in &sources.overrides {
        let Some((key, value)) = arg.split_once('=') else {
            return Err(ConfigError::Override {
                origin: format!("argument `{arg}`"),
                message: "expected key.path=value".into(),
            });
        };
        let key = key.trim();
        // Values are left out of messages: they may be secrets.
        let origin = format!("argument `{key}=…`");
        tree::set_path(&mut base, key, tree::parse_scalar(value)).map_err(|message| {
            ConfigError::Override {
                origin: origin.clone(),
                message,
            }
        })?;
        origins.push((key.to_string(), origin));
    }
    Ok((base, Origins(origins)))
}

/// Turns a merged tree into a validated typed config.
fn build(mut tree: Value, origins: &Origins) -> Result<Resolved, ConfigError> {
    reject_secrets(&tree, origins)?;
    let missing = tree::take_required(&mut tree);
    // Every unknown key is reported at once: each is taken out of the tree
    // and the rest deserialized again.
    let mut unknown: Vec<ConfigError> = Vec::new();
    let config: Config = loop {
        let error = match serde_path_to_error::deserialize(tree.clone()) {
            Ok(config) if unknown.is_empty() => break config,
            Ok(_) => None,
            Err(e) => {
                let path = dotted(&e.path().to_string());
                Some(type_error(&path, &e.inner().to_string(), origins))
            }
        };
        match error {
            Some(ConfigError::UnknownKey { key, origin, hint }) if unknown.len() < 20 => {
                let (parent, leaf) = key.rsplit_once('.').unwrap_or(("", &key));
                let parent = if parent.is_empty() {
                    Some(&mut tree)
                } else {
                    tree::get_path_mut(&mut tree, parent)
                };
                let removed = parent
                    .and_then(|p| p.as_mapping_mut())
                    .and_then(|m| m.remove(leaf));
                unknown.push(ConfigError::UnknownKey { key, origin, hint });
                if removed.is_none() {
                    break Err(unknown_error(unknown))?;
                }
            }
            // Unknown keys come first: a wrong value may be a typo's doing.
            _ if !unknown.is_empty() => break Err(unknown_error(unknown))?,
            Some(other) => break Err(other)?,
            None => unreachable!("a config that deserializes with no unknown key breaks first"),
        }
    };
    validate(&config, origins)?;
    Ok(Resolved {
        config,
        missing,
        resumed: false,
        origins: origins.clone(),
    })
}

fn reject_secrets(tree: &Value, origins: &Origins) -> Result<(), ConfigError> {
    for key in tree::key_paths(tree) {
        let leaf = key.rsplit('.').next().unwrap_or(&key).to_lowercase();
        let secret = leaf == "api_key"
            || leaf == "password"
            || leaf == "token"
            || (leaf.ends_with("_api_key") || leaf.ends_with("secret"));
        if secret {
            return Err(ConfigError::Secret {
                origin: origins.of(&key),
                key,
            });
        }
    }
    Ok(())
}

/// One unknown key's error, or all of them.
fn unknown_error(mut unknown: Vec<ConfigError>) -> ConfigError {
    if unknown.len() == 1 {
        unknown.remove(0)
    } else {
        ConfigError::UnknownKeys(unknown)
    }
}

/// `formatter[0].type` (serde's path notation) as `formatter.0.type`.
fn dotted(path: &str) -> String {
    path.replace('[', ".").replace(']', "")
}

/// Maps a serde error at `path` to an unknown-key or invalid-value error.
fn type_error(path: &str, message: &str, origins: &Origins) -> ConfigError {
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let unknown = rest.split('`').next().unwrap_or_default();
        let expected: Vec<&str> = rest.split('`').skip(2).step_by(2).collect();
        let parent = path
            .strip_suffix(unknown)
            .unwrap_or(path)
            .trim_end_matches('.')
            .trim_end_matches('?')
            .trim_end_matches('.');
        let key = if parent.is_empty() {
            unknown.to_string()
        } else {
            format!("{parent}.{unknown}")
        };
        return ConfigError::UnknownKey {
            origin: origins.of(&key),
            hint: suggest(unknown, parent, &expected),
            key,
        };
    }
    let key = if path.is_empty() || path == "." {
        "(top level)".to_string()
    } else {
        path.to_string()
    };
    ConfigError::Invalid {
        origin: origins.of(&key),
        key,
        message: plain_types(message),
    }
}

/// serde's Rust type names in a message as a user would say them.
fn plain_types(message: &str) -> String {
    [
        ("a nonzero usize", "a whole number of at least 1"),
        ("a nonzero u32", "a whole number of at least 1"),
        ("a nonzero u64", "a whole number of at least 1"),
        ("usize", "a whole number"),
        ("u32", "a whole number"),
        ("u64", "a whole number"),
        ("f64", "a number"),
        ("a boolean", "true or false"),
    ]
    .iter()
    .fold(message.to_string(), |m, (from, to)| m.replace(from, to))
}

/// "did you mean" for an unknown key: a close sibling, or the same name in
/// another section, or the list of valid keys.
fn suggest(unknown: &str, parent: &str, expected: &[&str]) -> String {
    let prefix = |k: &str| {
        if parent.is_empty() {
            k.to_string()
        } else {
            format!("{parent}.{k}")
        }
    };
    let best = expected
        .iter()
        .map(|k| (tree::edit_distance(unknown, k), *k))
        .min();
    if let Some((d, k)) = best
        && d <= (unknown.len() / 3).max(2)
    {
        return format!("; did you mean `{}`?", prefix(k));
    }
    let defaults: Value = serde_yaml_ng::from_str(DEFAULT_YAML).expect("default.yaml parses");
    if let Some(elsewhere) = tree::key_paths(&defaults)
        .into_iter()
        .find(|p| p.rsplit('.').next() == Some(unknown))
    {
        return format!("; did you mean `{elsewhere}`?");
    }
    if expected.is_empty() {
        String::new()
    } else {
        let list: Vec<String> = expected.iter().map(|k| prefix(k)).collect();
        format!("; valid keys here: {}", list.join(", "))
    }
}

/// Shape and range checks of the sections `config` owns; the first error
/// names its key and where it was set.
fn validate(c: &Config, origins: &Origins) -> Result<(), ConfigError> {
    let invalid = |key: &str, message: String| ConfigError::Invalid {
        key: key.to_string(),
        origin: origins.of(key),
        message,
    };
    validate_shapes(c, &invalid)?;
    validate_server("sampler", &c.sampler, &invalid)?;
    validate_server("judge", &c.judge.as_sampler(), &invalid)?;
    if c.judge.kind == SamplerType::Replay {
        return Err(invalid(
            "judge.type",
            "replay is not a judge: use openai, vllm, sglang or llama-cpp".into(),
        ));
    }
    validate_spending(c, &invalid)?;
    validate_rates(c, &invalid)?;
    if let Some(label) = &c.verifier.label
        && !crate::store::rollout::is_valid_label(label)
    {
        return Err(invalid(
            "verifier.label",
            format!("`{label}` must be a directory name of letters, digits, `.`, `_` or `-`"),
        ));
    }
    Ok(())
}

/// A step no larger than a prompt's rollouts; a reasoning mode the export
/// format keeps.
fn validate_shapes(
    c: &Config,
    invalid: &dyn Fn(&str, String) -> ConfigError,
) -> Result<(), ConfigError> {
    if c.sampling.step_size > c.sampling.max_rollouts {
        return Err(invalid(
            "sampling.step_size",
            format!(
                "{} is larger than sampling.max_rollouts ({}): a step would request more rollouts than a prompt may keep",
                c.sampling.step_size, c.sampling.max_rollouts
            ),
        ));
    }
    if c.export.reasoning == ReasoningMode::Field
        && matches!(
            c.export.format,
            ExportFormat::Sharegpt | ExportFormat::Alpaca
        )
    {
        return Err(invalid(
            "export.reasoning",
            "field is lost in sharegpt and alpaca exports: LLaMA-Factory ignores a \
             reasoning_content key (and a reasoning template then trains an empty think block); \
             use think_tags, or drop"
                .into(),
        ));
    }
    Ok(())
}

/// Prices and the cost cap: non-negative, and a cap only with prices.
fn validate_spending(
    c: &Config,
    invalid: &dyn Fn(&str, String) -> ConfigError,
) -> Result<(), ConfigError> {
    for (key, price) in [
        ("pricing.input", c.pricing.input),
        ("pricing.output", c.pricing.output),
        ("pricing.judge_input", c.pricing.judge_input),
        ("pricing.judge_output", c.pricing.judge_output),
        ("budget.max_cost", c.budget.max_cost),
    ] {
        if let Some(p) = price
            && !(p.is_finite() && p >= 0.0)
        {
            return Err(invalid(key, format!("{p} must be 0 or more")));
        }
    }
    let sampling_prices = c.pricing.input.is_some() && c.pricing.output.is_some();
    let judge_prices = c.pricing.judge_input.is_some() && c.pricing.judge_output.is_some();
    if c.budget.max_cost.is_some() && !sampling_prices && !judge_prices {
        return Err(invalid(
            "budget.max_cost",
            "a cost cap needs prices: set pricing.input and pricing.output (USD per million tokens), \
             and pricing.judge_input and pricing.judge_output for judging"
                .into(),
        ));
    }
    Ok(())
}

/// The guards' and the breaker's rates, and the flush interval.
fn validate_rates(
    c: &Config,
    invalid: &dyn Fn(&str, String) -> ConfigError,
) -> Result<(), ConfigError> {
    if !(0.0..=1.0).contains(&c.sampling.max_truncation_rate) {
        return Err(invalid(
            "sampling.max_truncation_rate",
            format!("{} is outside 0..=1", c.sampling.max_truncation_rate),
        ));
    }
    if !(0.0..=1.0).contains(&c.sampling.max_identical_rate) {
        return Err(invalid(
            "sampling.max_identical_rate",
            format!("{} is outside 0..=1", c.sampling.max_identical_rate),
        ));
    }
    if !(0.0..=1.0).contains(&c.sampling.max_no_answer_rate) {
        return Err(invalid(
            "sampling.max_no_answer_rate",
            format!("{} is outside 0..=1", c.sampling.max_no_answer_rate),
        ));
    }
    if !(0.0..1.0).contains(&c.sampling.max_failure_rate) {
        return Err(invalid(
            "sampling.max_failure_rate",
            format!(
                "{} is outside 0..1 (the run stops when more than this share of the last sampling.failure_window requests failed)",
                c.sampling.max_failure_rate
            ),
        ));
    }
    if !(c.sampling.flush_seconds.is_finite() && c.sampling.flush_seconds > 0.0) {
        return Err(invalid(
            "sampling.flush_seconds",
            format!(
                "{} must be a positive number of seconds",
                c.sampling.flush_seconds
            ),
        ));
    }
    Ok(())
}

/// The checks shared by `sampler` and `judge` (`section`): one server
/// configuration, validated alike.
fn validate_server(
    section: &str,
    s: &SamplerConfig,
    invalid: &dyn Fn(&str, String) -> ConfigError,
) -> Result<(), ConfigError> {
    if !(0.0..=2.0).contains(&s.temperature) {
        return Err(invalid(
            &format!("{section}.temperature"),
            format!("{} is outside 0..=2", s.temperature),
        ));
    }
    if !(s.top_p > 0.0 && s.top_p <= 1.0) {
        return Err(invalid(
            &format!("{section}.top_p"),
            format!("{} is outside (0, 1]", s.top_p),
        ));
    }
    if !(s.timeout.is_finite() && s.timeout > 0.0) {
        return Err(invalid(
            &format!("{section}.timeout"),
            format!("{} must be a positive number of seconds", s.timeout),
        ));
    }
    if s.endpoints_file.is_some() && s.kind == SamplerType::Replay {
        return Err(invalid(
            &format!("{section}.endpoints_file"),
            "type replay reads saved responses, it sends no request: unset endpoints_file".into(),
        ));
    }
    if let Some(base_url) = &s.base_url
        && base_url.urls().is_empty()
    {
        return Err(invalid(
            &format!("{section}.base_url"),
            "the list is empty: give at least one URL".into(),
        ));
    }
    for url in s.base_url.iter().flat_map(|b| b.urls()) {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(invalid(
                &format!("{section}.base_url"),
                format!("`{url}` must start with http:// or https://"),
            ));
        }
    }
    if !(s.retry_delay.is_finite() && s.retry_delay >= 0.0) {
        return Err(invalid(
            &format!("{section}.retry_delay"),
            format!("{} must be a number of seconds, 0 or more", s.retry_delay),
        ));
    }
    if !(s.startup_timeout.is_finite() && s.startup_timeout > 0.0) {
        return Err(invalid(
            &format!("{section}.startup_timeout"),
            format!("{} must be a positive number of seconds", s.startup_timeout),
        ));
    }
    if let Some(launch) = &s.launch
        && launch.split_whitespace().next().is_none()
    {
        return Err(invalid(
            &format!("{section}.launch"),
            "the command is empty".into(),
        ));
    }
    for (key, value) in [("max_rpm", s.max_rpm), ("max_tpm", s.max_tpm)] {
        if let Some(v) = value
            && !(v.is_finite() && v > 0.0)
        {
            return Err(invalid(
                &format!("{section}.{key}"),
                format!("{v} must be a positive number per minute (null: no limit)"),
            ));
        }
    }
    Ok(())
}

fn check_resume(
    saved: &Resolved,
    new: &Resolved,
    allow_changes: &[&str],
    work_dir: &Path,
) -> Result<(), ConfigError> {
    let saved_tree = serde_yaml_ng::to_value(&saved.config).expect("config serializes");
    let new_tree = serde_yaml_ng::to_value(&new.config).expect("config serializes");
    // Before the first rollout, only the prepared input binds the run.
    let sampled = crate::store::WorkDir::has_sampled(work_dir);
    for key in FROZEN_KEYS {
        if allow_changes.iter().any(|a| key.starts_with(a)) {
            continue;
        }
        if !sampled && !key.starts_with("data.") && *key != "shard" {
            continue;
        }
        let before = tree::get_path(&saved_tree, key);
        let after = tree::get_path(&new_tree, key);
        if before == after {
            continue;
        }
        // Name the exact leaves that differ; a key left at `???` when the
        // run started may be set now.
        let mut leaves: Vec<String> = tree::key_paths(&new_tree)
            .into_iter()
            .chain(tree::key_paths(&saved_tree))
            .filter(|p| p == key || p.starts_with(&format!("{key}.")))
            .filter(|p| {
                !matches!(tree::get_path(&new_tree, p), Some(Value::Mapping(_)))
                    && !matches!(tree::get_path(&saved_tree, p), Some(Value::Mapping(_)))
            })
            .filter(|p| tree::get_path(&saved_tree, p) != tree::get_path(&new_tree, p))
            .collect();
        if leaves.is_empty() {
            leaves.push(key.to_string());
        }
        let Some(leaf) = leaves.into_iter().find(|l| !saved.missing.contains(l)) else {
            continue;
        };
        let show = |v: Option<&Value>| match v {
            Some(v) => format!(
                "`{}`",
                serde_yaml_ng::to_string(v).unwrap_or_default().trim()
            ),
            None => "(unset)".to_string(),
        };
        return Err(ConfigError::ResumeConflict {
            saved: show(tree::get_path(&saved_tree, &leaf)),
            given: show(tree::get_path(&new_tree, &leaf)),
            key: leaf,
            work_dir: work_dir.to_path_buf(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
