//! The SQL session over a work dir: its tables registered by name, and the
//! writers that print or save a query's result.

pub mod group;
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
    let validity = saved_validity(wd)?;
    open(wd, label, None, validity).await
}

/// A session over some shards only (a group from [`shard_groups`]):
/// `inputs` of those shards, their rollouts and their scores. Formatters
/// and per-prompt statistics run group by group, so memory is bounded by a
/// group, not the run. `validity` is the run's ([`saved_validity`], read
/// once by the caller).
pub async fn shard_session(
    wd: &WorkDir,
    label: Option<&str>,
    shards: &[u32],
    validity: rollout::Validity,
) -> datafusion::error::Result<SessionContext> {
    open(wd, label, Some(shards), validity).await
}

/// Prompts per group of [`shard_groups`] at most: enough that a session's
/// set-up and planning cost little per row.
pub const GROUP_PROMPTS: u64 = 8_192;

/// Bytes of rollout part files per group of [`shard_groups`] at most (a
/// shard is never split): a formatter holds a group's columns in memory,
/// about three times this with long responses, for one group per core.
pub const GROUP_BYTES: u64 = 16 << 20;

/// The shards of `state` that have rollouts, in order, in groups of at
/// most [`GROUP_PROMPTS`] prompts and [`GROUP_BYTES`] of part files (or one
/// shard).
pub fn shard_groups(wd: &WorkDir, state: &crate::store::RunState) -> Vec<Vec<u32>> {
    let mut groups: Vec<Vec<u32>> = Vec::new();
    let (mut prompts, mut bytes) = (0, 0);
    for s in &state.shards {
        let size = rollout::parquet_bytes(&rollout::rollout_shard_dir(wd.root(), s.shard));
        if size == 0 {
            continue;
        }
        if groups.is_empty() || prompts + s.prompts > GROUP_PROMPTS || bytes + size > GROUP_BYTES {
            groups.push(Vec::new());
            (prompts, bytes) = (0, 0);
        }
        groups.last_mut().expect("pushed above").push(s.shard);
        prompts += s.prompts;
        bytes += size;
    }
    groups
}

/// The work dir's definition of a valid rollout, as the store keeps it
/// ([`crate::store::saved_validity`]): no config is parsed.
pub fn saved_validity(wd: &WorkDir) -> datafusion::error::Result<rollout::Validity> {
    crate::store::saved_validity(wd.root())
        .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))
}

async fn open(
    wd: &WorkDir,
    label: Option<&str>,
    shard: Option<&[u32]>,
    validity: rollout::Validity,
) -> datafusion::error::Result<SessionContext> {
    let ctx = new_session(shard.is_none())?;
    register_inputs(&ctx, wd, shard).await?;
    let root = wd.root();
    let scores_dir = rollout::scores_dir(root);
    let found = match shard {
        None => register_whole(&ctx, root, label).await?,
        Some(group) => register_group(&ctx, root, label, group).await?,
    };
    let (has_rollouts, has_scores, hashed) = (found.rollouts, found.scores, found.hashed);
    if let Some(l) = label
        && !has_scores
        && (shard.is_none() || has_rollouts)
    {
        let labels = rollout::score_labels(root);
        let known = if labels.is_empty() {
            "the work dir has no scores labels yet".to_string()
        } else {
            format!("its labels: {}", labels.join(", "))
        };
        return Err(datafusion::error::DataFusionError::Plan(format!(
            "no scores in {}: run rsr verify first, or pick a label the work dir has ({known})",
            scores_dir.join(l).display()
        )));
    }
    if has_rollouts {
        views::register(
            &ctx,
            label,
            validity,
            rollout::pass_score(root, label),
            hashed,
        )
        .await?;
    }
    Ok(ctx)
}

