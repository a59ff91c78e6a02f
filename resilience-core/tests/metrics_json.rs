//! The JSON form of a snapshot, and the example of it in `docs/metrics.md`, which must be the
//! real output of the run below. After a deliberate change, rewrite the example with
//! `BLESS=1 cargo test -p resilience-core --test metrics_json`.

use resilience_core::{
    CircuitBreakerConfig, ManualClock, MetricsSnapshot, OperationSnapshot, RetryManager,
};
use std::io::{Error, ErrorKind};

/// The files that show the example: the metrics documentation and the README.
const DOCS: [&str; 2] = [
    concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/metrics.md"),
    concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"),
];
const START: &str = "<!-- snapshot-example:start -->\n```json\n";
const END: &str = "```\n<!-- snapshot-example:end -->";

/// The run the documented example comes from: default settings (jitter on), a manual clock,
/// seed 1.
fn example_run() -> MetricsSnapshot {
    let manager = RetryManager::builder()
        .clock(ManualClock::new())
        .seed(1)
        .build()
        .unwrap();
    let fails_then_ok = |failures: usize, kind: ErrorKind| {
        let mut n = 0;
        move || {
            n += 1;
            if n <= failures {
                Err(Error::from(kind))
            } else {
                Ok(())
            }
        }
    };
    // Succeeds at once, on the third attempt, and never (three timeouts).
    let _ = manager.execute(
        "ChEMBL",
        "fetch_molecule",
        fails_then_ok(0, ErrorKind::Other),
    );
    let _ = manager.execute(
        "ChEMBL",
        "fetch_molecule",
        fails_then_ok(2, ErrorKind::ConnectionReset),
    );
    let _ = manager.execute(
        "ChEMBL",
        "fetch_molecule",
        fails_then_ok(usize::MAX, ErrorKind::TimedOut),
    );
    // A non-retryable error.
    let _ = manager.execute("db", "insert", fails_then_ok(1, ErrorKind::InvalidData));
    // A breaker that opens on the first failure, then rejects the next call.
    for _ in 0..2 {
        let _ = manager
            .call("search", "query")
            .circuit_breaker_config(CircuitBreakerConfig {
                failure_threshold: 1,
                ..CircuitBreakerConfig::default()
            })
            .max_attempts(1)
            .run(fails_then_ok(1, ErrorKind::ConnectionRefused));
    }
    manager.metrics()
}

#[test]
fn a_snapshot_is_an_object_keyed_component_colon_operation() {
    let json = serde_json::to_value(example_run()).unwrap();
    let keys: Vec<_> = json.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["ChEMBL:fetch_molecule", "db:insert", "search:query"]);
    let fetch = &json["ChEMBL:fetch_molecule"];
    for field in [
        "calls",
        "successes",
        "failures",
        "attempts",
        "retries",
        "rejected",
        "non_retryable",
        "wait_seconds",
        "success_rate",
        "attempts_histogram",
        "failures_by_category",
        "breaker_transitions",
    ] {
        assert!(fetch.get(field).is_some(), "missing {field}");
    }
    assert_eq!(fetch["calls"], 3);
    assert_eq!(fetch["attempts"], 7);
    assert_eq!(fetch["failures_by_category"]["timeout"], 3);
    assert_eq!(json["search:query"]["rejected"], 1);
}

#[test]
fn a_snapshot_reads_back_from_its_json() {
    let snapshot = example_run();
    let text = serde_json::to_string(&snapshot).unwrap();
    let back: MetricsSnapshot = serde_json::from_str(&text).unwrap();
    assert_eq!(back, snapshot);
    let one: OperationSnapshot =
        serde_json::from_value(serde_json::to_value(snapshot.get("db", "insert")).unwrap())
            .unwrap();
    assert_eq!(one.non_retryable, 1);
}

#[test]
fn the_documented_example_is_the_real_output() {
    let actual = serde_json::to_string_pretty(&example_run()).unwrap() + "\n";
    for path in DOCS {
        let doc = std::fs::read_to_string(path).unwrap();
        let start = doc
            .find(START)
            .unwrap_or_else(|| panic!("start marker in {path}"))
            + START.len();
        let end = start
            + doc[start..]
                .find(END)
                .unwrap_or_else(|| panic!("end marker in {path}"));
        if doc[start..end] == actual {
            continue;
        }
        if std::env::var_os("BLESS").is_some() {
            std::fs::write(path, format!("{}{actual}{}", &doc[..start], &doc[end..])).unwrap();
            continue;
        }
        panic!(
            "{path} shows an outdated snapshot; rerun with BLESS=1 to write this one:\n{actual}"
        );
    }
}
