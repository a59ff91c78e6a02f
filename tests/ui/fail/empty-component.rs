use resilience_core::retry;

#[retry(component = "", operation = " ")]
fn fetch() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
