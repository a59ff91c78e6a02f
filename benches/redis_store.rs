//! What sharing breakers through Redis costs (feature `redis`): the happy path of a breaker and
//! of an operation handle with the Redis store configured beside the same without a store (the
//! hot path never waits on the network, so they should cost the same), then the background
//! sync's cost per breaker: the client's time per round and Redis's CPU time, per breaker and
//! per second at the default 10 rounds a second.
//!
//! `cargo bench --bench redis_store`. Uses `REDIS_URL`, or starts a throwaway `redis-server`
//! from `PATH`; without either it measures the store-less side only and says so.

mod common;

use criterion::{criterion_group, Criterion};
use resilience::fleet::ThrowawayRedis;
use resilience_core::{CircuitBreakerRegistry, RedisStoreConfig, RetryManager};
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn redis() -> Option<(String, Option<ThrowawayRedis>)> {
    if let Ok(url) = std::env::var("REDIS_URL") {
        return Some((url, None));
    }
    let server = ThrowawayRedis::start().ok()??;
    Some((server.url(), Some(server)))
}

/// Redis's CPU seconds so far (user + system), from `INFO cpu`.
fn redis_cpu(url: &str) -> f64 {
    let info: String = redis::Client::open(url)
        .and_then(|client| client.get_connection())
        .and_then(|mut con| redis::cmd("INFO").arg("cpu").query(&mut con))
        .unwrap_or_default();
    info.lines()
        .filter_map(|l| {
            l.strip_prefix("used_cpu_user:")
                .or_else(|| l.strip_prefix("used_cpu_sys:"))
        })
        .filter_map(|v| v.trim().parse::<f64>().ok())
        .sum()
}

fn shared_registry(url: &str, id: &str) -> CircuitBreakerRegistry {
    CircuitBreakerRegistry::builder()
        .redis_store(RedisStoreConfig {
            instance_id: id.into(),
            ..RedisStoreConfig::new(url)
        })
        .build()
        .expect("a registry with a Redis store")
}

fn happy_path(c: &mut Criterion, url: Option<&str>) {
    let mut group = c.benchmark_group("redis_store_happy_path");
    let mut registries = vec![("no store", Arc::new(CircuitBreakerRegistry::new()))];
    if let Some(url) = url {
        let shared = Arc::new(shared_registry(url, "bench"));
        shared.get_breaker("bench", "op");
        shared.stores()[0].sync(Duration::from_secs(5));
        registries.push(("redis store", shared));
    }
    for (name, registry) in registries {
        let breaker = registry.get_breaker("bench", "op");
        group.bench_function(format!("breaker, {name}"), |b| {
            b.iter(|| breaker.try_acquire().map(|p| p.record_success()))
        });
        let manager = RetryManager::builder()
            .circuit_breaker_registry(Arc::clone(&registry))
            .build()
            .expect("a manager");
        let operation = manager.operation("bench", "op");
        group.bench_function(format!("operation handle, {name}"), |b| {
            b.iter(|| operation.execute(|| common::op(black_box(1))))
        });
    }
    group.finish();
}

/// The sync's cost: rounds of a registry with `breakers` breakers, timed on the client, and
/// Redis's CPU time over them.
fn sync_cost(url: &str, breakers: usize, rounds: u32) {
    let registry = shared_registry(url, "sync-bench");
    for i in 0..breakers {
        registry.get_breaker("sync-bench", &format!("op-{i}"));
    }
    let store = registry.stores()[0];
    // The first round creates every record; under load a round trip may pass the command
    // timeout, which the next round recovers from.
    assert!(
        (0..5).any(|_| store.sync(Duration::from_secs(30))),
        "the store answers"
    );
    let before = (redis_cpu(url), store.stats().commands, Instant::now());
    let mut slowest = Duration::ZERO;
    for _ in 0..rounds {
        let started = Instant::now();
        store.sync(Duration::from_secs(10));
        slowest = slowest.max(started.elapsed());
    }
    let wall = before.2.elapsed();
    let cpu = redis_cpu(url) - before.0;
    let commands = store.stats().commands - before.1;
    let per_round = wall / rounds;
    let per_breaker_round = per_round.as_secs_f64() / breakers as f64;
    let redis_per_breaker_round = cpu / commands.max(1) as f64;
    println!(
        "sync, {breakers} breakers, every breaker in every round (sync_now): {:.3} ms per round (slowest {:.3} ms); per breaker and round {:.2} µs of client time, {:.2} µs of Redis CPU",
        per_round.as_secs_f64() * 1e3,
        slowest.as_secs_f64() * 1e3,
        per_breaker_round * 1e6,
        redis_per_breaker_round * 1e6,
    );

    // The steady state: the same breakers idle (closed, nothing to send), left to the
    // background sync, which rounds them for their heartbeat only.
    let window = Duration::from_secs(3);
    let (cpu0, commands0) = (redis_cpu(url), store.stats().commands);
    std::thread::sleep(window);
    let cpu = redis_cpu(url) - cpu0;
    let commands = store.stats().commands - commands0;
    let per_second = commands as f64 / window.as_secs_f64() / breakers as f64;
    println!(
        "sync, {breakers} idle breakers, background: {per_second:.2} script calls and {:.1} µs of Redis CPU per breaker per second",
        cpu / window.as_secs_f64() / breakers as f64 * 1e6,
    );
}

fn benches(c: &mut Criterion) {
    let server = redis();
    let url = server.as_ref().map(|(url, _)| url.as_str());
    if url.is_none() {
        println!(
            "redis_store: no REDIS_URL and no redis-server on PATH: the store side is skipped"
        );
    }
    happy_path(c, url);
    // Measured only when benchmarks run, not when `cargo test --benches` checks them.
    if let (Some(url), true) = (url, std::env::args().any(|a| a == "--bench")) {
        for breakers in [100, 1_000, 10_000] {
            sync_cost(url, breakers, 20);
        }
    }
}

criterion_group! {
    name = redis_store;
    config = common::criterion();
    targets = benches
}
criterion::criterion_main!(redis_store);
