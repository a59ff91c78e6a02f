//! `ResilienceLayer` around a real `hyper_util` client calling a real axum server on
//! 127.0.0.1, and the axum-side adapter inside a real axum `Router`, on tokio's paused clock:
//! Retry-After waits and backoff take no real time.

mod http_support;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use http_support::Scripted;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use resilience_core::{
    retry, CircuitBreakerConfig, CircuitOpenError, CircuitState, ResilienceLayer,
    ResilienceServerLayer, RetryConfig, RetryManager,
};
use std::convert::Infallible;
use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};

/// The delays the manager waited before each retry, as its `on_retry` hook saw them.
type Delays = Arc<Mutex<Vec<Duration>>>;

fn manager_with(retry: RetryConfig, breaker: CircuitBreakerConfig) -> (Arc<RetryManager>, Delays) {
    let delays = Delays::default();
    let seen = Arc::clone(&delays);
    let manager = RetryManager::builder()
        .default_config(retry)
        .circuit_breaker_config(breaker)
        .on_retry(move |event| seen.lock().unwrap().push(event.delay))
        .build()
        .expect("valid settings");
    (Arc::new(manager), delays)
}

/// Three attempts, 1 s then 2 s without jitter, at most 5 s; a breaker that opens after five
/// retryable failures in a row.
fn retry_config() -> RetryConfig {
    RetryConfig {
        max_attempts: 3,
        initial_delay: Duration::from_secs(1),
        max_delay: Duration::from_secs(5),
        backoff_factor: 2.0,
        jitter_factor: 0.0,
        ..RetryConfig::default()
    }
}

fn breaker_config(failure_threshold: u32) -> CircuitBreakerConfig {
    CircuitBreakerConfig {
        failure_threshold,
        reset_timeout: Duration::from_secs(30),
        ..CircuitBreakerConfig::default()
    }
}

fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

fn get(url: &str) -> http::Request<Full<Bytes>> {
    http::Request::get(url)
        .body(Full::new(Bytes::new()))
        .expect("a valid request")
}

#[tokio::test(start_paused = true)]
async fn a_503_is_retried_then_the_success_returned() {
    let server = Scripted::start(&[(503, None)]).await;
    let (manager, delays) = manager_with(retry_config(), breaker_config(5));
    let service = ServiceBuilder::new()
        .layer(ResilienceLayer::new(Arc::clone(&manager), "catalog", "get"))
        .service(client());

    let response = service
        .oneshot(get(&server.url("/molecules/1")))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"scripted\n");
    assert_eq!(server.hits(), 2);
    assert_eq!(*delays.lock().unwrap(), [Duration::from_secs(1)]);

    let figures = manager.metrics_for("catalog", "get").unwrap();
    assert_eq!(
        (figures.calls, figures.attempts, figures.retries),
        (1, 2, 1)
    );
    assert_eq!(figures.successes, 1);
    assert_eq!(figures.failures_by_category.get("unavailable"), Some(&1));
}

#[tokio::test(start_paused = true)]
async fn when_attempts_run_out_the_last_response_is_returned_as_it_came() {
    let server = Scripted::start_with(&[], Some((503, None))).await;
    let (manager, _) = manager_with(retry_config(), breaker_config(5));
    let service = ResilienceLayer::new(Arc::clone(&manager), "catalog", "get");
    let response = ServiceBuilder::new()
        .layer(service)
        .service(client())
        .oneshot(get(&server.url("/x")))
        .await
        .unwrap();
    assert_eq!(response.status(), 503, "a response, not an error");
    assert_eq!(server.hits(), 3);
    let figures = manager.metrics_for("catalog", "get").unwrap();
    assert_eq!((figures.attempts, figures.failures), (3, 1));
}

#[tokio::test(start_paused = true)]
async fn a_404_is_a_counted_failure_that_is_not_retried() {
    let server = Scripted::start(&[(404, Some("1"))]).await;
    let (manager, delays) = manager_with(retry_config(), breaker_config(5));
    let response = ServiceBuilder::new()
        .layer(ResilienceLayer::new(Arc::clone(&manager), "catalog", "get"))
        .service(client())
        .oneshot(get(&server.url("/missing")))
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(server.hits(), 1);
    assert!(delays.lock().unwrap().is_empty());
    let figures = manager.metrics_for("catalog", "get").unwrap();
    assert_eq!(figures.non_retryable, 1);
    assert_eq!(figures.failures_by_category.get("not_found"), Some(&1));
}

