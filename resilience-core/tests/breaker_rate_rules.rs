//! The failure-rate, slow-call and max-half-open-wait rules, ported from the peers' own suites
//! (each test names its source) and checked against a reference computation. Manual clock, no
//! sleeping.
//!
//! Sources:
//! - resilience4j `resilience4j-circuitbreaker/src/test/java/io/github/resilience4j/circuitbreaker/internal/CircuitBreakerStateMachineTest.java`
//!   (setUp: failure rate 50 %, 4 trial calls, slow calls >= 4 s at 50 %, max wait in half-open
//!   1 s, TIME_BASED window of 20 s with a minimum of 5 calls, open for 5 s).
//! - Polly `test/Polly.Core.Tests/CircuitBreaker/Controller/AdvancedCircuitBehaviorTests.cs`.
//! - sony/gobreaker `v2/gobreaker_test.go` (`newRollingWindow`, `TestRollingWindowCircuitBreaker`,
//!   `TestRollingWindowCircuitBreakerInParallel`).

use proptest::prelude::*;
use resilience_core::{
    CircuitBreaker, CircuitBreakerConfig, CircuitBreakerRegistry, CircuitState, Clock, FailureRate,
    ManualClock, OpenCause, SlowCall, Window,
};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// How a call ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    /// Succeeds at once.
    Ok,
    /// Fails (retryable) at once.
    Fail,
    /// A non-retryable error: the permit is released (neutral).
    Neutral,
    /// Succeeds after this long.
    SlowOk(Duration),
    /// Fails after this long.
    SlowFail(Duration),
}

struct Bench {
    clock: ManualClock,
    #[allow(dead_code)]
    registry: CircuitBreakerRegistry,
    breaker: Arc<CircuitBreaker>,
    changes: Arc<Mutex<Vec<(CircuitState, CircuitState)>>>,
}

impl Bench {
    fn new(config: CircuitBreakerConfig) -> Self {
        let clock = ManualClock::new();
        let registry = CircuitBreakerRegistry::with_clock(Arc::new(clock.clone()));
        let changes: Arc<Mutex<Vec<(CircuitState, CircuitState)>>> = Arc::default();
        let log = Arc::clone(&changes);
        registry.on_state_change(move |c| log.lock().unwrap().push((c.from, c.to)));
        let breaker = registry.get_breaker("svc", "op");
        breaker.configure(&config);
        Bench {
            clock,
            registry,
            breaker,
            changes,
        }
    }

    /// Runs one call; `false` when the breaker rejected it.
    fn call(&self, end: End) -> bool {
        let Ok(permit) = self.breaker.try_acquire() else {
            return false;
        };
        match end {
            End::Ok => permit.record_success(),
            End::Fail => permit.record_failure(),
            End::Neutral => permit.release(),
            End::SlowOk(d) => {
                self.clock.advance(d);
                permit.record_success();
            }
            End::SlowFail(d) => {
                self.clock.advance(d);
                permit.record_failure();
            }
        }
        true
    }

    fn calls(&self, ends: &[End]) {
        for &end in ends {
            assert!(self.call(end), "{end:?} rejected");
        }
    }

    fn state(&self) -> CircuitState {
        self.breaker.state()
    }

    fn advance(&self, s: f64) {
        self.clock.advance(secs(s));
    }
}

/// resilience4j's setUp: failure rate 50 %, 4 calls in half-open, slow calls (>= 4 s) at 50 %,
/// max wait in half-open 1 s, a time window of 20 s with at least 5 calls, open for 5 s.
fn r4j_setup() -> CircuitBreakerConfig {
    CircuitBreakerConfig {
        failure_rate: Some(FailureRate {
            window: Window::Time(secs(20.0)),
            minimum_calls: 5,
            threshold: 0.5,
        }),
        slow_call: Some(SlowCall {
            duration: secs(4.0),
            rate_threshold: 0.5,
        }),
        max_half_open_wait: Some(secs(1.0)),
        half_open_max_calls: 4,
        reset_timeout: secs(5.0),
        ..CircuitBreakerConfig::default()
    }
}

fn count_rule(size: u32, minimum_calls: u32, threshold: f64) -> CircuitBreakerConfig {
    CircuitBreakerConfig {
        failure_rate: Some(FailureRate {
            window: Window::Count(size),
            minimum_calls,
            threshold,
        }),
        ..CircuitBreakerConfig::default()
    }
}

use End::{Fail, Neutral, Ok as Succeed};

// ---------------------------------------------------------------------------------------------
// resilience4j CircuitBreakerStateMachineTest: failure rate
// ---------------------------------------------------------------------------------------------

