//! Verifiers that call a model, through the binary against `rsr-mock` as
//! the judge: `llm-judge` (verdicts, logprobs, unparseable answers),
//! `mcq-llm-as-judge`, `reward-model` in every API shape, the judged
//! requests never sent twice (also across a kill -9), faults on the judge
//! server, the disagreement view, reward-ranked SFT/DPO rows, and `rsr run`
//! on prompts without gold answers.

mod common;

use std::collections::HashMap;
use std::process::Stdio;
use std::time::Duration;

use common::mock::Mock;
use common::{TestDir, gold, prepared_mock, query};
use serde_json::Value;

/// The GSM8K sample sampled from the mock (4 rollouts per prompt, right
/// with a per-prompt probability), and the mock, which also judges.
fn sampled(mock_args: &[&str]) -> (TestDir, Mock) {
    let t = prepared_mock(&["sampling.max_rollouts=4", "sampling.early_stop=false"]);
    let g = gold(&t);
    let mut args = vec!["--gold", g.as_str()];
    args.extend_from_slice(mock_args);
    let mock = Mock::start(&args);
    t.ok(&["sample", "work_dir=run", &mock.base_url_arg()]);
    (t, mock)
}

fn judge_args(mock: &Mock) -> [String; 2] {
    [
        format!("judge.base_url={}", mock.url()),
        "judge.model=mock".to_string(),
    ]
}

fn verify(t: &TestDir, mock: &Mock, extra: &[&str]) -> String {
    let [url, model] = judge_args(mock);
    let mut args = vec!["verify", "run", url.as_str(), model.as_str()];
    args.extend_from_slice(extra);
    let out = t.cmd(&args).output().unwrap();
    common::assert_success(&out, &args);
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Distinct final answers among the valid rollouts: what a correctness
/// judge is asked (identical final answers are one request).
fn distinct_final_answers(t: &TestDir) -> u64 {
    let rows = query(
        t,
        "run",
        "SELECT count(DISTINCT r.id || '|' || regexp_replace(r.response, '(?s)^.*</think>', '')) AS n \
         FROM rollouts r WHERE r.error IS NULL",
    );
    rows[0]["n"].as_u64().unwrap()
}

fn count(rows: &[Value], key: &str) -> u64 {
    rows[0][key].as_u64().unwrap()
}

#[test]
fn llm_judge_scores_every_rollout_once_and_keeps_its_answers() {
    let (t, mock) = sampled(&["--judge-accuracy", "0.8", "--judge-garbage", "0.1"]);
    let log = verify(&t, &mock, &["verifier.type=llm-judge"]);
    let asked = mock.stat("judge_requests");
    assert_eq!(asked, distinct_final_answers(&t), "{log}");
    assert!(t.path("run/scores/llm-judge/shard_0000.parquet").is_file());
    let rows = query(
        &t,
        "run",
        "SELECT outcome, count(*) AS n, min(score) AS lo, max(score) AS hi, \
                count(judge_raw) AS raw, sum(judge_prompt_tokens) AS tokens \
         FROM scores WHERE verifier = 'llm-judge' GROUP BY outcome ORDER BY outcome",
    );
    let by: HashMap<&str, &Value> = rows
        .iter()
        .map(|r| (r["outcome"].as_str().unwrap(), r))
        .collect();
    let judged = by["judged"];
    assert_eq!(
        (judged["lo"].as_f64(), judged["hi"].as_f64()),
        (Some(0.0), Some(1.0))
    );
    assert!(judged["tokens"].as_u64().unwrap() > 0);
    // Garbage answers are counted and kept, with no score.
    let unparsed = by["unparsed"];
    assert!(unparsed["n"].as_u64().unwrap() > 0, "{rows:?}");
    assert_eq!(unparsed["raw"], unparsed["n"]);
    assert!(unparsed["hi"].is_null());
    assert!(log.contains("could not be read"), "{log}");
    let total: u64 = rows.iter().map(|r| r["n"].as_u64().unwrap()).sum();
    assert_eq!(total, 26 * 4);

    // Again, and with another label: nothing is sent, the verdicts are equal.
    let again = verify(&t, &mock, &["verifier.type=llm-judge", "verifier.label=j2"]);
    assert_eq!(mock.stat("judge_requests"), asked, "{again}");
    let diff = query(
        &t,
        "run",
        "SELECT count(*) AS n FROM scores a JOIN scores b \
           ON a.id = b.id AND a.rollout_idx = b.rollout_idx \
         WHERE a.verifier = 'llm-judge' AND b.verifier = 'j2' \
           AND (a.score <> b.score OR (a.score IS NULL) <> (b.score IS NULL))",
    );
    assert_eq!(count(&diff, "n"), 0);
    // Judge traffic is counted apart from sampling.
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(t.path("run/state.json")).unwrap()).unwrap();
    assert_eq!(state["counters"]["judge_requests"].as_u64(), Some(asked));
    assert!(state["counters"]["judge_prompt_tokens"].as_u64().unwrap() > 0);

    // The agreement with the inline math-rlvr verdicts, by hand and by view.
    let hand = query(
        &t,
        "run",
        "SELECT count(*) AS n FROM rollouts r JOIN scores s \
           ON r.id = s.id AND r.rollout_idx = s.rollout_idx AND s.verifier = 'llm-judge' \
         WHERE r.error IS NULL AND NOT r.truncated AND s.score IS NOT NULL \
           AND (r.score >= 1.0) <> (s.score >= 1.0)",
    );
    let view = common::query_with(
        &t,
        "run",
        "SELECT count(*) AS n FROM disagreements",
        "llm-judge",
    );
    assert_eq!(count(&view, "n"), count(&hand, "n"));
    assert!(
        count(&hand, "n") > 0,
        "a judge right 80% of the time disagrees somewhere"
    );
}

