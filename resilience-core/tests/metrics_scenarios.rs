//! Every counter after scripted calls through a manager on a manual clock (issue 5).

use resilience_core::{
    CircuitBreakerConfig, Clock, ManualClock, OperationSnapshot, RetryConfig, RetryManager,
    ATTEMPT_BUCKETS,
};
use std::collections::BTreeMap;
use std::io::{Error, ErrorKind};
use std::time::Duration;

/// A manager on a manual clock whose delays are exact: 100 ms, then 200 ms, 400 ms, …
fn manager(clock: &ManualClock) -> RetryManager {
    RetryManager::builder()
        .clock(clock.clone())
        .seed(1)
        .default_config(RetryConfig {
            jitter_factor: 0.0,
            ..RetryConfig::default()
        })
        .build()
        .unwrap()
}

/// An operation that fails with `kind` `failures` times, then returns `Ok`.
fn failing(failures: usize, kind: ErrorKind) -> impl FnMut() -> Result<u32, Error> {
    let mut calls = 0;
    move || {
        calls += 1;
        if calls <= failures {
            Err(kind.into())
        } else {
            Ok(7)
        }
    }
}

fn histogram(buckets: &[(usize, u64)]) -> Vec<u64> {
    let mut h = vec![0; ATTEMPT_BUCKETS];
    for (attempts, n) in buckets {
        h[attempts - 1] = *n;
    }
    h
}

fn categories(entries: &[(&str, u64)]) -> BTreeMap<String, u64> {
    entries.iter().map(|(c, n)| (c.to_string(), *n)).collect()
}

#[test]
fn a_call_that_succeeds_at_once() {
    let clock = ManualClock::new();
    let m = manager(&clock);
    m.execute("svc", "op", failing(0, ErrorKind::ConnectionReset))
        .unwrap();
    assert_eq!(
        m.metrics_for("svc", "op").unwrap(),
        OperationSnapshot {
            calls: 1,
            successes: 1,
            failures: 0,
            attempts: 1,
            retries: 0,
            rejected: 0,
            non_retryable: 0,
            wait_seconds: 0.0,
            budget_exhausted: 0,
            success_rate: 1.0,
            attempts_histogram: histogram(&[(1, 1)]),
            failures_by_category: BTreeMap::new(),
            breaker_transitions: BTreeMap::new(),
        }
    );
}

#[test]
fn a_call_that_succeeds_on_the_third_attempt() {
    let clock = ManualClock::new();
    let m = manager(&clock);
    m.execute("svc", "op", failing(2, ErrorKind::ConnectionReset))
        .unwrap();
    assert_eq!(
        m.metrics_for("svc", "op").unwrap(),
        OperationSnapshot {
            calls: 1,
            successes: 1,
            failures: 0,
            attempts: 3,
            retries: 2,
            rejected: 0,
            non_retryable: 0,
            wait_seconds: 0.3,
            budget_exhausted: 0,
            success_rate: 1.0,
            attempts_histogram: histogram(&[(3, 1)]),
            failures_by_category: categories(&[("network", 2)]),
            breaker_transitions: BTreeMap::new(),
        }
    );
    assert_eq!(
        clock.sleeps(),
        [Duration::from_millis(100), Duration::from_millis(200)]
    );
}

#[test]
fn a_call_that_exhausts_its_attempts() {
    let clock = ManualClock::new();
    let m = manager(&clock);
    let err = m
        .execute("svc", "op", failing(usize::MAX, ErrorKind::TimedOut))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    assert_eq!(
        m.metrics_for("svc", "op").unwrap(),
        OperationSnapshot {
            calls: 1,
            successes: 0,
            failures: 1,
            attempts: 3,
            retries: 2,
            rejected: 0,
            non_retryable: 0,
            wait_seconds: 0.3,
            budget_exhausted: 0,
            success_rate: 0.0,
            attempts_histogram: histogram(&[(3, 1)]),
            failures_by_category: categories(&[("timeout", 3)]),
            breaker_transitions: BTreeMap::new(),
        }
    );
}

