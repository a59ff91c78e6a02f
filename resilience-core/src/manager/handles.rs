//! The handles of a manager's operations, and the one writer of their breakers' settings.
//!
//! A breaker's settings are written here only, always under the manager's configuration lock
//! and always as [`resolve`] computes them from the settings as of that moment and the breaker
//! settings claimed by the operation's first call site. So `configure_from_json`, the first use
//! of an operation and a call site's `circuit_breaker(...)` cannot leave a breaker on old
//! settings, whatever order they race in.

use super::{HandleRef, RetryManager};
use crate::call::{BreakerClaim, CallSpec, OperationHandle, PolicyCache, GUARDED_SPEC};
use crate::fxhash::FxHashMap;
use crate::policy::resolve;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Every operation's handle, by component then operation (so that a look-up borrows the names).
pub(super) type Handles = FxHashMap<String, FxHashMap<String, Arc<OperationHandle>>>;

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
        if let Some(h) = self
            .handles
            .read()
            .get(component)
            .and_then(|ops| ops.get(operation))
        {
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
        let _configuring = self.configuring.lock();
        let mut map = self.handles.write();
        let existing = map.get(component).and_then(|ops| ops.get(operation));
        if let Some(h) = existing {
            if h.registered || !guarded {
                return Arc::clone(h); // made by another thread since the look-up
            }
        }
        // One budget per component: shared with the component's other operations.
        let budget = map
            .get(component)
            .and_then(|ops| ops.values().next())
            .map_or_else(Default::default, |h| Arc::clone(&h.budget));
        let handle = match existing {
            // Called without a breaker so far: the same metrics and claim, now with a breaker.
            Some(unguarded) => OperationHandle {
                breaker: self.registry.get_breaker(component, operation),
                registered: true,
                policy_cache: Arc::new(PolicyCache::for_spec(&GUARDED_SPEC)),
                ..OperationHandle::clone(unguarded)
            },
            None => OperationHandle {
                component: component.into(),
                operation: operation.into(),
                breaker: if guarded {
                    self.registry.get_breaker(component, operation)
                } else {
                    self.registry.detached_breaker(component, operation)
                },
                registered: guarded,
                metrics: self.metrics.get(component, operation),
                policy_cache: Arc::new(PolicyCache::for_spec(&GUARDED_SPEC)),
                claim: Arc::new(BreakerClaim::default()),
                budget,
            },
        };
        // A budget in the settings pays in from the operation's first call on.
        self.enable_budget(&handle, &GUARDED_SPEC);
        if guarded {
            self.write_breaker_settings(&handle);
        }
        let handle = Arc::new(handle);
        let replaced = map
            .entry(component.to_owned())
            .or_default()
            .insert(operation.to_owned(), Arc::clone(&handle))
            .is_some();
        if !replaced {
            let count = self.operation_count.fetch_add(1, Ordering::Relaxed) + 1;
            if count > self.max_operations {
                self.evict_idle(&mut map, &handle);
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
    /// with the configuration lock and the map's write lock held.
    #[cold]
    fn evict_idle(&self, map: &mut Handles, keep: &Arc<OperationHandle>) {
        let target = self.max_operations - self.max_operations / 10;
        let mut count = self.operation_count.load(Ordering::Relaxed);
        let mut evicted = 0u64;
        for (component, ops) in map.iter_mut() {
            if count <= target {
                break;
            }
            ops.retain(|operation, h| {
                if count <= target || Arc::ptr_eq(h, keep) || !self.evictable(h) {
                    return true;
                }
                let breaker_gone = !h.registered || self.registry.evict_if_idle(&h.breaker);
                if !breaker_gone {
                    return true;
                }
                // The metrics go with the breaker; if something took a hold on them meanwhile,
                // they stay known to the metrics registry only.
                self.metrics
                    .remove_if_unshared(component, operation, &h.metrics);
                count -= 1;
                evicted += 1;
                false
            });
        }
        map.retain(|_, ops| !ops.is_empty());
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
    /// held by the metrics registry only, and no call ended since the last look.
    fn evictable(&self, h: &Arc<OperationHandle>) -> bool {
        Arc::strong_count(h) == 1
            && Arc::strong_count(&h.metrics) == 2
            && h.metrics.idle_since_last_look()
    }

    fn claim_breaker(&self, handle: &OperationHandle, spec: &CallSpec) {
        if !spec.policy.sets_breaker() {
            return;
        }
        let _configuring = self.configuring.lock();
        if handle
            .claim
            .offer(&spec.policy, &handle.component, &handle.operation)
        {
            self.write_breaker_settings(handle);
        }
    }

    /// Sets `handle`'s breaker to the settings resolved as of now. Called with the
    /// configuration lock held.
    pub(super) fn write_breaker_settings(&self, handle: &OperationHandle) {
        if !handle.registered {
            return;
        }
        let settings = self.engine.settings();
        let effective = resolve(
            &settings,
            &handle.component,
            &handle.operation,
            handle.claim.overrides(),
        )
        .repaired();
        handle.breaker.configure(&effective.breaker);
    }
}
