//! A breaker's settings and the arithmetic of its open-timeout ladder.

use crate::backoff::duration_from_secs;
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
    pub fn validate(&self) -> Result<(), crate::ConfigError> {
        use crate::ConfigError;
        for (field, value) in [
            ("failure_threshold", self.failure_threshold),
            ("half_open_max_calls", self.half_open_max_calls),
            ("success_threshold", self.success_threshold),
        ] {
            if value == 0 {
                return Err(ConfigError::new(field, "must be at least 1, got 0"));
            }
        }
        if !(self.open_timeout_increment_factor.is_finite()
            && self.open_timeout_increment_factor >= 1.0)
        {
            return Err(ConfigError::new(
                "open_timeout_increment_factor",
                format!(
                    "must be a finite number of at least 1.0, got {}",
                    self.open_timeout_increment_factor
                ),
            ));
        }
        if let Some(rule) = &self.failure_rate {
            rule.validate().map_err(|e| e.within("failure_rate"))?;
        }
        if let Some(rule) = &self.slow_call {
            rule.validate().map_err(|e| e.within("slow_call"))?;
        }
        if self.max_half_open_wait == Some(Duration::ZERO) {
            return Err(ConfigError::new(
                "max_half_open_wait",
                "must be more than zero when set, got 0s",
            ));
        }
        if self.reset_timeout > self.max_open_timeout {
            return Err(ConfigError::new(
                "reset_timeout",
                format!(
                    "must not exceed `max_open_timeout` ({:?}), got {:?}",
                    self.max_open_timeout, self.reset_timeout
                ),
            ));
        }
        Ok(())
    }
}

/// A rate in `(0, 1]`.
fn check_rate(field: &str, rate: f64) -> Result<(), crate::ConfigError> {
    if rate > 0.0 && rate <= 1.0 {
        Ok(())
    } else {
        Err(crate::ConfigError::new(
            field,
            format!("must be a share of calls above 0.0 and at most 1.0, got {rate}"),
        ))
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
    pub fn validate(&self) -> Result<(), crate::ConfigError> {
        use crate::ConfigError;
        check_rate("threshold", self.threshold)?;
        if self.minimum_calls == 0 {
            return Err(ConfigError::new(
                "minimum_calls",
                "must be at least 1, got 0",
            ));
        }
        match self.window {
            Window::Count(0) => Err(ConfigError::new(
                "window",
                "must hold at least 1 call, got 0",
            )),
            Window::Time(d) if d.is_zero() => Err(ConfigError::new(
                "window",
                "must be more than zero time, got 0s",
            )),
            _ => Ok(()),
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
    pub fn validate(&self) -> Result<(), crate::ConfigError> {
        if self.duration.is_zero() {
            return Err(crate::ConfigError::new(
                "duration",
                "must be more than zero, got 0s",
            ));
        }
        check_rate("rate_threshold", self.rate_threshold)
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
