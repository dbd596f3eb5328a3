//! `rsr format` / `rsr export` on hand-built rollouts whose expected rows
//! are worked out by hand: all-pass, all-fail, single rollout, ties,
//! duplicates, truncated-only and failed rollouts, filters, a user SQL
//! formatter, and every export shape parsed back.

mod common;

use std::sync::Arc;

use common::{TestDir, query};
use rsr::store::parquet::ParquetFile;
use rsr::store::parts::{RolloutRow, to_batch};
use rsr::store::rollout::{rollout_part_path, rollout_schema};
use serde_json::{Value, json};

struct R {
    id: &'static str,
    idx: u32,
    response: Option<&'static str>,
    score: Option<f64>,
    tokens: u32,
    truncated: bool,
    reasoning: Option<&'static str>,
}

fn r(id: &'static str, idx: u32, response: &'static str, score: f64, tokens: u32) -> R {
    R {
        id,
        idx,
        response: Some(response),
        score: Some(score),
        tokens,
        truncated: false,
        reasoning: None,
    }
}

fn write(t: &TestDir, rows: &[R]) {
    let rows: Vec<RolloutRow> = rows
        .iter()
        .map(|x| RolloutRow {
            id: Arc::from(x.id),
            rollout_idx: x.idx,
            step: 0,
            response: x.response.map(str::to_string),
            reasoning: x.reasoning.map(str::to_string),
            finish_reason: x
                .response
                .map(|_| if x.truncated { "length" } else { "stop" }.to_string()),
            truncated: x.truncated,
            error: x.response.is_none().then(|| "HTTP 500".to_string()),
            prompt_tokens: Some(10),
            completion_tokens: Some(x.tokens),
            latency_ms: Some(100),
            model: Arc::from("m"),
            endpoint: "http://127.0.0.1:1/v1".into(),
            created_at: 1_790_000_000_000,
            score: x.score,
            pred: None,
        })
        .collect();
    let mut f =
        ParquetFile::create(&rollout_part_path(&t.path("run"), 0, 0), rollout_schema()).unwrap();
    f.write(&to_batch(&rows)).unwrap();
    f.commit().unwrap();
}

/// The hand-built run (shard 0 of the GSM8K sample):
/// - gsm8k-0 all pass: A (300 tokens), B, C (100 each), B again (duplicate).
/// - gsm8k-1 all fail: X, Y.
/// - gsm8k-2 a single passing rollout S.
/// - gsm8k-3 mixed: F1 (fail), P1 (pass, 80), F2 (fail), P2 (pass, 80).
/// - gsm8k-4 truncated only (one would have passed).
/// - gsm8k-5 a failed request and a pass E1 with separate reasoning `why`.
/// - gsm8k-6 a pass with inline thinking.
fn fixture_run() -> TestDir {
    let t = common::prepared_gsm8k(&["shard.size=10", "sampler.model=m"]);
    let mut trunc = r("gsm8k-4", 0, "<think>cut", 1.0, 4096);
    trunc.truncated = true;
    let mut trunc2 = r("gsm8k-4", 1, "<think>cut again", 0.0, 4096);
    trunc2.truncated = true;
    let mut failed = r("gsm8k-5", 0, "", 0.0, 0);
    failed.response = None;
    failed.score = None;
    let mut e1 = r("gsm8k-5", 1, "E1", 1.0, 20);
    e1.reasoning = Some("why");
    write(
        &t,
        &[
            r("gsm8k-0", 0, "A", 1.0, 300),
            r("gsm8k-0", 1, "B", 1.0, 100),
            r("gsm8k-0", 2, "C", 1.0, 100),
            r("gsm8k-0", 3, "B", 1.0, 100),
            r("gsm8k-1", 0, "X", 0.0, 10),
            r("gsm8k-1", 1, "Y", 0.0, 10),
            r("gsm8k-2", 0, "S", 1.0, 10),
            r("gsm8k-3", 0, "F1", 0.0, 50),
            r("gsm8k-3", 1, "P1", 1.0, 80),
            r("gsm8k-3", 2, "F2", 0.0, 40),
            r("gsm8k-3", 3, "P2", 1.0, 80),
            trunc,
            trunc2,
            failed,
            e1,
            r(
                "gsm8k-6",
                0,
                "<think>hmm</think>\nFinal \\boxed{1}",
                1.0,
                30,
            ),
        ],
    );
    t
}

