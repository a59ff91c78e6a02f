//! HTTP answers as failures (features `reqwest` and `tower`): the category of a status code, the
//! wait of a `Retry-After` header, and a ready `classify_ok` judge for `reqwest::Response`
//! (feature `reqwest`). The tower layer and the reqwest middleware judge answers with these.
//!
//! ```
//! use resilience_core::http::{parse_retry_after, status_failure};
//! use resilience_core::ErrorCategory;
//! use std::time::{Duration, SystemTime};
//! let wait = parse_retry_after("2", SystemTime::now());
//! let failure = status_failure(503, wait).unwrap();
//! assert_eq!((failure.category, failure.retry_after), (ErrorCategory::Unavailable, Some(Duration::from_secs(2))));
//! assert!(status_failure(200, None).is_none());
//! ```

use crate::backoff::duration_from_secs;
use crate::{ErrorCategory, Failure};
use std::time::{Duration, SystemTime};

/// The category of an HTTP status code that is an error: 408 `Timeout`, 429 `RateLimit`,
/// 5xx `Unavailable` (these three are transient, so retried); 401 and 403 `Authentication`,
/// 404 and 410 `NotFound`, any other 4xx `Validation`. `None` for the other codes.
///
/// ```
/// use resilience_core::{http::status_category, ErrorCategory};
/// assert_eq!(status_category(429), Some(ErrorCategory::RateLimit));
/// assert_eq!(status_category(302), None);
/// ```
pub fn status_category(status: u16) -> Option<ErrorCategory> {
    Some(match status {
        408 => ErrorCategory::Timeout,
        429 => ErrorCategory::RateLimit,
        401 | 403 => ErrorCategory::Authentication,
        404 | 410 => ErrorCategory::NotFound,
        400..=499 => ErrorCategory::Validation,
        500..=599 => ErrorCategory::Unavailable,
        _ => return None,
    })
}

/// The failure an answer with `status` stands for (see [`status_category`]), with the wait its
/// `Retry-After` asked for when the status is transient (408, 429, 5xx: a `Retry-After` on a
/// 404 says nothing about a call that is not retried); `None` for a status that is not an
/// error.
///
/// ```
/// use resilience_core::{http::status_failure, ErrorCategory};
/// assert_eq!(status_failure(404, None).unwrap().category, ErrorCategory::NotFound);
/// assert!(status_failure(204, None).is_none());
/// ```
pub fn status_failure(status: u16, retry_after: Option<Duration>) -> Option<Failure> {
    let failure = Failure::new(status_category(status)?);
    let transient = matches!(status, 408 | 429 | 500..=599);
    Some(match retry_after.filter(|_| transient) {
        Some(wait) => failure.with_retry_after(wait),
        None => failure,
    })
}

/// [`status_failure`] with the raw `Retry-After` header value, read as of now.
pub(crate) fn answer_failure(status: u16, retry_after: Option<&[u8]>) -> Option<Failure> {
    let wait = retry_after
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()));
    status_failure(status, wait)
}

/// The wait a `Retry-After` value asks for, as of `now`: seconds (a decimal number is accepted,
/// a huge one saturates), or an HTTP date (a date already past asks for no wait). `None` for
/// anything else.
///
/// ```
/// use resilience_core::http::parse_retry_after;
/// use std::time::{Duration, SystemTime, UNIX_EPOCH};
/// let now = UNIX_EPOCH + Duration::from_secs(1_445_412_480);
/// assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
/// assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now), Some(Duration::from_secs(30)));
/// assert_eq!(parse_retry_after("soon", now), None);
/// ```
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<f64>() {
        // A wait too long for a `Duration` is the longest one (calls cap it at `max_delay`).
        return duration_from_secs(secs)
            .or_else(|| (secs.is_finite() && secs >= 0.0).then_some(Duration::MAX));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// A `classify_ok` judge for reqwest: an answer whose status is an error (see
/// [`status_category`]) is a failure, with the wait of its `Retry-After`; the caller still gets
/// the response when no retry follows.
///
/// ```
/// use resilience_core::{http::reqwest_response_failure, ErrorCategory};
/// let answer = http::Response::builder().status(503).header("retry-after", "3").body("").unwrap();
/// let failure = reqwest_response_failure(&reqwest::Response::from(answer)).unwrap();
/// assert_eq!(failure.category, ErrorCategory::Unavailable);
/// assert_eq!(failure.retry_after, Some(std::time::Duration::from_secs(3)));
/// ```
#[cfg(feature = "reqwest")]
pub fn reqwest_response_failure(response: &reqwest::Response) -> Option<Failure> {
    let retry_after = response.headers().get(reqwest::header::RETRY_AFTER);
    answer_failure(
        response.status().as_u16(),
        retry_after.map(|v| v.as_bytes()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_map_to_categories() {
        for (status, category) in [
            (408, Some(ErrorCategory::Timeout)),
            (429, Some(ErrorCategory::RateLimit)),
            (500, Some(ErrorCategory::Unavailable)),
            (599, Some(ErrorCategory::Unavailable)),
            (401, Some(ErrorCategory::Authentication)),
            (403, Some(ErrorCategory::Authentication)),
            (404, Some(ErrorCategory::NotFound)),
            (410, Some(ErrorCategory::NotFound)),
            (400, Some(ErrorCategory::Validation)),
            (422, Some(ErrorCategory::Validation)),
            (200, None),
            (302, None),
            (101, None),
        ] {
            assert_eq!(
                status_failure(status, None).map(|f| f.category),
                category,
                "{status}"
            );
        }
    }

    #[test]
    fn retry_after_is_read_on_transient_answers_only() {
        let wait = Some(Duration::from_secs(3));
        assert_eq!(answer_failure(503, Some(b"3")).unwrap().retry_after, wait);
        assert_eq!(answer_failure(429, Some(b"3")).unwrap().retry_after, wait);
        assert_eq!(answer_failure(404, Some(b"3")).unwrap().retry_after, None);
        assert_eq!(
            answer_failure(503, Some(b"later")).unwrap().retry_after,
            None
        );
        assert_eq!(
            answer_failure(503, Some(&[0xff, 0xfe]))
                .unwrap()
                .retry_after,
            None
        );
    }

    #[test]
    fn a_date_in_the_past_is_no_wait() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
    }

    #[test]
    fn huge_or_negative_seconds_never_panic() {
        let now = SystemTime::now();
        assert_eq!(parse_retry_after("1e300", now), Some(Duration::MAX));
        assert_eq!(parse_retry_after("-1", now), None);
        assert_eq!(parse_retry_after("NaN", now), None);
        assert_eq!(parse_retry_after("", now), None);
    }
}
