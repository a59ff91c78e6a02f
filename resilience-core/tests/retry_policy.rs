//! Retry decisions beyond the peer scenarios: classification, hints, strategies, deadlines,
//! per-category schedules, and the sync and async loops agreeing.

mod support;

use resilience_core::{
    Backoff, CategorySet, ErrorCategory, ErrorClassifier, Jitter, ManualClock, RetryConfig,
    RetryManager, Rng,
};
use std::error::Error;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::{manager, ms, no_jitter, Script, TestError};

/// An error that wraps another, to test matching along `source()` chains.
#[derive(Debug)]
struct Context(Box<dyn Error + Send + Sync>);
impl fmt::Display for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("while importing")
    }
}
impl Error for Context {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&*self.0)
    }
}

#[test]
fn a_non_retryable_type_deep_in_the_source_chain_stops_at_once() {
    let config = no_jitter().never_retry::<std::num::ParseIntError>();
    let (m, clock) = manager(config);
    let mut execs = 0;
    let result: Result<(), Box<dyn Error + Send + Sync>> = m.execute("svc", "op", || {
        execs += 1;
        let parse = "x".parse::<u8>().unwrap_err();
        // two levels deep, behind an io::Error that alone would be retried
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, parse);
        Err(Box::new(Context(Box::new(io))) as Box<dyn Error + Send + Sync>)
    });
    assert!(result.is_err());
    assert_eq!(execs, 1);
    assert!(clock.sleeps().is_empty());
}

#[test]
fn io_errors_are_classified_by_kind_and_retried_only_when_transient() {
    use std::io::ErrorKind::*;
    for (kind, retried) in [
        (ConnectionReset, true),
        (TimedOut, true),
        (ConnectionRefused, true),
        (NotFound, false),
        (InvalidData, false),
        (PermissionDenied, false),
    ] {
        let (m, _) = manager(no_jitter());
        let mut execs = 0;
        let _: Result<(), std::io::Error> = m.execute("svc", "op", || {
            execs += 1;
            Err(kind.into())
        });
        assert_eq!(execs, if retried { 3 } else { 1 }, "{kind:?}");
    }
}

#[test]
fn classifier_rules_override_the_errors_own_category() {
    let clock = ManualClock::new();
    let m = RetryManager::builder()
        .clock(clock.clone())
        .default_config(no_jitter())
        .error_classifier(
            ErrorClassifier::default()
                .categorize::<TestError>(ErrorCategory::Validation)
                .retryable(ErrorCategory::Authentication, true),
        )
        .build()
        .unwrap();
    let mut transient = Script::always_failing();
    assert!(m.execute("svc", "a", || transient.call()).is_err());
    assert_eq!(
        transient.execs, 1,
        "the rule made it Validation: not retried"
    );

    let mut auth: Result<(), std::io::Error> = Ok(());
    let mut execs = 0;
    auth = auth.and(m.execute("svc", "b", || {
        execs += 1;
        Err(std::io::ErrorKind::PermissionDenied.into())
    }));
    assert!(auth.is_err());
    assert_eq!(execs, 3, "the classifier made Authentication retryable");
}

#[test]
fn retryable_categories_limit_what_is_retried() {
    let config = RetryConfig {
        retryable_categories: CategorySet::EMPTY.with(ErrorCategory::Timeout),
        ..no_jitter()
    };
    let (m, _) = manager(config);
    let mut network = Script::always_failing();
    assert!(m.execute("svc", "op", || network.call()).is_err());
    assert_eq!(network.execs, 1);
    let mut timeouts = Script::new(vec![TestError::Of(ErrorCategory::Timeout); 2]);
    assert_eq!(m.execute("svc", "op", || timeouts.call()), Ok(3));
}

#[test]
fn retry_after_replaces_the_computed_delay_and_is_capped_at_max_delay() {
    let (m, clock) = manager(RetryConfig {
        max_attempts: 4,
        max_delay: Duration::from_secs(30),
        ..no_jitter()
    });
    let mut limited = Script::new([
        TestError::RateLimited(Duration::from_secs(7)),
        TestError::RateLimited(Duration::from_secs(3600)),
        TestError::Transient,
    ]);
    assert_eq!(m.execute("svc", "op", || limited.call()), Ok(4));
    assert_eq!(
        clock.sleeps(),
        [Duration::from_secs(7), Duration::from_secs(30), ms(400)]
    );
}

