//! The lists the docs give match the code: verifiers, their SQL functions,
//! built-in formatters, shipped transforms and export formats. A name
//! added to the code without its line in the docs (or the other way round)
//! fails here.

use std::collections::BTreeSet;
use std::path::Path;

use clap::ValueEnum;
use rsr::config::ExportFormat;

fn read(rel: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)).unwrap()
}

/// The first cells of the table rows that follow the line `header`, as
/// the text inside their first backticks, up to `(` for function rows.
fn first_column(doc: &str, header: &str) -> BTreeSet<String> {
    let start = doc
        .find(header)
        .unwrap_or_else(|| panic!("no table `{header}`"));
    doc[start..]
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .filter_map(|l| {
            let cell = l.trim_start_matches('|').split('|').next()?.trim();
            let name = cell.strip_prefix('`')?.split(['`', '(']).next()?;
            Some(name.to_string())
        })
        .collect()
}

fn set<'a>(names: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
    names.into_iter().map(str::to_string).collect()
}

#[test]
fn every_verifier_has_its_section_and_config_mention() {
    let verifiers = read("docs/verifiers.md");
    let documented: BTreeSet<String> = verifiers
        .lines()
        .filter_map(|l| l.strip_prefix("## `")?.strip_suffix('`'))
        .map(str::to_string)
        .collect();
    let registered = set(rsr::scoring::list().into_iter().map(|(name, _)| name));
    assert_eq!(documented, registered, "docs/verifiers.md sections");
    let guide = read("docs/guide.md");
    let row = guide
        .lines()
        .find(|l| l.starts_with("| `verifier` |"))
        .expect("the verifier row of the config table");
    for name in &registered {
        assert!(row.contains(name.as_str()), "{name} missing from: {row}");
    }
}

#[test]
fn the_sql_function_table_lists_every_function() {
    let guide = read("docs/guide.md");
    let documented = first_column(&guide, "| function | returns |");
    assert_eq!(
        documented,
        set(rsr::verifier::udf::names()),
        "docs/guide.md"
    );
    let verifiers = read("docs/verifiers.md");
    let in_sql = &verifiers[verifiers.find("## In SQL").unwrap()..];
    let in_sql = &in_sql[..in_sql[3..].find("\n## ").unwrap()];
    for name in rsr::verifier::udf::names() {
        assert!(
            in_sql.contains(name),
            "docs/verifiers.md In SQL lacks {name}"
        );
    }
}

#[test]
fn the_formatter_table_lists_every_builtin() {
    let guide = read("docs/guide.md");
    let mut documented = first_column(&guide, "| formatter | rows per prompt |");
    documented.remove("path/to/file.sql");
    assert_eq!(
        documented,
        set(rsr::formatter::BUILTINS.iter().map(|b| b.name))
    );
}

#[test]
fn the_transform_table_lists_every_shipped_transform() {
    let guide = read("docs/guide.md");
    let documented = first_column(&guide, "| name | input columns | result |");
    let shipped: BTreeSet<String> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("sql/transforms"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "sql"))
            .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
            .collect();
    assert_eq!(documented, shipped);
}

#[test]
fn the_export_table_lists_every_format() {
    let guide = read("docs/guide.md");
    let documented = first_column(&guide, "| `--format` | SFT row | pair row |");
    let formats: BTreeSet<String> = ExportFormat::value_variants()
        .iter()
        .map(|f| f.to_possible_value().unwrap().get_name().to_string())
        .collect();
    assert_eq!(documented, formats);
}
