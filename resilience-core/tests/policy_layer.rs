//! The wrong answers of the old configuration knot, each pinned by a test: validation that
//! missed per-operation entries, configurations that broke a rule together, lost or stale
//! configurations under concurrency, two call sites fighting over one breaker, breakers created
//! for calls that bypass them, keys that merged different operations, and per-category delays
//! above `max_delay`.

mod support;

use resilience_core::{
    Backoff, CircuitBreakerConfig, CircuitBreakerRegistry, CircuitState, ErrorCategory,
    RetryConfig, RetryManager,
};
use serde_json::json;
use std::sync::{Arc, Barrier};
use std::time::Duration;
use support::{manager, no_jitter, Script, TestError};

#[test]
fn validate_sees_the_operations_entry() {
    let m = RetryManager::new();
    m.configure_from_json(&json!({
        "operations": {"svc:op": {"retry": {"initial_delay": 30.0}}}
    }))
    .unwrap();
    let call = m.call("svc", "op").max_delay(Duration::from_secs(10));
    let err = call.validate().unwrap_err();
    assert_eq!(err.field(), "retry.initial_delay", "{err}");
    // The same call on an operation without the entry is fine.
    assert!(m
        .call("svc", "other")
        .max_delay(Duration::from_secs(10))
        .validate()
        .is_ok());
}

#[test]
fn a_document_that_breaks_a_rule_with_earlier_entries_is_rejected() {
    let m = RetryManager::new();
    m.configure_from_json(&json!({
        "operations": {"svc:op": {"retry": {"initial_delay": 30.0}}}
    }))
    .unwrap();
    let err = m
        .configure_from_json(&json!({"retry": {"max_delay": 10.0}}))
        .unwrap_err();
    assert_eq!(
        err.field(),
        "operations.svc:op.retry.initial_delay",
        "{err}"
    );
    // Nothing changed: the default max_delay is still the built-in one.
    assert_eq!(
        m.default_config().max_delay,
        RetryConfig::default().max_delay
    );
    // The same two settings in one document are rejected the same way.
    let fresh = RetryManager::new();
    let err = fresh
        .configure_from_json(&json!({
            "retry": {"max_delay": 10.0},
            "operations": {"svc:op": {"retry": {"initial_delay": 30.0}}}
        }))
        .unwrap_err();
    assert_eq!(err.field(), "operations.svc:op.retry.initial_delay");
}

#[test]
fn concurrent_configurations_are_never_lost() {
    for round in 0..200 {
        let m = Arc::new(RetryManager::new());
        let start = Arc::new(Barrier::new(2));
        let threads: Vec<_> = [
            json!({"retry": {"max_attempts": 7}}),
            json!({"circuit_breaker": {"failure_threshold": 2}}),
        ]
        .into_iter()
        .map(|doc| {
            let (m, start) = (Arc::clone(&m), Arc::clone(&start));
            std::thread::spawn(move || {
                start.wait();
                m.configure_from_json(&doc).unwrap();
            })
        })
        .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(m.default_config().max_attempts, 7, "round {round}");
        // The breaker document is in force too: two failures open a new operation's breaker.
        let _: Result<(), std::io::Error> = m
            .call("svc", "op")
            .max_attempts(2)
            .initial_delay(Duration::ZERO)
            .run(|| Err(std::io::ErrorKind::TimedOut.into()));
        assert_eq!(
            m.circuit_breaker_status()["svc:op"].state,
            CircuitState::Open,
            "round {round}"
        );
    }
}

#[test]
fn a_configuration_racing_a_first_use_reaches_its_breaker() {
    for round in 0..300 {
        let m = Arc::new(RetryManager::new());
        let start = Arc::new(Barrier::new(2));
        let configure = {
            let (m, start) = (Arc::clone(&m), Arc::clone(&start));
            std::thread::spawn(move || {
                start.wait();
                m.configure_from_json(&json!({"circuit_breaker": {"failure_threshold": 1}}))
                    .unwrap();
            })
        };
        let first_use = {
            let (m, start) = (Arc::clone(&m), Arc::clone(&start));
            std::thread::spawn(move || {
                start.wait();
                let _: Result<(), std::io::Error> = m.execute("svc", "op", || Ok(()));
            })
        };
        configure.join().unwrap();
        first_use.join().unwrap();
        // One retryable failure must now open the breaker: it runs on the new settings.
        let _: Result<(), std::io::Error> = m
            .call("svc", "op")
            .max_attempts(1)
            .run(|| Err(std::io::ErrorKind::TimedOut.into()));
        assert_eq!(
            m.circuit_breaker_status()["svc:op"].state,
            CircuitState::Open,
            "round {round}: the breaker kept the settings from before the configuration"
        );
    }
}

