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
//! Several processes may share one file: each write takes an advisory lock on `<file>.lock`,
//! reads the file, replaces the entries of the breakers that changed in this process and keeps
//! every other entry, then replaces the file atomically. For one breaker changed by two
//! processes, the last writer wins. A process does not pick up later changes made by another.

mod format;
mod store;
mod writer;

pub(crate) use format::{Record, Records};
pub(crate) use store::Store;
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
}
