//! Failures that arrive as `Ok` (`classify_ok`): ported from tenacity's `retry_if_result` tests
//! and resilience4j's `shouldRetryWithResult`, on the manual clock.

mod support;

use resilience_core::{CircuitBreakerConfig, CircuitState, ErrorCategory, Failure, RetryManager};
use std::time::Duration;
use support::{manager, no_jitter, TestError};

fn unavailable_when_none(value: &Option<u32>) -> Option<Failure> {
    value
        .is_none()
        .then(|| Failure::new(ErrorCategory::Unavailable))
}

/// tenacity `test_retry_if_result`: retried while the result says so, then returned.
#[test]
fn tenacity_retry_if_result_retries_until_the_result_is_good() {
    let (m, _clock) = manager(no_jitter());
    let mut results = vec![Some(7), None, None];
    let mut calls = 0;
    let got: Result<Option<u32>, TestError> = m
        .call("svc", "op")
        .initial_delay(Duration::ZERO)
        .classify_ok(unavailable_when_none)
        .run(|| {
            calls += 1;
            Ok(results.pop().unwrap())
        });
    assert_eq!((got, calls), (Ok(Some(7)), 3));
    let figures = m.metrics_for("svc", "op").unwrap();
    assert_eq!((figures.successes, figures.retries), (1, 2));
    assert_eq!(figures.failures_by_category["unavailable"], 2);
}

/// resilience4j `shouldRetryWithResult` / tenacity `retry_if_result` when attempts run out:
/// the last result is returned as it was, and the call counts as failed.
#[test]
fn resilience4j_should_retry_with_result_returns_the_last_value_when_exhausted() {
    let (m, clock) = manager(no_jitter());
    let mut calls = 0;
    let got: Result<Option<u32>, TestError> = m
        .call("svc", "op")
        .max_attempts(3)
        .classify_ok(unavailable_when_none)
        .run(|| {
            calls += 1;
            Ok(None)
        });
    assert_eq!((got, calls), (Ok(None), 3));
    assert_eq!(clock.sleeps().len(), 2);
    let figures = m.metrics_for("svc", "op").unwrap();
    assert_eq!((figures.failures, figures.successes), (1, 0));
}

#[test]
fn a_result_that_is_not_retryable_ends_the_call_at_once() {
    let (m, _clock) = manager(no_jitter());
    let mut calls = 0;
    let got: Result<u16, TestError> = m
        .call("svc", "op")
        .classify_ok(|status: &u16| (*status == 404).then(|| Failure::new(ErrorCategory::NotFound)))
        .run(|| {
            calls += 1;
            Ok(404)
        });
    assert_eq!((got, calls), (Ok(404), 1));
    assert_eq!(m.metrics_for("svc", "op").unwrap().non_retryable, 1);
}

#[test]
fn a_retry_after_on_a_result_sets_the_wait_capped_at_max_delay() {
    let (m, clock) = manager(no_jitter());
    let mut statuses = vec![200, 503, 503];
    let _: Result<u16, TestError> = m
        .call("svc", "op")
        .max_delay(Duration::from_secs(5))
        .classify_ok(|s: &u16| {
            (*s == 503).then(|| {
                Failure::new(ErrorCategory::Unavailable).with_retry_after(Duration::from_secs(60))
            })
        })
        .run(|| Ok(statuses.pop().unwrap()));
    assert_eq!(clock.sleeps(), [Duration::from_secs(5); 2]);
}

#[test]
fn results_judged_failures_count_against_the_breaker_and_a_rejection_returns_the_last_one() {
    let clock = resilience_core::ManualClock::new();
    let m = RetryManager::builder()
        .clock(clock.clone())
        .circuit_breaker_config(CircuitBreakerConfig {
            failure_threshold: 2,
            ..Default::default()
        })
        .build()
        .unwrap();
    let mut calls = 0;
    let got: Result<u16, TestError> = m
        .call("svc", "op")
        .max_attempts(5)
        .initial_delay(Duration::ZERO)
        .classify_ok(|s: &u16| (*s >= 500).then(|| Failure::new(ErrorCategory::Unavailable)))
        .run(|| {
            calls += 1;
            Ok(500 + calls as u16)
        });
    // Two failures open the breaker; the third attempt is refused and the call returns the
    // last real result.
    assert_eq!((got, calls), (Ok(502), 2));
    assert_eq!(
        m.circuit_breaker_status()["svc:op"].state,
        CircuitState::Open
    );
    assert_eq!(m.metrics_for("svc", "op").unwrap().rejected, 1);
}

#[tokio::test(start_paused = true)]
async fn async_calls_judge_results_the_same_way() {
    let m = RetryManager::new();
    let mut results = vec![Some(1), None];
    let got: Result<Option<u32>, std::io::Error> = m
        .call("svc", "op")
        .initial_delay(Duration::ZERO)
        .classify_ok(unavailable_when_none)
        .run_async(|| {
            let next = results.pop().unwrap();
            async move { Ok(next) }
        })
        .await;
    assert_eq!(got.unwrap(), Some(1));
    assert_eq!(m.metrics_for("svc", "op").unwrap().retries, 1);
}
