//! Managed model servers: rsr launches vLLM / SGLang (or any command given
//! as `sampler.launch`), one per GPU group, waits until each answers
//! `GET /health`, and stops every one of them (SIGTERM, then SIGKILL, to the
//! server's whole process group) when the run ends, fails or is interrupted.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::config::{SamplerConfig, SamplerType};

/// Default launch command of vLLM.
pub const VLLM_LAUNCH: &str = "vllm serve {model_path} --served-model-name {model} --host {host} --port {port} --tensor-parallel-size {num_gpus}";
/// Default launch command of SGLang.
pub const SGLANG_LAUNCH: &str = "python -m sglang.launch_server --model-path {model_path} --served-model-name {model} --host {host} --port {port} --tp {num_gpus}";
/// Default launch command of llama.cpp's server.
pub const LLAMA_CPP_LAUNCH: &str = "{server_bin} -m {model_path} --alias {model} --host {host} --port {port} --parallel {parallel} --ctx-size {ctx_size} --jinja";
/// Context reserved per llama.cpp slot for the prompt, besides `max_tokens`.
pub const PROMPT_ROOM: u64 = 2048;
/// Most llama.cpp slots rsr asks for.
pub const MAX_PARALLEL: u64 = 64;
/// How long a server gets to exit after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(15);

/// What to do when `program` could not be started.
fn spawn_hint(program: &str, source: &std::io::Error) -> String {
    if source.kind() != std::io::ErrorKind::NotFound {
        return String::new();
    }
    let install = match program {
        "vllm" => " (pip install vllm)",
        "python3" | "python" => {
            " (SGLang runs as `python3 -m sglang.launch_server`: pip install sglang)"
        }
        "llama-server" => " (it comes with llama.cpp)",
        _ => "",
    };
    format!(
        ". `{program}` is not on PATH: install it{install}, set sampler.server_bin to its path, \
         or give sampler.base_url of a server that is already running"
    )
}

/// Errors launching servers.
#[derive(Debug, Error)]
pub enum ServerError {
    /// The launch config is incomplete.
    #[error("{0}")]
    Config(String),
    /// The command could not be started.
    #[error(
        "cannot start server {index} (`{program}`): {source}{}",
        spawn_hint(program, source)
    )]
    Spawn {
        /// Server number.
        index: usize,
        /// The program.
        program: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The log file or a port could not be set up.
    #[error("cannot set up server {index}: {source}")]
    Io {
        /// Server number.
        index: usize,
        /// The cause.
        source: std::io::Error,
    },
    /// The server exited or never became healthy.
    #[error("server {index} {reason}; last lines of {log}:\n{tail}")]
    NotReady {
        /// Server number.
        index: usize,
        /// What happened.
        reason: String,
        /// Its log file.
        log: String,
        /// The end of its log.
        tail: String,
    },
}

/// One server to launch.
#[derive(Debug, Clone, PartialEq)]
pub struct LaunchSpec {
    /// Program and arguments, placeholders filled in.
    pub argv: Vec<String>,
    /// `CUDA_VISIBLE_DEVICES` for it, when GPUs are known.
    pub gpus: Option<String>,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// `logs/server-N.log`.
    pub log: PathBuf,
}

/// Values of a launch template's placeholders shared by every server.
#[derive(Debug, Clone)]
pub struct LaunchContext {
    /// `{work_dir}`.
    pub work_dir: PathBuf,
    /// `{input}`: `data/input.parquet`.
    pub input: PathBuf,
    /// Where `logs/server-N.log` go.
    pub logs_dir: PathBuf,
    /// GPU ids visible to rsr (empty: unknown or none).
    pub gpus: Vec<String>,
}

/// Whether this config makes rsr launch its servers.
pub fn launches(s: &SamplerConfig) -> bool {
    s.base_url.is_none()
        && (s.launch.is_some()
            || matches!(
                s.kind,
                SamplerType::Vllm | SamplerType::Sglang | SamplerType::LlamaCpp
            ))
}

/// GPU ids from `CUDA_VISIBLE_DEVICES`, else from `nvidia-smi -L`, else none.
pub fn visible_gpus() -> Vec<String> {
    if let Ok(v) = std::env::var("CUDA_VISIBLE_DEVICES") {
        return v
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
    }
    let Ok(out) = Command::new("nvidia-smi").arg("-L").output() else {
        return Vec::new();
    };
    let n = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("GPU "))
        .count();
    (0..n).map(|i| i.to_string()).collect()
}

