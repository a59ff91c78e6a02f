//! The gate of one breaker shared through a store: what the fleet decided, applied in front of
//! the process's own breaker.
//!
//! The store's background sync writes the shared state here; a call reads it only on the
//! breaker's slow path (the breaker clears its word's clean bit while the gate is active), so a
//! call through a closed breaker that nobody shares anything about costs what it cost without a
//! store. While the fleet has the breaker open or half-open the gate alone decides (the local
//! breaker keeps its own view for the quorum); while the fleet has it closed, the local breaker
//! decides.

// Without feature `redis` no store makes gates: the breaker's side of them stays compiled (it
// is a few branches on the slow path) but nothing calls the store's side.
#![cfg_attr(not(feature = "redis"), allow(dead_code))]

use crate::Clock;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

/// What a store does when it cannot be reached.
///
/// ```
/// use resilience_core::StoreFallback;
/// assert_eq!(StoreFallback::default(), StoreFallback::Local);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreFallback {
    /// Each process goes on with its own breakers (and state file, if any): the default.
    #[default]
    Local,
    /// Every call is let through uncounted until the store is back.
    FailOpen,
    /// Every call is rejected until the store is back.
    FailClosed,
}

/// The breaker a gate stands in front of, as the gate needs it: to republish its hot-path word
/// after the gate changed, and to close it when the fleet closed the shared breaker.
pub(crate) trait GatedBreaker: Send + Sync {
    fn republish(&self);
    fn close_if_auto(&self);
}

/// The lease id of a call the gate let through uncounted (the fleet disabled the breaker, or
/// the store is down and the fallback is `FailOpen`); any other id is a fleet-wide trial call's.
pub(crate) const UNCOUNTED: u64 = u64::MAX;

/// Why the gate refused a call.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum GateRefusal {
    /// The fleet has the breaker open for another `remaining`.
    Open { remaining: Duration },
    /// The fleet has the breaker half-open and this process holds no free trial lease.
    Full,
    /// An operator forced the breaker open for the fleet.
    Forced,
    /// A `retry_after` hint pauses calls for another `remaining`.
    Paused { remaining: Duration },
    /// The store is unreachable and the fallback is `FailClosed`.
    StoreDown,
}

/// The gate's answer for one call.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum GateDecision {
    /// The local breaker decides.
    Pass,
    /// Admitted without the local breaker: a trial lease id, or [`UNCOUNTED`].
    Admit(u64),
    Refuse(GateRefusal),
}

/// How a fleet-wide trial call ended, for the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ProbeOutcome {
    Success,
    Failure,
    Neutral,
}

/// A trial call's result waiting to be sent to the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ProbeReport {
    pub(crate) generation: u64,
    pub(crate) lease: u64,
    pub(crate) outcome: ProbeOutcome,
}

/// The fleet's state of a shared breaker (the breaker module maps it to its own state type).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum FleetState {
    #[default]
    Closed,
    Open,
    HalfOpen,
}

/// An operator's control of a shared breaker (mapped to the breaker module's own type).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum FleetControl {
    #[default]
    Auto,
    ForcedOpen,
    Disabled,
}

/// The shared state as the store last told it, in this process's monotonic time.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct SharedState {
    pub(crate) state: FleetState,
    pub(crate) generation: u64,
    /// While open: when the fleet's open period ends.
    pub(crate) open_until: Option<Duration>,
    pub(crate) pause_until: Option<Duration>,
    pub(crate) control: FleetControl,
    /// When an operator's control ends; `None`: until cleared.
    pub(crate) control_until: Option<Duration>,
    pub(crate) live_instances: u32,
    pub(crate) open_instances: Vec<String>,
}

impl Default for SharedState {
    fn default() -> Self {
        SharedState {
            state: FleetState::Closed,
            generation: 0,
            open_until: None,
            pause_until: None,
            control: FleetControl::Auto,
            control_until: None,
            live_instances: 0,
            open_instances: Vec::new(),
        }
    }
}

/// An operator's command for the whole fleet, waiting to be sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FleetCommand {
    ForceOpen(Option<Duration>),
    Disable(Option<Duration>),
    Clear,
}

/// A trial lease granted by the store, not yet used by a call.
#[derive(Clone, Copy, Debug)]
struct Token {
    lease: u64,
    generation: u64,
    expires: Duration,
}

#[derive(Debug, Default)]
struct GateState {
    shared: SharedState,
    /// `Some` while the store is unreachable.
    fallback: Option<StoreFallback>,
    tokens: Vec<Token>,
    /// Trial calls admitted and not yet ended: (lease, generation).
    running: Vec<(u64, u64)>,
    reports: Vec<ProbeReport>,
    /// A call was refused for want of a trial lease: ask the store for one.
    demand: bool,
    pause_request: Option<Duration>,
    command: Option<FleetCommand>,
    /// Whether the shared state has been read from the store at least once.
    joined: bool,
}

