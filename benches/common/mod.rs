//! What every benchmark shares: the trivial operation, and our `#[retry]` call sites.
//!
//! Shared with `tests/alloc_free.rs` (through `#[path]`), so the allocation test checks exactly
//! the code that is timed. Not every binary uses every item.
#![allow(dead_code)]

use resilience_core::{retry, RetryManager};
use std::cell::Cell;
use std::hint::black_box;
use std::io;
use std::time::Duration;

/// The error type of every benchmarked operation: cheap to build (`ErrorKind` needs no
/// allocation), classified as transient, and takes a `CircuitOpenError`.
pub type Error = io::Error;

/// The trivial operation: `Ok` of a value the optimiser cannot see through.
#[inline(always)]
pub fn op(x: u64) -> Result<u64, Error> {
    Ok(black_box(x))
}

/// Fails with a transient error while `failures_left` is above zero (counting it down), then
/// succeeds: "fail twice then succeed" when started at 2.
#[inline(always)]
pub fn flaky(x: u64, failures_left: &Cell<u32>) -> Result<u64, Error> {
    let left = failures_left.get();
    if left > 0 {
        failures_left.set(left - 1);
        Err(io::ErrorKind::ConnectionReset.into())
    } else {
        Ok(black_box(x))
    }
}

#[retry(component = "bench", operation = "happy_sync")]
pub fn site_sync(x: u64) -> Result<u64, Error> {
    op(x)
}

/// A zero-sized error type, as a caller's own error enum or marker type often is: the
/// operation's `Result` then travels in registers, and any cost the wrapper adds shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unit;

impl std::fmt::Display for Unit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("unit error")
    }
}

impl std::error::Error for Unit {}

impl resilience_core::Classify for Unit {}

impl From<resilience_core::CircuitOpenError> for Unit {
    fn from(_: resilience_core::CircuitOpenError) -> Self {
        Unit
    }
}

/// The trivial operation, out of line: the shape in which the compiler cannot fold the
/// operation into the wrapper (a call into another crate, a large function).
#[inline(never)]
pub fn op_opaque(x: u64) -> Result<u64, Unit> {
    Ok(black_box(x))
}

#[retry(component = "bench", operation = "opaque_sync")]
pub fn site_opaque(x: u64) -> Result<u64, Unit> {
    op_opaque(x)
}

#[retry(component = "bench", operation = "opaque_async")]
pub async fn site_opaque_async(x: u64) -> Result<u64, Unit> {
    op_opaque(x)
}

#[retry(component = "bench", operation = "happy_async")]
pub async fn site_async(x: u64) -> Result<u64, Error> {
    op(x)
}

#[retry(
    component = "bench",
    operation = "flaky_sync",
    max_attempts = 3,
    initial_delay = 0.0
)]
pub fn site_flaky_sync(x: u64, failures_left: &Cell<u32>) -> Result<u64, Error> {
    flaky(x, failures_left)
}

#[retry(
    component = "bench",
    operation = "flaky_async",
    max_attempts = 3,
    initial_delay = 0.0
)]
pub async fn site_flaky_async(x: u64, failures_left: &Cell<u32>) -> Result<u64, Error> {
    flaky(x, failures_left)
}

/// The site every thread of the scaling benchmark calls: one breaker, one metrics key.
#[retry(component = "bench", operation = "shared")]
pub fn site_shared(x: u64) -> Result<u64, Error> {
    op(x)
}

/// A manager whose retries wait for nothing (the failure path of `execute`).
pub fn zero_delay_manager() -> RetryManager {
    RetryManager::builder()
        .default_config(resilience_core::RetryConfig {
            max_attempts: 3,
            initial_delay: Duration::ZERO,
            ..resilience_core::RetryConfig::default()
        })
        .build()
        .expect("valid settings")
}

/// Criterion's settings for every group: short runs, so that all benchmarks finish in a few
/// minutes on a shared 2-core machine. Command-line flags still override them (`criterion_group!`
/// applies them after this).
pub fn criterion() -> criterion::Criterion {
    criterion::Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

/// tower's retry policy for the comparison: retry any error, `0` more times at most, at once.
#[derive(Clone, Copy)]
pub struct TowerAttempts(pub usize);

impl<Req: Clone, Res, E> tower::retry::Policy<Req, Res, E> for TowerAttempts {
    type Future = std::future::Ready<()>;

    fn retry(&mut self, _req: &mut Req, result: &mut Result<Res, E>) -> Option<Self::Future> {
        match result {
            Err(_) if self.0 > 0 => {
                self.0 -= 1;
                Some(std::future::ready(()))
            }
            _ => None,
        }
    }

    fn clone_request(&mut self, req: &Req) -> Option<Req> {
        Some(req.clone())
    }
}

/// A current-thread tokio runtime, the kind `#[tokio::main(flavor = "current_thread")]` makes.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}
