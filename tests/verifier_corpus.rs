//! The verifier corpus: hundreds of (response, gold, expected verdict) cases
//! in `tests/fixtures/verifier_cases.jsonl` — GSM8K and MATH-500 answers in
//! the styles models write (long thinking that mentions wrong answers, then a
//! boxed or stated final answer), hand-written edge cases per answer shape,
//! multiple choice and numeric. Every failure is listed.

use rsr::verifier::{Sample, build};
use serde_json::{Map, Value};

#[test]
fn every_case_gets_its_expected_verdict() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/verifier_cases.jsonl");
    let text = std::fs::read_to_string(path).unwrap();
    let (mut total, mut negatives, mut failures) = (0, 0, Vec::new());
    for (i, line) in text.lines().enumerate() {
        let case: Value = serde_json::from_str(line).unwrap();
        let name = case["verifier"].as_str().unwrap();
        let verifier = build(name, &Map::new()).unwrap();
        let expected = case["expected"].as_f64().unwrap();
        let verdict = verifier.verify(&Sample {
            response: case["response"].as_str().unwrap(),
            gold: case["gold"].as_str().unwrap(),
            metadata: case["metadata"].as_str(),
        });
        total += 1;
        if expected == 0.0 {
            negatives += 1;
        }
        if verdict.score != expected {
            failures.push(format!(
                "line {}: [{}] {} expected {expected}, got {} (pred {:?}, gold {:?})",
                i + 1,
                name,
                case["category"].as_str().unwrap(),
                verdict.score,
                verdict.pred,
                case["gold"].as_str().unwrap()
            ));
        }
    }
    assert!(total >= 300, "only {total} cases");
    assert!(
        negatives * 3 >= total,
        "only {negatives} of {total} expected false"
    );
    assert!(
        failures.is_empty(),
        "{} of {total} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
