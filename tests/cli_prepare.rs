//! `rsr prepare` end to end: shipped transforms, input formats, validation
//! errors, resume.

mod common;

use common::{TestDir, fixture, read_parquet, strings};

fn prepare(t: &TestDir, args: &[&str]) -> arrow::array::RecordBatch {
    let mut all = vec!["prepare", "work_dir=run"];
    all.extend_from_slice(args);
    t.ok(&all);
    read_parquet(&t.path("run/data/input.parquet"))
}

#[test]
fn gsm8k_through_the_shipped_transform() {
    let t = TestDir::new();
    let input = format!("data.input_path={}", fixture("gsm8k_sample.jsonl"));
    let b = prepare(
        &t,
        &[
            &input,
            "data.preprocess.transform=sql/transforms/gsm8k.sql",
            "shard.size=10",
        ],
    );
    assert_eq!(b.num_rows(), 26);
    let ids = strings(&b, "id");
    assert_eq!(ids[0].as_deref(), Some("gsm8k-0"));
    assert_eq!(ids[25].as_deref(), Some("gsm8k-25"));
    let answers = strings(&b, "answer");
    assert_eq!(answers[0].as_deref(), Some("18"));
    // `#### 1,000`-style golds lose their thousands separators.
    assert!(answers.iter().all(|a| !a.as_deref().unwrap().contains(',')));
    let messages = strings(&b, "messages");
    let m: serde_json::Value = serde_json::from_str(messages[0].as_deref().unwrap()).unwrap();
    assert_eq!(m[0]["role"], "user");
    let content = m[0]["content"].as_str().unwrap();
    assert!(
        content.starts_with("Janet\u{2019}s ducks lay 16 eggs"),
        "{content}"
    );
    assert!(content.ends_with("within \\boxed{}."), "{content}");
    let meta: serde_json::Value =
        serde_json::from_str(strings(&b, "metadata")[0].as_deref().unwrap()).unwrap();
    assert!(meta["solution"].as_str().unwrap().ends_with("#### 18"));
    let shards = strings(&b, "shard");
    assert_eq!(shards[9].as_deref(), Some("0"));
    assert_eq!(shards[10].as_deref(), Some("1"));
    assert_eq!(shards[25].as_deref(), Some("2"));

    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(t.path("run/state.json")).unwrap()).unwrap();
    assert_eq!(state["format_version"], 1);
    assert_eq!(state["counters"]["prompts"], 26);
    assert_eq!(state["shards"].as_array().unwrap().len(), 3);
    assert_eq!(state["shards"][2]["prompts"], 6);
    assert_eq!(state["shards"][0]["status"], "pending");
    let config = std::fs::read_to_string(t.path("run/config.yaml")).unwrap();
    assert!(
        config.contains("transform: sql/transforms/gsm8k.sql"),
        "{config}"
    );
    assert!(t.path("run/logs/run.log").is_file());
    let log = std::fs::read_to_string(t.path("run/logs/run.log")).unwrap();
    assert!(log.contains("prepared 26 prompts in 3 shard(s)"), "{log}");
}

#[test]
fn math500_keeps_latex_answers_and_metadata() {
    let t = TestDir::new();
    let input = format!("data.input_path={}", fixture("math500_sample.jsonl"));
    let b = prepare(&t, &[&input, "data.preprocess.transform=math500"]);
    assert_eq!(b.num_rows(), 24);
    assert_eq!(
        strings(&b, "id")[0].as_deref(),
        Some("test/precalculus/807.json")
    );
    assert_eq!(
        strings(&b, "answer")[0].as_deref(),
        Some("\\left( 3, \\frac{\\pi}{2} \\right)")
    );
    let meta: serde_json::Value =
        serde_json::from_str(strings(&b, "metadata")[0].as_deref().unwrap()).unwrap();
    assert_eq!(meta["subject"], "Precalculus");
    assert_eq!(meta["level"], 2);
}

