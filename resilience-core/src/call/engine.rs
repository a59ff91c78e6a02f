//! What every call of one manager shares: clock, randomness, classifier, the manager's retry
//! hook, and the settings calls resolve their policy from.

use super::handle::{OperationHandle, Policy};
use super::CallSpec;
use crate::policy::{resolve, Settings};
use crate::{Clock, ErrorCategory, ErrorClassifier, Rng};
use parking_lot::RwLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A hook called before each retry.
pub type RetryHook = Arc<dyn Fn(&RetryEvent<'_>) + Send + Sync>;

/// What a retry hook is told: which operation, which attempt failed, how long until the next,
/// and why.
///
/// ```
/// use resilience_core::RetryManager;
/// let manager = RetryManager::builder()
///     .on_retry(|e| assert_eq!((e.component, e.operation, e.attempt), ("api", "get", 1)))
///     .build()
///     .unwrap();
/// let mut calls = 0;
/// let _: Result<(), std::io::Error> = manager.call("api", "get").max_attempts(2)
///     .initial_delay(std::time::Duration::ZERO)
///     .run(|| { calls += 1; if calls == 1 { Err(std::io::ErrorKind::TimedOut.into()) } else { Ok(()) } });
/// ```
#[derive(Debug)]
pub struct RetryEvent<'a> {
    /// The component (service) called.
    pub component: &'a str,
    /// The operation called.
    pub operation: &'a str,
    /// The attempt that failed (1 for the first).
    pub attempt: u32,
    /// The wait before the next attempt.
    pub delay: Duration,
    /// The failure's category.
    pub category: ErrorCategory,
    /// The error, when its type is a `std::error::Error`.
    pub error: Option<&'a (dyn std::error::Error + 'static)>,
}

/// The part of a manager that calls use. Not a public API.
#[doc(hidden)]
pub struct Engine {
    clock: Arc<dyn Clock>,
    rng: Rng,
    classifier: ErrorClassifier,
    on_retry: Option<RetryHook>,
    settings: RwLock<Arc<Settings>>,
    /// Bumped whenever the settings change, so cached policies know they are stale.
    generation: AtomicU64,
    /// Whether any setting has an overall deadline; only then does a call read the clock at its
    /// start.
    deadlines: AtomicBool,
}

impl Engine {
    pub(crate) fn new(
        clock: Arc<dyn Clock>,
        rng: Rng,
        classifier: ErrorClassifier,
        on_retry: Option<RetryHook>,
        settings: Settings,
    ) -> Self {
        Engine {
            clock,
            rng,
            classifier,
            on_retry,
            deadlines: AtomicBool::new(settings.has_deadlines()),
            settings: RwLock::new(Arc::new(settings)),
            generation: AtomicU64::new(0),
        }
    }

    pub(crate) fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    pub(crate) fn rng(&self) -> &Rng {
        &self.rng
    }

    pub(crate) fn classifier(&self) -> &ErrorClassifier {
        &self.classifier
    }

    #[inline]
    pub(crate) fn has_deadlines(&self) -> bool {
        self.deadlines.load(Ordering::Relaxed)
    }

    /// The settings as of now.
    pub(crate) fn settings(&self) -> Arc<Settings> {
        Arc::clone(&self.settings.read())
    }

    /// Replaces the settings; calls resolve their policy anew from their next failure on.
    pub(crate) fn replace_settings(&self, settings: Settings) {
        // Once any setting has a deadline, calls keep reading the clock at their start: cheaper
        // than knowing exactly when the last deadline went away.
        if settings.has_deadlines() {
            self.deadlines.store(true, Ordering::Relaxed);
        }
        *self.settings.write() = Arc::new(settings);
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// The settings generation: bumped whenever the settings change.
    #[inline]
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The retry policy of a call with `spec` on `handle`'s operation as of now.
    pub(crate) fn resolve(&self, handle: &OperationHandle, spec: &CallSpec) -> Policy {
        let settings = self.settings();
        let effective = resolve(
            &settings,
            &handle.component,
            &handle.operation,
            &spec.policy,
        )
        .repaired();
        if let Some(budget) = &effective.retry.budget {
            handle.budget.enable(budget);
        }
        Policy {
            retry: effective.retry,
        }
    }

    /// The retry policy of a call with `spec` on `handle`'s operation, resolved once per
    /// settings generation and kept in the handle.
    pub(crate) fn policy(&self, handle: &OperationHandle, spec: &CallSpec) -> Arc<Policy> {
        let generation = self.generation();
        let resolve_now = || Arc::new(self.resolve(handle, spec));
        handle
            .policy_cache
            .get(spec, generation, &resolve_now)
            .unwrap_or_else(resolve_now)
    }

    /// Whether the manager has a retry hook.
    #[inline]
    pub(crate) fn has_retry_hook(&self) -> bool {
        self.on_retry.is_some()
    }

    pub(crate) fn notify_retry(&self, event: &RetryEvent<'_>) {
        if let Some(hook) = &self.on_retry {
            hook(event);
        }
    }
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("settings", &*self.settings.read())
            .field("classifier", &self.classifier)
            .finish_non_exhaustive()
    }
}
