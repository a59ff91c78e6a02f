use resilience_core::retry;

#[derive(Debug)]
struct Opaque;

#[retry(circuit_breaker = false)]
fn fetch() -> Result<(), Opaque> {
    Ok(())
}

fn main() {}
