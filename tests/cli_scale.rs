//! Scale-out through the binary against `rsr-mock`: `rsr sample --task
//! I/N` (several processes sampling one work dir, each its own shards) and
//! servers that come and go (`sampler.endpoints_file`, prefix affinity).

mod common;

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::mock::Mock;
use common::{TestDir, fixture, query};
use serde_json::Value;

/// The GSM8K sample (26 prompts) in 9 shards of 3, seeded: every request
/// is answered the same in any split of the run.
fn args<'a>(input: &'a str, base: &'a str, work_dir: &'a str) -> Vec<&'a str> {
    vec![
        "sample",
        work_dir,
        input,
        "data.preprocess.transform=gsm8k",
        "shard.size=3",
        "sampler.model=mock",
        base,
        "sampler.seed=7",
        "sampler.concurrent_requests=4",
        "sampling.max_rollouts=4",
        "sampling.step_size=2",
        "sampling.flush_rows=2",
        "formatter.0.type=sft",
    ]
}

fn input() -> String {
    format!("data.input_path={}", fixture("gsm8k_sample.jsonl"))
}

/// `rsr-mock ARGS` answering from the sample's gold answers (prepared
/// into `gold/` for it).
fn gold_mock(t: &TestDir, extra: &[&str]) -> Mock {
    t.ok(&[
        "prepare",
        "work_dir=gold",
        &input(),
        "data.preprocess.transform=gsm8k",
    ]);
    let gold = t.path("gold/data/input.parquet").display().to_string();
    let mut all = vec!["--gold", gold.as_str()];
    all.extend_from_slice(extra);
    Mock::start(&all)
}

fn rows(t: &TestDir, dir: &str) -> Vec<Value> {
    query(
        t,
        dir,
        "SELECT id, rollout_idx, response, score FROM rollouts ORDER BY id, rollout_idx",
    )
}

