//! One breaker: the [`Machine`] behind a mutex, plus one atomic word that lets the hot path skip
//! the mutex.
//!
//! The word (its layout is in `word`) holds the machine's epoch and a *clean* bit: closed with
//! no failure counted (or disabled). While it is clean, admitting a call and recording its
//! success read the word and nothing else: no lock, no clock, no write to shared memory, no
//! allocation. A closed breaker with the default consecutive rule (and no state file) also
//! counts its failure streak in the word: a failure below the threshold, and the success that
//! ends the streak, are one compare-exchange, so a failing service costs its callers no lock
//! until the breaker opens. Everything else (the failure that opens the breaker, a non-closed
//! breaker, a state file's breaker) takes the mutex; the mutex holder first freezes the word
//! (takes its count and clears COUNTING, see [`CircuitBreaker::freeze`]) and republishes it
//! after every change of the machine.
//!
//! A breaker with a failure-rate or slow-call rule is never clean (each call is a call of its
//! window), so the code above is all it adds to the default breaker's path; its own cost sits
//! behind the out-of-line slow path: the word's ADMIT flag admits a call without the mutex
//! (reading the clock only for the slow-call rule, TIMED), and a time window's FAST flag lets
//! an ordinary success count on the breaker's [`Stripes`] without the mutex.

use super::listener::EventBus;
use super::machine::{Machine, Refusal, Ticket, Transitions};
use super::permit::BreakerPermit;
use super::persist::Sink;
use super::window::{start_of, Stripes};
use super::word::{self, ADMIT, CLEAN, COUNTING, EPOCH_SHIFT, FAST, TIMED};
use super::{BreakerControl, CircuitBreakerStatus, CircuitState};
use crate::policy::CircuitBreakerConfig;
use crate::store::gate::{Gate, GateDecision, GateRefusal, GatedBreaker, Knobs, ProbeOutcome};
use crate::{CircuitOpenError, Clock, ErrorCategory, OpenCause};
use parking_lot::{Mutex, MutexGuard};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// What a registry shares with its breakers.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) events: EventBus,
    pub(crate) sink: Option<Sink>,
}

/// How an admitted call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Outcome {
    Success,
    /// A retryable failure, of this category when the caller knows it.
    Failure(Option<ErrorCategory>),
    Neutral,
}

/// One circuit breaker, for one (service, operation). Get it from a
/// [`CircuitBreakerRegistry`](crate::CircuitBreakerRegistry).
///
/// # Rules
///
/// By default a closed breaker opens after `failure_threshold` retryable failures in a row.
/// With [`failure_rate`](CircuitBreakerConfig::failure_rate) it opens instead when its window
/// (the last N calls, or the calls that ended in the last D) holds at least `minimum_calls`
/// calls and the share of retryable failures reaches the threshold; with
/// [`slow_call`](CircuitBreakerConfig::slow_call), also when the share of slow calls does. Calls
/// that end in a non-retryable error ([`BreakerPermit::release`], a dropped permit) are not
/// calls of the window. The rules are checked after every call, a success included, as in
/// resilience4j. The window is emptied when the breaker closes (a reset included) and whenever
/// its rules change; it is not kept in the state file, so a restarted program starts with an
/// empty window. [`CircuitOpenError::opened_by`] says which rule opened the breaker.
///
/// Half-open, the rule stays ours whatever the closed rule: `success_threshold` successful trial
/// calls close the breaker, and one retryable failure re-opens it with the next open timeout.
/// resilience4j computes a failure (and slow-call) rate over its permitted half-open calls
/// instead. We keep the simpler rule because our half-open state is a probe, by default a
/// single call at a time (`half_open_max_calls` = 1): a rate over one or a few calls is that
/// rule anyway, and waiting for a batch of trial calls to fill would keep a recovered service
/// half-open longer and send more calls to a dead one. The open-timeout ladder then does the
/// rest. A slow trial call that succeeds counts as a success: the trial calls decide whether
/// the service answers, and the window judges slowness again once the breaker is closed.
///
/// With [`max_half_open_wait`](CircuitBreakerConfig::max_half_open_wait), a breaker half-open
/// that long without closing goes back to open (the next open timeout of the ladder), so trial
/// calls that never end cannot hold it half-open; it is evaluated when the breaker is next
/// asked (a call, a status), as of the moment the wait ran out.
///
/// # Costs
///
/// Without a rate rule, a call through a closed breaker with no recent failure reads one atomic
/// word to be admitted and the same word to record its success: no lock, no clock, no write.
/// With a rate rule every call is recorded: a count window under the breaker's mutex; a time
/// window on per-thread stripes (one clock read and one atomic add on the thread's own cache
/// line per success, the mutex only for failures, slow calls, the first success of a stripe in
/// each new second and windows still short of `minimum_calls` with failures in them). Only the
/// slow-call rule reads the clock when a call is admitted.
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
pub struct CircuitBreaker {
    word: AtomicU64,
    service: Arc<str>,
    operation: Arc<str>,
    shared: Arc<Shared>,
    machine: Mutex<Machine>,
    /// The lock-free counters of a time window, made the first time the breaker gets one (the
    /// machine holds them too); empty for every other breaker.
    stripes: OnceLock<Arc<Stripes>>,
    /// What a fleet sharing this breaker through a store decided; empty without such a store.
    gate: OnceLock<Arc<Gate>>,
}