/// `shouldOpenAfterFailureRateThresholdExceeded`: F, F, F, S, S in the 20 s window (minimum 5):
/// no decision before the fifth call, which is a success and opens the breaker at 60 %.
#[test]
fn r4j_should_open_after_failure_rate_threshold_exceeded() {
    let b = Bench::new(r4j_setup());
    for (i, end) in [Fail, Fail, Fail, Succeed].into_iter().enumerate() {
        assert!(b.call(end));
        assert_eq!(
            b.state(),
            CircuitState::Closed,
            "below the minimum after {}",
            i + 1
        );
    }
    let status = b.breaker.status();
    assert_eq!(status.window_calls, Some(4));
    assert_eq!(status.failure_rate, Some(0.75));
    // The fifth call is a success: it brings the window to the minimum at 60 % and opens it.
    assert!(b.call(Succeed));
    assert_eq!(b.state(), CircuitState::Open);
    let status = b.breaker.status();
    assert_eq!(
        (
            status.window_calls,
            status.failure_rate,
            status.slow_call_rate
        ),
        (Some(5), Some(0.6), Some(0.0))
    );
    let err = b.breaker.try_acquire().unwrap_err();
    assert_eq!(err.opened_by(), Some(OpenCause::FailureRate));
    assert_eq!(err.failure_rate(), Some(0.6));
    assert_eq!(
        err.to_string(),
        "circuit breaker svc:op is open (failure rate 60.0% of 5 calls); calls are rejected for another 5.000s"
    );
    assert_eq!(
        *b.changes.lock().unwrap(),
        [(CircuitState::Closed, CircuitState::Open)]
    );
}

/// The same calls over a count window of 5 (resilience4j's COUNT_BASED ring buffer, the
/// comment "A ring buffer with size 5 is used in closed state" of the same test).
#[test]
fn r4j_should_open_after_failure_rate_threshold_exceeded_count_window() {
    let b = Bench::new(count_rule(5, 5, 0.5));
    b.calls(&[Fail, Fail, Fail, Succeed]);
    assert_eq!(b.state(), CircuitState::Closed);
    assert!(b.call(Succeed));
    assert_eq!(b.state(), CircuitState::Open);
    assert_eq!(b.breaker.status().failure_rate, Some(0.6));
}

/// `shouldOpenAfterFailureRateThresholdExceeded2`: S, S, S, F, F one second apart is 40 %;
/// a sixth call, a failure, makes it exactly 50 %, which opens (the threshold is inclusive).
#[test]
fn r4j_should_open_after_failure_rate_threshold_exceeded2_exactly_at_threshold() {
    let b = Bench::new(r4j_setup());
    for end in [Succeed, Succeed, Succeed, Fail] {
        assert!(b.call(end));
        b.advance(1.0);
    }
    assert!(b.call(Fail));
    assert_eq!(b.state(), CircuitState::Closed, "2 of 5: 40 %");
    b.advance(1.0);
    assert_eq!(b.state(), CircuitState::Closed);
    assert!(b.call(Fail));
    assert_eq!(b.state(), CircuitState::Open, "3 of 6: exactly 50 %");
    assert_eq!(
        b.breaker.try_acquire().unwrap_err().failure_rate(),
        Some(0.5)
    );
}

/// `assertCircuitBreakerMetricsEqualTo(-1f, ...)` below the minimum: the window holds the calls,
/// but no rate decides before `minimum_calls`, however high it is.
#[test]
fn r4j_no_decision_below_the_minimum_number_of_calls() {
    let b = Bench::new(r4j_setup());
    b.calls(&[Fail, Fail, Fail, Fail]);
    assert_eq!(b.state(), CircuitState::Closed);
    let status = b.breaker.status();
    assert_eq!(
        (status.window_calls, status.failure_rate),
        (Some(4), Some(1.0))
    );
    assert_eq!(
        status.failure_count, 4,
        "consecutive failures are still shown"
    );
}

/// resilience4j's `minimumNumberOfCalls` docs: with a count window smaller than the minimum, the
/// window size is the minimum.
#[test]
fn r4j_minimum_calls_is_capped_at_the_count_window_size() {
    let b = Bench::new(count_rule(3, 100, 0.5));
    b.calls(&[Succeed, Fail]);
    assert_eq!(b.state(), CircuitState::Closed);
    assert!(b.call(Fail));
    assert_eq!(
        b.state(),
        CircuitState::Open,
        "3 calls fill the window: 2 of 3"
    );
}

/// resilience4j's COUNT_BASED window is the exact last N calls: older calls fall out of it.
#[test]
fn r4j_count_window_holds_exactly_the_last_n_calls() {
    let b = Bench::new(count_rule(4, 4, 0.75));
    // [S F F S] = 50 %; the fifth call pushes the first success out: [F F S F] = 75 %.
    b.calls(&[Succeed, Fail, Fail, Succeed]);
    assert_eq!(b.state(), CircuitState::Closed);
    assert_eq!(b.breaker.status().failure_rate, Some(0.5));
    assert!(b.call(Fail));
    assert_eq!(b.state(), CircuitState::Open);
    assert_eq!(b.breaker.status().window_calls, Some(4));
}

/// setUp's `ignoreExceptions(NumberFormatException.class)` with
/// `shouldIgnoreExceptionsAndThenTransitionToClosed`: ignored errors are not calls of the
/// window (our neutral, non-retryable ends).
#[test]
fn r4j_ignored_exceptions_are_not_calls_of_the_window() {
    let b = Bench::new(r4j_setup());
    b.calls(&[Fail, Fail, Neutral, Neutral, Neutral, Succeed, Neutral]);
    let status = b.breaker.status();
    assert_eq!(
        (status.window_calls, status.failure_rate),
        (Some(3), Some(2.0 / 3.0))
    );
    assert_eq!(b.state(), CircuitState::Closed);
    // A dropped permit (an async attempt cancelled) is neutral too.
    drop(b.breaker.try_acquire().unwrap());
    assert_eq!(b.breaker.status().window_calls, Some(3));
}

