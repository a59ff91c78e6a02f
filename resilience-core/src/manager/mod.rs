//! The facade: [`RetryManager`], its builder, one-off calls ([`Call`]), held operations
//! ([`Operation`]) and the `#[retry]` call sites ([`Site`]). Everything a call decides is the
//! `call` layer's; everything it is configured with is the `policy` layer's.

mod builder;
mod call;
mod global;
mod handles;
mod operation;
mod site;

pub use builder::RetryManagerBuilder;
pub use call::{Call, Guarded, Unguarded};
pub use global::{global, set_global};
pub use operation::Operation;
pub use site::{engine, HandleRef, Site};

use crate::breaker::ListenerId;
use crate::call::{
    admit_guarded, run_async, run_blocking, CallSpec, CallState, Engine, OperationHandle,
    GUARDED_SPEC,
};
use crate::policy::{key, Document, Settings};
use crate::{
    CircuitBreakerRegistry, CircuitBreakerStatus, CircuitOpenError, Classify, ConfigError,
    MetricsSnapshot, NoJudge, OperationSnapshot, RetryConfig,
};
use handles::{find, Claims, Handles};
use parking_lot::{Mutex, RwLock};
use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

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
    engine: Engine,
    registry: Arc<CircuitBreakerRegistry>,
    /// Every operation's handle (and through it, its figures). Shared with this manager's
    /// listener on the registry, which counts breaker transitions in the figures.
    handles: Arc<RwLock<Handles>>,
    /// Serializes configuration and breaker settings, and keeps the breaker settings claimed
    /// by call sites; see the `handles` module.
    configuring: Mutex<Claims>,
    /// The cap on operations this manager keeps; see [`RetryManagerBuilder::max_operations`].
    max_operations: usize,
    /// Operations in `handles`.
    operation_count: AtomicUsize,
    /// Operations evicted so far.
    evicted: AtomicU64,
    /// Whether the cap was reached with nothing to evict (logged once).
    cap_warned: AtomicBool,
    /// This manager's listener on the registry, removed when the manager is dropped (a registry
    /// shared by many managers must not collect the listeners of the dead ones).
    listener: ListenerId,
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

    fn from_parts(
        engine: Engine,
        registry: Arc<CircuitBreakerRegistry>,
        max_operations: usize,
    ) -> RetryManager {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        let handles: Arc<RwLock<Handles>> = Arc::default();
        // Breaker transitions are counted in this manager's figures. Weak: a delivery already
        // under way when the manager is dropped may still call the listener once.
        let transitions_to = Arc::downgrade(&handles);
        let listener = registry.add_listener(Arc::new(move |change| {
            let Some(handles) = transitions_to.upgrade() else {
                return;
            };
            // Recursive: a delivery from a thread that holds a read lock on the map (a
            // configuration writing breaker settings) must not queue behind a waiting writer.
            let metrics = find(&handles.read_recursive(), change.service, change.operation)
                .map(|h| Arc::clone(&h.metrics));
            if let Some(m) = metrics {
                m.record_transition(change.service, change.operation, change.from, change.to);
            }
        }));
        RetryManager {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            engine,
            registry,
            handles,
            configuring: Mutex::new(Claims::default()),
            max_operations,
            operation_count: AtomicUsize::new(0),
            evicted: AtomicU64::new(0),
            cap_warned: AtomicBool::new(false),
            listener,
        }
    }

    /// This manager's number: call sites cache their handle for one manager.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// Episodes of the manager's breakers falling back to local state because their shared
    /// store (Redis, feature `redis`) was unreachable, summed over the breakers; 0 without a
    /// shared store. Per breaker: [`CircuitBreakerRegistry::shared_status`].
    ///
    /// ```
    /// use resilience_core::RetryManager;
    /// assert_eq!(RetryManager::new().store_fallbacks(), 0);
    /// ```
    pub fn store_fallbacks(&self) -> u64 {
        self.circuit_breaker_registry().store_fallbacks()
    }

    /// How many operations were evicted to keep this manager under its cap
    /// ([`RetryManagerBuilder::max_operations`]).
    ///
    /// ```
    /// use resilience_core::RetryManager;
    /// let manager = RetryManager::builder().max_operations(2).build().unwrap();
    /// for id in 0..10 {
    ///     let _: Result<(), std::io::Error> = manager.execute("tenant", &id.to_string(), || Ok(()));
    /// }
    /// assert!(manager.evicted_operations() > 0);
    /// assert!(manager.metrics().operations.len() <= 3);
    /// ```
    pub fn evicted_operations(&self) -> u64 {
        self.evicted.load(Ordering::Relaxed)
    }

    /// The breaker registry this manager uses.
    pub fn circuit_breaker_registry(&self) -> &Arc<CircuitBreakerRegistry> {
        &self.registry
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
        // With a handle borrowed from this thread's recent ones: no lock, no hashing, no
        // shared count.
        self.with_recent(component, operation, |handle| {
            let call = CallState::new(&self.engine, handle, &GUARDED_SPEC);
            run_blocking(call, admit_guarded, &NoJudge, f)
        })
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
        // Not through `call(..)`: its spec would be copied into this future for nothing. Found
        // among this thread's recent handles, but shared, not taken: the future may be
        // pending while other calls on this thread want the same operation.
        let handle = self.shared_handle(component, operation);
        let call = CallState::new(&self.engine, &handle, &GUARDED_SPEC);
        run_async(call, admit_guarded, &NoJudge, f).await
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
            // Not guarded yet: a call that ends up bypassing its breaker creates none.
            handle: HandleRef::Owned(self.handle(component, operation, false)),
            spec: CallSpec::GUARDED,
            judge: NoJudge,
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
            handle: self.handle(component, operation, true),
        }
    }

    /// The guarded handle of (component, operation), to hold: the tower layer and the reqwest
    /// middleware keep one per service, so that their calls make no look-up by name.
    #[cfg(any(feature = "tower", feature = "reqwest-middleware"))]
    pub(crate) fn held_handle(&self, component: &str, operation: &str) -> Arc<OperationHandle> {
        self.handle(component, operation, true)
    }

    /// Runs the futures of `f` as a call on a held handle with `spec`. With `GUARDED_SPEC`
    /// the operation's resolved policy is read through its cache, as a `#[retry]` site reads
    /// it. Not an `async fn`: the driver's future is returned as it is, not wrapped in one more
    /// that would keep its own copy of `f`.
    #[cfg(any(feature = "tower", feature = "reqwest-middleware"))]
    pub(crate) fn run_held<'a, T, E, F, Fut, J>(
        &'a self,
        handle: &'a OperationHandle,
        spec: &'a CallSpec,
        judge: &'a J,
        f: F,
    ) -> impl Future<Output = Result<T, E>> + 'a
    where
        F: FnMut() -> Fut + 'a,
        Fut: Future<Output = Result<T, E>> + 'a,
        E: Classify + From<CircuitOpenError> + 'a,
        J: crate::JudgeOk<T>,
        T: 'a,
    {
        let call = CallState::new(&self.engine, handle, spec);
        run_async(call, admit_guarded, judge, f)
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
        // The map's lock is held only to copy the handles: summing every operation's counts
        // happens after, so the first call of a new operation never waits behind a snapshot.
        let operations: Vec<(String, Arc<OperationHandle>)> = self
            .handles
            .read()
            .iter()
            .flat_map(|(c, ops)| {
                ops.iter()
                    .map(move |h| (key(c, &h.0.operation), Arc::clone(&h.0)))
            })
            .collect();
        MetricsSnapshot {
            operations: operations
                .into_iter()
                .map(|(key, h)| (key, h.metrics.snapshot()))
                .collect(),
        }
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
        let metrics =
            find(&self.handles.read(), component, operation).map(|h| Arc::clone(&h.metrics));
        metrics.map(|m| m.snapshot())
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
        for ops in self.handles.read().values() {
            for h in ops {
                h.0.metrics.reset();
            }
        }
    }

    /// Applies settings from JSON, the original's `configure_from_dict`, with the same keys:
    ///
    /// ```json
    /// {
    ///   "retry": {"max_attempts": 5, "initial_delay": 0.5, "max_delay": 30.0,
    ///             "backoff_factor": 1.5, "jitter_factor": 0.2},
    ///   "circuit_breaker": {"failure_threshold": 3, "reset_timeout": 60.0, "half_open_max_calls": 2,
    ///                       "success_threshold": 2, "open_timeout_increment_factor": 2.0,
    ///                       "max_open_timeout": 300.0},
    ///   "operations": {"ChEMBL:fetch_molecule": {"retry": {"max_attempts": 8}}}
    /// }
    /// ```
    ///
    /// Durations are seconds as numbers, as in the original. Beyond the original, `retry` also
    /// takes `jitter` (`"proportional"`, `"full"`, `"equal"`, `"decorrelated"`), `max_elapsed`
    /// (seconds) and `retryable_categories` (a list of category names), and `operations` holds
    /// per-`"service:operation"` entries with the same `retry` and `circuit_breaker` keys (a `:`
    /// or `%` inside the service name written `%3A` or `%25`). A document's values are laid over
    /// the settings as they are; an entry replaces the operation's earlier entry.
    ///
    /// Precedence, highest first: values set at the call site (`#[retry(...)]` arguments,
    /// `call(..).max_attempts(..)`), then the operation's entry in `operations`, then the
    /// top-level `retry` / `circuit_breaker` values, then the built-in defaults.
    ///
    /// All or nothing: unknown keys and bad values are errors that name the field (its JSON
    /// path), and so is a document whose values would break a rule together with the settings
    /// already in force (an entry's `initial_delay` above a new default `max_delay`, say); on
    /// error nothing changes. Configurations from several threads apply one after the other,
    /// none lost.
    ///
    /// `store` (feature `redis`) shares the breakers of the manager's registry with a fleet
    /// through Redis, with the keys of [`RedisStoreConfig::from_json`](crate::RedisStoreConfig::from_json)
    /// (only `redis`, the URL, is required), as
    /// [`CircuitBreakerRegistry::share_through_redis`] does. A registry keeps the store it was
    /// first given: the same `store` again changes nothing, another one is an error.
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
        let mut document = Document::parse(value)?;
        let store = document.take_store();
        // Held from reading the settings to the last breaker written: two configurations
        // cannot lose one another's changes, and an operation used for the first time meanwhile
        // gets its breaker settings either from the new settings or from the walk below.
        let claims = self.configuring.lock();
        let mut settings = Settings::clone(&self.engine.settings());
        document.apply_to(&mut settings)?;
        settings.validate()?;
        // Last of what can fail: it changes nothing when it fails, and nothing below fails.
        if let Some(store) = store {
            share_breakers(&self.registry, &store)?;
        }
        self.engine.replace_settings(settings);
        for handle in self.handles.read().values().flat_map(|ops| ops.iter()) {
            self.write_breaker_settings(&claims, &handle.0);
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
        self.engine.settings().retry.clone()
    }
}

/// Applies a configuration document's `store` section to the manager's registry.
#[cfg(feature = "redis")]
fn share_breakers(
    registry: &CircuitBreakerRegistry,
    store: &serde_json::Value,
) -> Result<(), ConfigError> {
    let (mut config, named) = crate::RedisStoreConfig::from_value(store)?;
    if let Some(running) = registry.redis_config().filter(|_| !named) {
        // A document read again (a reloaded file) names the same store; the instance id it
        // did not give is the one already running, not a new one made up.
        config.instance_id = running.instance_id.clone();
    }
    registry.share_through_redis(config)
}

#[cfg(not(feature = "redis"))]
fn share_breakers(
    _registry: &CircuitBreakerRegistry,
    _store: &serde_json::Value,
) -> Result<(), ConfigError> {
    Err(ConfigError::new(
        "store",
        "needs resilience-core's feature `redis`, which this program was built without",
    ))
}

impl Drop for RetryManager {
    fn drop(&mut self) {
        handles::forget_recent(self.id);
        self.registry.remove_listener(self.listener);
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
            .field("engine", &self.engine)
            .finish_non_exhaustive()
    }
}