fn jsonl(t: &TestDir, rel: &str) -> Vec<Value> {
    std::fs::read_to_string(t.path(rel))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The final answer of each TRL SFT row's assistant turn (after the
/// `<think>` block the default export puts before it).
fn sft_answers(rows: &[Value]) -> Vec<String> {
    rows.iter()
        .map(|r| {
            let m = r["messages"].as_array().unwrap();
            assert_eq!(m.last().unwrap()["role"], "assistant");
            let content = m.last().unwrap()["content"].as_str().unwrap();
            match content.split_once("</think>\n\n") {
                Some((_, answer)) => answer.to_string(),
                None => content.to_string(),
            }
        })
        .collect()
}

#[test]
fn builtin_formatters_pick_the_rows_worked_out_by_hand() {
    let t = fixture_run();
    let out = t.ok(&[
        "format",
        "run",
        "formatter.1.type=dpo",
        "formatter.2.type=top_k",
        "formatter.2.k=2",
        "formatter.3.type=multi_sft",
    ]);
    // sft: best per prompt = highest score, fewest tokens, lowest idx; the
    // all-fail and truncated-only prompts give nothing.
    let sft = jsonl(&t, "run/train/sft.jsonl");
    assert_eq!(
        sft_answers(&sft),
        ["B", "S", "P1", "E1", "Final \\boxed{1}"]
    );
    // The thinking is kept by default, before the answer.
    assert_eq!(
        sft[3]["messages"][1]["content"],
        "<think>\nwhy\n</think>\n\nE1"
    );
    // The prompt is passed through and the answer appended.
    let m = sft[0]["messages"].as_array().unwrap();
    assert_eq!(m.len(), 2);
    assert_eq!(m[0]["role"], "user");
    assert!(m[0]["content"].as_str().unwrap().starts_with("Janet"));

    // dpo: only the mixed prompt has both; chosen P1 (tie on tokens, lower
    // idx), rejected F1 (lowest score, lower idx).
    let dpo = jsonl(&t, "run/train/dpo.jsonl");
    assert_eq!(dpo.len(), 1);
    assert_eq!(
        dpo[0]["chosen"],
        json!([{"role": "assistant", "content": "P1"}])
    );
    assert_eq!(
        dpo[0]["rejected"],
        json!([{"role": "assistant", "content": "F1"}])
    );
    assert_eq!(dpo[0]["prompt"][0]["role"], "user");

    // top_k k=2: distinct, best first; the duplicate B is collapsed.
    let top = jsonl(&t, "run/train/top_k.jsonl");
    assert_eq!(
        sft_answers(&top),
        ["B", "C", "S", "P1", "P2", "E1", "Final \\boxed{1}"]
    );
    // multi_sft: every distinct pass in sampling order.
    let multi = jsonl(&t, "run/train/multi_sft.jsonl");
    assert_eq!(
        sft_answers(&multi),
        ["A", "B", "C", "S", "P1", "P2", "E1", "Final \\boxed{1}"]
    );

    // Counts: 7 prompts had rollouts, none filtered.
    let line = out.lines().find(|l| l.starts_with("sft")).unwrap();
    let cols: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(&cols[1..5], ["7", "0", "5", "5"], "{out}");
}

#[test]
fn pass_rate_filters_and_where_predicates() {
    let t = fixture_run();
    // Pass rates: 0 → 1.0, 1 → 0.0, 2 → 1.0, 3 → 0.5, 4 → null, 5 → 1.0, 6 → 1.0.
    let p = query(
        &t,
        "run",
        "SELECT id, n_valid, pass_rate FROM prompts WHERE n_rollouts > 0 ORDER BY id",
    );
    let rates: Vec<Value> = p.iter().map(|r| r["pass_rate"].clone()).collect();
    assert_eq!(
        rates,
        [
            json!(1.0),
            json!(0.0),
            json!(1.0),
            json!(0.5),
            Value::Null,
            json!(1.0),
            json!(1.0)
        ]
    );

    let out = t.ok(&["format", "run", "formatter.0.max_pass_rate=0.5"]);
    assert_eq!(sft_answers(&jsonl(&t, "run/train/sft.jsonl")), ["P1"]);
    let cols: Vec<&str> = out.lines().nth(1).unwrap().split_whitespace().collect();
    // 7 with rollouts; kept: gsm8k-1 (0.0) and gsm8k-3 (0.5); 5 filtered.
    assert_eq!(&cols[1..5], ["7", "5", "1", "1"], "{out}");

    t.ok(&["format", "run", "formatter.0.where=n_valid >= 4"]);
    assert_eq!(sft_answers(&jsonl(&t, "run/train/sft.jsonl")), ["B", "P1"]);

    t.ok(&[
        "format",
        "run",
        "formatter.0.min_pass_rate=0.6",
        "formatter.0.pass_threshold=0.5",
        "formatter.0.fail_threshold=0",
    ]);
    assert_eq!(
        sft_answers(&jsonl(&t, "run/train/sft.jsonl")),
        ["B", "S", "E1", "Final \\boxed{1}"]
    );

    let err = t.fails(&["format", "run", "formatter.0.where=no_such_column > 1"]);
    assert!(err.contains("no_such_column"), "{err}");
    let err = t.fails(&["format", "run", "formatter.0.type=top_k"]);
    assert!(
        err.contains("invalid `formatter.0.k` (from argument `formatter.0.type=")
            && err.contains("top_k needs k"),
        "{err}"
    );
    let err = t.fails(&["format", "run", "sampling.max_rollouts=3"]);
    assert!(err.contains("only formatter.* and export.*"), "{err}");
}

#[test]
fn a_user_sql_formatter_needs_no_recompiling() {
    let t = fixture_run();
    std::fs::write(
        t.path("first_pass.sql"),
        "-- the first sampled passing response\n\
         SELECT id, messages, response FROM candidates \
         WHERE score >= $pass_threshold AND rollout_idx = 0 ORDER BY id",
    )
    .unwrap();
    t.ok(&["format", "run", "formatter.0.type=first_pass.sql"]);
    assert_eq!(
        sft_answers(&jsonl(&t, "run/train/first_pass.jsonl")),
        ["A", "S", "Final \\boxed{1}"]
    );

    std::fs::write(t.path("bad.sql"), "SELECT id FROM prompts").unwrap();
    let err = t.fails(&["format", "run", "formatter.0.type=bad.sql"]);
    assert!(
        err.contains("returns columns (id)") && err.contains("chosen and rejected"),
        "{err}"
    );
    let err = t.fails(&["format", "run", "formatter.0.type=missing.sql"]);
    assert!(
        err.contains("cannot read formatter") && err.contains("missing.sql"),
        "{err}"
    );
    let err = t.fails(&["format", "run", "formatter.1.type=sft"]);
    assert!(err.contains("two formatters are named `sft`"), "{err}");
}

#[test]
fn export_shapes_parse_back_field_by_field() {
    let t = fixture_run();
    let export = |args: &[&str]| {
        let mut all = vec!["export", "run", "formatter.1.type=dpo"];
        all.extend_from_slice(args);
        t.ok(&all);
    };
    // A separate reasoning field is lost by LLaMA-Factory: refused there.
    for format in ["sharegpt", "alpaca"] {
        let err = t.fails(&[
            "export",
            "run",
            "--format",
            format,
            "--reasoning",
            "field",
            "-o",
            "x.jsonl",
        ]);
        assert!(err.contains("LLaMA-Factory ignores"), "{err}");
        assert!(!t.path("x.jsonl").exists());
    }
    // Reasoning: separate field, inline think tags, dropped.
    export(&["--reasoning", "field", "-o", "field.jsonl"]);
    let rows = jsonl(&t, "field.jsonl");
    let e1 = rows[3]["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        e1,
        json!({"role": "assistant", "content": "E1", "reasoning_content": "why"})
    );
    let inline = rows[4]["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        inline,
        json!({"role": "assistant", "content": "Final \\boxed{1}", "reasoning_content": "hmm"})
    );
    export(&["--reasoning", "think-tags", "-o", "tags.jsonl"]);
    let rows = jsonl(&t, "tags.jsonl");
    assert_eq!(
        rows[3]["messages"][1]["content"],
        "<think>\nwhy\n</think>\n\nE1"
    );
    assert_eq!(
        rows[4]["messages"][1]["content"],
        "<think>\nhmm\n</think>\n\nFinal \\boxed{1}"
    );

    // TRL prompt-completion: the prompt turns, then the response alone.
    export(&[
        "--format",
        "trl-prompt-completion",
        "--reasoning",
        "think-tags",
        "-o",
        "pc.jsonl",
    ]);
    let pc = jsonl(&t, "pc.jsonl");
    let messages = jsonl(&t, "tags.jsonl");
    assert_eq!(pc.len(), messages.len());
    for (pc, m) in pc.iter().zip(&messages) {
        let m = m["messages"].as_array().unwrap();
        assert_eq!(pc.as_object().unwrap().len(), 2);
        assert_eq!(pc["prompt"].as_array().unwrap()[..], m[..m.len() - 1]);
        assert_eq!(pc["completion"], json!([m[m.len() - 1]]));
    }
    export(&[
        "--format",
        "trl-prompt-completion",
        "--formatter",
        "dpo",
        "-o",
        "pc_dpo.jsonl",
    ]);
    let pairs = jsonl(&t, "pc_dpo.jsonl");
    assert!(!pairs.is_empty());
    assert!(pairs.iter().all(|r| {
        r["chosen"][0]["role"] == "assistant" && r["rejected"][0]["role"] == "assistant"
    }));

    // ShareGPT, SFT and pairs.
    export(&["--format", "sharegpt", "-o", "sg.jsonl"]);
    let rows = jsonl(&t, "sg.jsonl");
    let conv = rows[0]["conversations"].as_array().unwrap();
    assert_eq!(conv.len(), 2);
    assert_eq!(conv[0]["from"], "human");
    assert!(conv[0]["value"].as_str().unwrap().starts_with("Janet"));
    assert_eq!(conv[1], json!({"from": "gpt", "value": "B"}));
    export(&[
        "--formatter",
        "dpo",
        "--format",
        "sharegpt",
        "-o",
        "sg_dpo.jsonl",
    ]);
    let rows = jsonl(&t, "sg_dpo.jsonl");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["conversations"].as_array().unwrap().len(), 1);
    assert_eq!(rows[0]["chosen"], json!({"from": "gpt", "value": "P1"}));
    assert_eq!(rows[0]["rejected"], json!({"from": "gpt", "value": "F1"}));

    // Alpaca, SFT and pairs.
    export(&["--format", "alpaca", "-o", "al.jsonl"]);
    let rows = jsonl(&t, "al.jsonl");
    assert!(
        rows[0]["instruction"]
            .as_str()
            .unwrap()
            .starts_with("Janet")
    );
    assert_eq!(rows[0]["input"], "");
    assert_eq!(rows[0]["output"], "B");
    assert_eq!(rows[0]["history"], json!([]));
    assert_eq!(rows[0]["system"], "");
    export(&[
        "--formatter",
        "dpo",
        "--format",
        "alpaca",
        "-o",
        "al_dpo.jsonl",
    ]);
    let rows = jsonl(&t, "al_dpo.jsonl");
    assert_eq!(
        (rows[0]["chosen"].as_str(), rows[0]["rejected"].as_str()),
        (Some("P1"), Some("F1"))
    );

    // Parquet: the TRL shape with typed columns, read back through SQL.
    export(&[
        "--formatter",
        "dpo",
        "--format",
        "parquet",
        "-o",
        "dpo.parquet",
    ]);
    let batch = common::read_parquet(&t.path("dpo.parquet"));
    assert_eq!(batch.num_rows(), 1);
    let names: Vec<String> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(names, ["id", "prompt", "chosen", "rejected"]);
    assert_eq!(common::strings(&batch, "id"), [Some("gsm8k-3".to_string())]);
    export(&["--format", "parquet", "-o", "sft.parquet"]);
    let batch = common::read_parquet(&t.path("sft.parquet"));
    assert_eq!(batch.num_rows(), 5);
    // The same turns as the TRL JSON Lines export, row by row.
    export(&["--format", "trl", "-o", "sft_trl.jsonl"]);
    let jsonl = std::fs::read_to_string(t.path("sft_trl.jsonl")).unwrap();
    let messages = batch
        .column_by_name("messages")
        .unwrap()
        .as_any()
        .downcast_ref::<arrow::array::ListArray>()
        .unwrap();
    for (row, line) in jsonl.lines().enumerate() {
        let want: Value = serde_json::from_str(line).unwrap();
        let turns = messages.value(row);
        let turns = turns
            .as_any()
            .downcast_ref::<arrow::array::StructArray>()
            .unwrap();
        let field = |name: &str, i: usize| {
            let col = turns
                .column_by_name(name)
                .unwrap()
                .as_any()
                .downcast_ref::<arrow::array::StringArray>()
                .unwrap();
            arrow::array::Array::is_valid(col, i).then(|| col.value(i).to_string())
        };
        let want = want["messages"].as_array().unwrap();
        assert_eq!(arrow::array::Array::len(turns), want.len(), "row {row}");
        for (i, w) in want.iter().enumerate() {
            assert_eq!(field("role", i).as_deref(), w["role"].as_str(), "row {row}");
            assert_eq!(
                field("content", i).as_deref(),
                w["content"].as_str(),
                "row {row}"
            );
            assert_eq!(
                field("reasoning_content", i).as_deref(),
                w["reasoning_content"].as_str(),
                "row {row}"
            );
        }
    }

    let err = t.fails(&["export", "run", "--formatter", "nope", "-o", "x.jsonl"]);
    assert!(
        err.contains("no formatter named `nope` in the config (sft) nor in run/train/"),
        "{err}"
    );
    assert!(!t.path("x.jsonl").exists());
}