/// `shouldResetClosedState` / `shouldResetMetrics`: a reset empties the window.
#[test]
fn r4j_should_reset_closed_state() {
    let b = Bench::new(r4j_setup());
    b.calls(&[Succeed, Fail]);
    assert_eq!(b.breaker.status().window_calls, Some(2));
    b.breaker.reset();
    let status = b.breaker.status();
    assert_eq!((status.window_calls, status.failure_rate), (Some(0), None));
}

// ---------------------------------------------------------------------------------------------
// resilience4j CircuitBreakerStateMachineTest: slow calls
// ---------------------------------------------------------------------------------------------

/// `shouldOpenAfterSlowCallRateThresholdExceeded`: slow failure, slow success, fast failure,
/// fast success, slow success: 40 % failures (below 50 %) but 60 % slow calls, which opens it.
#[test]
fn r4j_should_open_after_slow_call_rate_threshold_exceeded() {
    let b = Bench::new(r4j_setup());
    let slow = secs(5.0);
    let fast = secs(0.1);
    for end in [
        End::SlowFail(slow),
        End::SlowOk(slow),
        End::SlowFail(fast),
        End::SlowOk(fast),
    ] {
        assert!(b.call(end));
        assert_eq!(b.state(), CircuitState::Closed);
    }
    assert!(b.call(End::SlowOk(slow)));
    assert_eq!(b.state(), CircuitState::Open);
    let status = b.breaker.status();
    assert_eq!(
        (
            status.window_calls,
            status.failure_rate,
            status.slow_call_rate
        ),
        (Some(5), Some(0.4), Some(0.6))
    );
    let err = b.breaker.try_acquire().unwrap_err();
    assert_eq!(err.opened_by(), Some(OpenCause::SlowCallRate));
    assert_eq!(
        (err.failure_rate(), err.slow_call_rate()),
        (Some(0.4), Some(0.6))
    );
    assert!(
        err.to_string()
            .contains("(slow-call rate 60.0% of 5 calls)"),
        "{err}"
    );
}

/// `shouldOpenAfterSlowCallRateThresholdExceededUsingMockClock`: the calls move the mock clock
/// themselves (5 s, 5 s, 1 s, 1 s, 5 s); slow means at least `duration` (4 s) of its clock.
#[test]
fn r4j_should_open_after_slow_call_rate_threshold_exceeded_using_mock_clock() {
    let b = Bench::new(r4j_setup());
    let expected_slow = [1, 2, 2, 2];
    for (i, s) in [5.0, 5.0, 1.0, 1.0].into_iter().enumerate() {
        assert!(b.call(End::SlowOk(secs(s))));
        let status = b.breaker.status();
        assert_eq!(status.window_calls, Some(i as u32 + 1));
        let slow = status.slow_call_rate.unwrap() * (i + 1) as f64;
        assert_eq!(slow.round() as u32, expected_slow[i]);
        assert_eq!(b.state(), CircuitState::Closed);
    }
    assert!(b.call(End::SlowOk(secs(5.0))));
    assert_eq!(b.state(), CircuitState::Open);
    assert_eq!(b.breaker.status().slow_call_rate, Some(0.6));
}

/// A call exactly `duration` long is slow (resilience4j compares `>=` the threshold).
#[test]
fn r4j_a_call_exactly_at_the_slow_call_duration_is_slow() {
    let mut config = count_rule(2, 2, 1.0);
    config.slow_call = Some(SlowCall {
        duration: secs(4.0),
        rate_threshold: 1.0,
    });
    let b = Bench::new(config);
    b.calls(&[End::SlowOk(secs(4.0))]);
    assert_eq!(b.breaker.status().slow_call_rate, Some(1.0));
    b.calls(&[End::SlowOk(secs(4.0))]);
    assert_eq!(b.state(), CircuitState::Open);
}

/// resilience4j's CircuitBreakerConfig: the slow-call rule alone uses the default window (the
/// last 100 calls, at least 100), and failures then open by the consecutive rule.
#[test]
fn r4j_slow_call_rule_alone_uses_the_default_window() {
    let config = CircuitBreakerConfig {
        slow_call: Some(SlowCall {
            duration: secs(1.0),
            rate_threshold: 0.5,
        }),
        failure_threshold: 3,
        ..CircuitBreakerConfig::default()
    };
    let b = Bench::new(config.clone());
    for _ in 0..99 {
        assert!(b.call(End::SlowOk(secs(2.0))));
    }
    assert_eq!(
        b.state(),
        CircuitState::Closed,
        "99 calls: below the minimum of 100"
    );
    assert!(b.call(End::SlowOk(secs(2.0))));
    assert_eq!(b.state(), CircuitState::Open);

    let b = Bench::new(config);
    b.calls(&[Fail, Fail]);
    assert_eq!(b.state(), CircuitState::Closed);
    assert!(b.call(Fail));
    assert_eq!(b.state(), CircuitState::Open);
    assert_eq!(
        b.breaker.try_acquire().unwrap_err().opened_by(),
        Some(OpenCause::ConsecutiveFailures)
    );
}

