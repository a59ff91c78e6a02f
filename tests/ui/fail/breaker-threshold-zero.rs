use resilience_core::retry;

#[retry(circuit_breaker(failure_threshold = 0, success_threshold = 0, half_open_max_calls = 0))]
fn fetch() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
