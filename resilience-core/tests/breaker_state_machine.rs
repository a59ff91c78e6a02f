//! The breaker's state machine, driven by hand on a manual clock: the single-threaded scenarios
//! of PEER-SCENARIOS.md, each test named after its id, plus operator controls and the lease of a
//! hung trial call.

mod breaker_support;

use breaker_support::{cfg, secs, Call, Harness};
use resilience_core::{
    BreakerControl, CircuitBreakerConfig, CircuitBreakerRegistry, CircuitState, Clock, ManualClock,
};
use std::sync::Arc;
use std::time::Duration;
use CircuitState::{Closed, HalfOpen, Open};

#[test]
fn r4j_01_open_rejects_without_executing() {
    let h = Harness::new(cfg(2, 60.0, 1, 1));
    assert_eq!(h.fail(), Call::Ran);
    assert_eq!(h.fail(), Call::Ran);
    assert_eq!(h.state(), Open);
    assert_eq!(h.execs(), 2);
    assert_eq!(h.ok(), Call::Rejected);
    assert_eq!(h.execs(), 2, "a rejected call must not run");
}

#[test]
fn r4j_03_a_success_resets_the_consecutive_count() {
    // Translation A: F=5. F,F,F,S,S stays closed with the count back at 0.
    let h = Harness::new(cfg(5, 60.0, 1, 1));
    h.fail_n(3);
    h.ok();
    h.ok();
    assert_eq!((h.state(), h.failure_count()), (Closed, 0));
    h.fail_n(4);
    assert_eq!(h.state(), Closed);
    h.fail_n(1);
    assert_eq!(h.state(), Open);

    // Translation B: F=3. The third failure opens; the fourth call is rejected.
    let h = Harness::new(cfg(3, 60.0, 1, 1));
    h.fail_n(3);
    assert_eq!(h.state(), Open);
    assert_eq!(h.fail(), Call::Rejected);
    assert_eq!(h.execs(), 3);
}

#[test]
fn r4j_04_open_to_half_open_only_after_reset_timeout() {
    let h = Harness::new(cfg(1, 5.0, 1, 1));
    h.fail_n(1);
    h.advance(3.0);
    assert_eq!(h.ok(), Call::Rejected);
    h.advance(3.0);
    let hold = h.breaker.try_acquire().expect("admitted after the timeout");
    assert_eq!(h.state(), HalfOpen);
    let status = h.breaker.status();
    assert_eq!((status.success_count, status.half_open_calls), (0, 1));
    hold.record_success();
    assert_eq!(h.state(), Closed);
}

#[test]
fn r4j_05_the_open_timeout_grows_on_reopen() {
    let h = Harness::new(cfg(1, 5.0, 1, 1));
    h.fail_n(1);
    h.advance(6.0);
    assert_eq!(h.fail(), Call::Ran, "the probe runs");
    assert_eq!((h.state(), h.timeout()), (Open, 7.5));
    h.advance(6.0);
    assert_eq!(h.ok(), Call::Rejected);
    h.advance(1.5);
    assert_eq!(h.fail(), Call::Ran, "admitted at exactly 7.5 s");
    assert_eq!((h.state(), h.timeout()), (Open, 11.25));
}

#[test]
fn r4j_06_a_half_open_failure_reopens_and_late_probe_results_are_ignored() {
    let h = Harness::new(cfg(1, 60.0, 4, 4));
    h.fail_n(1);
    h.advance(60.0);
    let p1 = h.breaker.try_acquire().unwrap();
    let p2 = h.breaker.try_acquire().unwrap();
    let p3 = h.breaker.try_acquire().unwrap();
    p1.record_failure();
    assert_eq!((h.state(), h.timeout()), (Open, 90.0));
    assert_eq!(h.ok(), Call::Rejected);
    p2.record_success();
    p3.record_success();
    assert_eq!((h.state(), h.timeout()), (Open, 90.0));
    assert_eq!(h.opens(), 2);
}

