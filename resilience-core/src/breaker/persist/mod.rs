//! Breaker state kept in a file across restarts.
//!
//! - [`format`]: the versioned JSON file, read leniently (a bad file is moved aside, never fatal).
//! - [`store`]: the file on disk: the advisory lock, the atomic replace, the move aside.
//! - [`writer`]: the background thread that writes, so no call ever waits on the disk.
//!
//! What is written: each breaker's state, operator control, failure and success counts, its
//! open-until time on the wall clock (milliseconds since the Unix epoch) and its current open
//! timeout (the ladder position). Trial calls in flight are not: a breaker restored half-open
//! has none.
//!
//! When: whenever one of those values changes, which is on every state change and on every
//! change of a count. A counted failure is written too, because a restart must not forgive a
//! failure streak (pybreaker restores its counter; PEER-SCENARIOS PB-09a); since failures are
//! off the hot path and the writer coalesces everything queued while it writes, a burst of
//! failures costs a few writes, not one each. A call that changes nothing (a success on a clean
//! closed breaker, a rejection, a neutral result) writes nothing.
//!
//! Not written: the windows of the failure-rate and slow-call rules, and what opened a
//! breaker. A restored breaker starts with an empty window, as it does after closing: a window
//! describes the recent calls of one process, its buckets are in that process's monotonic time,
//! and a restart usually follows a deploy or an outage after which the old calls say little.
//! What must survive does: an open breaker stays open for the rest of its time, and a
//! consecutive-failure streak is kept. Writing every call of a window would also put a write on
//! the hot path, which this file never has.
//!
//! Several processes may share one file: each write takes an advisory lock on `<file>.lock`,
//! reads the file, replaces the entries of the breakers that changed in this process and keeps
//! every other entry, then replaces the file atomically. For one breaker changed by two
//! processes, the last writer wins. A process does not pick up later changes made by another.
//! Every write renders the full known state: the file's entries plus every breaker this process
//! restored or changed, so a file corrupted, truncated or deleted while the program runs is
//! whole again after the next write (a corrupt one is moved aside first, and its entries are
//! taken from what the file held at the last read or write).
//!
//! Failure modes, each logged as a `tracing` warning and never fatal once the registry is built:
//!
//! | the file | at start | on write |
//! | --- | --- | --- |
//! | missing | breakers start closed | created (mode 0600) |
//! | corrupt or unreadable | moved aside to `<file>.corrupt-<unix ms>`, breakers start closed | moved aside, rebuilt from the known state |
//! | of a newer format version | left alone, breakers start closed and live in memory | skipped, retried; [`PersistStats::newer_file_version`] says why |
//! | lock held elsewhere past the lock timeout | read without the lock (nothing moved or removed) | fails, retried later |
//! | unwritable | — | fails, retried; the previous file stays |
//! | a directory (or other non-file) | an error from the builder | fails; it is never moved |
//!
//! Loading checks every record as a whole, against the rules of the state machine, and repairs
//! what contradicts itself (one warning per breaker, naming each repair):
//!
//! - The operator's control wins and the state follows it: forced open is OPEN, disabled is
//!   CLOSED with no failure counted.
//! - The open timeout is at most `max_open_timeout`, and an OPEN breaker's deadline at most its
//!   open timeout from now (a far-future `open_until` is cut, whether a bad record or a wall
//!   clock that went back put it there); an OPEN breaker with no deadline is open for its open
//!   timeout from now. Breakers are restored with the default [`CircuitBreakerConfig`]
//!   (`max_open_timeout` 300 s), since the program's own configuration is only given to a
//!   breaker after loading; when it is, a lower `max_open_timeout` cuts the open timeout and
//!   the deadline again.
//! - A success count outside HALF_OPEN is cleared; a deadline on a breaker that is not open on
//!   its own is ignored. Counts are not compared with thresholds (those are the program's):
//!   a count at or past its threshold trips at the next result.
//!
//! A record with a field of the wrong type or an unknown field makes the whole file bad: it is
//! moved aside, never used half-way.
//!
//! [`CircuitBreakerConfig`]: crate::CircuitBreakerConfig

mod format;
mod store;
mod writer;

pub(crate) use format::{Record, Records};
pub(crate) use store::{Loaded, Store, DEFAULT_LOCK_TIMEOUT};
pub(crate) use writer::{Sink, Writer};

/// How the state file's writer has fared, from
/// [`CircuitBreakerRegistry::persist_stats`](crate::CircuitBreakerRegistry::persist_stats).
///
/// ```
/// use resilience_core::{CircuitBreakerConfig, CircuitBreakerRegistry};
/// let dir = tempfile::tempdir().unwrap();
/// let registry = CircuitBreakerRegistry::with_state_file(dir.path().join("breakers.json")).unwrap();
/// let breaker = registry.get_breaker("db", "query");
/// breaker.configure(&CircuitBreakerConfig { failure_threshold: 1, ..Default::default() });
/// breaker.try_acquire().unwrap().record_failure();
/// registry.flush().unwrap();
/// let stats = registry.persist_stats().unwrap();
/// assert_eq!((stats.writes, stats.failed_writes), (1, 0));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PersistStats {
    /// Files written successfully.
    pub writes: u64,
    /// Writes that failed (the previous file is left as it was, and the changes are tried again
    /// with the next write).
    pub failed_writes: u64,
    /// The error of the last failed write, if the last write failed.
    pub last_error: Option<String>,
    /// Set while the state file is of this newer format version, written by a newer build of
    /// the program: the file is then never overwritten or moved aside, and the breakers live in
    /// memory only (writes are skipped and tried again later, neither `writes` nor
    /// `failed_writes`). `None` once a write succeeds.
    ///
    /// ```
    /// use resilience_core::CircuitBreakerRegistry;
    /// let dir = tempfile::tempdir().unwrap();
    /// let path = dir.path().join("breakers.json");
    /// std::fs::write(&path, r#"{"version": 7, "shards": []}"#).unwrap();
    /// let registry = CircuitBreakerRegistry::with_state_file(&path).unwrap();
    /// assert_eq!(registry.persist_stats().unwrap().newer_file_version, Some(7));
    /// registry.force_open("db", "query");
    /// assert!(registry.flush().is_err(), "not written");
    /// assert_eq!(std::fs::read_to_string(&path).unwrap(), r#"{"version": 7, "shards": []}"#);
    /// ```
    pub newer_file_version: Option<u64>,
}
