//! Circuit breakers: one per (service, operation), shared through a registry.

mod registry;
mod state;

pub use registry::{CircuitBreakerRegistry, PersistError};
pub use state::{BreakerPermit, CircuitBreaker};

use serde::{Deserialize, Serialize};
use std::fmt;
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

/// The state of a breaker. Serialised as `"CLOSED"`, `"OPEN"`, `"HALF_OPEN"`.
///
/// ```
/// use resilience_core::CircuitState;
/// assert_eq!(serde_json::to_string(&CircuitState::HalfOpen).unwrap(), "\"HALF_OPEN\"");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CircuitState {
    /// Calls flow; consecutive retryable failures are counted.
    Closed,
    /// Calls are rejected without running until the open timeout has passed.
    Open,
    /// A limited number of trial calls decide whether to close or re-open.
    HalfOpen,
}

impl CircuitState {
    /// `"CLOSED"`, `"OPEN"` or `"HALF_OPEN"`.
    ///
    /// ```
    /// use resilience_core::CircuitState;
    /// assert_eq!(CircuitState::Open.as_str(), "OPEN");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            CircuitState::Closed => "CLOSED",
            CircuitState::Open => "OPEN",
            CircuitState::HalfOpen => "HALF_OPEN",
        }
    }
}

impl fmt::Display for CircuitState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A breaker's state as the original's monitoring example reads it.
///
/// ```
/// use resilience_core::{CircuitBreakerRegistry, CircuitState};
/// let registry = CircuitBreakerRegistry::new();
/// let status = registry.get_breaker("api", "fetch").status();
/// assert_eq!(status.state, CircuitState::Closed);
/// let json = serde_json::to_value(&status).unwrap();
/// assert_eq!(json["state"], "CLOSED");
/// ```
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CircuitBreakerStatus {
    /// The state as of now (an open breaker whose time has passed reads `HALF_OPEN`).
    pub state: CircuitState,
    /// Consecutive retryable failures while closed.
    pub failure_count: u32,
    /// Successes so far while half-open.
    pub success_count: u32,
    /// When an open breaker admits a trial call, in Unix seconds; `None` unless open.
    pub open_until: Option<f64>,
    /// The open timeout in seconds that the next opening uses.
    pub current_timeout: f64,
    /// Trial calls in flight.
    pub half_open_calls: u32,
}

/// What a call gets, without running, while its breaker rejects it. Classified as `Unavailable`,
/// with the remaining open time as its `retry_after` hint.
///
/// ```
/// use resilience_core::{Classify, CircuitOpenError, ErrorCategory};
/// use std::time::Duration;
/// let e = CircuitOpenError::new("ChEMBL", "fetch", Duration::from_secs(12), None);
/// assert_eq!(e.category(), ErrorCategory::Unavailable);
/// assert_eq!(e.to_string(), "circuit breaker ChEMBL:fetch is open; calls are rejected for another 12.000s");
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct CircuitOpenError {
    service: String,
    operation: String,
    remaining: Duration,
    open_until_unix: Option<f64>,
}

impl CircuitOpenError {
    /// A rejection by breaker `service:operation`, open for another `remaining`, until
    /// `open_until_unix` (Unix seconds) when known.
    pub fn new(
        service: impl Into<String>,
        operation: impl Into<String>,
        remaining: Duration,
        open_until_unix: Option<f64>,
    ) -> Self {
        CircuitOpenError {
            service: service.into(),
            operation: operation.into(),
            remaining,
            open_until_unix,
        }
    }

    /// The service of the breaker that rejected the call.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The operation of the breaker that rejected the call.
    pub fn operation(&self) -> &str {
        &self.operation
    }

    /// How long the breaker stays open from the moment of the rejection (zero while half-open
    /// and full of trial calls).
    pub fn remaining(&self) -> Duration {
        self.remaining
    }

    /// When the breaker admits a trial call again, in Unix seconds.
    pub fn open_until(&self) -> Option<f64> {
        self.open_until_unix
    }
}

impl fmt::Display for CircuitOpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.remaining.is_zero() {
            write!(
                f,
                "circuit breaker {}:{} is half-open and its trial calls are all in flight",
                self.service, self.operation
            )
        } else {
            write!(
                f,
                "circuit breaker {}:{} is open; calls are rejected for another {:.3}s",
                self.service,
                self.operation,
                self.remaining.as_secs_f64()
            )
        }
    }
}

impl std::error::Error for CircuitOpenError {}

impl crate::Classify for CircuitOpenError {
    fn category(&self) -> crate::ErrorCategory {
        crate::ErrorCategory::Unavailable
    }
    fn retry_after(&self) -> Option<Duration> {
        Some(self.remaining)
    }
    fn as_error(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self)
    }
}

/// An I/O error of kind `ConnectionRefused` wrapping the rejection, so functions returning
/// `io::Result` can use a breaker. It still classifies as `Unavailable`.
impl From<CircuitOpenError> for std::io::Error {
    fn from(e: CircuitOpenError) -> Self {
        std::io::Error::new(std::io::ErrorKind::ConnectionRefused, e)
    }
}