#[test]
fn r4j_07_half_open_closes_after_success_threshold() {
    let h = Harness::new(cfg(2, 60.0, 4, 3));
    h.fail_n(2);
    h.advance(60.0);
    h.ok();
    assert_eq!(h.state(), HalfOpen);
    h.ok();
    assert_eq!(h.state(), HalfOpen);
    h.ok();
    assert_eq!(h.state(), Closed);
    h.fail_n(1);
    assert_eq!((h.state(), h.failure_count()), (Closed, 1));
    h.fail_n(1);
    assert_eq!((h.state(), h.timeout()), (Open, 60.0));
}

#[test]
fn r4j_08_a_non_failure_error_in_half_open_releases_its_slot() {
    let h = Harness::new(cfg(1, 60.0, 1, 1));
    h.fail_n(1);
    h.advance(60.0);
    // Neutral (D-N): stays half-open, and the slot is free for the next call.
    for _ in 0..4 {
        assert_eq!(h.biz(), Call::Ran);
        let status = h.breaker.status();
        assert_eq!((status.state, status.half_open_calls), (HalfOpen, 0));
    }
    assert_eq!(h.ok(), Call::Ran, "never rejected after a neutral error");
    assert_eq!(h.state(), Closed);
}

#[test]
fn r4j_09_manual_reset() {
    // 1. Reset from open, with no time passing.
    let h = Harness::new(cfg(5, 60.0, 1, 1));
    h.fail_n(5);
    assert_eq!(h.state(), Open);
    h.breaker.reset();
    assert_eq!(h.state(), Closed);
    assert_eq!(h.ok(), Call::Ran);

    // 2. Reset clears a partial streak.
    h.fail_n(4);
    h.breaker.reset();
    assert_eq!(h.failure_count(), 0);
    h.fail_n(4);
    assert_eq!(h.state(), Closed);
    h.fail_n(1);
    assert_eq!(h.state(), Open);

    // 3. Reset brings the ladder back to reset_timeout.
    for _ in 0..3 {
        h.advance(h.timeout());
        h.fail();
    }
    assert_eq!(h.timeout(), 202.5);
    h.registry.reset("svc", "op");
    h.fail_n(5);
    assert_eq!((h.state(), h.timeout()), (Open, 60.0));
}

#[test]
fn r4j_12_registry_same_key_same_breaker_and_independent_keys() {
    let clock = ManualClock::new();
    let registry = CircuitBreakerRegistry::with_clock(Arc::new(clock));
    let a = registry.get_breaker("svc", "op");
    let b = registry.get_breaker("svc", "op");
    assert!(Arc::ptr_eq(&a, &b));
    a.configure(&cfg(1, 60.0, 1, 1));
    a.try_acquire().unwrap().record_failure();
    assert_eq!(
        b.state(),
        Open,
        "failures through one handle open the other"
    );
    assert_eq!(registry.get_breaker("svc", "op2").state(), Closed);

    // Keys stay apart even where "service:operation" strings would collide.
    let x = registry.get_breaker("a", "b:c");
    let y = registry.get_breaker("a:b", "c");
    assert!(!Arc::ptr_eq(&x, &y));
    x.configure(&cfg(1, 60.0, 1, 1));
    x.try_acquire().unwrap().record_failure();
    assert_eq!((x.state(), y.state()), (Open, Closed));
}

#[test]
fn ply_01_non_consecutive_failures_do_not_open() {
    let h = Harness::new(cfg(2, 60.0, 1, 1));
    h.fail();
    h.ok();
    h.fail();
    assert_eq!(h.state(), Closed);

    let h = Harness::new(cfg(5, 60.0, 1, 1));
    h.fail_n(4);
    h.ok();
    h.fail_n(4);
    assert_eq!(h.state(), Closed);
    h.fail_n(1);
    assert_eq!(h.state(), Open);
}

#[test]
fn ply_02_the_fth_failure_opens_and_the_rejection_says_for_how_long() {
    let h = Harness::new(cfg(2, 60.0, 1, 1));
    h.fail_n(2);
    assert_eq!(h.state(), Open);
    h.advance(15.0);
    let err = h.breaker.try_acquire().unwrap_err();
    assert_eq!(err.remaining(), secs(45.0));
    let expected_until = (h.clock.unix_now() + secs(45.0)).as_secs_f64();
    assert_eq!(err.open_until(), Some(expected_until));
    assert_eq!((err.service(), err.operation()), ("svc", "op"));
    assert_eq!(h.execs(), 2);
}

