//! `ifeval` through the binary: Google's rows through the shipped
//! transform, open-instruct's ground truth from metadata, per-instruction
//! results in SQL, IFEval's four numbers and the per-id table in `analyze`
//! (checked by hand), bad gold refused before sampling, and the constraint
//! transform (seeded, checkable, decontaminated against IFEval).

mod common;

use std::path::Path;

use common::{TestDir, mock::Mock, query};
use serde_json::{Value, json};

fn write_lines(t: &TestDir, name: &str, rows: &[Value]) {
    let text: String = rows.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(t.path(name), text).unwrap();
}

fn repo(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(rel)
        .display()
        .to_string()
}

/// Four prompts in Google's shape (the last with the Hub's null kwargs),
/// and a reply to each whose outcome is known.
fn google_rows(t: &TestDir) {
    write_lines(
        t,
        "ifeval.jsonl",
        &[
            json!({"key": 1, "prompt": "Title it, no commas.",
                   "instruction_id_list": ["punctuation:no_comma", "detectable_format:title"],
                   "kwargs": [{}, {}]}),
            json!({"key": 2, "prompt": "Quote it all.",
                   "instruction_id_list": ["startend:quotation"], "kwargs": [{}]}),
            json!({"key": 3, "prompt": "Fewer than 5 words.",
                   "instruction_id_list": ["length_constraints:number_words"],
                   "kwargs": [{"relation": "less than", "num_words": 5}]}),
            json!({"key": 4, "prompt": "Mention a river.",
                   "instruction_id_list": ["keywords:existence"],
                   "kwargs": [{"keywords": ["river"], "num_words": null, "relation": null}]}),
        ],
    );
    write_lines(
        t,
        "replies.jsonl",
        &[
            // The comma is only on the last line: loose (without it) passes.
            json!({"id": "ifeval-1", "response": "<think>Commas, here, are fine.</think><<Rivers>>\nWater flows, downhill"}),
            json!({"id": "ifeval-2", "response": "\"All quoted\""}),
            json!({"id": "ifeval-3", "response": "one two three four five six"}),
            json!({"id": "ifeval-4", "response": "The River runs."}),
        ],
    );
}

fn run_args<'a>(input: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "run",
        "work_dir=run",
        input,
        "sampler.type=replay",
        "sampler.replay_path=replies.jsonl",
        "sampler.model=replay",
        "verifier.type=ifeval",
        "sampling.max_rollouts=1",
        "sampling.step_size=1",
        "formatter=[]",
    ];
    args.extend_from_slice(extra);
    args
}

