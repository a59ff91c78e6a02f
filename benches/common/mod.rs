//! What every benchmark shares: the trivial operation, and our call sites written out the way
//! `#[retry]` expands them.
//!
//! The sites below are labelled "retry-attribute (hand-expanded)" in the reports: each is the
//! expansion the attribute is specified to generate (a `static Site`, `CallState::new`, then the
//! admit / run / succeeded-or-failed loop), typed by hand until the attribute exists. Swap each for
//! the commented `#[retry(..)]` line above it once it does; nothing else has to change.
//!
//! Shared with `tests/alloc_free.rs` (through `#[path]`), so the allocation test checks exactly
//! the code that is timed. Not every binary uses every item.
#![allow(dead_code)]

use resilience_core::__private::{
    global, CallSpec, CallState, Next, RetryManager, RetryOverrides, Site,
};
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

/// Retry settings for the failure path: three attempts, no waiting.
pub const ZERO_DELAY: RetryOverrides = RetryOverrides {
    max_attempts: Some(3),
    initial_delay: Some(Duration::ZERO),
    ..RetryOverrides::NONE
};

// #[retry(component = "bench", operation = "happy_sync")]
pub fn site_sync(x: u64) -> Result<u64, Error> {
    static __RESILIENCE_SITE: Site = Site::new("bench", "happy_sync", CallSpec::GUARDED);
    let __resilience_manager: &RetryManager = global();
    let __resilience_handle = __RESILIENCE_SITE.handle(__resilience_manager);
    let mut __resilience_call = CallState::new(
        __resilience_manager,
        &__resilience_handle,
        __RESILIENCE_SITE.spec(),
    );
    let mut __resilience_last: Option<Error> = None;
    loop {
        let __permit = match __resilience_call.admit() {
            Ok(p) => p,
            Err(open) => return Err(__resilience_call.rejected(open, __resilience_last)),
        };
        #[allow(clippy::redundant_closure_call)]
        let __result: Result<u64, Error> = (|| -> Result<u64, Error> { op(x) })();
        match __result {
            Ok(v) => {
                __resilience_call.succeeded(__permit);
                return Ok(v);
            }
            Err(e) => match __resilience_call.failed(__permit, &e) {
                Next::Retry(d) => {
                    __resilience_last = Some(e);
                    __resilience_call.sleep(d);
                }
                Next::Stop => return Err(e),
            },
        }
    }
}

// #[retry(component = "bench", operation = "happy_async")]
pub async fn site_async(x: u64) -> Result<u64, Error> {
    static __RESILIENCE_SITE: Site = Site::new("bench", "happy_async", CallSpec::GUARDED);
    let __resilience_manager: &RetryManager = global();
    let __resilience_handle = __RESILIENCE_SITE.handle(__resilience_manager);
    let mut __resilience_call = CallState::new(
        __resilience_manager,
        &__resilience_handle,
        __RESILIENCE_SITE.spec(),
    );
    let mut __resilience_last: Option<Error> = None;
    loop {
        let __permit = match __resilience_call.admit() {
            Ok(p) => p,
            Err(open) => return Err(__resilience_call.rejected(open, __resilience_last)),
        };
        let __result: Result<u64, Error> = async { op(x) }.await;
        match __result {
            Ok(v) => {
                __resilience_call.succeeded(__permit);
                return Ok(v);
            }
            Err(e) => match __resilience_call.failed(__permit, &e) {
                Next::Retry(d) => {
                    __resilience_last = Some(e);
                    __resilience_call.sleep_async(d).await;
                }
                Next::Stop => return Err(e),
            },
        }
    }
}

