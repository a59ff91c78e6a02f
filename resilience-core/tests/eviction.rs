//! Bounded growth: keys that come from data (one operation per tenant or endpoint) are evicted
//! past the manager's cap when idle, closed and clean; open breakers and held operations never.

use resilience_core::{CircuitBreakerConfig, CircuitState, RetryManager};

fn ok(m: &RetryManager, component: &str, operation: &str) {
    let _: Result<(), std::io::Error> = m.execute(component, operation, || Ok(()));
}

#[test]
fn a_manager_stays_near_its_cap_whatever_the_number_of_keys() {
    let m = RetryManager::builder().max_operations(100).build().unwrap();
    for id in 0..5_000 {
        ok(&m, "tenant", &id.to_string());
    }
    let kept = m.metrics().operations.len();
    assert!(kept <= 101, "{kept} operations kept");
    assert!(m.circuit_breaker_status().len() <= 101);
    assert_eq!(m.evicted_operations(), 5_000 - kept as u64);
}

#[test]
fn open_breakers_are_never_evicted() {
    let m = RetryManager::builder()
        .max_operations(10)
        .circuit_breaker_config(CircuitBreakerConfig {
            failure_threshold: 1,
            ..Default::default()
        })
        .build()
        .unwrap();
    for id in 0..5 {
        let _: Result<(), std::io::Error> = m
            .call("down", &id.to_string())
            .max_attempts(1)
            .run(|| Err(std::io::ErrorKind::TimedOut.into()));
    }
    for id in 0..1_000 {
        ok(&m, "tenant", &id.to_string());
    }
    let status = m.circuit_breaker_status();
    for id in 0..5 {
        assert_eq!(status[&format!("down:{id}")].state, CircuitState::Open);
    }
    assert!(m.evicted_operations() > 900);
}

#[test]
fn held_operations_keep_their_figures() {
    let m = RetryManager::builder().max_operations(10).build().unwrap();
    let held = m.operation("svc", "held");
    let _: Result<(), std::io::Error> = held.execute(|| Ok(()));
    for id in 0..1_000 {
        ok(&m, "tenant", &id.to_string());
    }
    let _: Result<(), std::io::Error> = held.execute(|| Ok(()));
    assert_eq!(m.metrics_for("svc", "held").unwrap().calls, 2);
}

#[test]
fn a_cap_of_zero_is_a_configuration_error() {
    let err = RetryManager::builder()
        .max_operations(0)
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "max_operations");
}
