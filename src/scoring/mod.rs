//! The scoring registry: every kind of verifier a run can name, and the
//! answers to what the other layers ask of one (does it score inline, does
//! it need gold, what label do its scores carry, how is a saved run
//! scored). No other module tests `verifier.type`.
//!
//! Three families: rule verifiers ([`crate::verifier`], pure functions that
//! score each response while sampling), model verifiers ([`crate::judge`]:
//! a judge or a reward model, asked while sampling as a stage beside it,
//! [`crate::judge::live`], their scores file written by the [`judge`] step
//! after it) and the [`majority`] vote (a prompt's label needs all its
//! rollouts), and code run in the sandbox ([`crate::execute`], a stage
//! of sampling like the judge).
//! [`rescore`] scores a saved run again with a rule verifier.
//!
//! A new kind of verifier is one more [`Family`] (or an entry of an
//! existing family's list) and one more arm in [`Scoring`].

pub mod judge;
pub mod majority;
pub mod rescore;

use std::sync::Arc;

use crate::config::{Config, SectionError, VerifierConfig};
use crate::judge::Spec;
use crate::verifier::{Verifier, VerifierError};

/// The families of verifiers, by how and when they score.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// A rule verifier: scores each response inline, while sampling.
    Rule,
    /// A judge or reward model: asked while sampling, through the judge
    /// server; its scores file is written after sampling.
    Model,
    /// The majority vote: labels a prompt from all its rollouts, after
    /// sampling.
    Majority,
    /// Code run in the sandbox against the prompt's tests: while sampling,
    /// as a stage beside it; its scores file written after sampling.
    Code,
}

impl Family {
    /// The family of verifier `name`; `None` for a name rsr does not know.
    pub fn of(name: &str) -> Option<Self> {
        if crate::verifier::REGISTRY.iter().any(|e| e.name == name) {
            Some(Family::Rule)
        } else if crate::judge::KINDS.iter().any(|(k, _)| *k == name) {
            Some(Family::Model)
        } else if name == majority::NAME {
            Some(Family::Majority)
        } else if name == crate::execute::NAME {
            Some(Family::Code)
        } else {
            None
        }
    }

    /// Whether this family's verdicts are written after sampling (in
    /// `scores/<label>/` only) instead of inline in the rollout rows.
    pub fn scores_after_sampling(self) -> bool {
        self != Family::Rule
    }

    /// Whether its verdicts reach the step policy while sampling, so that
    /// early stop can end a prompt before `max_rollouts`: inline for rules,
    /// as a stage of sampling for models; a vote needs every rollout.
    pub fn early_stops(self) -> bool {
        self != Family::Majority
    }
}

/// Whether verifier `kind` scores after sampling ([`Family::scores_after_sampling`]).
/// Reads the name only: a saved run's config is not checked again.
pub fn scored_after_sampling(kind: &str) -> bool {
    Family::of(kind).is_some_and(Family::scores_after_sampling)
}

/// A run's verifier, built once from its `verifier` section (options read,
/// a judge template file read).
#[derive(Clone)]
pub enum Scoring {
    /// A rule verifier.
    Rule(Arc<dyn Verifier>),
    /// A judge or reward model.
    Model(Spec),
    /// The majority vote.
    Majority(majority::Options),
    /// Code run in the sandbox.
    Code(crate::execute::CodeSpec),
}

impl std::fmt::Debug for Scoring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scoring::Rule(v) => write!(f, "Rule({})", v.name()),
            Scoring::Model(spec) => write!(f, "Model({spec:?})"),
            Scoring::Majority(o) => write!(f, "Majority({o:?})"),
            Scoring::Code(spec) => write!(f, "Code({spec:?})"),
        }
    }
}

impl Scoring {
    /// Builds the verifier `vc` names; an unknown name lists every known one.
    pub fn build(vc: &VerifierConfig) -> Result<Self, VerifierError> {
        match Family::of(&vc.kind) {
            Some(Family::Rule) => crate::verifier::build(&vc.kind, &vc.options).map(Scoring::Rule),
            Some(Family::Model) => Spec::from_config(vc).map(Scoring::Model),
            Some(Family::Majority) => majority::Options::read(&vc.options).map(Scoring::Majority),
            Some(Family::Code) => {
                crate::execute::CodeSpec::from_options(&vc.options).map(Scoring::Code)
            }
            None => Err(VerifierError::Unknown {
                name: vc.kind.clone(),
                known: known_names(),
            }),
        }
    }

    /// The verifier's family.
    pub fn family(&self) -> Family {
        match self {
            Scoring::Rule(_) => Family::Rule,
            Scoring::Model(_) => Family::Model,
            Scoring::Majority(_) => Family::Majority,
            Scoring::Code(_) => Family::Code,
        }
    }