/// With a failure-rate rule, `failure_threshold` is not used: ten failures in a row below the
/// minimum do not open it.
#[test]
fn failure_threshold_is_not_used_with_a_failure_rate_rule() {
    let mut config = count_rule(100, 20, 0.5);
    config.failure_threshold = 2;
    let b = Bench::new(config);
    b.calls(&[Fail; 10]);
    assert_eq!(b.state(), CircuitState::Closed);
}

// ---------------------------------------------------------------------------------------------
// resilience4j CircuitBreakerStateMachineTest: half-open
// ---------------------------------------------------------------------------------------------

/// Opens the r4j breaker by its failure rate and lets it turn half-open (5 s later).
fn r4j_half_open(b: &Bench) {
    b.calls(&[Fail, Fail, Fail, Fail, Fail]);
    assert_eq!(b.state(), CircuitState::Open);
    b.advance(5.0);
    assert_eq!(b.state(), CircuitState::HalfOpen);
}

/// `shouldTransitionBackToOpenStateWhenFailureRateIsAboveThreshold` runs F, F, S, F through 4
/// trial calls and re-opens on the rate (75 %). Our half-open rule differs on purpose: the
/// first retryable failure of a trial call re-opens (see `CircuitBreaker`'s docs).
#[test]
fn r4j_should_transition_back_to_open_state_when_failure_rate_is_above_threshold_our_rule() {
    let b = Bench::new(CircuitBreakerConfig {
        max_half_open_wait: None,
        ..r4j_setup()
    });
    r4j_half_open(&b);
    assert!(b.call(Fail));
    assert_eq!(
        b.state(),
        CircuitState::Open,
        "one failed trial call re-opens"
    );
    let err = b.breaker.try_acquire().unwrap_err();
    assert_eq!(err.opened_by(), Some(OpenCause::TrialFailure));
    assert_eq!(err.failure_rate(), None);
    assert_eq!(
        b.breaker.status().current_timeout,
        7.5,
        "the next step of the ladder"
    );
}

/// `shouldTransitionBackToClosedStateWhenFailureIsBelowThreshold`: resilience4j closes after 4
/// trial calls at 25 %; ours closes after `success_threshold` successes, and the closed breaker
/// starts with an empty window ("Call 5 is a success and fills the buffer in closed state").
#[test]
fn r4j_should_transition_back_to_closed_state_our_rule_and_empty_window() {
    let b = Bench::new(CircuitBreakerConfig {
        success_threshold: 3,
        max_half_open_wait: None,
        ..r4j_setup()
    });
    r4j_half_open(&b);
    b.calls(&[Succeed, Succeed]);
    assert_eq!(b.state(), CircuitState::HalfOpen);
    assert_eq!(
        b.breaker.status().window_calls,
        Some(5),
        "the window that opened it, kept"
    );
    b.calls(&[Succeed]);
    assert_eq!(b.state(), CircuitState::Closed);
    let status = b.breaker.status();
    assert_eq!((status.window_calls, status.failure_rate), (Some(0), None));
    b.calls(&[Succeed]);
    assert_eq!(b.breaker.status().window_calls, Some(1));
}

/// `shouldTransitionBackToOpenStateWhenSlowCallRateIsAboveThreshold`: resilience4j re-opens on
/// three slow trial successes of four. Ours counts a slow trial success as a success: the
/// trial calls decide whether the service answers, and the window judges slowness once closed.
#[test]
fn r4j_slow_trial_calls_are_successes_under_our_half_open_rule() {
    let b = Bench::new(CircuitBreakerConfig {
        success_threshold: 2,
        max_half_open_wait: None,
        ..r4j_setup()
    });
    r4j_half_open(&b);
    // Slow (4 s or more) but within the trial's lease (the 5 s open timeout): a trial still
    // running past it no longer holds its slot, and its result counts nothing.
    b.calls(&[End::SlowOk(secs(4.5)), End::SlowOk(secs(4.5))]);
    assert_eq!(b.state(), CircuitState::Closed);
}

/// `shouldReleasePermissionWhenExceptionIgnored`: an ignored error in half-open gives its slot
/// back and changes nothing.
#[test]
fn r4j_should_release_permission_when_exception_ignored() {
    let b = Bench::new(CircuitBreakerConfig {
        half_open_max_calls: 1,
        max_half_open_wait: None,
        ..r4j_setup()
    });
    r4j_half_open(&b);
    b.calls(&[Neutral, Neutral, Neutral, Neutral]);
    assert_eq!(b.state(), CircuitState::HalfOpen);
    assert_eq!(b.breaker.status().half_open_calls, 0);
    b.calls(&[Succeed]);
    assert_eq!(b.state(), CircuitState::Closed);
}

