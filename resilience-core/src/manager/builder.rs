//! The builder of a [`RetryManager`]: the original's constructor arguments.

use super::RetryManager;
use crate::call::{Engine, RetryEvent, RetryHook};
use crate::policy::Settings;
use crate::{
    CircuitBreakerConfig, CircuitBreakerRegistry, Clock, ConfigError, ErrorClassifier, RetryConfig,
    Rng, SystemClock,
};
use std::sync::Arc;

/// Builds a [`RetryManager`]; every setting is optional.
///
/// ```
/// use resilience_core::{ErrorClassifier, ManualClock, RetryManager};
/// let manager = RetryManager::builder()
///     .clock(ManualClock::new())
///     .seed(42)
///     .error_classifier(ErrorClassifier::default())
///     .build()
///     .unwrap();
/// # let _ = manager;
/// ```
#[derive(Default)]
#[must_use]
pub struct RetryManagerBuilder {
    retry: Option<RetryConfig>,
    breaker: Option<CircuitBreakerConfig>,
    registry: Option<Arc<CircuitBreakerRegistry>>,
    classifier: Option<ErrorClassifier>,
    clock: Option<Arc<dyn Clock>>,
    seed: Option<u64>,
    on_retry: Option<RetryHook>,
    max_operations: Option<usize>,
}

/// The default cap on the operations of a manager.
pub const DEFAULT_MAX_OPERATIONS: usize = 10_000;

impl RetryManagerBuilder {
    /// Retry settings for every call that does not override them.
    ///
    /// ```
    /// use resilience_core::{RetryConfig, RetryManager};
    /// let manager = RetryManager::builder()
    ///     .default_config(RetryConfig { max_attempts: 4, ..RetryConfig::default() })
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(manager.default_config().max_attempts, 4);
    /// ```
    pub fn default_config(mut self, config: RetryConfig) -> Self {
        self.retry = Some(config);
        self
    }

    /// Breaker settings for every operation that does not override them.
    ///
    /// ```
    /// use resilience_core::{CircuitBreakerConfig, RetryManager};
    /// let manager = RetryManager::builder()
    ///     .circuit_breaker_config(CircuitBreakerConfig { failure_threshold: 1, ..Default::default() })
    ///     .build()
    ///     .unwrap();
    /// let _: Result<(), std::io::Error> =
    ///     manager.execute("api", "get", || Err(std::io::ErrorKind::TimedOut.into()));
    /// assert_eq!(manager.circuit_breaker_status()["api:get"].state.as_str(), "OPEN");
    /// ```
    pub fn circuit_breaker_config(mut self, config: CircuitBreakerConfig) -> Self {
        self.breaker = Some(config);
        self
    }

    /// A registry to share breakers (and their state file) with other managers. Its clock
    /// times the breakers.
    ///
    /// ```
    /// use resilience_core::{CircuitBreakerRegistry, RetryManager};
    /// use std::sync::Arc;
    /// let registry = Arc::new(CircuitBreakerRegistry::new());
    /// let a = RetryManager::builder().circuit_breaker_registry(Arc::clone(&registry)).build().unwrap();
    /// let b = RetryManager::builder().circuit_breaker_registry(Arc::clone(&registry)).build().unwrap();
    /// a.reset_circuit_breaker("api", "get");
    /// assert!(b.circuit_breaker_status().contains_key("api:get"));
    /// ```
    pub fn circuit_breaker_registry(mut self, registry: Arc<CircuitBreakerRegistry>) -> Self {
        self.registry = Some(registry);
        self
    }

    /// Rules that refine classification.
    ///
    /// ```
    /// use resilience_core::{ErrorCategory, ErrorClassifier, RetryManager};
    /// let manager = RetryManager::builder()
    ///     .error_classifier(ErrorClassifier::default().retryable(ErrorCategory::Unknown, false))
    ///     .build()
    ///     .unwrap();
    /// let mut attempts = 0;
    /// let _: Result<(), std::io::Error> = manager.execute("api", "get", || {
    ///     attempts += 1;
    ///     Err(std::io::Error::other("unclassified"))
    /// });
    /// assert_eq!(attempts, 1);
    /// ```
    pub fn error_classifier(mut self, classifier: ErrorClassifier) -> Self {
        self.classifier = Some(classifier);
        self
    }

