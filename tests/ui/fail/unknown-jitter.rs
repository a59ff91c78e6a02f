use resilience_core::retry;

#[retry(jitter = "ful")]
fn fetch() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
