//! `code-rlvr` through the binary: programs from a replay file run in the
//! sandbox against their prompts' tests (MBPP asserts, APPS stdin and
//! calls, HumanEval's check), early stop on their verdicts, the statuses in
//! SQL, a saved run scored again without running anything, and hostile
//! programs that must neither escape nor disturb the run.

mod common;

use std::path::Path;

use common::{TestDir, query};
use serde_json::{Value, json};

/// A problem with MBPP-shaped asserts on `f`.
fn asserts(id: &str, tests: &[&str]) -> Value {
    json!({"id": id, "messages": [{"role": "user", "content": format!("Write {id}.")}],
           "answer": json!({"test_list": tests}).to_string()})
}

/// A problem with APPS stdin/stdout tests.
fn stdio(id: &str, inputs: &[&str], outputs: &[&str]) -> Value {
    json!({"id": id, "messages": [{"role": "user", "content": format!("Solve {id}.")}],
           "answer": json!({"inputs": inputs, "outputs": outputs}).to_string()})
}

fn fenced(program: &str) -> String {
    format!("<think>Let me write it.</think>\nHere is the program:\n\n```python\n{program}```\n")
}

/// Writes the problems and the responses (id, program) and runs
/// `rsr run` with `code-rlvr` over them; returns stderr.
fn run(t: &TestDir, problems: &[Value], responses: &[(&str, String)], extra: &[&str]) -> String {
    let lines = |v: Vec<Value>| v.iter().map(|x| format!("{x}\n")).collect::<String>();
    std::fs::write(t.path("problems.jsonl"), lines(problems.to_vec())).unwrap();
    let replies = responses
        .iter()
        .map(|(id, program)| json!({"id": id, "response": fenced(program)}))
        .collect();
    std::fs::write(t.path("responses.jsonl"), lines(replies)).unwrap();
    let mut args = vec![
        "run",
        "work_dir=run",
        "data.input_path=problems.jsonl",
        "sampler.type=replay",
        "sampler.replay_path=responses.jsonl",
        "sampler.model=replay",
        "verifier.type=code-rlvr",
        "verifier.options.timeout=1",
        "sampling.allow_identical=true",
    ];
    args.extend_from_slice(extra);
    let out = t
        .cmd(&args)
        .env("OPENAI_API_KEY", "sk-fake-key-that-must-stay-hidden")
        .output()
        .unwrap();
    common::assert_success(&out, &args);
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `id -> statuses` of the run's code verdicts.
fn statuses(t: &TestDir) -> std::collections::HashMap<String, String> {
    query(
        t,
        "run",
        "SELECT id, rollout_idx, statuses, outcome, detail FROM scores WHERE verifier = 'code-rlvr' ORDER BY id, rollout_idx",
    )
    .iter()
    .map(|r| {
        // Without statuses, the outcome, and for a sandbox that failed its
        // cause (so a failure in CI says why).
        let s = match (r["statuses"].as_str(), r["outcome"].as_str().unwrap()) {
            (Some(s), _) => s.to_string(),
            (None, "failed") => format!("failed: {}", r["detail"].as_str().unwrap_or("")),
            (None, o) => o.to_string(),
        };
        (format!("{}/{}", r["id"].as_str().unwrap(), r["rollout_idx"]), s)
    })
    .collect()
}

/// Whether this machine can isolate programs (the tests that run them
/// check the refusal instead when it cannot).
fn isolates(t: &TestDir) -> bool {
    std::fs::write(
        t.path("p.jsonl"),
        format!("{}\n", asserts("f", &["assert f() == 1"])),
    )
    .unwrap();
    let out = t
        .cmd(&[
            "prepare",
            "work_dir=probe",
            "data.input_path=p.jsonl",
            "verifier.type=code-rlvr",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let probe = rsr::sandbox::Sandbox::new("python3", &t.path("scratch"));
    match probe {
        Ok(_) => true,
        Err(e) => {
            eprintln!("no isolation here: {e}");
            false
        }
    }
}

#[test]
fn programs_are_run_against_every_test_shape_and_early_stop_on_their_verdicts() {
    let t = TestDir::new();
    if !isolates(&t) {
        return;
    }
    let problems = [
        asserts("add", &["assert add(1, 2) == 3", "assert add(-1, 1) == 0"]),
        stdio("mul", &["2 3\n", "4 5\n"], &["6\n", "20\n"]),
        json!({"id": "total", "messages": [{"role": "user", "content": "total"}],
               "answer": json!({"input_output": json!({"inputs": [[[1, 2]], [[]]], "outputs": [[3], [0]], "fn_name": "total"}).to_string()}).to_string()}),
        json!({"id": "first", "messages": [{"role": "user", "content": "first"}],
               "answer": json!({"prompt": "from typing import List\n\ndef first(xs: List[int]) -> int:\n", "test": "def check(candidate):\n    assert candidate([4, 5]) == 4\n", "entry_point": "first"}).to_string()}),
    ];
    let responses = [
        ("add", "def add(a, b):\n    return a - b\n".to_string()),
        ("add", "def add(a, b):\n    return a + b\n".to_string()),
        ("add", "def add(a, b):\n    return a + b\n".to_string()),
        (
            "mul",
            "a, b = map(int, input().split())\nprint(a * b, ' ')\n".to_string(),
        ),
        (
            "total",
            "class Solution:\n    def total(self, xs):\n        return sum(xs)\n".to_string(),
        ),
        (
            "first",
            "def first(xs: List[int]) -> int:\n    return xs[-1]\n".to_string(),
        ),
        ("first", "def first(xs):\n    return xs[0]\n".to_string()),
    ];
    let log = run(
        &t,
        &problems,
        &responses,
        &[
            "sampling.max_rollouts=3",
            "sampling.step_size=1",
            "sampling.max_steps=3",
        ],
    );
    assert!(log.contains("code verdicts while sampling"), "{log}");
    let s = statuses(&t);
    // A passing program ends its prompt: add stops at its second response.
    assert_eq!(s["add/0"], "WA WA");
    assert_eq!(s["add/1"], "AC AC");
    assert!(!s.contains_key("add/2"), "{s:?}");
    assert_eq!(s["mul/0"], "AC AC");
    assert_eq!(s["total/0"], "AC AC");
    assert_eq!((s["first/0"].as_str(), s["first/1"].as_str()), ("WA", "AC"));
    // The SFT rows are the passing programs.
    let sft = std::fs::read_to_string(t.path("run/train/sft.jsonl")).unwrap();
    assert_eq!(sft.lines().count(), 4);
    // Scored again: every verdict read back, nothing run.
    let out = t.cmd(&["verify", "run"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("0 program(s) run"), "{err}");
    // Partial credit reads the saved statuses again.
    let out = t
        .cmd(&[
            "verify",
            "run",
            "verifier.label=partial",
            "verifier.options.partial=true",
            "verifier.options.timeout=1",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = query(
        &t,
        "run",
        "SELECT score FROM scores WHERE verifier = 'partial' AND id = 'add' AND rollout_idx = 0",
    );
    assert_eq!(rows[0]["score"].as_f64(), Some(0.0));
}

#[test]
fn hostile_programs_fail_their_tests_and_touch_nothing() {
    let t = TestDir::new();
    if !isolates(&t) {
        return;
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let bashrc = Path::new(&home).join(".bashrc");
    let before = std::fs::read(&bashrc).ok();
    let work = t.path("run");
    let ok = ["assert f() == 1"];
    let hostile: Vec<(&str, String)> = vec![
        ("loop", "def f():\n    while True:\n        pass\n".into()),
        ("fork_bomb", "import os\ndef f():\n    while True:\n        try:\n            os.fork()\n        except OSError:\n            pass\n".into()),
        ("memory", "def f():\n    x = bytearray(20 * 2**30)\n    return 1\n".into()),
        ("writes", format!(
            "import os\nwrote = []\nfor p in [{bashrc:?}, {work:?} + '/evil', '../../evil', '/evil']:\n    try:\n        open(p, 'a').write('x')\n        wrote.append(p)\n    except OSError:\n        pass\ndef f():\n    return 1 if not wrote else wrote\n",
            bashrc = bashrc.display().to_string(),
            work = work.display().to_string()
        )),
        ("network", format!(
            "import socket\ndef f():\n    try:\n        socket.create_connection(('127.0.0.1', {port}), timeout=2)\n        return 'connected'\n    except OSError:\n        return 1\n"
        )),
        ("background", "import subprocess\nsubprocess.Popen(['sleep', '60'], start_new_session=True)\ndef f():\n    return 1\n".into()),
        ("kill_parent", "import os\nos.kill(os.getppid(), 9)\ndef f():\n    return 1\n".into()),
        ("recursion", "import sys\nsys.setrecursionlimit(10**9)\ndef f(n=0):\n    return f(n + 1)\n".into()),
        ("segfault", "import ctypes\ndef f():\n    return ctypes.string_at(0)\n".into()),
    ];
    let mut problems: Vec<Value> = hostile
        .iter()
        .map(|(id, _)| {
            let mut p = asserts(id, &ok);
            p["answer"] = json!({"test_list": ["assert f() == 1"]}).to_string().into();
            p
        })
        .collect();
    problems.push(stdio("env", &["\n"], &["nothing\n"]));
    problems.push(stdio("flood", &["\n"], &["x\n"]));
    let mut responses = hostile.clone();
    responses.push((
        "env",
        "import os\nprint(os.environ.get('OPENAI_API_KEY'), dict(os.environ))\n".into(),
    ));
    responses.push((
        "flood",
        "import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n".into(),
    ));
    let started = std::time::Instant::now();
    run(
        &t,
        &problems,
        &responses,
        &["sampling.max_rollouts=1", "sampling.step_size=1"],
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(120));
    let s = statuses(&t);
    assert_eq!(s["loop/0"], "TLE");
    assert!(
        ["TLE", "RE", "WA"].contains(&s["fork_bomb/0"].as_str()),
        "{s:?}"
    );
    assert_eq!(s["memory/0"], "MLE");
    // Nothing written, nothing reached, nothing left running: the programs
    // that only tried pass their test.
    for id in ["writes", "network", "background", "kill_parent"] {
        assert_eq!(s[&format!("{id}/0")], "AC", "{id}: {s:?}");
    }
    assert_eq!(std::fs::read(&bashrc).ok(), before);
    assert!(!work.join("evil").exists());
    assert!(["RE", "TLE"].contains(&s["recursion/0"].as_str()), "{s:?}");
    assert_eq!(s["segfault/0"], "RE");
    assert_eq!(s["flood/0"], "OLE");
    assert_eq!(s["env/0"], "WA");
    // The key rsr holds is nowhere in what the run saved.
    for entry in walk(&work) {
        let bytes = std::fs::read(&entry).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains("sk-fake-key"),
            "{} holds the key",
            entry.display()
        );
    }
    let detail = query(&t, "run", "SELECT detail FROM scores WHERE id = 'env'");
    assert!(
        detail[0]["detail"].as_str().unwrap().starts_with("None"),
        "{detail:?}"
    );
    // The `sleep` the background program started does not survive the run
    // (other tests of this file run programs under the same uids at the
    // same time, so only it is looked for).
    std::thread::sleep(std::time::Duration::from_millis(300));
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(status) = std::fs::read_to_string(e.path().join("status")) {
            let uid: u32 = status
                .lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|u| u.parse().ok())
                .unwrap_or(0);
            let name = status.lines().next().unwrap_or_default();
            assert!(
                !((rsr::sandbox::UID_BASE..rsr::sandbox::UID_BASE + 256).contains(&uid)
                    && name.ends_with("sleep")),
                "left running: {name}"
            );
        }
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn a_python_that_cannot_be_used_stops_the_run_before_anything_is_sampled() {
    let t = TestDir::new();
    std::fs::write(
        t.path("p.jsonl"),
        format!("{}\n", asserts("f", &["assert f() == 1"])),
    )
    .unwrap();
    std::fs::write(
        t.path("r.jsonl"),
        format!(
            "{}\n",
            json!({"id": "f", "response": fenced("def f():\n    return 1\n")})
        ),
    )
    .unwrap();
    let err = t.fails(&[
        "run",
        "work_dir=run",
        "data.input_path=p.jsonl",
        "sampler.type=replay",
        "sampler.replay_path=r.jsonl",
        "sampler.model=replay",
        "verifier.type=code-rlvr",
        "verifier.options.python=/nonexistent/python3",
    ]);
    assert!(err.contains("/nonexistent/python3"), "{err}");
    assert!(!t.path("run").exists(), "a work dir was left behind");
}

#[test]
fn the_mock_answers_code_prompts_and_the_whole_path_runs_without_a_model() {
    let t = TestDir::new();
    if !isolates(&t) {
        return;
    }
    let input = format!(
        "data.input_path={}",
        common::fixture("code_humaneval_shape.jsonl")
    );
    t.ok(&[
        "prepare",
        "work_dir=run",
        &input,
        "data.preprocess.transform=humaneval",
        "sampler.model=mock",
        "verifier.type=code-rlvr",
        "sampling.max_rollouts=8",
        "sampling.step_size=2",
    ]);
    let mock = common::mock::Mock::start(&["--gold", &common::gold(&t), "--accuracy", "0.5"]);
    let base = mock.base_url_arg();
    t.ok(&["run", "work_dir=run", &base]);
    // Right programs (the canonical solutions) pass, wrong ones fail; a
    // prompt stops at its first passing step.
    let rows = query(
        &t,
        "run",
        "SELECT id, count(*) AS n, sum(CASE WHEN score = 1 THEN 1 ELSE 0 END) AS passed, \
                min(statuses) AS lo \
         FROM scores WHERE verifier = 'code-rlvr' GROUP BY id ORDER BY id",
    );
    assert_eq!(rows.len(), 4);
    for r in &rows {
        let (n, passed) = (r["n"].as_u64().unwrap(), r["passed"].as_u64().unwrap());
        assert!(passed == 0 || n <= 8, "{r}");
        if passed > 0 {
            assert_eq!(r["lo"].as_str(), Some("AC"), "{r}");
        }
        if n < 8 {
            assert!(passed > 0, "stopped early without a pass: {r}");
        }
    }
    let total: u64 = rows.iter().map(|r| r["passed"].as_u64().unwrap()).sum();
    assert!(total > 0, "{rows:?}");
    let sft = std::fs::read_to_string(t.path("run/train/sft.jsonl")).unwrap();
    assert!(sft.contains("```python"), "{sft}");
}
