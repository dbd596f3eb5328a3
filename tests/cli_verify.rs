//! `rsr verify` over rollout Parquet files written by the test.

mod common;

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Float64Array, RecordBatch, StringArray, TimestampMillisecondArray,
    UInt32Array, UInt64Array,
};
use common::{TestDir, fixture, read_parquet, strings};
use rsr::store::parquet::ParquetFile;
use rsr::store::rollout::{rollout_part_path, rollout_schema};

/// (id, rollout_idx, response, inline score)
type Row<'a> = (&'a str, u32, Option<&'a str>, Option<f64>);

fn write_part(root: &std::path::Path, shard: u32, part: u32, rows: &[Row<'_>]) {
    let n = rows.len();
    let strs = |f: &dyn Fn(&Row<'_>) -> Option<String>| -> ArrayRef {
        Arc::new(rows.iter().map(f).collect::<StringArray>())
    };
    let columns: Vec<ArrayRef> = vec![
        strs(&|r| Some(r.0.to_string())),
        Arc::new(rows.iter().map(|r| r.1).collect::<UInt32Array>()),
        Arc::new(UInt32Array::from(vec![0; n])),
        strs(&|r| r.2.map(str::to_string)),
        strs(&|_| None),
        strs(&|r| r.2.map(|_| "stop".to_string())),
        Arc::new(BooleanArray::from(vec![false; n])),
        strs(&|r| {
            r.2.is_none()
                .then(|| "HTTP 500 after 5 retries".to_string())
        }),
        Arc::new(UInt32Array::from(vec![Some(50); n])),
        Arc::new(UInt32Array::from(vec![Some(200); n])),
        Arc::new(UInt64Array::from(vec![Some(900); n])),
        strs(&|_| Some("test-model".into())),
        strs(&|_| Some("http://127.0.0.1:1/v1".into())),
        Arc::new(TimestampMillisecondArray::from(vec![1_790_000_000_000; n]).with_timezone("UTC")),
        Arc::new(rows.iter().map(|r| r.3).collect::<Float64Array>()),
        strs(&|_| None),
    ];
    // Part files as rsr wrote them before `response_hash` existed: the
    // views compute the hash from the text.
    let full = rollout_schema();
    let fields: Vec<_> = full
        .fields()
        .iter()
        .filter(|f| f.name() != "response_hash")
        .cloned()
        .collect();
    let schema = Arc::new(arrow::datatypes::Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
    let mut f = ParquetFile::create(&rollout_part_path(root, shard, part), schema).unwrap();
    f.write(&batch).unwrap();
    f.commit().unwrap();
}

fn run_with_rollouts() -> TestDir {
    let t = common::prepared_gsm8k(&["shard.size=10"]);
    let root = t.path("run");
    // gsm8k-0: 18, gsm8k-1: 3, gsm8k-12 (shard 1): gold checked below.
    write_part(
        &root,
        0,
        0,
        &[
            (
                "gsm8k-0",
                0,
                Some("<think>maybe 16</think>\\boxed{18}"),
                Some(1.0),
            ),
            (
                "gsm8k-0",
                1,
                Some("<think>it is 18</think>So \\boxed{16}"),
                Some(1.0),
            ), // inline was wrong
            ("gsm8k-0", 2, Some("<think>I think \\boxed{18}"), Some(0.0)), // unclosed
            ("gsm8k-1", 0, Some("The answer is 3."), Some(0.0)),           // inline was wrong
            ("gsm8k-1", 1, None, None),                                    // failed request
        ],
    );
    write_part(&root, 0, 1, &[("gsm8k-1", 2, Some("#### 3"), None)]);
    write_part(
        &root,
        1,
        0,
        &[("gsm8k-12", 0, Some("\\boxed{0}"), Some(0.0))],
    );
    // An unfinished part file is ignored.
    std::fs::write(
        root.join("rollout/shard_0001/part-000001.parquet.tmp"),
        b"partial",
    )
    .unwrap();
    t
}

#[test]
fn rescoring_writes_scores_per_shard_and_reports_changes() {
    let t = run_with_rollouts();
    let out = t.cmd(&["verify", "run"]).output().unwrap();
    common::assert_success(&out, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        // The failed request (gsm8k-1/1) is no rollout: it gets no verdict.
        stderr.contains("scored 6 rollouts with math-rlvr")
            && stderr.contains("3 of 6 valid rollouts pass (50.0%)"),
        "{stderr}"
    );
    assert!(stderr.contains("(2 shard file(s))"), "{stderr}");
    assert!(
        stderr.contains("2 verdicts changed against the inline scores (1 up, 1 down)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("1 had no inline score, 0 had no response"),
        "{stderr}"
    );

    // Rows are in scan order: key them by (id, rollout_idx).
    let s0 = read_parquet(&t.path("run/scores/math-rlvr/shard_0000.parquet"));
    let (ids, idx) = (strings(&s0, "id"), strings(&s0, "rollout_idx"));
    let (score, pred) = (strings(&s0, "score"), strings(&s0, "pred"));
    let mut rows: Vec<(String, Option<String>, Option<String>)> = (0..s0.num_rows())
        .map(|i| {
            let key = format!(
                "{}/{}",
                ids[i].as_deref().unwrap(),
                idx[i].as_deref().unwrap()
            );
            (key, score[i].clone(), pred[i].clone())
        })
        .collect();
    rows.sort();
    let some = |s: &str| Some(s.to_string());
    assert_eq!(
        rows,
        vec![
            ("gsm8k-0/0".into(), some("1.0"), some("18")),
            ("gsm8k-0/1".into(), some("0.0"), some("16")),
            ("gsm8k-0/2".into(), some("0.0"), None),
            ("gsm8k-1/0".into(), some("1.0"), some("3")),
            ("gsm8k-1/2".into(), some("1.0"), some("3")),
        ]
    );
    assert_eq!(strings(&s0, "verifier")[0].as_deref(), Some("math-rlvr"));
    assert!(t.path("run/scores/math-rlvr/shard_0001.parquet").is_file());

    // The new tables are queryable.
    let csv = t.ok(&[
        "sql",
        "run",
        "SELECT count(*) AS rollouts, (SELECT count(*) FROM scores WHERE score = 1) AS pass FROM rollouts",
        "--format",
        "csv",
    ]);
    assert_eq!(csv, "rollouts,pass\n7,3\n");
}

#[test]
fn another_verifier_and_label_without_touching_the_run_config() {
    let t = run_with_rollouts();
    let before = std::fs::read_to_string(t.path("run/config.yaml")).unwrap();
    t.ok(&[
        "verify",
        "run",
        "verifier.type=numeric",
        "verifier.label=num",
        "verifier.options.tolerance=2",
    ]);
    let s = read_parquet(&t.path("run/scores/num/shard_0000.parquet"));
    // 16 vs gold 18 is within the tolerance of 2.
    let row = strings(&s, "pred")
        .iter()
        .position(|p| p.as_deref() == Some("16"))
        .unwrap();
    assert_eq!(strings(&s, "score")[row].as_deref(), Some("1.0"));
    assert_eq!(strings(&s, "verifier")[0].as_deref(), Some("num"));
    assert_eq!(
        std::fs::read_to_string(t.path("run/config.yaml")).unwrap(),
        before
    );
    // The label remembers its verifier: analyze with its verdicts reports
    // the numeric verifier's best-of-N error, not the run's math verifier.
    t.ok(&["analyze", "run", "--scores", "num"]);
    let stats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(t.path("run/summary/stats.json")).unwrap())
            .unwrap();
    assert_eq!(stats["verifier"], "numeric");
    assert_eq!(stats["verdicts"], "num");
    assert!(stats["best_of_n_error"].is_object(), "{stats}");
}

#[test]
fn errors_and_listing() {
    let t = TestDir::new();
    let input = format!("data.input_path={}", fixture("chat_sample.jsonl"));
    t.ok(&["prepare", "work_dir=run", &input]);
    let err = t.fails(&["verify", "run"]);
    assert!(
        err.contains("run has no rollouts yet: sample it first"),
        "{err}"
    );
    let err = t.fails(&["verify", "run", "verifier.type=regex"]);
    assert!(
        err.contains(
            "known verifiers: math-rlvr, mcq-rlvr, numeric, ifeval, llm-judge, mcq-llm-as-judge, reward-model"
        ),
        "{err}"
    );
    let err = t.fails(&["verify", "run", "sampler.model=x"]);
    assert!(err.contains("takes only verifier.* and judge.*"), "{err}");
    let list = t.ok(&["verify", "--list"]);
    for name in [
        "math-rlvr",
        "mcq-rlvr",
        "numeric",
        "ifeval",
        "llm-judge",
        "mcq-llm-as-judge",
        "reward-model",
    ] {
        assert!(list.contains(name), "{list}");
    }
}

#[test]
fn results_and_prompts_views_use_the_selected_verdicts() {
    let t = run_with_rollouts();
    let q = "SELECT id, n_rollouts, n_valid, n_pass, pass_rate, n_errors FROM prompts \
             WHERE n_rollouts > 0 ORDER BY id";
    // Inline verdicts as written while sampling.
    let inline = t.ok(&["sql", "run", q, "--format", "csv"]);
    assert_eq!(
        inline,
        "id,n_rollouts,n_valid,n_pass,pass_rate,n_errors\n\
         gsm8k-0,3,3,2,0.6666666666666666,0\n\
         gsm8k-1,2,2,0,0.0,1\n\
         gsm8k-12,1,1,0,0.0,0\n"
    );
    // Prompts without rollouts are there too, with zero counts.
    let all = t.ok(&[
        "sql",
        "run",
        "SELECT count(*) AS n, sum(n_rollouts) AS r FROM prompts",
        "--format",
        "csv",
    ]);
    assert_eq!(all, "n,r\n26,6\n");
    let err = t.fails(&["sql", "run", q, "--scores", "math-rlvr"]);
    assert!(err.contains("run rsr verify first"), "{err}");
    // Re-scored verdicts.
    t.ok(&["verify", "run"]);
    let rescored = t.ok(&["sql", "run", q, "--format", "csv", "--scores", "math-rlvr"]);
    assert_eq!(
        rescored,
        "id,n_rollouts,n_valid,n_pass,pass_rate,n_errors\n\
         gsm8k-0,3,3,1,0.3333333333333333,0\n\
         gsm8k-1,2,2,2,1.0,1\n\
         gsm8k-12,1,1,0,0.0,0\n"
    );
    let v = t.ok(&[
        "sql",
        "run",
        "SELECT DISTINCT verifier FROM results",
        "--format",
        "csv",
        "--scores",
        "math-rlvr",
    ]);
    assert_eq!(v, "verifier\nmath-rlvr\n");
}

#[test]
fn majority_vote_labels_prompts_and_scores_by_agreement() {
    let t = common::prepared_gsm8k(&[
        "shard.size=10",
        "sampler.type=replay",
        "sampler.replay_path=responses.jsonl",
        "sampling.max_rollouts=3",
        "sampling.step_size=3",
        "sampling.max_steps=1",
        "sampling.early_stop=false",
    ]);
    let ids = common::query(&t, "run", "SELECT id, answer FROM inputs ORDER BY id");
    let mut lines = String::new();
    for (i, r) in ids.iter().enumerate() {
        let (id, gold) = (r["id"].as_str().unwrap(), r["answer"].as_str().unwrap());
        let g: i64 = gold.parse().unwrap();
        // Even prompts: the gold twice, written differently, and a wrong
        // answer. Odd ones: a tie and no answer.
        let responses = if i % 2 == 0 {
            vec![
                format!("So \\boxed{{{g}}}."),
                format!("The answer is ${g}.0$."),
                format!("\\boxed{{{}}}", g + 1),
            ]
        } else {
            vec![
                "\\boxed{1}".to_string(),
                "\\boxed{2}".to_string(),
                "I cannot tell.".to_string(),
            ]
        };
        for resp in responses {
            lines += &serde_json::json!({"id": id, "response": resp}).to_string();
            lines += "\n";
        }
    }
    std::fs::write(t.path("responses.jsonl"), lines).unwrap();
    t.ok(&["sample", "work_dir=run"]);
    let out = t
        .cmd(&["verify", "run", "verifier.type=majority"])
        .output()
        .unwrap();
    common::assert_success(&out, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("13 of 26 prompts labelled"), "{err}");
    assert!(err.contains("for 13 of the 13 labelled prompts"), "{err}");
    let rows = common::query(
        &t,
        "run",
        "SELECT outcome, count(*) AS n, sum(score) AS pass, count(DISTINCT majority_label) AS labels \
         FROM scores WHERE verifier = 'majority' GROUP BY outcome ORDER BY outcome",
    );
    let by: std::collections::HashMap<&str, (u64, f64)> = rows
        .iter()
        .map(|r| {
            (
                r["outcome"].as_str().unwrap(),
                (r["n"].as_u64().unwrap(), r["pass"].as_f64().unwrap_or(0.0)),
            )
        })
        .collect();
    assert_eq!(by["agrees"], (26, 26.0));
    assert_eq!(by["disagrees"], (13, 0.0));
    assert_eq!(by["unlabelled"].0, 39);
    // Vote shares: 2/3 for the labelled prompts.
    let share = common::query(
        &t,
        "run",
        "SELECT DISTINCT round(vote_share, 4) AS s FROM scores \
         WHERE verifier = 'majority' AND majority_label IS NOT NULL",
    );
    assert_eq!(share.len(), 1);
    assert_eq!(share[0]["s"].as_f64(), Some(0.6667));
    // maj@k next to pass@k (inline math-rlvr verdicts), and the labelling
    // against the gold.
    t.ok(&["analyze", "run"]);
    let stats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(t.path("run/summary/stats.json")).unwrap())
            .unwrap();
    assert_eq!(
        stats["maj_at_k"],
        serde_json::json!([
            {"k": 1, "value": 0.5, "prompts": 26},
            {"k": 2, "value": 0.5, "prompts": 26}
        ])
    );
    assert_eq!(
        stats["majority_labels"],
        serde_json::json!([{"label": "majority", "prompts": 26, "labelled": 13, "with_gold": 13, "label_is_gold": 13}])
    );
    let text = std::fs::read_to_string(t.path("run/summary/statistics.txt")).unwrap();
    assert!(
        text.contains("maj@2") && text.contains("the label equals the gold for 13 of 13"),
        "{text}"
    );

    // Sampling with it: every prompt gets max_rollouts (no inline verdict
    // can stop it early), then the vote labels them and the training
    // files use its verdicts.
    let out = t
        .cmd(&[
            "run",
            "work_dir=run2",
            &format!("data.input_path={}", fixture("gsm8k_sample.jsonl")),
            "data.preprocess.transform=gsm8k",
            "sampler.type=replay",
            "sampler.replay_path=responses.jsonl",
            "sampling.max_rollouts=3",
            "sampling.step_size=1",
            "sampling.max_steps=3",
            "verifier.type=majority",
            "export.with_ids=true",
        ])
        .output()
        .unwrap();
    common::assert_success(&out, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("majority vote -> run2/scores/majority: 13 of 26 prompts labelled"),
        "{err}"
    );
    let n = common::query(
        &t,
        "run2",
        "SELECT count(*) AS n, count(score) AS scored FROM rollouts",
    );
    assert_eq!(n[0]["n"], 78);
    assert_eq!(n[0]["scored"], 0);
    let sft = std::fs::read_to_string(t.path("run2/train/sft.jsonl")).unwrap();
    assert_eq!(sft.lines().count(), 13);
    let stats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(t.path("run2/summary/stats.json")).unwrap())
            .unwrap();
    assert_eq!(stats["verdicts"], "majority");
}
