use resilience_core::retry;

#[retry]
const fn fetch() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
