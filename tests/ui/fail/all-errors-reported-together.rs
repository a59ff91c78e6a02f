use resilience_core::retry;

// Every broken rule of one attribute is reported in one build, and the function is still
// emitted: `main` compiles against it.
#[retry(max_attempts = 0, backoff_factor = 0.5, jitter = "loud", delay = 1, circuit_breaker(reset_timeout = "1 week"))]
const fn fetch(id: u32) -> Result<u32, std::io::Error> {
    Ok(id)
}

fn main() {
    let _: Result<u32, std::io::Error> = fetch(1);
}