#[test]
fn ply_03_errors_outside_the_handled_set_are_neutral() {
    // D-N = neutral: fail, biz, fail opens at F=2.
    let h = Harness::new(cfg(2, 60.0, 1, 1));
    h.fail();
    h.biz();
    assert_eq!(
        h.failure_count(),
        1,
        "a neutral error leaves the count alone"
    );
    h.fail();
    assert_eq!(h.state(), Open);
    // The peer's own sequence stays closed.
    let h = Harness::new(cfg(2, 60.0, 1, 1));
    h.fail();
    h.biz();
    h.biz();
    assert_eq!((h.state(), h.failure_count()), (Closed, 1));
}

#[test]
fn ply_04_half_open_exactly_at_the_break_duration() {
    let h = Harness::new(cfg(2, 60.0, 1, 1));
    h.fail_n(2);
    h.advance(59.999);
    assert_eq!(h.fail(), Call::Rejected);
    assert_eq!(h.state(), Open);
    h.advance(0.001);
    assert_eq!(
        h.state(),
        HalfOpen,
        "status reads half-open at open_until, inclusive"
    );
    assert_eq!(h.fail(), Call::Ran, "executed at exactly open_until");
}

#[test]
fn ply_05_a_probe_failure_reopens_for_longer() {
    let h = Harness::new(cfg(2, 60.0, 1, 1));
    h.fail_n(2);
    h.advance(60.0);
    assert_eq!(h.fail(), Call::Ran);
    assert_eq!((h.state(), h.timeout()), (Open, 90.0));
    assert_eq!(
        h.changes(),
        [(Closed, Open), (Open, HalfOpen), (HalfOpen, Open)]
    );
    h.advance(89.0);
    assert_eq!(h.ok(), Call::Rejected);
    h.advance(1.0);
    assert_eq!(h.ok(), Call::Ran);
}

#[test]
fn ply_06_a_probe_success_closes_and_a_full_threshold_is_needed_again() {
    let h = Harness::new(cfg(2, 60.0, 1, 1));
    h.fail_n(2);
    assert_eq!(h.ok(), Call::Rejected);
    assert_eq!(h.execs(), 2);
    h.advance(60.0);
    assert_eq!(h.ok(), Call::Ran);
    assert_eq!((h.state(), h.execs()), (Closed, 3));
    h.fail();
    assert_eq!(h.state(), Closed);
    h.fail();
    assert_eq!((h.state(), h.timeout()), (Open, 60.0));
}

#[test]
fn ply_08_a_hung_probe_loses_its_slot_once_the_open_timeout_passes_again() {
    let h = Harness::new(cfg(1, 60.0, 1, 1));
    h.fail_n(1);
    h.advance(60.0);
    let hung = h.breaker.try_acquire().expect("first probe");
    assert!(
        h.breaker.try_acquire().is_err(),
        "H=1: second probe rejected"
    );
    h.advance(59.999);
    assert!(
        h.breaker.try_acquire().is_err(),
        "lease still held 1 ms before"
    );
    assert_eq!(h.breaker.status().half_open_calls, 1);
    h.advance(0.001);
    assert_eq!(h.breaker.status().half_open_calls, 0, "the lease ran out");
    let second = h
        .breaker
        .try_acquire()
        .expect("a new probe after the lease ran out");
    // The hung probe's late result no longer counts: its slot went to the second probe.
    hung.record_failure();
    assert_eq!(h.state(), HalfOpen);
    assert_eq!(h.breaker.status().half_open_calls, 1);
    second.record_success();
    assert_eq!(h.state(), Closed);
}

#[test]
fn ply_08_the_lease_follows_the_grown_open_timeout() {
    let h = Harness::new(cfg(1, 60.0, 1, 1));
    h.fail_n(1);
    h.advance(60.0);
    h.fail(); // re-open for 90 s
    h.advance(90.0);
    let _hung = h.breaker.try_acquire().unwrap();
    h.advance(89.0);
    assert!(h.breaker.try_acquire().is_err());
    h.advance(1.0);
    assert!(h.breaker.try_acquire().is_ok());
}

