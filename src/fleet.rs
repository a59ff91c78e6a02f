//! A fleet of importer processes against one flaky service, with breakers of their own or
//! shared through Redis: the code behind `cargo run --example fleet` and its test.
//!
//! [`run_mode`] starts a [`FlakyService`] with a long outage and `W` worker processes, each an
//! [`Importer`](crate::importer::Importer) of its own partition of the ids into its own SQLite file; once every worker has
//! exited it counts the requests that reached the service during the outage and reads every
//! database to count the records imported, lost and duplicated. [`run_fleet`] does it twice, in
//! [`Mode::Local`] (each worker's breakers are its own) and in [`Mode::Shared`] (the workers
//! share their breakers through Redis, [`ImportOptions::shared_store`](crate::importer::ImportOptions::shared_store)), each with a fresh
//! service of the same configuration, and [`FleetReport`] puts the two side by side.
//!
//! The workers are processes, not tasks, because that is what a shared store is for: the
//! coordinator builds each one's command with a function of [`WorkerArgs`] (the example runs its
//! own executable again; a test runs its test binary filtered to one test) and passes the
//! arguments in the environment variable [`WORKER_ENV`]. The worker's `main` calls
//! [`worker_from_env`], which runs [`run_worker`] and writes its [`WorkerReport`] where the
//! coordinator reads it.
//!
//! ```no_run
//! use resilience::fleet::{run_fleet, worker_from_env, FleetOptions};
//! # async fn demo() -> Result<(), resilience::fleet::FleetError> {
//! // In main, first: a worker process runs its worker and exits.
//! if let Some(result) = worker_from_env() {
//!     std::process::exit(i32::from(result.is_err()));
//! }
//! let options = FleetOptions::new("redis://127.0.0.1:6379");
//! let report = run_fleet(&options, |_| {
//!     std::process::Command::new(std::env::current_exe().unwrap())
//! })
//! .await?;
//! print!("{}", report.table());
//! println!("{}", report.summary_line());
//! # Ok(()) }
//! ```

pub mod cli;
mod redis_server;
mod report;
mod worker;

pub use redis_server::{ping, redis_server_on_path, shutdown_redis, ThrowawayRedis};
pub use report::{FleetReport, ModeReport, Tally};
pub use worker::{
    run_worker, worker_from_env, BreakerArgs, StoreArgs, WorkerArgs, WorkerError, WorkerReport,
};

use crate::flaky_service::{FlakyService, Outage, ServiceConfig};
use resilience_core::{CircuitBreakerConfig, RedisStoreConfig, StoreFallback};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The environment variable that makes a process a worker: its value is the worker's
/// [`WorkerArgs`] as JSON.
pub const WORKER_ENV: &str = "RESILIENCE_FLEET_WORKER";

/// Times a worker runs its importer over its partition at most: a run that leaves records
/// behind (their requeues or the run's patience ran out) is followed by another.
pub const MAX_RUNS: u32 = 5;

/// Whether the workers' breakers are their own or shared by the fleet.
///
/// ```
/// use resilience::fleet::Mode;
/// assert_eq!(Mode::Shared.to_string(), "shared");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Each worker's breakers are its own (in memory).
    Local,
    /// The workers share their breakers through Redis.
    Shared,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Local => "local",
            Mode::Shared => "shared",
        })
    }
}

