//! The `Classify` trait: how an error tells the runtime what kind of failure it is.

use crate::ErrorCategory;
use std::error::Error;
use std::io;
use std::time::Duration;

/// How an error tells the runtime what kind of failure it is, and whether the peer asked for a
/// particular wait before the next attempt.
///
/// Every error type used with the manager or `#[retry]` implements it. Most user error enums get
/// it from `#[derive(Classify)]`; by hand it takes a few lines:
///
/// ```
/// use resilience_core::{Classify, ErrorCategory};
/// use std::time::Duration;
///
/// #[derive(Debug)]
/// enum FetchError { Busy { retry_after_secs: u64 }, BadId }
///
/// impl Classify for FetchError {
///     fn category(&self) -> ErrorCategory {
///         match self {
///             FetchError::Busy { .. } => ErrorCategory::RateLimit,
///             FetchError::BadId => ErrorCategory::Validation,
///         }
///     }
///     fn retry_after(&self) -> Option<Duration> {
///         match self {
///             FetchError::Busy { retry_after_secs } => Some(Duration::from_secs(*retry_after_secs)),
///             FetchError::BadId => None,
///         }
///     }
/// }
///
/// assert_eq!(FetchError::BadId.category(), ErrorCategory::Validation);
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be classified: it does not implement `Classify`",
    label = "the error type of a retried call must implement `Classify`",
    note = "add `#[derive(resilience_core::Classify)]` to the error type (with `#[classify(Network)]` and so on on its variants), or implement `Classify` by hand"
)]
pub trait Classify {
    /// What kind of failure this is. `Unknown` (retried) unless the type says otherwise.
    fn category(&self) -> ErrorCategory {
        ErrorCategory::Unknown
    }

    /// A wait the peer asked for (HTTP `Retry-After`). It replaces the computed delay, capped at
    /// `max_delay`.
    fn retry_after(&self) -> Option<Duration> {
        None
    }

    /// This error as a `std::error::Error`, so that non-retryable types
    /// ([`RetryConfig::never_retry`](crate::RetryConfig::never_retry)) and classifier rules can be
    /// matched on it and along its `source()` chain. `None` (the default) for types that are not
    /// errors; `#[derive(Classify)]` returns `Some(self)`.
    ///
    /// ```
    /// use resilience_core::Classify;
    /// let e = std::io::Error::other("boom");
    /// assert!(e.as_error().is_some());
    /// ```
    fn as_error(&self) -> Option<&(dyn Error + 'static)> {
        None
    }
}

// The runtime's own errors, classified here so that the errors themselves stay plain data.
impl Classify for crate::AttemptTimedOut {
    fn category(&self) -> ErrorCategory {
        ErrorCategory::Timeout
    }
    fn as_error(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self)
    }
}

impl Classify for crate::CircuitOpenError {
    fn category(&self) -> ErrorCategory {
        ErrorCategory::Unavailable
    }
    fn retry_after(&self) -> Option<Duration> {
        (!self.is_forced()).then_some(self.remaining())
    }
    fn as_error(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self)
    }
}

impl<T: Classify + ?Sized> Classify for &T {
    fn category(&self) -> ErrorCategory {
        (**self).category()
    }
    fn retry_after(&self) -> Option<Duration> {
        (**self).retry_after()
    }
    fn as_error(&self) -> Option<&(dyn Error + 'static)> {
        (**self).as_error()
    }
}

/// By [`io::ErrorKind`]; an error wrapped inside (`io::Error::other(e)`) is asked first.
///
/// ```
/// use resilience_core::{Classify, ErrorCategory};
/// use std::io::{Error, ErrorKind};
/// assert_eq!(Error::from(ErrorKind::ConnectionReset).category(), ErrorCategory::Network);
/// assert_eq!(Error::from(ErrorKind::TimedOut).category(), ErrorCategory::Timeout);
/// assert_eq!(Error::from(ErrorKind::InvalidData).category(), ErrorCategory::Validation);
/// ```
impl Classify for io::Error {
    // Inline, as the other two: an I/O error's category is a look-up of its kind, and the
    // walk along a wrapped error's chain stays out of line.
    #[inline]
    fn category(&self) -> ErrorCategory {
        if let Some(inner) = self.get_ref() {
            if let Some(category) = known_category_along_chain(inner) {
                return category;
            }
        }
        io_kind_category(self.kind())
    }
    #[inline]
    fn retry_after(&self) -> Option<Duration> {
        self.get_ref()
            .and_then(|inner| known_retry_after_along_chain(inner))
    }
    #[inline]
    fn as_error(&self) -> Option<&(dyn Error + 'static)> {
        Some(self)
    }
}