#[test]
fn a_category_can_have_its_own_delay_schedule() {
    let config = no_jitter().with_category_backoff(
        ErrorCategory::Database,
        Backoff {
            initial_delay: Duration::from_secs(2),
            backoff_factor: 3.0,
            jitter_factor: 0.0,
            ..Backoff::default()
        },
    );
    let (m, clock) = manager(RetryConfig {
        max_attempts: 4,
        ..config
    });
    let mut script = Script::new([
        TestError::Of(ErrorCategory::Database),
        TestError::Of(ErrorCategory::Database),
        TestError::Transient,
    ]);
    assert_eq!(m.execute("svc", "op", || script.call()), Ok(4));
    // retry 1 and 2 on the Database schedule (2 s, 6 s), retry 3 on the default one (400 ms)
    assert_eq!(
        clock.sleeps(),
        [Duration::from_secs(2), Duration::from_secs(6), ms(400)]
    );
}

#[test]
fn every_jitter_strategy_stays_within_its_bounds() {
    let rng = Rng::seeded(99);
    for jitter in [
        Jitter::Proportional,
        Jitter::Full,
        Jitter::Equal,
        Jitter::Decorrelated,
    ] {
        let b = Backoff {
            jitter,
            jitter_factor: 0.5,
            ..Backoff::default()
        };
        let mut previous = None;
        for retry in 1..=20 {
            for _ in 0..2_000 {
                let base = b.base_delay(retry);
                let d = b.delay(retry, previous, rng.next_f64());
                let (low, high) = match jitter {
                    Jitter::Proportional => (base, base.mul_f64(1.5)),
                    Jitter::Full => (Duration::ZERO, base),
                    Jitter::Equal => (base / 2, base),
                    Jitter::Decorrelated => {
                        let prev = previous.unwrap_or(b.initial_delay);
                        (b.initial_delay, (prev * 3).max(b.initial_delay))
                    }
                };
                let high = high.min(b.max_delay);
                assert!(
                    low.min(b.max_delay) <= d && d <= high,
                    "{jitter:?} retry {retry}: {d:?}"
                );
            }
            previous = Some(b.delay(retry, previous, rng.next_f64()));
        }
    }
}

#[test]
fn jitter_strategies_spread_their_draws() {
    for jitter in [Jitter::Full, Jitter::Equal, Jitter::Decorrelated] {
        let delays: std::collections::BTreeSet<_> = Backoff {
            jitter,
            ..Backoff::default()
        }
        .schedule(Rng::seeded(5))
        .take(50)
        .collect();
        assert!(delays.len() > 40, "{jitter:?}: {} distinct", delays.len());
    }
}

#[test]
fn the_delay_schedule_is_repeatable_for_a_seed() {
    let config = RetryConfig {
        max_attempts: 8,
        ..RetryConfig::default()
    };
    let a: Vec<_> = config.delays(Rng::seeded(3)).collect();
    let b: Vec<_> = config.delays(Rng::seeded(3)).collect();
    assert_eq!(a, b);
    assert_eq!(a.len(), 7);
}

#[test]
fn the_overall_deadline_stops_retries_that_would_end_past_it() {
    let (m, clock) = manager(RetryConfig {
        max_attempts: 10,
        initial_delay: Duration::from_secs(1),
        max_elapsed: Some(Duration::from_secs(5)),
        ..no_jitter()
    });
    let mut always = Script::always_failing();
    assert!(m.execute("svc", "op", || always.call()).is_err());
    // 1 s + 2 s = 3 s; the next wait (4 s) would end at 7 s > 5 s.
    assert_eq!(clock.sleeps(), [1, 2].map(Duration::from_secs));
    assert_eq!(always.execs, 3);
}

#[test]
fn a_per_call_deadline_counts_the_time_attempts_take() {
    let (m, clock) = manager(RetryConfig {
        max_attempts: 10,
        ..no_jitter()
    });
    let slow = clock.clone();
    let mut execs = 0;
    let result: Result<(), TestError> = m
        .call("svc", "op")
        .initial_delay(Duration::from_secs(1))
        .backoff_factor(1.0)
        .max_elapsed(Duration::from_secs(10))
        .run(|| {
            execs += 1;
            slow.advance(Duration::from_secs(2)); // each attempt takes 2 s
            Err(TestError::Transient)
        });
    assert!(result.is_err());
    // attempts end at 2, 5, 8 s; after the third a 1 s wait would end at 9 s (<= 10): a fourth
    // attempt runs and ends at 11 s, after which no wait fits.
    assert_eq!(execs, 4);
}