    /// The clock for waiting and deadlines (and for the breakers, unless a registry is given).
    ///
    /// ```
    /// use resilience_core::{ManualClock, RetryManager};
    /// use std::time::Duration;
    /// let clock = ManualClock::new();
    /// let manager = RetryManager::builder().clock(clock.clone()).seed(1).build().unwrap();
    /// let _: Result<(), std::io::Error> =
    ///     manager.execute("api", "get", || Err(std::io::ErrorKind::TimedOut.into()));
    /// assert_eq!(clock.sleeps().len(), 2); // no real waiting happened
    /// ```
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// Fixes the random draws of jitter, for repeatable tests.
    ///
    /// ```
    /// use resilience_core::{ManualClock, RetryManager};
    /// let sleeps = |seed| {
    ///     let clock = ManualClock::new();
    ///     let manager = RetryManager::builder().clock(clock.clone()).seed(seed).build().unwrap();
    ///     let _: Result<(), std::io::Error> =
    ///         manager.execute("api", "get", || Err(std::io::ErrorKind::TimedOut.into()));
    ///     clock.sleeps()
    /// };
    /// assert_eq!(sleeps(9), sleeps(9));
    /// ```
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// A hook called before every retry of every operation.
    ///
    /// ```
    /// use resilience_core::RetryManager;
    /// let manager = RetryManager::builder()
    ///     .on_retry(|e| eprintln!("{}:{} attempt {} failed", e.component, e.operation, e.attempt))
    ///     .build()
    ///     .unwrap();
    /// # let _ = manager;
    /// ```
    pub fn on_retry(mut self, hook: impl Fn(&RetryEvent<'_>) + Send + Sync + 'static) -> Self {
        self.on_retry = Some(Arc::new(hook));
        self
    }

    /// The most (component, operation) keys the manager keeps (default 10,000). Keys often come
    /// from data (one operation per endpoint or tenant); past the cap, operations that are idle
    /// (no call ended since the last look), held by no call site or call, and whose breaker is
    /// closed and clean are evicted, with their figures. An open breaker is never evicted;
    /// when nothing can be evicted the cap is passed (never a call refused), and a manager at
    /// twice its cap logs it once. Evictions are counted
    /// ([`RetryManager::evicted_operations`]).
    ///
    /// ```
    /// use resilience_core::RetryManager;
    /// let manager = RetryManager::builder().max_operations(100_000).build().unwrap();
    /// # let _ = manager;
    /// ```
    pub fn max_operations(mut self, max: usize) -> Self {
        self.max_operations = Some(max);
        self
    }

    /// Validates the settings and builds the manager.
    ///
    /// ```
    /// use resilience_core::{RetryConfig, RetryManager};
    /// let err = RetryManager::builder()
    ///     .default_config(RetryConfig { jitter_factor: 2.0, ..RetryConfig::default() })
    ///     .build()
    ///     .unwrap_err();
    /// assert_eq!(err.field(), "retry.jitter_factor");
    /// ```
    pub fn build(self) -> Result<RetryManager, ConfigError> {
        if let Some(retry) = &self.retry {
            retry.validate().map_err(|e| e.within("retry"))?;
        }
        if let Some(breaker) = &self.breaker {
            breaker
                .validate()
                .map_err(|e| e.within("circuit_breaker"))?;
        }
        if self.max_operations == Some(0) {
            return Err(ConfigError::new(
                "max_operations",
                "must be at least 1, got 0",
            ));
        }
        Ok(self.build_unchecked())
    }

    pub(super) fn build_unchecked(self) -> RetryManager {
        let clock: Arc<dyn Clock> = self.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let registry = self
            .registry
            .unwrap_or_else(|| Arc::new(CircuitBreakerRegistry::with_clock(Arc::clone(&clock))));
        let settings = Settings {
            retry: self.retry.unwrap_or_default(),
            breaker: self.breaker.unwrap_or_default(),
            per_key: Default::default(),
        };
        let engine = Engine::new(
            clock,
            self.seed.map_or_else(Rng::from_entropy, Rng::seeded),
            self.classifier.unwrap_or_default(),
            self.on_retry,
            settings,
        );
        RetryManager::from_parts(
            engine,
            registry,
            self.max_operations.unwrap_or(DEFAULT_MAX_OPERATIONS).max(1),
        )
    }
}
