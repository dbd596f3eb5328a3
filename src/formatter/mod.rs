//! Formatters: SQL queries that pick training rows from scored rollouts.
//!
//! Each built-in is a file in `sql/formatters/` (compiled in) with its
//! early-stop [`Goal`] defined here next to it; a user formatter is any
//! `.sql` file. A formatter runs once per group of shards (so memory is bounded by a
//! group) over the usual views plus three it gets for itself:
//! `selected_prompts` (`prompts` that pass its `min_pass_rate`,
//! `max_pass_rate` and `where` filters), `candidates` (valid results of
//! those prompts with a score, one row per distinct response, with the
//! prompt's `messages`, `pass_rate` and `n_valid`) and `best` (the
//! candidates at or above its pass threshold, ranked best first per
//! prompt: the one ranking `sft`, `top_k` and `dpo` share). Parameters
//! `$pass_threshold`, `$fail_threshold`, `$k` and `$min_margin` are bound
//! from the config.

pub mod card;
pub mod check;
pub mod export;
pub mod manifest;

use std::path::{Path, PathBuf};

use datafusion::prelude::{DataFrame, SessionContext};
use datafusion::scalar::ScalarValue;
use thiserror::Error;

use crate::config::FormatterConfig;
use crate::store::rollout::{self, ScoreMeaning};
use manifest::Manifest;

/// What a formatter needs from one prompt before early stop may end it.
/// Thresholds are on the run's scores: the formatter's `pass_threshold` /
/// `fail_threshold`, or the label's own pass and fail scores
/// ([`ScoreMeaning`]: 1 and 0 for rules and yes/no judges, 7 and 4 of 10
/// for ratings, a reward of 0 for reward models).
#[derive(Debug, Clone, PartialEq)]
pub enum Goal {
    /// At least `k` valid responses scoring at least `pass`.
    Passes {
        /// Passing responses needed.
        k: usize,
        /// Pass threshold.
        pass: f64,
    },
    /// Two responses: one scoring at least `pass`, another at most `fail`,
    /// the first at least `margin` above the second (dpo).
    PassAndFail {
        /// Pass threshold.
        pass: f64,
        /// Fail threshold.
        fail: f64,
        /// `min_margin` (0 when unset).
        margin: f64,
    },
    /// A formatter rsr cannot reason about (a user SQL file): never satisfied.
    Never,
}

impl Goal {
    /// Whether valid responses with these scores satisfy the goal.
    pub fn satisfied(&self, scores: &[f64]) -> bool {
        match *self {
            Goal::Passes { k, pass } => scores.iter().filter(|&&s| s >= pass).count() >= k,
            Goal::PassAndFail { pass, fail, margin } => {
                scores.iter().enumerate().any(|(i, &chosen)| {
                    chosen >= pass
                        && scores.iter().enumerate().any(|(j, &rejected)| {
                            i != j && rejected <= fail && chosen - rejected >= margin
                        })
                })
            }
            Goal::Never => false,
        }
    }

    /// Why the goal keeps every prompt sampling to `max_rollouts` (so
    /// early stop saves nothing), when it does.
    pub fn never_met(&self, max_rollouts: usize) -> Option<String> {
        match *self {
            Goal::Never => Some("is a SQL file rsr cannot read a goal from".into()),
            Goal::Passes { k, .. } if k == usize::MAX => {
                Some("keeps every passing response (set k to what it needs)".into())
            }
            Goal::Passes { k, .. } if k > max_rollouts => Some(format!(
                "needs {k} passing responses, more than sampling.max_rollouts ({max_rollouts})"
            )),
            Goal::PassAndFail { .. } if max_rollouts < 2 => {
                Some("needs two responses and sampling.max_rollouts is 1".into())
            }
            _ => None,
        }
    }
}

/// The two row shapes formatters produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `id`, `messages`, `response` [, `reasoning`, `score`, `rollout_idx`].
    Sft,
    /// `id`, `messages`, `chosen`, `rejected` [, `chosen_reasoning`,
    /// `rejected_reasoning`, `chosen_score`, `rejected_score`].
    Pairs,
}