// ---------------------------------------------------------------------------------------------
// resilience4j maxWaitDurationInHalfOpenState
// ---------------------------------------------------------------------------------------------

/// `circuitBreakerTransitionsToOpenAfterWaitDurationInHalfOpenState`: with a max wait of 1 s, a
/// breaker half-open (with a trial call that never ends) is OPEN 2 s later, with the next open
/// timeout of the ladder, and the late trial result changes nothing.
#[test]
fn r4j_circuit_breaker_transitions_to_open_after_wait_duration_in_half_open_state() {
    let b = Bench::new(r4j_setup());
    r4j_half_open(&b);
    let probe = b.breaker.try_acquire().expect("a trial call");
    assert_eq!(b.breaker.status().half_open_calls, 1);
    b.advance(0.999);
    assert_eq!(b.state(), CircuitState::HalfOpen);
    b.advance(1.001); // 2 s after it turned half-open
    let status = b.breaker.status();
    assert_eq!(
        status.state,
        CircuitState::Open,
        "evaluated lazily, by the status"
    );
    assert_eq!(status.current_timeout, 7.5);
    assert_eq!(status.half_open_calls, 0);
    // Re-opened when the wait ran out (1 s after half-open), for 7.5 s: 6.5 s left.
    let err = b.breaker.try_acquire().unwrap_err();
    assert_eq!(err.opened_by(), Some(OpenCause::HalfOpenTimeout));
    assert_eq!(err.remaining(), secs(6.5));
    assert!(
        err.to_string()
            .contains("(half-open too long without closing)"),
        "{err}"
    );
    probe.record_success();
    assert_eq!(
        b.state(),
        CircuitState::Open,
        "the stale trial call counts for nothing"
    );
    assert_eq!(
        b.changes.lock().unwrap()[1..],
        [
            (CircuitState::Open, CircuitState::HalfOpen),
            (CircuitState::HalfOpen, CircuitState::Open)
        ]
    );
    // The ladder goes on: half-open again 6.5 s later.
    b.advance(6.5);
    assert_eq!(b.state(), CircuitState::HalfOpen);
    b.calls(&[Succeed]);
    assert_eq!(b.state(), CircuitState::Closed);
}

/// PEER-SCENARIOS R4J-11 (resilience4j issues #935, #1389): the wait runs from the moment the
/// breaker turned half-open, not from its deadline: a breaker nobody called for a long time
/// still gets its trial call.
#[test]
fn r4j_max_wait_runs_from_entering_half_open_not_from_the_deadline() {
    let b = Bench::new(r4j_setup());
    b.calls(&[Fail, Fail, Fail, Fail, Fail]);
    b.advance(3600.0);
    assert_eq!(b.state(), CircuitState::HalfOpen);
    assert!(
        b.call(Succeed),
        "the first call an hour later is a trial call"
    );
    assert_eq!(b.state(), CircuitState::Closed);
}

