//! Failures are loud and recoverable: preflight against a closed port, a
//! refused key and a wrong model; a server that dies mid-run (the circuit
//! breaker, then a resume that requests exactly what is missing); transient
//! faults that do not trip it; prompts left unfinished by failures; kill -9
//! at random moments; one writer per work dir; statistics with failed rows.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::mock::Mock;
use common::{TestDir, gold, prepared_gsm8k, prepared_mock, query, shard_statuses};
use serde_json::Value;

/// A port nothing listens on.
fn closed_port() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", l.local_addr().unwrap());
    drop(l);
    url
}

fn rollout_files(t: &TestDir) -> usize {
    walk(&t.path("run/rollout"))
}

fn walk(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| {
            if e.path().is_dir() {
                walk(&e.path())
            } else {
                1
            }
        })
        .sum()
}

/// Finished rollouts (no error) by prompt id.
fn finished(t: &TestDir) -> BTreeMap<String, Vec<u64>> {
    let rows = query(
        t,
        "run",
        "SELECT id, rollout_idx FROM rollouts WHERE error IS NULL ORDER BY id, rollout_idx",
    );
    let mut m: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for r in rows {
        m.entry(r["id"].as_str().unwrap().into())
            .or_default()
            .push(r["rollout_idx"].as_u64().unwrap());
    }
    m
}

/// Every prompt has rollouts 0..n, each exactly once.
fn assert_every_prompt_has(t: &TestDir, n: u64) {
    let got = finished(t);
    assert_eq!(got.len(), 26, "prompts with rollouts: {got:?}");
    for (id, idx) in &got {
        assert_eq!(idx, &(0..n).collect::<Vec<_>>(), "prompt {id}");
    }
}

#[test]
fn preflight_stops_a_closed_port_a_wrong_key_and_a_wrong_model_before_anything_is_sampled() {
    // Nothing listens: the run fails in seconds, before preparing.
    let t = TestDir::new();
    let input = format!("data.input_path={}", common::fixture("gsm8k_sample.jsonl"));
    let url = format!("sampler.base_url={}", closed_port());
    let started = Instant::now();
    let err = t.fails(&[
        "run",
        "work_dir=run",
        &input,
        "data.preprocess.transform=gsm8k",
        "sampler.model=mock",
        &url,
    ]);
    assert!(started.elapsed() < Duration::from_secs(15));
    assert!(
        err.contains("cannot reach the server at http://127.0.0.1:")
            && err.contains("Connection refused")
            && err.contains("sampler.base_url")
            && err.contains("Nothing was sampled"),
        "{err}"
    );
    assert_eq!(rollout_files(&t), 0);

    // A key the server refuses (here: the variable is unset).
    const SECRET: &str = "sk-preflight-0123456789";
    let t = prepared_mock(&["sampler.api_key_env=MOCK_KEY_PREFLIGHT"]);
    let mock = Mock::start(&["--gold", &gold(&t), "--require-key", SECRET]);
    let base = mock.base_url_arg();
    let out = t
        .cmd(&["sample", "work_dir=run", &base])
        .env_remove("MOCK_KEY_PREFLIGHT")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("refused the API key (HTTP 401")
            && err.contains("MOCK_KEY_PREFLIGHT")
            && err.contains("is not set"),
        "{err}"
    );
    // A wrong key, echoed back by the server, is redacted.
    let wrong = "sk-wrong-0123456789";
    let out = t
        .cmd(&["sample", "work_dir=run", &base])
        .env("MOCK_KEY_PREFLIGHT", wrong)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("Incorrect API key provided: ***") && !err.contains(wrong),
        "{err}"
    );
    assert_eq!(mock.stat("requests"), 0, "no chat request was sent");
    assert_eq!(rollout_files(&t), 0);

    // A model the server does not serve: its names are listed.
    let t = prepared_gsm8k(&["shard.size=10", "sampler.model=qwen3-8B"]);
    let mock = Mock::start(&["--gold", &gold(&t), "--model", "qwen3-8b"]);
    let base = mock.base_url_arg();
    let err = t.fails(&["sample", "work_dir=run", &base]);
    assert!(
        err.contains("does not serve model `qwen3-8B`; it serves: qwen3-8b")
            && err.contains("Set sampler.model"),
        "{err}"
    );
    assert_eq!(mock.stat("requests"), 0);
}

