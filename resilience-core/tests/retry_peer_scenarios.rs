//! The retry scenarios of PEER-SCENARIOS.md (resilience4j, Polly, tenacity), each test named
//! after its scenario id. Time goes through a manual clock: sleeping records and advances it.

mod support;

use resilience_core::{Backoff, ErrorCategory, Jitter, RetryConfig, RetryManager, Rng};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::{manager, ms, no_jitter, secs, Script, TestError};

fn run(manager: &RetryManager, script: &mut Script) -> Result<u32, TestError> {
    manager.execute("svc", "op", || script.call())
}

#[test]
fn r4j_13_retry_attempt_accounting() {
    // ok: 1 exec, no sleep
    let (m, clock) = manager(no_jitter());
    let mut ok = Script::failing(0);
    assert_eq!(run(&m, &mut ok), Ok(1));
    assert_eq!((ok.execs, clock.sleeps()), (1, vec![]));

    // fail, ok: 2 execs, [0.1]
    let (m, clock) = manager(no_jitter());
    let mut once = Script::failing(1);
    assert_eq!(run(&m, &mut once), Ok(2));
    assert_eq!((once.execs, clock.sleeps()), (2, vec![ms(100)]));

    // always fail: 3 execs, [0.1, 0.2], the last error as it was
    let (m, clock) = manager(no_jitter());
    let mut always = Script::always_failing();
    assert_eq!(run(&m, &mut always), Err(TestError::Transient));
    assert_eq!((always.execs, clock.sleeps()), (3, vec![ms(100), ms(200)]));

    // max_attempts = 1: 1 exec, no sleep
    let (m, clock) = manager(RetryConfig {
        max_attempts: 1,
        ..no_jitter()
    });
    let mut always = Script::always_failing();
    assert_eq!(run(&m, &mut always), Err(TestError::Transient));
    assert_eq!((always.execs, clock.sleeps()), (1, vec![]));

    // non-retryable: 1 exec, no sleep, that error unwrapped
    let (m, clock) = manager(no_jitter());
    let mut fatal = Script::new([TestError::Of(ErrorCategory::Validation)]);
    assert_eq!(
        run(&m, &mut fatal),
        Err(TestError::Of(ErrorCategory::Validation))
    );
    assert_eq!((fatal.execs, clock.sleeps()), (1, vec![]));
}

#[test]
fn r4j_14_exponential_intervals_cap_exactly_and_jitter_stays_in_bounds() {
    let backoff = RetryConfig::default().backoff();
    let bases: Vec<Duration> = (1..=12).map(|n| backoff.base_delay(n)).collect();
    let expected_ms = [
        100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 51200, 60000, 60000,
    ];
    assert_eq!(bases, expected_ms.map(ms));
    assert!(bases[..10].windows(2).all(|w| w[0] < w[1]));

    let rng = Rng::seeded(14);
    for n in 1..=12 {
        let base = backoff.base_delay(n);
        let upper = base.mul_f64(1.1).min(backoff.max_delay);
        for _ in 0..10_000 {
            let d = backoff.delay(n, None, rng.next_f64());
            assert!(
                base <= d && d <= upper,
                "retry {n}: {d:?} not in [{base:?}, {upper:?}]"
            );
            assert!(d <= Duration::from_secs(60));
        }
    }
}

#[test]
fn ply_12_time_arithmetic_saturates() {
    let huge = Backoff {
        initial_delay: Duration::from_secs(u64::MAX / 4),
        max_delay: Duration::MAX,
        backoff_factor: 1e300,
        jitter_factor: 1.0,
        jitter: Jitter::Proportional,
    };
    for retry in [1, 2, 1000, u32::MAX] {
        for u in [0.0, 0.5, 0.999_999] {
            assert!(huge.delay(retry, None, u) <= Duration::MAX);
        }
    }
    let capped = Backoff {
        backoff_factor: 1e300,
        ..Backoff::default()
    };
    assert_eq!(capped.delay(10_000, None, 0.99), Duration::from_secs(60));
}

