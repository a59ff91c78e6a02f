use resilience_core::retry;

#[retry(circuit_breaker(failure_treshold = 3))]
fn fetch() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
