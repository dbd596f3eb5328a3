//! What the viewer's pages show, as JSON from DataFusion queries over the
//! work dir's Parquet files: the prompt list (cached per version of the
//! files, so paging stays fast on large runs and follows a run being
//! sampled), one prompt with every rollout and every verdict, the rollouts
//! on which verdict sources disagree, and those where no answer was found.
//! Read-only: user input reaches SQL only as a checked predicate over the
//! prompt list, run with DDL, DML and statements refused.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use arrow::array::{AsArray, RecordBatch, StringArray};
use datafusion::datasource::MemTable;
use datafusion::execution::context::SQLOptions;
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
use serde_json::{Value, json};
use thiserror::Error;
use tokio::sync::Mutex;

use crate::store::WorkDir;
use crate::store::rollout::{self, PASS_SCORE};

/// Errors answering a page's query.
#[derive(Debug, Error)]
pub enum ViewError {
    /// The request is malformed (a bad parameter or predicate).
    #[error("{0}")]
    BadRequest(String),
    /// Nothing by that name.
    #[error("{0}")]
    NotFound(String),
    /// The query failed.
    #[error("{0}")]
    Query(#[from] datafusion::error::DataFusionError),
    /// Results cannot be written as JSON (a bug).
    #[error("{0}")]
    Arrow(#[from] arrow::error::ArrowError),
}

/// The prompt list's columns that may be sorted on.
pub const SORTABLE: &[&str] = &[
    "id",
    "pass_rate",
    "n_rollouts",
    "n_valid",
    "n_pass",
    "n_truncated",
    "n_errors",
    "mean_completion_tokens",
    "disagree",
];

/// Rows per page at most.
pub const MAX_PAGE: usize = 500;

/// The viewer's data source over one work dir.
pub struct Data {
    wd: WorkDir,
    cache: Mutex<Option<Arc<Lists>>>,
    /// A rebuild of the lists is running in the background.
    refreshing: AtomicBool,
}

/// What the list pages read, computed together from one version of the
/// files: the prompt list and the rollouts whose verdict sources disagree.
pub struct Lists {
    fingerprint: Fingerprint,
    /// The two verdict sources compared.
    pair: Pair,
    prompts: Arc<MemTable>,
    /// `(id, rollout_idx)` of the disagreeing rollouts, in order.
    split: Vec<(String, u32)>,
}

/// The state of the files a prompt list was computed from.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fingerprint(Vec<(PathBuf, u64, Option<SystemTime>)>);

impl Fingerprint {
    fn of(root: &Path) -> Self {
        let mut files = Vec::new();
        for dir in [rollout::rollout_dir(root), rollout::scores_dir(root)] {
            walk(&dir, &mut files);
        }
        files.sort();
        Self(files)
    }
}

fn walk(dir: &Path, out: &mut Vec<(PathBuf, u64, Option<SystemTime>)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else if p.extension().is_some_and(|x| x == "parquet" || x == "json")
            && let Ok(m) = e.metadata()
        {
            out.push((p, m.len(), m.modified().ok()));
        }
    }
}

/// The two verdict sources the lists compare: `inline` (the verdicts
/// given while sampling) or a scores label each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pair {
    /// The first source.
    pub a: String,
    /// The second source.
    pub b: String,
}

/// A page request on a list.
#[derive(Debug, Clone, Default)]
pub struct Page {
    /// Rows to skip.
    pub offset: usize,
    /// Rows to return (at most [`MAX_PAGE`]).
    pub limit: usize,
}

/// The prompt list's filters and order.
#[derive(Debug, Clone, Default)]
pub struct PromptQuery {
    /// Which rows.
    pub page: Page,
    /// Sort column ([`SORTABLE`]).
    pub sort: Option<String>,
    /// Descending.
    pub desc: bool,
    /// Pass rate at least this.
    pub min_pass_rate: Option<f64>,
    /// Pass rate at most this.
    pub max_pass_rate: Option<f64>,
    /// A SQL predicate over the prompt list's columns.
    pub predicate: Option<String>,
    /// The verdict sources whose disagreement the list flags.
    pub pair: Pair,
}

