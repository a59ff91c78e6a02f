//! Why an attempt, a record or a run failed, classified for the retries.

use crate::store::SqliteError;
use resilience_core::{AttemptTimedOut, CircuitOpenError, Classify, ConfigError, PersistError};
use std::error::Error;
use std::fmt;
use std::time::Duration;

/// Why one attempt of a guarded operation failed.
///
/// Classified by `#[derive(Classify)]`. An answer that asks for a wait (`Retry-After` on a 429
/// or a 503) has a variant of its own, so that the derive can take the wait from a field; every
/// other HTTP failure is classified by reqwest's own impl (`#[classify(source)]`). SQLite errors
/// go through [`SqliteError`], whose hand-written impl the derive delegates to.
//
// Why 429 and 503 are variants of their own: the derive's `source` takes both the category and
// the wait from the one wrapped field (it refuses a variant with a second field, and refuses
// `retry_after = field` beside it), so "reqwest's category, our Retry-After" cannot be said on
// one variant. A fixed category per status, with the wait from a field, can.
#[derive(Debug, Classify)]
pub enum ImportError {
    /// The request failed, or the service answered with an error status that asks for no
    /// particular wait: reqwest's classification applies.
    #[classify(source)]
    Http(reqwest::Error),
    /// The service answered 429.
    #[classify(RateLimit, retry_after = retry_after)]
    RateLimited {
        /// What reqwest reported.
        source: reqwest::Error,
        /// The answer's `Retry-After`, which `reqwest::Error` does not keep.
        retry_after: Option<Duration>,
    },
    /// The service answered 503.
    #[classify(Unavailable, retry_after = retry_after)]
    Unavailable {
        /// What reqwest reported.
        source: reqwest::Error,
        /// The answer's `Retry-After`, which `reqwest::Error` does not keep.
        retry_after: Option<Duration>,
    },
    /// The attempt ran past [`ImportOptions::attempt_timeout`](super::ImportOptions::attempt_timeout).
    #[classify(source)]
    TimedOut(AttemptTimedOut),
    /// The service answered with another record than the one asked for.
    #[classify(Validation)]
    WrongRecord {
        /// The id asked for.
        asked: u64,
        /// The id received.
        got: u64,
    },
    /// The database refused the write.
    #[classify(source)]
    Database(SqliteError),
    /// The blocking task running the write panicked or was cancelled (`Unknown`: retried).
    Worker(tokio::task::JoinError),
    /// The operation's breaker is open: nothing ran.
    #[classify(source)]
    CircuitOpen(CircuitOpenError),
}

impl ImportError {
    /// The error for an answer with an error status: 429 and 503 keep the `Retry-After` that
    /// came with them (the statuses it is defined for, besides redirects).
    ///
    /// ```
    /// use resilience::importer::ImportError;
    /// use resilience_core::{Classify, ErrorCategory};
    /// use std::time::Duration;
    /// let answer = axum::http::Response::builder().status(429).body("slow down").unwrap();
    /// let status = reqwest::Response::from(answer).error_for_status().unwrap_err();
    /// let err = ImportError::from_status(status, Some(Duration::from_secs(2)));
    /// assert_eq!(err.category(), ErrorCategory::RateLimit);
    /// assert_eq!(err.retry_after(), Some(Duration::from_secs(2)));
    /// ```
    pub fn from_status(source: reqwest::Error, retry_after: Option<Duration>) -> ImportError {
        match source.status().map(|s| s.as_u16()) {
            Some(429) => ImportError::RateLimited {
                source,
                retry_after,
            },
            Some(503) => ImportError::Unavailable {
                source,
                retry_after,
            },
            _ => ImportError::Http(source),
        }
    }
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImportError::Http(source)
            | ImportError::RateLimited { source, .. }
            | ImportError::Unavailable { source, .. } => write!(f, "HTTP: {source}"),
            ImportError::TimedOut(e) => fmt::Display::fmt(e, f),
            ImportError::WrongRecord { asked, got } => {
                write!(f, "asked for record {asked}, got record {got}")
            }
            ImportError::Database(e) => write!(f, "database: {e}"),
            ImportError::Worker(e) => write!(f, "database worker: {e}"),
            ImportError::CircuitOpen(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl Error for ImportError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            ImportError::Http(source)
            | ImportError::RateLimited { source, .. }
            | ImportError::Unavailable { source, .. } => Some(source),
            ImportError::TimedOut(e) => Some(e),
            ImportError::WrongRecord { .. } => None,
            // rusqlite's error itself, so that matching along the chain finds it; the wrapper
            // only exists for the derive.
            ImportError::Database(e) => Some(&e.0),
            ImportError::Worker(e) => Some(e),
            ImportError::CircuitOpen(e) => Some(e),
        }
    }
}

impl From<reqwest::Error> for ImportError {
    fn from(source: reqwest::Error) -> Self {
        ImportError::Http(source)
    }
}

impl From<rusqlite::Error> for ImportError {
    fn from(e: rusqlite::Error) -> Self {
        ImportError::Database(SqliteError(e))
    }
}

impl From<tokio::task::JoinError> for ImportError {
    fn from(e: tokio::task::JoinError) -> Self {
        ImportError::Worker(e)
    }
}

impl From<CircuitOpenError> for ImportError {
    fn from(e: CircuitOpenError) -> Self {
        ImportError::CircuitOpen(e)
    }
}

impl From<AttemptTimedOut> for ImportError {
    fn from(e: AttemptTimedOut) -> Self {
        ImportError::TimedOut(e)
    }
}

/// The importer could not start.
#[derive(Debug)]
pub enum SetupError {
    /// The database could not be opened or prepared.
    Database(rusqlite::Error),
    /// The retry or breaker settings are invalid.
    Config(ConfigError),
    /// The breaker state file is unusable.
    StateFile(PersistError),
    /// The HTTP client could not be built.
    Client(reqwest::Error),
    /// The database worker failed.
    Worker(tokio::task::JoinError),
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetupError::Database(e) => write!(f, "cannot use the database: {e}"),
            SetupError::Config(e) => write!(f, "invalid settings: {e}"),
            SetupError::StateFile(e) => fmt::Display::fmt(e, f),
            SetupError::Client(e) => write!(f, "cannot build the HTTP client: {e}"),
            SetupError::Worker(e) => write!(f, "database worker: {e}"),
        }
    }
}

impl Error for SetupError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            SetupError::Database(e) => Some(e),
            SetupError::Config(e) => Some(e),
            SetupError::StateFile(e) => Some(e),
            SetupError::Client(e) => Some(e),
            SetupError::Worker(e) => Some(e),
        }
    }
}