fn stats(t: &TestDir) -> Value {
    serde_json::from_str(&std::fs::read_to_string(t.path("run/summary/stats.json")).unwrap())
        .unwrap()
}

/// Width and height of a PNG file, checking its signature.
fn png_size(path: &std::path::Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(
        &bytes[..8],
        b"\x89PNG\r\n\x1a\n",
        "{} is not a PNG",
        path.display()
    );
    let be = |i: usize| u32::from_be_bytes(bytes[i..i + 4].try_into().unwrap());
    (be(16), be(20))
}

#[test]
fn analyze_counts_what_was_worked_out_by_hand() {
    let t = fixture_run();
    let out = t.ok(&["analyze", "run"]);
    assert!(
        out.contains("pass@2") && out.contains("saved by early stop"),
        "{out}"
    );
    let s = stats(&t);
    assert_eq!(s["prompts"], 26);
    assert_eq!(s["prompts_sampled"], 7);
    // The failed request of gsm8k-5 is kept as a row but is no rollout.
    assert_eq!(s["rollouts"], 15);
    assert_eq!(s["valid"], 13);
    assert_eq!(s["truncated"], 2);
    assert_eq!(s["errors"], 1);
    assert_eq!(s["passed"], 9);
    assert!((s["pass_rate"].as_f64().unwrap() - 9.0 / 13.0).abs() < 1e-12);
    assert!((s["mean_prompt_pass_rate"].as_f64().unwrap() - 0.75).abs() < 1e-12);
    assert_eq!(
        [
            &s["prompts_all_pass"],
            &s["prompts_all_fail"],
            &s["prompts_mixed"],
            &s["prompts_no_valid"]
        ],
        [4, 1, 1, 1]
    );
    // pass@k against the closed form 1 − C(n−c, k)/C(n, k), by hand:
    // k=1: (1 + 0 + 1 + 1/2 + 1 + 1) / 6; k=2 over n ≥ 2: (1 + 0 + 5/6) / 3;
    // k=4 over n ≥ 4: (1 + 1) / 2.
    let pk: Vec<(u64, f64, u64)> = s["pass_at_k"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["k"].as_u64().unwrap(),
                p["value"].as_f64().unwrap(),
                p["prompts"].as_u64().unwrap(),
            )
        })
        .collect();
    let expected = [
        (1, 4.5 / 6.0, 6),
        (2, (1.0 + 5.0 / 6.0) / 3.0, 3),
        (4, 1.0, 2),
    ];
    assert_eq!(pk.len(), 3);
    for ((k, v, n), (ek, ev, en)) in pk.iter().zip(expected) {
        assert_eq!((*k, *n), (ek, en));
        assert!((v - ev).abs() < 1e-12, "pass@{k}: {v} vs {ev}");
    }
    assert_eq!(s["rollouts_per_prompt"], json!({"1": 3, "2": 2, "4": 2}));
    assert!((s["early_stop_saved"].as_f64().unwrap() - (1.0 - 15.0 / 56.0)).abs() < 1e-12);
    assert_eq!(s["completion_tokens_pass"]["count"], 9);
    assert_eq!(s["completion_tokens_pass"]["max"], 300.0);
    assert_eq!(s["completion_tokens_fail"]["count"], 4);
    assert!(s["best_of_n_error"].is_null());
    let hist: Vec<u64> = s["pass_rate_histogram"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_u64().unwrap())
        .collect();
    assert_eq!(hist, [1, 0, 0, 0, 0, 1, 0, 0, 0, 4]);

    for chart in ["pass_rate", "completion_tokens", "rollouts_per_prompt"] {
        assert_eq!(
            png_size(&t.path(&format!("run/summary/charts/{chart}.png"))),
            (960, 600)
        );
    }
    let html = std::fs::read_to_string(t.path("run/summary/report.html")).unwrap();
    // The charts are embedded: the report is one file a user can send.
    assert!(
        html.contains("<img src=\"data:image/png;base64,iVBORw0KGgo") && html.contains("pass@4")
    );
    assert!(!html.contains("src=\"charts/"));
    let txt = std::fs::read_to_string(t.path("run/summary/statistics.txt")).unwrap();
    assert!(txt.contains("9 of 13 (69.2%)"), "{txt}");
    assert!(
        std::fs::read_dir(t.path("run/summary/charts"))
            .unwrap()
            .all(|e| !e.unwrap().file_name().to_string_lossy().contains(".tmp"))
    );
}