impl Data {
    /// A data source over `wd`.
    pub fn new(wd: WorkDir) -> Self {
        Self {
            wd,
            cache: Mutex::new(None),
            refreshing: AtomicBool::new(false),
        }
    }

    /// The work dir.
    pub fn work_dir(&self) -> &WorkDir {
        &self.wd
    }

    async fn session(&self, label: Option<&str>) -> Result<SessionContext, ViewError> {
        Ok(crate::sql::session_with_scores(&self.wd, label).await?)
    }

    /// The scores labels, each with its verifier and pass score.
    pub fn labels(&self) -> Vec<(String, Option<String>, f64)> {
        rollout::score_labels(self.wd.root())
            .into_iter()
            .map(|l| {
                let kind = rollout::scores_verifier(self.wd.root(), &l);
                let pass = rollout::pass_score(self.wd.root(), Some(&l));
                (l, kind, pass)
            })
            .collect()
    }

    fn has_rollouts(&self) -> bool {
        rollout::has_parquet(&rollout::rollout_dir(self.wd.root()))
    }

    /// `{work_dir, labels, prompts, rollouts}`.
    pub async fn info(&self) -> Result<Value, ViewError> {
        let ctx = self.session(None).await?;
        let prompts = scalar(&ctx, "SELECT count(*) FROM inputs").await?;
        let rollouts = if self.has_rollouts() {
            scalar(&ctx, "SELECT count(*) FROM rollouts WHERE error IS NULL").await?
        } else {
            Value::from(0)
        };
        let labels: Vec<Value> = self
            .labels()
            .into_iter()
            .map(|(l, kind, pass)| json!({"label": l, "verifier": kind, "pass_score": pass}))
            .collect();
        let pair = self.default_pair();
        Ok(json!({
            "work_dir": self.wd.root().display().to_string(),
            "prompts": prompts,
            "rollouts": rollouts,
            "labels": labels,
            "pair": [pair.a, pair.b],
        }))
    }

    /// The verdict sources a pair may name: `inline` and every label.
    fn sources(&self) -> Vec<String> {
        std::iter::once("inline".to_string())
            .chain(self.labels().into_iter().map(|(l, _, _)| l))
            .collect()
    }

    /// The pair compared unless the user picks one: the inline verdicts
    /// and the newest label that is not the inline verdicts' own copy
    /// (`scores/<the run's verifier>/`, written while sampling).
    pub fn default_pair(&self) -> Pair {
        let own = crate::config::saved(self.wd.root())
            .ok()
            .flatten()
            .map(|c| c.verifier.label().to_string());
        let newest = self
            .labels()
            .into_iter()
            .filter(|(l, _, _)| Some(l) != own.as_ref())
            .max_by_key(|(l, _, _)| {
                std::fs::metadata(rollout::scores_verifier_path(self.wd.root(), l))
                    .and_then(|m| m.modified())
                    .ok()
            })
            .map(|(l, _, _)| l);
        Pair {
            a: "inline".into(),
            b: newest.unwrap_or_else(|| "inline".into()),
        }
    }

    /// The pair named by `a` and `b` (either missing: the default's),
    /// refused when a name is no verdict source of the run.
    pub fn pair(&self, a: Option<&str>, b: Option<&str>) -> Result<Pair, ViewError> {
        let default = self.default_pair();
        let known = self.sources();
        let check = |name: Option<&str>, fallback: String| match name.filter(|n| !n.is_empty()) {
            None => Ok(fallback),
            Some(n) if known.iter().any(|k| k == n) => Ok(n.to_string()),
            Some(n) => Err(ViewError::BadRequest(format!(
                "no verdict source {n:?}: the run has {}",
                known.join(", ")
            ))),
        };
        Ok(Pair {
            a: check(a, default.a)?,
            b: check(b, default.b)?,
        })
    }

