//! Rate limits through the binary against `rsr-mock` enforcing them with
//! 429s: `sampler.max_rpm` paces requests (no 429, the rate within 5% of
//! the limit), a server's `x-ratelimit-*` headers alone slow the run before
//! it hits the limit, and `sampler.max_tpm` keeps under a token limit.

mod common;

use common::mock::Mock;
use common::{TestDir, gold, prepared_mock};

/// The GSM8K sample, 26 prompts × `rollouts`, one request per rollout.
fn run(rollouts: usize) -> TestDir {
    prepared_mock(&[
        &format!("sampling.max_rollouts={rollouts}"),
        "sampling.step_size=4",
        &format!("sampling.max_steps={}", rollouts / 4),
        "sampling.early_stop=false",
        "sampler.use_n=false",
    ])
}

/// `rsr sample` with `args`; returns whether it succeeded, its requests
/// and its sampling time (from its summary line).
fn sample(t: &TestDir, mock: &Mock, args: &[&str]) -> (bool, u64, f64) {
    let url = mock.base_url_arg();
    let mut all = vec![
        "sample",
        "work_dir=run",
        url.as_str(),
        "sampler.concurrent_requests=32",
        "sampling.concurrent_prompts=32",
        "sampler.retry_delay=0.05",
    ];
    all.extend_from_slice(args);
    let out = t.cmd(&all).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err
        .lines()
        .find(|l| l.contains("sampled in"))
        .unwrap_or_else(|| panic!("no summary: {err}"));
    let secs: f64 = line
        .split("sampled in ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap();
    let requests: u64 = line
        .split(" s: ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap();
    (out.status.success(), requests, secs)
}

#[test]
fn max_rpm_below_the_servers_limit_gets_no_429_and_keeps_the_rate() {
    let t = run(12);
    let g = gold(&t);
    let mock = Mock::start(&["--gold", &g, "--max-rpm", "3000", "--retry-after", "0.05"]);
    let (ok, requests, secs) = sample(&t, &mock, &["sampler.max_rpm=2400"]);
    assert!(ok);
    assert_eq!(requests, 26 * 12);
    assert_eq!(mock.stat("status_429"), 0);
    let rpm = requests as f64 / secs * 60.0;
    assert!(
        (0.95 * 2400.0..=1.02 * 2400.0).contains(&rpm),
        "{requests} requests in {secs} s = {rpm:.0}/min"
    );
}

#[test]
fn the_servers_headers_alone_slow_the_run_before_429s() {
    let t = run(12);
    let g = gold(&t);
    let mock = Mock::start(&["--gold", &g, "--max-rpm", "3000", "--retry-after", "0.05"]);
    let (ok, requests, _) = sample(&t, &mock, &[]);
    assert!(ok);
    assert_eq!(requests, 26 * 12);
    let limited = mock.stat("status_429");
    // At most the requests already on their way when the limit ran out.
    assert!(limited <= 32, "{limited} 429s");
    // Without the headers, the same run meets the limit head on.
    let t = run(12);
    let blind = Mock::start(&[
        "--gold",
        &g,
        "--max-rpm",
        "3000",
        "--retry-after",
        "0.05",
        "--no-ratelimit-headers",
    ]);
    sample(&t, &blind, &["sampler.max_retries=20"]);
    // Without them, only the 429s themselves slow the run (fewer than the
    // requests, see the test below): it meets the limit. How many 429s
    // each run gets depends on the machine's speed (both are a handful on a
    // slow one), so the counts are not compared.
    assert!(
        blind.stat("status_429") >= 1,
        "{} 429s without headers, {limited} with",
        blind.stat("status_429")
    );
}

#[test]
fn max_tpm_below_the_servers_token_limit_gets_no_429() {
    let t = run(4);
    let g = gold(&t);
    let mock = Mock::start(&[
        "--gold",
        &g,
        "--max-tpm",
        "600000",
        "--retry-after",
        "0.05",
        "--no-ratelimit-headers",
    ]);
    let (ok, requests, _) = sample(&t, &mock, &["sampler.max_tpm=480000"]);
    assert!(ok);
    assert_eq!(requests, 26 * 4);
    assert_eq!(mock.stat("status_429"), 0);
    // The check works: without max_tpm the same run is refused some.
    let t = run(4);
    let blind = Mock::start(&[
        "--gold",
        &g,
        "--max-tpm",
        "200000",
        "--retry-after",
        "0.05",
        "--no-ratelimit-headers",
    ]);
    sample(&t, &blind, &["sampler.max_retries=20"]);
    assert!(blind.stat("status_429") > 0);
}

#[test]
fn under_defaults_429s_without_headers_slow_the_run_instead_of_stopping_it() {
    // A server limited to 1,200 requests a minute that sends no limit
    // headers, rsr at its default retries and 32 requests at once: the
    // 429s' Retry-After pauses every start and spaces them out, so the run
    // finishes with every request answered and few refused.
    let t = run(8);
    let g = gold(&t);
    let mock = Mock::start(&["--gold", &g, "--max-rpm", "1200", "--no-ratelimit-headers"]);
    let (ok, requests, secs) = sample(&t, &mock, &[]);
    assert!(ok, "the run stopped");
    assert_eq!(requests, 26 * 8);
    let refused = mock.stat("status_429");
    assert!(
        refused < 26 * 8 / 2,
        "{refused} 429s for {requests} requests"
    );
    // Not much slower than the limit allows (208 requests at 20 a second,
    // less the first second's burst: about 10 s); the bound leaves room for
    // a loaded 2-core machine (25.3 s seen once) and still catches a run
    // that stalls on its retries.
    assert!(secs < 40.0, "{secs} s");
}

#[test]
fn a_run_stopped_by_429s_names_the_rate_settings_not_the_server() {
    let t = run(4);
    let g = gold(&t);
    // Every request refused: the breaker stops the run.
    let mock = Mock::start(&["--gold", &g, "--rate-429", "1", "--retry-after", "0.01"]);
    let url = mock.base_url_arg();
    let out = t
        .cmd(&[
            "sample",
            "work_dir=run",
            &url,
            "sampler.max_retries=1",
            "sampling.failure_window=4",
            "sampler.concurrent_requests=4",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("HTTP 429"), "{err}");
    assert!(err.contains("sampler.max_rpm"), "{err}");
    assert!(!err.contains("fix the server"), "{err}");
}
