//! The rollout and score tables: their schemas (the on-disk contract) and
//! where their files live.
//!
//! Rollouts are append-only: `rollout/shard_NNNN/part-NNNNNN.parquet`, one
//! row per response (truncated and failed ones included). Scores computed
//! after the fact live in `scores/<label>/shard_NNNN.parquet`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// Schema of rollout part files. Columns:
///
/// - `id` (utf8): the prompt's id in `inputs`.
/// - `rollout_idx` (u32): 0-based index of the response for its prompt.
/// - `step` (u32): the sampling step that produced it.
/// - `response` (utf8, nullable): final content as returned (null on error).
/// - `reasoning` (utf8, nullable): `reasoning_content` / thinking text when the
///   server returned it separately.
/// - `finish_reason` (utf8, nullable): `stop`, `length`, …
/// - `truncated` (bool): `finish_reason == "length"` or unclosed thinking.
/// - `error` (utf8, nullable): why the request failed after its retries.
/// - `prompt_tokens`, `completion_tokens` (u32, nullable): usage per response.
/// - `latency_ms` (u64, nullable): request latency.
/// - `model` (utf8), `endpoint` (utf8): who answered.
/// - `created_at` (timestamp ms, UTC): when the response arrived.
/// - `score` (f64, nullable), `pred` (utf8, nullable): the inline verdict.
pub fn rollout_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("rollout_idx", DataType::UInt32, false),
        Field::new("step", DataType::UInt32, false),
        Field::new("response", DataType::Utf8, true),
        Field::new("reasoning", DataType::Utf8, true),
        Field::new("finish_reason", DataType::Utf8, true),
        Field::new("truncated", DataType::Boolean, false),
        Field::new("error", DataType::Utf8, true),
        Field::new("prompt_tokens", DataType::UInt32, true),
        Field::new("completion_tokens", DataType::UInt32, true),
        Field::new("latency_ms", DataType::UInt64, true),
        Field::new("model", DataType::Utf8, false),
        Field::new("endpoint", DataType::Utf8, false),
        Field::new(
            "created_at",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            false,
        ),
        Field::new("score", DataType::Float64, true),
        Field::new("pred", DataType::Utf8, true),
        // [`response_hash`] of the thinking and response, null without a
        // response: duplicates are found without reading the text. Part
        // files written before it lack the column.
        Field::new("response_hash", DataType::UInt64, true),
    ]))
}

/// Schema of `scores/<label>/shard_NNNN.parquet`: `id`, `rollout_idx`,
/// `score` (null where the response was null), `pred`, and `verifier`
/// (the label).
pub fn score_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("rollout_idx", DataType::UInt32, false),
        Field::new("score", DataType::Float64, true),
        Field::new("pred", DataType::Utf8, true),
        Field::new("verifier", DataType::Utf8, false),
    ]))
}

/// [`score_schema`] followed by the `extra` columns of a verifier that
/// keeps more (a judge's answers, a majority label).
pub fn score_schema_with(extra: impl IntoIterator<Item = Field>) -> SchemaRef {
    let mut fields: Vec<Field> = score_schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields.extend(extra);
    Arc::new(Schema::new(fields))
}

/// `rollout/`.
pub fn rollout_dir(root: &Path) -> PathBuf {
    root.join("rollout")
}

/// `rollout/shard_NNNN/part-NNNNNN.parquet`.
pub fn rollout_part_path(root: &Path, shard: u32, part: u32) -> PathBuf {
    rollout_shard_dir(root, shard).join(format!("part-{part:06}.parquet"))
}

/// `rollout/shard_NNNN/`.
pub fn rollout_shard_dir(root: &Path, shard: u32) -> PathBuf {
    rollout_dir(root).join(format!("shard_{shard:04}"))
}

/// The committed part files of a shard, in part order.
pub fn shard_parts(root: &Path, shard: u32) -> std::io::Result<Vec<PathBuf>> {
    let dir = rollout_shard_dir(root, shard);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut parts = Vec::new();
    for entry in entries {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with("part-") && name.ends_with(".parquet") {
            parts.push(path);
        }
    }
    parts.sort();
    Ok(parts)
}

/// The number of a part file (`part-000012.parquet` → 12).
pub fn part_number(path: &Path) -> Option<u32> {
    path.file_name()?
        .to_str()?
        .strip_prefix("part-")?
        .strip_suffix(".parquet")?
        .parse()
        .ok()
}

