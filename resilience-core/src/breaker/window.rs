//! The sliding windows of the failure-rate and slow-call rules (resilience4j's semantics).
//!
//! A breaker without a rate rule has none of this: its machine holds `None`, and its hot path
//! never comes here. With a rule, every call that ends closed is a call of the window, so a
//! success must be recorded (a write per call):
//!
//! - A count window (the exact last N calls) is a ring of one byte per call under the breaker's
//!   mutex: calls serialize on it.
//! - A time window (the calls that ended in the last D) is a ring of per-bucket counts under the
//!   mutex, plus [`Stripes`]: one cache line per stripe of threads, each counting the ordinary
//!   successes of the current bucket without the mutex. Whatever takes the mutex (a failure, a
//!   slow call, the first success of a stripe in a new bucket, a status) folds the stripes into
//!   the ring first, so the ring is exact under the mutex. A success may skip the mutex only
//!   while no success can open the breaker (see [`Rates::armed`]): the rule is checked after
//!   every recorded call, successes included.

use super::machine::Ticket;
use crate::policy::{CircuitBreakerConfig, Window};
use crate::OpenCause;
use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// A count window keeps at most this many calls (one byte each); a larger one acts as this size,
/// so no configuration can make a breaker allocate gigabytes.
pub(crate) const MAX_WINDOW_CALLS: u32 = 1 << 20;

/// A time window keeps at most this many buckets: one-second buckets up to an hour, coarser
/// buckets beyond (a day's window in one-second buckets would be two megabytes per breaker).
pub(crate) const MAX_BUCKETS: u64 = 3600;

/// How one call ended, as the window counts it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Mark {
    pub(crate) failure: bool,
    pub(crate) slow: bool,
}

/// Calls, failures and slow calls in the window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    pub(crate) calls: u64,
    pub(crate) failures: u64,
    pub(crate) slow: u64,
}

impl Tally {
    fn rate(part: u64, calls: u64) -> f64 {
        if calls == 0 {
            0.0
        } else {
            part as f64 / calls as f64
        }
    }

    pub(crate) fn failure_rate(&self) -> f64 {
        Self::rate(self.failures, self.calls)
    }

    pub(crate) fn slow_call_rate(&self) -> f64 {
        Self::rate(self.slow, self.calls)
    }
}

/// The rules and the window of one breaker with a rate rule.
#[derive(Debug)]
pub(crate) struct Rates {
    /// The failure-rate threshold; `None` when only the slow-call rule is set (failures then
    /// open the breaker by the consecutive rule).
    failure_threshold: Option<f64>,
    /// The slow-call duration and rate threshold.
    slow: Option<(Duration, f64)>,
    /// `minimum_calls`, capped at the size of a count window.
    minimum: u64,
    counts: Counts,
    /// Whether a success may open the breaker (the window holds fewer than `minimum` calls and
    /// a failure or a slow call): successes then take the mutex.
    armed: bool,
    /// The failure rate, slow-call rate and calls when a rate rule last opened the breaker.
    pub(crate) opened_rates: (f64, f64, u64),
}

#[derive(Debug)]
enum Counts {
    Count(CountWindow),
    Time(TimeWindow),
}

/// A rate in `(0, 1]`; an invalid one (already logged by the configuration's repair) is brought
/// to the nearest valid one, NaN to 1.
fn sane_rate(rate: f64) -> f64 {
    if rate.is_nan() {
        1.0
    } else {
        rate.clamp(f64::MIN_POSITIVE, 1.0)
    }
}

impl Rates {
    /// The rate rules of `config`, with an empty window; `None` without a rate rule. `stripes`
    /// gives the breaker's lock-free counters, asked for only by a time window.
    pub(crate) fn from_config(
        config: &CircuitBreakerConfig,
        stripes: &dyn Fn() -> Arc<Stripes>,
    ) -> Option<Box<Rates>> {
        if config.failure_rate.is_none() && config.slow_call.is_none() {
            return None;
        }
        let rule = config.failure_rate.unwrap_or_default();
        let slow = config.slow_call.map(|s| {
            (
                s.duration.max(Duration::from_nanos(1)),
                sane_rate(s.rate_threshold),
            )
        });
        let (counts, size) = match rule.window {
            Window::Count(n) => {
                let size = n.clamp(1, MAX_WINDOW_CALLS);
                (Counts::Count(CountWindow::new(size)), u64::from(size))
            }
            Window::Time(d) => {
                let stripes = stripes();
                let window = TimeWindow::new(d, stripes);
                let slow_nanos = slow.map_or(u64::MAX, |(d, _)| nanos(d));
                window.stripes.configure(window.bucket_nanos, slow_nanos);
                (Counts::Time(window), u64::MAX)
            }
        };
        Some(Box::new(Rates {
            failure_threshold: config.failure_rate.map(|r| sane_rate(r.threshold)),
            slow,
            minimum: u64::from(rule.minimum_calls.max(1)).min(size),
            counts,
            armed: false,
            opened_rates: (0.0, 0.0, 0),
        }))
    }

