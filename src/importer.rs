//! The importer: pulls molecule records from an HTTP service into a SQLite file, surviving the
//! service's failures.
//!
//! Two guarded operations do the work, each a `#[retry]` async fn with a breaker of its own,
//! on the importer's manager: `molecule_service:fetch` (one GET with a per-attempt timeout) and
//! `molecule_db:store` (one insert in its own transaction); their errors are an
//! [`ImportError`], classified by `#[derive(Classify)]`. The breakers' state is saved in a file
//! next to the database at the end of every run (and in the background during it), so the next
//! run starts where this one left the breakers. Around them the importer keeps a bounded number
//! of records in flight, skips what the database already holds (so a rerun after a crash picks
//! up where it stopped and imports nothing twice), reports records that cannot be imported
//! (unknown id, corrupt record) without retrying them, and puts records back in the queue while
//! a breaker is open instead of failing them. With [`ImportOptions::shared_store`] the breakers
//! are shared by every importer using the same Redis (see the [`fleet`](crate::fleet) module).
//!
//! ```no_run
//! use resilience::importer::{ImportOptions, Importer};
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let options = ImportOptions::new("http://127.0.0.1:8080", "molecules.db");
//! let importer = Importer::new(options)?;
//! let report = importer.run().await?;
//! println!("{} imported, {} failed", report.imported, report.failed.len());
//! # Ok(()) }
//! ```

use crate::flaky_service::Molecule;
use crate::store::SqliteError;
use crate::store::Store;
use resilience_core::{
    retry, AttemptTimedOut, CircuitBreakerConfig, CircuitBreakerRegistry, CircuitOpenError,
    CircuitState, Classify, ConfigError, ErrorCategory, PersistError, RedisStoreConfig,
    RetryBudget, RetryConfig, RetryManager,
};
use std::collections::VecDeque;
use std::error::Error;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::task::JoinSet;

// The `#[retry]` attributes on `Inner::fetch` and `Inner::store` spell these names out: the
// attribute takes string literals. The end-to-end test reads the metrics by these constants, so
// a mismatch fails it.

/// The component of the service's breaker and metrics.
pub const SERVICE: &str = "molecule_service";
/// The operation that fetches one record.
pub const FETCH: &str = "fetch";
/// The component of the database's breaker and metrics.
pub const DATABASE: &str = "molecule_db";
/// The operation that stores one record.
pub const STORE: &str = "store";

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

/// Why one attempt of a guarded operation failed.
///
/// Classified by `#[derive(Classify)]`. An answer that asks for a wait (`Retry-After` on a 429
/// or a 503) has a variant of its own, so that the derive can take the wait from a field; every
/// other HTTP failure is classified by reqwest's own impl (`#[classify(source)]`). SQLite errors
/// go through [`SqliteError`], whose hand-written impl the derive delegates to.
//
// Why 429 and 503 are variants of their own: the derive's `source` takes both the category and
// the wait from the one wrapped field (it refuses a variant with a second field, and refuses
// `retry_after = field` beside it), so "reqwest's category, our Retry-After" cannot be said on
// one variant. A fixed category per status, with the wait from a field, can.
#[derive(Debug, Classify)]
pub enum ImportError {
    /// The request failed, or the service answered with an error status that asks for no
    /// particular wait: reqwest's classification applies.
    #[classify(source)]
    Http(reqwest::Error),
    /// The service answered 429.
    #[classify(RateLimit, retry_after = retry_after)]
    RateLimited {
        /// What reqwest reported.
        source: reqwest::Error,
        /// The answer's `Retry-After`, which `reqwest::Error` does not keep.
        retry_after: Option<Duration>,
    },
    /// The service answered 503.
    #[classify(Unavailable, retry_after = retry_after)]
    Unavailable {
        /// What reqwest reported.
        source: reqwest::Error,
        /// The answer's `Retry-After`, which `reqwest::Error` does not keep.
        retry_after: Option<Duration>,
    },
    /// The attempt ran past [`ImportOptions::attempt_timeout`].
    #[classify(source)]
    TimedOut(AttemptTimedOut),
    /// The service answered with another record than the one asked for.
    #[classify(Validation)]
    WrongRecord {
        /// The id asked for.
        asked: u64,
        /// The id received.
        got: u64,
    },
    /// The database refused the write.
    #[classify(source)]
    Database(SqliteError),
    /// The blocking task running the write panicked or was cancelled (`Unknown`: retried).
    Worker(tokio::task::JoinError),
    /// The operation's breaker is open: nothing ran.
    #[classify(source)]
    CircuitOpen(CircuitOpenError),
}