#[test]
fn ply_13_delays_are_exponential_capped_and_never_exceed_max_delay() {
    let b = RetryConfig::default().backoff();
    // jitter 0 follows the base table
    let no_jitter = Backoff {
        jitter_factor: 0.0,
        ..b
    };
    assert_eq!(
        (1..=3)
            .map(|n| no_jitter.delay(n, None, 0.7))
            .collect::<Vec<_>>(),
        [ms(100), ms(200), ms(400)]
    );
    // initial 10 s with max 1 s: every delay is the max, with and without jitter
    let over = Backoff {
        initial_delay: Duration::from_secs(10),
        max_delay: Duration::from_secs(1),
        ..b
    };
    for n in 1..=5 {
        assert_eq!(over.delay(n, None, 0.5), Duration::from_secs(1));
        assert_eq!(
            Backoff {
                jitter_factor: 0.0,
                ..over
            }
            .delay(n, None, 0.5),
            Duration::from_secs(1)
        );
    }
    // n = 1000: 60 s, no panic
    assert_eq!(b.delay(1000, None, 0.5), Duration::from_secs(60));
    // u near 1 at n = 11: exactly the cap (jitter, then cap)
    assert_eq!(b.delay(11, None, 0.999_999), Duration::from_secs(60));
    // u = 0 gives the base; u -> 1 at most 1.1 * base
    assert_eq!(b.delay(3, None, 0.0), ms(400));
    assert!(b.delay(3, None, 0.999_999) <= ms(440));
}

#[test]
fn ply_14_sleeps_per_retry_and_zero_delay_skips_the_sleeper() {
    let config = RetryConfig {
        max_attempts: 4,
        initial_delay: Duration::from_secs(1),
        ..no_jitter()
    };
    let (m, clock) = manager(config.clone());
    let mut always = Script::always_failing();
    assert!(run(&m, &mut always).is_err());
    assert_eq!(always.execs, 4);
    assert_eq!(clock.sleeps(), [1, 2, 4].map(Duration::from_secs));

    let (m, clock) = manager(config.clone());
    let mut twice = Script::failing(2);
    assert_eq!(run(&m, &mut twice), Ok(3));
    assert_eq!(clock.sleeps(), [1, 2].map(Duration::from_secs));

    let (m, clock) = manager(config.clone());
    let mut fatal = Script::new([TestError::Of(ErrorCategory::NotFound)]);
    assert!(run(&m, &mut fatal).is_err());
    assert_eq!((fatal.execs, clock.sleeps()), (1, vec![]));

    let (m, clock) = manager(RetryConfig {
        initial_delay: Duration::ZERO,
        ..config
    });
    let mut always = Script::always_failing();
    assert!(run(&m, &mut always).is_err());
    assert_eq!(always.execs, 4);
    assert!(
        clock.sleeps().is_empty(),
        "a zero delay must not call the sleeper"
    );
}

#[tokio::test(start_paused = true)]
async fn ply_15_dropping_the_call_during_the_backoff_sleep_stops_further_attempts() {
    // The real clock on tokio's paused time: the backoff sleep is a tokio timer.
    let m = RetryManager::builder()
        .default_config(RetryConfig {
            initial_delay: Duration::from_secs(10),
            ..no_jitter()
        })
        .build()
        .unwrap();
    let execs = Arc::new(Mutex::new(0u32));
    let counted = Arc::clone(&execs);
    let call = m.execute_async("svc", "op", move || {
        let counted = Arc::clone(&counted);
        async move {
            *counted.lock().unwrap() += 1;
            Err::<(), _>(TestError::Transient)
        }
    });
    // Cancel while it sleeps the first 10 s.
    assert!(tokio::time::timeout(Duration::from_secs(1), call)
        .await
        .is_err());
    tokio::time::advance(Duration::from_secs(100)).await;
    assert_eq!(*execs.lock().unwrap(), 1);
}

#[test]
fn tn_01_max_attempts_counts_every_attempt() {
    let (m, _) = manager(no_jitter());
    let mut always = Script::always_failing();
    assert!(run(&m, &mut always).is_err());
    assert_eq!(always.execs, 3);
    let zero = RetryConfig {
        max_attempts: 0,
        ..RetryConfig::default()
    };
    assert_eq!(zero.validate().unwrap_err().field(), "max_attempts");
}

