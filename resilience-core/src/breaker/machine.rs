//! The state machine of one breaker, as plain data. It never reads a clock by itself: callers
//! pass one in, and it is read only when the answer depends on time (an open or half-open
//! breaker, or a failure that trips a closed one).
//!
//! Every change of state starts a new *epoch*. A permit remembers the epoch it was admitted in,
//! and its result counts only if the breaker is still in that epoch: a call admitted while closed
//! that ends after the breaker opened (or went half-open) changes nothing.

use super::persist::Record;
use super::window::{start_of, Mark, Rates, Stripes};
use super::word::{self, ADMIT, EPOCH_MASK, FAST, MAX_COUNT, TIMED};
use super::{BreakerControl, CircuitBreakerStatus, CircuitState};
use crate::policy::{next_open_timeout, repair_breaker, CircuitBreakerConfig};
use crate::{Clock, ErrorCategory, OpenCause};
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::Duration;

/// A state change, for listeners.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Transition {
    pub(crate) from: CircuitState,
    pub(crate) to: CircuitState,
}

/// The state changes of one step of the machine: at most two (a half-open breaker past its
/// `max_half_open_wait` re-opens, and its new open period may be over already).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Transitions([Option<Transition>; 2]);

impl Transitions {
    pub(crate) fn push(&mut self, t: Option<Transition>) {
        if let Some(slot) = self.0.iter_mut().find(|s| s.is_none()) {
            *slot = t;
        }
    }
}

impl From<Option<Transition>> for Transitions {
    fn from(t: Option<Transition>) -> Self {
        Transitions([t, None])
    }
}

impl IntoIterator for Transitions {
    type Item = Transition;
    type IntoIter = std::iter::Flatten<std::array::IntoIter<Option<Transition>, 2>>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter().flatten()
    }
}

/// What an admitted call holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ticket {
    /// Admitted while closed (or disabled).
    Closed,
    /// Admitted while closed with the slow-call rule set: the call started at this time
    /// (nanoseconds of the breaker's clock), so its end tells whether it was slow.
    Timed(u64),
    /// Admitted as a trial call while half-open, holding the lease with this id.
    HalfOpen(u64),
    /// Admitted by the gate of a breaker shared by a fleet, not by this machine: a fleet-wide
    /// trial lease, or `store::gate::UNCOUNTED`.
    Fleet(u64),
}

/// Why a call was not admitted.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Refusal {
    /// Open until this monotonic time, opened by `cause`; `rates` are the window's failure
    /// rate, slow-call rate and calls when a rate rule opened it.
    Open {
        until: Duration,
        cause: Option<OpenCause>,
        category: Option<ErrorCategory>,
        rates: Option<(f64, f64, u64)>,
    },
    /// Half-open with every trial slot taken.
    Full,
    /// Forced open by an operator.
    Forced,
}

/// A half-open trial slot. It expires once the open timeout has passed again since the trial
/// call was admitted, so a hung call cannot hold it forever. With a zero open timeout it never
/// expires (it would expire at once, and the trial-call limit would mean nothing).
#[derive(Clone, Copy, Debug)]
struct Lease {
    id: u64,
    expires: Option<Duration>,
}

impl Lease {
    fn is_live(&self, now: Duration) -> bool {
        self.expires.is_none_or(|at| at > now)
    }
}

/// The persisted part of a machine, in monotonic time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Persisted {
    state: CircuitState,
    control: BreakerControl,
    failure_count: u32,
    success_count: u32,
    open_until: Duration,
    current_timeout: Duration,
}

#[derive(Debug)]
pub(crate) struct Machine {
    /// Shared between breakers with equal settings (see [`shared_config`]): a registry may hold
    /// a hundred thousand breakers.
    config: Arc<CircuitBreakerConfig>,
    state: CircuitState,
    control: BreakerControl,
    epoch: u64,
    failure_count: u32,
    success_count: u32,
    /// Monotonic time at which an open breaker turns half-open. While half-open: the time it
    /// became half-open, from which `max_half_open_wait` runs (one field for both, since a
    /// breaker is never both, keeps a breaker small).
    open_until: Duration,
    current_timeout: Duration,
    leases: Vec<Lease>,
    next_lease: u64,
    /// The failure-rate and slow-call rules and their window; `None` (the default) without them.
    rates: Option<Box<Rates>>,
    /// What opened the breaker last, for the rejections' errors.
    opened_by: Option<OpenCause>,
    /// The category of the last failure counted, and of the one that opened the breaker.
    last_failure: Option<ErrorCategory>,
    opened_category: Option<ErrorCategory>,
}