#[test]
fn huge_attempt_counts_saturate_instead_of_overflowing() {
    let (m, clock) = manager(RetryConfig {
        max_attempts: 200,
        initial_delay: ms(1),
        max_delay: Duration::from_secs(1),
        backoff_factor: 10.0,
        ..RetryConfig::default()
    });
    assert!(m
        .execute("svc", "op", || Script::always_failing().call())
        .is_err());
    let sleeps = clock.sleeps();
    assert_eq!(sleeps.len(), 199);
    assert!(sleeps[10..].iter().all(|d| *d == Duration::from_secs(1)));
}

/// Runs the same script through the sync and the async loop with the same seed and returns
/// (result, execs, sleeps) of each.
#[tokio::test]
async fn sync_and_async_paths_make_identical_decisions() {
    let scripts: Vec<Vec<TestError>> = vec![
        vec![],
        vec![TestError::Transient; 2],
        vec![TestError::Transient; 10],
        vec![TestError::Transient, TestError::Of(ErrorCategory::NotFound)],
        vec![
            TestError::RateLimited(Duration::from_secs(2)),
            TestError::Transient,
        ],
    ];
    for errors in scripts {
        let config = RetryConfig {
            max_attempts: 5,
            ..RetryConfig::default()
        };
        let (sync_m, sync_clock) = manager(config.clone());
        let mut sync_script = Script::new(errors.clone());
        let sync_result = sync_m.execute("svc", "op", || sync_script.call());

        let (async_m, async_clock) = manager(config);
        let async_script = Arc::new(Mutex::new(Script::new(errors.clone())));
        let shared = Arc::clone(&async_script);
        let async_result = async_m
            .execute_async("svc", "op", move || {
                let shared = Arc::clone(&shared);
                async move { shared.lock().unwrap().call() }
            })
            .await;

        assert_eq!(sync_result, async_result, "{errors:?}");
        assert_eq!(sync_script.execs, async_script.lock().unwrap().execs);
        assert_eq!(sync_clock.sleeps(), async_clock.sleeps(), "{errors:?}");
        assert_eq!(sync_m.metrics(), async_m.metrics());
    }
}

async fn fetch_with_retry(manager: Arc<RetryManager>, id: u32) -> Result<u32, std::io::Error> {
    manager
        .execute_async("svc", "fetch", || async move { Ok(id * 2) })
        .await
}

#[tokio::test]
async fn an_async_fn_using_execute_async_can_be_spawned() {
    let manager = Arc::new(RetryManager::new());
    let handle = tokio::spawn(fetch_with_retry(Arc::clone(&manager), 21));
    assert_eq!(handle.await.unwrap().unwrap(), 42);
}

/// A manual clock that counts how often it is read.
#[derive(Debug, Default)]
struct CountingClock {
    inner: ManualClock,
    reads: std::sync::atomic::AtomicU32,
}

impl resilience_core::Clock for CountingClock {
    fn now(&self) -> Duration {
        self.reads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.inner.now()
    }
    fn unix_now(&self) -> Duration {
        self.inner.unix_now()
    }
    fn sleep(&self, d: Duration) {
        self.inner.sleep(d)
    }
    fn sleep_async(&self, d: Duration) -> resilience_core::Sleep {
        self.inner.sleep_async(d)
    }
}

#[test]
fn a_per_call_deadline_does_not_make_other_calls_read_the_clock() {
    let clock = Arc::new(CountingClock::default());
    let m = RetryManager::builder()
        .clock(SharedClock(Arc::clone(&clock)))
        .build()
        .unwrap();
    let _: Result<u8, TestError> = m
        .call("svc", "op")
        .max_elapsed(Duration::from_secs(5))
        .run(|| Ok(1));
    let before = clock.reads.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        before >= 1,
        "the call with a deadline reads the clock at its start"
    );
    for _ in 0..10 {
        let _: Result<u8, TestError> = m.execute("svc", "op", || Ok(1));
    }
    assert_eq!(
        clock.reads.load(std::sync::atomic::Ordering::Relaxed),
        before
    );
}

/// Lets the test keep the counting clock while the manager owns a handle to it.
#[derive(Debug)]
struct SharedClock(Arc<CountingClock>);

impl resilience_core::Clock for SharedClock {
    fn now(&self) -> Duration {
        self.0.now()
    }
    fn unix_now(&self) -> Duration {
        self.0.unix_now()
    }
    fn sleep(&self, d: Duration) {
        self.0.sleep(d)
    }
    fn sleep_async(&self, d: Duration) -> resilience_core::Sleep {
        self.0.sleep_async(d)
    }
}