    /// A CASE expression giving the pass score of the scores label in
    /// column `col`.
    fn pass_case(&self, col: &str) -> String {
        let labels = self.labels();
        if labels.is_empty() {
            return format!("{PASS_SCORE:?}");
        }
        let arms: String = labels
            .iter()
            .map(|(l, _, p)| format!(" WHEN '{l}' THEN {p:?}"))
            .collect();
        format!("CASE {col}{arms} ELSE {PASS_SCORE:?} END")
    }

    /// Every verdict of every valid rollout as (id, rollout_idx, source,
    /// passed): the inline one and each label's. `None` before sampling.
    fn verdicts_sql(&self, has_scores: bool) -> String {
        let valid = rollout::Validity::default().sql("r");
        let inline = format!(
            "SELECT r.id, r.rollout_idx, 'inline' AS source, r.score >= {PASS_SCORE:?} AS passed \
             FROM rollouts r WHERE {valid} AND r.score IS NOT NULL"
        );
        if !has_scores {
            return inline;
        }
        format!(
            "{inline} UNION ALL \
             SELECT s.id, s.rollout_idx, s.verifier AS source, s.score >= {} AS passed \
             FROM scores s JOIN rollouts r ON r.id = s.id AND r.rollout_idx = s.rollout_idx \
             WHERE {valid} AND s.score IS NOT NULL",
            self.pass_case("s.verifier")
        )
    }

    /// The lists for the files as they are now. The first call computes
    /// them; later ones answer from the last computed lists at once, and
    /// when the files changed since (a run being sampled) start computing
    /// new ones in the background (`stale` is then true).
    pub async fn lists(self: &Arc<Self>, pair: &Pair) -> Result<(Arc<Lists>, bool), ViewError> {
        let fingerprint = Fingerprint::of(self.wd.root());
        let current = self.cache.lock().await.clone().filter(|l| l.pair == *pair);
        match current {
            Some(lists) if lists.fingerprint == fingerprint => Ok((lists, false)),
            Some(lists) => {
                if !self.refreshing.swap(true, Ordering::SeqCst) {
                    let me = Arc::clone(self);
                    let pair = pair.clone();
                    tokio::spawn(async move {
                        match me.build(Fingerprint::of(me.wd.root()), &pair).await {
                            Ok(fresh) => *me.cache.lock().await = Some(Arc::new(fresh)),
                            Err(e) => {
                                tracing::warn!("rsr view: cannot update the prompt list: {e}")
                            }
                        }
                        me.refreshing.store(false, Ordering::SeqCst);
                    });
                }
                Ok((lists, true))
            }
            None => {
                let fresh = Arc::new(self.build(fingerprint, pair).await?);
                *self.cache.lock().await = Some(Arc::clone(&fresh));
                Ok((fresh, false))
            }
        }
    }

