//! Sampling through the batch APIs, through the binary against `rsr-mock`
//! speaking OpenAI's Files + Batches and Anthropic's Message Batches: the
//! same rows as an online run, early stop between rounds, a kill at every
//! step resumed without a batch created or a request run twice, expired
//! batches, batches split under the size limit, a batch the provider
//! rejects, and cancel.

mod common;

use std::collections::BTreeSet;
use std::os::unix::process::ExitStatusExt;

use common::mock::Mock;
use common::{TestDir, gold, prepared_mock, query, shard_statuses};

/// The sampler tests' run (26 GSM8K prompts, 3 shards), seeded, sampled up
/// to 8 rollouts in steps of 2 and stopping a prompt at its first pass.
fn prepared() -> TestDir {
    prepared_mock(&[
        "sampling.step_size=2",
        "sampling.max_rollouts=8",
        "sampler.seed=5",
    ])
}

fn batch_args(mock: &Mock, api: &str, extra: &[&str]) -> Vec<String> {
    let mut args = vec![
        "sample".to_string(),
        "work_dir=run".into(),
        mock.base_url_arg(),
        "sampler.mode=batch".into(),
        format!("sampler.batch.api={api}"),
        "sampler.batch.poll_interval=0.05".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// `rsr sample` through `api`'s batches, asserted to succeed: its stderr.
fn sample_in_batches(t: &TestDir, mock: &Mock, api: &str) -> String {
    let out = t.cmd(&refs(&batch_args(mock, api, &[]))).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{api}: {err}");
    err
}

fn refs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// Every saved rollout of `run/` as (id, rollout_idx, response).
fn rows(t: &TestDir) -> BTreeSet<String> {
    query(
        t,
        "run",
        "SELECT id, rollout_idx, response FROM rollouts WHERE error IS NULL",
    )
    .into_iter()
    .map(|r| r.to_string())
    .collect()
}

/// Checks the early-stop policy on every prompt of `run/`: a prompt that
/// stopped before 8 rollouts passed in its last step and not before; one
/// that never passed has 8; no rollout was saved twice. (Anthropic has no
/// seed, so its rows cannot equal an online run's: the policy can.)
fn assert_policy(t: &TestDir, context: &str) {
    let per_prompt = query(
        t,
        "run",
        "SELECT id, count(*) AS n, count(DISTINCT rollout_idx) AS d, max(step) AS last, \
                min(CASE WHEN score >= 1 THEN step END) AS first_pass \
         FROM results WHERE error IS NULL GROUP BY id",
    );
    assert_eq!(per_prompt.len(), 26, "{context}");
    for p in per_prompt {
        assert_eq!(p["n"], p["d"], "{context}: {p}");
        if p["first_pass"].is_null() {
            assert_eq!(p["n"], 8, "{context}: {p}");
        } else {
            assert_eq!(p["first_pass"], p["last"], "{context}: {p}");
        }
    }
}

/// The ledger's log entries of one kind.
fn entries(t: &TestDir, event: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(t.path("run/batch/log.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["event"] == event)
        .collect()
}

/// Requests per round, from the intents.
fn rounds(t: &TestDir) -> Vec<u64> {
    let mut per: Vec<u64> = Vec::new();
    for e in entries(t, "intent") {
        let r = e["round"].as_u64().unwrap() as usize;
        if per.len() < r {
            per.resize(r, 0);
        }
        per[r - 1] += e["requests"].as_u64().unwrap();
    }
    per
}

/// The online run of the same prompts and seeds: its rows.
fn online_rows(extra: &[&str]) -> BTreeSet<String> {
    let t = prepared();
    let mock = Mock::start(&["--gold", &gold(&t)]);
    let mut args = vec!["sample", "work_dir=run"];
    let base = mock.base_url_arg();
    args.push(&base);
    args.extend_from_slice(extra);
    t.ok(&args);
    rows(&t)
}

#[test]
fn an_openai_batch_run_keeps_the_online_rows_and_stops_prompts_between_rounds() {
    let t = prepared();
    let mock = Mock::start(&["--gold", &gold(&t), "--batch-seconds", "0.2"]);
    let err = sample_in_batches(&t, &mock, "openai");
    assert_eq!(shard_statuses(&t), ["done", "done", "done"]);
    assert_eq!(rows(&t), online_rows(&[]), "{err}");
    // Round 1 asks every prompt; later rounds only those still sampling.
    let per_round = rounds(&t);
    assert_eq!(per_round[0], 26, "{per_round:?}");
    assert!(per_round.len() >= 2 && per_round[1] < 26, "{per_round:?}");
    let asked: u64 = per_round.iter().sum();
    assert!(asked < 26 * 4, "{per_round:?}: no fewer than a fixed-N run");
    // One upload and one batch per batch in the ledger, each request run once.
    let batches = entries(&t, "intent").len() as u64;
    assert_eq!(mock.stat("batch_uploads"), batches);
    assert_eq!(mock.stat("batches_created"), batches);
    assert_eq!(mock.stat("batch_requests"), asked);
    assert_eq!(mock.stat("requests"), asked);
    // What was spent is shown at the batch price, with the online one.
    let analysis = t.ok(&["analyze", "run", "pricing.input=1", "pricing.output=2"]);
    assert!(
        analysis.contains("at batch prices (50% of pricing.*;"),
        "{analysis}"
    );
    // custom_ids are short and safe.
    let map = std::fs::read_to_string(t.path("run/batch/requests/b000001.map.jsonl")).unwrap();
    for line in map.lines() {
        let id = serde_json::from_str::<serde_json::Value>(line).unwrap()["custom_id"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            id.len() <= 64
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{id}"
        );
    }
}

#[test]
fn an_anthropic_batch_run_keeps_the_online_rows_of_one_response_per_request() {
    let t = prepared();
    let mock = Mock::start(&["--gold", &gold(&t), "--batch-seconds", "0.2"]);
    let err = sample_in_batches(&t, &mock, "anthropic");
    assert_policy(&t, &err);
    let per_round = rounds(&t);
    assert_eq!(
        per_round[0], 52,
        "two requests of n=1 per prompt in round 1"
    );
    assert!(per_round[1] < 52, "{per_round:?}");
    let asked: u64 = per_round.iter().sum();
    assert_eq!(mock.stat("batch_requests"), asked);
    assert_eq!(rows(&t).len() as u64, asked);
    assert_eq!(mock.stat("batch_uploads"), 0);
    assert_eq!(
        mock.stat("batches_created"),
        entries(&t, "intent").len() as u64
    );
}

/// A kill at `point`, then a resume: the rows of an uninterrupted run, no
/// batch created twice, no request run twice.
fn killed_at(api: &str, point: &str) {
    let t = prepared();
    let mock = Mock::start(&["--gold", &gold(&t), "--batch-seconds", "0.3"]);
    let args = batch_args(&mock, api, &[]);
    let out = t
        .cmd(&refs(&args))
        .env("FAILPOINTS", point)
        .output()
        .unwrap();
    assert_eq!(
        out.status.signal(),
        Some(9),
        "{point}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = t.cmd(&refs(&args)).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{point}: {err}");
    assert_eq!(shard_statuses(&t), ["done", "done", "done"], "{point}");
    if api == "anthropic" {
        assert_policy(&t, &format!("{point}: {err}"));
    } else {
        assert_eq!(rows(&t), online_rows(&[]), "{point}: {err}");
    }
    let intents = entries(&t, "intent");
    let asked: u64 = intents
        .iter()
        .map(|e| e["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(
        mock.stat("batches_created"),
        intents.len() as u64,
        "{point}: {err}"
    );
    assert_eq!(mock.stat("batch_requests"), asked, "{point}: {err}");
    if api == "openai" {
        assert_eq!(
            mock.stat("batch_uploads"),
            intents.len() as u64,
            "{point}: {err}"
        );
    }
}

#[test]
fn a_kill_at_every_step_of_an_openai_batch_resumes_without_paying_twice() {
    for point in [
        "batch-after-intent",
        "batch-after-upload",
        "batch-after-create",
        "batch-polling",
        "batch-download",
        "batch-ingest",
    ] {
        killed_at("openai", point);
    }
}

#[test]
fn a_kill_at_every_step_of_an_anthropic_batch_resumes_without_paying_twice() {
    for point in [
        "batch-after-intent",
        "batch-after-create",
        "batch-polling",
        "batch-download",
        "batch-ingest",
    ] {
        killed_at("anthropic", point);
    }
}

#[test]
fn an_expired_batch_keeps_what_ran_and_the_rest_goes_into_the_next_round() {
    for api in ["openai", "anthropic"] {
        let t = prepared();
        let mock = Mock::start(&[
            "--gold",
            &gold(&t),
            "--batch-seconds",
            "0.2",
            "--batch-expire-after",
            "13",
        ]);
        let err = sample_in_batches(&t, &mock, api);
        assert!(
            err.contains("expired):") && err.contains("they go into the next round"),
            "{err}"
        );
        // What ran was kept: every request ran once, however many batches.
        let kept = rows(&t);
        if api == "anthropic" {
            assert_policy(&t, &err);
            assert_eq!(mock.stat("batch_requests"), kept.len() as u64, "{err}");
        } else {
            assert_eq!(kept, online_rows(&[]), "{err}");
            assert_eq!(mock.stat("batch_requests"), kept.len() as u64 / 2, "{err}");
        }
    }
}

#[test]
fn a_round_over_the_size_limit_is_split_and_a_rejected_batch_stops_with_the_providers_word() {
    let t = prepared();
    let mock = Mock::start(&[
        "--gold",
        &gold(&t),
        "--batch-seconds",
        "0.1",
        "--batch-max-requests",
        "10",
    ]);
    t.ok(&refs(&batch_args(
        &mock,
        "openai",
        &["sampler.batch.max_requests=10"],
    )));
    let first: Vec<u64> = entries(&t, "intent")
        .iter()
        .filter(|e| e["round"] == 1)
        .map(|e| e["requests"].as_u64().unwrap())
        .collect();
    assert_eq!(first, [10, 10, 6]);
    assert_eq!(rows(&t), online_rows(&[]));

    // The provider's enqueued-token limit fails validation.
    let t = prepared();
    let mock = Mock::start(&[
        "--gold",
        &gold(&t),
        "--batch-seconds",
        "0.1",
        "--batch-max-enqueued-tokens",
        "1000",
    ]);
    let out = t
        .cmd(&refs(&batch_args(&mock, "openai", &[])))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("Enqueued token limit reached")
            && err.contains("lower sampler.batch.max_requests"),
        "{err}"
    );
    assert_ne!(shard_statuses(&t), ["done", "done", "done"]);
}

#[test]
fn status_shows_a_running_batch_and_cancel_keeps_what_it_finished() {
    let t = prepared();
    let mock = Mock::start(&["--gold", &gold(&t), "--batch-seconds", "2"]);
    let args = batch_args(&mock, "openai", &[]);
    let mut child = t
        .cmd(&refs(&args))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while entries(&t, "created").is_empty() {
        assert!(started.elapsed().as_secs() < 30, "no batch was created");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(600));
    child.kill().unwrap();
    child.wait().unwrap();
    let status = t.ok(&["batch", "status", "run"]);
    assert!(
        status.contains("b000001") && status.contains("in_progress"),
        "{status}"
    );
    assert!(
        status.contains("1 batch(es) in 1 round(s): 26 requests"),
        "{status}"
    );
    let cancelled = t.ok(&["batch", "cancel", "run"]);
    assert!(
        cancelled.contains("cancel asked for 1 batch(es)"),
        "{cancelled}"
    );
    assert_eq!(mock.stat("batch_cancels"), 1);
    // The resume collects what the cancelled batch ran, asks the rest again.
    let out = t.cmd(&refs(&args)).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("ended (cancelled) with") && err.contains("no result"),
        "{err}"
    );
    assert_eq!(rows(&t), online_rows(&[]), "{err}");
    assert_eq!(
        mock.stat("batch_requests"),
        rows(&t).len() as u64 / 2,
        "{err}"
    );
    let status = t.ok(&["batch", "status", "run"]);
    assert!(status.contains("cancelled"), "{status}");
}

/// Runs an exported request file against the mock as `vllm run-batch`
/// would, writing OpenAI batch output lines.
fn run_by_hand(mock: &Mock, requests: &std::path::Path, results: &std::path::Path) {
    let mut out = String::new();
    for (i, line) in std::fs::read_to_string(requests)
        .unwrap()
        .lines()
        .enumerate()
    {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["url"], "/v1/chat/completions");
        let (status, body) = mock.chat(&v["body"].to_string());
        out.push_str(
            &serde_json::json!({
                "id": format!("vllm-{i}"), "custom_id": v["custom_id"],
                "response": {"status_code": status, "body": body}, "error": null,
            })
            .to_string(),
        );
        out.push('\n');
    }
    std::fs::write(results, out).unwrap();
}

#[test]
fn rounds_exported_to_files_and_imported_back_give_the_online_rows() {
    let t = prepared();
    let mock = Mock::start(&["--gold", &gold(&t)]);
    let mut rounds_run = 0;
    loop {
        let out = t.ok(&["batch", "export", "run", "-o", "requests.jsonl"]);
        if out.contains("nothing to export") {
            break;
        }
        rounds_run += 1;
        assert!(out.contains(&format!("round {rounds_run}:")), "{out}");
        assert!(out.contains("rsr batch import run results.jsonl"), "{out}");
        run_by_hand(&mock, &t.path("requests.jsonl"), &t.path("results.jsonl"));
        let out = t.ok(&["batch", "import", "run", "results.jsonl"]);
        assert!(out.contains("imported"), "{out}");
        // The same results twice are refused.
        let again = t.fails(&["batch", "import", "run", "results.jsonl"]);
        assert!(again.contains("was imported already"), "{again}");
        if out.contains("every prompt is sampled") {
            break;
        }
        assert!(rounds_run < 5, "{out}");
    }
    assert!(rounds_run >= 2, "early stop needs a second round here");
    assert_eq!(shard_statuses(&t), ["done", "done", "done"]);
    assert_eq!(rows(&t), online_rows(&[]));
    // Every request ran once; a pause at an export wrote no failed rollout.
    assert_eq!(mock.stat("requests") * 2, rows(&t).len() as u64);
    let failed = query(
        &t,
        "run",
        "SELECT count(*) AS n FROM rollouts WHERE error IS NOT NULL",
    );
    assert_eq!(failed[0]["n"], 0);
    let status = t.ok(&["batch", "status", "run"]);
    assert!(status.contains("results, ingested"), "{status}");
}

#[test]
fn a_refused_key_fails_before_anything_is_submitted_and_is_never_printed() {
    let t = prepared();
    let mock = Mock::start(&["--gold", &gold(&t), "--require-key", "sk-right"]);
    let args = batch_args(&mock, "openai", &["sampler.api_key_env=BATCH_TEST_KEY"]);
    let out = t
        .cmd(&refs(&args))
        .env("BATCH_TEST_KEY", "sk-wrong-1234")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("HTTP 401") && err.contains("BATCH_TEST_KEY"),
        "{err}"
    );
    assert!(!err.contains("sk-wrong-1234"), "{err}");
    assert_eq!(mock.stat("batches_created"), 0);
    assert_eq!(mock.stat("batch_uploads"), 0);
}

#[test]
fn a_judge_through_batches_scores_every_rollout_and_a_kill_costs_no_second_batch() {
    let t = prepared();
    let sampler = Mock::start(&["--gold", &gold(&t)]);
    let mut sample = vec!["sample", "work_dir=run"];
    let base = sampler.base_url_arg();
    sample.push(&base);
    t.ok(&sample);
    let judge = Mock::start(&["--gold", &gold(&t), "--batch-seconds", "0.2"]);
    let judge_url = format!("judge.base_url={}", judge.url());
    let verify = [
        "verify",
        "run",
        "verifier.type=llm-judge",
        "judge.model=mock",
        &judge_url,
        "judge.mode=batch",
        "judge.batch.poll_interval=0.05",
    ];
    let out = t
        .cmd(&verify)
        .env("FAILPOINTS", "batch-after-create")
        .output()
        .unwrap();
    assert_eq!(
        out.status.signal(),
        Some(9),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = t.ok(&verify);
    let rollouts = rows(&t).len() as u64;
    let scored = query(
        &t,
        "run",
        "SELECT count(*) AS n, count(score) AS s FROM scores WHERE verifier = 'llm-judge'",
    );
    assert_eq!(scored[0]["n"], rollouts, "{log}");
    assert_eq!(scored[0]["s"], rollouts, "{log}");
    // One batch, found again after the kill; every request run once, none
    // sent online.
    let intents: Vec<serde_json::Value> =
        std::fs::read_to_string(t.path("run/judge/batch/log.jsonl"))
            .unwrap()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|e| e["event"] == "intent")
            .collect();
    let asked: u64 = intents
        .iter()
        .map(|e| e["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(judge.stat("batches_created"), intents.len() as u64);
    assert_eq!(judge.stat("batch_requests"), asked);
    assert_eq!(judge.stat("requests"), asked, "nothing asked online");
    assert_eq!(judge.stat("judge_requests"), asked);
    // Judging again asks nothing.
    t.ok(&verify);
    assert_eq!(judge.stat("batches_created"), intents.len() as u64);
    assert_eq!(judge.stat("requests"), asked);
}

#[test]
fn a_budget_caps_what_a_round_sends_and_a_raised_cap_finishes() {
    let t = prepared();
    let mock = Mock::start(&["--gold", &gold(&t), "--batch-seconds", "0.1"]);
    let capped = batch_args(&mock, "openai", &["budget.max_requests=30"]);
    let out = t.cmd(&refs(&capped)).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{err}");
    assert!(err.contains("budget.max_requests"), "{err}");
    // Never more than the cap was submitted.
    assert_eq!(rounds(&t).iter().sum::<u64>(), 30, "{:?}", rounds(&t));
    assert_eq!(mock.stat("batch_requests"), 30);
    let raised = batch_args(&mock, "openai", &["budget.max_requests=1000"]);
    t.ok(&refs(&raised));
    assert_eq!(shard_statuses(&t), ["done", "done", "done"]);
    assert_eq!(rows(&t), online_rows(&[]));
}
