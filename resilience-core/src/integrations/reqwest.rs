//! `Classify` for `reqwest::Error` (feature `reqwest`).
//!
//! A `reqwest::Error` keeps the status code of `Response::error_for_status` but not the
//! response's headers, so it cannot honour `Retry-After`: read the header before turning the
//! response into an error, and return it from your own error type's `retry_after` (the importer
//! example does exactly that).
//!
//! The same classification applies to a `reqwest::Error` in a `Box<dyn Error>` or an
//! `io::Error`, directly or further down their `source()` chain.

use crate::classify::io_kind_category;
use crate::{Classify, ErrorCategory};
use std::error::Error;
use std::io;

/// By what failed: a timeout is `Timeout`; a status code by its meaning (408 `Timeout`,
/// 429 `RateLimit`, 5xx `Unavailable`, 404 and 410 `NotFound`, 401 and 403 `Authentication`, any
/// other 4xx `Validation`); a failed connection, request or body transfer is `Network` (or the
/// category of the I/O error behind it); a body that is not the expected JSON is `Validation`;
/// a bad request builder is `Configuration`; a redirect loop is `Validation`.
///
/// `retry_after` is always `None`: see the module documentation.
///
/// ```
/// use resilience_core::{Classify, ErrorCategory};
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let response = http::Response::builder().status(503).body("busy").unwrap();
/// let err = reqwest::Response::from(response).error_for_status().unwrap_err();
/// assert_eq!(err.category(), ErrorCategory::Unavailable);
///
/// let response = http::Response::new("{\"id\": 1, \"na");
/// let err = reqwest::Response::from(response).json::<serde_json::Value>().await.unwrap_err();
/// assert_eq!(err.category(), ErrorCategory::Validation);
/// # });
/// ```
impl Classify for reqwest::Error {
    fn category(&self) -> ErrorCategory {
        if self.is_timeout() {
            return ErrorCategory::Timeout;
        }
        if let Some(status) = self.status() {
            return status_category(status.as_u16());
        }
        if self.is_builder() {
            return ErrorCategory::Configuration;
        }
        if self.is_redirect() {
            return ErrorCategory::Validation;
        }
        if self.is_connect() {
            return ErrorCategory::Network;
        }
        if self.is_decode() {
            // reqwest reports a body that broke off mid-way as a decode error too: only a body
            // that arrived whole and did not parse is the peer's fault for good.
            return transfer_category(self).unwrap_or(ErrorCategory::Validation);
        }
        if self.is_request() || self.is_body() || self.is_upgrade() {
            return transfer_category(self).unwrap_or(ErrorCategory::Network);
        }
        ErrorCategory::Unknown
    }

    fn as_error(&self) -> Option<&(dyn Error + 'static)> {
        Some(self)
    }
}

/// The category of an HTTP status code that is an error; `Unknown` for the others.
pub(crate) fn status_category(status: u16) -> ErrorCategory {
    crate::http::status_category(status).unwrap_or(ErrorCategory::Unknown)
}

/// What broke a transfer, found along the error's source chain: `None` when nothing says the
/// connection failed (a JSON error, for instance).
fn transfer_category(err: &reqwest::Error) -> Option<ErrorCategory> {
    // Bounded like every chain walk (`classify::errors_along_chain`): a `source()` that loops
    // must not hang classification.
    let chain = std::iter::successors(err.source(), |e| (*e).source());
    for e in chain.take(crate::classify::MAX_CHAIN_LINKS) {
        if e.is::<serde_json::Error>() {
            return None;
        }
        if let Some(io_err) = e.downcast_ref::<io::Error>() {
            if !(io_err.kind() == io::ErrorKind::Other && io_err.get_ref().is_some()) {
                return Some(io_kind_category(io_err.kind()));
            }
        }
        if let Some(hyper_err) = e.downcast_ref::<hyper::Error>() {
            if hyper_err.is_timeout() {
                return Some(ErrorCategory::Timeout);
            }
            // An incomplete message, a closed or reset connection, a canceled request: hyper
            // errors without an I/O error behind them are all failures of the transfer.
            if hyper_err.source().is_none() {
                return Some(ErrorCategory::Network);
            }
        }
    }
    None
}

