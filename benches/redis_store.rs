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
use resilience_core::{CircuitBreakerRegistry, RedisStoreConfig, RetryManager};
use std::hint::black_box;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A throwaway server, killed on drop.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn redis() -> Option<(String, Option<Server>)> {
    if let Ok(url) = std::env::var("REDIS_URL") {
        return Some((url, None));
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let dir = std::env::temp_dir();
    let child = Command::new("redis-server")
        .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .args(["--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(&dir)
        .stdout(Stdio::null())
        .spawn()
        .ok()?;
    let server = Server(child);
    let url = format!("redis://127.0.0.1:{port}/");
    let deadline = Instant::now() + Duration::from_secs(10);
    while command(&url, &["PING"]).is_none_or(|r| !r.contains("PONG")) {
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Some((url, Some(server)))
}

/// One command over a raw connection, answered as text.
fn command(url: &str, args: &[&str]) -> Option<String> {
    let addr = url.trim_start_matches("redis://").trim_end_matches('/');
    let mut stream = TcpStream::connect(addr).ok()?;
    let mut cmd = format!("*{}\r\n", args.len());
    for a in args {
        cmd.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    stream.write_all(cmd.as_bytes()).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    let mut buf = vec![0_u8; 16 * 1024];
    let n = stream.read(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// Redis's CPU seconds so far (user + system), from `INFO cpu`.
fn redis_cpu(url: &str) -> f64 {
    let info = command(url, &["INFO", "cpu"]).unwrap_or_default();
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
    assert!(store.sync(Duration::from_secs(10)), "the store answers");
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
        "sync cost, {breakers} breakers: {:.3} ms per round (slowest {:.3} ms), {:.2} µs of client time and {:.2} µs of Redis CPU per breaker per round; at 10 rounds/s: {:.1} µs client + {:.1} µs Redis CPU per breaker per second ({commands} script calls)",
        per_round.as_secs_f64() * 1e3,
        slowest.as_secs_f64() * 1e3,
        per_breaker_round * 1e6,
        redis_per_breaker_round * 1e6,
        per_breaker_round * 1e6 * 10.0,
        redis_per_breaker_round * 1e6 * 10.0,
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
