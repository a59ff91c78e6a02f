//! The registry's stores: the state file's writer and, with feature `redis`, the fleet's sync,
//! and the registry's methods for breakers shared by a fleet.

use super::persist::Writer;
use super::registry::CircuitBreakerRegistry;
use super::CircuitBreaker;
use super::{BreakerControl, CircuitState};
use crate::store::gate::{FleetControl, FleetState};
use crate::store::{StateStore, StoreStats};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// The fleet's view of one shared breaker, as this process last read it
/// ([`CircuitBreakerRegistry::shared_status`](crate::CircuitBreakerRegistry::shared_status)).
///
/// ```
/// use resilience_core::{SharedBreakerStatus, CircuitState, BreakerControl};
/// let s = SharedBreakerStatus::default();
/// assert_eq!((s.state, s.control), (CircuitState::Closed, BreakerControl::Auto));
/// ```
#[derive(Clone, Debug, PartialEq, Default, serde::Serialize)]
pub struct SharedBreakerStatus {
    /// The fleet's state (an open breaker past its open period reads `HalfOpen`).
    pub state: CircuitState,
    /// The fencing generation: every change of state or control makes a new one.
    pub generation: u64,
    /// Processes that synced this breaker recently.
    pub live_instances: u32,
    /// The live processes whose own breaker is open (their votes for the quorum).
    pub open_instances: Vec<String>,
    /// How long the fleet's open period still lasts.
    pub open_remaining: Option<Duration>,
    /// How long the shared `Retry-After` pause still lasts.
    pub pause_remaining: Option<Duration>,
    /// An operator's control of the fleet's breaker.
    pub control: BreakerControl,
    /// How long that control still lasts (`None`: until cleared).
    pub control_remaining: Option<Duration>,
    /// Whether the last round reached the store (`false`: this process is on its fallback).
    pub reachable: bool,
    /// Episodes of falling back because the store was unreachable.
    pub store_fallbacks: u64,
}

#[cfg(feature = "redis")]
pub(super) type Fleet = crate::store::redis::RedisSync;

/// Without feature `redis` a registry has no fleet: this type has no value.
#[cfg(not(feature = "redis"))]
#[derive(Debug)]
pub(super) enum Fleet {}

/// Puts a gate in front of a breaker the fleet shares.
pub(super) fn share(fleet: Option<&Fleet>, breaker: &Arc<CircuitBreaker>) {
    #[cfg(feature = "redis")]
    if let Some(sync) = fleet {
        let gate = Arc::new(crate::store::gate::Gate::new(
            Arc::from(breaker.service()),
            Arc::from(breaker.operation()),
            Arc::clone(breaker.clock()),
        ));
        breaker.attach_gate(Arc::clone(&gate));
        sync.track(gate);
    }
    #[cfg(not(feature = "redis"))]
    let _ = (fleet, breaker);
}

/// Starts the fleet's sync for `config`.
#[cfg(feature = "redis")]
pub(super) fn start(config: crate::RedisStoreConfig) -> Result<Fleet, super::PersistError> {
    let bad = |e: std::io::Error| {
        super::PersistError::new(std::path::Path::new(&config.url), "start the Redis sync", e)
    };
    config.validate().map_err(|e| {
        bad(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            e.to_string(),
        ))
    })?;
    crate::store::redis::RedisSync::spawn(config.clone()).map_err(bad)
}

impl StateStore for Writer {
    fn kind(&self) -> &'static str {
        "file"
    }

    fn stats(&self) -> StoreStats {
        let stats = Writer::stats(self);
        StoreStats {
            rounds: stats.writes,
            failed_rounds: stats.failed_writes,
            commands: stats.writes,
            reachable: stats.last_error.is_none(),
        }
    }

    fn sync(&self, _limit: Duration) -> bool {
        // The writer's own lock timeout bounds the wait.
        self.flush().is_ok()
    }
}

#[cfg(feature = "redis")]
impl StateStore for crate::store::redis::RedisSync {
    fn kind(&self) -> &'static str {
        "redis"
    }

    fn stats(&self) -> StoreStats {
        crate::store::redis::RedisSync::stats(self)
    }

    fn sync(&self, limit: Duration) -> bool {
        self.sync_now(limit)
    }
}

impl CircuitBreakerRegistry {
    pub(super) fn fleet(&self) -> Option<&Fleet> {
        #[cfg(feature = "redis")]
        return self.redis.get();
        #[cfg(not(feature = "redis"))]
        None
    }

    /// The stores this registry keeps its breakers' state in beyond memory: the state file,
    /// then the fleet's Redis, each if configured.
    ///
    /// ```
    /// use resilience_core::CircuitBreakerRegistry;
    /// assert!(CircuitBreakerRegistry::new().stores().is_empty());
    /// ```
    pub fn stores(&self) -> Vec<&dyn StateStore> {
        let mut stores: Vec<&dyn StateStore> = Vec::new();
        if let Some(writer) = self.writer() {
            stores.push(writer);
        }
        #[cfg(feature = "redis")]
        if let Some(sync) = self.redis.get() {
            stores.push(sync);
        }
        stores
    }

