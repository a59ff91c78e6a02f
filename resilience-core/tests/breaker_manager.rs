//! The breaker through `RetryManager`: each attempt asks it and reports to it, rejections
//! before and after real attempts, the tripping call's own error, neutral errors, timeouts,
//! status and reset, and a registry shared between managers.

mod breaker_support;

use breaker_support::{cfg, secs};
use resilience_core::{
    CircuitBreakerConfig, CircuitBreakerRegistry, CircuitOpenError, CircuitState, Classify,
    ErrorCategory, ManualClock, RetryConfig, RetryManager,
};
use std::cell::Cell;
use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

/// The caller's error type: its own failures, or the breaker's rejection.
#[derive(Debug)]
enum AppError {
    Flaky(u32),
    Invalid,
    Open(CircuitOpenError),
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?}")
    }
}

impl std::error::Error for AppError {}

impl Classify for AppError {
    fn category(&self) -> ErrorCategory {
        match self {
            AppError::Flaky(_) => ErrorCategory::Network,
            AppError::Invalid => ErrorCategory::Validation,
            AppError::Open(e) => e.category(),
        }
    }
}

impl From<CircuitOpenError> for AppError {
    fn from(e: CircuitOpenError) -> Self {
        AppError::Open(e)
    }
}

struct Setup {
    clock: ManualClock,
    registry: Arc<CircuitBreakerRegistry>,
    manager: RetryManager,
}

fn setup(breaker: CircuitBreakerConfig, max_attempts: u32) -> Setup {
    let clock = ManualClock::new();
    let registry = Arc::new(CircuitBreakerRegistry::with_clock(Arc::new(clock.clone())));
    let manager = RetryManager::builder()
        .clock(clock.clone())
        .circuit_breaker_registry(Arc::clone(&registry))
        .circuit_breaker_config(breaker)
        .default_config(RetryConfig {
            max_attempts,
            initial_delay: Duration::from_millis(100),
            jitter_factor: 0.0,
            ..RetryConfig::default()
        })
        .seed(7)
        .build()
        .unwrap();
    Setup {
        clock,
        registry,
        manager,
    }
}

impl Setup {
    fn state(&self) -> CircuitState {
        self.registry.get_breaker("svc", "op").state()
    }
}

#[test]
fn a_rejection_before_any_attempt_returns_the_open_error_converted() {
    let s = setup(cfg(1, 60.0, 1, 1), 1);
    let _ = s
        .manager
        .execute("svc", "op", || Err::<(), _>(AppError::Flaky(1)));
    assert_eq!(s.state(), CircuitState::Open);
    let ran = Cell::new(false);
    let result = s.manager.execute("svc", "op", || {
        ran.set(true);
        Ok::<(), AppError>(())
    });
    assert!(!ran.get(), "a rejected call does not run");
    match result {
        Err(AppError::Open(e)) => {
            assert_eq!((e.service(), e.operation()), ("svc", "op"));
            assert_eq!(e.remaining(), secs(60.0));
        }
        other => panic!("expected the rejection, got {other:?}"),
    }
    // io::Error callers get it as ConnectionRefused, still classified Unavailable.
    let err = s
        .manager
        .execute("svc", "op", || Ok::<(), io::Error>(()))
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
    assert!(err.get_ref().unwrap().is::<CircuitOpenError>());
    let m = s.manager.metrics();
    let op = m.get("svc", "op").unwrap();
    assert_eq!(op.rejected, 2, "R4J-01: rejections are counted");
}

