//! The counters of one (component, operation), written by the attempt driver.
//!
//! The hot path (a call that succeeds at once) is one add to the calling thread's own table: a
//! plain load and store, no locked instruction (see `table.rs`).
//! Nothing that can be derived is counted twice: calls come from the histogram, successes are
//! calls minus failures, attempts are the histogram weighted by its bucket (plus a cold counter
//! for calls past the last bucket).
//!
//! Every sum saturates at `u64::MAX` (see `table.rs`): a figure may stop growing, never wrap.

use super::snapshot::OperationSnapshot;
use super::table::{Counters, HOT};
use super::ATTEMPT_BUCKETS;
use crate::fxhash::FxHashMap;
use crate::{CircuitState, ErrorCategory};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::LazyLock;
use std::time::Duration;

// Positions of the counters of a key.
/// Calls that made `i + 1` attempts (the last bucket: that many or more). The first bucket is
/// the hot counter of the tables: the only one a call that succeeds at once touches.
const HISTOGRAM: usize = HOT;
/// Calls that ended before their first attempt (rejected by the breaker).
const UNATTEMPTED: usize = HISTOGRAM + ATTEMPT_BUCKETS;
/// Calls that ended in an error.
const FAILURES: usize = UNATTEMPTED + 1;
/// Attempts beyond `ATTEMPT_BUCKETS` made by calls in the last bucket.
const EXTRA_ATTEMPTS: usize = FAILURES + 1;
const REJECTED: usize = EXTRA_ATTEMPTS + 1;
const NON_RETRYABLE: usize = REJECTED + 1;
const RETRIES: usize = NON_RETRYABLE + 1;
const WAIT_NANOS: usize = RETRIES + 1;
const BUDGET_EXHAUSTED: usize = WAIT_NANOS + 1;
/// Failed attempts by `ErrorCategory::index`.
const BY_CATEGORY: usize = BUDGET_EXHAUSTED + 1;
pub(super) const COUNTERS: usize = BY_CATEGORY + ErrorCategory::ALL.len();

const STATES: [CircuitState; 3] = [
    CircuitState::Closed,
    CircuitState::Open,
    CircuitState::HalfOpen,
];

fn state_index(state: CircuitState) -> usize {
    match state {
        CircuitState::Closed => 0,
        CircuitState::Open => 1,
        CircuitState::HalfOpen => 2,
    }
}

/// The figures of one (component, operation), shared by every call of it. Small (16 bytes, 24
/// with the `metrics` feature): the counts live in the threads' tables, and what few operations
/// need (transitions, a reset) in a map beside them.
#[derive(Debug)]
pub(crate) struct OperationMetrics {
    counters: Counters,
    /// Calls counted when the manager last looked for idle operations.
    calls_when_looked: AtomicU64,
    /// Boxed: the exported handles are a few hundred bytes, and most keys of a big manager
    /// are seldom called.
    #[cfg(feature = "metrics")]
    export: Box<super::export::Exporter>,
}

/// What most operations never need, by key number: made at an operation's first breaker
/// transition or reset, dropped with the operation.
#[derive(Debug, Default)]
struct Rare {
    /// Breaker transitions by `from * 3 + to`. Not in the tables: a breaker changes state
    /// rarely, and under its own lock.
    transitions: [u64; 9],
    /// What `reset` subtracts: other threads' counts cannot be zeroed from outside without
    /// losing their adds. `None` until the first reset.
    baseline: Option<[u64; COUNTERS]>,
}

/// Every operation's `Rare`, by key number. One lock for all: transitions and resets are rare,
/// and a snapshot takes it once per operation.
static RARE: LazyLock<Mutex<FxHashMap<u32, Rare>>> = LazyLock::new(Default::default);

impl OperationMetrics {
    /// The counts since the last reset, and the transitions.
    fn sum(&self) -> ([u64; COUNTERS], [u64; 9]) {
        let mut total = self.counters.sum();
        let Some(rare) = RARE
            .lock()
            .get(&self.counters.slot())
            .map(|r| (r.baseline, r.transitions))
        else {
            return (total, [0; 9]);
        };
        if let Some(baseline) = rare.0 {
            // Counts only grow, so the sum never falls below the baseline; a figure that had
            // saturated before the reset stays at zero after it.
            for (t, b) in total.iter_mut().zip(baseline.iter()) {
                *t = t.saturating_sub(*b);
            }
        }
        (total, rare.1)
    }
}

