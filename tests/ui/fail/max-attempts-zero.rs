use resilience_core::retry;

#[retry(max_attempts = 0)]
fn fetch() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
