//! `rsr export`: any formatter's rows in any trainer shape, to any file.

use std::path::PathBuf;

use anyhow::{Context, bail};

use crate::config::{ExportFormat, ReasoningMode};
use crate::format::{self, Formatter};

use super::format::open_saved;

/// Write one formatter's rows in a trainer's shape (no inference)
///
/// Runs the formatter named NAME (its `name`, or its type) of WORK_DIR's
/// config, with any formatter.* / export.* overrides, and writes its rows to
/// --output in --format (default export.format), atomically.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run directory.
    work_dir: PathBuf,
    /// formatter.* and export.* overrides.
    #[arg(value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// The formatter to export (default: the first).
    #[arg(long, value_name = "NAME")]
    formatter: Option<String>,
    /// Row shape (default: export.format).
    #[arg(long, value_enum)]
    format: Option<ExportFormat>,
    /// Thinking handling (default: export.reasoning).
    #[arg(long, value_enum)]
    reasoning: Option<ReasoningMode>,
    /// Output file.
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
    /// Use the verdicts of scores/LABEL/ instead of the inline ones.
    #[arg(long, value_name = "LABEL")]
    scores: Option<String>,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    for o in &args.overrides {
        if !(o.starts_with("formatter") || o.starts_with("export.")) {
            bail!("`{o}`: rsr export takes only formatter.* and export.* overrides");
        }
    }
    let (wd, config) = open_saved(&args.work_dir, &args.overrides)?;
    let base = std::env::current_dir()?;
    let formatters = config
        .formatter
        .iter()
        .map(|f| Formatter::load(f, &base))
        .collect::<Result<Vec<_>, _>>()?;
    let formatter = match &args.formatter {
        None => formatters.first().context("the config has no formatter")?,
        Some(name) => formatters
            .iter()
            .find(|f| &f.name == name)
            .with_context(|| {
                format!(
                    "no formatter named `{name}`; the config has: {}",
                    formatters
                        .iter()
                        .map(|f| f.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?,
    };
    let report = format::write_formatter(
        &wd,
        formatter,
        args.scores.as_deref(),
        &args.output,
        args.format.unwrap_or(config.export.format),
        args.reasoning.unwrap_or(config.export.reasoning),
    )
    .await?;
    tracing::info!(
        "{}: {} rows from {} prompts -> {}",
        report.name,
        report.rows,
        report.prompts_out,
        report.path.display()
    );
    Ok(())
}