#[test]
fn a_run_reports_ifevals_four_numbers_and_the_per_id_table() {
    let t = TestDir::new();
    google_rows(&t);
    t.ok(&run_args(
        "data.input_path=ifeval.jsonl",
        &["data.preprocess.transform=ifeval"],
    ));
    // The stored gold is one shape, null kwargs dropped.
    let gold = query(&t, "run", "SELECT answer FROM inputs WHERE id = 'ifeval-4'");
    assert_eq!(
        gold[0]["answer"],
        r#"{"instruction_id_list":["keywords:existence"],"kwargs":[{"keywords":["river"]}]}"#
    );
    let rows = query(
        &t,
        "run",
        "SELECT id, instruction_id, followed_strict, followed_loose FROM instructions ORDER BY id, instruction_id",
    );
    let got: Vec<(String, String, bool, bool)> = rows
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_string(),
                r["instruction_id"].as_str().unwrap().to_string(),
                r["followed_strict"].as_bool().unwrap(),
                r["followed_loose"].as_bool().unwrap(),
            )
        })
        .collect();
    let want = [
        ("ifeval-1", "detectable_format:title", true, true),
        ("ifeval-1", "punctuation:no_comma", false, true),
        ("ifeval-2", "startend:quotation", true, true),
        ("ifeval-3", "length_constraints:number_words", false, false),
        ("ifeval-4", "keywords:existence", true, true),
    ];
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert_eq!((g.0.as_str(), g.1.as_str(), g.2, g.3), w);
    }
    // Strict: every instruction of ifeval-2 and -4 (2 of 4 responses), and
    // 3 of 5 instructions; loose adds ifeval-1 (3 of 4) and its comma (4 of 5).
    t.ok(&["analyze", "run"]);
    let stats: Value =
        serde_json::from_str(&std::fs::read_to_string(t.path("run/summary/stats.json")).unwrap())
            .unwrap();
    let f = &stats["ifeval"];
    assert_eq!(f["responses"], 4);
    assert_eq!(f["prompt_strict"], 0.5);
    assert_eq!(f["prompt_loose"], 0.75);
    assert_eq!(f["instructions"], 5);
    assert_eq!(f["instruction_strict"], 0.6);
    assert_eq!(f["instruction_loose"], 0.8);
    let no_comma = f["per_id"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "punctuation:no_comma")
        .unwrap();
    assert_eq!(
        (&no_comma["count"], &no_comma["strict"], &no_comma["loose"]),
        (&json!(1), &json!(0), &json!(1))
    );
    let text = std::fs::read_to_string(t.path("run/summary/statistics.txt")).unwrap();
    assert!(text.contains("[instruction following (IFEval)]"), "{text}");
    assert!(text.contains("prompt-level strict"), "{text}");
    assert!(text.contains("instruction-level loose"), "{text}");
    let report = std::fs::read_to_string(t.path("run/summary/report.html")).unwrap();
    assert!(report.contains("instruction-level strict"));
    // The SQL functions score any text against any gold.
    let rows = query(
        &t,
        "run",
        r#"SELECT ifeval_results('a, b', '{"instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]}') AS r,
                  ifeval_verify('a b', '{"instruction_id_list": ["punctuation:no_comma"]}') AS s"#,
    );
    assert_eq!(rows[0]["r"], "punctuation:no_comma=failed");
    assert_eq!(rows[0]["s"], 1.0);
}

#[test]
fn open_instruct_ground_truth_is_read_from_metadata() {
    let t = TestDir::new();
    write_lines(
        &t,
        "oi.jsonl",
        &[
            json!({"id": "a", "messages": [{"role": "user", "content": "Say hi with a P.S."}],
                   "ground_truth": "{'instruction_id': ['detectable_content:postscript'], 'kwargs': [{'postscript_marker': 'P.S.'}]}"}),
            json!({"id": "b", "messages": [{"role": "user", "content": "No commas."}],
                   "ground_truth": "{\"instruction_id\": [\"punctuation:no_comma\"], \"kwargs\": [{}]}"}),
        ],
    );
    write_lines(
        &t,
        "replies.jsonl",
        &[
            json!({"id": "a", "response": "Hi!\n\nP.S. Bye."}),
            json!({"id": "b", "response": "One, two."}),
        ],
    );
    t.ok(&run_args("data.input_path=oi.jsonl", &[]));
    let rows = query(
        &t,
        "run",
        "SELECT id, score, pred FROM rollouts ORDER BY id",
    );
    assert_eq!(rows[0]["score"], 1.0);
    assert_eq!(rows[0]["pred"], "detectable_content:postscript=followed");
    assert_eq!(rows[1]["score"], 0.0);
}

