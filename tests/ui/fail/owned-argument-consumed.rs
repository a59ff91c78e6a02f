use resilience_core::retry;

// The body runs once per attempt: an owned argument it consumes is gone after the first.
// Borrow it instead (`&Vec<u8>`), or clone it inside the body.
#[retry(circuit_breaker = false)]
fn send(payload: Vec<u8>) -> Result<usize, std::io::Error> {
    let owned = payload;
    Ok(owned.len())
}

fn main() {}
