//! Counters split into shards so that threads counting at once do not write one cache line.
//!
//! A relaxed add costs well under a nanosecond on a cache line the core owns and tens of
//! nanoseconds on one that another core keeps taking back, so every thread adds to its own
//! shard (chosen once per thread, round-robin) and a snapshot adds the shards up. Adds are
//! relaxed: the figures are statistics, exact once the threads that made them are joined.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;

/// One shard: `N` counters on cache lines of their own. 128 bytes because x86 prefetches lines
/// in pairs and Apple's cores use 128-byte lines.
#[repr(align(128))]
struct Shard<const N: usize>([AtomicU64; N]);

/// `N` counters, each split across [`shard_count`] shards.
pub(super) struct Sharded<const N: usize> {
    shards: Box<[Shard<N>]>,
}

impl<const N: usize> Sharded<N> {
    /// Every counter at zero.
    pub(super) fn new() -> Self {
        let shards = (0..shard_count())
            .map(|_| Shard(std::array::from_fn(|_| AtomicU64::new(0))))
            .collect();
        Sharded { shards }
    }

    /// Adds `n` to counter `index` in the calling thread's shard.
    #[inline]
    pub(super) fn add(&self, index: usize, n: u64) {
        // The shard count is a power of two, so the mask keeps the index in range.
        let shard = &self.shards[thread_slot() & (self.shards.len() - 1)];
        shard.0[index].fetch_add(n, Ordering::Relaxed);
    }

    /// Every counter, summed over the shards. Wraps rather than panics: a counter that has
    /// wrapped is already meaningless.
    pub(super) fn sum(&self) -> [u64; N] {
        let mut total = [0u64; N];
        for shard in self.shards.iter() {
            for (t, c) in total.iter_mut().zip(&shard.0) {
                *t = t.wrapping_add(c.load(Ordering::Relaxed));
            }
        }
        total
    }

    /// Sets every counter to zero. Adds racing with it may land before or after.
    pub(super) fn reset(&self) {
        for shard in self.shards.iter() {
            for c in &shard.0 {
                c.store(0, Ordering::Relaxed);
            }
        }
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

/// Shards per counter set: the next power of two at or above the number of cores, at least 4,
/// fixed for the life of the process.
pub(super) fn shard_count() -> usize {
    static COUNT: OnceLock<usize> = OnceLock::new();
    *COUNT.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(1, usize::from)
            .max(4)
            .next_power_of_two()
    })
}

thread_local! {
    // Const-initialised and without a destructor: reading it is a plain TLS load and never
    // fails, not even while the thread is being torn down.
    static SLOT: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// The calling thread's slot, assigned round-robin on its first count.
#[inline]
fn thread_slot() -> usize {
    SLOT.with(|slot| match slot.get() {
        usize::MAX => assign_slot(slot),
        assigned => assigned,
    })
}

#[cold]
fn assign_slot(slot: &Cell<usize>) -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    // Masked so that no thread can ever be given the "unassigned" marker.
    let assigned = NEXT.fetch_add(1, Ordering::Relaxed) & (usize::MAX >> 1);
    slot.set(assigned);
    assigned
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_count_is_a_power_of_two_of_at_least_four() {
        let n = shard_count();
        assert!(n >= 4 && n.is_power_of_two(), "{n}");
        assert!(n >= std::thread::available_parallelism().map_or(1, usize::from));
    }

    #[test]
    fn a_shard_fills_whole_cache_line_pairs() {
        assert_eq!(std::mem::align_of::<Shard<3>>(), 128);
        assert_eq!(std::mem::size_of::<Shard<27>>() % 128, 0);
    }

    #[test]
    fn threads_get_different_slots() {
        let here = thread_slot();
        assert_eq!(thread_slot(), here, "a thread keeps its slot");
        let there = std::thread::spawn(thread_slot).join().unwrap();
        assert_ne!(here, there);
    }

    #[test]
    fn sums_and_resets_across_shards() {
        let counters = Sharded::<2>::new();
        std::thread::scope(|s| {
            for _ in 0..6 {
                s.spawn(|| {
                    counters.add(0, 1);
                    counters.add(1, 10);
                });
            }
        });
        assert_eq!(counters.sum(), [6, 60]);
        counters.reset();
        assert_eq!(counters.sum(), [0, 0]);
    }
}
