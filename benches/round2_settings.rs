//! The happy path with the round-2 settings on, next to the default and recloser (whose breaker
//! is a count window): a retry budget, a failure-rate rule over the last 100 calls or the last
//! 60 s, and the slow-call rule. `cargo bench --bench round2_settings`.

mod common;

use common::{op, site_sync, Error};
use criterion::{criterion_group, criterion_main, Criterion};
use resilience_core::retry;
use std::hint::black_box;

#[retry(component = "bench-budget", operation = "ok", budget(percent = 0.2))]
fn site_budget(x: u64) -> Result<u64, Error> {
    op(x)
}

#[retry(
    component = "bench",
    operation = "count-window",
    circuit_breaker(failure_rate = 0.5, window_calls = 100, minimum_calls = 20)
)]
fn site_count_window(x: u64) -> Result<u64, Error> {
    op(x)
}

#[retry(
    component = "bench",
    operation = "time-window",
    circuit_breaker(failure_rate = 0.5, window = "60s", minimum_calls = 20)
)]
fn site_time_window(x: u64) -> Result<u64, Error> {
    op(x)
}

#[retry(
    component = "bench",
    operation = "slow-call",
    circuit_breaker(slow_call = "2s", slow_call_rate = 0.8)
)]
fn site_slow_call(x: u64) -> Result<u64, Error> {
    op(x)
}

fn round2(c: &mut Criterion) {
    let mut group = c.benchmark_group("round2_settings");
    group.bench_function("direct", |b| b.iter(|| op(black_box(1))));
    for (name, site) in [
        (
            "retry-attribute (defaults)",
            site_sync as fn(u64) -> Result<u64, Error>,
        ),
        ("with a retry budget", site_budget),
        ("failure rate, last 100 calls", site_count_window),
        ("failure rate, last 60 s", site_time_window),
        ("slow-call rule", site_slow_call),
    ] {
        site(0).expect("warm-up");
        group.bench_function(name, |b| b.iter(|| site(black_box(1))));
    }
    let recloser = recloser::Recloser::default();
    group.bench_function("recloser breaker", |b| {
        b.iter(|| recloser.call(|| op(black_box(1))))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = round2
}
criterion_main!(benches);