impl ImportError {
    /// The error for an answer with an error status: 429 and 503 keep the `Retry-After` that
    /// came with them (the statuses it is defined for, besides redirects).
    ///
    /// ```
    /// use resilience::importer::ImportError;
    /// use resilience_core::{Classify, ErrorCategory};
    /// use std::time::Duration;
    /// let answer = axum::http::Response::builder().status(429).body("slow down").unwrap();
    /// let status = reqwest::Response::from(answer).error_for_status().unwrap_err();
    /// let err = ImportError::from_status(status, Some(Duration::from_secs(2)));
    /// assert_eq!(err.category(), ErrorCategory::RateLimit);
    /// assert_eq!(err.retry_after(), Some(Duration::from_secs(2)));
    /// ```
    pub fn from_status(source: reqwest::Error, retry_after: Option<Duration>) -> ImportError {
        match source.status().map(|s| s.as_u16()) {
            Some(429) => ImportError::RateLimited {
                source,
                retry_after,
            },
            Some(503) => ImportError::Unavailable {
                source,
                retry_after,
            },
            _ => ImportError::Http(source),
        }
    }
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImportError::Http(source)
            | ImportError::RateLimited { source, .. }
            | ImportError::Unavailable { source, .. } => write!(f, "HTTP: {source}"),
            ImportError::TimedOut(e) => fmt::Display::fmt(e, f),
            ImportError::WrongRecord { asked, got } => {
                write!(f, "asked for record {asked}, got record {got}")
            }
            ImportError::Database(e) => write!(f, "database: {e}"),
            ImportError::Worker(e) => write!(f, "database worker: {e}"),
            ImportError::CircuitOpen(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl Error for ImportError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            ImportError::Http(source)
            | ImportError::RateLimited { source, .. }
            | ImportError::Unavailable { source, .. } => Some(source),
            ImportError::TimedOut(e) => Some(e),
            ImportError::WrongRecord { .. } => None,
            // rusqlite's error itself, so that matching along the chain finds it; the wrapper
            // only exists for the derive.
            ImportError::Database(e) => Some(&e.0),
            ImportError::Worker(e) => Some(e),
            ImportError::CircuitOpen(e) => Some(e),
        }
    }
}

impl From<reqwest::Error> for ImportError {
    fn from(source: reqwest::Error) -> Self {
        ImportError::Http(source)
    }
}

impl From<rusqlite::Error> for ImportError {
    fn from(e: rusqlite::Error) -> Self {
        ImportError::Database(SqliteError(e))
    }
}

impl From<tokio::task::JoinError> for ImportError {
    fn from(e: tokio::task::JoinError) -> Self {
        ImportError::Worker(e)
    }
}

impl From<CircuitOpenError> for ImportError {
    fn from(e: CircuitOpenError) -> Self {
        ImportError::CircuitOpen(e)
    }
}

impl From<AttemptTimedOut> for ImportError {
    fn from(e: AttemptTimedOut) -> Self {
        ImportError::TimedOut(e)
    }
}

/// The importer could not start.
#[derive(Debug)]
pub enum SetupError {
    /// The database could not be opened or prepared.
    Database(rusqlite::Error),
    /// The retry or breaker settings are invalid.
    Config(ConfigError),
    /// The breaker state file is unusable.
    StateFile(PersistError),
    /// The HTTP client could not be built.
    Client(reqwest::Error),
    /// The database worker failed.
    Worker(tokio::task::JoinError),
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetupError::Database(e) => write!(f, "cannot use the database: {e}"),
            SetupError::Config(e) => write!(f, "invalid settings: {e}"),
            SetupError::StateFile(e) => fmt::Display::fmt(e, f),
            SetupError::Client(e) => write!(f, "cannot build the HTTP client: {e}"),
            SetupError::Worker(e) => write!(f, "database worker: {e}"),
        }
    }
}