/// The settings of the local breaker the store's scripts need.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Knobs {
    pub(crate) reset_timeout: Duration,
    pub(crate) max_open_timeout: Duration,
    pub(crate) factor: f64,
    pub(crate) half_open_max_calls: u32,
    pub(crate) success_threshold: u32,
    pub(crate) max_half_open_wait: Option<Duration>,
}

impl Default for Knobs {
    fn default() -> Self {
        let c = crate::CircuitBreakerConfig::default();
        Knobs::of(&c)
    }
}

impl Knobs {
    pub(crate) fn of(c: &crate::CircuitBreakerConfig) -> Self {
        Knobs {
            reset_timeout: c.reset_timeout,
            max_open_timeout: c.max_open_timeout,
            factor: c.open_timeout_increment_factor,
            half_open_max_calls: c.half_open_max_calls,
            success_threshold: c.success_threshold,
            max_half_open_wait: c.max_half_open_wait,
        }
    }
}

/// The gate of one breaker. Held by the breaker (to ask it) and by the store's sync (to feed it).
pub(crate) struct Gate {
    service: Arc<str>,
    operation: Arc<str>,
    clock: Arc<dyn Clock>,
    /// Whether the gate has anything to say: read by the breaker when it republishes its word.
    active: AtomicBool,
    /// Whether the local breaker is open by its own rules (its vote for the quorum).
    local_open: AtomicBool,
    knobs: Mutex<Knobs>,
    state: Mutex<GateState>,
    /// Episodes of falling back to local state because the store was unreachable.
    fallbacks: AtomicU64,
    /// Something to send, or the fleet announced a change: the next round must include this
    /// breaker (an idle one is otherwise only synced for its heartbeat).
    dirty: AtomicBool,
    breaker: OnceLock<Weak<dyn GatedBreaker>>,
    /// Starts a round of the store's sync at once: a change of this process's vote, a pause or
    /// a trial result must not wait for the next interval.
    waker: OnceLock<Waker>,
}

/// Starts a round of a store's sync.
pub(crate) type Waker = Arc<dyn Fn() + Send + Sync>;

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("service", &self.service)
            .field("operation", &self.operation)
            .field("active", &self.active)
            .field("state", &*self.state.lock())
            .finish_non_exhaustive()
    }
}

impl Gate {
    pub(crate) fn new(service: Arc<str>, operation: Arc<str>, clock: Arc<dyn Clock>) -> Self {
        Gate {
            service,
            operation,
            clock,
            active: AtomicBool::new(false),
            local_open: AtomicBool::new(false),
            knobs: Mutex::new(Knobs::default()),
            state: Mutex::new(GateState::default()),
            fallbacks: AtomicU64::new(0),
            dirty: AtomicBool::new(true),
            breaker: OnceLock::new(),
            waker: OnceLock::new(),
        }
    }

    pub(crate) fn service(&self) -> &str {
        &self.service
    }

    pub(crate) fn operation(&self) -> &str {
        &self.operation
    }

    pub(crate) fn attach(&self, breaker: Weak<dyn GatedBreaker>) {
        let _ = self.breaker.set(breaker);
    }

    pub(crate) fn set_waker(&self, waker: Waker) {
        let _ = self.waker.set(waker);
    }

    /// Marks the breaker for the next round and starts it.
    pub(crate) fn wake(&self) {
        self.dirty.store(true, Ordering::Release);
        if let Some(wake) = self.waker.get() {
            wake();
        }
    }

    /// Whether the next round must include this breaker whatever its heartbeat.
    pub(crate) fn needs_round(&self) -> bool {
        self.dirty.load(Ordering::Acquire) || self.is_active()
    }

    /// Whether the breaker behind the gate still exists.
    pub(crate) fn is_orphan(&self) -> bool {
        self.breaker
            .get()
            .is_some_and(|weak| weak.strong_count() == 0)
    }

    /// Whether calls must ask the gate (the breaker's word loses its clean bit).
    #[inline]
    pub(crate) fn is_active(&self) -> bool {
        self.active.load(Ordering::Acquire)
    }

    /// The local breaker's own view changed (called with the breaker's lock held).
    pub(crate) fn set_local_open(&self, open: bool) {
        if self.local_open.swap(open, Ordering::Relaxed) != open {
            self.wake();
        }
    }

    pub(crate) fn local_open(&self) -> bool {
        self.local_open.load(Ordering::Relaxed)
    }

