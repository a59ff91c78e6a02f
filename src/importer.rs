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

mod errors;
mod options;
mod report;

pub use errors::{ImportError, SetupError};
use options::check;
pub use options::ImportOptions;
pub use report::{BreakerObservation, FailedRecord, ImportReport, Progress, RecordEvent};

use crate::flaky_service::Molecule;
use crate::store::Store;
use resilience_core::{
    retry, AttemptTimedOut, CircuitBreakerRegistry, CircuitState, Classify, RetryManager,
};
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
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
