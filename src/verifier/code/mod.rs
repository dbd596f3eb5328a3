//! The pure parts of verifying code by running it: the program a response
//! gives ([`extract`]), the tests a prompt's gold holds in the shapes code
//! datasets use ([`suite`]), and how a program's output is compared with a
//! test's ([`compare`]). No I/O here: running a program belongs to the
//! sandbox that isolates it.

pub mod compare;
pub mod extract;
pub mod suite;

pub use compare::Compare;
pub use extract::{Extracted, program};
pub use suite::{Shape, Suite, Test};