#[test]
fn tn_02_the_cap_holds_for_any_attempt_without_overflow() {
    let b = Backoff {
        jitter_factor: 0.0,
        ..Backoff::default()
    };
    for n in [11, 12, 50, 10_000, u32::MAX] {
        assert_eq!(b.delay(n, None, 0.3), Duration::from_secs(60), "retry {n}");
    }
}

#[test]
fn tn_03_initial_delay_above_max_delay_is_rejected_and_never_sleeps_longer() {
    let config = RetryConfig {
        initial_delay: Duration::from_secs(5),
        max_delay: Duration::from_secs(1),
        ..RetryConfig::default()
    };
    assert_eq!(config.validate().unwrap_err().field(), "initial_delay");
    // Given anyway (as a per-call override), it is repaired: no sleep exceeds max_delay.
    let (m, clock) = manager(no_jitter());
    let mut always = Script::always_failing();
    let _ = m
        .call("svc", "op")
        .initial_delay(Duration::from_secs(5))
        .max_delay(Duration::from_secs(1))
        .run(|| always.call());
    assert!(clock.sleeps().iter().all(|d| *d <= Duration::from_secs(1)));
    assert_eq!(clock.sleeps().len(), 2);
}

#[test]
fn tn_04_jitter_bounds_and_exactly_the_max_at_the_cap() {
    let b = Backoff::default();
    let rng = Rng::seeded(4);
    for n in 1..=10 {
        let base = b.base_delay(n);
        let mut distinct = std::collections::BTreeSet::new();
        for _ in 0..1000 {
            let d = b.delay(n, None, rng.next_f64());
            assert!(base <= d && d <= base.mul_f64(1.1), "retry {n}: {d:?}");
            distinct.insert(d);
        }
        assert!(distinct.len() > 1, "the random source must be used");
    }
    assert!(b.delay(10, None, 0.999_999) <= Duration::from_secs_f64(56.32));
    for n in [11, 12] {
        for _ in 0..1000 {
            assert_eq!(b.delay(n, None, rng.next_f64()), Duration::from_secs(60));
        }
    }
}

#[test]
fn tn_05_retryable_and_non_retryable_errors() {
    let config = RetryConfig {
        max_attempts: 6,
        ..no_jitter()
    };
    let (m, clock) = manager(config.clone());
    let mut five = Script::failing(5);
    assert_eq!(run(&m, &mut five), Ok(6));
    assert_eq!(clock.sleeps(), [100, 200, 400, 800, 1600].map(ms));

    let (m, clock) = manager(config.clone());
    let mut fatal = Script::new([TestError::Of(ErrorCategory::Validation)]);
    assert_eq!(
        run(&m, &mut fatal),
        Err(TestError::Of(ErrorCategory::Validation))
    );
    assert_eq!((fatal.execs, clock.sleeps().len()), (1, 0));

    let (m, clock) = manager(config);
    let mut mixed = Script::new([
        TestError::Transient,
        TestError::Transient,
        TestError::Of(ErrorCategory::Authentication),
    ]);
    assert_eq!(
        run(&m, &mut mixed),
        Err(TestError::Of(ErrorCategory::Authentication))
    );
    assert_eq!(mixed.execs, 3);
    assert_eq!(clock.sleeps(), [ms(100), ms(200)]);
}

#[test]
fn tn_06_exhaustion_returns_the_last_error_and_the_attempt_count_is_in_the_metrics() {
    let (m, _) = manager(RetryConfig {
        max_attempts: 2,
        ..no_jitter()
    });
    let mut script = Script::new([TestError::Transient, TestError::Of(ErrorCategory::Timeout)]);
    assert_eq!(
        run(&m, &mut script),
        Err(TestError::Of(ErrorCategory::Timeout))
    );
    assert_eq!(script.execs, 2);
    let figures = m.metrics();
    let op = figures.get("svc", "op").unwrap();
    assert_eq!((op.calls, op.failures, op.attempts), (1, 1, 2));
}

