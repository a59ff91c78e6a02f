//! The registry of breakers, keyed by (service, operation), and its builder.

use super::circuit::Shared;
use super::listener::{EventBus, Listener, ListenerId, StateChange};
use super::machine::Machine;
use super::persist::{PersistStats, Sink, Writer};
use super::CircuitBreakerRegistryBuilder;
use super::{CircuitBreaker, CircuitBreakerStatus, PersistError};
use crate::policy::{key, CircuitBreakerConfig};
use crate::{Clock, SystemClock};
use parking_lot::RwLock;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// Breakers restored from a state file, not yet tied to a registry.
pub(super) type Restored = Vec<(Arc<str>, Arc<str>, Machine)>;

// Ordered: `status()` then walks the breakers in key order with nothing to sort. Calls never
// look breakers up here (they hold handles), so ordered look-ups cost nothing that matters.
// Names are `Arc<str>` shared with the breakers themselves: one copy of each name.
type Map = BTreeMap<Arc<str>, BTreeMap<Arc<str>, Arc<CircuitBreaker>>>;

/// Every breaker of a program, keyed by (service, operation). Share it between managers with an
/// `Arc`.
///
/// ```
/// use resilience_core::CircuitBreakerRegistry;
/// use std::sync::Arc;
/// let registry = CircuitBreakerRegistry::new();
/// let a = registry.get_breaker("svc", "op");
/// let b = registry.get_breaker("svc", "op");
/// assert!(Arc::ptr_eq(&a, &b));
/// ```
#[derive(Debug)]
pub struct CircuitBreakerRegistry {
    shared: Arc<Shared>,
    breakers: RwLock<Map>,
    /// The background sync with a Redis server shared by a fleet (feature `redis`): set when
    /// the registry is built or later by `share_through_redis`, never replaced.
    #[cfg(feature = "redis")]
    pub(super) redis: std::sync::OnceLock<crate::store::redis::RedisSync>,
    /// Dropped last: its drop writes whatever is still queued.
    writer: Option<Writer>,
}

impl Default for CircuitBreakerRegistry {
    fn default() -> Self {
        Self::new()
    }
}

impl CircuitBreakerRegistry {
    /// An empty registry on the system clock, kept in memory only.
    ///
    /// ```
    /// use resilience_core::CircuitBreakerRegistry;
    /// assert!(CircuitBreakerRegistry::new().status().is_empty());
    /// ```
    pub fn new() -> Self {
        Self::with_clock(Arc::new(SystemClock))
    }