    /// Whether `a` and `b` give the same rules and window (then a reconfiguration keeps it).
    pub(crate) fn same_rules(a: &CircuitBreakerConfig, b: &CircuitBreakerConfig) -> bool {
        a.failure_rate == b.failure_rate && a.slow_call == b.slow_call
    }

    /// Whether failures open the breaker by their rate (rather than the consecutive rule).
    pub(crate) fn has_failure_rate(&self) -> bool {
        self.failure_threshold.is_some()
    }

    /// Whether calls are timed (the slow-call rule is set).
    pub(crate) fn timed(&self) -> bool {
        self.slow.is_some()
    }

    /// Whether a success may be counted without the mutex: a time window that no success can
    /// trip.
    pub(crate) fn lock_free_successes(&self) -> bool {
        matches!(self.counts, Counts::Time(_)) && !self.armed
    }

    /// Whether the window needs the time of a call's end (a time window).
    pub(crate) fn needs_time(&self) -> bool {
        matches!(self.counts, Counts::Time(_))
    }

    /// Whether a call admitted with `ticket` that ended at `now` was slow.
    pub(crate) fn is_slow(&self, ticket: Ticket, now: Option<Duration>) -> bool {
        match (self.slow, ticket, now) {
            (Some((limit, _)), Ticket::Timed(start), Some(now)) => {
                now.saturating_sub(Duration::from_nanos(start)) >= limit
            }
            _ => false,
        }
    }

    /// Counts one call that ended at `now` (needed by a time window), then checks the rules:
    /// `Some` when they open the breaker, with the cause.
    pub(crate) fn record(&mut self, mark: Mark, now: Option<Duration>) -> Option<OpenCause> {
        match &mut self.counts {
            Counts::Count(w) => w.push(mark),
            Counts::Time(w) => w.push(mark, now.unwrap_or_default()),
        }
        let tally = self.tally_mut(now);
        let cause = self.check(&tally);
        if cause.is_some() {
            self.opened_rates = (tally.failure_rate(), tally.slow_call_rate(), tally.calls);
        }
        self.armed = tally.calls < self.minimum
            && ((self.failure_threshold.is_some() && tally.failures > 0)
                || (self.slow.is_some() && tally.slow > 0));
        cause
    }

    fn check(&self, tally: &Tally) -> Option<OpenCause> {
        if tally.calls == 0 || tally.calls < self.minimum {
            return None;
        }
        if let Some(threshold) = self.failure_threshold {
            if tally.failure_rate() >= threshold {
                return Some(OpenCause::FailureRate);
            }
        }
        match self.slow {
            Some((_, threshold)) if tally.slow_call_rate() >= threshold => {
                Some(OpenCause::SlowCallRate)
            }
            _ => None,
        }
    }

    /// The window as of `now`, folding the stripes in.
    fn tally_mut(&mut self, now: Option<Duration>) -> Tally {
        match &mut self.counts {
            Counts::Count(w) => w.tally,
            Counts::Time(w) => {
                let i = w.bucket_of(now.unwrap_or_default());
                w.fold(i);
                w.tally(i, false)
            }
        }
    }

    /// The window as of `now`, changing nothing (stripes included by reading them).
    pub(crate) fn tally(&self, now: Duration) -> Tally {
        match &self.counts {
            Counts::Count(w) => w.tally,
            Counts::Time(w) => w.tally(w.bucket_of(now), true),
        }
    }

    /// Empties the window (entering CLOSED).
    pub(crate) fn clear(&mut self) {
        match &mut self.counts {
            Counts::Count(w) => *w = CountWindow::new(w.size),
            Counts::Time(w) => w.clear(),
        }
        self.armed = false;
    }
}

/// The exact last `size` calls, one byte each (bit 0 failure, bit 1 slow).
#[derive(Debug)]
struct CountWindow {
    size: u32,
    marks: VecDeque<u8>,
    tally: Tally,
}

impl CountWindow {
    fn new(size: u32) -> Self {
        CountWindow {
            size,
            // Grown as calls come: a large window that sees few calls stays small.
            marks: VecDeque::new(),
            tally: Tally::default(),
        }
    }

