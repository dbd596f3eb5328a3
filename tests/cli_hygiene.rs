//! Decontamination and deduplication through the binary: the flags
//! `prepare` writes into `inputs`, what sampling and formatting leave out,
//! `rsr hygiene` on an existing work dir, older work dirs, and bad input.

mod common;

use std::collections::BTreeSet;

use common::mock::Mock;
use common::{TestDir, fixture, gold, query};
use serde_json::Value;

fn benchmarks() -> String {
    format!(
        "data.decontaminate.benchmarks=[{}, {{path: {}, column: text}}]",
        fixture("math500_sample.jsonl"),
        fixture("hygiene/bench.csv")
    )
}

fn input() -> String {
    format!("data.input_path={}", fixture("hygiene/prompts.jsonl"))
}

/// `(id, contaminated, contaminated_by file name and place, duplicate_of)`.
fn flags(t: &TestDir) -> Vec<(String, bool, Option<String>, Option<String>)> {
    query(
        t,
        "run",
        "SELECT id, contaminated, contaminated_by, duplicate_of FROM inputs ORDER BY id",
    )
    .iter()
    .map(|r| {
        let by = r["contaminated_by"].as_str().map(|s| {
            std::path::Path::new(s)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        });
        (
            r["id"].as_str().unwrap().to_string(),
            r["contaminated"].as_bool().unwrap(),
            by,
            r["duplicate_of"].as_str().map(str::to_string),
        )
    })
    .collect()
}

fn expected() -> Vec<(String, bool, Option<String>, Option<String>)> {
    let c = |id: &str, by: &str| (id.to_string(), true, Some(by.to_string()), None);
    let clean = |id: &str| (id.to_string(), false, None, None);
    let dup = |id: &str, of: &str| (id.to_string(), false, None, Some(of.to_string()));
    let mut v = vec![
        c("copy-case-punct", "math500_sample.jsonl:3"),
        c("copy-whitespace", "math500_sample.jsonl:4"),
        c("paraphrase-8-words", "math500_sample.jsonl:7"),
        c("latex-spacing", "math500_sample.jsonl:9"),
        clean("near-miss"),
        c("csv-copy", "bench.csv: row 1"),
        clean("ducks"),
        dup("ducks-exact-copy", "ducks"),
        dup("ducks-near-copy", "ducks"),
        clean("robe"),
        clean("house"),
        clean("sprints"),
    ];
    v.sort();
    v
}

#[test]
fn prepare_flags_copies_paraphrases_and_duplicates_with_evidence() {
    let t = TestDir::new();
    let out = t
        .cmd(&[
            "prepare",
            "work_dir=run",
            &input(),
            &benchmarks(),
            "data.dedup.mode=near",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("4 of 12 prompts share a run of 8 words with")
            && stderr.contains("1 of 12 prompts share a run of 8 words with")
            && stderr
                .contains("1 exact duplicates, 1 near duplicates (Jaccard >= 0.8) in 1 groups")
            && stderr.contains("7 of 12 prompts are left out"),
        "{stderr}"
    );
    assert_eq!(flags(&t), expected());

    // The evidence: the shared words and the similarity.
    let rows = query(
        &t,
        "run",
        "SELECT id, contamination_ngram, duplicate_similarity FROM inputs \
         WHERE contaminated OR duplicate_of IS NOT NULL ORDER BY id",
    );
    let get = |id: &str| rows.iter().find(|r| r["id"] == id).unwrap().clone();
    assert_eq!(
        get("copy-whitespace")["contamination_ngram"],
        "how many positive whole number divisors does 196"
    );
    assert_eq!(
        get("paraphrase-8-words")["contamination_ngram"],
        "the smallest positive perfect cube that can be"
    );
    assert_eq!(get("ducks-exact-copy")["duplicate_similarity"], 1.0);
    let near = get("ducks-near-copy")["duplicate_similarity"]
        .as_f64()
        .unwrap();
    assert!((0.8..1.0).contains(&near), "{near}");

    // The counts are saved beside the inputs.
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(t.path("run/data/hygiene.json")).unwrap())
            .unwrap();
    assert_eq!(report["contaminated"], 5);
    assert_eq!(report["benchmarks"][0]["prompts_flagged"], 4);
    assert_eq!(report["benchmarks"][0]["problems"], 24);
    assert_eq!(report["benchmarks"][1]["column"], "text");
    assert_eq!(report["exact_duplicates"], 1);
    assert_eq!(report["near_duplicates"], 1);
    assert_eq!(report["excluded"], 7);

    // Exact mode finds the copy but not the edited one; the groups are SQL.
    let t2 = TestDir::new();
    t2.ok(&["prepare", "work_dir=run", &input(), "data.dedup.mode=exact"]);
    let groups = query(
        &t2,
        "run",
        "SELECT duplicate_of, count(*) AS n FROM inputs WHERE duplicate_of IS NOT NULL GROUP BY duplicate_of",
    );
    assert_eq!(
        groups,
        vec![serde_json::json!({"duplicate_of": "ducks", "n": 1})]
    );
    assert!(
        !t2.path("run/data/hygiene.json").exists() || {
            let r: Value = serde_json::from_str(
                &std::fs::read_to_string(t2.path("run/data/hygiene.json")).unwrap(),
            )
            .unwrap();
            r["contaminated"] == 0
        }
    );
}

