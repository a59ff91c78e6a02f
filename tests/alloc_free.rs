//! A successful call allocates nothing, sync and async, with the breaker and metrics on, once
//! the first call of an operation has created its handles; nor does a failed attempt that is
//! retried, once its call site has resolved its policy.
//!
//! A counting global allocator counts the allocations of the current thread only, so other
//! tests running in parallel cannot disturb the counts. The call sites are the benchmarks'
//! (`benches/common`), so the code checked here is the code timed there.

#[path = "../benches/common/mod.rs"]
mod common;

use common::{flaky, op, site_async, site_flaky_async, site_flaky_sync, site_sync};
use resilience_core::RetryManager;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

/// The system allocator, counting allocations (not frees) per thread.
struct Counting;

thread_local! {
    // `const` and without a destructor: reading it never allocates, so the allocator may use it.
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count_one() {
    // After the thread's locals are gone, allocations are not counted; no test runs then.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

// SAFETY: every call goes to the system allocator unchanged; counting touches only a
// thread-local `Cell`.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_one();
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_one();
        System.alloc_zeroed(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_one();
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Allocations made by this thread while `f` runs.
fn allocations_during<R>(f: impl FnOnce() -> R) -> u64 {
    let before = ALLOCATIONS.with(Cell::get);
    black_box(f());
    ALLOCATIONS.with(Cell::get) - before
}

/// Drives a future that never waits to its end, without a runtime (whose own bookkeeping
/// would be counted too).
fn run_ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
}

const CALLS: u64 = 1_000;

#[test]
fn the_counter_sees_allocations_of_this_thread() {
    // Without this, a broken counter would make every zero below pass.
    let n = allocations_during(|| Box::new(black_box(7u64)));
    assert_eq!(n, 1);
}

#[test]
fn a_successful_retry_attribute_call_allocates_nothing() {
    site_sync(0).expect("the first call creates the handles");
    let n = allocations_during(|| {
        for i in 0..CALLS {
            assert_eq!(site_sync(i).unwrap(), i);
        }
    });
    assert_eq!(n, 0, "{n} allocations in {CALLS} successful sync calls");
}

#[test]
fn a_successful_async_retry_attribute_call_allocates_nothing() {
    run_ready(site_async(0)).expect("the first call creates the handles");
    let n = allocations_during(|| {
        for i in 0..CALLS {
            assert_eq!(run_ready(site_async(i)).unwrap(), i);
        }
    });
    assert_eq!(n, 0, "{n} allocations in {CALLS} successful async calls");
}

#[test]
fn a_successful_execute_allocates_nothing() {
    let manager = RetryManager::new();
    let call = || manager.execute("alloc", "execute", || op(1));
    call().expect("the first call creates the handles");
    let n = allocations_during(|| {
        for _ in 0..CALLS {
            call().unwrap();
        }
    });
    assert_eq!(n, 0, "{n} allocations in {CALLS} successful execute calls");
}

#[test]
fn a_successful_execute_async_allocates_nothing() {
    let manager = RetryManager::new();
    let call = || manager.execute_async("alloc", "execute_async", || async { op(1) });
    run_ready(call()).expect("the first call creates the handles");
    let n = allocations_during(|| {
        for _ in 0..CALLS {
            run_ready(call()).unwrap();
        }
    });
    assert_eq!(
        n, 0,
        "{n} allocations in {CALLS} successful execute_async calls"
    );
}

#[test]
fn successes_after_a_recovered_failure_allocate_nothing() {
    // A failure dirties the breaker and the metrics; the next success cleans the breaker. From
    // then on successes are back on the allocation-free path.
    let left = Cell::new(1);
    assert_eq!(site_flaky_sync(5, &left).unwrap(), 5);
    assert_eq!(left.get(), 0, "the first attempt failed and was retried");
    let n = allocations_during(|| {
        for i in 0..CALLS {
            assert_eq!(site_flaky_sync(i, &left).unwrap(), i);
        }
    });
    assert_eq!(n, 0, "{n} allocations in {CALLS} successful calls");
    // The countdown was never touched again: every counted call succeeded at once.
    assert_eq!(flaky(1, &left).unwrap(), 1);
}

#[test]
fn failed_attempts_allocate_nothing_once_the_site_is_warm() {
    // Fail, fail, succeed with zero delays: the benchmarks' failure path. The first call
    // resolves the site's policy; from then on a failed attempt (classification, the breaker's
    // count, the metrics, the retry decision, the event when nobody listens) allocates nothing.
    let left = Cell::new(2);
    assert_eq!(site_flaky_sync(5, &left).unwrap(), 5);
    assert_eq!(left.get(), 0, "both failures were retried");
    let n = allocations_during(|| {
        for i in 0..CALLS {
            left.set(2);
            assert_eq!(site_flaky_sync(i, &left).unwrap(), i);
            assert_eq!(left.get(), 0);
        }
    });
    assert_eq!(n, 0, "{n} allocations in {CALLS} calls failing twice each");
}

#[test]
fn failed_async_attempts_allocate_nothing_once_the_site_is_warm() {
    let left = Cell::new(2);
    assert_eq!(run_ready(site_flaky_async(5, &left)).unwrap(), 5);
    assert_eq!(left.get(), 0, "both failures were retried");
    let n = allocations_during(|| {
        for i in 0..CALLS {
            left.set(2);
            assert_eq!(run_ready(site_flaky_async(i, &left)).unwrap(), i);
            assert_eq!(left.get(), 0);
        }
    });
    assert_eq!(
        n, 0,
        "{n} allocations in {CALLS} async calls failing twice each"
    );
}
