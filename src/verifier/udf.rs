//! The verifiers as DataFusion scalar functions, for `rsr sql`:
//!
//! | function | returns |
//! |---|---|
//! | `math_verify(response, answer)` | score (1.0 / 0.0) |
//! | `extract_answer(response)` | the stated math answer |
//! | `mcq_verify(response, answer [, metadata])` | score (1.0 / 0.0) |
//! | `mcq_extract(response [, metadata])` | the stated option letter(s) |
//! | `numeric_verify(response, answer)` | 1.0 when the numbers are equal |
//! | `numeric_error(response, answer)` | absolute error |
//! | `numeric_extract(response)` | the stated number, as text |
//! | `strip_thinking(response)` | the final part (null when thinking never closed) |
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

use super::{Verifier, math, mcq, numeric, split, verify_batch};

/// Which column of the verdict a function returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Output {
    Score,
    Pred,
    Error,
}

/// Every verifier function, for registration in a SQL session.
pub fn udfs() -> Vec<ScalarUDF> {
    let math: Arc<dyn Verifier> = Arc::new(math::MathRlvr::default());
    let mcq: Arc<dyn Verifier> = Arc::new(mcq::Mcq);
    let numeric: Arc<dyn Verifier> = Arc::new(numeric::Numeric::default());
    vec![
        VerifierUdf::new("math_verify", math.clone(), Output::Score, &[2]),
        VerifierUdf::new("extract_answer", math, Output::Pred, &[1]),
        VerifierUdf::new("mcq_verify", mcq.clone(), Output::Score, &[2, 3]),
        VerifierUdf::new("mcq_extract", mcq, Output::Pred, &[1, 2]),
        VerifierUdf::new("numeric_verify", numeric.clone(), Output::Score, &[2]),
        VerifierUdf::new("numeric_error", numeric.clone(), Output::Error, &[2]),
        VerifierUdf::new("numeric_extract", numeric, Output::Pred, &[1]),
    ]
    .into_iter()
    .map(ScalarUDF::from)
    .chain([ScalarUDF::from(StripThinking::new())])
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
    fn new(
        name: &'static str,
        verifier: Arc<dyn Verifier>,
        output: Output,
        arities: &[usize],
    ) -> Self {
        let signature = Signature::one_of(
            arities.iter().map(|&n| TypeSignature::Any(n)).collect(),
            Volatility::Immutable,
        );
        Self {
            name,
            verifier,
            output,
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

/// `strip_thinking(response)`: the final part of a response.
#[derive(Debug, PartialEq, Eq, Hash)]
struct StripThinking {
    signature: Signature,
}

impl StripThinking {
    fn new() -> Self {
        Self {
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for StripThinking {
    fn name(&self) -> &str {
        "strip_thinking"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let responses = utf8(&args.args[0], args.number_rows)?;
        let out: StringArray = responses
            .iter()
            .map(|r| r.and_then(|r| split::split(r).final_part()))
            .collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
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
