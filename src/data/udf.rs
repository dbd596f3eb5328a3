//! SQL functions available to transforms: helpers that turn common data-set
//! shapes into prompts.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, StringArray, StringBuilder};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field};
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// The functions registered in the `prepare` session.
pub fn transform_udfs() -> Vec<ScalarUDF> {
    vec![
        ScalarUDF::from(FormatChoices::new()),
        ScalarUDF::from(IfevalConstraints::new()),
    ]
}

/// `ifeval_constraints(prompt, key, max, seed)`: the prompt with 1 to `max`
/// IFEval instructions attached, drawn from `key` and `seed`
/// ([`crate::verifier::ifeval::generate::constrain`]), as a struct of
/// `prompt` (the text) and `gold` (the ids and kwargs as JSON). `prompt` is
/// text, or chat messages (a list of `{role, content}`, or its JSON text):
/// then the last user turn's content.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct IfevalConstraints {
    signature: Signature,
}

impl IfevalConstraints {
    fn new() -> Self {
        Self {
            signature: Signature::any(4, Volatility::Immutable),
        }
    }

    fn fields() -> arrow::datatypes::Fields {
        vec![
            Field::new("prompt", DataType::Utf8, true),
            Field::new("gold", DataType::Utf8, true),
        ]
        .into()
    }
}

impl ScalarUDFImpl for IfevalConstraints {
    fn name(&self) -> &str {
        "ifeval_constraints"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Struct(Self::fields()))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = args.number_rows;
        let text = |i: usize| -> Result<ArrayRef> {
            Ok(cast(&args.args[i].to_array(n)?, &DataType::Utf8)?)
        };
        let number = |i: usize| -> Result<ArrayRef> {
            Ok(cast(&args.args[i].to_array(n)?, &DataType::UInt64)?)
        };
        let prompts = last_user_turns(&args.args[0].to_array(n)?)?;
        let keys = text(1)?;
        let (maxes, seeds) = (number(2)?, number(3)?);
        let keys = keys.as_string::<i32>();
        let maxes = maxes.as_primitive::<arrow::datatypes::UInt64Type>();
        let seeds = seeds.as_primitive::<arrow::datatypes::UInt64Type>();
        let mut out_prompts = StringBuilder::new();
        let mut out_golds = StringBuilder::new();
        for (i, prompt) in prompts.iter().enumerate() {
            let Some(prompt) = prompt
                .as_deref()
                .filter(|_| !(keys.is_null(i) || maxes.is_null(i) || seeds.is_null(i)))
            else {
                out_prompts.append_null();
                out_golds.append_null();
                continue;
            };
            if maxes.value(i) == 0 {
                return exec_err!(
                    "ifeval_constraints: the most instructions per prompt must be ≥ 1"
                );
            }
            let (prompt, gold) = crate::verifier::ifeval::generate::constrain(
                prompt,
                keys.value(i),
                maxes.value(i) as usize,
                seeds.value(i),
            );
            out_prompts.append_value(prompt);
            out_golds.append_value(gold);
        }
        let columns: Vec<ArrayRef> =
            vec![Arc::new(out_prompts.finish()), Arc::new(out_golds.finish())];
        Ok(ColumnarValue::Array(Arc::new(
            arrow::array::StructArray::new(Self::fields(), columns, None),
        )))
    }
}

/// `format_choices(options)`: a list of option texts (an Arrow list, or a
/// JSON array in text) as lettered lines `A. …\nB. …`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct FormatChoices {
    signature: Signature,
}

