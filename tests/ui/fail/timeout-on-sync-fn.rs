use resilience_core::retry;

#[retry(timeout = "2s")]
fn fetch() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
