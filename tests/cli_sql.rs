//! `rsr sql` over a prepared work dir.

mod common;

use common::{TestDir, read_parquet};

fn prepared() -> TestDir {
    common::prepared_gsm8k(&[])
}

#[test]
fn count_prints_the_row_count() {
    let t = prepared();
    let out = t.ok(&["sql", "run", "SELECT count(*) AS n FROM inputs"]);
    assert!(out.contains("| n  |"), "{out}");
    assert!(out.contains("| 26 |"), "{out}");
}

#[test]
fn formats_on_stdout() {
    let t = prepared();
    let q = "SELECT id, answer FROM inputs ORDER BY id LIMIT 2";
    let csv = t.ok(&["sql", "run", q, "--format", "csv"]);
    assert_eq!(csv, "id,answer\ngsm8k-0,18\ngsm8k-1,3\n");
    let jsonl = t.ok(&["sql", "run", q, "--format", "jsonl"]);
    assert_eq!(
        jsonl,
        "{\"id\":\"gsm8k-0\",\"answer\":\"18\"}\n{\"id\":\"gsm8k-1\",\"answer\":\"3\"}\n"
    );
    let json: serde_json::Value =
        serde_json::from_str(&t.ok(&["sql", "run", q, "--format", "json"])).unwrap();
    assert_eq!(json[1]["answer"], "3");
}

#[test]
fn output_files_take_their_format_from_the_extension() {
    let t = prepared();
    let q = "SELECT id, shard FROM inputs WHERE id = 'gsm8k-2'";
    t.ok(&["sql", "run", q, "--output", "hits.parquet"]);
    let b = read_parquet(&t.path("hits.parquet"));
    assert_eq!(b.num_rows(), 1);
    t.ok(&["sql", "run", q, "-o", "hits.csv"]);
    assert_eq!(
        std::fs::read_to_string(t.path("hits.csv")).unwrap(),
        "id,shard\ngsm8k-2,0\n"
    );
    let err = t.fails(&["sql", "run", q, "--format", "parquet"]);
    assert!(err.contains("--output FILE.parquet"), "{err}");
}

#[test]
fn sql_errors_show_datafusion_and_the_tables() {
    let t = prepared();
    let err = t.fails(&["sql", "run", "SELECT nope FROM inputs"]);
    assert!(err.contains("No field named nope"), "{err}");
    assert!(
        err.contains("tables: inputs(id, messages, answer, metadata, shard, contaminated, contaminated_by, contamination_ngram, duplicate_of, duplicate_similarity)"),
        "{err}"
    );
    let err = t.fails(&["sql", "run", "SELEC 1"]);
    assert!(err.contains("tables: inputs"), "{err}");
}

#[test]
fn an_unprepared_directory_is_named() {
    let t = TestDir::new();
    std::fs::create_dir(t.path("empty")).unwrap();
    let err = t.fails(&["sql", "empty", "SELECT 1"]);
    assert!(
        err.contains("empty is not an rsr work dir") && err.contains("check the path"),
        "{err}"
    );
}

#[test]
fn help_lists_the_commands_that_exist() {
    let t = TestDir::new();
    let help = t.ok(&["--help"]);
    assert!(help.contains("prepare  Validate raw prompts"), "{help}");
    assert!(
        help.contains("sql      Query a work dir's saved data with SQL"),
        "{help}"
    );
    let help = t.ok(&["sql", "--help"]);
    assert!(help.contains("--output <FILE>"), "{help}");
}

#[test]
fn verifier_functions_are_available() {
    let t = prepared();
    let out = t.ok(&[
        "sql",
        "run",
        "SELECT mcq_extract('<think>maybe A</think>The answer is (B).') AS letter, \
         mcq_verify('答案是B', 'B') AS ok, numeric_error('<answer>3.5</answer>', answer) AS err \
         FROM inputs WHERE id = 'gsm8k-1'",
        "--format",
        "csv",
    ]);
    assert_eq!(out, "letter,ok,err\nB,1.0,0.5\n");
}

#[test]
fn json_text_columns_are_queried_with_json_functions_and_operators() {
    let t = TestDir::new();
    let input = format!("data.input_path={}", common::fixture("chat_sample.jsonl"));
    // In a transform: the first message's role, read from the JSON text.
    std::fs::write(
        t.path("t.sql"),
        "SELECT id, messages, answer, \
         named_struct('first_role', json_get_str(messages, 0, 'role')) AS metadata FROM raw",
    )
    .unwrap();
    t.ok(&[
        "prepare",
        "work_dir=run",
        &input,
        "data.preprocess.transform=t.sql",
    ]);
    let csv = t.ok(&[
        "sql",
        "run",
        "SELECT id, metadata->>'first_role' AS role FROM inputs \
         WHERE json_get_str(messages, 0, 'role') = 'system' ORDER BY id",
        "--format",
        "csv",
    ]);
    assert_eq!(csv, "id,role\nchat-1,system\n");
    let csv = t.ok(&[
        "sql",
        "run",
        "SELECT count(*) AS n FROM inputs WHERE json_length(messages) = 1",
        "--format",
        "csv",
    ]);
    assert_eq!(csv, "n\n4\n");
}

#[test]
fn a_damaged_parquet_file_is_named_with_the_fix() {
    let t = prepared();
    // A copy cut short, as a full disk or an interrupted copy leaves it.
    let input = t.path("run/data/input.parquet");
    let bytes = std::fs::read(&input).unwrap();
    std::fs::write(&input, &bytes[..bytes.len() / 2]).unwrap();
    let err = t.fails(&["sql", "run", "SELECT count(*) FROM inputs"]);
    assert!(
        err.contains("input.parquet is not a readable Parquet file"),
        "{err}"
    );
    assert!(err.contains("Move it out of the work dir"), "{err}");
}

#[test]
fn a_reader_that_stops_early_is_not_an_error() {
    // `rsr sql … | head -1`: the closed pipe ends the output quietly.
    use std::io::{BufRead, BufReader};
    let t = prepared();
    let q = "SELECT a.id FROM inputs a, inputs b, inputs c, inputs d";
    for format in ["csv", "jsonl", "json", "table"] {
        let mut child = t
            .cmd(&["sql", "run", q, "--format", format])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        assert!(!first.is_empty(), "{format}");
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{format}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
