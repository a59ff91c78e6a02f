//! 100,000 breakers in one registry: the time to take every breaker's status and a metrics
//! snapshot, and the memory each breaker (and each whole operation of a manager) takes.
//! `cargo bench --bench registry_scale`; the memory figures are printed before the timings.

mod common;

mod counting_alloc;

use counting_alloc::live_bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use resilience_core::{CircuitBreakerRegistry, RetryManager};
use std::hint::black_box;
use std::time::Duration;

const BREAKERS: usize = 100_000;

#[global_allocator]
static ALLOCATOR: counting_alloc::Counting = counting_alloc::Counting;

/// Operation names like a real program's (`fetch_molecule_00042`), made before counting.
fn names() -> Vec<String> {
    (0..BREAKERS)
        .map(|i| format!("fetch_molecule_{i:05}"))
        .collect()
}

/// A manager with `BREAKERS` operations, each called once.
fn populated_manager(names: &[String]) -> RetryManager {
    // Above the default cap of 10,000 operations: this measures what 100,000 cost.
    let manager = RetryManager::builder()
        .max_operations(names.len())
        .build()
        .expect("a valid cap");
    for name in names {
        let _: Result<(), std::io::Error> = manager.execute("ChEMBL", name, || Ok(()));
    }
    manager
}

/// Bytes per breaker in a bare registry, and per operation of a manager (handle, breaker,
/// metrics, and the maps that hold them), printed for the report.
fn report_memory(names: &[String]) {
    let before = live_bytes();
    let registry = CircuitBreakerRegistry::new();
    for name in names {
        drop(registry.get_breaker("ChEMBL", name));
    }
    let registry_bytes = live_bytes() - before;
    drop(registry);

    let before = live_bytes();
    let manager = populated_manager(names);
    let manager_bytes = live_bytes() - before;
    drop(manager);

    println!(
        "memory: {BREAKERS} breakers in a registry: {:.1} MB, {} bytes per breaker",
        registry_bytes as f64 / 1e6,
        registry_bytes / BREAKERS as isize
    );
    println!(
        "memory: {BREAKERS} operations of a manager (breaker + metrics + handle): {:.1} MB, {} bytes per operation",
        manager_bytes as f64 / 1e6,
        manager_bytes / BREAKERS as isize
    );
}

fn registry_scale(c: &mut Criterion) {
    let names = names();
    report_memory(&names);
    let manager = populated_manager(&names);
    assert_eq!(manager.circuit_breaker_status().len(), BREAKERS);
    assert_eq!(manager.metrics().operations.len(), BREAKERS);

    let mut group = c.benchmark_group("registry_scale");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("circuit_breaker_status (100k)", |b| {
        b.iter(|| black_box(manager.circuit_breaker_status()))
    });
    group.bench_function("metrics snapshot (100k)", |b| {
        b.iter(|| black_box(manager.metrics()))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = registry_scale
}
criterion_main!(benches);
