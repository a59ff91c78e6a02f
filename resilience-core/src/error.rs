//! The runtime's own errors: bad configuration, an attempt that ran out of time, a call its
//! breaker rejected.

use std::fmt;
use std::io;
use std::time::Duration;

/// A configuration value that breaks a rule. It names the field and the rule, so a message built
/// from it tells the user what to change.
///
/// ```
/// use resilience_core::RetryConfig;
/// let err = RetryConfig { max_attempts: 0, ..RetryConfig::default() }.validate().unwrap_err();
/// assert_eq!(err.field(), "max_attempts");
/// assert_eq!(err.to_string(), "`max_attempts` must be at least 1 (1 means no retry), got 0");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    field: String,
    rule: String,
}

impl ConfigError {
    /// An error about `field` (a dotted path such as `circuit_breaker.failure_threshold`).
    pub fn new(field: impl Into<String>, rule: impl Into<String>) -> Self {
        ConfigError {
            field: field.into(),
            rule: rule.into(),
        }
    }

    /// The field at fault, as a dotted path.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// The rule it breaks, with the value found.
    pub fn rule(&self) -> &str {
        &self.rule
    }

    /// The same error with `prefix.` put before the field name.
    pub(crate) fn within(mut self, prefix: &str) -> Self {
        self.field = format!("{prefix}.{}", self.field);
        self
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` {}", self.field, self.rule)
    }
}

impl std::error::Error for ConfigError {}

/// What an attempt gets when it runs longer than its per-attempt timeout
/// (`#[retry(timeout = "2s")]`). Classified as `Timeout`, so it is retried.
///
/// ```
/// use resilience_core::{AttemptTimedOut, Classify, ErrorCategory};
/// use std::time::Duration;
/// let e = AttemptTimedOut::new(Duration::from_secs(2));
/// assert_eq!(e.category(), ErrorCategory::Timeout);
/// assert_eq!(e.to_string(), "attempt timed out after 2s");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttemptTimedOut {
    limit: Duration,
}

impl AttemptTimedOut {
    /// An attempt that ran past `limit`.
    pub fn new(limit: Duration) -> Self {
        AttemptTimedOut { limit }
    }

    /// The per-attempt limit that was reached.
    pub fn limit(&self) -> Duration {
        self.limit
    }
}

impl fmt::Display for AttemptTimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "attempt timed out after {:?}", self.limit)
    }
}

impl std::error::Error for AttemptTimedOut {}

/// An I/O error carrying the timeout, so functions returning `io::Result` can use `timeout`.
impl From<AttemptTimedOut> for std::io::Error {
    fn from(e: AttemptTimedOut) -> Self {
        std::io::Error::new(std::io::ErrorKind::TimedOut, e)
    }
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
    // Boxed so that `Result<BreakerPermit, CircuitOpenError>`, which every admission returns,
    // stays small: the hot path then moves a few words instead of a hundred bytes.
    info: Box<OpenInfo>,
}

#[derive(Clone, Debug, PartialEq)]
struct OpenInfo {
    service: String,
    operation: String,
    remaining: Duration,
    open_until_unix: Option<f64>,
    forced: bool,
    cause: Option<OpenCause>,
    /// The category of the failure that opened the breaker, when a failure did.
    category: Option<crate::ErrorCategory>,
    /// The window's failure rate, slow-call rate and calls when a rate rule opened the breaker.
    rates: Option<(f64, f64, u64)>,
}

/// What opened a breaker, as a [`CircuitOpenError`] tells it.
///
/// ```
/// use resilience_core::{CircuitBreakerConfig, CircuitBreakerRegistry, OpenCause};
/// let breaker = CircuitBreakerRegistry::new().get_breaker("api", "fetch");
/// breaker.configure(&CircuitBreakerConfig { failure_threshold: 1, ..Default::default() });
/// breaker.try_acquire().unwrap().record_failure();
/// let err = breaker.try_acquire().unwrap_err();
/// assert_eq!(err.opened_by(), Some(OpenCause::ConsecutiveFailures));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OpenCause {
    /// `failure_threshold` retryable failures in a row (the consecutive rule).
    ConsecutiveFailures,
    /// The failure rate over the window reached `failure_rate.threshold`.
    FailureRate,
    /// The slow-call rate over the window reached `slow_call.rate_threshold`.
    SlowCallRate,
    /// A trial call failed while the breaker was half-open.
    TrialFailure,
    /// The breaker was half-open for `max_half_open_wait` without closing.
    HalfOpenTimeout,
    /// The fleet sharing the breaker through a store opened it: a quorum of its processes had
    /// it open, or a fleet-wide trial call failed (feature `redis`).
    Fleet,
    /// A `retry_after` hint seen by some process of the fleet pauses every call until it has
    /// passed (feature `redis`).
    RetryAfter,
    /// The shared store is unreachable and the registry was told to fail closed then
    /// ([`StoreFallback::FailClosed`](crate::StoreFallback::FailClosed)).
    StoreUnavailable,
}

