//! A successful blocking call, once through each wrapper: a direct call, our `#[retry]` site,
//! `RetryManager::execute`, an operation handle, backon's retry, recloser's and failsafe's breakers.
//! Twice: with an operation the compiler inlines into the wrapper (`happy_sync`), and with one it
//! cannot (`#[inline(never)]`) returning a zero-sized error type (`happy_sync_opaque`), the shape
//! in which a wrapper's own cost cannot hide in the operation's.
//! `cargo bench --bench happy_sync`.

mod common;

use common::{op, op_opaque, site_opaque, site_sync};
use criterion::{criterion_group, criterion_main, Criterion};
use failsafe::CircuitBreaker as _;
use resilience_core::RetryManager;
use std::hint::black_box;

fn happy_sync(c: &mut Criterion) {
    let mut group = c.benchmark_group("happy_sync");

    group.bench_function("direct", |b| b.iter(|| op(black_box(1))));

    // The handle is created by the first call (what a real program pays once).
    site_sync(0).expect("warm-up");
    group.bench_function("retry-attribute", |b| b.iter(|| site_sync(black_box(1))));

    let manager = RetryManager::new();
    group.bench_function("execute", |b| {
        b.iter(|| manager.execute("bench", "execute", || op(black_box(1))))
    });

    let operation = manager.operation("bench", "operation");
    group.bench_function("operation handle", |b| {
        b.iter(|| operation.execute(|| op(black_box(1))))
    });

    group.bench_function("backon retry", |b| {
        use backon::BlockingRetryable;
        b.iter(|| {
            (|| op(black_box(1)))
                .retry(backon::ExponentialBuilder::default())
                .call()
        })
    });

    let recloser = recloser::Recloser::default();
    group.bench_function("recloser breaker", |b| {
        b.iter(|| recloser.call(|| op(black_box(1))))
    });

    let failsafe = failsafe::Config::new().build();
    group.bench_function("failsafe breaker", |b| {
        b.iter(|| failsafe.call(|| op(black_box(1))))
    });

    group.finish();
}

fn happy_sync_opaque(c: &mut Criterion) {
    let mut group = c.benchmark_group("happy_sync_opaque");

    group.bench_function("direct", |b| b.iter(|| op_opaque(black_box(1))));

    site_opaque(0).expect("warm-up");
    group.bench_function("retry-attribute", |b| b.iter(|| site_opaque(black_box(1))));

    group.bench_function("backon retry", |b| {
        use backon::BlockingRetryable;
        b.iter(|| {
            (|| op_opaque(black_box(1)))
                .retry(backon::ExponentialBuilder::default())
                .call()
        })
    });

    let recloser = recloser::Recloser::default();
    group.bench_function("recloser breaker", |b| {
        b.iter(|| recloser.call(|| op_opaque(black_box(1))))
    });

    let failsafe = failsafe::Config::new().build();
    group.bench_function("failsafe breaker", |b| {
        b.iter(|| failsafe.call(|| op_opaque(black_box(1))))
    });

    group.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = happy_sync, happy_sync_opaque
}
criterion_main!(benches);
