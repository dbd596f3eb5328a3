//! rsr: rejection sampling recipes.
//!
//! Turns a prompt set into verified training data: prompts are prepared into
//! Parquet, sampled from an OpenAI-compatible server, scored by verifiers and
//! formatted for trainers, with every input, rollout and score kept in the
//! work dir so later questions are answered with SQL instead of inference.

pub mod analyze;
pub mod cmd;
pub mod config;
pub mod data;
pub mod execute;
pub mod formatter;
pub mod hygiene;
pub mod judge;
pub mod logging;
pub mod pipeline;
pub mod sampler;
pub mod sandbox;
pub mod scoring;
pub mod sql;
pub mod store;
pub mod verifier;
pub mod view;
