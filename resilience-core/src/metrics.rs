//! Per-operation figures: calls, attempts, retries, waits, rejections.

use crate::ErrorCategory;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Buckets of the attempts-per-call histogram: 1, 2, … up to this many; more land in the last.
pub const ATTEMPT_BUCKETS: usize = 10;

/// The figures of one (component, operation).
#[derive(Debug, Default)]
pub struct OperationMetrics {
    calls_succeeded_first_try: AtomicU64,
    successes_after_retry: AtomicU64,
    failures: AtomicU64,
    non_retryable: AtomicU64,
    rejected: AtomicU64,
    attempts_after_first: AtomicU64,
    retries: AtomicU64,
    wait_nanos: AtomicU64,
    histogram: [AtomicU64; ATTEMPT_BUCKETS],
    failures_by_category: [AtomicU64; ErrorCategory::ALL.len()],
}

impl OperationMetrics {
    /// A call succeeded after `attempts` attempts.
    #[inline]
    pub(crate) fn record_success(&self, attempts: u32) {
        if attempts <= 1 {
            self.calls_succeeded_first_try
                .fetch_add(1, Ordering::Relaxed);
        } else {
            self.successes_after_retry.fetch_add(1, Ordering::Relaxed);
            self.record_attempts(attempts);
        }
    }

    /// A call ended in an error after `attempts` attempts (0: rejected before any).
    pub(crate) fn record_failure(&self, attempts: u32, retryable: bool, rejected: bool) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        if !retryable {
            self.non_retryable.fetch_add(1, Ordering::Relaxed);
        }
        if rejected {
            self.rejected.fetch_add(1, Ordering::Relaxed);
        }
        if attempts > 0 {
            self.record_attempts(attempts);
        }
    }

    /// An attempt failed with an error of `category`.
    pub(crate) fn record_attempt_failure(&self, category: ErrorCategory) {
        self.failures_by_category[category.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// A retry was scheduled after waiting `delay`.
    pub(crate) fn record_retry(&self, delay: Duration) {
        self.retries.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(delay.as_nanos()).unwrap_or(u64::MAX);
        self.wait_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    fn record_attempts(&self, attempts: u32) {
        self.attempts_after_first
            .fetch_add(u64::from(attempts - 1), Ordering::Relaxed);
        let bucket = (attempts as usize).clamp(1, ATTEMPT_BUCKETS) - 1;
        self.histogram[bucket].fetch_add(1, Ordering::Relaxed);
    }

    /// The figures as of now.
    pub fn snapshot(&self) -> OperationSnapshot {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let first_try = load(&self.calls_succeeded_first_try);
        let successes = first_try + load(&self.successes_after_retry);
        let failures = load(&self.failures);
        let calls = successes + failures;
        let mut attempts_histogram: Vec<u64> = self.histogram.iter().map(load).collect();
        attempts_histogram[0] += first_try;
        let attempts_total: u64 =
            attempts_histogram.iter().sum::<u64>() + load(&self.attempts_after_first);
        OperationSnapshot {
            calls,
            successes,
            failures,
            attempts: attempts_total,
            retries: load(&self.retries),
            rejected: load(&self.rejected),
            non_retryable: load(&self.non_retryable),
            wait_seconds: load(&self.wait_nanos) as f64 / 1e9,
            success_rate: if calls == 0 {
                0.0
            } else {
                successes as f64 / calls as f64
            },
            attempts_histogram,
            failures_by_category: ErrorCategory::ALL
                .iter()
                .filter_map(|c| {
                    let n = load(&self.failures_by_category[c.index()]);
                    (n > 0).then(|| (c.as_str().to_owned(), n))
                })
                .collect(),
        }
    }
}

/// The figures of one operation at one moment.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OperationSnapshot {
    /// Calls that ended (successes + failures).
    pub calls: u64,
    /// Calls that returned `Ok`.
    pub successes: u64,
    /// Calls that returned `Err`.
    pub failures: u64,
    /// Attempts made, all calls together.
    pub attempts: u64,
    /// Retries scheduled.
    pub retries: u64,
    /// Calls the breaker stopped.
    pub rejected: u64,
    /// Calls that ended on a non-retryable error.
    pub non_retryable: u64,
    /// Time spent waiting between attempts, in seconds.
    pub wait_seconds: f64,
    /// successes / calls (0 before any call).
    pub success_rate: f64,
    /// Calls by number of attempts: index 0 is one attempt; the last bucket holds the rest.
    pub attempts_histogram: Vec<u64>,
    /// Failed attempts by category.
    pub failures_by_category: BTreeMap<String, u64>,
}

/// Every operation's figures, keyed `"component:operation"`; serialises as a JSON object.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(transparent)]
pub struct MetricsSnapshot {
    /// The figures by key.
    pub operations: BTreeMap<String, OperationSnapshot>,
}

impl MetricsSnapshot {
    /// The figures of one operation.
    pub fn get(&self, component: &str, operation: &str) -> Option<&OperationSnapshot> {
        self.operations.get(&format!("{component}:{operation}"))
    }
}

/// The metrics of every operation of a manager.
#[derive(Debug, Default)]
pub(crate) struct MetricsRegistry {
    operations: RwLock<HashMap<String, HashMap<String, Arc<OperationMetrics>>>>,
}

impl MetricsRegistry {
    pub(crate) fn get(&self, component: &str, operation: &str) -> Arc<OperationMetrics> {
        if let Some(m) = self
            .operations
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(component)
            .and_then(|ops| ops.get(operation))
        {
            return Arc::clone(m);
        }
        let mut map = self.operations.write().unwrap_or_else(|p| p.into_inner());
        Arc::clone(
            map.entry(component.to_owned())
                .or_default()
                .entry(operation.to_owned())
                .or_default(),
        )
    }

    pub(crate) fn snapshot(&self) -> MetricsSnapshot {
        let map = self.operations.read().unwrap_or_else(|p| p.into_inner());
        MetricsSnapshot {
            operations: map
                .iter()
                .flat_map(|(c, ops)| {
                    ops.iter()
                        .map(move |(o, m)| (format!("{c}:{o}"), m.snapshot()))
                })
                .collect(),
        }
    }
}