#[test]
fn ply_09_late_results_while_open_change_nothing() {
    // A late failure: no second open event, no timer extension, no ladder step.
    let h = Harness::new(cfg(1, 60.0, 1, 1));
    let late = h.breaker.try_acquire().unwrap();
    h.advance(1.0);
    h.fail();
    assert_eq!(h.opens(), 1);
    h.advance(29.0);
    late.record_failure();
    assert_eq!((h.state(), h.opens()), (Open, 1));
    h.advance(31.0); // t0 + 61 = opened_at + 60
    let probe = h.breaker.try_acquire().expect("the timer was not extended");
    probe.record_failure();
    assert_eq!(
        h.timeout(),
        90.0,
        "the late failure did not move the ladder"
    );

    // A late success does not close it.
    let h = Harness::new(cfg(1, 60.0, 1, 1));
    let late = h.breaker.try_acquire().unwrap();
    h.advance(1.0);
    h.fail();
    h.advance(29.0);
    late.record_success();
    assert_eq!(h.state(), Open);
    assert_eq!(h.changes(), [(Closed, Open)]);
}

#[test]
fn closed_era_results_arriving_in_half_open_change_nothing() {
    let h = Harness::new(cfg(1, 60.0, 1, 2));
    let late_ok = h.breaker.try_acquire().unwrap();
    let late_fail = h.breaker.try_acquire().unwrap();
    h.fail();
    h.advance(60.0);
    let probe = h.breaker.try_acquire().unwrap();
    late_ok.record_success();
    late_fail.record_failure();
    let status = h.breaker.status();
    assert_eq!(
        (status.state, status.success_count, status.half_open_calls),
        (HalfOpen, 0, 1)
    );
    probe.record_success();
    assert_eq!(h.breaker.status().success_count, 1);
}

#[test]
fn results_from_before_a_reset_are_ignored() {
    let h = Harness::new(cfg(2, 60.0, 1, 1));
    h.fail();
    let before = h.breaker.try_acquire().unwrap();
    h.breaker.reset();
    before.record_failure();
    assert_eq!(h.failure_count(), 0);
}

#[test]
fn ply_11_the_reopen_ladder_restarts_after_close() {
    let h = Harness::new(cfg(1, 60.0, 1, 1));
    h.fail_n(1);
    for expected in [60.0, 90.0, 135.0, 202.5, 300.0] {
        assert_eq!(h.timeout(), expected);
        h.assert_open_for(secs(expected));
        // assert_open_for left a neutral probe behind; this one fails.
        h.fail();
    }
    h.advance(300.0);
    h.ok();
    assert_eq!((h.state(), h.timeout()), (Closed, 60.0));
    h.fail_n(1);
    for expected in [60.0, 90.0, 135.0] {
        assert_eq!(h.timeout(), expected);
        h.advance(expected);
        h.fail();
    }
}

#[test]
fn ply_12_time_arithmetic_saturates() {
    // A timeout as long as a Duration can be: open "until reset", no panic anywhere.
    let h = Harness::new(CircuitBreakerConfig {
        failure_threshold: 1,
        reset_timeout: Duration::MAX,
        max_open_timeout: Duration::MAX,
        open_timeout_increment_factor: 1e300,
        ..CircuitBreakerConfig::default()
    });
    h.fail_n(1);
    h.advance_by(Duration::from_secs(u64::MAX / 4));
    assert_eq!(h.ok(), Call::Rejected);
    let status = h.breaker.status();
    assert_eq!(status.state, Open);
    assert!(status.open_until.unwrap().is_finite());
    h.breaker.try_acquire().unwrap_err().to_string();

    // A huge factor saturates at the cap.
    let h = Harness::new(CircuitBreakerConfig {
        open_timeout_increment_factor: 1e300,
        ..cfg(1, 60.0, 1, 1)
    });
    h.fail_n(1);
    h.advance(60.0);
    h.fail();
    assert_eq!(h.timeout(), 300.0);

    // 10 000 re-opens at k=1.5 end at exactly the cap.
    let h = Harness::new(cfg(1, 60.0, 1, 1));
    h.fail_n(1);
    for _ in 0..10_000 {
        h.advance(h.timeout());
        assert_eq!(h.fail(), Call::Ran);
    }
    assert_eq!(h.timeout(), 300.0);

    // An infinite or NaN factor given at run time is repaired, not trusted.
    let h = Harness::new(CircuitBreakerConfig {
        open_timeout_increment_factor: f64::NAN,
        ..cfg(1, 60.0, 1, 1)
    });
    h.fail_n(1);
    h.advance(60.0);
    h.fail();
    assert_eq!(h.timeout(), 60.0);
}

