//! A breaker's settings and the arithmetic of its open-timeout ladder.

use super::{check, check_not_above};
use crate::backoff::duration_from_secs;
use crate::ConfigError;
use resilience_settings::breaker as rules;
use std::time::Duration;

/// When a breaker opens and how long it stays open. `Default` = 5, 60 s, 1, 1, 1.5, 300 s, as in
/// the original.
///
/// ```
/// use resilience_core::CircuitBreakerConfig;
/// use std::time::Duration;
/// let config = CircuitBreakerConfig { failure_threshold: 3, ..CircuitBreakerConfig::default() };
/// assert_eq!(config.reset_timeout, Duration::from_secs(60));
/// assert!(config.validate().is_ok());
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct CircuitBreakerConfig {
    /// Consecutive retryable failures that open a closed breaker.
    pub failure_threshold: u32,
    /// How long the breaker stays open the first time.
    pub reset_timeout: Duration,
    /// Calls allowed in flight while half-open.
    pub half_open_max_calls: u32,
    /// Successes in half-open that close the breaker.
    pub success_threshold: u32,
    /// Each re-open from half-open multiplies the open timeout by this.
    pub open_timeout_increment_factor: f64,
    /// The open timeout never grows beyond this.
    pub max_open_timeout: Duration,
    /// Opens on a failure rate over a sliding window instead of `failure_threshold`
    /// consecutive failures (resilience4j's rule). `None` (the default): the consecutive rule.
    pub failure_rate: Option<FailureRate>,
    /// Also opens when too many calls are slow (resilience4j's slow-call rule). `None` (the
    /// default): the duration of calls does not matter, and no call reads the clock for it.
    pub slow_call: Option<SlowCall>,
    /// A breaker half-open this long without closing goes back to open (the next open timeout
    /// of the ladder), so trial calls that never finish cannot keep it half-open. `None` (the
    /// default): it waits for its trial calls.
    pub max_half_open_wait: Option<Duration>,
}

/// The failure-rate rule: the breaker opens when its window holds at least `minimum_calls`
/// calls and retryable failures / calls >= `threshold`. Calls that end in a non-retryable error
/// are not calls of the window. `Default` is resilience4j's: the last 100 calls, at least 100 of
/// them, 50 %.
///
/// ```
/// use resilience_core::{CircuitBreakerConfig, FailureRate, Window};
/// use std::time::Duration;
/// let config = CircuitBreakerConfig {
///     failure_rate: Some(FailureRate {
///         window: Window::Time(Duration::from_secs(60)),
///         minimum_calls: 20,
///         threshold: 0.5,
///     }),
///     ..CircuitBreakerConfig::default()
/// };
/// assert!(config.validate().is_ok());
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FailureRate {
    /// Which calls count.
    pub window: Window,
    /// No decision before the window holds this many calls (for a count window, at most its
    /// size).
    pub minimum_calls: u32,
    /// The share of failures that opens the breaker, in `(0, 1]`.
    pub threshold: f64,
}

impl Default for FailureRate {
    fn default() -> Self {
        FailureRate {
            window: Window::Count(100),
            minimum_calls: 100,
            threshold: 0.5,
        }
    }
}

/// The calls a rate is computed over.
///
/// ```
/// use resilience_core::Window;
/// use std::time::Duration;
/// let last_hundred = Window::Count(100);
/// let last_minute = Window::Time(Duration::from_secs(60));
/// assert_ne!(last_hundred, last_minute);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Window {
    /// The last N calls.
    Count(u32),
    /// The calls that ended in the last D, counted in buckets of one second (finer when D is
    /// shorter than ten seconds).
    Time(Duration),
}

/// The slow-call rule: a call that ends (well or not) after at least `duration` is slow, and the
/// breaker opens when slow calls / calls >= `rate_threshold`, over the failure-rate rule's
/// window (the default window when there is none). `Default` is resilience4j's: 60 s, 100 %.
///
/// ```
/// use resilience_core::{CircuitBreakerConfig, SlowCall};
/// use std::time::Duration;
/// let config = CircuitBreakerConfig {
///     slow_call: Some(SlowCall { duration: Duration::from_secs(2), rate_threshold: 0.8 }),
///     ..CircuitBreakerConfig::default()
/// };
/// assert!(config.validate().is_ok());
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SlowCall {
    /// A call this long or longer is slow.
    pub duration: Duration,
    /// The share of slow calls that opens the breaker, in `(0, 1]`.
    pub rate_threshold: f64,
}

