//! The background writer. Breakers send their changed records down a channel (never blocking,
//! never touching the disk); one thread per state file gathers everything queued, writes it in
//! one go, and repeats.
//!
//! The thread keeps the latest record of every breaker of this process that was restored or
//! has changed (`mine`), and what the file held after its last read or write (`last_known`),
//! so that every write renders the full known state: a file that was corrupted, truncated or
//! deleted while the program ran is rebuilt complete, this process's unchanged breakers
//! included.
//!
//! A write that fails (or is skipped because the file is of a newer format) keeps its changes;
//! they go with the next change or flush, or at the latest with a retry on the thread's own
//! after 1 s, then 2 s, 4 s, ... up to a minute between tries.

use super::format::{self, Record, Records};
use super::store::{Store, Written};
use super::PersistStats;
use crate::breaker::PersistError;
use crate::Clock;
use parking_lot::Mutex;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// The first pause before a failed write is tried again on its own.
const FIRST_RETRY: Duration = Duration::from_secs(1);
/// The longest pause between two tries of a failing write.
const LAST_RETRY: Duration = Duration::from_secs(60);

/// Why a flush did not put everything in the file.
type FlushError = (&'static str, String);

enum Msg {
    Update {
        service: Arc<str>,
        operation: Arc<str>,
        record: Record,
    },
    Flush(SyncSender<Option<FlushError>>),
    Stop,
}

#[derive(Debug, Default)]
struct Stats {
    writes: AtomicU64,
    failed_writes: AtomicU64,
    status: Mutex<Status>,
}

#[derive(Debug, Default)]
struct Status {
    last_error: Option<String>,
    newer_file_version: Option<u64>,
}

/// The sending end, held by every breaker of the registry.
#[derive(Debug, Clone)]
pub(crate) struct Sink {
    tx: Sender<Msg>,
}

impl Sink {
    /// Queues a breaker's new record. After the registry is gone nothing listens, and the
    /// breaker simply lives on in memory.
    pub(crate) fn send(&self, service: &Arc<str>, operation: &Arc<str>, record: Record) {
        let _ = self.tx.send(Msg::Update {
            service: Arc::clone(service),
            operation: Arc::clone(operation),
            record,
        });
    }
}

/// The writer thread, owned by the registry.
#[derive(Debug)]
pub(crate) struct Writer {
    tx: Sender<Msg>,
    stats: Arc<Stats>,
    path: std::path::PathBuf,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    /// Starts the thread. `mine` holds the records of the breakers restored from the file
    /// (after repair); `newer` says the file was left alone at load for being of a newer
    /// format.
    pub(crate) fn spawn(
        store: Store,
        clock: Arc<dyn Clock>,
        mine: Records,
        newer: Option<u64>,
    ) -> Result<(Writer, Sink), PersistError> {
        let (tx, rx) = mpsc::channel();
        let stats = Arc::new(Stats::default());
        stats.status.lock().newer_file_version = newer;
        let path = store.path().to_path_buf();
        let thread_stats = Arc::clone(&stats);
        let thread = std::thread::Builder::new()
            .name("resilience-breaker-state".to_owned())
            .spawn(move || {
                let mut state = State {
                    last_known: mine.clone(),
                    mine,
                    pending: Records::new(),
                };
                run(&store, &*clock, &rx, &thread_stats, &mut state);
            })
            .map_err(|e| PersistError::new(&path, "cannot start the writer thread", e))?;
        let sink = Sink { tx: tx.clone() };
        Ok((
            Writer {
                tx,
                stats,
                path,
                thread: Some(thread),
            },
            sink,
        ))
    }

    /// Waits until every change queued so far is written, or the write failed or was skipped.
    pub(crate) fn flush(&self) -> Result<(), PersistError> {
        let (ack_tx, ack_rx) = mpsc::sync_channel(1);
        let stopped = || {
            PersistError::new(
                &self.path,
                "write failed",
                io::Error::other("the writer thread has stopped"),
            )
        };
        if self.tx.send(Msg::Flush(ack_tx)).is_err() {
            return Err(stopped());
        }
        match ack_rx.recv() {
            Ok(None) => Ok(()),
            Ok(Some((action, error))) => Err(PersistError::new(
                &self.path,
                action,
                io::Error::other(error),
            )),
            Err(_) => Err(stopped()),
        }
    }

    pub(crate) fn stats(&self) -> PersistStats {
        let status = self.stats.status.lock();
        PersistStats {
            writes: self.stats.writes.load(Ordering::Acquire),
            failed_writes: self.stats.failed_writes.load(Ordering::Acquire),
            last_error: status.last_error.clone(),
            newer_file_version: status.newer_file_version,
        }
    }
}

impl Drop for Writer {
    /// Writes what is still queued (one try: a held lock costs at most the lock timeout), then
    /// stops the thread.
    fn drop(&mut self) {
        let _ = self.tx.send(Msg::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct State {
    /// Changes not yet in the file.
    pending: Records,
    /// The latest record of every restored or changed breaker of this process.
    mine: Records,
    /// What the file held after the last read or write.
    last_known: Records,
}

fn run(store: &Store, clock: &dyn Clock, rx: &Receiver<Msg>, stats: &Stats, state: &mut State) {
    let mut acks = Vec::new();
    let mut retry = FIRST_RETRY;
    loop {
        // Waits for news; with changes still unwritten, only for so long.
        let first = if state.pending.is_empty() {
            match rx.recv() {
                Ok(msg) => Some(msg),
                Err(_) => return,
            }
        } else {
            match rx.recv_timeout(retry) {
                Ok(msg) => Some(msg),
                Err(RecvTimeoutError::Timeout) => {
                    retry = (retry * 2).min(LAST_RETRY);
                    None
                }
                Err(RecvTimeoutError::Disconnected) => return,
            }
        };
        let mut stop = false;
        // Everything queued while the last write ran goes into this one.
        for msg in first.into_iter().chain(rx.try_iter()) {
            match msg {
                Msg::Update {
                    service,
                    operation,
                    record,
                } => {
                    for map in [&mut state.pending, &mut state.mine] {
                        map.entry(service.to_string())
                            .or_default()
                            .insert(operation.to_string(), record);
                    }
                }
                Msg::Flush(ack) => acks.push(ack),
                Msg::Stop => stop = true,
            }
        }
        let mut error = None;
        if !state.pending.is_empty() {
            error = write(store, clock, stats, state);
            if error.is_none() {
                retry = FIRST_RETRY;
            }
        }
        for ack in acks.drain(..) {
            let _ = ack.send(error.clone());
        }
        if stop {
            return;
        }
    }
}

/// One write of everything pending; what went wrong, if anything.
fn write(store: &Store, clock: &dyn Clock, stats: &Stats, state: &mut State) -> Option<FlushError> {
    let written = store.write(
        &state.pending,
        &state.mine,
        &mut state.last_known,
        clock.unix_now(),
    );
    match written {
        Ok(Written::Done) => {
            state.pending.clear();
            stats.writes.fetch_add(1, Ordering::AcqRel);
            let mut status = stats.status.lock();
            status.last_error = None;
            status.newer_file_version = None;
            None
        }
        Ok(Written::Newer(version)) => {
            let mut status = stats.status.lock();
            if status.newer_file_version != Some(version) {
                tracing::warn!(
                    path = %store.path().display(),
                    version,
                    supported = format::VERSION,
                    "the circuit breaker state file is of a newer format version; it is left as it is, and breakers are kept in memory only"
                );
            }
            status.newer_file_version = Some(version);
            Some((
                "write skipped",
                format!(
                    "the file is of format version {version}, newer than this build's {}; it is left as it is and breakers are kept in memory only",
                    format::VERSION
                ),
            ))
        }
        Err(e) => {
            let message = e.to_string();
            tracing::warn!(
                path = %store.path().display(),
                error = %message,
                "cannot write the circuit breaker state file; the previous file is kept, breakers go on in memory, and the write is tried again later"
            );
            stats.failed_writes.fetch_add(1, Ordering::AcqRel);
            stats.status.lock().last_error = Some(message.clone());
            Some(("write failed", message))
        }
    }
}
