//! The `rsr` binary: parse the command line, run, map the outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = rsr::cmd::Cli::parse();
    match rsr::cmd::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) if err.is::<rsr::cmd::Interrupted>() => {
            eprintln!("{err}");
            ExitCode::from(130)
        }
        Err(err) if err.is::<rsr::cmd::ServersFailing>() => {
            eprintln!("error: {err}");
            ExitCode::from(3)
        }
        Err(err) if err.is::<rsr::cmd::Unfinished>() => {
            eprintln!("error: {err}");
            ExitCode::from(4)
        }
        Err(err) if err.is::<rsr::cmd::BudgetReached>() => {
            eprintln!("error: {err}");
            ExitCode::from(5)
        }
        Err(err) => {
            eprintln!("error: {}", render(&err));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes joined by `: `, leaving out a cause whose text
/// an outer message already shows (library errors name their I/O cause).
fn render(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

/// `rsr sql ... | head` closes our stdout early: that is not a failure.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            || cause
                .downcast_ref::<arrow::error::ArrowError>()
                .is_some_and(|e| matches!(e, arrow::error::ArrowError::IoError(_, e) if e.kind() == std::io::ErrorKind::BrokenPipe))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let err = anyhow::Error::new(io).context("cannot read x.jsonl: no such file");
        assert_eq!(render(&err), "cannot read x.jsonl: no such file");
        let err = anyhow::anyhow!("disk full").context("cannot write part file");
        assert_eq!(render(&err), "cannot write part file: disk full");
    }
}
