//! The manager: settings, breakers, metrics, clock and randomness, and the calls that use them.

use crate::breaker::CircuitBreaker;
use crate::driver::{self, CallSpec, CallState};
use crate::metrics::{MetricsRegistry, OperationMetrics};
use crate::overrides::{repair_breaker, repair_retry, BreakerOverrides, RetryOverrides};
use crate::site::HandleRef;
use crate::{
    CircuitBreakerConfig, CircuitBreakerRegistry, CircuitBreakerStatus, CircuitOpenError, Classify,
    Clock, ConfigError, ErrorCategory, ErrorClassifier, Jitter, MetricsSnapshot, OperationSnapshot,
    RetryConfig, Rng, SystemClock,
};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// A hook called before each retry.
pub type RetryHook = Arc<dyn Fn(&RetryEvent<'_>) + Send + Sync>;

/// What a retry hook is told: which operation, which attempt failed, how long until the next,
/// and why.
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

/// Retries, breakers and metrics for every operation of a program. The original's
/// `EnhancedRetryManager`.
///
/// ```
/// use resilience_core::RetryManager;
///
/// let manager = RetryManager::new();
/// let mut calls = 0;
/// let result: Result<u32, std::io::Error> = manager.execute("api", "fetch", || {
///     calls += 1;
///     if calls < 2 { Err(std::io::ErrorKind::ConnectionReset.into()) } else { Ok(7) }
/// });
/// assert_eq!(result.unwrap(), 7);
/// assert_eq!(manager.metrics().get("api", "fetch").unwrap().attempts, 2);
/// ```
pub struct RetryManager {
    id: u64,
    clock: Arc<dyn Clock>,
    rng: Rng,
    classifier: ErrorClassifier,
    registry: Arc<CircuitBreakerRegistry>,
    metrics: Arc<MetricsRegistry>,
    settings: RwLock<Settings>,
    /// Whether any setting has an overall deadline; only then does a call read the clock at its
    /// start.
    deadlines: AtomicBool,
    /// Bumped whenever the settings change, so cached policies know they are stale.
    generation: AtomicU64,
    handles: RwLock<HashMap<String, HashMap<String, Arc<OperationHandle>>>>,
    on_retry: Option<RetryHook>,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Settings {
    pub(crate) retry: RetryConfig,
    pub(crate) breaker: CircuitBreakerConfig,
    /// Per `"service:operation"` overrides, from `configure_from_json`.
    pub(crate) per_key: HashMap<String, KeyOverrides>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct KeyOverrides {
    pub(crate) retry: RetryOverrides,
    pub(crate) breaker: BreakerOverrides,
}

/// The effective settings of one call.
#[derive(Debug)]
pub(crate) struct Policy {
    pub(crate) retry: RetryConfig,
}

/// The breaker and metrics of one (component, operation), held by call sites so that a call
/// needs no map look-up. Cheap to clone: a `#[retry]` site keeps a copy inline in its `static`,
/// one pointer away from the breaker's state word.
#[doc(hidden)]
#[derive(Clone, Debug)]
pub struct OperationHandle {
    pub(crate) component: Arc<str>,
    pub(crate) operation: Arc<str>,
    pub(crate) breaker: Arc<CircuitBreaker>,
    pub(crate) metrics: Arc<OperationMetrics>,
    /// The settings last resolved for calls with one particular spec (see [`PolicyCache`]).
    pub(crate) policy_cache: Arc<PolicyCache>,
}

impl OperationHandle {
    /// A copy of this handle whose policy cache serves calls made with `spec`.
    pub(crate) fn for_spec(&self, spec: &CallSpec) -> OperationHandle {
        OperationHandle {
            policy_cache: Arc::new(PolicyCache::for_spec(spec)),
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
    resolved: std::sync::Mutex<Option<(u64, Arc<Policy>)>>,
}

impl PolicyCache {
    pub(crate) fn for_spec(spec: &CallSpec) -> Self {
        PolicyCache {
            spec: spec as *const CallSpec as usize,
            resolved: std::sync::Mutex::new(None),
        }
    }

    /// The policy for `spec` at settings `generation`, resolved by `resolve` when not cached.
    /// `None` when this cache is for another spec.
    pub(crate) fn get(
        &self,
        spec: &CallSpec,
        generation: u64,
        resolve: impl FnOnce() -> Arc<Policy>,
    ) -> Option<Arc<Policy>> {
        if self.spec != spec as *const CallSpec as usize {
            return None;
        }
        let mut slot = self.resolved.lock().unwrap_or_else(|p| p.into_inner());
        match &*slot {
            Some((cached_at, policy)) if *cached_at == generation => Some(Arc::clone(policy)),
            _ => {
                let policy = resolve();
                *slot = Some((generation, Arc::clone(&policy)));
                Some(policy)
            }
        }
    }
}

impl RetryManager {
    /// A manager with the default settings, the system clock and a fresh in-memory registry.
    pub fn new() -> Self {
        // The defaults are valid by construction (a test checks it), so no validation and no
        // panic path.
        RetryManagerBuilder::default().build_unchecked()
    }

    /// A builder for the original's constructor arguments.
    ///
    /// ```
    /// use resilience_core::{CircuitBreakerConfig, RetryConfig, RetryManager};
    /// let manager = RetryManager::builder()
    ///     .default_config(RetryConfig { max_attempts: 5, ..RetryConfig::default() })
    ///     .circuit_breaker_config(CircuitBreakerConfig { failure_threshold: 3, ..Default::default() })
    ///     .build()
    ///     .unwrap();
    /// # let _ = manager;
    /// ```
    pub fn builder() -> RetryManagerBuilder {
        RetryManagerBuilder::default()
    }

    pub(crate) fn id(&self) -> u64 {
        self.id
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

    /// The settings' generation: changes whenever `configure_from_json` applies new settings.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub(crate) fn notify_retry(&self, event: &RetryEvent<'_>) {
        if let Some(hook) = &self.on_retry {
            hook(event);
        }
    }

    /// The breaker registry this manager uses.
    pub fn circuit_breaker_registry(&self) -> &Arc<CircuitBreakerRegistry> {
        &self.registry
    }

    /// The handle of (component, operation), created on first use.
    pub(crate) fn handle(&self, component: &str, operation: &str) -> Arc<OperationHandle> {
        if let Some(h) = self
            .handles
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(component)
            .and_then(|ops| ops.get(operation))
        {
            return Arc::clone(h);
        }
        let handle = Arc::new(OperationHandle {
            component: component.into(),
            operation: operation.into(),
            breaker: self.registry.get_breaker(component, operation),
            metrics: self.metrics.get(component, operation),
            policy_cache: Arc::new(PolicyCache::for_spec(&driver::GUARDED_SPEC)),
        });
        handle
            .breaker
            .configure(&self.breaker_config(component, operation, &CallSpec::GUARDED));
        let mut map = self.handles.write().unwrap_or_else(|p| p.into_inner());
        Arc::clone(
            map.entry(component.to_owned())
                .or_default()
                .entry(operation.to_owned())
                .or_insert(handle),
        )
    }

    fn settings(&self) -> std::sync::RwLockReadGuard<'_, Settings> {
        self.settings.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Settings of one call: call site > per-operation entry > manager defaults.
    pub(crate) fn resolve_policy(&self, handle: &OperationHandle, spec: &CallSpec) -> Arc<Policy> {
        let key_overrides = self.key_overrides(&handle.component, &handle.operation);
        let mut retry = match &spec.retry_base {
            Some(base) => RetryConfig::clone(base),
            None => {
                let mut retry = self.settings().retry.clone();
                key_overrides.retry.apply(&mut retry);
                retry
            }
        };
        spec.retry.apply(&mut retry);
        repair_retry(&mut retry);
        if spec.use_breaker && !(spec.breaker.is_empty() && spec.breaker_base.is_none()) {
            let breaker = self.breaker_config(&handle.component, &handle.operation, spec);
            handle.breaker.configure(&breaker);
        }
        Arc::new(Policy { retry })
    }

    pub(crate) fn breaker_config(
        &self,
        component: &str,
        operation: &str,
        spec: &CallSpec,
    ) -> CircuitBreakerConfig {
        let mut breaker = match &spec.breaker_base {
            Some(base) => CircuitBreakerConfig::clone(base),
            None => {
                let mut breaker = self.settings().breaker.clone();
                self.key_overrides(component, operation)
                    .breaker
                    .apply(&mut breaker);
                breaker
            }
        };
        spec.breaker.apply(&mut breaker);
        repair_breaker(&mut breaker);
        breaker
    }

    fn key_overrides(&self, component: &str, operation: &str) -> KeyOverrides {
        let settings = self.settings();
        if settings.per_key.is_empty() {
            return KeyOverrides::default();
        }
        settings
            .per_key
            .get(&format!("{component}:{operation}"))
            .copied()
            .unwrap_or_default()
    }

    /// Runs `f` until it succeeds, fails with a non-retryable error, or attempts run out, with
    /// the breaker of (component, operation). The original's `execute`.
    ///
    /// ```
    /// use resilience_core::RetryManager;
    /// let manager = RetryManager::new();
    /// let result: Result<&str, std::io::Error> = manager.execute("db", "ping", || Ok("pong"));
    /// assert_eq!(result.unwrap(), "pong");
    /// ```
    pub fn execute<T, E, F>(&self, component: &str, operation: &str, f: F) -> Result<T, E>
    where
        F: FnMut() -> Result<T, E>,
        E: Classify + From<CircuitOpenError>,
    {
        let handle = self.handle(component, operation);
        let call = CallState::new(self, &handle, &driver::GUARDED_SPEC);
        driver::run_blocking(call, driver::admit_guarded, f)
    }

    /// The async form of [`execute`](Self::execute): `f` makes a new future per attempt. The
    /// returned future is `Send` when `f` and its futures are.
    ///
    /// ```
    /// use resilience_core::RetryManager;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let manager = RetryManager::new();
    /// let result: Result<u8, std::io::Error> =
    ///     manager.execute_async("api", "get", || async { Ok(1) }).await;
    /// assert_eq!(result.unwrap(), 1);
    /// # });
    /// ```
    pub async fn execute_async<T, E, F, Fut>(
        &self,
        component: &str,
        operation: &str,
        f: F,
    ) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Classify + From<CircuitOpenError>,
    {
        // Not through `call(..)`: its spec would be copied into this future for nothing.
        let handle = self.handle(component, operation);
        let call = CallState::new(self, &handle, &driver::GUARDED_SPEC);
        driver::run_async(call, driver::admit_guarded, f).await
    }

    /// A call with per-call overrides, ended by [`Call::run`] or [`Call::run_async`]. The
    /// original's `retry(...)`.
    ///
    /// ```
    /// use resilience_core::RetryManager;
    /// use std::time::Duration;
    /// let manager = RetryManager::new();
    /// let result: Result<u8, std::io::Error> = manager
    ///     .call("db", "query")
    ///     .max_attempts(5)
    ///     .initial_delay(Duration::from_millis(10))
    ///     .run(|| Ok(3));
    /// assert_eq!(result.unwrap(), 3);
    /// ```
    pub fn call(&self, component: &str, operation: &str) -> Call<'_, Guarded> {
        Call {
            manager: self,
            handle: HandleRef::Owned(self.handle(component, operation)),
            spec: CallSpec::GUARDED,
            mode: PhantomData,
        }
    }

    /// A handle on (component, operation) that calls through without looking it up again:
    /// keep it where the same operation is called often.
    ///
    /// ```
    /// use resilience_core::RetryManager;
    /// let manager = RetryManager::new();
    /// let fetch = manager.operation("api", "fetch");
    /// for id in 0..3 {
    ///     let got: Result<u32, std::io::Error> = fetch.execute(|| Ok(id));
    ///     assert_eq!(got.unwrap(), id);
    /// }
    /// assert_eq!(manager.metrics().get("api", "fetch").unwrap().calls, 3);
    /// ```
    pub fn operation(&self, component: &str, operation: &str) -> Operation<'_> {
        Operation {
            manager: self,
            handle: self.handle(component, operation),
        }
    }

    /// Every breaker's status as of now, keyed `"service:operation"`.
    ///
    /// ```
    /// use resilience_core::RetryManager;
    /// let manager = RetryManager::new();
    /// let _: Result<(), std::io::Error> = manager.execute("api", "get", || Ok(()));
    /// assert_eq!(manager.circuit_breaker_status()["api:get"].failure_count, 0);
    /// ```
    pub fn circuit_breaker_status(&self) -> BTreeMap<String, CircuitBreakerStatus> {
        self.registry.status()
    }

    /// Closes the breaker of (service, operation) and clears its counters and timeout ladder.
    ///
    /// ```
    /// use resilience_core::RetryManager;
    /// RetryManager::new().reset_circuit_breaker("api", "get");
    /// ```
    pub fn reset_circuit_breaker(&self, service: &str, operation: &str) {
        self.registry.reset(service, operation);
    }

    /// Every operation's figures as of now.
    ///
    /// ```
    /// use resilience_core::RetryManager;
    /// let manager = RetryManager::new();
    /// let _: Result<(), std::io::Error> = manager.execute("api", "get", || Ok(()));
    /// let json = serde_json::to_value(manager.metrics()).unwrap();
    /// assert_eq!(json["api:get"]["calls"], 1);
    /// ```
    pub fn metrics(&self) -> MetricsSnapshot {
        self.metrics.snapshot()
    }

    /// One operation's figures as of now; `None` until the operation is first called.
    ///
    /// ```
    /// use resilience_core::RetryManager;
    /// let manager = RetryManager::new();
    /// assert!(manager.metrics_for("api", "get").is_none());
    /// let _: Result<(), std::io::Error> = manager.execute("api", "get", || Ok(()));
    /// assert_eq!(manager.metrics_for("api", "get").unwrap().successes, 1);
    /// ```
    pub fn metrics_for(&self, component: &str, operation: &str) -> Option<OperationSnapshot> {
        self.metrics.snapshot_of(component, operation)
    }

    /// Sets every operation's figures back to zero (breakers are not touched). Counts made by
    /// calls running meanwhile may land on either side. Series already published through the
    /// `metrics` feature keep growing: exporters expect counters never to go down.
    ///
    /// ```
    /// use resilience_core::RetryManager;
    /// let manager = RetryManager::new();
    /// let _: Result<(), std::io::Error> = manager.execute("api", "get", || Ok(()));
    /// manager.reset_metrics();
    /// assert_eq!(manager.metrics_for("api", "get").unwrap().calls, 0);
    /// ```
    pub fn reset_metrics(&self) {
        self.metrics.reset();
    }

    /// Applies settings from JSON, the original's `configure_from_dict`: see
    /// [`crate::config_json`]. All or nothing: on error nothing changes.
    ///
    /// ```
    /// use resilience_core::RetryManager;
    /// let manager = RetryManager::new();
    /// manager.configure_from_json(&serde_json::json!({
    ///     "retry": {"max_attempts": 5, "initial_delay": 0.5},
    ///     "circuit_breaker": {"failure_threshold": 3},
    ///     "operations": {"ChEMBL:fetch": {"retry": {"max_attempts": 8}}}
    /// })).unwrap();
    /// let err = manager.configure_from_json(&serde_json::json!({"retry": {"max_attempts": 0}}));
    /// assert_eq!(err.unwrap_err().field(), "retry.max_attempts");
    /// ```
    pub fn configure_from_json(&self, value: &serde_json::Value) -> Result<(), ConfigError> {
        let mut settings = self.settings().clone();
        crate::config_json::apply(&mut settings, value)?;
        let deadlines = settings.retry.max_elapsed.is_some()
            || settings
                .per_key
                .values()
                .any(|k| k.retry.max_elapsed.is_some());
        *self.settings.write().unwrap_or_else(|p| p.into_inner()) = settings;
        self.generation.fetch_add(1, Ordering::AcqRel);
        if deadlines {
            self.deadlines.store(true, Ordering::Relaxed);
        }
        // Live breakers take the new thresholds at once.
        let handles: Vec<_> = self
            .handles
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .flat_map(|ops| ops.values().cloned())
            .collect();
        for h in handles {
            h.breaker.configure(&self.breaker_config(
                &h.component,
                &h.operation,
                &CallSpec::GUARDED,
            ));
        }
        Ok(())
    }

    /// The manager's default retry settings (before per-operation overrides).
    ///
    /// ```
    /// use resilience_core::RetryManager;
    /// assert_eq!(RetryManager::new().default_config().max_attempts, 3);
    /// ```
    pub fn default_config(&self) -> RetryConfig {
        self.settings().retry.clone()
    }
}

impl Default for RetryManager {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for RetryManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryManager")
            .field("id", &self.id)
            .field("settings", &*self.settings())
            .field("classifier", &self.classifier)
            .finish_non_exhaustive()
    }
}

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
}

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
        Ok(self.build_unchecked())
    }

    fn build_unchecked(self) -> RetryManager {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        let clock: Arc<dyn Clock> = self.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let registry = self
            .registry
            .unwrap_or_else(|| Arc::new(CircuitBreakerRegistry::with_clock(Arc::clone(&clock))));
        let metrics = Arc::new(MetricsRegistry::default());
        // Breaker transitions are counted in this manager's figures. Weak: a registry shared
        // with other managers may outlive this one.
        let transitions_to = Arc::downgrade(&metrics);
        registry.on_state_change(move |change| {
            if let Some(op) = transitions_to
                .upgrade()
                .and_then(|m| m.find(change.service, change.operation))
            {
                op.record_transition(change.from, change.to);
            }
        });
        let retry = self.retry.unwrap_or_default();
        RetryManager {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            deadlines: AtomicBool::new(retry.max_elapsed.is_some()),
            generation: AtomicU64::new(0),
            settings: RwLock::new(Settings {
                retry,
                breaker: self.breaker.unwrap_or_default(),
                per_key: HashMap::new(),
            }),
            clock,
            rng: self.seed.map_or_else(Rng::from_entropy, Rng::seeded),
            classifier: self.classifier.unwrap_or_default(),
            registry,
            metrics,
            handles: RwLock::new(HashMap::new()),
            on_retry: self.on_retry,
        }
    }
}

