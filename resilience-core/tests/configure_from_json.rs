//! `configure_from_json`: the original's `configure_from_dict` keys, per-operation entries,
//! precedence, and a clear error for every bad value.

mod support;

use resilience_core::{RetryConfig, RetryManager};
use serde_json::json;
use std::time::Duration;
use support::{manager, no_jitter, Script};

/// The example of the original document, verbatim.
fn original_example() -> serde_json::Value {
    json!({
        "retry": {
            "max_attempts": 5,
            "initial_delay": 0.5,
            "max_delay": 30.0,
            "backoff_factor": 1.5,
            "jitter_factor": 0.2
        },
        "circuit_breaker": {
            "failure_threshold": 3,
            "reset_timeout": 60.0,
            "half_open_max_calls": 2,
            "success_threshold": 2,
            "open_timeout_increment_factor": 2.0,
            "max_open_timeout": 300.0
        }
    })
}

#[test]
fn the_originals_example_is_accepted_and_applied() {
    let m = RetryManager::new();
    m.configure_from_json(&original_example()).unwrap();
    let config = m.default_config();
    assert_eq!(
        (config.max_attempts, config.initial_delay, config.max_delay),
        (5, Duration::from_millis(500), Duration::from_secs(30))
    );
    assert_eq!((config.backoff_factor, config.jitter_factor), (1.5, 0.2));
}

#[test]
fn the_breaker_settings_apply_to_breakers() {
    let (m, _) = manager(no_jitter());
    m.configure_from_json(&json!({"circuit_breaker": {"failure_threshold": 2}}))
        .unwrap();
    let mut always = Script::always_failing();
    let _ = m.call("svc", "op").max_attempts(1).run(|| always.call());
    let _ = m.call("svc", "op").max_attempts(1).run(|| always.call());
    assert_eq!(m.circuit_breaker_status()["svc:op"].state.as_str(), "OPEN");
}

#[test]
fn every_bad_value_is_rejected_with_an_error_naming_its_field() {
    let cases = [
        (json!({"retry": {"max_attempts": 0}}), "retry.max_attempts"),
        (json!({"retry": {"max_attempts": -1}}), "retry.max_attempts"),
        (
            json!({"retry": {"max_attempts": 2.5}}),
            "retry.max_attempts",
        ),
        (
            json!({"retry": {"max_attempts": "3"}}),
            "retry.max_attempts",
        ),
        (
            json!({"retry": {"initial_delay": -0.1}}),
            "retry.initial_delay",
        ),
        (json!({"retry": {"max_delay": "30s"}}), "retry.max_delay"),
        (
            json!({"retry": {"backoff_factor": 0.5}}),
            "retry.backoff_factor",
        ),
        (
            json!({"retry": {"jitter_factor": 1.5}}),
            "retry.jitter_factor",
        ),
        (
            json!({"retry": {"jitter_factor": -0.1}}),
            "retry.jitter_factor",
        ),
        (
            json!({"retry": {"initial_delay": 10.0, "max_delay": 1.0}}),
            "retry.initial_delay",
        ),
        (json!({"retry": {"jitter": "loud"}}), "retry.jitter"),
        (
            json!({"retry": {"retryable_categories": ["network", "nope"]}}),
            "retry.retryable_categories",
        ),
        (json!({"retry": {"max_attempt": 3}}), "retry.max_attempt"),
        (json!({"retry": 5}), "retry"),
        (
            json!({"circuit_breaker": {"failure_threshold": 0}}),
            "circuit_breaker.failure_threshold",
        ),
        (
            json!({"circuit_breaker": {"half_open_max_calls": 0}}),
            "circuit_breaker.half_open_max_calls",
        ),
        (
            json!({"circuit_breaker": {"success_threshold": 0}}),
            "circuit_breaker.success_threshold",
        ),
        (
            json!({"circuit_breaker": {"reset_timeout": -5}}),
            "circuit_breaker.reset_timeout",
        ),
        (
            json!({"circuit_breaker": {"open_timeout_increment_factor": 0.9}}),
            "circuit_breaker.open_timeout_increment_factor",
        ),
        (
            json!({"circuit_breaker": {"reset_timeout": 600.0, "max_open_timeout": 300.0}}),
            "circuit_breaker.reset_timeout",
        ),
        (json!({"circuit_breakers": {}}), "circuit_breakers"),
        (
            json!({"operations": {"no-colon": {}}}),
            "operations.no-colon",
        ),
        (
            json!({"operations": {"a:b": {"retry": {"max_attempts": 0}}}}),
            "operations.a:b.retry.max_attempts",
        ),
        (
            json!({"operations": {"a:b": {"circuit_breaker": {"failure_threshold": 0}}}}),
            "operations.a:b.circuit_breaker.failure_threshold",
        ),
        (
            json!({"operations": {"a:b": {"retries": {}}}}),
            "operations.a:b.retries",
        ),
        (json!([1, 2]), "(root)"),
    ];
    for (value, field) in cases {
        let m = RetryManager::new();
        let err = m.configure_from_json(&value).unwrap_err();
        assert_eq!(err.field(), field, "{value}: {err}");
        assert!(err.to_string().starts_with(&format!("`{field}`")), "{err}");
    }
}