/// Walks the `source()` chain and takes the first error of a type the runtime knows (I/O errors,
/// its own errors, and the optional integrations); `Unknown` when none is found.
///
/// ```
/// use resilience_core::{Classify, ErrorCategory};
/// let e: Box<dyn std::error::Error + Send + Sync> =
///     Box::new(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
/// assert_eq!(e.category(), ErrorCategory::Network);
/// let plain: Box<dyn std::error::Error + Send + Sync> = "no idea".into();
/// assert_eq!(plain.category(), ErrorCategory::Unknown);
/// ```
impl Classify for Box<dyn Error + Send + Sync> {
    fn category(&self) -> ErrorCategory {
        known_category_along_chain(&**self).unwrap_or(ErrorCategory::Unknown)
    }
    fn retry_after(&self) -> Option<Duration> {
        known_retry_after_along_chain(&**self)
    }
    fn as_error(&self) -> Option<&(dyn Error + 'static)> {
        Some(&**self)
    }
}

/// As for `Box<dyn Error + Send + Sync>`.
impl Classify for Box<dyn Error> {
    fn category(&self) -> ErrorCategory {
        known_category_along_chain(&**self).unwrap_or(ErrorCategory::Unknown)
    }
    fn retry_after(&self) -> Option<Duration> {
        known_retry_after_along_chain(&**self)
    }
    fn as_error(&self) -> Option<&(dyn Error + 'static)> {
        Some(&**self)
    }
}

/// Tokio's timeout error is a `Timeout`.
#[cfg(feature = "tokio")]
impl Classify for tokio::time::error::Elapsed {
    fn category(&self) -> ErrorCategory {
        ErrorCategory::Timeout
    }
    fn as_error(&self) -> Option<&(dyn Error + 'static)> {
        Some(self)
    }
}

/// The category of an `io::ErrorKind`.
#[inline]
pub(crate) fn io_kind_category(kind: io::ErrorKind) -> ErrorCategory {
    use io::ErrorKind as K;
    match kind {
        K::ConnectionRefused
        | K::ConnectionReset
        | K::ConnectionAborted
        | K::NotConnected
        | K::BrokenPipe
        | K::AddrNotAvailable
        | K::AddrInUse
        | K::NetworkDown
        | K::NetworkUnreachable
        | K::HostUnreachable
        | K::UnexpectedEof => ErrorCategory::Network,
        K::TimedOut | K::WouldBlock => ErrorCategory::Timeout,
        K::ResourceBusy => ErrorCategory::Unavailable,
        K::NotFound => ErrorCategory::NotFound,
        K::PermissionDenied => ErrorCategory::Authentication,
        K::InvalidInput | K::InvalidData | K::Unsupported => ErrorCategory::Validation,
        _ => ErrorCategory::Unknown,
    }
}

/// The most links a chain walk follows. Real chains are a handful of links long; the bound makes
/// a walk end even on a chain that a cycle check cannot see (a `source()` that builds a fresh
/// error on every call, or a cycle whose links repeat only after the 64 remembered).
pub(crate) const MAX_CHAIN_LINKS: usize = 64;

/// `err` and the errors behind it, outermost first. An `io::Error` wrapping another error
/// (`io::Error::other(e)`) is followed by `e` itself: its `source()` skips `e` and returns what
/// `e`'s own `source()` would.
///
/// The walk is bounded and cycle-safe: it stops after [`MAX_CHAIN_LINKS`] errors, and before
/// an error it has already yielded (an error whose `source()` is itself, or two that name each
/// other), so classification and [`NonRetryable::matches`](crate::NonRetryable::matches) end on
/// any chain.
pub(crate) fn errors_along_chain<'a>(
    err: &'a (dyn Error + 'static),
) -> impl Iterator<Item = &'a (dyn Error + 'static)> {
    ChainWalk {
        next: Some(err),
        seen: [None; MAX_CHAIN_LINKS],
        len: 0,
    }
}

/// The iterator of [`errors_along_chain`]. It remembers what it yielded in a fixed array, so a
/// walk allocates nothing; the linear look-up is a few comparisons for real chains.
struct ChainWalk<'a> {
    next: Option<&'a (dyn Error + 'static)>,
    seen: [Option<ErrorId>; MAX_CHAIN_LINKS],
    len: usize,
}

/// Who an error is: its address and its vtable. The address alone is not enough: a wrapper's
/// first field (`struct Wrapper(io::Error)`, whose `source()` is `&self.0`) has the wrapper's
/// address. If the compiler gives one type two vtables, a cycle goes unseen and the bound ends it.
#[derive(Clone, Copy, PartialEq)]
struct ErrorId(*const dyn Error);

impl<'a> Iterator for ChainWalk<'a> {
    type Item = &'a (dyn Error + 'static);

    fn next(&mut self) -> Option<Self::Item> {
        let err = self.next.take()?;
        let id = ErrorId(err);
        if self.len == MAX_CHAIN_LINKS || self.seen[..self.len].contains(&Some(id)) {
            return None;
        }
        self.seen[self.len] = Some(id);
        self.len += 1;
        self.next = next_in_chain(err);
        Some(err)
    }
}

