//! `code-rlvr`: a response's program run against its prompt's tests in the
//! sandbox ([`crate::sandbox`]). This module owns the verifier's options
//! ([`CodeSpec`]), the verdict of one response ([`check`]: extract, run,
//! statuses, score), its record in the answer cache (`judge/`, where a run
//! is stored like a judge's answer, so that nothing is run twice), the
//! verdict stage of sampling ([`stage`]) and the scoring of a saved run
//! ([`rescore`]).

pub mod rescore;
pub mod stage;

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::sandbox::{Ended, Limits, Sandbox, SandboxError};
use crate::verifier::code::harness::{self, End, Status};
use crate::verifier::code::{Compare, Extracted, program, suite};
use crate::verifier::{VerifierError, read_options};

/// The verifier's name.
pub const NAME: &str = "code-rlvr";

/// Its line in `rsr verify --list`.
pub const DESCRIPTION: &str = "code: the last fenced Python block of the final part, run in a sandbox against the prompt's tests (APPS/TACO, open-r1, LiveCodeBench, MBPP, HumanEval shapes); score 1 when every test passes (partial: the share passed)";

/// `verifier.options` of `code-rlvr`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CodeSpec {
    /// The Python interpreter (a name on `PATH` or a path).
    pub python: String,
    /// Programs run at once; none: one per core.
    pub workers: Option<usize>,
    /// Score the share of tests passed instead of all-or-nothing.
    pub partial: bool,
    /// How standard output is compared.
    pub compare: Compare,
    /// Seconds of CPU (and twice that of wall time) per test.
    pub timeout: f64,
    /// Address space per program, MiB.
    pub memory_mb: u64,
}

impl Default for CodeSpec {
    fn default() -> Self {
        Self {
            python: "python3".into(),
            workers: None,
            partial: false,
            compare: Compare::Lines,
            timeout: 6.0,
            memory_mb: 1024,
        }
    }
}

impl CodeSpec {
    /// Reads `verifier.options`.
    pub fn from_options(options: &Map<String, Value>) -> Result<Self, VerifierError> {
        let spec: Self = read_options(NAME, options)?;
        let bad = |key: &str, message: &str| VerifierError::Option {
            verifier: NAME,
            key: key.into(),
            message: message.into(),
        };
        if !(spec.timeout.is_finite() && spec.timeout > 0.0 && spec.timeout <= 600.0) {
            return Err(bad("timeout", "seconds per test, above 0 and at most 600"));
        }
        if spec.memory_mb < 64 {
            return Err(bad("memory_mb", "at least 64 (Python itself needs some)"));
        }
        if spec.workers == Some(0) {
            return Err(bad("workers", "at least 1"));
        }
        Ok(spec)
    }

    /// Programs run at once.
    pub fn workers(&self) -> usize {
        self.workers.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        })
    }

    /// The limits of one run of `tests` driven tests (or one stdin test).
    fn limits(&self, tests: usize) -> Limits {
        let cpu = self.timeout * tests.max(1) as f64;
        Limits {
            cpu: Duration::from_secs_f64(cpu),
            wall: Duration::from_secs_f64(cpu * 2.0 + 2.0),
            memory: self.memory_mb << 20,
            ..Limits::default()
        }
    }

    /// The options that decide a verdict's statuses, in a cache key (the
    /// score's `partial` is read later from the statuses, not run again).
    fn key_part(&self) -> String {
        format!(
            "{NAME}/{:?}/{}/{}",
            self.compare, self.timeout, self.memory_mb
        )
    }
}

/// How a response's verdict was reached: the `outcome` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CodeOutcome {
    /// The program ran against every test.
    Tested,
    /// No fenced block in the final part (or no final part).
    NoCode,
    /// A block in another language than Python.
    OtherLanguage,
    /// The prompt's gold holds no tests rsr can read.
    NoTests,
    /// The sandbox failed (not the program): no score, run again next time.
    Failed,
}

impl CodeOutcome {
    /// The name stored in the `outcome` column.
    pub fn name(self) -> &'static str {
        match self {
            CodeOutcome::Tested => "tested",
            CodeOutcome::NoCode => "no_code",
            CodeOutcome::OtherLanguage => "other_language",
            CodeOutcome::NoTests => "no_tests",
            CodeOutcome::Failed => "failed",
        }
    }
}

/// One test's result, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestResult {
    /// `AC`, `WA`, `TLE`, `RE`, `MLE` or `OLE`.
    pub status: String,
    /// What explains it (a value returned, the end of stderr), bounded.
    pub detail: String,
}

