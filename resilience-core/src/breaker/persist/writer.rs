//! The background writer. Breakers send their changed records down a channel (never blocking,
//! never touching the disk); one thread per state file gathers everything queued, writes it in
//! one go, and repeats. A write that fails keeps its records for the next attempt, which comes
//! with the next change or flush.

use super::format::{Record, Records};
use super::store::Store;
use super::PersistStats;
use crate::breaker::PersistError;
use crate::Clock;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

enum Msg {
    Update {
        service: Arc<str>,
        operation: Arc<str>,
        record: Record,
    },
    Flush(SyncSender<Option<String>>),
    Stop,
}

#[derive(Debug, Default)]
struct Stats {
    writes: AtomicU64,
    failed_writes: AtomicU64,
    last_error: Mutex<Option<String>>,
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
    pub(crate) fn spawn(
        store: Store,
        clock: Arc<dyn Clock>,
    ) -> Result<(Writer, Sink), PersistError> {
        let (tx, rx) = mpsc::channel();
        let stats = Arc::new(Stats::default());
        let path = store.path().to_path_buf();
        let thread_stats = Arc::clone(&stats);
        let thread = std::thread::Builder::new()
            .name("resilience-breaker-state".to_owned())
            .spawn(move || run(&store, &*clock, &rx, &thread_stats))
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

    /// Waits until every change queued so far is written, or the write failed.
    pub(crate) fn flush(&self) -> Result<(), PersistError> {
        let (ack_tx, ack_rx) = mpsc::sync_channel(1);
        let failed =
            |msg: String| PersistError::new(&self.path, "write failed", io::Error::other(msg));
        if self.tx.send(Msg::Flush(ack_tx)).is_err() {
            return Err(failed("the writer thread has stopped".to_owned()));
        }
        match ack_rx.recv() {
            Ok(None) => Ok(()),
            Ok(Some(error)) => Err(failed(error)),
            Err(_) => Err(failed("the writer thread has stopped".to_owned())),
        }
    }

    pub(crate) fn stats(&self) -> PersistStats {
        PersistStats {
            writes: self.stats.writes.load(Ordering::Acquire),
            failed_writes: self.stats.failed_writes.load(Ordering::Acquire),
            last_error: self
                .stats
                .last_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        }
    }
}

impl Drop for Writer {
    /// Writes what is still queued, then stops the thread.
    fn drop(&mut self) {
        let _ = self.tx.send(Msg::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(store: &Store, clock: &dyn Clock, rx: &Receiver<Msg>, stats: &Stats) {
    let mut pending = Records::new();
    let mut acks = Vec::new();
    loop {
        let Ok(first) = rx.recv() else { return };
        let mut stop = false;
        // Everything queued while the last write ran goes into this one.
        for msg in std::iter::once(first).chain(rx.try_iter()) {
            match msg {
                Msg::Update {
                    service,
                    operation,
                    record,
                } => {
                    pending
                        .entry(service.to_string())
                        .or_default()
                        .insert(operation.to_string(), record);
                }
                Msg::Flush(ack) => acks.push(ack),
                Msg::Stop => stop = true,
            }
        }
        let mut error = None;
        if !pending.is_empty() {
            match store.write(&pending, clock.unix_now()) {
                Ok(()) => {
                    pending.clear();
                    stats.writes.fetch_add(1, Ordering::AcqRel);
                    *stats
                        .last_error
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner) = None;
                }
                Err(e) => {
                    let message = e.to_string();
                    tracing::warn!(
                        path = %store.path().display(),
                        error = %message,
                        "cannot write the circuit breaker state file; the previous file is kept and breakers go on in memory"
                    );
                    stats.failed_writes.fetch_add(1, Ordering::AcqRel);
                    *stats
                        .last_error
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner) = Some(message.clone());
                    error = Some(message);
                }
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