/// Errors of the kinds reqwest reports, for this crate's tests.
#[cfg(test)]
pub(crate) mod test_support {
    /// The error `error_for_status` gives for an answer with `status`.
    pub(crate) fn status_error(status: u16) -> reqwest::Error {
        let response = http::Response::builder()
            .status(status)
            .body("")
            .expect("valid response");
        reqwest::Response::from(response)
            .error_for_status()
            .expect_err("an error status")
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::status_error;
    use super::*;
    use std::net::{Ipv4Addr, TcpListener};

    #[test]
    fn error_for_status_is_classified_by_its_code() {
        assert_eq!(status_error(429).category(), ErrorCategory::RateLimit);
        assert_eq!(status_error(503).category(), ErrorCategory::Unavailable);
        assert_eq!(status_error(404).category(), ErrorCategory::NotFound);
        assert_eq!(status_error(403).category(), ErrorCategory::Authentication);
        assert_eq!(status_error(400).category(), ErrorCategory::Validation);
        assert_eq!(status_error(429).retry_after(), None);
    }

    #[tokio::test]
    async fn refused_connection_is_network() {
        // A port that was just free: binding then dropping leaves nothing listening on it.
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .expect("an ephemeral port")
            .port();
        let err = reqwest::Client::new()
            .get(format!("http://127.0.0.1:{port}/"))
            .send()
            .await
            .expect_err("nothing listens");
        assert!(err.is_connect(), "{err:?}");
        assert_eq!(err.category(), ErrorCategory::Network);
    }

    /// A server on loopback that answers every connection with `reply` and then closes it.
    async fn answer_once(reply: &'static [u8]) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("an ephemeral port");
        let addr = listener.local_addr().expect("bound");
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("one connection");
            let mut request = [0u8; 1024];
            let _ = socket.read(&mut request).await;
            let _ = socket.write_all(reply).await;
        });
        format!("http://{addr}/")
    }

    #[tokio::test]
    async fn body_cut_short_is_network_not_validation() {
        let url = answer_once(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{\"id\": 1").await;
        let response = reqwest::Client::new()
            .get(url)
            .send()
            .await
            .expect("headers arrive");
        let err = response
            .json::<serde_json::Value>()
            .await
            .expect_err("the body breaks off");
        assert!(err.is_decode(), "reqwest reports it as decoding: {err:?}");
        assert_eq!(err.category(), ErrorCategory::Network);
    }

    #[tokio::test]
    async fn connection_closed_without_response_is_network() {
        let url = answer_once(b"").await;
        let err = reqwest::Client::new()
            .get(url)
            .send()
            .await
            .expect_err("no response");
        assert!(err.is_request(), "{err:?}");
        assert_eq!(err.category(), ErrorCategory::Network);
    }

    #[tokio::test]
    async fn invalid_url_is_configuration() {
        let err = reqwest::Client::new()
            .get("not a url")
            .send()
            .await
            .expect_err("no such url");
        assert_eq!(err.category(), ErrorCategory::Configuration);
    }

    #[tokio::test]
    async fn unparsable_json_is_validation() {
        let response = http::Response::new("{\"id\": 1, \"na");
        let err = reqwest::Response::from(response)
            .json::<serde_json::Value>()
            .await
            .expect_err("truncated JSON");
        assert!(err.is_decode());
        assert_eq!(err.category(), ErrorCategory::Validation);
    }

    #[test]
    fn status_codes_map_to_categories() {
        for (status, category) in [
            (408, ErrorCategory::Timeout),
            (429, ErrorCategory::RateLimit),
            (500, ErrorCategory::Unavailable),
            (502, ErrorCategory::Unavailable),
            (503, ErrorCategory::Unavailable),
            (504, ErrorCategory::Unavailable),
            (404, ErrorCategory::NotFound),
            (410, ErrorCategory::NotFound),
            (401, ErrorCategory::Authentication),
            (403, ErrorCategory::Authentication),
            (400, ErrorCategory::Validation),
            (422, ErrorCategory::Validation),
            (302, ErrorCategory::Unknown),
        ] {
            assert_eq!(status_category(status), category, "status {status}");
        }
    }
}
