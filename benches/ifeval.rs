//! `ifeval` throughput on real responses, one core.
//!
//!     RSR_IFEVAL_RESPONSES=responses.jsonl cargo bench --bench ifeval
//!
//! The file is what `benches/ifeval/agreement.sh` exports from a work dir
//! (`response`, the final part, and `answer`, the stored gold). Prints
//! responses per second through `Verifier::verify` (strict and loose, as
//! `ifeval_results` computes them) and the time each instruction id takes.

use std::collections::BTreeMap;
use std::time::Instant;

use rsr::verifier::ifeval::{IfEval, evaluate, gold};
use rsr::verifier::{Sample, Verifier};

fn main() {
    let Ok(path) = std::env::var("RSR_IFEVAL_RESPONSES") else {
        eprintln!("set RSR_IFEVAL_RESPONSES to a JSONL export (benches/ifeval/agreement.sh)");
        return;
    };
    let rows: Vec<(String, String)> = std::fs::read_to_string(&path)
        .expect("read the responses")
        .lines()
        .filter_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            Some((
                v["response"].as_str()?.to_string(),
                v["answer"].as_str()?.to_string(),
            ))
        })
        .collect();
    let verifier = IfEval::default();
    let rounds = (20_000 / rows.len().max(1)).max(1);
    let start = Instant::now();
    let mut passed = 0usize;
    for _ in 0..rounds {
        for (response, answer) in &rows {
            let v = verifier.verify(&Sample {
                response,
                gold: answer,
                metadata: None,
            });
            passed += usize::from(v.score >= 1.0);
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let n = rows.len() * rounds;
    println!(
        "{n} responses ({} distinct) in {seconds:.3} s: {:.0} responses/s on one core, {:.1} µs each; {:.1}% follow all (strict)",
        rows.len(),
        n as f64 / seconds,
        seconds * 1e6 / n as f64,
        100.0 * passed as f64 / n as f64
    );
    // Each instruction alone, strict and loose.
    let mut per_id: BTreeMap<String, (usize, f64)> = BTreeMap::new();
    for (response, answer) in &rows {
        let g = gold::read(Some(answer), None).expect("a stored gold");
        for (id, check) in g.ids.iter().zip(&g.checks) {
            let t = Instant::now();
            for _ in 0..rounds {
                std::hint::black_box(evaluate(std::slice::from_ref(check), response));
            }
            let e = per_id.entry(id.clone()).or_default();
            e.0 += rounds;
            e.1 += t.elapsed().as_secs_f64();
        }
    }
    println!("| instruction id | checks | µs per check (strict+loose) |");
    println!("|---|---:|---:|");
    for (id, (count, seconds)) in per_id {
        println!("| {id} | {count} | {:.1} |", seconds * 1e6 / count as f64);
    }
}
