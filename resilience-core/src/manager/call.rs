//! One call with per-call overrides: the original's `retry(...)`.

use super::{HandleRef, RetryManager};
use crate::call::{
    admit_guarded, admit_unguarded, run_async, run_blocking, CallSpec, CallState, RetryEvent,
};
use crate::policy::resolve;
use crate::{
    CircuitBreakerConfig, CircuitOpenError, Classify, ConfigError, Jitter, JudgeOk, NoJudge,
    RetryConfig,
};
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

/// Marks a [`Call`] that goes through its breaker (its error type takes `CircuitOpenError`).
#[derive(Debug)]
pub enum Guarded {}

/// Marks a [`Call`] that bypasses its breaker.
#[derive(Debug)]
pub enum Unguarded {}

/// One call with per-call overrides; see [`RetryManager::call`]. Per-call values win over
/// per-operation JSON entries, which win over the manager's defaults.
#[must_use = "a call does nothing until `run` or `run_async`"]
pub struct Call<'m, Mode, J = NoJudge> {
    pub(super) manager: &'m RetryManager,
    /// The operation's handle as found when the call was made: one without a registered
    /// breaker until a guarded run asks for it, so a call that bypasses its breaker creates none.
    pub(super) handle: HandleRef<'m>,
    pub(super) spec: CallSpec,
    /// Judges `Ok` values ([`Call::classify_ok`]).
    pub(super) judge: J,
    pub(super) mode: PhantomData<Mode>,
}

impl<'m, Mode, J> Call<'m, Mode, J> {
    /// Replaces the manager's retry settings for this call (overrides set on the call still
    /// apply on top).
    ///
    /// ```
    /// use resilience_core::{RetryConfig, RetryManager};
    /// let manager = RetryManager::new();
    /// let config = RetryConfig { max_attempts: 1, ..RetryConfig::default() };
    /// let mut attempts = 0;
    /// let _: Result<(), std::io::Error> = manager.call("api", "get").config(config).run(|| {
    ///     attempts += 1;
    ///     Err(std::io::ErrorKind::TimedOut.into())
    /// });
    /// assert_eq!(attempts, 1);
    /// ```
    pub fn config(mut self, config: RetryConfig) -> Self {
        self.spec.policy.retry_base = Some(Box::new(config));
        self
    }

    /// Attempts in all, the first included.
    ///
    /// ```
    /// use resilience_core::{ManualClock, RetryManager};
    /// use std::time::Duration;
    /// let clock = ManualClock::new();
    /// let manager = RetryManager::builder().clock(clock.clone()).seed(1).build().unwrap();
    /// let fail = || -> Result<(), std::io::Error> { Err(std::io::ErrorKind::TimedOut.into()) };
    /// let _ = manager.call("api", "get").max_attempts(4).run(fail);
    /// assert_eq!(clock.sleeps().len(), 3);
    /// ```
    pub fn max_attempts(mut self, max_attempts: u32) -> Self {
        self.spec.policy.retry.max_attempts = Some(max_attempts);
        self
    }

    /// Delay before the first retry.
    ///
    /// ```
    /// use resilience_core::{ManualClock, RetryManager};
    /// use std::time::Duration;
    /// let clock = ManualClock::new();
    /// let manager = RetryManager::builder().clock(clock.clone()).seed(1).build().unwrap();
    /// let fail = || -> Result<(), std::io::Error> { Err(std::io::ErrorKind::TimedOut.into()) };
    /// let _ = manager.call("api", "get").max_attempts(2).jitter_factor(0.0)
    ///     .initial_delay(Duration::from_secs(3)).run(fail);
    /// assert_eq!(clock.sleeps(), [Duration::from_secs(3)]);
    /// ```
    pub fn initial_delay(mut self, delay: Duration) -> Self {
        self.spec.policy.retry.initial_delay = Some(delay);
        self
    }

    /// Cap of every delay.
    ///
    /// ```
    /// use resilience_core::{ManualClock, RetryManager};
    /// use std::time::Duration;
    /// let clock = ManualClock::new();
    /// let manager = RetryManager::builder().clock(clock.clone()).seed(1).build().unwrap();
    /// let fail = || -> Result<(), std::io::Error> { Err(std::io::ErrorKind::TimedOut.into()) };
    /// let _ = manager.call("api", "get").max_attempts(5).initial_delay(Duration::from_secs(1))
    ///     .max_delay(Duration::from_secs(2)).run(fail);
    /// assert!(clock.sleeps().iter().all(|d| *d <= Duration::from_secs(2)));
    /// ```
    pub fn max_delay(mut self, delay: Duration) -> Self {
        self.spec.policy.retry.max_delay = Some(delay);
        self
    }