/// A built-in formatter.
#[derive(Debug)]
pub struct Builtin {
    /// Its `type` name.
    pub name: &'static str,
    /// The shipped SQL.
    pub sql: &'static str,
    /// Its row shape.
    pub shape: Shape,
    /// Whether its config item must set `k`.
    pub requires_k: bool,
    /// Whether it keeps several responses of a prompt, so that
    /// `max_similarity` can drop the near-copies among them.
    pub several: bool,
    /// Whether it reads `fail_threshold` (a response below it is rejected).
    pub uses_fail: bool,
    /// Its early-stop goal for a config item, on scores of this meaning.
    pub goal: fn(&FormatterConfig, &ScoreMeaning) -> Goal,
}

/// The built-in formatters.
pub const BUILTINS: &[Builtin] = &[
    Builtin {
        name: "sft",
        sql: include_str!("../../sql/formatters/sft.sql"),
        requires_k: false,
        several: false,
        uses_fail: false,
        shape: Shape::Sft,
        goal: |f, m| Goal::Passes {
            k: 1,
            pass: f.pass_threshold.unwrap_or(m.pass),
        },
    },
    Builtin {
        name: "dpo",
        sql: include_str!("../../sql/formatters/dpo.sql"),
        requires_k: false,
        several: false,
        uses_fail: true,
        shape: Shape::Pairs,
        goal: |f, m| Goal::PassAndFail {
            pass: f.pass_threshold.unwrap_or(m.pass),
            fail: f.fail_threshold.unwrap_or(m.fail),
            margin: f.min_margin.unwrap_or(0.0),
        },
    },
    Builtin {
        name: "top_k",
        sql: include_str!("../../sql/formatters/top_k.sql"),
        requires_k: true,
        several: true,
        uses_fail: false,
        shape: Shape::Sft,
        goal: |f, m| Goal::Passes {
            k: f.k.map_or(1, |k| k.get()),
            pass: f.pass_threshold.unwrap_or(m.pass),
        },
    },
    Builtin {
        name: "multi_sft",
        sql: include_str!("../../sql/formatters/multi_sft.sql"),
        requires_k: false,
        several: true,
        uses_fail: false,
        shape: Shape::Sft,
        goal: |f, m| Goal::Passes {
            k: f.k.map_or(usize::MAX, |k| k.get()),
            pass: f.pass_threshold.unwrap_or(m.pass),
        },
    },
];

/// The built-in of a `type`, if it is one.
pub fn builtin(kind: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|b| b.name == kind)
}

/// The early-stop goal of a formatter config item on scores of `meaning`.
pub fn goal(f: &FormatterConfig, meaning: &ScoreMeaning) -> Goal {
    builtin(&f.kind).map_or(Goal::Never, |b| (b.goal)(f, meaning))
}

/// Errors setting up or running a formatter.
#[derive(Debug, Error)]
pub enum FormatError {
    /// A user SQL file cannot be read.
    #[error("cannot read formatter {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The query's result has neither shape.
    #[error(
        "formatter `{name}` returns columns ({columns}); it needs id, messages and response \
         (SFT rows) or id, messages, chosen and rejected (preference pairs)"
    )]
    Shape {
        /// Formatter name.
        name: String,
        /// The columns it returned.
        columns: String,
    },
    /// A pass threshold above every score the verdicts can have.
    #[error(
        "formatter `{name}`: pass_threshold {threshold} can never be met: the scores of \
         `{label}` are at most {max} (they pass from {pass}); leave pass_threshold unset to \
         use the label's own pass score"
    )]
    Unreachable {
        /// Formatter name.
        name: String,
        /// The threshold set.
        threshold: f64,
        /// The scores' label (`inline` for the verdicts given while sampling).
        label: String,
        /// The highest score of the label.
        max: f64,
        /// The label's pass score.
        pass: f64,
    },
    /// DataFusion failed.
    #[error("formatter `{name}`: {source}")]
    Sql {
        /// Formatter name.
        name: String,
        /// The cause.
        source: datafusion::error::DataFusionError,
    },
}

/// A formatter ready to run.
#[derive(Debug, Clone)]
pub struct Formatter {
    /// Output name (`train/<name>.jsonl`).
    pub name: String,
    /// The SQL text.
    pub sql: String,
    /// Its config item.
    pub config: FormatterConfig,
    /// The condition prompts meet besides the item's filters: not left out
    /// by decontamination or dedup ([`crate::hygiene::Exclusion::sql`]).
    pub exclude: Option<String>,
    /// What the scores formatted mean: the thresholds the item leaves
    /// unset ([`Formatter::scoring`]).
    pub meaning: ScoreMeaning,
}

