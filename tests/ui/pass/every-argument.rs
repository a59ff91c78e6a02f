use resilience_core::{retry, RetryManager};
use std::sync::{Arc, LazyLock};

static MANAGER: LazyLock<Arc<RetryManager>> = LazyLock::new(|| Arc::new(RetryManager::new()));

type Boxed = Box<dyn std::error::Error + Send + Sync>;

#[retry(component = "ChEMBL", operation = "fetch_molecule", max_attempts = 5, initial_delay = 0.2,
        max_delay = "10s", backoff_factor = 2, jitter_factor = 0.2, jitter = "proportional",
        max_elapsed = "1h", timeout = "500us",
        circuit_breaker(failure_threshold = 3, reset_timeout = 60.0, half_open_max_calls = 2,
                        success_threshold = 2, open_timeout_increment_factor = 1.5, max_open_timeout = "5m"),
        manager = Arc::clone(&MANAGER))]
async fn fetch(id: &str) -> Result<String, Boxed> {
    Ok(id.to_uppercase())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(fetch("x").await.unwrap(), "X");
    assert_eq!(MANAGER.metrics().get("ChEMBL", "fetch_molecule").unwrap().successes, 1);
}