/// The scenario: the fleet, the service's outage, the breakers and the quorum.
///
/// ```
/// use resilience::fleet::FleetOptions;
/// let options = FleetOptions::new("redis://127.0.0.1:6379");
/// assert_eq!((options.workers, options.concurrency, options.failure_threshold), (4, 4, 3));
/// assert!(options.validate().is_ok());
/// assert!(FleetOptions { workers: 0, ..options }.validate().is_err());
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct FleetOptions {
    /// The Redis server of the shared mode.
    pub redis_url: String,
    /// Worker processes (default 4).
    pub workers: usize,
    /// Records `1..=records`, split into one contiguous partition per worker (default 2,000).
    pub records: u64,
    /// Records in flight in each worker (default 4).
    pub concurrency: usize,
    /// Requests the service answers before its outage starts (default 400).
    pub outage_after: u64,
    /// How long the outage lasts (default 9 s): every request in it gets a 503.
    pub outage: Duration,
    /// Failures in a row that open a worker's breaker (default 3).
    pub failure_threshold: u32,
    /// The first open period (default 200 ms).
    pub reset_timeout: Duration,
    /// The longest open period (default 500 ms); the periods grow by half each time a trial
    /// call fails (200, 300, 450, 500, 500, ... ms).
    pub max_open_timeout: Duration,
    /// The fewest workers whose own breaker is open that open the shared one for all
    /// (default 2).
    pub quorum_min: u32,
    /// The smallest share of the live workers that must have it open (default 0.5).
    pub quorum_ratio: f64,
    /// In the shared mode, stop Redis (`SHUTDOWN NOSAVE`) this long after the workers start:
    /// they must finish on their local breakers.
    pub kill_redis_after: Option<Duration>,
    /// Seeds the workers' retry jitter (worker `i` uses `seed + i`).
    pub seed: u64,
    /// How long a mode may run before its workers are killed and it fails (default: the
    /// outage plus 2 minutes).
    pub time_limit: Duration,
}

impl FleetOptions {
    /// The example's scenario against the Redis at `redis_url`.
    pub fn new(redis_url: impl Into<String>) -> Self {
        let outage = Duration::from_secs(9);
        FleetOptions {
            redis_url: redis_url.into(),
            workers: 4,
            records: 2000,
            concurrency: 4,
            outage_after: 400,
            outage,
            failure_threshold: 3,
            reset_timeout: Duration::from_millis(200),
            max_open_timeout: Duration::from_millis(500),
            quorum_min: 2,
            quorum_ratio: 0.5,
            kill_redis_after: None,
            seed: 42,
            time_limit: outage + Duration::from_secs(120),
        }
    }

    /// Checks the settings; the message names the one at fault.
    pub fn validate(&self) -> Result<(), String> {
        if self.workers == 0 {
            return Err("`workers` must be at least 1".into());
        }
        if self.records < self.workers as u64 {
            return Err(format!(
                "`records` ({}) must be at least `workers` ({})",
                self.records, self.workers
            ));
        }
        if self.concurrency == 0 {
            return Err("`concurrency` must be at least 1".into());
        }
        self.breaker()
            .validate()
            .map_err(|e| format!("breaker: {e}"))?;
        self.worker_store_config(0)
            .validate()
            .map_err(|e| format!("shared store: {e}"))?;
        Ok(())
    }

    /// The ids of worker `index`: contiguous, the first `records % workers` partitions one
    /// longer than the others.
    ///
    /// ```
    /// use resilience::fleet::FleetOptions;
    /// let options = FleetOptions { records: 10, workers: 3, ..FleetOptions::new("redis://x") };
    /// let parts: Vec<_> = (0..3).map(|i| options.partition(i)).collect();
    /// assert_eq!(parts, [1..=4, 5..=7, 8..=10]);
    /// ```
    pub fn partition(&self, index: usize) -> std::ops::RangeInclusive<u64> {
        let workers = self.workers.max(1) as u64;
        let (base, extra) = (self.records / workers, self.records % workers);
        let i = index as u64;
        let first = 1 + i * base + i.min(extra);
        let len = base + u64::from(i < extra);
        first..=first + len - 1
    }

    /// The breaker settings every worker uses for both operations.
    pub fn breaker(&self) -> CircuitBreakerConfig {
        CircuitBreakerConfig {
            failure_threshold: self.failure_threshold,
            reset_timeout: self.reset_timeout,
            max_open_timeout: self.max_open_timeout,
            ..CircuitBreakerConfig::default()
        }
    }

    fn worker_store_config(&self, index: usize) -> RedisStoreConfig {
        RedisStoreConfig {
            instance_id: format!("worker-{index}"),
            quorum_min: self.quorum_min,
            quorum_ratio: self.quorum_ratio,
            fallback: StoreFallback::Local,
            ..RedisStoreConfig::new(self.redis_url.clone())
        }
    }