impl Formatter {
    /// Loads the SQL of a config item (`base` resolves relative user paths).
    pub fn load(f: &FormatterConfig, base: &Path) -> Result<Self, FormatError> {
        let (sql, default_name) = match builtin(&f.kind) {
            Some(b) => (b.sql.to_string(), b.name.to_string()),
            None => {
                let path = Path::new(&f.kind);
                let path = if path.is_relative() && !path.exists() {
                    base.join(path)
                } else {
                    path.to_path_buf()
                };
                let sql = std::fs::read_to_string(&path).map_err(|source| FormatError::Read {
                    path: path.clone(),
                    source,
                })?;
                let stem = path
                    .file_stem()
                    .map_or("custom".into(), |s| s.to_string_lossy().into_owned());
                (sql, stem)
            }
        };
        Ok(Self {
            name: f.name.clone().unwrap_or(default_name),
            sql,
            config: f.clone(),
            exclude: None,
            meaning: ScoreMeaning::BINARY,
        })
    }

    /// Formats verdicts that mean `meaning` (the label's, as recorded with
    /// it): unset thresholds take its pass and fail scores. A threshold
    /// the label's scores can never meet is an error, not an empty file.
    pub fn scoring(mut self, meaning: ScoreMeaning, label: &str) -> Result<Self, FormatError> {
        if let (Some(t), Some(max)) = (self.config.pass_threshold, meaning.max)
            && t > max
        {
            return Err(FormatError::Unreachable {
                name: self.name,
                threshold: t,
                label: label.to_string(),
                max,
                pass: meaning.pass,
            });
        }
        self.meaning = meaning;
        Ok(self)
    }

    /// Leaves out the prompts `exclusion` leaves out of sampling.
    pub fn excluding(mut self, exclusion: crate::hygiene::Exclusion) -> Self {
        self.exclude = exclusion.sql();
        self
    }

    /// The query over one session's data (a shard session): registers
    /// `selected_prompts`, `candidates` and `best` for this formatter's
    /// filters and pass threshold, and binds its parameters.
    pub async fn query(&self, ctx: &SessionContext) -> Result<DataFrame, FormatError> {
        let sql_err = |source| FormatError::Sql {
            name: self.name.clone(),
            source,
        };
        let f = &self.config;
        let mut filters = vec!["TRUE".to_string()];
        if let Some(min) = f.min_pass_rate {
            filters.push(format!("pass_rate >= {min:?}"));
        }
        if let Some(max) = f.max_pass_rate {
            filters.push(format!("pass_rate <= {max:?}"));
        }
        if let Some(predicate) = &f.filter {
            filters.push(format!("({predicate})"));
        }
        if let Some(exclude) = &self.exclude {
            filters.push(format!("({exclude})"));
        }
        ctx.sql(&format!(
            "CREATE OR REPLACE VIEW selected_prompts AS SELECT * FROM prompts WHERE {}",
            filters.join(" AND ")
        ))
        .await
        .map_err(sql_err)?;
        crate::sql::views::register_candidates(ctx)
            .await
            .map_err(sql_err)?;
        let pass_threshold = f.pass_threshold.unwrap_or(self.meaning.pass);
        crate::sql::views::register_best(ctx, pass_threshold)
            .await
            .map_err(sql_err)?;
        // With a similarity ceiling every ranked row comes back: a near-copy
        // gives way to the next one ([`crate::hygiene::diverse`]).
        let k = match (f.k, f.max_similarity) {
            (Some(k), None) => k.get() as u64,
            _ => u64::MAX >> 1,
        };
        let params = vec![
            ("pass_threshold", ScalarValue::Float64(Some(pass_threshold))),
            (
                "fail_threshold",
                ScalarValue::Float64(Some(f.fail_threshold.unwrap_or(self.meaning.fail))),
            ),
            ("k", ScalarValue::UInt64(Some(k))),
            (
                "min_margin",
                ScalarValue::Float64(Some(f.min_margin.unwrap_or(0.0))),
            ),
        ];
        let df = ctx.sql(&self.sql).await.map_err(sql_err)?;
        let df = df.with_param_values(params).map_err(sql_err)?;
        Ok(df)
    }
}