#[test]
fn a_call_rejected_by_an_open_breaker() {
    let clock = ManualClock::new();
    let m = manager(&clock);
    let trips = CircuitBreakerConfig {
        failure_threshold: 1,
        ..CircuitBreakerConfig::default()
    };
    // One attempt, one retryable failure: the breaker opens.
    let first = m
        .call("svc", "op")
        .circuit_breaker_config(trips.clone())
        .max_attempts(1)
        .run(failing(1, ErrorKind::ConnectionRefused));
    assert_eq!(first.unwrap_err().kind(), ErrorKind::ConnectionRefused);
    // The next call never runs its body.
    let mut ran = false;
    let second: Result<(), Error> = m.call("svc", "op").circuit_breaker_config(trips).run(|| {
        ran = true;
        Ok(())
    });
    assert!(!ran);
    assert!(second.is_err());
    assert_eq!(
        m.metrics_for("svc", "op").unwrap(),
        OperationSnapshot {
            calls: 2,
            successes: 0,
            failures: 2,
            attempts: 1,
            retries: 0,
            rejected: 1,
            non_retryable: 0,
            wait_seconds: 0.0,
            budget_exhausted: 0,
            success_rate: 0.0,
            // The rejected call made no attempt: it is in no bucket.
            attempts_histogram: histogram(&[(1, 1)]),
            failures_by_category: categories(&[("network", 1)]),
            breaker_transitions: BTreeMap::from([("CLOSED->OPEN".to_owned(), 1)]),
        }
    );
}

#[test]
fn a_call_whose_retry_is_rejected_after_the_breaker_opened() {
    let clock = ManualClock::new();
    let m = manager(&clock);
    let err = m
        .call("svc", "op")
        .circuit_breaker_config(CircuitBreakerConfig {
            failure_threshold: 1,
            ..CircuitBreakerConfig::default()
        })
        .run(failing(usize::MAX, ErrorKind::ConnectionReset))
        .unwrap_err();
    // The last real error, not the rejection.
    assert_eq!(err.kind(), ErrorKind::ConnectionReset);
    let s = m.metrics_for("svc", "op").unwrap();
    assert_eq!(
        (s.calls, s.failures, s.attempts, s.retries, s.rejected),
        (1, 1, 1, 1, 1)
    );
    assert_eq!(s.wait_seconds, 0.1);
    assert_eq!(s.attempts_histogram, histogram(&[(1, 1)]));
}

#[test]
fn a_call_that_fails_with_a_non_retryable_error() {
    let clock = ManualClock::new();
    let m = manager(&clock);
    let err = m
        .execute("svc", "op", failing(usize::MAX, ErrorKind::InvalidData))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidData);
    assert_eq!(
        m.metrics_for("svc", "op").unwrap(),
        OperationSnapshot {
            calls: 1,
            successes: 0,
            failures: 1,
            attempts: 1,
            retries: 0,
            rejected: 0,
            non_retryable: 1,
            wait_seconds: 0.0,
            budget_exhausted: 0,
            success_rate: 0.0,
            attempts_histogram: histogram(&[(1, 1)]),
            failures_by_category: categories(&[("validation", 1)]),
            breaker_transitions: BTreeMap::new(),
        }
    );
    assert!(clock.sleeps().is_empty());
}

#[test]
fn the_histogram_has_a_bucket_per_attempt_count_and_an_overflow_bucket() {
    let clock = ManualClock::new();
    let m = manager(&clock);
    // Calls of 1, 2, …, 12 attempts, the last 3 past the last bucket. Without the breaker,
    // which would open after 5 failures in a row.
    for failures in 0..12 {
        m.call("svc", "op")
            .without_circuit_breaker()
            .max_attempts(12)
            .initial_delay(Duration::ZERO)
            .run(failing(failures, ErrorKind::ConnectionReset))
            .unwrap();
    }
    let s = m.metrics_for("svc", "op").unwrap();
    assert_eq!(s.attempts_histogram, [1, 1, 1, 1, 1, 1, 1, 1, 1, 3]);
    assert_eq!(s.attempts, (1..=12).sum::<u64>());
    assert_eq!(s.retries, (0..12).sum::<u64>());
    assert_eq!((s.calls, s.successes), (12, 12));
    // Zero delays are retries without waiting.
    assert_eq!(s.wait_seconds, 0.0);
    assert!(clock.sleeps().is_empty());
}

