//! One worker process of the fleet: its arguments (passed as JSON in [`WORKER_ENV`]), its run
//! of the importer over its partition, and its report.

use super::{Mode, MAX_RUNS, WORKER_ENV};
use crate::importer::{ImportOptions, Importer, SetupError};
use crate::store::Store;
use resilience_core::{CircuitBreakerConfig, RedisStoreConfig, StoreFallback};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What one worker process is to do, passed to it as JSON in [`WORKER_ENV`].
///
/// ```
/// use resilience::fleet::{FleetOptions, Mode, WorkerArgs};
/// let options = FleetOptions { records: 10, workers: 2, ..FleetOptions::new("redis://127.0.0.1:6379") };
/// let args = options.worker_args(Mode::Shared, 1, "http://127.0.0.1:8080", "/tmp".as_ref());
/// assert_eq!((args.first_id, args.records), (6, 5));
/// let import = args.import_options();
/// assert_eq!(import.ids(), 6..=10);
/// assert_eq!(import.shared_store.unwrap().instance_id, "worker-1");
/// assert_eq!(WorkerArgs::from_json(&args.to_json()).unwrap(), args);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkerArgs {
    /// The worker's number, from 0.
    pub index: usize,
    /// Local or shared breakers.
    pub mode: Mode,
    /// The service's base URL.
    pub target: String,
    /// The worker's SQLite file.
    pub db: PathBuf,
    /// Where the worker writes its [`WorkerReport`] (JSON).
    pub report: PathBuf,
    /// Its first id.
    pub first_id: u64,
    /// Its number of ids.
    pub records: u64,
    /// Records in flight.
    pub concurrency: usize,
    /// Its breakers' settings.
    pub breaker: BreakerArgs,
    /// The shared store (in [`Mode::Shared`]).
    pub shared_store: Option<StoreArgs>,
    /// Seeds its retry jitter.
    pub seed: u64,
}

/// A worker's breaker settings (the rest are [`CircuitBreakerConfig`]'s defaults).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BreakerArgs {
    /// Failures in a row that open it.
    pub failure_threshold: u32,
    /// The first open period.
    pub reset_timeout: Duration,
    /// The longest open period.
    pub max_open_timeout: Duration,
}

/// A worker's share of the fleet's store (the rest are [`RedisStoreConfig`]'s defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoreArgs {
    /// The Redis server.
    pub url: String,
    /// The worker's name in the fleet, `worker-<index>`.
    pub instance_id: String,
    /// See [`RedisStoreConfig::quorum_min`].
    pub quorum_min: u32,
    /// See [`RedisStoreConfig::quorum_ratio`].
    pub quorum_ratio: f64,
}

impl WorkerArgs {
    /// As JSON, the value of [`WORKER_ENV`].
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("worker arguments serialize")
    }

    /// Reads [`to_json`](Self::to_json)'s text.
    pub fn from_json(text: &str) -> Result<WorkerArgs, String> {
        serde_json::from_str(text).map_err(|e| format!("bad worker arguments: {e}"))
    }

    /// The arguments in [`WORKER_ENV`], if this process is a worker.
    ///
    /// ```
    /// // An ordinary process is not a worker.
    /// assert!(resilience::fleet::WorkerArgs::from_env().is_none());
    /// ```
    pub fn from_env() -> Option<Result<WorkerArgs, String>> {
        let text = std::env::var_os(WORKER_ENV)?;
        Some(match text.to_str() {
            Some(text) => Self::from_json(text),
            None => Err(format!("{WORKER_ENV} is not UTF-8")),
        })
    }

    /// The importer's options: this partition, these breakers, the shared store in
    /// [`Mode::Shared`] (quorum as given, [`StoreFallback::Local`]), no state file, and
    /// requeues enough that a record outlives any outage of the scenario.
    pub fn import_options(&self) -> ImportOptions {
        let defaults = ImportOptions::new(self.target.clone(), self.db.clone());
        ImportOptions {
            first_id: self.first_id,
            records: self.records,
            concurrency: self.concurrency,
            state_file: None,
            shared_store: self.shared_store.as_ref().map(|s| RedisStoreConfig {
                instance_id: s.instance_id.clone(),
                quorum_min: s.quorum_min,
                quorum_ratio: s.quorum_ratio,
                fallback: StoreFallback::Local,
                ..RedisStoreConfig::new(s.url.clone())
            }),
            breaker: CircuitBreakerConfig {
                failure_threshold: self.breaker.failure_threshold,
                reset_timeout: self.breaker.reset_timeout,
                max_open_timeout: self.breaker.max_open_timeout,
                ..defaults.breaker.clone()
            },
            // A record whose retries ran out while the breaker was closed goes back in the
            // queue; at 50 ms a turn this many requeues outlast any outage of the scenario
            // (waiting for an open breaker does not count at all).
            max_requeues: 10_000,
            seed: Some(self.seed),
            ..defaults
        }
    }
}

