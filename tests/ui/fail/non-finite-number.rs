use resilience_core::retry;

// NaN and infinity have no literal; a literal too large for an f64 is infinite, and a
// constant such as `f64::NAN` is not a literal.
#[retry(backoff_factor = 1e999, jitter_factor = f64::NAN)]
fn fetch() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