impl Machine {
    pub(crate) fn new(config: &CircuitBreakerConfig) -> Self {
        let config = shared_config(config);
        let rates = Rates::from_config(&config, &|| Arc::new(Stripes::new()));
        Machine {
            current_timeout: config.reset_timeout,
            config,
            state: CircuitState::Closed,
            control: BreakerControl::Auto,
            epoch: 0,
            failure_count: 0,
            success_count: 0,
            open_until: Duration::ZERO,
            leases: Vec::new(),
            next_lease: 0,
            rates,
            opened_by: None,
            last_failure: None,
            opened_category: None,
        }
    }

    pub(crate) fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Whether the breaker is open by its own rules (an operator's control aside): its vote
    /// when a fleet shares it.
    pub(crate) fn is_open_by_itself(&self) -> bool {
        self.control == BreakerControl::Auto && self.state == CircuitState::Open
    }

    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn is_half_open_auto(&self) -> bool {
        self.control == BreakerControl::Auto && self.state == CircuitState::HalfOpen
    }

    pub(crate) fn config(&self) -> &CircuitBreakerConfig {
        &self.config
    }

    /// Whether a call may be admitted and its success recorded without the lock: closed with no
    /// failure counted, or disabled.
    pub(crate) fn is_clean(&self) -> bool {
        self.control == BreakerControl::Disabled
            || (self.state == CircuitState::Closed
                && self.failure_count == 0
                && self.rates.is_none())
    }

    /// The COUNTING part of the hot-path word (see `word`) when the word may count this
    /// breaker's consecutive failures without the lock: closed, automatic, the consecutive rule,
    /// a threshold the word can hold.
    pub(crate) fn counting(&self) -> u64 {
        let limit = self.config.failure_threshold;
        let counts = self.control == BreakerControl::Auto
            && self.state == CircuitState::Closed
            && self.rates.is_none()
            && limit <= MAX_COUNT
            && self.failure_count < limit;
        if counts {
            word::counting(self.failure_count, limit)
        } else {
            0
        }
    }

    /// Takes over the consecutive failures counted in the hot-path word while it was COUNTING
    /// (in this epoch: only the lock holder changes the epoch).
    pub(crate) fn take_count(&mut self, count: u32) {
        self.failure_count = count;
    }

    /// The flags of the hot-path word beyond CLEAN: with a rate rule, a closed automatic breaker
    /// admits without the lock (ADMIT), times its calls for the slow-call rule (TIMED), and
    /// counts ordinary successes without the lock while no success can open it (FAST).
    pub(crate) fn flags(&self) -> u64 {
        let Some(rates) = &self.rates else {
            return 0;
        };
        if self.control != BreakerControl::Auto || self.state != CircuitState::Closed {
            return 0;
        }
        let mut flags = ADMIT;
        if rates.timed() {
            flags |= TIMED;
        }
        if self.failure_count == 0 && rates.lock_free_successes() {
            flags |= FAST;
        }
        flags
    }

    /// Takes `config`; a change of the rate rules starts an empty window (a time window counts
    /// on the `stripes` of its breaker).
    pub(crate) fn configure(
        &mut self,
        config: &CircuitBreakerConfig,
        stripes: &dyn Fn() -> Arc<Stripes>,
    ) {
        if *self.config == *config {
            return;
        }
        let mut repaired = config.clone();
        repair_breaker(&mut repaired);
        let config = shared_config(&repaired);
        if !Rates::same_rules(&self.config, &config) {
            self.rates = Rates::from_config(&config, stripes);
        }
        if self.state == CircuitState::Closed {
            self.current_timeout = config.reset_timeout;
        } else if self.state == CircuitState::HalfOpen {
            self.current_timeout = self.current_timeout.min(config.max_open_timeout);
        } else {
            // The deadline moves with the timeout: an open period never lasts longer than the
            // (new) max_open_timeout, and a status never shows a deadline its timeout denies.
            let cut = self.current_timeout.min(config.max_open_timeout);
            self.open_until = self
                .open_until
                .saturating_sub(self.current_timeout.saturating_sub(cut));
            self.current_timeout = cut;
        }
        self.config = config;
    }

    /// Enters `to` at monotonic time `now`.
    fn enter(&mut self, to: CircuitState, now: Duration) -> Option<Transition> {
        let from = self.state;
        self.state = to;
        // Within the word's epoch bits, so that the word and the machine agree on it.
        self.epoch = self.epoch.wrapping_add(1) & EPOCH_MASK;
        self.leases.clear();
        self.success_count = 0;
        match to {
            CircuitState::Closed => {
                self.failure_count = 0;
                self.current_timeout = self.config.reset_timeout;
                self.opened_by = None;
                self.opened_category = None;
                self.last_failure = None;
                // A closed breaker starts over: the calls that opened it say nothing any more.
                if let Some(rates) = &mut self.rates {
                    rates.clear();
                }
            }
            CircuitState::Open => {
                self.open_until = now.saturating_add(self.current_timeout);
            }
            CircuitState::HalfOpen => {
                self.open_until = now;
            }
        }
        (from != to).then_some(Transition { from, to })
    }

    /// Opens a closed breaker for `reset_timeout`, because of `cause`.
    fn trip(&mut self, cause: OpenCause, now: Duration) -> Option<Transition> {
        self.current_timeout = self.config.reset_timeout;
        self.opened_by = Some(cause);
        self.opened_category = self.failure_behind(cause);
        self.enter(CircuitState::Open, now)
    }

    /// Re-opens a half-open breaker with the next open timeout of the ladder, at `now`.
    fn reopen(&mut self, cause: OpenCause, now: Duration) -> Option<Transition> {
        self.current_timeout = next_open_timeout(
            self.current_timeout,
            self.config.open_timeout_increment_factor,
            self.config.max_open_timeout,
        );
        self.opened_by = Some(cause);
        self.opened_category = self.failure_behind(cause);
        self.enter(CircuitState::Open, now)
    }

    /// The category of the failure behind an opening by `cause`: none when slowness or a
    /// half-open wait opened it.
    fn failure_behind(&self, cause: OpenCause) -> Option<ErrorCategory> {
        match cause {
            OpenCause::SlowCallRate | OpenCause::HalfOpenTimeout => None,
            _ => self.last_failure,
        }
    }

    /// When a half-open breaker goes back to open for want of closing (`max_half_open_wait`).
    fn half_open_expiry(&self) -> Option<Duration> {
        if self.state != CircuitState::HalfOpen || self.control != BreakerControl::Auto {
            return None;
        }
        let wait = self.config.max_half_open_wait?;
        Some(self.open_until.saturating_add(wait))
    }

    /// Re-opens a half-open breaker whose `max_half_open_wait` has passed, as of the moment it
    /// passed (as a timer would have): evaluated lazily, whenever the breaker is asked.
    fn expire_half_open(&mut self, clock: &dyn Clock) -> Option<Transition> {
        let at = self.half_open_expiry()?;
        if clock.now() < at {
            return None;
        }
        self.reopen(OpenCause::HalfOpenTimeout, at)
    }

    fn open_refusal(&self) -> Refusal {
        let rates = match (self.opened_by, &self.rates) {
            (Some(OpenCause::FailureRate | OpenCause::SlowCallRate), Some(r)) => {
                Some(r.opened_rates)
            }
            _ => None,
        };
        Refusal::Open {
            until: self.open_until,
            cause: self.opened_by,
            category: self.opened_category,
            rates,
        }
    }

    /// Counts a call of the closed breaker in the window, if there is one; `Some` when a rate
    /// rule opens the breaker.
    fn record_call(
        &mut self,
        ticket: Ticket,
        failure: bool,
        clock: &dyn Clock,
    ) -> Option<OpenCause> {
        let rates = self.rates.as_mut()?;
        // The clock is read only when the answer depends on it: a time window, a timed call.
        let now = (rates.needs_time() || matches!(ticket, Ticket::Timed(_))).then(|| clock.now());
        let slow = rates.is_slow(ticket, now);
        rates.record(Mark { failure, slow }, now)
    }

    /// Asks to admit one call. The transition, if any, is OPEN -> HALF_OPEN (the first call at or
    /// after `open_until`).
    pub(crate) fn acquire(&mut self, clock: &dyn Clock) -> (Result<Ticket, Refusal>, Transitions) {
        let mut changes = Transitions::default();
        match self.control {
            BreakerControl::Disabled => return (Ok(Ticket::Closed), changes),
            BreakerControl::ForcedOpen => return (Err(Refusal::Forced), changes),
            BreakerControl::Auto => {}
        }
        if self.state == CircuitState::Closed {
            let timed = self.rates.as_ref().is_some_and(|r| r.timed());
            let ticket = if timed {
                Ticket::Timed(start_of(clock.now()))
            } else {
                Ticket::Closed
            };
            return (Ok(ticket), changes);
        }
        let now = clock.now();
        changes.push(self.expire_half_open(clock));
        if self.state == CircuitState::Open {
            if now < self.open_until {
                return (Err(self.open_refusal()), changes);
            }
            changes.push(self.enter(CircuitState::HalfOpen, now));
        }
        self.leases.retain(|l| l.is_live(now));
        if self.leases.len() >= self.config.half_open_max_calls as usize {
            return (Err(Refusal::Full), changes);
        }
        let id = self.next_lease;
        // Ids fit a packed permit (see `permit`), three bits short of a u64.
        self.next_lease = self.next_lease.wrapping_add(1) & (u64::MAX >> 3);
        self.leases.push(Lease {
            id,
            expires: (!self.current_timeout.is_zero())
                .then(|| now.saturating_add(self.current_timeout)),
        });
        (Ok(Ticket::HalfOpen(id)), changes)
    }

    /// Whether a result of a call admitted in `epoch` with `ticket` still counts; takes its lease
    /// back if it does.
    fn admits_result(&mut self, epoch: u64, ticket: Ticket, clock: &dyn Clock) -> bool {
        if epoch != self.epoch || self.control != BreakerControl::Auto {
            return false;
        }
        match (self.state, ticket) {
            (CircuitState::Closed, Ticket::Closed | Ticket::Timed(_)) => true,
            (CircuitState::HalfOpen, Ticket::HalfOpen(id)) => {
                match self.leases.iter().position(|l| l.id == id) {
                    Some(i) => {
                        // A trial whose lease ran out no longer holds its slot (DESIGN.md), so
                        // its result no longer counts either: whether another call took the
                        // slot meanwhile must not decide it.
                        let live = self.leases[i].is_live(clock.now());
                        self.leases.swap_remove(i);
                        live
                    }
                    // The lease ran out and its slot went to another trial call.
                    None => false,
                }
            }
            _ => false,
        }
    }

    /// A call admitted in `epoch` with `ticket` succeeded. Half-open, a success is a success
    /// even when slow: `success_threshold` of them close the breaker (see `CircuitBreaker`'s
    /// docs on the half-open rule).
    pub(crate) fn on_success(
        &mut self,
        epoch: u64,
        ticket: Ticket,
        clock: &dyn Clock,
    ) -> Transitions {
        let mut changes = Transitions::from(self.expire_half_open(clock));
        if !self.admits_result(epoch, ticket, clock) {
            return changes;
        }
        match self.state {
            CircuitState::Closed => {
                self.failure_count = 0;
                if let Some(cause) = self.record_call(ticket, false, clock) {
                    changes.push(self.trip(cause, clock.now()));
                }
            }
            CircuitState::HalfOpen => {
                self.success_count = self.success_count.saturating_add(1);
                if self.success_count >= self.config.success_threshold {
                    changes.push(self.enter(CircuitState::Closed, clock.now()));
                }
            }
            CircuitState::Open => {}
        }
        changes
    }

    /// A call admitted in `epoch` with `ticket` failed with a retryable error.
    pub(crate) fn on_failure(
        &mut self,
        epoch: u64,
        ticket: Ticket,
        category: Option<ErrorCategory>,
        clock: &dyn Clock,
    ) -> Transitions {
        let mut changes = Transitions::from(self.expire_half_open(clock));
        if !self.admits_result(epoch, ticket, clock) {
            return changes;
        }
        self.last_failure = category;
        match self.state {
            CircuitState::Closed => {
                self.failure_count = self.failure_count.saturating_add(1);
                let by_rate = self.record_call(ticket, true, clock);
                // With a failure-rate rule the consecutive rule is not used (failure_count is
                // still kept, for the status).
                let consecutive = !self.rates.as_ref().is_some_and(|r| r.has_failure_rate())
                    && self.failure_count >= self.config.failure_threshold;
                let cause = by_rate.or(consecutive.then_some(OpenCause::ConsecutiveFailures));
                if let Some(cause) = cause {
                    changes.push(self.trip(cause, clock.now()));
                }
            }
            CircuitState::HalfOpen => {
                changes.push(self.reopen(OpenCause::TrialFailure, clock.now()));
            }
            CircuitState::Open => {}
        }
        changes
    }

    /// A call ended without saying anything about the service: gives its trial slot back.
    pub(crate) fn on_release(
        &mut self,
        epoch: u64,
        ticket: Ticket,
        clock: &dyn Clock,
    ) -> Transitions {
        let changes = Transitions::from(self.expire_half_open(clock));
        self.admits_result(epoch, ticket, clock);
        changes
    }

    /// Back to closed and automatic, counts and ladder cleared.
    pub(crate) fn reset(&mut self, clock: &dyn Clock) -> Option<Transition> {
        self.control = BreakerControl::Auto;
        self.enter(CircuitState::Closed, clock.now())
    }

    /// Open until reset.
    pub(crate) fn force_open(&mut self, clock: &dyn Clock) -> Option<Transition> {
        self.control = BreakerControl::ForcedOpen;
        self.opened_by = None;
        self.opened_category = None;
        self.last_failure = None;
        self.enter(CircuitState::Open, clock.now())
    }

    /// Closed until reset, counting nothing.
    pub(crate) fn disable(&mut self, clock: &dyn Clock) -> Option<Transition> {
        self.control = BreakerControl::Disabled;
        self.enter(CircuitState::Closed, clock.now())
    }

    /// The status as of `now` (monotonic) and `unix_now` (wall clock), without changing anything:
    /// an open breaker whose time has come reads half-open with no call in flight.
    pub(crate) fn status(&self, now: Duration, unix_now: Duration) -> CircuitBreakerStatus {
        // What `acquire` would make of the breaker now, without doing it: a half-open breaker
        // past its max wait re-opened (`expired`), an open one past its deadline half-open.
        let (mut state, mut open_until, mut timeout) =
            (self.state, self.open_until, self.current_timeout);
        let expired = self.half_open_expiry().is_some_and(|at| now >= at);
        if let Some(at) = self.half_open_expiry().filter(|_| expired) {
            timeout = next_open_timeout(
                timeout,
                self.config.open_timeout_increment_factor,
                self.config.max_open_timeout,
            );
            state = CircuitState::Open;
            open_until = at.saturating_add(timeout);
        }
        let due = self.control == BreakerControl::Auto
            && state == CircuitState::Open
            && now >= open_until;
        if due {
            state = CircuitState::HalfOpen;
        }
        let open_until = (state == CircuitState::Open && self.control == BreakerControl::Auto)
            .then(|| {
                unix_now
                    .saturating_add(open_until.saturating_sub(now))
                    .as_secs_f64()
            });
        let half_open_calls = if self.state == CircuitState::HalfOpen && !expired {
            self.leases.iter().filter(|l| l.is_live(now)).count()
        } else {
            0
        };
        let tally = self.rates.as_ref().map(|r| r.tally(now));
        let rate =
            |f: fn(&super::window::Tally) -> f64| tally.filter(|t| t.calls > 0).as_ref().map(f);
        CircuitBreakerStatus {
            state,
            failure_count: self.failure_count,
            success_count: if due || expired {
                0
            } else {
                self.success_count
            },
            open_until,
            current_timeout: timeout.as_secs_f64(),
            half_open_calls: u32::try_from(half_open_calls).unwrap_or(u32::MAX),
            control: self.control,
            window_calls: tally.map(|t| u32::try_from(t.calls).unwrap_or(u32::MAX)),
            failure_rate: rate(super::window::Tally::failure_rate),
            slow_call_rate: rate(super::window::Tally::slow_call_rate),
        }
    }

    /// The values the state file keeps, to tell whether a change needs a write.
    pub(crate) fn persisted(&self) -> Persisted {
        Persisted {
            state: self.state,
            control: self.control,
            failure_count: self.failure_count,
            success_count: self.success_count,
            open_until: self.open_until,
            current_timeout: self.current_timeout,
        }
    }

    /// What the state file keeps of this breaker. Wall-clock deadline, since monotonic readings
    /// mean nothing to the next process.
    pub(crate) fn record(&self, now: Duration, unix_now: Duration) -> Record {
        let open_until_unix = (self.state == CircuitState::Open
            && self.control == BreakerControl::Auto)
            .then(|| unix_now.saturating_add(self.open_until.saturating_sub(now)));
        Record {
            state: self.state,
            control: self.control,
            failure_count: self.failure_count,
            success_count: self.success_count,
            open_until_unix_ms: open_until_unix.map(millis_ceil),
            current_timeout_ms: millis(self.current_timeout),
        }
    }

    /// A breaker as a previous process left it, checked as a whole and repaired where it
    /// contradicts itself; the repairs made, for the caller to report (the rules are in the
    /// `persist` module docs). An open breaker keeps the rest of its time, never more than its
    /// open timeout, itself never more than `config.max_open_timeout`; a half-open one has no
    /// trial call in flight.
    pub(crate) fn restore(
        config: &CircuitBreakerConfig,
        record: &Record,
        now: Duration,
        unix_now: Duration,
    ) -> (Self, Vec<&'static str>) {
        let mut repairs = Vec::new();
        let mut machine = Machine::new(config);
        machine.control = record.control;
        // The operator's control wins: it was set on purpose, the state may be a leftover.
        machine.state = match (record.control, record.state) {
            (BreakerControl::ForcedOpen, state) if state != CircuitState::Open => {
                repairs.push("forced open but not OPEN: restored OPEN");
                CircuitState::Open
            }
            (BreakerControl::Disabled, state) if state != CircuitState::Closed => {
                repairs.push("disabled but not CLOSED: restored CLOSED");
                CircuitState::Closed
            }
            (_, state) => state,
        };
        machine.failure_count = record.failure_count;
        if record.control == BreakerControl::Disabled && record.failure_count != 0 {
            repairs.push("failures counted while disabled: cleared");
            machine.failure_count = 0;
        }
        if machine.state == CircuitState::HalfOpen {
            // Half-open from now: `max_half_open_wait` runs from the restart.
            machine.open_until = now;
            machine.success_count = record.success_count;
        } else if record.success_count != 0 {
            repairs.push("a success count outside HALF_OPEN: cleared");
        }
        let max_open = machine.config.max_open_timeout;
        machine.current_timeout = Duration::from_millis(record.current_timeout_ms);
        if machine.current_timeout > max_open {
            repairs.push("an open timeout above max_open_timeout: cut to it");
            machine.current_timeout = max_open;
        }
        let open_on_its_own =
            machine.state == CircuitState::Open && machine.control == BreakerControl::Auto;
        match (open_on_its_own, record.open_until_unix_ms) {
            (true, Some(ms)) => {
                let remaining = Duration::from_millis(ms).saturating_sub(unix_now);
                if remaining > machine.current_timeout {
                    repairs.push(
                        "open until further ahead than its open timeout (a bad record, or a wall clock that went back): cut to the timeout",
                    );
                }
                machine.open_until = now.saturating_add(remaining.min(machine.current_timeout));
            }
            (true, None) => {
                repairs.push("OPEN with no deadline: open for its open timeout from now");
                machine.open_until = now.saturating_add(machine.current_timeout);
            }
            (false, Some(_)) => {
                repairs.push("a deadline on a breaker that is not open on its own: ignored");
            }
            (false, None) => {}
        }
        (machine, repairs)
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Rounded up, so a restored breaker never opens for less than it should.
fn millis_ceil(d: Duration) -> u64 {
    let ms = millis(d);
    if d > Duration::from_millis(ms) {
        ms.saturating_add(1)
    } else {
        ms
    }
}

/// `config` behind an `Arc`, shared with the breakers configured the same way last: programs
/// give most of their breakers one configuration, and a copy per breaker would be most of a
/// breaker's memory.
fn shared_config(config: &CircuitBreakerConfig) -> Arc<CircuitBreakerConfig> {
    static LAST: Mutex<Option<Arc<CircuitBreakerConfig>>> = Mutex::new(None);
    let mut last = LAST.lock();
    match &*last {
        Some(shared) if **shared == *config => Arc::clone(shared),
        _ => {
            let shared = Arc::new(config.clone());
            *last = Some(Arc::clone(&shared));
            shared
        }
    }
}
