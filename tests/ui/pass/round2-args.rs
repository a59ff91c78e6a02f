use resilience_core::{retry, ErrorCategory, Failure, RetryManager};
use std::sync::LazyLock;

static MANAGER: LazyLock<RetryManager> = LazyLock::new(RetryManager::new);

fn judge(status: &u16) -> Option<Failure> {
    (*status >= 500).then(|| Failure::new(ErrorCategory::Unavailable))
}

#[retry(component = "svc", operation = "rate", classify_ok = judge, initial_delay = 0.0,
        budget(percent = 0.2, min_per_sec = 10, ttl = "10s"),
        circuit_breaker(failure_rate = 0.5, window_calls = 100, minimum_calls = 20,
                        slow_call = "2s", slow_call_rate = 0.8, max_half_open_wait = "30s"),
        manager = &*MANAGER)]
fn status(codes: &mut Vec<u16>) -> Result<u16, std::io::Error> {
    Ok(codes.pop().unwrap_or(200))
}

#[retry(component = "svc", operation = "time", budget = false, initial_delay = 0.0,
        circuit_breaker(failure_rate = 0.5, window = "60s", minimum_calls = 10),
        manager = &*MANAGER)]
async fn ping() -> Result<(), std::io::Error> {
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut codes = vec![200, 503, 503];
    assert_eq!(status(&mut codes).unwrap(), 200);
    ping().await.unwrap();
    let figures = MANAGER.metrics().get("svc", "rate").unwrap().clone();
    assert_eq!((figures.successes, figures.retries), (1, 2));
}
