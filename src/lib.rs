//! The workspace's root package: examples, behaviour tests and benchmarks of `resilience-core`.
//! Code shared by the examples and their tests lives here.
//!
//! The main example imports molecule records from a [flaky service](flaky_service) on loopback
//! into a SQLite [store] with the [importer]; [`cli`] is its command line, shared by
//! `cargo run --example importer` and the `importer-cli` binary the tests run as a child process.
//! [`fleet`] runs several importer processes against one service, with breakers of their own
//! or shared through Redis (`cargo run --example fleet`).

pub mod cli;
pub mod flaky_service;
pub mod fleet;
pub mod importer;
pub mod jitter_sim;
pub mod retry_storm;
pub mod store;
