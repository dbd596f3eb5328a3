//! The `rollouts` table of a shard group's session ([`super::shard_session`]):
//! its part files until [`GroupRollouts::load`], then the columns the
//! group's queries read, held in memory, so that the prompt list, the
//! duplicate choice and the rows a formatter returns decompress each part
//! file once instead of once per scan.

use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::datasource::{MemTable, TableType};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;

/// Name of the table in a shard session.
pub const TABLE: &str = "rollouts";

/// A shard group's rollouts: scanned from `files` until loaded, from
/// memory after.
#[derive(Debug)]
pub struct GroupRollouts {
    files: Arc<dyn TableProvider>,
    loaded: RwLock<Option<Loaded>>,
}

/// The columns read into memory: their indices in the table's schema, in
/// order, and the table holding them.
#[derive(Debug)]
struct Loaded {
    columns: Vec<usize>,
    table: Arc<MemTable>,
}

impl GroupRollouts {
    /// The table over a group's part files (a listing table).
    pub fn new(files: Arc<dyn TableProvider>) -> Self {
        Self {
            files,
            loaded: RwLock::new(None),
        }
    }

    /// Reads into memory every column of `rollouts` that the optimized
    /// `plans` scan (all of them when a plan scans the whole table).
    /// Queries planned afterwards read memory; one that needs a column not
    /// read fails with its name rather than seeing nulls.
    pub async fn load(ctx: &SessionContext, plans: &[LogicalPlan]) -> Result<()> {
        let provider = ctx.table_provider(TABLE).await?;
        let Some(this) = (provider.as_ref() as &dyn std::any::Any).downcast_ref::<Self>() else {
            return Err(DataFusionError::Internal(format!(
                "`{TABLE}` is not a shard group's table"
            )));
        };
        let width = this.files.schema().fields().len();
        let mut columns = BTreeSet::new();
        for plan in plans {
            plan.apply(|node| {
                if let LogicalPlan::TableScan(scan) = node
                    && scan.table_name.table() == TABLE
                {
                    match &scan.projection {
                        Some(p) => columns.extend(p.iter().copied()),
                        None => columns.extend(0..width),
                    }
                }
                Ok(TreeNodeRecursion::Continue)
            })?;
        }
        let columns: Vec<usize> = columns.into_iter().collect();
        let schema = Arc::new(this.files.schema().project(&columns)?);
        tracing::debug!(
            "reading {} of the group's part files into memory",
            crate::data::validate::column_names(&schema)
        );
        let plan = this
            .files
            .scan(&ctx.state(), Some(&columns), &[], None)
            .await?;
        let batches = datafusion::physical_plan::collect(plan, ctx.task_ctx()).await?;
        let table = Arc::new(MemTable::try_new(schema, vec![batches])?);
        *this.loaded.write().expect("not poisoned") = Some(Loaded { columns, table });
        Ok(())
    }
}

#[async_trait]
impl TableProvider for GroupRollouts {
    fn schema(&self) -> SchemaRef {
        self.files.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let loaded = self
            .loaded
            .read()
            .expect("not poisoned")
            .as_ref()
            .map(|l| (l.columns.clone(), Arc::clone(&l.table)));
        let Some((columns, table)) = loaded else {
            return self.files.scan(state, projection, filters, limit).await;
        };
        let schema = self.files.schema();
        let wanted: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..schema.fields().len()).collect(),
        };
        let mapped = wanted
            .iter()
            .map(|&i| {
                columns.binary_search(&i).map_err(|_| {
                    DataFusionError::Plan(format!(
                        "`{TABLE}.{}` was not read into memory for this query",
                        schema.field(i).name()
                    ))
                })
            })
            .collect::<Result<Vec<usize>>>()?;
        table.scan(state, Some(&mapped), filters, limit).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A session whose `rollouts` wraps an in-memory "file" table of four
    /// columns.
    async fn session() -> SessionContext {
        let ctx = SessionContext::new();
        ctx.sql(
            "CREATE TABLE files AS SELECT * FROM (VALUES \
               ('p1', 0, 'a 42', 100), ('p1', 1, 'a 41', 120), ('p2', 0, 'b 7', 90)) \
             AS t(id, rollout_idx, response, latency_ms)",
        )
        .await
        .unwrap();
        let files = ctx.table_provider("files").await.unwrap();
        ctx.register_table(TABLE, Arc::new(GroupRollouts::new(files)))
            .unwrap();
        ctx
    }

    async fn rows(ctx: &SessionContext, sql: &str) -> Result<String> {
        let batches = ctx.sql(sql).await?.collect().await?;
        Ok(arrow::util::pretty::pretty_format_batches(&batches)?.to_string())
    }

    #[tokio::test]
    async fn loaded_columns_give_the_same_rows_and_others_are_refused_by_name() {
        let ctx = session().await;
        let query = "SELECT id, response FROM rollouts WHERE rollout_idx = 1";
        let before = rows(&ctx, query).await.unwrap();
        let plan = ctx.sql(query).await.unwrap().into_optimized_plan().unwrap();
        GroupRollouts::load(&ctx, &[plan]).await.unwrap();
        assert_eq!(rows(&ctx, query).await.unwrap(), before);
        assert!(before.contains("a 41"), "{before}");
        let err = rows(&ctx, "SELECT latency_ms FROM rollouts")
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`rollouts.latency_ms` was not read into memory"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_plan_reading_every_column_loads_every_column() {
        let ctx = session().await;
        let plan = ctx
            .sql("SELECT * FROM rollouts")
            .await
            .unwrap()
            .into_optimized_plan()
            .unwrap();
        GroupRollouts::load(&ctx, &[plan]).await.unwrap();
        let out = rows(&ctx, "SELECT sum(latency_ms) AS total FROM rollouts")
            .await
            .unwrap();
        assert!(out.contains("| 310   |"), "{out}");
    }
}