/// What one worker did, written by the worker as JSON for the coordinator.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerReport {
    /// The worker's number.
    pub index: usize,
    /// Records it wrote.
    pub imported: u64,
    /// Whether its database holds its whole partition at the end.
    pub complete: bool,
    /// Importer runs it took (at most [`MAX_RUNS`]).
    pub runs: u32,
    /// Attempts retried.
    pub retried: u64,
    /// Times a record went back in the queue.
    pub requeued: u64,
    /// Calls its breakers (or the fleet's) refused.
    pub rejected: u64,
    /// Episodes of falling back to local breakers because Redis was unreachable, summed over
    /// its breakers (shared mode).
    pub store_fallbacks: u64,
    /// Sync rounds that reached Redis (shared mode).
    pub store_rounds: u64,
    /// Sync rounds that did not (shared mode).
    pub store_failed_rounds: u64,
    /// Whether Redis answered the last round (shared mode; `false` in local mode).
    pub store_reachable: bool,
    /// How long it ran.
    pub elapsed: Duration,
}

/// Why a worker failed.
#[derive(Debug)]
pub enum WorkerError {
    /// The importer could not start or run.
    Setup(SetupError),
    /// Its database could not be read at the end.
    Database(rusqlite::Error),
    /// Its report could not be written.
    Report(std::io::Error),
    /// Its arguments were unusable.
    Args(String),
}

impl fmt::Display for WorkerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WorkerError::Setup(e) => write!(f, "importer: {e}"),
            WorkerError::Database(e) => write!(f, "reading the database: {e}"),
            WorkerError::Report(e) => write!(f, "writing the report: {e}"),
            WorkerError::Args(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for WorkerError {}

/// Runs one worker: imports its partition, running the importer again (at most [`MAX_RUNS`]
/// times) until its database holds the whole partition, then reports.
pub async fn run_worker(args: &WorkerArgs) -> Result<WorkerReport, WorkerError> {
    let started = Instant::now();
    let options = args.import_options();
    let ids = options.ids();
    let importer = Importer::new(options).map_err(WorkerError::Setup)?;
    let mut report = WorkerReport {
        index: args.index,
        ..WorkerReport::default()
    };
    let store = Store::open(&args.db).map_err(WorkerError::Database)?;
    let held = |store: &Store| -> Result<u64, WorkerError> {
        let ids_held = store.ids().map_err(WorkerError::Database)?;
        Ok(ids_held.iter().filter(|id| ids.contains(id)).count() as u64)
    };
    let wanted = ids.end() + 1 - ids.start();
    while report.runs < MAX_RUNS {
        let run = importer.run().await.map_err(WorkerError::Setup)?;
        report.runs += 1;
        report.imported += run.imported;
        report.retried += run.retried;
        report.requeued += run.requeued;
        report.rejected += run.rejected;
        if held(&store)? == wanted {
            report.complete = true;
            break;
        }
    }
    let registry = importer.manager().circuit_breaker_registry();
    report.store_fallbacks = registry.store_fallbacks();
    for store in registry.stores() {
        if store.kind() == "redis" {
            let stats = store.stats();
            report.store_rounds = stats.rounds;
            report.store_failed_rounds = stats.failed_rounds;
            report.store_reachable = stats.reachable;
        }
    }
    report.elapsed = started.elapsed();
    Ok(report)
}

/// The whole life of a worker process, for its `main`: `None` when [`WORKER_ENV`] is not set
/// (not a worker); otherwise runs [`run_worker`] on a runtime of its own and writes the report
/// to [`WorkerArgs::report`].
pub fn worker_from_env() -> Option<Result<WorkerReport, WorkerError>> {
    let args = match WorkerArgs::from_env()? {
        Ok(args) => args,
        Err(e) => return Some(Err(WorkerError::Args(e))),
    };
    Some((|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(WorkerError::Report)?;
        let report = runtime.block_on(run_worker(&args))?;
        // Written whole, then renamed: the coordinator never reads half a report.
        let text = serde_json::to_string_pretty(&report).expect("a report serializes");
        let partial = args.report.with_extension("partial");
        std::fs::write(&partial, text).map_err(WorkerError::Report)?;
        std::fs::rename(&partial, &args.report).map_err(WorkerError::Report)?;
        Ok(report)
    })())
}
