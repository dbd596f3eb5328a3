//! A judge asked while sampling, through the binary against two `rsr-mock`
//! servers (one samples, one judges): early stop on judge verdicts, the
//! same scores files as a later `rsr verify`, exact resume after kill -9,
//! a judge server that dies, a budget cap reached by judge spending, and
//! the pending-verdict bound holding the sampler.

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use arrow::array::AsArray;
use common::mock::Mock;
use common::{TestDir, gold, prepared_mock, query, read_parquet, shard_statuses};

fn count(rows: &[serde_json::Value], key: &str) -> u64 {
    rows[0][key].as_u64().unwrap()
}

fn lines(t: &TestDir, rel: &str) -> usize {
    std::fs::read_to_string(t.path(rel))
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

/// Distinct request keys in the judge cache of `run/`: what was asked.
fn cached_keys(t: &TestDir) -> u64 {
    cached_keys_of(t, "run")
}

/// The chat prompts with the rubric judge and sft + dpo, sampled from
/// `sampler` and judged by `judge`, into `t`'s `dir`.
fn chat_run(t: &TestDir, dir: &str, sampler: &Mock, judge: &Mock, extra: &[&str]) -> String {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/chat.yaml");
    let input = format!("data.input_path={}", common::fixture("chat_prompts.jsonl"));
    let work_dir = format!("work_dir={dir}");
    let judge_url = format!("judge.base_url={}", judge.url());
    let mut args = vec![
        "run",
        "--config",
        config.to_str().unwrap(),
        &work_dir,
        &input,
        "sampler.model=mock",
        "judge.model=mock",
        &judge_url,
    ];
    let base = sampler.base_url_arg();
    args.push(&base);
    args.extend_from_slice(extra);
    let out = t.cmd(&args).output().unwrap();
    common::assert_success(&out, &args);
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_judged_chat_run_stops_prompts_early_for_the_same_rows_and_verify_asks_nothing_again() {
    let t = TestDir::new();
    let (fixed_sampler, fixed_judge) = (Mock::start(&[]), Mock::start(&[]));
    // Seeded requests: a request is answered the same in both runs, and
    // the judge rates a reply the same, so early stop (which only stops a
    // prompt that has its best-of-N pass and its pair) keeps exactly the
    // rows a fixed-N run keeps, from fewer requests.
    chat_run(
        &t,
        "fixed",
        &fixed_sampler,
        &fixed_judge,
        &["sampling.early_stop=false", "sampler.seed=11"],
    );
    let (sampler, judge) = (Mock::start(&[]), Mock::start(&[]));
    let log = chat_run(&t, "early", &sampler, &judge, &["sampler.seed=11"]);
    assert!(log.contains("judged while sampling"), "{log}");
    // Fixed N: 12 prompts x 4 steps of n=2.
    assert_eq!(fixed_sampler.stat("requests"), 48);
    let early = sampler.stat("requests");
    assert!(
        early < 48,
        "early stop sent {early} of 48 sampling requests"
    );
    for f in ["sft", "dpo"] {
        let (a, b) = (
            lines(&t, &format!("fixed/train/{f}.jsonl")),
            lines(&t, &format!("early/train/{f}.jsonl")),
        );
        assert!(a == b && b > 0, "{f}: {b} rows early, {a} fixed");
    }
    // The rollouts early stop kept are the fixed run's, word for word.
    let kept = |dir: &str| {
        query(
            &t,
            dir,
            "SELECT id, rollout_idx, response FROM rollouts ORDER BY id, rollout_idx",
        )
    };
    let fixed_rows = kept("fixed");
    for row in kept("early") {
        assert!(fixed_rows.contains(&row), "{row}");
    }
    // Every rollout has its verdict in scores/llm-judge/, as rsr verify
    // writes it, and the run's verdicts were the policy's.
    let rows = query(
        &t,
        "early",
        "SELECT count(*) AS n, count(score) AS rated, count(judge_raw) AS raw, \
                count(judge_latency_ms) AS lat FROM scores WHERE verifier = 'llm-judge'",
    );
    let n = count(&rows, "n");
    assert_eq!(n, early * 2);
    assert_eq!(
        (
            count(&rows, "rated"),
            count(&rows, "raw"),
            count(&rows, "lat")
        ),
        (n, n, n)
    );
    // A later rsr verify with the same label asks nothing.
    let asked = judge.stat("judge_requests");
    assert_eq!(asked, cached_keys_of(&t, "early"));
    let args = [
        "verify",
        "early",
        "verifier.type=llm-judge",
        "verifier.options.template=rubric",
        "judge.model=mock",
    ];
    let judge_url = format!("judge.base_url={}", judge.url());
    let mut with_url = args.to_vec();
    with_url.push(&judge_url);
    let out = t.ok(&with_url);
    assert_eq!(judge.stat("judge_requests"), asked, "{out}");
}

#[test]
fn a_reward_model_run_stops_a_prompt_once_a_reward_passes_and_two_are_min_margin_apart() {
    let t = TestDir::new();
    let (sampler, judge) = (Mock::start(&[]), Mock::start(&[]));
    chat_run(
        &t,
        "rw",
        &sampler,
        &judge,
        &[
            "verifier.type=reward-model",
            "verifier.options={api: openrlhf}",
            "formatter=[{type: sft}, {type: dpo, pass_threshold: -1.0e9, fail_threshold: 1.0e9, min_margin: 0.5}]",
        ],
    );
    assert!(judge.stat("reward_items") > 0);
    // Raw rewards: a prompt that stopped before 8 replies had one rewarded
    // 0 or more and two 0.5 apart; one that went on never had both before
    // its last step.
    let rows = query(
        &t,
        "rw",
        "SELECT id, count(*) AS n, max(score) AS hi, min(score) AS lo FROM scores \
         WHERE verifier = 'reward-model' GROUP BY id",
    );
    let mut early = 0;
    for r in &rows {
        let (n, hi, lo) = (
            r["n"].as_u64().unwrap(),
            r["hi"].as_f64().unwrap(),
            r["lo"].as_f64().unwrap(),
        );
        if n < 8 {
            early += 1;
            assert!(hi >= 0.0 && hi - lo >= 0.5, "{r}");
        }
    }
    assert!(early > 0, "{rows:?}");
    assert!(lines(&t, "rw/train/dpo.jsonl") > 0);
}

fn cached_keys_of(t: &TestDir, dir: &str) -> u64 {
    let mut keys = HashSet::new();
    for shard in std::fs::read_dir(t.path(&format!("{dir}/judge")))
        .into_iter()
        .flatten()
        .flatten()
    {
        for part in std::fs::read_dir(shard.path()).unwrap().flatten() {
            let path = part.path();
            if path.extension().is_some_and(|e| e == "parquet") {
                let batch = read_parquet(&path);
                let col = batch.column_by_name("key").unwrap().as_string::<i32>();
                keys.extend(col.iter().flatten().map(str::to_string));
            }
        }
    }
    keys.len() as u64
}

/// The GSM8K sample (26 prompts, 3 shards) prepared for a correctness
/// judge with early stop, and a sampler mock answering from its gold.
fn judged_math(sampler_args: &[&str], extra: &[&str]) -> (TestDir, Mock) {
    let mut args = vec![
        "verifier.type=llm-judge",
        "sampling.step_size=2",
        "sampling.max_rollouts=8",
    ];
    args.extend_from_slice(extra);
    let t = prepared_mock(&args);
    let g = gold(&t);
    let mut margs = vec!["--gold", g.as_str()];
    margs.extend_from_slice(sampler_args);
    (t, Mock::start(&margs))
}

fn sample_args(sampler: &Mock, judge: &Mock, extra: &[&str]) -> Vec<String> {
    let mut args = vec![
        "sample".to_string(),
        "work_dir=run".into(),
        sampler.base_url_arg(),
        format!("judge.base_url={}", judge.url()),
        "judge.model=mock".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn refs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// Rows of `run/` per (id, rollout_idx) written more than once, and rows.
fn rollouts(t: &TestDir) -> (u64, u64) {
    let rows = query(
        t,
        "run",
        "SELECT count(*) AS n, count(DISTINCT id || '/' || CAST(rollout_idx AS VARCHAR)) AS d \
         FROM rollouts WHERE error IS NULL",
    );
    (count(&rows, "n"), count(&rows, "d"))
}

#[test]
fn kill_9_while_sampling_and_judging_then_resume_asks_nothing_twice_beyond_what_was_in_flight() {
    let (t, sampler) = judged_math(&["--latency-ms", "60"], &[]);
    let judge = Mock::start(&["--latency-ms", "120", "--judge-accuracy", "1"]);
    let args = sample_args(
        &sampler,
        &judge,
        &[
            "sampler.concurrent_requests=4",
            "judge.concurrent_requests=3",
        ],
    );
    // Two kills at different points: both sides have requests in flight.
    for at in [6, 20] {
        let mut child = t
            .cmd(&refs(&args))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while judge.stat("judge_requests") < at && started.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(10));
        }
        child.kill().unwrap();
        child.wait().unwrap();
    }
    assert_ne!(shard_statuses(&t), ["done", "done", "done"]);
    t.ok(&refs(&args));
    assert_eq!(shard_statuses(&t), ["done", "done", "done"]);
    // Sampling: every response served was saved, but those in flight at a
    // kill (4 requests of n=2 each time).
    let (rows, distinct) = rollouts(&t);
    assert_eq!(rows, distinct, "a rollout was written twice");
    let served = sampler.stat("choices");
    assert!(
        served >= rows && served <= rows + 2 * 4 * 2,
        "{served} responses served for {rows} saved"
    );
    // Judging: every request asked is in the cache, but those in flight at
    // a kill (3 each time).
    let asked = judge.stat("judge_requests");
    let kept = cached_keys(&t);
    assert!(
        asked >= kept && asked <= kept + 2 * 3,
        "{asked} judge requests for {kept} answers kept"
    );
    // Every rollout has its verdict.
    let scored = query(
        &t,
        "run",
        "SELECT count(*) AS n, count(score) AS s FROM scores WHERE verifier = 'llm-judge'",
    );
    assert_eq!(count(&scored, "n"), rows);
    assert_eq!(count(&scored, "s"), rows);
    // Early stop on the judge's verdicts: a prompt that passed stopped.
    let per_prompt = query(
        &t,
        "run",
        "SELECT max(n) AS most, min(n) AS least FROM \
         (SELECT id, count(*) AS n FROM rollouts GROUP BY id)",
    );
    assert!(count(&per_prompt, "least") <= 2, "{per_prompt:?}");
}

#[test]
fn a_judge_that_dies_stops_the_run_with_exit_3_naming_it_and_resume_finishes() {
    let (t, sampler) = judged_math(&["--latency-ms", "5"], &[]);
    let dying = Mock::start(&["--die-after", "10"]);
    let args = sample_args(
        &sampler,
        &dying,
        &["judge.max_retries=1", "judge.retry_delay=0"],
    );
    let out = t.cmd(&refs(&args)).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("the judge (mock) is failing") && err.contains("Connection refused"),
        "{err}"
    );
    assert_ne!(shard_statuses(&t), ["done", "done", "done"]);
    // A judge is back (another address): the run finishes; what the dead
    // one answered is not asked again.
    let answered_before = cached_keys(&t);
    assert!(
        answered_before > 0 && answered_before <= 10,
        "{answered_before} answers kept of the dying judge's 10\n{err}"
    );
    let judge = Mock::start(&[]);
    let args = sample_args(&sampler, &judge, &[]);
    t.ok(&refs(&args));
    assert_eq!(shard_statuses(&t), ["done", "done", "done"]);
    assert_eq!(
        judge.stat("judge_requests"),
        cached_keys(&t) - answered_before
    );
}

#[test]
fn a_cost_cap_reached_by_judge_spending_stops_with_exit_5_and_a_raised_cap_finishes() {
    let (t, sampler) = judged_math(&[], &[]);
    let judge = Mock::start(&[]);
    // The sampler is free (no sampling prices); the judge costs $1 per
    // million tokens, up to ~300 + 100 per request.
    let capped = sample_args(
        &sampler,
        &judge,
        &[
            "judge.max_tokens=100",
            "pricing.judge_input=1",
            "pricing.judge_output=1",
            "budget.max_cost=0.004",
        ],
    );
    let out = t.cmd(&refs(&capped)).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{err}");
    assert!(
        err.contains("next judge request could cost") && err.contains("budget.max_cost"),
        "{err}"
    );
    let asked = judge.stat("judge_requests");
    assert!(asked > 0, "{err}");
    assert_ne!(shard_statuses(&t), ["done", "done", "done"]);
    let mut raised = capped.clone();
    *raised.last_mut().unwrap() = "budget.max_cost=1".into();
    t.ok(&refs(&raised));
    assert_eq!(shard_statuses(&t), ["done", "done", "done"]);
    // Nothing asked twice: the answers received before the stop were kept.
    assert_eq!(judge.stat("judge_requests"), cached_keys(&t));
}

#[test]
fn a_slow_judge_holds_the_sampler_at_the_pending_verdict_bound() {
    let (t, sampler) = judged_math(&[], &["sampling.early_stop=false"]);
    let judge = Mock::start(&["--latency-ms", "1000"]);
    let args = sample_args(
        &sampler,
        &judge,
        &[
            "sampling.max_pending_verdicts=4",
            "judge.concurrent_requests=1",
            "sampler.concurrent_requests=2",
        ],
    );
    let mut child = t
        .cmd(&refs(&args))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Sampling answers at once, the judge one request a second. Without
    // the bound the first step of every prompt goes out at once (26 x 2
    // responses); with it, no request leaves while 4 rollouts wait, so the
    // sampler is at most 3 + 2 requests of n=2 ahead of the verdicts, and
    // by 1.5 s at most one judge answer (one prompt's 8 rollouts at most)
    // has come back.
    let started = Instant::now();
    while sampler.stat("choices") == 0 && started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(1500));
    let served = sampler.stat("choices");
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        (2..=3 + 2 * 2 + 8).contains(&served),
        "{served} responses sampled while the judge answered {}",
        judge.stat("judge_requests")
    );
}