    /// Growth of the delay per retry.
    ///
    /// ```
    /// use resilience_core::{ManualClock, RetryManager};
    /// use std::time::Duration;
    /// let clock = ManualClock::new();
    /// let manager = RetryManager::builder().clock(clock.clone()).seed(1).build().unwrap();
    /// let fail = || -> Result<(), std::io::Error> { Err(std::io::ErrorKind::TimedOut.into()) };
    /// let _ = manager.call("api", "get").max_attempts(3).jitter_factor(0.0)
    ///     .initial_delay(Duration::from_secs(1)).backoff_factor(3.0).run(fail);
    /// assert_eq!(clock.sleeps(), [Duration::from_secs(1), Duration::from_secs(3)]);
    /// ```
    pub fn backoff_factor(mut self, factor: f64) -> Self {
        self.spec.policy.retry.backoff_factor = Some(factor);
        self
    }

    /// Spread of the proportional jitter.
    ///
    /// ```
    /// use resilience_core::{ManualClock, RetryManager};
    /// use std::time::Duration;
    /// let clock = ManualClock::new();
    /// let manager = RetryManager::builder().clock(clock.clone()).seed(1).build().unwrap();
    /// let fail = || -> Result<(), std::io::Error> { Err(std::io::ErrorKind::TimedOut.into()) };
    /// let _ = manager.call("api", "get").max_attempts(2)
    ///     .initial_delay(Duration::from_secs(1)).jitter_factor(0.5).run(fail);
    /// let slept = clock.sleeps()[0];
    /// assert!(slept >= Duration::from_secs(1) && slept <= Duration::from_millis(1500));
    /// ```
    pub fn jitter_factor(mut self, factor: f64) -> Self {
        self.spec.policy.retry.jitter_factor = Some(factor);
        self
    }

    /// The jitter strategy.
    ///
    /// ```
    /// use resilience_core::{ManualClock, RetryManager};
    /// use std::time::Duration;
    /// let clock = ManualClock::new();
    /// let manager = RetryManager::builder().clock(clock.clone()).seed(1).build().unwrap();
    /// let fail = || -> Result<(), std::io::Error> { Err(std::io::ErrorKind::TimedOut.into()) };
    /// use resilience_core::Jitter;
    /// let _ = manager.call("api", "get").max_attempts(2)
    ///     .initial_delay(Duration::from_secs(1)).jitter(Jitter::Full).run(fail);
    /// assert!(clock.sleeps()[0] <= Duration::from_secs(1));
    /// ```
    pub fn jitter(mut self, jitter: Jitter) -> Self {
        self.spec.policy.retry.jitter = Some(jitter);
        self
    }

    /// An overall deadline for the call, retries and waits included.
    ///
    /// ```
    /// use resilience_core::{ManualClock, RetryManager};
    /// use std::time::Duration;
    /// let clock = ManualClock::new();
    /// let manager = RetryManager::builder().clock(clock.clone()).seed(1).build().unwrap();
    /// let fail = || -> Result<(), std::io::Error> { Err(std::io::ErrorKind::TimedOut.into()) };
    /// let _ = manager.call("api", "get").max_attempts(10).jitter_factor(0.0)
    ///     .initial_delay(Duration::from_secs(1)).max_elapsed(Duration::from_secs(4)).run(fail);
    /// assert_eq!(clock.sleeps(), [Duration::from_secs(1), Duration::from_secs(2)]);
    /// ```
    pub fn max_elapsed(mut self, limit: Duration) -> Self {
        // The call reads the clock at its start because its own spec has a deadline; the
        // manager-wide flag stays as it was, so calls without one keep not reading it.
        self.spec.policy.retry.max_elapsed = Some(limit);
        self
    }

    /// A hook called before each retry of this call.
    ///
    /// ```
    /// use resilience_core::{ManualClock, RetryManager};
    /// use std::time::Duration;
    /// let clock = ManualClock::new();
    /// let manager = RetryManager::builder().clock(clock.clone()).seed(1).build().unwrap();
    /// let fail = || -> Result<(), std::io::Error> { Err(std::io::ErrorKind::TimedOut.into()) };
    /// use std::sync::{Arc, atomic::{AtomicU32, Ordering}};
    /// let retries = Arc::new(AtomicU32::new(0));
    /// let counter = Arc::clone(&retries);
    /// let _ = manager.call("api", "get")
    ///     .on_retry(move |_| { counter.fetch_add(1, Ordering::Relaxed); })
    ///     .run(fail);
    /// assert_eq!(retries.load(Ordering::Relaxed), 2);
    /// ```
    pub fn on_retry(mut self, hook: impl Fn(&RetryEvent<'_>) + Send + Sync + 'static) -> Self {
        self.spec.on_retry = Some(Arc::new(hook));
        self
    }

    /// Judges every `Ok` value: one that `judge` takes for a [`Failure`](crate::Failure) (an HTTP 503 that
    /// arrived as a response) is retried and counted as a failure of its category; when no
    /// retry follows (attempts exhausted, not retryable, breaker open) the call returns that
    /// last `Ok` value as it was.
    ///
    /// ```
    /// use resilience_core::{ErrorCategory, Failure, RetryManager};
    /// use std::time::Duration;
    /// let manager = RetryManager::new();
    /// let mut statuses = vec![200, 503, 503];
    /// let status: Result<u16, std::io::Error> = manager
    ///     .call("api", "get")
    ///     .initial_delay(Duration::ZERO)
    ///     .classify_ok(|s: &u16| (*s == 503).then(|| Failure::new(ErrorCategory::Unavailable)))
    ///     .run(|| Ok(statuses.pop().unwrap()));
    /// assert_eq!(status.unwrap(), 200); // 503, 503, then 200
    /// ```
    pub fn classify_ok<K>(self, judge: K) -> Call<'m, Mode, K> {
        Call {
            manager: self.manager,
            handle: self.handle,
            spec: self.spec,
            judge,
            mode: PhantomData,
        }
    }