    pub(crate) fn set_knobs(&self, knobs: Knobs) {
        *self.knobs.lock() = knobs;
    }

    pub(crate) fn knobs(&self) -> Knobs {
        *self.knobs.lock()
    }

    /// Decides one call.
    pub(crate) fn decide(&self) -> GateDecision {
        let now = self.clock.now();
        let mut g = self.state.lock();
        if let Some(fallback) = g.fallback {
            return match fallback {
                StoreFallback::Local => GateDecision::Pass,
                StoreFallback::FailOpen => GateDecision::Admit(UNCOUNTED),
                StoreFallback::FailClosed => GateDecision::Refuse(GateRefusal::StoreDown),
            };
        }
        let live_control = match g.shared.control_until {
            Some(until) if until <= now => FleetControl::Auto,
            _ => g.shared.control,
        };
        match live_control {
            FleetControl::ForcedOpen => return GateDecision::Refuse(GateRefusal::Forced),
            FleetControl::Disabled => return GateDecision::Admit(UNCOUNTED),
            FleetControl::Auto => {}
        }
        if let Some(until) = g.shared.pause_until.filter(|&u| u > now) {
            return GateDecision::Refuse(GateRefusal::Paused {
                remaining: until - now,
            });
        }
        match g.shared.state {
            FleetState::Closed => GateDecision::Pass,
            FleetState::Open if g.shared.open_until.is_some_and(|u| u > now) => {
                let until = g.shared.open_until.unwrap_or(now);
                GateDecision::Refuse(GateRefusal::Open {
                    remaining: until - now,
                })
            }
            FleetState::Open | FleetState::HalfOpen => {
                g.tokens.retain(|t| t.expires > now);
                match g.tokens.pop() {
                    Some(t) => {
                        g.running.push((t.lease, t.generation));
                        GateDecision::Admit(t.lease)
                    }
                    None => {
                        let first = !std::mem::replace(&mut g.demand, true);
                        drop(g);
                        if first {
                            self.wake();
                        }
                        GateDecision::Refuse(GateRefusal::Full)
                    }
                }
            }
        }
    }

    /// A trial call admitted by the gate ended.
    pub(crate) fn report(&self, lease: u64, outcome: ProbeOutcome) {
        if lease == UNCOUNTED {
            return;
        }
        let mut g = self.state.lock();
        if let Some(i) = g.running.iter().position(|&(l, _)| l == lease) {
            let (_, generation) = g.running.swap_remove(i);
            g.reports.push(ProbeReport {
                generation,
                lease,
                outcome,
            });
            drop(g);
            self.wake();
        }
    }

    /// What is left of the fleet's `retry_after` pause, if it is in one.
    pub(crate) fn pause_remaining(&self) -> Option<Duration> {
        let now = self.clock.now();
        let g = self.state.lock();
        if g.fallback.is_some() {
            return None;
        }
        g.shared.pause_until.filter(|&u| u > now).map(|u| u - now)
    }

    /// A call of this process saw a `retry_after` hint: the fleet pauses for as long.
    pub(crate) fn request_pause(&self, hint: Duration) {
        {
            let mut g = self.state.lock();
            g.pause_request = Some(g.pause_request.map_or(hint, |p| p.max(hint)));
        }
        self.wake();
    }

    pub(crate) fn command(&self, command: FleetCommand) {
        self.state.lock().command = Some(command);
        self.wake();
    }

    /// What the next round sends for this breaker; taken, so it is sent once (a failed round
    /// gives it back with [`restore`](Self::restore)).
    pub(crate) fn take_outbox(&self) -> Outbox {
        self.dirty.store(false, Ordering::Release);
        let mut g = self.state.lock();
        let now = self.clock.now();
        let remaining = |at: Option<Duration>| at.map(|u| u.saturating_sub(now));
        Outbox {
            local_open: self.local_open(),
            knobs: self.knobs(),
            demand: std::mem::take(&mut g.demand),
            pause: g.pause_request.take(),
            command: g.command.take(),
            reports: std::mem::take(&mut g.reports),
            seed: g.joined.then(|| {
                let control_live = g.shared.control_until.is_none_or(|u| u > now);
                Seed {
                    generation: g.shared.generation,
                    open_remaining: if g.shared.state == FleetState::Open {
                        remaining(g.shared.open_until).unwrap_or_default()
                    } else {
                        Duration::ZERO
                    },
                    pause_remaining: remaining(g.shared.pause_until).unwrap_or_default(),
                    control: if control_live {
                        g.shared.control
                    } else {
                        FleetControl::Auto
                    },
                    control_remaining: remaining(g.shared.control_until),
                }
            }),
        }
    }