/// One (component, operation) of a manager, resolved once; see [`RetryManager::operation`].
#[derive(Clone)]
pub struct Operation<'m> {
    manager: &'m RetryManager,
    handle: Arc<OperationHandle>,
}

impl Operation<'_> {
    /// As [`RetryManager::execute`], without the look-up.
    pub fn execute<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnMut() -> Result<T, E>,
        E: Classify + From<CircuitOpenError>,
    {
        let call = CallState::new(self.manager, &self.handle, &driver::GUARDED_SPEC);
        driver::run_blocking(call, driver::admit_guarded, f)
    }

    /// As [`RetryManager::execute_async`], without the look-up.
    ///
    /// ```
    /// use resilience_core::RetryManager;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let manager = RetryManager::new();
    /// let get = manager.operation("api", "get");
    /// let got: Result<u8, std::io::Error> = get.execute_async(|| async { Ok(5) }).await;
    /// assert_eq!(got.unwrap(), 5);
    /// # });
    /// ```
    pub async fn execute_async<T, E, F, Fut>(&self, f: F) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Classify + From<CircuitOpenError>,
    {
        let call = CallState::new(self.manager, &self.handle, &driver::GUARDED_SPEC);
        driver::run_async(call, driver::admit_guarded, f).await
    }

    /// A call with per-call overrides, as [`RetryManager::call`].
    ///
    /// ```
    /// use resilience_core::RetryManager;
    /// let manager = RetryManager::new();
    /// let get = manager.operation("api", "get");
    /// let got: Result<u8, std::io::Error> = get.call().max_attempts(1).run(|| Ok(1));
    /// assert_eq!(got.unwrap(), 1);
    /// ```
    pub fn call(&self) -> Call<'_, Guarded> {
        Call {
            manager: self.manager,
            handle: HandleRef::Cached(&self.handle),
            spec: CallSpec::GUARDED,
            mode: PhantomData,
        }
    }

    /// The breaker's status as of now.
    ///
    /// ```
    /// use resilience_core::{CircuitState, RetryManager};
    /// let manager = RetryManager::new();
    /// assert_eq!(manager.operation("api", "get").circuit_breaker_status().state, CircuitState::Closed);
    /// ```
    pub fn circuit_breaker_status(&self) -> CircuitBreakerStatus {
        self.handle.breaker.status()
    }
}

