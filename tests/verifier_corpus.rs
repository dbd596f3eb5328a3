//! The verifier corpora.
//!
//! `tests/fixtures/verifier_corpus/<class>.jsonl` holds one file per class of
//! answer form (`math-minerva`, `mcq-chinese`, …): each line a response, a
//! gold answer, an optional `metadata` string and the expected score. The
//! file name's prefix picks the verifier (`math-` → `math-rlvr`, `mcq-` →
//! `mcq-rlvr`). Agreement is reported per class, so a regression names its
//! class; every case must agree.
//!
//! `tests/fixtures/verifier_cases.jsonl` is the older mixed corpus (GSM8K and
//! MATH-500 answers in model styles, shape edge cases, numeric), reported by
//! its `category`.

use std::collections::BTreeMap;
use std::path::Path;

use rsr::verifier::{Sample, Verifier, build};
use serde_json::{Map, Value};

/// Per class: cases, agreeing, known gaps, failure lines.
#[derive(Default)]
struct Class {
    cases: usize,
    agree: usize,
    gaps: usize,
    failures: Vec<String>,
}

type Tally = BTreeMap<String, Class>;

/// Scores one case. A case with a `gap` field is a known disagreement
/// (documented in docs/verifiers.md): it must still disagree, so that a fix
/// is noticed and the marker removed.
fn check(tally: &mut Tally, class: &str, verifier: &dyn Verifier, case: &Value, at: String) {
    let expected = case["expected"].as_f64().expect("expected is a number");
    let verdict = verifier.verify(&Sample {
        response: case["response"].as_str().expect("response"),
        gold: case["gold"].as_str().expect("gold"),
        metadata: case["metadata"].as_str(),
    });
    let entry = tally.entry(class.to_string()).or_default();
    entry.cases += 1;
    let agrees = verdict.score == expected;
    match (agrees, case["gap"].as_str()) {
        (true, None) => entry.agree += 1,
        (false, Some(_)) => entry.gaps += 1,
        (true, Some(gap)) => entry.failures.push(format!(
            "  [{class}] {at}: the known gap \"{gap}\" is fixed; remove its \"gap\" field"
        )),
        (false, None) => entry.failures.push(format!(
            "  [{class}] {at}: expected {expected}, got {} (pred {:?}, gold {:?})",
            verdict.score, verdict.pred, case["gold"]
        )),
    }
}

fn report(tally: &Tally) -> (String, usize) {
    let mut table =
        String::from("class                               agree / cases   known gaps\n");
    let mut failures = Vec::new();
    for (class, c) in tally {
        table.push_str(&format!(
            "{class:<34} {:>6} / {:<5} {:6.1}%  {}\n",
            c.agree,
            c.cases,
            100.0 * c.agree as f64 / c.cases as f64,
            c.gaps
        ));
        failures.extend(c.failures.iter().cloned());
    }
    if !failures.is_empty() {
        table.push_str("\nfailures:\n");
        table.push_str(&failures.join("\n"));
    }
    (table, failures.len())
}

#[test]
fn every_class_agrees() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/verifier_corpus");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    let (math, mcq) = (
        build("math-rlvr", &Map::new()).unwrap(),
        build("mcq-rlvr", &Map::new()).unwrap(),
    );
    let mut tally = Tally::new();
    for path in &files {
        let class = path.file_stem().unwrap().to_str().unwrap();
        let verifier = match class.split('-').next() {
            Some("math") => &*math,
            Some("mcq") => &*mcq,
            _ => panic!("{}: the name must start with math- or mcq-", path.display()),
        };
        let text = std::fs::read_to_string(path).unwrap();
        for (i, line) in text.lines().enumerate() {
            let case: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{}:{}: {e}", path.display(), i + 1));
            check(
                &mut tally,
                class,
                verifier,
                &case,
                format!("{class}.jsonl:{}", i + 1),
            );
        }
    }
    for (class, c) in &tally {
        assert!(
            c.cases >= 30,
            "class {class} has only {} cases (at least 30)",
            c.cases
        );
    }
    let (table, failed) = report(&tally);
    eprintln!("{table}");
    assert_eq!(failed, 0, "verdicts disagree with the corpus:\n{table}");
}

#[test]
fn every_case_gets_its_expected_verdict() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/verifier_cases.jsonl");
    let text = std::fs::read_to_string(path).unwrap();
    let (mut total, mut negatives) = (0, 0);
    let mut tally = Tally::new();
    for (i, line) in text.lines().enumerate() {
        let case: Value = serde_json::from_str(line).unwrap();
        let verifier = build(case["verifier"].as_str().unwrap(), &Map::new()).unwrap();
        total += 1;
        if case["expected"].as_f64() == Some(0.0) {
            negatives += 1;
        }
        let class = case["category"].as_str().unwrap();
        check(
            &mut tally,
            class,
            &*verifier,
            &case,
            format!("verifier_cases.jsonl:{}", i + 1),
        );
    }
    assert!(total >= 300, "only {total} cases");
    assert!(
        negatives * 3 >= total,
        "only {negatives} of {total} expected false"
    );
    let (table, failed) = report(&tally);
    assert_eq!(failed, 0, "verdicts disagree with the corpus:\n{table}");
}
