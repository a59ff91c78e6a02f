//! What the hot path's building blocks cost on this machine, for reading the other groups: an
//! uncontended atomic add, the same add from two threads on one cache line, a relaxed load,
//! and a clock read. `cargo bench --bench primitives`.

mod common;

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn primitives(c: &mut Criterion) {
    let mut group = c.benchmark_group("primitives");
    group.bench_function("atomic load (relaxed)", |b| {
        b.iter(|| black_box(&COUNTER).load(Ordering::Relaxed))
    });
    group.bench_function("atomic fetch_add (relaxed, one thread)", |b| {
        b.iter(|| black_box(&COUNTER).fetch_add(1, Ordering::Relaxed))
    });
    group.bench_function("load + store (relaxed, one thread)", |b| {
        b.iter(|| {
            let c = black_box(&COUNTER);
            c.store(c.load(Ordering::Relaxed) + 1, Ordering::Relaxed)
        })
    });
    group.bench_function("atomic fetch_add (relaxed, two threads, one line)", |b| {
        b.iter_custom(|iters| {
            let barrier = Barrier::new(2);
            thread::scope(|s| {
                let workers: Vec<_> = (0..2)
                    .map(|_| {
                        s.spawn(|| {
                            barrier.wait();
                            let start = Instant::now();
                            for _ in 0..iters {
                                black_box(&COUNTER).fetch_add(1, Ordering::Relaxed);
                            }
                            start.elapsed()
                        })
                    })
                    .collect();
                workers
                    .into_iter()
                    .map(|w| w.join().expect("thread"))
                    .max()
                    .unwrap_or(Duration::ZERO)
            })
        })
    });
    group.bench_function("Instant::now()", |b| b.iter(Instant::now));
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = primitives
}
criterion_main!(benches);
