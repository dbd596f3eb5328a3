//! Building blocks of the math verifier. [`expr`] parses and compares
//! expressions; extraction, normalization and answer structures (intervals,
//! tuples, sets, matrices) build on it.

pub mod answer;
pub mod expr;
pub mod normalize;
