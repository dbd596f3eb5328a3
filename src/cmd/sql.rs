//! `rsr sql`: ad-hoc SQL over a work dir's tables.

use std::path::PathBuf;

use anyhow::Context;

use crate::sql::{self, OutputFormat};
use crate::store::WorkDir;

/// Query a work dir's saved data with SQL
///
/// Runs a SQL query (DataFusion dialect) over a work dir's tables: `inputs`
/// (the prepared prompts), and once sampled `rollouts`, `scores`, and the
/// views `results` (one row per rollout with its verdict) and `prompts`
/// (one row per prompt with n_valid, n_pass, pass_rate, …). Prints an
/// aligned table by default; --output writes CSV, JSON, JSON Lines or
/// Parquet chosen by the file extension. Reads saved data only: no
/// inference.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run directory (for example output/20261206_143052).
    pub(super) work_dir: PathBuf,
    /// The query, e.g. "SELECT count(*) FROM inputs".
    query: String,
    /// Output format (default: from --output's extension, else table).
    #[arg(long, value_enum)]
    format: Option<OutputFormat>,
    /// Write the result to FILE (atomically) instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Build `results` and `prompts` on scores/LABEL/ (from rsr verify)
    /// instead of the verdicts given while sampling.
    #[arg(long, value_name = "LABEL")]
    scores: Option<String>,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let wd = WorkDir::open_prepared(&args.work_dir)?;
    let ctx = sql::session_with_scores(&wd, args.scores.as_deref())
        .await
        .with_context(|| format!("cannot open the tables of {}", wd.root().display()))?;
    let implied = args.output.as_deref().and_then(OutputFormat::from_path);
    if let (Some(given), Some(implied), Some(path)) = (args.format, implied, &args.output)
        && given != implied
    {
        anyhow::bail!(
            "--format {} contradicts the extension of {}: drop --format (the extension decides) or rename the file",
            given.name(),
            path.display()
        );
    }
    let format = args.format.or(implied).unwrap_or(OutputFormat::Table);
    let df = match ctx.sql(&args.query).await {
        Ok(df) => df,
        Err(e) => anyhow::bail!("{e}\n  tables: {}", sql::describe_tables(&ctx).await),
    };
    let stream = df.execute_stream().await?;
    let rows = sql::output::write_stream(stream, format, args.output.as_deref()).await?;
    if let Some(path) = &args.output {
        tracing::info!("wrote {rows} rows to {}", path.display());
    }
    Ok(())
}
