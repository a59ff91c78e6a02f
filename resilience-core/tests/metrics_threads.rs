//! Counting from many threads at once loses nothing: N threads × M calls give exactly N·M.

use resilience_core::{ManualClock, RetryManager};
use std::io::{Error, ErrorKind};
use std::time::Duration;

const THREADS: u64 = 8;
const CALLS: u64 = 20_000;

fn manager() -> RetryManager {
    RetryManager::builder()
        .clock(ManualClock::new())
        .seed(1)
        .build()
        .unwrap()
}

#[test]
fn n_threads_making_m_successful_calls_give_exactly_n_times_m() {
    let m = manager();
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                for i in 0..CALLS {
                    let r: Result<u64, Error> = m.execute("svc", "op", || Ok(i));
                    assert_eq!(r.unwrap(), i);
                }
            });
        }
    });
    let s = m.metrics_for("svc", "op").unwrap();
    assert_eq!(s.calls, THREADS * CALLS);
    assert_eq!(s.successes, THREADS * CALLS);
    assert_eq!(s.attempts, THREADS * CALLS);
    assert_eq!(s.attempts_histogram[0], THREADS * CALLS);
    assert_eq!((s.failures, s.retries), (0, 0));
}

#[test]
fn n_threads_mixing_retries_and_failures_give_exact_figures() {
    let m = manager();
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                for i in 0..CALLS {
                    // Every 10th call fails once (network) and succeeds on its retry; every
                    // 100th fails for good (validation).
                    let mut attempt = 0;
                    let _: Result<(), Error> = m
                        .call("svc", "mixed")
                        .initial_delay(Duration::ZERO)
                        .run(|| {
                            attempt += 1;
                            if i % 100 == 0 {
                                Err(ErrorKind::InvalidData.into())
                            } else if i % 10 == 0 && attempt == 1 {
                                Err(ErrorKind::ConnectionReset.into())
                            } else {
                                Ok(())
                            }
                        });
                }
            });
        }
    });
    let failing = THREADS * CALLS / 100;
    let retried = THREADS * CALLS / 10 - failing;
    let s = m.metrics_for("svc", "mixed").unwrap();
    assert_eq!(s.calls, THREADS * CALLS);
    assert_eq!(s.failures, failing);
    assert_eq!(s.non_retryable, failing);
    assert_eq!(s.successes, THREADS * CALLS - failing);
    assert_eq!(s.retries, retried);
    assert_eq!(s.attempts, THREADS * CALLS + retried);
    assert_eq!(s.attempts_histogram[1], retried);
    assert_eq!(s.failures_by_category["network"], retried);
    assert_eq!(s.failures_by_category["validation"], failing);
}
