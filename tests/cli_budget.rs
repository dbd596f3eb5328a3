//! Budgets through the binary: a run spends up to its cap (a request
//! waits while those in flight settle, and the run stops only when the next
//! cannot fit with nothing in flight: exit status 5, what was spent on
//! stderr), and a resume with a raised cap finishes it with exactly the
//! rows an unbudgeted run has, nothing requested twice, earlier spending
//! counted.

mod common;

use common::mock::Mock;
use common::{TestDir, gold, prepared_mock, query};

/// 26 prompts × 8 rollouts, two requests of n=4 each: 52 requests.
fn run() -> TestDir {
    prepared_mock(&["sampling.max_rollouts=8", "sampling.early_stop=false"])
}

fn keys(t: &TestDir) -> Vec<(String, u64)> {
    query(
        t,
        "run",
        "SELECT id, rollout_idx FROM rollouts WHERE error IS NULL ORDER BY id, rollout_idx",
    )
    .into_iter()
    .map(|r| {
        (
            r["id"].as_str().unwrap().to_string(),
            r["rollout_idx"].as_u64().unwrap(),
        )
    })
    .collect()
}

#[test]
fn a_request_budget_stops_the_run_and_a_raised_one_finishes_it_exactly() {
    let t = run();
    let g = gold(&t);
    let mock = Mock::start(&["--gold", &g]);
    let url = mock.base_url_arg();
    let out = t
        .cmd(&["sample", "work_dir=run", &url, "budget.max_requests=20"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{err}");
    assert!(err.contains("could pass budget.max_requests (20)"), "{err}");
    assert!(err.contains("spent 20 of 20 requests"), "{err}");
    // The advice names the key, a value and the command that resumes it.
    assert!(err.contains("raise budget.max_requests (about "), "{err}");
    assert!(
        err.contains("resume: rsr sample work_dir=run budget.max_requests="),
        "{err}"
    );
    assert_eq!(mock.stat("requests"), 20);
    // Spending counts across runs: the same cap stops a resume at once.
    let out = t
        .cmd(&["sample", "work_dir=run", &url, "budget.max_requests=20"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5));
    assert_eq!(mock.stat("requests"), 20);
    // Raised: the run finishes, nothing requested twice.
    t.ok(&["sample", "work_dir=run", &url, "budget.max_requests=60"]);
    assert_eq!(mock.stat("requests"), 52);
    let budgeted = keys(&t);
    let unbudgeted_dir = run();
    let m2 = Mock::start(&["--gold", &gold(&unbudgeted_dir)]);
    unbudgeted_dir.ok(&["sample", "work_dir=run", &m2.base_url_arg()]);
    assert_eq!(budgeted, keys(&unbudgeted_dir));
    assert_eq!(budgeted.len(), 26 * 8);
}

#[test]
fn token_and_cost_budgets_count_the_worst_case_of_the_requests_in_flight() {
    let t = prepared_mock(&[
        "sampling.max_rollouts=8",
        "sampling.early_stop=false",
        "sampler.max_tokens=256",
    ]);
    let g = gold(&t);
    let mock = Mock::start(&["--gold", &g]);
    let url = mock.base_url_arg();
    // max_tokens 256 × n=4: each request could use 1,024 completion tokens.
    let out = t
        .cmd(&[
            "sample",
            "work_dir=run",
            &url,
            "budget.max_completion_tokens=6000",
            "sampler.concurrent_requests=2",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{err}");
    assert!(err.contains("budget.max_completion_tokens (6000"), "{err}");
    let spent = query(
        &t,
        "run",
        "SELECT sum(completion_tokens) AS n FROM rollouts",
    );
    let spent = spent[0]["n"].as_u64().unwrap();
    // Requests wait for those in flight to settle: the run ends within one
    // request's worst case of the cap.
    assert!(spent + 1_024 > 6_000, "stopped early: {spent}");
    assert!(spent <= 6_000);
    // Caps are kept in the run's config; a cost cap needs prices.
    let e = t.fails(&["sample", "work_dir=run", &url, "budget.max_cost=1"]);
    assert!(e.contains("pricing.input and pricing.output"), "{e}");
    // With prices: $1 per million in and out, under $0.01 spent so far; a
    // request could cost about $0.0015 more: the run stops within that of
    // a $0.012 cap, below the whole run's cost.
    let out = t
        .cmd(&[
            "sample",
            "work_dir=run",
            &url,
            "budget.max_cost=0.012",
            "budget.max_completion_tokens=null",
            "pricing.input=1",
            "pricing.output=1",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{err}");
    assert!(err.contains("budget.max_cost ($0.012"), "{err}");
    assert!(err.contains("of $0.012"), "{err}");
}

#[test]
fn cost_figures_in_the_statistics_match_a_hand_count() {
    let t = run();
    let g = gold(&t);
    let mock = Mock::start(&["--gold", &g]);
    t.ok(&["sample", "work_dir=run", &mock.base_url_arg()]);
    t.ok(&["format", "run"]);
    t.ok(&["analyze", "run", "pricing.input=0.5", "pricing.output=2"]);
    let stats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(t.path("run/summary/stats.json")).unwrap())
            .unwrap();
    let sp = &stats["spending"];
    // By hand: one request of n=4 per prompt and step; its prompt tokens
    // once, every response's completion tokens.
    let hand = query(
        &t,
        "run",
        "SELECT count(*) AS requests, sum(p) AS prompt, sum(c) AS completion FROM ( \
           SELECT id, step, max(prompt_tokens) AS p, sum(completion_tokens) AS c \
           FROM rollouts WHERE error IS NULL GROUP BY id, step)",
    );
    let (requests, prompt, completion) = (
        hand[0]["requests"].as_u64().unwrap(),
        hand[0]["prompt"].as_u64().unwrap(),
        hand[0]["completion"].as_u64().unwrap(),
    );
    assert_eq!(requests, 52);
    assert_eq!(sp["requests"].as_u64(), Some(requests));
    assert_eq!(sp["prompt_tokens"].as_u64(), Some(prompt));
    assert_eq!(sp["completion_tokens"].as_u64(), Some(completion));
    let cost = (prompt as f64 * 0.5 + completion as f64 * 2.0) / 1e6;
    assert!((sp["cost"].as_f64().unwrap() - cost).abs() < 1e-12);
    // Per kept SFT row: the whole cost over the rows written.
    let rows = std::fs::read_to_string(t.path("run/train/sft.jsonl"))
        .unwrap()
        .lines()
        .count() as f64;
    let per = &sp["per_row"][0];
    assert_eq!(per["formatter"], "sft");
    assert!((per["cost_per_row"].as_f64().unwrap() - cost / rows).abs() < 1e-12);
    assert!(
        (per["tokens_per_row"].as_f64().unwrap() - (prompt + completion) as f64 / rows).abs()
            < 1e-9
    );
    // Without prices, no cost: figures are derived, never stored.
    t.ok(&["analyze", "run"]);
    let stats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(t.path("run/summary/stats.json")).unwrap())
            .unwrap();
    assert!(stats["spending"]["cost"].is_null());
}

#[test]
fn a_dry_run_prints_the_worst_case_and_sends_nothing() {
    let t = prepared_mock(&[
        "sampler.max_tokens=1000",
        "sampling.max_steps=2",
        "sampling.step_size=4",
    ]);
    let mock = Mock::start(&["--gold", &gold(&t)]);
    let out = t.ok(&[
        "run",
        "--dry-run",
        "work_dir=run",
        &mock.base_url_arg(),
        "pricing.input=1",
        "pricing.output=2",
    ]);
    let chars = query(&t, "run", "SELECT sum(length(messages)) AS n FROM inputs")[0]["n"]
        .as_u64()
        .unwrap();
    // 26 prompts × 2 steps of one request (n=4): 52 requests, 8 responses of
    // 1,000 tokens each per prompt.
    let prompt = chars / 4 * 2;
    let completion = 26 * 8 * 1000;
    let cost = (prompt as f64 + 2.0 * completion as f64) / 1e6;
    assert!(
        out.contains(&format!(
            "at most 52 requests, {prompt} prompt + {completion} completion tokens"
        )),
        "{out}"
    );
    assert!(out.contains(&format!("${cost:.2}")), "{out}");
    assert!(!t.path("run/rollout").exists());
    assert_eq!(mock.stat("requests"), 0, "only GET /models was sent");
}

#[test]
fn the_projection_after_a_tenth_of_the_prompts_is_within_a_fifth_of_the_final_figure() {
    // 300 prompts × 8 rollouts from the mock (its length distribution:
    // right answers shorter than wrong ones, accuracy spread per prompt).
    let t = TestDir::new();
    let lines: String = (0..300)
        .map(|i| {
            format!(
                "{{\"id\":\"p{i}\",\"messages\":[{{\"role\":\"user\",\"content\":\"What is {i} plus 0?\"}}],\"answer\":\"{i}\"}}\n"
            )
        })
        .collect();
    std::fs::write(t.path("in.jsonl"), lines).unwrap();
    t.ok(&[
        "prepare",
        "work_dir=run",
        "data.input_path=in.jsonl",
        "sampler.model=mock",
        "sampling.max_rollouts=8",
        "sampling.early_stop=false",
    ]);
    let g = gold(&t);
    let mock = Mock::start(&["--gold", &g, "--latency-ms", "20", "--latency-dist", "exp"]);
    t.ok(&[
        "sample",
        "work_dir=run",
        &mock.base_url_arg(),
        "sampler.concurrent_requests=16",
        "sampling.concurrent_prompts=16",
    ]);
    // The progress line's projection at the moment a tenth of the prompts
    // were finished: the tokens received by then × all prompts / finished
    // prompts (what `Counters::spending` computes), from the saved rows.
    let rows = query(
        &t,
        "run",
        "WITH done AS (SELECT id, max(created_at) AS at FROM rollouts GROUP BY id), \
              tenth AS (SELECT at FROM done ORDER BY at LIMIT 1 OFFSET 29) \
         SELECT \
           (SELECT sum(completion_tokens) + sum(prompt_tokens) / 4 FROM rollouts \
              WHERE created_at <= (SELECT at FROM tenth)) AS so_far, \
           (SELECT count(*) FROM done WHERE at <= (SELECT at FROM tenth)) AS finished, \
           (SELECT sum(completion_tokens) + sum(prompt_tokens) / 4 FROM rollouts) AS total",
    );
    let (so_far, finished, total) = (
        rows[0]["so_far"].as_f64().unwrap(),
        rows[0]["finished"].as_f64().unwrap(),
        rows[0]["total"].as_f64().unwrap(),
    );
    let projected = so_far * 300.0 / finished;
    assert!(
        (projected / total - 1.0).abs() < 0.2,
        "projected {projected:.0} after {finished} prompts, final {total:.0}"
    );
}

/// What the saved rows of `run/` cost at $1 per million tokens in and out:
/// each request's prompt tokens once, every response's completion tokens.
fn cost_at_one_dollar(t: &TestDir) -> f64 {
    let rows = query(
        t,
        "run",
        "SELECT sum(p) + sum(c) AS tokens FROM ( \
           SELECT max(prompt_tokens) AS p, sum(completion_tokens) AS c \
           FROM rollouts WHERE error IS NULL GROUP BY id, step, created_at)",
    );
    rows[0]["tokens"].as_f64().unwrap() / 1e6
}

#[test]
fn a_cost_cap_at_95_percent_of_the_run_ends_within_one_request_of_it() {
    // 26 prompts × 8 rollouts, n=4 of at most 256 tokens: a request's
    // worst case is its prompt (under 500 tokens) and 1,024 completion
    // tokens, about a twentieth of the whole run.
    let settings = [
        "sampling.max_rollouts=8",
        "sampling.early_stop=false",
        "sampler.max_tokens=256",
    ];
    let full = {
        let t = prepared_mock(&settings);
        let mock = Mock::start(&["--gold", &gold(&t)]);
        t.ok(&["sample", "work_dir=run", &mock.base_url_arg()]);
        cost_at_one_dollar(&t)
    };
    let cap = 0.95 * full;
    let worst = (500.0 + 4.0 * 256.0) / 1e6;
    for concurrency in ["2", "32"] {
        let t = prepared_mock(&settings);
        let mock = Mock::start(&["--gold", &gold(&t)]);
        let out = t
            .cmd(&[
                "run",
                "work_dir=run",
                &mock.base_url_arg(),
                &format!("budget.max_cost={cap}"),
                "pricing.input=1",
                "pricing.output=1",
                &format!("sampler.concurrent_requests={concurrency}"),
            ])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(5), "{err}");
        let spent = cost_at_one_dollar(&t);
        assert!(
            spent <= cap && spent > cap - worst,
            "concurrency {concurrency}: spent ${spent:.6} of a ${cap:.6} cap (full run ${full:.6})"
        );
        // What the finished prompts allow is written, marked partial.
        let manifest: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(t.path("run/train/sft.jsonl.manifest.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(manifest["partial"], true, "{manifest}");
        assert!(t.path("run/summary/stats.json").is_file());
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("spent "), "{stdout}");
        // Raised as advised, the run finishes.
        assert!(
            err.contains("resume: rsr run work_dir=run budget.max_cost="),
            "{err}"
        );
        t.ok(&[
            "run",
            "work_dir=run",
            &mock.base_url_arg(),
            "budget.max_cost=1",
        ]);
        let manifest: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(t.path("run/train/sft.jsonl.manifest.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(manifest["partial"], false);
    }
}