impl OpenCause {
    /// A short description: `"consecutive failures"`, `"failure rate"`, `"slow-call rate"`,
    /// `"a failed trial call"`, `"half-open too long"`, `"the fleet"`,
    /// `"a shared Retry-After pause"`, `"the shared store is unreachable"`.
    ///
    /// ```
    /// use resilience_core::OpenCause;
    /// assert_eq!(OpenCause::FailureRate.as_str(), "failure rate");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            OpenCause::ConsecutiveFailures => "consecutive failures",
            OpenCause::FailureRate => "failure rate",
            OpenCause::SlowCallRate => "slow-call rate",
            OpenCause::TrialFailure => "a failed trial call",
            OpenCause::HalfOpenTimeout => "half-open too long",
            OpenCause::Fleet => "the fleet",
            OpenCause::RetryAfter => "a shared Retry-After pause",
            OpenCause::StoreUnavailable => "the shared store is unreachable",
        }
    }
}

impl fmt::Display for OpenCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl CircuitOpenError {
    /// A rejection by breaker `service:operation`, open for another `remaining`, until
    /// `open_until_unix` (Unix seconds) when known.
    ///
    /// ```
    /// use resilience_core::CircuitOpenError;
    /// use std::time::Duration;
    /// let e = CircuitOpenError::new("api", "fetch", Duration::from_secs(5), Some(1000.0));
    /// assert_eq!((e.service(), e.operation()), ("api", "fetch"));
    /// assert_eq!((e.remaining(), e.open_until()), (Duration::from_secs(5), Some(1000.0)));
    /// assert!(!e.is_forced());
    /// ```
    pub fn new(
        service: impl Into<String>,
        operation: impl Into<String>,
        remaining: Duration,
        open_until_unix: Option<f64>,
    ) -> Self {
        CircuitOpenError {
            info: Box::new(OpenInfo {
                service: service.into(),
                operation: operation.into(),
                remaining,
                open_until_unix,
                forced: false,
                cause: None,
                category: None,
                rates: None,
            }),
        }
    }

    /// The same rejection, saying what opened the breaker and, for a rate rule, the window's
    /// failure rate, slow-call rate and calls at that moment.
    pub(crate) fn with_cause(
        mut self,
        cause: Option<OpenCause>,
        category: Option<crate::ErrorCategory>,
        rates: Option<(f64, f64, u64)>,
    ) -> Self {
        self.info.cause = cause;
        self.info.category = category;
        self.info.rates = rates;
        self
    }

    /// A rejection by a breaker an operator forced open: it stays open until reset.
    pub(crate) fn forced(service: &str, operation: &str) -> Self {
        let mut e = Self::new(service, operation, Duration::MAX, None);
        e.info.forced = true;
        e
    }

    /// The service of the breaker that rejected the call.
    pub fn service(&self) -> &str {
        &self.info.service
    }

    /// The operation of the breaker that rejected the call.
    pub fn operation(&self) -> &str {
        &self.info.operation
    }

    /// How long the breaker stays open from the moment of the rejection: zero while half-open
    /// and full of trial calls, `Duration::MAX` when an operator forced it open.
    pub fn remaining(&self) -> Duration {
        self.info.remaining
    }

    /// When the breaker admits a trial call again, in Unix seconds; `None` when forced open.
    pub fn open_until(&self) -> Option<f64> {
        self.info.open_until_unix
    }

    /// Whether an operator forced the breaker open
    /// ([`CircuitBreaker::force_open`](crate::CircuitBreaker::force_open)).
    ///
    /// ```
    /// use resilience_core::CircuitBreakerRegistry;
    /// let registry = CircuitBreakerRegistry::new();
    /// let breaker = registry.get_breaker("api", "fetch");
    /// breaker.force_open();
    /// let err = breaker.try_acquire().unwrap_err();
    /// assert!(err.is_forced());
    /// assert_eq!(err.to_string(), "circuit breaker api:fetch is forced open until it is reset");
    /// ```
    pub fn is_forced(&self) -> bool {
        self.info.forced
    }

