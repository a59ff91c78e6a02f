use resilience_core::retry;

#[retry(backoff_factor = 0.5)]
fn fetch() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
