use super::*;

fn sources(file: Option<&Path>, env: &[(&str, &str)], overrides: &[&str]) -> Sources {
    Sources {
        file: file.map(Path::to_path_buf),
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        overrides: overrides.iter().map(|s| s.to_string()).collect(),
    }
}

fn resolve_ok(s: &Sources) -> Resolved {
    resolve(s, &[]).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn defaults_parse_and_mark_required_keys() {
    let r = resolve_ok(&sources(None, &[], &[]));
    assert_eq!(r.config.sampling.max_rollouts.get(), 8);
    assert_eq!(r.missing, vec!["data.input_path", "sampler.model"]);
    assert!(r.config.work_dir.unwrap().starts_with("output"));
    let err = resolve_ok(&sources(None, &[], &[])).require("sampler.model");
    assert!(
        err.unwrap_err()
            .to_string()
            .contains("`sampler.model` is required")
    );
}

#[test]
fn precedence_is_default_file_env_override() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.yaml");
    std::fs::write(
        &file,
        "sampler: {model: from-file, temperature: 0.2, top_p: 0.9}\nsampling: {max_rollouts: 16}\n",
    )
    .unwrap();
    // file only
    let r = resolve_ok(&sources(Some(&file), &[], &[]));
    assert_eq!(r.config.sampler.model.as_deref(), Some("from-file"));
    assert_eq!(r.config.sampler.temperature, 0.2);
    assert_eq!(r.config.sampling.max_rollouts.get(), 16);
    // env beats file
    let env = [
        ("RSR_SAMPLER__MODEL", "from-env"),
        ("RSR_SAMPLER__TOP_P", "0.5"),
    ];
    let r = resolve_ok(&sources(Some(&file), &env, &[]));
    assert_eq!(r.config.sampler.model.as_deref(), Some("from-env"));
    assert_eq!(r.config.sampler.top_p, 0.5);
    assert_eq!(r.config.sampler.temperature, 0.2);
    // override beats env
    let r = resolve_ok(&sources(Some(&file), &env, &["sampler.model=from-arg"]));
    assert_eq!(r.config.sampler.model.as_deref(), Some("from-arg"));
    assert_eq!(r.config.sampler.top_p, 0.5);
    // untouched keys keep the default
    assert_eq!(r.config.sampler.max_tokens.get(), 4096);
}

#[test]
fn list_index_and_open_map_overrides() {
    let r = resolve_ok(&sources(
        None,
        &[],
        &[
            "formatter.0.type=dpo",
            "formatter.1.type=top_k",
            "formatter.1.k=4",
            "sampler.extra_params.reasoning_effort=high",
            "sampler.extra_params.chat_template_kwargs={enable_thinking: false}",
            "sampler.base_url=[http://a:1/v1, http://b:2/v1]",
        ],
    ));
    let f = &r.config.formatter;
    assert_eq!(f.len(), 2);
    assert_eq!(f[0].kind, "dpo");
    assert_eq!(f[0].pass_threshold, None);
    assert_eq!(f[1].kind, "top_k");
    assert_eq!(f[1].k.map(|k| k.get()), Some(4));
    let extra = &r.config.sampler.extra_params;
    assert_eq!(extra["reasoning_effort"], "high");
    assert_eq!(extra["chat_template_kwargs"]["enable_thinking"], false);
    assert_eq!(r.config.sampler.base_url.as_ref().unwrap().urls().len(), 2);
}

