//! The round-2 settings through `#[retry]` and `configure_from_json`, run against the real
//! runtime on a manual clock: the failure-rate rule opening where the consecutive rule never
//! would, `classify_ok` on a site, a site's budget, and why the breaker opened.

use resilience_core::{
    retry, CircuitState, ErrorCategory, Failure, ManualClock, OpenCause, RetryManager,
};
use std::cell::Cell;
use std::io;
use std::sync::LazyLock;

static CLOCK: LazyLock<ManualClock> = LazyLock::new(ManualClock::new);
static RATE: LazyLock<RetryManager> = LazyLock::new(manager);
static JUDGED: LazyLock<RetryManager> = LazyLock::new(manager);
static BUDGET: LazyLock<RetryManager> = LazyLock::new(manager);
static JSON: LazyLock<RetryManager> = LazyLock::new(manager);

fn manager() -> RetryManager {
    RetryManager::builder()
        .clock(CLOCK.clone())
        .seed(3)
        .build()
        .expect("valid manager")
}

fn reset() -> io::Error {
    io::ErrorKind::ConnectionReset.into()
}

// Fails every other call: never five in a row, so the default rule would never open.
#[retry(component = "alternating", operation = "get", max_attempts = 1,
        circuit_breaker(failure_rate = 0.5, window_calls = 10, minimum_calls = 10),
        manager = &*RATE)]
fn alternating(n: u32) -> Result<u32, io::Error> {
    if n.is_multiple_of(2) {
        Err(reset())
    } else {
        Ok(n)
    }
}

#[test]
fn a_failure_rate_opens_where_the_consecutive_rule_would_not() {
    for n in 0..10 {
        let _ = alternating(n);
    }
    let status = &RATE.circuit_breaker_status()["alternating:get"];
    assert_eq!(status.state, CircuitState::Open);
    let err = alternating(11).unwrap_err();
    let open = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<resilience_core::CircuitOpenError>())
        .expect("rejected by the breaker");
    assert_eq!(open.opened_by(), Some(OpenCause::FailureRate));
    assert_eq!(open.failure_rate(), Some(0.5));
    // The failures were connection resets: the rejection says so.
    assert_eq!(open.failure_category(), Some(ErrorCategory::Network));
}

fn judge(status: &u16) -> Option<Failure> {
    (*status == 503).then(|| Failure::new(ErrorCategory::Unavailable))
}

#[retry(component = "judged", operation = "get", max_attempts = 3, initial_delay = 0.0,
        classify_ok = judge, manager = &*JUDGED)]
fn judged(calls: &Cell<u32>, statuses: &[u16]) -> Result<u16, io::Error> {
    calls.set(calls.get() + 1);
    Ok(statuses[calls.get() as usize - 1])
}

#[test]
fn a_site_with_classify_ok_retries_judged_values_and_returns_the_last() {
    let calls = Cell::new(0);
    assert_eq!(judged(&calls, &[503, 503, 200]).unwrap(), 200);
    assert_eq!(calls.get(), 3);
    let calls = Cell::new(0);
    assert_eq!(judged(&calls, &[503, 503, 503]).unwrap(), 503);
    let figures = JUDGED.metrics_for("judged", "get").unwrap();
    assert_eq!((figures.successes, figures.failures), (1, 1));
}

#[retry(component = "budgeted", operation = "get", max_attempts = 50, initial_delay = 0.0,
        budget(percent = 0.0, min_per_sec = 1, ttl = "5s"), circuit_breaker = false,
        manager = &*BUDGET)]
fn budgeted(calls: &Cell<u32>) -> Result<(), io::Error> {
    calls.set(calls.get() + 1);
    Err(reset())
}

#[test]
fn a_sites_budget_caps_its_retries() {
    let calls = Cell::new(0);
    let _ = budgeted(&calls);
    assert_eq!(calls.get(), 6, "one attempt and the reserve's 5 retries");
    assert_eq!(
        BUDGET
            .metrics_for("budgeted", "get")
            .unwrap()
            .budget_exhausted,
        1
    );
    assert!(!BUDGET.circuit_breaker_status().contains_key("budgeted:get"));
}

#[retry(component = "json", operation = "get", max_attempts = 1, manager = &*JSON)]
fn configured(fail: bool) -> Result<(), io::Error> {
    if fail {
        Err(reset())
    } else {
        Ok(())
    }
}

#[test]
fn json_rate_rules_reach_a_sites_breaker() {
    JSON.configure_from_json(&serde_json::json!({
        "operations": {"json:get": {"circuit_breaker": {
            "failure_rate": 0.6, "window": 60, "minimum_calls": 5, "max_half_open_wait": 1.0
        }}}
    }))
    .unwrap();
    for fail in [true, false, true, false, true] {
        let _ = configured(fail);
    }
    let status = &JSON.circuit_breaker_status()["json:get"];
    assert_eq!(status.state, CircuitState::Open);
    assert_eq!(status.window_calls, Some(5));
    let err = JSON
        .configure_from_json(&serde_json::json!({
            "circuit_breaker": {"window": 60, "window_calls": 10}
        }))
        .unwrap_err();
    assert_eq!(err.field(), "circuit_breaker.window_calls");
}
