//! Where breaker state lives beyond one breaker: the JSON state file (one machine, across
//! restarts; see the registry's `state_file`) and, with feature `redis`, a Redis server shared
//! by a fleet of processes.
//!
//! Neither is on the hot path. The file is written by a background writer from the changes the
//! breakers queue; Redis is synced by a background thread, and what the fleet decided reaches a
//! call through the breaker's [gate](gate::Gate), read only on the breaker's slow path.

pub(crate) mod gate;
#[cfg(feature = "redis")]
pub(crate) mod redis;

pub use gate::StoreFallback;
#[cfg(feature = "redis")]
pub use redis::RedisStoreConfig;

use std::time::Duration;

/// How a store's background work has gone so far.
///
/// ```
/// use resilience_core::StoreStats;
/// assert_eq!(StoreStats::default().rounds, 0);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Rounds (writes of the file, syncs with Redis) that reached the store.
    pub rounds: u64,
    /// Rounds that could not reach it (in time).
    pub failed_rounds: u64,
    /// Commands sent (Redis: one script call per breaker per round; the file: one write per
    /// round).
    pub commands: u64,
    /// Whether the last round reached the store.
    pub reachable: bool,
}

/// A place where a [`CircuitBreakerRegistry`](crate::CircuitBreakerRegistry) keeps its
/// breakers' state beyond memory: the JSON state file (`"file"`) or a Redis server shared by a
/// fleet (`"redis"`, feature `redis`). A registry lists its stores with
/// [`stores`](crate::CircuitBreakerRegistry::stores).
///
/// ```
/// use resilience_core::CircuitBreakerRegistry;
/// let dir = tempfile::tempdir().unwrap();
/// let registry = CircuitBreakerRegistry::with_state_file(dir.path().join("b.json")).unwrap();
/// let stores = registry.stores();
/// assert_eq!(stores[0].kind(), "file");
/// assert!(stores[0].sync(std::time::Duration::from_secs(5)));
/// ```
pub trait StateStore: Send + Sync + std::fmt::Debug {
    /// `"file"` or `"redis"`.
    fn kind(&self) -> &'static str;
    /// How its rounds have gone.
    fn stats(&self) -> StoreStats;
    /// Brings the store up to date with this process now (a write of the file, a round with
    /// Redis), waiting at most about `limit`. Whether the store was reached.
    fn sync(&self, limit: Duration) -> bool;
}