impl Error for SetupError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            SetupError::Database(e) => Some(e),
            SetupError::Config(e) => Some(e),
            SetupError::StateFile(e) => Some(e),
            SetupError::Client(e) => Some(e),
            SetupError::Worker(e) => Some(e),
        }
    }
}

/// Live counts of a run, for a progress display. All counts are of records, except `retried`
/// (attempts retried, both operations) and `rejected` (calls a breaker refused).
#[derive(Debug, Default)]
pub struct Progress {
    /// Records this run has to import (those not in the database at its start).
    pub total: AtomicU64,
    /// Records written by this run.
    pub imported: AtomicU64,
    /// Records that cannot be imported.
    pub failed: AtomicU64,
    /// Attempts retried.
    pub retried: AtomicU64,
    /// Records put back in the queue.
    pub requeued: AtomicU64,
    /// Calls refused by an open breaker.
    pub rejected: AtomicU64,
}

impl Progress {
    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// A counter's value.
    ///
    /// ```
    /// use resilience::importer::Progress;
    /// let progress = Progress::default();
    /// assert_eq!(Progress::get(&progress.imported), 0);
    /// ```
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// What happened to one record, as [`Importer::on_record`] hooks are told.
#[derive(Clone, Debug, PartialEq)]
pub enum RecordEvent {
    /// The record is committed to the database.
    Imported(u64),
    /// The record cannot be imported.
    Failed(FailedRecord),
    /// The record goes back in the queue.
    Requeued(u64),
}

/// A record that cannot be imported, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct FailedRecord {
    /// Its id.
    pub id: u64,
    /// The category of the last error.
    pub category: ErrorCategory,
    /// The last error.
    pub error: String,
}

/// The outcome of a run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ImportReport {
    /// Records written by this run.
    pub imported: u64,
    /// Records that were in the database already.
    pub already_present: u64,
    /// Records that cannot be imported, by id.
    pub failed: Vec<FailedRecord>,
    /// Records left for the next run because the run ran out of
    /// [`patience`](ImportOptions::patience), by id.
    pub unfinished: Vec<u64>,
    /// Attempts retried (both operations).
    pub retried: u64,
    /// Times a record went back in the queue.
    pub requeued: u64,
    /// Calls refused by an open breaker.
    pub rejected: u64,
    /// Why the breakers' state could not be saved to the state file at the end of the run, if
    /// it could not (the next run then starts from an older state).
    pub state_file_error: Option<String>,
    /// The states the fetch breaker was seen in, in order, each with the moment it was first
    /// seen (sampled after every fetch; repeats left out).
    pub fetch_breaker: Vec<BreakerObservation>,
}

impl ImportReport {
    /// The states of [`fetch_breaker`](Self::fetch_breaker) alone.
    ///
    /// ```
    /// use resilience::importer::ImportReport;
    /// assert!(ImportReport::default().fetch_breaker_states().is_empty());
    /// ```
    pub fn fetch_breaker_states(&self) -> Vec<CircuitState> {
        self.fetch_breaker.iter().map(|o| o.state).collect()
    }
}

/// A breaker state and when it was seen, on tokio's clock (paused test time applies).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BreakerObservation {
    /// When it was first seen in this state.
    pub at: tokio::time::Instant,
    /// The state.
    pub state: CircuitState,
}

type RecordHook = Arc<dyn Fn(&RecordEvent) + Send + Sync>;

/// Imports records with retries and breakers; see the [module documentation](self).
#[derive(Clone)]
pub struct Importer {
    inner: Arc<Inner>,
}

struct Inner {
    options: ImportOptions,
    manager: Arc<RetryManager>,
    client: reqwest::Client,
    store: Store,
    progress: Arc<Progress>,
    fetch_states: Mutex<Vec<BreakerObservation>>,
    on_record: Mutex<Option<RecordHook>>,
}

/// What became of one record's turn in the queue.
enum Turn {
    Imported,
    AlreadyPresent,
    Failed(FailedRecord),
    Requeue { counts: bool },
}

