//! The workspace's root package: examples, behaviour tests and benchmarks of `resilience-core`.
//! Code shared by the examples and their tests lives here.

pub mod jitter_sim;
