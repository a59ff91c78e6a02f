//! Time as the runtime sees it: a monotonic clock, a wall clock and sleeping, behind one trait so
//! tests drive time by hand and never sleep.

use parking_lot::{Mutex, MutexGuard};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A future returned by [`Clock::sleep_async`].
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// The source of time and the way to wait, owned by a manager or a registry.
///
/// Only failure paths and non-closed breakers read it: a successful call through a closed breaker
/// never does.
///
/// ```
/// use resilience_core::{Clock, ManualClock};
/// use std::time::Duration;
///
/// let clock = ManualClock::new();
/// clock.sleep(Duration::from_secs(2)); // returns at once, and moves time forward
/// assert_eq!(clock.now(), Duration::from_secs(2));
/// assert_eq!(clock.sleeps(), [Duration::from_secs(2)]);
/// ```
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// Monotonic time since an origin fixed by the clock.
    fn now(&self) -> Duration;
    /// Monotonic time that may lag [`now`](Clock::now) by a few milliseconds, for accounting
    /// that must not read the clock on every call (retry budgets' deposits). The default is
    /// `now()`; [`SystemClock`] reads a time a background thread refreshes every 20 ms.
    ///
    /// ```
    /// use resilience_core::{Clock, ManualClock};
    /// use std::time::Duration;
    /// let clock = ManualClock::new();
    /// clock.advance(Duration::from_secs(1));
    /// assert_eq!(clock.coarse_now(), clock.now());
    /// ```
    fn coarse_now(&self) -> Duration {
        self.now()
    }
    /// Wall-clock time since the Unix epoch; used only to persist breaker deadlines.
    fn unix_now(&self) -> Duration;
    /// Blocks the calling thread for `duration`.
    fn sleep(&self, duration: Duration);
    /// Waits for `duration` without blocking the executor.
    fn sleep_async(&self, duration: Duration) -> Sleep;
}

/// The real clock: `Instant` for monotonic time, `SystemTime` for wall time, `thread::sleep`,
/// and for async sleeps tokio's timer with the `tokio` feature (so tokio's paused test time
/// applies), else `futures-timer`'s (one timer thread for the whole process, on any executor).
///
/// ```
/// use resilience_core::{Clock, SystemClock};
/// let clock = SystemClock;
/// let a = clock.now();
/// assert!(clock.now() >= a);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

fn process_origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

/// The coarse time of [`SystemClock`]: read with one relaxed load, refreshed by one thread for
/// the whole process, started by the first read (most programs never read it: only retry
/// budgets do).
mod coarse {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Once;
    use std::time::Duration;

    /// How often the thread refreshes the time: well under a retry budget's window (a tenth of
    /// its `ttl`, at least 100 ms).
    const TICK: Duration = Duration::from_millis(20);

    static NANOS: AtomicU64 = AtomicU64::new(0);
    static START: Once = Once::new();

    pub(super) fn now(exact: impl Fn() -> Duration + Send + 'static) -> Duration {
        let nanos = NANOS.load(Ordering::Relaxed);
        if nanos != 0 {
            return Duration::from_nanos(nanos);
        }
        let first = exact();
        START.call_once(|| {
            NANOS.store(nanos_of(first), Ordering::Relaxed);
            // A failure to start the thread leaves the time where it is: budgets then see it
            // stand still, which only makes entries count longer, never lost.
            let _ = std::thread::Builder::new()
                .name("resilience-coarse-clock".into())
                .spawn(move || loop {
                    std::thread::sleep(TICK);
                    NANOS.store(nanos_of(exact()), Ordering::Relaxed);
                });
        });
        first
    }

    fn nanos_of(d: Duration) -> u64 {
        // Never 0, which means "not started".
        u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1)
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        let origin = process_origin();
        #[cfg(feature = "tokio")]
        let now = tokio::time::Instant::now().into_std();
        #[cfg(not(feature = "tokio"))]
        let now = Instant::now();
        now.saturating_duration_since(origin)
    }

    fn coarse_now(&self) -> Duration {
        coarse::now(|| SystemClock.now())
    }

    fn unix_now(&self) -> Duration {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
    }

    fn sleep(&self, duration: Duration) {
        std::thread::sleep(duration);
    }

    #[cfg(feature = "tokio")]
    fn sleep_async(&self, duration: Duration) -> Sleep {
        Box::pin(tokio::time::sleep(duration))
    }

    /// Without tokio: `futures-timer`, whose one timer thread serves every sleep of the
    /// process (a thread per sleep would make many waiting calls cost many threads).
    #[cfg(not(feature = "tokio"))]
    fn sleep_async(&self, duration: Duration) -> Sleep {
        Box::pin(futures_timer::Delay::new(duration))
    }
}