#[test]
fn logprob_scores_are_p_yes() {
    let (t, mock) = sampled(&[]);
    verify(
        &t,
        &mock,
        &["verifier.type=llm-judge", "verifier.options.score=logprobs"],
    );
    let rows = query(
        &t,
        "run",
        "SELECT DISTINCT round(score, 6) AS s FROM scores WHERE verifier = 'llm-judge' ORDER BY s",
    );
    let scores: Vec<f64> = rows.iter().map(|r| r["s"].as_f64().unwrap()).collect();
    // The mock gives P(yes) = 0.9 to right answers and 0.1 to wrong ones.
    assert_eq!(scores, vec![0.1, 0.9]);
    let raw = query(
        &t,
        "run",
        "SELECT judge_raw FROM scores WHERE verifier = 'llm-judge' LIMIT 1",
    );
    assert!(
        raw[0]["judge_raw"]
            .as_str()
            .unwrap()
            .contains("top_logprobs")
    );
    // The pass rate counts P(yes) >= 0.5: here, exactly the right answers.
    let pass = common::query_with(
        &t,
        "run",
        "SELECT sum(n_pass) AS n FROM prompts",
        "llm-judge",
    );
    let inline = query(&t, "run", "SELECT sum(n_pass) AS n FROM prompts");
    assert_eq!(count(&pass, "n"), count(&inline, "n"));
}