impl fmt::Debug for Operation<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Operation")
            .field("component", &self.handle.component)
            .field("operation", &self.handle.operation)
            .finish()
    }
}

/// Marks a [`Call`] that goes through its breaker (its error type takes `CircuitOpenError`).
#[derive(Debug)]
pub enum Guarded {}

/// Marks a [`Call`] that bypasses its breaker.
#[derive(Debug)]
pub enum Unguarded {}

/// One call with per-call overrides; see [`RetryManager::call`]. Per-call values win over
/// per-operation JSON entries, which win over the manager's defaults.
#[must_use = "a call does nothing until `run` or `run_async`"]
pub struct Call<'m, Mode> {
    manager: &'m RetryManager,
    handle: HandleRef<'m>,
    spec: CallSpec,
    mode: PhantomData<Mode>,
}

impl<'m, Mode> Call<'m, Mode> {
    /// Replaces the manager's retry settings for this call (overrides set on the call still
    /// apply on top).
    ///
    /// ```
    /// use resilience_core::{RetryConfig, RetryManager};
    /// let manager = RetryManager::new();
    /// let config = RetryConfig { max_attempts: 1, ..RetryConfig::default() };
    /// let mut attempts = 0;
    /// let _: Result<(), std::io::Error> = manager.call("api", "get").config(config).run(|| {
    ///     attempts += 1;
    ///     Err(std::io::ErrorKind::TimedOut.into())
    /// });
    /// assert_eq!(attempts, 1);
    /// ```
    pub fn config(mut self, config: RetryConfig) -> Self {
        self.spec.retry_base = Some(Box::new(config));
        self
    }

