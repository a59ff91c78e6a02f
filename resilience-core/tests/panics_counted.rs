//! Calls that end in a panic, of an attempt or of a retry hook, are counted in the metrics like
//! the breaker counts them: before, `attempts` stayed 0 while the breaker had opened.

use resilience_core::{CircuitBreakerConfig, CircuitState, ManualClock, RetryManager};
use std::panic::{catch_unwind, AssertUnwindSafe};

fn manager() -> RetryManager {
    RetryManager::builder()
        .clock(ManualClock::new())
        .seed(1)
        .circuit_breaker_config(CircuitBreakerConfig {
            failure_threshold: 2,
            ..Default::default()
        })
        .build()
        .unwrap()
}

#[test]
fn a_panicking_attempt_is_counted_as_a_failed_attempt_of_a_failed_call() {
    let m = manager();
    let mut attempts = 0;
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let _: Result<(), std::io::Error> = m.execute("svc", "op", || {
            attempts += 1;
            if attempts == 1 {
                Err(std::io::ErrorKind::ConnectionReset.into())
            } else {
                panic!("the body panicked")
            }
        });
    }));
    assert!(outcome.is_err());
    let figures = m.metrics_for("svc", "op").unwrap();
    assert_eq!(
        (figures.calls, figures.failures, figures.attempts),
        (1, 1, 2)
    );
    assert_eq!(figures.failures_by_category["network"], 1);
    assert_eq!(figures.failures_by_category["unknown"], 1);
    // The breaker counted both attempts as failures too, and opened.
    assert_eq!(
        m.circuit_breaker_status()["svc:op"].state,
        CircuitState::Open
    );
}

#[test]
fn a_panicking_retry_hook_leaves_the_call_counted() {
    let m = manager();
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let _: Result<(), std::io::Error> = m
            .call("svc", "op")
            .on_retry(|_| panic!("the hook panicked"))
            .run(|| Err(std::io::ErrorKind::TimedOut.into()));
    }));
    assert!(outcome.is_err());
    let figures = m.metrics_for("svc", "op").unwrap();
    assert_eq!(
        (figures.calls, figures.failures, figures.attempts),
        (1, 1, 1)
    );
    // The attempt's failure is counted once, in its own category.
    assert_eq!(figures.failures_by_category.get("unknown"), None);
    assert_eq!(figures.failures_by_category["timeout"], 1);
}

#[test]
fn a_call_that_ends_normally_is_counted_once() {
    let m = manager();
    let _: Result<(), std::io::Error> = m.execute("svc", "op", || Ok(()));
    let figures = m.metrics_for("svc", "op").unwrap();
    assert_eq!(
        (figures.calls, figures.successes, figures.failures),
        (1, 1, 0)
    );
}
