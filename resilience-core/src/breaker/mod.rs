//! Circuit breakers: one per (service, operation), shared through a registry.
//!
//! - [`machine`]: the state machine itself, pure data driven by the caller's clock readings.
//! - [`circuit`]: [`CircuitBreaker`], the machine behind a mutex plus the one atomic word that
//!   the hot path reads.
//! - [`permit`]: [`BreakerPermit`], the guard that reports how an admitted call ended.
//! - [`listener`]: state-change callbacks and their ordered delivery.
//! - [`registry`]: [`CircuitBreakerRegistry`] and its builder.
//! - [`persist`]: the versioned JSON state file and its background writer.
//! - [`window`]: the sliding windows of the failure-rate and slow-call rules.

mod builder;
mod circuit;
mod error;
mod listener;
mod machine;
mod permit;
mod persist;
mod registry;
mod shared;
mod window;
mod word;

pub use builder::CircuitBreakerRegistryBuilder;
pub use circuit::CircuitBreaker;
pub use error::PersistError;
pub(crate) use listener::ListenerId;
pub use listener::StateChange;
pub use permit::BreakerPermit;
pub use persist::PersistStats;
pub use registry::CircuitBreakerRegistry;
pub use shared::SharedBreakerStatus;

use serde::{Deserialize, Serialize};
use std::fmt;

/// The state of a breaker. Serialised as `"CLOSED"`, `"OPEN"`, `"HALF_OPEN"`.
///
/// ```
/// use resilience_core::CircuitState;
/// assert_eq!(serde_json::to_string(&CircuitState::HalfOpen).unwrap(), "\"HALF_OPEN\"");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CircuitState {
    /// Calls flow; consecutive retryable failures are counted.
    #[default]
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
    /// Consecutive retryable failures counted while closed. It keeps the streak that opened the
    /// breaker while open and half-open (failures of trial calls do not add to it), and goes back
    /// to 0 when the breaker closes.
    pub failure_count: u32,
    /// Successes of trial calls in the current half-open period.
    pub success_count: u32,
    /// When an open breaker admits a trial call, in Unix seconds; `None` unless open (and for a
    /// breaker forced open, which has no deadline).
    pub open_until: Option<f64>,
    /// The open timeout in seconds: the length of the current (or, half-open, the last) open
    /// period; `reset_timeout` while closed.
    pub current_timeout: f64,
    /// Trial calls in flight (a trial call whose lease has run out no longer counts).
    pub half_open_calls: u32,
    /// Whether an operator forced the breaker open or disabled it.
    pub control: BreakerControl,
    /// The calls in the window of the failure-rate or slow-call rule (retryable failures and
    /// successes of calls admitted while closed; neutral ends are not calls). `None` without a
    /// rate rule, and then absent from the JSON. The window is emptied when the breaker closes;
    /// while it is open or half-open it records nothing (trial calls are not calls of the
    /// window), though a time window's calls still age out of it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_calls: Option<u32>,
    /// Retryable failures / calls in the window, in `[0, 1]`; `None` without a rate rule or
    /// with an empty window (absent from the JSON then).
    ///
    /// ```
    /// use resilience_core::{CircuitBreakerConfig, CircuitBreakerRegistry, FailureRate, Window};
    /// let breaker = CircuitBreakerRegistry::new().get_breaker("api", "fetch");
    /// breaker.configure(&CircuitBreakerConfig {
    ///     failure_rate: Some(FailureRate { window: Window::Count(10), minimum_calls: 10, threshold: 0.5 }),
    ///     ..Default::default()
    /// });
    /// breaker.try_acquire().unwrap().record_failure();
    /// breaker.try_acquire().unwrap().record_success();
    /// let status = breaker.status();
    /// assert_eq!((status.window_calls, status.failure_rate), (Some(2), Some(0.5)));
    /// let json = serde_json::to_value(&status).unwrap();
    /// assert_eq!(json["failure_rate"], 0.5);
    /// assert!(serde_json::to_value(&CircuitBreakerRegistry::new().get_breaker("a", "b").status())
    ///     .unwrap()
    ///     .get("failure_rate")
    ///     .is_none());
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_rate: Option<f64>,
    /// Slow calls / calls in the window, in `[0, 1]`; `None` without a rate rule or with an
    /// empty window (absent from the JSON then).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slow_call_rate: Option<f64>,
}

/// Who decides a breaker's state: its failures and successes, or an operator.
///
/// ```
/// use resilience_core::BreakerControl;
/// assert_eq!(serde_json::to_string(&BreakerControl::ForcedOpen).unwrap(), "\"FORCED_OPEN\"");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BreakerControl {
    /// The state machine decides (the normal case).
    #[default]
    Auto,
    /// Open until reset: every call is rejected, whatever the time
    /// ([`CircuitBreaker::force_open`]).
    ForcedOpen,
    /// Always closed: every call runs and no result is counted ([`CircuitBreaker::disable`]).
    Disabled,
}