#[test]
fn analyze_reports_the_best_of_n_error_for_the_numeric_verifier() {
    let t = common::prepared_gsm8k(&["shard.size=10", "sampler.model=m", "verifier.type=numeric"]);
    // Gold: gsm8k-0 = 18, gsm8k-1 = 3.
    write(
        &t,
        &[
            r("gsm8k-0", 0, "17", 0.0, 5),
            r("gsm8k-0", 1, "18.5", 0.0, 5),
            r("gsm8k-1", 0, "3", 1.0, 5),
            r("gsm8k-1", 1, "7", 0.0, 5),
        ],
    );
    t.ok(&["analyze", "run"]);
    let e = &stats(&t)["best_of_n_error"];
    assert_eq!(e["count"], 2);
    assert_eq!(e["mean"], 0.25);
    assert_eq!(e["max"], 0.5);
    assert_eq!(
        png_size(&t.path("run/summary/charts/best_of_n_error.png")),
        (960, 600)
    );
}

#[test]
fn compare_puts_runs_side_by_side() {
    let t = fixture_run();
    // A second run: the same prompts with every rollout failing.
    let u = common::prepared_gsm8k(&["shard.size=10", "sampler.model=m2"]);
    write(
        &u,
        &[r("gsm8k-0", 0, "no", 0.0, 5), r("gsm8k-1", 0, "no", 0.0, 5)],
    );
    let other = u.path("run").display().to_string();
    let output = t
        .cmd(&["compare", "run", &other, "--out", "cmp"])
        .output()
        .unwrap();
    common::assert_success(&output, &[]);
    let out = String::from_utf8(output.stdout).unwrap();
    // Both fixtures keep the default early stop: the numbers are flagged.
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        err.contains("every run was sampled with early stop") && err.contains("biased"),
        "{err}"
    );
    // One metric a line, one run a column: it fits a terminal.
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("run"), "{out}");
    // pass@k at the largest k both runs have: 1 here, so one line.
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("pass@")).count(),
        1,
        "{out}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("pass_rate") && l.contains("0.6923")),
        "{out}"
    );
    let csv = std::fs::read_to_string(t.path("cmp/compare.csv")).unwrap();
    let rows: Vec<Vec<&str>> = csv.lines().map(|l| l.split(',').collect()).collect();
    let col = |name: &str| rows[0].iter().position(|c| *c == name).unwrap();
    assert_eq!(rows[1][col("pass_rate")], "0.6923");
    assert_eq!(rows[2][col("pass_rate")].parse::<f64>().unwrap(), 0.0);
    assert_eq!(rows[2][1], "m2");
    // The second run against the first, paired by prompt: it never passes,
    // so it is worse wherever the first passed and never better.
    assert!(rows[2][col("diff_vs_first")].parse::<f64>().unwrap() < 0.0);
    assert_eq!(rows[2][col("better")], "0");
    assert_eq!(rows[1][col("diff_vs_first")], "");
    assert!(out.contains("vs run:"), "{out}");
    // Spending: tokens always, cost only with prices.
    assert!(rows[1][col("tokens")].parse::<u64>().unwrap() > 0);
    assert_eq!(rows[1][col("cost")], "");
    assert_eq!(png_size(&t.path("cmp/compare.png")), (960, 600));
    assert_eq!(png_size(&t.path("cmp/accuracy.png")), (960, 600));
    let err = t.fails(&["compare", "run"]);
    assert!(
        err.contains("required") || err.contains("2 values"),
        "{err}"
    );
}

