//! Shared pieces of the core's behaviour tests: a scripted operation and an error type that
//! classifies as told.

#![allow(dead_code)]

use resilience_core::{
    CircuitOpenError, Classify, ErrorCategory, ManualClock, RetryConfig, RetryManager,
};
use std::fmt;
use std::time::Duration;

/// An error that says what it is.
#[derive(Debug, Clone, PartialEq)]
pub enum TestError {
    /// A transient failure (Network).
    Transient,
    /// A failure of the given category.
    Of(ErrorCategory),
    /// A rate limit with a Retry-After hint.
    RateLimited(Duration),
    /// The breaker rejected the call.
    Open(CircuitOpenError),
}

impl fmt::Display for TestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?}")
    }
}

impl std::error::Error for TestError {}

impl Classify for TestError {
    fn category(&self) -> ErrorCategory {
        match self {
            TestError::Transient => ErrorCategory::Network,
            TestError::Of(c) => *c,
            TestError::RateLimited(_) => ErrorCategory::RateLimit,
            TestError::Open(_) => ErrorCategory::Unavailable,
        }
    }
    fn retry_after(&self) -> Option<Duration> {
        match self {
            TestError::RateLimited(d) => Some(*d),
            _ => None,
        }
    }
    fn as_error(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self)
    }
}

impl From<CircuitOpenError> for TestError {
    fn from(e: CircuitOpenError) -> Self {
        TestError::Open(e)
    }
}

/// An operation that returns the scripted errors in order, then `Ok(attempt number)`.
pub struct Script {
    errors: Vec<TestError>,
    pub execs: u32,
}

impl Script {
    pub fn new(errors: impl IntoIterator<Item = TestError>) -> Self {
        Script {
            errors: errors.into_iter().collect(),
            execs: 0,
        }
    }

    /// Fails `n` times with a transient error, then succeeds.
    pub fn failing(n: usize) -> Self {
        Self::new(std::iter::repeat_n(TestError::Transient, n))
    }

    /// Always fails with a transient error.
    pub fn always_failing() -> Self {
        Self::failing(10_000)
    }

    pub fn call(&mut self) -> Result<u32, TestError> {
        self.execs += 1;
        match self.errors.get(self.execs as usize - 1) {
            Some(e) => Err(e.clone()),
            None => Ok(self.execs),
        }
    }
}

/// A manager on a manual clock with a fixed seed and the given retry settings, breaker off by
/// being out of reach (a threshold no test meets).
pub fn manager(config: RetryConfig) -> (RetryManager, ManualClock) {
    let clock = ManualClock::new();
    let manager = RetryManager::builder()
        .default_config(config)
        .circuit_breaker_config(resilience_core::CircuitBreakerConfig {
            failure_threshold: u32::MAX,
            ..Default::default()
        })
        .clock(clock.clone())
        .seed(7)
        .build()
        .expect("valid test settings");
    (manager, clock)
}

/// The defaults with jitter off, as the peer scenarios assume.
pub fn no_jitter() -> RetryConfig {
    RetryConfig {
        jitter_factor: 0.0,
        ..RetryConfig::default()
    }
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub fn secs(n: f64) -> Duration {
    Duration::from_secs_f64(n)
}
