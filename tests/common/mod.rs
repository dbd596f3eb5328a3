//! Runs the real `rsr` binary in a temporary directory.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use arrow::array::RecordBatch;

pub mod mock;

/// A temporary working directory for one test.
pub struct TestDir {
    pub dir: tempfile::TempDir,
}

impl TestDir {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// `rsr ARGS` in this directory, with no RSR_* variables inherited.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rsr"));
        cmd.current_dir(self.dir.path()).args(args);
        for (k, _) in std::env::vars() {
            if k.starts_with("RSR_") {
                cmd.env_remove(k);
            }
        }
        cmd
    }

    /// Runs and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd(args).output().expect("run rsr");
        assert_success(&out, args);
        String::from_utf8(out.stdout).expect("utf-8 stdout")
    }

    /// Runs and asserts failure; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.cmd(args).output().expect("run rsr");
        assert!(
            !out.status.success(),
            "rsr {args:?} should fail\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stderr).expect("utf-8 stderr")
    }
}

pub fn assert_success(out: &Output, args: &[&str]) {
    assert!(
        out.status.success(),
        "rsr {args:?} failed\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A test dir whose `run/` work dir holds the GSM8K sample prepared through
/// the shipped transform (26 prompts), plus `extra` overrides.
pub fn prepared_gsm8k(extra: &[&str]) -> TestDir {
    let t = TestDir::new();
    let input = format!("data.input_path={}", fixture("gsm8k_sample.jsonl"));
    let mut args = vec![
        "prepare",
        "work_dir=run",
        &input,
        "data.preprocess.transform=gsm8k",
    ];
    args.extend_from_slice(extra);
    t.ok(&args);
    t
}

/// The GSM8K sample (26 prompts) in 3 shards of 10, model `mock`,
/// prepared into `run/` with `extra`: the sampler tests' run.
pub fn prepared_mock(extra: &[&str]) -> TestDir {
    let mut args = vec!["shard.size=10", "sampler.model=mock"];
    args.extend_from_slice(extra);
    prepared_gsm8k(&args)
}

/// The prepared input of `run/`, the gold answers `rsr-mock --gold` reads.
pub fn gold(t: &TestDir) -> String {
    t.path("run/data/input.parquet").display().to_string()
}

/// The status of each shard of `run/` in `state.json`.
pub fn shard_statuses(t: &TestDir) -> Vec<String> {
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(t.path("run/state.json")).unwrap()).unwrap();
    state["shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap().to_string())
        .collect()
}

/// Absolute path of a file in tests/fixtures.
pub fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
        .display()
        .to_string()
}

/// All rows of a Parquet file as one batch.
pub fn read_parquet(path: &Path) -> RecordBatch {
    let batches = rsr::store::parquet::read_batches(path).expect("read parquet");
    let schema = batches[0].schema();
    arrow::compute::concat_batches(&schema, &batches).expect("concat")
}

/// Column `name` of `batch` as strings (nulls as None).
pub fn strings(batch: &RecordBatch, name: &str) -> Vec<Option<String>> {
    use arrow::array::{Array, AsArray};
    let col = batch.column_by_name(name).expect("column");
    let col = arrow::compute::cast(col, &arrow::datatypes::DataType::Utf8).expect("cast");
    let col = col.as_string::<i32>();
    (0..col.len())
        .map(|i| (!col.is_null(i)).then(|| col.value(i).to_string()))
        .collect()
}

/// Rows of `rsr sql WORK_DIR QUERY --format jsonl` as JSON objects.
pub fn query(t: &TestDir, work_dir: &str, sql: &str) -> Vec<serde_json::Value> {
    t.ok(&["sql", work_dir, sql, "--format", "jsonl"])
        .lines()
        .map(|l| serde_json::from_str(l).expect("jsonl row"))
        .collect()
}

/// Rows of `rsr sql WORK_DIR QUERY --scores LABEL --format jsonl`.
pub fn query_with(t: &TestDir, work_dir: &str, sql: &str, label: &str) -> Vec<serde_json::Value> {
    t.ok(&["sql", work_dir, sql, "--scores", label, "--format", "jsonl"])
        .lines()
        .map(|l| serde_json::from_str(l).expect("jsonl row"))
        .collect()
}

/// Whether process `pid` runs (a zombie does not).
pub fn pid_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| s.split_whitespace().nth(2) != Some("Z"))
}

/// The pids of the servers rsr started and stopped, from the run log's
/// `(pid N)` lines.
pub fn server_pids(t: &TestDir) -> Vec<u32> {
    let log = std::fs::read_to_string(t.path("run/logs/run.log")).unwrap();
    log.lines()
        .filter_map(|l| l.split("(pid ").nth(1))
        .filter_map(|rest| rest.split(')').next()?.parse().ok())
        .collect()
}