    /// Puts back what a failed round could not send.
    pub(crate) fn restore(&self, outbox: Outbox) {
        self.dirty.store(true, Ordering::Release);
        let mut g = self.state.lock();
        g.demand |= outbox.demand;
        if let Some(p) = outbox.pause {
            g.pause_request = Some(g.pause_request.map_or(p, |q| q.max(p)));
        }
        if g.command.is_none() {
            g.command = outbox.command;
        }
        let mut reports = outbox.reports;
        reports.append(&mut g.reports);
        g.reports = reports;
    }

    /// Applies what the store answered: `shared` in this process's time, new trial leases, and
    /// whether the store had lost the record (re-created from what this process knew).
    pub(crate) fn apply(
        &self,
        shared: SharedState,
        leases: &[u64],
        lease_ttl: Duration,
        recreated: bool,
    ) {
        let now = self.clock.now();
        let closed_by_fleet;
        {
            let mut g = self.state.lock();
            let was_in_fallback = g.fallback.take().is_some();
            // Only trial calls of the fleet close the shared breaker. A record re-created after
            // an outage of the store, or first read after one, says nothing about the service,
            // so this process's own breaker (which may have reopened meanwhile) keeps its state.
            closed_by_fleet = !was_in_fallback
                && !recreated
                && g.joined
                && shared.generation != g.shared.generation
                && shared.state == FleetState::Closed
                && g.shared.state != FleetState::Closed;
            if shared.generation != g.shared.generation {
                // Leases of an older generation are worth nothing.
                g.tokens.clear();
            }
            g.tokens.extend(leases.iter().map(|&lease| Token {
                lease,
                generation: shared.generation,
                expires: now.saturating_add(lease_ttl),
            }));
            g.shared = shared;
            g.joined = true;
            let active = Self::has_something_to_say(&g, now);
            self.active.store(active, Ordering::Release);
        }
        if closed_by_fleet {
            if let Some(b) = self.breaker.get().and_then(Weak::upgrade) {
                b.close_if_auto();
            }
        }
        self.republish();
    }

    /// The store could not be reached: `true` when this starts a fallback episode.
    pub(crate) fn fall_back(&self, mode: StoreFallback) -> bool {
        let started = {
            let mut g = self.state.lock();
            let started = g.fallback.is_none();
            g.fallback = Some(mode);
            g.tokens.clear();
            self.active
                .store(mode != StoreFallback::Local, Ordering::Release);
            started
        };
        if started {
            self.fallbacks.fetch_add(1, Ordering::Relaxed);
            // Published as it happens: episodes are rare, so no handle is kept per breaker.
            #[cfg(feature = "metrics")]
            metrics::counter!(
                "resilience_store_fallbacks_total",
                "component" => self.service.to_string(),
                "operation" => self.operation.to_string()
            )
            .increment(1);
        }
        self.republish();
        started
    }

    fn has_something_to_say(g: &GateState, now: Duration) -> bool {
        g.shared.state != FleetState::Closed
            || (g.shared.control != FleetControl::Auto
                && g.shared.control_until.is_none_or(|u| u > now))
            || g.shared.pause_until.is_some_and(|u| u > now)
    }

    fn republish(&self) {
        if let Some(b) = self.breaker.get().and_then(Weak::upgrade) {
            b.republish();
        }
    }

    /// Episodes of falling back to local state so far.
    pub(crate) fn fallbacks(&self) -> u64 {
        self.fallbacks.load(Ordering::Relaxed)
    }

    /// The shared state as last read, whether the store is reachable, and this process's own
    /// view.
    pub(crate) fn snapshot(&self) -> (SharedState, bool) {
        let g = self.state.lock();
        (g.shared.clone(), g.fallback.is_none() && g.joined)
    }

    pub(crate) fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }
}

/// What one round sends for one breaker.
#[derive(Clone, Debug)]
pub(crate) struct Outbox {
    pub(crate) local_open: bool,
    pub(crate) knobs: Knobs,
    pub(crate) demand: bool,
    pub(crate) pause: Option<Duration>,
    pub(crate) command: Option<FleetCommand>,
    pub(crate) reports: Vec<ProbeReport>,
    /// What this process last knew, to re-create a lost shared record (set-if-absent).
    pub(crate) seed: Option<Seed>,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Seed {
    pub(crate) generation: u64,
    pub(crate) open_remaining: Duration,
    /// What is left of a shared `Retry-After` pause (zero: none).
    pub(crate) pause_remaining: Duration,
    /// An operator's control in force, and what is left of it (`None`: until cleared).
    pub(crate) control: FleetControl,
    pub(crate) control_remaining: Option<Duration>,
}