#[tokio::test(start_paused = true)]
async fn retry_after_replaces_the_backoff_and_is_capped_at_max_delay() {
    // 2 s asked for: waited as asked (the computed delay would have been 1 s). 3600 s asked
    // for: capped at the policy's 5 s max_delay.
    let server = Scripted::start(&[(503, Some("2")), (429, Some("3600"))]).await;
    let (manager, delays) = manager_with(retry_config(), breaker_config(5));
    let service = ServiceBuilder::new()
        .layer(ResilienceLayer::new(Arc::clone(&manager), "catalog", "get"))
        .service(client());

    let started = Instant::now();
    let response = service
        .oneshot(get(&server.url("/molecules/2")))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        *delays.lock().unwrap(),
        [Duration::from_secs(2), Duration::from_secs(5)]
    );
    let arrivals = server.arrivals();
    assert_eq!(arrivals.len(), 3);
    assert!(arrivals[1] - arrivals[0] >= Duration::from_secs(2));
    assert!(arrivals[2] - arrivals[1] >= Duration::from_secs(5));
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    let figures = manager.metrics_for("catalog", "get").unwrap();
    assert_eq!(figures.failures_by_category.get("rate_limit"), Some(&1));
}

#[retry(component = "inventory", operation = "lookup", manager = m)]
async fn lookup(m: &RetryManager, calls: &AtomicU32) -> Result<u32, io::Error> {
    calls.fetch_add(1, Ordering::SeqCst);
    Err(io::ErrorKind::ConnectionRefused.into())
}

#[tokio::test(start_paused = true)]
async fn the_layer_and_the_attribute_share_one_breaker() {
    let server = Scripted::start_with(&[], Some((503, None))).await;
    let retry = RetryConfig {
        max_attempts: 1,
        ..retry_config()
    };
    let (manager, _) = manager_with(retry, breaker_config(2));
    let mut service = ServiceBuilder::new()
        .layer(ResilienceLayer::new(
            Arc::clone(&manager),
            "inventory",
            "lookup",
        ))
        .service(client());

    // Two 503s through the layer open the breaker.
    for _ in 0..2 {
        let response = service
            .ready()
            .await
            .unwrap()
            .call(get(&server.url("/a")))
            .await;
        assert_eq!(response.unwrap().status(), 503);
    }
    let status = manager.circuit_breaker_status();
    assert_eq!(status["inventory:lookup"].state, CircuitState::Open);

    // The attribute's call with the same key is rejected without running its body.
    let calls = AtomicU32::new(0);
    let err = lookup(&manager, &calls).await.unwrap_err();
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    let open = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<CircuitOpenError>())
        .expect("the breaker's rejection");
    assert_eq!((open.service(), open.operation()), ("inventory", "lookup"));

    // And so is the layer's next call: an error that downcasts, the server not reached.
    let hits = server.hits();
    let err: BoxError = service
        .ready()
        .await
        .unwrap()
        .call(get(&server.url("/a")))
        .await
        .unwrap_err();
    assert!(err.downcast_ref::<CircuitOpenError>().is_some(), "{err}");
    assert_eq!(server.hits(), hits);

    // The other way round: failures of the attribute's calls open it for the layer.
    manager.reset_circuit_breaker("inventory", "lookup");
    for _ in 0..2 {
        assert!(lookup(&manager, &calls).await.is_err());
    }
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let err = service
        .ready()
        .await
        .unwrap()
        .call(get(&server.url("/a")))
        .await
        .unwrap_err();
    assert!(err.downcast_ref::<CircuitOpenError>().is_some(), "{err}");
    assert_eq!(server.hits(), hits);
}

