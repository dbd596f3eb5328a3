//! `rsr view` through the binary: the JSON its pages read (counts, filters,
//! paging, sorting, one prompt, disagreements, no answer found) checked
//! against `rsr sql` on the same work dir, and what it refuses (other
//! methods than GET, statements in the filter, unknown sort columns).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};

use common::mock::Mock;
use common::{TestDir, gold, prepared_mock, query};
use serde_json::Value;

/// `rsr view run` on a free port; killed when dropped.
struct View {
    child: Child,
    addr: String,
}

impl View {
    fn start(t: &TestDir) -> Self {
        let mut child = t
            .cmd(&["view", "run"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("rsr view: http://")
            .and_then(|s| s.split('/').next())
            .unwrap_or_else(|| panic!("unexpected first line: {line}"))
            .to_string();
        Self { child, addr }
    }

    /// `METHOD path`: the status and the body.
    fn request(&self, method: &str, path: &str) -> (u16, String) {
        let mut s = TcpStream::connect(&self.addr).unwrap();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.addr
        )
        .unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        let status = text[9..12].parse().unwrap();
        let body = text
            .split_once("\r\n\r\n")
            .map_or("", |(_, b)| b)
            .to_string();
        (status, body)
    }

    fn json(&self, path: &str) -> Value {
        let (status, body) = self.request("GET", path);
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    fn error(&self, path: &str) -> (u16, String) {
        let (status, body) = self.request("GET", path);
        let v: Value = serde_json::from_str(&body).unwrap();
        (status, v["error"].as_str().unwrap().to_string())
    }
}

impl Drop for View {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The GSM8K sample sampled from the mock, judged by the mock as a judge
/// that is right 70% of the time and sometimes unreadable.
fn judged_run() -> TestDir {
    let t = prepared_mock(&["sampling.max_rollouts=4", "sampling.early_stop=false"]);
    let g = gold(&t);
    let mock = Mock::start(&[
        "--gold",
        &g,
        "--judge-accuracy",
        "0.7",
        "--judge-garbage",
        "0.1",
    ]);
    t.ok(&["sample", "work_dir=run", &mock.base_url_arg()]);
    t.ok(&[
        "verify",
        "run",
        "verifier.type=llm-judge",
        &format!("judge.base_url={}", mock.url()),
        "judge.model=mock",
    ]);
    t
}

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

#[test]
fn the_pages_json_matches_sql_on_the_same_run() {
    let t = judged_run();
    let view = View::start(&t);
    let info = view.json("/api/info");
    assert_eq!(n(&info["prompts"]), 26);
    assert_eq!(n(&info["rollouts"]), 26 * 4);
    let labels: Vec<&str> = info["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["llm-judge", "math-rlvr"]);

    // Paging.
    let all = view.json("/api/prompts?limit=500");
    assert_eq!(n(&all["total"]), 26);
    let page = view.json("/api/prompts?limit=10&offset=20");
    assert_eq!(page["rows"].as_array().unwrap().len(), 6);
    assert_eq!(page["rows"][0]["id"], all["rows"][20]["id"]);
    // Counts per prompt equal the prompts view's.
    let sql = query(
        &t,
        "run",
        "SELECT id, n_valid, n_pass, pass_rate FROM prompts ORDER BY id",
    );
    for (a, b) in all["rows"].as_array().unwrap().iter().zip(&sql) {
        assert_eq!(
            (&a["id"], &a["n_valid"], &a["n_pass"]),
            (&b["id"], &b["n_valid"], &b["n_pass"])
        );
    }
    // Sorting, then the pass-rate range and a SQL condition.
    let sorted = view.json("/api/prompts?sort=pass_rate&desc=1&limit=500");
    let rates: Vec<f64> = sorted["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["pass_rate"].as_f64().unwrap())
        .collect();
    assert!(rates.windows(2).all(|w| w[0] >= w[1]), "{rates:?}");
    let mid = view.json("/api/prompts?min_pass_rate=0.25&max_pass_rate=0.75");
    let want = query(
        &t,
        "run",
        "SELECT count(*) AS n FROM prompts WHERE pass_rate BETWEEN 0.25 AND 0.75",
    );
    assert_eq!(mid["total"], want[0]["n"]);
    let filtered =
        view.json("/api/prompts?where=n_pass%20%3E%3D%203%20AND%20id%20LIKE%20'gsm8k-1%25'");
    let want = query(
        &t,
        "run",
        "SELECT count(*) AS n FROM prompts WHERE n_pass >= 3 AND id LIKE 'gsm8k-1%'",
    );
    assert_eq!(filtered["total"], want[0]["n"]);

    // One prompt: every rollout and each label's verdicts.
    let p = view.json("/api/prompt?id=gsm8k-3");
    assert_eq!(p["prompt"]["id"], "gsm8k-3");
    assert_eq!(p["prompt"]["contaminated"], false);
    let clean = view.json("/api/prompts?where=NOT%20contaminated%20AND%20duplicate_of%20IS%20NULL");
    assert_eq!(clean["total"], view.json("/api/prompts")["total"]);
    assert!(p["prompt"]["duplicate_of"].is_null());
    assert_eq!(p["rollouts"].as_array().unwrap().len(), 4);
    let judge = p["verdicts"]["llm-judge"].as_array().unwrap();
    assert_eq!(judge.len(), 4);
    assert!(
        judge
            .iter()
            .all(|v| v["outcome"].is_string() && v.get("judge_raw").is_some())
    );
    assert_eq!(view.error("/api/prompt?id=nope").0, 404);

    // Disagreements: the valid rollouts the rules and the judge split on,
    // by hand.
    let hand = query(
        &t,
        "run",
        "SELECT count(*) AS n FROM rollouts r JOIN scores s \
           ON r.id = s.id AND r.rollout_idx = s.rollout_idx AND s.verifier = 'llm-judge' \
         WHERE r.error IS NULL AND NOT r.truncated AND s.score IS NOT NULL \
           AND (r.score >= 1.0) <> (s.score >= 1.0)",
    );
    let d = view.json("/api/disagreements?limit=500");
    assert_eq!(d["total"], hand[0]["n"]);
    assert!(n(&d["total"]) > 0);
    // By default the inline verdicts against the newest label; any two
    // sources may be picked, and only theirs are listed.
    assert_eq!(
        view.json("/api/info")["pair"],
        serde_json::json!(["inline", "llm-judge"])
    );
    let picked = view.json("/api/disagreements?limit=500&a=llm-judge&b=inline");
    assert_eq!(picked["total"], hand[0]["n"]);
    let same = view.json("/api/disagreements?a=inline&b=math-rlvr");
    assert_eq!(
        n(&same["total"]),
        0,
        "the inline verdicts' own copy never disagrees"
    );
    assert_eq!(view.error("/api/disagreements?b=nope").0, 400);
    for row in d["rows"].as_array().unwrap() {
        let sources = row["sources"].as_array().unwrap();
        assert!(sources.iter().any(|s| s["passed"] == true));
        assert!(sources.iter().any(|s| s["passed"] == false));
    }
    let flagged = all["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["disagree"] == true)
        .count();
    let ids = query(
        &t,
        "run",
        "SELECT count(DISTINCT r.id) AS n FROM rollouts r JOIN scores s \
           ON r.id = s.id AND r.rollout_idx = s.rollout_idx AND s.verifier = 'llm-judge' \
         WHERE r.error IS NULL AND NOT r.truncated AND s.score IS NOT NULL \
           AND (r.score >= 1.0) <> (s.score >= 1.0)",
    );
    assert_eq!(flagged as u64, n(&ids[0]["n"]));

    // No answer found: the judge's unreadable answers under its label.
    let none = view.json("/api/no-answer?scores=llm-judge&limit=500");
    let want = query(
        &t,
        "run",
        "SELECT count(*) AS n FROM scores WHERE verifier = 'llm-judge' AND outcome = 'unparsed'",
    );
    assert_eq!(none["total"], want[0]["n"]);
    assert!(n(&none["total"]) > 0);
    assert_eq!(n(&view.json("/api/no-answer")["total"]), 0);

    // The run's report, and the page itself with its assets.
    let (status, report) = view.request("GET", "/report");
    assert_eq!(status, 200);
    assert!(
        report.contains("agreement") || report.contains("pass rate"),
        "{report}"
    );
    let (status, index) = view.request("GET", "/");
    assert_eq!(status, 200);
    assert!(
        index.contains("/app.js") && !index.contains("http"),
        "{index}"
    );
}

#[test]
fn the_viewer_is_read_only_and_refuses_sql_beyond_a_condition() {
    let t = judged_run();
    let view = View::start(&t);
    for method in ["POST", "PUT", "DELETE"] {
        assert_eq!(view.request(method, "/api/prompts").0, 405, "{method}");
    }
    for (filter, says) in [
        ("1%3D1%3B%20COPY%20prompts%20TO%20'x.csv'", "no `;`"),
        (
            "id%20IN%20(SELECT%20id%20FROM%20prompts)",
            "`SELECT` is not allowed",
        ),
        ("true)%20UNION%20(SELECT%201", "`SELECT` is not allowed"),
        ("nosuch%20%3E%201", "No field named nosuch"),
        ("n_valid%20%3E%3D", "not a SQL condition"),
    ] {
        let (status, e) = view.error(&format!("/api/prompts?where={filter}"));
        assert_eq!(status, 400, "{filter}");
        assert!(e.contains(says), "{filter}: {e}");
    }
    let (status, e) = view.error("/api/prompts?sort=messages");
    assert_eq!(status, 400);
    assert!(e.contains("one of id, pass_rate"), "{e}");
    let (status, e) = view.error("/api/prompts?min_pass_rate=half");
    assert_eq!((status, e.contains("must be a number")), (400, true));
    assert_eq!(view.error("/api/nope").0, 404);
    assert!(!t.path("x.csv").exists() && !t.path("run/x.csv").exists());
    // Security headers on every answer.
    let mut s = TcpStream::connect(&view.addr).unwrap();
    write!(s, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let head = text.split("\r\n\r\n").next().unwrap().to_lowercase();
    assert!(
        head.contains("content-security-policy: default-src 'none'; script-src 'self'"),
        "{head}"
    );
    assert!(head.contains("x-content-type-options: nosniff"));
}
