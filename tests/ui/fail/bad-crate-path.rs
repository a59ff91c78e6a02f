use resilience_core::retry;

#[retry(crate = "not a path")]
fn fetch() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
