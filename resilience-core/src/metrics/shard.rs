//! Counters split into shards so that threads counting at once do not write one cache line.
//!
//! An add to a cache line another core keeps taking back costs tens of nanoseconds, and even an
//! uncontended locked add (`lock xadd`) costs several: more than the whole budget of a
//! successful call. So each of the first threads to count owns a shard outright (it alone writes
//! it: an add is a plain load and store), gives it back when it ends, and threads beyond the
//! number of owned shards share one last shard and add atomically. A snapshot adds the shards
//! up; the figures are statistics, exact once the threads that made them are joined.
//!
//! Every add and every sum saturates at `u64::MAX` instead of wrapping, so no figure ever goes
//! backwards: a wait of `Duration::MAX` is `u64::MAX` nanoseconds, and a wrapping sum of two of
//! them would read as almost nothing.

use parking_lot::{Mutex, MutexGuard};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// One thread's counters, on cache lines of their own (128 bytes: the adjacent-line prefetcher
/// pairs 64-byte lines).
#[repr(align(128))]
struct Shard<const N: usize>([AtomicU64; N]);

/// `N` counters, split into [`shard_count`] shards.
pub(super) struct Sharded<const N: usize> {
    shards: Box<[Shard<N>]>,
    /// What `reset` subtracts: shards owned by running threads cannot be zeroed from outside
    /// without losing their adds. `None` until the first reset.
    baseline: Mutex<Option<Box<[u64; N]>>>,
}

impl<const N: usize> Sharded<N> {
    pub(super) fn new() -> Self {
        let shards = (0..shard_count())
            .map(|_| Shard(std::array::from_fn(|_| AtomicU64::new(0))))
            .collect();
        Sharded {
            shards,
            baseline: Mutex::new(None),
        }
    }

    #[inline(always)]
    pub(super) fn add(&self, index: usize, n: u64) {
        let owned = self.shards.len() - 1;
        let slot = thread_slot();
        if slot < owned {
            // This thread alone writes this shard: no locked instruction needed.
            let counter = &self.shards[slot].0[index];
            counter.store(
                counter.load(Ordering::Relaxed).saturating_add(n),
                Ordering::Relaxed,
            );
        } else {
            self.add_shared(index, n);
        }
    }

    /// Threads beyond the owned shards share the last one. A compare-and-swap loop, not
    /// `fetch_add`: `fetch_add` wraps, and fixing a wrapped value up afterwards would let a
    /// reader see it go backwards in between. It costs the same locked instruction.
    #[cold]
    fn add_shared(&self, index: usize, n: u64) {
        let counter = &self.shards[self.shards.len() - 1].0[index];
        // `Err` only when the value is already `u64::MAX`: nothing to add then.
        let _ = counter.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| {
            (c != u64::MAX).then(|| c.saturating_add(n))
        });
    }

    pub(super) fn sum(&self) -> [u64; N] {
        let mut total = self.raw_sum();
        if let Some(baseline) = &*self.lock_baseline() {
            // Shards only grow, so the sum never falls below the baseline; a figure that had
            // saturated before the reset stays at zero after it.
            for (t, b) in total.iter_mut().zip(baseline.iter()) {
                *t = t.saturating_sub(*b);
            }
        }
        total
    }

    fn raw_sum(&self) -> [u64; N] {
        let mut total = [0u64; N];
        for shard in self.shards.iter() {
            for (t, c) in total.iter_mut().zip(&shard.0) {
                *t = t.saturating_add(c.load(Ordering::Relaxed));
            }
        }
        total
    }

    /// From now on the sums count from zero.
    pub(super) fn reset(&self) {
        let now = self.raw_sum();
        *self.lock_baseline() = Some(Box::new(now));
    }

    fn lock_baseline(&self) -> MutexGuard<'_, Option<Box<[u64; N]>>> {
        self.baseline.lock()
    }
}

impl<const N: usize> std::fmt::Debug for Sharded<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sharded")
            .field("shards", &self.shards.len())
            .field("sum", &self.sum())
            .finish()
    }
}

/// Shards per counter set: one per core, at least 4 and at most 64 (a power of two), the last
/// one shared.
pub(super) fn shard_count() -> usize {
    static COUNT: OnceLock<usize> = OnceLock::new();
    *COUNT.get_or_init(|| {
        (std::thread::available_parallelism().map_or(1, usize::from) + 1)
            .next_power_of_two()
            .clamp(4, MAX_SHARDS)
    })
}

const MAX_SHARDS: usize = 64;
const UNASSIGNED: usize = usize::MAX;
const SHARED: usize = usize::MAX - 1;

/// Which shards are owned by a running thread, one bit each.
static OWNED: AtomicU64 = AtomicU64::new(0);

/// A thread's shard, given back when the thread ends.
struct Slot(Cell<usize>);