    fn push(&mut self, mark: Mark) {
        if self.marks.len() >= self.size as usize {
            if let Some(old) = self.marks.pop_front() {
                self.tally.calls -= 1;
                self.tally.failures -= u64::from(old & 1);
                self.tally.slow -= u64::from(old >> 1);
            }
        }
        self.marks
            .push_back(u8::from(mark.failure) | (u8::from(mark.slow) << 1));
        self.tally.calls += 1;
        self.tally.failures += u64::from(mark.failure);
        self.tally.slow += u64::from(mark.slow);
    }
}

/// One bucket of a time window: the calls that ended in bucket `index` (time / bucket length).
#[derive(Clone, Copy, Debug, Default)]
struct Bucket {
    index: u64,
    calls: u32,
    failures: u32,
    slow: u32,
}

/// The calls that ended in the last `buckets.len()` buckets, the current one included.
#[derive(Debug)]
struct TimeWindow {
    bucket_nanos: u64,
    buckets: Box<[Bucket]>,
    stripes: Arc<Stripes>,
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl TimeWindow {
    fn new(length: Duration, stripes: Arc<Stripes>) -> Self {
        let length = nanos(length).max(1);
        // One-second buckets, a tenth of the window when it is shorter than ten seconds, and
        // never more than MAX_BUCKETS of them.
        let second = 1_000_000_000;
        let bucket = if length < 10 * second {
            (length / 10).max(1)
        } else {
            second.max(length.div_ceil(MAX_BUCKETS))
        };
        let count = length.div_ceil(bucket).clamp(1, MAX_BUCKETS);
        let window = TimeWindow {
            bucket_nanos: bucket,
            buckets: vec![Bucket::default(); count as usize].into_boxed_slice(),
            stripes,
        };
        window.stripes.clear();
        window
    }

    fn bucket_of(&self, now: Duration) -> u64 {
        nanos(now) / self.bucket_nanos
    }

    /// Whether bucket `k` is in the window that ends with bucket `current`.
    fn holds(&self, current: u64, k: u64) -> bool {
        k <= current && current - k < self.buckets.len() as u64
    }

    fn add(&mut self, k: u64, calls: u32, failures: u32, slow: u32, current: u64) {
        if !self.holds(current, k) {
            return;
        }
        let n = self.buckets.len() as u64;
        let b = &mut self.buckets[(k % n) as usize];
        if b.index != k {
            if b.index > k && b.calls > 0 {
                return; // the slot holds a newer bucket: `k` is older than the window
            }
            *b = Bucket {
                index: k,
                ..Bucket::default()
            };
        }
        b.calls = b.calls.saturating_add(calls);
        b.failures = b.failures.saturating_add(failures);
        b.slow = b.slow.saturating_add(slow);
    }

    fn push(&mut self, mark: Mark, now: Duration) {
        let i = self.bucket_of(now);
        self.fold(i);
        self.add(i, 1, u32::from(mark.failure), u32::from(mark.slow), i);
    }

    /// Moves the stripes' successes into the ring and stamps every stripe with bucket `i`.
    fn fold(&mut self, i: u64) {
        self.stripes.stamp(i);
        let stamp = Stripes::pack(i, 0);
        for s in 0..self.stripes.stripes.len() {
            let old = self.stripes.stripes[s].0.swap(stamp, Ordering::AcqRel);
            let count = old as u32;
            if count > 0 {
                let k = Stripes::unpack_index(old, i);
                self.add(k, count, 0, 0, i);
            }
        }
    }

    fn tally(&self, i: u64, with_stripes: bool) -> Tally {
        let mut t = Tally::default();
        for b in self.buckets.iter().filter(|b| self.holds(i, b.index)) {
            t.calls += u64::from(b.calls);
            t.failures += u64::from(b.failures);
            t.slow += u64::from(b.slow);
        }
        if with_stripes {
            for s in self.stripes.stripes.iter() {
                let v = s.0.load(Ordering::Acquire);
                if self.holds(i, Stripes::unpack_index(v, i)) {
                    t.calls += u64::from(v as u32);
                }
            }
        }
        t
    }

    fn clear(&mut self) {
        self.buckets.fill(Bucket::default());
        self.stripes.clear();
    }
}

/// The lock-free half of a time window: per stripe of threads, the number of ordinary (failed
/// nor slow) successes that ended in one bucket, packed in one word (the low 32 bits of the
/// bucket index above, the count below) on a cache line of its own. Allocated once per breaker,
/// the first time it is given a time window.
#[derive(Debug)]
pub(crate) struct Stripes {
    bucket_nanos: AtomicU64,
    /// A call this long is slow (`u64::MAX` without the slow-call rule).
    slow_nanos: AtomicU64,
    /// The bucket the stripes were last stamped with, and its time span `[start, end)` in
    /// nanoseconds: a success tells its bucket with two comparisons instead of a division.
    current: AtomicU64,
    start: AtomicU64,
    end: AtomicU64,
    stripes: Box<[Stripe]>,
}

/// 128 bytes: the adjacent-line prefetcher pairs 64-byte lines.
#[derive(Debug)]
#[repr(align(128))]
struct Stripe(AtomicU64);

/// Stripes per breaker: one per core (a power of two), at most 16.
fn stripe_count() -> usize {
    static COUNT: OnceLock<usize> = OnceLock::new();
    *COUNT.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(1, usize::from)
            .next_power_of_two()
            .clamp(1, 16)
    })
}