    /// Attempts in all, the first included.
    ///
    /// ```
    /// use resilience_core::{ManualClock, RetryManager};
    /// use std::time::Duration;
    /// let clock = ManualClock::new();
    /// let manager = RetryManager::builder().clock(clock.clone()).seed(1).build().unwrap();
    /// let fail = || -> Result<(), std::io::Error> { Err(std::io::ErrorKind::TimedOut.into()) };
    /// let _ = manager.call("api", "get").max_attempts(4).run(fail);
    /// assert_eq!(clock.sleeps().len(), 3);
    /// ```
    pub fn max_attempts(mut self, max_attempts: u32) -> Self {
        self.spec.retry.max_attempts = Some(max_attempts);
        self
    }

    /// Delay before the first retry.
    ///
    /// ```
    /// use resilience_core::{ManualClock, RetryManager};
    /// use std::time::Duration;
    /// let clock = ManualClock::new();
    /// let manager = RetryManager::builder().clock(clock.clone()).seed(1).build().unwrap();
    /// let fail = || -> Result<(), std::io::Error> { Err(std::io::ErrorKind::TimedOut.into()) };
    /// let _ = manager.call("api", "get").max_attempts(2).jitter_factor(0.0)
    ///     .initial_delay(Duration::from_secs(3)).run(fail);
    /// assert_eq!(clock.sleeps(), [Duration::from_secs(3)]);
    /// ```
    pub fn initial_delay(mut self, delay: Duration) -> Self {
        self.spec.retry.initial_delay = Some(delay);
        self
    }

