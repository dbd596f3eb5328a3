//! The TRL shape as Parquet: `id`, then `messages` (SFT) or `prompt`,
//! `chosen`, `rejected` (pairs), each a `list<struct<role, content,
//! reasoning_content>>`; non-text content is kept as its JSON text; with
//! ids asked for, `rollout_idx` (or `chosen_rollout_idx` and
//! `rejected_rollout_idx`) last. Rows go straight into Arrow builders.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, ListBuilder, RecordBatch, StringBuilder, StructBuilder, UInt64Builder,
};
use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef};
use serde_json::Value;

use super::Turns;

use crate::formatter::Shape;

fn turn_fields() -> Fields {
    Fields::from(vec![
        Field::new("role", DataType::Utf8, true),
        Field::new("content", DataType::Utf8, true),
        Field::new("reasoning_content", DataType::Utf8, true),
    ])
}

fn turn_list() -> DataType {
    DataType::List(Arc::new(Field::new(
        "item",
        DataType::Struct(turn_fields()),
        true,
    )))
}

/// The rollout index columns of rows of `shape`.
pub fn index_names(shape: Shape) -> &'static [&'static str] {
    match shape {
        Shape::Sft => &["rollout_idx"],
        Shape::Pairs => &["chosen_rollout_idx", "rejected_rollout_idx"],
    }
}

/// The file's schema for rows of `shape`, with the rollout indices when
/// `with_ids`.
pub fn schema(shape: Shape, with_ids: bool) -> SchemaRef {
    let mut fields = vec![Field::new("id", DataType::Utf8, true)];
    match shape {
        Shape::Sft => fields.push(Field::new("messages", turn_list(), true)),
        Shape::Pairs => {
            for name in ["prompt", "chosen", "rejected"] {
                fields.push(Field::new(name, turn_list(), true));
            }
        }
    }
    if with_ids {
        for name in index_names(shape) {
            fields.push(Field::new(*name, DataType::UInt64, true));
        }
    }
    Arc::new(Schema::new(fields))
}

/// Rows gathered into one record batch of [`schema`], built from Arrow
/// builders directly.
pub struct Rows {
    schema: SchemaRef,
    id: StringBuilder,
    /// `messages`, or `prompt`, `chosen`, `rejected`.
    lists: Vec<ListBuilder<StructBuilder>>,
    /// The rollout indices, when the schema has them.
    indices: Vec<UInt64Builder>,
}

impl Rows {
    /// Empty rows for `schema`.
    pub fn new(schema: &SchemaRef) -> Self {
        let is_list = |f: &&Arc<Field>| matches!(f.data_type(), DataType::List(_));
        let lists = schema
            .fields()
            .iter()
            .filter(is_list)
            .map(|_| ListBuilder::new(StructBuilder::from_fields(turn_fields(), 0)))
            .collect();
        let indices = schema
            .fields()
            .iter()
            .filter(|f| f.data_type() == &DataType::UInt64)
            .map(|_| UInt64Builder::new())
            .collect();
        Self {
            schema: Arc::clone(schema),
            id: StringBuilder::new(),
            lists,
            indices,
        }
    }

    /// Adds one row: SFT rows as `messages` (the prompt, then the response),
    /// pairs as `prompt`, `chosen`, `rejected`; `indices` fill the rollout
    /// index columns the schema has.
    pub fn push(&mut self, id: &str, turns: Turns, indices: &[Option<u64>]) {
        self.id.append_value(id);
        for (b, v) in self.indices.iter_mut().zip(indices) {
            b.append_option(*v);
        }
        let Turns {
            prompt,
            first,
            second,
        } = turns;
        match second {
            None => {
                let mut messages = prompt;
                messages.push(Value::Object(first));
                append_turns(&mut self.lists[0], &messages);
            }
            Some(rejected) => {
                append_turns(&mut self.lists[0], &prompt);
                append_turns(&mut self.lists[1], &[Value::Object(first)]);
                append_turns(&mut self.lists[2], &[Value::Object(rejected)]);
            }
        }
    }

    /// The rows added since the last call, as a batch.
    pub fn finish(&mut self) -> RecordBatch {
        let mut columns: Vec<ArrayRef> = vec![Arc::new(self.id.finish())];
        columns.extend(
            self.lists
                .iter_mut()
                .map(|l| Arc::new(l.finish()) as ArrayRef),
        );
        columns.extend(
            self.indices
                .iter_mut()
                .map(|b| Arc::new(b.finish()) as ArrayRef),
        );
        RecordBatch::try_new(Arc::clone(&self.schema), columns)
            .expect("the builders follow the schema")
    }
}

/// One list of turns: `role`, `content` and `reasoning_content` as text
/// (non-text content kept as its JSON text).
fn append_turns(list: &mut ListBuilder<StructBuilder>, turns: &[Value]) {
    let turn = list.values();
    for t in turns {
        for (i, key) in ["role", "content", "reasoning_content"]
            .into_iter()
            .enumerate()
        {
            let text = match t.get(key) {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(other) => Some(other.to_string()),
            };
            turn.field_builder::<StringBuilder>(i)
                .expect("turn fields are text")
                .append_option(text);
        }
        turn.append(true);
    }
    list.append(true);
}