impl Drop for OperationMetrics {
    fn drop(&mut self) {
        // Before the key's number is given back (when `counters` is dropped, after this).
        RARE.lock().remove(&self.counters.slot());
    }
}

impl OperationMetrics {
    /// Zeroed figures for (component, operation). With the `metrics` feature, resolves the
    /// exported handles against the recorder installed now.
    // The names only label exported series.
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn new(component: &str, operation: &str) -> Self {
        OperationMetrics {
            counters: Counters::new(),
            calls_when_looked: AtomicU64::new(0),
            #[cfg(feature = "metrics")]
            export: Box::new(super::export::Exporter::new(component, operation)),
        }
    }

    /// A call succeeded after `attempts` attempts. The hot path: one add to this thread's own
    /// table when `attempts` is within the histogram.
    #[inline(always)]
    pub(crate) fn record_success(&self, attempts: u32) {
        self.record_attempts(attempts);
        #[cfg(feature = "metrics")]
        self.export.success(attempts);
    }

    /// A call ended in an error after `attempts` attempts (0: the breaker refused the first).
    pub(crate) fn record_failure(&self, attempts: u32, retryable: bool, rejected: bool) {
        self.record_attempts(attempts);
        self.counters.add(FAILURES, 1);
        if !retryable {
            self.counters.add(NON_RETRYABLE, 1);
        }
        if rejected {
            self.counters.add(REJECTED, 1);
        }
        #[cfg(feature = "metrics")]
        self.export.failure(attempts, retryable, rejected);
    }

    /// An attempt failed with an error of `category`.
    pub(crate) fn record_attempt_failure(&self, category: ErrorCategory) {
        self.counters.add(BY_CATEGORY + category.index(), 1);
        #[cfg(feature = "metrics")]
        self.export.attempt_failure(category);
    }

    /// An attempt failed with an error of `category`, and a retry was scheduled, to start
    /// after `delay`: what [`record_attempt_failure`](Self::record_attempt_failure) counts, and
    /// the retry, with one look-up of the thread's table for the three figures.
    pub(crate) fn record_retry(&self, category: ErrorCategory, delay: Duration) {
        let nanos = u64::try_from(delay.as_nanos()).unwrap_or(u64::MAX);
        self.counters.add_cold([
            (BY_CATEGORY + category.index(), 1),
            (RETRIES, 1),
            (WAIT_NANOS, nanos),
        ]);
        #[cfg(feature = "metrics")]
        {
            self.export.attempt_failure(category);
            self.export.retry(delay);
        }
    }

    /// A call did not retry because its component's retry budget was empty.
    pub(crate) fn record_budget_exhausted(&self) {
        self.counters.add(BUDGET_EXHAUSTED, 1);
    }

    /// The breaker of (component, operation), this one's, went from `from` to `to`.
    // The names only label exported series.
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn record_transition(
        &self,
        component: &str,
        operation: &str,
        from: CircuitState,
        to: CircuitState,
    ) {
        // The breaker logs the change itself (it may have no manager); this only counts it.
        // Saturating like every other figure.
        let mut rare = RARE.lock();
        let n = &mut rare.entry(self.counters.slot()).or_default().transitions
            [state_index(from) * 3 + state_index(to)];
        *n = n.saturating_add(1);
        drop(rare);
        #[cfg(feature = "metrics")]
        self.export.transition(component, operation, from, to);
    }

    #[inline(always)]
    fn record_attempts(&self, attempts: u32) {
        if attempts == 1 {
            // The hot path: the table's hot counter, known here, so the add is inlined whole.
            self.counters.add(HOT, 1);
        } else {
            self.record_other_attempts(attempts as usize);
        }
    }