/// A session with rsr's functions; per-file statistics only for a whole
/// work dir (a shard group's rollouts are read into memory, exact then).
fn new_session(statistics: bool) -> datafusion::error::Result<SessionContext> {
    // Rollouts and scores live in subdirectories (shard_NNNN/, <label>/).
    let config = SessionConfig::new()
        .set_bool(
            "datafusion.execution.listing_table_ignore_subdirectory",
            false,
        )
        // A shard group's rollouts are read into memory once (exact
        // statistics then); per-file statistics would only cost a footer walk.
        .set_bool("datafusion.execution.collect_statistics", statistics);
    let mut ctx = SessionContext::new_with_config(config);
    for f in crate::verifier::udf::udfs() {
        ctx.register_udf(f);
    }
    datafusion_functions_json::register_all(&mut ctx)?;
    Ok(ctx)
}

/// `inputs`: the prepared prompts (of the group's shards only), with
/// default hygiene columns for work dirs prepared before them.
async fn register_inputs(
    ctx: &SessionContext,
    wd: &WorkDir,
    shard: Option<&[u32]>,
) -> datafusion::error::Result<()> {
    let input_path = wd.input_path();
    let input = input_path.to_str().unwrap_or_default();
    // Work dirs prepared before the hygiene columns get them as defaults.
    let flagged = crate::store::parquet::schema_of(&input_path)
        .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
    let defaults = if crate::store::inputs::has_hygiene_columns(&flagged) {
        ""
    } else {
        ", false AS contaminated, CAST(NULL AS VARCHAR) AS contaminated_by, \
         CAST(NULL AS VARCHAR) AS contamination_ngram, CAST(NULL AS VARCHAR) AS duplicate_of, \
         CAST(NULL AS DOUBLE) AS duplicate_similarity"
    };
    match (shard, defaults) {
        (None, "") => {
            ctx.register_parquet("inputs", input, ParquetReadOptions::default())
                .await?
        }
        _ => {
            ctx.register_parquet("all_inputs", input, ParquetReadOptions::default())
                .await?;
            let filter = shard.map_or(String::new(), |group| {
                let list: Vec<String> = group.iter().map(u32::to_string).collect();
                format!(" WHERE shard IN ({})", list.join(", "))
            });
            ctx.sql(&format!(
                "CREATE VIEW inputs AS SELECT *{defaults} FROM all_inputs{filter}"
            ))
            .await?;
        }
    }
    Ok(())
}

/// What a session found to register.
struct Found {
    rollouts: bool,
    /// The scores asked for (the label's, or any).
    scores: bool,
    /// Every rollout file has `response_hash`.
    hashed: bool,
}

/// `rollouts` and `scores` over every file of the work dir.
async fn register_whole(
    ctx: &SessionContext,
    root: &std::path::Path,
    label: Option<&str>,
) -> datafusion::error::Result<Found> {
    let scores_dir = rollout::scores_dir(root);
    let rollout_dir = rollout::rollout_dir(root);
    let has_rollouts = rollout::has_parquet(&rollout_dir);
    if has_rollouts {
        let url = format!("{}/", rollout_dir.display());
        ctx.register_parquet("rollouts", &url, ParquetReadOptions::default())
            .await?;
    }
    let has_scores = rollout::has_parquet(&scores_dir);
    if has_scores {
        let url = format!("{}/", scores_dir.display());
        ctx.register_parquet("scores", &url, ParquetReadOptions::default())
            .await?;
    }
    // Every label is queryable in `scores`; the one asked for must
    // be among them.
    let has_label = label.map_or(has_scores, |l| rollout::has_parquet(&scores_dir.join(l)));
    Ok(Found {
        rollouts: has_rollouts,
        scores: has_label,
        hashed: rollout::all_hashed(&rollout_dir),
    })
}

/// `rollouts` (a [`group::GroupRollouts`]) and `scores` over the files of
/// one shard group.
async fn register_group(
    ctx: &SessionContext,
    root: &std::path::Path,
    label: Option<&str>,
    group: &[u32],
) -> datafusion::error::Result<Found> {
    let dirs: Vec<std::path::PathBuf> = group
        .iter()
        .map(|&n| rollout::rollout_shard_dir(root, n))
        .filter(|d| rollout::has_parquet(d))
        .collect();
    let has_rollouts = !dirs.is_empty();
    if has_rollouts {
        let urls: Vec<String> = dirs.iter().map(|d| format!("{}/", d.display())).collect();
        let files = listing_table(ctx, &urls).await?;
        ctx.register_table(
            group::TABLE,
            std::sync::Arc::new(group::GroupRollouts::new(files)),
        )?;
    }
    let files: Vec<String> = match label {
        Some(l) => group
            .iter()
            .map(|&n| rollout::score_path(root, l, n))
            .filter(|p| p.is_file())
            .map(|p| p.display().to_string())
            .collect(),
        None => Vec::new(),
    };
    let has_scores = !files.is_empty();
    if has_scores {
        let table = listing_table(ctx, &files).await?;
        ctx.register_table("scores", table)?;
    }
    Ok(Found {
        rollouts: has_rollouts,
        scores: has_scores,
        hashed: dirs.iter().all(|d| rollout::all_hashed(d)),
    })
}

