//! What a run reports: live progress, each record's end, and the totals.

use resilience_core::{CircuitState, ErrorCategory};
use std::sync::atomic::{AtomicU64, Ordering};

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
    pub(super) fn bump(counter: &AtomicU64) {
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

/// What happened to one record, as [`Importer::on_record`](super::Importer::on_record) hooks are told.
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
    /// [`patience`](super::ImportOptions::patience), by id.
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
