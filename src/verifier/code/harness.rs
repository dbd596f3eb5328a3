//! How a program meets its tests: the runs to make (a script and its
//! standard input) and how each run's result becomes a test status.
//!
//! Standard-input tests are one run each: the program as the script, the
//! test's input on stdin, its stdout compared in Rust ([`super::Compare`]).
//! Function calls, asserts and HumanEval's `check` share one run: a Python
//! driver loads the program as a module (so a `__main__` block does not
//! run), then runs each test with its own time limit and writes one result
//! line per test, marked with a random nonce, on stdout. The tests reach it
//! as Python literals and it imports nothing but `signal` and `sys`: its
//! start is most of a short program's cost.

use serde_json::{Value, json};

use super::compare::Compare;
use super::suite::{Suite, Test};

/// A test's status, as code benchmarks name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Accepted.
    Accepted,
    /// Wrong answer.
    Wrong,
    /// Time limit exceeded.
    Timeout,
    /// Runtime error.
    RuntimeError,
    /// Memory limit exceeded.
    Memory,
    /// Output limit exceeded.
    Output,
}

impl Status {
    /// The short name stored with the verdict.
    pub fn name(self) -> &'static str {
        match self {
            Status::Accepted => "AC",
            Status::Wrong => "WA",
            Status::Timeout => "TLE",
            Status::RuntimeError => "RE",
            Status::Memory => "MLE",
            Status::Output => "OLE",
        }
    }
}

/// How a run ended, as the harness needs it (the sandbox's own type stays
/// out of this pure module).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Exited with this status.
    Exited(i32),
    /// Killed by the CPU limit or the wall time.
    TimedOut,
    /// Killed for writing too much.
    TooMuchOutput,
    /// Killed by another signal (a segfault).
    Crashed,
}

/// One run to make.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// The Python script.
    pub script: String,
    /// Its standard input.
    pub stdin: String,
    /// Which tests it answers.
    pub tests: Vec<usize>,
    /// `Some(expected)` for a standard-input test (one per job).
    pub expected: Option<String>,
}

/// The runs that test `program` against `suite`; `nonce` marks the
/// driver's result lines (random per run, so that a program cannot print
/// them by chance), `per_test` is each driven test's time limit.
pub fn jobs(program: &str, suite: &Suite, nonce: &str, per_test: f64) -> Vec<Job> {
    let mut out = Vec::new();
    let mut driven = Vec::new();
    for (i, t) in suite.tests.iter().enumerate() {
        match t {
            Test::Stdio { input, output } => out.push(Job {
                script: format!("{}{program}", suite.setup),
                stdin: input.clone(),
                tests: vec![i],
                expected: Some(output.clone()),
            }),
            Test::Call { args, expected } => {
                driven.push(json!({"i": i, "kind": "call", "args": args, "expected": expected}))
            }
            Test::Assert(code) => driven.push(json!({"i": i, "kind": "exec", "code": code})),
            Test::Check { test } => driven.push(json!({"i": i, "kind": "check", "code": test})),
        }
    }
    if !driven.is_empty() {
        let tests: Vec<usize> = driven
            .iter()
            .filter_map(|t| t["i"].as_u64().map(|i| i as usize))
            .collect();
        out.push(Job {
            script: driver(program, suite, &driven, nonce, per_test),
            stdin: String::new(),
            tests,
            expected: None,
        });
    }
    out
}

