//! One breaker's state machine.
//!
//! The hot path reads one atomic: while the breaker is closed with no failure counted, admitting
//! a call and recording its success touch no shared memory for writing and read no clock.
//! Everything else takes the breaker's mutex.

use super::{CircuitBreakerConfig, CircuitBreakerStatus, CircuitOpenError, CircuitState};
use crate::Clock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// One circuit breaker, for one (service, operation). Get it from a
/// [`CircuitBreakerRegistry`](crate::CircuitBreakerRegistry).
///
/// ```
/// use resilience_core::{CircuitBreakerConfig, CircuitBreakerRegistry, CircuitState};
/// let registry = CircuitBreakerRegistry::new();
/// let breaker = registry.get_breaker("api", "fetch");
/// breaker.configure(&CircuitBreakerConfig { failure_threshold: 1, ..Default::default() });
/// breaker.try_acquire().unwrap().record_failure();
/// assert_eq!(breaker.state(), CircuitState::Open);
/// assert!(breaker.try_acquire().is_err());
/// ```
#[derive(Debug)]
pub struct CircuitBreaker {
    service: String,
    operation: String,
    /// True while closed with no failure counted: the one thing the hot path reads.
    clean: AtomicBool,
    clock: Arc<dyn Clock>,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: CircuitBreakerConfig,
    state: CircuitState,
    failure_count: u32,
    success_count: u32,
    /// Monotonic clock reading at which an open breaker turns half-open.
    open_until: Duration,
    current_timeout: Duration,
    half_open_calls: u32,
}

impl CircuitBreaker {
    pub(crate) fn new(service: &str, operation: &str, clock: Arc<dyn Clock>) -> Self {
        let config = CircuitBreakerConfig::default();
        CircuitBreaker {
            service: service.to_owned(),
            operation: operation.to_owned(),
            clean: AtomicBool::new(true),
            clock,
            inner: Mutex::new(Inner {
                current_timeout: config.reset_timeout,
                config,
                state: CircuitState::Closed,
                failure_count: 0,
                success_count: 0,
                open_until: Duration::ZERO,
                half_open_calls: 0,
            }),
        }
    }

    /// The service this breaker guards.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The operation this breaker guards.
    pub fn operation(&self) -> &str {
        &self.operation
    }

    /// Sets the thresholds and timeouts used from now on.
    pub fn configure(&self, config: &CircuitBreakerConfig) {
        let mut inner = self.lock();
        if inner.config != *config {
            if inner.state == CircuitState::Closed
                && inner.current_timeout == inner.config.reset_timeout
            {
                inner.current_timeout = config.reset_timeout;
            }
            inner.config = config.clone();
        }
    }