impl Importer {
    /// Checks the options, opens (or creates) the database and the breaker state file, starts
    /// sharing the breakers through Redis when [`ImportOptions::shared_store`] says so (an
    /// unreachable server is not an error: the breakers are local until it answers), and
    /// builds the manager.
    ///
    /// ```
    /// use resilience::importer::{ImportOptions, Importer, SetupError};
    /// let dir = tempfile::tempdir().unwrap();
    /// let options = ImportOptions::new("localhost:8080", dir.path().join("m.db"));
    /// let err = Importer::new(options).err().unwrap();
    /// assert!(matches!(&err, SetupError::Config(e) if e.field() == "target"), "{err}");
    /// ```
    pub fn new(options: ImportOptions) -> Result<Importer, SetupError> {
        check(&options).map_err(SetupError::Config)?;
        let store = Store::open(&options.db).map_err(SetupError::Database)?;
        let registry = if options.state_file.is_none() && options.shared_store.is_none() {
            CircuitBreakerRegistry::new()
        } else {
            let mut builder = CircuitBreakerRegistry::builder();
            if let Some(path) = &options.state_file {
                builder = builder.state_file(path);
            }
            if let Some(shared) = &options.shared_store {
                // Checked by `check`: what can fail here is the state file (or, rarely, the
                // sync thread's start, which is reported the same way).
                builder = builder.redis_store(shared.clone());
            }
            builder.build().map_err(SetupError::StateFile)?
        };
        let progress = Arc::new(Progress::default());
        let retried = Arc::clone(&progress);
        let mut builder = RetryManager::builder()
            .default_config(options.retry.clone())
            .circuit_breaker_config(options.breaker.clone())
            .circuit_breaker_registry(Arc::new(registry))
            .on_retry(move |_| Progress::bump(&retried.retried));
        if let Some(seed) = options.seed {
            builder = builder.seed(seed);
        }
        let manager = builder.build().map_err(SetupError::Config)?;
        let client = reqwest::Client::builder()
            .build()
            .map_err(SetupError::Client)?;
        Ok(Importer {
            inner: Arc::new(Inner {
                options,
                manager: Arc::new(manager),
                client,
                store,
                progress,
                fetch_states: Mutex::new(Vec::new()),
                on_record: Mutex::new(None),
            }),
        })
    }

    /// Calls `hook` for every record imported, failed or put back in the queue (replacing any
    /// hook set before). It runs on the importer's dispatcher, so keep it short.
    pub fn on_record(self, hook: impl Fn(&RecordEvent) + Send + Sync + 'static) -> Self {
        *self
            .inner
            .on_record
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(hook));
        self
    }

    /// The manager: metrics and breaker status of both operations.
    pub fn manager(&self) -> &RetryManager {
        &self.inner.manager
    }

    /// Live counts of the current run.
    pub fn progress(&self) -> Arc<Progress> {
        Arc::clone(&self.inner.progress)
    }

    /// Imports every record of [`ImportOptions::ids`] (`1..=records` by default) that the
    /// database does not hold yet. One run at a time: the [`progress`](Self::progress) counts
    /// are shared.
    pub async fn run(&self) -> Result<ImportReport, SetupError> {
        let inner = &self.inner;
        let present = inner.store.existing_ids().await?;
        let mut queue: VecDeque<Job> = inner
            .options
            .ids()
            .filter(|id| !present.contains(id))
            .map(|id| Job { id, requeues: 0 })
            .collect();
        let mut report = ImportReport {
            already_present: inner
                .options
                .ids()
                .filter(|id| present.contains(id))
                .count() as u64,
            ..ImportReport::default()
        };
        let progress = &inner.progress;
        progress.total.store(queue.len() as u64, Ordering::Relaxed);
        let start = Progress::get(&progress.retried);
        let (requeued0, rejected0) = (
            Progress::get(&progress.requeued),
            Progress::get(&progress.rejected),
        );
        inner.observe_fetch_breaker();

        let mut in_flight = JoinSet::new();
        let mut last_progress = tokio::time::Instant::now();
        let mut giving_up = false;
        loop {
            while !giving_up && in_flight.len() < inner.options.concurrency {
                let Some(job) = queue.pop_front() else { break };
                let this = Arc::clone(inner);
                in_flight.spawn(async move {
                    let turn = this.import_one(job.id, job.requeues).await;
                    (job, turn)
                });
            }
            let Some(done) = in_flight.join_next().await else {
                break;
            };
            let (mut job, turn) = match done {
                Ok(done) => done,
                // A panicking record task is a bug in this module; keep the others going and let
                // the panic surface.
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(e) => return Err(SetupError::Worker(e)),
            };
            if !matches!(turn, Turn::Requeue { .. }) {
                last_progress = tokio::time::Instant::now();
            }
            match turn {
                Turn::Requeue { .. } if giving_up => report.unfinished.push(job.id),
                Turn::Imported => {
                    report.imported += 1;
                    Progress::bump(&progress.imported);
                    inner.tell(&RecordEvent::Imported(job.id));
                }
                Turn::AlreadyPresent => report.already_present += 1,
                Turn::Failed(failed) => {
                    Progress::bump(&progress.failed);
                    inner.tell(&RecordEvent::Failed(failed.clone()));
                    report.failed.push(failed);
                }
                Turn::Requeue { counts } => {
                    if counts {
                        job.requeues += 1;
                    }
                    Progress::bump(&progress.requeued);
                    inner.tell(&RecordEvent::Requeued(job.id));
                    queue.push_back(job);
                }
            }
            if !giving_up && last_progress.elapsed() >= inner.options.patience {
                giving_up = true;
                report.unfinished.extend(queue.drain(..).map(|job| job.id));
                tracing::warn!(
                    patience_s = inner.options.patience.as_secs_f64(),
                    "no record reached an end for too long; leaving the rest for the next run"
                );
            }
        }
        report.unfinished.sort_unstable();
        report.failed.sort_by_key(|f| f.id);
        report.retried = Progress::get(&progress.retried) - start;
        report.requeued = Progress::get(&progress.requeued) - requeued0;
        report.rejected = Progress::get(&progress.rejected) - rejected0;
        report.fetch_breaker =
            std::mem::take(&mut *inner.fetch_states.lock().unwrap_or_else(|p| p.into_inner()));
        report.state_file_error = inner.save_breaker_state().await;
        Ok(report)
    }
}