#[test]
fn a_rejected_configuration_changes_nothing() {
    let m = RetryManager::new();
    let err = m.configure_from_json(&json!({
        "retry": {"max_attempts": 7},
        "circuit_breaker": {"failure_threshold": 0}
    }));
    assert!(err.is_err());
    assert_eq!(m.default_config().max_attempts, 3);
}

#[test]
fn per_operation_entries_override_the_defaults_for_that_operation_only() {
    let (m, clock) = manager(no_jitter());
    m.configure_from_json(&json!({
        "retry": {"max_attempts": 2},
        "operations": {"svc:slow": {"retry": {"max_attempts": 4, "initial_delay": 1.0}}}
    }))
    .unwrap();
    let mut other = Script::always_failing();
    let _ = m.execute("svc", "other", || other.call());
    assert_eq!(other.execs, 2);
    assert_eq!(clock.sleeps(), [Duration::from_millis(100)]);

    clock.clear_sleeps();
    let mut slow = Script::always_failing();
    let _ = m.execute("svc", "slow", || slow.call());
    assert_eq!(slow.execs, 4);
    assert_eq!(clock.sleeps(), [1, 2, 4].map(Duration::from_secs));
}

#[test]
fn precedence_is_call_site_then_per_operation_then_defaults() {
    let (m, _) = manager(RetryConfig {
        initial_delay: Duration::ZERO,
        ..no_jitter()
    });
    m.configure_from_json(&json!({
        "retry": {"max_attempts": 2},
        "operations": {"svc:op": {"retry": {"max_attempts": 4}}}
    }))
    .unwrap();
    let mut site = Script::always_failing();
    let _ = m.call("svc", "op").max_attempts(6).run(|| site.call());
    assert_eq!(site.execs, 6, "call site wins");
    let mut keyed = Script::always_failing();
    let _ = m.execute("svc", "op", || keyed.call());
    assert_eq!(keyed.execs, 4, "then the per-operation entry");
    let mut default = Script::always_failing();
    let _ = m.execute("svc", "elsewhere", || default.call());
    assert_eq!(default.execs, 2, "then the defaults");
}

#[test]
fn extensions_jitter_deadline_and_categories_are_accepted() {
    let m = RetryManager::new();
    m.configure_from_json(&json!({
        "retry": {
            "jitter": "decorrelated",
            "max_elapsed": 12.5,
            "retryable_categories": ["network", "Timeout", "rate_limit"]
        }
    }))
    .unwrap();
    let config = m.default_config();
    assert_eq!(config.jitter, resilience_core::Jitter::Decorrelated);
    assert_eq!(config.max_elapsed, Some(Duration::from_millis(12_500)));
    assert_eq!(config.retryable_categories.iter().count(), 3);
}

#[test]
fn new_settings_apply_to_operations_that_already_failed() {
    // A failing call caches its resolved settings; new settings must replace them.
    let (m, _) = manager(RetryConfig {
        initial_delay: Duration::ZERO,
        ..no_jitter()
    });
    let fetch = m.operation("svc", "op");
    let mut before = Script::always_failing();
    let _ = fetch.execute(|| before.call());
    assert_eq!(before.execs, 3);
    m.configure_from_json(&json!({"retry": {"max_attempts": 5}}))
        .unwrap();
    let mut after = Script::always_failing();
    let _ = fetch.execute(|| after.call());
    assert_eq!(after.execs, 5);
    m.configure_from_json(&json!({"operations": {"svc:op": {"retry": {"max_attempts": 2}}}}))
        .unwrap();
    let mut keyed = Script::always_failing();
    let _ = m.execute("svc", "op", || keyed.call());
    assert_eq!(keyed.execs, 2);
}
