//! Memory per (component, operation) key of a manager, on the system allocator with a count of
//! the bytes in use: under 512 bytes at 100,000 keys (DESIGN.md, round 2), breaker included,
//! whatever the number of CPUs; and a second thread calling every key adds only its table's
//! entries. One test in this binary, so that nothing else allocates while it counts.

use resilience_core::{CircuitBreakerRegistry, RetryManager};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

const KEYS: usize = 100_000;

/// The system allocator, keeping count of the bytes in use.
struct Counting;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call goes to the system allocator unchanged; the counter is only arithmetic.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        System.alloc_zeroed(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE_BYTES.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn bytes_per_key(f: impl FnOnce()) -> isize {
    let before = LIVE_BYTES.load(Ordering::Relaxed);
    f();
    (LIVE_BYTES.load(Ordering::Relaxed) - before) / KEYS as isize
}

fn call_every_key(manager: &RetryManager, names: &[String]) {
    for name in names {
        let _: Result<(), std::io::Error> = manager.execute("ChEMBL", name, || Ok(()));
    }
}

#[test]
fn a_key_costs_under_512_bytes_and_a_second_thread_24() {
    let names: Vec<String> = (0..KEYS)
        .map(|i| format!("fetch_molecule_{i:05}"))
        .collect();
    let registry = CircuitBreakerRegistry::new();
    let breaker = bytes_per_key(|| {
        for name in &names {
            drop(registry.get_breaker("ChEMBL", name));
        }
    });
    drop(registry);

    let manager = RetryManager::builder()
        .max_operations(KEYS)
        .build()
        .unwrap();
    let one_thread = bytes_per_key(|| call_every_key(&manager, &names));
    let second_thread = bytes_per_key(|| {
        std::thread::scope(|s| {
            s.spawn(|| call_every_key(&manager, &names));
        })
    });
    println!("per key: {one_thread} bytes, of which the breaker {breaker}; a second thread adds {second_thread}");
    assert_eq!(manager.metrics().operations.len(), KEYS);

    // The `metrics` feature adds the exported series' handles (18 of them, 288 bytes).
    let exported = if cfg!(feature = "metrics") { 296 } else { 0 };
    assert!(one_thread < 512 + exported, "{one_thread} bytes per key");
    assert!(second_thread <= 25, "{second_thread} bytes per key");
}
