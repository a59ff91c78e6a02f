use resilience_core::retry;

#[retry(initial_delay = "2m", max_delay = 30)]
fn fetch() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
