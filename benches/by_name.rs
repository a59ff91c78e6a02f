//! A call by name (`manager.execute("c", "op", f)`) beside one through a held handle
//! (`manager.operation("c", "op")`, then `.execute(f)`): one name called over and over, and a
//! program rotating over 3 and over 16 names (more than a thread keeps at hand, so each call
//! looks its name up in the map). `cargo bench --bench by_name`.
//!
//! For instruction counts under callgrind, `BY_NAME_LOOP=<case>` (`handle`, `name`, `name3`,
//! `name16`) runs one case a million times instead of criterion:
//! `BY_NAME_LOOP=name valgrind --tool=callgrind <the bench binary>`.

mod common;

use common::op;
use criterion::{criterion_group, Criterion};
use resilience_core::RetryManager;
use std::hint::black_box;

const NAMES: [&str; 16] = [
    "fetch_molecule",
    "fetch_target",
    "fetch_assay",
    "search",
    "n4",
    "n5",
    "n6",
    "n7",
    "n8",
    "n9",
    "n10",
    "n11",
    "n12",
    "n13",
    "n14",
    "n15",
];

fn by_name(c: &mut Criterion) {
    let manager = RetryManager::new();
    let handle = manager.operation("ChEMBL", "held");
    let mut group = c.benchmark_group("by_name");
    group.bench_function("held handle", |b| {
        b.iter(|| handle.execute(|| op(black_box(1))))
    });
    group.bench_function("execute by name", |b| {
        b.iter(|| manager.execute("ChEMBL", "fetch_molecule", || op(black_box(1))))
    });
    for n in [3, 16] {
        let mut i = 0;
        group.bench_function(format!("execute by name, {n} names in turn"), |b| {
            b.iter(|| {
                i = (i + 1) % n;
                manager.execute("ChEMBL", NAMES[i], || op(black_box(1)))
            })
        });
    }
    group.finish();
}

/// One case, a million times: for callgrind.
fn run_loop(case: &str) {
    let manager = RetryManager::new();
    let handle = manager.operation("ChEMBL", "held");
    let rotate = |n: usize| {
        for i in 0..1_000_000 {
            let _ = black_box(manager.execute("ChEMBL", NAMES[i % n], || op(black_box(1))));
        }
    };
    match case {
        "handle" => {
            for _ in 0..1_000_000 {
                let _ = black_box(handle.execute(|| op(black_box(1))));
            }
        }
        "name" => rotate(1),
        "name3" => rotate(3),
        "name16" => rotate(16),
        other => panic!("BY_NAME_LOOP={other}: handle, name, name3 or name16"),
    }
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = by_name
}

fn main() {
    match std::env::var("BY_NAME_LOOP") {
        Ok(case) => run_loop(&case),
        Err(_) => {
            benches();
            Criterion::default().configure_from_args().final_summary();
        }
    }
}