#[test]
fn fs_01_full_state_walk() {
    let h = Harness::new(CircuitBreakerConfig {
        failure_threshold: 3,
        reset_timeout: secs(5.0),
        ..CircuitBreakerConfig::default()
    });
    for _ in 0..10 {
        h.ok();
    }
    h.fail_n(2);
    assert_eq!(h.state(), Closed);
    h.fail_n(1);
    assert_eq!((h.state(), h.timeout()), (Open, 5.0));
    let rejected = (0..10).filter(|_| h.ok() == Call::Rejected).count();
    assert_eq!(rejected, 10);
    h.advance(2.0);
    assert_eq!(h.ok(), Call::Rejected);
    h.advance(4.0);
    assert_eq!(h.fail(), Call::Ran, "permitted at 6 s, half-open");
    assert_eq!((h.state(), h.timeout()), (Open, 7.5));
    h.advance(5.0);
    assert_eq!(h.ok(), Call::Rejected);
    h.advance(2.5);
    assert_eq!(h.ok(), Call::Ran);
    assert_eq!(h.state(), Closed);
    for _ in 0..10 {
        h.ok();
    }
    h.fail_n(3);
    assert_eq!(h.state(), Open);
    h.breaker.reset();
    assert_eq!(h.state(), Closed);
    h.fail_n(3);
    assert_eq!(h.timeout(), 5.0, "the next trip uses T again");
}

#[test]
fn fs_02_the_nth_failure_trips_and_success_or_reset_restarts_the_count() {
    let h = Harness::new(cfg(3, 5.0, 1, 1));
    h.fail_n(2);
    assert_eq!(h.state(), Closed);
    h.fail_n(1);
    assert_eq!(h.state(), Open);

    let h = Harness::new(cfg(3, 5.0, 1, 1));
    h.fail();
    h.ok();
    h.fail_n(2);
    assert_eq!(h.state(), Closed);
    h.fail_n(1);
    assert_eq!(h.state(), Open);

    let h = Harness::new(cfg(3, 5.0, 1, 1));
    h.fail();
    h.breaker.reset();
    h.fail_n(2);
    assert_eq!(h.state(), Closed);
}

#[test]
fn fs_03_the_open_duration_ladder_grows_and_caps() {
    let h = Harness::new(cfg(1, 60.0, 1, 1));
    h.fail_n(1);
    for expected in [60.0, 90.0, 135.0, 202.5, 300.0, 300.0] {
        assert_eq!(h.timeout(), expected);
        h.assert_open_for(secs(expected));
        h.fail();
    }

    let h = Harness::new(CircuitBreakerConfig {
        open_timeout_increment_factor: 1.0,
        ..cfg(1, 60.0, 1, 1)
    });
    h.fail_n(1);
    for _ in 0..3 {
        assert_eq!(h.timeout(), 60.0);
        h.advance(60.0);
        h.fail();
    }

    let bad = CircuitBreakerConfig {
        open_timeout_increment_factor: 0.5,
        ..CircuitBreakerConfig::default()
    };
    assert_eq!(
        bad.validate().unwrap_err().field(),
        "open_timeout_increment_factor"
    );
}

#[test]
fn fs_04_errors_the_classification_does_not_count() {
    let h = Harness::new(cfg(1, 5.0, 1, 1));
    assert_eq!(h.biz(), Call::Ran);
    assert_eq!(h.biz(), Call::Ran);
    assert_eq!(h.state(), Closed);
    assert_eq!(h.fail(), Call::Ran);
    assert_eq!(h.state(), Open);
    assert_eq!(h.ok(), Call::Rejected);
}

