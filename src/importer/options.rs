//! What an import is told: where from, where to, and how hard to try.

use resilience_core::{
    CircuitBreakerConfig, ConfigError, RedisStoreConfig, RetryBudget, RetryConfig,
};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What to import from where, and how hard to try.
///
/// ```
/// use resilience::importer::ImportOptions;
/// let options = ImportOptions::new("http://127.0.0.1:8080", "/tmp/molecules.db");
/// assert_eq!((options.first_id, options.records), (1, 2000));
/// assert_eq!(options.ids(), 1..=2000);
/// assert_eq!(options.state_file.unwrap().to_str(), Some("/tmp/molecules.db.breakers.json"));
/// assert!(options.shared_store.is_none());
/// ```
#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// The service's base URL; records are at `{target}/molecules/{id}`.
    pub target: String,
    /// The first id to import (default 1).
    pub first_id: u64,
    /// How many ids to import: `first_id..first_id + records` (see [`ids`](Self::ids)).
    pub records: u64,
    /// Records in flight at once.
    pub concurrency: usize,
    /// The SQLite file (created when missing).
    pub db: PathBuf,
    /// Where breaker state is kept across runs; `None` keeps it in memory.
    pub state_file: Option<PathBuf>,
    /// Shares the breakers with every importer using the same Redis (a fleet of processes):
    /// opening by quorum, fleet-wide half-open trial calls, local breakers while Redis is
    /// unreachable; see [`RedisStoreConfig`]. `None` (the default): this process's breakers
    /// are its own. Works together with [`state_file`](Self::state_file).
    pub shared_store: Option<RedisStoreConfig>,
    /// The limit of one fetch attempt.
    pub attempt_timeout: Duration,
    /// Retries of both operations.
    pub retry: RetryConfig,
    /// Breakers of both operations.
    pub breaker: CircuitBreakerConfig,
    /// Times a record whose retries ran out goes back in the queue before it counts as failed.
    /// Waiting for an open breaker does not count.
    pub max_requeues: u32,
    /// The shortest wait before a record goes back in the queue.
    pub requeue_delay: Duration,
    /// How long a run goes on without any record reaching an end (imported or failed) before it
    /// stops and leaves the rest for the next run: a service that stays down does not keep the
    /// importer waiting forever.
    pub patience: Duration,
    /// Seeds the jitter of retry delays.
    pub seed: Option<u64>,
}

impl ImportOptions {
    /// Defaults for importing 2,000 records from `target` into `db`: 16 in flight, 250 ms per
    /// attempt, 4 attempts 50 ms to 2 s apart, breakers opening after 5 failures for 500 ms (up
    /// to 5 s), breaker state in `<db>.breakers.json`, giving up after a minute without
    /// progress.
    pub fn new(target: impl Into<String>, db: impl Into<PathBuf>) -> Self {
        let db = db.into();
        ImportOptions {
            target: target.into(),
            first_id: 1,
            records: 2000,
            concurrency: 16,
            state_file: Some(Self::state_file_for(&db)),
            shared_store: None,
            db,
            attempt_timeout: Duration::from_millis(250),
            // With a retry budget (Finagle's defaults): during an outage each component retries
            // at most 20 % of its traffic plus 10 per second, whatever `max_attempts` says.
            retry: RetryConfig {
                max_attempts: 4,
                initial_delay: Duration::from_millis(50),
                max_delay: Duration::from_secs(2),
                budget: Some(RetryBudget::default()),
                ..RetryConfig::default()
            },
            breaker: CircuitBreakerConfig {
                failure_threshold: 5,
                reset_timeout: Duration::from_millis(500),
                max_open_timeout: Duration::from_secs(5),
                ..CircuitBreakerConfig::default()
            },
            max_requeues: 5,
            requeue_delay: Duration::from_millis(50),
            patience: Duration::from_secs(60),
            seed: None,
        }
    }

    /// The ids to import: `first_id..=first_id + records - 1` (empty when `records` is 0).
    ///
    /// ```
    /// use resilience::importer::ImportOptions;
    /// let options = ImportOptions { first_id: 501, records: 500, ..ImportOptions::new("http://127.0.0.1:8080", "m.db") };
    /// assert_eq!(options.ids(), 501..=1000);
    /// assert!(ImportOptions { records: 0, ..options }.ids().is_empty());
    /// ```
    // `1..=0` is the empty range on purpose: no records, no ids.
    #[allow(clippy::reversed_empty_ranges)]
    pub fn ids(&self) -> std::ops::RangeInclusive<u64> {
        match self.records {
            0 => 1..=0,
            n => self.first_id..=self.first_id.saturating_add(n - 1),
        }
    }

    /// The breaker state file that goes with a database: `<db>.breakers.json`.
    ///
    /// ```
    /// use resilience::importer::ImportOptions;
    /// let path = ImportOptions::state_file_for("data/m.db".as_ref());
    /// assert_eq!(path.to_str(), Some("data/m.db.breakers.json"));
    /// ```
    pub fn state_file_for(db: &Path) -> PathBuf {
        let mut name = db.as_os_str().to_owned();
        name.push(".breakers.json");
        PathBuf::from(name)
    }
}

/// The options' own rules (the manager checks the retry and breaker settings).
pub(super) fn check(options: &ImportOptions) -> Result<(), ConfigError> {
    match reqwest::Url::parse(&options.target) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => {}
        Ok(_) | Err(_) => {
            return Err(ConfigError::new(
                "target",
                format!(
                    "must be an http(s) URL such as http://127.0.0.1:8080, got `{}`",
                    options.target
                ),
            ))
        }
    }
    if options.concurrency == 0 {
        return Err(ConfigError::new("concurrency", "must be at least 1, got 0"));
    }
    if options.attempt_timeout.is_zero() {
        return Err(ConfigError::new(
            "attempt_timeout",
            "must be longer than zero",
        ));
    }
    if options.first_id == 0 {
        return Err(ConfigError::new("first_id", "must be at least 1, got 0"));
    }
    if options.records > 0 && options.first_id.checked_add(options.records - 1).is_none() {
        return Err(ConfigError::new(
            "records",
            "first_id + records - 1 must fit in 64 bits",
        ));
    }
    if let Some(shared) = &options.shared_store {
        shared.validate()?;
    }
    Ok(())
}
