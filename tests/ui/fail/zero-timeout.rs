use resilience_core::retry;

#[retry(timeout = 0, max_elapsed = "0s")]
async fn fetch() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
