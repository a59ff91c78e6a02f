//! Breakers shared by a fleet of processes through Redis (feature `redis`).
//!
//! Each process keeps deciding every call from its own breaker; a background thread (with its
//! own small tokio runtime, so blocking programs need no runtime of their own) runs one round
//! every [`sync_interval`](RedisStoreConfig::sync_interval) and at once when another process
//! announces a change on the `rsl:v1:events` channel. A round sends, for every breaker of the
//! process, one Lua script (all of them pipelined in one round trip) that records the process's
//! heartbeat and own view, applies its trial results, pause and operator commands, opens the
//! breaker by quorum, grants trial leases, and answers the shared state, which the round applies
//! to each breaker's gate. See `sync.lua` for the record and the rules.

mod script;
mod sync;

use super::StoreFallback;
use crate::ConfigError;
use std::time::Duration;

pub(crate) use sync::RedisSync;

/// How a registry shares its breakers through Redis. Build it with
/// [`RedisStoreConfig::new`] (every other setting has a default) or read it from JSON with
/// [`RedisStoreConfig::from_json`].
///
/// ```
/// use resilience_core::RedisStoreConfig;
/// let config = RedisStoreConfig { quorum_min: 1, ..RedisStoreConfig::new("redis://127.0.0.1:6379") };
/// assert_eq!(config.quorum_ratio, 0.5);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct RedisStoreConfig {
    /// The server, as `redis://host:port[/db]`.
    pub url: String,
    /// This process's name in the fleet (default: `<hostname or "host">-<pid>-<random>`).
    pub instance_id: String,
    /// The fewest live processes that must have a breaker open to open it for all (default 2;
    /// 1: any process opens it for all).
    pub quorum_min: u32,
    /// The smallest share of the live processes that must have it open (default 0.5); not
    /// used when `quorum_min` is 1.
    pub quorum_ratio: f64,
    /// What the breakers do while Redis cannot be reached (default [`StoreFallback::Local`]).
    pub fallback: StoreFallback,
    /// How often the background sync runs a round (default 100 ms) for the breakers with
    /// something to send or a fleet decision in force.
    pub sync_interval: Duration,
    /// How often an idle breaker's round runs all the same (default 250 ms; never more often
    /// than `sync_interval`), to keep this process among the live ones: a process that misses
    /// four is no longer counted. Each is one short script on the server: raise it for many idle
    /// breakers.
    pub heartbeat_interval: Duration,
    /// How long one round's commands may take before the round counts as failed (default 50 ms).
    pub command_timeout: Duration,
    /// How long a fleet-wide trial lease lasts if its call never reports (default 10 s).
    pub probe_lease: Duration,
    /// How long a breaker's record outlives the last process that synced it (default 1 h).
    pub key_ttl: Duration,
}

impl RedisStoreConfig {
    /// The defaults, for the server at `url`.
    ///
    /// ```
    /// use resilience_core::{RedisStoreConfig, StoreFallback};
    /// let config = RedisStoreConfig::new("redis://127.0.0.1:6379");
    /// assert_eq!((config.quorum_min, config.fallback), (2, StoreFallback::Local));
    /// ```
    pub fn new(url: impl Into<String>) -> Self {
        RedisStoreConfig {
            url: url.into(),
            instance_id: default_instance_id(),
            quorum_min: 2,
            quorum_ratio: 0.5,
            fallback: StoreFallback::Local,
            sync_interval: Duration::from_millis(100),
            heartbeat_interval: Duration::from_millis(250),
            command_timeout: Duration::from_millis(50),
            probe_lease: Duration::from_secs(10),
            key_ttl: Duration::from_secs(3600),
        }
    }