fn sampled_ids(t: &TestDir) -> BTreeSet<String> {
    query(t, "run", "SELECT DISTINCT id FROM rollouts")
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

fn trained_ids(t: &TestDir) -> BTreeSet<String> {
    std::fs::read_to_string(t.path("run/train/sft.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["id"].as_str().unwrap().to_string()
        })
        .collect()
}

const CLEAN: &[&str] = &["ducks", "house", "near-miss", "robe", "sprints"];

/// The clean prompts with an SFT row (near-miss has no gold answer).
fn trained_clean() -> BTreeSet<String> {
    CLEAN
        .iter()
        .filter(|s| **s != "near-miss")
        .map(|s| s.to_string())
        .collect()
}

/// The prompts prepared with no check, in shards of 4.
fn prepared_unchecked() -> TestDir {
    let t = TestDir::new();
    t.ok(&[
        "prepare",
        "work_dir=run",
        &input(),
        "sampler.model=mock",
        "shard.size=4",
    ]);
    t
}

#[test]
fn flagged_prompts_are_not_sampled_or_formatted_unless_kept() {
    let t = TestDir::new();
    t.ok(&[
        "prepare",
        "work_dir=run",
        &input(),
        &benchmarks(),
        "data.dedup.mode=near",
        "sampler.model=mock",
    ]);
    let mock = Mock::start(&["--gold", &gold(&t), "--accuracy", "1"]);
    let base = mock.base_url_arg();
    t.ok(&["run", "work_dir=run", &base, "export.with_ids=true"]);
    let clean: BTreeSet<String> = CLEAN.iter().map(|s| s.to_string()).collect();
    assert_eq!(sampled_ids(&t), clean);
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(t.path("run/state.json")).unwrap()).unwrap();
    assert_eq!(state["shards"][0]["status"], "done");
    // near-miss has no gold answer: no passing response, no SFT row.
    let trained = trained_clean();
    assert_eq!(trained_ids(&t), trained);
    // The run's statistics say what was left out.
    let text = std::fs::read_to_string(t.path("run/summary/statistics.txt")).unwrap();
    assert!(
        text.contains("4 of 12 prompts share a run of 8 words (24 problems)")
            && text.contains("1 exact, 1 near in 1 groups")
            && text.contains("7 of 12 prompts"),
        "{text}"
    );

    // keep: flagged prompts are sampled and formatted, and stay flagged for
    // a formatter's `where`.
    let k = TestDir::new();
    k.ok(&[
        "prepare",
        "work_dir=run",
        &input(),
        &benchmarks(),
        "data.dedup.mode=near",
        "data.decontaminate.keep=true",
        "data.dedup.keep=true",
        "sampler.model=mock",
    ]);
    let mock = Mock::start(&["--gold", &gold(&k), "--accuracy", "1"]);
    let base = mock.base_url_arg();
    k.ok(&["run", "work_dir=run", &base, "export.with_ids=true"]);
    assert_eq!(sampled_ids(&k).len(), 12);
    assert_eq!(trained_ids(&k).len(), 11);
    k.ok(&[
        "format",
        "run",
        "formatter.0.where=NOT contaminated AND duplicate_of IS NULL",
    ]);
    assert_eq!(trained_ids(&k), trained);
}

