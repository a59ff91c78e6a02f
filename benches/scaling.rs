//! Threads sharing one breaker and one metrics key: 1 and 2 threads (the machine has 2 cores)
//! calling the same `#[retry]` site, the same `execute` operation, one recloser, one failsafe
//! breaker; a direct call shows what the machine gives at best. Criterion reports the time of
//! one round (each thread making one call) and the throughput in calls per second, all threads
//! together. `cargo bench --bench scaling`.

mod common;

use common::{op, site_shared};
use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, BenchmarkGroup, BenchmarkId, Criterion, Throughput,
};
use failsafe::CircuitBreaker as _;
use resilience_core::RetryManager;
use std::hint::black_box;
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

/// `threads` threads each make `iters` calls of `call`, started together; the time is the
/// slowest thread's, measured inside the threads so that spawning them is not counted.
fn run_threads<F: Fn() + Sync>(threads: usize, iters: u64, call: &F) -> Duration {
    let barrier = Barrier::new(threads);
    thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    let start = Instant::now();
                    for _ in 0..iters {
                        call();
                    }
                    start.elapsed()
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("a benchmark thread panicked"))
            .max()
            .unwrap_or_default()
    })
}

/// One contender at one thread count; generic so that the call is inlined as in the other groups.
fn bench<F: Fn() + Sync>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    threads: usize,
    call: F,
) {
    group.bench_with_input(BenchmarkId::new(name, threads), &threads, |b, &n| {
        b.iter_custom(|iters| run_threads(n, iters, &call))
    });
}

fn scaling(c: &mut Criterion) {
    let mut group = c.benchmark_group("scaling");
    let manager = RetryManager::new();
    let recloser = recloser::Recloser::default();
    let failsafe = failsafe::Config::new().build();
    site_shared(0).expect("warm-up");

    for threads in [1usize, 2] {
        group.throughput(Throughput::Elements(threads as u64));
        bench(&mut group, "direct", threads, || {
            let _ = black_box(op(black_box(1)));
        });
        bench(&mut group, "retry-attribute", threads, || {
            let _ = black_box(site_shared(black_box(1)));
        });
        bench(&mut group, "execute", threads, || {
            let _ = black_box(manager.execute("bench", "shared_execute", || op(black_box(1))));
        });
        bench(&mut group, "recloser breaker", threads, || {
            let _ = black_box(recloser.call(|| op(black_box(1))));
        });
        bench(&mut group, "failsafe breaker", threads, || {
            let _ = black_box(failsafe.call(|| op(black_box(1))));
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = scaling
}
criterion_main!(benches);