/// The calling thread's stripe number: threads take numbers in turn, so the first threads of a
/// program land on different stripes.
#[inline]
fn thread_stripe() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static MINE: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    MINE.try_with(|m| {
        let v = m.get();
        if v != usize::MAX {
            return v;
        }
        let v = NEXT.fetch_add(1, Ordering::Relaxed);
        m.set(v);
        v
    })
    .unwrap_or(0)
}

impl Stripes {
    pub(crate) fn new() -> Self {
        Stripes {
            bucket_nanos: AtomicU64::new(1),
            slow_nanos: AtomicU64::new(u64::MAX),
            current: AtomicU64::new(0),
            start: AtomicU64::new(0),
            // An empty span: the first success takes the mutex, which stamps the stripes.
            end: AtomicU64::new(0),
            stripes: (0..stripe_count())
                .map(|_| Stripe(AtomicU64::new(0)))
                .collect(),
        }
    }

    fn configure(&self, bucket_nanos: u64, slow_nanos: u64) {
        self.bucket_nanos.store(bucket_nanos, Ordering::Relaxed);
        self.slow_nanos.store(slow_nanos, Ordering::Relaxed);
    }

    fn clear(&self) {
        self.end.store(0, Ordering::Relaxed);
        for s in self.stripes.iter() {
            s.0.store(Self::pack(0, 0), Ordering::Release);
        }
    }

    /// Stamps the stripes' current bucket `i`, under the breaker's mutex (before the stripes
    /// themselves, so a success that sees the new span finds them stamped or takes the mutex).
    fn stamp(&self, i: u64) {
        let b = self.bucket_nanos.load(Ordering::Relaxed).max(1);
        let start = i.saturating_mul(b);
        self.end.store(0, Ordering::Release);
        self.current.store(i, Ordering::Relaxed);
        self.start.store(start, Ordering::Relaxed);
        self.end.store(start.saturating_add(b), Ordering::Release);
    }

    fn pack(index: u64, count: u32) -> u64 {
        ((index as u32 as u64) << 32) | u64::from(count)
    }

    /// The full bucket index of packed `v`, given the current bucket `current`: the latest one
    /// at or before `current` with the same low bits (a stripe stamped a moment ahead of
    /// `current` counts as `current`).
    fn unpack_index(v: u64, current: u64) -> u64 {
        let low = (v >> 32) as u32;
        let behind = (current as u32).wrapping_sub(low);
        if behind > u32::MAX / 2 {
            current
        } else {
            current.saturating_sub(u64::from(behind))
        }
    }

    /// Counts a success admitted with `ticket` that ended at `now`, if it is not slow and this
    /// thread's stripe is stamped with the current bucket. `false`: record it under the mutex.
    #[inline]
    pub(crate) fn try_add(&self, ticket: Ticket, now: Duration) -> bool {
        let now_nanos = nanos(now);
        if let Ticket::Timed(start) = ticket {
            if now_nanos.saturating_sub(start) >= self.slow_nanos.load(Ordering::Relaxed) {
                return false;
            }
        }
        // The current bucket's span, rather than a 64-bit division per success. A fold racing
        // with these loads can only make a success count a bucket off, a moment later or
        // earlier than it ended.
        if now_nanos >= self.end.load(Ordering::Acquire)
            || now_nanos < self.start.load(Ordering::Relaxed)
        {
            return false;
        }
        let index = self.current.load(Ordering::Relaxed);
        let stripe = &self.stripes[thread_stripe() & (self.stripes.len() - 1)].0;
        let v = stripe.load(Ordering::Relaxed);
        if (v >> 32) as u32 != index as u32 || v as u32 == u32::MAX {
            return false;
        }
        // An add racing with a fold lands in the freshly stamped word: counted in the bucket the
        // fold stamped, a moment later than it ended at most.
        stripe.fetch_add(1, Ordering::AcqRel);
        true
    }
}

/// The start of a timed call, in nanoseconds of the breaker's clock.
pub(crate) fn start_of(now: Duration) -> u64 {
    nanos(now)
}
