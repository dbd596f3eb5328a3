//! The TRL shape as Parquet: `id`, then `messages` (SFT) or `prompt`,
//! `chosen`, `rejected` (pairs), each a `list<struct<role, content,
//! reasoning_content>>`; non-text content is kept as its JSON text.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef};
use serde_json::{Value, json};

use super::Turns;

use crate::formatter::Shape;

fn turn_list() -> DataType {
    DataType::List(Arc::new(Field::new(
        "item",
        DataType::Struct(Fields::from(vec![
            Field::new("role", DataType::Utf8, true),
            Field::new("content", DataType::Utf8, true),
            Field::new("reasoning_content", DataType::Utf8, true),
        ])),
        true,
    )))
}

/// The file's schema for rows of `shape`.
pub fn schema(shape: Shape) -> SchemaRef {
    let mut fields = vec![Field::new("id", DataType::Utf8, true)];
    match shape {
        Shape::Sft => fields.push(Field::new("messages", turn_list(), true)),
        Shape::Pairs => {
            for name in ["prompt", "chosen", "rejected"] {
                fields.push(Field::new(name, turn_list(), true));
            }
        }
    }
    Arc::new(Schema::new(fields))
}

/// One row, as the JSON the schema's decoder reads.
pub fn row(id: &str, turns: Turns) -> Value {
    let Turns {
        prompt,
        first,
        second,
    } = turns;
    let flat = |turns: Vec<Value>| -> Vec<Value> {
        turns
            .into_iter()
            .map(|mut t| {
                if let Some(c) = t.get_mut("content")
                    && !c.is_string()
                    && !c.is_null()
                {
                    *c = Value::String(c.to_string());
                }
                t
            })
            .collect()
    };
    match second {
        None => {
            let mut messages = prompt;
            messages.push(Value::Object(first));
            json!({ "id": id, "messages": flat(messages) })
        }
        Some(rejected) => json!({
            "id": id,
            "prompt": flat(prompt),
            "chosen": [Value::Object(first)],
            "rejected": [Value::Object(rejected)],
        }),
    }
}