/// The shape of a result schema, or an error naming its columns.
pub fn shape_of(name: &str, schema: &arrow::datatypes::Schema) -> Result<Shape, FormatError> {
    let has = |c: &str| schema.field_with_name(c).is_ok();
    if has("id") && has("messages") && has("chosen") && has("rejected") {
        Ok(Shape::Pairs)
    } else if has("id") && has("messages") && has("response") {
        Ok(Shape::Sft)
    } else {
        Err(FormatError::Shape {
            name: name.to_string(),
            columns: schema
                .fields()
                .iter()
                .map(|f| f.name().as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })
    }
}

/// Counts of one formatter run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FormatReport {
    /// Formatter name.
    pub name: String,
    /// Where the rows went.
    pub path: PathBuf,
    /// Prompts with rollouts.
    pub prompts_in: u64,
    /// Of which dropped by the pass-rate / `where` filters.
    pub dropped_by_filter: u64,
    /// Prompts with at least one output row.
    pub prompts_out: u64,
    /// Rows written.
    pub rows: u64,
    /// Responses left out as near-copies of a kept one (`max_similarity`).
    pub near_copies: u64,
    /// Whether the rows are preference pairs.
    pub pairs: bool,
}

/// Errors of [`write_formatter`].
#[derive(Debug, Error)]
pub enum RunError {
    /// Setting up or running the query failed.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// Writing failed.
    #[error(transparent)]
    Export(#[from] export::ExportError),
    /// Reading the work dir failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The dataset card cannot be written.
    #[error(transparent)]
    Card(#[from] card::CardError),
    /// Two formatters would write the same file.
    #[error("two formatters are named `{name}`: set formatter.{index}.name to tell them apart")]
    DuplicateName {
        /// The shared name.
        name: String,
        /// The second one's index in `formatter`.
        index: usize,
    },
    /// A file or directory of `train/` cannot be written.
    #[error("cannot write {}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// Runs every formatter of `config` into `WORK_DIR/train/`.
pub async fn write_all(
    wd: &crate::store::WorkDir,
    config: &crate::config::Config,
    label: Option<&str>,
) -> Result<Vec<FormatReport>, RunError> {
    // An evaluation (no formatters) has no training files and no card.
    if config.formatter.is_empty() {
        return Ok(Vec::new());
    }
    let train = crate::store::train_dir(wd.root());
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| RunError::Io { path, source }
    };
    std::fs::create_dir_all(&train).map_err(io(&train))?;
    let base = std::env::current_dir().map_err(io(Path::new(".")))?;
    let mut names = std::collections::HashSet::new();
    let mut reports = Vec::new();
    let partial = sampling_unfinished(wd);
    if partial {
        tracing::warn!(
            "sampling is not finished: the training files hold the prompts finished so far (marked partial in their manifests); the run's resume writes them again"
        );
    }
    for (i, f) in config.formatter.iter().enumerate() {
        let formatter = Formatter::load(f, &base)?
            .excluding(crate::hygiene::Exclusion::from_config(&config.data))
            .scoring(
                rollout::score_meaning(wd.root(), label),
                label.unwrap_or("inline"),
            )?;
        if !names.insert(formatter.name.clone()) {
            return Err(RunError::DuplicateName {
                name: formatter.name,
                index: i,
            });
        }
        let file_name = manifest::file_name(&formatter.name, config.export.format);
        let dest = train.join(&file_name);
        let previous = Manifest::read(&dest);
        let report = write_formatter(wd, &formatter, label, &dest, config.export).await?;
        let written = Manifest::of(
            format!("train/{file_name}"),
            &formatter,
            label,
            config.export,
            &report,
            partial,
        );
        written
            .write(&dest)
            .map_err(io(&manifest::path_of(&dest)))?;
        if report.near_copies > 0 {
            tracing::info!(
                "{}: {} responses left out as near-copies of a kept one (max_similarity={})",
                report.name,
                report.near_copies,
                f.max_similarity.unwrap_or_default()
            );
        }
        // The command prints its own table; the log keeps the line.
        tracing::debug!(
            "{}: {} prompts with rollouts, {} dropped by filters ({}), {} rows from {} prompts -> {}",
            report.name,
            report.prompts_in,
            report.dropped_by_filter,
            written.filters(),
            report.rows,
            report.prompts_out,
            report.path.display()
        );
        if let Some(p) = previous {
            tracing::info!("{}", written.replaced(&p));
        }
        reports.push(report);
    }
    card::write(wd, config, &train).await?;
    Ok(reports)
}

/// Whether some shard of `wd` is not sampled to the end (a stopped run):
/// training files written now are partial.
pub fn sampling_unfinished(wd: &crate::store::WorkDir) -> bool {
    crate::store::RunState::load(&wd.state_path()).is_ok_and(|s| {
        s.shards
            .iter()
            .any(|s| s.status != crate::store::ShardStatus::Done)
    })
}

/// Replaces the view `name` of `ctx` by a table holding its rows.
async fn materialize(ctx: &SessionContext, name: &str) -> datafusion::error::Result<()> {
    let df = ctx.table(name).await?;
    let schema = std::sync::Arc::new(df.schema().as_arrow().clone());
    let batches = df.collect().await?;
    ctx.deregister_table(name)?;
    let table = datafusion::datasource::MemTable::try_new(schema, vec![batches])?;
    ctx.register_table(name, std::sync::Arc::new(table))?;
    Ok(())
}

/// One group's output rows and prompt counts.
struct GroupOutput {
    schema: arrow::datatypes::Schema,
    batches: Vec<arrow::array::RecordBatch>,
    /// Prompts with rollouts, and of those, passing the filters.
    prompts_in: u64,
    kept: u64,
}

/// Runs `formatter` over one group of shards: its rows (collected: a
/// group's training rows are few) and its counts.
async fn run_group(
    root: &Path,
    formatter: &Formatter,
    label: Option<&str>,
    group: &[u32],
    validity: crate::store::rollout::Validity,
) -> Result<GroupOutput, RunError> {
    let sql_err = |source| FormatError::Sql {
        name: formatter.name.clone(),
        source,
    };
    let wd = crate::store::WorkDir::open_prepared(root)?;
    let ctx = crate::sql::shard_session(&wd, label, group, validity)
        .await
        .map_err(sql_err)?;
    // Groups run side by side, one partition (one core) each.
    ctx.state_ref()
        .write()
        .config_mut()
        .options_mut()
        .execution
        .target_partitions = 1;
    const COUNTS: &str = "SELECT (SELECT count(*) FROM prompts WHERE n_rollouts > 0) AS n, \
                          (SELECT count(*) FROM selected_prompts WHERE n_rollouts > 0) AS kept";
    if ctx.table_exist(crate::sql::group::TABLE).map_err(sql_err)? {
        // The part files are read once, for the columns the prompt list and
        // the formatter's query read; every later scan reads memory.
        let query = formatter.query(&ctx).await?;
        let mut plans = Vec::new();
        for df in [
            ctx.table("prompts").await.map_err(sql_err)?,
            ctx.sql(COUNTS).await.map_err(sql_err)?,
            query,
        ] {
            plans.push(df.into_optimized_plan().map_err(sql_err)?);
        }
        crate::sql::group::GroupRollouts::load(&ctx, &plans)
            .await
            .map_err(sql_err)?;
    }
    // The group's prompt list (a row per prompt) is computed once and kept:
    // the filters, the candidates' join and the counts read it without
    // aggregating the rollouts again.
    materialize(&ctx, "prompts").await.map_err(sql_err)?;
    let df = formatter.query(&ctx).await?;
    let schema = df.schema().as_arrow().clone();
    let counts = ctx
        .sql(COUNTS)
        .await
        .map_err(sql_err)?
        .collect()
        .await
        .map_err(sql_err)?;
    let get = |i: usize| {
        counts.first().map_or(0, |b| {
            b.column(i)
                .as_any()
                .downcast_ref::<arrow::array::Int64Array>()
                .map_or(0, |a| a.value(0) as u64)
        })
    };
    let (prompts_in, kept) = (get(0), get(1));
    let batches = df.collect().await.map_err(sql_err)?;
    Ok(GroupOutput {
        schema,
        batches,
        prompts_in,
        kept,
    })
}

/// Groups of shards a formatter computes at once at most (one per core up to
/// this): each holds its columns in memory.
const MAX_GROUPS_AT_ONCE: usize = 8;

/// Runs `formatter` group of shards by group over the work dir and writes its rows to
/// `dest` in `format` (atomically: the file appears complete or not at all).
/// `label` selects `scores/<label>/` verdicts instead of the inline ones.
pub async fn write_formatter(
    wd: &crate::store::WorkDir,
    formatter: &Formatter,
    label: Option<&str>,
    dest: &Path,
    options: crate::config::ExportConfig,
) -> Result<FormatReport, RunError> {
    use futures::StreamExt;
    let sql_err = |source| FormatError::Sql {
        name: formatter.name.clone(),
        source,
    };
    let state = crate::store::RunState::load(&wd.state_path())?;
    let validity = crate::sql::saved_validity(wd).map_err(sql_err)?;
    let mut report = FormatReport {
        name: formatter.name.clone(),
        path: dest.to_path_buf(),
        ..FormatReport::default()
    };
    let mut writer: Option<export::ExportWriter> = None;
    // One group computed per core (at most MAX_GROUPS_AT_ONCE), each on its
    // own task with one partition; as many finished ones may wait for their
    // turn, so a slow group does not leave a core idle. Rows are written in
    // group order.
    let groups = crate::sql::shard_groups(wd, &state);
    let root = wd.root().to_path_buf();
    let at_once = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(MAX_GROUPS_AT_ONCE);
    let running = std::sync::Arc::new(tokio::sync::Semaphore::new(at_once));
    let mut outputs = futures::stream::iter(groups.into_iter().map(|group| {
        let (root, formatter, label) = (root.clone(), formatter.clone(), label.map(str::to_string));
        let running = std::sync::Arc::clone(&running);
        tokio::spawn(async move {
            let _turn = running.acquire().await.expect("never closed");
            run_group(&root, &formatter, label.as_deref(), &group, validity).await
        })
    }))
    .buffered(2 * at_once);
    let f = &formatter.config;
    while let Some(joined) = outputs.next().await {
        let out = joined.map_err(|e| FormatError::Sql {
            name: formatter.name.clone(),
            source: datafusion::error::DataFusionError::External(Box::new(e)),
        })??;
        report.prompts_in += out.prompts_in;
        report.dropped_by_filter += out.prompts_in - out.kept.min(out.prompts_in);
        let shape = shape_of(&formatter.name, &out.schema)?;
        let w = match &mut writer {
            Some(w) => w,
            None => writer.insert(export::ExportWriter::create(dest, shape, options)?),
        };
        let mut last_id: Option<String> = None;
        let mut diversity = f.max_similarity.map(|m| {
            crate::hygiene::diverse::Diversity::new(m, f.k.map_or(usize::MAX, |k| k.get()))
        });
        for mut batch in out.batches {
            if let Some(d) = diversity.as_mut() {
                batch = d.filter(&batch).map_err(|e| {
                    sql_err(datafusion::error::DataFusionError::ArrowError(
                        Box::new(e),
                        None,
                    ))
                })?;
            }
            if let Some(ids) = batch
                .column_by_name("id")
                .and_then(|c| arrow::compute::cast(c, &arrow::datatypes::DataType::Utf8).ok())
            {
                use arrow::array::{Array, AsArray};
                let ids = ids.as_string::<i32>();
                for i in 0..ids.len() {
                    let id = ids.value(i);
                    if last_id.as_deref() != Some(id) {
                        report.prompts_out += 1;
                        last_id = Some(id.to_string());
                    }
                }
            }
            w.write(&batch)?;
        }
        report.near_copies += diversity.map_or(0, |d| d.dropped);
    }
    let writer = match writer {
        Some(w) => w,
        None => {
            // No rollouts at all: an empty file of the formatter's shape.
            let shape = builtin(&formatter.config.kind).map_or(Shape::Sft, |b| b.shape);
            export::ExportWriter::create(dest, shape, options)?
        }
    };
    report.pairs = writer.shape() == Shape::Pairs;
    report.rows = writer.commit()?;
    Ok(report)
}
