//! The figures as read at one moment: plain values that serialise to JSON.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The figures of one (component, operation) at one moment. Serialised field by field (see
/// `docs/metrics.md` for a full example).
///
/// ```
/// use resilience_core::RetryManager;
/// let manager = RetryManager::new();
/// let _: Result<(), std::io::Error> = manager.execute("api", "get", || Ok(()));
/// let figures = manager.metrics_for("api", "get").unwrap();
/// assert_eq!((figures.calls, figures.successes, figures.attempts), (1, 1, 1));
/// assert_eq!(figures.attempts_histogram[0], 1);
/// assert_eq!(figures.success_rate, 1.0);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OperationSnapshot {
    /// Calls that ended: `successes + failures`.
    pub calls: u64,
    /// Calls that returned `Ok`.
    pub successes: u64,
    /// Calls that failed, whatever the reason (exhausted, non-retryable, deadline, rejected by
    /// the breaker, retry budget empty): they returned `Err`, or an `Ok` value that their
    /// `classify_ok` judged a failure.
    pub failures: u64,
    /// Attempts made by all calls together.
    pub attempts: u64,
    /// Retries scheduled (each one followed by a wait).
    pub retries: u64,
    /// Calls the breaker ended by refusing an attempt (the first or a retry).
    pub rejected: u64,
    /// Calls that ended on an error that is not retried.
    pub non_retryable: u64,
    /// Time scheduled for waiting between attempts, in seconds, all calls together.
    pub wait_seconds: f64,
    /// Calls that ended without the retry they were due because their component's retry
    /// budget was empty (they are among `failures`).
    #[serde(default)]
    pub budget_exhausted: u64,
    /// `successes / calls`; 0 before any call ended.
    pub success_rate: f64,
    /// Calls by attempts made: index `i` counts calls that made `i + 1` attempts, and the last
    /// bucket ([`ATTEMPT_BUCKETS`](crate::ATTEMPT_BUCKETS) attempts) also counts the
    /// calls that made more. Calls rejected before their first attempt are in none.
    pub attempts_histogram: Vec<u64>,
    /// Failed attempts by the category they were classified in (`"network"`, `"timeout"`, …),
    /// retried or not; categories never seen are left out.
    pub failures_by_category: BTreeMap<String, u64>,
    /// Breaker state changes by `"FROM->TO"` (`"CLOSED->OPEN"`, `"OPEN->HALF_OPEN"`, …);
    /// changes never seen are left out.
    pub breaker_transitions: BTreeMap<String, u64>,
}

/// Every operation's figures, keyed `"component:operation"`. Serialises as a JSON object with
/// one [`OperationSnapshot`] per key.
///
/// ```
/// use resilience_core::RetryManager;
/// let manager = RetryManager::new();
/// let _: Result<(), std::io::Error> = manager.execute("db", "ping", || Ok(()));
/// let snapshot = manager.metrics();
/// assert_eq!(snapshot.get("db", "ping").unwrap().calls, 1);
/// let json = serde_json::to_value(&snapshot).unwrap();
/// assert_eq!(json["db:ping"]["successes"], 1);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MetricsSnapshot {
    /// The figures by `"component:operation"`.
    pub operations: BTreeMap<String, OperationSnapshot>,
}

impl MetricsSnapshot {
    /// The figures of one operation, if it has been called (or its handle made).
    ///
    /// ```
    /// use resilience_core::MetricsSnapshot;
    /// assert!(MetricsSnapshot::default().get("api", "get").is_none());
    /// ```
    pub fn get(&self, component: &str, operation: &str) -> Option<&OperationSnapshot> {
        self.operations.get(&key(component, operation))
    }
}

/// The key of an operation in a [`MetricsSnapshot`]: the one key format of status, metrics and
/// configuration.
pub(crate) use crate::policy::key;