#[test]
fn unknown_keys_suggest_the_nearest() {
    let err = resolve(&sources(None, &[], &["sampling.max_rollout=3"]), &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown key `sampling.max_rollout`"), "{err}");
    assert!(err.contains("argument `sampling.max_rollout=…`"), "{err}");
    assert!(
        err.contains("did you mean `sampling.max_rollouts`"),
        "{err}"
    );

    let err = resolve(&sources(None, &[("RSR_SAMPLR__MODEL", "x")], &[]), &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown key `samplr`"), "{err}");
    assert!(err.contains("RSR_SAMPLR__MODEL"), "{err}");
    assert!(err.contains("did you mean `sampler`"), "{err}");

    let err = resolve(&sources(None, &[], &["max_tokens=10"]), &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("did you mean `sampler.max_tokens`"), "{err}");

    let err = resolve(&sources(None, &[], &["formatter.0.pass_treshold=0.5"]), &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("formatter.0.pass_treshold"), "{err}");
    assert!(err.contains("formatter.0.pass_threshold"), "{err}");
}

#[test]
fn unknown_key_in_file_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.yaml");
    std::fs::write(&file, "data:\n  input_pth: x.jsonl\n").unwrap();
    let err = resolve(&sources(Some(&file), &[], &[]), &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown key `data.input_pth`"), "{err}");
    assert!(err.contains("bad.yaml"), "{err}");
    assert!(err.contains("data.input_path"), "{err}");
}

#[test]
fn wrong_types_and_ranges_name_the_key() {
    let err = resolve(&sources(None, &[], &["sampling.max_rollouts=lots"]), &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("invalid `sampling.max_rollouts`"), "{err}");
    let err = resolve(&sources(None, &[], &["sampling.max_rollouts=0"]), &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("sampling.max_rollouts"), "{err}");
    let err = resolve(&sources(None, &[], &["sampler.top_p=1.5"]), &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("sampler.top_p"), "{err}");
    let err = resolve(&sources(None, &[], &["sampler.type=tgi"]), &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("sampler.type"), "{err}");
}

#[test]
fn secrets_are_refused() {
    let err = resolve(
        &sources(None, &[], &["sampler.extra_params.api_key=sk-123"]),
        &[],
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("looks like a secret"), "{err}");
    assert!(!err.contains("sk-123"), "{err}");
}

#[test]
fn bad_override_syntax() {
    let err = resolve(&sources(None, &[], &["sampler.model"]), &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("expected key.path=value"), "{err}");
}

fn save(r: &Resolved) {
    let dir = r.work_dir();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("config.yaml"), r.to_yaml()).unwrap();
}

#[test]
fn resume_refuses_a_changed_model_and_allows_operational_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let wd = tmp.path().join("run");
    let wd_arg = format!("work_dir={}", wd.display());
    let first = resolve_ok(&sources(
        None,
        &[],
        &[&wd_arg, "sampler.model=m1", "data.input_path=x.jsonl"],
    ));
    assert!(!first.resumed);
    save(&first);
    assert!(!first.to_yaml().contains("OPENAI_API_KEY=")); // names the variable only

    // Same values, operational change: allowed, saved values kept.
    let again = resolve_ok(&sources(
        None,
        &[],
        &[
            &wd_arg,
            "sampler.concurrent_requests=8",
            "sampler.timeout=30",
        ],
    ));
    assert!(again.resumed);
    assert_eq!(again.config.sampler.model.as_deref(), Some("m1"));
    assert_eq!(again.config.sampler.concurrent_requests.get(), 8);
    assert_eq!(again.config.data.input_path, first.config.data.input_path);

    // Before anything is sampled the model may change; once rollouts
    // exist, changing it is refused, naming both values.
    assert!(resolve(&sources(None, &[], &[&wd_arg, "sampler.model=m2"]), &[]).is_ok());
    let part = wd.join("rollout/shard_0000/part-000000.parquet");
    std::fs::create_dir_all(part.parent().unwrap()).unwrap();
    std::fs::write(&part, b"").unwrap();
    let err = resolve(&sources(None, &[], &[&wd_arg, "sampler.model=m2"]), &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot change `sampler.model`"), "{err}");
    assert!(err.contains("`m1`") && err.contains("`m2`"), "{err}");

    // Nested frozen keys are named precisely.
    let err = resolve(&sources(None, &[], &[&wd_arg, "data.limit=5"]), &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("`data.limit`"), "{err}");

    // A command may allow a frozen key (as `verify` does for the verifier).
    let r = resolve(
        &sources(None, &[], &[&wd_arg, "verifier.type=mcq-rlvr"]),
        &["verifier"],
    )
    .unwrap();
    assert_eq!(r.config.verifier.kind, "mcq-rlvr");
}

#[test]
fn resume_may_set_a_key_that_was_left_required() {
    let tmp = tempfile::tempdir().unwrap();
    let wd = tmp.path().join("run");
    let wd_arg = format!("work_dir={}", wd.display());
    let first = resolve_ok(&sources(None, &[], &[&wd_arg, "data.input_path=x.jsonl"]));
    assert_eq!(first.missing, vec!["sampler.model"]);
    save(&first);
    assert!(first.to_yaml().contains("model: ???"));
    let r = resolve_ok(&sources(None, &[], &[&wd_arg, "sampler.model=m"]));
    assert!(r.missing.is_empty());
    assert_eq!(r.config.sampler.model.as_deref(), Some("m"));
}

#[test]
fn default_yaml_lists_every_key_of_the_typed_config() {
    // Serializing the typed defaults yields exactly the keys of default.yaml,
    // so the file stays a complete reference.
    let r = resolve_ok(&sources(None, &[], &[]));
    let typed = serde_yaml_ng::to_value(&r.config).unwrap();
    let file: Value = serde_yaml_ng::from_str(DEFAULT_YAML).unwrap();
    let mut a = tree::key_paths(&typed);
    let mut b = tree::key_paths(&file);
    a.sort();
    b.sort();
    assert_eq!(a, b);
}
