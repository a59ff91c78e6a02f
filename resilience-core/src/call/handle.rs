//! The handle of one (component, operation): its breaker, its metrics, its cached policy, and
//! whose breaker settings it runs with.

use super::CallSpec;
use crate::breaker::CircuitBreaker;
use crate::budget::ComponentBudget;
use crate::metrics::OperationMetrics;
use crate::policy::CallOverrides;
use crate::RetryConfig;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

/// The effective settings of one call.
#[derive(Debug)]
pub(crate) struct Policy {
    pub(crate) retry: RetryConfig,
}

/// The breaker and metrics of one (component, operation), held by call sites so that a call
/// needs no map look-up. Cheap to clone: a `#[retry]` site keeps a copy inline in its `static`,
/// one pointer away from the breaker's state word.
///
/// A manager keeps one per key, so its size is part of every key's cost: 88 bytes. The breaker
/// settings claimed by a call site are kept by the manager (few operations have them), not here.
#[doc(hidden)]
#[derive(Clone, Debug)]
pub struct OperationHandle {
    pub(crate) component: Arc<str>,
    pub(crate) operation: Arc<str>,
    /// The registry's breaker; for calls that bypass it, a detached one that nothing asks.
    pub(crate) breaker: Arc<CircuitBreaker>,
    /// Whether `breaker` is the registry's.
    pub(crate) registered: bool,
    pub(crate) metrics: Arc<OperationMetrics>,
    /// The settings last resolved for calls with one particular spec (see [`PolicyCache`]).
    /// Each copy of the handle has its own (a copy is made for another spec).
    pub(crate) policy_cache: PolicyCache,
    /// The retry budget of the operation's component, shared with its other operations.
    pub(crate) budget: Arc<ComponentBudget>,
}

impl OperationHandle {
    /// A copy of this handle whose policy cache serves calls made with `spec`.
    pub(crate) fn for_spec(&self, spec: &CallSpec) -> OperationHandle {
        OperationHandle {
            policy_cache: PolicyCache::for_spec(spec),
            ..self.clone()
        }
    }
}

/// The resolved settings of one operation for one call spec, kept until the manager's settings
/// change, so that a failing call does not rebuild them (a map look-up and a clone).
#[derive(Debug)]
pub(crate) struct PolicyCache {
    /// The spec the cached policy was resolved for, by address (specs of call sites are
    /// statics; the address only identifies, it is never read through).
    spec: usize,
    /// The policy and the settings generation it was resolved at. Boxed: 8 bytes in every
    /// handle (a manager has one per key) until the first failure needs a policy.
    resolved: Mutex<Option<Box<Resolved>>>,
}

/// A resolved policy and the settings generation it was resolved at.
type Resolved = (u64, Arc<Policy>);

/// A copy starts empty, for the same spec: a cache, not state.
impl Clone for PolicyCache {
    fn clone(&self) -> Self {
        PolicyCache {
            spec: self.spec,
            resolved: Mutex::new(None),
        }
    }
}

impl PolicyCache {
    pub(crate) fn for_spec(spec: &CallSpec) -> Self {
        PolicyCache {
            spec: spec as *const CallSpec as usize,
            resolved: Mutex::new(None),
        }
    }

    /// The policy for `spec` at settings `generation`, resolved by `resolve` when not cached.
    /// `None` when this cache is for another spec.
    pub(crate) fn get(
        &self,
        spec: &CallSpec,
        generation: u64,
        resolve: &impl Fn() -> Arc<Policy>,
    ) -> Option<Arc<Policy>> {
        if self.spec != spec as *const CallSpec as usize {
            return None;
        }
        let mut slot = self.resolved.lock();
        match &mut *slot {
            Some(cached) if cached.0 == generation => Some(Arc::clone(&cached.1)),
            Some(cached) => {
                let policy = resolve();
                **cached = (generation, Arc::clone(&policy));
                Some(policy)
            }
            None => {
                let policy = resolve();
                *slot = Some(Box::new((generation, Arc::clone(&policy))));
                Some(policy)
            }
        }
    }
}

/// The breaker settings given by call sites for one operation, kept by the manager for the
/// operations that have them. A breaker has one set of settings, so when two sites give one operation different `circuit_breaker(...)` values, the
/// first site that runs keeps them and the other is told once, in the log.
#[derive(Debug, Default)]
pub(crate) struct BreakerClaim {
    // Boxed: most operations are never claimed, and overrides are a few hundred bytes.
    claimed: OnceLock<Box<CallOverrides>>,
    warned: AtomicBool,
}

impl BreakerClaim {
    /// Offers a call site's breaker settings. `true` when they are the operation's from now on
    /// (the first offer), `false` when earlier ones stand.
    pub(crate) fn offer(&self, call: &CallOverrides, service: &str, operation: &str) -> bool {
        let offered = CallOverrides {
            breaker_base: call.breaker_base.clone(),
            breaker: call.breaker,
            ..CallOverrides::GUARDED
        };
        let mut first = false;
        let standing = self.claimed.get_or_init(|| {
            first = true;
            Box::new(offered.clone())
        });
        if !first && **standing != offered && !self.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                component = %service,
                operation = %operation,
                "two call sites give this operation different circuit breaker settings; the first to run keeps them"
            );
        }
        first
    }

    /// The breaker settings claimed by a call site, or none.
    pub(crate) fn overrides(&self) -> &CallOverrides {
        self.claimed
            .get()
            .map_or(&CallOverrides::GUARDED, |claimed| claimed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handle_is_88_bytes() {
        // A manager keeps one per key: its size is part of DESIGN.md's budget of 512 bytes.
        assert_eq!(std::mem::size_of::<OperationHandle>(), 88);
    }
}