/// The endpoints of `s`: its `base_url`, or servers launched for it with
/// `ctx` (`per_request` responses a request, see [`plan`]), which stop when
/// the returned [`ManagedServers`] is dropped. The one way the sampler and
/// the judge reach their servers.
pub async fn endpoints(
    s: &SamplerConfig,
    ctx: &LaunchContext,
    per_request: u64,
) -> Result<(Vec<String>, Option<ManagedServers>), ServerError> {
    if let Some(b) = &s.base_url {
        return Ok((b.urls().to_vec(), None));
    }
    let specs = plan(s, ctx, per_request)?;
    let launched =
        ManagedServers::launch(specs, Duration::from_secs_f64(s.startup_timeout)).await?;
    Ok((launched.urls().to_vec(), Some(launched)))
}

/// The servers to launch: one per `num_gpus` GPUs (or `num_servers`), each
/// with a free port and its own GPU group. `per_request` is the number of
/// responses one request asks for (`{parallel}` slots serve them all).
pub fn plan(
    s: &SamplerConfig,
    ctx: &LaunchContext,
    per_request: u64,
) -> Result<Vec<LaunchSpec>, ServerError> {
    let template = template(s)?;
    let per = s.num_gpus.get();
    let count = match s.num_servers {
        Some(n) => n.get(),
        None => (ctx.gpus.len() / per).max(1),
    };
    let mut specs = Vec::with_capacity(count);
    for index in 0..count {
        let gpus = (ctx.gpus.len() >= (index + 1) * per)
            .then(|| ctx.gpus[index * per..(index + 1) * per].join(","));
        let port = free_port().map_err(|source| ServerError::Io { index, source })?;
        let parallel = (s.concurrent_requests.get() as u64 * per_request.max(1)).min(MAX_PARALLEL);
        let ctx_size = parallel * (u64::from(s.max_tokens.get()) + PROMPT_ROOM);
        let server_bin = s
            .server_bin
            .as_deref()
            .map_or_else(|| "llama-server".to_string(), |p| p.display().to_string());
        let fill = |token: &str| {
            token
                .replace("{server_bin}", &server_bin)
                .replace("{parallel}", &parallel.to_string())
                .replace("{ctx_size}", &ctx_size.to_string())
                .replace(
                    "{model_path}",
                    &s.model_path
                        .as_deref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default(),
                )
                .replace("{model}", s.model.as_deref().unwrap_or("default"))
                .replace("{host}", "127.0.0.1")
                .replace("{port}", &port.to_string())
                .replace("{num_gpus}", &per.to_string())
                .replace("{work_dir}", &ctx.work_dir.display().to_string())
                .replace("{input}", &ctx.input.display().to_string())
        };
        let argv: Vec<String> = split_command(template).iter().map(|t| fill(t)).collect();
        specs.push(LaunchSpec {
            argv,
            gpus,
            port,
            log: ctx.logs_dir.join(format!("server-{index}.log")),
        });
    }
    Ok(specs)
}

/// The launch command template of `s` (`sampler.launch`, or the default of
/// its type), checked for what it needs; the error names the missing key.
pub fn template(s: &SamplerConfig) -> Result<&str, ServerError> {
    let template = match (&s.launch, s.kind) {
        (Some(t), _) => t.as_str(),
        (None, SamplerType::Vllm) => VLLM_LAUNCH,
        (None, SamplerType::Sglang) => SGLANG_LAUNCH,
        (None, SamplerType::LlamaCpp) => LLAMA_CPP_LAUNCH,
        (None, _) => {
            return Err(ServerError::Config(
                "sampler.base_url is not set: give the server's URL (http://host:port/v1), \
                 or let rsr launch it with sampler.type=vllm|sglang and sampler.model_path, \
                 or a sampler.launch command"
                    .into(),
            ));
        }
    };
    if template.contains("{model_path}") && s.model_path.is_none() {
        return Err(ServerError::Config(
            "sampler.model_path is not set: rsr needs the weights to launch the server \
             (or give sampler.base_url of a running one)"
                .into(),
        ));
    }
    Ok(template)
}