#[test]
fn multiple_choice_lists_lettered_options() {
    let t = TestDir::new();
    let input = format!("data.input_path={}", fixture("mcq_sample.jsonl"));
    let b = prepare(&t, &[&input, "data.preprocess.transform=mcq"]);
    assert_eq!(b.num_rows(), 8);
    let answers = strings(&b, "answer");
    assert_eq!(answers[0].as_deref(), Some("C"));
    assert_eq!(answers[3].as_deref(), Some("A"));
    let m: serde_json::Value =
        serde_json::from_str(strings(&b, "messages")[6].as_deref().unwrap()).unwrap();
    let content = m[0]["content"].as_str().unwrap();
    assert!(
        content
            .contains("A. Ribosome\nB. Golgi apparatus\nC. Mitochondrion\nD. Nucleus\nE. Lysosome"),
        "{content}"
    );
    let meta: serde_json::Value =
        serde_json::from_str(strings(&b, "metadata")[6].as_deref().unwrap()).unwrap();
    assert_eq!(meta["choices"][2], "Mitochondrion");
    assert_eq!(meta["subject"], "biology");
}

#[test]
fn jsonl_and_parquet_inputs_give_identical_tables() {
    for (jsonl, parquet, transform) in [
        ("gsm8k_sample.jsonl", "gsm8k_sample.parquet", Some("gsm8k")),
        ("chat_sample.jsonl", "chat_sample.parquet", None),
    ] {
        let mut tables = Vec::new();
        for file in [jsonl, parquet] {
            let t = TestDir::new();
            let input = format!("data.input_path={}", fixture(file));
            let mut args = vec![input];
            if let Some(tr) = transform {
                args.push(format!("data.preprocess.transform={tr}"));
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            tables.push(prepare(&t, &args));
        }
        assert_eq!(tables[0], tables[1], "{jsonl} vs {parquet}");
    }
}

#[test]
fn chat_data_keeps_messages_and_puts_other_columns_in_metadata() {
    let t = TestDir::new();
    let input = format!("data.input_path={}", fixture("chat_sample.parquet"));
    let out = t
        .cmd(&["prepare", "work_dir=run", &input])
        .output()
        .unwrap();
    common::assert_success(&out, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("1 of 5 prompts have no answer"), "{stderr}");
    let b = read_parquet(&t.path("run/data/input.parquet"));
    let m: serde_json::Value =
        serde_json::from_str(strings(&b, "messages")[0].as_deref().unwrap()).unwrap();
    assert_eq!(m[0]["role"], "system");
    assert_eq!(
        m[1]["content"],
        "What is 17 * 23? Put the answer in \\boxed{}."
    );
    assert_eq!(
        strings(&b, "metadata")[0].as_deref(),
        Some(r#"{"difficulty":1,"source":"handwritten"}"#)
    );
    assert_eq!(
        strings(&b, "metadata")[3].as_deref(),
        Some(r#"{"source":"handwritten"}"#)
    );
    assert_eq!(strings(&b, "answer")[3], None);
}

#[test]
fn csv_prompt_column_becomes_a_user_message() {
    let t = TestDir::new();
    let input = format!("data.input_path={}", fixture("chat_sample.csv"));
    let b = prepare(&t, &[&input]);
    assert_eq!(b.num_rows(), 3);
    assert_eq!(
        strings(&b, "messages")[1].as_deref(),
        Some(r#"[{"content":"What is 3 squared, plus 1?","role":"user"}]"#)
    );
    assert_eq!(strings(&b, "answer")[0].as_deref(), Some("42"));
}

#[test]
fn image_content_parts_pass_through_untouched() {
    let t = TestDir::new();
    let input = format!("data.input_path={}", fixture("vision_sample.jsonl"));
    let b = prepare(&t, &[&input]);
    let m: serde_json::Value =
        serde_json::from_str(strings(&b, "messages")[0].as_deref().unwrap()).unwrap();
    let parts = m[0]["content"].as_array().unwrap();
    assert_eq!(parts[0]["type"], "image_url");
    assert!(
        parts[0]["image_url"]["url"]
            .as_str()
            .unwrap()
            .starts_with("data:image/png;base64,iVBOR")
    );
    assert_eq!(
        parts[1]["text"],
        "Rate the quality of this image from 1 to 5."
    );
}

#[test]
fn hashed_ids_are_stable_and_limit_keeps_the_first_rows() {
    let run = |limit: &str| {
        let t = TestDir::new();
        let input = format!("data.input_path={}", fixture("gsm8k_sample.jsonl"));
        let b = prepare(
            &t,
            &[
                &input,
                "data.preprocess.transform=gsm8k",
                "data.id_from=hash",
                limit,
            ],
        );
        strings(&b, "id")
    };
    let all = run("data.limit=null");
    let first = run("data.limit=5");
    assert_eq!(all.len(), 26);
    assert_eq!(first.len(), 5);
    assert_eq!(&all[..5], &first[..]);
    assert!(all.iter().all(|id| id.as_ref().unwrap().len() == 16));
}

#[test]
fn an_existing_input_is_reused() {
    let t = TestDir::new();
    let input = format!("data.input_path={}", fixture("chat_sample.jsonl"));
    t.ok(&["prepare", "work_dir=run", &input]);
    let path = t.path("run/data/input.parquet");
    let before = std::fs::metadata(&path).unwrap().modified().unwrap();
    let out = t.cmd(&["prepare", "work_dir=run"]).output().unwrap();
    common::assert_success(&out, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("already exists: reusing it"), "{stderr}");
    assert_eq!(
        std::fs::metadata(&path).unwrap().modified().unwrap(),
        before
    );
}

#[test]
fn bad_inputs_fail_with_the_location_and_write_nothing() {
    let cases: &[(&str, &[&str])] = &[
        (
            "malformed_line.jsonl",
            &["malformed_line.jsonl:2", "malformed JSON"],
        ),
        ("missing_id.jsonl", &["missing_id.jsonl:2", "`id` is null"]),
        (
            "duplicate_id.jsonl",
            &[
                "duplicate_id.jsonl:3",
                "duplicate id, first used at line 1 (id `a`)",
            ],
        ),
        (
            "messages_not_list.jsonl",
            &[
                "messages_not_list.jsonl:2",
                "expected a JSON list",
                "`prompt` column",
            ],
        ),
        (
            "empty_messages.jsonl",
            &["empty_messages.jsonl:1", "`messages` is empty"],
        ),
        (
            "unknown_role.jsonl",
            &["unknown_role.jsonl:2", "unknown role `human`"],
        ),
        ("non_utf8.jsonl", &["non_utf8.jsonl:2", "invalid UTF-8"]),
        ("empty.jsonl", &["empty.jsonl is empty"]),
        ("header_only.csv", &["header_only.csv produced no rows"]),
    ];
    for (file, wants) in cases {
        let t = TestDir::new();
        let input = format!("data.input_path={}", fixture(&format!("bad/{file}")));
        let err = t.fails(&["prepare", "work_dir=run", &input]);
        for want in *wants {
            assert!(err.contains(want), "{file}: want `{want}` in:\n{err}");
        }
        assert!(!t.path("run/data/input.parquet").exists(), "{file}");
        assert!(
            !t.path("run").exists(),
            "{file}: a failed first prepare leaves no work dir"
        );
    }
}

#[test]
fn a_failing_transform_names_the_file_and_the_raw_columns() {
    let t = TestDir::new();
    let input = format!("data.input_path={}", fixture("gsm8k_sample.jsonl"));
    let transform = format!(
        "data.preprocess.transform={}",
        fixture("bad/broken_transform.sql")
    );
    let err = t.fails(&["prepare", "work_dir=run", &input, &transform]);
    assert!(err.contains("broken_transform.sql failed"), "{err}");
    assert!(err.contains("no_such_column"), "{err}");
    assert!(
        err.contains("table `raw` has columns: answer (Utf8), question (Utf8)"),
        "{err}"
    );
    assert!(!t.path("run/data/input.parquet").exists());
}

#[test]
fn errors_list_the_first_rows_and_the_total() {
    let t = TestDir::new();
    let mut text = String::new();
    for i in 0..15 {
        text.push_str(&format!(
            "{{\"id\": \"{i}\", \"messages\": [{{\"role\": \"robot\", \"content\": \"x\"}}]}}\n"
        ));
    }
    std::fs::write(t.path("many.jsonl"), text).unwrap();
    let err = t.fails(&["prepare", "work_dir=run", "data.input_path=many.jsonl"]);
    assert!(err.contains("15 invalid rows in many.jsonl"), "{err}");
    assert!(
        err.contains("many.jsonl:10: message 1: unknown role"),
        "{err}"
    );
    assert!(!err.contains("many.jsonl:11:"), "{err}");
    assert!(err.contains("... and 5 more"), "{err}");
}

#[test]
fn a_missing_input_path_is_named() {
    let t = TestDir::new();
    let err = t.fails(&["prepare", "work_dir=run"]);
    assert!(err.contains("`data.input_path` is required"), "{err}");
    assert!(!t.path("run").exists());
}

/// The shipped transforms once zero-padded ids to four digits with `lpad`,
/// which truncates longer numbers: row 10,000 collided with row 1,000.
#[test]
fn regression_transform_ids_stay_unique_past_9999_rows() {
    let t = TestDir::new();
    let sample = std::fs::read_to_string(fixture("gsm8k_sample.jsonl")).unwrap();
    let lines: Vec<&str> = sample.lines().collect();
    let text: String = (0..10_050)
        .map(|i| format!("{}\n", lines[i % lines.len()]))
        .collect();
    std::fs::write(t.path("big.jsonl"), text).unwrap();
    let b = prepare(
        &t,
        &[
            "data.input_path=big.jsonl",
            "data.preprocess.transform=gsm8k",
        ],
    );
    assert_eq!(b.num_rows(), 10_050);
    let ids = strings(&b, "id");
    assert_eq!(ids[10_000].as_deref(), Some("gsm8k-10000"));
}

#[test]
fn the_gold_is_read_from_metadata_answer_when_there_is_no_answer_column() {
    let t = TestDir::new();
    let input = format!(
        "data.input_path={}",
        fixture("metadata_answer_sample.jsonl")
    );
    let out = t
        .cmd(&["prepare", "work_dir=run", &input])
        .output()
        .unwrap();
    common::assert_success(&out, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("the gold answer is read from metadata.answer (3 of 4 prompts have one)")
            && stderr.contains("1 of 4 prompts have no answer"),
        "{stderr}"
    );
    let b = read_parquet(&t.path("run/data/input.parquet"));
    assert_eq!(
        strings(&b, "answer"),
        [
            Some("42".to_string()),
            Some("7".to_string()),
            None,
            Some("\\frac{1}{2}".to_string())
        ]
    );
    // The metadata is kept as it was.
    assert_eq!(
        strings(&b, "metadata")[0].as_deref(),
        Some(r#"{"answer":"42","source":"handwritten"}"#)
    );
}

#[test]
fn a_prompt_template_and_a_system_prompt_build_the_stored_messages() {
    let t = TestDir::new();
    std::fs::write(
        t.path("q.jsonl"),
        "{\"id\": \"a\", \"question\": \"What is 6 times 7?\", \"marks\": 2, \"answer\": \"42\"}\n\
         {\"id\": \"b\", \"question\": \"Halve 9.\", \"marks\": 1, \"answer\": \"4.5\"}\n",
    )
    .unwrap();
    std::fs::write(
        t.path("c.yaml"),
        "data:\n  input_path: q.jsonl\n  system_prompt: You are a careful solver.\n  \
         prompt_template: \"{question} ({marks} marks)\\nPut the final answer in \\\\boxed{}.\"\n",
    )
    .unwrap();
    let b = prepare(&t, &["c.yaml"]);
    let m: serde_json::Value =
        serde_json::from_str(strings(&b, "messages")[0].as_deref().unwrap()).unwrap();
    assert_eq!(
        m,
        serde_json::json!([
            {"role": "system", "content": "You are a careful solver."},
            {"role": "user", "content": "What is 6 times 7? (2 marks)\nPut the final answer in \\boxed{}."}
        ])
    );
    // The fields stay in metadata.
    assert_eq!(
        strings(&b, "metadata")[1].as_deref(),
        Some(r#"{"marks":1,"question":"Halve 9."}"#)
    );

    // A field the input does not have names the columns; nothing is written.
    std::fs::write(
        t.path("d.yaml"),
        "data:\n  input_path: q.jsonl\n  prompt_template: \"Solve: {problem}\"\n",
    )
    .unwrap();
    let err = t.fails(&["prepare", "d.yaml", "work_dir=run2"]);
    assert!(
        err.contains("data.prompt_template: no column `problem`")
            && err.contains("columns: answer, id, marks, question"),
        "{err}"
    );
    assert!(!t.path("run2").exists());
}

#[test]
fn a_write_failure_names_the_file_and_is_not_called_a_bug() {
    let t = TestDir::new();
    // The temporary file's name is taken by a directory: the write fails.
    std::fs::create_dir_all(t.path("run/data/input.parquet.tmp/x")).unwrap();
    let input = format!("data.input_path={}", fixture("gsm8k_sample.jsonl"));
    let err = t.fails(&[
        "prepare",
        "work_dir=run",
        &input,
        "data.preprocess.transform=gsm8k",
    ]);
    assert!(err.contains("input.parquet"), "{err}");
    assert!(!err.contains("internal error"), "{err}");
}
