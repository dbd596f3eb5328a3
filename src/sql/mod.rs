//! The SQL session over a work dir: its tables registered by name, and the
//! writers that print or save a query's result.

pub mod output;
pub mod views;

use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};

use crate::store::{WorkDir, rollout};

pub use output::OutputFormat;

/// Opens a DataFusion session with the work dir's tables registered —
/// `inputs` (`data/input.parquet`), and when present `rollouts`
/// (`rollout/**/*.parquet`), `scores` (`scores/<label>/*.parquet`) and the
/// `results` / `prompts` views with the inline verdicts — and the verifier
/// functions ([`crate::verifier::udf`]).
pub async fn session(wd: &WorkDir) -> datafusion::error::Result<SessionContext> {
    session_with_scores(wd, None).await
}

/// Like [`session`], with `results` and `prompts` built on the verdicts of
/// `scores/<label>/` instead of the inline ones.
pub async fn session_with_scores(
    wd: &WorkDir,
    label: Option<&str>,
) -> datafusion::error::Result<SessionContext> {
    // Rollouts and scores live in subdirectories (shard_NNNN/, <label>/).
    let config = SessionConfig::new().set_bool(
        "datafusion.execution.listing_table_ignore_subdirectory",
        false,
    );
    let ctx = SessionContext::new_with_config(config);
    for f in crate::verifier::udf::udfs() {
        ctx.register_udf(f);
    }
    let input = wd.input_path();
    ctx.register_parquet(
        "inputs",
        input.to_str().unwrap_or_default(),
        ParquetReadOptions::default(),
    )
    .await?;
    let root = wd.root();
    for (name, dir) in [
        ("rollouts", rollout::rollout_dir(root)),
        ("scores", rollout::scores_dir(root)),
    ] {
        if rollout::has_parquet(&dir) {
            let url = format!("{}/", dir.display());
            ctx.register_parquet(name, &url, ParquetReadOptions::default())
                .await?;
        }
    }
    let has_scores = rollout::has_parquet(&rollout::scores_dir(root));
    if label.is_some() && !has_scores {
        return Err(datafusion::error::DataFusionError::Plan(format!(
            "no scores in {}: run rsr verify first",
            rollout::scores_dir(root).display()
        )));
    }
    if rollout::has_parquet(&rollout::rollout_dir(root)) {
        views::register(&ctx, label).await?;
    }
    Ok(ctx)
}

/// `name(col, col, …)` for each registered table, for error messages.
pub async fn describe_tables(ctx: &SessionContext) -> String {
    let mut out = Vec::new();
    let mut names: Vec<String> = ctx
        .catalog_names()
        .into_iter()
        .filter_map(|c| ctx.catalog(&c))
        .flat_map(|c| {
            c.schema_names()
                .into_iter()
                .filter_map(move |s| c.schema(&s))
                .flat_map(|s| s.table_names())
        })
        .collect();
    names.sort();
    for name in names {
        if let Ok(t) = ctx.table(name.as_str()).await {
            let cols: Vec<String> = t
                .schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect();
            out.push(format!("{name}({})", cols.join(", ")));
        }
    }
    out.join(", ")
}
