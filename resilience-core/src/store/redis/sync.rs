//! The background sync: one thread per registry, with its own current-thread tokio runtime.

use super::script::{apply, invocation, Reply, SCRIPT};
use super::{redis_key, RedisStoreConfig};
use crate::store::gate::{Gate, Outbox};
use crate::store::StoreStats;
use parking_lot::{Condvar, Mutex};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A breaker the sync keeps up to date.
#[derive(Clone)]
struct Tracked {
    gate: Arc<Gate>,
    /// When its last round succeeded.
    last: Option<Instant>,
}

/// The channel on which the script announces every change of a shared breaker.
const EVENTS: &str = "rsl:v1:events";
/// Breakers per pipelined round trip (each trip has the command timeout).
const CHUNK: usize = 64;

struct Inner {
    config: RedisStoreConfig,
    /// By Redis key, with when each was last synced.
    gates: Mutex<HashMap<String, Tracked>>,
    /// The next round syncs every breaker (`sync_now`), not only the busy ones and those whose
    /// heartbeat is due.
    full: AtomicBool,
    stop: AtomicBool,
    wake: tokio::sync::Notify,
    started: AtomicU64,
    done: Mutex<u64>,
    done_signal: Condvar,
    rounds: AtomicU64,
    failed_rounds: AtomicU64,
    commands: AtomicU64,
    reachable: AtomicBool,
}

/// The handle of a registry's sync thread; dropping it stops the thread.
pub(crate) struct RedisSync {
    inner: Arc<Inner>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for RedisSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSync")
            .field("url", &self.inner.config.url)
            .field("instance_id", &self.inner.config.instance_id)
            .field("stats", &self.stats())
            .finish()
    }
}

