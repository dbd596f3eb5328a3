//! `rsr prepare`: raw prompts to `WORK_DIR/data/input.parquet`.

use super::common::{ConfigArgs, open_run};

/// Validate raw prompts and write WORK_DIR/data/input.parquet
///
/// Reads data.input_path (JSONL, JSON array, CSV or Parquet), maps it with the
/// optional SQL transform (data.preprocess.transform, over a table named
/// `raw`), validates every row and writes WORK_DIR/data/input.parquet with
/// columns id, messages, answer, metadata, shard and the hygiene flags
/// (data.decontaminate: prompts sharing an n-gram with a benchmark file;
/// data.dedup: exact or near-duplicate prompts). Nothing is written when a
/// row is invalid; the errors name the file and line or row. An existing
/// input.parquet is reused (rsr hygiene recomputes its flags). No inference.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: ConfigArgs,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let run = open_run(&args.config, &[])?;
    crate::pipeline::prepare(&run).await
}
