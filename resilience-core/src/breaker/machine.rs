//! The state machine of one breaker, as plain data. It never reads a clock by itself: callers
//! pass one in, and it is read only when the answer depends on time (an open or half-open
//! breaker, or a failure that trips a closed one).
//!
//! Every change of state starts a new *epoch*. A permit remembers the epoch it was admitted in,
//! and its result counts only if the breaker is still in that epoch: a call admitted while closed
//! that ends after the breaker opened (or went half-open) changes nothing.

use super::persist::Record;
use super::{BreakerControl, CircuitBreakerStatus, CircuitState};
use crate::policy::{next_open_timeout, repair_breaker, CircuitBreakerConfig};
use crate::Clock;
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::Duration;

/// A state change, for listeners.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Transition {
    pub(crate) from: CircuitState,
    pub(crate) to: CircuitState,
}

/// What an admitted call holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ticket {
    /// Admitted while closed (or disabled).
    Closed,
    /// Admitted as a trial call while half-open, holding the lease with this id.
    HalfOpen(u64),
}

/// Why a call was not admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Open until this monotonic time.
    Open(Duration),
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
    /// Monotonic time at which an open breaker turns half-open.
    open_until: Duration,
    current_timeout: Duration,
    leases: Vec<Lease>,
    next_lease: u64,
}