/// The name a launched server serves its model under when `sampler.model`
/// is not given: the GGUF file's stem for llama-cpp, the weights' path as
/// given for vLLM and SGLang (their own default). `None` without weights.
pub fn default_model_name(s: &SamplerConfig) -> Option<String> {
    let path = s.model_path.as_deref()?;
    match s.kind {
        SamplerType::LlamaCpp => path.file_stem().map(|n| n.to_string_lossy().into_owned()),
        _ => Some(path.display().to_string()),
    }
}

/// Splits a command line on whitespace, keeping '…' and "…" together.
pub fn split_command(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote = None;
    let mut any = false;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                any = true;
            }
            (None, c) if c.is_whitespace() => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            (None, c) => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A program name without `/` is looked for beside the rsr binary first (so
/// `rsr-mock` works from a build directory), then on `PATH`.
fn resolve_program(program: &str) -> PathBuf {
    if !program.contains('/')
        && let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        let beside = dir.join(program);
        if beside.is_file() {
            return beside;
        }
    }
    PathBuf::from(program)
}

/// A launched server.
#[derive(Debug)]
struct Server {
    child: Child,
    log: PathBuf,
}

/// The launched servers; dropping this stops them all.
#[derive(Debug, Default)]
pub struct ManagedServers {
    servers: Vec<Server>,
    urls: Vec<String>,
}

