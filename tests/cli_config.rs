//! Config resolution through the binary: file, environment and override
//! precedence, errors, and resume.

mod common;

use common::{TestDir, fixture};

fn saved_config(t: &TestDir) -> String {
    std::fs::read_to_string(t.path("run/config.yaml")).unwrap()
}

#[test]
fn file_env_and_overrides_apply_in_order() {
    let t = TestDir::new();
    std::fs::write(
        t.path("c.yaml"),
        format!(
            "data:\n  input_path: {}\nsampler:\n  model: file-model\n  temperature: 0.3\nsampling:\n  max_rollouts: 16\n",
            fixture("chat_sample.jsonl")
        ),
    )
    .unwrap();
    let out = t
        .cmd(&[
            "prepare",
            "c.yaml",
            "work_dir=run",
            "sampler.model=arg-model",
        ])
        .env("RSR_SAMPLER__MODEL", "env-model")
        .env("RSR_SAMPLER__TEMPERATURE", "0.9")
        .output()
        .unwrap();
    common::assert_success(&out, &[]);
    let cfg = saved_config(&t);
    assert!(cfg.contains("model: arg-model"), "{cfg}");
    assert!(cfg.contains("temperature: 0.9"), "{cfg}");
    assert!(cfg.contains("max_rollouts: 16"), "{cfg}");
    assert!(cfg.contains("max_tokens: 4096"), "{cfg}");
}

#[test]
fn the_config_flag_and_list_index_overrides() {
    let t = TestDir::new();
    std::fs::write(t.path("c.yml"), "formatter:\n  - type: sft\n").unwrap();
    let input = format!("data.input_path={}", fixture("chat_sample.jsonl"));
    t.ok(&[
        "prepare",
        "--config",
        "c.yml",
        "work_dir=run",
        &input,
        "formatter.0.type=dpo",
        "formatter.1.type=top_k",
        "formatter.1.k=4",
    ]);
    let cfg = saved_config(&t);
    assert!(cfg.contains("- type: dpo"), "{cfg}");
    assert!(cfg.contains("- type: top_k"), "{cfg}");
    assert!(cfg.contains("k: 4"), "{cfg}");
}

#[test]
fn unknown_keys_and_required_values_are_errors() {
    let t = TestDir::new();
    let err = t.fails(&["prepare", "work_dir=run", "sampling.max_rollout=4"]);
    assert!(err.contains("unknown key `sampling.max_rollout`"), "{err}");
    assert!(
        err.contains("did you mean `sampling.max_rollouts`?"),
        "{err}"
    );
    let err = t.fails(&["prepare", "work_dir=run", "stray-argument"]);
    assert!(
        err.contains("expected a .yaml config file or key.path=value"),
        "{err}"
    );
    let err = t.fails(&["prepare", "work_dir=run"]);
    assert!(
        err.contains("`data.input_path` is required but not set (it is `???`)"),
        "{err}"
    );
}

#[test]
fn api_keys_stay_out_of_saved_configs() {
    let t = TestDir::new();
    let input = format!("data.input_path={}", fixture("chat_sample.jsonl"));
    let out = t
        .cmd(&[
            "prepare",
            "work_dir=run",
            &input,
            "sampler.api_key_env=MY_KEY",
        ])
        .env("MY_KEY", "sk-very-secret")
        .output()
        .unwrap();
    common::assert_success(&out, &[]);
    let cfg = saved_config(&t);
    assert!(cfg.contains("api_key_env: MY_KEY"), "{cfg}");
    assert!(!cfg.contains("sk-very-secret"));
    let err = t.fails(&[
        "prepare",
        "work_dir=other",
        &input,
        "sampler.extra_params.api_key=sk-1",
    ]);
    assert!(err.contains("looks like a secret"), "{err}");
    assert!(!err.contains("sk-1"), "{err}");
}