    /// Computes the lists from the files as they are.
    async fn build(&self, fingerprint: Fingerprint, pair: &Pair) -> Result<Lists, ViewError> {
        let ctx = self.session(None).await?;
        let mut split = Vec::new();
        let sql = if self.has_rollouts() {
            let has_scores = ctx.table_exist("scores")?;
            let keys = ctx
                .sql(&format!(
                    "SELECT id, rollout_idx FROM ({}) v WHERE source IN ({}, {}) \
                     GROUP BY id, rollout_idx \
                     HAVING bool_or(passed) AND NOT bool_and(passed) ORDER BY id, rollout_idx",
                    self.verdicts_sql(has_scores),
                    quote(&pair.a),
                    quote(&pair.b)
                ))
                .await?
                .collect()
                .await?;
            for b in &keys {
                let ids = arrow::compute::cast(b.column(0), &arrow::datatypes::DataType::Utf8)?;
                let ids = ids.as_string::<i32>();
                let idx = arrow::compute::cast(b.column(1), &arrow::datatypes::DataType::UInt32)?;
                let idx = idx.as_primitive::<arrow::datatypes::UInt32Type>();
                for i in 0..b.num_rows() {
                    split.push((ids.value(i).to_string(), idx.value(i)));
                }
            }
            let flagged: Vec<&str> = split.iter().map(|(id, _)| id.as_str()).collect();
            let flagged = Arc::new(StringArray::from(flagged)) as arrow::array::ArrayRef;
            let batch = RecordBatch::try_from_iter([("id", flagged)])?;
            ctx.register_batch("split_ids", batch)?;
            "SELECT p.id, p.shard, p.answer, p.metadata, p.n_rollouts, p.n_valid, p.n_pass, \
               p.pass_rate, p.n_truncated, p.n_errors, p.mean_completion_tokens, \
               p.contaminated, p.duplicate_of, \
               COALESCE(d.disagree, false) AS disagree \
             FROM prompts p LEFT JOIN ( \
               SELECT DISTINCT id, true AS disagree FROM split_ids) d ON p.id = d.id"
                .to_string()
        } else {
            "SELECT id, shard, answer, metadata, CAST(0 AS BIGINT) AS n_rollouts, \
               CAST(0 AS BIGINT) AS n_valid, CAST(0 AS BIGINT) AS n_pass, \
               CAST(NULL AS DOUBLE) AS pass_rate, CAST(0 AS BIGINT) AS n_truncated, \
               CAST(0 AS BIGINT) AS n_errors, CAST(NULL AS DOUBLE) AS mean_completion_tokens, \
               contaminated, duplicate_of, false AS disagree FROM inputs"
                .to_string()
        };
        let df = ctx.sql(&sql).await?;
        let schema = Arc::new(df.schema().as_arrow().clone());
        let batches = df.collect().await?;
        // The batches' own schema (the plan's may differ in nullability).
        let schema = batches.first().map_or(schema, |b| b.schema());
        Ok(Lists {
            fingerprint,
            pair: pair.clone(),
            prompts: Arc::new(MemTable::try_new(schema, vec![batches])?),
            split,
        })
    }

