use resilience_core::retry;

#[retry(max_attempts = 2, circuit_breaker = false, jitter = "equal", max_elapsed = "1m")]
async fn fetch(id: &str) -> std::io::Result<usize> {
    let n: usize = id.len().to_string().parse().map_err(std::io::Error::other)?;
    Ok(n)
}

#[retry(component = "c", timeout = "2s")]
async fn with_timeout() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    Ok(())
}

fn is_send<T: Send>(_: &T) {}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let f = fetch("abc");
    is_send(&f);
    assert_eq!(f.await.unwrap(), 3);
    with_timeout().await.unwrap();
    let spawned = tokio::spawn(fetch("hello")).await.unwrap();
    assert_eq!(spawned.unwrap(), 5);
}