#[test]
fn the_example_all_pairs_formatter_pairs_every_pass_with_every_fail() {
    let t = fixture_run();
    let sql = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/formatters/dpo_all_pairs.sql");
    let kind = format!("formatter.0.type={}", sql.display());
    t.ok(&["format", "run", &kind]);
    // Only gsm8k-3 has passes (P1, P2) and fails (F1, F2): 4 pairs.
    let rows = jsonl(&t, "run/train/dpo_all_pairs.jsonl");
    let pairs: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            (
                r["chosen"][0]["content"].as_str().unwrap().into(),
                r["rejected"][0]["content"].as_str().unwrap().into(),
            )
        })
        .collect();
    let expected = [("P1", "F1"), ("P1", "F2"), ("P2", "F1"), ("P2", "F2")];
    assert_eq!(pairs, expected.map(|(a, b)| (a.to_string(), b.to_string())));
    t.ok(&["format", "run", &kind, "formatter.0.k=1"]);
    assert_eq!(jsonl(&t, "run/train/dpo_all_pairs.jsonl").len(), 1);
}

#[test]
fn both_spellings_of_shapes_and_reasoning_modes_are_accepted() {
    let t = fixture_run();
    // Flags with underscores, config values with hyphens: the same files.
    t.ok(&[
        "export",
        "run",
        "--format",
        "trl_prompt_completion",
        "--reasoning",
        "think_tags",
        "-o",
        "a.jsonl",
    ]);
    t.ok(&[
        "export",
        "run",
        "export.format=trl-prompt-completion",
        "export.reasoning=think-tags",
        "-o",
        "b.jsonl",
    ]);
    let a = std::fs::read_to_string(t.path("a.jsonl")).unwrap();
    assert_eq!(a, std::fs::read_to_string(t.path("b.jsonl")).unwrap());
    assert!(a.contains("\"completion\"") && a.contains("<think>"), "{a}");
}