/// A clock that moves only when told to. Sleeping on it returns at once, records the duration and
/// moves time forward by it, so retry tests assert the exact schedule without waiting.
///
/// Clones share one timeline: keep a clone in the test and give one to the manager.
///
/// ```
/// use resilience_core::{Clock, ManualClock};
/// use std::time::Duration;
///
/// let clock = ManualClock::new();
/// let shared = clock.clone();
/// clock.advance(Duration::from_millis(1500));
/// assert_eq!(shared.now(), Duration::from_millis(1500));
/// ```
#[derive(Clone, Debug)]
pub struct ManualClock {
    inner: Arc<ManualInner>,
}

#[derive(Debug)]
struct ManualInner {
    elapsed_nanos: AtomicU64,
    unix_origin: Duration,
    sleeps: Mutex<Vec<Duration>>,
}

impl ManualClock {
    /// A clock at monotonic time zero whose wall clock reads 2026-01-01T00:00:00Z.
    pub fn new() -> Self {
        Self::with_unix_origin(Duration::from_secs(1_767_225_600))
    }

    /// A clock at monotonic time zero whose wall clock reads `unix_origin` since the epoch.
    ///
    /// ```
    /// use resilience_core::{Clock, ManualClock};
    /// use std::time::Duration;
    /// let clock = ManualClock::with_unix_origin(Duration::from_secs(1000));
    /// clock.advance(Duration::from_secs(5));
    /// assert_eq!(clock.unix_now(), Duration::from_secs(1005));
    /// ```
    pub fn with_unix_origin(unix_origin: Duration) -> Self {
        ManualClock {
            inner: Arc::new(ManualInner {
                elapsed_nanos: AtomicU64::new(0),
                unix_origin,
                sleeps: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Moves time forward by `by`.
    pub fn advance(&self, by: Duration) {
        let nanos = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        let _ = self
            .inner
            .elapsed_nanos
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                Some(n.saturating_add(nanos))
            });
    }

    /// Every duration slept on this clock so far, in order.
    pub fn sleeps(&self) -> Vec<Duration> {
        self.lock_sleeps().clone()
    }

    /// Forgets the recorded sleeps (time stays where it is).
    ///
    /// ```
    /// use resilience_core::{Clock, ManualClock};
    /// use std::time::Duration;
    /// let clock = ManualClock::new();
    /// clock.sleep(Duration::from_secs(1));
    /// clock.clear_sleeps();
    /// assert!(clock.sleeps().is_empty());
    /// ```
    pub fn clear_sleeps(&self) {
        self.lock_sleeps().clear();
    }

    fn lock_sleeps(&self) -> MutexGuard<'_, Vec<Duration>> {
        self.inner.sleeps.lock()
    }

    fn record_sleep(&self, duration: Duration) {
        self.lock_sleeps().push(duration);
        self.advance(duration);
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        Duration::from_nanos(self.inner.elapsed_nanos.load(Ordering::Acquire))
    }

    fn unix_now(&self) -> Duration {
        self.inner.unix_origin.saturating_add(self.now())
    }

    fn sleep(&self, duration: Duration) {
        self.record_sleep(duration);
    }

    fn sleep_async(&self, duration: Duration) -> Sleep {
        self.record_sleep(duration);
        Box::pin(std::future::ready(()))
    }
}

/// The timer used without the `tokio` feature. Each test polls its sleeps by hand and never
/// waits for one to end.
#[cfg(all(test, not(feature = "tokio")))]
mod without_tokio {
    use super::*;
    use std::task::{Context, Poll, Waker};

    fn poll_once(sleep: &mut Sleep) -> Poll<()> {
        sleep.as_mut().poll(&mut Context::from_waker(Waker::noop()))
    }

    /// Threads of this process, from `/proc/self/status`.
    #[cfg(target_os = "linux")]
    fn threads() -> usize {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|status| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix("Threads:"))
                    .and_then(|n| n.trim().parse().ok())
            })
            .expect("/proc/self/status has a Threads line")
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn pending_async_sleeps_share_one_timer_thread() {
        // The first sleep starts the timer's thread, once for the process.
        let mut first = SystemClock.sleep_async(Duration::from_secs(3600));
        assert!(poll_once(&mut first).is_pending());
        let before = threads();
        let mut sleeps: Vec<Sleep> = (0..100)
            .map(|_| SystemClock.sleep_async(Duration::from_secs(3600)))
            .collect();
        for sleep in &mut sleeps {
            assert!(poll_once(sleep).is_pending());
        }
        // A thread per sleep would add 100; the margin is for tests running alongside.
        let added = threads().saturating_sub(before);
        assert!(added < 50, "100 pending sleeps added {added} threads");
    }

    #[test]
    fn an_endless_async_sleep_is_pending_not_a_panic() {
        let mut sleep = SystemClock.sleep_async(Duration::MAX);
        assert!(poll_once(&mut sleep).is_pending());
    }
}
