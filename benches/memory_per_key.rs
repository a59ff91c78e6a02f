//! Memory per (component, operation) key of a manager at 100,000 keys, on the real allocator
//! (the system's, with a count of the bytes in use around it): how much of it is the breaker
//! (a bare registry with the same keys), and what a second thread that calls every key adds
//! (the metrics keep per-thread tables). `cargo bench --bench memory_per_key`; prints and exits.
//!
//! This package turns on the `metrics` feature of `resilience-core`, whose exported handles
//! cost about 300 bytes a key; `resilience-core/tests/memory_per_key.rs` measures without it.

mod counting_alloc;

use counting_alloc::live_bytes;
use resilience_core::{CircuitBreakerRegistry, RetryManager};

const KEYS: usize = 100_000;

#[global_allocator]
static ALLOCATOR: counting_alloc::Counting = counting_alloc::Counting;

fn per_key(bytes: isize) -> isize {
    bytes / KEYS as isize
}

fn call_every_key(manager: &RetryManager, names: &[String]) {
    for name in names {
        let _: Result<(), std::io::Error> = manager.execute("ChEMBL", name, || Ok(()));
    }
}

fn main() {
    // Runs in full however it is started (about a second): fewer keys would change the maps'
    // share per key.
    let names: Vec<String> = (0..KEYS)
        .map(|i| format!("fetch_molecule_{i:05}"))
        .collect();

    let before = live_bytes();
    let registry = CircuitBreakerRegistry::new();
    for name in &names {
        drop(registry.get_breaker("ChEMBL", name));
    }
    let breaker = per_key(live_bytes() - before);
    drop(registry);

    let before = live_bytes();
    let manager = RetryManager::builder()
        .max_operations(KEYS)
        .build()
        .expect("a valid cap");
    call_every_key(&manager, &names);
    let one_thread = per_key(live_bytes() - before);

    let before = live_bytes();
    std::thread::scope(|s| {
        s.spawn(|| call_every_key(&manager, &names));
    });
    let second_thread = per_key(live_bytes() - before);
    assert_eq!(manager.metrics().operations.len(), KEYS);

    println!("memory per key at {KEYS} keys (names like fetch_molecule_00042):");
    println!("  manager, every key called from one thread: {one_thread} bytes");
    println!("    of which the breaker (a bare registry with the same keys): {breaker} bytes");
    println!(
        "    the rest (handle, metrics, the map): {} bytes",
        one_thread - breaker
    );
    println!("  a second thread calling every key adds: {second_thread} bytes");
}
