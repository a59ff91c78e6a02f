use resilience_core::retry;

#[retry(initial_delay = "250 msec", max_delay = "10", max_elapsed = "soon")]
fn fetch() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
