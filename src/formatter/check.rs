//! The check of the `formatter` section: each item names a built-in or a
//! `.sql` file, sets what its built-in needs (`k`) and only the keys it
//! reads, with thresholds and rates in range.

use crate::config::{Config, FormatterConfig, SectionError};

use super::BUILTINS;

/// Checks every `formatter` item of `c`; the first error names its key
/// (`formatter.N.KEY`).
pub fn check_section(c: &Config) -> Result<(), SectionError> {
    c.formatter
        .iter()
        .enumerate()
        .try_for_each(|(i, f)| check_item(i, f))
}

/// Checks item `i`: its type, the keys its built-in needs and reads, and
/// their ranges.
fn check_item(i: usize, f: &FormatterConfig) -> Result<(), SectionError> {
    let invalid = |key: String, message: String| SectionError::new(key, message);
    let key = |k: &str| format!("formatter.{i}.{k}");
    let builtin = super::builtin(&f.kind);
    if builtin.is_none() && !f.kind.ends_with(".sql") {
        let names: Vec<&str> = BUILTINS.iter().map(|b| b.name).collect();
        return Err(invalid(
            key("type"),
            format!(
                "`{}` is neither a built-in formatter ({}) nor a path to a .sql file",
                f.kind,
                names.join(", ")
            ),
        ));
    }
    if builtin.is_some_and(|b| b.requires_k) && f.k.is_none() {
        // k was never set: the place to name is where the type was chosen.
        return Err(SectionError {
            key: key("k"),
            message: format!(
                "{} needs k, the number of responses per prompt: add {}=N",
                f.kind,
                key("k")
            ),
            origin_of: Some(key("type")),
        });
    }
    if let Some(m) = f.max_similarity {
        if !builtin.is_some_and(|b| b.several) {
            let several: Vec<&str> = BUILTINS
                .iter()
                .filter(|b| b.several)
                .map(|b| b.name)
                .collect();
            return Err(invalid(
                key("max_similarity"),
                format!(
                    "{} picks one response per prompt (or pairs): max_similarity applies to {}",
                    f.kind,
                    several.join(" and ")
                ),
            ));
        }
        if !(m > 0.0 && m < 1.0) {
            return Err(invalid(
                key("max_similarity"),
                format!(
                    "{m} is outside (0, 1): the Jaccard similarity of word 3-grams above which a response is a near-copy"
                ),
            ));
        }
    }
    if let Some(name) = &f.name
        && !crate::store::rollout::is_valid_label(name)
    {
        return Err(invalid(
            key("name"),
            format!("`{name}` must be a file name of letters, digits, `.`, `_` or `-`"),
        ));
    }
    let uses_fail = builtin.is_none_or(|b| b.uses_fail);
    if let (Some(fail), Some(pass)) = (f.fail_threshold, f.pass_threshold)
        && uses_fail
        && fail > pass
        && f.min_margin.is_none()
    {
        return Err(invalid(
            key("fail_threshold"),
            format!(
                "{fail} is above pass_threshold ({pass}): a response could both pass and fail (for rewards, set min_margin: chosen and rejected then differ by at least that)"
            ),
        ));
    }
    for (name, rate) in [
        ("min_pass_rate", f.min_pass_rate),
        ("max_pass_rate", f.max_pass_rate),
    ] {
        if let Some(r) = rate
            && !(0.0..=1.0).contains(&r)
        {
            return Err(invalid(key(name), format!("{r} is outside 0..=1")));
        }
    }
    if let (Some(lo), Some(hi)) = (f.min_pass_rate, f.max_pass_rate)
        && lo > hi
    {
        return Err(invalid(
            key("min_pass_rate"),
            format!("{lo} is above max_pass_rate ({hi}): no prompt could pass the filter"),
        ));
    }
    Ok(())
}
