//! The handles of a manager's operations, and the one writer of their breakers' settings.
//!
//! A breaker's settings are written here only, always under the manager's configuration lock
//! and always as [`resolve`] computes them from the settings as of that moment and the breaker
//! settings claimed by the operation's first call site. So `configure_from_json`, the first use
//! of an operation and a call site's `circuit_breaker(...)` cannot leave a breaker on old
//! settings, whatever order they race in.
//!
//! The map of handles is the manager's only per-key map: metrics snapshots walk it, and the
//! names it is keyed by are the handles' own (a component's name is shared by its operations).

use super::{HandleRef, RetryManager};
use crate::call::{BreakerClaim, CallSpec, OperationHandle, PolicyCache, GUARDED_SPEC};
use crate::fxhash::{FxHashMap, FxHashSet};
use crate::metrics::OperationMetrics;
use crate::policy::{resolve, CallOverrides};
use std::borrow::Borrow;
use std::hash::{Hash, Hasher};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Every operation's handle, by component then operation (so that a look-up borrows the names).
pub(super) type Handles = FxHashMap<Arc<str>, FxHashSet<ByName>>;

/// A handle in its component's set, found by its operation's name: the set needs no key of its
/// own (8 bytes a slot, not 24).
pub(super) struct ByName(pub(super) Arc<OperationHandle>);

impl Borrow<str> for ByName {
    fn borrow(&self) -> &str {
        &self.0.operation
    }
}

// Hashed and compared as the name is, as `Borrow` requires.
impl Hash for ByName {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.operation.hash(state);
    }
}

impl PartialEq for ByName {
    fn eq(&self, other: &Self) -> bool {
        self.0.operation == other.0.operation
    }
}

impl Eq for ByName {}

/// The breaker settings claimed by call sites, for the operations that have a claim; kept
/// under the manager's configuration lock.
pub(super) type Claims = FxHashMap<Arc<str>, FxHashMap<Arc<str>, BreakerClaim>>;

/// The handle of (component, operation) in `map`.
pub(super) fn find<'m>(
    map: &'m Handles,
    component: &str,
    operation: &str,
) -> Option<&'m Arc<OperationHandle>> {
    map.get(component)
        .and_then(|ops| ops.get(operation))
        .map(|h| &h.0)
}

impl RetryManager {
    /// The handle of (component, operation), created on first use. `guarded`: the caller goes
    /// through the breaker, so the handle must hold the registry's breaker (an operation only
    /// ever called without one gets none there).
    pub(crate) fn handle(
        &self,
        component: &str,
        operation: &str,
        guarded: bool,
    ) -> Arc<OperationHandle> {
        if let Some(h) = find(&self.handles.read(), component, operation) {
            if h.registered || !guarded {
                return Arc::clone(h);
            }
        }
        self.create_handle(component, operation, guarded)
    }

    #[cold]
    fn create_handle(
        &self,
        component: &str,
        operation: &str,
        guarded: bool,
    ) -> Arc<OperationHandle> {
        // Every creation holds the configuration lock, so nothing else creates meanwhile; the
        // map's write lock is taken only to insert (and evict), so breaker listeners, which read
        // the map, never run while this thread holds it.
        let mut claims = self.configuring.lock();
        let (existing, component_name, budget) = {
            let map = self.handles.read();
            let existing = find(&map, component, operation).cloned();
            if let Some(h) = &existing {
                if h.registered || !guarded {
                    return Arc::clone(h); // made by another thread since the look-up
                }
            }
            match map.get_key_value(component) {
                // One budget per component: shared with the component's other operations.
                Some((name, ops)) => (
                    existing,
                    Arc::clone(name),
                    ops.iter()
                        .next()
                        .map_or_else(Default::default, |h| Arc::clone(&h.0.budget)),
                ),
                None => (existing, Arc::from(component), Default::default()),
            }
        };
        let handle = match existing {
            // Called without a breaker so far: the same metrics, now with a breaker.
            Some(unguarded) => OperationHandle {
                breaker: self.registry.get_breaker(component, operation),
                registered: true,
                policy_cache: PolicyCache::for_spec(&GUARDED_SPEC),
                ..OperationHandle::clone(&unguarded)
            },
            None => {
                // A claim left by a call site of an evicted operation of this name is not this
                // operation's.
                if let Some(ops) = claims.get_mut(component) {
                    ops.remove(operation);
                }
                OperationHandle {
                    component: component_name,
                    operation: operation.into(),
                    breaker: if guarded {
                        self.registry.get_breaker(component, operation)
                    } else {
                        self.registry.detached_breaker(component, operation)
                    },
                    registered: guarded,
                    metrics: Arc::new(OperationMetrics::new(component, operation)),
                    policy_cache: PolicyCache::for_spec(&GUARDED_SPEC),
                    budget,
                }
            }
        };
        // A budget in the settings pays in from the operation's first call on.
        self.enable_budget(&handle, &GUARDED_SPEC);
        if guarded {
            self.write_breaker_settings(&claims, &handle);
        }
        let handle = Arc::new(handle);
        let mut map = self.handles.write();
        let replaced = map
            .entry(Arc::clone(&handle.component))
            .or_default()
            .replace(ByName(Arc::clone(&handle)))
            .is_some();
        if !replaced {
            let count = self.operation_count.fetch_add(1, Ordering::Relaxed) + 1;
            if count > self.max_operations {
                self.evict_idle(&mut map, &mut claims, &handle);
            }
        }
        handle
    }

