//! State-change listeners and their delivery.
//!
//! Breakers queue each change while they hold their own lock, so the queue has the true order;
//! then whichever thread gets the delivery lock delivers everything queued, in that order, with
//! no breaker lock held. A listener may therefore call back into any breaker (its status, or
//! even a call that changes its state: that change is delivered after the listener returns).

use super::CircuitState;
use parking_lot::{Mutex, RwLock};
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// One state change of one breaker, as listeners see it.
///
/// ```
/// use resilience_core::{CircuitBreakerConfig, CircuitBreakerRegistry, CircuitState};
/// use std::sync::{Arc, Mutex};
///
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let log = Arc::clone(&seen);
/// let registry = CircuitBreakerRegistry::new();
/// registry.on_state_change(move |c| {
///     log.lock().unwrap().push(format!("{}:{} {}->{}", c.service, c.operation, c.from, c.to))
/// });
/// let breaker = registry.get_breaker("api", "fetch");
/// breaker.configure(&CircuitBreakerConfig { failure_threshold: 1, ..Default::default() });
/// breaker.try_acquire().unwrap().record_failure();
/// assert_eq!(*seen.lock().unwrap(), ["api:fetch CLOSED->OPEN"]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateChange<'a> {
    /// The service (component) of the breaker.
    pub service: &'a str,
    /// The operation of the breaker.
    pub operation: &'a str,
    /// The state it left.
    pub from: CircuitState,
    /// The state it entered.
    pub to: CircuitState,
}

pub(crate) type Listener = Arc<dyn Fn(&StateChange<'_>) + Send + Sync>;

/// Names one listener, so that whoever added it can remove it again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ListenerId(u64);

struct Queued {
    service: Arc<str>,
    operation: Arc<str>,
    from: CircuitState,
    to: CircuitState,
}

/// The listeners of a registry and the changes waiting to reach them.
#[derive(Default)]
pub(crate) struct EventBus {
    listeners: RwLock<Vec<(ListenerId, Listener)>>,
    next_id: AtomicU64,
    queue: Mutex<VecDeque<Queued>>,
    delivering: Mutex<()>,
}

impl std::fmt::Debug for EventBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventBus").finish_non_exhaustive()
    }
}

impl EventBus {
    pub(crate) fn add(&self, listener: Listener) -> ListenerId {
        let id = ListenerId(self.next_id.fetch_add(1, Ordering::Relaxed));
        self.listeners.write().push((id, listener));
        id
    }

    /// How many listeners there are.
    pub(crate) fn len(&self) -> usize {
        self.listeners.read().len()
    }

    /// Removes a listener; a delivery already under way may still call it once.
    pub(crate) fn remove(&self, id: ListenerId) {
        self.listeners.write().retain(|(each, _)| *each != id);
    }

    /// Queues a change; called with the breaker's lock held.
    pub(crate) fn push(
        &self,
        service: &Arc<str>,
        operation: &Arc<str>,
        from: CircuitState,
        to: CircuitState,
    ) {
        self.queue.lock().push_back(Queued {
            service: Arc::clone(service),
            operation: Arc::clone(operation),
            from,
            to,
        });
    }

    /// Delivers every queued change, unless another thread (or this one, from inside a
    /// listener) is already delivering: that thread will deliver them.
    pub(crate) fn deliver(&self) {
        loop {
            let Some(guard) = self.delivering.try_lock() else {
                return;
            };
            while let Some(change) = self.pop() {
                self.deliver_one(&change);
            }
            drop(guard);
            // A change queued after the last pop but before the unlock found the delivery lock
            // taken and left it to us.
            if self.queue_is_empty() {
                return;
            }
        }
    }

    fn pop(&self) -> Option<Queued> {
        self.queue.lock().pop_front()
    }

    fn queue_is_empty(&self) -> bool {
        self.queue.lock().is_empty()
    }

    fn deliver_one(&self, q: &Queued) {
        // An opening is what an operator must hear about; the other changes are routine.
        if q.to == CircuitState::Open {
            tracing::warn!(
                component = %q.service,
                operation = %q.operation,
                from = %q.from,
                to = %q.to,
                "circuit breaker opened"
            );
        } else {
            tracing::info!(
                component = %q.service,
                operation = %q.operation,
                from = %q.from,
                to = %q.to,
                "circuit breaker changed state"
            );
        }
        let change = StateChange {
            service: &q.service,
            operation: &q.operation,
            from: q.from,
            to: q.to,
        };
        let listeners: Vec<Listener> = self
            .listeners
            .read()
            .iter()
            .map(|(_, l)| Arc::clone(l))
            .collect();
        for listener in listeners {
            // A panicking listener must not unwind into the call that changed the state (which
            // may itself be unwinding, from a panicking attempt: a second panic would abort).
            if catch_unwind(AssertUnwindSafe(|| listener(&change))).is_err() {
                tracing::error!(
                    component = %q.service,
                    operation = %q.operation,
                    "a circuit breaker state listener panicked"
                );
            }
        }
    }
}