#[test]
fn the_tripping_call_gets_its_own_error() {
    // PB-03 through the manager, one attempt per call.
    let s = setup(cfg(3, 60.0, 1, 1), 1);
    for i in 1..=3 {
        let result = s
            .manager
            .execute("svc", "op", || Err::<(), _>(AppError::Flaky(i)));
        assert!(
            matches!(result, Err(AppError::Flaky(n)) if n == i),
            "call {i}"
        );
    }
    assert_eq!(s.state(), CircuitState::Open);
    let result = s
        .manager
        .execute("svc", "op", || Err::<(), _>(AppError::Flaky(4)));
    assert!(matches!(result, Err(AppError::Open(_))));

    // With retries: the attempt that trips the breaker ends the call with its own error.
    let s = setup(cfg(2, 60.0, 1, 1), 5);
    let attempts = Cell::new(0);
    let result = s.manager.execute("svc", "op", || {
        attempts.set(attempts.get() + 1);
        Err::<(), _>(AppError::Flaky(attempts.get()))
    });
    assert!(matches!(result, Err(AppError::Flaky(2))), "{result:?}");
    assert_eq!(attempts.get(), 2, "no attempt after the breaker opened");
    assert_eq!(s.state(), CircuitState::Open);
}

#[test]
fn a_rejection_after_a_real_attempt_returns_the_last_real_error() {
    let s = setup(cfg(3, 60.0, 1, 1), 5);
    let attempts = Cell::new(0);
    let result = s.manager.execute("svc", "op", || {
        attempts.set(attempts.get() + 1);
        // Meanwhile, other callers trip the breaker.
        for _ in 0..3 {
            s.registry.report_failure("svc", "op", &cfg(3, 60.0, 1, 1));
        }
        Err::<(), _>(AppError::Flaky(7))
    });
    assert!(matches!(result, Err(AppError::Flaky(7))), "{result:?}");
    assert_eq!(attempts.get(), 1);
    // This call's failure arrived while open: it changed nothing (PLY-09).
    let status = s.registry.get_breaker("svc", "op").status();
    assert_eq!(
        (status.state, status.failure_count),
        (CircuitState::Open, 3)
    );
    assert_eq!(s.clock.sleeps(), [Duration::from_millis(100)]);
}

#[test]
fn non_retryable_errors_do_not_count() {
    let s = setup(cfg(1, 60.0, 1, 1), 3);
    let attempts = Cell::new(0);
    let result = s.manager.execute("svc", "op", || {
        attempts.set(attempts.get() + 1);
        Err::<(), _>(AppError::Invalid)
    });
    assert!(matches!(result, Err(AppError::Invalid)));
    assert_eq!(attempts.get(), 1);
    let status = s.registry.get_breaker("svc", "op").status();
    assert_eq!(
        (status.state, status.failure_count),
        (CircuitState::Closed, 0)
    );

    // In half-open (R4J-08): the slot is given back, the next call runs and closes it.
    let _ = s
        .manager
        .execute("svc", "op", || Err::<(), _>(AppError::Flaky(1)));
    s.clock.advance(secs(60.0));
    let _ = s
        .manager
        .execute("svc", "op", || Err::<(), _>(AppError::Invalid));
    assert_eq!(s.state(), CircuitState::HalfOpen);
    let ok = s.manager.execute("svc", "op", || Ok::<_, AppError>(5));
    assert_eq!(ok.unwrap(), 5);
    assert_eq!(s.state(), CircuitState::Closed);
}

#[derive(Debug)]
struct Wrapped(std::num::ParseIntError);

impl fmt::Display for Wrapped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("bad record")
    }
}