impl std::fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("service", &self.service)
            .field("operation", &self.operation)
            .field("machine", &*self.lock_synced())
            .finish_non_exhaustive()
    }
}

/// The word for `machine`; `counts`: whether the word may count failures (not for a breaker
/// of a state file, whose every failure count is written to the file under the mutex).
fn word_of(machine: &Machine, counts: bool) -> u64 {
    let counting = if counts { machine.counting() } else { 0 };
    (machine.epoch() << EPOCH_SHIFT) | machine.flags() | counting | u64::from(machine.is_clean())
}

/// The word of a breaker whose gate may have something to say: no flag, so every call takes
/// the slow path, which asks the gate first.
fn word_with(machine: &Machine, gate: Option<&Arc<Gate>>, counts: bool) -> u64 {
    match gate {
        Some(gate) if gate.is_active() => machine.epoch() << EPOCH_SHIFT,
        _ => word_of(machine, counts),
    }
}

impl CircuitBreaker {
    pub(crate) fn new(
        service: Arc<str>,
        operation: Arc<str>,
        shared: Arc<Shared>,
        machine: Machine,
    ) -> Self {
        CircuitBreaker {
            word: AtomicU64::new(word_of(&machine, shared.sink.is_none())),
            service,
            operation,
            shared,
            machine: Mutex::new(machine),
            stripes: OnceLock::new(),
            gate: OnceLock::new(),
        }
    }