    /// An empty registry whose breakers tell time by `clock`.
    ///
    /// ```
    /// use resilience_core::{CircuitBreakerRegistry, ManualClock};
    /// use std::sync::Arc;
    /// let registry = CircuitBreakerRegistry::with_clock(Arc::new(ManualClock::new()));
    /// # let _ = registry;
    /// ```
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        Self::from_parts(clock, EventBus::default(), None, Vec::new(), None)
    }

    /// A registry whose breakers' state is kept in the file at `path` across restarts, on the
    /// system clock. The file is read now: a missing file is normal, a bad one is moved aside
    /// with a warning (the breakers start closed). Fails only when the file's directory cannot
    /// be written or a directory is at `path`. See [`CircuitBreakerRegistryBuilder::state_file`]
    /// for the details.
    ///
    /// ```
    /// use resilience_core::{CircuitBreakerConfig, CircuitBreakerRegistry, CircuitState};
    /// let dir = tempfile::tempdir().unwrap();
    /// let path = dir.path().join("breakers.json");
    /// {
    ///     let registry = CircuitBreakerRegistry::with_state_file(&path).unwrap();
    ///     let breaker = registry.get_breaker("db", "query");
    ///     breaker.configure(&CircuitBreakerConfig { failure_threshold: 1, ..Default::default() });
    ///     breaker.try_acquire().unwrap().record_failure();
    /// } // dropping the registry writes what is still queued
    /// let registry = CircuitBreakerRegistry::with_state_file(&path).unwrap();
    /// assert_eq!(registry.get_breaker("db", "query").state(), CircuitState::Open);
    /// ```
    pub fn with_state_file(path: impl AsRef<Path>) -> Result<Self, PersistError> {
        Self::builder().state_file(path).build()
    }

    /// A builder, for a registry with a clock, a state file and listeners together.
    ///
    /// ```
    /// use resilience_core::{CircuitBreakerRegistry, ManualClock};
    /// use std::sync::Arc;
    /// let dir = tempfile::tempdir().unwrap();
    /// let registry = CircuitBreakerRegistry::builder()
    ///     .clock(Arc::new(ManualClock::new()))
    ///     .state_file(dir.path().join("breakers.json"))
    ///     .on_state_change(|c| println!("{}:{} {} -> {}", c.service, c.operation, c.from, c.to))
    ///     .build()
    ///     .unwrap();
    /// # let _ = registry;
    /// ```
    pub fn builder() -> CircuitBreakerRegistryBuilder {
        CircuitBreakerRegistryBuilder::default()
    }

    pub(super) fn from_parts(
        clock: Arc<dyn Clock>,
        events: EventBus,
        persist: Option<(Writer, Sink)>,
        restored: Restored,
        fleet: Option<super::shared::Fleet>,
    ) -> Self {
        let (writer, sink) = match persist {
            Some((writer, sink)) => (Some(writer), Some(sink)),
            None => (None, None),
        };
        let shared = Arc::new(Shared {
            clock,
            events,
            sink,
        });
        let mut map = Map::new();
        for (service, operation, machine) in restored {
            // Built directly in its restored state: loading announces no state change.
            let breaker = Arc::new(CircuitBreaker::new(
                Arc::clone(&service),
                Arc::clone(&operation),
                Arc::clone(&shared),
                machine,
            ));
            super::shared::share(fleet.as_ref(), &breaker);
            map.entry(service).or_default().insert(operation, breaker);
        }
        #[cfg(not(feature = "redis"))]
        let _ = fleet;
        CircuitBreakerRegistry {
            shared,
            breakers: RwLock::new(map),
            #[cfg(feature = "redis")]
            redis: fleet.map(std::sync::OnceLock::from).unwrap_or_default(),
            writer,
        }
    }

    /// The clock the breakers use.
    ///
    /// ```
    /// use resilience_core::{CircuitBreakerRegistry, Clock};
    /// let registry = CircuitBreakerRegistry::new();
    /// let _now = registry.clock().now();
    /// ```
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.shared.clock
    }

    /// The breaker for (service, operation), created closed on first use.
    ///
    /// ```
    /// use resilience_core::CircuitBreakerRegistry;
    /// let registry = CircuitBreakerRegistry::new();
    /// assert_eq!(registry.get_breaker("svc", "op").operation(), "op");
    /// ```
    pub fn get_breaker(&self, service: &str, operation: &str) -> Arc<CircuitBreaker> {
        if let Some(b) = self
            .breakers
            .read()
            .get(service)
            .and_then(|ops| ops.get(operation))
        {
            return Arc::clone(b);
        }
        let mut map = self.breakers.write();
        let service: Arc<str> = match map.get_key_value(service) {
            Some((name, _)) => Arc::clone(name),
            None => Arc::from(service),
        };
        let ops = map.entry(Arc::clone(&service)).or_default();
        if let Some(b) = ops.get(operation) {
            return Arc::clone(b); // created by another thread since the read above
        }
        let operation: Arc<str> = Arc::from(operation);
        let breaker = Arc::new(CircuitBreaker::new(
            service,
            Arc::clone(&operation),
            Arc::clone(&self.shared),
            Machine::new(&CircuitBreakerConfig::default()),
        ));
        ops.insert(operation, Arc::clone(&breaker));
        super::shared::share(self.fleet(), &breaker);
        breaker
    }

    /// Records a success outside a guarded call (the original's API). While the breaker
    /// rejects calls, nothing is recorded.
    ///
    /// ```
    /// use resilience_core::CircuitBreakerRegistry;
    /// let registry = CircuitBreakerRegistry::new();
    /// registry.report_success("svc", "op");
    /// assert_eq!(registry.status()["svc:op"].failure_count, 0);
    /// ```
    pub fn report_success(&self, service: &str, operation: &str) {
        let breaker = self.get_breaker(service, operation);
        if let Ok(permit) = breaker.try_acquire() {
            permit.record_success();
        };
    }

    /// Records a retryable failure outside a guarded call (the original's API), after applying
    /// `config` to the breaker. While the breaker rejects calls, nothing is recorded.
    ///
    /// ```
    /// use resilience_core::{CircuitBreakerConfig, CircuitBreakerRegistry};
    /// let registry = CircuitBreakerRegistry::new();
    /// registry.report_failure("svc", "op", &CircuitBreakerConfig::default());
    /// assert_eq!(registry.status()["svc:op"].failure_count, 1);
    /// ```
    pub fn report_failure(&self, service: &str, operation: &str, config: &CircuitBreakerConfig) {
        let breaker = self.get_breaker(service, operation);
        breaker.configure(config);
        if let Ok(permit) = breaker.try_acquire() {
            permit.record_failure();
        };
    }

    /// Every breaker's status as of now, keyed `"service:operation"`.
    ///
    /// ```
    /// use resilience_core::{CircuitBreakerRegistry, CircuitState};
    /// let registry = CircuitBreakerRegistry::new();
    /// registry.get_breaker("svc", "op");
    /// assert_eq!(registry.status()["svc:op"].state, CircuitState::Closed);
    /// ```
    pub fn status(&self) -> BTreeMap<String, CircuitBreakerStatus> {
        let (now, unix_now) = (self.shared.clock.now(), self.shared.clock.unix_now());
        // The map's lock is held only to copy the breakers: their statuses (each under its own
        // lock) are read after, so a new breaker never waits behind a status of all of them.
        let breakers: Vec<Arc<CircuitBreaker>> = {
            let map = self.breakers.read();
            map.values().flat_map(|ops| ops.values().cloned()).collect()
        };
        // The maps are ordered by (service, operation), which is the order of the
        // "service:operation" keys but for rare names (a service name that is a prefix of
        // another, followed by a character below ':', or an escaped one); the map's own stable
        // sort fixes those in one pass over already sorted runs.
        let all: Vec<(String, CircuitBreakerStatus)> = breakers
            .iter()
            .map(|b| (key(b.service(), b.operation()), b.status_at(now, unix_now)))
            .collect();
        BTreeMap::from_iter(all)
    }

    /// Closes the breaker of (service, operation) and clears its counters and open-timeout
    /// ladder; see [`CircuitBreaker::reset`].
    ///
    /// ```
    /// use resilience_core::{CircuitBreakerRegistry, CircuitState};
    /// let registry = CircuitBreakerRegistry::new();
    /// registry.force_open("svc", "op");
    /// registry.reset("svc", "op");
    /// assert_eq!(registry.get_breaker("svc", "op").state(), CircuitState::Closed);
    /// ```
    pub fn reset(&self, service: &str, operation: &str) {
        self.get_breaker(service, operation).reset();
    }

    /// Opens the breaker of (service, operation) until reset; see
    /// [`CircuitBreaker::force_open`].
    ///
    /// ```
    /// use resilience_core::{CircuitBreakerRegistry, CircuitState};
    /// let registry = CircuitBreakerRegistry::new();
    /// registry.force_open("svc", "op");
    /// assert_eq!(registry.status()["svc:op"].state, CircuitState::Open);
    /// ```
    pub fn force_open(&self, service: &str, operation: &str) {
        self.get_breaker(service, operation).force_open();
    }

    /// Keeps the breaker of (service, operation) closed until reset; see
    /// [`CircuitBreaker::disable`].
    ///
    /// ```
    /// use resilience_core::{BreakerControl, CircuitBreakerRegistry};
    /// let registry = CircuitBreakerRegistry::new();
    /// registry.disable("svc", "op");
    /// assert_eq!(registry.status()["svc:op"].control, BreakerControl::Disabled);
    /// ```
    pub fn disable(&self, service: &str, operation: &str) {
        self.get_breaker(service, operation).disable();
    }

    /// Calls `listener` on every state change of every breaker of this registry, after the
    /// change, in the order the changes happened. Every change is also logged as a `tracing`
    /// info event with the fields `component`, `operation`, `from` and `to`.
    ///
    /// OPEN -> HALF_OPEN is announced when the first call after the open timeout asks to run
    /// (the state reads half-open from that instant on, announced or not). Re-entering the same
    /// state (a reset of a closed breaker) and loading a state file announce nothing.
    ///
    /// ```
    /// use resilience_core::CircuitBreakerRegistry;
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use std::sync::Arc;
    /// let changes = Arc::new(AtomicU32::new(0));
    /// let counter = Arc::clone(&changes);
    /// let registry = CircuitBreakerRegistry::new();
    /// registry.on_state_change(move |_| { counter.fetch_add(1, Ordering::Relaxed); });
    /// registry.force_open("svc", "op");
    /// assert_eq!(changes.load(Ordering::Relaxed), 1);
    /// ```
    pub fn on_state_change(&self, listener: impl Fn(&StateChange<'_>) + Send + Sync + 'static) {
        self.shared.events.add(Arc::new(listener));
    }

    /// How many state-change listeners the registry holds: its own, and one per live manager
    /// built on it (a dropped manager removes its own).
    ///
    /// ```
    /// use resilience_core::{CircuitBreakerRegistry, RetryManager};
    /// use std::sync::Arc;
    /// let registry = Arc::new(CircuitBreakerRegistry::new());
    /// let manager = RetryManager::builder().circuit_breaker_registry(Arc::clone(&registry)).build().unwrap();
    /// assert_eq!(registry.listener_count(), 1);
    /// drop(manager);
    /// assert_eq!(registry.listener_count(), 0);
    /// ```
    pub fn listener_count(&self) -> usize {
        self.shared.events.len()
    }

    /// Adds a listener that its owner removes again (a manager, when it is dropped).
    pub(crate) fn add_listener(&self, listener: Listener) -> ListenerId {
        self.shared.events.add(listener)
    }

    /// Removes a listener added with [`add_listener`](Self::add_listener).
    pub(crate) fn remove_listener(&self, id: ListenerId) {
        self.shared.events.remove(id);
    }

    /// Removes `breaker` from the registry if it is still the one of its (service, operation),
    /// nobody but the registry and the caller holds it, it is closed, clean (no failure
    /// counted) and under no operator control. Whether it did. An evicted breaker's record
    /// stays in the state file.
    pub(crate) fn evict_if_idle(&self, breaker: &Arc<CircuitBreaker>) -> bool {
        let mut map = self.breakers.write();
        let Some(ops) = map.get_mut(breaker.service()) else {
            return false;
        };
        match ops.get(breaker.operation()) {
            Some(b) if Arc::ptr_eq(b, breaker) && Arc::strong_count(b) == 2 => {}
            _ => return false,
        }
        let status = breaker.status();
        let quiet = status.state == super::CircuitState::Closed
            && status.failure_count == 0
            && status.control == super::BreakerControl::Auto
            // What a fleet decided about it would be forgotten until the next sync.
            && !breaker.gate().is_some_and(|gate| gate.is_active());
        if !quiet {
            return false;
        }
        ops.remove(breaker.operation());
        if ops.is_empty() {
            map.remove(breaker.service());
        }
        true
    }

    /// A breaker for (service, operation) that is not in the registry: never listed, never
    /// persisted. Calls that bypass their breaker hold one so that their handle has the same
    /// shape as every other; nothing ever asks it anything.
    pub(crate) fn detached_breaker(&self, service: &str, operation: &str) -> Arc<CircuitBreaker> {
        Arc::new(CircuitBreaker::new(
            Arc::from(service),
            Arc::from(operation),
            Arc::clone(&self.shared),
            Machine::new(&CircuitBreakerConfig::default()),
        ))
    }

    /// Waits until every change made so far is in the state file. `Ok` at once without a state
    /// file. The registry also writes on its own, in the background; this is for tests, for a
    /// clean shutdown (dropping the registry does it too) and for a program that must know a
    /// transition is on disk before it goes on.
    ///
    /// `Err` when the write failed (the lock on `<file>.lock` was held elsewhere past the lock
    /// timeout, the disk refused) or was skipped (the file is of a newer format version, see
    /// [`PersistStats::newer_file_version`]): the changes stay queued and are written later,
    /// and the breakers go on in memory meanwhile. It never waits much longer than the lock
    /// timeout.
    ///
    /// ```
    /// use resilience_core::CircuitBreakerRegistry;
    /// assert!(CircuitBreakerRegistry::new().flush().is_ok());
    /// ```
    pub fn flush(&self) -> Result<(), PersistError> {
        match &self.writer {
            Some(writer) => writer.flush(),
            None => Ok(()),
        }
    }

    /// How the state file's writes went; `None` without a state file.
    ///
    /// ```
    /// use resilience_core::CircuitBreakerRegistry;
    /// assert!(CircuitBreakerRegistry::new().persist_stats().is_none());
    /// ```
    pub fn persist_stats(&self) -> Option<PersistStats> {
        self.writer.as_ref().map(Writer::stats)
    }

    pub(super) fn writer(&self) -> Option<&Writer> {
        self.writer.as_ref()
    }

    pub(super) fn breakers(&self) -> Vec<Arc<CircuitBreaker>> {
        let map = self.breakers.read();
        map.values().flat_map(|ops| ops.values().cloned()).collect()
    }

    /// Runs `f` on every breaker while none can be created or evicted (the map's write lock).
    #[cfg(feature = "redis")]
    pub(super) fn with_every_breaker_held<R>(
        &self,
        f: impl FnOnce(&mut dyn Iterator<Item = &Arc<CircuitBreaker>>) -> R,
    ) -> R {
        let map = self.breakers.write();
        f(&mut map.values().flat_map(|ops| ops.values()))
    }
}