#[test]
fn format_on_a_work_dir_never_sampled_says_so_and_writes_nothing() {
    let t = common::prepared_gsm8k(&["sampler.model=m"]);
    let err = t.fails(&["format", "run"]);
    assert!(
        err.contains("run has no rollouts yet: sample it first (rsr sample work_dir=run"),
        "{err}"
    );
    assert!(!t.path("run/train").exists());
    let err = t.fails(&["format", "nowhere"]);
    assert!(err.contains("check the path"), "{err}");
}

#[test]
fn the_output_extension_decides_the_file_type_and_a_contradiction_is_an_error() {
    let t = fixture_run();
    t.ok(&["export", "run", "-o", "sft.parquet"]);
    let bytes = std::fs::read(t.path("sft.parquet")).unwrap();
    assert_eq!(&bytes[..4], b"PAR1", "Parquet, not JSON Lines");
    assert_eq!(common::read_parquet(&t.path("sft.parquet")).num_rows(), 5);
    let err = t.fails(&["export", "run", "--format", "parquet", "-o", "x.jsonl"]);
    assert!(
        err.contains("contradicts the extension of x.jsonl"),
        "{err}"
    );
    assert!(!t.path("x.jsonl").exists());
    let err = t.fails(&[
        "sql",
        "run",
        "SELECT 1 AS a",
        "--format",
        "csv",
        "-o",
        "y.parquet",
    ]);
    assert!(
        err.contains("--format csv contradicts the extension of y.parquet"),
        "{err}"
    );
    assert!(!t.path("y.parquet").exists());
}