#[test]
fn fs_05_half_open_admits_only_h_and_the_boundary_is_inclusive() {
    let h = Harness::new(cfg(1, 60.0, 1, 1));
    h.fail_n(1);
    h.advance(60.0);
    let hold = h
        .breaker
        .try_acquire()
        .expect("admitted at exactly t0 + 60");
    assert_eq!(h.ok(), Call::Rejected, "unlike failsafe-rs, H=1 admits one");
    drop(hold);
}

#[test]
fn rc_01_walk_with_the_reopen_ladder() {
    let h = Harness::new(CircuitBreakerConfig {
        open_timeout_increment_factor: 1.5,
        ..cfg(3, 1.0, 1, 2)
    });
    h.fail_n(2);
    assert_eq!(h.state(), Closed);
    h.fail_n(1);
    assert_eq!((h.state(), h.timeout()), (Open, 1.0));
    assert_eq!(h.ok(), Call::Rejected);
    h.advance(1.5);
    h.ok();
    assert_eq!((h.state(), h.breaker.status().success_count), (HalfOpen, 1));
    h.fail();
    assert_eq!((h.state(), h.timeout()), (Open, 1.5));
    assert_eq!(h.ok(), Call::Rejected);
    h.advance(1.5);
    h.ok();
    assert_eq!(h.state(), HalfOpen);
    h.ok();
    assert_eq!((h.state(), h.timeout()), (Closed, 1.0));
}

#[test]
fn rc_02_failures_of_any_kind_count_and_neutral_errors_never_trip() {
    let h = Harness::new(cfg(2, 60.0, 1, 1));
    h.fail(); // kind A
    h.fail(); // kind B: the breaker sees only "retryable failure"
    assert_eq!(h.state(), Open);
    let h = Harness::new(cfg(2, 60.0, 1, 1));
    for _ in 0..10 {
        assert_eq!(h.biz(), Call::Ran);
    }
    assert_eq!((h.state(), h.failure_count()), (Closed, 0));
}

#[test]
fn rc_03_the_open_timeout_function() {
    let h = Harness::new(cfg(1, 60.0, 1, 1));
    h.fail_n(1);
    let mut seen = vec![h.timeout()];
    for _ in 0..6 {
        h.advance(h.timeout());
        h.fail();
        seen.push(h.timeout());
    }
    assert_eq!(seen, [60.0, 90.0, 135.0, 202.5, 300.0, 300.0, 300.0]);
}

#[test]
fn pb_01_defaults_and_a_fresh_state() {
    let c = CircuitBreakerConfig::default();
    assert_eq!(
        (
            c.failure_threshold,
            c.reset_timeout,
            c.half_open_max_calls,
            c.success_threshold,
            c.open_timeout_increment_factor,
            c.max_open_timeout
        ),
        (5, secs(60.0), 1, 1, 1.5, secs(300.0))
    );
    let h = Harness::new(c);
    let status = h.breaker.status();
    assert_eq!(
        (
            status.state,
            status.failure_count,
            status.success_count,
            status.half_open_calls
        ),
        (Closed, 0, 0, 0)
    );
    assert_eq!((status.open_until, status.current_timeout), (None, 60.0));
    h.ok();
    assert_eq!(h.failure_count(), 0);
    h.fail();
    assert_eq!((h.state(), h.failure_count()), (Closed, 1));
}

#[test]
fn pb_02_a_success_resets_the_failure_counter() {
    let h = Harness::new(cfg(2, 60.0, 1, 1));
    h.fail();
    h.ok();
    assert_eq!(h.failure_count(), 0);
    h.fail();
    assert_eq!((h.state(), h.failure_count()), (Closed, 1));
    h.fail();
    assert_eq!(h.state(), Open);
}

#[test]
fn pb_03_the_tripping_call_ran_and_the_count_stays() {
    let h = Harness::new(cfg(3, 60.0, 1, 1));
    h.fail_n(3);
    assert_eq!(h.execs(), 3, "the tripping call was executed");
    assert_eq!((h.state(), h.failure_count()), (Open, 3));
    assert_eq!(h.fail(), Call::Rejected);
    assert_eq!(h.failure_count(), 3);
}