    /// The settings this call would run with (its own values over the operation's entry over
    /// the manager's defaults), checked. `run` repairs invalid values (and logs them) instead of
    /// failing, since it can only return the caller's error type.
    ///
    /// ```
    /// use resilience_core::RetryManager;
    /// let manager = RetryManager::new();
    /// assert!(manager.call("a", "b").max_attempts(0).validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        let settings = self.manager.engine.settings();
        resolve(
            &settings,
            &self.handle.component,
            &self.handle.operation,
            &self.spec.policy,
        )
        .validate()
    }
}

impl<'m, J> Call<'m, Guarded, J> {
    /// Breaker settings for this call's breaker.
    ///
    /// ```
    /// use resilience_core::{CircuitBreakerConfig, RetryManager};
    /// let manager = RetryManager::new();
    /// let _: Result<(), std::io::Error> = manager
    ///     .call("api", "get")
    ///     .circuit_breaker_config(CircuitBreakerConfig { failure_threshold: 1, ..Default::default() })
    ///     .max_attempts(1)
    ///     .run(|| Err(std::io::ErrorKind::TimedOut.into()));
    /// assert_eq!(manager.circuit_breaker_status()["api:get"].state.as_str(), "OPEN");
    /// ```
    pub fn circuit_breaker_config(mut self, config: CircuitBreakerConfig) -> Self {
        self.spec.policy.breaker_base = Some(Box::new(config));
        self
    }

    /// Runs without the breaker: nothing is asked of it or reported to it.
    ///
    /// ```
    /// use resilience_core::RetryManager;
    /// #[derive(Debug)]
    /// struct NoConversion; // no From<CircuitOpenError> needed without a breaker
    /// impl resilience_core::Classify for NoConversion {}
    /// let manager = RetryManager::new();
    /// let got: Result<u8, NoConversion> = manager.call("api", "get").without_circuit_breaker().run(|| Ok(2));
    /// assert_eq!(got.unwrap(), 2);
    /// ```
    pub fn without_circuit_breaker(mut self) -> Call<'m, Unguarded, J> {
        self.spec.policy.use_breaker = false;
        Call {
            manager: self.manager,
            handle: self.handle,
            spec: self.spec,
            judge: self.judge,
            mode: PhantomData,
        }
    }

    /// Runs `f` with retries, through the breaker.
    pub fn run<T, E, F>(self, f: F) -> Result<T, E>
    where
        F: FnMut() -> Result<T, E>,
        E: Classify + From<CircuitOpenError>,
        J: JudgeOk<T>,
    {
        let handle = self.manager.guarded(self.handle, &self.spec);
        let call = CallState::new(&self.manager.engine, &handle, &self.spec);
        run_blocking(call, admit_guarded, &self.judge, f)
    }

    /// Runs the futures made by `f` with retries, through the breaker.
    pub async fn run_async<T, E, F, Fut>(self, f: F) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Classify + From<CircuitOpenError>,
        J: JudgeOk<T>,
    {
        let handle = self.manager.guarded(self.handle, &self.spec);
        let call = CallState::new(&self.manager.engine, &handle, &self.spec);
        run_async(call, admit_guarded, &self.judge, f).await
    }
}

impl<J> Call<'_, Unguarded, J> {
    /// Runs `f` with retries, without a breaker.
    pub fn run<T, E, F>(self, f: F) -> Result<T, E>
    where
        F: FnMut() -> Result<T, E>,
        E: Classify,
        J: JudgeOk<T>,
    {
        let call = CallState::new(&self.manager.engine, &self.handle, &self.spec);
        run_blocking(call, admit_unguarded, &self.judge, f)
    }

    /// Runs the futures made by `f` with retries, without a breaker.
    pub async fn run_async<T, E, F, Fut>(self, f: F) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Classify,
        J: JudgeOk<T>,
    {
        let call = CallState::new(&self.manager.engine, &self.handle, &self.spec);
        run_async(call, admit_unguarded, &self.judge, f).await
    }
}