    /// Cap of every delay.
    ///
    /// ```
    /// use resilience_core::{ManualClock, RetryManager};
    /// use std::time::Duration;
    /// let clock = ManualClock::new();
    /// let manager = RetryManager::builder().clock(clock.clone()).seed(1).build().unwrap();
    /// let fail = || -> Result<(), std::io::Error> { Err(std::io::ErrorKind::TimedOut.into()) };
    /// let _ = manager.call("api", "get").max_attempts(5).initial_delay(Duration::from_secs(1))
    ///     .max_delay(Duration::from_secs(2)).run(fail);
    /// assert!(clock.sleeps().iter().all(|d| *d <= Duration::from_secs(2)));
    /// ```
    pub fn max_delay(mut self, delay: Duration) -> Self {
        self.spec.retry.max_delay = Some(delay);
        self
    }

    /// Growth of the delay per retry.
    ///
    /// ```
    /// use resilience_core::{ManualClock, RetryManager};
    /// use std::time::Duration;
    /// let clock = ManualClock::new();
    /// let manager = RetryManager::builder().clock(clock.clone()).seed(1).build().unwrap();
    /// let fail = || -> Result<(), std::io::Error> { Err(std::io::ErrorKind::TimedOut.into()) };
    /// let _ = manager.call("api", "get").max_attempts(3).jitter_factor(0.0)
    ///     .initial_delay(Duration::from_secs(1)).backoff_factor(3.0).run(fail);
    /// assert_eq!(clock.sleeps(), [Duration::from_secs(1), Duration::from_secs(3)]);
    /// ```
    pub fn backoff_factor(mut self, factor: f64) -> Self {
        self.spec.retry.backoff_factor = Some(factor);
        self
    }