#[test]
fn resume_refuses_a_changed_model() {
    let t = TestDir::new();
    let input = format!("data.input_path={}", fixture("gsm8k_sample.jsonl"));
    t.ok(&[
        "prepare",
        "work_dir=run",
        &input,
        "data.preprocess.transform=gsm8k",
        "sampler.model=qwen-a",
        "sampling.max_rollouts=4",
    ]);
    // Nothing sampled yet: the model may still change.
    t.ok(&["prepare", "work_dir=run", "sampler.model=qwen-b"]);
    assert!(saved_config(&t).contains("model: qwen-b"));
    let mock = common::mock::Mock::start(&["--model", "qwen-b"]);
    t.ok(&["sample", "work_dir=run", &mock.base_url_arg()]);
    // Rollouts exist: it is fixed.
    let err = t.fails(&["prepare", "work_dir=run", "sampler.model=qwen-a"]);
    assert!(
        err.contains("cannot change `sampler.model` when resuming run"),
        "{err}"
    );
    assert!(
        err.contains("`qwen-b`") && err.contains("`qwen-a`"),
        "{err}"
    );
    // As is the data, even before sampling (the prepared input is reused).
    let u = TestDir::new();
    let chat = format!("data.input_path={}", fixture("chat_sample.jsonl"));
    u.ok(&["prepare", "work_dir=run", &chat, "sampler.model=m"]);
    let err = u.fails(&["prepare", "work_dir=run", "data.limit=2"]);
    assert!(err.contains("cannot change `data.limit`"), "{err}");
    // Operational settings may change; the saved ones stay otherwise.
    t.ok(&["prepare", "work_dir=run", "sampler.concurrent_requests=4"]);
    let cfg = saved_config(&t);
    assert!(cfg.contains("concurrent_requests: 4"), "{cfg}");
    assert!(cfg.contains("model: qwen-b"), "{cfg}");
}

#[test]
fn paths_in_a_config_file_are_relative_to_the_file() {
    let t = TestDir::new();
    std::fs::create_dir_all(t.path("proj/data")).unwrap();
    std::fs::create_dir_all(t.path("proj/sql")).unwrap();
    std::fs::copy(fixture("gsm8k_sample.jsonl"), t.path("proj/data/q.jsonl")).unwrap();
    std::fs::write(
        t.path("proj/sql/first.sql"),
        "SELECT id, messages, answer FROM prompts WHERE n_valid >= 0 AND false",
    )
    .unwrap();
    std::fs::write(
        t.path("proj/c.yaml"),
        "data:\n  input_path: data/q.jsonl\n  preprocess:\n    transform: gsm8k\n\
         sampler:\n  model: m\nformatter:\n  - type: sft\n  - type: sql/first.sql\n",
    )
    .unwrap();
    // Run from the parent of the project: the paths follow the file, the
    // work dir follows the current directory.
    t.ok(&["prepare", "proj/c.yaml", "work_dir=run"]);
    let cfg = saved_config(&t);
    assert!(cfg.contains("input_path: proj/data/q.jsonl"), "{cfg}");
    assert!(cfg.contains("transform: gsm8k"), "{cfg}");
    assert!(cfg.contains("type: proj/sql/first.sql"), "{cfg}");
    assert!(t.path("run/data/input.parquet").is_file());

    // A command-line path stays relative to the current directory, and a
    // missing input names the key and where it was set.
    let err = t.fails(&[
        "prepare",
        "proj/c.yaml",
        "work_dir=run2",
        "data.input_path=data/q.jsonl",
    ]);
    assert!(
        err.contains(
            "data.input_path: data/q.jsonl does not exist (set in argument `data.input_path=…`)"
        ),
        "{err}"
    );
    std::fs::write(t.path("proj/d.yaml"), "data:\n  input_path: nope.jsonl\n").unwrap();
    let err = t.fails(&["prepare", "proj/d.yaml", "work_dir=run3"]);
    assert!(
        err.contains("data.input_path: proj/nope.jsonl does not exist (set in proj/d.yaml;")
            && err.contains("relative to that file's directory"),
        "{err}"
    );
    assert!(!t.path("run3").exists());
}