#[retry(component = "a:b", operation = "c", manager = m)]
async fn keyed(m: &RetryManager) -> Result<(), io::Error> {
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn metrics_keys_are_the_attributes() {
    let server = Scripted::start(&[]).await;
    let (manager, _) = manager_with(retry_config(), breaker_config(5));
    let service = ServiceBuilder::new()
        .layer(ResilienceLayer::new(Arc::clone(&manager), "a:b", "c"))
        .service(client());
    let response = service.oneshot(get(&server.url("/k"))).await.unwrap();
    assert_eq!(response.status(), 200);
    keyed(&manager).await.unwrap();

    // One operation, counted by both; keyed as the design says (`:` in a service is `%3A`).
    let figures = manager.metrics_for("a:b", "c").unwrap();
    assert_eq!((figures.calls, figures.successes), (2, 2));
    let json = serde_json::to_value(manager.metrics()).unwrap();
    assert_eq!(json["a%3Ab:c"]["calls"], 2, "{json}");
    assert!(manager.circuit_breaker_status().contains_key("a%3Ab:c"));
}

type Streaming = BoxBody<Bytes, Infallible>;

fn streaming(chunks: &[&'static str]) -> Streaming {
    let frames = chunks
        .iter()
        .map(|c| Ok::<_, Infallible>(hyper::body::Frame::data(Bytes::from_static(c.as_bytes()))))
        .collect::<Vec<_>>();
    BodyExt::boxed(StreamBody::new(futures_util::stream::iter(frames)))
}

#[tokio::test(start_paused = true)]
async fn streaming_bodies_get_one_attempt() {
    let server = Scripted::start_with(&[], Some((503, None))).await;
    let (manager, delays) = manager_with(retry_config(), breaker_config(5));

    let client: Client<HttpConnector, Streaming> =
        Client::builder(TokioExecutor::new()).build_http();
    let service = ServiceBuilder::new()
        .layer(ResilienceLayer::new(Arc::clone(&manager), "upload", "put"))
        .service(client);
    let request = http::Request::put(server.url("/upload"))
        .body(streaming(&["part 1, ", "part 2"]))
        .unwrap();
    let response = service.oneshot(request).await.unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(server.hits(), 1, "a stream is sent once");
    assert!(delays.lock().unwrap().is_empty());
    let figures = manager.metrics_for("upload", "put").unwrap();
    assert_eq!(
        (figures.calls, figures.attempts, figures.retries),
        (1, 1, 0)
    );
    assert_eq!(figures.failures_by_category.get("unavailable"), Some(&1));

    // The same request with a body held in memory is retried.
    let service = ServiceBuilder::new()
        .layer(ResilienceLayer::new(Arc::clone(&manager), "upload", "put"))
        .service(client_for_full());
    let request = http::Request::put(server.url("/upload"))
        .body(Full::new(Bytes::from_static(b"part 1, part 2")))
        .unwrap();
    assert_eq!(service.oneshot(request).await.unwrap().status(), 503);
    assert_eq!(server.hits(), 1 + 3);
}

fn client_for_full() -> Client<HttpConnector, Full<Bytes>> {
    client()
}

#[tokio::test(start_paused = true)]
async fn an_open_breaker_makes_the_axum_adapter_answer_503_with_retry_after() {
    use axum::routing::get as route_get;
    // The handler fails the way a handler whose own backend is down does.
    let handled = Arc::new(AtomicU32::new(0));
    let count = Arc::clone(&handled);
    let (manager, _) = manager_with(retry_config(), breaker_config(2));
    let app = axum::Router::new()
        .route(
            "/report",
            route_get(move || {
                let count = Arc::clone(&count);
                async move {
                    count.fetch_add(1, Ordering::SeqCst);
                    (axum::http::StatusCode::BAD_GATEWAY, "backend down\n")
                }
            }),
        )
        .layer(ResilienceServerLayer::new(
            Arc::clone(&manager),
            "api",
            "report",
        ));
    let listener = tokio::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))
        .await
        .unwrap();
    let url = format!("http://{}/report", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let http = reqwest::Client::new();
    for _ in 0..2 {
        let response = http.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 502, "the handler's own answer");
    }
    assert_eq!(
        manager.circuit_breaker_status()["api:report"].state,
        CircuitState::Open
    );

    let shed = http.get(&url).send().await.unwrap();
    assert_eq!(shed.status(), 503);
    assert_eq!(
        shed.headers()["retry-after"],
        "30",
        "the reset timeout, in seconds"
    );
    assert_eq!(
        handled.load(Ordering::SeqCst),
        2,
        "shed without reaching the handler"
    );

    // 9.5 s on, the 20.5 s left are rounded up to 21.
    tokio::time::advance(Duration::from_millis(9_500)).await;
    let shed = http.get(&url).send().await.unwrap();
    assert_eq!(shed.headers()["retry-after"], "21");

    // Once the open time has passed, a trial request reaches the handler again.
    tokio::time::advance(Duration::from_secs(21)).await;
    let trial = http.get(&url).send().await.unwrap();
    assert_eq!(trial.status(), 502);
    assert_eq!(handled.load(Ordering::SeqCst), 3);
}