#[test]
fn pb_04_success_threshold_three() {
    let h = Harness::new(cfg(3, 60.0, 1, 3));
    h.fail_n(3);
    h.advance(60.0);
    let mut seen = Vec::new();
    for _ in 0..3 {
        h.ok();
        let s = h.breaker.status();
        seen.push((s.state, s.success_count));
    }
    assert_eq!(seen, [(HalfOpen, 1), (HalfOpen, 2), (Closed, 0)]);

    let h = Harness::new(cfg(3, 60.0, 1, 1));
    h.fail_n(3);
    h.advance(60.0);
    h.ok();
    assert_eq!(
        h.state(),
        Closed,
        "the default threshold closes on one success"
    );
}

#[test]
fn pb_05_a_half_open_failure_clears_the_success_count() {
    let h = Harness::new(cfg(3, 60.0, 1, 3));
    h.fail_n(3);
    h.advance(60.0);
    h.ok();
    h.ok();
    assert_eq!(h.breaker.status().success_count, 2);
    h.fail();
    let s = h.breaker.status();
    assert_eq!(
        (s.state, s.success_count, s.current_timeout),
        (Open, 0, 90.0)
    );
    h.advance(90.0);
    h.ok();
    h.ok();
    let s = h.breaker.status();
    assert_eq!(
        (s.state, s.success_count),
        (HalfOpen, 2),
        "counted from 0, not 2"
    );
}

#[test]
fn pb_06_state_change_notifications() {
    let h = Harness::new(cfg(1, 60.0, 1, 1));
    h.fail_n(1);
    h.advance(60.0);
    h.ok();
    assert_eq!(
        h.changes(),
        [(Closed, Open), (Open, HalfOpen), (HalfOpen, Closed)]
    );
    // Manual reset from open announces OPEN -> CLOSED; re-entering CLOSED announces nothing.
    h.fail_n(1);
    h.breaker.reset();
    h.breaker.reset();
    assert_eq!(&h.changes()[3..], [(Closed, Open), (Open, Closed)]);
}

#[test]
fn pb_07_excluded_errors_are_neutral() {
    // D-N = neutral: fail (1), biz (still 1), fail -> open at the third call.
    let h = Harness::new(cfg(2, 60.0, 1, 1));
    h.fail();
    h.biz();
    assert_eq!(h.failure_count(), 1);
    h.fail();
    assert_eq!(h.state(), Open);
}

#[test]
fn non_retryable_errors_leave_every_state_unchanged() {
    let h = Harness::new(cfg(3, 60.0, 2, 2));
    h.fail();
    h.biz();
    assert_eq!((h.state(), h.failure_count()), (Closed, 1));
    h.fail_n(2);
    h.advance(60.0);
    h.ok();
    h.biz();
    let s = h.breaker.status();
    assert_eq!(
        (s.state, s.success_count, s.half_open_calls),
        (HalfOpen, 1, 0)
    );
}

#[test]
fn force_open_holds_whatever_the_time_until_reset() {
    let h = Harness::new(cfg(5, 60.0, 1, 1));
    h.breaker.force_open();
    let s = h.breaker.status();
    assert_eq!(
        (s.state, s.control, s.open_until),
        (Open, BreakerControl::ForcedOpen, None)
    );
    h.advance(1e6);
    let err = h.breaker.try_acquire().unwrap_err();
    assert!(err.is_forced());
    assert_eq!(h.state(), Open);
    h.breaker.reset();
    assert_eq!(
        (h.state(), h.breaker.control()),
        (Closed, BreakerControl::Auto)
    );
    assert_eq!(h.ok(), Call::Ran);
    assert_eq!(h.changes(), [(Closed, Open), (Open, Closed)]);
}