#[test]
fn the_success_rate_is_successes_over_calls() {
    let clock = ManualClock::new();
    let m = manager(&clock);
    for _ in 0..3 {
        m.execute("svc", "op", failing(0, ErrorKind::ConnectionReset))
            .unwrap();
    }
    m.execute("svc", "op", failing(1, ErrorKind::NotFound))
        .unwrap_err();
    let s = m.metrics_for("svc", "op").unwrap();
    assert_eq!((s.calls, s.successes, s.failures), (4, 3, 1));
    assert_eq!(s.success_rate, 0.75);
    assert_eq!(s.failures_by_category, categories(&[("not_found", 1)]));
}

#[test]
fn wait_time_is_the_time_slept_on_the_manual_clock() {
    let clock = ManualClock::new();
    // Jitter on: the figure must follow the delays actually drawn.
    let m = RetryManager::builder()
        .clock(clock.clone())
        .seed(1)
        .build()
        .unwrap();
    for failures in [2, 1, 5] {
        let _ = m
            .call("svc", "op")
            .max_attempts(4)
            .run(failing(failures, ErrorKind::ConnectionAborted));
    }
    let slept: Duration = clock.sleeps().iter().sum();
    let s = m.metrics_for("svc", "op").unwrap();
    assert_eq!(clock.sleeps().len(), 2 + 1 + 3);
    assert_eq!(s.retries, 6);
    assert!(
        (s.wait_seconds - slept.as_secs_f64()).abs() < 1e-9,
        "{} vs {slept:?}",
        s.wait_seconds
    );
    assert_eq!(clock.now(), slept);
}

#[test]
fn async_calls_count_the_same() {
    let clock = ManualClock::new();
    let m = manager(&clock);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut op = failing(2, ErrorKind::ConnectionReset);
        m.execute_async("svc", "op", || std::future::ready(op()))
            .await
            .unwrap();
    });
    let s = m.metrics_for("svc", "op").unwrap();
    assert_eq!((s.calls, s.successes, s.attempts, s.retries), (1, 1, 3, 2));
    assert_eq!(s.wait_seconds, 0.3);
}

#[test]
fn operations_are_counted_apart_and_keyed_component_colon_operation() {
    let clock = ManualClock::new();
    let m = manager(&clock);
    m.execute("a", "x", failing(0, ErrorKind::ConnectionReset))
        .unwrap();
    m.execute("a", "y", failing(1, ErrorKind::ConnectionReset))
        .unwrap();
    m.execute("b", "x", failing(0, ErrorKind::ConnectionReset))
        .unwrap();
    let snapshot = m.metrics();
    let keys: Vec<_> = snapshot.operations.keys().cloned().collect();
    assert_eq!(keys, ["a:x", "a:y", "b:x"]);
    assert_eq!(snapshot.get("a", "y").unwrap().attempts, 2);
    assert_eq!(snapshot.get("a", "x").unwrap().attempts, 1);
    assert!(snapshot.get("b", "y").is_none());
    assert!(m.metrics_for("b", "y").is_none());
}

#[test]
fn reset_zeroes_every_figure_and_counting_goes_on() {
    let clock = ManualClock::new();
    let m = manager(&clock);
    m.execute("svc", "op", failing(2, ErrorKind::ConnectionReset))
        .unwrap();
    m.execute("svc", "op", failing(1, ErrorKind::InvalidInput))
        .unwrap_err();
    m.reset_metrics();
    let zero = m.metrics_for("svc", "op").unwrap();
    assert_eq!(
        zero,
        OperationSnapshot {
            attempts_histogram: vec![0; ATTEMPT_BUCKETS],
            ..OperationSnapshot::default()
        }
    );
    m.execute("svc", "op", failing(0, ErrorKind::ConnectionReset))
        .unwrap();
    let s = m.metrics_for("svc", "op").unwrap();
    assert_eq!((s.calls, s.successes, s.attempts), (1, 1, 1));
}
