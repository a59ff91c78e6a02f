//! What one call site asks for on top of the manager's settings.

use super::RetryHook;
use crate::policy::CallOverrides;

/// A call site's settings (`#[retry(...)]`'s arguments, or a `call(..)` builder's) and its
/// retry hook.
#[doc(hidden)]
#[derive(Clone, Default)]
pub struct CallSpec {
    /// The settings laid over the manager's.
    pub policy: CallOverrides,
    /// Called before each retry, after the manager's own hook.
    pub on_retry: Option<RetryHook>,
}

impl CallSpec {
    /// A call through the breaker with nothing overridden.
    pub const GUARDED: CallSpec = CallSpec {
        policy: CallOverrides::GUARDED,
        on_retry: None,
    };
}

/// [`CallSpec::GUARDED`] at a fixed address, for calls that override nothing (a policy cache
/// knows its spec by address).
pub(crate) static GUARDED_SPEC: CallSpec = CallSpec::GUARDED;

/// A call through the breaker of one attempt only, at a fixed address: for requests that
/// cannot be copied for another attempt (a streaming body).
#[cfg(any(feature = "tower", feature = "reqwest-middleware"))]
pub(crate) static ONE_ATTEMPT_SPEC: CallSpec = CallSpec {
    policy: CallOverrides {
        retry: crate::policy::RetryOverrides {
            max_attempts: Some(1),
            ..crate::policy::RetryOverrides::NONE
        },
        ..CallOverrides::GUARDED
    },
    on_retry: None,
};