#[test]
fn tn_07_per_call_statistics_attempts_and_idle_time() {
    let (m, _) = manager(no_jitter());
    let mut ok = Script::failing(0);
    run(&m, &mut ok).unwrap();
    let mut always = Script::always_failing();
    run(&m, &mut always).unwrap_err();
    let op = m.metrics().get("svc", "op").cloned().unwrap();
    assert_eq!(op.attempts, 1 + 3);
    assert!((op.wait_seconds - 0.3).abs() < 1e-9, "{}", op.wait_seconds);

    // with jitter 0.1: idle time in [0.3, 0.33]
    let (m, _) = manager(RetryConfig::default());
    let mut always = Script::always_failing();
    run(&m, &mut always).unwrap_err();
    let wait = m.metrics().get("svc", "op").unwrap().wait_seconds;
    assert!((0.3..=0.33).contains(&wait), "{wait}");

    // fail, fail, ok with max_attempts 5: 3 attempts, 0.3 s waited
    let (m, clock) = manager(RetryConfig {
        max_attempts: 5,
        ..no_jitter()
    });
    let mut twice = Script::failing(2);
    assert_eq!(run(&m, &mut twice), Ok(3));
    assert_eq!(clock.sleeps().iter().sum::<Duration>(), ms(300));
}

#[test]
fn tn_08_n_attempts_mean_n_minus_1_sleeps() {
    for (attempts, sleeps) in [(5, 4), (2, 1), (1, 0)] {
        let (m, clock) = manager(RetryConfig {
            max_attempts: attempts,
            initial_delay: Duration::from_secs(10),
            max_delay: Duration::from_secs(60),
            ..no_jitter()
        });
        let mut always = Script::always_failing();
        run(&m, &mut always).unwrap_err();
        assert_eq!(clock.sleeps().len(), sleeps, "max_attempts = {attempts}");
    }
    let (m, clock) = manager(RetryConfig {
        max_attempts: 1,
        initial_delay: Duration::from_secs(10),
        ..no_jitter()
    });
    run(&m, &mut Script::always_failing()).unwrap_err();
    assert_eq!(resilience_core::Clock::now(&clock), Duration::ZERO);
}

#[test]
fn tn_09_hooks_see_each_failed_attempt_and_its_delay() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    let (m, _) = manager(no_jitter());
    let mut twice = Script::failing(2);
    let result = m
        .call("svc", "op")
        .on_retry(move |e| record.lock().unwrap().push((e.attempt, e.delay)))
        .run(|| twice.call());
    assert_eq!(result, Ok(3));
    assert_eq!(*seen.lock().unwrap(), [(1, ms(100)), (2, ms(200))]);
}

#[tokio::test]
async fn tn_10_concurrent_calls_keep_independent_counters() {
    let (m, _) = manager(RetryConfig {
        initial_delay: Duration::ZERO,
        ..no_jitter()
    });
    let m = Arc::new(m);
    let tasks: Vec<_> = (0..2)
        .map(|_| {
            let m = Arc::clone(&m);
            tokio::spawn(async move {
                let seen = Arc::new(Mutex::new(Vec::new()));
                let inner = Arc::clone(&seen);
                let result = m
                    .execute_async("svc", "op", move || {
                        let inner = Arc::clone(&inner);
                        async move {
                            let attempt = {
                                let mut seen = inner.lock().unwrap();
                                let attempt = seen.len() + 1;
                                seen.push(attempt as u32);
                                attempt
                            };
                            tokio::task::yield_now().await;
                            if attempt < 3 {
                                Err(TestError::Transient)
                            } else {
                                Ok(attempt)
                            }
                        }
                    })
                    .await;
                let seen = seen.lock().unwrap().clone();
                (result, seen)
            })
        })
        .collect();
    for task in tasks {
        let (result, seen) = task.await.unwrap();
        assert_eq!(result, Ok(3));
        assert_eq!(seen, [1, 2, 3]);
    }
    let op = m.metrics().get("svc", "op").cloned().unwrap();
    assert_eq!((op.calls, op.attempts, op.retries), (2, 6, 4));
}

#[test]
fn ply_14_zero_delay_with_every_jitter_strategy_skips_the_sleeper() {
    for jitter in [
        Jitter::Proportional,
        Jitter::Full,
        Jitter::Equal,
        Jitter::Decorrelated,
    ] {
        let (m, clock) = manager(RetryConfig {
            initial_delay: Duration::ZERO,
            jitter,
            ..RetryConfig::default()
        });
        run(&m, &mut Script::always_failing()).unwrap_err();
        assert!(clock.sleeps().is_empty(), "{jitter:?}");
    }
    let _ = secs(0.0);
}
