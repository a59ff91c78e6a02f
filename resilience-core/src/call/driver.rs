//! The attempt driver: every decision of a retried call (breaker permit, classification, delay,
//! deadline, metrics, events) in one place, shared by the manager's loops and by the code
//! `#[retry]` generates. The loops around it only run the body and sleep. It learns its policy
//! from the engine, never from the manager above it.
//!
//! The names of the `tracing` fields below (component, operation, attempt, attempts, delay_ms,
//! category, error) are a documented interface (`docs/metrics.md`): logs are filtered on them.

use super::handle::{OperationHandle, Policy};
use super::{CallSpec, Engine, RetryEvent};
use crate::breaker::BreakerPermit;
use crate::{CircuitOpenError, Classify, ErrorCategory, JudgeOk};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// What to do after a failed attempt.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Wait this long, then try again.
    Retry(Duration),
    /// Return the error.
    Stop,
}

/// Leave to run one attempt: the breaker's permit, or nothing when the call bypasses it.
///
/// A blocking call keeps its permit in registers and hands it over by value
/// ([`CallState::succeeded`], [`CallState::failed`]). An async call keeps it in its future,
/// and records its outcome where it is, through `&mut` ([`CallState::succeeded_in_place`],
/// [`CallState::failed_in_place`]): moving it out of the future copies its words with one
/// 16-byte load right after they were written as two 8-byte stores, a load the store buffer
/// cannot serve and that waits for them (4 to 5 ns of a successful async call here). Taking
/// the address of a blocking call's permit, the other way round, keeps it in memory.
#[doc(hidden)]
#[derive(Debug)]
#[must_use]
pub struct Permit<'h>(Option<BreakerPermit<'h>>);

/// A call site's retry policy, resolved at the site's first failure and kept with the settings
/// generation it was resolved at, so that later failures read it through a pointer: no lock, no
/// reference count, no copy. Once the settings change, the site's calls resolve theirs through
/// the handle's cache as other calls do.
#[doc(hidden)]
#[derive(Debug, Default)]
pub struct PolicySlot(OnceLock<(u64, Policy)>);

impl PolicySlot {
    /// An empty slot, for a `static` call site.
    pub const fn new() -> Self {
        PolicySlot(OnceLock::new())
    }
}

/// The policy of a call: not yet needed (with the call site's slot, if any), or resolved.
enum PolicyRef<'h> {
    Unresolved(Option<&'h PolicySlot>),
    Site(&'h Policy),
    Shared(Arc<Policy>),
}

/// A resolved policy, borrowed from the call site's slot or shared with the handle's cache.
enum Held<'h> {
    Site(&'h Policy),
    Shared(Arc<Policy>),
}

impl std::ops::Deref for Held<'_> {
    type Target = Policy;
    #[inline]
    fn deref(&self) -> &Policy {
        match self {
            Held::Site(p) => p,
            Held::Shared(p) => p,
        }
    }
}

/// The state of one retried call.
#[doc(hidden)]
pub struct CallState<'h> {
    engine: &'h Engine,
    handle: &'h OperationHandle,
    spec: &'h CallSpec,
    policy: PolicyRef<'h>,
    attempts: u32,
    /// Whether the call's end is in the metrics; a call dropped while unwinding without it
    /// ended in a panic (of an attempt, or of a hook), which the metrics count too.
    ended: bool,
    /// Whether an attempt is running (admitted, its result not yet reported).
    in_attempt: bool,
    started: Option<Duration>,
    previous_delay: Option<Duration>,
}

impl<'h> CallState<'h> {
    /// Starts a call. Reads the clock only when some configuration has an overall deadline
    /// (the manager's, or this call site's own `max_elapsed`).
    #[inline(always)]
    pub fn new(engine: &'h Engine, handle: &'h OperationHandle, spec: &'h CallSpec) -> Self {
        let started = (engine.has_deadlines() || spec.policy.retry.max_elapsed.is_some())
            .then(|| engine.clock().now());
        // Every call pays into its component's retry budget, if it has one (Finagle deposits
        // per request): an atomic add on a time that needs no clock read. Here rather than at
        // the first attempt, where the check cost async calls several nanoseconds.
        if handle.budget.is_on() {
            Self::deposit(engine, handle);
        }
        CallState {
            engine,
            handle,
            spec,
            policy: PolicyRef::Unresolved(None),
            attempts: 0,
            ended: false,
            in_attempt: false,
            started,
            previous_delay: None,
        }
    }