impl Machine {
    pub(crate) fn new(config: &CircuitBreakerConfig) -> Self {
        let config = shared_config(config);
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
        }
    }

    pub(crate) fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Whether a call may be admitted and its success recorded without the lock: closed with no
    /// failure counted, or disabled.
    pub(crate) fn is_clean(&self) -> bool {
        self.control == BreakerControl::Disabled
            || (self.state == CircuitState::Closed && self.failure_count == 0)
    }

    pub(crate) fn configure(&mut self, config: &CircuitBreakerConfig) {
        if *self.config == *config {
            return;
        }
        let mut repaired = config.clone();
        repair_breaker(&mut repaired);
        let config = shared_config(&repaired);
        if self.state == CircuitState::Closed {
            self.current_timeout = config.reset_timeout;
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

    fn enter(&mut self, to: CircuitState, clock: &dyn Clock) -> Option<Transition> {
        let from = self.state;
        self.state = to;
        self.epoch = self.epoch.wrapping_add(1);
        self.leases.clear();
        self.success_count = 0;
        match to {
            CircuitState::Closed => {
                self.failure_count = 0;
                self.current_timeout = self.config.reset_timeout;
            }
            CircuitState::Open => {
                self.open_until = clock.now().saturating_add(self.current_timeout);
            }
            CircuitState::HalfOpen => {}
        }
        (from != to).then_some(Transition { from, to })
    }

    /// Asks to admit one call. The transition, if any, is OPEN -> HALF_OPEN (the first call at or
    /// after `open_until`).
    pub(crate) fn acquire(
        &mut self,
        clock: &dyn Clock,
    ) -> (Result<Ticket, Refusal>, Option<Transition>) {
        match self.control {
            BreakerControl::Disabled => return (Ok(Ticket::Closed), None),
            BreakerControl::ForcedOpen => return (Err(Refusal::Forced), None),
            BreakerControl::Auto => {}
        }
        let mut transition = None;
        let now = match self.state {
            CircuitState::Closed => return (Ok(Ticket::Closed), None),
            CircuitState::Open => {
                let now = clock.now();
                if now < self.open_until {
                    return (Err(Refusal::Open(self.open_until)), None);
                }
                transition = self.enter(CircuitState::HalfOpen, clock);
                now
            }
            CircuitState::HalfOpen => clock.now(),
        };
        self.leases.retain(|l| l.is_live(now));
        if self.leases.len() >= self.config.half_open_max_calls as usize {
            return (Err(Refusal::Full), transition);
        }
        let id = self.next_lease;
        self.next_lease = self.next_lease.wrapping_add(1);
        self.leases.push(Lease {
            id,
            expires: (!self.current_timeout.is_zero())
                .then(|| now.saturating_add(self.current_timeout)),
        });
        (Ok(Ticket::HalfOpen(id)), transition)
    }

    /// Whether a result of a call admitted in `epoch` with `ticket` still counts; takes its lease
    /// back if it does.
    fn admits_result(&mut self, epoch: u64, ticket: Ticket) -> bool {
        if epoch != self.epoch || self.control != BreakerControl::Auto {
            return false;
        }
        match (self.state, ticket) {
            (CircuitState::Closed, Ticket::Closed) => true,
            (CircuitState::HalfOpen, Ticket::HalfOpen(id)) => {
                match self.leases.iter().position(|l| l.id == id) {
                    Some(i) => {
                        self.leases.swap_remove(i);
                        true
                    }
                    // The lease ran out and its slot went to another trial call.
                    None => false,
                }
            }
            _ => false,
        }
    }

    pub(crate) fn on_success(
        &mut self,
        epoch: u64,
        ticket: Ticket,
        clock: &dyn Clock,
    ) -> Option<Transition> {
        if !self.admits_result(epoch, ticket) {
            return None;
        }
        match self.state {
            CircuitState::Closed => {
                self.failure_count = 0;
                None
            }
            CircuitState::HalfOpen => {
                self.success_count = self.success_count.saturating_add(1);
                if self.success_count >= self.config.success_threshold {
                    self.enter(CircuitState::Closed, clock)
                } else {
                    None
                }
            }
            CircuitState::Open => None,
        }
    }

    pub(crate) fn on_failure(
        &mut self,
        epoch: u64,
        ticket: Ticket,
        clock: &dyn Clock,
    ) -> Option<Transition> {
        if !self.admits_result(epoch, ticket) {
            return None;
        }
        match self.state {
            CircuitState::Closed => {
                self.failure_count = self.failure_count.saturating_add(1);
                if self.failure_count >= self.config.failure_threshold {
                    self.current_timeout = self.config.reset_timeout;
                    self.enter(CircuitState::Open, clock)
                } else {
                    None
                }
            }
            CircuitState::HalfOpen => {
                self.current_timeout = next_open_timeout(
                    self.current_timeout,
                    self.config.open_timeout_increment_factor,
                    self.config.max_open_timeout,
                );
                self.enter(CircuitState::Open, clock)
            }
            CircuitState::Open => None,
        }
    }

    /// A call ended without saying anything about the service: gives its trial slot back.
    pub(crate) fn on_release(&mut self, epoch: u64, ticket: Ticket) {
        self.admits_result(epoch, ticket);
    }

    /// Back to closed and automatic, counts and ladder cleared.
    pub(crate) fn reset(&mut self, clock: &dyn Clock) -> Option<Transition> {
        self.control = BreakerControl::Auto;
        self.enter(CircuitState::Closed, clock)
    }

    /// Open until reset.
    pub(crate) fn force_open(&mut self, clock: &dyn Clock) -> Option<Transition> {
        self.control = BreakerControl::ForcedOpen;
        self.enter(CircuitState::Open, clock)
    }

    /// Closed until reset, counting nothing.
    pub(crate) fn disable(&mut self, clock: &dyn Clock) -> Option<Transition> {
        self.control = BreakerControl::Disabled;
        self.enter(CircuitState::Closed, clock)
    }

    /// The status as of `now` (monotonic) and `unix_now` (wall clock), without changing anything:
    /// an open breaker whose time has come reads half-open with no call in flight.
    pub(crate) fn status(&self, now: Duration, unix_now: Duration) -> CircuitBreakerStatus {
        let due = self.control == BreakerControl::Auto
            && self.state == CircuitState::Open
            && now >= self.open_until;
        let state = if due {
            CircuitState::HalfOpen
        } else {
            self.state
        };
        let open_until = (state == CircuitState::Open && self.control == BreakerControl::Auto)
            .then(|| {
                unix_now
                    .saturating_add(self.open_until.saturating_sub(now))
                    .as_secs_f64()
            });
        let half_open_calls = if self.state == CircuitState::HalfOpen {
            self.leases.iter().filter(|l| l.is_live(now)).count()
        } else {
            0
        };
        CircuitBreakerStatus {
            state,
            failure_count: self.failure_count,
            success_count: if due { 0 } else { self.success_count },
            open_until,
            current_timeout: self.current_timeout.as_secs_f64(),
            half_open_calls: u32::try_from(half_open_calls).unwrap_or(u32::MAX),
            control: self.control,
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