#[test]
fn force_open_voids_trial_calls_in_flight() {
    let h = Harness::new(cfg(1, 60.0, 1, 1));
    h.fail_n(1);
    h.advance(60.0);
    let probe = h.breaker.try_acquire().unwrap();
    h.registry.force_open("svc", "op");
    probe.record_success();
    assert_eq!(h.state(), Open);
    assert_eq!(h.breaker.status().half_open_calls, 0);
}

#[test]
fn disable_keeps_the_breaker_closed_until_reset() {
    let h = Harness::new(cfg(1, 60.0, 1, 1));
    h.fail_n(1);
    h.registry.disable("svc", "op");
    assert_eq!(h.state(), Closed);
    for _ in 0..10 {
        assert_eq!(h.fail(), Call::Ran);
    }
    let s = h.breaker.status();
    assert_eq!(
        (s.state, s.failure_count, s.control),
        (Closed, 0, BreakerControl::Disabled)
    );
    h.breaker.reset();
    h.fail_n(1);
    assert_eq!(h.state(), Open, "automatic again after reset");
    assert_eq!(
        h.changes(),
        [(Closed, Open), (Open, Closed), (Closed, Open)]
    );
}

#[test]
fn report_success_and_report_failure_drive_the_breaker() {
    let h = Harness::new(cfg(5, 60.0, 1, 1));
    let config = cfg(2, 60.0, 1, 1);
    h.registry.report_failure("svc", "op", &config);
    h.registry.report_success("svc", "op");
    assert_eq!(h.failure_count(), 0);
    h.registry.report_failure("svc", "op", &config);
    h.registry.report_failure("svc", "op", &config);
    assert_eq!(h.state(), Open);
    h.registry.report_failure("svc", "op", &config);
    assert_eq!(h.failure_count(), 2, "nothing is recorded while open");
}

#[test]
fn status_is_as_of_now_and_serialises_like_the_original() {
    let h = Harness::new(cfg(1, 60.0, 1, 1));
    h.fail_n(1);
    h.advance(20.0);
    let status = h.registry.status();
    let json = serde_json::to_value(&status["svc:op"]).unwrap();
    assert_eq!(json["state"], "OPEN");
    assert_eq!(json["failure_count"], 1);
    let until = (h.clock.unix_now() + secs(40.0)).as_secs_f64();
    assert_eq!(json["open_until"].as_f64(), Some(until));
    assert_eq!(json["current_timeout"], 60.0);
    assert_eq!(json["half_open_calls"], 0);
    assert_eq!(json["control"], "AUTO");
    h.advance(40.0);
    let json = serde_json::to_value(&h.registry.status()["svc:op"]).unwrap();
    assert_eq!(json["state"], "HALF_OPEN");
    assert!(json["open_until"].is_null());
}

#[test]
fn configure_takes_effect_and_repairs_invalid_values() {
    let h = Harness::new(cfg(5, 60.0, 1, 1));
    h.breaker.configure(&CircuitBreakerConfig {
        failure_threshold: 0,
        half_open_max_calls: 0,
        success_threshold: 0,
        ..cfg(5, 10.0, 1, 1)
    });
    assert_eq!(
        h.timeout(),
        10.0,
        "a closed breaker takes the new reset_timeout"
    );
    h.fail();
    assert_eq!(h.state(), Open, "a zero threshold is repaired to 1");
    h.advance(10.0);
    let probe = h.breaker.try_acquire().unwrap();
    assert!(
        h.breaker.try_acquire().is_err(),
        "half_open_max_calls repaired to 1"
    );
    probe.record_success();
    assert_eq!(h.state(), Closed);
}

#[test]
fn results_from_an_earlier_closed_period_are_ignored() {
    // A call admitted before the breaker opened ends after it has closed again: it belongs to
    // a period that is over, so it neither starts a new streak nor ends one.
    let h = Harness::new(cfg(2, 60.0, 1, 1));
    let old_fail = h.breaker.try_acquire().unwrap();
    let old_ok = h.breaker.try_acquire().unwrap();
    h.fail_n(2);
    h.advance(60.0);
    h.ok();
    assert_eq!(h.state(), Closed);
    old_fail.record_failure();
    assert_eq!(h.failure_count(), 0);
    h.fail();
    old_ok.record_success();
    assert_eq!(h.failure_count(), 1);
}