/// The options' own rules (the manager checks the retry and breaker settings).
fn check(options: &ImportOptions) -> Result<(), ConfigError> {
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

struct Job {
    id: u64,
    requeues: u32,
}

impl Inner {
    fn tell(&self, event: &RecordEvent) {
        let hook = self
            .on_record
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(hook) = hook {
            hook(event);
        }
    }

    /// One turn of one record: fetch, store, and what to do about a failure.
    async fn import_one(&self, id: u64, requeues: u32) -> Turn {
        let fetched = self.fetch(id).await;
        self.observe_fetch_breaker();
        let outcome = match fetched {
            Ok(molecule) => self.store(&molecule).await,
            Err(e) => Err(e),
        };
        match outcome {
            Ok(true) => Turn::Imported,
            Ok(false) => Turn::AlreadyPresent,
            Err(e) => self.after_failure(id, requeues, e).await,
        }
    }

    /// Guarded operation `molecule_service:fetch`: one GET of one record, within the
    /// per-attempt timeout. The body is one attempt; retry and breaker settings come from the
    /// manager, built from [`ImportOptions`].
    ///
    /// The attempt timeout is not the attribute's `timeout = ...`: that one is fixed at compile
    /// time, and this one is [`ImportOptions::attempt_timeout`] (the `--attempt-timeout` flag),
    /// so the body applies it itself.
    #[retry(component = "molecule_service", operation = "fetch", manager = &*self.manager)]
    async fn fetch(&self, id: u64) -> Result<Molecule, ImportError> {
        let attempt = async {
            let url = format!("{}/molecules/{id}", self.options.target);
            let response = self.client.get(url).send().await?;
            let retry_after = parse_retry_after(response.headers(), SystemTime::now());
            let response = response
                .error_for_status()
                .map_err(|source| ImportError::from_status(source, retry_after))?;
            let molecule: Molecule = response.json().await?;
            if molecule.id != id {
                return Err(ImportError::WrongRecord {
                    asked: id,
                    got: molecule.id,
                });
            }
            Ok(molecule)
        };
        let limit = self.options.attempt_timeout;
        match tokio::time::timeout(limit, attempt).await {
            Ok(result) => result,
            Err(_) => Err(AttemptTimedOut::new(limit).into()),
        }
    }

    /// Guarded operation `molecule_db:store`: inserts one record in its own transaction;
    /// `Ok(false)` when it was there already.
    #[retry(component = "molecule_db", operation = "store", manager = &*self.manager)]
    async fn store(&self, molecule: &Molecule) -> Result<bool, ImportError> {
        let store = self.store.clone();
        let molecule = molecule.clone();
        let inserted = tokio::task::spawn_blocking(move || store.insert(&molecule)).await??;
        Ok(inserted)
    }

    /// Decides what a failed turn means: wait out an open breaker and requeue, requeue a record
    /// whose retries ran out (a bounded number of times), or report a record that cannot be
    /// imported.
    async fn after_failure(&self, id: u64, requeues: u32, error: ImportError) -> Turn {
        let category = error.category();
        if let ImportError::CircuitOpen(open) = &error {
            Progress::bump(&self.progress.rejected);
            // Zero while half-open with its trial calls in flight: wait a little, not at all
            // would spin.
            tokio::time::sleep(open.remaining().max(self.options.requeue_delay)).await;
            return Turn::Requeue { counts: false };
        }
        let retryable = self.options.retry.retryable_categories.contains(category);
        if retryable {
            // A call cut short by its breaker opening returns its last real error; while the
            // breaker is not closed that is waiting, not failing.
            let breaker_open = self.breaker_not_closed(&error);
            if breaker_open || requeues < self.options.max_requeues {
                tokio::time::sleep(self.options.requeue_delay).await;
                return Turn::Requeue {
                    counts: !breaker_open,
                };
            }
        }
        Turn::Failed(FailedRecord {
            id,
            category,
            error: error.to_string(),
        })
    }

    /// Waits until the breakers' state is in the state file, so that the next run (or another
    /// process) starts from how this one ended, whatever becomes of this process afterwards.
    /// The registry writes in the background anyway; this makes the end of a run a known point.
    async fn save_breaker_state(&self) -> Option<String> {
        let registry = Arc::clone(self.manager.circuit_breaker_registry());
        // `flush` waits for the writer thread's disk write: not on an async worker.
        let saved = tokio::task::spawn_blocking(move || registry.flush()).await;
        let error = match saved {
            Ok(Ok(())) => return None,
            Ok(Err(e)) => e.to_string(),
            Err(e) => format!("the task saving the breaker state failed: {e}"),
        };
        tracing::warn!(%error, "breaker state not saved");
        Some(error)
    }

    fn breaker_not_closed(&self, error: &ImportError) -> bool {
        let (component, operation) = match error {
            ImportError::Database(_) | ImportError::Worker(_) => (DATABASE, STORE),
            _ => (SERVICE, FETCH),
        };
        self.manager
            .circuit_breaker_registry()
            .get_breaker(component, operation)
            .status()
            .state
            != CircuitState::Closed
    }

    fn observe_fetch_breaker(&self) {
        let state = self
            .manager
            .circuit_breaker_registry()
            .get_breaker(SERVICE, FETCH)
            .status()
            .state;
        let mut states = self.fetch_states.lock().unwrap_or_else(|p| p.into_inner());
        if states.last().map(|o| o.state) != Some(state) {
            states.push(BreakerObservation {
                at: tokio::time::Instant::now(),
                state,
            });
        }
    }
}

/// The wait an answer's `Retry-After` asks for: whole seconds (a decimal number is accepted
/// too), or an HTTP date (relative to `now`).
///
/// ```
/// use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};
/// use resilience::importer::parse_retry_after;
/// use std::time::{Duration, SystemTime};
/// let mut headers = HeaderMap::new();
/// headers.insert(RETRY_AFTER, HeaderValue::from_static("2"));
/// assert_eq!(parse_retry_after(&headers, SystemTime::now()), Some(Duration::from_secs(2)));
/// headers.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
/// assert_eq!(parse_retry_after(&headers, SystemTime::now()), None);
/// ```
pub fn parse_retry_after(
    headers: &reqwest::header::HeaderMap,
    now: SystemTime,
) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    resilience_core::http::parse_retry_after(value, now)
}
