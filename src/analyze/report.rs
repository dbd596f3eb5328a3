//! The readable forms of [`Stats`]: `summary/statistics.txt` and the
//! one-page `summary/report.html` (numbers and charts, no server needed).

use std::fmt::Write as _;

use super::{Percentiles, Stats};

fn pct(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{:.1}%", 100.0 * v))
}

fn num(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(v) if v.abs() >= 100.0 => format!("{v:.0}"),
        Some(v) => format!("{v:.3}"),
    }
}

fn percentiles_line(p: &Percentiles) -> String {
    format!(
        "n={} mean={} p50={} p90={} p95={} p99={} max={}",
        p.count,
        num(p.mean),
        num(p.p50),
        num(p.p90),
        num(p.p95),
        num(p.p99),
        num(p.max)
    )
}

/// A guard's line: its window's figures and whether it fired, or why it
/// has none.
fn guard(s: &Stats, name: &str) -> String {
    let switch = match name {
        "truncation" => "allow_truncation",
        "identical" => "allow_identical",
        _ => "allow_no_answer",
    };
    let off = s.guards_off.iter().any(|g| g == name);
    match (s.guards.get(name), off) {
        (None, true) => format!("guard switched off (sampling.{switch})"),
        (None, false) => "guard: its window did not fill".into(),
        (Some(r), _) => format!(
            "guard: {} of the first {} ({}) against {}, {}{}",
            r.hits,
            r.seen,
            pct((r.seen > 0).then(|| r.hits as f64 / r.seen as f64)),
            pct(Some(r.max_rate)),
            if r.fired { "fired" } else { "passed" },
            if off {
                format!("; then switched off (sampling.{switch})")
            } else {
                String::new()
            }
        ),
    }
}

/// The five pitfalls of rejection sampling, each with the run's figure
/// and its guard: truncated outputs, identical responses (unreasonable
/// sampling parameters), answers the verifier cannot find (extraction
/// loopholes), pass rates not saved, budget spent on easy prompts.
fn health(s: &Stats) -> Vec<(&'static str, String, String)> {
    let share = |a: u64, b: u64| pct((b > 0).then(|| a as f64 / b as f64));
    vec![
        (
            "health",
            "truncated outputs".into(),
            format!(
                "{} of {} rollouts ({}); {}",
                s.truncated,
                s.rollouts,
                share(s.truncated, s.rollouts),
                guard(s, "truncation")
            ),
        ),
        (
            "health",
            "identical responses".into(),
            format!(
                "{} of {} prompts with two or more valid responses ({}); {}",
                s.prompts_identical,
                s.prompts_multi,
                share(s.prompts_identical, s.prompts_multi),
                guard(s, "identical")
            ),
        ),
        (
            "health",
            "no answer found".into(),
            format!(
                "{} of {} valid responses with a gold answer ({}); {}",
                s.no_answer,
                s.answerable,
                share(s.no_answer, s.answerable),
                guard(s, "no_answer")
            ),
        ),
        (
            "health",
            "pass rates saved".into(),
            format!(
                "per prompt, in the prompts view and stats.json ({} prompts)",
                s.prompts_sampled
            ),
        ),
        (
            "health",
            "easy prompts".into(),
            format!(
                "{} always pass ({}); early stop {}",
                s.prompts_all_pass,
                share(s.prompts_all_pass, s.prompts_sampled),
                if s.early_stop {
                    format!("saved {} of the rollout budget", pct(s.early_stop_saved))
                } else {
                    "off".to_string()
                }
            ),
        ),
    ]
}

