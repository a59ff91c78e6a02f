use resilience_core::{Classify, ErrorCategory};
use std::time::Duration;

#[derive(Debug, Classify)]
#[classify(default = Database)]
enum DbError {
    #[classify(Network)]
    Reset,
    #[classify(source)]
    Io(std::io::Error),
    #[classify(RateLimit, retry_after = "wait")]
    Busy { wait: Option<Duration> },
    #[classify(Unavailable, retry_after = 0)]
    Down(Duration, &'static str),
    Locked,
}

#[derive(Debug, Classify)]
#[classify(Timeout)]
struct Slow;

#[derive(Debug, Classify)]
enum Never {}

macro_rules! error {
    ($($t:ty),*) => {$(
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{self:?}")
            }
        }
        impl std::error::Error for $t {}
    )*};
}
error!(DbError, Slow, Never);

fn main() {
    assert_eq!(DbError::Locked.category(), ErrorCategory::Database);
    assert_eq!(DbError::Reset.category(), ErrorCategory::Network);
    let busy = DbError::Busy { wait: Some(Duration::from_secs(1)) };
    assert_eq!(busy.retry_after(), Some(Duration::from_secs(1)));
    assert_eq!(DbError::Down(Duration::from_secs(2), "x").retry_after(), Some(Duration::from_secs(2)));
    assert_eq!(Slow.category(), ErrorCategory::Timeout);
    let _ = DbError::Io(std::io::ErrorKind::Other.into()).category();
}