/// A half-open breaker whose max wait passed long ago, and whose next open period passed too,
/// goes through OPEN to HALF_OPEN at the next call, announcing both changes.
#[test]
fn r4j_max_wait_and_the_next_open_period_both_over() {
    let b = Bench::new(r4j_setup());
    r4j_half_open(&b);
    let probe = b.breaker.try_acquire().unwrap();
    b.advance(100.0);
    assert_eq!(
        b.state(),
        CircuitState::HalfOpen,
        "re-opened at 1 s, half-open at 8.5 s"
    );
    assert!(b.call(Succeed));
    assert_eq!(b.state(), CircuitState::Closed);
    drop(probe);
    let changes = b.changes.lock().unwrap();
    assert_eq!(
        changes[1..],
        [
            (CircuitState::Open, CircuitState::HalfOpen),
            (CircuitState::HalfOpen, CircuitState::Open),
            (CircuitState::Open, CircuitState::HalfOpen),
            (CircuitState::HalfOpen, CircuitState::Closed),
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Polly AdvancedCircuitBehaviorTests
// ---------------------------------------------------------------------------------------------

/// `OnActionFailure_WhenClosed_EnsureCorrectBehavior`, its five cases
/// (throughput, minimum throughput, failure rate, threshold, should break): the breaker breaks
/// when the throughput reaches the minimum and the failure rate reaches the threshold.
#[test]
fn polly_on_action_failure_when_closed_ensure_correct_behavior() {
    for (throughput, minimum, rate, threshold, should_break) in [
        (10_u32, 10_u32, 0.0_f64, 0.1_f64, false),
        (10, 10, 0.1, 0.1, true),
        (10, 10, 0.2, 0.1, true),
        (11, 10, 0.2, 0.1, true),
        (9, 10, 0.1, 0.1, false),
    ] {
        let config = CircuitBreakerConfig {
            failure_rate: Some(FailureRate {
                window: Window::Time(secs(30.0)),
                minimum_calls: minimum,
                threshold,
            }),
            ..CircuitBreakerConfig::default()
        };
        let b = Bench::new(config);
        let failures = (rate * f64::from(throughput)).round() as u32;
        // Successes first, failures last: the decision falls on a failure, as in OnActionFailure.
        for i in 0..throughput {
            let end = if i < throughput - failures {
                Succeed
            } else {
                Fail
            };
            if !b.call(end) {
                break;
            }
        }
        assert_eq!(
            b.state() == CircuitState::Open,
            should_break,
            "throughput {throughput}, minimum {minimum}, rate {rate}, threshold {threshold}"
        );
    }
}

/// `OnActionFailure_State_EnsureCorrectCalls` (HalfOpen: no failure counted in the health
/// metrics): a failed trial call is not a call of the window.
#[test]
fn polly_on_action_failure_in_half_open_is_not_counted_in_the_window() {
    let b = Bench::new(CircuitBreakerConfig {
        max_half_open_wait: None,
        ..r4j_setup()
    });
    r4j_half_open(&b);
    b.calls(&[Fail]);
    assert_eq!(b.breaker.status().window_calls, Some(5));
}

// ---------------------------------------------------------------------------------------------
// gobreaker rolling window
// ---------------------------------------------------------------------------------------------

/// `TestRollingWindowCircuitBreaker` (`newRollingWindow`: an interval of 30 s, trip when at
/// least 3 counted calls fail at 60 % or more, excluded errors not counted). Our window is 30 s
/// of 1 s buckets where gobreaker's is ten of 3 s; at the test's instants they hold the same
/// calls.
#[test]
fn gobreaker_test_rolling_window_circuit_breaker() {
    let b = Bench::new(CircuitBreakerConfig {
        failure_rate: Some(FailureRate {
            window: Window::Time(secs(30.0)),
            minimum_calls: 3,
            threshold: 0.6,
        }),
        ..CircuitBreakerConfig::default()
    });
    let counts = |calls: u32, failures: u32| {
        let s = b.breaker.status();
        assert_eq!(s.window_calls, Some(calls));
        assert_eq!(
            (s.failure_rate.unwrap() * f64::from(calls)).round() as u32,
            failures
        );
    };
    for _ in 0..5 {
        b.calls(&[Succeed, Fail, Neutral]);
    }
    assert_eq!(b.state(), CircuitState::Closed);
    counts(10, 5);

    b.advance(3.0);
    b.calls(&[Succeed]);
    counts(11, 5);
    b.advance(2.0);
    b.calls(&[Succeed, Neutral]);
    counts(12, 5);
    b.advance(2.0);
    b.calls(&[Neutral, Succeed]);
    counts(13, 5);
    b.advance(2.0);
    b.calls(&[Fail]);
    counts(14, 6);
    // fill all the buckets
    for i in 0..6 {
        b.advance(3.0);
        b.calls(&[Succeed, Fail]);
        counts(16 + 2 * i, 7 + i);
    }
    // the first bucket is discarded (30 s after it)
    b.advance(3.0);
    b.calls(&[Fail]);
    counts(17, 8);
    for i in 0..5 {
        b.calls(&[Fail]);
        counts(18 + i, 9 + i);
    }
    assert_eq!(b.state(), CircuitState::Closed, "13 of 22: 59 %");
    b.calls(&[Fail]);
    assert_eq!(b.state(), CircuitState::Open, "14 of 23 >= 60 %");
    assert_eq!(
        *b.changes.lock().unwrap(),
        [(CircuitState::Closed, CircuitState::Open)]
    );
}

/// `TestRollingWindowCircuitBreakerInParallel`: successes from many threads at once are all
/// counted (here on the time window's lock-free stripes), and a failure after them sees them.
#[test]
fn gobreaker_test_rolling_window_circuit_breaker_in_parallel() {
    let b = Bench::new(CircuitBreakerConfig {
        failure_rate: Some(FailureRate {
            window: Window::Time(secs(30.0)),
            minimum_calls: 3,
            threshold: 0.6,
        }),
        ..CircuitBreakerConfig::default()
    });
    const THREADS: u32 = 8;
    const CALLS: u32 = 5_000;
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                for _ in 0..CALLS {
                    assert!(b.call(Succeed));
                }
            });
        }
    });
    assert_eq!(b.breaker.status().window_calls, Some(THREADS * CALLS));
    b.calls(&[Fail]);
    let status = b.breaker.status();
    assert_eq!(status.window_calls, Some(THREADS * CALLS + 1));
    assert_eq!(b.state(), CircuitState::Closed);
    // A second later, still in the window.
    b.advance(1.0);
    b.calls(&[Succeed]);
    assert_eq!(b.breaker.status().window_calls, Some(THREADS * CALLS + 2));
}

/// The same, with failures mixed in: folds under the mutex (a failure, a new second) race with
/// lock-free successes on the stripes, and no call is lost or counted twice.
#[test]
fn gobreaker_rolling_window_in_parallel_with_failures_and_new_buckets() {
    let b = Bench::new(CircuitBreakerConfig {
        failure_rate: Some(FailureRate {
            window: Window::Time(secs(3600.0)),
            minimum_calls: 1,
            threshold: 0.9,
        }),
        ..CircuitBreakerConfig::default()
    });
    const THREADS: u32 = 4;
    const ROUNDS: u32 = 2_000;
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let b = &b;
            s.spawn(move || {
                for i in 0..ROUNDS {
                    for end in [Succeed, Succeed, Succeed, Fail] {
                        assert!(b.call(end));
                    }
                    if t == 0 && i % 100 == 0 {
                        b.advance(1.0); // a new bucket now and then
                    }
                }
            });
        }
    });
    let status = b.breaker.status();
    assert_eq!(status.window_calls, Some(THREADS * ROUNDS * 4));
    assert_eq!(status.failure_rate, Some(0.25));
    assert_eq!(status.state, CircuitState::Closed);
}