    /// One page of the prompt list: `{total, rows}`.
    pub async fn prompts(self: &Arc<Self>, q: &PromptQuery) -> Result<Value, ViewError> {
        let (lists, stale) = self.lists(&q.pair).await?;
        let table = Arc::clone(&lists.prompts);
        // Only the prompt list is registered: a predicate sees nothing else.
        let ctx = SessionContext::new();
        for f in crate::verifier::udf::udfs() {
            ctx.register_udf(f);
        }
        let mut ctx = ctx;
        datafusion_functions_json::register_all(&mut ctx)?;
        ctx.register_table("prompts", table)?;
        let mut filters = vec!["true".to_string()];
        if let Some(lo) = q.min_pass_rate {
            filters.push(format!("pass_rate >= {lo:?}"));
        }
        if let Some(hi) = q.max_pass_rate {
            filters.push(format!("pass_rate <= {hi:?}"));
        }
        if let Some(p) = q.predicate.as_deref().filter(|p| !p.trim().is_empty()) {
            check_predicate(p)?;
            filters.push(format!("({p})"));
        }
        let sort = match q.sort.as_deref() {
            None | Some("") => "id".to_string(),
            Some(s) if SORTABLE.contains(&s) => s.to_string(),
            Some(s) => {
                return Err(ViewError::BadRequest(format!(
                    "cannot sort on `{s}`: one of {}",
                    SORTABLE.join(", ")
                )));
            }
        };
        let dir = if q.desc { "DESC" } else { "ASC" };
        let tie = if sort == "id" { "" } else { ", id ASC" };
        let filter = filters.join(" AND ");
        let options = SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false);
        let run = |sql: String| {
            let ctx = &ctx;
            async move {
                let df = ctx
                    .sql_with_options(&sql, options)
                    .await
                    .map_err(|e| ViewError::BadRequest(format!("the filter does not run: {e}")))?;
                df.collect()
                    .await
                    .map_err(|e| ViewError::BadRequest(format!("the filter does not run: {e}")))
            }
        };
        let total =
            to_json(&run(format!("SELECT count(*) AS n FROM prompts WHERE {filter}")).await?)?;
        let rows = run(format!(
            "SELECT id, n_rollouts, n_valid, n_pass, pass_rate, n_truncated, n_errors, \
               mean_completion_tokens, disagree FROM prompts WHERE {filter} \
             ORDER BY {sort} {dir} NULLS LAST{tie} LIMIT {} OFFSET {}",
            q.page.limit.min(MAX_PAGE),
            q.page.offset
        ))
        .await?;
        Ok(json!({
            "total": total.first().and_then(|r| r.get("n")).cloned().unwrap_or(Value::from(0)),
            "rows": to_json(&rows)?,
            "stale": stale,
        }))
    }

    /// One prompt: its input row, every rollout, and each label's verdicts.
    pub async fn prompt(&self, id: &str) -> Result<Value, ViewError> {
        let ctx = self.session(None).await?;
        let lit = quote(id);
        let input = rows(
            &ctx,
            &format!(
                "SELECT id, messages, answer, metadata, shard, contaminated, contaminated_by, \
                   contamination_ngram, duplicate_of, duplicate_similarity \
                 FROM inputs WHERE id = {lit}"
            ),
        )
        .await?;
        let Some(input) = input.into_iter().next() else {
            return Err(ViewError::NotFound(format!("no prompt with id {id:?}")));
        };
        let mut rollouts = Vec::new();
        let mut verdicts: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        if self.has_rollouts() {
            rollouts = rows(
                &ctx,
                &format!(
                    "SELECT id, rollout_idx, step, response, reasoning, finish_reason, truncated, \
                       error, prompt_tokens, completion_tokens, latency_ms, model, endpoint, \
                       score, pred, {} AS valid \
                     FROM rollouts r WHERE id = {lit} ORDER BY rollout_idx, error NULLS FIRST",
                    rollout::Validity::default().sql("r")
                ),
            )
            .await?;
            if ctx.table_exist("scores")? {
                let schema = ctx.table("scores").await?.schema().clone();
                let has = |c: &str| schema.field_with_unqualified_name(c).is_ok();
                let extra: String = [
                    "outcome",
                    "judge_raw",
                    "judge_error",
                    "judge_latency_ms",
                    "detail",
                ]
                .iter()
                .map(|c| {
                    if has(c) {
                        format!(", {c}")
                    } else {
                        format!(", NULL AS {c}")
                    }
                })
                .collect();
                for v in rows(
                    &ctx,
                    &format!(
                        "SELECT verifier, rollout_idx, score, pred{extra} FROM scores \
                         WHERE id = {lit} ORDER BY verifier, rollout_idx"
                    ),
                )
                .await?
                {
                    let label = v["verifier"].as_str().unwrap_or_default().to_string();
                    verdicts.entry(label).or_default().push(v);
                }
            }
        }
        Ok(json!({"prompt": input, "rollouts": rollouts, "verdicts": verdicts}))
    }

    /// Valid rollouts on which two verdict sources disagree about pass or
    /// fail: `{total, rows}` with each source's verdict.
    pub async fn disagreements(
        self: &Arc<Self>,
        page: &Page,
        pair: &Pair,
    ) -> Result<Value, ViewError> {
        let (lists, stale) = self.lists(pair).await?;
        let keys: Vec<&(String, u32)> = lists
            .split
            .iter()
            .skip(page.offset)
            .take(page.limit.min(MAX_PAGE))
            .collect();
        let mut out: Vec<Value> = Vec::with_capacity(keys.len());
        if !keys.is_empty() {
            let ctx = self.session(None).await?;
            let ids: Vec<String> = keys.iter().map(|(id, _)| quote(id)).collect();
            let ids = ids.join(", ");
            let mut sql = format!(
                "SELECT id, rollout_idx, 'inline' AS source, score, pred, \
                   score >= {PASS_SCORE:?} AS passed \
                 FROM rollouts WHERE id IN ({ids}) AND error IS NULL AND score IS NOT NULL"
            );
            if ctx.table_exist("scores")? {
                sql += &format!(
                    " UNION ALL SELECT id, rollout_idx, verifier AS source, score, pred, \
                       score >= {} AS passed FROM scores WHERE id IN ({ids})",
                    self.pass_case("verifier")
                );
            }
            let found = rows(
                &ctx,
                &format!(
                    "SELECT * FROM ({sql}) WHERE source IN ({}, {}) ORDER BY source",
                    quote(&pair.a),
                    quote(&pair.b)
                ),
            )
            .await?;
            for (id, idx) in keys {
                let sources: Vec<Value> = found
                    .iter()
                    .filter(|v| v["id"] == id.as_str() && v["rollout_idx"] == *idx)
                    .map(|v| {
                        json!({"source": v["source"], "score": v["score"], "pred": v["pred"], "passed": v["passed"]})
                    })
                    .collect();
                out.push(json!({"id": id, "rollout_idx": idx, "sources": sources}));
            }
        }
        Ok(json!({
            "total": lists.split.len(),
            "rows": out,
            "stale": stale,
            "pair": [pair.a, pair.b],
        }))
    }

    /// Valid rollouts of prompts with a gold answer in which the verifier
    /// (inline, or `label`'s) found no answer: `{total, rows}`.
    pub async fn no_answer(&self, label: Option<&str>, page: &Page) -> Result<Value, ViewError> {
        if !self.has_rollouts() {
            return Ok(json!({"total": 0, "rows": []}));
        }
        if let Some(l) = label
            && !self.labels().iter().any(|(x, _, _)| x == l)
        {
            return Err(ViewError::NotFound(format!("no scores label {l:?}")));
        }
        let ctx = self.session(label).await?;
        let from = "FROM results r JOIN inputs i ON r.id = i.id \
                    WHERE r.valid AND i.answer IS NOT NULL AND r.pred IS NULL AND r.verifier IS NOT NULL";
        let total = rows(&ctx, &format!("SELECT count(*) AS n {from}")).await?;
        let rows = rows(
            &ctx,
            &format!(
                "SELECT r.id, r.rollout_idx, i.answer, r.score, r.verifier, \
                   right(strip_thinking(r.response), 300) AS ending {from} \
                 ORDER BY r.id, r.rollout_idx LIMIT {} OFFSET {}",
                page.limit.min(MAX_PAGE),
                page.offset
            ),
        )
        .await?;
        Ok(json!({"total": total[0]["n"], "rows": rows}))
    }

    /// The run's statistics as the report's HTML, with the charts of the
    /// last `rsr analyze` when there are any.
    pub async fn report(&self) -> Result<String, ViewError> {
        let config = crate::config::saved(self.wd.root())
            .map_err(|e| ViewError::BadRequest(e.to_string()))?
            .ok_or_else(|| ViewError::NotFound("the work dir has no config.yaml".into()))?;
        let label = crate::scoring::scored_after_sampling(&config.verifier.kind)
            .then(|| config.verifier.label())
            .filter(|l| self.labels().iter().any(|(x, _, _)| x == l));
        let stats = crate::analyze::compute(&self.wd, &config, label)
            .await
            .map_err(|e| ViewError::BadRequest(e.to_string()))?;
        let charts_dir = crate::store::charts_dir(self.wd.root());
        let mut charts = Vec::new();
        for (file, caption) in [
            (
                "pass_rate.png",
                "Prompts by pass rate (as of the last rsr analyze)",
            ),
            (
                "completion_tokens.png",
                "Completion tokens of valid responses (as of the last rsr analyze)",
            ),
            (
                "rollouts_per_prompt.png",
                "Prompts by number of rollouts (as of the last rsr analyze)",
            ),
            (
                "best_of_n_error.png",
                "Best-of-N error (as of the last rsr analyze)",
            ),
        ] {
            if let Ok(bytes) = std::fs::read(charts_dir.join(file)) {
                charts.push((caption.to_string(), bytes));
            }
        }
        Ok(crate::analyze::report::html(&stats, &charts))
    }
}

