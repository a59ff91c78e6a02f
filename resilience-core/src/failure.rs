//! Failures that arrive as `Ok`: an HTTP 503 returned as a response, a database reply that says
//! "busy". A call's `classify_ok` judges each `Ok` value; a value judged a failure is retried
//! and counted like an error of its category.

use crate::{Classify, ErrorCategory};
use std::time::Duration;

/// What a `classify_ok` judge says of an `Ok` value that is really a failure.
///
/// ```
/// use resilience_core::{ErrorCategory, Failure};
/// use std::time::Duration;
/// let busy = Failure::new(ErrorCategory::Unavailable).with_retry_after(Duration::from_secs(2));
/// assert_eq!((busy.category, busy.retry_after), (ErrorCategory::Unavailable, Some(Duration::from_secs(2))));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The kind of failure: decides whether it is retried and whether it counts against the
    /// breaker, as an error of this category would.
    pub category: ErrorCategory,
    /// A wait the peer asked for (HTTP `Retry-After`): it replaces the computed delay, capped at
    /// `max_delay`.
    pub retry_after: Option<Duration>,
}

impl Failure {
    /// A failure of `category`, with no wait asked for.
    ///
    /// ```
    /// use resilience_core::{ErrorCategory, Failure};
    /// assert_eq!(Failure::new(ErrorCategory::RateLimit).retry_after, None);
    /// ```
    pub const fn new(category: ErrorCategory) -> Self {
        Failure {
            category,
            retry_after: None,
        }
    }

    /// The same failure, asking for `wait` before the next attempt.
    ///
    /// ```
    /// use resilience_core::{ErrorCategory, Failure};
    /// use std::time::Duration;
    /// let f = Failure::new(ErrorCategory::RateLimit).with_retry_after(Duration::from_secs(1));
    /// assert_eq!(f.retry_after, Some(Duration::from_secs(1)));
    /// ```
    pub const fn with_retry_after(mut self, wait: Duration) -> Self {
        self.retry_after = Some(wait);
        self
    }
}

impl Classify for Failure {
    fn category(&self) -> ErrorCategory {
        self.category
    }
    fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

/// Judges the `Ok` values of a call: `Some` for a value that is really a failure.
///
/// Implemented for every `Fn(&T) -> Option<Failure>` (a `classify_ok` function or closure), and
/// for [`NoJudge`], which takes every `Ok` value as a success.
///
/// ```
/// use resilience_core::{ErrorCategory, Failure, JudgeOk};
/// let judge = |status: &u16| (*status >= 500).then(|| Failure::new(ErrorCategory::Unavailable));
/// assert!(judge.judge(&503).is_some());
/// assert!(judge.judge(&200).is_none());
/// ```
pub trait JudgeOk<T> {
    /// The failure `value` stands for, if it is one.
    fn judge(&self, value: &T) -> Option<Failure>;
}

impl<T, F: Fn(&T) -> Option<Failure>> JudgeOk<T> for F {
    #[inline]
    fn judge(&self, value: &T) -> Option<Failure> {
        self(value)
    }
}

/// The judge of calls without `classify_ok`: every `Ok` value is a success.
///
/// ```
/// use resilience_core::{JudgeOk, NoJudge};
/// assert!(JudgeOk::<u8>::judge(&NoJudge, &1).is_none());
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct NoJudge;

impl<T> JudgeOk<T> for NoJudge {
    #[inline(always)]
    fn judge(&self, _: &T) -> Option<Failure> {
        None
    }
}