    /// Out of line: the success path's code stays small.
    #[inline(never)]
    fn record_other_attempts(&self, attempts: usize) {
        if (2..=ATTEMPT_BUCKETS).contains(&attempts) {
            self.counters.add(HISTOGRAM + attempts - 1, 1);
        } else if attempts == 0 {
            self.counters.add(UNATTEMPTED, 1);
        } else {
            self.counters.add(HISTOGRAM + ATTEMPT_BUCKETS - 1, 1);
            self.counters
                .add(EXTRA_ATTEMPTS, (attempts - ATTEMPT_BUCKETS) as u64);
        }
    }

    /// Whether no call ended since the last time this was asked (the first time: since the
    /// operation was made). Sums the tables: for the manager's eviction, not for calls.
    pub(crate) fn idle_since_last_look(&self) -> bool {
        let calls = self.snapshot().calls;
        self.calls_when_looked.swap(calls, Ordering::Relaxed) == calls
    }

    /// Sets every figure back to zero (exported counters are left alone: they only grow).
    pub(crate) fn reset(&self) {
        // Summed under the lock: two resets at once leave the later sum as the baseline.
        let mut rare = RARE.lock();
        *rare.entry(self.counters.slot()).or_default() = Rare {
            transitions: [0; 9],
            baseline: Some(self.counters.sum()),
        };
    }