/// What running a response's program gave: stored in the answer cache as
/// JSON, and read into the scores columns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CodeRun {
    /// How the verdict was reached.
    pub outcome: CodeOutcome,
    /// Every test's result, in the suite's order.
    pub tests: Vec<TestResult>,
    /// Why there are no tests (`no_tests`, `other_language`, `failed`).
    pub note: String,
}

impl CodeRun {
    fn settled(outcome: CodeOutcome, note: impl Into<String>) -> Self {
        Self {
            outcome,
            tests: Vec::new(),
            note: note.into(),
        }
    }

    /// Tests passed.
    pub fn passed(&self) -> usize {
        self.tests.iter().filter(|t| t.status == "AC").count()
    }

    /// The score: 1 when every test passed (with `partial`, the share
    /// passed); 0 without code; none when the tests or the sandbox failed.
    pub fn score(&self, partial: bool) -> Option<f64> {
        match self.outcome {
            CodeOutcome::Tested if self.tests.is_empty() => Some(0.0),
            CodeOutcome::Tested if partial => Some(self.passed() as f64 / self.tests.len() as f64),
            CodeOutcome::Tested => Some(f64::from(u8::from(self.passed() == self.tests.len()))),
            CodeOutcome::NoCode | CodeOutcome::OtherLanguage => Some(0.0),
            CodeOutcome::NoTests | CodeOutcome::Failed => None,
        }
    }

    /// The prediction shown beside the score: `3/5 passed (AC AC WA TLE AC)`.
    pub fn pred(&self) -> Option<String> {
        (self.outcome == CodeOutcome::Tested).then(|| {
            let statuses: Vec<&str> = self.tests.iter().map(|t| t.status.as_str()).collect();
            format!(
                "{}/{} passed ({})",
                self.passed(),
                self.tests.len(),
                statuses.join(" ")
            )
        })
    }
}

/// What to do with one response: settled without a run, or run under a
/// cache key.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// Known without running anything.
    Settled(CodeRun),
    /// Run `program` against the gold; cached under `key`.
    Run {
        /// The cache key (program, gold, options).
        key: String,
        /// The program.
        program: String,
    },
}

/// Plans one response against its prompt's gold.
pub fn plan(spec: &CodeSpec, response: Option<&str>, gold: Option<&str>) -> Plan {
    let program = match response.map(program) {
        None | Some(Extracted::NoCode) => {
            return Plan::Settled(CodeRun::settled(CodeOutcome::NoCode, ""));
        }
        Some(Extracted::Other(tag)) => {
            return Plan::Settled(CodeRun::settled(
                CodeOutcome::OtherLanguage,
                format!("a `{tag}` block: Python only"),
            ));
        }
        Some(Extracted::Python(p)) => p,
    };
    let Some(gold) = gold else {
        return Plan::Settled(CodeRun::settled(
            CodeOutcome::NoTests,
            "the prompt has no gold",
        ));
    };
    if let Err(why) = suite::parse(gold) {
        return Plan::Settled(CodeRun::settled(CodeOutcome::NoTests, why));
    }
    Plan::Run {
        key: crate::judge::key(&[&spec.key_part(), gold, &program]),
        program,
    }
}

/// Runs `program` against `gold`'s tests in `sandbox` as worker `slot`.
pub fn run(sandbox: &Sandbox, slot: u32, spec: &CodeSpec, program: &str, gold: &str) -> CodeRun {
    let suite = match suite::parse(gold) {
        Ok(s) => s,
        Err(why) => return CodeRun::settled(CodeOutcome::NoTests, why),
    };
    let nonce = format!("RSR-{:016x}", nonce());
    let mut results: Vec<Option<TestResult>> = vec![None; suite.tests.len()];
    for job in harness::jobs(program, &suite, &nonce, spec.timeout) {
        let limits = spec.limits(if job.expected.is_some() {
            1
        } else {
            job.tests.len()
        });
        let r = match sandbox.run(slot, &job.script, job.stdin.as_bytes(), &limits) {
            Ok(r) => r,
            Err(e) => return CodeRun::settled(CodeOutcome::Failed, e.to_string()),
        };
        let end = end_of(r.ended);
        let (out, err) = (
            String::from_utf8_lossy(&r.stdout),
            String::from_utf8_lossy(&r.stderr),
        );
        for (i, o) in harness::outcomes(&job, end, &out, &err, &nonce, spec.compare) {
            results[i] = Some(TestResult {
                status: o.status.name().to_string(),
                detail: o.detail,
            });
        }
    }
    CodeRun {
        outcome: CodeOutcome::Tested,
        tests: results
            .into_iter()
            .map(|r| {
                r.unwrap_or(TestResult {
                    status: Status::RuntimeError.name().into(),
                    detail: "no result".into(),
                })
            })
            .collect(),
        note: String::new(),
    }
}

