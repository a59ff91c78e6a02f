//! What an HTTP answer means for a retried call, shared by the `tower` and `reqwest-middleware`
//! integrations: the category of a status code and the wait a `Retry-After` header asks for.

use crate::{ErrorCategory, Failure};
use std::time::{Duration, SystemTime};

/// The failure an answer with `status` stands for: `None` for 1xx, 2xx and 3xx. 5xx is
/// `Unavailable`, 429 `RateLimit` and 408 `Timeout` (all retried by default); 401 and 403 are
/// `Authentication`, 404 and 410 `NotFound`, any other 4xx `Validation` (none retried by
/// default, all counted). `retry_after` is the raw `Retry-After` value, read only on answers
/// that ask the client to come back (429, 503, and the other transient ones).
pub(crate) fn status_failure(status: u16, retry_after: Option<&[u8]>) -> Option<Failure> {
    let category = match status {
        408 => ErrorCategory::Timeout,
        429 => ErrorCategory::RateLimit,
        401 | 403 => ErrorCategory::Authentication,
        404 | 410 => ErrorCategory::NotFound,
        400..=499 => ErrorCategory::Validation,
        500..=599 => ErrorCategory::Unavailable,
        _ => return None,
    };
    let failure = Failure::new(category);
    // A Retry-After on a 404 says nothing about when to retry a call that is not retried.
    let transient = matches!(status, 408 | 429 | 500..=599);
    match retry_after
        .filter(|_| transient)
        .and_then(|v| parse_retry_after(v, SystemTime::now()))
    {
        Some(wait) => Some(failure.with_retry_after(wait)),
        None => Some(failure),
    }
}

/// Reads a `Retry-After` value: delta-seconds (`120`) or an HTTP-date, which is turned into a
/// wait from `now` (a date in the past is no wait). `None` for anything else: an unreadable
/// hint is ignored and the policy's own delay applies. Waits are not capped here: the call's
/// driver caps every `retry_after` at the policy's `max_delay`.
pub(crate) fn parse_retry_after(value: &[u8], now: SystemTime) -> Option<Duration> {
    let text = std::str::from_utf8(value).ok()?.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        // More digits than a u64 holds is still "a very long time": saturate, the cap applies.
        return Some(Duration::from_secs(text.parse().unwrap_or(u64::MAX)));
    }
    let date = httpdate::parse_http_date(text).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
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
            (503, Some(ErrorCategory::Unavailable)),
            (599, Some(ErrorCategory::Unavailable)),
            (401, Some(ErrorCategory::Authentication)),
            (403, Some(ErrorCategory::Authentication)),
            (404, Some(ErrorCategory::NotFound)),
            (410, Some(ErrorCategory::NotFound)),
            (400, Some(ErrorCategory::Validation)),
            (422, Some(ErrorCategory::Validation)),
            (200, None),
            (204, None),
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
    fn retry_after_in_seconds_and_as_a_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        assert_eq!(
            parse_retry_after(b"120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(b" 0 ", now), Some(Duration::ZERO));
        // 2015-10-21 07:28:00 GMT is 1445412480: thirty seconds later.
        assert_eq!(
            parse_retry_after(b"Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after(b"Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(Duration::ZERO),
            "a date in the past is no wait"
        );
        assert_eq!(parse_retry_after(b"-1", now), None);
        assert_eq!(parse_retry_after(b"1.5", now), None);
        assert_eq!(parse_retry_after(b"soon", now), None);
        assert_eq!(parse_retry_after(b"", now), None);
        assert_eq!(
            parse_retry_after(b"99999999999999999999999", now),
            Some(Duration::from_secs(u64::MAX))
        );
    }

    #[test]
    fn retry_after_is_read_on_transient_answers_only() {
        let wait = Some(Duration::from_secs(3));
        assert_eq!(status_failure(503, Some(b"3")).unwrap().retry_after, wait);
        assert_eq!(status_failure(429, Some(b"3")).unwrap().retry_after, wait);
        assert_eq!(status_failure(404, Some(b"3")).unwrap().retry_after, None);
        assert_eq!(
            status_failure(503, Some(b"later")).unwrap().retry_after,
            None
        );
    }
}
