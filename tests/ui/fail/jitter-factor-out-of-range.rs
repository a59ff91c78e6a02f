use resilience_core::retry;

#[retry(jitter_factor = 1.5)]
fn fetch() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
