use resilience_core::retry;

// Finagle's bounds: percent in [0, 1000], ttl in [1 s, 60 s].
#[retry(budget(percent = 2000, min_per_sec = -1, ttl = "500ms"))]
fn fetch() -> Result<(), std::io::Error> {
    Ok(())
}

#[retry(budget(percnt = 0.2))]
fn misspelt() -> Result<(), std::io::Error> {
    Ok(())
}

#[retry(budget = 3)]
fn not_a_budget() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {
    let _ = fetch();
    let _ = misspelt();
    let _ = not_a_budget();
}
