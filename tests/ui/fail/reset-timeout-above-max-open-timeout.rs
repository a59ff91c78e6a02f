use resilience_core::retry;

#[retry(circuit_breaker(reset_timeout = "10m", max_open_timeout = "5m"))]
fn fetch() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