/// `scores/`.
pub fn scores_dir(root: &Path) -> PathBuf {
    root.join("scores")
}

/// `scores/<label>/verifier.json`: the verifier (`type` and `options`) that
/// wrote a label's verdicts.
pub fn scores_verifier_path(root: &Path, label: &str) -> PathBuf {
    scores_dir(root).join(label).join("verifier.json")
}

/// The score from which `label`'s verdicts pass, as its `verifier.json`
/// records it ([`PASS_SCORE`] when it records none, and for the inline
/// verdicts): 0.5 for P(yes) from a judge's logprobs, 0 for rewards.
pub fn pass_score(root: &Path, label: Option<&str>) -> f64 {
    score_meaning(root, label).pass
}

/// What a label's scores mean: the one meaning of "pass" and "fail" that
/// the summary, the views, the formatters and early stop share.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreMeaning {
    /// A valid rollout passes at a score of at least this.
    pub pass: f64,
    /// A valid rollout fails at a score of at most this.
    pub fail: f64,
    /// The highest score the label can give (`None`: unbounded, rewards).
    pub max: Option<f64>,
}

impl ScoreMeaning {
    /// Verdicts of 1 (pass) or 0 (fail): rule verifiers, yes/no judges.
    pub const BINARY: Self = Self {
        pass: PASS_SCORE,
        fail: 0.0,
        max: Some(1.0),
    };

    /// Scores that pass from `pass` and fail below it, at most `max`.
    pub fn split_at(pass: f64, max: Option<f64>) -> Self {
        Self {
            pass,
            fail: pass.next_down(),
            max,
        }
    }

    /// Adds `pass_score`, `fail_score` and `max_score` to a
    /// `verifier.json` record.
    pub fn record(&self, record: &mut serde_json::Value) {
        record["pass_score"] = self.pass.into();
        record["fail_score"] = self.fail.into();
        record["max_score"] = self.max.into();
    }

    /// Reads a `verifier.json` record; records written before `fail_score`
    /// and `max_score` fail below the pass score (at 0 for binary ones).
    fn from_record(v: &serde_json::Value) -> Self {
        let Some(pass) = v.get("pass_score").and_then(|p| p.as_f64()) else {
            return Self::BINARY;
        };
        if pass == PASS_SCORE && v.get("fail_score").is_none() {
            return Self::BINARY;
        }
        Self {
            pass,
            fail: v
                .get("fail_score")
                .and_then(|f| f.as_f64())
                .unwrap_or(pass.next_down()),
            max: v.get("max_score").and_then(|m| m.as_f64()),
        }
    }
}

/// The [`ScoreMeaning`] of `label` as its `verifier.json` records it
/// ([`ScoreMeaning::BINARY`] for the inline verdicts and labels that
/// record none).
pub fn score_meaning(root: &Path, label: Option<&str>) -> ScoreMeaning {
    label
        .and_then(|l| std::fs::read_to_string(scores_verifier_path(root, l)).ok())
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .map_or(ScoreMeaning::BINARY, |v| ScoreMeaning::from_record(&v))
}

/// The labels of `scores/` that hold verdicts, sorted.
pub fn score_labels(root: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(scores_dir(root))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().is_dir() && has_parquet(&e.path()))
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|l| is_valid_label(l))
        .collect();
    out.sort();
    out
}

/// Writes `scores/<label>/verifier.json`: the verifier that wrote the
/// label's verdicts, its options and its pass score.
pub fn write_scores_record(
    root: &Path,
    label: &str,
    record: &serde_json::Value,
) -> Result<(), super::StoreError> {
    let path = scores_verifier_path(root, label);
    super::write_atomic(&path, format!("{record:#}\n").as_bytes())
        .map_err(|source| super::StoreError::Io { path, source })
}

/// What the judge requests made for `label` cost, as its `verifier.json`
/// records it: tokens over every run that wrote it, and the judge's prices
/// when they were given.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct JudgeSpend {
    /// Prompt tokens of the requests sent for this label.
    pub prompt_tokens: u64,
    /// Their completion tokens.
    pub completion_tokens: u64,
    /// `pricing.judge_input` and `judge_output` as given (USD per million).
    pub prices: Option<(f64, f64)>,
}