    /// The service of one mode: every record importable, no fault but the outage.
    pub fn service_config(&self) -> ServiceConfig {
        ServiceConfig {
            records: self.records,
            seed: self.seed,
            fault_rate: 0.0,
            not_found_rate: 0.0,
            malformed_rate: 0.0,
            outage: Some(Outage {
                after_requests: self.outage_after,
                duration: self.outage,
            }),
            ..ServiceConfig::default()
        }
    }

    /// The arguments of worker `index` in `mode`, its files in `dir`, against `target`.
    pub fn worker_args(&self, mode: Mode, index: usize, target: &str, dir: &Path) -> WorkerArgs {
        let ids = self.partition(index);
        WorkerArgs {
            index,
            mode,
            target: target.to_owned(),
            db: dir.join(format!("worker-{index}.db")),
            report: dir.join(format!("worker-{index}.report.json")),
            first_id: *ids.start(),
            records: ids.end() + 1 - ids.start(),
            concurrency: self.concurrency,
            breaker: BreakerArgs {
                failure_threshold: self.failure_threshold,
                reset_timeout: self.reset_timeout,
                max_open_timeout: self.max_open_timeout,
            },
            shared_store: (mode == Mode::Shared).then(|| StoreArgs {
                url: self.redis_url.clone(),
                instance_id: format!("worker-{index}"),
                quorum_min: self.quorum_min,
                quorum_ratio: self.quorum_ratio,
            }),
            seed: self.seed.wrapping_add(index as u64),
        }
    }
}

/// Why a fleet run failed.
#[derive(Debug)]
pub enum FleetError {
    /// The options are unusable.
    Options(String),
    /// The service or a temporary directory could not be set up.
    Setup(std::io::Error),
    /// A worker could not be started.
    Spawn {
        /// Its number.
        index: usize,
        /// Why.
        error: std::io::Error,
    },
    /// A worker failed (exit status, or no report).
    Worker {
        /// Its number.
        index: usize,
        /// What happened.
        detail: String,
    },
    /// The mode ran past [`FleetOptions::time_limit`]; the workers were killed.
    TimedOut(Mode),
    /// A database could not be read.
    Database(rusqlite::Error),
    /// Redis could not be prepared or stopped.
    Redis(String),
}

impl fmt::Display for FleetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FleetError::Options(e) => write!(f, "invalid options: {e}"),
            FleetError::Setup(e) => write!(f, "setup: {e}"),
            FleetError::Spawn { index, error } => {
                write!(f, "worker {index} did not start: {error}")
            }
            FleetError::Worker { index, detail } => write!(f, "worker {index} failed: {detail}"),
            FleetError::TimedOut(mode) => write!(f, "the {mode} run took too long; workers killed"),
            FleetError::Database(e) => write!(f, "reading a worker's database: {e}"),
            FleetError::Redis(e) => write!(f, "redis: {e}"),
        }
    }
}

impl std::error::Error for FleetError {}

/// Runs both modes, local then shared, each against a fresh service; see the
/// [module documentation](self). `worker_command` builds the command of one worker process
/// (its program and arguments); the coordinator adds [`WORKER_ENV`], discards its standard
/// output and lets its standard error through.
pub async fn run_fleet(
    options: &FleetOptions,
    worker_command: impl Fn(&WorkerArgs) -> Command,
) -> Result<FleetReport, FleetError> {
    let local = run_mode(options, Mode::Local, &worker_command).await?;
    let shared = run_mode(options, Mode::Shared, &worker_command).await?;
    Ok(FleetReport { local, shared })
}