impl std::error::Error for Wrapped {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

#[test]
fn pb_07_error_types_excluded_along_the_chain_are_neutral() {
    let clock = ManualClock::new();
    let manager = RetryManager::builder()
        .clock(clock)
        .circuit_breaker_config(cfg(1, 60.0, 1, 1))
        .default_config(RetryConfig::default().never_retry::<std::num::ParseIntError>())
        .build()
        .unwrap();
    type BoxError = Box<dyn std::error::Error + Send + Sync>;
    let result = manager.execute("svc", "op", || -> Result<(), BoxError> {
        let parse = "x".parse::<u32>().unwrap_err();
        Err(Box::new(Wrapped(parse)))
    });
    assert!(result.is_err());
    let status = &manager.circuit_breaker_status()["svc:op"];
    assert_eq!(
        (status.state, status.failure_count),
        (CircuitState::Closed, 0)
    );
}

#[test]
fn ply_02_failures_of_different_kinds_count_toward_one_streak() {
    let s = setup(cfg(2, 60.0, 1, 1), 1);
    let _ = s.manager.execute("svc", "op", || {
        Err::<(), io::Error>(io::ErrorKind::ConnectionReset.into())
    });
    let _ = s.manager.execute("svc", "op", || {
        Err::<(), io::Error>(io::ErrorKind::TimedOut.into())
    });
    assert_eq!(s.state(), CircuitState::Open);
}

#[tokio::test(start_paused = true)]
async fn rc_04_an_attempt_that_times_out_counts_as_a_failure() {
    let s = setup(cfg(2, 60.0, 1, 1), 1);
    let polled = std::sync::atomic::AtomicUsize::new(0);
    let attempt = || async {
        polled.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        tokio::time::timeout(Duration::from_millis(5), std::future::pending::<()>())
            .await
            .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))
    };
    let first = s.manager.execute_async("svc", "op", attempt).await;
    assert_eq!(first.unwrap_err().kind(), io::ErrorKind::TimedOut);
    assert_eq!(s.state(), CircuitState::Closed);
    let second = s.manager.execute_async("svc", "op", attempt).await;
    assert_eq!(second.unwrap_err().kind(), io::ErrorKind::TimedOut);
    assert_eq!(s.state(), CircuitState::Open);
    let third = s.manager.execute_async("svc", "op", attempt).await;
    assert_eq!(third.unwrap_err().kind(), io::ErrorKind::ConnectionRefused);
    assert_eq!(
        polled.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "not polled"
    );
}

#[test]
fn status_and_reset_through_the_manager() {
    let s = setup(cfg(2, 60.0, 1, 1), 1);
    for _ in 0..2 {
        let _ = s
            .manager
            .execute("svc", "op", || Err::<(), _>(AppError::Flaky(0)));
    }
    s.clock.advance(secs(10.0));
    let status = s.manager.circuit_breaker_status();
    let json = serde_json::to_value(&status).unwrap();
    let entry = &json["svc:op"];
    assert_eq!(entry["state"], "OPEN");
    assert_eq!(entry["failure_count"], 2);
    let until = entry["open_until"].as_f64().unwrap();
    let now = resilience_core::Clock::unix_now(&s.clock).as_secs_f64();
    assert_eq!(until - now, 50.0);
    s.manager.reset_circuit_breaker("svc", "op");
    let status = &s.manager.circuit_breaker_status()["svc:op"];
    assert_eq!(
        (status.state, status.failure_count),
        (CircuitState::Closed, 0)
    );
    assert_eq!(
        s.manager
            .execute("svc", "op", || Ok::<_, AppError>(1))
            .unwrap(),
        1
    );
}

#[test]
fn managers_sharing_a_registry_share_breakers() {
    let s = setup(cfg(1, 60.0, 1, 1), 1);
    let other = RetryManager::builder()
        .clock(s.clock.clone())
        .circuit_breaker_registry(Arc::clone(&s.registry))
        .circuit_breaker_config(cfg(1, 60.0, 1, 1))
        .build()
        .unwrap();
    let _ = s
        .manager
        .execute("svc", "op", || Err::<(), _>(AppError::Flaky(0)));
    let result = other.execute("svc", "op", || Ok::<_, AppError>(()));
    assert!(matches!(result, Err(AppError::Open(_))));
    assert!(Arc::ptr_eq(
        other.circuit_breaker_registry(),
        s.manager.circuit_breaker_registry()
    ));
}

#[test]
fn without_circuit_breaker_asks_and_reports_nothing() {
    let s = setup(cfg(1, 60.0, 1, 1), 1);
    s.registry.force_open("svc", "op");
    let result: Result<u8, io::Error> = s
        .manager
        .call("svc", "op")
        .without_circuit_breaker()
        .run(|| Ok(3));
    assert_eq!(result.unwrap(), 3);
    let result: Result<u8, io::Error> = s
        .manager
        .call("svc", "op")
        .without_circuit_breaker()
        .run(|| Err(io::ErrorKind::ConnectionReset.into()));
    assert!(result.is_err());
    assert_eq!(
        s.registry.get_breaker("svc", "op").status().failure_count,
        0
    );
}
