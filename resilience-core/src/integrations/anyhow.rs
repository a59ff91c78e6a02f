//! `Classify` for `anyhow::Error`: an application's catch-all error is classified by what it
//! wraps, like a boxed error.

use crate::classify::{known_category_along_chain, known_retry_after_along_chain};
use crate::{Classify, ErrorCategory};
use std::error::Error;
use std::time::Duration;

/// Walks the chain of the error an `anyhow::Error` holds and takes the first error of a type the
/// runtime knows (I/O errors, its own errors, and the other enabled integrations); `Unknown`
/// when there is none. Its `retry_after` hint is the first found the same way.
///
/// ```
/// use resilience_core::{Classify, ErrorCategory};
/// let err = anyhow::Error::new(std::io::Error::from(std::io::ErrorKind::TimedOut))
///     .context("fetching CHEMBL25");
/// assert_eq!(err.category(), ErrorCategory::Timeout);
/// assert_eq!(anyhow::anyhow!("no idea").category(), ErrorCategory::Unknown);
/// ```
impl Classify for anyhow::Error {
    fn category(&self) -> ErrorCategory {
        known_category_along_chain(self.as_ref()).unwrap_or(ErrorCategory::Unknown)
    }
    fn retry_after(&self) -> Option<Duration> {
        known_retry_after_along_chain(self.as_ref())
    }
    fn as_error(&self) -> Option<&(dyn Error + 'static)> {
        Some(self.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_non_retryable_type_behind_context_is_found() {
        let parse = "x".parse::<u8>().unwrap_err();
        let err = anyhow::Error::new(parse).context("reading the id");
        let never = crate::RetryConfig::default().never_retry::<std::num::ParseIntError>();
        assert!(never.non_retryable.matches(err.as_error().unwrap()));
    }

    #[test]
    fn a_circuit_rejection_behind_context_is_unavailable_with_its_wait() {
        let open = crate::CircuitOpenError::new("svc", "op", Duration::from_secs(3), None);
        let err = anyhow::Error::new(open).context("calling svc");
        assert_eq!(err.category(), ErrorCategory::Unavailable);
        assert_eq!(err.retry_after(), Some(Duration::from_secs(3)));
    }
}
