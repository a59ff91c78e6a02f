//! Call sites of `#[retry]`: each keeps the handle of its operation, so a call makes no map
//! look-up.

use super::RetryManager;
use crate::call::{CallSpec, Engine, OperationHandle};
use std::ops::Deref;
use std::sync::{Arc, OnceLock};

/// One `#[retry]` call site: its names, its compile-time settings, and the handle of its
/// operation in the first manager it ran with.
#[doc(hidden)]
pub struct Site {
    component: &'static str,
    operation: &'static str,
    spec: CallSpec,
    cache: OnceLock<(u64, OperationHandle)>,
}

impl Site {
    /// A call site; built in a `static` by the generated code.
    pub const fn new(component: &'static str, operation: &'static str, spec: CallSpec) -> Site {
        Site {
            component,
            operation,
            spec,
            cache: OnceLock::new(),
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
        let (id, handle) = self
            .cache
            .get_or_init(|| (manager.id(), self.lookup(manager).for_spec(&self.spec)));
        if *id == manager.id() {
            HandleRef::Cached(handle)
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