    /// Reads the `store` object of a configuration document:
    /// `{"redis": "redis://...", "instance_id": "a", "quorum_min": 2, "quorum_ratio": 0.5,
    /// "fallback": "local" | "fail_open" | "fail_closed", "sync_interval": 0.1,
    /// "heartbeat_interval": 0.25, "command_timeout": 0.05, "probe_lease": 10, "key_ttl": 3600}`
    /// (durations in seconds;
    /// only `redis` is required). Unknown keys and bad values are errors naming the key.
    ///
    /// ```
    /// use resilience_core::{RedisStoreConfig, StoreFallback};
    /// let config = RedisStoreConfig::from_json(r#"{"redis": "redis://127.0.0.1:6379", "quorum_min": 1, "fallback": "fail_closed"}"#).unwrap();
    /// assert_eq!((config.quorum_min, config.fallback), (1, StoreFallback::FailClosed));
    /// let err = RedisStoreConfig::from_json(r#"{"redis": "redis://x", "quorum_ratio": 2}"#).unwrap_err();
    /// assert_eq!(err.field(), "store.quorum_ratio");
    /// ```
    pub fn from_json(text: &str) -> Result<Self, ConfigError> {
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| ConfigError::new("store", format!("is not JSON: {e}")))?;
        Ok(Self::from_value(&value)?.0)
    }

    /// Reads the `store` object of a configuration document already parsed, and whether it
    /// named the instance (without `instance_id` a new one is made up).
    pub(crate) fn from_value(value: &serde_json::Value) -> Result<(Self, bool), ConfigError> {
        if !value.is_object() {
            return Err(ConfigError::new(
                "store",
                format!("must be a JSON object such as {{\"redis\": \"redis://127.0.0.1:6379\"}}, got {value}"),
            ));
        }
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Doc {
            redis: String,
            instance_id: Option<String>,
            quorum_min: Option<u32>,
            quorum_ratio: Option<f64>,
            fallback: Option<StoreFallback>,
            sync_interval: Option<f64>,
            heartbeat_interval: Option<f64>,
            command_timeout: Option<f64>,
            probe_lease: Option<f64>,
            key_ttl: Option<f64>,
        }
        let doc: Doc = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            let field = if path == "." || path.is_empty() {
                "store".to_owned()
            } else {
                format!("store.{path}")
            };
            ConfigError::new(field, e.inner().to_string())
        })?;
        let mut config = RedisStoreConfig::new(doc.redis);
        let named = doc.instance_id.is_some();
        if let Some(id) = doc.instance_id {
            config.instance_id = id;
        }
        config.quorum_min = doc.quorum_min.unwrap_or(config.quorum_min);
        config.quorum_ratio = doc.quorum_ratio.unwrap_or(config.quorum_ratio);
        config.fallback = doc.fallback.unwrap_or(config.fallback);
        let seconds = |name: &str, v: Option<f64>, default: Duration| match v {
            None => Ok(default),
            Some(s) => Duration::try_from_secs_f64(s).map_err(|_| {
                ConfigError::new(
                    format!("store.{name}"),
                    "must be a duration in seconds, at least 0",
                )
            }),
        };
        config.sync_interval = seconds("sync_interval", doc.sync_interval, config.sync_interval)?;
        config.heartbeat_interval = seconds(
            "heartbeat_interval",
            doc.heartbeat_interval,
            config.heartbeat_interval,
        )?;
        config.command_timeout = seconds(
            "command_timeout",
            doc.command_timeout,
            config.command_timeout,
        )?;
        config.probe_lease = seconds("probe_lease", doc.probe_lease, config.probe_lease)?;
        config.key_ttl = seconds("key_ttl", doc.key_ttl, config.key_ttl)?;
        config.validate()?;
        Ok((config, named))
    }

    /// Checks every setting; the error names the first bad one.
    ///
    /// ```
    /// use resilience_core::RedisStoreConfig;
    /// let config = RedisStoreConfig { quorum_min: 0, ..RedisStoreConfig::new("redis://127.0.0.1") };
    /// assert_eq!(config.validate().unwrap_err().field(), "store.quorum_min");
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        if redis::Client::open(self.url.as_str()).is_err() {
            return Err(ConfigError::new(
                "store.redis",
                "must be a Redis URL such as redis://127.0.0.1:6379",
            ));
        }
        if self.instance_id.is_empty() || self.instance_id.contains(':') {
            return Err(ConfigError::new(
                "store.instance_id",
                "must be a non-empty name without ':'",
            ));
        }
        if self.quorum_min == 0 {
            return Err(ConfigError::new("store.quorum_min", "must be at least 1"));
        }
        if !(self.quorum_ratio > 0.0 && self.quorum_ratio <= 1.0) {
            return Err(ConfigError::new(
                "store.quorum_ratio",
                "must be more than 0 and at most 1",
            ));
        }
        let ms = Duration::from_millis(1);
        for (field, value) in [
            ("store.sync_interval", self.sync_interval),
            ("store.heartbeat_interval", self.heartbeat_interval),
            ("store.command_timeout", self.command_timeout),
            ("store.probe_lease", self.probe_lease),
            ("store.key_ttl", self.key_ttl),
        ] {
            if value < ms || value > Duration::from_secs(30 * 86_400) {
                return Err(ConfigError::new(field, "must be between 1 ms and 30 days"));
            }
        }
        Ok(())
    }

    /// How often an idle breaker's heartbeat is sent: never more often than rounds run.
    pub(crate) fn heartbeat(&self) -> Duration {
        self.heartbeat_interval.max(self.sync_interval)
    }

    /// How long a process's heartbeat keeps it among the live ones: four heartbeats, so that
    /// one late round does not drop it from the quorum.
    pub(crate) fn liveness(&self) -> Duration {
        self.heartbeat().saturating_mul(4)
    }
}

