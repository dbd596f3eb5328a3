//! Logging: human-readable lines on stderr, and every line also appended to
//! the work dir's `logs/run.log` once a command knows its work dir.

use std::fs::{File, OpenOptions};
use std::io::{self, IsTerminal, Write};
use std::path::Path;
use std::sync::{Mutex, OnceLock};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

static RUN_LOG: OnceLock<Mutex<Option<File>>> = OnceLock::new();
static BAR: OnceLock<Mutex<Option<indicatif::ProgressBar>>> = OnceLock::new();

fn bar() -> &'static Mutex<Option<indicatif::ProgressBar>> {
    BAR.get_or_init(|| Mutex::new(None))
}

/// Routes stderr log lines around a live progress bar (`None` removes it).
pub fn set_progress_bar(progress: Option<indicatif::ProgressBar>) {
    *bar().lock().unwrap_or_else(|e| e.into_inner()) = progress;
}

fn run_log() -> &'static Mutex<Option<File>> {
    RUN_LOG.get_or_init(|| Mutex::new(None))
}

/// Installs the global subscriber. `RSR_LOG` (an `EnvFilter` directive)
/// overrides the stderr level chosen by `-v` / `-q`.
pub fn init(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "info",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    let stderr_filter = EnvFilter::try_from_env("RSR_LOG")
        .unwrap_or_else(|_| EnvFilter::new(format!("warn,rsr={level}")));
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(|| StderrAroundBar)
        .with_ansi(io::stderr().is_terminal())
        .with_target(false)
        .without_time()
        .with_filter(stderr_filter);
    let file = tracing_subscriber::fmt::layer()
        .with_writer(RunLogWriter)
        .with_ansi(false)
        .with_filter(EnvFilter::new("warn,rsr=debug"));
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(file)
        .try_init();
}

use tracing_subscriber::Layer;

/// Starts appending log lines to `path` (creating it).
pub fn attach_run_log(path: &Path) -> io::Result<()> {
    let file = OpenOptions::new().create(true).append(true).open(path)?;
    *run_log().lock().unwrap_or_else(|e| e.into_inner()) = Some(file);
    Ok(())
}

/// Stderr that hides the progress bar while a line is written.
struct StderrAroundBar;

impl Write for StderrAroundBar {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let progress = bar().lock().unwrap_or_else(|e| e.into_inner()).clone();
        match progress {
            Some(b) => b
                .suspend(|| io::stderr().write_all(buf))
                .map(|()| buf.len()),
            None => io::stderr().write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

/// Writes to `run.log` when attached, nowhere before that.
struct RunLogWriter;

impl<'a> MakeWriter<'a> for RunLogWriter {
    type Writer = RunLogHandle;

    fn make_writer(&'a self) -> Self::Writer {
        RunLogHandle
    }
}

struct RunLogHandle;

impl Write for RunLogHandle {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match run_log().lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            Some(f) => f.write(buf),
            None => Ok(buf.len()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match run_log().lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}
