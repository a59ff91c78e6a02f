use resilience_core::retry;

#[retry(component = Chembl, max_attempts = "5", backoff_factor = "2", initial_delay = true)]
fn fetch() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
