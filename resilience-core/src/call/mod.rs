//! One call's runtime: the engine every call shares (clock, randomness, classifier, hooks, the
//! settings), the handles that tie a call to its breaker and metrics, what a call site asks for,
//! and the driver that makes every decision of a retried call. Never uses the manager: the
//! manager builds on this layer.

mod driver;
mod engine;
mod handle;
mod spec;

pub(crate) use driver::{admit_guarded, admit_unguarded, run_async, run_blocking};
pub use driver::{CallState, Next, Permit, PolicySlot};
pub use engine::{Engine, RetryEvent, RetryHook};
pub use handle::OperationHandle;
pub(crate) use handle::{BreakerClaim, PolicyCache};
pub use spec::CallSpec;
pub(crate) use spec::GUARDED_SPEC;
#[cfg(any(feature = "tower", feature = "reqwest-middleware"))]
pub(crate) use spec::ONE_ATTEMPT_SPEC;