impl JudgeSpend {
    /// The cost at `prices` (the recorded ones when `None`).
    pub fn cost(&self, prices: Option<(f64, f64)>) -> Option<f64> {
        let (i, o) = prices.or(self.prices)?;
        Some((self.prompt_tokens as f64 * i + self.completion_tokens as f64 * o) / 1e6)
    }
}

/// The [`JudgeSpend`] of `label`, when a judge wrote it.
pub fn judge_spend(root: &Path, label: &str) -> Option<JudgeSpend> {
    let text = std::fs::read_to_string(scores_verifier_path(root, label)).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    let tokens = v.get("judge_tokens")?;
    let n = |k: &str| tokens.get(k).and_then(|t| t.as_u64()).unwrap_or(0);
    let price = |k: &str| v.get("pricing")?.get(k)?.as_f64();
    Some(JudgeSpend {
        prompt_tokens: n("prompt"),
        completion_tokens: n("completion"),
        prices: price("judge_input").zip(price("judge_output")),
    })
}

/// The `type` of the verifier that wrote `label`'s verdicts, when recorded.
pub fn scores_verifier(root: &Path, label: &str) -> Option<String> {
    let text = std::fs::read_to_string(scores_verifier_path(root, label)).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v.get("type")?.as_str().map(str::to_string)
}

/// What makes a saved rollout valid: a response, no error, and — unless the
/// run keeps them (`sampler.drop_truncated: false`) — not truncated. The
/// sampler (when a prompt has enough rollouts), the `results` view and so
/// the formatters and statistics all use this one definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Validity {
    /// Truncated responses are invalid (`sampler.drop_truncated`).
    pub drop_truncated: bool,
}

impl Default for Validity {
    fn default() -> Self {
        Self {
            drop_truncated: true,
        }
    }
}

impl Validity {
    /// Whether a rollout with these properties is valid.
    pub fn is_valid(&self, has_response: bool, error: bool, truncated: bool) -> bool {
        has_response && !error && !(truncated && self.drop_truncated)
    }

    /// The same rule as a SQL predicate over the rollout columns of `alias`.
    pub fn sql(&self, alias: &str) -> String {
        self.sql_over(alias, "response")
    }

    /// [`Validity::sql`] telling a response by a column that is null
    /// exactly when the response is (`response_hash` reads no text).
    pub fn sql_over(&self, alias: &str, response: &str) -> String {
        let base = format!("{alias}.error IS NULL AND {alias}.{response} IS NOT NULL");
        if self.drop_truncated {
            format!("({base} AND NOT {alias}.truncated)")
        } else {
            format!("({base})")
        }
    }
}

/// A 64-bit hash (FNV-1a) of `text` with case and runs of whitespace
/// folded: two responses with the same hash count as the same response
/// (the sampling guard, the report's identical-responses figure, and
/// `fold_hash()` in SQL).
pub fn fold_hash(text: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |b: u8| {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    };
    if text.is_ascii() {
        // The common case, byte by byte: the same hash as the path below.
        let mut in_word = false;
        for &b in text.as_bytes() {
            if b.is_ascii_whitespace() {
                if in_word {
                    eat(0);
                    in_word = false;
                }
            } else {
                eat(b.to_ascii_lowercase());
                in_word = true;
            }
        }
        if in_word {
            eat(0);
        }
        return h;
    }
    for word in text.split_whitespace() {
        for c in word.chars().flat_map(char::to_lowercase) {
            let mut buf = [0u8; 4];
            c.encode_utf8(&mut buf).bytes().for_each(&mut eat);
        }
        eat(0);
    }
    h
}

/// The hash two responses are the same by (the sampling guard and the
/// report's identical-responses figure): [`fold_hash`] of the reasoning the
/// server split out, if any, and the response. Responses that reach the
/// same final answer by different reasoning are different samples. In SQL:
/// `fold_hash(concat(coalesce(reasoning, ''), ' ', response))`.
pub fn response_hash(response: &str, reasoning: Option<&str>) -> u64 {
    match reasoning.filter(|r| !r.is_empty()) {
        Some(r) => fold_hash(&format!("{r} {response}")),
        None => fold_hash(response),
    }
}

/// The name of the stored [`response_hash`] column of rollout part files.
pub const RESPONSE_HASH: &str = "response_hash";

/// The SQL expression of [`response_hash`] over the columns of `alias`.
pub fn response_hash_sql(alias: &str) -> String {
    format!("fold_hash(concat(coalesce({alias}.reasoning, ''), ' ', {alias}.response))")
}

