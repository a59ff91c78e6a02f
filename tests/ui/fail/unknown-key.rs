use resilience_core::retry;

#[retry(component = "c", max_atempts = 3)]
fn fetch() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
