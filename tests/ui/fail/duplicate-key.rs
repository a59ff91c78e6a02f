use resilience_core::retry;

#[retry(max_attempts = 3, component = "c", max_attempts = 5)]
fn fetch() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