impl ManagedServers {
    /// Starts every server of `specs` and waits until all are healthy.
    pub async fn launch(
        specs: Vec<LaunchSpec>,
        startup_timeout: Duration,
    ) -> Result<Self, ServerError> {
        let mut managed = ManagedServers::default();
        for (index, spec) in specs.iter().enumerate() {
            let log =
                File::create(&spec.log).map_err(|source| ServerError::Io { index, source })?;
            let err_log = log
                .try_clone()
                .map_err(|source| ServerError::Io { index, source })?;
            let program = resolve_program(&spec.argv[0]);
            let mut cmd = Command::new(&program);
            cmd.args(&spec.argv[1..])
                .stdin(Stdio::null())
                .stdout(log)
                .stderr(err_log)
                .process_group(0);
            if let Some(gpus) = &spec.gpus {
                cmd.env("CUDA_VISIBLE_DEVICES", gpus);
            }
            // SAFETY: only async-signal-safe prctl between fork and exec.
            unsafe {
                cmd.pre_exec(|| {
                    // The server gets SIGTERM if rsr dies without cleaning up.
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                    Ok(())
                });
            }
            let child = cmd.spawn().map_err(|source| ServerError::Spawn {
                index,
                program: program.display().to_string(),
                source,
            })?;
            tracing::info!(
                "server {index} (pid {}) starting on port {}{}: {} (log: {})",
                child.id(),
                spec.port,
                spec.gpus
                    .as_deref()
                    .map(|g| format!(", GPUs {g}"))
                    .unwrap_or_default(),
                spec.argv.join(" "),
                spec.log.display()
            );
            managed.servers.push(Server {
                child,
                log: spec.log.clone(),
            });
            managed
                .urls
                .push(format!("http://127.0.0.1:{}/v1", spec.port));
        }
        let deadline = Instant::now() + startup_timeout;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| ServerError::Config(e.to_string()))?;
        for (index, spec) in specs.iter().enumerate() {
            let health = format!("http://127.0.0.1:{}/health", spec.port);
            loop {
                if let Ok(Some(status)) = managed.servers[index].child.try_wait() {
                    return Err(
                        managed.not_ready(index, format!("exited during startup ({status})"))
                    );
                }
                if let Ok(r) = client.get(&health).send().await
                    && r.status().is_success()
                {
                    tracing::info!("server {index} ready at {}", managed.urls[index]);
                    break;
                }
                if Instant::now() >= deadline {
                    return Err(managed.not_ready(
                        index,
                        format!(
                            "was not healthy after {} s (sampler.startup_timeout)",
                            startup_timeout.as_secs_f64()
                        ),
                    ));
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
        Ok(managed)
    }

    /// Base URLs of the launched servers.
    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    fn not_ready(&self, index: usize, reason: String) -> ServerError {
        let log = &self.servers[index].log;
        ServerError::NotReady {
            index,
            reason,
            log: log.display().to_string(),
            tail: tail(log, 20),
        }
    }
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

impl Drop for ManagedServers {
    fn drop(&mut self) {
        for s in &self.servers {
            // SAFETY: kill(2) on the process group the child leads.
            unsafe {
                libc::kill(-(s.child.id() as libc::pid_t), libc::SIGTERM);
            }
        }
        let deadline = Instant::now() + STOP_GRACE;
        for (index, s) in self.servers.iter_mut().enumerate() {
            loop {
                match s.child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() >= deadline => {
                        // SAFETY: as above.
                        unsafe {
                            libc::kill(-(s.child.id() as libc::pid_t), libc::SIGKILL);
                        }
                        let _ = s.child.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(50)),
                }
            }
            tracing::info!("server {index} (pid {}) stopped", s.child.id());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_split_with_quotes() {
        assert_eq!(
            split_command(r#"vllm serve  {model_path} --x 'a b' --y "" z"#),
            vec![
                "vllm",
                "serve",
                "{model_path}",
                "--x",
                "a b",
                "--y",
                "",
                "z"
            ]
        );
    }

    #[test]
    fn one_server_per_gpu_group() {
        let sources = crate::config::Sources {
            file: None,
            env: vec![],
            overrides: vec![
                "sampler.type=vllm".into(),
                "sampler.model=m".into(),
                "sampler.model_path=/w/model".into(),
                "sampler.num_gpus=2".into(),
            ],
        };
        let s = crate::config::resolve(&sources, &[])
            .unwrap()
            .config
            .sampler;
        assert!(launches(&s));
        let ctx = LaunchContext {
            work_dir: "wd".into(),
            input: "wd/data/input.parquet".into(),
            logs_dir: "wd/logs".into(),
            gpus: ["0", "1", "2", "3", "4"].map(String::from).to_vec(),
        };
        let specs = plan(&s, &ctx, 4).unwrap();
        assert_eq!(specs.len(), 2);
        assert_eq!(specs[0].gpus.as_deref(), Some("0,1"));
        assert_eq!(specs[1].gpus.as_deref(), Some("2,3"));
        assert_eq!(specs[1].log, Path::new("wd/logs/server-1.log"));
        let argv = &specs[0].argv;
        assert_eq!(&argv[..3], ["vllm", "serve", "/w/model"]);
        assert!(
            argv.windows(2)
                .any(|w| w == ["--tensor-parallel-size", "2"])
        );
        assert!(
            argv.windows(2)
                .any(|w| w[0] == "--port" && w[1] == specs[0].port.to_string())
        );

        let mut no_weights = s.clone();
        no_weights.model_path = None;
        let e = plan(&no_weights, &ctx, 1).unwrap_err().to_string();
        assert!(e.contains("sampler.model_path"), "{e}");
    }

    #[test]
    fn llama_cpp_slots_and_context_follow_the_concurrency() {
        let sources = crate::config::Sources {
            file: None,
            env: vec![],
            overrides: vec![
                "sampler.type=llama-cpp".into(),
                "sampler.model=smol".into(),
                "sampler.model_path=/m/smol.gguf".into(),
                "sampler.server_bin=/opt/llama/llama-server".into(),
                "sampler.concurrent_requests=2".into(),
                "sampler.max_tokens=512".into(),
            ],
        };
        let s = crate::config::resolve(&sources, &[])
            .unwrap()
            .config
            .sampler;
        let ctx = LaunchContext {
            work_dir: "wd".into(),
            input: "wd/data/input.parquet".into(),
            logs_dir: "wd/logs".into(),
            gpus: vec![],
        };
        let specs = plan(&s, &ctx, 4).unwrap();
        assert_eq!(specs.len(), 1);
        assert_eq!(specs[0].gpus, None);
        let argv = &specs[0].argv;
        assert_eq!(
            &argv[..3],
            ["/opt/llama/llama-server", "-m", "/m/smol.gguf"]
        );
        assert!(argv.windows(2).any(|w| w == ["--parallel", "8"]));
        assert!(argv.windows(2).any(|w| w == ["--ctx-size", "20480"]));
        assert!(argv.windows(2).any(|w| w == ["--alias", "smol"]));
    }
}
