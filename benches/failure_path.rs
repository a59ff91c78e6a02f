//! A call that fails twice with a transient error, then succeeds, with zero delays: our
//! `#[retry]` site and `execute` against backon (alone, and around recloser's and failsafe's
//! breakers), sync and async, and tower's retry layer (async).
//! `cargo bench --bench failure_path`.

mod common;

use common::{
    flaky, runtime, site_flaky_async, site_flaky_sync, zero_delay_manager, TowerAttempts,
};
use criterion::{criterion_group, criterion_main, Criterion};
use std::cell::Cell;
use std::hint::black_box;
use std::rc::Rc;
use std::time::Duration;
use tower::ServiceExt as _;

/// Three attempts, no waiting, no jitter.
fn backon_zero_delay() -> backon::ExponentialBuilder {
    backon::ExponentialBuilder::default()
        .with_min_delay(Duration::ZERO)
        .with_max_times(2)
}

fn failure_sync(c: &mut Criterion) {
    let mut group = c.benchmark_group("failure_sync");
    let left = Cell::new(0);

    // Every contender must really retry twice and succeed.
    left.set(2);
    assert_eq!(site_flaky_sync(1, &left).unwrap(), 1);
    assert_eq!(left.get(), 0);
    group.bench_function("retry-attribute", |b| {
        b.iter(|| {
            left.set(2);
            site_flaky_sync(black_box(1), &left)
        })
    });

    let manager = zero_delay_manager();
    left.set(2);
    let ok = manager.execute("bench", "flaky_execute", || flaky(1, &left));
    assert_eq!((ok.unwrap(), left.get()), (1, 0));
    left.set(2);
    let ok = backon::BlockingRetryable::retry(|| flaky(1, &left), backon_zero_delay()).call();
    assert_eq!((ok.unwrap(), left.get()), (1, 0));
    group.bench_function("execute", |b| {
        b.iter(|| {
            left.set(2);
            manager.execute("bench", "flaky_execute", || flaky(black_box(1), &left))
        })
    });

    group.bench_function("backon retry", |b| {
        use backon::BlockingRetryable;
        b.iter(|| {
            left.set(2);
            (|| flaky(black_box(1), &left))
                .retry(backon_zero_delay())
                .call()
        })
    });

    // Retries and a breaker, as ours: backon around recloser's and failsafe's breakers (their
    // default thresholds never open on two failures in a row).
    let recloser = recloser::Recloser::default();
    left.set(2);
    let ok =
        backon::BlockingRetryable::retry(|| recloser.call(|| flaky(1, &left)), backon_zero_delay())
            .call();
    assert_eq!((ok.unwrap(), left.get()), (1, 0));
    group.bench_function("backon retry + recloser breaker", |b| {
        use backon::BlockingRetryable;
        b.iter(|| {
            left.set(2);
            (|| recloser.call(|| flaky(black_box(1), &left)))
                .retry(backon_zero_delay())
                .call()
        })
    });

    let failsafe = failsafe::Config::new().build();
    group.bench_function("backon retry + failsafe breaker", |b| {
        use backon::BlockingRetryable;
        use failsafe::CircuitBreaker as _;
        b.iter(|| {
            left.set(2);
            (|| failsafe.call(|| flaky(black_box(1), &left)))
                .retry(backon_zero_delay())
                .call()
        })
    });
    group.finish();
}

fn failure_async(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("failure_async");
    let left = &Cell::new(0);

    left.set(2);
    assert_eq!(rt.block_on(site_flaky_async(1, left)).unwrap(), 1);
    assert_eq!(left.get(), 0);
    group.bench_function("retry-attribute", |b| {
        b.to_async(&rt).iter(|| {
            left.set(2);
            site_flaky_async(black_box(1), left)
        })
    });

    let manager = &zero_delay_manager();
    left.set(2);
    let ok = rt.block_on(
        manager.execute_async("bench", "flaky_execute_async", || async { flaky(1, left) }),
    );
    assert_eq!((ok.unwrap(), left.get()), (1, 0));
    left.set(2);
    let ok = rt.block_on(backon::Retryable::retry(
        || async { flaky(1, left) },
        backon_zero_delay(),
    ));
    assert_eq!((ok.unwrap(), left.get()), (1, 0));
    group.bench_function("execute_async", |b| {
        b.to_async(&rt).iter(|| {
            left.set(2);
            manager.execute_async("bench", "flaky_execute_async", || async {
                flaky(black_box(1), left)
            })
        })
    });

    group.bench_function("backon retry", |b| {
        use backon::Retryable;
        b.to_async(&rt).iter(|| {
            left.set(2);
            (|| async { flaky(black_box(1), left) }).retry(backon_zero_delay())
        })
    });

    // backon sleeps on tokio's timer even for a zero delay, which costs a timer tick per
    // retry; with a sleeper that is ready at once its own machinery shows.
    group.bench_function("backon retry (no-op sleeper)", |b| {
        use backon::Retryable;
        b.to_async(&rt).iter(|| {
            left.set(2);
            (|| async { flaky(black_box(1), left) })
                .retry(backon_zero_delay())
                .sleep(|_| std::future::ready(()))
        })
    });

    // tower clones the service per attempt, so the countdown is shared through an `Rc`.
    let tower_left = Rc::new(Cell::new(0));
    let service_left = Rc::clone(&tower_left);
    let tower_retry = tower::retry::Retry::new(
        TowerAttempts(2),
        tower::service_fn(move |x: u64| std::future::ready(flaky(x, &service_left))),
    );
    tower_left.set(2);
    let ok = rt.block_on(tower_retry.clone().oneshot(1));
    assert_eq!((ok.unwrap(), tower_left.get()), (1, 0));
    group.bench_function("tower retry", |b| {
        b.to_async(&rt).iter(|| {
            tower_left.set(2);
            tower_retry.clone().oneshot(black_box(1))
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = failure_sync, failure_async
}
criterion_main!(benches);
