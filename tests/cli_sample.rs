//! `rsr sample` / `rsr run` against `rsr-mock` on 127.0.0.1: early stop,
//! truncation, faults, failover, resume after SIGKILL, Ctrl-C, the
//! truncation guard, managed servers and replay.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::mock::Mock;
use common::{
    TestDir, gold, pid_alive, prepared_gsm8k, prepared_mock, query, server_pids, shard_statuses,
};
use serde_json::Value;

/// `rsr sample work_dir=run` against `mock`, fast retries, plus `extra`.
fn sample(t: &TestDir, mock: &Mock, extra: &[&str]) -> String {
    let base = mock.base_url_arg();
    let mut args = vec![
        "sample",
        "work_dir=run",
        base.as_str(),
        "sampler.retry_delay=0.01",
    ];
    args.extend_from_slice(extra);
    t.ok(&args)
}

fn saved_rows(t: &TestDir) -> Vec<Value> {
    query(
        t,
        "run",
        "SELECT id, rollout_idx, step, truncated, error, finish_reason, score, response, \
         reasoning, endpoint, completion_tokens FROM rollouts ORDER BY id, rollout_idx",
    )
}

fn keys(rows: &[Value]) -> Vec<(String, u64)> {
    rows.iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_string(),
                r["rollout_idx"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn by_prompt(rows: &[Value]) -> BTreeMap<String, Vec<&Value>> {
    let mut m: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for r in rows {
        m.entry(r["id"].as_str().unwrap().to_string())
            .or_default()
            .push(r);
    }
    m
}

#[test]
fn samples_scores_inline_and_completes_every_shard() {
    let t = prepared_mock(&[]);
    let mock = Mock::start(&["--gold", &gold(&t), "--accuracy", "1"]);
    sample(&t, &mock, &[]);
    let rows = saved_rows(&t);
    // Every answer is right: sft is satisfied after the first step of 4.
    assert_eq!(rows.len(), 26 * 4);
    assert!(
        rows.iter()
            .all(|r| r["score"] == 1.0 && r["step"] == 0 && r["error"].is_null())
    );
    assert!(
        rows.iter()
            .all(|r| r["completion_tokens"].as_u64().unwrap() > 0)
    );
    assert_eq!(shard_statuses(&t), ["done", "done", "done"]);
    for shard in 0..3 {
        assert!(
            t.path(&format!("run/scores/math-rlvr/shard_{shard:04}.parquet"))
                .is_file()
        );
    }
    let p = query(
        &t,
        "run",
        "SELECT min(pass_rate) AS lo, count(*) AS n FROM prompts",
    );
    assert_eq!(p[0]["lo"], 1.0);
    assert_eq!(p[0]["n"], 26);
    // The scores table holds the same verdicts.
    let s = query(
        &t,
        "run",
        "SELECT count(*) AS n, min(score) AS lo FROM scores",
    );
    assert_eq!(s[0]["n"], 104);
    assert_eq!(mock.stat("requests"), 26);

    // A finished run resumes to nothing.
    sample(&t, &mock, &[]);
    assert_eq!(mock.stat("requests"), 26);
    assert_eq!(saved_rows(&t).len(), 104);
}

#[test]
fn early_stop_follows_the_formatters() {
    // top_k with k=6 needs two steps of 4 when every answer is right.
    let t = prepared_mock(&["formatter.0.type=top_k", "formatter.0.k=6"]);
    let mock = Mock::start(&["--gold", &gold(&t), "--accuracy", "1"]);
    sample(&t, &mock, &[]);
    let rows = saved_rows(&t);
    assert_eq!(rows.len(), 26 * 8);
    assert!(rows.iter().all(|r| r["step"].as_u64().unwrap() < 2));

    // dpo: a prompt stops once it has a pass and a fail, else runs to max_steps.
    let t = prepared_mock(&[
        "formatter.0.type=dpo",
        "sampling.max_rollouts=16",
        "sampling.max_steps=3",
    ]);
    let mock = Mock::start(&["--gold", &gold(&t), "--accuracy", "0.5", "--seed", "7"]);
    sample(&t, &mock, &[]);
    let rows = saved_rows(&t);
    let mut stopped_early = 0;
    for (id, rs) in by_prompt(&rows) {
        let last = rs
            .iter()
            .map(|r| r["step"].as_u64().unwrap())
            .max()
            .unwrap();
        let met = |upto: u64| {
            let scores: Vec<f64> = rs
                .iter()
                .filter(|r| r["step"].as_u64().unwrap() <= upto)
                .map(|r| r["score"].as_f64().unwrap())
                .collect();
            scores.contains(&1.0) && scores.contains(&0.0)
        };
        assert!(
            met(last) || last == 2,
            "{id}: stopped without a pair before max_steps"
        );
        assert!(
            last == 0 || !met(last - 1),
            "{id}: sampled a step after the pair was complete"
        );
        stopped_early += usize::from(last < 2);
    }
    assert!(stopped_early > 10, "{stopped_early}");
}

#[test]
fn without_early_stop_every_prompt_gets_max_rollouts_in_partial_steps() {
    // 8 rollouts in steps of 3: 3 + 3 + 2, numbered 0..8.
    let t = prepared_mock(&["sampling.early_stop=false", "sampling.step_size=3"]);
    let mock = Mock::start(&["--gold", &gold(&t), "--no-n"]);
    sample(&t, &mock, &["sampler.use_n=false"]);
    let rows = saved_rows(&t);
    for (_, rs) in by_prompt(&rows) {
        let idx: Vec<u64> = rs
            .iter()
            .map(|r| r["rollout_idx"].as_u64().unwrap())
            .collect();
        assert_eq!(idx, (0..8).collect::<Vec<_>>());
        let steps: Vec<u64> = rs.iter().map(|r| r["step"].as_u64().unwrap()).collect();
        assert_eq!(steps, [0, 0, 0, 1, 1, 1, 2, 2]);
    }
    // n=1 per request: the mock refuses n>1, and saw one request per rollout.
    assert_eq!(mock.stat("status_400"), 0);
    assert_eq!(mock.stat("requests"), 26 * 8);
}

#[test]
fn truncated_responses_are_kept_flagged_and_not_counted() {
    for reasoning in ["inline", "field"] {
        let t = prepared_mock(&[
            "sampling.early_stop=false",
            "sampling.max_rollouts=4",
            "sampling.max_steps=3",
        ]);
        let mock = Mock::start(&[
            "--gold",
            &gold(&t),
            "--truncate-rate",
            "0.3",
            "--seed",
            "3",
            "--reasoning",
            reasoning,
        ]);
        sample(&t, &mock, &["sampling.allow_truncation=true"]);
        let rows = saved_rows(&t);
        let truncated: Vec<&Value> = rows.iter().filter(|r| r["truncated"] == true).collect();
        assert!(truncated.len() > 10, "{reasoning}: {}", truncated.len());
        assert!(truncated.iter().all(|r| r["finish_reason"] == "length"));
        for (id, rs) in by_prompt(&rows) {
            let valid = rs.iter().filter(|r| r["truncated"] == false).count();
            let steps = rs
                .iter()
                .map(|r| r["step"].as_u64().unwrap())
                .max()
                .unwrap()
                + 1;
            // Truncated ones do not count: a prompt goes on until 4 valid or 3 steps.
            assert!(
                valid == 4 || steps == 3,
                "{reasoning} {id}: {valid} valid in {steps} steps"
            );
            assert!(valid <= 4);
        }
        if reasoning == "field" {
            assert!(
                rows.iter()
                    .all(|r| r["reasoning"].as_str().is_some_and(|s| !s.is_empty()))
            );
        }
        let p = query(
            &t,
            "run",
            "SELECT sum(n_truncated) AS t, sum(n_valid) AS v FROM prompts",
        );
        assert_eq!(p[0]["t"].as_u64().unwrap() as usize, truncated.len());
        assert_eq!(
            p[0]["v"].as_u64().unwrap() as usize,
            rows.len() - truncated.len()
        );
    }
}

#[test]
fn truncated_responses_count_when_the_run_keeps_them() {
    // `sampler.drop_truncated=false`: the sampler, the views, the statistics
    // and the formatters all count truncated responses as valid.
    let t = prepared_mock(&[
        "sampler.drop_truncated=false",
        "sampling.early_stop=false",
        "sampling.max_rollouts=4",
        "sampling.step_size=4",
        "sampling.max_steps=3",
    ]);
    let mock = Mock::start(&["--gold", &gold(&t), "--truncate-rate", "0.3", "--seed", "3"]);
    sample(&t, &mock, &["sampling.allow_truncation=true"]);
    let rows = saved_rows(&t);
    let truncated = rows.iter().filter(|r| r["truncated"] == true).count();
    assert!(truncated > 10, "{truncated}");
    // One step of four per prompt: truncated ones counted toward max_rollouts.
    for (id, rs) in by_prompt(&rows) {
        assert_eq!(rs.len(), 4, "{id}");
        assert!(rs.iter().all(|r| r["step"] == 0), "{id}");
    }
    let p = query(
        &t,
        "run",
        "SELECT sum(n_valid) AS v, sum(n_truncated) AS t, min(n_valid) AS lo FROM prompts",
    );
    assert_eq!(p[0]["v"].as_u64().unwrap() as usize, rows.len());
    assert_eq!(p[0]["t"].as_u64().unwrap() as usize, truncated);
    assert_eq!(p[0]["lo"].as_u64().unwrap(), 4);
    let r = query(
        &t,
        "run",
        "SELECT count(*) AS n FROM results WHERE valid AND truncated",
    );
    assert_eq!(r[0]["n"].as_u64().unwrap() as usize, truncated);
}

#[test]
fn the_truncation_guard_stops_the_run_and_keeps_what_arrived() {
    let t = prepared_mock(&["sampler.max_tokens=512"]);
    let mock = Mock::start(&["--gold", &gold(&t), "--truncate-rate", "1"]);
    let base = mock.base_url_arg();
    let err = t.fails(&[
        "sample",
        "work_dir=run",
        &base,
        "sampling.truncation_window=20",
    ]);
    assert!(
        err.contains("of the first 20 responses (100.0%) were truncated"),
        "{err}"
    );
    assert!(
        err.contains("sampler.max_tokens=512") && err.contains("p95 completion length 512"),
        "{err}"
    );
    assert!(err.contains("sampling.allow_truncation=true"), "{err}");
    assert!(saved_rows(&t).len() >= 20);
}

fn guard_record(t: &TestDir, name: &str) -> Value {
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(t.path("run/state.json")).unwrap()).unwrap();
    state["guards"][name].clone()
}

/// Every prompt finished, and no rollout saved twice (a failed request's
/// row, kept for audit, shares its rollout's key).
fn finished_exactly(t: &TestDir) {
    assert!(shard_statuses(t).iter().all(|s| s == "done"));
    let rows: Vec<Value> = saved_rows(t)
        .into_iter()
        .filter(|r| r["error"].is_null())
        .collect();
    let mut k = keys(&rows);
    let n = k.len();
    k.dedup();
    assert_eq!(k.len(), n, "a rollout saved twice");
}

#[test]
fn the_sampling_guard_stops_a_run_of_identical_responses() {
    let t = prepared_mock(&[]);
    let mock = Mock::start(&["--gold", &gold(&t), "--identical"]);
    let base = mock.base_url_arg();
    let err = t.fails(&[
        "sample",
        "work_dir=run",
        &base,
        "sampling.identical_window=10",
    ]);
    assert!(
        err.contains(
            "10 of the first 10 prompts with two or more valid responses (100.0%) got only \
             identical responses (sampler.temperature: 0.7)"
        ),
        "{err}"
    );
    assert!(err.contains("sampling.allow_identical=true"), "{err}");
    let g = guard_record(&t, "identical");
    assert_eq!(
        (g["seen"].as_u64(), g["hits"].as_u64()),
        (Some(10), Some(10))
    );
    assert_eq!(g["fired"], true);
    // The switch lets the same work dir finish, exactly.
    sample(&t, &mock, &["sampling.allow_identical=true"]);
    finished_exactly(&t);
    // The report's health section shows the pitfall and the guard.
    t.ok(&["analyze", "run"]);
    let text = std::fs::read_to_string(t.path("run/summary/statistics.txt")).unwrap();
    assert!(
        text.contains(
            "identical responses                    26 of 26 prompts with two or more valid \
             responses (100.0%); guard: 10 of the first 10 (100.0%) against 50.0%, fired; then \
             switched off (sampling.allow_identical)"
        ),
        "{text}"
    );
    // Responses that differ pass the guard, and its figures are kept.
    let u = prepared_mock(&[]);
    let normal = Mock::start(&["--gold", &gold(&u)]);
    sample(&u, &normal, &["sampling.identical_window=10"]);
    let g = guard_record(&u, "identical");
    assert_eq!(
        (g["seen"].as_u64(), g["fired"].as_bool()),
        (Some(10), Some(false))
    );
}

#[test]
fn the_extraction_guard_stops_a_run_whose_answers_cannot_be_read() {
    let t = prepared_mock(&[]);
    let mock = Mock::start(&["--gold", &gold(&t), "--no-answer"]);
    let base = mock.base_url_arg();
    let err = t.fails(&[
        "sample",
        "work_dir=run",
        &base,
        "sampling.no_answer_window=20",
    ]);
    assert!(
        err.contains(
            "20 of the first 20 valid responses with a gold answer (100.0%) hold no answer the \
             verifier `math-rlvr` can find"
        ),
        "{err}"
    );
    assert!(
        err.contains("…I worked through the steps above and will stop here."),
        "{err}"
    );
    assert!(err.contains("sampling.allow_no_answer=true"), "{err}");
    assert_eq!(guard_record(&t, "no_answer")["fired"], true);
    sample(&t, &mock, &["sampling.allow_no_answer=true"]);
    finished_exactly(&t);
}

#[test]
fn a_window_where_nothing_passes_is_warned_about_with_what_was_read() {
    let t = prepared_mock(&["sampling.early_stop=false"]);
    let mock = Mock::start(&["--gold", &gold(&t), "--accuracy", "0"]);
    let out = t
        .cmd(&[
            "sample",
            "work_dir=run",
            &mock.base_url_arg(),
            "sampling.no_answer_window=20",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "none of the first 20 valid responses with a gold answer passed, though `math-rlvr` \
             found answers in 20 of them"
        ),
        "{err}"
    );
    assert!(err.contains("[read: "), "{err}");
}

#[test]
fn a_guard_that_passed_is_not_run_again_on_resume() {
    let t = prepared_mock(&["sampling.max_rollouts=8", "sampling.early_stop=false"]);
    let mock = Mock::start(&["--gold", &gold(&t), "--die-after", "40"]);
    // The first run dies mid-way; its guard windows were decided already.
    let base = mock.base_url_arg();
    let _ = t
        .cmd(&[
            "sample",
            "work_dir=run",
            &base,
            "sampling.no_answer_window=20",
        ])
        .output();
    let before = guard_record(&t, "no_answer");
    assert_eq!(before["fired"], false, "{before}");
    // Resumed against a server whose answers cannot be read, the extraction
    // guard, passed before, does not stop the run.
    let unreadable = Mock::start(&["--gold", &gold(&t), "--no-answer"]);
    sample(&t, &unreadable, &[]);
    finished_exactly(&t);
    assert_eq!(guard_record(&t, "no_answer"), before);
}

#[test]
fn a_reasoning_model_with_a_small_budget_is_warned_about() {
    let t = prepared_gsm8k(&[
        "shard.size=10",
        "sampler.model=deepseek-ai/DeepSeek-R1-Distill-Qwen-7B",
    ]);
    let mock = Mock::start(&[
        "--gold",
        &gold(&t),
        "--accuracy",
        "1",
        "--model",
        "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B",
    ]);
    let out = t
        .cmd(&["sample", "work_dir=run", &mock.base_url_arg()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("looks small for `deepseek-ai/DeepSeek-R1-Distill-Qwen-7B`"),
        "{err}"
    );
}

#[test]
fn retryable_faults_are_retried_until_every_request_succeeds() {
    let t = prepared_mock(&["sampling.early_stop=false", "sampling.max_rollouts=4"]);
    let mock = Mock::start(&[
        "--gold",
        &gold(&t),
        "--seed",
        "11",
        "--rate-429",
        "0.15",
        "--retry-after",
        "0.05",
        "--rate-500",
        "0.15",
        "--rate-malformed",
        "0.1",
        "--rate-drop",
        "0.1",
        "--rate-timeout",
        "0.05",
        "--fail-first",
        "3",
    ]);
    sample(
        &t,
        &mock,
        &["sampler.max_retries=20", "sampler.timeout=0.5"],
    );
    let rows = saved_rows(&t);
    assert_eq!(rows.len(), 26 * 4);
    assert!(rows.iter().all(|r| r["error"].is_null()), "{rows:?}");
    let stats = mock.stats();
    for kind in [
        "status_429",
        "status_500",
        "status_503",
        "malformed",
        "dropped",
        "timeouts",
    ] {
        assert!(
            stats[kind].as_u64().unwrap() > 0,
            "no {kind} injected: {stats}"
        );
    }
    assert_eq!(stats["ok"], 26);
}

#[test]
fn a_request_failing_every_attempt_is_recorded_with_its_attempts() {
    // 500 on every attempt: retried max_retries times, then recorded as
    // error rows; with one failed attempt allowed, every prompt is left
    // unfinished (exit status 4) and no step is used up.
    let t = prepared_mock(&["sampling.max_steps=1"]);
    let mock = Mock::start(&["--gold", &gold(&t), "--rate-500", "1"]);
    let base = mock.base_url_arg();
    let args = [
        "sample",
        "work_dir=run",
        base.as_str(),
        "sampler.retry_delay=0.01",
        "sampler.max_retries=2",
        "sampling.max_failed_attempts=1",
        "sampling.failure_window=1000",
    ];
    let out = t.cmd(&args).output().unwrap();
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    let rows = saved_rows(&t);
    assert_eq!(rows.len(), 26 * 4);
    assert!(rows.iter().all(|r| {
        r["error"]
            .as_str()
            .is_some_and(|e| e.contains("HTTP 500") && e.contains("gave up after 3 attempts"))
    }));
    assert_eq!(mock.stat("requests"), 26 * 3);
    let p = query(
        &t,
        "run",
        "SELECT sum(n_errors) AS e, sum(n_valid) AS v, sum(n_rollouts) AS r FROM prompts",
    );
    assert_eq!(p[0]["e"], 26 * 4);
    assert_eq!(p[0]["v"], 0);
    assert_eq!(p[0]["r"], 0, "a failed request is no rollout");
}

#[test]
fn the_api_key_is_sent_and_never_saved_or_logged() {
    const SECRET: &str = "sk-test-0123456789abcdef";
    /// One step of sampling with `key` in the key variable against a mock
    /// that wants SECRET; returns the test dir, the mock and stderr.
    fn sample_with_key(key: &str) -> (TestDir, Mock, String) {
        let t = prepared_mock(&["sampling.max_steps=1", "sampler.api_key_env=MOCK_API_KEY_T"]);
        let gold = gold(&t);
        let mock = Mock::start(&["--gold", &gold, "--accuracy", "1", "--require-key", SECRET]);
        let base = mock.base_url_arg();
        let args = ["sample", "work_dir=run", base.as_str()];
        let out = t.cmd(&args).env("MOCK_API_KEY_T", key).output().unwrap();
        assert_eq!(out.status.success(), key == SECRET, "{out:?}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        (t, mock, stderr)
    }

    // A wrong key: refused at preflight, and the key the server echoes
    // back is redacted from the message and the log.
    let wrong = "sk-wrong-key-that-must-not-leak";
    let (t, mock, stderr) = sample_with_key(wrong);
    assert!(
        stderr.contains("refused the API key (HTTP 401: Incorrect API key provided: ***)"),
        "{stderr}"
    );
    assert_eq!(mock.stat("requests"), 0);
    assert_eq!(mock.stat("status_401"), 1);
    let log = std::fs::read_to_string(t.path("run/logs/run.log")).unwrap();
    let config = std::fs::read_to_string(t.path("run/config.yaml")).unwrap();
    for text in [&stderr, &log, &config] {
        assert!(!text.contains(wrong) && !text.contains(SECRET), "{text}");
    }

    // The right key, as a bearer token: every request succeeds.
    let (t, mock, _) = sample_with_key(SECRET);
    let rows = saved_rows(&t);
    assert_eq!(rows.len(), 26 * 4);
    assert!(
        rows.iter()
            .all(|r| r["error"].is_null() && r["score"] == 1.0)
    );
    assert_eq!(mock.stat("status_401"), 0);
}

#[test]
fn a_dead_endpoint_is_failed_over_and_taken_out() {
    let t = prepared_mock(&[]);
    let mock = Mock::start(&["--gold", &gold(&t), "--accuracy", "1", "--latency-ms", "5"]);
    // Passes preflight, then dies at its first chat request.
    let dying = Mock::start(&["--die-after", "0"]);
    let dead_url = dying.url();
    let urls = format!("sampler.base_url=[{dead_url}, {}]", mock.url());
    t.ok(&["sample", "work_dir=run", &urls, "sampler.retry_delay=0.01"]);
    let rows = saved_rows(&t);
    assert_eq!(rows.len(), 26 * 4);
    assert!(
        rows.iter()
            .all(|r| r["error"].is_null() && r["endpoint"] == mock.url())
    );
    let log = std::fs::read_to_string(t.path("run/logs/run.log")).unwrap();
    assert!(
        log.contains(&format!(
            "endpoint {dead_url} failed 3 times in a row: taken out"
        )),
        "{log}"
    );
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn part_count(t: &TestDir) -> usize {
    let mut n = 0;
    for shard in std::fs::read_dir(t.path("run/rollout"))
        .into_iter()
        .flatten()
        .flatten()
    {
        n += std::fs::read_dir(shard.path())
            .unwrap()
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "parquet"))
            .count();
    }
    n
}

/// Settings of the resume tests: no early stop and no faults, so an
/// uninterrupted run has a known set of rows: 8 per prompt in steps 3+3+2.
const RESUME: &[&str] = &[
    "sampling.early_stop=false",
    "sampling.step_size=3",
    "sampling.concurrent_prompts=4",
];

fn expected_keys(t: &TestDir) -> Vec<(String, u64)> {
    let ids = query(t, "run", "SELECT id FROM inputs ORDER BY id");
    let mut keys: Vec<(String, u64)> = ids
        .iter()
        .flat_map(|r| (0..8).map(move |i| (r["id"].as_str().unwrap().to_string(), i)))
        .collect();
    keys.sort();
    keys
}

fn assert_complete_without_duplicates(t: &TestDir) {
    let got = keys(&saved_rows(t));
    let unique: BTreeSet<_> = got.iter().cloned().collect();
    assert_eq!(unique.len(), got.len(), "duplicate (id, rollout_idx) rows");
    assert_eq!(got, expected_keys(t));
}

#[test]
fn resume_after_sigkill_requests_exactly_what_is_missing() {
    for use_n in ["true", "false"] {
        let t = prepared_mock(RESUME);
        let mock = Mock::start(&[
            "--gold",
            &gold(&t),
            "--latency-ms",
            "30",
            "--latency-dist",
            "uniform",
        ]);
        let base = mock.base_url_arg();
        let use_n_arg = format!("sampler.use_n={use_n}");
        let args = [
            "sample",
            "work_dir=run",
            &base,
            &use_n_arg,
            "sampling.flush_rows=5",
            "sampler.concurrent_requests=4",
        ];
        let mut child = t
            .cmd(&args)
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        wait_for("a few part files", || part_count(&t) >= 4);
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        // Part files only: the rows of the killed writer's journal are
        // recovered by the next run.
        let before = saved_rows(&t).len();
        assert!(before > 0 && before < 26 * 8, "{before}");
        let requests_before = mock.stat("choices");
        t.ok(&args);
        assert_complete_without_duplicates(&t);
        // Only missing rollouts were requested again; in all, at most the
        // ones in flight when the process was killed (4 requests of at
        // most 3) were requested twice.
        let asked_after = mock.stat("choices") - requests_before;
        assert!(asked_after as usize <= 26 * 8 - before, "use_n={use_n}");
        assert!(mock.stat("choices") <= 26 * 8 + 12, "use_n={use_n}");
        assert_eq!(shard_statuses(&t), ["done", "done", "done"]);
    }
}

#[test]
fn ctrl_c_saves_what_arrived_and_the_next_run_resumes() {
    let t = prepared_mock(RESUME);
    let mock = Mock::start(&["--gold", &gold(&t), "--latency-ms", "50"]);
    let base = mock.base_url_arg();
    let args = [
        "sample",
        "work_dir=run",
        &base,
        "sampler.concurrent_requests=4",
    ];
    let child = t
        .cmd(&args)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("requests in flight", || mock.stat("requests") >= 6);
    unsafe_sigint(child.id());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(
        err.contains("interrupted") && err.contains("rsr run work_dir=run"),
        "{err}"
    );
    let saved = saved_rows(&t).len();
    assert!(saved > 0 && saved < 26 * 8, "{saved}");
    t.ok(&args);
    assert_complete_without_duplicates(&t);
}

fn unsafe_sigint(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn managed_servers_are_launched_awaited_and_stopped() {
    let t = prepared_mock(&[]);
    let out = t.ok(&[
        "run",
        "work_dir=run",
        "sampler.num_servers=2",
        "sampler.launch=rsr-mock --port {port} --gold {input} --accuracy 1 --startup-delay-ms 300",
    ]);
    assert!(out.contains("prompts       26"), "{out}");
    let rows = saved_rows(&t);
    assert_eq!(rows.len(), 26 * 4);
    let endpoints: BTreeSet<&str> = rows
        .iter()
        .map(|r| r["endpoint"].as_str().unwrap())
        .collect();
    assert_eq!(endpoints.len(), 2, "both servers served: {endpoints:?}");
    let pids = server_pids(&t);
    assert_eq!(pids.len(), 4, "start and stop lines of 2 servers");
    assert!(
        pids.iter().all(|&p| !pid_alive(p)),
        "a server was left running"
    );
    assert!(t.path("run/logs/server-0.log").is_file() && t.path("run/logs/server-1.log").is_file());
}

#[test]
fn a_server_that_dies_at_startup_is_reported_with_its_log() {
    let t = prepared_mock(&[]);
    let err = t.fails(&[
        "sample",
        "work_dir=run",
        "sampler.launch=rsr-mock --no-such-flag {port}",
    ]);
    assert!(err.contains("server 0 exited during startup"), "{err}");
    assert!(
        err.contains("--no-such-flag"),
        "the log tail is shown: {err}"
    );
    let err = t.fails(&[
        "sample",
        "work_dir=run",
        "sampler.launch=rsr-mock --port {port} --startup-delay-ms 60000",
        "sampler.startup_timeout=1",
    ]);
    assert!(err.contains("was not healthy after 1 s"), "{err}");
    assert!(server_pids(&t).iter().all(|&p| !pid_alive(p)));
}

#[test]
fn a_killed_run_takes_its_servers_down() {
    let t = prepared_mock(&[]);
    let mut child = t
        .cmd(&[
            "sample",
            "work_dir=run",
            "sampler.launch=rsr-mock --port {port} --latency-ms 60000",
        ])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the server to start", || {
        std::fs::read_to_string(t.path("run/logs/run.log")).is_ok_and(|l| l.contains("ready at"))
    });
    let pid = server_pids(&t)[0];
    assert!(pid_alive(pid));
    child.kill().unwrap();
    child.wait().unwrap();
    wait_for("the orphaned server to exit", || !pid_alive(pid));
}

#[test]
fn replayed_responses_go_through_the_same_operator() {
    let t = prepared_mock(&[
        "sampler.type=replay",
        "sampling.early_stop=false",
        "sampling.max_rollouts=4",
        "sampler.replay_path=responses.jsonl",
    ]);
    let ids = query(&t, "run", "SELECT id, answer FROM inputs ORDER BY id");
    let mut lines = String::new();
    // Two responses for each prompt but the last, which has none: one right,
    // one cut off.
    for r in &ids[..ids.len() - 1] {
        let (id, answer) = (r["id"].as_str().unwrap(), r["answer"].as_str().unwrap());
        lines += &serde_json::json!({"id": id, "response": format!("So \\boxed{{{answer}}}")})
            .to_string();
        lines += "\n";
        lines +=
            &serde_json::json!({"id": id, "response": "<think>long", "finish_reason": "length"})
                .to_string();
        lines += "\n";
    }
    std::fs::write(t.path("responses.jsonl"), lines).unwrap();
    t.ok(&["sample", "work_dir=run"]);
    let rows = saved_rows(&t);
    assert_eq!(rows.len(), 25 * 2);
    for (_, rs) in by_prompt(&rows) {
        assert_eq!(rs[0]["score"], 1.0);
        assert_eq!(rs[1]["truncated"], true);
        assert!(rs.iter().all(|r| r["endpoint"] == "replay:responses.jsonl"));
    }
    assert_eq!(shard_statuses(&t), ["done", "done", "done"]);
    // The responses were split by shard into a spill that is gone now.
    assert!(!t.path("run/.replay-spill").exists());
}

#[test]
fn missing_server_settings_are_named() {
    let t = prepared_mock(&[]);
    let err = t.fails(&["sample", "work_dir=run"]);
    assert!(err.contains("sampler.base_url is not set"), "{err}");
    // Nothing sampled yet: the server type may still change, and what it
    // needs is named.
    let err = t.fails(&["sample", "work_dir=run", "sampler.type=vllm"]);
    assert!(err.contains("sampler.model_path is not set"), "{err}");
    let t = TestDir::new();
    let input = format!("data.input_path={}", common::fixture("gsm8k_sample.jsonl"));
    let err = t.fails(&[
        "sample",
        "work_dir=run",
        &input,
        "data.preprocess.transform=gsm8k",
        "sampler.type=vllm",
        "sampler.model=m",
    ]);
    assert!(err.contains("sampler.model_path is not set"), "{err}");
}

#[test]
fn content_part_messages_reach_the_server_untouched() {
    // The mock answers right only for messages it finds in its gold file, so
    // a pass proves the image and text parts arrived as prepared.
    let t = TestDir::new();
    let input = format!("data.input_path={}", common::fixture("vision_sample.jsonl"));
    t.ok(&[
        "prepare",
        "work_dir=run",
        &input,
        "sampler.model=mock",
        "verifier.type=numeric",
    ]);
    let mock = Mock::start(&["--gold", &gold(&t), "--accuracy", "1"]);
    sample(&t, &mock, &[]);
    let rows = saved_rows(&t);
    assert_eq!(rows.len(), 2 * 4);
    assert!(rows.iter().all(|r| r["score"] == 1.0), "{rows:?}");
}

#[test]
fn llama_cpp_counts_each_choice_by_tokenizing() {
    // The mock stands in for llama-server: its usage counts one choice of n,
    // and its /tokenize counts words.
    let t = prepared_mock(&[
        "sampler.type=llama-cpp",
        "sampling.early_stop=false",
        "sampling.max_rollouts=4",
        "sampling.max_steps=1",
    ]);
    t.ok(&[
        "sample",
        "work_dir=run",
        "sampler.launch=rsr-mock --port {port} --gold {input} --usage-one-choice",
    ]);
    let rows = saved_rows(&t);
    assert_eq!(rows.len(), 26 * 4);
    for r in &rows {
        let words = r["response"].as_str().unwrap().split_whitespace().count() as u64;
        assert_eq!(r["completion_tokens"].as_u64(), Some(words), "{r}");
    }
    // Choices of one request differ in length, so the counts differ too.
    let distinct: BTreeSet<u64> = rows
        .iter()
        .map(|r| r["completion_tokens"].as_u64().unwrap())
        .collect();
    assert!(distinct.len() > 3);
}

#[test]
fn a_verifier_that_needs_gold_refuses_an_input_without_any() {
    let t = TestDir::new();
    std::fs::write(
        t.path("q.jsonl"),
        "{\"id\": \"a\", \"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], \"metadata\": {\"topic\": \"greeting\"}}\n",
    )
    .unwrap();
    let mock = Mock::start(&[]);
    let base = mock.base_url_arg();
    let err = t.fails(&[
        "run",
        "work_dir=run",
        "data.input_path=q.jsonl",
        "sampler.model=mock",
        &base,
    ]);
    assert!(
        err.contains("none of the 1 prompts in run/data/input.parquet has a gold answer")
            && err.contains("verifier math-rlvr")
            && err.contains("metadata.answer")
            && err.contains("nothing was sampled"),
        "{err}"
    );
    assert_eq!(mock.stat("requests"), 0);
    assert!(!t.path("run").exists(), "the new work dir is removed");
}

#[test]
fn settings_are_checked_before_anything_is_prepared_or_launched() {
    let t = TestDir::new();
    let input = format!("data.input_path={}", common::fixture("gsm8k_sample.jsonl"));
    let base = [
        "run",
        "work_dir=run",
        &input,
        "data.preprocess.transform=gsm8k",
    ];
    fn with<'a>(base: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        args
    }
    // A server URL but no model name: refused before preparing.
    let err = t.fails(&with(&base, &["sampler.base_url=http://127.0.0.1:9/v1"]));
    assert!(err.contains("sampler.model"), "{err}");
    assert!(!t.path("run").exists(), "no work dir left behind");
    // A server to launch without weights: the same.
    let err = t.fails(&with(&base, &["sampler.type=vllm"]));
    assert!(err.contains("sampler.model_path is not set"), "{err}");
    assert!(!t.path("run").exists());

    // rsr launches the server: the model name defaults to the GGUF stem
    // (the mock stands in for llama-server and serves that name).
    t.ok(&with(
        &base,
        &[
            "sampler.type=llama-cpp",
            "sampler.model_path=/models/smol-135m.Q4_1.gguf",
            "sampler.launch=rsr-mock --port {port} --gold {input} --model {model}",
            "sampling.max_steps=1",
        ],
    ));
    let cfg = std::fs::read_to_string(t.path("run/config.yaml")).unwrap();
    assert!(cfg.contains("model: smol-135m.Q4_1"), "{cfg}");
    assert_eq!(shard_statuses(&t), ["done"], "one shard of 1,000 prompts");

    // Run again on the finished run: nothing to sample, so no server is
    // launched (this launch command would fail) and the outputs are rebuilt.
    let out = t
        .cmd(&[
            "run",
            "work_dir=run",
            "sampler.launch=no-such-server --port {port}",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("every shard is sampled already"), "{err}");
}

#[test]
fn the_input_format_with_metadata_answer_samples_and_scores_end_to_end() {
    // {"id", "messages", "metadata": {"answer"}}: the gold reaches the
    // verifier (and the mock reads it the same way).
    let t = TestDir::new();
    let fixture = common::fixture("metadata_answer_sample.jsonl");
    let mock = Mock::start(&["--gold", &fixture, "--accuracy", "1"]);
    let input = format!("data.input_path={fixture}");
    let base = mock.base_url_arg();
    t.ok(&["run", "work_dir=run", &input, "sampler.model=mock", &base]);
    let rows = query(
        &t,
        "run",
        "SELECT id, n_pass, answer FROM prompts ORDER BY id",
    );
    let passed: Vec<(&str, u64)> = rows
        .iter()
        .map(|r| (r["id"].as_str().unwrap(), r["n_pass"].as_u64().unwrap()))
        .collect();
    // Early stop (sft) after the first step of 4, all right; 003 has no
    // gold, so nothing of it can pass.
    assert_eq!(passed, [("001", 4), ("002", 4), ("003", 0), ("004", 4)]);
}

#[test]
fn the_majority_vote_says_early_stop_cannot_end_a_prompt() {
    let t = prepared_mock(&["verifier.type=majority", "sampling.max_rollouts=8"]);
    let mock = Mock::start(&["--gold", &gold(&t)]);
    let out = t
        .cmd(&["sample", "work_dir=run", &mock.base_url_arg()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(
            "verifier majority labels a prompt from all its rollouts, so early stop cannot end a prompt"
        ),
        "{err}"
    );
    // As it says: every prompt got every rollout.
    let rows = query(&t, "run", "SELECT count(*) AS n FROM rollouts");
    assert_eq!(rows[0]["n"].as_u64(), Some(26 * 8));
}

#[test]
fn a_formatter_that_needs_every_rollout_says_so_before_sampling() {
    // multi_sft without k keeps every passing response: no prompt can stop
    // early, and the run says which formatter is why.
    let t = prepared_mock(&[
        "sampling.max_rollouts=8",
        "formatter=[{type: sft}, {type: multi_sft}]",
    ]);
    let mock = Mock::start(&["--gold", &gold(&t), "--accuracy", "1"]);
    let out = t
        .cmd(&["sample", "work_dir=run", &mock.base_url_arg()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("early stop cannot end a prompt before sampling.max_rollouts: formatter `multi_sft` keeps every passing response"),
        "{err}"
    );
    let rows = query(&t, "run", "SELECT count(*) AS n FROM rollouts");
    assert_eq!(rows[0]["n"].as_u64(), Some(26 * 8));
}