    /// Asks to run one call. `Err` means the call must not run.
    #[inline]
    pub fn try_acquire(&self) -> Result<BreakerPermit<'_>, CircuitOpenError> {
        if self.clean.load(Ordering::Acquire) {
            return Ok(BreakerPermit {
                breaker: self,
                kind: PermitKind::Closed,
            });
        }
        self.try_acquire_slow()
    }

    #[cold]
    fn try_acquire_slow(&self) -> Result<BreakerPermit<'_>, CircuitOpenError> {
        let now = self.clock.now();
        let mut inner = self.lock();
        self.advance(&mut inner, now);
        match inner.state {
            CircuitState::Closed => Ok(BreakerPermit {
                breaker: self,
                kind: PermitKind::Closed,
            }),
            CircuitState::Open => Err(self.open_error(&inner, now)),
            CircuitState::HalfOpen => {
                if inner.half_open_calls < inner.config.half_open_max_calls {
                    inner.half_open_calls += 1;
                    Ok(BreakerPermit {
                        breaker: self,
                        kind: PermitKind::HalfOpen,
                    })
                } else {
                    Err(self.open_error(&inner, now))
                }
            }
        }
    }

    /// The state as of now.
    pub fn state(&self) -> CircuitState {
        self.status().state
    }

    /// The state and counters as of now.
    pub fn status(&self) -> CircuitBreakerStatus {
        let now = self.clock.now();
        let unix_now = self.clock.unix_now();
        let inner = self.lock();
        let state = if inner.state == CircuitState::Open && now >= inner.open_until {
            CircuitState::HalfOpen
        } else {
            inner.state
        };
        CircuitBreakerStatus {
            state,
            failure_count: inner.failure_count,
            success_count: inner.success_count,
            open_until: (state == CircuitState::Open)
                .then(|| (unix_now + inner.open_until.saturating_sub(now)).as_secs_f64()),
            current_timeout: inner.current_timeout.as_secs_f64(),
            half_open_calls: inner.half_open_calls,
        }
    }

    /// Closes the breaker and clears its counters and open-timeout ladder.
    pub fn reset(&self) {
        let mut inner = self.lock();
        self.transition(&mut inner, CircuitState::Closed);
        inner.current_timeout = inner.config.reset_timeout;
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn advance(&self, inner: &mut Inner, now: Duration) {
        if inner.state == CircuitState::Open && now >= inner.open_until {
            self.transition(inner, CircuitState::HalfOpen);
        }
    }

    fn open_error(&self, inner: &Inner, now: Duration) -> CircuitOpenError {
        let remaining = if inner.state == CircuitState::Open {
            inner.open_until.saturating_sub(now)
        } else {
            Duration::ZERO
        };
        let until = (self.clock.unix_now() + remaining).as_secs_f64();
        CircuitOpenError::new(
            self.service.clone(),
            self.operation.clone(),
            remaining,
            Some(until),
        )
    }

    fn transition(&self, inner: &mut Inner, to: CircuitState) {
        inner.state = to;
        inner.failure_count = 0;
        inner.success_count = 0;
        inner.half_open_calls = 0;
        self.clean
            .store(to == CircuitState::Closed, Ordering::Release);
        if to == CircuitState::Open {
            let now = self.clock.now();
            inner.open_until = now.saturating_add(inner.current_timeout);
        }
    }

    fn on_success(&self, kind: PermitKind) {
        if kind == PermitKind::Closed && self.clean.load(Ordering::Acquire) {
            return;
        }
        let mut inner = self.lock();
        match (inner.state, kind) {
            (CircuitState::Closed, PermitKind::Closed) => {
                inner.failure_count = 0;
                self.clean.store(true, Ordering::Release);
            }
            (CircuitState::HalfOpen, PermitKind::HalfOpen) => {
                inner.half_open_calls = inner.half_open_calls.saturating_sub(1);
                inner.success_count += 1;
                if inner.success_count >= inner.config.success_threshold {
                    self.transition(&mut inner, CircuitState::Closed);
                    inner.current_timeout = inner.config.reset_timeout;
                }
            }
            _ => {}
        }
    }

    fn on_failure(&self, kind: PermitKind) {
        let mut inner = self.lock();
        match (inner.state, kind) {
            (CircuitState::Closed, PermitKind::Closed) => {
                inner.failure_count += 1;
                self.clean.store(false, Ordering::Release);
                if inner.failure_count >= inner.config.failure_threshold {
                    inner.current_timeout = inner.config.reset_timeout;
                    self.transition(&mut inner, CircuitState::Open);
                }
            }
            (CircuitState::HalfOpen, PermitKind::HalfOpen) => {
                let grown = inner.current_timeout.as_secs_f64()
                    * inner.config.open_timeout_increment_factor;
                let cap = inner.config.max_open_timeout;
                inner.current_timeout =
                    crate::backoff::duration_from_secs(grown).map_or(cap, |d| d.min(cap));
                self.transition(&mut inner, CircuitState::Open);
            }
            _ => {}
        }
    }

    fn on_release(&self, kind: PermitKind) {
        if kind == PermitKind::HalfOpen {
            let mut inner = self.lock();
            if inner.state == CircuitState::HalfOpen {
                inner.half_open_calls = inner.half_open_calls.saturating_sub(1);
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PermitKind {
    Closed,
    HalfOpen,
    Spent,
}

/// Leave to run one call through a breaker. Record how the call ended with
/// [`record_success`](Self::record_success), [`record_failure`](Self::record_failure) or
/// [`release`](Self::release). Dropped without any of them (an async attempt cancelled
/// mid-flight) it is given back without effect; dropped while the thread panics it counts as a
/// failure. Either way a half-open slot is never leaked.
#[derive(Debug)]
#[must_use = "a permit records how the call ended"]
pub struct BreakerPermit<'a> {
    breaker: &'a CircuitBreaker,
    kind: PermitKind,
}

impl BreakerPermit<'_> {
    /// The call succeeded.
    #[inline]
    pub fn record_success(mut self) {
        let kind = std::mem::replace(&mut self.kind, PermitKind::Spent);
        self.breaker.on_success(kind);
    }

    /// The call failed with a retryable (transient) error.
    pub fn record_failure(mut self) {
        let kind = std::mem::replace(&mut self.kind, PermitKind::Spent);
        self.breaker.on_failure(kind);
    }

    /// The call ended in a way that says nothing about the service (a non-retryable error):
    /// neither success nor failure.
    pub fn release(mut self) {
        let kind = std::mem::replace(&mut self.kind, PermitKind::Spent);
        self.breaker.on_release(kind);
    }
}

impl Drop for BreakerPermit<'_> {
    fn drop(&mut self) {
        let kind = std::mem::replace(&mut self.kind, PermitKind::Spent);
        if kind == PermitKind::Spent {
            return;
        }
        if std::thread::panicking() {
            self.breaker.on_failure(kind);
        } else {
            self.breaker.on_release(kind);
        }
    }
}