    /// Spread of the proportional jitter.
    ///
    /// ```
    /// use resilience_core::{ManualClock, RetryManager};
    /// use std::time::Duration;
    /// let clock = ManualClock::new();
    /// let manager = RetryManager::builder().clock(clock.clone()).seed(1).build().unwrap();
    /// let fail = || -> Result<(), std::io::Error> { Err(std::io::ErrorKind::TimedOut.into()) };
    /// let _ = manager.call("api", "get").max_attempts(2)
    ///     .initial_delay(Duration::from_secs(1)).jitter_factor(0.5).run(fail);
    /// let slept = clock.sleeps()[0];
    /// assert!(slept >= Duration::from_secs(1) && slept <= Duration::from_millis(1500));
    /// ```
    pub fn jitter_factor(mut self, factor: f64) -> Self {
        self.spec.retry.jitter_factor = Some(factor);
        self
    }

    /// The jitter strategy.
    ///
    /// ```
    /// use resilience_core::{ManualClock, RetryManager};
    /// use std::time::Duration;
    /// let clock = ManualClock::new();
    /// let manager = RetryManager::builder().clock(clock.clone()).seed(1).build().unwrap();
    /// let fail = || -> Result<(), std::io::Error> { Err(std::io::ErrorKind::TimedOut.into()) };
    /// use resilience_core::Jitter;
    /// let _ = manager.call("api", "get").max_attempts(2)
    ///     .initial_delay(Duration::from_secs(1)).jitter(Jitter::Full).run(fail);
    /// assert!(clock.sleeps()[0] <= Duration::from_secs(1));
    /// ```
    pub fn jitter(mut self, jitter: Jitter) -> Self {
        self.spec.retry.jitter = Some(jitter);
        self
    }