/// One line of the statistics: its section, its name and its value.
type Row = (&'static str, String, String);

/// Every line of the statistics, section by section (`statistics.txt`, the
/// report's tables).
pub fn rows(s: &Stats) -> Vec<Row> {
    let mut r = run_rows(s);
    r.extend(health(s));
    for section in [
        count_rows,
        pass_rate_rows,
        ifeval_rows,
        hygiene_rows,
        majority_rows,
        token_and_speed_rows,
        spending_rows,
        agreement_rows,
    ] {
        r.extend(section(s));
    }
    r
}

/// What ran: the work dir, the model, the verifier.
fn run_rows(s: &Stats) -> Vec<Row> {
    vec![
        ("run", "work dir".into(), s.work_dir.clone()),
        ("run", "model".into(), s.model.clone()),
        (
            "run",
            "verifier".into(),
            format!("{} ({} verdicts)", s.verifier, s.verdicts),
        ),
    ]
}

/// How the prompts and rollouts came out.
fn count_rows(s: &Stats) -> Vec<Row> {
    let share = |a: u64, b: u64| pct((b > 0).then(|| a as f64 / b as f64));
    let mut r = Vec::new();
    r.extend([
        ("prompts", "in the input".into(), s.prompts.to_string()),
        ("prompts", "sampled".into(), s.prompts_sampled.to_string()),
        (
            "prompts",
            "all valid rollouts pass".into(),
            format!(
                "{} ({})",
                s.prompts_all_pass,
                share(s.prompts_all_pass, s.prompts_sampled)
            ),
        ),
        (
            "prompts",
            "all valid rollouts fail".into(),
            format!(
                "{} ({})",
                s.prompts_all_fail,
                share(s.prompts_all_fail, s.prompts_sampled)
            ),
        ),
        (
            "prompts",
            "mixed".into(),
            format!(
                "{} ({})",
                s.prompts_mixed,
                share(s.prompts_mixed, s.prompts_sampled)
            ),
        ),
        (
            "prompts",
            "no valid rollout".into(),
            format!(
                "{} ({})",
                s.prompts_no_valid,
                share(s.prompts_no_valid, s.prompts_sampled)
            ),
        ),
        (
            "rollouts",
            "finished (responses)".into(),
            s.rollouts.to_string(),
        ),
        (
            "rollouts",
            "valid".into(),
            format!("{} ({})", s.valid, share(s.valid, s.rollouts)),
        ),
        (
            "rollouts",
            "truncated".into(),
            format!("{} ({})", s.truncated, share(s.truncated, s.rollouts)),
        ),
        (
            "rollouts",
            "in failed requests (requested again)".into(),
            s.errors.to_string(),
        ),
        (
            "rollouts",
            "per prompt, mean".into(),
            num(s.mean_rollouts_per_prompt),
        ),
        (
            "rollouts",
            format!("saved by early stop (vs {} per prompt)", s.max_rollouts),
            if s.early_stop {
                pct(s.early_stop_saved)
            } else {
                "early stop off".into()
            },
        ),
    ]);
    r
}

/// Pass rates: overall, per prompt, pass@k and maj@k, the vote's accuracy.
fn pass_rate_rows(s: &Stats) -> Vec<Row> {
    let share = |a: u64, b: u64| pct((b > 0).then(|| a as f64 / b as f64));
    let mut r = Vec::new();
    r.extend([
        (
            "pass rate",
            if s.is_vote() {
                "agree with their prompt's majority label / valid".into()
            } else {
                "passed / valid".into()
            },
            format!("{} of {} ({})", s.passed, s.valid, pct(s.pass_rate)),
        ),
        (
            "pass rate",
            "mean per prompt".into(),
            pct(s.mean_prompt_pass_rate),
        ),
    ]);
    if let Some(a) = s.accuracy.as_ref().filter(|_| !s.is_vote()) {
        r.push((
            "pass rate",
            "accuracy (truncated = failed)".into(),
            a.describe(),
        ));
    }
    if let Some(m) = s.vote_accuracy() {
        r.push((
            "pass rate",
            "majority label equals the gold".into(),
            format!(
                "{} of {} labelled prompts with gold ({})",
                m.label_is_gold,
                m.with_gold,
                share(m.label_is_gold, m.with_gold)
            ),
        ));
    }
    let all = s.pass_at_k.first().map_or(0, |p| p.prompts);
    for p in &s.pass_at_k {
        let fewer = if p.prompts < all {
            " — only the prompts sampled at least k times; early stop ends easy prompts sooner, \
             so these are the harder ones and pass@k can fall as k grows"
        } else {
            ""
        };
        r.push((
            "pass rate",
            format!("pass@{}", p.k),
            format!("{} (over {} prompts){fewer}", pct(Some(p.value)), p.prompts),
        ));
        if let Some(m) = s.maj_at_k.iter().find(|m| m.k == p.k) {
            r.push((
                "pass rate",
                format!("maj@{}", m.k),
                format!(
                    "{} (majority answer right, over {} prompts with gold)",
                    pct(Some(m.value)),
                    m.prompts
                ),
            ));
        }
    }
    r
}

/// IFEval's four numbers and how often each instruction id was followed.
fn ifeval_rows(s: &Stats) -> Vec<Row> {
    let Some(f) = &s.ifeval else {
        return Vec::new();
    };
    let share = |x: u64, n: u64| format!("{} ({x} of {n})", pct(Some(x as f64 / n.max(1) as f64)));
    let mut r = vec![
        (
            "instruction following (IFEval)",
            "prompt-level strict".into(),
            format!(
                "{} of {} responses",
                pct(Some(f.prompt_strict)),
                f.responses
            ),
        ),
        (
            "instruction following (IFEval)",
            "prompt-level loose".into(),
            format!("{} of {} responses", pct(Some(f.prompt_loose)), f.responses),
        ),
        (
            "instruction following (IFEval)",
            "instruction-level strict".into(),
            format!(
                "{} of {} instructions",
                pct(Some(f.instruction_strict)),
                f.instructions
            ),
        ),
        (
            "instruction following (IFEval)",
            "instruction-level loose".into(),
            format!(
                "{} of {} instructions",
                pct(Some(f.instruction_loose)),
                f.instructions
            ),
        ),
    ];
    for row in &f.per_id {
        r.push((
            "instruction following (IFEval)",
            row.id.clone(),
            format!(
                "strict {}, loose {}",
                share(row.strict, row.count),
                share(row.loose, row.count)
            ),
        ));
    }
    r
}

/// What decontamination and dedup found.
fn hygiene_rows(s: &Stats) -> Vec<Row> {
    let mut r = Vec::new();
    if let Some(h) = &s.hygiene {
        for b in &h.benchmarks {
            r.push((
                "data hygiene",
                format!("overlap with {}", b.info.path),
                format!(
                    "{} of {} prompts share a run of {} words ({} problem{})",
                    b.prompts_flagged,
                    h.prompts,
                    h.ngram,
                    b.info.problems,
                    if b.info.problems == 1 { "" } else { "s" }
                ),
            ));
        }
        if h.dedup_mode != crate::config::DedupMode::Off {
            r.push((
                "data hygiene",
                "duplicate prompts".into(),
                format!(
                    "{} exact, {} near in {} groups",
                    h.exact_duplicates, h.near_duplicates, h.groups
                ),
            ));
        }
        r.push((
            "data hygiene",
            "left out".into(),
            format!("{} of {} prompts", h.excluded, h.prompts),
        ));
    }
    r
}

/// The majority labels of the work dir's `scores/`.
fn majority_rows(s: &Stats) -> Vec<Row> {
    let mut r = Vec::new();
    for m in &s.majority_labels {
        let share = (m.with_gold > 0).then(|| m.label_is_gold as f64 / m.with_gold as f64);
        r.push((
            "majority vote",
            format!("scores/{}", m.label),
            format!(
                "{} of {} prompts labelled; the label equals the gold for {} of {} ({})",
                m.labelled,
                m.prompts,
                m.label_is_gold,
                m.with_gold,
                pct(share)
            ),
        ));
    }
    r
}

/// Completion tokens, latency and throughput.
fn token_and_speed_rows(s: &Stats) -> Vec<Row> {
    let mut r = vec![
        (
            "tokens",
            "completion, passing".into(),
            percentiles_line(&s.completion_tokens_pass),
        ),
        (
            "tokens",
            "completion, failing".into(),
            percentiles_line(&s.completion_tokens_fail),
        ),
        (
            "speed",
            "latency ms".into(),
            percentiles_line(&s.latency_ms),
        ),
        (
            "speed",
            "span of saved responses (s)".into(),
            num(s.span_seconds),
        ),
        (
            "speed",
            "completion tokens / s".into(),
            num(s.tokens_per_second),
        ),
        ("speed", "rollouts / s".into(), num(s.rollouts_per_second)),
        ("speed", "requests / s".into(), num(s.requests_per_second)),
        ("speed", "requests sent".into(), s.requests.to_string()),
        ("speed", "retries".into(), s.retries.to_string()),
    ];
    if s.judge_requests > 0 {
        r.push((
            "speed",
            "judge requests".into(),
            format!(
                "{} ({} prompt + {} completion tokens)",
                s.judge_requests, s.judge_prompt_tokens, s.judge_completion_tokens
            ),
        ));
    }
    r
}

/// Tokens and cost, and what early stop saved.
fn spending_rows(s: &Stats) -> Vec<Row> {
    let mut r = Vec::new();
    let sp = &s.spending;
    let usd =
        |c: Option<f64>| c.map_or_else(|| "– (no pricing)".to_string(), |c| format!("${c:.4}"));
    r.push((
        "spending",
        "sampling tokens".into(),
        format!(
            "{} prompt + {} completion in {} requests",
            sp.prompt_tokens, sp.completion_tokens, sp.requests
        ),
    ));
    let cost = match (sp.cost, sp.batch_share) {
        (Some(c), Some(share)) if share > 0.0 => format!(
            "{} at batch prices ({:.0}% of pricing.*; {} online)",
            usd(Some(c)),
            share * 100.0,
            usd(Some(c / share))
        ),
        _ => usd(sp.cost),
    };
    r.push(("spending", "sampling cost".into(), cost));
    if s.judge_requests > 0 {
        r.push(("spending", "judge cost".into(), usd(sp.judge_cost)));
    }
    if let Some(t) = sp.early_stop_saved_tokens {
        r.push((
            "spending",
            "saved by early stop".into(),
            format!("{t:.0} tokens, {}", usd(sp.early_stop_saved_cost)),
        ));
    }
    for row in &sp.per_row {
        r.push((
            "spending",
            format!("per {} row", row.formatter),
            format!(
                "{} tokens, {} ({} rows)",
                row.tokens_per_row
                    .map_or_else(|| "–".into(), |t| format!("{t:.0}")),
                usd(row.cost_per_row),
                row.rows
            ),
        ));
    }
    r
}

/// Agreement of the verdicts with the inline ones, and numeric's best-of-N error.
fn agreement_rows(s: &Stats) -> Vec<Row> {
    let share = |a: u64, b: u64| pct((b > 0).then(|| a as f64 / b as f64));
    let mut r = Vec::new();
    if let Some(a) = &s.agreement {
        let total = a.both_pass + a.inline_only + a.label_only + a.both_fail;
        let line = |n: u64| format!("{n} ({})", share(n, total));
        let label = &s.verdicts;
        r.push((
            "agreement with the inline verdicts",
            "both pass".into(),
            line(a.both_pass),
        ));
        r.push((
            "agreement with the inline verdicts",
            "inline only".into(),
            line(a.inline_only),
        ));
        r.push((
            "agreement with the inline verdicts",
            format!("{label} only"),
            line(a.label_only),
        ));
        r.push((
            "agreement with the inline verdicts",
            "both fail".into(),
            line(a.both_fail),
        ));
    }
    if let Some(e) = &s.best_of_n_error {
        r.push((
            "numeric",
            "best-of-N absolute error per prompt".into(),
            percentiles_line(e),
        ));
    }
    r
}

/// `summary/statistics.txt`.
pub fn text(s: &Stats) -> String {
    let rows = rows(s);
    let width = rows.iter().map(|r| r.1.chars().count()).max().unwrap_or(0);
    let mut out = String::new();
    let mut section = "";
    for (sec, label, value) in &rows {
        if *sec != section {
            if !section.is_empty() {
                out.push('\n');
            }
            let _ = writeln!(out, "[{sec}]");
            section = sec;
        }
        let _ = writeln!(out, "  {label:<width$}  {value}");
    }
    if s.early_stop {
        out.push_str(
            "\nNote: early stop ends a prompt as soon as its formatters are satisfied, so its\n\
             pass rate rests on few rollouts and is biased (a prompt that passes in its\n\
             first step never gets the rollouts that might fail; n_valid in the prompts\n\
             view says how many it rests on). Sample with sampling.early_stop=false when\n\
             exact rates matter.\n",
        );
    }
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `summary/report.html`: the numbers and the charts on one page, the
/// charts embedded as `data:` URIs so the file can be sent on its own.
/// `charts` holds each chart's caption and PNG bytes.
pub fn html(s: &Stats, charts: &[(String, Vec<u8>)]) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>rsr report: {title}</title><style>\
         body{{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}}\
         table{{border-collapse:collapse;margin-bottom:1.5em}}\
         td,th{{padding:3px 12px;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}}\
         th{{background:#f3f3f3}} img{{max-width:100%;border:1px solid #ddd;margin:0.5em 0}}\
         </style></head><body>\n<h1>rsr report</h1>\n<p>{title}</p>\n<table>\n",
        title = escape(&s.work_dir)
    );
    let mut section = "";
    for (sec, label, value) in rows(s) {
        if sec != section {
            let _ = writeln!(out, "<tr><th colspan=\"2\">{}</th></tr>", escape(sec));
            section = sec;
        }
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td></tr>",
            escape(&label),
            escape(&value)
        );
    }
    out.push_str("</table>\n");
    if s.early_stop {
        out.push_str(
            "<p><em>Early stop ends a prompt as soon as its formatters are satisfied, so its \
             pass rate rests on few rollouts and is biased. Sample with \
             <code>sampling.early_stop=false</code> when exact rates matter.</em></p>\n",
        );
    }
    for (caption, png) in charts {
        let _ = writeln!(
            out,
            "<figure><img src=\"data:image/png;base64,{}\" alt=\"{}\"><figcaption>{}</figcaption></figure>",
            base64(png),
            escape(caption),
            escape(caption)
        );
    }
    out.push_str("</body></html>\n");
    out
}

/// Standard base64 (RFC 4648, with padding).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), expected, "{input}");
        }
    }
}