fn default_instance_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty() && !h.contains(':'))
        .unwrap_or_else(|| "host".to_owned());
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    format!(
        "{host}-{}-{:04x}",
        std::process::id(),
        hasher.finish() & 0xffff
    )
}

/// The Redis key of breaker (service, operation): one hash per breaker, its name in braces so
/// that a Redis Cluster keeps the whole record in one slot. The names are escaped as in status
/// keys (`%3A`, `%25`), and `{`/`}` as `%7B`/`%7D` so that no name can end the hash tag.
pub(crate) fn redis_key(service: &str, operation: &str) -> String {
    let key = crate::policy::key(service, operation);
    let mut escaped = String::with_capacity(key.len() + 16);
    for c in key.chars() {
        match c {
            '{' => escaped.push_str("%7B"),
            '}' => escaped.push_str("%7D"),
            c => escaped.push(c),
        }
    }
    format!("rsl:v1:{{cb:{escaped}}}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_hash_tagged_and_escaped() {
        assert_eq!(redis_key("api", "fetch"), "rsl:v1:{cb:api:fetch}");
        assert_eq!(redis_key("a:b", "c}d"), "rsl:v1:{cb:a%3Ab:c%7Dd}");
    }

    #[test]
    fn heartbeats_set_liveness_and_never_outpace_rounds() {
        let base = RedisStoreConfig::new("redis://127.0.0.1:1");
        assert_eq!(base.heartbeat(), Duration::from_millis(250));
        assert_eq!(base.liveness(), Duration::from_secs(1));
        let slow = RedisStoreConfig::from_json(
            r#"{"redis": "redis://127.0.0.1:1", "heartbeat_interval": 5}"#,
        )
        .unwrap();
        assert_eq!(slow.heartbeat(), Duration::from_secs(5));
        assert_eq!(slow.liveness(), Duration::from_secs(20));
        let clamped = RedisStoreConfig {
            sync_interval: Duration::from_secs(1),
            heartbeat_interval: Duration::from_millis(10),
            ..base
        };
        assert_eq!(clamped.heartbeat(), Duration::from_secs(1));
        assert_eq!(clamped.liveness(), Duration::from_secs(4));
    }

    #[test]
    fn bad_settings_name_their_key() {
        let base = RedisStoreConfig::new("redis://127.0.0.1:1");
        let bad = RedisStoreConfig {
            quorum_ratio: 0.0,
            ..base.clone()
        };
        assert_eq!(bad.validate().unwrap_err().field(), "store.quorum_ratio");
        let bad = RedisStoreConfig {
            url: "http://x".into(),
            ..base.clone()
        };
        assert_eq!(bad.validate().unwrap_err().field(), "store.redis");
        let err = RedisStoreConfig::from_json(r#"{"redis": "redis://x", "typo": 1}"#).unwrap_err();
        assert!(err.rule().contains("unknown field"), "{err}");
        let err = RedisStoreConfig::from_json(r#"{"redis": "redis://x", "sync_interval": -1}"#)
            .unwrap_err();
        assert_eq!(err.field(), "store.sync_interval");
    }
}