impl RedisSync {
    /// Starts the sync thread. It never blocks: an unreachable server is a fallback, not an
    /// error.
    pub(crate) fn spawn(config: RedisStoreConfig) -> std::io::Result<Self> {
        let client = redis::Client::open(config.url.as_str())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
        let inner = Arc::new(Inner {
            config,
            gates: Mutex::new(HashMap::new()),
            full: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            wake: tokio::sync::Notify::new(),
            started: AtomicU64::new(0),
            done: Mutex::new(0),
            done_signal: Condvar::new(),
            rounds: AtomicU64::new(0),
            failed_rounds: AtomicU64::new(0),
            commands: AtomicU64::new(0),
            reachable: AtomicBool::new(false),
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let for_thread = Arc::clone(&inner);
        let thread = std::thread::Builder::new()
            .name("resilience-redis-sync".into())
            .spawn(move || runtime.block_on(run(for_thread, client)))?;
        Ok(RedisSync {
            inner,
            thread: Some(thread),
        })
    }

    /// The settings it runs with.
    pub(crate) fn config(&self) -> &RedisStoreConfig {
        &self.inner.config
    }

    /// Adds a breaker's gate to every round from now on.
    pub(crate) fn track(&self, gate: Arc<Gate>) {
        let key = redis_key(gate.service(), gate.operation());
        let inner = Arc::downgrade(&self.inner);
        gate.set_waker(Arc::new(move || {
            if let Some(inner) = inner.upgrade() {
                inner.wake.notify_one();
            }
        }));
        self.inner
            .gates
            .lock()
            .insert(key, Tracked { gate, last: None });
        self.inner.wake.notify_one();
    }

    /// Runs a round now and waits (at most `limit`) until it is over. Whether it reached the
    /// store.
    pub(crate) fn sync_now(&self, limit: Duration) -> bool {
        let target = self.inner.started.load(Ordering::Acquire) + 1;
        self.inner.full.store(true, Ordering::Release);
        self.inner.wake.notify_one();
        let deadline = std::time::Instant::now() + limit;
        let mut done = self.inner.done.lock();
        while *done < target {
            if self
                .inner
                .done_signal
                .wait_until(&mut done, deadline)
                .timed_out()
            {
                return false;
            }
        }
        drop(done);
        self.inner.reachable.load(Ordering::Acquire)
    }

    pub(crate) fn stats(&self) -> StoreStats {
        StoreStats {
            rounds: self.inner.rounds.load(Ordering::Relaxed),
            failed_rounds: self.inner.failed_rounds.load(Ordering::Relaxed),
            commands: self.inner.commands.load(Ordering::Relaxed),
            reachable: self.inner.reachable.load(Ordering::Relaxed),
        }
    }
}

impl Drop for RedisSync {
    fn drop(&mut self) {
        self.inner.stop.store(true, Ordering::Release);
        self.inner.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn run(inner: Arc<Inner>, client: redis::Client) {
    let script = redis::Script::new(SCRIPT);
    let mut connection: Option<ConnectionManager> = None;
    let mut subscribed = Arc::new(AtomicBool::new(false));
    let mut in_episode = false;
    while !inner.stop.load(Ordering::Acquire) {
        inner.started.fetch_add(1, Ordering::AcqRel);
        let outcome = round(&inner, &client, &mut connection, &script).await;
        let reached = !matches!(outcome, RoundOutcome::Unreachable);
        match outcome {
            RoundOutcome::Reached => {
                inner.rounds.fetch_add(1, Ordering::Relaxed);
            }
            RoundOutcome::Partly(failed) => {
                // The store answers, but not for these breakers (a chunk that timed out, a
                // record someone overwrote with another type): they alone fall back.
                inner.failed_rounds.fetch_add(1, Ordering::Relaxed);
                // One line for all the breakers that start an episode in this round (a chunk
                // that timed out is 64 of them), naming the first.
                let mut started = 0_usize;
                let mut first = None;
                for (gate, why) in failed {
                    if gate.fall_back(inner.config.fallback) {
                        started += 1;
                        first.get_or_insert((
                            crate::policy::key(gate.service(), gate.operation()),
                            why,
                        ));
                    }
                }
                if let Some((key, why)) = first {
                    tracing::warn!(
                        url = %inner.config.url,
                        breakers = started,
                        first = %key,
                        error = %why,
                        "the shared breaker store failed for some breakers; they fall back until it answers for them"
                    );
                }
            }
            RoundOutcome::Unreachable => {
                inner.failed_rounds.fetch_add(1, Ordering::Relaxed);
                let started = fall_back(&inner);
                if started && !in_episode {
                    tracing::warn!(
                        url = %inner.config.url,
                        fallback = ?inner.config.fallback,
                        "the shared breaker store is unreachable; breakers fall back until it is back"
                    );
                }
                in_episode = true;
            }
        }
        if reached {
            if in_episode {
                tracing::info!(
                    url = %inner.config.url,
                    "the shared breaker store is reachable again; shared state re-seeded where it was lost"
                );
                in_episode = false;
            }
            if !subscribed.load(Ordering::Acquire) {
                subscribed = subscribe(&inner, &client);
            }
        }
        inner.reachable.store(reached, Ordering::Release);
        {
            let mut done = inner.done.lock();
            *done = inner.started.load(Ordering::Acquire);
            inner.done_signal.notify_all();
        }
        if inner.stop.load(Ordering::Acquire) {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep(inner.config.sync_interval) => {}
            _ = inner.wake.notified() => {}
        }
    }
}

/// Listens for other processes' changes and wakes the sync for each (in a task of its own, so
/// the rounds never wait on it). Returns the flag that says whether it still listens.
fn subscribe(inner: &Arc<Inner>, client: &redis::Client) -> Arc<AtomicBool> {
    use futures_util::StreamExt;
    let listening = Arc::new(AtomicBool::new(true));
    let flag = Arc::clone(&listening);
    let client = client.clone();
    let inner = Arc::clone(inner);
    let timeout = inner.config.command_timeout.max(Duration::from_millis(200));
    tokio::spawn(async move {
        let pubsub = tokio::time::timeout(timeout, async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(EVENTS).await?;
            Ok::<_, redis::RedisError>(pubsub)
        })
        .await;
        if let Ok(Ok(mut pubsub)) = pubsub {
            let mut messages = pubsub.on_message();
            while let Some(message) = messages.next().await {
                if inner.stop.load(Ordering::Acquire) {
                    break;
                }
                let Ok(key) = message.get_payload::<String>() else {
                    continue;
                };
                let gate = inner.gates.lock().get(&key).map(|t| Arc::clone(&t.gate));
                if let Some(gate) = gate {
                    // Its next round learns what changed (a round of our own included, which
                    // costs one idle round: cheaper than telling our events apart).
                    gate.wake();
                }
            }
        }
        flag.store(false, Ordering::Release);
    });
    listening
}

/// What one round reached.
enum RoundOutcome {
    /// The store answered for every breaker of the round.
    Reached,
    /// The store answered, but not for these breakers (each with why).
    Partly(Vec<(Arc<Gate>, redis::RedisError)>),
    /// No connection: every breaker falls back.
    Unreachable,
}

/// One round for every tracked breaker that needs one.
async fn round(
    inner: &Inner,
    client: &redis::Client,
    connection: &mut Option<ConnectionManager>,
    script: &redis::Script,
) -> RoundOutcome {
    // Busy breakers (something to send, or a fleet decision in force), those another process
    // announced a change of, and those whose heartbeat is due; all of them for `sync_now`.
    let full = inner.full.swap(false, Ordering::AcqRel);
    let heartbeat = inner.config.heartbeat();
    let started = Instant::now();
    let gates: Vec<(Arc<Gate>, String)> = {
        let mut gates = inner.gates.lock();
        gates.retain(|_, t| !t.gate.is_orphan());
        gates
            .iter()
            .filter(|(_, t)| {
                full || t.gate.needs_round()
                    || t.last
                        .is_none_or(|at| started.duration_since(at) >= heartbeat)
            })
            .map(|(key, t)| (Arc::clone(&t.gate), key.clone()))
            .collect()
    };
    let timeout = inner.config.command_timeout;
    if connection.is_none() {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(timeout);
        match tokio::time::timeout(
            timeout,
            ConnectionManager::new_with_config(client.clone(), config),
        )
        .await
        {
            Ok(Ok(c)) => *connection = Some(c),
            _ => return RoundOutcome::Unreachable,
        }
    }
    let Some(conn) = connection.as_mut() else {
        return RoundOutcome::Unreachable;
    };
    if gates.is_empty() {
        let ping: Result<Result<String, _>, _> =
            tokio::time::timeout(timeout, redis::cmd("PING").query_async(conn)).await;
        return match ping {
            Ok(Ok(_)) => RoundOutcome::Reached,
            _ => RoundOutcome::Unreachable,
        };
    }
    let mut failed = Vec::new();
    let mut answered = false;
    for chunk in gates.chunks(CHUNK) {
        let outboxes: Vec<Outbox> = chunk.iter().map(|(g, _)| g.take_outbox()).collect();
        let mut pipe = redis::pipe();
        // One breaker's error (its record overwritten with another type, say) is its own:
        // the others of the chunk still get their answers.
        pipe.ignore_errors();
        for ((_, key), outbox) in chunk.iter().zip(&outboxes) {
            pipe.add_command(invocation(&inner.config, script, key, outbox));
        }
        let mut answer = query(conn, &pipe, timeout).await;
        let unknown_script = |r: &redis::RedisResult<Reply>| matches!(r, Err(e) if e.to_string().to_ascii_uppercase().contains("NOSCRIPT"));
        if matches!(&answer, Ok(replies) if replies.iter().any(unknown_script)) {
            let loaded =
                tokio::time::timeout(timeout, script.prepare_invoke().load_async(conn)).await;
            if matches!(loaded, Ok(Ok(_))) {
                answer = query(conn, &pipe, timeout).await;
            }
        }
        inner
            .commands
            .fetch_add(chunk.len() as u64, Ordering::Relaxed);
        let replies = match answer {
            Ok(replies) if replies.len() == chunk.len() => {
                answered = true;
                replies
            }
            Ok(replies) => {
                answered = true;
                let why = format!("{} answers for {} commands", replies.len(), chunk.len());
                (0..chunk.len())
                    .map(|_| {
                        Err(redis::RedisError::from((
                            redis::ErrorKind::Io,
                            "short answer",
                            why.clone(),
                        )))
                    })
                    .collect()
            }
            Err(e) => {
                tracing::debug!(error = %e, "a chunk of the shared breaker store's round failed");
                (0..chunk.len()).map(|_| Err(e.clone())).collect()
            }
        };
        let mut synced = Vec::with_capacity(chunk.len());
        for (((gate, key), reply), outbox) in chunk.iter().zip(replies).zip(outboxes) {
            match reply {
                Ok(reply) => {
                    let voted_in = outbox.seed.map(|seed| seed.generation);
                    apply(gate, reply, inner.config.probe_lease, voted_in);
                    synced.push(key);
                }
                Err(e) => {
                    gate.restore(outbox);
                    failed.push((Arc::clone(gate), e));
                }
            }
        }
        let mut tracked = inner.gates.lock();
        for key in synced {
            if let Some(t) = tracked.get_mut(key) {
                t.last = Some(started);
            }
        }
    }
    match (failed.is_empty(), answered) {
        (true, _) => RoundOutcome::Reached,
        (false, true) => RoundOutcome::Partly(failed),
        (false, false) => RoundOutcome::Unreachable,
    }
}

async fn query(
    conn: &mut ConnectionManager,
    pipe: &redis::Pipeline,
    timeout: Duration,
) -> Result<Vec<redis::RedisResult<Reply>>, redis::RedisError> {
    match tokio::time::timeout(timeout, pipe.query_async(conn)).await {
        Ok(answer) => answer,
        Err(_) => Err(redis::RedisError::from((redis::ErrorKind::Io, "timed out"))),
    }
}

/// Every gate falls back; whether any of them started a new episode.
fn fall_back(inner: &Inner) -> bool {
    let gates: Vec<Arc<Gate>> = inner
        .gates
        .lock()
        .values()
        .map(|t| Arc::clone(&t.gate))
        .collect();
    let mut started = false;
    for gate in gates {
        started |= gate.fall_back(inner.config.fallback);
    }
    started
}
