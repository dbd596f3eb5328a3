//! `rsr view`: the viewer's web server over a work dir.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;

use crate::store::WorkDir;
use crate::view::data::Data;

/// Browse a run's prompts and rollouts next to their verdicts, in the browser
///
/// Starts a local web server over WORK_DIR, read-only (it answers GET only
/// and never writes), and prints its address. Pages: the prompts (pass rate,
/// counts, tokens, whether verdict sources disagree; sorting, a pass-rate
/// range and a SQL condition over the prompt list), one prompt with every
/// rollout (thinking folded, the extracted answer marked, every verdict:
/// inline, re-scores, judges with what they said, rewards), the rollouts on
/// which verdict sources disagree, the responses where no answer was found,
/// and the run's statistics. Works on a finished run and on one being
/// sampled. Every asset is in the binary: nothing is loaded from elsewhere.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run directory.
    work_dir: PathBuf,
    /// Address to listen on (another host than 127.0.0.1 shows the run to
    /// the network).
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port (0: any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let wd = WorkDir::open_prepared(&args.work_dir)?;
    let (listener, addr) = crate::view::bind(&args.host, args.port)
        .await
        .with_context(|| format!("cannot listen on {}:{}", args.host, args.port))?;
    // The prompt list is computed before the address is given, so that
    // every page answers at once.
    let data = Arc::new(Data::new(wd));
    tracing::info!("reading the run's rollouts and verdicts for the prompt list");
    data.lists(&data.default_pair()).await?;
    println!("rsr view: http://{addr}/ (Ctrl-C to stop)");
    std::io::stdout().flush()?;
    tokio::select! {
        served = crate::view::serve(listener, data) => served?,
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}
