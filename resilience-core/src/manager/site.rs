//! Call sites of `#[retry]`: each keeps the handle of its operation, so a call makes no map
//! look-up.

use super::RetryManager;
use crate::call::{CallSpec, CallState, Engine, OperationHandle, PolicySlot};
use std::ops::Deref;
use std::sync::{Arc, OnceLock};

/// One `#[retry]` call site: its names, its compile-time settings, and the handle of its
/// operation (with the site's resolved policy) in the first manager it ran with.
///
/// A site of the global manager keeps its handle apart, with the manager's engine: its calls
/// start with one check of one `OnceLock` (not one of the global manager and another of the
/// site) and no comparison of managers, since the global manager never changes once created.
#[doc(hidden)]
pub struct Site {
    component: &'static str,
    operation: &'static str,
    spec: CallSpec,
    cache: OnceLock<Cached>,
    global: OnceLock<Global>,
}

/// A site's handle in one manager and the policy its calls resolved there.
struct Cached {
    id: u64,
    handle: OperationHandle,
    policy: PolicySlot,
}

/// A site's handle in the global manager, and that manager's engine.
struct Global {
    engine: &'static Engine,
    cached: Cached,
}

impl Site {
    /// A call site; built in a `static` by the generated code.
    pub const fn new(component: &'static str, operation: &'static str, spec: CallSpec) -> Site {
        Site {
            component,
            operation,
            spec,
            cache: OnceLock::new(),
            global: OnceLock::new(),
        }
    }

    /// A call of this site on the global manager ([`crate::global`]).
    #[inline(always)]
    pub fn call_global(&'static self) -> CallState<'static> {
        let global = match self.global.get() {
            Some(global) => global,
            None => self.init_global(),
        };
        CallState::new(global.engine, &global.cached.handle, &self.spec)
            .with_policy_slot(&global.cached.policy)
    }

    #[cold]
    #[inline(never)]
    fn init_global(&'static self) -> &'static Global {
        self.global.get_or_init(|| {
            let manager = super::global();
            Global {
                engine: &manager.engine,
                cached: self.cached(manager),
            }
        })
    }

    fn cached(&self, manager: &RetryManager) -> Cached {
        Cached {
            id: manager.id(),
            handle: self.lookup(manager).for_spec(&self.spec),
            policy: PolicySlot::new(),
        }
    }

    /// A call of this site on `manager`, with `handle` from [`handle`](Self::handle).
    #[inline(always)]
    pub fn call<'a>(
        &'a self,
        manager: &'a RetryManager,
        handle: &'a HandleRef<'a>,
    ) -> CallState<'a> {
        let call = CallState::new(&manager.engine, handle, &self.spec);
        match (handle, self.cache.get()) {
            // The cached handle: the site's own policy slot goes with it.
            (HandleRef::Cached(_), Some(cached)) => call.with_policy_slot(&cached.policy),
            _ => call,
        }
    }

    /// The settings given at the call site.
    #[inline]
    pub fn spec(&self) -> &CallSpec {
        &self.spec
    }

    /// The handle of this site's operation in `manager`: cached for the first manager the site
    /// runs with (in practice the only one), looked up for any other.
    #[inline(always)]
    pub fn handle(&self, manager: &RetryManager) -> HandleRef<'_> {
        let cached = self.cache.get_or_init(|| self.cached(manager));
        if cached.id == manager.id() {
            HandleRef::Cached(&cached.handle)
        } else {
            HandleRef::Owned(self.lookup(manager))
        }
    }

    #[cold]
    fn lookup(&self, manager: &RetryManager) -> Arc<OperationHandle> {
        manager.handle_for(self.component, self.operation, &self.spec)
    }
}

/// A borrowed or owned operation handle.
#[doc(hidden)]
pub enum HandleRef<'a> {
    Cached(&'a OperationHandle),
    Owned(Arc<OperationHandle>),
}

impl Deref for HandleRef<'_> {
    type Target = OperationHandle;
    #[inline]
    fn deref(&self) -> &OperationHandle {
        match self {
            HandleRef::Cached(h) => h,
            HandleRef::Owned(h) => h,
        }
    }
}

/// The engine of the manager a `#[retry]` call runs with.
#[doc(hidden)]
#[inline(always)]
pub fn engine(manager: &RetryManager) -> &Engine {
    &manager.engine
}
