//! The runtime's own errors: bad configuration, an attempt that ran out of time.

use std::fmt;
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

impl crate::Classify for AttemptTimedOut {
    fn category(&self) -> crate::ErrorCategory {
        crate::ErrorCategory::Timeout
    }
    fn as_error(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self)
    }
}

/// An I/O error carrying the timeout, so functions returning `io::Result` can use `timeout`.
impl From<AttemptTimedOut> for std::io::Error {
    fn from(e: AttemptTimedOut) -> Self {
        std::io::Error::new(std::io::ErrorKind::TimedOut, e)
    }
}
