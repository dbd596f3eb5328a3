//! IFEval's numbers for a run scored by the `ifeval` verifier, from the
//! `instructions` view over valid rollouts: prompt-level (every instruction
//! of a response followed) and instruction-level, strict and loose, and a
//! row per instruction id.

use datafusion::prelude::SessionContext;
use serde::{Deserialize, Serialize};

use crate::sql::columns::{f64s, one_row, utf8};

/// IFEval's four numbers and the per-id table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IfevalStats {
    /// Valid responses checked.
    pub responses: u64,
    /// Share of responses that follow all their instructions, strict.
    pub prompt_strict: f64,
    /// The same, loose.
    pub prompt_loose: f64,
    /// Instructions checked (over all responses).
    pub instructions: u64,
    /// Share of instructions followed, strict.
    pub instruction_strict: f64,
    /// The same, loose.
    pub instruction_loose: f64,
    /// One row per instruction id, by id.
    pub per_id: Vec<InstructionRow>,
}

/// How often one instruction id was followed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InstructionRow {
    /// The instruction id.
    pub id: String,
    /// Times it was asked (over valid responses).
    pub count: u64,
    /// Times followed, strict.
    pub strict: u64,
    /// Times followed, loose.
    pub loose: u64,
}

/// The numbers, or `None` when no valid rollout has per-instruction
/// results (another verifier's run).
pub async fn compute(ctx: &SessionContext) -> datafusion::error::Result<Option<IfevalStats>> {
    let totals = one_row(
        ctx,
        "SELECT count(*), sum(all_strict), sum(all_loose), sum(n), sum(n_strict), sum(n_loose)
         FROM (SELECT id, rollout_idx,
                 CAST(bool_and(followed_strict) AS BIGINT) AS all_strict,
                 CAST(bool_and(followed_loose) AS BIGINT) AS all_loose,
                 count(*) AS n,
                 sum(CAST(followed_strict AS BIGINT)) AS n_strict,
                 sum(CAST(followed_loose AS BIGINT)) AS n_loose
               FROM instructions WHERE valid GROUP BY id, rollout_idx)",
    )
    .await?;
    let int = |i: usize| totals.get(i).copied().flatten().unwrap_or(0.0);
    if int(0) == 0.0 {
        return Ok(None);
    }
    let mut per_id = Vec::new();
    let batches = ctx
        .sql(
            "SELECT instruction_id, count(*) AS n,
                    sum(CAST(followed_strict AS BIGINT)) AS strict,
                    sum(CAST(followed_loose AS BIGINT)) AS loose
             FROM instructions WHERE valid GROUP BY instruction_id ORDER BY instruction_id",
        )
        .await?
        .collect()
        .await?;
    for b in &batches {
        let ids = utf8(b, "instruction_id")?;
        let (n, strict, loose) = (f64s(b, "n")?, f64s(b, "strict")?, f64s(b, "loose")?);
        for i in 0..b.num_rows() {
            per_id.push(InstructionRow {
                id: ids.value(i).to_string(),
                count: n.value(i) as u64,
                strict: strict.value(i) as u64,
                loose: loose.value(i) as u64,
            });
        }
    }
    Ok(Some(IfevalStats {
        responses: int(0) as u64,
        prompt_strict: int(1) / int(0),
        prompt_loose: int(2) / int(0),
        instructions: int(3) as u64,
        instruction_strict: int(4) / int(3),
        instruction_loose: int(5) / int(3),
        per_id,
    }))
}
