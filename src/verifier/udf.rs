//! The verifiers as DataFusion scalar functions, for `rsr sql`: one per
//! [`SqlFunction`] listed by each [`super::REGISTRY`] entry (built with the
//! verifier's default options), plus `strip_thinking(response)`, the final
//! part of a response (null when the thinking never closed), and
//! `fold_hash(text)`, a hash of the text with case and whitespace folded.
//!
//! Arguments may be columns or literals of any string type; nulls in give
//! nulls out.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, StringArray};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};

use super::{REGISTRY, Verifier, split, verify_batch};

/// Which column of the verdict a function returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Output {
    /// The score.
    Score,
    /// The extracted answer.
    Pred,
    /// The absolute error (numeric verifiers).
    Error,
}

/// A SQL function over one verifier: its name, what it returns and the
/// argument counts it takes (`response`, then `answer` unless it extracts,
/// then optionally `metadata`).
#[derive(Debug, Clone, Copy)]
pub struct SqlFunction {
    /// Function name.
    pub name: &'static str,
    /// What it returns.
    pub output: Output,
    /// Accepted argument counts.
    pub arities: &'static [usize],
}

/// Every verifier function, for registration in a SQL session.
pub fn udfs() -> Vec<ScalarUDF> {
    let mut out = Vec::new();
    for entry in REGISTRY {
        let verifier =
            (entry.build)(&serde_json::Map::new()).expect("every verifier builds with defaults");
        for f in entry.sql {
            out.push(ScalarUDF::from(VerifierUdf::new(f, verifier.clone())));
        }
    }
    out.push(text_udf("strip_thinking", DataType::Utf8, |responses| {
        let out: StringArray = responses
            .iter()
            .map(|r| r.and_then(|r| split::split(r).final_part()))
            .collect();
        Arc::new(out)
    }));
    out.push(text_udf("detect_language", DataType::Utf8, |texts| {
        let out: StringArray = texts
            .iter()
            .map(|t| t.and_then(super::ifeval::langdetect::detect))
            .collect();
        Arc::new(out)
    }));
    out.push(text_udf("fold_hash", DataType::UInt64, |text| {
        let out: arrow::array::UInt64Array = text
            .iter()
            .map(|t| t.map(crate::store::rollout::fold_hash))
            .collect();
        Arc::new(out)
    }));
    out
}

/// A function of one text argument: `strip_thinking(response)` (the final
/// part, null when the thinking never closed), `detect_language(text)`
/// (langdetect's answer, as `ifeval` computes it; null when the text has
/// no letters to go by) and `fold_hash(text)`
/// ([`crate::store::rollout::fold_hash`], for counting identical responses
/// without holding their text).
fn text_udf(
    name: &str,
    returns: DataType,
    f: impl Fn(&StringArray) -> ArrayRef + Send + Sync + 'static,
) -> ScalarUDF {
    datafusion::logical_expr::create_udf(
        name,
        vec![DataType::Utf8],
        returns,
        Volatility::Immutable,
        Arc::new(move |args: &[ColumnarValue]| {
            let rows = match &args[0] {
                ColumnarValue::Array(a) => a.len(),
                ColumnarValue::Scalar(_) => 1,
            };
            Ok(ColumnarValue::Array(f(&utf8(&args[0], rows)?)))
        }),
    )
}

/// The names of every SQL function [`udfs`] registers.
pub fn names() -> Vec<&'static str> {
    REGISTRY
        .iter()
        .flat_map(|e| e.sql.iter().map(|f| f.name))
        .chain(["strip_thinking", "detect_language", "fold_hash"])
        .collect()
}

/// A verifier column as a scalar function.
#[derive(Debug)]
struct VerifierUdf {
    name: &'static str,
    verifier: Arc<dyn Verifier>,
    output: Output,
    signature: Signature,
}

impl VerifierUdf {
    fn new(f: &SqlFunction, verifier: Arc<dyn Verifier>) -> Self {
        let signature = Signature::one_of(
            f.arities.iter().map(|&n| TypeSignature::Any(n)).collect(),
            Volatility::Immutable,
        );
        Self {
            name: f.name,
            verifier,
            output: f.output,
            signature,
        }
    }
}

impl PartialEq for VerifierUdf {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for VerifierUdf {}

impl Hash for VerifierUdf {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

fn utf8(value: &ColumnarValue, rows: usize) -> Result<StringArray> {
    let array = value.to_array(rows)?;
    let text = cast(&array, &DataType::Utf8)?;
    Ok(text.as_string::<i32>().clone())
}

impl ScalarUDFImpl for VerifierUdf {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(match self.output {
            Output::Score | Output::Error => DataType::Float64,
            Output::Pred => DataType::Utf8,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let responses = utf8(&args.args[0], rows)?;
        // Extraction needs no gold: score against an empty one and keep `pred`.
        let (gold, metadata) = match (self.output, args.args.len()) {
            (Output::Pred, 1) => (StringArray::from(vec![""; rows]), None),
            (Output::Pred, 2) => (
                StringArray::from(vec![""; rows]),
                Some(utf8(&args.args[1], rows)?),
            ),
            (_, 2) => (utf8(&args.args[1], rows)?, None),
            (_, 3) => (utf8(&args.args[1], rows)?, Some(utf8(&args.args[2], rows)?)),
            (_, n) => return exec_err!("{}: unexpected {n} arguments", self.name),
        };
        let verdicts = verify_batch(self.verifier.as_ref(), &responses, &gold, metadata.as_ref());
        let out: ArrayRef = match self.output {
            Output::Score => Arc::new(verdicts.score),
            Output::Pred => Arc::new(verdicts.pred),
            Output::Error => Arc::new(verdicts.error),
        };
        Ok(ColumnarValue::Array(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::SessionContext;

    async fn query(sql: &str) -> String {
        let ctx = SessionContext::new();
        for f in udfs() {
            ctx.register_udf(f);
        }
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        arrow::util::pretty::pretty_format_batches(&batches)
            .unwrap()
            .to_string()
    }

    #[tokio::test]
    async fn functions_work_on_literals_and_columns() {
        let out = query(
            "SELECT mcq_verify(r, 'C') AS s, mcq_extract(r) AS p, strip_thinking(r) AS f \
             FROM (VALUES ('<think>A?</think>The answer is (C).'), ('<think>B'), (NULL)) AS t(r)",
        )
        .await;
        assert!(out.contains("| 1.0 | C | The answer is (C). |"), "{out}");
        assert!(out.contains("| 0.0 |   |                    |"), "{out}");
        let out = query(
            "SELECT numeric_verify('<answer>3</answer>', '3.0') AS v, \
             numeric_error('<answer>3.5</answer>', '3') AS e, numeric_extract('x = 2.5') AS p, \
             mcq_verify('Saturn', 'C', '{\"choices\": [\"Earth\", \"Mars\", \"Saturn\"]}') AS m",
        )
        .await;
        assert!(out.contains("| 1.0 | 0.5 | 2.5 | 1.0 |"), "{out}");
    }
}