    /// The call resolves its policy through `slot`, its call site's (see [`PolicySlot`]).
    #[inline(always)]
    pub fn with_policy_slot(mut self, slot: &'h PolicySlot) -> Self {
        self.policy = PolicyRef::Unresolved(Some(slot));
        self
    }

    /// The call's policy, resolved at its first failure.
    #[inline]
    fn policy(&mut self) -> Held<'h> {
        match self.policy {
            PolicyRef::Site(policy) => Held::Site(policy),
            // The site's slot, filled by an earlier call at this settings generation: each
            // call's first failure reads it here, without the slow path's call.
            PolicyRef::Unresolved(Some(slot)) => match slot.0.get() {
                Some((at, policy)) if *at == self.engine.generation() => {
                    self.policy = PolicyRef::Site(policy);
                    Held::Site(policy)
                }
                _ => self.policy_slow(),
            },
            _ => self.policy_slow(),
        }
    }

    fn policy_slow(&mut self) -> Held<'h> {
        match &self.policy {
            PolicyRef::Site(policy) => Held::Site(policy),
            PolicyRef::Shared(policy) => Held::Shared(Arc::clone(policy)),
            PolicyRef::Unresolved(slot) => {
                let (engine, handle, spec) = (self.engine, self.handle, self.spec);
                let generation = engine.generation();
                if let Some(slot) = slot {
                    let (at, policy) = slot
                        .0
                        .get_or_init(|| (generation, engine.resolve(handle, spec)));
                    if *at == generation {
                        self.policy = PolicyRef::Site(policy);
                        return Held::Site(policy);
                    }
                }
                let policy = engine.policy(handle, spec);
                self.policy = PolicyRef::Shared(Arc::clone(&policy));
                Held::Shared(policy)
            }
        }
    }

    /// Asks the breaker for the next attempt. `Err` means the attempt must not run.
    #[inline(always)]
    pub fn admit(&mut self) -> Result<Permit<'h>, CircuitOpenError> {
        let permit = if self.spec.policy.use_breaker {
            Some(self.handle.breaker.try_acquire()?)
        } else {
            None
        };
        self.attempts += 1;
        self.in_attempt = true;
        Ok(Permit(permit))
    }

    /// Asks the breaker for the next attempt of a call known to go through it
    /// (`CallSpec::use_breaker`, which a `#[retry]` site with `circuit_breaker` fixes at
    /// compile time): [`admit`](Self::admit) without reading the spec.
    #[inline(always)]
    pub fn admit_breaker(&mut self) -> Result<Permit<'h>, CircuitOpenError> {
        debug_assert!(self.spec.policy.use_breaker);
        let permit = self.handle.breaker.try_acquire()?;
        self.attempts += 1;
        self.in_attempt = true;
        Ok(Permit(Some(permit)))
    }

    /// Starts an attempt of a call that bypasses the breaker (`CallSpec::use_breaker` false):
    /// always admitted, so the caller's error type needs no `From<CircuitOpenError>`.
    #[inline]
    pub fn admit_unguarded(&mut self) -> Permit<'h> {
        debug_assert!(!self.spec.policy.use_breaker);
        self.attempts += 1;
        self.in_attempt = true;
        Permit(None)
    }

    // Out of line: a component with a budget pays a call here, one without pays one load.
    #[inline(never)]
    fn deposit(engine: &Engine, handle: &OperationHandle) {
        if let Some(account) = handle.budget.account() {
            account.deposit(engine.clock().coarse_now());
        }
    }

    /// The attempt returned `Ok`: the call ends.
    #[inline(always)]
    pub fn succeeded(&mut self, permit: Permit<'h>) {
        if let Some(p) = permit.0 {
            p.record_success();
        }
        self.ended_in_success();
    }

    /// [`succeeded`](Self::succeeded), for a permit kept in memory (see [`Permit`]).
    #[inline(always)]
    pub fn succeeded_in_place(&mut self, permit: &mut Permit<'h>) {
        if let Some(p) = &mut permit.0 {
            p.record_success_in_place();
        }
        self.ended_in_success();
    }

    #[inline(always)]
    fn ended_in_success(&mut self) {
        self.handle.metrics.record_success(self.attempts);
        self.ended = true;
        if self.attempts > 1 {
            self.succeeded_after_retries();
        }
    }

    #[cold]
    fn succeeded_after_retries(&self) {
        tracing::debug!(
            component = %self.handle.component,
            operation = %self.handle.operation,
            attempts = self.attempts,
            "succeeded after retries"
        );
    }

    /// The attempt returned `error`: reports it to the breaker and the metrics, and decides
    /// whether and when to try again. The one retry decision, for every loop.
    // Out of line, so the success path stays small, but not `#[cold]`: during an outage every
    // call takes this path, and a cold function's callees are not inlined into it.
    #[inline(never)]
    pub fn failed<E: Classify + ?Sized>(&mut self, mut permit: Permit<'h>, error: &E) -> Next {
        // The permit's words are read where the caller put them, one load each (`mut` on the
        // argument: a `let mut` of it would be a copy, made with a 16-byte load).
        self.attempt_failed(&mut permit, error)
    }

    /// [`failed`](Self::failed), for a permit kept in memory (see [`Permit`]).
    #[inline(never)]
    pub fn failed_in_place<E: Classify + ?Sized>(
        &mut self,
        permit: &mut Permit<'h>,
        error: &E,
    ) -> Next {
        self.attempt_failed(permit, error)
    }

    #[inline(always)]
    fn attempt_failed<E: Classify + ?Sized>(&mut self, permit: &mut Permit<'h>, error: &E) -> Next {
        let engine = self.engine;
        let policy = self.policy();
        let category = engine.classifier().classify(error);
        let retryable = self.is_retryable(&policy, category, error);
        let hint = error.retry_after();
        if let Some(hint) = hint {
            // A fleet sharing the breaker pauses for as long (nothing without a shared store).
            self.handle.breaker.note_retry_after(hint);
        }

        if let Some(p) = &mut permit.0 {
            if retryable {
                p.record_failure_of_in_place(category);
            } else {
                p.release_in_place();
            }
        }
        let metrics = &self.handle.metrics;
        self.in_attempt = false;

        // The failed attempt is counted with the call's end, or with the retry (one look-up of
        // the thread's metrics table for both); nothing in between reads the metrics.
        if !retryable || self.attempts >= policy.retry.max_attempts {
            metrics.record_attempt_failure(category);
            metrics.record_failure(self.attempts, retryable, false);
            self.ended = true;
            self.gave_up(retryable, category, error.as_error());
            return Next::Stop;
        }

        let max_delay = policy.retry.max_delay;
        let mut delay = match hint {
            Some(hint) => hint.min(max_delay),
            None => {
                let backoff = policy.retry.backoff_for(category);
                // A zero base gives zero whatever the draw (decorrelated jitter grows from the
                // previous delay, so only while that is zero too): no draw then, and no float
                // arithmetic. The draw is the shared generator's atomic add, which cost a
                // retry at once as much as the rest of its bookkeeping; a seed still fixes
                // every delay that is drawn.
                let zero = backoff.initial_delay.is_zero()
                    && (backoff.jitter != crate::Jitter::Decorrelated
                        || self.previous_delay.is_none_or(|d| d.is_zero()));
                if zero {
                    Duration::ZERO
                } else {
                    backoff.delay(self.attempts, self.previous_delay, engine.rng().next_f64())
                }
            }
        };
        if let Some(pause) = self.handle.breaker.shared_pause() {
            // Another process was told to wait: this call waits it out too.
            delay = delay.max(pause.min(max_delay));
        }
        if let (Some(limit), Some(started)) = (policy.retry.max_elapsed, self.started) {
            let ends_at = engine.clock().now().saturating_add(delay);
            if ends_at > started.saturating_add(limit) {
                metrics.record_attempt_failure(category);
                tracing::warn!(
                    component = %self.handle.component,
                    operation = %self.handle.operation,
                    attempt = self.attempts,
                    delay_ms = delay.as_millis() as u64,
                    category = %category,
                    error = %DisplayError(error.as_error()),
                    "overall deadline reached; not retrying"
                );
                metrics.record_failure(self.attempts, retryable, false);
                self.ended = true;
                return Next::Stop;
            }
        }

        if let Some(budget) = &policy.retry.budget {
            let now = engine.clock().now();
            if !self.handle.budget.enable(budget).try_withdraw(now) {
                metrics.record_attempt_failure(category);
                metrics.record_budget_exhausted();
                metrics.record_failure(self.attempts, retryable, false);
                self.ended = true;
                self.budget_exhausted(now, category, error.as_error());
                return Next::Stop;
            }
        }

        self.previous_delay = Some(delay);
        metrics.record_retry(category, delay);
        tracing::warn!(
            component = %self.handle.component,
            operation = %self.handle.operation,
            attempt = self.attempts,
            delay_ms = delay.as_millis() as u64,
            category = %category,
            error = %DisplayError(error.as_error()),
            "attempt failed; retrying"
        );
        if engine.has_retry_hook() || self.spec.on_retry.is_some() {
            self.notify_retry(delay, category, error.as_error());
        }
        Next::Retry(delay)
    }

    /// Tells the retry hooks, the manager's first, then the call's. Out of line and not
    /// generic: most calls have no hook, and pay a test of two pointers instead of the event.
    #[inline(never)]
    fn notify_retry(
        &self,
        delay: Duration,
        category: ErrorCategory,
        error: Option<&(dyn std::error::Error + 'static)>,
    ) {
        let event = RetryEvent {
            component: &self.handle.component,
            operation: &self.handle.operation,
            attempt: self.attempts,
            delay,
            category,
            error,
        };
        self.engine.notify_retry(&event);
        if let Some(hook) = &self.spec.on_retry {
            hook(&event);
        }
    }

    /// The one event of a call that ends on its error (field names: see `docs/metrics.md`).
    #[cold]
    fn gave_up(
        &self,
        retryable: bool,
        category: ErrorCategory,
        error: Option<&(dyn std::error::Error + 'static)>,
    ) {
        if retryable {
            tracing::warn!(
                component = %self.handle.component,
                operation = %self.handle.operation,
                attempts = self.attempts,
                category = %category,
                error = %DisplayError(error),
                "attempts exhausted; giving up"
            );
        } else {
            tracing::debug!(
                component = %self.handle.component,
                operation = %self.handle.operation,
                attempts = self.attempts,
                category = %category,
                error = %DisplayError(error),
                "error is not retryable; giving up"
            );
        }
    }

    /// The retry budget ended the call: logged at most once per second per component.
    #[cold]
    fn budget_exhausted(
        &self,
        now: Duration,
        category: ErrorCategory,
        error: Option<&(dyn std::error::Error + 'static)>,
    ) {
        if self.handle.budget.may_warn(now) {
            tracing::warn!(
                component = %self.handle.component,
                operation = %self.handle.operation,
                attempts = self.attempts,
                category = %category,
                error = %DisplayError(error),
                "retry budget exhausted; not retrying (logged at most once per second per component)"
            );
        }
    }

    fn is_retryable<E: Classify + ?Sized>(
        &self,
        policy: &Policy,
        category: ErrorCategory,
        error: &E,
    ) -> bool {
        let by_category = self
            .engine
            .classifier()
            .is_retryable(category)
            .unwrap_or_else(|| policy.retry.retryable_categories.contains(category));
        by_category
            && !error
                .as_error()
                .is_some_and(|e| policy.retry.non_retryable.matches(e))
    }

    /// The breaker refused an attempt: the call ends with the last real error, or with the
    /// rejection when no attempt ran.
    #[cold]
    pub fn rejected<E: From<CircuitOpenError>>(
        &mut self,
        open: CircuitOpenError,
        last: Option<E>,
    ) -> E {
        self.record_rejection();
        match last {
            Some(error) => error,
            None => E::from(open),
        }
    }

    fn record_rejection(&mut self) {
        self.handle
            .metrics
            .record_failure(self.attempts, true, true);
        self.ended = true;
        tracing::debug!(
            component = %self.handle.component,
            operation = %self.handle.operation,
            attempts = self.attempts,
            "circuit breaker rejected the call"
        );
    }

    /// One attempt's result, judged: `Ok(end)` ends the call with `end`; `Err((delay, result))`
    /// retries after `delay`, keeping `result` as the last one. An `Ok` value that `judge`
    /// takes for a failure is reported and retried like an error of its category, and is what
    /// the call returns when no retry follows. `permit` is the attempt's [`Permit`], by value
    /// (a blocking call's) or `&mut` (an async call's, kept in place).
    #[inline(always)]
    #[allow(clippy::type_complexity)]
    pub fn judged<T, E: Classify, J: JudgeOk<T>, P: HeldPermit<'h>>(
        &mut self,
        permit: P,
        result: Result<T, E>,
        judge: &J,
    ) -> Result<Result<T, E>, (Duration, Result<T, E>)> {
        match result {
            Ok(value) => match judge.judge(&value) {
                None => {
                    permit.succeeded(self);
                    Ok(Ok(value))
                }
                Some(failure) => match permit.failed(self, &failure) {
                    Next::Retry(delay) => Err((delay, Ok(value))),
                    Next::Stop => Ok(Ok(value)),
                },
            },
            Err(error) => match permit.failed(self, &error) {
                Next::Retry(delay) => Err((delay, Err(error))),
                Next::Stop => Ok(Err(error)),
            },
        }
    }

    /// The breaker refused an attempt: the call ends with the last real result (an error, or
    /// an `Ok` value judged a failure), or with the rejection when no attempt ran.
    #[cold]
    pub fn rejected_with<T, E: From<CircuitOpenError>>(
        &mut self,
        open: CircuitOpenError,
        last: Option<Result<T, E>>,
    ) -> Result<T, E> {
        self.record_rejection();
        match last {
            Some(result) => result,
            None => Err(E::from(open)),
        }
    }

    /// Blocks for `delay` on the manager's clock; a zero delay returns at once.
    #[inline]
    pub fn sleep(&self, delay: Duration) {
        if !delay.is_zero() {
            self.engine.clock().sleep(delay);
        }
    }

    /// Waits `delay` on the manager's clock; a zero delay is ready at once.
    pub async fn sleep_async(&self, delay: Duration) {
        if !delay.is_zero() {
            self.engine.clock().sleep_async(delay).await;
        }
    }
}

impl Drop for CallState<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        // A call that ended (every call that returns) pays one test of a flag here.
        if !self.ended {
            self.dropped_unended();
        }
    }
}