    /// An overall deadline for the call, retries and waits included.
    ///
    /// ```
    /// use resilience_core::{ManualClock, RetryManager};
    /// use std::time::Duration;
    /// let clock = ManualClock::new();
    /// let manager = RetryManager::builder().clock(clock.clone()).seed(1).build().unwrap();
    /// let fail = || -> Result<(), std::io::Error> { Err(std::io::ErrorKind::TimedOut.into()) };
    /// let _ = manager.call("api", "get").max_attempts(10).jitter_factor(0.0)
    ///     .initial_delay(Duration::from_secs(1)).max_elapsed(Duration::from_secs(4)).run(fail);
    /// assert_eq!(clock.sleeps(), [Duration::from_secs(1), Duration::from_secs(2)]);
    /// ```
    pub fn max_elapsed(mut self, limit: Duration) -> Self {
        // The call reads the clock at its start because its own spec has a deadline; the
        // manager-wide flag stays as it was, so calls without one keep not reading it.
        self.spec.retry.max_elapsed = Some(limit);
        self
    }

    /// A hook called before each retry of this call.
    ///
    /// ```
    /// use resilience_core::{ManualClock, RetryManager};
    /// use std::time::Duration;
    /// let clock = ManualClock::new();
    /// let manager = RetryManager::builder().clock(clock.clone()).seed(1).build().unwrap();
    /// let fail = || -> Result<(), std::io::Error> { Err(std::io::ErrorKind::TimedOut.into()) };
    /// use std::sync::{Arc, atomic::{AtomicU32, Ordering}};
    /// let retries = Arc::new(AtomicU32::new(0));
    /// let counter = Arc::clone(&retries);
    /// let _ = manager.call("api", "get")
    ///     .on_retry(move |_| { counter.fetch_add(1, Ordering::Relaxed); })
    ///     .run(fail);
    /// assert_eq!(retries.load(Ordering::Relaxed), 2);
    /// ```
    pub fn on_retry(mut self, hook: impl Fn(&RetryEvent<'_>) + Send + Sync + 'static) -> Self {
        self.spec.on_retry = Some(Arc::new(hook));
        self
    }

    /// The settings this call would run with, checked. `run` repairs invalid values (and logs
    /// them) instead of failing, since it can only return the caller's error type.
    ///
    /// ```
    /// use resilience_core::RetryManager;
    /// let manager = RetryManager::new();
    /// assert!(manager.call("a", "b").max_attempts(0).validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut retry = match &self.spec.retry_base {
            Some(base) => RetryConfig::clone(base),
            None => self.manager.default_config(),
        };
        self.spec.retry.apply(&mut retry);
        retry.validate().map_err(|e| e.within("retry"))?;
        let mut breaker = self
            .spec
            .breaker_base
            .as_deref()
            .cloned()
            .unwrap_or_else(|| self.manager.settings().breaker.clone());
        self.spec.breaker.apply(&mut breaker);
        breaker.validate().map_err(|e| e.within("circuit_breaker"))
    }
}

