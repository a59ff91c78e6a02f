//! `ResilienceMiddleware` in a real reqwest client calling a real axum server on 127.0.0.1, on
//! tokio's paused clock: Retry-After waits and backoff take no real time.

mod http_support;

use http_support::Scripted;
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use resilience_core::{
    retry, CircuitBreakerConfig, CircuitOpenError, CircuitState, ResilienceMiddleware, RetryConfig,
    RetryManager,
};
use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Delays = Arc<Mutex<Vec<Duration>>>;

/// Three attempts, 1 s then 2 s without jitter, at most 5 s; a breaker that opens after
/// `failure_threshold` retryable failures in a row and stays open 30 s.
fn manager(max_attempts: u32, failure_threshold: u32) -> (Arc<RetryManager>, Delays) {
    let delays = Delays::default();
    let seen = Arc::clone(&delays);
    let manager = RetryManager::builder()
        .default_config(RetryConfig {
            max_attempts,
            initial_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(5),
            backoff_factor: 2.0,
            jitter_factor: 0.0,
            ..RetryConfig::default()
        })
        .circuit_breaker_config(CircuitBreakerConfig {
            failure_threshold,
            reset_timeout: Duration::from_secs(30),
            ..CircuitBreakerConfig::default()
        })
        .on_retry(move |event| seen.lock().unwrap().push(event.delay))
        .build()
        .expect("valid settings");
    (Arc::new(manager), delays)
}

fn client(manager: &Arc<RetryManager>, component: &str, operation: &str) -> ClientWithMiddleware {
    ClientBuilder::new(reqwest::Client::new())
        .with(ResilienceMiddleware::new(
            Arc::clone(manager),
            component,
            operation,
        ))
        .build()
}

#[tokio::test(start_paused = true)]
async fn a_503_is_retried_then_the_success_returned() {
    let server = Scripted::start(&[(503, None), (502, None)]).await;
    let (manager, delays) = manager(3, 5);
    let response = client(&manager, "catalog", "get")
        .get(server.url("/molecules/1"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "scripted\n");
    assert_eq!(server.hits(), 3);
    assert_eq!(
        *delays.lock().unwrap(),
        [Duration::from_secs(1), Duration::from_secs(2)]
    );
    let figures = manager.metrics_for("catalog", "get").unwrap();
    assert_eq!(
        (figures.calls, figures.attempts, figures.retries),
        (1, 3, 2)
    );
    assert_eq!(figures.failures_by_category.get("unavailable"), Some(&2));
}

#[tokio::test(start_paused = true)]
async fn retry_after_replaces_the_backoff_and_is_capped_at_max_delay() {
    let server = Scripted::start(&[(503, Some("2")), (429, Some("3600"))]).await;
    let (manager, delays) = manager(3, 5);
    let response = client(&manager, "catalog", "get")
        .post(server.url("/search"))
        .body("{\"q\": \"caffeine\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        *delays.lock().unwrap(),
        [Duration::from_secs(2), Duration::from_secs(5)]
    );
    let arrivals = server.arrivals();
    assert!(arrivals[1] - arrivals[0] >= Duration::from_secs(2));
    assert!(arrivals[2] - arrivals[1] >= Duration::from_secs(5));
}

#[tokio::test(start_paused = true)]
async fn exhausted_attempts_return_the_last_response_and_4xx_is_not_retried() {
    let server = Scripted::start_with(&[(404, None)], Some((503, None))).await;
    let (manager, _) = manager(3, 10);
    let client = client(&manager, "catalog", "get");
    let missing = client.get(server.url("/missing")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(server.hits(), 1);
    let busy = client.get(server.url("/busy")).send().await.unwrap();
    assert_eq!(busy.status(), 503, "a response, not an error");
    assert_eq!(server.hits(), 1 + 3);
    let figures = manager.metrics_for("catalog", "get").unwrap();
    assert_eq!(figures.non_retryable, 1);
    assert_eq!(figures.failures_by_category.get("not_found"), Some(&1));
}

#[tokio::test(start_paused = true)]
async fn a_refused_connection_is_retried_as_a_network_failure() {
    // A port that was just free: nothing listens on it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let (manager, delays) = manager(3, 10);
    let err = client(&manager, "catalog", "get")
        .get(format!("http://127.0.0.1:{port}/"))
        .send()
        .await
        .unwrap_err();
    assert!(
        matches!(err, reqwest_middleware::Error::Reqwest(ref e) if e.is_connect()),
        "{err:?}"
    );
    assert_eq!(delays.lock().unwrap().len(), 2);
    let figures = manager.metrics_for("catalog", "get").unwrap();
    assert_eq!(figures.failures_by_category.get("network"), Some(&3));
}

#[retry(component = "inventory", operation = "lookup", manager = m)]
async fn lookup(m: &RetryManager, calls: &AtomicU32) -> Result<(), io::Error> {
    calls.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn an_open_breaker_rejects_without_sending_and_is_the_attributes() {
    let server = Scripted::start_with(&[], Some((503, None))).await;
    let (manager, _) = manager(1, 2);
    let client = client(&manager, "inventory", "lookup");
    for _ in 0..2 {
        let response = client.get(server.url("/a")).send().await.unwrap();
        assert_eq!(response.status(), 503);
    }
    assert_eq!(
        manager.circuit_breaker_status()["inventory:lookup"].state,
        CircuitState::Open
    );

    let err = client.get(server.url("/a")).send().await.unwrap_err();
    let reqwest_middleware::Error::Middleware(inner) = &err else {
        panic!("expected the middleware's error, got {err:?}");
    };
    let open = inner
        .downcast_ref::<CircuitOpenError>()
        .expect("the breaker's rejection");
    assert_eq!((open.service(), open.operation()), ("inventory", "lookup"));
    assert_eq!(server.hits(), 2, "not sent");

    // `#[retry]` with the same key meets the same open breaker.
    let calls = AtomicU32::new(0);
    assert!(lookup(&manager, &calls).await.is_err());
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn a_streaming_body_gets_one_attempt() {
    let server = Scripted::start_with(&[], Some((503, None))).await;
    let (manager, delays) = manager(3, 10);
    let chunks = futures_util::stream::iter(["part 1, ", "part 2"].map(Ok::<_, io::Error>));
    let response = client(&manager, "upload", "put")
        .put(server.url("/upload"))
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(server.hits(), 1, "a stream is sent once");
    assert!(delays.lock().unwrap().is_empty());
    let figures = manager.metrics_for("upload", "put").unwrap();
    assert_eq!(
        (figures.calls, figures.attempts, figures.retries),
        (1, 1, 0)
    );
    assert_eq!(figures.failures, 1);
}

#[retry(component = "a:b", operation = "c", manager = m)]
async fn keyed(m: &RetryManager) -> Result<(), io::Error> {
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn metrics_keys_are_the_attributes() {
    let server = Scripted::start(&[]).await;
    let (manager, _) = manager(3, 5);
    let response = client(&manager, "a:b", "c")
        .get(server.url("/k"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    keyed(&manager).await.unwrap();
    let figures = manager.metrics_for("a:b", "c").unwrap();
    assert_eq!((figures.calls, figures.successes), (2, 2));
    let json = serde_json::to_value(manager.metrics()).unwrap();
    assert_eq!(json["a%3Ab:c"]["calls"], 2, "{json}");
}
