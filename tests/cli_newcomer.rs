//! What new users met, as regression tests through the binary: every
//! verifier's passes reach every formatter's rows, a judge checked before
//! the sampling bill, a mistyped scores label or base URL refused, a work
//! dir that sampled nothing open to a corrected model, a dry run that
//! leaves nothing behind.

mod common;

use common::mock::Mock;
use common::{TestDir, gold, prepared_mock, query, query_with};

/// A port nothing listens on.
fn closed_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    drop(listener);
    url
}

fn lines(t: &TestDir, rel: &str) -> usize {
    std::fs::read_to_string(t.path(rel))
        .unwrap_or_else(|e| panic!("{rel}: {e}"))
        .lines()
        .count()
}

#[test]
fn every_verifier_and_every_formatter_give_rows_when_rollouts_pass() {
    let t = prepared_mock(&["sampling.max_rollouts=4", "sampling.early_stop=false"]);
    let mock = Mock::start(&["--gold", &gold(&t)]);
    t.ok(&["sample", "work_dir=run", &mock.base_url_arg()]);
    let judge = [
        format!("judge.base_url={}", mock.url()),
        "judge.model=mock".to_string(),
    ];
    // Each label and how it is made (none: the inline verdicts).
    let labels: [(&str, &[&str]); 8] = [
        ("inline", &[]),
        ("numeric", &["verifier.type=numeric"]),
        ("judge", &["verifier.type=llm-judge"]),
        (
            "judge-p",
            &["verifier.type=llm-judge", "verifier.options.score=logprobs"],
        ),
        (
            "rubric",
            &[
                "verifier.type=llm-judge",
                "verifier.options.template=rubric",
            ],
        ),
        (
            "rm",
            &[
                "verifier.type=reward-model",
                "verifier.options.api=vllm-classify",
            ],
        ),
        ("vote", &["verifier.type=majority"]),
        ("mcq-judge", &["verifier.type=mcq-llm-as-judge"]),
    ];
    let mut checked = 0;
    for (label, how) in labels {
        let scores = (label != "inline").then_some(label);
        if let Some(label) = scores {
            let mut args = vec![
                "verify".to_string(),
                "run".to_string(),
                format!("verifier.label={label}"),
            ];
            args.extend(how.iter().map(|s| s.to_string()));
            args.extend(judge.iter().cloned());
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            t.ok(&args);
        }
        let sql = "SELECT count(*) FILTER (WHERE n_pass > 0) AS passing, \
                   count(*) FILTER (WHERE n_pass > 0 AND n_pass < n_valid) AS mixed FROM prompts";
        let rows = match scores {
            Some(l) => query_with(&t, "run", sql, l),
            None => query(&t, "run", sql),
        };
        let passing = rows[0]["passing"].as_u64().unwrap();
        let mixed = rows[0]["mixed"].as_u64().unwrap();
        for (kind, needs) in [
            ("sft", passing),
            ("top_k", passing),
            ("multi_sft", passing),
            ("dpo", mixed),
        ] {
            let name = format!("{kind}-{label}");
            let mut args = vec![
                "format".to_string(),
                "run".to_string(),
                format!("formatter.0.type={kind}"),
                format!("formatter.0.name={name}"),
            ];
            if kind == "top_k" {
                args.push("formatter.0.k=2".into());
            }
            if let Some(l) = scores {
                args.push("--scores".into());
                args.push(l.into());
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            t.ok(&args);
            let rows = lines(&t, &format!("run/train/{name}.jsonl"));
            if needs > 0 {
                assert!(
                    rows > 0,
                    "{label} × {kind}: 0 rows although {needs} prompts qualify"
                );
                checked += 1;
            }
        }
    }
    // The mcq judge finds no option in math answers; every other label
    // passes some rollouts and fails others.
    assert!(checked >= 7 * 4, "only {checked} combinations had passes");
    // A threshold the label's scores can never meet is an error, not an
    // empty file.
    let err = t.fails(&[
        "format",
        "run",
        "--scores",
        "judge-p",
        "formatter.0.pass_threshold=1.5",
    ]);
    assert!(err.contains("can never be met"), "{err}");
    assert!(err.contains("they pass from 0.5"), "{err}");
}

#[test]
fn a_judge_that_is_down_stops_the_run_before_anything_is_sampled() {
    let t = TestDir::new();
    let mock = Mock::start(&[]);
    let input = format!("data.input_path={}", common::fixture("gsm8k_sample.jsonl"));
    let err = t.fails(&[
        "run",
        "work_dir=run",
        &input,
        "data.preprocess.transform=gsm8k",
        &mock.base_url_arg(),
        "sampler.model=mock",
        "verifier.type=llm-judge",
        &format!("judge.base_url={}", closed_port()),
        "judge.model=judge",
    ]);
    assert!(err.contains("judge.base_url"), "{err}");
    assert!(err.contains("nothing was sampled"), "{err}");
    assert_eq!(mock.stat("requests"), 0);
    assert!(
        !t.path("run").exists(),
        "a failed new run leaves no work dir"
    );
}

#[test]
fn an_unknown_scores_label_is_refused_by_rsr_sql() {
    let t = prepared_mock(&[]);
    let mock = Mock::start(&["--gold", &gold(&t)]);
    t.ok(&["sample", "work_dir=run", &mock.base_url_arg()]);
    t.ok(&["verify", "run", "verifier.label=v2"]);
    let err = t.fails(&[
        "sql",
        "run",
        "--scores",
        "v3",
        "SELECT count(*) FROM results",
    ]);
    assert!(err.contains("no scores in run/scores/v3"), "{err}");
    assert!(err.contains("its labels: ") && err.contains("v2"), "{err}");
    t.ok(&[
        "sql",
        "run",
        "--scores",
        "v2",
        "SELECT count(*) FROM results",
    ]);
}

#[test]
fn a_work_dir_that_sampled_nothing_takes_the_corrected_model() {
    let t = prepared_mock(&["sampler.model=deepseek-reasoner"]);
    let mock = Mock::start(&["--gold", &gold(&t)]);
    let url = mock.base_url_arg();
    let err = t.fails(&["sample", "work_dir=run", &url]);
    assert!(err.contains("Set sampler.model"), "{err}");
    // The hint works: nothing was sampled, so the model may change.
    t.ok(&["sample", "work_dir=run", &url, "sampler.model=mock"]);
    // Once rollouts exist, it is fixed.
    let err = t.fails(&["sample", "work_dir=run", &url, "sampler.model=other"]);
    assert!(err.contains("cannot change `sampler.model`"), "{err}");
}

#[test]
fn a_dry_run_checks_the_server_and_the_budget_and_leaves_nothing() {
    let t = TestDir::new();
    let mock = Mock::start(&[]);
    let input = format!("data.input_path={}", common::fixture("gsm8k_sample.jsonl"));
    let base = [
        "run",
        "--dry-run",
        "work_dir=run",
        input.as_str(),
        "data.preprocess.transform=gsm8k",
    ];
    let with = |extra: &[&str]| -> Vec<String> {
        base.iter()
            .chain(extra)
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
    };
    let url = mock.base_url_arg();
    let args = with(&[
        &url,
        "sampler.model=mock",
        "pricing.input=1",
        "pricing.output=1",
        "budget.max_cost=0.01",
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = t.ok(&args);
    assert!(
        out.contains("budget.max_cost=0.01 is below this worst case"),
        "{out}"
    );
    assert!(!t.path("run").exists(), "the dry run left a work dir");
    // A wrong model is caught by the dry run too.
    let args = with(&[&url, "sampler.model=nope"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let err = t.fails(&args);
    assert!(err.contains("does not serve model `nope`"), "{err}");
    assert!(!t.path("run").exists());
    assert_eq!(mock.stat("requests"), 0);
}

#[test]
fn a_base_url_without_v1_or_with_a_route_pasted_is_corrected_at_preflight() {
    let t = prepared_mock(&[]);
    let mock = Mock::start(&["--gold", &gold(&t)]);
    let fixed = mock.url();
    for given in [
        mock.root.clone(),
        format!("{}/chat/completions", mock.url()),
    ] {
        let err = t.fails(&[
            "sample",
            "work_dir=run",
            &format!("sampler.base_url={given}"),
        ]);
        assert!(err.contains(&format!("use {fixed}.")), "{given}: {err}");
    }
    assert_eq!(mock.stat("requests"), 0);
}

#[test]
fn a_majority_run_headlines_agreement_and_shows_label_accuracy_beside_it() {
    let t = prepared_mock(&["sampling.max_rollouts=4", "verifier.type=majority"]);
    let mock = Mock::start(&["--gold", &gold(&t)]);
    let out = t.ok(&["run", "work_dir=run", &mock.base_url_arg()]);
    assert!(
        out.contains("agree with their prompt's majority label"),
        "{out}"
    );
    assert!(out.contains("label right"), "{out}");
    assert!(!out.contains("passed  "), "{out}");
    let text = std::fs::read_to_string(t.path("run/summary/statistics.txt")).unwrap();
    assert!(text.contains("majority label equals the gold"), "{text}");
}

#[test]
fn pass_at_k_over_fewer_prompts_under_early_stop_says_why() {
    let t = prepared_mock(&["sampling.max_rollouts=8"]);
    let mock = Mock::start(&["--gold", &gold(&t)]);
    t.ok(&["run", "work_dir=run", &mock.base_url_arg()]);
    let stats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(t.path("run/summary/stats.json")).unwrap())
            .unwrap();
    let ks = stats["pass_at_k"].as_array().unwrap();
    let first = ks[0]["prompts"].as_u64().unwrap();
    let fewer = ks.iter().any(|p| p["prompts"].as_u64().unwrap() < first);
    assert!(fewer, "early stop left every prompt at 8 rollouts: {ks:?}");
    let text = std::fs::read_to_string(t.path("run/summary/statistics.txt")).unwrap();
    assert!(text.contains("pass@k can fall as k grows"), "{text}");
}

#[test]
fn system_and_developer_messages_reach_every_export_shape() {
    let t = TestDir::new();
    let rows = [
        r#"{"id":"dev","messages":[{"role":"developer","content":"Answer with a boxed number only."},{"role":"user","content":"What is 9 squared?"}],"answer":"81"}"#,
        r#"{"id":"multi","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"What is 1 plus 1?"},{"role":"assistant","content":"2"},{"role":"user","content":"And 2 plus 2?"}],"answer":"4"}"#,
    ];
    std::fs::write(t.path("in.jsonl"), rows.join("\n") + "\n").unwrap();
    t.ok(&[
        "prepare",
        "work_dir=run",
        "data.input_path=in.jsonl",
        "sampler.model=mock",
        "sampling.max_rollouts=4",
    ]);
    let mock = Mock::start(&["--gold", &gold(&t), "--accuracy", "1"]);
    t.ok(&["sample", "work_dir=run", &mock.base_url_arg()]);
    let read = |f: &str| -> Vec<serde_json::Value> {
        std::fs::read_to_string(t.path(f))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let by_id = |rows: &[serde_json::Value], id: &str| {
        rows.iter().find(|r| r["id"] == id).cloned().unwrap()
    };
    // TRL: the developer message is the system message.
    t.ok(&["export", "run", "--with-ids", "-o", "trl.jsonl"]);
    let trl = read("trl.jsonl");
    assert_eq!(
        by_id(&trl, "dev")["messages"][0],
        serde_json::json!({"role": "system", "content": "Answer with a boxed number only."})
    );
    // ShareGPT: the system prompt is the first turn, which LLaMA-Factory
    // reads without a column mapping; turns then alternate.
    t.ok(&[
        "export",
        "run",
        "--with-ids",
        "--format",
        "sharegpt",
        "-o",
        "sg.jsonl",
    ]);
    let sg = read("sg.jsonl");
    let froms = |r: &serde_json::Value| -> Vec<String> {
        r["conversations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["from"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(froms(&by_id(&sg, "dev")), ["system", "human", "gpt"]);
    assert_eq!(
        froms(&by_id(&sg, "multi")),
        ["system", "human", "gpt", "human", "gpt"]
    );
    // Alpaca: system, and the earlier exchange as one history pair.
    t.ok(&[
        "export",
        "run",
        "--with-ids",
        "--format",
        "alpaca",
        "-o",
        "al.jsonl",
    ]);
    let al = read("al.jsonl");
    assert_eq!(
        by_id(&al, "dev")["system"],
        "Answer with a boxed number only."
    );
    let multi = by_id(&al, "multi");
    assert_eq!(multi["system"], "You are terse.");
    assert_eq!(multi["instruction"], "And 2 plus 2?");
    assert_eq!(
        multi["history"],
        serde_json::json!([["What is 1 plus 1?", "2"]])
    );
}

/// The YAML front matter of a dataset card.
fn front_matter(card: &str) -> serde_yaml_ng::Value {
    let rest = card.strip_prefix("---\n").expect("front matter first");
    let end = rest.find("\n---\n").expect("front matter closed");
    serde_yaml_ng::from_str(&rest[..end]).expect("front matter parses")
}

#[test]
fn format_and_export_write_a_dataset_card_whose_files_exist() {
    let t = prepared_mock(&[
        "sampling.max_rollouts=4",
        "formatter.1.type=dpo",
        "card.language=[en]",
    ]);
    let mock = Mock::start(&["--gold", &gold(&t)]);
    t.ok(&["run", "work_dir=run", &mock.base_url_arg()]);
    let card = std::fs::read_to_string(t.path("run/train/README.md")).unwrap();
    let front = front_matter(&card);
    // The license is the user's to give: unknown until then.
    assert_eq!(front["license"], "unknown");
    assert_eq!(front["language"][0], "en");
    for key in ["task_categories", "tags", "size_categories", "pretty_name"] {
        assert!(!front[key].is_null(), "{key} missing:\n{card}");
    }
    let configs = front["configs"].as_sequence().unwrap();
    assert_eq!(configs.len(), 2);
    let info = front["dataset_info"].as_sequence().unwrap();
    for (c, i) in configs.iter().zip(info) {
        let file = c["data_files"][0]["path"].as_str().unwrap();
        let path = t.path(&format!("run/train/{file}"));
        assert!(path.is_file(), "{file} named by the card does not exist");
        let rows = lines(&t, &format!("run/train/{file}")) as u64;
        assert_eq!(i["splits"][0]["num_examples"].as_u64(), Some(rows));
        assert_eq!(i["config_name"], c["config_name"]);
    }
    // The body: where the prompts came from, the model, the hygiene steps
    // (none here, said so), the funnel and the command that rebuilds.
    for needle in [
        "gsm8k_sample.jsonl",
        "Model: `mock`",
        "Not performed",
        "| prompts | 26 |",
        "rsr run work_dir=run",
    ] {
        assert!(card.contains(needle), "no `{needle}` in:\n{card}");
    }
    assert!(t.path("run/train/rsr.config.yaml").is_file());
    // An export into a directory of its own gets its card, with the
    // license given now; a second export joins it.
    t.ok(&[
        "export",
        "run",
        "card.license=mit",
        "--format",
        "sharegpt",
        "-o",
        "hf/sft.jsonl",
    ]);
    t.ok(&[
        "export",
        "run",
        "card.license=mit",
        "--formatter",
        "dpo",
        "-o",
        "hf/dpo.parquet",
    ]);
    let card = std::fs::read_to_string(t.path("hf/README.md")).unwrap();
    let front = front_matter(&card);
    assert_eq!(front["license"], "mit");
    let files: Vec<&str> = front["configs"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|c| c["data_files"][0]["path"].as_str().unwrap())
        .collect();
    assert_eq!(files, ["dpo.parquet", "sft.jsonl"]);
    assert!(card.contains("--format sharegpt -o hf/sft.jsonl"), "{card}");
    // A README.md that is not rsr's is never replaced.
    std::fs::write(t.path("README.md"), "# mine\n").unwrap();
    t.ok(&["export", "run", "-o", "sft.jsonl"]);
    assert_eq!(
        std::fs::read_to_string(t.path("README.md")).unwrap(),
        "# mine\n"
    );
}

#[test]
fn smaller_mistakes_get_their_own_answer() {
    let t = prepared_mock(&["sampling.max_rollouts=4"]);
    let mock = Mock::start(&["--gold", &gold(&t)]);
    t.ok(&["sample", "work_dir=run", &mock.base_url_arg()]);
    // A mistyped work dir to resume: named, with the one meant.
    let err = t.fails(&["run", "work_dir=runn"]);
    assert!(
        err.contains("runn is not a work dir (did you mean run?)"),
        "{err}"
    );
    assert!(!t.path("runn").exists());
    // Nothing at all: how to start or resume.
    let err = t.fails(&["run"]);
    assert!(err.contains("nothing to run: give a config file"), "{err}");
    // Re-scoring under the run's own label would pass for the verdicts
    // given while sampling.
    let err = t.fails(&["verify", "run", "verifier.options.fallback=none"]);
    assert!(err.contains("verifier.label=NAME"), "{err}");
    t.ok(&[
        "verify",
        "run",
        "verifier.options.fallback=none",
        "verifier.label=strict",
    ]);
    // Temperature 0 with several rollouts is named before sampling.
    let t0 = prepared_mock(&["sampling.max_rollouts=4", "sampler.temperature=0"]);
    let out = t0
        .cmd(&[
            "sample",
            "work_dir=run",
            &format!("sampler.base_url={}", closed_port()),
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("sampler.temperature is 0"), "{err}");
    // A server program that is not installed: said so, no work dir left.
    let input = format!("data.input_path={}", common::fixture("gsm8k_sample.jsonl"));
    let err = t.fails(&[
        "run",
        "work_dir=launch",
        &input,
        "data.preprocess.transform=gsm8k",
        "sampler.type=vllm",
        "sampler.model=m",
        "sampler.model_path=/models/m",
        "sampler.server_bin=rsr-no-such-server",
    ]);
    assert!(err.contains("is not on PATH"), "{err}");
    assert!(
        !t.path("launch").exists(),
        "a failed launch left its work dir"
    );
}
