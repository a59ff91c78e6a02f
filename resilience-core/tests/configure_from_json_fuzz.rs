//! `configure_from_json` under hostile input: arbitrary JSON documents and near-misses of the
//! real keys never panic, every error names a field, and a rejected document changes nothing.

use proptest::prelude::*;
use resilience_core::RetryManager;
use serde_json::{json, Map, Value};

const KEYS: &[&str] = &[
    "retry",
    "circuit_breaker",
    "operations",
    "max_attempts",
    "initial_delay",
    "max_delay",
    "backoff_factor",
    "jitter_factor",
    "jitter",
    "max_elapsed",
    "retryable_categories",
    "budget",
    "percent",
    "min_per_sec",
    "ttl",
    "failure_threshold",
    "reset_timeout",
    "half_open_max_calls",
    "success_threshold",
    "open_timeout_increment_factor",
    "max_open_timeout",
    "failure_rate",
    "window",
    "window_calls",
    "minimum_calls",
    "slow_call",
    "slow_call_rate",
    "max_half_open_wait",
    "svc:op",
    "a%3Ab:c",
    "bad%zz:x",
    "no-colon",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u32>().prop_map(|n| json!(n)),
        prop_oneof![any::<f64>(), -10.0..10.0f64, 0.0..2.0f64]
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop_oneof![
            Just("full".to_owned()),
            Just("network".to_owned()),
            ".{0,8}"
        ]
        .prop_map(Value::String),
    ]
}

fn document() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec((proptest::sample::select(KEYS), inner), 0..6).prop_map(
                |entries| {
                    Value::Object(
                        entries
                            .into_iter()
                            .map(|(k, v)| (k.to_owned(), v))
                            .collect::<Map<_, _>>(),
                    )
                }
            ),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3_000))]

    #[test]
    fn any_document_is_applied_or_rejected_with_a_field(doc in document()) {
        let manager = RetryManager::new();
        let before = format!("{manager:?}");
        match manager.configure_from_json(&doc) {
            Ok(()) => {}
            Err(err) => {
                prop_assert!(!err.field().is_empty(), "{doc}: {err}");
                prop_assert!(!err.rule().is_empty(), "{doc}: {err}");
                prop_assert_eq!(format!("{manager:?}"), before, "a rejected document changed the settings");
            }
        }
        // Whatever was accepted, calls still run.
        let _: Result<(), std::io::Error> = manager.execute("svc", "op", || Ok(()));
    }
}
