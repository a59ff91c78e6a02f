//! The harness of the breaker tests, in the vocabulary of PEER-SCENARIOS.md: a manual clock,
//! `ok` / `fail` / `biz` calls through one breaker, an execution counter and a log of state
//! changes.
#![allow(dead_code)]

use resilience_core::{
    CircuitBreaker, CircuitBreakerConfig, CircuitBreakerRegistry, CircuitState, ManualClock,
};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How a call went: it ran (and ended as its op says), or the breaker refused it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    Ran,
    Rejected,
}

/// What the op of a call does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Succeeds.
    Ok,
    /// Fails with a retryable error (the driver records a failure).
    Fail,
    /// Fails with a non-retryable error (the driver releases the permit: neutral).
    Biz,
}

pub fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// `F`, `T` (seconds), `H`, `S`; k = 1.5 and M = 300 s as in the defaults.
pub fn cfg(f: u32, t: f64, h: u32, s: u32) -> CircuitBreakerConfig {
    CircuitBreakerConfig {
        failure_threshold: f,
        reset_timeout: secs(t),
        half_open_max_calls: h,
        success_threshold: s,
        ..CircuitBreakerConfig::default()
    }
}

pub type Changes = Arc<Mutex<Vec<(CircuitState, CircuitState)>>>;

pub struct Harness {
    pub config: CircuitBreakerConfig,
    pub clock: ManualClock,
    pub registry: Arc<CircuitBreakerRegistry>,
    pub breaker: Arc<CircuitBreaker>,
    pub execs: AtomicUsize,
    pub changes: Changes,
}

/// A listener that logs every change of every breaker of `registry`.
pub fn record_changes(registry: &CircuitBreakerRegistry) -> Changes {
    let changes: Changes = Arc::default();
    let log = Arc::clone(&changes);
    registry.on_state_change(move |c| log.lock().unwrap().push((c.from, c.to)));
    changes
}

impl Harness {
    pub fn new(config: CircuitBreakerConfig) -> Harness {
        let clock = ManualClock::new();
        let registry = Arc::new(CircuitBreakerRegistry::with_clock(Arc::new(clock.clone())));
        Self::with_registry(clock, registry, config)
    }

    pub fn with_registry(
        clock: ManualClock,
        registry: Arc<CircuitBreakerRegistry>,
        config: CircuitBreakerConfig,
    ) -> Harness {
        let changes = record_changes(&registry);
        let breaker = registry.get_breaker("svc", "op");
        breaker.configure(&config);
        Harness {
            config,
            clock,
            registry,
            breaker,
            execs: AtomicUsize::new(0),
            changes,
        }
    }

    pub fn call(&self, op: Op) -> Call {
        match self.breaker.try_acquire() {
            Err(_) => Call::Rejected,
            Ok(permit) => {
                self.execs.fetch_add(1, Ordering::SeqCst);
                match op {
                    Op::Ok => permit.record_success(),
                    Op::Fail => permit.record_failure(),
                    Op::Biz => permit.release(),
                }
                Call::Ran
            }
        }
    }

    pub fn ok(&self) -> Call {
        self.call(Op::Ok)
    }

    pub fn fail(&self) -> Call {
        self.call(Op::Fail)
    }

    pub fn biz(&self) -> Call {
        self.call(Op::Biz)
    }

    /// `n` failing calls, each of which must run.
    pub fn fail_n(&self, n: usize) {
        for i in 0..n {
            assert_eq!(
                self.fail(),
                Call::Ran,
                "failing call {} of {n} was rejected",
                i + 1
            );
        }
    }

    pub fn advance(&self, s: f64) {
        self.clock.advance(secs(s));
    }

    pub fn advance_by(&self, d: Duration) {
        self.clock.advance(d);
    }

    pub fn state(&self) -> CircuitState {
        self.breaker.state()
    }

    pub fn execs(&self) -> usize {
        self.execs.load(Ordering::SeqCst)
    }

    pub fn failure_count(&self) -> u32 {
        self.breaker.status().failure_count
    }

    pub fn timeout(&self) -> f64 {
        self.breaker.status().current_timeout
    }

    pub fn changes(&self) -> Vec<(CircuitState, CircuitState)> {
        self.changes.lock().unwrap().clone()
    }

    /// How many times the breaker opened.
    pub fn opens(&self) -> usize {
        self.changes()
            .iter()
            .filter(|(_, to)| *to == CircuitState::Open)
            .count()
    }

    /// Asserts the breaker is open for exactly `d` more: rejected 1 ms before, admitted at `d`
    /// (the admitted call is left in flight, as `hold`, and dropped: neutral).
    pub fn assert_open_for(&self, d: Duration) {
        let before = d - Duration::from_millis(1);
        self.advance_by(before);
        assert!(
            self.breaker.try_acquire().is_err(),
            "admitted 1 ms before the open timeout of {d:?}"
        );
        self.advance_by(Duration::from_millis(1));
        assert!(
            self.breaker.try_acquire().is_ok(),
            "rejected at exactly the open timeout of {d:?}"
        );
    }
}

/// One `tracing` event, as a capturing subscriber saw it.
#[derive(Clone, Debug)]
pub struct Captured {
    pub level: tracing::Level,
    pub fields: std::collections::BTreeMap<String, String>,
}

/// A subscriber that keeps every event, to assert what the runtime logs.
#[derive(Clone, Default)]
pub struct Capture {
    pub events: Arc<Mutex<Vec<Captured>>>,
}

impl Capture {
    pub fn events(&self) -> Vec<Captured> {
        self.events.lock().unwrap().clone()
    }

    /// Runs `f` with this subscriber as the thread's default.
    pub fn during<R>(&self, f: impl FnOnce() -> R) -> R {
        tracing::subscriber::with_default(self.clone(), f)
    }
}

struct Fields(std::collections::BTreeMap<String, String>);

impl tracing::field::Visit for Fields {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut fields = Fields(Default::default());
        event.record(&mut fields);
        self.events.lock().unwrap().push(Captured {
            level: *event.metadata().level(),
            fields: fields.0,
        });
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}
