//! How the importer's errors are classified: `#[derive(Classify)]` on `ImportError`, reqwest's
//! impl behind `#[classify(source)]`, the hand-written `SqliteError`, and the runtime's own
//! errors.

use resilience::importer::ImportError;
use resilience::store::SqliteError;
use resilience_core::{AttemptTimedOut, CircuitOpenError, Classify, ErrorCategory};
use std::time::Duration;

fn status_error(status: u16) -> reqwest::Error {
    let answer = axum::http::Response::builder()
        .status(status)
        .body("")
        .expect("valid response");
    reqwest::Response::from(answer)
        .error_for_status()
        .expect_err("an error status")
}

fn sqlite(code: std::os::raw::c_int) -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None)
}

#[test]
fn rate_limits_and_unavailable_answers_keep_their_retry_after() {
    let wait = Some(Duration::from_secs(3));
    let limited = ImportError::from_status(status_error(429), wait);
    assert!(
        matches!(limited, ImportError::RateLimited { .. }),
        "{limited:?}"
    );
    assert_eq!(limited.category(), ErrorCategory::RateLimit);
    assert_eq!(limited.retry_after(), wait);

    let busy = ImportError::from_status(status_error(503), wait);
    assert!(matches!(busy, ImportError::Unavailable { .. }), "{busy:?}");
    assert_eq!(busy.category(), ErrorCategory::Unavailable);
    assert_eq!(busy.retry_after(), wait);

    let no_header = ImportError::from_status(status_error(503), None);
    assert_eq!(no_header.retry_after(), None);
}

#[test]
fn other_statuses_are_classified_by_reqwest() {
    for (status, category) in [
        (404, ErrorCategory::NotFound),
        (400, ErrorCategory::Validation),
        (401, ErrorCategory::Authentication),
        (502, ErrorCategory::Unavailable),
        (408, ErrorCategory::Timeout),
    ] {
        let err = ImportError::from_status(status_error(status), Some(Duration::from_secs(9)));
        assert!(matches!(err, ImportError::Http(_)), "{status}: {err:?}");
        assert_eq!(err.category(), category, "status {status}");
        assert_eq!(err.retry_after(), None, "status {status}");
    }
}

#[test]
fn database_errors_are_classified_by_their_sqlite_code() {
    let busy = ImportError::from(sqlite(rusqlite::ffi::SQLITE_BUSY));
    assert_eq!(busy.category(), ErrorCategory::Database);
    let constraint = ImportError::from(sqlite(rusqlite::ffi::SQLITE_CONSTRAINT));
    assert_eq!(constraint.category(), ErrorCategory::Validation);
    let not_a_db = ImportError::from(sqlite(rusqlite::ffi::SQLITE_NOTADB));
    assert_eq!(not_a_db.category(), ErrorCategory::Configuration);
    assert_eq!(
        SqliteError(sqlite(rusqlite::ffi::SQLITE_BUSY)).category(),
        ErrorCategory::Database
    );
}

#[test]
fn the_chain_reaches_rusqlites_own_error() {
    let err = ImportError::from(sqlite(rusqlite::ffi::SQLITE_BUSY));
    let this = err
        .as_error()
        .expect("derived as_error is the value itself");
    let mut chain = std::iter::successors(Some(this), |e| e.source());
    assert!(chain.any(|e| e.is::<rusqlite::Error>()));
}

#[test]
fn the_runtimes_own_errors_delegate() {
    let timed_out = ImportError::from(AttemptTimedOut::new(Duration::from_millis(250)));
    assert_eq!(timed_out.category(), ErrorCategory::Timeout);

    let open = CircuitOpenError::new(
        "molecule_service",
        "fetch",
        Duration::from_millis(400),
        None,
    );
    let rejected = ImportError::from(open);
    assert_eq!(rejected.category(), ErrorCategory::Unavailable);
    assert_eq!(rejected.retry_after(), Some(Duration::from_millis(400)));

    let wrong = ImportError::WrongRecord { asked: 1, got: 2 };
    assert_eq!(wrong.category(), ErrorCategory::Validation);
}
