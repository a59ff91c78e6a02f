//! A successful async call, once through each wrapper, on a current-thread tokio runtime: a
//! direct call, our `#[retry]` site, `RetryManager::execute_async`, backon's retry, recloser's
//! and failsafe's breakers, tower's retry layer. `cargo bench --bench happy_async`.

mod common;

use common::{op, op_opaque, runtime, site_async, site_opaque_async, TowerAttempts};
use criterion::{criterion_group, criterion_main, Criterion};
use resilience_core::RetryManager;
use std::hint::black_box;
use tower::ServiceExt as _;

fn happy_async(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("happy_async");

    group.bench_function("direct", |b| {
        b.to_async(&rt).iter(|| async { op(black_box(1)) })
    });

    // The handle is created by the first call (what a real program pays once).
    rt.block_on(site_async(0)).expect("warm-up");
    group.bench_function("retry-attribute", |b| {
        b.to_async(&rt).iter(|| site_async(black_box(1)))
    });

    let manager = &RetryManager::new();
    group.bench_function("execute_async", |b| {
        b.to_async(&rt)
            .iter(|| manager.execute_async("bench", "execute_async", || async { op(black_box(1)) }))
    });

    group.bench_function("backon retry", |b| {
        use backon::Retryable;
        b.to_async(&rt)
            .iter(|| (|| async { op(black_box(1)) }).retry(backon::ExponentialBuilder::default()))
    });

    let recloser = &recloser::AsyncRecloser::from(recloser::Recloser::default());
    group.bench_function("recloser breaker", |b| {
        b.to_async(&rt)
            .iter(|| recloser.call(async { op(black_box(1)) }))
    });

    let failsafe = &failsafe::Config::new().build();
    group.bench_function("failsafe breaker", |b| {
        use failsafe::futures::CircuitBreaker as _;
        b.to_async(&rt)
            .iter(|| failsafe.call(async { op(black_box(1)) }))
    });

    // Two retries at most, like the others' defaults; the service is always ready.
    let tower_retry = tower::retry::Retry::new(
        TowerAttempts(2),
        tower::service_fn(|x: u64| std::future::ready(op(x))),
    );
    group.bench_function("tower retry", |b| {
        b.to_async(&rt)
            .iter(|| tower_retry.clone().oneshot(black_box(1)))
    });

    group.finish();
}

/// The same with an operation the compiler cannot inline, returning a zero-sized error type.
fn happy_async_opaque(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("happy_async_opaque");

    group.bench_function("direct", |b| {
        b.to_async(&rt).iter(|| async { op_opaque(black_box(1)) })
    });

    rt.block_on(site_opaque_async(0)).expect("warm-up");
    group.bench_function("retry-attribute", |b| {
        b.to_async(&rt).iter(|| site_opaque_async(black_box(1)))
    });

    group.bench_function("backon retry", |b| {
        use backon::Retryable;
        b.to_async(&rt).iter(|| {
            (|| async { op_opaque(black_box(1)) }).retry(backon::ExponentialBuilder::default())
        })
    });

    let tower_retry = tower::retry::Retry::new(
        TowerAttempts(2),
        tower::service_fn(|x: u64| std::future::ready(op_opaque(x))),
    );
    group.bench_function("tower retry", |b| {
        b.to_async(&rt)
            .iter(|| tower_retry.clone().oneshot(black_box(1)))
    });

    group.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = happy_async, happy_async_opaque
}
criterion_main!(benches);
