//! SQL transform files: a path, or the name of a shipped transform.
//!
//! The shipped transforms (`sql/transforms/*.sql`) are compiled in, so
//! `data.preprocess.transform=gsm8k` works from any directory; a path that
//! exists on disk always wins.

use std::path::Path;

use super::DataError;

/// Transforms shipped with rsr: `(name, SQL)`.
pub const BUILTIN: &[(&str, &str)] = &[
    ("gsm8k", include_str!("../../sql/transforms/gsm8k.sql")),
    ("math500", include_str!("../../sql/transforms/math500.sql")),
    ("mcq", include_str!("../../sql/transforms/mcq.sql")),
    (
        "humaneval",
        include_str!("../../sql/transforms/humaneval.sql"),
    ),
    ("apps", include_str!("../../sql/transforms/apps.sql")),
    ("ifeval", include_str!("../../sql/transforms/ifeval.sql")),
    (
        "ifeval_constraints",
        include_str!("../../sql/transforms/ifeval_constraints.sql"),
    ),
];

/// A loaded transform.
#[derive(Debug, Clone)]
pub struct Transform {
    /// The file or built-in name, for messages.
    pub origin: String,
    /// The query.
    pub sql: String,
}

/// Loads a transform from a file, or a shipped one by name (`gsm8k`) or by
/// its path in the source tree (`sql/transforms/gsm8k.sql`).
pub fn load(spec: &Path) -> Result<Transform, DataError> {
    if spec.is_file() {
        let sql = std::fs::read_to_string(spec).map_err(|source| DataError::Io {
            path: spec.to_path_buf(),
            source,
        })?;
        return Ok(Transform {
            origin: spec.display().to_string(),
            sql,
        });
    }
    let name = spec
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    let shipped_path = spec
        .parent()
        .is_none_or(|p| p.as_os_str().is_empty() || p.ends_with("sql/transforms"));
    match BUILTIN.iter().find(|(n, _)| *n == name) {
        Some((n, sql)) if shipped_path => Ok(Transform {
            origin: format!("sql/transforms/{n}.sql"),
            sql: sql.to_string(),
        }),
        _ => Err(DataError::Io {
            path: spec.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!(
                    "data.preprocess.transform: no such SQL file (shipped transforms: {})",
                    BUILTIN
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_transforms_load_by_name_or_path() {
        assert!(load(Path::new("gsm8k")).unwrap().sql.contains("####"));
        let t = load(Path::new("sql/transforms/math500.sql")).unwrap();
        assert!(t.sql.contains("unique_id"));
        let err = load(Path::new("elsewhere/nothing.sql"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("shipped transforms: gsm8k, math500, mcq"),
            "{err}"
        );
    }
}
