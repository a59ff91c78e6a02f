//! The `tracing` events of a call carry the documented field names (docs/metrics.md).

use resilience_core::{ManualClock, RetryConfig, RetryManager};
use std::collections::BTreeMap;
use std::io::{Error, ErrorKind};
use std::sync::{Arc, Mutex};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

/// One captured event: its level and its fields (the message under "message").
#[derive(Debug)]
struct Captured {
    level: Level,
    fields: BTreeMap<String, String>,
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<Captured>>>);

impl<S: Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        struct Fields(BTreeMap<String, String>);
        impl Visit for Fields {
            fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
                self.0.insert(field.name().to_owned(), format!("{value:?}"));
            }
            fn record_str(&mut self, field: &Field, value: &str) {
                self.0.insert(field.name().to_owned(), value.to_owned());
            }
        }
        let mut fields = Fields(BTreeMap::new());
        event.record(&mut fields);
        self.0.lock().unwrap().push(Captured {
            level: *event.metadata().level(),
            fields: fields.0,
        });
    }
}

fn capture(f: impl FnOnce()) -> Vec<Captured> {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    tracing::subscriber::with_default(subscriber, f);
    let events = std::mem::take(&mut *capture.0.lock().unwrap());
    events
}

fn manager() -> RetryManager {
    RetryManager::builder()
        .clock(ManualClock::new())
        .seed(1)
        .default_config(RetryConfig {
            jitter_factor: 0.0,
            ..RetryConfig::default()
        })
        .build()
        .unwrap()
}

fn fields(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn a_retry_warns_with_component_operation_attempt_delay_category_error() {
    let m = manager();
    let mut n = 0;
    let events = capture(|| {
        m.execute("svc", "op", || {
            n += 1;
            if n < 3 {
                Err(Error::new(ErrorKind::ConnectionReset, "peer reset"))
            } else {
                Ok(())
            }
        })
        .unwrap();
    });
    let retries: Vec<_> = events.iter().filter(|e| e.level == Level::WARN).collect();
    assert_eq!(retries.len(), 2, "{events:?}");
    assert_eq!(
        retries[1].fields,
        fields(&[
            ("component", "svc"),
            ("operation", "op"),
            ("attempt", "2"),
            ("delay_ms", "200"),
            ("category", "network"),
            ("error", "peer reset"),
            ("message", "attempt failed; retrying"),
        ])
    );
    let done = events.last().unwrap();
    assert_eq!(done.level, Level::DEBUG);
    assert_eq!(
        done.fields,
        fields(&[
            ("component", "svc"),
            ("operation", "op"),
            ("attempts", "3"),
            ("message", "succeeded after retries"),
        ])
    );
}

#[test]
fn giving_up_is_one_event_with_the_attempts_made() {
    let m = manager();
    let events = capture(|| {
        let _ = m.execute("svc", "op", || {
            Err::<(), _>(Error::new(ErrorKind::TimedOut, "too slow"))
        });
        let _ = m.execute("svc", "op", || {
            Err::<(), _>(Error::new(ErrorKind::InvalidData, "bad row"))
        });
    });
    let last_two: Vec<_> = events.iter().rev().take(2).rev().collect();
    assert_eq!(last_two[0].level, Level::WARN);
    assert_eq!(
        last_two[0].fields,
        fields(&[
            ("component", "svc"),
            ("operation", "op"),
            ("attempts", "3"),
            ("category", "timeout"),
            ("error", "too slow"),
            ("message", "attempts exhausted; giving up"),
        ])
    );
    assert_eq!(last_two[1].level, Level::DEBUG);
    assert_eq!(
        last_two[1].fields,
        fields(&[
            ("component", "svc"),
            ("operation", "op"),
            ("attempts", "1"),
            ("category", "validation"),
            ("error", "bad row"),
            ("message", "error is not retryable; giving up"),
        ])
    );
}

#[test]
fn a_call_that_succeeds_at_once_emits_nothing() {
    let m = manager();
    let events = capture(|| {
        m.execute("svc", "op", || Ok::<_, Error>(())).unwrap();
    });
    assert!(events.is_empty(), "{events:?}");
}