    /// Puts `gate` in front of this breaker (once; later gates are ignored): from now on the
    /// fleet's decisions reach its calls.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn attach_gate(self: &Arc<Self>, gate: Arc<Gate>) {
        let weak: std::sync::Weak<dyn GatedBreaker> = Arc::downgrade(self) as _;
        gate.attach(weak);
        if self.gate.set(gate).is_ok() {
            let m = self.lock_frozen();
            self.publish(&m);
        }
    }

    /// The operation's name as the breaker holds it, for others to share.
    pub(crate) fn operation_name(&self) -> &Arc<str> {
        &self.operation
    }

    pub(crate) fn clock(&self) -> &Arc<dyn Clock> {
        &self.shared.clock
    }

    /// What is left of a `retry_after` pause the fleet sharing this breaker is in.
    #[inline]
    pub(crate) fn shared_pause(&self) -> Option<Duration> {
        self.gate.get().and_then(|gate| gate.pause_remaining())
    }

    /// The gate in front of this breaker, if a fleet shares it.
    pub(crate) fn gate(&self) -> Option<&Arc<Gate>> {
        self.gate.get()
    }

    /// A call saw a `retry_after` hint of `hint`: a fleet sharing this breaker pauses for as
    /// long. Nothing happens without a shared store.
    #[inline]
    pub(crate) fn note_retry_after(&self, hint: std::time::Duration) {
        if let Some(gate) = self.gate.get() {
            gate.request_pause(hint);
        }
    }

    /// The service this breaker guards.
    ///
    /// ```
    /// use resilience_core::CircuitBreakerRegistry;
    /// assert_eq!(CircuitBreakerRegistry::new().get_breaker("api", "fetch").service(), "api");
    /// ```
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The operation this breaker guards.
    ///
    /// ```
    /// use resilience_core::CircuitBreakerRegistry;
    /// assert_eq!(CircuitBreakerRegistry::new().get_breaker("api", "fetch").operation(), "fetch");
    /// ```
    pub fn operation(&self) -> &str {
        &self.operation
    }

    /// Sets the thresholds and timeouts used from now on. An invalid config is repaired to the
    /// nearest valid one (and the repair logged). A closed breaker's open timeout becomes the
    /// new `reset_timeout`; an open one keeps its deadline, unless a lower `max_open_timeout`
    /// shortens its open timeout, which brings the deadline forward by as much.
    ///
    /// ```
    /// use resilience_core::{CircuitBreakerConfig, CircuitBreakerRegistry};
    /// use std::time::Duration;
    /// let breaker = CircuitBreakerRegistry::new().get_breaker("api", "fetch");
    /// breaker.configure(&CircuitBreakerConfig { reset_timeout: Duration::from_secs(5), ..Default::default() });
    /// assert_eq!(breaker.status().current_timeout, 5.0);
    /// ```
    pub fn configure(&self, config: &CircuitBreakerConfig) {
        // Not written to the state file: a restored breaker is configured again by its program.
        let mut m = self.lock_frozen();
        m.configure(config, &|| {
            Arc::clone(self.stripes.get_or_init(|| Arc::new(Stripes::new())))
        });
        // A rate rule added or removed changes the word's flags.
        self.publish(&m);
    }

    /// Publishes the word of `m`, with the mutex held and the word frozen.
    fn publish(&self, m: &Machine) {
        let gate = self.gate.get();
        if let Some(gate) = gate {
            gate.set_local_open(m.is_open_by_itself());
            gate.set_knobs(Knobs::of(m.config()));
        }
        let word = word_with(m, gate, self.shared.sink.is_none());
        if self.word.load(Ordering::Relaxed) != word {
            self.word.store(word, Ordering::Release);
        }
    }

    /// Asks to run one call. `Err` means the call must not run.
    ///
    /// On a closed breaker with no recent failure this reads one atomic and nothing else.
    ///
    /// ```
    /// use resilience_core::CircuitBreakerRegistry;
    /// let breaker = CircuitBreakerRegistry::new().get_breaker("api", "fetch");
    /// let permit = breaker.try_acquire().expect("a new breaker is closed");
    /// permit.record_success();
    /// ```
    #[inline(always)]
    pub fn try_acquire(&self) -> Result<BreakerPermit<'_>, CircuitOpenError> {
        let word = self.word.load(Ordering::Acquire);
        // Clean, or closed counting a failure streak: admitted as the machine would.
        if word & (CLEAN | COUNTING) != 0 {
            return Ok(BreakerPermit::new(self, word, Ticket::Closed));
        }
        self.try_acquire_slow(word)
    }

    /// Admission when `word`, just read, is neither clean nor counting: the word's flags decide
    /// without reading it again, else the mutex.
    #[cold]
    #[inline(never)]
    fn try_acquire_slow(&self, word: u64) -> Result<BreakerPermit<'_>, CircuitOpenError> {
        if let Some(gate) = self.gate.get().filter(|g| g.is_active()) {
            match gate.decide() {
                GateDecision::Pass => {}
                GateDecision::Admit(lease) => {
                    return Ok(BreakerPermit::new(self, word, Ticket::Fleet(lease)))
                }
                GateDecision::Refuse(refusal) => return Err(self.gate_refusal(refusal)),
            }
        }
        if word & ADMIT != 0 {
            // Closed with a rate rule: admitted without the mutex, like a clean breaker.
            let ticket = if word & TIMED != 0 {
                Ticket::Timed(start_of(self.shared.clock.now()))
            } else {
                Ticket::Closed
            };
            return Ok(BreakerPermit::new(self, word, ticket));
        }
        let counts = self.shared.sink.is_none();
        let (admitted, word) = self.mutate(|m, clock| {
            let (admitted, transition) = m.acquire(clock);
            ((admitted, word_of(m, counts)), transition)
        });
        match admitted {
            Ok(ticket) => Ok(BreakerPermit::new(self, word, ticket)),
            Err(refusal) => Err(self.refusal_error(refusal)),
        }
    }

    fn refusal_error(&self, refusal: Refusal) -> CircuitOpenError {
        let clock = &self.shared.clock;
        match refusal {
            Refusal::Open {
                until,
                cause,
                category,
                rates,
            } => {
                let remaining = until.saturating_sub(clock.now());
                let until_unix = clock.unix_now().saturating_add(remaining).as_secs_f64();
                CircuitOpenError::new(
                    &*self.service,
                    &*self.operation,
                    remaining,
                    Some(until_unix),
                )
                .with_cause(cause, category, rates)
            }
            Refusal::Full => {
                CircuitOpenError::new(&*self.service, &*self.operation, Duration::ZERO, None)
            }
            Refusal::Forced => CircuitOpenError::forced(&self.service, &self.operation),
        }
    }

    fn gate_refusal(&self, refusal: GateRefusal) -> CircuitOpenError {
        let (service, operation) = (&*self.service, &*self.operation);
        let until = |remaining: Duration| {
            let unix = self.shared.clock.unix_now().saturating_add(remaining);
            Some(unix.as_secs_f64())
        };
        match refusal {
            GateRefusal::Open { remaining } => {
                CircuitOpenError::new(service, operation, remaining, until(remaining)).with_cause(
                    Some(OpenCause::Fleet),
                    None,
                    None,
                )
            }
            GateRefusal::Full => CircuitOpenError::new(service, operation, Duration::ZERO, None)
                .with_cause(Some(OpenCause::Fleet), None, None),
            GateRefusal::Forced => CircuitOpenError::forced(service, operation),
            GateRefusal::Paused { remaining } => {
                CircuitOpenError::new(service, operation, remaining, until(remaining)).with_cause(
                    Some(OpenCause::RetryAfter),
                    None,
                    None,
                )
            }
            GateRefusal::StoreDown => {
                CircuitOpenError::new(service, operation, Duration::ZERO, None).with_cause(
                    Some(OpenCause::StoreUnavailable),
                    None,
                    None,
                )
            }
        }
    }

    /// Whether the breaker is still clean in the epoch of `word`: then a success of a call
    /// admitted with `word` has nothing to record.
    #[inline(always)]
    pub(super) fn unchanged_since(&self, word: u64) -> bool {
        word & CLEAN != 0 && self.word.load(Ordering::Acquire) == word
    }

    /// Records how a call admitted with `word` and `ticket` ended.
    #[inline(never)]
    pub(super) fn finish(&self, word: u64, ticket: Ticket, outcome: Outcome) {
        if ticket == Ticket::Closed && self.count_in_word(word, outcome) {
            return;
        }
        self.finish_locked(word, ticket, outcome);
    }

    /// Counts a failure, or the success that ends a failure streak, of a call admitted with
    /// `admitted` in the word, without the mutex; `false` when the word cannot (see
    /// [`word::with_failure`]): the mutex then decides.
    #[inline(always)]
    fn count_in_word(&self, admitted: u64, outcome: Outcome) -> bool {
        let failure = match outcome {
            Outcome::Success => false,
            Outcome::Failure(_) => true,
            Outcome::Neutral => return false,
        };
        let mut current = self.word.load(Ordering::Acquire);
        loop {
            let next = if failure {
                word::with_failure(current, admitted)
            } else {
                word::with_success(current, admitted)
            };
            let Some(next) = next else {
                return false;
            };
            if next == current {
                return true;
            }
            match self.word.compare_exchange_weak(
                current,
                next,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(seen) => current = seen,
            }
        }
    }

    #[cold]
    #[inline(never)]
    fn finish_locked(&self, word: u64, ticket: Ticket, outcome: Outcome) {
        if let Ticket::Fleet(lease) = ticket {
            if let Some(gate) = self.gate.get() {
                gate.report(
                    lease,
                    match outcome {
                        Outcome::Success => ProbeOutcome::Success,
                        Outcome::Failure(_) => ProbeOutcome::Failure,
                        Outcome::Neutral => ProbeOutcome::Neutral,
                    },
                );
            }
            return;
        }
        if outcome == Outcome::Success && word & FAST != 0 && self.count_success(word, ticket) {
            return;
        }
        let epoch = word::epoch(word);
        self.mutate(|m, clock| {
            let transitions = match outcome {
                Outcome::Success => m.on_success(epoch, ticket, clock),
                Outcome::Failure(category) => m.on_failure(epoch, ticket, category, clock),
                Outcome::Neutral => m.on_release(epoch, ticket, clock),
            };
            ((), transitions)
        });
    }

    /// Counts the success of a call admitted with `word` on the time window's stripes, without
    /// the mutex, if the breaker is still as it was then and the success is an ordinary one
    /// (not slow, in the current bucket). `false`: it must be recorded under the mutex.
    fn count_success(&self, word: u64, ticket: Ticket) -> bool {
        let Some(stripes) = self.stripes.get() else {
            return false;
        };
        if self.word.load(Ordering::Acquire) != word {
            return false;
        }
        stripes.try_add(ticket, self.shared.clock.now())
    }

    /// The state as of now: an open breaker whose time has passed reads `HalfOpen`.
    ///
    /// ```
    /// use resilience_core::{CircuitBreakerRegistry, CircuitState};
    /// assert_eq!(CircuitBreakerRegistry::new().get_breaker("a", "b").state(), CircuitState::Closed);
    /// ```
    pub fn state(&self) -> CircuitState {
        self.status().state
    }

    /// The state and counters as of now.
    ///
    /// ```
    /// use resilience_core::CircuitBreakerRegistry;
    /// let status = CircuitBreakerRegistry::new().get_breaker("a", "b").status();
    /// assert_eq!((status.failure_count, status.half_open_calls), (0, 0));
    /// ```
    pub fn status(&self) -> CircuitBreakerStatus {
        let clock = &self.shared.clock;
        self.status_at(clock.now(), clock.unix_now())
    }

    pub(crate) fn status_at(&self, now: Duration, unix_now: Duration) -> CircuitBreakerStatus {
        self.lock_synced().status(now, unix_now)
    }

    /// Closes the breaker, clears its counters and its open-timeout ladder, and ends any
    /// operator control ([`force_open`](Self::force_open), [`disable`](Self::disable)).
    /// Results of calls admitted before the reset are ignored.
    ///
    /// ```
    /// use resilience_core::{CircuitBreakerConfig, CircuitBreakerRegistry, CircuitState};
    /// let breaker = CircuitBreakerRegistry::new().get_breaker("a", "b");
    /// breaker.configure(&CircuitBreakerConfig { failure_threshold: 1, ..Default::default() });
    /// breaker.try_acquire().unwrap().record_failure();
    /// breaker.reset();
    /// assert_eq!(breaker.state(), CircuitState::Closed);
    /// ```
    pub fn reset(&self) {
        self.mutate(|m, clock| ((), m.reset(clock).into()));
    }

    /// Opens the breaker until [`reset`](Self::reset), whatever its failures and the time: an
    /// operator's switch for a service known to be down.
    ///
    /// ```
    /// use resilience_core::{BreakerControl, CircuitBreakerRegistry, CircuitState};
    /// let breaker = CircuitBreakerRegistry::new().get_breaker("a", "b");
    /// breaker.force_open();
    /// assert_eq!(breaker.state(), CircuitState::Open);
    /// assert_eq!(breaker.status().control, BreakerControl::ForcedOpen);
    /// assert!(breaker.try_acquire().is_err());
    /// ```
    pub fn force_open(&self) {
        self.mutate(|m, clock| ((), m.force_open(clock).into()));
    }

    /// Keeps the breaker closed until [`reset`](Self::reset): every call runs and no result is
    /// counted.
    ///
    /// ```
    /// use resilience_core::{CircuitBreakerConfig, CircuitBreakerRegistry, CircuitState};
    /// let breaker = CircuitBreakerRegistry::new().get_breaker("a", "b");
    /// breaker.configure(&CircuitBreakerConfig { failure_threshold: 1, ..Default::default() });
    /// breaker.disable();
    /// breaker.try_acquire().unwrap().record_failure();
    /// assert_eq!(breaker.state(), CircuitState::Closed);
    /// ```
    pub fn disable(&self) {
        self.mutate(|m, clock| ((), m.disable(clock).into()));
    }

    /// Who decides the state now: the breaker itself or an operator.
    ///
    /// ```
    /// use resilience_core::{BreakerControl, CircuitBreakerRegistry};
    /// assert_eq!(CircuitBreakerRegistry::new().get_breaker("a", "b").control(), BreakerControl::Auto);
    /// ```
    pub fn control(&self) -> BreakerControl {
        self.status().control
    }

    fn lock(&self) -> MutexGuard<'_, Machine> {
        // Not poisoned by a panic: the machine is consistent after every method, so a panic
        // elsewhere while the lock was held (there is no user code under it) leaves nothing
        // half-done.
        self.machine.lock()
    }

    /// The machine, with the failures counted in the word taken over: for reading it.
    fn lock_synced(&self) -> MutexGuard<'_, Machine> {
        let mut m = self.lock();
        let word = self.word.load(Ordering::Acquire);
        if word & COUNTING != 0 {
            m.take_count(word::count(word));
        }
        m
    }

    /// The machine, with the word frozen: for changing it (then [`publish`](Self::publish)).
    fn lock_frozen(&self) -> MutexGuard<'_, Machine> {
        let mut m = self.lock();
        self.freeze(&mut m);
        m
    }

    /// Makes the word the lock holder's alone: clears COUNTING (and CLEAN), so that the
    /// lock-free paths stop counting in it and take the mutex, and hands the failures they
    /// counted to the machine. Only the lock holder sets COUNTING, so a word read without it
    /// under the lock stays so until the next publish.
    fn freeze(&self, m: &mut Machine) {
        if self.word.load(Ordering::Relaxed) & COUNTING != 0 {
            let word = self.word.fetch_and(!(COUNTING | CLEAN), Ordering::AcqRel);
            m.take_count(word::count(word));
        }
    }

    /// Runs `change` on the machine, then publishes what changed: the hot-path word, the state
    /// file record, the listeners' event.
    fn mutate<R>(&self, change: impl FnOnce(&mut Machine, &dyn Clock) -> (R, Transitions)) -> R {
        let clock = &*self.shared.clock;
        let mut m = self.lock_frozen();
        let before = self.shared.sink.as_ref().map(|_| m.persisted());
        let (result, transitions) = change(&mut m, clock);
        self.publish(&m);
        if let (Some(sink), Some(before)) = (&self.shared.sink, before) {
            if m.persisted() != before {
                sink.send(
                    &self.service,
                    &self.operation,
                    m.record(clock.now(), clock.unix_now()),
                );
            }
        }
        let mut any = false;
        for t in transitions {
            any = true;
            self.shared
                .events
                .push(&self.service, &self.operation, t.from, t.to);
        }
        drop(m);
        if any {
            self.shared.events.deliver();
        }
        result
    }
}

impl GatedBreaker for CircuitBreaker {
    fn republish(&self) {
        // Frozen first: a count the word holds must not be lost to the store below.
        let m = self.lock_frozen();
        self.publish(&m);
    }

    /// The fleet closed the shared breaker: this process's own breaker starts over too (unless
    /// an operator controls it here), so that its stale vote does not open it again.
    fn close_if_auto(&self) {
        self.mutate(|m, clock| {
            if m.is_open_by_itself() || m.is_half_open_auto() {
                ((), m.reset(clock).into())
            } else {
                ((), Transitions::default())
            }
        });
    }
}