impl Drop for Slot {
    fn drop(&mut self) {
        let slot = self.0.get();
        if slot < MAX_SHARDS {
            // Release: the next owner sees this thread's last adds before making its own.
            OWNED.fetch_and(!(1 << slot), Ordering::Release);
        }
    }
}

thread_local! {
    static SLOT: Slot = const { Slot(Cell::new(UNASSIGNED)) };
}

#[inline(always)]
fn thread_slot() -> usize {
    SLOT.try_with(|slot| match slot.0.get() {
        UNASSIGNED => claim_slot(&slot.0),
        claimed => claimed,
    })
    // While the thread is being torn down its slot is gone: count in the shared shard.
    .unwrap_or(SHARED)
}

#[cold]
fn claim_slot(slot: &Cell<usize>) -> usize {
    let owned_shards = shard_count() - 1;
    let all = if owned_shards >= 64 {
        u64::MAX
    } else {
        (1u64 << owned_shards) - 1
    };
    let mut taken = OWNED.load(Ordering::Acquire);
    let claimed = loop {
        let free = all & !taken;
        if free == 0 {
            break SHARED;
        }
        let bit = free.trailing_zeros() as usize;
        match OWNED.compare_exchange_weak(
            taken,
            taken | (1 << bit),
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => break bit,
            Err(now) => taken = now,
        }
    };
    slot.set(claimed);
    claimed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_count_is_a_power_of_two_of_at_least_four() {
        let n = shard_count();
        assert!(n >= 4 && n.is_power_of_two() && n <= MAX_SHARDS, "{n}");
        assert!(n > std::thread::available_parallelism().map_or(1, usize::from));
    }

    #[test]
    fn a_shard_fills_whole_cache_line_pairs() {
        assert_eq!(std::mem::align_of::<Shard<3>>(), 128);
        assert_eq!(std::mem::size_of::<Shard<27>>() % 128, 0);
    }

    /// The slot tests claim slots from many threads: run them one at a time.
    static SLOT_TESTS: Mutex<()> = Mutex::new(());

    #[test]
    fn running_threads_never_share_an_owned_slot() {
        let _one_at_a_time = SLOT_TESTS.lock();
        let owned = shard_count() - 1;
        let barrier = std::sync::Barrier::new(8);
        let slots: Vec<usize> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(|| {
                        let slot = thread_slot();
                        assert_eq!(thread_slot(), slot, "a thread keeps its slot");
                        barrier.wait(); // all alive at once
                        slot
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut mine: Vec<_> = slots.iter().filter(|s| **s < owned).collect();
        let before = mine.len();
        mine.sort();
        mine.dedup();
        assert_eq!(mine.len(), before, "{slots:?}");
    }

    #[test]
    fn a_slot_is_given_back_when_its_thread_ends() {
        // Claim, end, and claim again many more times than there are slots: without giving
        // slots back, later threads would all land in the shared shard.
        let _one_at_a_time = SLOT_TESTS.lock();
        let owned = shard_count() - 1;
        let mut got_owned = 0;
        for _ in 0..(owned * 4) {
            if std::thread::spawn(thread_slot).join().unwrap() < owned {
                got_owned += 1;
            }
        }
        assert!(got_owned > owned, "{got_owned}");
    }

    #[test]
    fn sums_and_resets_across_shards() {
        let counters = Sharded::<2>::new();
        std::thread::scope(|s| {
            for _ in 0..(shard_count() * 2) {
                s.spawn(|| {
                    counters.add(0, 1);
                    counters.add(1, 10);
                });
            }
        });
        let n = shard_count() as u64 * 2;
        assert_eq!(counters.sum(), [n, 10 * n]);
        counters.reset();
        assert_eq!(counters.sum(), [0, 0]);
        counters.add(1, 5);
        assert_eq!(counters.sum(), [0, 5]);
    }

    #[test]
    fn adds_saturate_in_owned_and_shared_shards() {
        // Twice as many threads alive at once as there are shards: some own a shard, the
        // others share the last one. Each adds 2^63 twice, which wraps any shard to zero.
        let _one_at_a_time = SLOT_TESTS.lock();
        let threads = shard_count() * 2;
        let counters = Sharded::<1>::new();
        let barrier = std::sync::Barrier::new(threads);
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    barrier.wait();
                    counters.add(0, 1 << 63);
                    counters.add(0, 1 << 63);
                    assert_eq!(counters.sum(), [u64::MAX]);
                });
            }
        });
        assert_eq!(counters.sum(), [u64::MAX]);
        for shard in counters.shards.iter() {
            let n = shard.0[0].load(Ordering::Relaxed);
            assert!(n == 0 || n == u64::MAX, "a shard wrapped to {n}");
        }
    }
}
