//! A successful call through a tower stack, on a current-thread tokio runtime: the bare service,
//! our `ResilienceLayer` (retries, breaker, metrics of the manager), tower's own `Retry`, and
//! tower-resilience's circuit breaker; with plain `u64` requests and with `http` requests and
//! responses (our HTTP classifier and request replay at work). `cargo bench --bench tower_layer`.

mod common;

use common::{op, runtime, TowerAttempts};
use criterion::{criterion_group, criterion_main, Criterion};
use resilience_core::{AnyResponseOk, CloneRequest, ResilienceLayer, RetryManager};
use std::convert::Infallible;
use std::hint::black_box;
use std::sync::Arc;
use tower::{Layer as _, ServiceExt as _};

fn bare() -> impl tower::Service<u64, Response = u64, Error = std::io::Error, Future = impl Send>
       + Clone
       + Send
       + 'static {
    tower::service_fn(|x: u64| std::future::ready(op(x)))
}

fn http_backend() -> impl tower::Service<
    http::Request<String>,
    Response = http::Response<String>,
    Error = Infallible,
    Future = impl Send,
> + Clone
       + Send
       + 'static {
    tower::service_fn(|request: http::Request<String>| {
        std::future::ready(Ok(http::Response::new(request.into_body())))
    })
}

fn http_request() -> http::Request<String> {
    http::Request::get("http://127.0.0.1/molecules/1")
        .header("accept", "application/json")
        .body(String::new())
        .expect("a valid request")
}

fn tower_layer(c: &mut Criterion) {
    let rt = runtime();
    let manager = Arc::new(RetryManager::new());
    let mut group = c.benchmark_group("tower_layer");

    let service = bare();
    group.bench_function("direct", |b| {
        b.to_async(&rt)
            .iter(|| service.clone().oneshot(black_box(1)))
    });

    let ours = ResilienceLayer::new(Arc::clone(&manager), "bench", "tower_u64")
        .replay(CloneRequest)
        .classifier(AnyResponseOk)
        .layer(bare());
    // The operation's handle is made by the first call (what a real program pays once).
    rt.block_on(ours.clone().oneshot(0)).expect("warm-up");
    group.bench_function("resilience layer", |b| {
        b.to_async(&rt).iter(|| ours.clone().oneshot(black_box(1)))
    });

    let tower_retry = tower::retry::Retry::new(TowerAttempts(2), bare());
    group.bench_function("tower retry", |b| {
        b.to_async(&rt)
            .iter(|| tower_retry.clone().oneshot(black_box(1)))
    });

    match tower_resilience::circuitbreaker::CircuitBreakerLayer::builder().build() {
        Ok(layer) => {
            let breaker = layer.layer(bare());
            group.bench_function("tower-resilience breaker", |b| {
                b.to_async(&rt)
                    .iter(|| breaker.clone().oneshot(black_box(1)))
            });
        }
        Err(e) => eprintln!("tower-resilience's breaker not built: {e}"),
    }

    let service = http_backend();
    group.bench_function("http direct", |b| {
        b.to_async(&rt)
            .iter(|| service.clone().oneshot(black_box(http_request())))
    });

    let ours =
        ResilienceLayer::new(Arc::clone(&manager), "bench", "tower_http").layer(http_backend());
    rt.block_on(ours.clone().oneshot(http_request()))
        .expect("warm-up");
    group.bench_function("http resilience layer", |b| {
        b.to_async(&rt)
            .iter(|| ours.clone().oneshot(black_box(http_request())))
    });

    let tower_retry = tower::retry::Retry::new(TowerAttempts(2), http_backend());
    group.bench_function("http tower retry", |b| {
        b.to_async(&rt)
            .iter(|| tower_retry.clone().oneshot(black_box(http_request())))
    });

    group.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = tower_layer
}
criterion_main!(benches);