impl CallState<'_> {
    #[cold]
    #[inline(never)]
    fn dropped_unended(&mut self) {
        if std::thread::panicking() {
            self.ended_by_panic();
        }
    }

    /// An attempt or a hook panicked: the breaker already counted the attempt as a failure
    /// (its permit's drop does); the metrics count the call as failed after its attempts.
    #[cold]
    fn ended_by_panic(&mut self) {
        let metrics = &self.handle.metrics;
        if self.in_attempt {
            metrics.record_attempt_failure(ErrorCategory::Unknown);
        }
        metrics.record_failure(self.attempts, true, false);
        self.ended = true;
        tracing::error!(
            component = %self.handle.component,
            operation = %self.handle.operation,
            attempts = self.attempts,
            "a retried call panicked"
        );
    }
}

struct DisplayError<'a>(Option<&'a (dyn std::error::Error + 'static)>);

impl std::fmt::Display for DisplayError<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(e) => std::fmt::Display::fmt(e, f),
            None => f.write_str("<error>"),
        }
    }
}

/// The loop of a blocking call: `admit` decides whether an attempt may run, `judge` whether an
/// `Ok` value is really a failure.
pub(crate) fn run_blocking<'h, T, E, F, A, J>(
    mut call: CallState<'h>,
    mut admit: A,
    judge: &J,
    mut attempt: F,
) -> Result<T, E>
where
    E: Classify,
    F: FnMut() -> Result<T, E>,
    A: FnMut(&mut CallState<'h>, Option<Result<T, E>>) -> Result<Permit<'h>, Result<T, E>>,
    J: JudgeOk<T>,
{
    let mut last = None;
    loop {
        let permit = match admit(&mut call, last.take()) {
            Ok(permit) => permit,
            Err(end) => return end,
        };
        let result = attempt();
        match call.judged(permit, result, judge) {
            Ok(end) => return end,
            Err((delay, result)) => {
                last = Some(result);
                call.sleep(delay);
            }
        }
    }
}

/// How an attempt's [`Permit`] is held when its outcome is recorded: by value (a blocking
/// call's, in registers) or `&mut` (an async call's, in its future); see [`Permit`] for why
/// each.
#[doc(hidden)]
pub trait HeldPermit<'h> {
    /// Records a success ([`CallState::succeeded`] or [`CallState::succeeded_in_place`]).
    fn succeeded(self, call: &mut CallState<'h>);
    /// Records a failure ([`CallState::failed`] or [`CallState::failed_in_place`]).
    fn failed<E: Classify + ?Sized>(self, call: &mut CallState<'h>, error: &E) -> Next;
}

impl<'h> HeldPermit<'h> for Permit<'h> {
    #[inline(always)]
    fn succeeded(self, call: &mut CallState<'h>) {
        call.succeeded(self);
    }
    #[inline(always)]
    fn failed<E: Classify + ?Sized>(self, call: &mut CallState<'h>, error: &E) -> Next {
        call.failed(self, error)
    }
}

impl<'h> HeldPermit<'h> for &mut Permit<'h> {
    #[inline(always)]
    fn succeeded(self, call: &mut CallState<'h>) {
        call.succeeded_in_place(self);
    }
    #[inline(always)]
    fn failed<E: Classify + ?Sized>(self, call: &mut CallState<'h>, error: &E) -> Next {
        call.failed_in_place(self, error)
    }
}

