use resilience_core::retry;

#[retry(circuit_breaker(open_timeout_increment_factor = 0.9))]
fn fetch() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