#[test]
fn rsr_hygiene_flags_an_existing_work_dir_and_sampling_then_leaves_them_out() {
    let t = prepared_unchecked();
    assert!(flags(&t).iter().all(|f| !f.1 && f.3.is_none()));
    let before = query(
        &t,
        "run",
        "SELECT id, messages, answer, shard FROM inputs ORDER BY id",
    );

    // Bad input first: nothing changes.
    let err = t.fails(&[
        "hygiene",
        "run",
        "data.decontaminate.benchmarks=[missing.jsonl]",
    ]);
    assert!(
        err.contains("benchmark missing.jsonl: no such file"),
        "{err}"
    );
    let err = t.fails(&[
        "hygiene",
        "run",
        &format!(
            "data.decontaminate.benchmarks=[{}]",
            fixture("hygiene/bench.csv")
        ),
    ]);
    assert!(
        err.contains(
            "none of the columns problem, question, prompt, messages (columns: source, text)"
        ) && err.contains("column: NAME"),
        "{err}"
    );
    let err = t.fails(&["hygiene", "run", "data.dedup.treshold=0.5"]);
    assert!(err.contains("threshold"), "{err}");
    let err = t.fails(&["hygiene", "run", "sampler.model=other"]);
    assert!(
        err.contains("takes only data.decontaminate.* and data.dedup.*"),
        "{err}"
    );
    assert!(flags(&t).iter().all(|f| !f.1 && f.3.is_none()));

    // The run is sampled, then the check finds overlap.
    let mock = Mock::start(&["--gold", &gold(&t), "--accuracy", "1"]);
    let base = mock.base_url_arg();
    t.ok(&["run", "work_dir=run", &base, "export.with_ids=true"]);
    assert_eq!(sampled_ids(&t).len(), 12);
    t.ok(&["hygiene", "run", &benchmarks(), "data.dedup.mode=near"]);
    assert_eq!(flags(&t), expected());
    // Same rows, same order and shards; rollouts untouched.
    assert_eq!(
        query(
            &t,
            "run",
            "SELECT id, messages, answer, shard FROM inputs ORDER BY id"
        ),
        before
    );
    assert_eq!(sampled_ids(&t).len(), 12);
    // The settings are the run's now; format leaves the flagged out.
    let saved = std::fs::read_to_string(t.path("run/config.yaml")).unwrap();
    assert!(
        saved.contains("bench.csv") && saved.contains("mode: near"),
        "{saved}"
    );
    t.ok(&["format", "run"]);
    let trained = trained_clean();
    assert_eq!(trained_ids(&t), trained);
}

#[test]
fn a_resumed_run_stops_sampling_prompts_flagged_meanwhile() {
    let t = prepared_unchecked();
    t.ok(&["hygiene", "run", &benchmarks(), "data.dedup.mode=near"]);
    let mock = Mock::start(&["--gold", &gold(&t), "--accuracy", "1"]);
    let base = mock.base_url_arg();
    let out = t.cmd(&["sample", "work_dir=run", &base]).output().unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("7 prompts flagged by decontamination or dedup are left out"),
        "{stderr}"
    );
    let clean: BTreeSet<String> = CLEAN.iter().map(|s| s.to_string()).collect();
    assert_eq!(sampled_ids(&t), clean);
    // Shard 1 (ids 4..8: near-miss, csv-copy, ducks, ducks-exact-copy) and
    // every other shard finish.
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(t.path("run/state.json")).unwrap()).unwrap();
    for s in state["shards"].as_array().unwrap() {
        assert_eq!(s["status"], "done", "{state}");
    }
}

#[test]
fn work_dirs_prepared_before_the_flags_read_as_unflagged() {
    use arrow::array::RecordBatch;
    let t = TestDir::new();
    t.ok(&["prepare", "work_dir=run", &input(), "sampler.model=mock"]);
    // Rewrite input.parquet with only the columns older versions wrote.
    let path = t.path("run/data/input.parquet");
    let batch = common::read_parquet(&path);
    let keep: Vec<usize> = ["id", "messages", "answer", "metadata", "shard"]
        .iter()
        .map(|n| batch.schema().index_of(n).unwrap())
        .collect();
    let old = batch.project(&keep).unwrap();
    let mut w = rsr::store::parquet::ParquetFile::create(&path, old.schema()).unwrap();
    w.write(&old).unwrap();
    w.commit().unwrap();
    let _: RecordBatch = old;
    let unflagged = "SELECT count(*) AS n FROM {} WHERE NOT contaminated AND duplicate_of IS NULL";
    let rows = query(&t, "run", &unflagged.replace("{}", "inputs"));
    assert_eq!(rows[0]["n"], 12);
    let mock = Mock::start(&["--gold", &gold(&t), "--accuracy", "1"]);
    let base = mock.base_url_arg();
    t.ok(&["run", "work_dir=run", &base]);
    assert_eq!(sampled_ids(&t).len(), 12);
    let rows = query(&t, "run", &unflagged.replace("{}", "prompts"));
    assert_eq!(rows[0]["n"], 12);
    // rsr hygiene gives it the columns.
    t.ok(&["hygiene", "run", "data.dedup.mode=exact"]);
    let rows = query(
        &t,
        "run",
        "SELECT duplicate_of FROM inputs WHERE id = 'ducks-exact-copy'",
    );
    assert_eq!(rows[0]["duplicate_of"], "ducks");
}
