use resilience_core::retry;

// The rules of the failure-rate and slow-call settings, each reported on its token.
#[retry(circuit_breaker(failure_rate = 0, window = "60s", window_calls = 100, minimum_calls = 0,
                        slow_call_rate = 1.5, max_half_open_wait = 0))]
fn fetch() -> Result<(), std::io::Error> {
    Ok(())
}

#[retry(circuit_breaker(window_calls = 50, slow_call_rate = 0.5))]
fn shapes_without_a_rule() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {
    let _ = fetch();
    let _ = shapes_without_a_rule();
}
