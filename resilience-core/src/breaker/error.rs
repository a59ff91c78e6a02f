//! What a rejected call gets, and what a state file that cannot be used gives.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

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
            }),
        }
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
            write!(
                f,
                "circuit breaker {service}:{operation} is open; calls are rejected for another {:.3}s",
                self.info.remaining.as_secs_f64()
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
        (!self.info.forced).then_some(self.info.remaining)
    }
    fn as_error(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self)
    }
}

/// An I/O error of kind `ConnectionRefused` wrapping the rejection, so functions returning
/// `io::Result` can use a breaker. It still classifies as `Unavailable`.
impl From<CircuitOpenError> for io::Error {
    fn from(e: CircuitOpenError) -> Self {
        io::Error::new(io::ErrorKind::ConnectionRefused, e)
    }
}

/// The state file could not be used: its directory cannot be written or something other than a
/// file (a directory) is at its path (at construction), or a write failed or was skipped (from
/// [`CircuitBreakerRegistry::flush`](crate::CircuitBreakerRegistry::flush)).
///
/// ```
/// use resilience_core::CircuitBreakerRegistry;
/// let dir = tempfile::tempdir().unwrap();
/// let not_a_dir = dir.path().join("file");
/// std::fs::write(&not_a_dir, b"x").unwrap();
/// let err = CircuitBreakerRegistry::with_state_file(not_a_dir.join("state.json")).unwrap_err();
/// assert!(err.to_string().contains("cannot write to the directory"), "{err}");
/// ```
#[derive(Debug)]
pub struct PersistError {
    path: PathBuf,
    action: &'static str,
    source: io::Error,
}

impl PersistError {
    pub(crate) fn new(path: &Path, action: &'static str, source: io::Error) -> Self {
        PersistError {
            path: path.to_path_buf(),
            action,
            source,
        }
    }

    /// The state file at fault.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl fmt::Display for PersistError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "circuit breaker state file {}: {}: {}",
            self.path.display(),
            self.action,
            self.source
        )
    }
}

impl std::error::Error for PersistError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}