// ---------------------------------------------------------------------------------------------
// The window's edges: time, restarts, configuration
// ---------------------------------------------------------------------------------------------

/// resilience4j's TIME_BASED window (and Polly's SamplingDuration): calls older than the window
/// leave it, a bucket at a time; a failure rate that was too high forgets itself.
#[test]
fn r4j_time_window_forgets_calls_older_than_the_window() {
    let b = Bench::new(r4j_setup());
    b.calls(&[Fail, Fail, Fail, Succeed]);
    b.advance(19.0);
    assert_eq!(b.breaker.status().window_calls, Some(4));
    b.advance(1.0);
    assert_eq!(b.breaker.status().window_calls, Some(0), "20 s later: gone");
    b.calls(&[Succeed, Succeed, Succeed, Fail, Fail]);
    assert_eq!(
        b.state(),
        CircuitState::Closed,
        "2 of 5, the old failures forgotten"
    );
}

/// A window shorter than ten seconds has buckets of a tenth of it.
#[test]
fn a_short_time_window_has_finer_buckets() {
    let b = Bench::new(CircuitBreakerConfig {
        failure_rate: Some(FailureRate {
            window: Window::Time(secs(2.0)),
            minimum_calls: 2,
            threshold: 0.5,
        }),
        ..CircuitBreakerConfig::default()
    });
    b.calls(&[Fail]);
    b.advance(1.9);
    assert_eq!(b.breaker.status().window_calls, Some(1));
    b.advance(0.1);
    assert_eq!(b.breaker.status().window_calls, Some(0));
}

/// The decision: a restarted breaker starts with an empty window (the state file keeps state,
/// counts and deadlines, not the calls of a window). Three failures below the minimum of five
/// before the restart do not count after it.
#[test]
fn a_restart_does_not_keep_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("breakers.json");
    let config = count_rule(10, 5, 0.5);
    {
        let registry = CircuitBreakerRegistry::with_state_file(&path).unwrap();
        let breaker = registry.get_breaker("svc", "op");
        breaker.configure(&config);
        for _ in 0..4 {
            breaker.try_acquire().unwrap().record_failure();
        }
        assert_eq!(breaker.status().window_calls, Some(4));
        registry.flush().unwrap();
    }
    let registry = CircuitBreakerRegistry::with_state_file(&path).unwrap();
    let breaker = registry.get_breaker("svc", "op");
    breaker.configure(&config);
    let status = breaker.status();
    assert_eq!(status.state, CircuitState::Closed);
    assert_eq!(status.window_calls, Some(0));
    breaker.try_acquire().unwrap().record_failure();
    assert_eq!(
        breaker.state(),
        CircuitState::Closed,
        "1 call in the window, not 5"
    );
}

/// A breaker opened by its rate and restored from the state file stays open for the rest of its
/// time; what opened it is not kept.
#[test]
fn a_restored_open_breaker_stays_open_without_its_cause() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("breakers.json");
    let config = count_rule(2, 2, 0.5);
    {
        let registry = CircuitBreakerRegistry::with_state_file(&path).unwrap();
        let breaker = registry.get_breaker("svc", "op");
        breaker.configure(&config);
        breaker.try_acquire().unwrap().record_failure();
        breaker.try_acquire().unwrap().record_failure();
        assert_eq!(breaker.state(), CircuitState::Open);
        registry.flush().unwrap();
    }
    let registry = CircuitBreakerRegistry::with_state_file(&path).unwrap();
    let breaker = registry.get_breaker("svc", "op");
    breaker.configure(&config);
    let err = breaker.try_acquire().unwrap_err();
    assert_eq!((err.opened_by(), err.failure_rate()), (None, None));
}

/// Changing the rules starts an empty window; changing anything else keeps it.
#[test]
fn a_new_rule_starts_an_empty_window() {
    let b = Bench::new(count_rule(10, 5, 0.5));
    b.calls(&[Fail, Fail]);
    b.breaker.configure(&CircuitBreakerConfig {
        reset_timeout: secs(10.0),
        ..count_rule(10, 5, 0.5)
    });
    assert_eq!(b.breaker.status().window_calls, Some(2));
    b.breaker.configure(&count_rule(10, 5, 0.6));
    assert_eq!(b.breaker.status().window_calls, Some(0));
    b.breaker.configure(&CircuitBreakerConfig::default());
    let status = b.breaker.status();
    assert_eq!(
        (
            status.window_calls,
            status.failure_rate,
            status.slow_call_rate
        ),
        (None, None, None)
    );
}

