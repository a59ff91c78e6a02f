//! Retry budgets through the manager, on the manual clock: the reserve, the share of first
//! attempts, expiry after `ttl`, exhaustion ending a call with its last error, one budget per
//! component, the same decisions for sync and async calls, and exact books under threads.

mod support;

use resilience_core::{RetryBudget, RetryConfig, RetryManager};
use serde_json::json;
use std::sync::{Arc, Barrier};
use std::time::Duration;
use support::{manager, Script, TestError};

fn with_budget(budget: RetryBudget) -> RetryConfig {
    RetryConfig {
        max_attempts: 100,
        initial_delay: Duration::ZERO,
        jitter_factor: 0.0,
        budget: Some(budget),
        ..RetryConfig::default()
    }
}

/// A reserve of `per_sec × ttl` retries and no share of traffic.
fn reserve_only(per_sec: u32, ttl_secs: u64) -> RetryBudget {
    RetryBudget {
        ttl: Duration::from_secs(ttl_secs),
        min_retries_per_sec: per_sec,
        percent_can_retry: 0.0,
    }
}

fn failing_call(m: &RetryManager, component: &str) -> (u32, Result<u32, TestError>) {
    let mut script = Script::always_failing();
    let result = m.execute(component, "op", || script.call());
    (script.execs, result)
}

#[test]
fn the_reserve_allows_min_retries_per_sec_times_ttl_retries_with_no_traffic() {
    let (m, _clock) = manager(with_budget(reserve_only(1, 10)));
    let (attempts, result) = failing_call(&m, "svc");
    assert_eq!(
        attempts, 11,
        "the first attempt and the reserve's 10 retries"
    );
    assert_eq!(
        result,
        Err(TestError::Transient),
        "the last error, as it was"
    );
    let figures = m.metrics_for("svc", "op").unwrap();
    assert_eq!((figures.retries, figures.budget_exhausted), (10, 1));
    assert_eq!(figures.failures, 1);
    // Empty now: the next call makes its first attempt only.
    assert_eq!(failing_call(&m, "svc").0, 1);
    assert_eq!(m.metrics_for("svc", "op").unwrap().budget_exhausted, 2);
}

#[test]
fn withdrawals_expire_after_ttl() {
    let (m, clock) = manager(with_budget(reserve_only(1, 10)));
    assert_eq!(failing_call(&m, "svc").0, 11);
    clock.advance(Duration::from_secs(5));
    assert_eq!(
        failing_call(&m, "svc").0,
        1,
        "still spent after half the ttl"
    );
    clock.advance(Duration::from_secs(6));
    assert_eq!(
        failing_call(&m, "svc").0,
        11,
        "the reserve is back after the ttl"
    );
}

#[test]
fn first_attempts_buy_retries_at_percent_can_retry() {
    let budget = RetryBudget {
        ttl: Duration::from_secs(10),
        min_retries_per_sec: 0,
        percent_can_retry: 0.5,
    };
    let (m, _clock) = manager(with_budget(budget));
    for _ in 0..10 {
        let ok: Result<u32, TestError> = m.execute("svc", "op", || Ok(1));
        assert!(ok.is_ok());
    }
    // 10 successes and this call's own first attempt: 11 × 0.5 = 5.5 retries, so 5.
    assert_eq!(failing_call(&m, "svc").0, 6);
}

#[test]
fn deposits_expire_after_ttl() {
    let budget = RetryBudget {
        ttl: Duration::from_secs(10),
        min_retries_per_sec: 0,
        percent_can_retry: 1.0,
    };
    let (m, clock) = manager(with_budget(budget));
    for _ in 0..20 {
        let _: Result<u32, TestError> = m.execute("svc", "op", || Ok(1));
    }
    clock.advance(Duration::from_secs(11));
    // Only this call's own deposit is left: one retry.
    assert_eq!(failing_call(&m, "svc").0, 2);
}

#[test]
fn components_do_not_share_a_budget_and_operations_do() {
    let (m, _clock) = manager(with_budget(reserve_only(1, 10)));
    assert_eq!(failing_call(&m, "a").0, 11);
    assert_eq!(
        failing_call(&m, "b").0,
        11,
        "another component has its own budget"
    );
    let mut script = Script::always_failing();
    let _ = m.execute("a", "other-op", || script.call());
    assert_eq!(
        script.execs, 1,
        "another operation of `a` shares its empty budget"
    );
}

#[test]
fn without_a_budget_max_attempts_alone_limits_retries() {
    let (m, _clock) = manager(RetryConfig {
        budget: None,
        ..with_budget(reserve_only(0, 1))
    });
    assert_eq!(failing_call(&m, "svc").0, 100);
    assert_eq!(m.metrics_for("svc", "op").unwrap().budget_exhausted, 0);
}

#[tokio::test(start_paused = true)]
async fn sync_and_async_calls_make_the_same_decisions() {
    let (sync_m, _c1) = manager(with_budget(reserve_only(1, 3)));
    let (async_m, _c2) = manager(with_budget(reserve_only(1, 3)));
    let mut sync_attempts = Vec::new();
    let mut async_attempts = Vec::new();
    for _ in 0..3 {
        sync_attempts.push(failing_call(&sync_m, "svc").0);
        let mut script = Script::always_failing();
        let _ = async_m
            .execute_async("svc", "op", || {
                let result = script.call();
                async move { result }
            })
            .await;
        async_attempts.push(script.execs);
    }
    assert_eq!(sync_attempts, [4, 1, 1]);
    assert_eq!(async_attempts, sync_attempts);
    assert_eq!(
        sync_m.metrics_for("svc", "op"),
        async_m.metrics_for("svc", "op")
    );
}

#[test]
fn four_threads_keep_the_books_exact() {
    let (m, _clock) = manager(RetryConfig {
        max_attempts: 2,
        ..with_budget(reserve_only(50, 10))
    });
    let m = Arc::new(m);
    let start = Arc::new(Barrier::new(4));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (m, start) = (Arc::clone(&m), Arc::clone(&start));
            std::thread::spawn(move || {
                start.wait();
                for _ in 0..1_000 {
                    let _ = failing_call(&m, "svc");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let figures = m.metrics_for("svc", "op").unwrap();
    assert_eq!(figures.calls, 4_000);
    assert_eq!(figures.retries, 500, "exactly the reserve, 50/s × 10 s");
    assert_eq!(figures.budget_exhausted, 3_500);
}

#[test]
fn json_turns_a_budget_on_and_off() {
    let (m, _clock) = manager(with_budget(reserve_only(1, 10)));
    m.configure_from_json(&json!({"retry": {"budget": false}}))
        .unwrap();
    assert_eq!(failing_call(&m, "off").0, 100);
    m.configure_from_json(&json!({
        "retry": {"budget": {"percent": 0.0, "min_per_sec": 2, "ttl": 5}}
    }))
    .unwrap();
    assert_eq!(failing_call(&m, "on").0, 11);
    let err = m
        .configure_from_json(&json!({"retry": {"budget": {"ttl": 0.5}}}))
        .unwrap_err();
    assert_eq!(err.field(), "retry.budget.ttl");
    let err = m
        .configure_from_json(&json!({"retry": {"budget": {"percent": 2000}}}))
        .unwrap_err();
    assert_eq!(err.field(), "retry.budget.percent_can_retry");
    let err = m
        .configure_from_json(&json!({"retry": {"budget": {"percentage": 1}}}))
        .unwrap_err();
    assert_eq!(err.field(), "retry.budget.percentage");
}