/// A backend whose answers are scripted per request id: the `x-id` header names it, and the
/// first request of each id in `fail_first` answers 503. Notes when each id was served.
#[derive(Clone, Default)]
struct Backend {
    served: Arc<Mutex<Vec<(String, Instant)>>>,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Backend {
    fn service(
        &self,
        fail_first: &'static [&'static str],
        slow_first: Duration,
    ) -> impl Service<
        http::Request<String>,
        Response = http::Response<String>,
        Error = Infallible,
        Future = impl Send,
    > + Clone
           + Send
           + 'static {
        let this = self.clone();
        tower::service_fn(move |request: http::Request<String>| {
            let this = this.clone();
            async move {
                let id = request.headers()["x-id"].to_str().unwrap().to_owned();
                let first = {
                    let mut seen = this.seen.lock().unwrap();
                    let first = !seen.contains(&id);
                    seen.push(id.clone());
                    first
                };
                if first && !slow_first.is_zero() {
                    tokio::time::sleep(slow_first).await; // paused time: no real wait
                }
                this.served
                    .lock()
                    .unwrap()
                    .push((id.clone(), Instant::now()));
                let status = if first && fail_first.contains(&id.as_str()) {
                    503
                } else {
                    200
                };
                Ok(http::Response::builder().status(status).body(id).unwrap())
            }
        })
    }

    fn served(&self) -> Vec<(String, Instant)> {
        self.served.lock().unwrap().clone()
    }
}