/// Without a rate rule the status has no window, and its JSON has none of the new keys.
#[test]
fn the_default_breaker_shows_no_window() {
    let b = Bench::new(CircuitBreakerConfig::default());
    b.calls(&[Succeed, Fail]);
    let json = serde_json::to_value(b.breaker.status()).unwrap();
    for key in ["window_calls", "failure_rate", "slow_call_rate"] {
        assert!(json.get(key).is_none(), "{key} in {json}");
    }
    for key in [
        "state",
        "failure_count",
        "success_count",
        "open_until",
        "current_timeout",
        "half_open_calls",
    ] {
        assert!(json.get(key).is_some(), "{key} missing from {json}");
    }
}

/// Invalid rules (which `validate` rejects) given to a breaker anyway are repaired to the
/// nearest valid ones: nothing panics, and calls go on.
#[test]
fn invalid_rules_never_panic() {
    for (window, minimum_calls, threshold) in [
        (Window::Count(0), 0, f64::NAN),
        (Window::Time(Duration::ZERO), 0, -1.0),
        (Window::Count(u32::MAX), u32::MAX, 2.0),
        (Window::Time(Duration::MAX), 1, 0.0),
    ] {
        let b = Bench::new(CircuitBreakerConfig {
            failure_rate: Some(FailureRate {
                window,
                minimum_calls,
                threshold,
            }),
            slow_call: Some(SlowCall {
                duration: Duration::ZERO,
                rate_threshold: f64::INFINITY,
            }),
            max_half_open_wait: Some(Duration::MAX),
            ..CircuitBreakerConfig::default()
        });
        for end in [Succeed, Fail, Neutral, End::SlowOk(secs(1.0)), Fail, Fail] {
            b.call(end);
        }
        b.advance(1e6);
        let _ = b.breaker.status();
        b.call(Succeed);
    }
}

// ---------------------------------------------------------------------------------------------
// Property: the time window's decision equals a reference computation
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum Step {
    Advance(u64),
    Ok,
    Fail,
    Neutral,
    SlowOk,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        2 => (0_u64..4_000).prop_map(Step::Advance),
        4 => Just(Step::Ok),
        2 => Just(Step::Fail),
        1 => Just(Step::Neutral),
        1 => Just(Step::SlowOk),
    ]
}

const WINDOW_MS: u64 = 10_000;
const BUCKET_MS: u64 = 1_000;
const SLOW_MS: u64 = 1_500;

/// The reference: every recorded call with its end time; the window at `now` holds the calls
/// whose one-second bucket is one of the last ten (the current one included).
fn reference_opens(
    calls: &[(u64, bool, bool)],
    now: u64,
    minimum: u64,
    fail_at: f64,
    slow_at: f64,
) -> bool {
    let current = now / BUCKET_MS;
    let held: Vec<_> = calls
        .iter()
        .filter(|(t, _, _)| current - t / BUCKET_MS < WINDOW_MS / BUCKET_MS)
        .collect();
    let n = held.len() as u64;
    if n == 0 || n < minimum {
        return false;
    }
    let failures = held.iter().filter(|c| c.1).count() as f64;
    let slow = held.iter().filter(|c| c.2).count() as f64;
    failures / n as f64 >= fail_at || slow / n as f64 >= slow_at
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn time_window_decision_equals_the_reference(
        steps in proptest::collection::vec(step(), 1..120),
        minimum in 1_u32..8,
        fail_at in prop_oneof![Just(0.25), Just(0.5), Just(0.75), Just(1.0)],
        slow_at in prop_oneof![Just(0.3), Just(0.6), Just(1.0)],
    ) {
        let b = Bench::new(CircuitBreakerConfig {
            failure_rate: Some(FailureRate {
                window: Window::Time(Duration::from_millis(WINDOW_MS)),
                minimum_calls: minimum,
                threshold: fail_at,
            }),
            slow_call: Some(SlowCall { duration: Duration::from_millis(SLOW_MS), rate_threshold: slow_at }),
            // Never half-open during a run: the property is about the closed breaker.
            reset_timeout: Duration::from_secs(3600),
            ..CircuitBreakerConfig::default()
        });
        let mut calls: Vec<(u64, bool, bool)> = Vec::new();
        for s in steps {
            let (failure, slow) = match s {
                Step::Advance(ms) => {
                    b.clock.advance(Duration::from_millis(ms));
                    continue;
                }
                Step::Neutral => {
                    prop_assert!(b.call(Neutral));
                    continue;
                }
                Step::Ok => (false, false),
                Step::Fail => (true, false),
                Step::SlowOk => (false, true),
            };
            let end = match s {
                Step::Fail => Fail,
                Step::SlowOk => End::SlowOk(Duration::from_millis(SLOW_MS)),
                _ => Succeed,
            };
            prop_assert!(b.call(end));
            let now = b.clock.now().as_millis() as u64;
            calls.push((now, failure, slow));
            let expected = reference_opens(&calls, now, u64::from(minimum), fail_at, slow_at);
            let status = b.breaker.status();
            prop_assert_eq!(status.state == CircuitState::Open, expected, "after {:?}: {:?}", calls, status);
            if expected {
                break; // open: the rest of the run would be rejected
            }
        }
    }
}