    /// The handle a call site with `spec` uses: guarded or not as the site is, with the site's
    /// breaker settings offered to the operation.
    pub(crate) fn handle_for(
        &self,
        component: &str,
        operation: &str,
        spec: &CallSpec,
    ) -> Arc<OperationHandle> {
        let handle = self.handle(component, operation, spec.policy.use_breaker);
        self.claim_breaker(&handle, spec);
        self.enable_budget(&handle, spec);
        handle
    }

    /// `handle`, or the operation's guarded handle when `handle` has no registered breaker; with
    /// the call's breaker settings offered to the operation.
    pub(crate) fn guarded<'a>(&self, handle: HandleRef<'a>, spec: &CallSpec) -> HandleRef<'a> {
        let handle = if handle.registered {
            handle
        } else {
            HandleRef::Owned(self.handle(&handle.component, &handle.operation, true))
        };
        self.claim_breaker(&handle, spec);
        handle
    }

    /// Builds the component's budget account when the settings of a call with `spec` have
    /// one, so that first attempts pay into it before any retry asks.
    fn enable_budget(&self, handle: &OperationHandle, spec: &CallSpec) {
        let settings = self.engine.settings();
        let effective = resolve(
            &settings,
            &handle.component,
            &handle.operation,
            &spec.policy,
        );
        if let Some(budget) = effective.retry.budget.filter(|b| b.validate().is_ok()) {
            handle.budget.enable(&budget);
        }
    }

    /// Evicts idle, unreferenced, closed and clean operations until the manager is a tenth
    /// under its cap (so that a sweep is paid once per many new keys), never `keep`. Called
    /// with the configuration lock (`claims`) and the map's write lock held.
    #[cold]
    fn evict_idle(&self, map: &mut Handles, claims: &mut Claims, keep: &Arc<OperationHandle>) {
        let target = self.max_operations - self.max_operations / 10;
        let mut count = self.operation_count.load(Ordering::Relaxed);
        let mut evicted = 0u64;
        for (component, ops) in map.iter_mut() {
            if count <= target {
                break;
            }
            let mut component_claims = claims.get_mut(component);
            ops.retain(|ByName(h)| {
                if count <= target || Arc::ptr_eq(h, keep) || !self.evictable(h) {
                    return true;
                }
                let breaker_gone = !h.registered || self.registry.evict_if_idle(&h.breaker);
                if !breaker_gone {
                    return true;
                }
                // The metrics and the claim go with the breaker.
                if let Some(c) = component_claims.as_mut() {
                    c.remove(&*h.operation);
                }
                count -= 1;
                evicted += 1;
                false
            });
        }
        map.retain(|_, ops| !ops.is_empty());
        claims.retain(|_, ops| !ops.is_empty());
        self.operation_count.store(count, Ordering::Relaxed);
        self.evicted.fetch_add(evicted, Ordering::Relaxed);
        // A first sweep finds every operation busy (idle means "no call since the last look"),
        // so only an overrun that lasts is worth a warning.
        if count > self.max_operations.saturating_mul(2)
            && !self.cap_warned.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(
                operations = count,
                cap = self.max_operations,
                "twice the manager's cap of operations and none idle to evict; the cap is passed"
            );
        }
    }

    /// Held by nobody but the map (no call in flight, no call site, no `Operation`), its figures
    /// held by this handle only (not by a call site's copy), and no call ended since the last
    /// look.
    fn evictable(&self, h: &Arc<OperationHandle>) -> bool {
        Arc::strong_count(h) == 1
            && Arc::strong_count(&h.metrics) == 1
            && h.metrics.idle_since_last_look()
    }

    fn claim_breaker(&self, handle: &OperationHandle, spec: &CallSpec) {
        if !spec.policy.sets_breaker() {
            return;
        }
        let mut claims = self.configuring.lock();
        let first = claims
            .entry(Arc::clone(&handle.component))
            .or_default()
            .entry(Arc::clone(&handle.operation))
            .or_default()
            .offer(&spec.policy, &handle.component, &handle.operation);
        if first {
            self.write_breaker_settings(&claims, handle);
        }
    }

    /// Sets `handle`'s breaker to the settings resolved as of now. Called with the
    /// configuration lock (`claims`) held.
    pub(super) fn write_breaker_settings(&self, claims: &Claims, handle: &OperationHandle) {
        if !handle.registered {
            return;
        }
        let settings = self.engine.settings();
        let effective = resolve(
            &settings,
            &handle.component,
            &handle.operation,
            claims
                .get(&*handle.component)
                .and_then(|ops| ops.get(&*handle.operation))
                .map_or(&CallOverrides::GUARDED, BreakerClaim::overrides),
        )
        .repaired();
        handle.breaker.configure(&effective.breaker);
    }
}
