//! With the `metrics` feature, the figures reach the `metrics` facade's recorder, labelled
//! component / operation (and outcome / category), under the documented names.
#![cfg(feature = "metrics")]

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use metrics_util::MetricKind;
use resilience_core::{CircuitBreakerConfig, ManualClock, RetryConfig, RetryManager};
use std::collections::BTreeMap;
use std::io::{Error, ErrorKind};

/// Every series the recorder received, as `name{k=v,…}` → value.
type Received = BTreeMap<String, DebugValue>;

fn run_scenarios() -> (Received, resilience_core::MetricsSnapshot) {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    // Handles are resolved when the manager first meets an operation, so the calls run with
    // the recorder installed.
    let snapshot = metrics::with_local_recorder(&recorder, || {
        let m = RetryManager::builder()
            .clock(ManualClock::new())
            .seed(1)
            .default_config(RetryConfig {
                jitter_factor: 0.0,
                ..RetryConfig::default()
            })
            .build()
            .unwrap();
        // At once; on the third attempt; exhausted; non-retryable.
        m.execute("svc", "op", || Ok::<_, Error>(())).unwrap();
        let mut n = 0;
        m.execute("svc", "op", || {
            n += 1;
            if n < 3 {
                Err(Error::from(ErrorKind::ConnectionReset))
            } else {
                Ok(())
            }
        })
        .unwrap();
        let _ = m.execute("svc", "op", || {
            Err::<(), _>(Error::from(ErrorKind::TimedOut))
        });
        let _ = m.execute("svc", "op", || {
            Err::<(), _>(Error::from(ErrorKind::InvalidData))
        });
        // Tripped, then rejected before any attempt.
        let trips = CircuitBreakerConfig {
            failure_threshold: 1,
            ..CircuitBreakerConfig::default()
        };
        for _ in 0..2 {
            let _ = m
                .call("svc", "guarded")
                .circuit_breaker_config(trips.clone())
                .max_attempts(1)
                .run(|| Err::<(), _>(Error::from(ErrorKind::ConnectionRefused)));
        }
        m.metrics()
    });
    let received = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let kind = match key.kind() {
                MetricKind::Counter => "counter",
                MetricKind::Gauge => "gauge",
                MetricKind::Histogram => "histogram",
            };
            let labels: Vec<_> = key
                .key()
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            (
                format!("{kind} {}{{{}}}", key.key().name(), labels.join(",")),
                value,
            )
        })
        .collect();
    (received, snapshot)
}

fn counter(received: &Received, series: &str) -> u64 {
    match received.get(&format!("counter {series}")) {
        Some(DebugValue::Counter(n)) => *n,
        other => panic!("{series}: {other:?} in {:#?}", received.keys()),
    }
}

fn histogram(received: &Received, series: &str) -> Vec<f64> {
    match received.get(&format!("histogram {series}")) {
        Some(DebugValue::Histogram(values)) => values.iter().map(|v| v.into_inner()).collect(),
        other => panic!("{series}: {other:?} in {:#?}", received.keys()),
    }
}

#[test]
fn the_recorder_receives_every_figure_with_its_labels() {
    let (r, _) = run_scenarios();
    let op = "component=svc,operation=op";
    assert_eq!(
        counter(
            &r,
            &format!("resilience_calls_total{{{op},outcome=success}}")
        ),
        2
    );
    assert_eq!(
        counter(
            &r,
            &format!("resilience_calls_total{{{op},outcome=failure}}")
        ),
        2
    );
    assert_eq!(
        counter(&r, &format!("resilience_attempts_total{{{op}}}")),
        1 + 3 + 3 + 1
    );
    assert_eq!(counter(&r, &format!("resilience_retries_total{{{op}}}")), 4);
    assert_eq!(
        counter(&r, &format!("resilience_non_retryable_total{{{op}}}")),
        1
    );
    assert_eq!(
        counter(&r, &format!("resilience_rejected_total{{{op}}}")),
        0
    );
    for (category, n) in [
        ("network", 2),
        ("timeout", 3),
        ("validation", 1),
        ("database", 0),
    ] {
        assert_eq!(
            counter(
                &r,
                &format!("resilience_attempt_failures_total{{{op},category={category}}}")
            ),
            n,
            "{category}"
        );
    }
    assert_eq!(
        histogram(&r, &format!("resilience_attempts_per_call{{{op}}}")),
        [1.0, 3.0, 3.0, 1.0]
    );
    assert_eq!(
        histogram(&r, &format!("resilience_wait_seconds{{{op}}}")),
        [0.1, 0.2, 0.1, 0.2]
    );

    let guarded = "component=svc,operation=guarded";
    assert_eq!(
        counter(&r, &format!("resilience_rejected_total{{{guarded}}}")),
        1
    );
    assert_eq!(
        counter(
            &r,
            &format!("resilience_calls_total{{{guarded},outcome=failure}}")
        ),
        2
    );
    assert_eq!(
        counter(&r, &format!("resilience_attempts_total{{{guarded}}}")),
        1
    );
    // The rejected call made no attempt: one value, from the call that tripped the breaker.
    assert_eq!(
        histogram(&r, &format!("resilience_attempts_per_call{{{guarded}}}")),
        [1.0]
    );
}

#[test]
fn the_exported_figures_match_the_snapshot() {
    let (r, snapshot) = run_scenarios();
    for (key, s) in &snapshot.operations {
        let (component, operation) = key.split_once(':').unwrap();
        let labels = format!("component={component},operation={operation}");
        let calls = counter(
            &r,
            &format!("resilience_calls_total{{{labels},outcome=success}}"),
        ) + counter(
            &r,
            &format!("resilience_calls_total{{{labels},outcome=failure}}"),
        );
        assert_eq!(calls, s.calls, "{key}");
        assert_eq!(
            counter(&r, &format!("resilience_attempts_total{{{labels}}}")),
            s.attempts
        );
        assert_eq!(
            counter(&r, &format!("resilience_retries_total{{{labels}}}")),
            s.retries
        );
        assert_eq!(
            counter(&r, &format!("resilience_rejected_total{{{labels}}}")),
            s.rejected
        );
        let waited: f64 = histogram(&r, &format!("resilience_wait_seconds{{{labels}}}"))
            .iter()
            .sum();
        assert!((waited - s.wait_seconds).abs() < 1e-9, "{key}");
    }
}