#[test]
fn a_server_that_dies_trips_the_breaker_and_resume_requests_exactly_what_is_missing() {
    // 26 prompts, 2 requests of 4 each, 4 prompts at a time: 52 requests.
    let settings = [
        "sampling.early_stop=false",
        "sampling.concurrent_prompts=4",
        "sampling.failure_window=6",
        "sampler.max_retries=1",
        "sampler.retry_delay=0.05",
    ];
    let t = prepared_mock(&settings);
    let dying = Mock::start(&[
        "--gold",
        &gold(&t),
        "--accuracy",
        "1",
        "--latency-ms",
        "10",
        "--die-after",
        "12",
    ]);
    let base = dying.base_url_arg();
    let mut args = vec!["sample", "work_dir=run", base.as_str()];
    args.extend_from_slice(&settings);
    let started = Instant::now();
    let out = t.cmd(&args).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(
        err.contains("the servers are failing")
            && err.contains("cannot connect: Connection refused")
            && err.contains("rsr run work_dir=run"),
        "{err}"
    );
    // Failures grouped by cause on stderr.
    assert!(
        err.contains("request(s) failed after their retries, by cause:"),
        "{err}"
    );
    let got = finished(&t);
    let received: usize = got.values().map(Vec::len).sum();
    assert!(received <= 12 * 4, "{received}");
    assert!(
        got.len() <= 10,
        "the breaker stopped well before the rest: {got:?}"
    );
    assert_ne!(shard_statuses(&t), ["done", "done", "done"]);

    // The server is back: resume completes every prompt with exactly the
    // requests that were missing.
    let healthy = Mock::start(&["--gold", &gold(&t), "--accuracy", "1"]);
    let base = healthy.base_url_arg();
    args[2] = base.as_str();
    t.ok(&args);
    assert_every_prompt_has(&t, 8);
    let missing = (26 * 8 - received) as u64;
    assert_eq!(healthy.stat("choices"), missing);
    assert_eq!(shard_statuses(&t), ["done", "done", "done"]);
    // Per-prompt counts equal a run that never failed; the failed rows stay.
    let p = query(
        &t,
        "run",
        "SELECT min(n_rollouts) AS lo, max(n_rollouts) AS hi, sum(n_valid) AS v, \
         sum(n_pass) AS p, sum(n_errors) AS e FROM prompts",
    );
    assert_eq!(
        (p[0]["lo"].as_u64(), p[0]["hi"].as_u64()),
        (Some(8), Some(8))
    );
    assert_eq!(p[0]["v"], 26 * 8);
    assert_eq!(p[0]["p"], 26 * 8);
    assert!(p[0]["e"].as_u64().unwrap() > 0, "error rows are kept");
}

#[test]
fn transient_faults_past_the_retries_are_requested_again_without_tripping_the_breaker() {
    // No retries inside the client: every 500 and 429 is a failed request.
    let t = prepared_mock(&["sampling.early_stop=false", "sampling.max_rollouts=4"]);
    let mock = Mock::start(&[
        "--gold",
        &gold(&t),
        "--accuracy",
        "1",
        "--seed",
        "5",
        "--rate-500",
        "0.1",
        "--rate-429",
        "0.05",
        "--retry-after",
        "0.01",
    ]);
    let base = mock.base_url_arg();
    t.ok(&[
        "run",
        "work_dir=run",
        &base,
        "sampler.max_retries=0",
        "sampling.max_failed_attempts=10",
    ]);
    assert_every_prompt_has(&t, 4);
    let failed = mock.stat("status_500") + mock.stat("status_429");
    assert!(failed > 0, "no fault injected");
    assert_eq!(mock.stat("ok"), 26);
    assert_eq!(mock.stat("requests"), 26 + failed);

    // The statistics, by hand: 104 rollouts, 4 error rows per failed
    // request (kept, not counted as rollouts), every valid one passes.
    let stats: Value =
        serde_json::from_str(&std::fs::read_to_string(t.path("run/summary/stats.json")).unwrap())
            .unwrap();
    assert_eq!(stats["rollouts"], 104);
    assert_eq!(stats["valid"], 104);
    assert_eq!(stats["passed"], 104);
    assert_eq!(stats["errors"], failed * 4);
    assert_eq!(stats["pass_rate"], 1.0);
    assert_eq!(stats["mean_rollouts_per_prompt"], 4.0);
    assert_eq!(stats["rollouts_per_prompt"], serde_json::json!({"4": 26}));
    assert_eq!(stats["early_stop_saved"], 0.0);
    assert_eq!(stats["requests"], 26 + failed);
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(t.path("run/state.json")).unwrap()).unwrap();
    assert_eq!(state["counters"]["failed_requests"], failed);
    // Scores hold one verdict per rollout, none for a failed row.
    let s = query(&t, "run", "SELECT count(*) AS n FROM scores");
    assert_eq!(s[0]["n"], 104);
}