/// A SQL string literal.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The rows of `sql` as JSON objects.
async fn rows(ctx: &SessionContext, sql: &str) -> Result<Vec<Value>, ViewError> {
    to_json(&ctx.sql(sql).await?.collect().await?)
}

async fn scalar(ctx: &SessionContext, sql: &str) -> Result<Value, ViewError> {
    let rows = rows(ctx, sql).await?;
    Ok(rows
        .first()
        .and_then(|r| r.as_object())
        .and_then(|o| o.values().next().cloned())
        .unwrap_or(Value::Null))
}

/// Batches as a list of JSON objects (nulls kept).
fn to_json(batches: &[RecordBatch]) -> Result<Vec<Value>, ViewError> {
    let mut buf = Vec::new();
    {
        let mut w = arrow::json::WriterBuilder::new()
            .with_explicit_nulls(true)
            .build::<_, arrow::json::writer::JsonArray>(&mut buf);
        for b in batches {
            w.write(b)?;
        }
        w.finish()?;
    }
    if buf.is_empty() {
        return Ok(Vec::new());
    }
    serde_json::from_slice(&buf).map_err(|e| ViewError::BadRequest(e.to_string()))
}

/// Accepts one SQL expression over the prompt list: no statement, no query,
/// nothing after it. DataFusion then runs it with DDL, DML and statements
/// refused, in a session holding only the prompt list.
pub fn check_predicate(p: &str) -> Result<(), ViewError> {
    let bad = |m: String| Err(ViewError::BadRequest(m));
    let tokens = Tokenizer::new(&GenericDialect {}, p)
        .tokenize()
        .map_err(|e| ViewError::BadRequest(format!("the filter is not SQL: {e}")))?;
    for t in &tokens {
        match t {
            Token::SemiColon => return bad("the filter is one expression: no `;`".into()),
            Token::Word(w)
                if w.quote_style.is_none()
                    && matches!(
                        w.keyword,
                        Keyword::SELECT
                            | Keyword::COPY
                            | Keyword::CREATE
                            | Keyword::DROP
                            | Keyword::INSERT
                            | Keyword::DELETE
                            | Keyword::UPDATE
                            | Keyword::ALTER
                            | Keyword::SET
                            | Keyword::EXPLAIN
                            | Keyword::WITH
                    ) =>
            {
                return bad(format!(
                    "the filter is a condition over the prompt list (like `n_valid >= 8 AND pass_rate < 0.5`); `{}` is not allowed in it",
                    w.value
                ));
            }
            _ => {}
        }
    }
    let mut parser =
        datafusion::sql::sqlparser::parser::Parser::new(&GenericDialect {}).with_tokens(tokens);
    parser
        .parse_expr()
        .map_err(|e| ViewError::BadRequest(format!("the filter is not a SQL condition: {e}")))?;
    if parser.peek_token().token != Token::EOF {
        return bad("the filter is one condition: something follows it".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predicates_are_conditions_only() {
        for ok in [
            "n_valid >= 8",
            "pass_rate < 0.5 AND json_get_int(metadata, 'level') >= 4",
            "id LIKE 'gsm8k-1%'",
            "answer = 'select'",
        ] {
            assert!(check_predicate(ok).is_ok(), "{ok}");
        }
        for bad in [
            "1=1; COPY prompts TO '/tmp/x'",
            "id IN (SELECT id FROM prompts)",
            "true) UNION (SELECT 1",
            "CREATE TABLE x AS SELECT 1",
            "n_valid >= 8 n_pass",
            "",
        ] {
            assert!(check_predicate(bad).is_err(), "{bad}");
        }
    }
}