#[test]
fn mcq_judge_asks_only_where_the_rules_find_no_option() {
    let t = TestDir::new();
    let input = format!("data.input_path={}", common::fixture("mcq_sample.jsonl"));
    t.ok(&[
        "prepare",
        "work_dir=run",
        &input,
        "data.preprocess.transform=mcq",
        "sampler.type=replay",
        "sampler.replay_path=responses.jsonl",
        "verifier.type=mcq-rlvr",
        "sampling.max_rollouts=2",
        "sampling.step_size=2",
        "sampling.early_stop=false",
    ]);
    let ids = query(&t, "run", "SELECT id, answer FROM inputs ORDER BY id");
    let mut lines = String::new();
    for r in &ids {
        let (id, answer) = (r["id"].as_str().unwrap(), r["answer"].as_str().unwrap());
        for response in [
            format!("Checking each option, the answer is ({answer})."),
            "I am not sure which of them it is.".to_string(),
        ] {
            lines += &serde_json::json!({"id": id, "response": response}).to_string();
            lines += "\n";
        }
    }
    std::fs::write(t.path("responses.jsonl"), lines).unwrap();
    t.ok(&["sample", "work_dir=run"]);
    let mock = Mock::start(&[]);
    let log = verify(&t, &mock, &["verifier.type=mcq-llm-as-judge"]);
    let n = ids.len() as u64;
    let rows = query(
        &t,
        "run",
        "SELECT outcome, count(*) AS n, sum(score) AS pass, min(pred) AS pred FROM scores \
         WHERE verifier = 'mcq-llm-as-judge' GROUP BY outcome ORDER BY outcome",
    );
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(
        (rows[0]["outcome"].as_str(), count(&rows[0..1], "n")),
        (Some("judged"), n)
    );
    assert_eq!(rows[0]["pred"], "none");
    assert_eq!(rows[0]["pass"].as_f64(), Some(0.0));
    assert_eq!(
        (rows[1]["outcome"].as_str(), count(&rows[1..2], "n")),
        (Some("rules"), n)
    );
    assert_eq!(rows[1]["pass"].as_f64(), Some(n as f64));
    // One identical judge prompt per question: asked once each.
    assert_eq!(mock.stat("judge_requests"), n, "{log}");
    assert!(
        log.contains(&format!("{n} judged")) && log.contains(&format!("{n} rules")),
        "{log}"
    );
}

#[test]
fn reward_models_in_every_api_shape_rank_sft_and_dpo() {
    let (t, mock) = sampled(&[]);
    for api in [
        "vllm-classify",
        "vllm-pooling",
        "sglang-classify",
        "openrlhf",
    ] {
        let label = format!("verifier.label=rm-{api}");
        let api_arg = format!("verifier.options.api={api}");
        verify(
            &t,
            &mock,
            &[
                "verifier.type=reward-model",
                &label,
                &api_arg,
                "verifier.options.batch_size=8",
            ],
        );
    }
    let items = distinct_final_answers(&t);
    let stats = mock.stats();
    // vLLM: one conversation per request; SGLang and OpenRLHF: batches of 8.
    assert_eq!(stats["reward_items"].as_u64(), Some(4 * items));
    assert!(stats["reward_requests"].as_u64().unwrap() < 2 * items + 2 * items.div_ceil(8) + 8);
    // The vLLM shapes read the mock's reward of right answers (near 2) and
    // wrong ones (near -1); both routes agree.
    let rows = query(
        &t,
        "run",
        "SELECT count(*) AS n FROM scores a JOIN scores b \
           ON a.id = b.id AND a.rollout_idx = b.rollout_idx JOIN rollouts r \
           ON r.id = a.id AND r.rollout_idx = a.rollout_idx \
         WHERE a.verifier = 'rm-vllm-classify' AND b.verifier = 'rm-vllm-pooling' \
           AND a.score = b.score AND (a.score > 1.0) = (r.score = 1.0)",
    );
    assert_eq!(count(&rows, "n"), 26 * 4);

    // Best-of-N by reward, and DPO highest versus lowest with a margin.
    t.ok(&[
        "format",
        "run",
        "--scores",
        "rm-openrlhf",
        "formatter.0.pass_threshold=-1e9",
        "formatter.1.type=dpo",
        "formatter.1.pass_threshold=-1e9",
        "formatter.1.fail_threshold=1e9",
        "formatter.1.min_margin=0.5",
        "export.with_ids=true",
    ]);
    let best = query(
        &t,
        "run",
        "SELECT s.id, max(s.score) AS best, min(s.score) AS worst FROM scores s JOIN rollouts r \
           ON r.id = s.id AND r.rollout_idx = s.rollout_idx \
         WHERE s.verifier = 'rm-openrlhf' AND r.error IS NULL AND NOT r.truncated GROUP BY s.id",
    );
    let best: HashMap<String, (f64, f64)> = best
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_string(),
                (r["best"].as_f64().unwrap(), r["worst"].as_f64().unwrap()),
            )
        })
        .collect();
    let reward = |id: &str, idx: u64| -> f64 {
        let r = query(
            &t,
            "run",
            &format!(
                "SELECT score FROM scores WHERE verifier = 'rm-openrlhf' AND id = '{id}' AND rollout_idx = {idx}"
            ),
        );
        r[0]["score"].as_f64().unwrap()
    };
    let sft = std::fs::read_to_string(t.path("run/train/sft.jsonl")).unwrap();
    assert_eq!(sft.lines().count(), 26);
    for line in sft.lines().take(6) {
        let row: Value = serde_json::from_str(line).unwrap();
        let id = row["id"].as_str().unwrap();
        assert_eq!(reward(id, row["rollout_idx"].as_u64().unwrap()), best[id].0);
    }
    let dpo = std::fs::read_to_string(t.path("run/train/dpo.jsonl")).unwrap();
    let want = best.values().filter(|(hi, lo)| hi - lo >= 0.5).count();
    assert_eq!(dpo.lines().count(), want);
    for line in dpo.lines().take(6) {
        let row: Value = serde_json::from_str(line).unwrap();
        let id = row["id"].as_str().unwrap();
        let chosen = reward(id, row["chosen_rollout_idx"].as_u64().unwrap());
        let rejected = reward(id, row["rejected_rollout_idx"].as_u64().unwrap());
        assert_eq!((chosen, rejected), best[id]);
    }
}