    /// The figures as of now; exact once the threads that recorded them are joined.
    pub(crate) fn snapshot(&self) -> OperationSnapshot {
        let (c, transitions) = self.sum();
        let histogram = &c[HISTOGRAM..HISTOGRAM + ATTEMPT_BUCKETS];
        let calls = histogram
            .iter()
            .fold(c[UNATTEMPTED], |sum, n| sum.saturating_add(*n));
        let attempts = histogram
            .iter()
            .zip(1u64..)
            .fold(c[EXTRA_ATTEMPTS], |sum, (n, a)| {
                sum.saturating_add(n.saturating_mul(a))
            });
        let failures = c[FAILURES];
        // A snapshot racing with a failing call may see its failure before its bucket.
        let successes = calls.saturating_sub(failures);
        OperationSnapshot {
            calls,
            successes,
            failures,
            attempts,
            retries: c[RETRIES],
            rejected: c[REJECTED],
            non_retryable: c[NON_RETRYABLE],
            wait_seconds: Duration::from_nanos(c[WAIT_NANOS]).as_secs_f64(),
            budget_exhausted: c[BUDGET_EXHAUSTED],
            success_rate: if calls == 0 {
                0.0
            } else {
                successes as f64 / calls as f64
            },
            attempts_histogram: histogram.to_vec(),
            failures_by_category: ErrorCategory::ALL
                .iter()
                .filter_map(|category| {
                    let n = c[BY_CATEGORY + category.index()];
                    (n > 0).then(|| (category.as_str().to_owned(), n))
                })
                .collect(),
            breaker_transitions: STATES
                .iter()
                .flat_map(|from| STATES.iter().map(move |to| (*from, *to)))
                .filter_map(|(from, to)| {
                    let n = transitions[state_index(from) * 3 + state_index(to)];
                    (n > 0).then(|| (format!("{}->{}", from.as_str(), to.as_str()), n))
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_operation_s_figures_are_16_bytes_beside_the_tables() {
        let exported = if cfg!(feature = "metrics") { 8 } else { 0 };
        assert_eq!(std::mem::size_of::<OperationMetrics>(), 16 + exported);
    }

    #[test]
    fn first_try_successes_fill_the_first_bucket_only() {
        let m = OperationMetrics::new("c", "o");
        for _ in 0..3 {
            m.record_success(1);
        }
        let s = m.snapshot();
        assert_eq!((s.calls, s.successes, s.failures, s.attempts), (3, 3, 0, 3));
        assert_eq!(s.attempts_histogram, [3, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(s.success_rate, 1.0);
    }

    #[test]
    fn calls_past_the_last_bucket_keep_their_attempts() {
        let m = OperationMetrics::new("c", "o");
        m.record_success(10);
        m.record_failure(25, true, false);
        let s = m.snapshot();
        assert_eq!(s.attempts_histogram[ATTEMPT_BUCKETS - 1], 2);
        assert_eq!(s.attempts, 35);
        assert_eq!((s.calls, s.successes, s.failures), (2, 1, 1));
    }

    #[test]
    fn a_call_rejected_before_any_attempt_counts_but_is_in_no_bucket() {
        let m = OperationMetrics::new("c", "o");
        m.record_failure(0, true, true);
        let s = m.snapshot();
        assert_eq!((s.calls, s.failures, s.rejected, s.attempts), (1, 1, 1, 0));
        assert_eq!(s.attempts_histogram.iter().sum::<u64>(), 0);
        assert_eq!(s.success_rate, 0.0);
    }

    #[test]
    fn an_empty_operation_has_a_zero_success_rate_and_empty_maps() {
        let s = OperationMetrics::new("c", "o").snapshot();
        assert_eq!(s.calls, 0);
        assert_eq!(s.success_rate, 0.0);
        assert!(s.failures_by_category.is_empty() && s.breaker_transitions.is_empty());
        assert_eq!(s.attempts_histogram.len(), ATTEMPT_BUCKETS);
    }

    #[test]
    fn the_wait_saturates_instead_of_wrapping() {
        let m = OperationMetrics::new("c", "o");
        let top = Duration::from_nanos(u64::MAX).as_secs_f64();
        m.record_retry(ErrorCategory::Network, Duration::MAX);
        assert_eq!(m.snapshot().wait_seconds, top);
        // A wrapping sum would now read one second.
        m.record_retry(ErrorCategory::Network, Duration::from_secs(1));
        let s = m.snapshot();
        assert_eq!((s.wait_seconds, s.retries), (top, 2));
    }

    #[test]
    fn derived_sums_saturate_instead_of_wrapping() {
        let m = OperationMetrics::new("c", "o");
        // Counts this large cannot be reached by calls in a test; put them in directly.
        m.counters.add(UNATTEMPTED, u64::MAX);
        m.counters.add(EXTRA_ATTEMPTS, u64::MAX);
        m.record_success(1);
        m.record_success(ATTEMPT_BUCKETS as u32);
        let s = m.snapshot();
        assert_eq!((s.calls, s.attempts), (u64::MAX, u64::MAX));
    }

    #[test]
    fn transitions_are_counted_by_from_and_to() {
        use CircuitState::{Closed, HalfOpen, Open};
        let m = OperationMetrics::new("c", "o");
        for (from, to) in [
            (Closed, Open),
            (Open, HalfOpen),
            (HalfOpen, Open),
            (Open, HalfOpen),
            (HalfOpen, Closed),
        ] {
            m.record_transition("c", "o", from, to);
        }
        let s = m.snapshot();
        let seen: Vec<_> = s
            .breaker_transitions
            .iter()
            .map(|(k, n)| (k.as_str(), *n))
            .collect();
        assert_eq!(
            seen,
            [
                ("CLOSED->OPEN", 1),
                ("HALF_OPEN->CLOSED", 1),
                ("HALF_OPEN->OPEN", 1),
                ("OPEN->HALF_OPEN", 2),
            ]
        );
        m.reset();
        assert!(m.snapshot().breaker_transitions.is_empty());
    }

    #[cfg(feature = "metrics")]
    #[test]
    fn transitions_are_exported_with_from_and_to_labels() {
        use metrics_util::debugging::{DebugValue, DebuggingRecorder};
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::with_local_recorder(&recorder, || {
            let m = OperationMetrics::new("db", "query");
            m.record_transition("db", "query", CircuitState::Closed, CircuitState::Open);
            m.record_transition("db", "query", CircuitState::Closed, CircuitState::Open);
        });
        let found: Vec<_> = snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .filter(|(key, ..)| key.key().name() == "resilience_breaker_transitions_total")
            .map(|(key, _, _, value)| {
                let labels: Vec<_> = key
                    .key()
                    .labels()
                    .map(|l| format!("{}={}", l.key(), l.value()))
                    .collect();
                (labels, value)
            })
            .collect();
        assert_eq!(
            found,
            [(
                vec![
                    "component=db".to_owned(),
                    "operation=query".to_owned(),
                    "from=CLOSED".to_owned(),
                    "to=OPEN".to_owned()
                ],
                DebugValue::Counter(2)
            )]
        );
    }
}