#[test]
fn bad_gold_is_refused_before_sampling_naming_the_prompt_and_key() {
    let t = TestDir::new();
    write_lines(
        &t,
        "bad.jsonl",
        &[
            json!({"key": 1, "prompt": "x", "instruction_id_list": ["punctuation:no_commas"], "kwargs": [{}]}),
            json!({"key": 2, "prompt": "y", "instruction_id_list": ["length_constraints:number_words"],
                   "kwargs": [{"relation": "at least"}]}),
            json!({"key": 3, "prompt": "z", "instruction_id_list": ["startend:quotation"], "kwargs": [{}]}),
        ],
    );
    write_lines(&t, "replies.jsonl", &[]);
    let err = t.fails(&run_args(
        "data.input_path=bad.jsonl",
        &["data.preprocess.transform=ifeval"],
    ));
    assert!(err.contains("2 invalid rows"), "{err}");
    assert!(
        err.contains("prompt ifeval-1: gold for verifier ifeval: answer: unknown instruction id `punctuation:no_commas`"),
        "{err}"
    );
    assert!(
        err.contains("prompt ifeval-2: gold for verifier ifeval: answer: length_constraints:number_words: kwargs.num_words is missing"),
        "{err}"
    );
    assert!(!t.path("run/data/input.parquet").exists());
    assert!(!t.path("run/rollouts").exists());
}

#[test]
fn constraint_transform_is_seeded_checkable_and_decontaminated() {
    let t = TestDir::new();
    let chat = repo("examples/data/chat_prompts.jsonl");
    let config = repo("configs/ifeval_data.yaml");
    let prepare = |dir: &str| {
        t.ok(&[
            "prepare",
            &config,
            &format!("work_dir={dir}"),
            &format!("data.input_path={chat}"),
            "sampler.model=mock",
        ]);
        query(
            &t,
            dir,
            "SELECT id, messages, answer, contaminated FROM inputs ORDER BY id",
        )
    };
    let first = prepare("one");
    let second = prepare("two");
    assert_eq!(first, second, "the same seed draws the same constraints");
    assert_eq!(first.len(), 12);
    let mut ids = std::collections::BTreeSet::new();
    for row in &first {
        let gold: Value = serde_json::from_str(row["answer"].as_str().unwrap()).unwrap();
        let list = gold["instruction_id_list"].as_array().unwrap();
        assert!((1..=3).contains(&list.len()), "{gold}");
        ids.extend(list.iter().map(|v| v.as_str().unwrap().to_string()));
        let messages: Value = serde_json::from_str(row["messages"].as_str().unwrap()).unwrap();
        let content = messages[0]["content"].as_str().unwrap();
        assert!(content.contains("\n\n"), "instructions appended: {content}");
        assert_eq!(row["contaminated"], false);
    }
    assert!(ids.len() >= 6, "varied instructions: {ids:?}");
    let hygiene = std::fs::read_to_string(t.path("one/data/hygiene.json")).unwrap();
    assert!(hygiene.contains("ifeval.jsonl"), "{hygiene}");
    // The attached instructions never look like IFEval's own prompts: 300
    // prompts with every instruction drawn many times, none flagged.
    let topics: Vec<Value> = (0..300)
        .map(|i| json!({"id": format!("t{i}"), "messages": [{"role": "user", "content": format!("Tell me about topic number {i}.")}]}))
        .collect();
    write_lines(&t, "topics.jsonl", &topics);
    t.ok(&[
        "prepare",
        &config,
        "work_dir=topics",
        "data.input_path=topics.jsonl",
        "sampler.model=mock",
    ]);
    let flagged = query(
        &t,
        "topics",
        "SELECT count(*) AS n FROM inputs WHERE contaminated",
    );
    assert_eq!(flagged[0]["n"], 0);
    // Sampled from the mock, every constrained prompt is checked.
    let mock = Mock::start(&[
        "--gold",
        &t.path("one/data/input.parquet").display().to_string(),
    ]);
    t.ok(&[
        "sample",
        "work_dir=one",
        &mock.base_url_arg(),
        "sampling.max_rollouts=2",
        "sampling.step_size=2",
    ]);
    let scored = query(
        &t,
        "one",
        "SELECT count(*) AS n, count(DISTINCT instruction_id) AS ids FROM instructions",
    );
    assert!(scored[0]["n"].as_u64().unwrap() >= 24, "{scored:?}");
}