fn next_in_chain<'a>(err: &'a (dyn Error + 'static)) -> Option<&'a (dyn Error + 'static)> {
    if let Some(inner) = err.downcast_ref::<io::Error>().and_then(io::Error::get_ref) {
        return Some(inner);
    }
    err.source()
}

/// The category of the first error of a known type along the chain.
pub(crate) fn known_category_along_chain(err: &(dyn Error + 'static)) -> Option<ErrorCategory> {
    errors_along_chain(err).find_map(known_category)
}

pub(crate) fn known_retry_after_along_chain(err: &(dyn Error + 'static)) -> Option<Duration> {
    errors_along_chain(err).find_map(known_retry_after)
}

/// The category of one error, if its type is one the runtime knows.
fn known_category(err: &(dyn Error + 'static)) -> Option<ErrorCategory> {
    if let Some(io) = err.downcast_ref::<io::Error>() {
        // An io::Error wrapping something the chain walk reaches next: let that decide when it
        // is known, since the wrapper's kind is often just `Other`.
        if io.kind() == io::ErrorKind::Other && io.get_ref().is_some() {
            return None;
        }
        return Some(io_kind_category(io.kind()));
    }
    if err.is::<crate::CircuitOpenError>() {
        return Some(ErrorCategory::Unavailable);
    }
    if err.is::<crate::AttemptTimedOut>() {
        return Some(ErrorCategory::Timeout);
    }
    #[cfg(feature = "tokio")]
    if err.is::<tokio::time::error::Elapsed>() {
        return Some(ErrorCategory::Timeout);
    }
    #[cfg(feature = "reqwest")]
    if let Some(http) = err.downcast_ref::<reqwest::Error>() {
        // reqwest's own classification, which reads its status code and its own chain. When
        // that says nothing, the walk goes on: an I/O error further down may still know.
        return Some(Classify::category(http)).filter(|c| *c != ErrorCategory::Unknown);
    }
    None
}

fn known_retry_after(err: &(dyn Error + 'static)) -> Option<Duration> {
    if let Some(open) = err.downcast_ref::<crate::CircuitOpenError>() {
        return Some(open.remaining());
    }
    #[cfg(feature = "reqwest")]
    if let Some(http) = err.downcast_ref::<reqwest::Error>() {
        return Classify::retry_after(http);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Wrapper(io::Error);
    impl std::fmt::Display for Wrapper {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("wrapper")
        }
    }
    impl Error for Wrapper {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn boxed_error_walks_the_source_chain() {
        let e: Box<dyn Error + Send + Sync> =
            Box::new(Wrapper(io::Error::from(io::ErrorKind::TimedOut)));
        assert_eq!(e.category(), ErrorCategory::Timeout);
    }

    #[test]
    fn io_error_wrapping_a_known_error_takes_its_category() {
        let inner = io::Error::from(io::ErrorKind::ConnectionReset);
        let outer = io::Error::other(Wrapper(inner));
        assert_eq!(outer.category(), ErrorCategory::Network);
    }

    #[test]
    fn io_error_other_without_known_inner_is_unknown() {
        assert_eq!(io::Error::other("x").category(), ErrorCategory::Unknown);
    }

    #[cfg(feature = "reqwest")]
    mod reqwest_errors {
        use super::*;
        use crate::integrations::reqwest::test_support::status_error;

        /// An application error with a reqwest error as its `source()`.
        #[derive(Debug)]
        struct FetchFailed(reqwest::Error);
        impl std::fmt::Display for FetchFailed {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("fetch failed")
            }
        }
        impl Error for FetchFailed {
            fn source(&self) -> Option<&(dyn Error + 'static)> {
                Some(&self.0)
            }
        }

        #[test]
        fn boxed_reqwest_error_is_classified_by_its_status() {
            for (status, category) in [
                (429, ErrorCategory::RateLimit),
                (503, ErrorCategory::Unavailable),
                (404, ErrorCategory::NotFound),
                (401, ErrorCategory::Authentication),
                (400, ErrorCategory::Validation),
            ] {
                let boxed: Box<dyn Error + Send + Sync> = Box::new(status_error(status));
                assert_eq!(boxed.category(), category, "status {status}");
                assert_eq!(boxed.retry_after(), None);
            }
        }

        #[test]
        fn reqwest_error_deeper_in_the_chain_is_found() {
            let boxed: Box<dyn Error + Send + Sync> = Box::new(FetchFailed(status_error(429)));
            assert_eq!(boxed.category(), ErrorCategory::RateLimit);
            let plain: Box<dyn Error> = Box::new(FetchFailed(status_error(503)));
            assert_eq!(plain.category(), ErrorCategory::Unavailable);
            let io = io::Error::other(FetchFailed(status_error(404)));
            assert_eq!(io.category(), ErrorCategory::NotFound);
        }
    }
}