#[test]
fn prompts_that_keep_failing_are_left_unfinished_and_resume_retries_them() {
    // 400 (context too long) is not retried by the client; each prompt
    // fails twice, then is left for the next resume.
    let settings = [
        "sampling.max_failed_attempts=2",
        "sampling.failure_window=1000",
    ];
    let t = prepared_mock(&settings);
    let mock = Mock::start(&["--gold", &gold(&t), "--rate-400", "1"]);
    let base = mock.base_url_arg();
    let mut args = vec!["run", "work_dir=run", base.as_str()];
    args.extend_from_slice(&settings);
    let out = t.cmd(&args).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(
        err.contains("26 prompt(s) left unfinished")
            && err.contains("HTTP 400: This model's maximum context length")
            && err.contains("rsr run work_dir=run"),
        "{err}"
    );
    assert_eq!(mock.stat("requests"), 26 * 2);
    assert_eq!(shard_statuses(&t), ["running", "running", "running"]);
    let rows = query(
        &t,
        "run",
        "SELECT count(*) AS n, count(error) AS e FROM rollouts",
    );
    assert_eq!(
        (rows[0]["n"].as_u64(), rows[0]["e"].as_u64()),
        (Some(208), Some(208))
    );

    // Against a server that answers, the same command finishes the job.
    let good = Mock::start(&["--gold", &gold(&t), "--accuracy", "1"]);
    let base = good.base_url_arg();
    args[2] = base.as_str();
    t.ok(&args);
    // Early stop (sft: one pass) after the first step of 4.
    assert_every_prompt_has(&t, 4);
    assert_eq!(good.stat("requests"), 26);
    assert_eq!(shard_statuses(&t), ["done", "done", "done"]);
}

#[test]
fn kill_9_at_random_moments_costs_only_the_requests_in_flight() {
    // 8 rollouts per prompt in steps of 3+3+2, one rollout per request,
    // 4 requests in flight at most.
    let settings = [
        "sampling.early_stop=false",
        "sampling.step_size=3",
        "sampling.concurrent_prompts=4",
        "sampler.use_n=false",
        "sampler.concurrent_requests=4",
    ];
    let t = prepared_mock(&settings);
    let mock = Mock::start(&[
        "--gold",
        &gold(&t),
        "--latency-ms",
        "40",
        "--latency-dist",
        "uniform",
    ]);
    let base = mock.base_url_arg();
    let mut args = vec!["sample", "work_dir=run", base.as_str()];
    args.extend_from_slice(&settings);
    let mut kills = 0;
    for wait_ms in [350, 200, 500] {
        let mut child = t.cmd(&args).stderr(Stdio::null()).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(wait_ms));
        child.kill().unwrap(); // SIGKILL: no flush
        child.wait().unwrap();
        kills += 1;
    }
    let before = mock.stat("requests");
    assert!(before < 26 * 8, "killed before the end");
    t.ok(&args);
    assert_every_prompt_has(&t, 8);
    let sent = mock.stat("requests");
    eprintln!("{before} requests before the last run, {sent} in all");
    assert!(
        sent <= 26 * 8 + kills * 4,
        "{sent} requests for {} rollouts after {kills} kills",
        26 * 8
    );
    let leftovers: Vec<_> = std::fs::read_dir(t.path("run/rollout/shard_0000"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "journal"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_second_writer_is_refused_at_once_and_a_killed_one_leaves_no_lock() {
    let t = prepared_mock(&["sampling.early_stop=false", "sampling.concurrent_prompts=2"]);
    let mock = Mock::start(&["--gold", &gold(&t), "--latency-ms", "200"]);
    let base = mock.base_url_arg();
    let args = [
        "sample",
        "work_dir=run",
        base.as_str(),
        "sampler.concurrent_requests=2",
    ];
    let mut first = t.cmd(&args).stderr(Stdio::null()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while mock.stat("requests") == 0 {
        assert!(Instant::now() < deadline, "the first run never sent");
        std::thread::sleep(Duration::from_millis(20));
    }
    let started = Instant::now();
    let err = t.fails(&args);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        err.contains("is in use by another rsr process")
            && err.contains(&format!("pid {}", first.id())),
        "{err}"
    );
    // Read-only commands do not wait.
    query(&t, "run", "SELECT count(*) AS n FROM inputs");
    // The refused run sent nothing: never more than the first run's 2 in flight.
    assert!(mock.stat("max_in_flight") <= 2);
    first.kill().unwrap();
    first.wait().unwrap();
    t.ok(&args);
    let rows: BTreeSet<_> = finished(&t).keys().cloned().collect();
    assert_eq!(rows.len(), 26);
}

#[test]
fn a_server_answering_mostly_errors_trips_the_breaker_on_its_window() {
    let t = prepared_mock(&[]);
    let mock = Mock::start(&["--gold", &gold(&t), "--rate-500", "0.9", "--seed", "3"]);
    let base = mock.base_url_arg();
    let out = t
        .cmd(&[
            "sample",
            "work_dir=run",
            &base,
            "sampler.max_retries=0",
            "sampling.failure_window=10",
            "sampling.concurrent_prompts=2",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains(
            "of the last 10 requests failed after their retries (sampling.max_failure_rate)"
        ) && err.contains("HTTP 500: internal error"),
        "{err}"
    );
    // Two prompts at a time: it stopped long before trying every prompt.
    assert!(mock.stat("requests") < 26, "{}", mock.stat("requests"));
}
