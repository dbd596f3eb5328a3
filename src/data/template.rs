//! Prompt templates: `data.prompt_template` builds each prompt's user
//! message from the fields of its input row (`{question}`), and
//! `data.system_prompt` puts a system message first, at prepare time, so
//! the stored `messages` are exactly what is sent.
//!
//! A template is literal text with `{name}` references to input columns
//! (letters, digits and `_`, not starting with a digit). Braces that do not
//! hold such a name stay as they are, so `\boxed{}` needs no escaping;
//! `{{` and `}}` write a literal brace where a name would otherwise be read
//! (`\frac{{a}}{{b}}`).

use arrow::array::{Array, StringArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Schema};
use arrow::record_batch::RecordBatch;

/// One piece of a template.
#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    /// A column, by name and index in the input schema.
    Field(String, usize),
}

/// A parsed `data.prompt_template`.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
}

impl Template {
    /// Parses `text` against the input's columns; an unknown `{name}` is an
    /// error that lists the columns.
    pub fn parse(text: &str, schema: &Schema) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(c) = rest.chars().next() {
            if let Some(after) = rest.strip_prefix("{{") {
                literal.push('{');
                rest = after;
                continue;
            }
            if let Some(after) = rest.strip_prefix("}}") {
                literal.push('}');
                rest = after;
                continue;
            }
            if c == '{'
                && let Some(end) = rest.find('}')
                && is_name(&rest[1..end])
            {
                let name = &rest[1..end];
                let index = schema.index_of(name).map_err(|_| {
                    format!(
                        "data.prompt_template: no column `{name}` in the input (columns: {}); write {{{{ and }}}} for literal braces",
                        super::validate::column_names(schema)
                    )
                })?;
                if !literal.is_empty() {
                    parts.push(Part::Text(std::mem::take(&mut literal)));
                }
                parts.push(Part::Field(name.to_string(), index));
                rest = &rest[end + 1..];
                continue;
            }
            literal.push(c);
            rest = &rest[c.len_utf8()..];
        }
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        Ok(Self { parts })
    }

    /// The columns the template reads.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Field(name, _) => Some(name.as_str()),
            Part::Text(_) => None,
        })
    }

    /// Renders every row of `batch`; a row whose field is null gets `Err`
    /// with the field's name.
    pub fn render(&self, batch: &RecordBatch) -> Result<Vec<Result<String, String>>, String> {
        let columns: Vec<Option<StringArray>> = self
            .parts
            .iter()
            .map(|p| match p {
                Part::Field(name, i) => cast(batch.column(*i), &DataType::Utf8)
                    .map(|a| Some(a.as_any().downcast_ref::<StringArray>().cloned().expect("utf8")))
                    .map_err(|_| {
                        format!(
                            "data.prompt_template: column `{name}` ({}) cannot be written as text; map it to a string in a transform",
                            batch.schema().field(*i).data_type()
                        )
                    }),
                Part::Text(_) => Ok(None),
            })
            .collect::<Result<_, _>>()?;
        let mut out = Vec::with_capacity(batch.num_rows());
        for row in 0..batch.num_rows() {
            let mut s = String::new();
            let mut missing = None;
            for (part, column) in self.parts.iter().zip(&columns) {
                match (part, column) {
                    (Part::Text(t), _) => s.push_str(t),
                    (Part::Field(name, _), Some(c)) if c.is_null(row) => {
                        missing.get_or_insert_with(|| name.clone());
                    }
                    (Part::Field(_, _), Some(c)) => s.push_str(c.value(row)),
                    (Part::Field(_, _), None) => unreachable!("fields have columns"),
                }
            }
            out.push(match missing {
                Some(name) => Err(format!("`{name}` is null; data.prompt_template needs it")),
                None => Ok(s),
            });
        }
        Ok(out)
    }
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Int64Array};
    use arrow::datatypes::Field;

    use super::*;

    fn batch() -> RecordBatch {
        let q: ArrayRef = Arc::new(StringArray::from(vec![Some("What is 2+2?"), None]));
        let n: ArrayRef = Arc::new(Int64Array::from(vec![3, 4]));
        RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("question", DataType::Utf8, true),
                Field::new("n", DataType::Int64, false),
            ])),
            vec![q, n],
        )
        .unwrap()
    }

    #[test]
    fn fields_are_filled_and_latex_braces_stay() {
        let b = batch();
        let t = Template::parse(
            "{question} ({n} marks)\nPut the final answer in \\boxed{}. {{n}} \\frac{1}{2}",
            &b.schema(),
        )
        .unwrap();
        assert_eq!(t.fields().collect::<Vec<_>>(), ["question", "n"]);
        let rows = t.render(&b).unwrap();
        assert_eq!(
            rows[0].as_ref().unwrap(),
            "What is 2+2? (3 marks)\nPut the final answer in \\boxed{}. {n} \\frac{1}{2}"
        );
        assert_eq!(
            rows[1].as_ref().unwrap_err(),
            "`question` is null; data.prompt_template needs it"
        );
    }

    #[test]
    fn an_unknown_field_lists_the_columns() {
        let err = Template::parse("Solve {problem}", &batch().schema()).unwrap_err();
        assert!(
            err.contains("no column `problem`") && err.contains("columns: question, n"),
            "{err}"
        );
    }
}
