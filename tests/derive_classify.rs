//! `#[derive(Classify)]` on enums and structs: categories per variant, delegation to a wrapped
//! error, a default for the rest, `retry_after` from a field, and `as_error`.

// Fields give the variants their shapes; only their classification is read.
#![allow(dead_code)]

use resilience_core::{Classify, ErrorCategory};
use std::io;
use std::time::Duration;

macro_rules! error_impls {
    ($($t:ident),*) => {$(
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(stringify!($t))
            }
        }
        impl std::error::Error for $t {}
    )*};
}

#[derive(Debug, Classify)]
enum ApiError {
    #[classify(Network)]
    Reset,
    #[classify(source)]
    Io(io::Error),
    #[classify(source)]
    Wrapped {
        inner: Box<dyn std::error::Error + Send + Sync>,
    },
    #[classify(RateLimit, retry_after = wait)]
    Busy {
        wait: Option<Duration>,
        code: u16,
    },
    #[classify(Unavailable, retry_after = 0)]
    Down(Duration),
    Other(String),
}

#[derive(Debug, Classify)]
#[classify(default = Database)]
enum DbError {
    #[classify(Validation)]
    Constraint,
    Locked,
    Gone {
        table: String,
    },
}

#[derive(Debug, Classify)]
#[classify(Timeout, retry_after = "after")]
struct SlowDown {
    after: Duration,
}

#[derive(Debug, Classify)]
#[classify(source)]
struct Context(io::Error);

#[derive(Debug, Classify)]
struct Plain;

#[derive(Debug, Classify)]
enum Generic<E: std::fmt::Debug> {
    #[classify(source)]
    Inner(E),
    #[classify(NotFound)]
    Missing,
}

impl<E: std::fmt::Debug> std::fmt::Display for Generic<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}
impl<E: std::fmt::Debug> std::error::Error for Generic<E> {}

error_impls!(ApiError, DbError, SlowDown, Context, Plain);

#[test]
fn variants_get_their_categories() {
    assert_eq!(ApiError::Reset.category(), ErrorCategory::Network);
    assert_eq!(
        ApiError::Other("x".into()).category(),
        ErrorCategory::Unknown
    );
    let busy = ApiError::Busy {
        wait: None,
        code: 429,
    };
    assert_eq!(busy.category(), ErrorCategory::RateLimit);
    assert_eq!(
        ApiError::Down(Duration::ZERO).category(),
        ErrorCategory::Unavailable
    );
}

#[test]
fn source_delegates_category_and_retry_after() {
    assert_eq!(
        ApiError::Io(io::ErrorKind::TimedOut.into()).category(),
        ErrorCategory::Timeout
    );
    let wrapped = ApiError::Wrapped {
        inner: Box::new(io::Error::from(io::ErrorKind::ConnectionRefused)),
    };
    assert_eq!(wrapped.category(), ErrorCategory::Network);
    assert_eq!(
        Context(io::ErrorKind::PermissionDenied.into()).category(),
        ErrorCategory::Authentication
    );
    let open = resilience_core::CircuitOpenError::new("s", "o", Duration::from_secs(3), None);
    let boxed = ApiError::Wrapped {
        inner: Box::new(open),
    };
    assert_eq!(boxed.retry_after(), Some(Duration::from_secs(3)));
}

#[test]
fn retry_after_reads_duration_and_optional_duration_fields() {
    let busy = ApiError::Busy {
        wait: Some(Duration::from_secs(7)),
        code: 429,
    };
    assert_eq!(busy.retry_after(), Some(Duration::from_secs(7)));
    assert_eq!(
        ApiError::Busy {
            wait: None,
            code: 429
        }
        .retry_after(),
        None
    );
    assert_eq!(
        ApiError::Down(Duration::from_millis(5)).retry_after(),
        Some(Duration::from_millis(5))
    );
    assert_eq!(ApiError::Reset.retry_after(), None);
    let slow = SlowDown {
        after: Duration::from_secs(1),
    };
    assert_eq!(
        (slow.category(), slow.retry_after()),
        (ErrorCategory::Timeout, Some(Duration::from_secs(1)))
    );
}

#[test]
fn container_default_applies_to_variants_without_a_category() {
    assert_eq!(DbError::Constraint.category(), ErrorCategory::Validation);
    assert_eq!(DbError::Locked.category(), ErrorCategory::Database);
    assert_eq!(
        DbError::Gone { table: "t".into() }.category(),
        ErrorCategory::Database
    );
    assert_eq!(Plain.category(), ErrorCategory::Unknown);
}

#[test]
fn generic_types_delegate_through_their_parameter() {
    let inner: Generic<io::Error> = Generic::Inner(io::ErrorKind::NotFound.into());
    assert_eq!(inner.category(), ErrorCategory::NotFound);
    assert_eq!(
        Generic::<io::Error>::Missing.category(),
        ErrorCategory::NotFound
    );
}

#[test]
fn as_error_returns_the_value_itself() {
    let e = DbError::Locked;
    let as_error = e.as_error().expect("derived types are errors");
    assert_eq!(as_error.to_string(), "DbError");
    assert!(as_error.downcast_ref::<DbError>().is_some());
}
