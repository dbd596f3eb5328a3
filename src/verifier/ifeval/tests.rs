//! Google's IFEval unit-test cases (`tests/fixtures/ifeval/google_unit_cases.jsonl`,
//! recorded from its `instructions_test.py` and `instructions_util_test.py`
//! with the reference's verdicts), and the verifier's own behaviour.

use serde_json::{Map, Value};

use super::checks::Instruction;
use super::*;
use crate::verifier::{Sample, Verifier};

#[test]
fn google_unit_cases_all_agree() {
    let cases = include_str!("../../../tests/fixtures/ifeval/google_unit_cases.jsonl");
    let mut checked = 0;
    for line in cases.lines() {
        let case: Value = serde_json::from_str(line).unwrap();
        if let Some(count) = case["count"].as_str() {
            let text = case["text"].as_str().unwrap();
            let got = match count {
                "words" => text::count_words(text),
                _ => punkt::count_sentences(text),
            };
            assert_eq!(
                got as u64,
                case["value"].as_u64().unwrap(),
                "{count} of {text:?}"
            );
        } else {
            let id = case["id"].as_str().unwrap();
            let kwargs: Map<String, Value> =
                case["kwargs"].as_object().cloned().unwrap_or_default();
            let check = Instruction::parse(id, &kwargs).unwrap_or_else(|e| panic!("{id}: {e}"));
            let response = case["response"].as_str().unwrap();
            assert_eq!(
                check.follows(response),
                case["followed"].as_bool().unwrap(),
                "{id} {kwargs:?} on {response:?}"
            );
        }
        checked += 1;
    }
    assert_eq!(checked, 93);
}

fn verify(v: &IfEval, response: &str, gold: &str) -> crate::verifier::Verdict {
    v.verify(&Sample {
        response,
        gold,
        metadata: None,
    })
}

const GOLD: &str = r#"{"instruction_id_list": ["punctuation:no_comma", "detectable_format:title"], "kwargs": [{}, {}]}"#;

#[test]
fn strict_loose_and_partial_scores() {
    let strict = IfEval::default();
    // The title is only on a first line the loose variants drop; the comma
    // is in that line too.
    let response = "<<Rivers, and lakes>>\nWater flows downhill";
    let v = verify(&strict, response, GOLD);
    assert_eq!(v.score, 0.0);
    assert_eq!(
        v.pred.as_deref(),
        Some("punctuation:no_comma=loose detectable_format:title=followed")
    );
    let loose =
        IfEval::from_options(&serde_json::from_str(r#"{"mode": "loose"}"#).unwrap()).unwrap();
    assert_eq!(verify(&loose, response, GOLD).score, 1.0);
    let partial =
        IfEval::from_options(&serde_json::from_str(r#"{"partial": true}"#).unwrap()).unwrap();
    assert_eq!(verify(&partial, response, GOLD).score, 0.5);
    // `**` removed: a loose variant with no markdown stars.
    let gold = r#"{"instruction_id_list": ["startend:quotation"], "kwargs": [{}]}"#;
    let v = verify(&strict, "**\"Quoted answer\"**", gold);
    assert_eq!(
        (v.score, v.pred.as_deref()),
        (0.0, Some("startend:quotation=loose"))
    );
}

#[test]
fn thinking_is_removed_and_bad_gold_scores_nothing() {
    let v = IfEval::default();
    let verdict = verify(
        &v,
        "<think>Commas, commas, commas.</think><<Title>> no commas here",
        GOLD,
    );
    assert_eq!(verdict.score, 1.0);
    let unclosed = verify(&v, "<think>never closed", GOLD);
    assert!(unclosed.unclosed);
    assert_eq!(
        unclosed.pred.as_deref(),
        Some("punctuation:no_comma=failed detectable_format:title=failed")
    );
    let bad = verify(&v, "x", r#"{"instruction_id_list": ["nope"]}"#);
    assert_eq!(bad.score, 0.0);
    assert!(
        bad.pred
            .unwrap()
            .starts_with("invalid gold: answer: unknown instruction id `nope`")
    );
}

#[test]
fn empty_responses_follow_nothing() {
    let v = IfEval::default();
    let gold = r#"{"instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]}"#;
    assert_eq!(verify(&v, "  \n ", gold).score, 0.0);
    // The loose variants of a one-line response are empty: still a fail.
    assert_eq!(
        verify(&v, "a, b", gold).pred.as_deref(),
        Some("punctuation:no_comma=failed")
    );
}

#[test]
fn read_gold_stores_one_shape() {
    let v = IfEval::default();
    let stored = v
        .read_gold(None, Some(r#"{"key": 7, "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{"num_words": null}]}"#))
        .unwrap()
        .unwrap();
    assert_eq!(
        stored,
        r#"{"instruction_id_list":["punctuation:no_comma"],"kwargs":[{}]}"#
    );
    let e = v
        .read_gold(
            Some(r#"{"instruction_id_list": ["keywords:existence"], "kwargs": [{}]}"#),
            None,
        )
        .unwrap_err();
    assert!(
        e.contains("keywords:existence: kwargs.keywords is missing"),
        "{e}"
    );
}

/// langdetect 1.0.9 (seed 0) on generated texts in IFEval's languages and
/// their neighbours, mixed, with capitals, URLs, e-mail addresses and
/// decomposed Vietnamese (`benches/ifeval/record_reference_cases.py`).
#[test]
fn language_detection_agrees_with_langdetect() {
    let cases = include_str!("../../../tests/fixtures/ifeval/langdetect_cases.jsonl");
    let mut n = 0;
    for line in cases.lines() {
        let case: Value = serde_json::from_str(line).unwrap();
        let text = case["text"].as_str().unwrap();
        assert_eq!(
            langdetect::detect(text).as_deref(),
            case["lang"].as_str(),
            "{text:?}"
        );
        n += 1;
    }
    assert_eq!(n, 300);
}

/// nltk 3.9.1 on SmolLM2-135M-Instruct's answers to IFEval prompts: punkt's
/// sentence count, `\w+` words and capitalised `word_tokenize` tokens.
#[test]
fn counts_agree_with_nltk_on_model_text() {
    let cases = include_str!("../../../tests/fixtures/ifeval/nltk_cases.jsonl");
    let mut n = 0;
    for line in cases.lines() {
        let case: Value = serde_json::from_str(line).unwrap();
        let text = case["text"].as_str().unwrap();
        assert_eq!(
            punkt::count_sentences(text) as u64,
            case["sentences"].as_u64().unwrap(),
            "sentences of {text:?}"
        );
        assert_eq!(
            text::count_words(text) as u64,
            case["words"].as_u64().unwrap(),
            "words of {text:?}"
        );
        let capitals = words::word_tokenize(text)
            .iter()
            .filter(|w| text::is_upper(w))
            .count();
        assert_eq!(
            capitals as u64,
            case["capital_words"].as_u64().unwrap(),
            "capital words of {text:?}"
        );
        n += 1;
    }
    assert_eq!(n, 300);
}
