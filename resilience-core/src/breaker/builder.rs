//! Building a registry: its clock, its state file (loaded, each record repaired where it
//! contradicts itself) and its shared store.

use super::listener::{EventBus, StateChange};
use super::machine::Machine;
use super::persist::{Loaded, Records, Store, Writer, DEFAULT_LOCK_TIMEOUT};
use super::registry::{CircuitBreakerRegistry, Restored};
use super::PersistError;
use crate::policy::CircuitBreakerConfig;
use crate::{Clock, SystemClock};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Repaired records are reported one warning each up to this many, then in one summary: a
/// file of a hundred thousand bad records must not flood the log.
const REPAIR_WARNINGS: usize = 20;

/// Builds a [`CircuitBreakerRegistry`]; every setting is optional.
///
/// ```
/// use resilience_core::{CircuitBreakerRegistry, ManualClock};
/// use std::sync::Arc;
/// let registry = CircuitBreakerRegistry::builder().clock(Arc::new(ManualClock::new())).build().unwrap();
/// # let _ = registry;
/// ```
#[derive(Default)]
#[must_use]
pub struct CircuitBreakerRegistryBuilder {
    clock: Option<Arc<dyn Clock>>,
    state_file: Option<PathBuf>,
    lock_timeout: Option<Duration>,
    events: EventBus,
    #[cfg(feature = "redis")]
    pub(super) redis: Option<crate::RedisStoreConfig>,
}

impl std::fmt::Debug for CircuitBreakerRegistryBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CircuitBreakerRegistryBuilder")
            .field("clock", &self.clock)
            .field("state_file", &self.state_file)
            .field("lock_timeout", &self.lock_timeout)
            .finish_non_exhaustive()
    }
}

impl CircuitBreakerRegistryBuilder {
    /// The clock the breakers tell time by (default: the system clock). Its monotonic time
    /// times open periods; its wall clock dates them in the state file.
    ///
    /// ```
    /// use resilience_core::{CircuitBreakerRegistry, Clock, ManualClock};
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// let clock = ManualClock::new();
    /// let registry = CircuitBreakerRegistry::builder().clock(Arc::new(clock.clone())).build().unwrap();
    /// clock.advance(Duration::from_secs(3));
    /// assert_eq!(registry.clock().now(), Duration::from_secs(3));
    /// ```
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Keeps the breakers' state in the file at `path`: read when the registry is built, written
    /// in the background whenever a breaker's state or counts change (see the `persist` module
    /// docs), atomically (temporary file in the same directory, fsync, rename), under an
    /// advisory lock on `<path>.lock` so processes sharing the file never corrupt it.
    ///
    /// The temporary file is created exclusively under an unpredictable name
    /// (`.<file>.tmp-<random>`), so a link planted in the directory is never followed. New state
    /// and lock files are private to the owner (0600 on Unix); a rewrite keeps the mode the file
    /// has, so an operator's `chmod` survives. A temporary file only exists while its writer
    /// holds the lock, so the registry, once it holds the lock at start, removes any it finds:
    /// they are left by writers that were killed. Every write renders the full known state (the
    /// file's entries plus every breaker of this process), so a file damaged while the program
    /// runs is whole again after the next write. A file of a newer format version is left
    /// alone (see [`PersistStats::newer_file_version`](crate::PersistStats::newer_file_version));
    /// the wait for the lock is bounded (see [`lock_timeout`](Self::lock_timeout)).
    ///
    /// ```
    /// use resilience_core::CircuitBreakerRegistry;
    /// let dir = tempfile::tempdir().unwrap();
    /// let registry = CircuitBreakerRegistry::builder()
    ///     .state_file(dir.path().join("breakers.json"))
    ///     .build()
    ///     .unwrap();
    /// registry.force_open("db", "query");
    /// registry.flush().unwrap();
    /// assert!(dir.path().join("breakers.json").exists());
    /// ```
    pub fn state_file(mut self, path: impl AsRef<Path>) -> Self {
        self.state_file = Some(path.as_ref().to_path_buf());
        self
    }

