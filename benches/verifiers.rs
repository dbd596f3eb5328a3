//! Verification throughput on realistic responses: 1–8 KB with a `<think>`
//! block that mentions candidate answers, then a stated final answer.
//!
//!     cargo bench --bench verifiers
//!
//! Prints responses per second on one core (a plain loop over
//! `Verifier::verify`) and on all cores (`verify_batch`). With
//! `RSR_BENCH_CASES=FILE` set, the math responses are also written to FILE
//! (JSONL: `response`, `gold`) for `benches/peer_math_verify.py`, which
//! times Math-Verify on the same responses.

use std::time::Instant;

use arrow::array::StringArray;
use rsr::verifier::{Sample, build, verify_batch};
use serde_json::Map;

const N: usize = 20_000;

/// Deterministic filler reasoning of about `bytes` bytes.
fn thinking(seed: usize, bytes: usize) -> String {
    let sentences = [
        "Let me re-read the problem and set up the quantities carefully. ",
        "If each box holds 12 items then 7 boxes hold 84 items, but that double counts. ",
        "Try a different approach: subtract the known part first, which leaves 35. ",
        "Hmm, maybe the answer is 41? No, the units do not match. ",
        "Check with \\frac{3}{4} of the total: that gives 27, consistent with the constraint. ",
        "So far the candidates are 27 and 36; the second fails the parity check. ",
    ];
    let mut s = String::with_capacity(bytes + 100);
    let mut i = seed;
    while s.len() < bytes {
        s.push_str(sentences[i % sentences.len()]);
        i = i.wrapping_mul(31).wrapping_add(7);
    }
    s
}

fn math_case(i: usize) -> (String, String) {
    let golds = [
        ("27", "27"),
        (r"\frac{3}{4}", r"\dfrac{3}{4}"),
        (r"2\sqrt{2}", r"\sqrt{8}"),
        (r"(1, \frac{\pi}{2})", r"\left( 1, \frac{\pi}{2} \right)"),
        ("x^2-1", "(x-1)(x+1)"),
        (r"\{1, 2, 3\}", r"\{3, 2, 1\}"),
        ("1,000", "1000"),
        ("[2, 5)", "[2,5)"),
    ];
    let (gold, written) = golds[i % golds.len()];
    let size = 1000 + (i * 7919) % 7000;
    let response = format!(
        "<think>\n{}\n</think>\n\nPutting it together, the result is $\\boxed{{{written}}}$.",
        thinking(i, size)
    );
    (response, gold.to_string())
}

fn mcq_case(i: usize) -> (String, String) {
    let letters = ["A", "B", "C", "D"];
    let size = 1000 + (i * 7919) % 7000;
    let response = format!(
        "<think>\n{}Option A seems plausible, B less so.\n</think>\n\nThe answer is ({}).",
        thinking(i, size),
        letters[i % 4]
    );
    (response, letters[(i / 2) % 4].to_string())
}

fn bench(name: &str, cases: &[(String, String)]) {
    let verifier = build(name, &Map::new()).expect("registered");
    let bytes: usize = cases.iter().map(|(r, _)| r.len()).sum();
    // One core.
    let start = Instant::now();
    let mut passed = 0.0;
    for (response, gold) in cases {
        passed += verifier
            .verify(&Sample {
                response,
                gold,
                metadata: None,
            })
            .score;
    }
    let one = start.elapsed().as_secs_f64();
    // All cores, through Arrow arrays.
    let responses: StringArray = cases.iter().map(|(r, _)| Some(r.as_str())).collect();
    let golds: StringArray = cases.iter().map(|(_, g)| Some(g.as_str())).collect();
    let start = Instant::now();
    let out = verify_batch(verifier.as_ref(), &responses, &golds, None);
    let all = start.elapsed().as_secs_f64();
    assert_eq!(out.score.len(), cases.len());
    let cores = std::thread::available_parallelism().map_or(1, |p| p.get());
    println!(
        "| {name} | {} | {:.1} | {:.0} | {:.0} ({cores} cores) | {:.0}% |",
        cases.len(),
        bytes as f64 / cases.len() as f64 / 1024.0,
        cases.len() as f64 / one,
        cases.len() as f64 / all,
        100.0 * passed / cases.len() as f64,
    );
}

fn main() {
    println!(
        "| verifier | responses | mean KB | responses/s, 1 core | responses/s, verify_batch | passed |"
    );
    println!("|---|---|---|---|---|---|");
    let math: Vec<_> = (0..N).map(math_case).collect();
    if let Ok(path) = std::env::var("RSR_BENCH_CASES") {
        let lines: String = math
            .iter()
            .map(|(response, gold)| {
                format!(
                    "{}\n",
                    serde_json::json!({"response": response, "gold": gold})
                )
            })
            .collect();
        std::fs::write(&path, lines).expect("write the cases file");
    }
    bench("math-rlvr", &math);
    let mcq: Vec<_> = (0..N).map(mcq_case).collect();
    bench("mcq-rlvr", &mcq);
    let numeric: Vec<_> = (0..N)
        .map(|i| {
            let (r, _) = mcq_case(i);
            (
                format!("{r} <answer>{}.5</answer>", i % 5),
                format!("{}.5", i % 5),
            )
        })
        .collect();
    bench("numeric", &numeric);
}
