//! The command line: the `Cli` parser, one module per subcommand, and the
//! single dispatch `match`.

mod analyze;
mod batch;
mod common;
mod compare;
mod export;
mod format;
mod hygiene;
mod prepare;
mod run;
mod sample;
mod sql;
mod status;
mod verify;
mod view;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// rsr: rejection sampling recipes. Turns a prompt set into verified LLM
/// training data, keeping every input, rollout and score in Parquet.
#[derive(Debug, Parser)]
#[command(name = "rsr", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    /// Only print errors on stderr.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// More log detail on stderr (-v debug, -vv trace). RSR_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Run(run::Args),
    Prepare(prepare::Args),
    Hygiene(hygiene::Args),
    Sample(sample::Args),
    Format(format::Args),
    Export(export::Args),
    Analyze(analyze::Args),
    Compare(compare::Args),
    Batch(batch::Args),
    Status(status::Args),
    Sql(sql::Args),
    Verify(verify::Args),
    View(view::Args),
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    crate::logging::init(cli.verbose, cli.quiet);
    raise_open_files();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let work_dirs = cli.command.work_dirs();
    let result = runtime.block_on(async {
        match cli.command {
            Command::Run(args) => run::run(args, cli.quiet).await,
            Command::Prepare(args) => prepare::run(args).await,
            Command::Hygiene(args) => hygiene::run(args).await,
            Command::Sample(args) => sample::run(args, cli.quiet).await,
            Command::Format(args) => format::run(args).await,
            Command::Export(args) => export::run(args).await,
            Command::Analyze(args) => analyze::run(args).await,
            Command::Compare(args) => compare::run(args).await,
            Command::Batch(args) => batch::run(args, cli.quiet).await,
            Command::Status(args) => status::run(args).await,
            Command::Sql(args) => sql::run(args).await,
            Command::Verify(args) => verify::run(args).await,
            Command::View(args) => view::run(args).await,
        }
    });
    // A Parquet read failure names the damaged files of the work dirs read.
    let dirs: Vec<&std::path::Path> = work_dirs.iter().map(PathBuf::as_path).collect();
    result.map_err(|e| common::name_damaged(&dirs, e))
}

/// Raises the soft limit of open files to the hard one: thousands of
/// requests in flight hold as many connections, and the usual soft limit
/// (1,024) is below that.
fn raise_open_files() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write the struct given.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                tracing::debug!("could not raise the open-file limit");
            }
        }
    }
}

impl Command {
    /// The work dirs the command reads, when given on its command line.
    fn work_dirs(&self) -> Vec<PathBuf> {
        match self {
            Command::Format(a) => vec![a.work_dir.clone()],
            Command::Export(a) => vec![a.work_dir.clone()],
            Command::Analyze(a) => vec![a.work_dir.clone()],
            Command::Sql(a) => vec![a.work_dir.clone()],
            Command::Compare(a) => a.work_dirs.clone(),
            Command::Batch(a) => vec![a.work_dir().to_path_buf()],
            Command::Status(a) => vec![a.work_dir.clone()],
            Command::Verify(a) => a.work_dir.iter().cloned().collect(),
            Command::Run(_)
            | Command::Prepare(_)
            | Command::Hygiene(_)
            | Command::Sample(_)
            | Command::View(_) => Vec::new(),
        }
    }
}

/// A run stopped by Ctrl-C or SIGTERM after saving what it had; the binary
/// exits with status 130.
#[derive(Debug, thiserror::Error)]
#[error("interrupted; everything received is saved. Resume with: {resume}")]
pub struct Interrupted {
    /// The command that resumes it (`rsr run work_dir=…`, or the task's
    /// `rsr sample … --task I/N`).
    pub resume: String,
}

/// The circuit breaker stopped a run (servers failing persistently) after
/// saving what arrived; the binary exits with status 3.
#[derive(Debug, thiserror::Error)]
#[error(
    "stopped: the servers are failing: {message}. Everything received is saved; {}, then resume with: {resume}",
    advice(message)
)]
pub struct ServersFailing {
    /// What failed, how often and where.
    pub message: String,
    /// The command that resumes it.
    pub resume: String,
}

/// A run stopped at a budget after the requests in flight finished and
/// everything was saved; the binary exits with status 5.
#[derive(Debug, thiserror::Error)]
#[error(
    "stopped at a budget: {message}. Everything received is saved; to finish, raise {key} (about {suggested} at the rate so far) and resume: {resume}"
)]
pub struct BudgetReached {
    /// Which budget, and what was spent.
    pub message: String,
    /// The budget's key.
    pub key: &'static str,
    /// A value of the key that would let the run finish.
    pub suggested: String,
    /// The command that resumes what stopped, with the raised budget.
    pub resume: String,
}

/// A run finished with prompts left unfinished because their requests kept
/// failing; the binary exits with status 4.
#[derive(Debug, thiserror::Error)]
#[error(
    "{prompts} prompt(s) left unfinished: their requests failed sampling.max_failed_attempts times in this run (most common cause: {cause}). Resume to request them again: {resume}"
)]
pub struct Unfinished {
    /// Prompts left.
    pub prompts: u64,
    /// The most common failure.
    pub cause: String,
    /// The command that resumes it.
    pub resume: String,
}

/// What to do before resuming a run the servers stopped: rate limits are
/// the user's settings to fix, anything else the server.
fn advice(message: &str) -> &'static str {
    if message.contains("HTTP 429") {
        "the server is rate-limiting: set sampler.max_rpm and sampler.max_tpm to its limits \
         (requests and tokens per minute), or lower sampler.concurrent_requests"
    } else {
        "fix the server"
    }
}
