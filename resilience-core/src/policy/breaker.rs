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