fn driver(program: &str, suite: &Suite, tests: &[Value], nonce: &str, per_test: f64) -> String {
    let lit = |s: &str| py_literal(&Value::String(s.to_string()));
    let tests: Vec<String> = tests.iter().map(py_literal).collect();
    // No `json` import (a third of Python's start): the tests are Python
    // literals, the results plain lines.
    format!(
        r#"import signal as _sig, sys as _sys
_NONCE = {nonce}
_OUT = _sys.stdout
def _report(i, status, detail=""):
    d = " ".join(str(detail).split())[:300]
    _OUT.write("\n%s%d %s %s\n" % (_NONCE, i, status, d))
    _OUT.flush()
class _Timeout(BaseException):
    pass
def _alarm(*_):
    raise _Timeout()
_sig.signal(_sig.SIGALRM, _alarm)
_TESTS = [{tests}]
_FN = {entry}
_g = {{"__name__": "solution"}}
try:
    exec(compile({setup} + {program}, "solution.py", "exec"), _g)
except BaseException as e:
    for t in _TESTS:
        _report(t["i"], "MLE" if isinstance(e, MemoryError) else "RE", "%s: %s" % (type(e).__name__, e))
    raise SystemExit(0)
def _function():
    f = _g.get(_FN)
    if f is None and "Solution" in _g:
        f = getattr(_g["Solution"](), _FN)
    if f is None:
        raise NameError("no function %s" % _FN)
    return f
def _plain(v):
    if isinstance(v, (list, tuple, set, frozenset)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {{k if isinstance(k, str) else str(k): _plain(x) for k, x in v.items()}}
    return v
for t in _TESTS:
    _sig.setitimer(_sig.ITIMER_REAL, {per_test})
    try:
        if t["kind"] == "call":
            got = _plain(_function()(*t["args"]))
            exp = t["expected"]
            ok = got == exp or (isinstance(exp, list) and len(exp) == 1 and got == exp[0])
            _report(t["i"], "AC" if ok else "WA", repr(got))
        elif t["kind"] == "exec":
            exec(t["code"], _g)
            _report(t["i"], "AC")
        else:
            exec(t["code"], _g)
            _g["check"](_function())
            _report(t["i"], "AC")
    except AssertionError as e:
        _report(t["i"], "WA", e)
    except _Timeout:
        _report(t["i"], "TLE")
    except MemoryError:
        _report(t["i"], "MLE")
    except BaseException as e:
        _report(t["i"], "RE", "%s: %s" % (type(e).__name__, e))
    finally:
        _sig.setitimer(_sig.ITIMER_REAL, 0)
"#,
        nonce = lit(nonce),
        tests = tests.join(", "),
        entry = lit(suite.entry_point.as_deref().unwrap_or("")),
        setup = lit(&suite.setup),
        program = lit(program),
    )
}

/// A JSON value as the Python literal of the same value.
fn py_literal(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => n.to_string(),
        // JSON's escapes are Python's (serde_json writes no `\/`).
        Value::String(_) => v.to_string(),
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(py_literal).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(o) => format!(
            "{{{}}}",
            o.iter()
                .map(|(k, x)| format!("{}: {}", Value::String(k.clone()), py_literal(x)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// A test's status with what explains it (the value returned, the error).
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The status.
    pub status: Status,
    /// A short explanation, empty for a pass.
    pub detail: String,
}

/// The statuses a job's run gives its tests: a standard-input test by its
/// output, driven tests by the driver's lines (a test without one: the
/// run's end, a crash or a timeout, decides).
pub fn outcomes(
    job: &Job,
    end: End,
    stdout: &str,
    stderr: &str,
    nonce: &str,
    compare: Compare,
) -> Vec<(usize, Outcome)> {
    let by_end = |end: End| -> Outcome {
        let tail = |s: &str| {
            let t = s.trim_end();
            t.char_indices()
                .rev()
                .nth(299)
                .map_or(t, |(i, _)| &t[i..])
                .to_string()
        };
        match end {
            End::TimedOut => Outcome {
                status: Status::Timeout,
                detail: String::new(),
            },
            End::TooMuchOutput => Outcome {
                status: Status::Output,
                detail: String::new(),
            },
            End::Crashed => Outcome {
                status: Status::RuntimeError,
                detail: tail(stderr),
            },
            End::Exited(_) if stderr.contains("MemoryError") => Outcome {
                status: Status::Memory,
                detail: tail(stderr),
            },
            End::Exited(_) => Outcome {
                status: Status::RuntimeError,
                detail: tail(stderr),
            },
        }
    };
    if let Some(expected) = &job.expected {
        let outcome = match end {
            End::Exited(0) if compare.matches(expected, stdout) => Outcome {
                status: Status::Accepted,
                detail: String::new(),
            },
            End::Exited(0) => Outcome {
                status: Status::Wrong,
                detail: stdout.chars().take(300).collect(),
            },
            other => by_end(other),
        };
        return job.tests.iter().map(|&i| (i, outcome.clone())).collect();
    }
    let mut found: Vec<(usize, Outcome)> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix(nonce))
        .filter_map(|l| {
            let mut parts = l.splitn(3, ' ');
            let i: usize = parts.next()?.parse().ok()?;
            let status = match parts.next()? {
                "AC" => Status::Accepted,
                "WA" => Status::Wrong,
                "TLE" => Status::Timeout,
                "RE" => Status::RuntimeError,
                "MLE" => Status::Memory,
                "OLE" => Status::Output,
                _ => return None,
            };
            let detail = parts.next().unwrap_or_default().to_string();
            Some((i, Outcome { status, detail }))
        })
        .filter(|(i, _)| job.tests.contains(i))
        .collect();
    for &i in &job.tests {
        if !found.iter().any(|(j, _)| *j == i) {
            // The run ended before this test reported: what ended it. A
            // clean exit without a report is the program leaving early.
            let o = match end {
                End::Exited(_) => Outcome {
                    status: Status::RuntimeError,
                    detail: "the program ended the run before this test reported".into(),
                },
                other => by_end(other),
            };
            found.push((i, o));
        }
    }
    found.sort_by_key(|(i, _)| *i);
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::{Limits, Sandbox, SandboxError};
    use crate::verifier::code::suite::parse;

    /// Runs `program` against `gold` in the sandbox; `None` without isolation.
    fn statuses(program: &str, gold: &str) -> Option<Vec<&'static str>> {
        let dir = tempfile::tempdir().unwrap();
        let sandbox = match Sandbox::new("python3", &dir.path().join("s")) {
            Ok(s) => s,
            Err(SandboxError::Unavailable(why)) => {
                eprintln!("no isolation on this machine: {why}");
                return None;
            }
            Err(e) => panic!("{e}"),
        };
        let suite = parse(gold).unwrap();
        let nonce = "RSR-7f3a9c";
        let limits = Limits {
            cpu: std::time::Duration::from_secs(2),
            wall: std::time::Duration::from_secs(4),
            ..Limits::default()
        };
        let mut all = Vec::new();
        for job in jobs(program, &suite, nonce, 1.0) {
            let run = sandbox
                .run(0, &job.script, job.stdin.as_bytes(), &limits)
                .unwrap();
            let end = crate::execute::end_of(run.ended);
            let (out, err) = (
                String::from_utf8_lossy(&run.stdout),
                String::from_utf8_lossy(&run.stderr),
            );
            all.extend(outcomes(&job, end, &out, &err, nonce, Compare::Lines));
        }
        all.sort_by_key(|(i, _)| *i);
        Some(all.into_iter().map(|(_, o)| o.status.name()).collect())
    }

    #[test]
    fn stdin_tests_compare_lines_and_report_each_failure_kind() {
        let gold = r#"{"inputs": ["2 3\n", "10 -4\n", "0 0\n"], "outputs": ["5\n", "6\n", "0\n"]}"#;
        let right = "a, b = map(int, input().split())\nprint(a + b, '  ')\n";
        let Some(s) = statuses(right, gold) else {
            return;
        };
        assert_eq!(s, ["AC", "AC", "AC"]);
        let wrong = "a, b = map(int, input().split())\nprint(a - b if a > 5 else a + b)\n";
        assert_eq!(statuses(wrong, gold).unwrap(), ["AC", "WA", "AC"]);
        let slow = "a, b = map(int, input().split())\nwhile a + b == 0:\n    pass\nprint(a + b)\n";
        assert_eq!(statuses(slow, gold).unwrap(), ["AC", "AC", "TLE"]);
        // 2 // 3 and 10 // -4 are wrong answers, 0 // 0 an error.
        let divides = "a, b = map(int, input().split())\nprint(a // b)\n";
        assert_eq!(statuses(divides, gold).unwrap(), ["WA", "WA", "RE"]);
    }

    #[test]
    fn calls_asserts_and_check_run_in_one_driver() {
        let apps = r#"{"inputs": [[[1, 2, 3]], [[]]], "outputs": [[6], [0]], "fn_name": "total"}"#;
        let Some(s) = statuses("def total(xs):\n    return sum(xs)\n", apps) else {
            return;
        };
        assert_eq!(s, ["AC", "AC"]);
        let method =
            "class Solution:\n    def total(self, xs):\n        return sum(xs) if xs else None\n";
        assert_eq!(statuses(method, apps).unwrap(), ["AC", "WA"]);
        // A __main__ block does not run; a test that loops times out alone.
        let mbpp = r#"{"test_list": ["assert inc(1) == 2", "assert inc(-1) == 0", "assert inc(None) == 1"]}"#;
        let program = "def inc(x):\n    while x is None:\n        pass\n    return x + 1\nif __name__ == '__main__':\n    print(input())\n";
        assert_eq!(statuses(program, mbpp).unwrap(), ["AC", "AC", "TLE"]);
        let human_eval = r#"{"prompt": "from typing import List\n\ndef first(xs: List[int]) -> int:\n", "test": "def check(candidate):\n    assert candidate([4, 5]) == 4\n    assert candidate([7]) == 7\n", "entry_point": "first"}"#;
        assert_eq!(
            statuses(
                "def first(xs: List[int]) -> int:\n    return xs[0]\n",
                human_eval
            )
            .unwrap(),
            ["AC"]
        );
        assert_eq!(
            statuses("def first(xs):\n    return xs[-1]\n", human_eval).unwrap(),
            ["WA"]
        );
        // A program that does not load fails every test; one that exits
        // early fails those it did not reach.
        assert_eq!(
            statuses("def total(xs) return 0\n", apps).unwrap(),
            ["RE", "RE"]
        );
        let exits =
            "import sys\ndef inc(x):\n    if x < 0:\n        sys.exit(0)\n    return x + 1\n";
        assert_eq!(statuses(exits, mbpp).unwrap(), ["AC", "RE", "RE"]);
    }

    #[test]
    fn a_printed_result_line_without_the_nonce_counts_for_nothing() {
        let mbpp = r#"{"test_list": ["assert f() == 1"]}"#;
        // The shape of a result line, with a guessed nonce.
        let forged = "print('\\nRSR-0000000000000000' + '0 AC ')\ndef f():\n    return 2\n";
        let Some(s) = statuses(forged, mbpp) else {
            return;
        };
        assert_eq!(s, ["WA"]);
    }
}