fn request(id: &str) -> http::Request<String> {
    http::Request::get("http://backend/")
        .header("x-id", id)
        .body(String::new())
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_timeout_inside_limits_each_attempt() {
    let (manager, delays) = manager_with(retry_config(), breaker_config(5));
    let backend = Backend::default();
    // The first attempt takes 10 s: cut at 2 s, then retried after the 1 s backoff.
    let service = ServiceBuilder::new()
        .layer(ResilienceLayer::new(
            Arc::clone(&manager),
            "stack",
            "inside",
        ))
        .timeout(Duration::from_secs(2))
        .service(backend.service(&[], Duration::from_secs(10)));
    let started = Instant::now();
    let response = service.oneshot(request("a")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(started.elapsed(), Duration::from_secs(3));
    assert_eq!(*delays.lock().unwrap(), [Duration::from_secs(1)]);
    let figures = manager.metrics_for("stack", "inside").unwrap();
    assert_eq!((figures.attempts, figures.retries), (2, 1));
}

#[tokio::test(start_paused = true)]
async fn a_timeout_outside_limits_the_whole_call() {
    let (manager, _) = manager_with(retry_config(), breaker_config(5));
    let backend = Backend::default();
    // 503 then a 1 s backoff: the 500 ms limit around the call ends it during the wait.
    let service = ServiceBuilder::new()
        .timeout(Duration::from_millis(500))
        .layer(ResilienceLayer::new(
            Arc::clone(&manager),
            "stack",
            "outside",
        ))
        .service(backend.service(&["a"], Duration::ZERO));
    let started = Instant::now();
    let err = service.oneshot(request("a")).await.unwrap_err();
    assert!(err.is::<tower::timeout::error::Elapsed>(), "{err}");
    assert_eq!(started.elapsed(), Duration::from_millis(500));
    assert_eq!(backend.served().len(), 1, "the retry never started");
}

/// Calls `a` (503 first, then a 1 s backoff) and `b` at once through `service`, and returns
/// when the backend served each.
async fn race_a_and_b<S>(service: S, backend: &Backend) -> (Duration, Duration)
where
    S: Service<http::Request<String>, Response = http::Response<String>> + Clone,
    S::Error: std::fmt::Debug,
{
    let started = Instant::now();
    let (a, b) = tokio::join!(service.clone().oneshot(request("a")), async {
        tokio::task::yield_now().await; // `a` goes first
        service.clone().oneshot(request("b")).await
    });
    assert_eq!(a.unwrap().status(), 200);
    assert_eq!(b.unwrap().status(), 200);
    let served = backend.served();
    let last = |id: &str| {
        served
            .iter()
            .rfind(|(i, _)| i == id)
            .map(|(_, at)| *at - started)
            .unwrap()
    };
    (last("a"), last("b"))
}

#[tokio::test(start_paused = true)]
async fn a_concurrency_limit_inside_is_released_while_waiting_to_retry() {
    let (manager, _) = manager_with(retry_config(), breaker_config(5));
    let backend = Backend::default();
    let service = ServiceBuilder::new()
        .layer(ResilienceLayer::new(
            Arc::clone(&manager),
            "stack",
            "limit_inside",
        ))
        .concurrency_limit(1)
        .service(backend.service(&["a"], Duration::ZERO));
    let (a, b) = race_a_and_b(service, &backend).await;
    // `b` ran while `a` waited for its retry.
    assert_eq!((a, b), (Duration::from_secs(1), Duration::ZERO));
}

#[tokio::test(start_paused = true)]
async fn a_concurrency_limit_outside_is_held_for_the_whole_call() {
    let (manager, _) = manager_with(retry_config(), breaker_config(5));
    let backend = Backend::default();
    let service = ServiceBuilder::new()
        .concurrency_limit(1)
        .layer(ResilienceLayer::new(
            Arc::clone(&manager),
            "stack",
            "limit_outside",
        ))
        .service(backend.service(&["a"], Duration::ZERO));
    let (a, b) = race_a_and_b(service, &backend).await;
    // `b` waited for `a`'s whole call, its backoff included.
    assert_eq!((a, b), (Duration::from_secs(1), Duration::from_secs(1)));
}

#[tokio::test(start_paused = true)]
async fn not_ready_while_open_waits_out_the_open_time_without_taking_a_trial_slot() {
    let (manager, _) = manager_with(
        RetryConfig {
            max_attempts: 1,
            ..retry_config()
        },
        breaker_config(1),
    );
    let backend = Backend::default();
    let mut service = ServiceBuilder::new()
        .layer(
            ResilienceLayer::new(Arc::clone(&manager), "replica", "query")
                .not_ready_while_open(true),
        )
        .service(backend.service(&["a"], Duration::ZERO));
    let response = service
        .ready()
        .await
        .unwrap()
        .call(request("a"))
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(
        manager.circuit_breaker_status()["replica:query"].state,
        CircuitState::Open
    );

    // Not ready for the 30 s the breaker stays open, then ready, with its trial slot free.
    let started = Instant::now();
    let early = tokio::time::timeout(Duration::from_secs(29), service.ready()).await;
    assert!(early.is_err(), "not ready while open");
    service.ready().await.unwrap();
    assert_eq!(started.elapsed(), Duration::from_secs(30));
    let status = &manager.circuit_breaker_status()["replica:query"];
    assert_eq!(status.state, CircuitState::HalfOpen);
    assert_eq!(status.half_open_calls, 0, "readiness took no trial slot");

    let response = service.call(request("a")).await.unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test(start_paused = true)]
async fn by_default_an_open_breaker_fails_the_call_at_once() {
    let (manager, _) = manager_with(retry_config(), breaker_config(1));
    manager
        .circuit_breaker_registry()
        .force_open("replica", "default");
    let backend = Backend::default();
    let mut service = ServiceBuilder::new()
        .layer(ResilienceLayer::new(
            Arc::clone(&manager),
            "replica",
            "default",
        ))
        .service(backend.service(&[], Duration::ZERO));
    let started = Instant::now();
    let err = service
        .ready()
        .await
        .unwrap()
        .call(request("a"))
        .await
        .unwrap_err();
    assert!(err.downcast_ref::<CircuitOpenError>().unwrap().is_forced());
    assert_eq!(started.elapsed(), Duration::ZERO);
    assert!(backend.served().is_empty());
}

#[tokio::test(start_paused = true)]
async fn the_components_retry_budget_limits_the_layers_retries() {
    // No reserve and 10% of traffic: one first attempt pays in 1, a retry costs 10.
    let retry = RetryConfig {
        budget: Some(resilience_core::RetryBudget {
            min_retries_per_sec: 0,
            percent_can_retry: 0.1,
            ..resilience_core::RetryBudget::default()
        }),
        ..retry_config()
    };
    let (manager, delays) = manager_with(retry, breaker_config(5));
    let backend = Backend::default();
    let service = ServiceBuilder::new()
        .layer(ResilienceLayer::new(
            Arc::clone(&manager),
            "budgeted",
            "get",
        ))
        .service(backend.service(&["a"], Duration::ZERO));
    let response = service.oneshot(request("a")).await.unwrap();
    assert_eq!(
        response.status(),
        503,
        "the budget ended the call with its last answer"
    );
    assert_eq!(backend.served().len(), 1);
    assert!(delays.lock().unwrap().is_empty());
    let figures = manager.metrics_for("budgeted", "get").unwrap();
    assert_eq!(figures.budget_exhausted, 1);
}
