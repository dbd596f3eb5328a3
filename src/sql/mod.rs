//! The SQL session over a work dir: its tables registered by name, and the
//! writers that print or save a query's result.

pub mod output;

use datafusion::prelude::{ParquetReadOptions, SessionContext};

use crate::store::WorkDir;

pub use output::OutputFormat;

/// Opens a DataFusion session with the work dir's tables registered —
/// `inputs` (`data/input.parquet`) — and the verifier functions
/// ([`crate::verifier::udf`]).
pub async fn session(wd: &WorkDir) -> datafusion::error::Result<SessionContext> {
    let ctx = SessionContext::new();
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
