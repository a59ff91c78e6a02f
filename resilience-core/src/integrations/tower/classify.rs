//! Which responses are failures: the tower layer's counterpart of `classify_ok`.

use crate::http::answer_failure as status_failure;
use crate::Failure;

/// Judges the responses of a wrapped service: `Some` for a response that is really a failure
/// (an HTTP 503), which is then retried and counted as a failure of its category, exactly as a
/// `classify_ok` judge does for `#[retry]`. When no retry follows, the caller gets that response
/// as it came.
///
/// Implemented by [`HttpClassifier`] for `http::Response<B>`, by [`AnyResponseOk`] for any
/// response, and by every `Fn(&Res) -> Option<Failure>`.
///
/// ```
/// use resilience_core::{ClassifyResponse, ErrorCategory, Failure};
/// // A service whose responses are status codes as numbers.
/// let judge = |status: &u16| (*status >= 500).then(|| Failure::new(ErrorCategory::Unavailable));
/// assert!(judge.classify(&503).is_some());
/// assert!(judge.classify(&200).is_none());
/// ```
pub trait ClassifyResponse<Res> {
    /// The failure `response` stands for, if it is one.
    fn classify(&self, response: &Res) -> Option<Failure>;
}

impl<Res, F: Fn(&Res) -> Option<Failure>> ClassifyResponse<Res> for F {
    #[inline]
    fn classify(&self, response: &Res) -> Option<Failure> {
        self(response)
    }
}

/// The classifier of HTTP responses: 5xx is `Unavailable`, 429 `RateLimit`, 408 `Timeout` (all
/// three transient, so retried); 401 and 403 `Authentication`, 404 and 410 `NotFound`, any other
/// 4xx `Validation` (failures that are counted but not retried). 1xx, 2xx and 3xx are successes.
///
/// On a transient answer the `Retry-After` header is read, as delta-seconds or as an HTTP-date;
/// the wait it asks for replaces the computed backoff, capped at the policy's `max_delay` (so a
/// server cannot park a client for an hour). An unreadable header is ignored.
///
/// ```
/// use resilience_core::{ClassifyResponse, ErrorCategory, HttpClassifier};
/// use std::time::Duration;
/// let busy = http::Response::builder().status(503).header("retry-after", "7").body(()).unwrap();
/// let failure = HttpClassifier.classify(&busy).unwrap();
/// assert_eq!(failure.category, ErrorCategory::Unavailable);
/// assert_eq!(failure.retry_after, Some(Duration::from_secs(7)));
///
/// let missing = http::Response::builder().status(404).body(()).unwrap();
/// assert_eq!(HttpClassifier.classify(&missing).unwrap().category, ErrorCategory::NotFound);
/// assert!(HttpClassifier.classify(&http::Response::new(())).is_none());
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct HttpClassifier;

impl<B> ClassifyResponse<http::Response<B>> for HttpClassifier {
    fn classify(&self, response: &http::Response<B>) -> Option<Failure> {
        let status = response.status();
        // The happy path: a success status decides without looking at any header.
        if status.is_success() {
            return None;
        }
        let retry_after = response
            .headers()
            .get(http::header::RETRY_AFTER)
            .map(http::HeaderValue::as_bytes);
        status_failure(status.as_u16(), retry_after)
    }
}

/// Takes every response for a success: only the service's errors are failures. For services
/// whose responses carry no failure (or whose failures all arrive as errors).
///
/// ```
/// use resilience_core::{AnyResponseOk, ClassifyResponse};
/// assert!(AnyResponseOk.classify(&http::Response::builder().status(500).body(()).unwrap()).is_none());
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct AnyResponseOk;

impl<Res> ClassifyResponse<Res> for AnyResponseOk {
    #[inline(always)]
    fn classify(&self, _: &Res) -> Option<Failure> {
        None
    }
}
