//! `wait_seconds` never goes backwards, however long the waits: the sum of nanoseconds behind it
//! saturates at `u64::MAX` (about 584 years) instead of wrapping round to almost nothing.
//! Time runs on a manual clock: the centuries below pass without waiting.

use resilience_core::{
    CircuitBreakerConfig, Classify, ErrorCategory, ManualClock, RetryConfig, RetryManager,
};
use std::time::Duration;

const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);

/// The most the sum can hold, in seconds.
fn saturated() -> f64 {
    Duration::from_nanos(u64::MAX).as_secs_f64()
}

/// An error whose peer asks for a wait (an HTTP `Retry-After`).
#[derive(Debug)]
struct ComeBackLater(Duration);

impl Classify for ComeBackLater {
    fn category(&self) -> ErrorCategory {
        ErrorCategory::RateLimit
    }
    fn retry_after(&self) -> Option<Duration> {
        Some(self.0)
    }
}

impl From<resilience_core::CircuitOpenError> for ComeBackLater {
    fn from(open: resilience_core::CircuitOpenError) -> Self {
        ComeBackLater(open.remaining())
    }
}
/// A manager on `clock` whose waits may be as long as `max_delay`, with a breaker that stays
/// closed through the failures below.
fn manager(clock: &ManualClock, initial_delay: Duration, max_delay: Duration) -> RetryManager {
    RetryManager::builder()
        .clock(clock.clone())
        .default_config(RetryConfig {
            max_attempts: 3,
            initial_delay,
            max_delay,
            backoff_factor: 1.0,
            jitter_factor: 0.0,
            ..RetryConfig::default()
        })
        .circuit_breaker_config(CircuitBreakerConfig {
            failure_threshold: 1_000,
            ..CircuitBreakerConfig::default()
        })
        .build()
        .unwrap()
}

#[test]
fn computed_waits_of_centuries_saturate_the_wait() {
    let clock = ManualClock::new();
    let manager = manager(&clock, 300 * YEAR, 300 * YEAR);
    let mut seen = Vec::new();
    for _ in 0..3 {
        let _: Result<(), std::io::Error> = manager.execute("slow", "call", || {
            Err(std::io::ErrorKind::ConnectionReset.into())
        });
        seen.push(manager.metrics_for("slow", "call").unwrap().wait_seconds);
    }
    // One call waits 600 years, past what the sum holds; a wrapping sum would read 15 years
    // after it, 30 after the next, and fall back again later.
    assert_eq!(clock.sleeps(), [300 * YEAR; 6]);
    assert_eq!(seen, [saturated(); 3]);
    assert_eq!(manager.metrics_for("slow", "call").unwrap().retries, 6);
}

#[test]
fn a_retry_after_of_duration_max_saturates_the_wait() {
    let clock = ManualClock::new();
    let manager = manager(&clock, Duration::from_millis(100), Duration::MAX);
    // The peer asks for a second, then for forever: a wrapping sum would read just under a
    // second after both.
    let mut hints = [Duration::from_secs(1), Duration::MAX, Duration::ZERO].into_iter();
    let mut previous = 0.0;
    let _: Result<(), ComeBackLater> = manager.execute("later", "call", || {
        let now = manager
            .metrics_for("later", "call")
            .map_or(0.0, |m| m.wait_seconds);
        assert!(
            now >= previous,
            "wait_seconds went from {previous} back to {now}"
        );
        previous = now;
        Err(ComeBackLater(hints.next().unwrap_or_default()))
    });
    assert_eq!(clock.sleeps(), [Duration::from_secs(1), Duration::MAX]);
    let wait = manager.metrics_for("later", "call").unwrap().wait_seconds;
    assert_eq!(wait, saturated());
}