fn spawn(t: &TestDir, args: &[&str], task: &str) -> Child {
    let mut all = args.to_vec();
    all.extend(["--task", task]);
    t.cmd(&all)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn wait_ok(child: Child, what: &str) -> String {
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{what} failed: {err}");
    err
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn status(t: &TestDir, dir: &str) -> Value {
    serde_json::from_str(&t.ok(&["status", dir, "--json"])).unwrap()
}

#[test]
fn four_tasks_sample_the_union_of_a_single_run_prepared_once() {
    let t = TestDir::new();
    let mock = gold_mock(&t, &["--latency-ms", "15", "--accuracy", "0.5"]);
    let (input, base) = (input(), mock.base_url_arg());
    let single = args(&input, &base, "work_dir=single");
    t.ok(&single);
    let requests_single = mock.stat("requests");

    let split = args(&input, &base, "work_dir=run");
    // All four start together on a work dir that does not exist yet.
    let children: Vec<Child> = (0..4)
        .map(|i| spawn(&t, &split, &format!("{i}/4")))
        .collect();
    for (i, c) in children.into_iter().enumerate() {
        wait_ok(c, &format!("task {i}/4"));
    }
    assert_eq!(
        rows(&t, "run"),
        rows(&t, "single"),
        "the same rows, split or not"
    );
    assert_eq!(mock.stat("requests") - requests_single, requests_single);

    // Prepared once: one task's log says so, the others waited or found it.
    let prepared = (0..4)
        .filter(|i| {
            std::fs::read_to_string(t.path(&format!("run/logs/task-000{i}-of-0004.log")))
                .unwrap()
                .contains("prepared 26 prompts")
        })
        .count();
    assert_eq!(prepared, 1);

    // Counters are the union; each task's line is its own.
    let s = status(&t, "run");
    assert_eq!(s["requests"].as_u64(), Some(requests_single));
    let tasks = s["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 4);
    let shards: Vec<u64> = tasks
        .iter()
        .map(|x| x["shards"].as_u64().unwrap())
        .collect();
    assert_eq!(shards, [3, 2, 2, 2], "9 shards, s % 4");
    let sum = |k: &str| tasks.iter().map(|x| x[k].as_u64().unwrap()).sum::<u64>();
    assert_eq!(sum("requests"), requests_single);
    assert_eq!(sum("prompts"), 26);
    assert_eq!(sum("rollouts") as usize, rows(&t, "run").len());
    assert!(tasks.iter().all(|x| x["state"] == "finished"), "{s:#}");
    assert!(
        s["shards"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["status"] == "done")
    );
    let table = t.ok(&["status", "run"]);
    assert!(table.contains("9 done, 0 sampling, 0 pending"), "{table}");

    // Every task's rows reach the training files.
    t.ok(&["format", "run"]);
    t.ok(&["format", "single"]);
    let count = |dir: &str| {
        std::fs::read_to_string(t.path(&format!("{dir}/train/sft.jsonl")))
            .unwrap()
            .lines()
            .count()
    };
    assert!(count("single") > 0);
    assert_eq!(count("run"), count("single"));
    // A rerun of a finished task asks nothing.
    let before = mock.stat("requests");
    let mut again = split.clone();
    again.extend(["--task", "2/4"]);
    t.ok(&again);
    assert_eq!(mock.stat("requests"), before);
}

#[test]
fn a_killed_task_is_rerun_and_finishes_exactly_its_shards() {
    let t = TestDir::new();
    let mock = gold_mock(&t, &["--latency-ms", "150", "--accuracy", "0.5"]);
    let (input, base) = (input(), mock.base_url_arg());
    let single = args(&input, &base, "work_dir=single");
    t.ok(&single);
    let split = args(&input, &base, "work_dir=run");
    let mut victim = spawn(&t, &split, "1/2");
    let other = spawn(&t, &split, "0/2");
    wait_for("task 1/2 to save rows", || {
        std::fs::read_dir(t.path("run/rollout/shard_0001"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| {
                e.path()
                    .extension()
                    .is_some_and(|x| x == "journal" || x == "parquet")
            })
    });
    victim.kill().unwrap(); // SIGKILL
    victim.wait().unwrap();
    wait_ok(other, "task 0/2");
    let s = status(&t, "run");
    let line = &s["tasks"].as_array().unwrap()[1];
    assert_eq!(line["task"], "1/2");
    assert_eq!(line["state"], "stopped", "{s:#}");
    // What it saved, journaled rows included, before any rerun recovers them.
    assert!(line["rollouts"].as_u64() > Some(0), "{s:#}");
    assert_eq!(s["tasks"][0]["state"], "finished");

    // The scheduler reruns it: its journal is recovered, the rest sampled.
    let mut rerun = split.clone();
    rerun.extend(["--task", "1/2"]);
    t.ok(&rerun);
    let got = rows(&t, "run");
    assert_eq!(got, rows(&t, "single"), "no rollout lost or sampled twice");
    assert_eq!(status(&t, "run")["tasks"][1]["state"], "finished");
}

#[test]
fn tasks_keep_other_writers_and_other_splits_out() {
    let t = TestDir::new();
    let mock = Mock::start(&["--latency-ms", "500"]);
    let (input, base) = (input(), mock.base_url_arg());
    let split = args(&input, &base, "work_dir=run");
    t.ok(&[
        "prepare",
        "work_dir=run",
        &input,
        "data.preprocess.transform=gsm8k",
        "shard.size=3",
    ]);
    let running = spawn(&t, &split, "0/2");
    wait_for("task 0/2 to save rollouts of shard 0", || {
        let s = status(&t, "run");
        s["shards"][0]["sampled_by"].is_string() && s["shards"][0]["rollouts"].as_u64() > Some(0)
    });
    // Another split would sample shard 0 too.
    let mut other = split.clone();
    other.extend(["--task", "0/4"]);
    let err = t.fails(&other);
    assert!(
        err.contains("shard 0 is being sampled by task 0/2") && err.contains("same N"),
        "{err}"
    );
    // A whole-dir writer waits for the tasks to end.
    for cmd in [split.clone(), vec!["format", "run"]] {
        let err = t.fails(&cmd);
        assert!(
            err.contains("in use by another rsr process (sampling tasks: rsr status run"),
            "{err}"
        );
    }
    // Ctrl-C: the task's own resume command.
    let interrupted = std::process::Command::new("kill")
        .args(["-INT", &running.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let out = running.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(
        err.contains("Resume with: rsr sample work_dir=run --task 0/2"),
        "{err}"
    );
    // The rerun task and the other half of the split run side by side.
    let rerun = spawn(&t, &split, "0/2");
    let mut half = split.clone();
    half.extend(["--task", "1/2"]);
    t.ok(&half);
    wait_ok(rerun, "task 0/2 again");
    let s = status(&t, "run");
    assert!(
        s["shards"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["status"] == "done"),
        "{s:#}"
    );
    // Without tasks running, a whole-dir command runs again.
    t.ok(&["format", "run"]);
}

#[test]
fn auto_reads_the_scheduler_and_says_what_is_missing() {
    let t = TestDir::new();
    let mock = Mock::start(&[]);
    let (input, base) = (input(), mock.base_url_arg());
    let mut split = args(&input, &base, "work_dir=run");
    split.extend(["--task", "auto"]);
    // A Slurm array 1-3: task id 3 is task 2 of 3.
    let with_env = |vars: &[(&str, &str)]| {
        let mut cmd = t.cmd(&split);
        cmd.envs(vars.iter().copied());
        let out = cmd.output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, err) = with_env(&[
        ("SLURM_ARRAY_TASK_ID", "3"),
        ("SLURM_ARRAY_TASK_MIN", "1"),
        ("SLURM_ARRAY_TASK_COUNT", "3"),
    ]);
    assert!(ok, "{err}");
    let s = status(&t, "run");
    assert_eq!(s["tasks"][0]["task"], "2/3");
    let done: Vec<u64> = s["shards"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["status"] == "done")
        .map(|x| x["shard"].as_u64().unwrap())
        .collect();
    assert_eq!(done, [2, 5, 8]);

    // A Kubernetes Indexed Job whose manifest forgot the count.
    let (ok, err) = with_env(&[("JOB_COMPLETION_INDEX", "1")]);
    assert!(!ok);
    assert!(
        err.contains("JOB_COMPLETIONS") && err.contains(".spec.completions"),
        "{err}"
    );
    let (ok, err) = with_env(&[("JOB_COMPLETION_INDEX", "1"), ("JOB_COMPLETIONS", "3")]);
    assert!(ok, "{err}");
    assert_eq!(status(&t, "run")["tasks"][0]["task"], "1/3");

    // Nothing to read.
    let err = t.fails(&split);
    assert!(err.contains("SLURM_ARRAY_TASK_ID"), "{err}");
    let mut bad = args(&input, &base, "work_dir=run");
    bad.extend(["--task", "3/3"]);
    let err = t.fails(&bad);
    assert!(err.contains("must be below 3"), "{err}");
}

#[test]
fn a_task_without_shards_or_in_batch_mode_says_so() {
    let t = TestDir::new();
    let mock = Mock::start(&[]);
    let (input, base) = (input(), mock.base_url_arg());
    let mut lonely = args(&input, &base, "work_dir=run");
    lonely.extend(["--task", "11/12"]);
    let out = t.cmd(&lonely).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("task 11/12 owns no shard: the work dir has 9"),
        "{err}"
    );
    assert_eq!(mock.stat("requests"), 0);

    let mut batch = args(&input, &base, "work_dir=run");
    batch.extend(["sampler.mode=batch", "--task", "0/2"]);
    let err = t.fails(&batch);
    assert!(err.contains("one process drives it"), "{err}");
}

/// Rows' `endpoint` per prompt.
fn endpoints_by_prompt(t: &TestDir, dir: &str) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut m: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for r in query(
        t,
        dir,
        "SELECT id, endpoint FROM rollouts ORDER BY id, rollout_idx",
    ) {
        m.entry(r["id"].as_str().unwrap().to_string())
            .or_default()
            .push(r["endpoint"].as_str().unwrap().to_string());
    }
    m
}

#[test]
fn servers_in_the_endpoints_file_are_used_and_dropped_while_sampling() {
    let t = TestDir::new();
    let a = gold_mock(&t, &["--latency-ms", "60"]);
    let b = Mock::start(&["--latency-ms", "60"]);
    // A port nobody listens on: a server still starting.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://127.0.0.1:{}/v1", l.local_addr().unwrap().port())
    };
    let file = t.path("servers.txt");
    std::fs::write(&file, format!("# the pool\n{}\n{dead}\n", a.url())).unwrap();
    let input = input();
    let endpoints = format!("sampler.endpoints_file={}", file.display());
    let mut run = args(&input, &endpoints, "work_dir=run");
    run.push("sampler.max_retries=8");
    let child = t
        .cmd(&run)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("requests to the first server", || a.stat("requests") >= 6);
    // The cluster replaced the first server with another.
    std::fs::write(&file, format!("{}\n", b.url())).unwrap();
    let err = wait_ok(child, "sampling");
    assert!(
        err.contains("does not answer") && err.contains("once it does"),
        "{err}"
    );
    assert!(
        err.contains("1 server(s) added, 2 dropped, 1 in use"),
        "{err}"
    );
    let by = endpoints_by_prompt(&t, "run");
    let all: Vec<&String> = by.values().flatten().collect();
    assert!(all.iter().any(|e| **e == a.url()) && all.iter().any(|e| **e == b.url()));
    assert!(!all.iter().any(|e| **e == dead));
    let rows = rows(&t, "run");
    assert!(rows.len() >= 26 * 2, "{}", rows.len());
    // The list is read from the file at every start, not saved.
    let saved = std::fs::read_to_string(t.path("run/config.yaml")).unwrap();
    assert!(
        saved.contains("endpoints_file:") && saved.contains("base_url: null"),
        "{saved}"
    );

    let mut both = run.clone();
    both.push("sampler.base_url=http://127.0.0.1:1/v1");
    let err = t.fails(&both);
    assert!(
        err.contains("sampler.base_url and sampler.endpoints_file are both set"),
        "{err}"
    );
    std::fs::write(&file, "127.0.0.1:8000\n").unwrap();
    let mut again = args(&input, &endpoints, "work_dir=other");
    again.push("sampler.max_retries=0");
    let err = t.fails(&again);
    assert!(
        err.contains("servers.txt line 1: `127.0.0.1:8000` is not a base URL"),
        "{err}"
    );
}

#[test]
fn prefix_affinity_keeps_each_prompt_on_one_server() {
    let t = TestDir::new();
    let mocks: Vec<Mock> = (0..3)
        .map(|_| Mock::start(&["--latency-ms", "20"]))
        .collect();
    let urls: Vec<String> = mocks.iter().map(Mock::url).collect();
    let base = format!("sampler.base_url=[{}]", urls.join(","));
    let input = input();
    let share_on_one = |dir: &str, routing: &str| {
        let mut run = args(&input, &base, dir);
        run.extend([routing, "sampling.early_stop=false", "sampler.use_n=false"]);
        t.ok(&run);
        let by = endpoints_by_prompt(&t, dir.trim_start_matches("work_dir="));
        let on_one = by.values().filter(|e| e.iter().all(|x| x == &e[0])).count();
        on_one as f64 / by.len() as f64
    };
    let affine = share_on_one("work_dir=affine", "sampler.routing=prefix_affinity");
    let spread = share_on_one("work_dir=spread", "sampler.routing=least_loaded");
    assert!(affine >= 0.9, "{affine}");
    assert!(spread < 0.5, "{spread}");
    // Every server had its share of prompts.
    let by = endpoints_by_prompt(&t, "affine");
    for u in &urls {
        assert!(by.values().any(|e| &e[0] == u), "{u} got no prompt");
    }
}

/// `program` run in the test's directory as a job would run it: the test
/// build's `rsr` and `rsr-mock` first on `PATH`, no `RSR_*` variables,
/// stderr kept.
fn job(t: &TestDir, program: &str) -> std::process::Command {
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_rsr"))
        .parent()
        .unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = std::process::Command::new(program);
    cmd.current_dir(t.dir.path())
        .env("PATH", path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, _) in std::env::vars() {
        if k.starts_with("RSR_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

fn repo(rel: &str) -> String {
    format!("{}/{rel}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_slurm_array_script_runs_as_an_emulated_array() {
    let t = TestDir::new();
    // Three array tasks (--array=1-3), each launching its mock beside it
    // as the bundled example does.
    let children: Vec<Child> = (1..=3)
        .map(|id| {
            job(&t, "bash")
                .args([&repo("docs/jobs/slurm-array.sbatch"), "sampler.seed=5"])
                .env("CONFIG", repo("examples/gsm8k.yaml"))
                .env("WORK_DIR", t.path("slurm"))
                .env("SLURM_ARRAY_TASK_ID", id.to_string())
                .env("SLURM_ARRAY_TASK_MIN", "1")
                .env("SLURM_ARRAY_TASK_COUNT", "3")
                .spawn()
                .unwrap()
        })
        .collect();
    for (i, c) in children.into_iter().enumerate() {
        wait_ok(c, &format!("array task {}", i + 1));
    }
    t.ok(&[
        "sample",
        &repo("examples/gsm8k.yaml"),
        "work_dir=single",
        "sampler.seed=5",
    ]);
    assert_eq!(rows(&t, "slurm"), rows(&t, "single"));
    let s = status(&t, "slurm");
    let tasks: Vec<&str> = s["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["task"].as_str().unwrap())
        .collect();
    assert_eq!(tasks, ["0/3", "1/3", "2/3"]);
    // Each task launched its own server, logging beside its own log.
    for i in 0..3 {
        let log = t.path(&format!("slurm/logs/task-000{i}-of-0003/server-0.log"));
        assert!(log.is_file(), "{}", log.display());
    }
}

#[test]
fn the_kubernetes_indexed_job_runs_as_emulated_pods() {
    let t = TestDir::new();
    let text = std::fs::read_to_string(repo("docs/jobs/k8s-indexed-job.yaml")).unwrap();
    let manifest = serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| <serde_yaml_ng::Value as serde::Deserialize>::deserialize(d).unwrap())
        .find(|d| d["kind"] == "Job")
        .expect("a Job in the manifest");
    let spec = &manifest["spec"];
    assert_eq!(spec["completionMode"], "Indexed");
    let pods = spec["completions"].as_u64().unwrap();
    let container = &spec["template"]["spec"]["containers"][0];
    let completions = container["env"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "JOB_COMPLETIONS")
        .expect("JOB_COMPLETIONS in the pod's env");
    assert_eq!(
        completions["value"].as_str(),
        Some(pods.to_string().as_str())
    );

    // The pod's command, with the mounted paths pointed here.
    let mock = gold_mock(&t, &[]);
    std::fs::write(t.path("servers.txt"), format!("{}\n", mock.url())).unwrap();
    let command: Vec<String> = container["command"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|c| {
            c.as_str()
                .unwrap()
                .replace("/config/distill.yaml", &repo("examples/gsm8k.yaml"))
                .replace("/runs/distill", &t.path("k8s").display().to_string())
                .replace(
                    "/servers/servers.txt",
                    &t.path("servers.txt").display().to_string(),
                )
        })
        .collect();
    assert_eq!(command[0], "rsr");
    let children: Vec<Child> = (0..pods)
        .map(|i| {
            job(&t, &command[0])
                .args(&command[1..])
                .env("JOB_COMPLETION_INDEX", i.to_string())
                .env("JOB_COMPLETIONS", pods.to_string())
                .spawn()
                .unwrap()
        })
        .collect();
    for (i, c) in children.into_iter().enumerate() {
        wait_ok(c, &format!("pod {i}"));
    }
    let s = status(&t, "k8s");
    assert_eq!(s["tasks"].as_array().unwrap().len() as u64, pods);
    assert!(
        s["shards"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["status"] == "done"),
        "{s:#}"
    );
    let n = query(
        &t,
        "k8s",
        "SELECT count(*) AS n FROM prompts WHERE n_valid > 0",
    );
    assert_eq!(n[0]["n"], 50);
}