#[test]
fn the_first_call_sites_breaker_settings_win() {
    let (m, _clock) = manager(no_jitter());
    let strict = CircuitBreakerConfig {
        failure_threshold: 1,
        ..Default::default()
    };
    let lenient = CircuitBreakerConfig {
        failure_threshold: 10,
        ..Default::default()
    };
    let fail = || -> Result<(), TestError> { Err(TestError::Transient) };
    // The first site to run claims the breaker's settings...
    let _ = m
        .call("svc", "op")
        .circuit_breaker_config(lenient.clone())
        .max_attempts(1)
        .run(fail);
    // ...and a second site with other settings does not overwrite them.
    let _ = m
        .call("svc", "op")
        .circuit_breaker_config(strict)
        .max_attempts(1)
        .run(fail);
    let status = &m.circuit_breaker_status()["svc:op"];
    assert_eq!(status.state, CircuitState::Closed);
    assert_eq!(status.failure_count, 2);
    // Configuration changes keep the claim on top of the new defaults.
    m.configure_from_json(&json!({"circuit_breaker": {"failure_threshold": 1}}))
        .unwrap();
    let _ = m.call("svc", "op").max_attempts(1).run(fail);
    assert_eq!(
        m.circuit_breaker_status()["svc:op"].state,
        CircuitState::Closed,
        "the site's failure_threshold = 10 still holds"
    );
}

#[test]
fn a_call_without_its_breaker_creates_none() {
    let m = RetryManager::new();
    #[derive(Debug)]
    struct Plain;
    impl resilience_core::Classify for Plain {}
    let got: Result<u8, Plain> = m
        .call("svc", "unguarded")
        .without_circuit_breaker()
        .run(|| Ok(1));
    assert_eq!(got.unwrap(), 1);
    assert!(!m.circuit_breaker_status().contains_key("svc:unguarded"));
    assert_eq!(m.metrics_for("svc", "unguarded").unwrap().calls, 1);
    // Once the operation is called through its breaker, the breaker exists, with the same
    // metrics.
    let _: Result<u8, std::io::Error> = m.execute("svc", "unguarded", || Ok(2));
    assert!(m.circuit_breaker_status().contains_key("svc:unguarded"));
    assert_eq!(m.metrics_for("svc", "unguarded").unwrap().calls, 2);
}

#[test]
fn names_with_colons_do_not_merge() {
    let m = RetryManager::builder()
        .circuit_breaker_config(CircuitBreakerConfig {
            failure_threshold: 1,
            ..Default::default()
        })
        .build()
        .unwrap();
    let _: Result<(), std::io::Error> = m
        .call("a", "b:c")
        .max_attempts(1)
        .run(|| Err(std::io::ErrorKind::TimedOut.into()));
    let _: Result<(), std::io::Error> = m.execute("a:b", "c", || Ok(()));
    let status = m.circuit_breaker_status();
    assert_eq!(status["a:b:c"].state, CircuitState::Open);
    assert_eq!(status["a%3Ab:c"].state, CircuitState::Closed);
    let metrics = serde_json::to_value(m.metrics()).unwrap();
    assert_eq!(metrics["a:b:c"]["failures"], 1);
    assert_eq!(metrics["a%3Ab:c"]["successes"], 1);
}

#[test]
fn an_operations_entry_configures_only_the_operation_it_names() {
    let (m, _clock) = manager(no_jitter());
    m.configure_from_json(&json!({
        "retry": {"initial_delay": 0.0},
        "operations": {"a%3Ab:c": {"retry": {"max_attempts": 5}}}
    }))
    .unwrap();
    let mut escaped = Script::always_failing();
    let _ = m.execute("a:b", "c", || escaped.call());
    let mut plain = Script::always_failing();
    let _ = m.execute("a", "b:c", || plain.call());
    assert_eq!((escaped.execs, plain.execs), (5, 3));
    let err = m
        .configure_from_json(&json!({"operations": {"a%zz:c": {}}}))
        .unwrap_err();
    assert_eq!(err.field(), "operations.a%zz:c");
}

#[test]
fn a_category_schedule_never_waits_longer_than_max_delay() {
    let config = RetryConfig {
        max_attempts: 3,
        max_delay: Duration::from_secs(5),
        jitter_factor: 0.0,
        ..RetryConfig::default()
    }
    .with_category_backoff(
        ErrorCategory::RateLimit,
        Backoff {
            initial_delay: Duration::from_secs(30),
            max_delay: Duration::from_secs(60),
            jitter_factor: 0.0,
            ..Backoff::default()
        },
    );
    let (m, clock) = manager(config);
    let mut limited = Script::new(std::iter::repeat_n(
        TestError::Of(ErrorCategory::RateLimit),
        3,
    ));
    let _ = m.execute("svc", "op", || limited.call());
    assert_eq!(clock.sleeps(), [Duration::from_secs(5); 2]);
}

#[test]
fn managers_dropped_from_a_shared_registry_leave_nothing_behind() {
    let registry = Arc::new(CircuitBreakerRegistry::new());
    let seen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = Arc::clone(&seen);
    registry.on_state_change(move |_| {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    });
    for _ in 0..10_000 {
        let m = RetryManager::builder()
            .circuit_breaker_registry(Arc::clone(&registry))
            .build()
            .unwrap();
        drop(m);
    }
    assert_eq!(
        registry.listener_count(),
        1,
        "only the test's own listener is left"
    );
    registry.force_open("svc", "op");
    assert_eq!(seen.load(std::sync::atomic::Ordering::Relaxed), 1);
}
