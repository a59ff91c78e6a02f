//! The registry of breakers, keyed by (service, operation).

use super::{CircuitBreaker, CircuitBreakerConfig, CircuitBreakerStatus};
use crate::{Clock, SystemClock};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// Every breaker of a program, keyed by (service, operation). Share it between managers with an
/// `Arc`.
///
/// ```
/// use resilience_core::CircuitBreakerRegistry;
/// use std::sync::Arc;
/// let registry = CircuitBreakerRegistry::new();
/// let a = registry.get_breaker("svc", "op");
/// let b = registry.get_breaker("svc", "op");
/// assert!(Arc::ptr_eq(&a, &b));
/// ```
#[derive(Debug)]
pub struct CircuitBreakerRegistry {
    clock: Arc<dyn Clock>,
    breakers: RwLock<HashMap<String, HashMap<String, Arc<CircuitBreaker>>>>,
    state_file: Option<PathBuf>,
}

impl Default for CircuitBreakerRegistry {
    fn default() -> Self {
        Self::new()
    }
}

impl CircuitBreakerRegistry {
    /// An empty registry on the system clock, kept in memory only.
    pub fn new() -> Self {
        Self::with_clock(Arc::new(SystemClock))
    }

    /// An empty registry whose breakers tell time by `clock`.
    ///
    /// ```
    /// use resilience_core::{CircuitBreakerRegistry, ManualClock};
    /// use std::sync::Arc;
    /// let registry = CircuitBreakerRegistry::with_clock(Arc::new(ManualClock::new()));
    /// ```
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        CircuitBreakerRegistry {
            clock,
            breakers: RwLock::new(HashMap::new()),
            state_file: None,
        }
    }

    /// A registry whose state is kept in the file at `path` across restarts.
    pub fn with_state_file(path: impl AsRef<Path>) -> Result<Self, PersistError> {
        let mut registry = Self::new();
        registry.state_file = Some(path.as_ref().to_path_buf());
        Ok(registry)
    }

    /// The clock the breakers use.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The breaker for (service, operation), created closed on first use.
    pub fn get_breaker(&self, service: &str, operation: &str) -> Arc<CircuitBreaker> {
        if let Some(b) = self
            .breakers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(service)
            .and_then(|ops| ops.get(operation))
        {
            return Arc::clone(b);
        }
        let mut map = self.breakers.write().unwrap_or_else(|p| p.into_inner());
        Arc::clone(
            map.entry(service.to_owned())
                .or_default()
                .entry(operation.to_owned())
                .or_insert_with(|| {
                    Arc::new(CircuitBreaker::new(
                        service,
                        operation,
                        Arc::clone(&self.clock),
                    ))
                }),
        )
    }

    /// Records a success outside a guarded call (the original's API).
    pub fn report_success(&self, service: &str, operation: &str) {
        let breaker = self.get_breaker(service, operation);
        if let Ok(permit) = breaker.try_acquire() {
            permit.record_success();
        };
    }

    /// Records a retryable failure outside a guarded call (the original's API).
    pub fn report_failure(&self, service: &str, operation: &str, config: &CircuitBreakerConfig) {
        let breaker = self.get_breaker(service, operation);
        breaker.configure(config);
        if let Ok(permit) = breaker.try_acquire() {
            permit.record_failure();
        };
    }

    /// Every breaker's status, keyed `"service:operation"`.
    pub fn status(&self) -> BTreeMap<String, CircuitBreakerStatus> {
        let map = self.breakers.read().unwrap_or_else(|p| p.into_inner());
        map.iter()
            .flat_map(|(service, ops)| {
                ops.iter()
                    .map(move |(op, b)| (format!("{service}:{op}"), b.status()))
            })
            .collect()
    }

    /// Closes the breaker of (service, operation) and clears its counters.
    pub fn reset(&self, service: &str, operation: &str) {
        self.get_breaker(service, operation).reset();
    }
}

/// The state file could not be used.
#[derive(Debug)]
pub struct PersistError {
    path: PathBuf,
    source: std::io::Error,
}

impl PersistError {
    /// The file at fault.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl fmt::Display for PersistError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "circuit breaker state file {}: {}",
            self.path.display(),
            self.source
        )
    }
}

impl std::error::Error for PersistError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}