#[test]
fn train_files_say_what_they_hold_and_export_follows_format() {
    let t = fixture_run();
    t.ok(&["format", "run"]);
    let m: Value = serde_json::from_str(
        &std::fs::read_to_string(t.path("run/train/sft.jsonl.manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(m["file"], "train/sft.jsonl");
    assert_eq!(m["formatter"]["type"], "sft");
    assert_eq!(m["scores"], "inline");
    assert_eq!(m["format"], "trl");
    assert_eq!(m["reasoning"], "think_tags");
    assert_eq!(
        (m["rows"].as_u64(), m["prompts"].as_u64()),
        (Some(5), Some(5))
    );
    assert!(m["written_at"].as_str().is_some());

    // Only the hard prompts: the file is replaced, and the command says so.
    let out = t
        .cmd(&["format", "run", "formatter.0.max_pass_rate=0.9"])
        .output()
        .unwrap();
    common::assert_success(&out, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("replaced train/sft.jsonl: 5 -> 1 rows (was: no filters, inline verdicts, thinking think_tags; now: max_pass_rate=0.9, inline verdicts, thinking think_tags)"),
        "{err}"
    );
    // Another shape goes to its own file.
    t.ok(&["format", "run", "export.format=sharegpt"]);
    assert!(t.path("run/train/sft.sharegpt.jsonl").is_file());
    assert_eq!(
        jsonl(&t, "run/train/sft.jsonl").len(),
        1,
        "the trl file is untouched"
    );

    // export uses what format last wrote under the name: a DPO set made by
    // format alone, and the filtered SFT set with its rows.
    t.ok(&["format", "run", "formatter.0.type=dpo"]);
    t.ok(&["export", "run", "--formatter", "dpo", "-o", "dpo.jsonl"]);
    assert_eq!(
        jsonl(&t, "dpo.jsonl"),
        jsonl(&t, "run/train/dpo.jsonl"),
        "export and train/ agree"
    );
    t.ok(&["format", "run", "formatter.0.max_pass_rate=0.9"]);
    t.ok(&["export", "run", "-o", "hard.jsonl"]);
    assert_eq!(jsonl(&t, "hard.jsonl").len(), 1);
    // Overrides on export itself win.
    t.ok(&[
        "export",
        "run",
        "formatter.0.max_pass_rate=1.0",
        "-o",
        "all.jsonl",
    ]);
    assert_eq!(jsonl(&t, "all.jsonl").len(), 5);
}

#[test]
fn rows_trace_back_to_their_rollouts_with_ids() {
    let t = fixture_run();
    t.ok(&["export", "run", "--with-ids", "-o", "sft.jsonl"]);
    let rows = jsonl(&t, "sft.jsonl");
    // gsm8k-3: P1 and P2 pass with the same length; the lower index wins.
    let r3 = rows.iter().find(|r| r["id"] == "gsm8k-3").unwrap();
    assert_eq!(r3["rollout_idx"], 1);
    assert!(
        rows.iter()
            .all(|r| r["id"].is_string() && r["rollout_idx"].is_u64())
    );
    t.ok(&[
        "export",
        "run",
        "export.with_ids=true",
        "formatter.0.type=dpo",
        "-o",
        "dpo.jsonl",
    ]);
    let pairs = jsonl(&t, "dpo.jsonl");
    assert_eq!(pairs.len(), 1);
    assert_eq!(
        (
            &pairs[0]["id"],
            &pairs[0]["chosen_rollout_idx"],
            &pairs[0]["rejected_rollout_idx"]
        ),
        (&json!("gsm8k-3"), &json!(1), &json!(0))
    );
    // Parquet carries the indices as columns.
    t.ok(&["export", "run", "--with-ids", "-o", "sft.parquet"]);
    let batch = common::read_parquet(&t.path("sft.parquet"));
    assert!(batch.column_by_name("rollout_idx").is_some());
    t.ok(&["export", "run", "-o", "plain.parquet"]);
    let batch = common::read_parquet(&t.path("plain.parquet"));
    assert!(batch.column_by_name("rollout_idx").is_none());
    // Off by default: the rows are exactly what trainers read.
    t.ok(&["export", "run", "-o", "plain.jsonl"]);
    assert!(
        jsonl(&t, "plain.jsonl")
            .iter()
            .all(|r| r.get("id").is_none())
    );
}

#[test]
fn max_similarity_keeps_distinct_responses_and_lets_near_copies_give_way() {
    const A: &str = "Janet's ducks lay 16 eggs. She eats 3 and bakes with 4, so 16 - 3 - 4 = 9 eggs are sold at $2 each: 9 * 2 = 18. The answer is \\boxed{18}.";
    const A2: &str = "Janet's ducks lay 16 eggs; she eats 3 and bakes with 4, so 16 - 3 - 4 = 9 eggs are sold at $2 each: 9 * 2 = 18. The answer is $\\boxed{18}$";
    const B: &str = "Eggs left for the market: sixteen minus seven is nine. Nine eggs at two dollars make eighteen dollars. \\boxed{18}";
    const C: &str = "Let x be the money: x = 2(16 - 3 - 4) = 18, answer 18.";
    let t = common::prepared_gsm8k(&["shard.size=10", "sampler.model=m"]);
    write(
        &t,
        &[
            r("gsm8k-0", 0, A, 1.0, 40),
            r("gsm8k-0", 1, A2, 1.0, 41),
            r("gsm8k-0", 2, B, 1.0, 42),
            r("gsm8k-0", 3, C, 1.0, 43),
            r("gsm8k-1", 0, B, 1.0, 10),
        ],
    );
    // Without a ceiling, top_k takes the two best: A and its near-copy.
    t.ok(&["format", "run", "formatter.0.type=top_k", "formatter.0.k=2"]);
    assert_eq!(
        sft_answers(&jsonl(&t, "run/train/top_k.jsonl")),
        vec![A, A2, B]
    );
    // With one, A2 gives way to B.
    let out = t
        .cmd(&[
            "format",
            "run",
            "formatter.0.type=top_k",
            "formatter.0.k=2",
            "formatter.0.max_similarity=0.6",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "top_k: 1 responses left out as near-copies of a kept one (max_similarity=0.6)"
        ),
        "{stderr}"
    );
    assert_eq!(
        sft_answers(&jsonl(&t, "run/train/top_k.jsonl")),
        vec![A, B, B]
    );
    // multi_sft without k: every distinct one, in sampling order.
    t.ok(&[
        "format",
        "run",
        "formatter.0.type=multi_sft",
        "formatter.0.max_similarity=0.6",
    ]);
    assert_eq!(
        sft_answers(&jsonl(&t, "run/train/multi_sft.jsonl")),
        vec![A, B, C, B]
    );
    // Export reads the same setting from what format wrote.
    t.ok(&[
        "export",
        "run",
        "--output",
        "again.jsonl",
        "--formatter",
        "multi_sft",
    ]);
    assert_eq!(sft_answers(&jsonl(&t, "again.jsonl")).len(), 4);
    // Refused where it means nothing, and out of range.
    let err = t.fails(&["format", "run", "formatter.0.max_similarity=0.5"]);
    assert!(
        err.contains("max_similarity applies to top_k and multi_sft"),
        "{err}"
    );
    let err = t.fails(&[
        "format",
        "run",
        "formatter.0.type=top_k",
        "formatter.0.k=2",
        "formatter.0.max_similarity=1.5",
    ]);
    assert!(err.contains("outside (0, 1)"), "{err}");
}