/// A run's record in the answer cache: the verdict as JSON.
pub fn record(
    key: String,
    run: &CodeRun,
    took: Duration,
    python: &str,
) -> crate::store::judged::Record {
    crate::store::judged::Record {
        key,
        raw: serde_json::to_string(run).expect("a verdict serializes"),
        prompt_tokens: None,
        completion_tokens: None,
        latency_ms: took.as_millis() as u64,
        endpoint: "sandbox".into(),
        model: python.into(),
        created_at: chrono::Utc::now().timestamp(),
    }
}

/// A cached verdict read back (`None`: not a code verdict).
pub fn read(raw: &str) -> Option<CodeRun> {
    serde_json::from_str(raw).ok()
}

/// Opens the sandbox of `spec` (its scratch directories in the system's
/// temporary directory, never the work dir), checked by a probe program;
/// the error says what the machine lacks.
pub fn open_sandbox(spec: &CodeSpec) -> Result<Sandbox, SandboxError> {
    Sandbox::new(&spec.python, &std::env::temp_dir().join("rsr-sandbox"))
}

/// A random number for the driver's nonce (std's hasher keys are random).
fn nonce() -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(0u8)
}

/// How a sandboxed run ended, as the harness reads it: CPU limit, wall time
/// and SIGKILL are a timeout.
pub(crate) fn end_of(ended: Ended) -> End {
    match ended {
        Ended::Exited(c) => End::Exited(c),
        Ended::WallTime | Ended::Signaled(libc::SIGKILL | libc::SIGXCPU) => End::TimedOut,
        Ended::Output => End::TooMuchOutput,
        Ended::Signaled(_) => End::Crashed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_without_python_are_settled_without_a_run() {
        let spec = CodeSpec::default();
        let gold = r#"{"test_list": ["assert f() == 1"]}"#;
        let settled = |r: Option<&str>, g: Option<&str>| match plan(&spec, r, g) {
            Plan::Settled(run) => (run.outcome, run.score(false)),
            Plan::Run { .. } => panic!("ran"),
        };
        assert_eq!(
            settled(Some("No idea."), Some(gold)),
            (CodeOutcome::NoCode, Some(0.0))
        );
        assert_eq!(settled(None, Some(gold)), (CodeOutcome::NoCode, Some(0.0)));
        assert_eq!(
            settled(Some("```rust\nfn f() {}\n```"), Some(gold)),
            (CodeOutcome::OtherLanguage, Some(0.0))
        );
        assert_eq!(
            settled(Some("```python\ndef f(): return 1\n```"), Some("42")),
            (CodeOutcome::NoTests, None)
        );
        let Plan::Run { key, program } =
            plan(&spec, Some("```python\ndef f(): return 1\n```"), Some(gold))
        else {
            panic!("settled")
        };
        assert_eq!(program, "def f(): return 1\n");
        // The key follows the program, the gold and the options that decide
        // the statuses, not `partial`.
        let partial = CodeSpec {
            partial: true,
            ..CodeSpec::default()
        };
        assert!(
            matches!(plan(&partial, Some("```python\ndef f(): return 1\n```"), Some(gold)), Plan::Run { key: k, .. } if k == key)
        );
    }

    #[test]
    fn scores_are_all_or_the_share_passed() {
        let t = |s: &str| TestResult {
            status: s.into(),
            detail: String::new(),
        };
        let run = CodeRun {
            outcome: CodeOutcome::Tested,
            tests: vec![t("AC"), t("WA"), t("AC"), t("TLE")],
            note: String::new(),
        };
        assert_eq!(run.score(false), Some(0.0));
        assert_eq!(run.score(true), Some(0.5));
        assert_eq!(run.pred().as_deref(), Some("2/4 passed (AC WA AC TLE)"));
        assert_eq!(read(&serde_json::to_string(&run).unwrap()), Some(run));
        let e = CodeSpec::from_options(
            &serde_json::json!({"timeout": 0})
                .as_object()
                .unwrap()
                .clone(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("verifier.options.timeout"), "{e}");
    }
}
