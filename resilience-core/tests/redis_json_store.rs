//! The `store` key of `configure_from_json` (feature `redis`): a running manager's breakers,
//! those it already has included, become shared with a fleet through a real Redis; a second
//! document with the same store changes nothing, and one with another store or a bad value is
//! an error that changes nothing.

#![cfg(feature = "redis")]

mod redis_support;

use redis_support::{redis_url, unique};
use resilience_core::{CircuitState, OpenCause, RetryManager};
use serde_json::{json, Value};
use std::io;
use std::time::{Duration, Instant};

/// A server nothing listens on: settings are checked and the sync starts without reaching it.
const NOWHERE: &str = "redis://127.0.0.1:1/";

fn fleet_document(url: &str, instance: &str) -> Value {
    json!({
        "retry": {"max_attempts": 1},
        "circuit_breaker": {"failure_threshold": 1, "reset_timeout": 60},
        "store": {"redis": url, "instance_id": instance, "quorum_min": 1}
    })
}

fn succeed(manager: &RetryManager, service: &str) -> io::Result<u32> {
    manager.execute(service, "op", || Ok(1))
}

/// One round of every store of the manager's registry, now.
fn sync(manager: &RetryManager) {
    for store in manager.circuit_breaker_registry().stores() {
        assert!(
            store.sync(Duration::from_secs(2)),
            "{} answers",
            store.kind()
        );
    }
}

#[test]
fn a_store_in_the_document_shares_the_breakers_a_manager_already_has() {
    let Some((url, _server)) = redis_url("json store") else {
        return;
    };
    let service = unique("json-store");
    let a = RetryManager::new();
    let b = RetryManager::new();
    // Both breakers exist before either manager is told of the store.
    succeed(&a, &service).unwrap();
    succeed(&b, &service).unwrap();
    assert!(a.circuit_breaker_registry().stores().is_empty());

    a.configure_from_json(&fleet_document(&url, "a")).unwrap();
    b.configure_from_json(&fleet_document(&url, "b")).unwrap();
    let kinds: Vec<_> = a
        .circuit_breaker_registry()
        .stores()
        .iter()
        .map(|s| s.kind())
        .collect();
    assert_eq!(kinds, ["redis"]);
    sync(&a);
    sync(&b);

    let failed: io::Result<u32> = a.execute(&service, "op", || {
        Err(io::Error::new(io::ErrorKind::ConnectionRefused, "down"))
    });
    assert!(failed.is_err());
    assert_eq!(
        a.circuit_breaker_status()[&format!("{service}:op")].state,
        CircuitState::Open
    );

    // quorum_min 1: a's vote opens it for b, through the background sync alone.
    let deadline = Instant::now() + Duration::from_secs(2);
    let breaker = b.circuit_breaker_registry().get_breaker(&service, "op");
    let err = loop {
        match breaker.try_acquire() {
            Err(err) => break err,
            Ok(permit) => permit.release(),
        }
        assert!(Instant::now() < deadline, "b never saw a's open breaker");
        std::thread::park_timeout(Duration::from_millis(5));
    };
    assert_eq!(err.opened_by(), Some(OpenCause::Fleet));
    let view = &b.circuit_breaker_registry().shared_status()[&format!("{service}:op")];
    assert_eq!(view.open_instances, ["a"]);
    assert!(succeed(&b, &service).is_err(), "b's calls are rejected");
}

#[test]
fn the_same_store_again_changes_nothing_and_another_store_is_refused() {
    let manager = RetryManager::new();
    let store = json!({"redis": NOWHERE, "quorum_min": 1});
    manager
        .configure_from_json(&json!({"store": store}))
        .unwrap();
    let instance = format!("{:?}", manager.circuit_breaker_registry().stores()[0]);

    // A reloaded file names the same store without an instance id: the running one stays.
    manager
        .configure_from_json(&json!({"retry": {"max_attempts": 4}, "store": store}))
        .unwrap();
    assert_eq!(manager.default_config().max_attempts, 4);
    assert_eq!(manager.circuit_breaker_registry().stores().len(), 1);
    assert_eq!(
        format!("{:?}", manager.circuit_breaker_registry().stores()[0]),
        instance
    );

    // Another store, or other settings of it: refused, and the document's retry values with it.
    for other in [
        json!({"redis": "redis://127.0.0.1:2/", "quorum_min": 1}),
        json!({"redis": NOWHERE, "quorum_min": 2}),
        json!({"redis": NOWHERE, "quorum_min": 1, "instance_id": "someone-else"}),
    ] {
        let err = manager
            .configure_from_json(&json!({"retry": {"max_attempts": 9}, "store": other}))
            .unwrap_err();
        assert_eq!(err.field(), "store", "{err}");
        assert!(err.rule().contains("cannot change"), "{err}");
        assert_eq!(manager.default_config().max_attempts, 4);
    }
}

#[test]
fn a_bad_store_is_an_error_naming_its_key_and_changes_nothing() {
    let manager = RetryManager::new();
    for (store, field) in [
        (json!("redis://127.0.0.1:6379"), "store"),
        (json!({"quorum_min": 1}), "store"),
        (json!({"redis": "http://127.0.0.1:6379"}), "store.redis"),
        (
            json!({"redis": NOWHERE, "quorum_min": 0}),
            "store.quorum_min",
        ),
        (
            json!({"redis": NOWHERE, "quorum_ratio": 1.5}),
            "store.quorum_ratio",
        ),
        (
            json!({"redis": NOWHERE, "sync_interval": -1}),
            "store.sync_interval",
        ),
        (
            json!({"redis": NOWHERE, "instance_id": "a:b"}),
            "store.instance_id",
        ),
        (
            json!({"redis": NOWHERE, "fallback": "sometimes"}),
            "store.fallback",
        ),
    ] {
        let err = manager
            .configure_from_json(&json!({"retry": {"max_attempts": 7}, "store": store}))
            .unwrap_err();
        assert_eq!(err.field(), field, "{store}: {err}");
        assert_eq!(manager.default_config().max_attempts, 3, "{store}");
        assert!(manager.circuit_breaker_registry().stores().is_empty());
    }
    let err = manager
        .configure_from_json(&json!({"store": {"redis": NOWHERE, "typo": 1}}))
        .unwrap_err();
    assert!(err.rule().contains("unknown field `typo`"), "{err}");
}

#[test]
fn a_bad_document_does_not_start_the_store() {
    let manager = RetryManager::new();
    let err = manager
        .configure_from_json(&json!({
            "retry": {"max_attempts": 0},
            "store": {"redis": NOWHERE}
        }))
        .unwrap_err();
    assert_eq!(err.field(), "retry.max_attempts");
    assert!(manager.circuit_breaker_registry().stores().is_empty());
}