impl Default for SlowCall {
    fn default() -> Self {
        SlowCall {
            duration: Duration::from_secs(60),
            rate_threshold: 1.0,
        }
    }
}

impl Default for CircuitBreakerConfig {
    fn default() -> Self {
        CircuitBreakerConfig {
            failure_threshold: 5,
            reset_timeout: Duration::from_secs(60),
            half_open_max_calls: 1,
            success_threshold: 1,
            open_timeout_increment_factor: 1.5,
            max_open_timeout: Duration::from_secs(300),
            failure_rate: None,
            slow_call: None,
            max_half_open_wait: None,
        }
    }
}

impl CircuitBreakerConfig {
    /// Checks every rule, returning the first value that breaks one.
    ///
    /// ```
    /// use resilience_core::CircuitBreakerConfig;
    /// let bad = CircuitBreakerConfig { failure_threshold: 0, ..CircuitBreakerConfig::default() };
    /// assert_eq!(bad.validate().unwrap_err().field(), "failure_threshold");
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (setting, value) in [
            (rules::FAILURE_THRESHOLD, self.failure_threshold),
            (rules::HALF_OPEN_MAX_CALLS, self.half_open_max_calls),
            (rules::SUCCESS_THRESHOLD, self.success_threshold),
        ] {
            check(&setting, setting.check_count(value.into()))?;
        }
        let factor = rules::OPEN_TIMEOUT_INCREMENT_FACTOR;
        check(
            &factor,
            factor.check_number(self.open_timeout_increment_factor),
        )?;
        if let Some(rule) = &self.failure_rate {
            rule.validate().map_err(|e| e.within("failure_rate"))?;
        }
        if let Some(rule) = &self.slow_call {
            rule.validate().map_err(|e| e.within("slow_call"))?;
        }
        if let Some(wait) = self.max_half_open_wait {
            let setting = rules::MAX_HALF_OPEN_WAIT;
            check(&setting, setting.check_duration(wait))?;
        }
        check_not_above(
            (rules::RESET_TIMEOUT, rules::MAX_OPEN_TIMEOUT),
            self.reset_timeout,
            self.max_open_timeout,
        )
    }
}

impl FailureRate {
    /// Checks the rule: `threshold` in `(0, 1]`, `minimum_calls` at least 1, a window of at
    /// least one call or more than zero time.
    ///
    /// ```
    /// use resilience_core::FailureRate;
    /// let bad = FailureRate { threshold: 1.5, ..FailureRate::default() };
    /// assert_eq!(bad.validate().unwrap_err().field(), "threshold");
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        check(
            &rules::FAILURE_RATE,
            rules::FAILURE_RATE.check_number(self.threshold),
        )?;
        check(
            &rules::MINIMUM_CALLS,
            rules::MINIMUM_CALLS.check_count(self.minimum_calls.into()),
        )?;
        match self.window {
            Window::Count(calls) => check(
                &rules::WINDOW_CALLS,
                rules::WINDOW_CALLS.check_count(calls.into()),
            ),
            Window::Time(span) => check(&rules::WINDOW, rules::WINDOW.check_duration(span)),
        }
    }
}

impl SlowCall {
    /// Checks the rule: `duration` more than zero, `rate_threshold` in `(0, 1]`.
    ///
    /// ```
    /// use resilience_core::SlowCall;
    /// let bad = SlowCall { rate_threshold: 0.0, ..SlowCall::default() };
    /// assert_eq!(bad.validate().unwrap_err().field(), "rate_threshold");
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        check(
            &rules::SLOW_CALL,
            rules::SLOW_CALL.check_duration(self.duration),
        )?;
        check(
            &rules::SLOW_CALL_RATE,
            rules::SLOW_CALL_RATE.check_number(self.rate_threshold),
        )
    }
}

/// The open timeout after a re-open: `current * factor`, capped at `max`. Computed in `f64` and
/// clamped before it becomes a `Duration`, so huge factors or timeouts saturate at `max` instead
/// of panicking.
pub(crate) fn next_open_timeout(current: Duration, factor: f64, max: Duration) -> Duration {
    let grown = current.as_secs_f64() * factor;
    // NaN (and anything at or above the cap) ends at the cap.
    if grown.is_nan() || grown >= max.as_secs_f64() {
        return max;
    }
    duration_from_secs(grown).map_or(max, |d| d.min(max))
}
