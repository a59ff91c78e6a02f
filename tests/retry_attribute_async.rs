//! Behaviour of `#[retry]` on `async fn`: attempts, per-attempt timeouts on tokio's paused
//! clock, `Send` futures that `tokio::spawn` accepts, and async methods.

use resilience_core::{retry, ManualClock, RetryManager};
use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn manager(clock: &ManualClock) -> RetryManager {
    RetryManager::builder()
        .clock(clock.clone())
        .build()
        .expect("valid manager")
}

fn reset() -> io::Error {
    io::ErrorKind::ConnectionReset.into()
}

#[retry(component = "async", operation = "flaky", max_attempts = 4, initial_delay = "50ms",
        backoff_factor = 3, jitter_factor = 0, manager = m)]
async fn flaky(m: &RetryManager, calls: &AtomicU32, succeed_on: u32) -> Result<u32, io::Error> {
    let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
    tokio::task::yield_now().await;
    if n < succeed_on {
        return Err(reset());
    }
    Ok(n)
}

#[tokio::test]
async fn async_fn_is_retried_with_waits_on_the_managers_clock() {
    let clock = ManualClock::new();
    let m = manager(&clock);
    let calls = AtomicU32::new(0);
    assert_eq!(flaky(&m, &calls, 3).await.unwrap(), 3);
    assert_eq!(
        clock.sleeps(),
        [Duration::from_millis(50), Duration::from_millis(150)]
    );
    let err = flaky(&m, &calls, 100).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
    assert_eq!(m.metrics().get("async", "flaky").unwrap().attempts, 3 + 4);
}

#[retry(component = "async", operation = "timeout", max_attempts = 3, initial_delay = 0,
        timeout = "1s", manager = m)]
async fn slow_then_fast(m: &RetryManager, calls: &AtomicU32) -> Result<&'static str, io::Error> {
    if calls.fetch_add(1, Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_secs(60)).await; // paused time: no real wait
    }
    Ok("done")
}

#[tokio::test(start_paused = true)]
async fn an_attempt_past_its_timeout_fails_as_a_timeout_and_is_retried() {
    let m = manager(&ManualClock::new());
    let calls = AtomicU32::new(0);
    let started = tokio::time::Instant::now();
    assert_eq!(slow_then_fast(&m, &calls).await.unwrap(), "done");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    // The first attempt was cut at the 1 s limit, not left to run its 60 s.
    assert_eq!(started.elapsed(), Duration::from_secs(1));
    let metrics = m.metrics();
    let op = metrics.get("async", "timeout").unwrap();
    assert_eq!(op.failures_by_category.get("timeout"), Some(&1), "{op:?}");
}

#[retry(component = "async", operation = "always_slow", max_attempts = 2, initial_delay = 0,
        timeout = 0.25, manager = m)]
async fn always_slow(m: &RetryManager) -> Result<(), io::Error> {
    tokio::time::sleep(Duration::from_secs(5)).await; // paused time: no real wait
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn every_attempt_timing_out_returns_the_timeout_error() {
    let m = manager(&ManualClock::new());
    let err = always_slow(&m).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    assert_eq!(m.metrics().get("async", "always_slow").unwrap().attempts, 2);
}

#[retry(component = "async", operation = "spawned", max_attempts = 3, initial_delay = 0,
        manager = Arc::clone(&m))]
async fn spawned(m: Arc<RetryManager>, calls: Arc<AtomicU32>) -> Result<u32, io::Error> {
    let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
    tokio::task::yield_now().await;
    if n < 2 {
        return Err(reset());
    }
    Ok(n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_async_fn_can_be_spawned() {
    fn is_send<T: Send>(_: &T) {}
    let m = Arc::new(manager(&ManualClock::new()));
    let calls = Arc::new(AtomicU32::new(0));
    let future = spawned(Arc::clone(&m), Arc::clone(&calls));
    is_send(&future);
    let n = tokio::spawn(future)
        .await
        .expect("task")
        .expect("retried to success");
    assert_eq!(n, 2);
    assert_eq!(m.metrics().get("async", "spawned").unwrap().attempts, 2);
}

struct Repo {
    manager: RetryManager,
    rows: Vec<u32>,
}

impl Repo {
    #[retry(component = "repo", operation = "insert", max_attempts = 4, initial_delay = 0,
            manager = &self.manager)]
    async fn insert(&mut self, row: u32) -> Result<usize, io::Error> {
        self.rows.push(row);
        tokio::task::yield_now().await;
        if self.rows.len() < 3 {
            return Err(reset());
        }
        Ok(self.rows.len())
    }

    #[retry(component = "repo", operation = "count", manager = &self.manager)]
    async fn count(&self) -> Result<usize, io::Error> {
        // `?` inside the attempt converts into the declared error type.
        let n: usize = self.rows.len().to_string().parse().map_err(|_| reset())?;
        Ok(n)
    }
}

#[tokio::test]
async fn async_methods_are_retried_with_their_receiver() {
    let mut repo = Repo {
        manager: manager(&ManualClock::new()),
        rows: Vec::new(),
    };
    assert_eq!(repo.insert(9).await.unwrap(), 3);
    assert_eq!(repo.rows, [9, 9, 9]);
    assert_eq!(repo.count().await.unwrap(), 3);
    // The futures of `&mut self` methods stay Send too.
    fn is_send<T: Send>(_: T) {}
    is_send(repo.insert(1));
}
