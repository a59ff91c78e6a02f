//! The figures published through the [`metrics`](https://docs.rs/metrics) facade (feature
//! `metrics`), for Prometheus or any other exporter the program installs.
//!
//! Every series is labelled `component` and `operation`:
//!
//! | name | kind | extra labels | what |
//! | --- | --- | --- | --- |
//! | `resilience_calls_total` | counter | `outcome` = `success` / `failure` | calls that ended |
//! | `resilience_attempts_total` | counter | | attempts made |
//! | `resilience_retries_total` | counter | | retries scheduled |
//! | `resilience_rejected_total` | counter | | calls ended by the breaker refusing an attempt |
//! | `resilience_non_retryable_total` | counter | | calls ended on a non-retryable error |
//! | `resilience_attempt_failures_total` | counter | `category` | failed attempts by category |
//! | `resilience_wait_seconds` | histogram | | each wait before a retry, in seconds |
//! | `resilience_attempts_per_call` | histogram | | attempts of each call that made at least one |
//! | `resilience_breaker_transitions_total` | counter | `from`, `to` | breaker state changes |
//! | `resilience_store_fallbacks_total` | counter | | episodes of a shared breaker falling back because its store (Redis) was unreachable |
//!
//! Handles are resolved once per operation, when the manager first meets it, against the
//! recorder installed at that moment: install the recorder before the first call.

use crate::{CircuitState, ErrorCategory};
use metrics::{counter, describe_counter, describe_histogram, Counter, Histogram, Unit};
use std::time::Duration;

pub(crate) const CALLS_TOTAL: &str = "resilience_calls_total";
pub(crate) const ATTEMPTS_TOTAL: &str = "resilience_attempts_total";
pub(crate) const RETRIES_TOTAL: &str = "resilience_retries_total";
pub(crate) const REJECTED_TOTAL: &str = "resilience_rejected_total";
pub(crate) const NON_RETRYABLE_TOTAL: &str = "resilience_non_retryable_total";
pub(crate) const ATTEMPT_FAILURES_TOTAL: &str = "resilience_attempt_failures_total";
pub(crate) const WAIT_SECONDS: &str = "resilience_wait_seconds";
pub(crate) const ATTEMPTS_PER_CALL: &str = "resilience_attempts_per_call";
pub(crate) const BREAKER_TRANSITIONS_TOTAL: &str = "resilience_breaker_transitions_total";

/// The handles of one operation.
pub(super) struct Exporter {
    successes: Counter,
    failures: Counter,
    attempts: Counter,
    retries: Counter,
    rejected: Counter,
    non_retryable: Counter,
    by_category: [Counter; ErrorCategory::ALL.len()],
    wait: Histogram,
    attempts_per_call: Histogram,
}

impl Exporter {
    pub(super) fn new(component: &str, operation: &str) -> Self {
        describe();
        let labels = || {
            [
                ("component", component.to_owned()),
                ("operation", operation.to_owned()),
            ]
        };
        let calls = |outcome: &'static str| {
            let [c, o] = labels();
            counter!(CALLS_TOTAL, c.0 => c.1, o.0 => o.1, "outcome" => outcome)
        };
        Exporter {
            successes: calls("success"),
            failures: calls("failure"),
            attempts: counter!(ATTEMPTS_TOTAL, &labels()),
            retries: counter!(RETRIES_TOTAL, &labels()),
            rejected: counter!(REJECTED_TOTAL, &labels()),
            non_retryable: counter!(NON_RETRYABLE_TOTAL, &labels()),
            by_category: ErrorCategory::ALL.map(|category| {
                let [c, o] = labels();
                counter!(ATTEMPT_FAILURES_TOTAL, c.0 => c.1, o.0 => o.1, "category" => category.as_str())
            }),
            wait: metrics::histogram!(WAIT_SECONDS, &labels()),
            attempts_per_call: metrics::histogram!(ATTEMPTS_PER_CALL, &labels()),
        }
    }

    #[inline]
    pub(super) fn success(&self, attempts: u32) {
        self.successes.increment(1);
        self.attempts.increment(u64::from(attempts));
        self.attempts_per_call.record(f64::from(attempts));
    }

    pub(super) fn failure(&self, attempts: u32, retryable: bool, rejected: bool) {
        self.failures.increment(1);
        if attempts > 0 {
            self.attempts.increment(u64::from(attempts));
            self.attempts_per_call.record(f64::from(attempts));
        }
        if !retryable {
            self.non_retryable.increment(1);
        }
        if rejected {
            self.rejected.increment(1);
        }
    }

    pub(super) fn attempt_failure(&self, category: ErrorCategory) {
        self.by_category[category.index()].increment(1);
    }

    pub(super) fn retry(&self, delay: Duration) {
        self.retries.increment(1);
        self.wait.record(delay.as_secs_f64());
    }

    /// The labels come from the caller: rare enough not to keep the names (and nine handles)
    /// in every operation.
    pub(super) fn transition(
        &self,
        component: &str,
        operation: &str,
        from: CircuitState,
        to: CircuitState,
    ) {
        counter!(
            BREAKER_TRANSITIONS_TOTAL,
            "component" => component.to_owned(),
            "operation" => operation.to_owned(),
            "from" => from.as_str(),
            "to" => to.as_str()
        )
        .increment(1);
    }
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exporter").finish_non_exhaustive()
    }
}

/// Tells the recorder what each series means. Cheap enough to repeat once per operation, and
/// repeating it reaches a recorder installed after the first operation.
fn describe() {
    describe_counter!(
        CALLS_TOTAL,
        Unit::Count,
        "Retried calls that ended, by outcome."
    );
    describe_counter!(
        ATTEMPTS_TOTAL,
        Unit::Count,
        "Attempts made by retried calls."
    );
    describe_counter!(RETRIES_TOTAL, Unit::Count, "Retries scheduled.");
    describe_counter!(
        REJECTED_TOTAL,
        Unit::Count,
        "Calls ended by the circuit breaker refusing an attempt."
    );
    describe_counter!(
        NON_RETRYABLE_TOTAL,
        Unit::Count,
        "Calls ended on an error that is not retried."
    );
    describe_counter!(
        ATTEMPT_FAILURES_TOTAL,
        Unit::Count,
        "Failed attempts by error category."
    );
    describe_histogram!(
        WAIT_SECONDS,
        Unit::Seconds,
        "Wait before each retry, in seconds."
    );
    describe_histogram!(
        ATTEMPTS_PER_CALL,
        Unit::Count,
        "Attempts made by each call that made at least one."
    );
    describe_counter!(
        BREAKER_TRANSITIONS_TOTAL,
        Unit::Count,
        "Circuit breaker state changes."
    );
}