#[test]
fn a_killed_judge_run_resumes_without_asking_anything_twice() {
    let (t, mock) = sampled(&["--latency-ms", "150"]);
    let items = distinct_final_answers(&t);
    let [url, model] = judge_args(&mock);
    let args = [
        "verify",
        "run",
        "verifier.type=llm-judge",
        "judge.concurrent_requests=4",
        url.as_str(),
        model.as_str(),
    ];
    let mut child = t
        .cmd(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // About a third of the requests, then SIGKILL: no flush, no cleanup.
    while mock.stat("judge_requests") < items / 3 {
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let before = mock.stat("judge_requests");
    assert!(before < items);
    t.ok(&args);
    let total = mock.stat("judge_requests");
    // Only the requests in flight at the kill (at most 4) are asked again.
    assert!(
        total >= items && total <= items + 4,
        "{total} for {items} items"
    );
    let rows = query(
        &t,
        "run",
        "SELECT count(*) AS n, count(score) AS scored FROM scores WHERE verifier = 'llm-judge'",
    );
    assert_eq!(
        (count(&rows, "n"), count(&rows, "scored")),
        (26 * 4, 26 * 4)
    );
}

#[test]
fn judge_server_faults_are_retried_or_stop_loudly() {
    // Transient faults: retried until every rollout is judged.
    let (t, mock) = sampled(&[]);
    let flaky = Mock::start(&[
        "--rate-500",
        "0.3",
        "--rate-429",
        "0.1",
        "--retry-after",
        "0",
    ]);
    let args = [
        "verify",
        "run",
        "verifier.type=llm-judge",
        "judge.retry_delay=0",
        "judge.max_retries=8",
        "judge.model=mock",
    ];
    let url = format!("judge.base_url={}", flaky.url());
    let mut with_url = args.to_vec();
    with_url.push(&url);
    t.ok(&with_url);
    assert!(flaky.stat("status_500") > 0);
    let rows = query(
        &t,
        "run",
        "SELECT count(score) AS n FROM scores WHERE verifier = 'llm-judge'",
    );
    assert_eq!(count(&rows, "n"), 26 * 4);
    drop(mock);

    // No server: a clear failure, non-zero, no scores written.
    let t2 = prepared_mock(&["sampling.max_rollouts=4", "sampling.early_stop=false"]);
    let m = Mock::start(&[]);
    t2.ok(&["sample", "work_dir=run", &m.base_url_arg()]);
    let err = t2.fails(&[
        "verify",
        "run",
        "verifier.type=llm-judge",
        "judge.base_url=http://127.0.0.1:9/v1",
        "judge.model=mock",
    ]);
    assert!(err.contains("127.0.0.1:9"), "{err}");
    assert!(
        !t2.path("run/scores/llm-judge")
            .join("shard_0000.parquet")
            .exists()
    );
    // A model the judge server does not serve, and no model at all.
    let err = t2.fails(&[
        "verify",
        "run",
        "verifier.type=llm-judge",
        &format!("judge.base_url={}", m.url()),
        "judge.model=gpt-judge",
    ]);
    assert!(err.contains("gpt-judge"), "{err}");
    let err = t2.fails(&[
        "verify",
        "run",
        "verifier.type=llm-judge",
        &format!("judge.base_url={}", m.url()),
    ]);
    assert!(err.contains("judge.model is not set"), "{err}");
    // A typo in an option names it.
    let err = t2.fails(&[
        "verify",
        "run",
        "verifier.type=llm-judge",
        "verifier.options.templte=rubric",
    ]);
    assert!(err.contains("verifier.options.templte"), "{err}");
    // A server that dies mid-run: loud, and the same command finishes.
    let dying = Mock::start(&["--die-after", "10"]);
    let url = format!("judge.base_url={}", dying.url());
    let err = t2.fails(&[
        "verify",
        "run",
        "verifier.type=llm-judge",
        "judge.model=mock",
        &url,
    ]);
    assert!(err.contains("run the same command again"), "{err}");
    let err_url = format!("judge.base_url={}", m.url());
    t2.ok(&[
        "verify",
        "run",
        "verifier.type=llm-judge",
        "judge.model=mock",
        &err_url,
    ]);
    let rows = query(
        &t2,
        "run",
        "SELECT count(score) AS n FROM scores WHERE verifier = 'llm-judge'",
    );
    assert_eq!(count(&rows, "n"), 26 * 4);
}

#[test]
fn general_chat_without_gold_runs_end_to_end_with_a_rubric_judge() {
    let t = TestDir::new();
    let mock = Mock::start(&[]);
    let config = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/chat.yaml");
    let input = format!("data.input_path={}", common::fixture("chat_prompts.jsonl"));
    let args = [
        "run",
        "--config",
        config.to_str().unwrap(),
        "work_dir=run",
        &input,
        &mock.base_url_arg(),
        "sampler.model=mock",
        &format!("judge.base_url={}", mock.url()),
        "judge.model=mock",
    ];
    let run = t.cmd(&args).output().unwrap();
    common::assert_success(&run, &args);
    let out = String::from_utf8_lossy(&run.stdout).into_owned();
    let err = String::from_utf8_lossy(&run.stderr);
    // A rubric needs no gold: no warning that the prompts have none.
    assert!(!err.contains("have no answer"), "{err}");
    // Every reply rated; a prompt stops once its ratings give both files
    // what they need, at 8 replies at most.
    let rows = query(
        &t,
        "run",
        "SELECT count(*) AS n, count(score) AS rated, min(pred) AS lo, max(pred) AS hi \
         FROM scores WHERE verifier = 'llm-judge'",
    );
    let n = count(&rows, "n");
    assert!((12 * 2..=12 * 8).contains(&n), "{n}");
    assert_eq!(count(&rows, "rated"), n);
    // Ratings pass from 7 of 10: the best-of-N set has rows, and so do
    // the pairs.
    let lines = |f: &str| std::fs::read_to_string(t.path(f)).unwrap().lines().count();
    assert!(lines("run/train/sft.jsonl") > 0, "{out}");
    assert!(lines("run/train/dpo.jsonl") > 0, "{out}");
    assert!(!out.contains("passed        0 of"), "{out}");
    assert!(out.contains("train"), "{out}");
    // No inline verdicts were written for a model verifier.
    let inline = query(&t, "run", "SELECT count(score) AS n FROM rollouts");
    assert_eq!(count(&inline, "n"), 0);
}

#[test]
fn a_cost_cap_stops_judging_and_a_raised_one_finishes_it() {
    let (t, mock) = sampled(&[]);
    let items = distinct_final_answers(&t);
    let [url, model] = judge_args(&mock);
    // $1 per million judge tokens: a request of ~300 prompt tokens plus
    // judge.max_tokens=100 could cost $0.0004; the cap admits a few.
    let args = |cap: &str| {
        vec![
            "verify".to_string(),
            "run".into(),
            "verifier.type=llm-judge".into(),
            url.clone(),
            model.clone(),
            "judge.max_tokens=100".into(),
            "judge.concurrent_requests=2".into(),
            "pricing.judge_input=1".into(),
            "pricing.judge_output=1".into(),
            format!("budget.max_cost={cap}"),
        ]
    };
    let capped = args("0.004");
    let capped: Vec<&str> = capped.iter().map(String::as_str).collect();
    let out = t.cmd(&capped).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{err}");
    assert!(err.contains("could pass budget.max_cost ($0.004)"), "{err}");
    let asked = mock.stat("judge_requests");
    assert!(asked > 0 && asked < items, "{asked} of {items}");
    let raised = args("1");
    let raised: Vec<&str> = raised.iter().map(String::as_str).collect();
    t.ok(&raised);
    // Nothing asked twice: the answers received before the stop were kept.
    assert_eq!(mock.stat("judge_requests"), items);
}

#[test]
fn judge_prices_given_to_verify_are_kept_and_count_only_against_their_label() {
    let (t, mock) = sampled(&[]);
    verify(
        &t,
        &mock,
        &[
            "verifier.type=llm-judge",
            "pricing.judge_input=3",
            "pricing.judge_output=15",
        ],
    );
    // Inline SFT and judged SFT side by side, then analyze with only the
    // sampling prices given.
    t.ok(&["format", "run"]);
    t.ok(&[
        "format",
        "run",
        "--scores",
        "llm-judge",
        "formatter.0.name=sft_judged",
    ]);
    t.ok(&["analyze", "run", "pricing.input=1", "pricing.output=2"]);
    let stats: Value =
        serde_json::from_str(&std::fs::read_to_string(t.path("run/summary/stats.json")).unwrap())
            .unwrap();
    let sp = &stats["spending"];
    let judge = sp["judge_cost"]
        .as_f64()
        .expect("judge cost from the saved prices");
    assert!(judge > 0.0);
    let sampling = sp["cost"].as_f64().unwrap();
    let per = |name: &str| {
        sp["per_row"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["formatter"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name} in {sp}"))
    };
    let (inline, judged) = (per("sft"), per("sft_judged"));
    let rows = |p: &Value| p["rows"].as_f64().unwrap();
    let cost = |p: &Value| p["cost_per_row"].as_f64().unwrap();
    assert!(
        (cost(&inline) - sampling / rows(&inline)).abs() < 1e-12,
        "{inline}"
    );
    assert!(
        (cost(&judged) - (sampling + judge) / rows(&judged)).abs() < 1e-12,
        "{judged}"
    );
}

#[test]
fn refresh_asks_the_judge_again_where_saved_answers_would_answer() {
    let (t, mock) = sampled(&[]);
    let judge = "verifier.type=llm-judge";
    let before = mock.stat("requests");
    verify(&t, &mock, &[judge]);
    let asked = mock.stat("requests") - before;
    assert!(asked > 0);
    verify(&t, &mock, &[judge]);
    assert_eq!(
        mock.stat("requests") - before,
        asked,
        "saved answers were asked again"
    );
    verify(&t, &mock, &[judge, "--refresh"]);
    assert_eq!(mock.stat("requests") - before, 2 * asked);
}

#[test]
fn a_judge_rsr_launches_is_awaited_used_and_stopped() {
    let (t, mock) = sampled(&[]);
    drop(mock);
    let out = t
        .cmd(&[
            "verify",
            "run",
            "verifier.type=llm-judge",
            "judge.launch=rsr-mock --port {port} --startup-delay-ms 200",
            "judge.model=mock",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(t.path("run/scores/llm-judge/shard_0000.parquet").is_file());
    assert!(t.path("run/logs/judge/server-0.log").is_file(), "{err}");
    let pids = common::server_pids(&t);
    assert_eq!(pids.len(), 2, "the judge server's start and stop lines");
    assert!(
        !common::pid_alive(pids[0]),
        "the judge server was left running"
    );
}
