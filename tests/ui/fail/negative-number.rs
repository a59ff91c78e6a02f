use resilience_core::retry;

#[retry(max_attempts = -2, initial_delay = -0.5, jitter_factor = -0.1)]
fn fetch() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
