use resilience_core::{retry, Classify};

#[derive(Debug)]
struct MyError;
impl Classify for MyError {}

// With the breaker on, a rejection is returned as `E`: `E` needs `From<CircuitOpenError>`
// (or the call opts out with `circuit_breaker = false`).
#[retry]
fn fetch() -> Result<(), MyError> {
    Err(MyError)
}

fn main() {}
