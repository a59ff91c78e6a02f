//! Per-operation figures: calls, successes, failures, attempts, retries, rejections, waits,
//! failures by category, attempts per call, breaker transitions.
//!
//! Counting is built for the hot path: a call that succeeds at once costs one plain load and
//! store to its own thread's table (`table`), no lock, no allocation, no clock read. Reading
//! ([`RetryManager::metrics`](crate::RetryManager::metrics)) adds the tables up. With the
//! `metrics` feature the same figures also go to the `metrics` crate facade (`export`).

#[cfg(feature = "metrics")]
mod export;
mod operation;
mod snapshot;
mod table;

pub(crate) use operation::OperationMetrics;
pub use snapshot::{MetricsSnapshot, OperationSnapshot};

/// Buckets of the attempts-per-call histogram
/// ([`OperationSnapshot::attempts_histogram`]): one per attempt count from 1 to this many, the
/// last one also holding the calls that made more.
///
/// ```
/// assert_eq!(resilience_core::ATTEMPT_BUCKETS, 10);
/// ```
pub const ATTEMPT_BUCKETS: usize = 10;
