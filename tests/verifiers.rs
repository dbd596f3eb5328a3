//! Verifiers against the reference solutions in the fixtures: every worked
//! solution must score 1 against its own gold and 0 against a different one.

use rsr::verifier::math::MathRlvr;
use rsr::verifier::{Sample, Verifier};

fn rows(name: &str) -> Vec<serde_json::Value> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Checks each solution against its gold (must pass) and against the next
/// row's gold (must fail, unless the two golds are the same answer written
/// differently, listed in `same`).
fn check(pairs: &[(String, String)], same: &[(&str, &str)]) {
    let v = MathRlvr::default();
    let score = |response: &str, gold: &str| {
        v.verify(&Sample {
            response,
            gold,
            metadata: None,
        })
        .score
    };
    for (i, (solution, gold)) in pairs.iter().enumerate() {
        assert_eq!(score(solution, gold), 1.0, "row {i}: gold {gold:?}");
        let other = &pairs[(i + 1) % pairs.len()].1;
        if other != gold && !same.contains(&(gold.as_str(), other.as_str())) {
            assert_eq!(
                score(solution, other),
                0.0,
                "row {i}: {gold:?} vs {other:?}"
            );
        }
    }
}

#[test]
fn math500_solutions_match_their_gold_answers() {
    let pairs: Vec<(String, String)> = rows("math500_sample.jsonl")
        .iter()
        .map(|r| {
            (
                r["solution"].as_str().unwrap().to_string(),
                r["answer"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(pairs.len(), 24);
    // Rows 23 and 24: `5` and `x=5` are the same answer.
    check(&pairs, &[("5", "x=5")]);
}

#[test]
fn gsm8k_solutions_match_their_gold_answers() {
    let pairs: Vec<(String, String)> = rows("gsm8k_sample.jsonl")
        .iter()
        .map(|r| {
            let solution = r["answer"].as_str().unwrap();
            let gold = solution.rsplit("#### ").next().unwrap().replace(',', "");
            (solution.to_string(), gold)
        })
        .collect();
    check(&pairs, &[]);
}