    /// The fleet's view of every breaker of this process that a fleet shares, keyed
    /// `"service:operation"`, as last synced (at most one sync interval old). Empty without a
    /// shared store.
    ///
    /// ```
    /// use resilience_core::CircuitBreakerRegistry;
    /// let registry = CircuitBreakerRegistry::new();
    /// registry.get_breaker("api", "fetch");
    /// assert!(registry.shared_status().is_empty());
    /// ```
    pub fn shared_status(&self) -> BTreeMap<String, SharedBreakerStatus> {
        let mut all = BTreeMap::new();
        for breaker in self.breakers() {
            let Some(gate) = breaker.gate() else { continue };
            let (shared, reachable) = gate.snapshot();
            let now = breaker.clock().now();
            let left = |at: Option<Duration>| at.map(|u| u.saturating_sub(now));
            let mut state = match shared.state {
                FleetState::Closed => CircuitState::Closed,
                FleetState::Open => CircuitState::Open,
                FleetState::HalfOpen => CircuitState::HalfOpen,
            };
            if state == CircuitState::Open && shared.open_until.is_some_and(|u| u <= now) {
                state = CircuitState::HalfOpen;
            }
            let control_live = shared.control_until.is_none_or(|u| u > now);
            all.insert(
                crate::policy::key(breaker.service(), breaker.operation()),
                SharedBreakerStatus {
                    state,
                    generation: shared.generation,
                    live_instances: shared.live_instances,
                    open_instances: shared.open_instances,
                    open_remaining: left(shared.open_until).filter(|d| !d.is_zero()),
                    pause_remaining: left(shared.pause_until).filter(|d| !d.is_zero()),
                    control: match shared.control {
                        FleetControl::ForcedOpen if control_live => BreakerControl::ForcedOpen,
                        FleetControl::Disabled if control_live => BreakerControl::Disabled,
                        _ => BreakerControl::Auto,
                    },
                    control_remaining: left(shared.control_until).filter(|_| control_live),
                    reachable,
                    store_fallbacks: gate.fallbacks(),
                },
            );
        }
        all
    }

    /// Episodes of falling back to local state because the shared store was unreachable,
    /// summed over the breakers (0 without a shared store).
    ///
    /// ```
    /// use resilience_core::CircuitBreakerRegistry;
    /// assert_eq!(CircuitBreakerRegistry::new().store_fallbacks(), 0);
    /// ```
    pub fn store_fallbacks(&self) -> u64 {
        self.breakers()
            .iter()
            .filter_map(|b| b.gate().map(|g| g.fallbacks()))
            .sum()
    }

    /// Opens breaker (service, operation) for the whole fleet sharing it, for `ttl` (`None`:
    /// until [`clear_shared_control`](Self::clear_shared_control)); every process obeys it from
    /// its next sync. Without a shared store it forces this process's breaker open (and `ttl` is
    /// not applied).
    ///
    /// ```
    /// use resilience_core::{CircuitBreakerRegistry, CircuitState};
    /// let registry = CircuitBreakerRegistry::new();
    /// registry.force_open_shared("api", "fetch", None);
    /// assert_eq!(registry.get_breaker("api", "fetch").state(), CircuitState::Open);
    /// ```
    pub fn force_open_shared(&self, service: &str, operation: &str, ttl: Option<Duration>) {
        self.command(service, operation, Command::ForceOpen(ttl));
    }

    /// Keeps breaker (service, operation) closed for the whole fleet sharing it, for `ttl`
    /// (`None`: until cleared): every call runs and nothing is counted. Without a shared store
    /// it disables this process's breaker.
    ///
    /// ```
    /// use resilience_core::{BreakerControl, CircuitBreakerRegistry};
    /// let registry = CircuitBreakerRegistry::new();
    /// registry.disable_shared("api", "fetch", None);
    /// assert_eq!(registry.get_breaker("api", "fetch").control(), BreakerControl::Disabled);
    /// ```
    pub fn disable_shared(&self, service: &str, operation: &str, ttl: Option<Duration>) {
        self.command(service, operation, Command::Disable(ttl));
    }

    /// Ends an operator's control of the fleet's breaker (service, operation). Without a shared
    /// store it resets this process's breaker.
    ///
    /// ```
    /// use resilience_core::{BreakerControl, CircuitBreakerRegistry};
    /// let registry = CircuitBreakerRegistry::new();
    /// registry.disable_shared("api", "fetch", None);
    /// registry.clear_shared_control("api", "fetch");
    /// assert_eq!(registry.get_breaker("api", "fetch").control(), BreakerControl::Auto);
    /// ```
    pub fn clear_shared_control(&self, service: &str, operation: &str) {
        self.command(service, operation, Command::Clear);
    }