// #[retry(component = "bench", operation = "flaky_sync", max_attempts = 3, initial_delay = 0.0)]
pub fn site_flaky_sync(x: u64, failures_left: &Cell<u32>) -> Result<u64, Error> {
    static __RESILIENCE_SITE: Site = Site::new(
        "bench",
        "flaky_sync",
        CallSpec {
            retry: ZERO_DELAY,
            ..CallSpec::GUARDED
        },
    );
    let __resilience_manager: &RetryManager = global();
    let __resilience_handle = __RESILIENCE_SITE.handle(__resilience_manager);
    let mut __resilience_call = CallState::new(
        __resilience_manager,
        &__resilience_handle,
        __RESILIENCE_SITE.spec(),
    );
    let mut __resilience_last: Option<Error> = None;
    loop {
        let __permit = match __resilience_call.admit() {
            Ok(p) => p,
            Err(open) => return Err(__resilience_call.rejected(open, __resilience_last)),
        };
        #[allow(clippy::redundant_closure_call)]
        let __result: Result<u64, Error> = (|| -> Result<u64, Error> { flaky(x, failures_left) })();
        match __result {
            Ok(v) => {
                __resilience_call.succeeded(__permit);
                return Ok(v);
            }
            Err(e) => match __resilience_call.failed(__permit, &e) {
                Next::Retry(d) => {
                    __resilience_last = Some(e);
                    __resilience_call.sleep(d);
                }
                Next::Stop => return Err(e),
            },
        }
    }
}

// #[retry(component = "bench", operation = "flaky_async", max_attempts = 3, initial_delay = 0.0)]
pub async fn site_flaky_async(x: u64, failures_left: &Cell<u32>) -> Result<u64, Error> {
    static __RESILIENCE_SITE: Site = Site::new(
        "bench",
        "flaky_async",
        CallSpec {
            retry: ZERO_DELAY,
            ..CallSpec::GUARDED
        },
    );
    let __resilience_manager: &RetryManager = global();
    let __resilience_handle = __RESILIENCE_SITE.handle(__resilience_manager);
    let mut __resilience_call = CallState::new(
        __resilience_manager,
        &__resilience_handle,
        __RESILIENCE_SITE.spec(),
    );
    let mut __resilience_last: Option<Error> = None;
    loop {
        let __permit = match __resilience_call.admit() {
            Ok(p) => p,
            Err(open) => return Err(__resilience_call.rejected(open, __resilience_last)),
        };
        let __result: Result<u64, Error> = async { flaky(x, failures_left) }.await;
        match __result {
            Ok(v) => {
                __resilience_call.succeeded(__permit);
                return Ok(v);
            }
            Err(e) => match __resilience_call.failed(__permit, &e) {
                Next::Retry(d) => {
                    __resilience_last = Some(e);
                    __resilience_call.sleep_async(d).await;
                }
                Next::Stop => return Err(e),
            },
        }
    }
}

// #[retry(component = "bench", operation = "shared")]
/// The site every thread of the scaling benchmark calls: one breaker, one metrics key.
pub fn site_shared(x: u64) -> Result<u64, Error> {
    static __RESILIENCE_SITE: Site = Site::new("bench", "shared", CallSpec::GUARDED);
    let __resilience_manager: &RetryManager = global();
    let __resilience_handle = __RESILIENCE_SITE.handle(__resilience_manager);
    let mut __resilience_call = CallState::new(
        __resilience_manager,
        &__resilience_handle,
        __RESILIENCE_SITE.spec(),
    );
    let mut __resilience_last: Option<Error> = None;
    loop {
        let __permit = match __resilience_call.admit() {
            Ok(p) => p,
            Err(open) => return Err(__resilience_call.rejected(open, __resilience_last)),
        };
        #[allow(clippy::redundant_closure_call)]
        let __result: Result<u64, Error> = (|| -> Result<u64, Error> { op(x) })();
        match __result {
            Ok(v) => {
                __resilience_call.succeeded(__permit);
                return Ok(v);
            }
            Err(e) => match __resilience_call.failed(__permit, &e) {
                Next::Retry(d) => {
                    __resilience_last = Some(e);
                    __resilience_call.sleep(d);
                }
                Next::Stop => return Err(e),
            },
        }
    }
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
