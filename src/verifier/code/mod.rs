//! The pure parts of verifying code by running it: the program a response
//! gives ([`extract`]), the tests a prompt's gold holds in the shapes code
//! datasets use ([`suite`]), the runs that test a program and the status
//! each gives a test ([`harness`]), and how a program's output is compared
//! with a test's ([`compare`]). No I/O here: running a program belongs to
//! [`crate::sandbox`].

pub mod compare;
pub mod extract;
pub mod harness;
pub mod suite;

pub use compare::Compare;
pub use extract::{Extracted, program};
pub use suite::{Shape, Suite, Test};
