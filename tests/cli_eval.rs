//! Evaluation through the binary: the eval preset (`configs/eval/gsm8k.yaml`)
//! against the mock, whose right and wrong answers are fixed per prompt
//! (its gold file gives a wrong answer for chosen prompts), so accuracy,
//! its interval and the paired difference of `rsr compare` are known and
//! checked against values worked out by hand.

mod common;

use std::path::Path;

use common::TestDir;
use serde_json::json;

const N: usize = 20;

/// The test set (`messages` + `answer`), and a gold file for the mock that
/// holds a wrong answer for the prompts in `wrong`: the mock (accuracy 1)
/// answers its gold, so exactly those prompts fail.
fn data(t: &TestDir, name: &str, wrong: &[usize]) {
    let row = |i: usize, answer: String| {
        json!({"id": format!("q{i:02}"),
               "messages": [{"role": "user", "content": format!("What is {i} + 1? Box the answer.")}],
               "answer": answer})
        .to_string()
    };
    let input: Vec<String> = (0..N).map(|i| row(i, (i + 1).to_string())).collect();
    std::fs::write(t.path("test.jsonl"), input.join("\n") + "\n").unwrap();
    let gold: Vec<String> = (0..N)
        .map(|i| {
            let answer = if wrong.contains(&i) { 999 } else { i + 1 };
            row(i, answer.to_string())
        })
        .collect();
    std::fs::write(t.path(name), gold.join("\n") + "\n").unwrap();
}

fn eval(t: &TestDir, work_dir: &str, gold: &str, extra: &[&str]) -> String {
    let preset = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/eval/gsm8k.yaml");
    let launch = format!(
        "sampler.launch={} --port {{port}} --gold {gold} --accuracy 1",
        env!("CARGO_BIN_EXE_rsr-mock")
    );
    let mut args = vec![
        "run",
        preset.to_str().unwrap(),
        "data.input_path=test.jsonl",
        "data.preprocess.transform=null",
        "sampler.model=mock",
        &launch,
    ];
    let wd = format!("work_dir={work_dir}");
    args.push(&wd);
    args.extend_from_slice(extra);
    t.ok(&args)
}

fn stats(t: &TestDir, work_dir: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(t.path(work_dir).join("summary/stats.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 5e-4
}

#[test]
fn the_eval_preset_reports_accuracy_with_wilsons_interval() {
    let t = TestDir::new();
    data(&t, "gold_base.jsonl", &[0, 1, 2, 3, 4, 5, 6]);
    let out = eval(&t, "base", "gold_base.jsonl", &[]);
    // 13 of 20. Wilson by hand: p = .65, z² = 3.8415, center =
    // (.65 + .09604) / 1.19207 = .62584, half = 1.96/1.19207 ·
    // sqrt(.65·.35/20 + 3.8415/1600) = 1.64418 · .11737 = .19298.
    assert!(
        out.contains("accuracy      0.650 (95% CI 0.433–0.819, 20 prompts × 1 rollout)"),
        "{out}"
    );
    let a = &stats(&t, "base")["accuracy"];
    assert_eq!(a["prompts"], 20);
    assert_eq!(a["method"], "wilson");
    assert!(close(a["value"].as_f64().unwrap(), 0.65));
    assert!(close(a["lo"].as_f64().unwrap(), 0.4329), "{a}");
    assert!(close(a["hi"].as_f64().unwrap(), 0.8188), "{a}");
    // The preset writes no training file.
    assert!(!t.path("base/train/sft.jsonl").exists());
    let report = std::fs::read_to_string(t.path("base/summary/statistics.txt")).unwrap();
    assert!(report.contains("accuracy (truncated = failed)"));
}

#[test]
fn compare_pairs_runs_by_prompt() {
    let t = TestDir::new();
    // Base wrong on 0–6, trained wrong on 5–7: trained better on 0–4,
    // worse on 7. d = five +1, one −1, fourteen 0: mean .2; squared
    // deviations 5·.64 + 1.44 + 14·.04 = 5.2, variance 5.2/19 = .27368,
    // SE sqrt(.27368/20) = .11698, half-width 1.96 · .11698 = .22928.
    data(&t, "gold_base.jsonl", &[0, 1, 2, 3, 4, 5, 6]);
    data(&t, "gold_trained.jsonl", &[5, 6, 7]);
    eval(&t, "base", "gold_base.jsonl", &[]);
    eval(&t, "trained", "gold_trained.jsonl", &[]);
    let out = t.ok(&["compare", "base", "trained", "--out", "cmp"]);
    assert!(
        out.contains(
            "trained vs base: +0.200 (95% CI -0.029 to +0.429) over 20 shared prompts: \
             better on 5, worse on 1; the interval includes 0: no difference shown"
        ),
        "{out}"
    );
    let csv = std::fs::read_to_string(t.path("cmp/compare.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let trained: Vec<&str> = lines.nth(1).unwrap().split(',').collect();
    let col = |name: &str| trained[header.iter().position(|h| *h == name).unwrap()];
    assert_eq!(col("accuracy"), "0.85");
    assert_eq!(col("diff_vs_first"), "0.2");
    assert_eq!(col("diff_lo"), "-0.0293");
    assert_eq!(col("diff_hi"), "0.4293");
    assert_eq!((col("better"), col("worse")), ("5", "1"));
    assert_eq!(col("shared_prompts"), "20");
    for png in ["compare.png", "accuracy.png"] {
        let bytes = std::fs::read(t.path("cmp").join(png)).unwrap();
        assert_eq!(&bytes[1..4], b"PNG", "{png}");
    }
}

#[test]
fn pass_at_k_intervals_are_over_the_prompts() {
    let t = TestDir::new();
    data(&t, "gold.jsonl", &[0, 1, 2, 3, 4, 5, 6]);
    // Four samples a prompt: every sample of a prompt is right or every one
    // wrong, so the 80 rollouts are 20 independent outcomes, not 80. The
    // interval is the normal one on the 20 per-prompt means: sd
    // sqrt(.65·.35·20/19) = .48936, SE .10942, half-width .21447.
    let out = eval(
        &t,
        "k4",
        "gold.jsonl",
        &[
            "sampling.max_rollouts=4",
            "sampling.step_size=4",
            "sampler.temperature=0.8",
        ],
    );
    assert!(
        out.contains("accuracy      0.650 (95% CI 0.436–0.864, 20 prompts × 4 rollouts)"),
        "{out}"
    );
    let s = stats(&t, "k4");
    assert_eq!(s["accuracy"]["method"], "prompt_means");
    assert_eq!(s["accuracy"]["rollouts"], 80);
    let at4 = s["pass_at_k"].as_array().unwrap().last().unwrap();
    assert_eq!(
        (at4["k"].as_u64(), at4["value"].as_f64()),
        (Some(4), Some(0.65))
    );
}