    /// The rule verifier that scores while sampling; `None` when the
    /// verdicts come after sampling.
    pub fn inline(&self) -> Option<Arc<dyn Verifier>> {
        match self {
            Scoring::Rule(v) => Some(Arc::clone(v)),
            _ => None,
        }
    }

    /// The model verifier's options, for the judge step.
    pub fn model(&self) -> Option<&Spec> {
        match self {
            Scoring::Model(spec) => Some(spec),
            _ => None,
        }
    }

    /// Whether the verifier compares with a gold answer (a rubric judge, a
    /// reward model and the majority vote need none).
    pub fn needs_gold(&self) -> bool {
        match self {
            Scoring::Rule(v) => v.needs_gold(),
            Scoring::Model(spec) => spec.needs_gold(),
            Scoring::Majority(_) => false,
            Scoring::Code(_) => true,
        }
    }
}

/// The run's verifier from the config's `verifier` section, or the error
/// of the key at fault (`verifier.type`, or the option
/// `verifier.options.KEY`).
pub fn from_section(c: &Config) -> Result<Scoring, SectionError> {
    Scoring::build(&c.verifier).map_err(|e| {
        let key = match &e {
            VerifierError::Option { key, .. } => format!("verifier.options.{key}"),
            VerifierError::Unknown { .. } => "verifier.type".to_string(),
        };
        SectionError::new(key, e.to_string())
    })
}

/// Whether verifier `kind`'s predictions are numbers whose error to the
/// gold is worth reporting (`numeric`: the best-of-N absolute error).
pub fn measures_error(kind: &str) -> bool {
    kind == "numeric"
}

/// The majority vote's line in `rsr verify --list`.
const MAJORITY_DESCRIPTION: &str = "prompts without gold: the majority of their rollouts' answers (math or mcq extractor) is the label, each rollout scores by agreement";

/// Every verifier with what it does: rules, model verifiers, the vote.
pub fn list() -> Vec<(&'static str, &'static str)> {
    crate::verifier::REGISTRY
        .iter()
        .map(|e| (e.name, e.description))
        .chain(crate::judge::KINDS.iter().copied())
        .chain(std::iter::once((majority::NAME, MAJORITY_DESCRIPTION)))
        .chain(std::iter::once((
            crate::execute::NAME,
            crate::execute::DESCRIPTION,
        )))
        .collect()
}

/// Every verifier name, comma-separated, in [`list`]'s order.
pub fn known_names() -> String {
    list()
        .iter()
        .map(|(name, _)| *name)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(kind: &str, options: serde_json::Value) -> VerifierConfig {
        VerifierConfig {
            kind: kind.into(),
            options: options.as_object().cloned().unwrap_or_default(),
            label: None,
        }
    }

    #[test]
    fn every_listed_name_has_one_family_and_builds_with_default_options() {
        for (name, _) in list() {
            let family = Family::of(name).unwrap_or_else(|| panic!("{name} has no family"));
            let built = Scoring::build(&section(name, serde_json::json!({})));
            // A judge's correctness template needs nothing; every kind
            // builds from its defaults.
            let built = built.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(built.family(), family, "{name}");
            assert_eq!(built.inline().is_some(), family == Family::Rule, "{name}");
            assert_eq!(scored_after_sampling(name), family != Family::Rule);
        }
        assert_eq!(Family::of("math"), None);
    }

    #[test]
    fn an_unknown_name_lists_every_known_one_and_an_option_names_its_key() {
        let check = |vc: VerifierConfig| {
            let mut c: Config = serde_yaml_ng::from_str(crate::config::DEFAULT_YAML).unwrap();
            c.verifier = vc;
            from_section(&c).map(|_| ())
        };
        let e = check(section("math", serde_json::json!({}))).unwrap_err();
        assert_eq!(e.key, "verifier.type");
        for (name, _) in list() {
            assert!(
                e.message.contains(name),
                "{name} missing from: {}",
                e.message
            );
        }
        let e = check(section("majority", serde_json::json!({"min_share": 2}))).unwrap_err();
        assert_eq!(e.key, "verifier.options.min_share");
        assert!(e.message.contains("outside (0, 1]"), "{}", e.message);
    }

    #[test]
    fn gold_is_needed_by_rules_that_compare_and_by_correctness_judges_only() {
        let needs = |kind: &str, options| {
            Scoring::build(&section(kind, options))
                .unwrap()
                .needs_gold()
        };
        assert!(needs("math-rlvr", serde_json::json!({})));
        assert!(needs("llm-judge", serde_json::json!({})));
        assert!(!needs(
            "llm-judge",
            serde_json::json!({"template": "rubric"})
        ));
        assert!(!needs("reward-model", serde_json::json!({})));
        assert!(!needs("majority", serde_json::json!({})));
    }
}