/// One table over the Parquet files below `paths` (directories ending in
/// `/`, or files).
async fn listing_table(
    ctx: &SessionContext,
    paths: &[String],
) -> datafusion::error::Result<std::sync::Arc<dyn datafusion::catalog::TableProvider>> {
    use datafusion::datasource::file_format::parquet::ParquetFormat;
    use datafusion::datasource::listing::{
        ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
    };
    let urls = paths
        .iter()
        .map(ListingTableUrl::parse)
        .collect::<datafusion::error::Result<Vec<_>>>()?;
    let options = ListingOptions::new(std::sync::Arc::new(ParquetFormat::default()))
        .with_file_extension(".parquet");
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .infer_schema(&ctx.state())
        .await?;
    Ok(std::sync::Arc::new(ListingTable::try_new(config)?))
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

/// Columns of a query's batch by name, cast to the type the caller reads.
/// The queries that use them name every column they read, so a missing one
/// is a bug (it panics with the name).
pub mod columns {
    use arrow::array::{
        ArrayRef, AsArray, BooleanArray, Float64Array, RecordBatch, StringArray, UInt32Array,
    };
    use arrow::compute::cast;
    use arrow::datatypes::{DataType, Float64Type, UInt32Type};
    use arrow::error::ArrowError;

    /// Column `name` as it is.
    pub fn column<'a>(batch: &'a RecordBatch, name: &str) -> &'a ArrayRef {
        batch
            .column_by_name(name)
            .unwrap_or_else(|| panic!("the query selects `{name}`"))
    }

    /// Column `name` as text.
    pub fn utf8(batch: &RecordBatch, name: &str) -> Result<StringArray, ArrowError> {
        Ok(cast(column(batch, name), &DataType::Utf8)?
            .as_string::<i32>()
            .clone())
    }

    /// Column `name` as `u32`.
    pub fn u32s(batch: &RecordBatch, name: &str) -> Result<UInt32Array, ArrowError> {
        Ok(cast(column(batch, name), &DataType::UInt32)?
            .as_primitive::<UInt32Type>()
            .clone())
    }

    /// Column `name` as `f64`.
    pub fn f64s(batch: &RecordBatch, name: &str) -> Result<Float64Array, ArrowError> {
        Ok(cast(column(batch, name), &DataType::Float64)?
            .as_primitive::<Float64Type>()
            .clone())
    }

    /// Column `name` as booleans.
    pub fn bools(batch: &RecordBatch, name: &str) -> BooleanArray {
        column(batch, name).as_boolean().clone()
    }

    /// Value `row` of column `col` as `f64` (null: `None`).
    pub fn float_at(b: &RecordBatch, col: usize, row: usize) -> Option<f64> {
        let c = cast(b.column(col), &DataType::Float64).ok()?;
        let c = c.as_primitive::<Float64Type>();
        arrow::array::Array::is_valid(c, row).then(|| c.value(row))
    }

    /// The first row of `sql`'s answer, every column as `f64` (empty when
    /// it has no row).
    pub async fn one_row(
        ctx: &datafusion::prelude::SessionContext,
        sql: &str,
    ) -> datafusion::error::Result<Vec<Option<f64>>> {
        let batches = ctx.sql(sql).await?.collect().await?;
        let Some(b) = batches.iter().find(|b| b.num_rows() > 0) else {
            return Ok(Vec::new());
        };
        Ok((0..b.num_columns()).map(|i| float_at(b, i, 0)).collect())
    }
}