    fn command(&self, service: &str, operation: &str, command: Command) {
        let breaker = self.get_breaker(service, operation);
        // Only a breaker shared through a store has a gate.
        #[cfg(feature = "redis")]
        if let Some(gate) = breaker.gate() {
            use crate::store::gate::FleetCommand;
            gate.command(match command {
                Command::ForceOpen(ttl) => FleetCommand::ForceOpen(ttl),
                Command::Disable(ttl) => FleetCommand::Disable(ttl),
                Command::Clear => FleetCommand::Clear,
            });
            return;
        }
        match command {
            Command::ForceOpen(_) => breaker.force_open(),
            Command::Disable(_) => breaker.disable(),
            Command::Clear => breaker.reset(),
        }
    }
}

// The TTLs only reach a shared store.
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
#[derive(Clone, Copy)]
enum Command {
    ForceOpen(Option<Duration>),
    Disable(Option<Duration>),
    Clear,
}

#[cfg(feature = "redis")]
impl CircuitBreakerRegistry {
    /// Starts sharing this registry's breakers, those it has and those it will have, through
    /// Redis as `config` says (feature `redis`): the same as building it with
    /// [`redis_store`](super::CircuitBreakerRegistryBuilder::redis_store), for a registry that
    /// is already running. This is what the `store` key of
    /// [`RetryManager::configure_from_json`](crate::RetryManager::configure_from_json) does.
    ///
    /// A registry shares through one store for its whole life: asking again with the same
    /// settings changes nothing, and with other settings is an error that changes nothing. So is
    /// a bad setting. An unreachable server is not an error: the breakers go on locally until
    /// it answers.
    ///
    /// ```no_run
    /// use resilience_core::{CircuitBreakerRegistry, RedisStoreConfig};
    /// let registry = CircuitBreakerRegistry::new();
    /// let config = RedisStoreConfig::new("redis://127.0.0.1:6379");
    /// registry.share_through_redis(config.clone()).unwrap();
    /// registry.share_through_redis(config).unwrap(); // the same again: nothing changes
    /// let other = RedisStoreConfig::new("redis://127.0.0.1:6380");
    /// assert_eq!(registry.share_through_redis(other).unwrap_err().field(), "store");
    /// ```
    pub fn share_through_redis(
        &self,
        config: crate::RedisStoreConfig,
    ) -> Result<(), crate::ConfigError> {
        config.validate()?;
        // No breaker is created while the sync is set and the gates attached, so each breaker
        // gets exactly one gate, here or in `get_breaker`.
        self.with_every_breaker_held(|breakers| {
            if let Some(sync) = self.redis.get() {
                return match sync.config() == &config {
                    true => Ok(()),
                    false => Err(crate::ConfigError::new(
                        "store",
                        format!(
                            "cannot change while the registry runs: its breakers are shared through {} as instance {:?} with other settings",
                            sync.config().url,
                            sync.config().instance_id
                        ),
                    )),
                };
            }
            let sync = crate::store::redis::RedisSync::spawn(config).map_err(|e| {
                crate::ConfigError::new("store.redis", format!("could not start the sync: {e}"))
            })?;
            let sync = self.redis.get_or_init(|| sync);
            for breaker in breakers {
                share(Some(sync), breaker);
            }
            Ok(())
        })
    }

    /// The settings of the Redis store this registry shares its breakers through, if any.
    pub(crate) fn redis_config(&self) -> Option<&crate::RedisStoreConfig> {
        self.redis.get().map(|sync| sync.config())
    }
}

#[cfg(feature = "redis")]
impl super::CircuitBreakerRegistryBuilder {
    /// Shares the breakers with every process using the Redis server at `url` (feature
    /// `redis`), with the defaults of [`RedisStoreConfig`](crate::RedisStoreConfig): opening by
    /// a quorum of at least 2 processes and half of the live ones, fleet-wide trial calls,
    /// shared `Retry-After` pauses and operator controls, and local breakers while Redis is
    /// unreachable. A bad URL fails [`build`](Self::build); an unreachable server does not.
    ///
    /// ```no_run
    /// use resilience_core::CircuitBreakerRegistry;
    /// let registry = CircuitBreakerRegistry::builder().redis("redis://127.0.0.1:6379").build().unwrap();
    /// # let _ = registry;
    /// ```
    pub fn redis(self, url: impl Into<String>) -> Self {
        self.redis_store(crate::RedisStoreConfig::new(url))
    }

    /// Shares the breakers through Redis with every setting of `config` (feature `redis`).
    ///
    /// ```no_run
    /// use resilience_core::{CircuitBreakerRegistry, RedisStoreConfig};
    /// let config = RedisStoreConfig { quorum_min: 1, instance_id: "worker-1".into(), ..RedisStoreConfig::new("redis://127.0.0.1:6379") };
    /// let registry = CircuitBreakerRegistry::builder().redis_store(config).build().unwrap();
    /// # let _ = registry;
    /// ```
    pub fn redis_store(mut self, config: crate::RedisStoreConfig) -> Self {
        self.redis = Some(config);
        self
    }
}