/// Runs one mode: a fresh service, the workers (in [`Mode::Shared`], after clearing the shared
/// records of the importer's breakers, and stopping Redis after
/// [`kill_redis_after`](FleetOptions::kill_redis_after) if set), then the count.
pub async fn run_mode(
    options: &FleetOptions,
    mode: Mode,
    worker_command: impl Fn(&WorkerArgs) -> Command,
) -> Result<ModeReport, FleetError> {
    options.validate().map_err(FleetError::Options)?;
    let dir = tempfile::Builder::new()
        .prefix(&format!("resilience-fleet-{mode}-"))
        .tempdir()
        .map_err(FleetError::Setup)?;
    if mode == Mode::Shared {
        let url = options.redis_url.clone();
        tokio::task::spawn_blocking(move || redis_server::clear_importer_breakers(&url))
            .await
            .map_err(|e| FleetError::Redis(e.to_string()))?
            .map_err(|e| FleetError::Redis(format!("cannot prepare {}: {e}", options.redis_url)))?;
    }
    let service = FlakyService::start(options.service_config())
        .await
        .map_err(FleetError::Setup)?;
    let args: Vec<WorkerArgs> = (0..options.workers)
        .map(|i| options.worker_args(mode, i, &service.url(), dir.path()))
        .collect();

    let started = Instant::now();
    let mut children = Vec::new();
    for a in &args {
        let mut command = worker_command(a);
        command
            .env(WORKER_ENV, a.to_json())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        let mut command = tokio::process::Command::from(command);
        command.kill_on_drop(true);
        let child = command.spawn().map_err(|error| FleetError::Spawn {
            index: a.index,
            error,
        })?;
        children.push(child);
    }

    // Redis is stopped from a task of its own while the workers run; `running` tells it
    // whether they still do.
    let running = Arc::new(AtomicBool::new(true));
    let killing = Arc::new(AtomicBool::new(false));
    let killer = match (mode, options.kill_redis_after) {
        (Mode::Shared, Some(after)) => {
            let url = options.redis_url.clone();
            let (running, killing) = (Arc::clone(&running), Arc::clone(&killing));
            Some(tokio::spawn(async move {
                tokio::time::sleep(after.saturating_sub(started.elapsed())).await;
                if !running.load(Ordering::Acquire) {
                    return Ok(None);
                }
                killing.store(true, Ordering::Release);
                let at = started.elapsed();
                tokio::task::spawn_blocking(move || shutdown_redis(&url))
                    .await
                    .map_err(|e| e.to_string())??;
                Ok::<_, String>(Some(at))
            }))
        }
        _ => None,
    };

    let all_exit = async {
        let mut statuses = Vec::new();
        for child in &mut children {
            statuses.push(child.wait().await);
        }
        statuses
    };
    let waited = tokio::time::timeout(options.time_limit, all_exit).await;
    let statuses = match waited {
        Ok(statuses) => statuses,
        Err(_) => {
            for child in &mut children {
                let _ = child.kill().await;
            }
            return Err(FleetError::TimedOut(mode));
        }
    };
    let elapsed = started.elapsed();
    running.store(false, Ordering::Release);
    let redis_killed_after = match killer {
        Some(task) => {
            if !killing.load(Ordering::Acquire) {
                // Not started yet: the workers were done before its time.
                task.abort();
            }
            match task.await {
                Ok(Ok(at)) => at,
                Ok(Err(e)) => return Err(FleetError::Redis(e)),
                Err(_) => None,
            }
        }
        None => None,
    };

    let mut workers = Vec::new();
    for (a, status) in args.iter().zip(statuses) {
        let fail = |detail: String| FleetError::Worker {
            index: a.index,
            detail,
        };
        let status = status.map_err(|e| fail(e.to_string()))?;
        if !status.success() {
            return Err(fail(format!("exited with {status}")));
        }
        let text = std::fs::read_to_string(&a.report)
            .map_err(|e| fail(format!("no report at {}: {e}", a.report.display())))?;
        let report: WorkerReport =
            serde_json::from_str(&text).map_err(|e| fail(format!("bad report: {e}")))?;
        workers.push(report);
    }

    let stats = service.stats();
    let opening_requests = service
        .outage_request_offsets()
        .iter()
        .filter(|&&at| at < options.reset_timeout)
        .count() as u64;
    service.shutdown().await;
    let dbs: Vec<PathBuf> = args.iter().map(|a| a.db.clone()).collect();
    let records = options.records;
    let tally = tokio::task::spawn_blocking(move || Tally::read(&dbs, 1..=records))
        .await
        .map_err(|e| FleetError::Setup(std::io::Error::other(e)))?
        .map_err(FleetError::Database)?;
    Ok(ModeReport {
        mode,
        outage_requests: stats.outage,
        opening_requests,
        requests: stats.requests,
        tally,
        workers,
        redis_killed_after,
        elapsed,
    })
}
