//! The `inputs` table contract: the columns of `data/input.parquet`.
//!
//! Validation (`crate::data`) writes the base columns, hygiene
//! (`crate::hygiene`) the flags after them; SQL, the sampler and the
//! formatters read both.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

/// Schema of `data/input.parquet`: the validated columns
/// ([`base_columns`]) then the hygiene flags ([`hygiene_fields`]).
pub fn inputs_schema() -> SchemaRef {
    let mut fields = base_fields();
    fields.extend(hygiene_fields());
    Arc::new(Schema::new(fields))
}

/// The columns validation produces, in order.
pub fn base_columns() -> &'static [&'static str] {
    &["id", "messages", "answer", "metadata", "shard"]
}

/// The fields of [`base_columns`].
pub fn base_fields() -> Vec<Field> {
    vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("messages", DataType::Utf8, false),
        Field::new("answer", DataType::Utf8, true),
        Field::new("metadata", DataType::Utf8, false),
        Field::new("shard", DataType::UInt32, false),
    ]
}

/// The hygiene columns: `contaminated`, `contaminated_by` (`file:line` of
/// the matching benchmark problem), `contamination_ngram` (the shared
/// words), `duplicate_of` (the kept prompt's id) and `duplicate_similarity`
/// (1 for exact copies, the MinHash estimate for near ones).
pub fn hygiene_fields() -> Vec<Field> {
    vec![
        Field::new("contaminated", DataType::Boolean, false),
        Field::new("contaminated_by", DataType::Utf8, true),
        Field::new("contamination_ngram", DataType::Utf8, true),
        Field::new("duplicate_of", DataType::Utf8, true),
        Field::new("duplicate_similarity", DataType::Float64, true),
    ]
}

/// Whether `schema` has every hygiene column (an input prepared before
/// they existed has none).
pub fn has_hygiene_columns(schema: &arrow::datatypes::Schema) -> bool {
    hygiene_fields()
        .iter()
        .all(|f| schema.index_of(f.name()).is_ok())
}