impl<'m> Call<'m, Guarded> {
    /// Breaker settings for this call's breaker.
    ///
    /// ```
    /// use resilience_core::{CircuitBreakerConfig, RetryManager};
    /// let manager = RetryManager::new();
    /// let _: Result<(), std::io::Error> = manager
    ///     .call("api", "get")
    ///     .circuit_breaker_config(CircuitBreakerConfig { failure_threshold: 1, ..Default::default() })
    ///     .max_attempts(1)
    ///     .run(|| Err(std::io::ErrorKind::TimedOut.into()));
    /// assert_eq!(manager.circuit_breaker_status()["api:get"].state.as_str(), "OPEN");
    /// ```
    pub fn circuit_breaker_config(mut self, config: CircuitBreakerConfig) -> Self {
        self.spec.breaker_base = Some(Box::new(config));
        self
    }

    /// Runs without the breaker: nothing is asked of it or reported to it.
    ///
    /// ```
    /// use resilience_core::RetryManager;
    /// #[derive(Debug)]
    /// struct NoConversion; // no From<CircuitOpenError> needed without a breaker
    /// impl resilience_core::Classify for NoConversion {}
    /// let manager = RetryManager::new();
    /// let got: Result<u8, NoConversion> = manager.call("api", "get").without_circuit_breaker().run(|| Ok(2));
    /// assert_eq!(got.unwrap(), 2);
    /// ```
    pub fn without_circuit_breaker(mut self) -> Call<'m, Unguarded> {
        self.spec.use_breaker = false;
        Call {
            manager: self.manager,
            handle: self.handle,
            spec: self.spec,
            mode: PhantomData,
        }
    }

    /// Runs `f` with retries, through the breaker.
    pub fn run<T, E, F>(self, f: F) -> Result<T, E>
    where
        F: FnMut() -> Result<T, E>,
        E: Classify + From<CircuitOpenError>,
    {
        let call = CallState::new(self.manager, &self.handle, &self.spec);
        driver::run_blocking(call, driver::admit_guarded, f)
    }

    /// Runs the futures made by `f` with retries, through the breaker.
    pub async fn run_async<T, E, F, Fut>(self, f: F) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Classify + From<CircuitOpenError>,
    {
        let call = CallState::new(self.manager, &self.handle, &self.spec);
        driver::run_async(call, driver::admit_guarded, f).await
    }
}

impl Call<'_, Unguarded> {
    /// Runs `f` with retries, without a breaker.
    pub fn run<T, E, F>(self, f: F) -> Result<T, E>
    where
        F: FnMut() -> Result<T, E>,
        E: Classify,
    {
        let call = CallState::new(self.manager, &self.handle, &self.spec);
        driver::run_blocking(call, driver::admit_unguarded, f)
    }

    /// Runs the futures made by `f` with retries, without a breaker.
    pub async fn run_async<T, E, F, Fut>(self, f: F) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Classify,
    {
        let call = CallState::new(self.manager, &self.handle, &self.spec);
        driver::run_async(call, driver::admit_unguarded, f).await
    }
}