/// A valid rollout passes when its score is at least this.
pub const PASS_SCORE: f64 = 1.0;

/// Whether `label` can name a `scores/<label>/` directory (and be quoted in
/// SQL): non-empty, letters, digits, `.`, `_`, `-`, not starting with `.`.
pub fn is_valid_label(label: &str) -> bool {
    !label.is_empty()
        && !label.starts_with('.')
        && label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

/// `scores/<label>/shard_NNNN.parquet`.
pub fn score_path(root: &Path, label: &str, shard: u32) -> PathBuf {
    scores_dir(root)
        .join(label)
        .join(format!("shard_{shard:04}.parquet"))
}

/// Whether `dir` (recursively) holds a Parquet file.
pub fn has_parquet(dir: &Path) -> bool {
    !super::parquet::files_below(dir).is_empty()
}

/// Bytes of the Parquet files below `dir` (0 when there is none).
pub fn parquet_bytes(dir: &Path) -> u64 {
    super::parquet::files_below(dir)
        .iter()
        .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
        .sum()
}

/// Whether every Parquet file below `dir` has the stored `response_hash`
/// (a work dir sampled by an older rsr has part files without it); a
/// footer read per file.
pub fn all_hashed(dir: &Path) -> bool {
    super::parquet::files_below(dir)
        .iter()
        .all(|p| super::parquet::schema_of(p).is_ok_and(|s| s.index_of(RESPONSE_HASH).is_ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fold_hash_ignores_case_and_spacing_only() {
        assert_eq!(
            fold_hash("The answer is 4."),
            fold_hash("the  answer\nis 4.")
        );
        assert_ne!(fold_hash("The answer is 4."), fold_hash("The answer is 5."));
        assert_ne!(fold_hash("ab c"), fold_hash("a bc"));
        // The ASCII fast path and the general one agree.
        assert_eq!(fold_hash(" Two  Words\t"), fold_hash("two words"));
        assert_eq!(fold_hash("é b"), fold_hash("É  B"));
        let mixed = "Ab cd é";
        let words: String = mixed
            .split_whitespace()
            .map(|w| w.to_lowercase())
            .collect::<Vec<_>>()
            .join(" ");
        assert_eq!(fold_hash(mixed), fold_hash(&words));
    }

    #[test]
    fn responses_differ_by_their_reasoning_too() {
        assert_eq!(
            response_hash("The answer is 4.", None),
            fold_hash("The answer is 4.")
        );
        assert_eq!(
            response_hash("The answer is 4.", Some("")),
            fold_hash("The answer is 4.")
        );
        assert_ne!(
            response_hash("The answer is 4.", Some("2+2 is 4")),
            response_hash("The answer is 4.", Some("two and two"))
        );
        // The SQL form: an empty reasoning adds only folded whitespace.
        assert_eq!(
            fold_hash(" The answer is 4."),
            fold_hash("The answer is 4.")
        );
        assert_eq!(
            response_hash("x", Some("r")),
            fold_hash(&format!("{} {}", "r", "x"))
        );
    }

    #[test]
    fn paths_follow_the_layout() {
        let root = Path::new("run");
        assert_eq!(
            rollout_part_path(root, 3, 12),
            Path::new("run/rollout/shard_0003/part-000012.parquet")
        );
        assert_eq!(part_number(&rollout_part_path(root, 3, 12)), Some(12));
        assert_eq!(part_number(Path::new("part-000001.parquet.tmp")), None);
        assert_eq!(
            score_path(root, "math-rlvr", 0),
            Path::new("run/scores/math-rlvr/shard_0000.parquet")
        );
    }

    #[test]
    fn labels() {
        assert!(is_valid_label("math-rlvr"));
        assert!(is_valid_label("v2.1_fixed"));
        for bad in ["", ".hidden", "a/b", "x'y", "a b"] {
            assert!(!is_valid_label(bad), "{bad}");
        }
    }

    #[test]
    fn parquet_files_are_found_below_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!has_parquet(dir.path()));
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(dir.path().join("a/b/x.parquet.tmp"), b"").unwrap();
        assert!(!has_parquet(dir.path()));
        std::fs::write(dir.path().join("a/b/x.parquet"), b"").unwrap();
        assert!(has_parquet(dir.path()));
    }
}
