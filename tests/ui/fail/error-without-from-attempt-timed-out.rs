use resilience_core::{retry, CircuitOpenError, Classify};

#[derive(Debug)]
struct MyError;
impl Classify for MyError {}
impl From<CircuitOpenError> for MyError {
    fn from(_: CircuitOpenError) -> Self {
        MyError
    }
}

// A timed-out attempt is returned as `E`: `E` needs `From<AttemptTimedOut>`.
#[retry(timeout = "1s")]
async fn fetch() -> Result<(), MyError> {
    Ok(())
}

fn main() {}