    /// How long a read or write of the state file waits for the lock on `<path>.lock` held by
    /// another process (default 5 s). Past it, building the registry reads the file without
    /// the lock (and leaves leftover temporary files and a bad file where they are), and a write
    /// fails with a warning and is tried again later, so a peer that never releases the lock
    /// delays start-up, a flush or the registry's drop by this much at most, never forever.
    ///
    /// ```
    /// use resilience_core::CircuitBreakerRegistry;
    /// use std::time::Duration;
    /// let dir = tempfile::tempdir().unwrap();
    /// let registry = CircuitBreakerRegistry::builder()
    ///     .state_file(dir.path().join("breakers.json"))
    ///     .lock_timeout(Duration::from_millis(500))
    ///     .build()
    ///     .unwrap();
    /// registry.force_open("db", "query");
    /// registry.flush().unwrap();
    /// ```
    pub fn lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = Some(timeout);
        self
    }

    /// A listener for every state change; see [`CircuitBreakerRegistry::on_state_change`].
    ///
    /// ```
    /// use resilience_core::{CircuitBreakerRegistry, CircuitState};
    /// use std::sync::{Arc, Mutex};
    /// let opened = Arc::new(Mutex::new(Vec::new()));
    /// let log = Arc::clone(&opened);
    /// let registry = CircuitBreakerRegistry::builder()
    ///     .on_state_change(move |c| if c.to == CircuitState::Open { log.lock().unwrap().push(c.service.to_owned()) })
    ///     .build()
    ///     .unwrap();
    /// registry.force_open("db", "query");
    /// assert_eq!(*opened.lock().unwrap(), ["db"]);
    /// ```
    pub fn on_state_change(
        self,
        listener: impl Fn(&StateChange<'_>) + Send + Sync + 'static,
    ) -> Self {
        self.events.add(Arc::new(listener));
        self
    }

    /// Builds the registry, reading the state file if there is one. Fails only when the state
    /// file's directory cannot be written or something other than a file (a directory, say) is
    /// at its path.
    ///
    /// ```
    /// use resilience_core::CircuitBreakerRegistry;
    /// let err = CircuitBreakerRegistry::builder()
    ///     .state_file("/nonexistent-dir/breakers.json")
    ///     .build()
    ///     .unwrap_err();
    /// assert!(err.to_string().contains("cannot write to the directory"));
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let err = CircuitBreakerRegistry::with_state_file(dir.path()).unwrap_err();
    /// assert!(err.to_string().contains("a directory is in the way"), "{err}");
    /// ```
    pub fn build(self) -> Result<CircuitBreakerRegistry, PersistError> {
        let clock = self.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let (persist, restored) = match &self.state_file {
            Some(path) => {
                let store = Store::open(path, self.lock_timeout.unwrap_or(DEFAULT_LOCK_TIMEOUT))?;
                let loaded = store.load(clock.unix_now());
                let newer = loaded.newer;
                let (restored, mine) = restore(path, loaded, &*clock);
                let persist = Writer::spawn(store, Arc::clone(&clock), mine, newer)?;
                (Some(persist), restored)
            }
            None => (None, Vec::new()),
        };
        #[cfg(feature = "redis")]
        let fleet = match self.redis {
            Some(config) => Some(super::shared::start(config)?),
            None => None,
        };
        #[cfg(not(feature = "redis"))]
        let fleet = None;
        Ok(CircuitBreakerRegistry::from_parts(
            clock,
            self.events,
            persist,
            restored,
            fleet,
        ))
    }
}

/// The breakers of a loaded state file, each repaired where its record contradicts itself
/// (with a warning), and their records as repaired: the writer's picture of this process's
/// breakers.
fn restore(path: &Path, loaded: Loaded, clock: &dyn Clock) -> (Restored, Records) {
    let (now, unix_now) = (clock.now(), clock.unix_now());
    // The program's own configuration is given to each breaker after loading; until then the
    // default one (max_open_timeout 300 s) bounds what a record may claim.
    let config = CircuitBreakerConfig::default();
    let mut restored = Vec::new();
    let mut mine = Records::new();
    let mut repaired = 0_usize;
    for (service, ops) in loaded.records {
        let service_name: Arc<str> = Arc::from(service.as_str());
        let mine_ops = mine.entry(service).or_default();
        for (operation, record) in ops {
            let (machine, repairs) = Machine::restore(&config, &record, now, unix_now);
            if !repairs.is_empty() {
                repaired += 1;
                if repaired <= REPAIR_WARNINGS {
                    tracing::warn!(
                        path = %path.display(),
                        component = &*service_name,
                        operation = operation.as_str(),
                        repairs = %repairs.join("; "),
                        "inconsistent circuit breaker record in the state file repaired"
                    );
                }
            }
            mine_ops.insert(operation.clone(), machine.record(now, unix_now));
            restored.push((Arc::clone(&service_name), Arc::from(operation), machine));
        }
    }
    if repaired > REPAIR_WARNINGS {
        tracing::warn!(
            path = %path.display(),
            repaired,
            "inconsistent circuit breaker records in the state file repaired (only the first {REPAIR_WARNINGS} were logged one by one)"
        );
    }
    (restored, mine)
}