    /// What opened the breaker, when the breaker knows: `None` for a breaker forced open, one
    /// restored open from a state file, one half-open with every trial slot taken, and an error
    /// built with [`new`](Self::new).
    ///
    /// ```
    /// use resilience_core::{CircuitBreakerConfig, CircuitBreakerRegistry, FailureRate, OpenCause, Window};
    /// let breaker = CircuitBreakerRegistry::new().get_breaker("api", "fetch");
    /// breaker.configure(&CircuitBreakerConfig {
    ///     failure_rate: Some(FailureRate { window: Window::Count(4), minimum_calls: 4, threshold: 0.5 }),
    ///     ..Default::default()
    /// });
    /// for fail in [true, false, true, false] {
    ///     let permit = breaker.try_acquire().unwrap();
    ///     if fail { permit.record_failure() } else { permit.record_success() }
    /// }
    /// let err = breaker.try_acquire().unwrap_err();
    /// assert_eq!(err.opened_by(), Some(OpenCause::FailureRate));
    /// assert_eq!(err.failure_rate(), Some(0.5));
    /// assert!(err.to_string().starts_with("circuit breaker api:fetch is open (failure rate 50.0% of 4 calls);"), "{err}");
    /// ```
    pub fn opened_by(&self) -> Option<OpenCause> {
        self.info.cause
    }

    /// The category of the failure that opened the breaker (the last failure of the streak or
    /// of the window, or the trial call's), when a failure reported through the runtime did;
    /// `None` when slowness, a half-open wait, an operator or a failure of unknown kind
    /// (`BreakerPermit::record_failure`) opened it.
    ///
    /// ```
    /// use resilience_core::{CircuitBreakerConfig, ErrorCategory, RetryManager};
    /// let manager = RetryManager::builder()
    ///     .circuit_breaker_config(CircuitBreakerConfig { failure_threshold: 1, ..Default::default() })
    ///     .build()
    ///     .unwrap();
    /// let _: Result<(), std::io::Error> =
    ///     manager.execute("api", "get", || Err(std::io::ErrorKind::TimedOut.into()));
    /// let err = manager.circuit_breaker_registry().get_breaker("api", "get").try_acquire().unwrap_err();
    /// assert_eq!(err.failure_category(), Some(ErrorCategory::Timeout));
    /// ```
    pub fn failure_category(&self) -> Option<crate::ErrorCategory> {
        self.info.category
    }

    /// The window's failure rate (failures / calls, in `[0, 1]`) when a rate rule (failure rate
    /// or slow-call rate) opened the breaker; `None` otherwise.
    ///
    /// ```
    /// use resilience_core::CircuitOpenError;
    /// use std::time::Duration;
    /// assert_eq!(CircuitOpenError::new("a", "b", Duration::ZERO, None).failure_rate(), None);
    /// ```
    pub fn failure_rate(&self) -> Option<f64> {
        self.info.rates.map(|(failure, _, _)| failure)
    }

    /// The window's slow-call rate when a rate rule opened the breaker; `None` otherwise.
    ///
    /// ```
    /// use resilience_core::CircuitOpenError;
    /// use std::time::Duration;
    /// assert_eq!(CircuitOpenError::new("a", "b", Duration::ZERO, None).slow_call_rate(), None);
    /// ```
    pub fn slow_call_rate(&self) -> Option<f64> {
        self.info.rates.map(|(_, slow, _)| slow)
    }
}

impl fmt::Display for CircuitOpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (service, operation) = (&self.info.service, &self.info.operation);
        if self.info.forced {
            write!(
                f,
                "circuit breaker {service}:{operation} is forced open until it is reset"
            )
        } else if self.info.remaining.is_zero() {
            write!(
                f,
                "circuit breaker {service}:{operation} is half-open and its trial calls are all in flight"
            )
        } else {
            write!(f, "circuit breaker {service}:{operation} is open")?;
            // The consecutive rule and a failed trial call are what a breaker always did: their
            // message stays as it was. The newer causes say themselves.
            match (self.info.cause, self.info.rates) {
                (Some(OpenCause::FailureRate), Some((rate, _, calls))) => {
                    write!(f, " (failure rate {:.1}% of {calls} calls)", rate * 100.0)?;
                }
                (Some(OpenCause::SlowCallRate), Some((_, rate, calls))) => {
                    write!(f, " (slow-call rate {:.1}% of {calls} calls)", rate * 100.0)?;
                }
                (Some(OpenCause::HalfOpenTimeout), _) => {
                    f.write_str(" (half-open too long without closing)")?;
                }
                _ => {}
            }
            write!(
                f,
                "; calls are rejected for another {:.3}s",
                self.info.remaining.as_secs_f64()
            )
        }
    }
}

impl std::error::Error for CircuitOpenError {}

/// An I/O error of kind `ConnectionRefused` wrapping the rejection, so functions returning
/// `io::Result` can use a breaker. It still classifies as `Unavailable`.
impl From<CircuitOpenError> for io::Error {
    fn from(e: CircuitOpenError) -> Self {
        io::Error::new(io::ErrorKind::ConnectionRefused, e)
    }
}
