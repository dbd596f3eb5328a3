//! `rsr sql`: ad-hoc SQL over a work dir's tables.

use std::path::PathBuf;

use anyhow::Context;

use crate::sql::{self, OutputFormat};
use crate::store::WorkDir;

/// Query a work dir's saved data with SQL
///
/// Runs a SQL query (DataFusion dialect) over a work dir's tables: `inputs`
/// (the prepared prompts). Prints an aligned table by default; --output
/// writes CSV, JSON, JSON Lines or Parquet chosen by the file extension.
/// Reads saved data only: no inference.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run directory (for example output/20261206_143052).
    work_dir: PathBuf,
    /// The query, e.g. "SELECT count(*) FROM inputs".
    query: String,
    /// Output format (default: from --output's extension, else table).
    #[arg(long, value_enum)]
    format: Option<OutputFormat>,
    /// Write the result to FILE (atomically) instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let wd = WorkDir::open_prepared(&args.work_dir)?;
    let ctx = sql::session(&wd)
        .await
        .with_context(|| format!("cannot open the tables of {}", wd.root().display()))?;
    let format = args
        .format
        .or_else(|| args.output.as_deref().and_then(OutputFormat::from_path))
        .unwrap_or(OutputFormat::Table);
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