/// The loop of an async call; the same steps as [`run_blocking`].
pub(crate) async fn run_async<'h, T, E, F, Fut, A, J>(
    mut call: CallState<'h>,
    mut admit: A,
    judge: &J,
    mut attempt: F,
) -> Result<T, E>
where
    E: Classify,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
    A: FnMut(&mut CallState<'h>, Option<Result<T, E>>) -> Result<Permit<'h>, Result<T, E>>,
    J: JudgeOk<T>,
{
    let mut last = None;
    loop {
        let mut permit = match admit(&mut call, last.take()) {
            Ok(permit) => permit,
            Err(end) => return end,
        };
        let result = attempt().await;
        // In place: the permit lives in this future across the `.await` (see [`Permit`]).
        match call.judged(&mut permit, result, judge) {
            Ok(end) => return end,
            Err((delay, result)) => {
                last = Some(result);
                call.sleep_async(delay).await;
            }
        }
    }
}

/// Admission for calls through the breaker: a rejection ends the call.
pub(crate) fn admit_guarded<'h, T, E: From<CircuitOpenError>>(
    call: &mut CallState<'h>,
    last: Option<Result<T, E>>,
) -> Result<Permit<'h>, Result<T, E>> {
    match call.admit() {
        Ok(permit) => Ok(permit),
        Err(open) => Err(call.rejected_with(open, last)),
    }
}

/// Admission for calls that bypass the breaker: always granted.
pub(crate) fn admit_unguarded<'h, T, E>(
    call: &mut CallState<'h>,
    _last: Option<Result<T, E>>,
) -> Result<Permit<'h>, Result<T, E>> {
    Ok(call.admit_unguarded())
}
