use resilience_core::retry;

#[retry(circuit_breaker)]
fn fetch() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