impl FormatChoices {
    fn new() -> Self {
        Self {
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for FormatChoices {
    fn name(&self) -> &str {
        "format_choices"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let array = args.args[0].to_array(args.number_rows)?;
        Ok(ColumnarValue::Array(format_choices(&array)?))
    }
}

/// The prompt text of each row: the text itself, or the content of the last
/// user turn of chat messages (an Arrow list of structs, or JSON text).
fn last_user_turns(array: &ArrayRef) -> Result<Vec<Option<String>>> {
    let last_user = |messages: &[serde_json::Value]| {
        messages
            .iter()
            .rev()
            .find(|m| m.get("role").and_then(|r| r.as_str()) == Some("user"))
            .and_then(|m| m.get("content")?.as_str().map(str::to_string))
    };
    if matches!(
        array.data_type(),
        DataType::List(_) | DataType::LargeList(_)
    ) {
        // Through JSON: one path for both shapes.
        let mut buf = Vec::new();
        {
            let batch = arrow::array::RecordBatch::try_from_iter([("m", array.clone())])?;
            let mut writer = arrow::json::LineDelimitedWriter::new(&mut buf);
            writer.write(&batch)?;
            writer.finish()?;
        }
        let text = String::from_utf8_lossy(&buf);
        let mut out = Vec::with_capacity(array.len());
        for line in text.lines() {
            let row: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
            out.push(
                row.get("m")
                    .and_then(|m| m.as_array())
                    .and_then(|m| last_user(m)),
            );
        }
        out.resize(array.len(), None);
        return Ok(out);
    }
    let texts = cast(array, &DataType::Utf8)?;
    let texts = texts.as_string::<i32>();
    Ok((0..texts.len())
        .map(|i| {
            if texts.is_null(i) {
                return None;
            }
            let t = texts.value(i);
            match serde_json::from_str::<serde_json::Value>(t) {
                Ok(serde_json::Value::Array(messages)) if t.trim_start().starts_with('[') => {
                    last_user(&messages)
                }
                _ => Some(t.to_string()),
            }
        })
        .collect())
}

fn format_choices(array: &ArrayRef) -> Result<ArrayRef> {
    let mut out = StringBuilder::new();
    match array.data_type() {
        DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(_, _) => {
            let target = DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)));
            let lists = cast(array, &target)?;
            let lists = lists.as_list::<i32>();
            for row in 0..lists.len() {
                if lists.is_null(row) {
                    out.append_null();
                    continue;
                }
                let items = lists.value(row);
                let items = items.as_string::<i32>();
                let texts = (0..items.len()).map(|i| items.value(i).to_string());
                out.append_value(lettered(texts));
            }
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null => {
            let text = cast(array, &DataType::Utf8)?;
            let text: &StringArray = text.as_string::<i32>();
            for row in 0..text.len() {
                if text.is_null(row) {
                    out.append_null();
                    continue;
                }
                let Ok(serde_json::Value::Array(items)) =
                    serde_json::from_str::<serde_json::Value>(text.value(row))
                else {
                    return exec_err!(
                        "format_choices: expected a list of options (or a JSON array), got `{}`",
                        text.value(row)
                    );
                };
                let texts = items.into_iter().map(|v| match v {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                });
                out.append_value(lettered(texts));
            }
        }
        other => return exec_err!("format_choices: expected a list of options, got {other}"),
    }
    Ok(Arc::new(out.finish()))
}

/// `A. first\nB. second…`; past Z the letters continue as AA, AB, ….
fn lettered(options: impl Iterator<Item = String>) -> String {
    options
        .enumerate()
        .map(|(i, text)| format!("{}. {}", option_letter(i), text.trim()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The letter of the `i`-th option (0 → A).
pub fn option_letter(i: usize) -> String {
    let mut i = i;
    let mut s = Vec::new();
    loop {
        s.push(b'A' + (i % 26) as u8);
        if i < 26 {
            break;
        }
        i = i / 26 - 1;
    }
    s.reverse();
    String::from_utf8(s).expect("ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::ListBuilder;

    #[test]
    fn letters() {
        assert_eq!(option_letter(0), "A");
        assert_eq!(option_letter(25), "Z");
        assert_eq!(option_letter(26), "AA");
    }

    #[test]
    fn formats_lists_and_json_text_alike() {
        let mut b = ListBuilder::new(StringBuilder::new());
        b.values().append_value("red");
        b.values().append_value(" blue ");
        b.append(true);
        b.append(false);
        let list: ArrayRef = Arc::new(b.finish());
        let got = format_choices(&list).unwrap();
        let got = got.as_string::<i32>();
        assert_eq!(got.value(0), "A. red\nB. blue");
        assert!(got.is_null(1));

        let text: ArrayRef = Arc::new(StringArray::from(vec![Some(r#"["red", 2]"#), None]));
        let got = format_choices(&text).unwrap();
        assert_eq!(got.as_string::<i32>().value(0), "A. red\nB. 2");
        let bad: ArrayRef = Arc::new(StringArray::from(vec!["red"]));
        assert!(format_choices(&bad).is_err());
    }
}
