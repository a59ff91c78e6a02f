//! `on_retry` hooks, on the manager and per call: what they are told, and in which order.

use resilience_core::{ManualClock, RetryConfig, RetryManager};
use std::io::{Error, ErrorKind};
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Seen = Arc<Mutex<Vec<String>>>;

fn recorder(seen: &Seen, who: &'static str) -> impl Fn(&resilience_core::RetryEvent<'_>) {
    let seen = Arc::clone(seen);
    move |e| {
        seen.lock().unwrap().push(format!(
            "{who} {}:{} attempt {} delay {:?} {} {}",
            e.component,
            e.operation,
            e.attempt,
            e.delay,
            e.category,
            e.error.map_or("-".into(), |e| e.to_string())
        ))
    }
}

fn manager_with_hook(seen: &Seen) -> RetryManager {
    RetryManager::builder()
        .clock(ManualClock::new())
        .seed(1)
        .default_config(RetryConfig {
            jitter_factor: 0.0,
            ..RetryConfig::default()
        })
        .on_retry(recorder(seen, "manager"))
        .build()
        .unwrap()
}

fn fails_twice() -> impl FnMut() -> Result<(), Error> {
    let mut n = 0;
    move || {
        n += 1;
        if n <= 2 {
            Err(Error::new(ErrorKind::ConnectionReset, format!("reset {n}")))
        } else {
            Ok(())
        }
    }
}

#[test]
fn the_managers_hook_sees_every_retry_of_every_operation() {
    let seen = Seen::default();
    let m = manager_with_hook(&seen);
    m.execute("svc", "op", fails_twice()).unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        [
            "manager svc:op attempt 1 delay 100ms network reset 1",
            "manager svc:op attempt 2 delay 200ms network reset 2",
        ]
    );
}

#[test]
fn a_calls_hook_runs_after_the_managers_and_only_for_that_call() {
    let seen = Seen::default();
    let m = manager_with_hook(&seen);
    m.call("svc", "op")
        .on_retry(recorder(&seen, "call"))
        .run(fails_twice())
        .unwrap();
    m.execute("svc", "other", fails_twice()).unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        [
            "manager svc:op attempt 1 delay 100ms network reset 1",
            "call svc:op attempt 1 delay 100ms network reset 1",
            "manager svc:op attempt 2 delay 200ms network reset 2",
            "call svc:op attempt 2 delay 200ms network reset 2",
            "manager svc:other attempt 1 delay 100ms network reset 1",
            "manager svc:other attempt 2 delay 200ms network reset 2",
        ]
    );
}

#[test]
fn a_per_call_hook_works_without_a_managers_hook() {
    let seen = Seen::default();
    let m = RetryManager::builder()
        .clock(ManualClock::new())
        .seed(1)
        .build()
        .unwrap();
    let err = m
        .call("svc", "op")
        .max_attempts(2)
        .initial_delay(Duration::ZERO)
        .on_retry(recorder(&seen, "call"))
        .run(|| Err::<(), _>(Error::new(ErrorKind::TimedOut, "slow")))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    // Two attempts: one retry, none after the last attempt.
    assert_eq!(
        *seen.lock().unwrap(),
        ["call svc:op attempt 1 delay 0ns timeout slow"]
    );
}

#[test]
fn no_hook_runs_without_a_retry() {
    let seen = Seen::default();
    let m = manager_with_hook(&seen);
    m.call("svc", "op")
        .on_retry(recorder(&seen, "call"))
        .run(|| Ok::<_, Error>(()))
        .unwrap();
    let _ = m
        .call("svc", "op")
        .on_retry(recorder(&seen, "call"))
        .run(|| Err::<(), _>(Error::from(ErrorKind::InvalidData)));
    assert!(seen.lock().unwrap().is_empty());
}
