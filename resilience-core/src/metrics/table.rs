//! Counters kept in per-thread tables, indexed by the key's number.
//!
//! Counters sharded per CPU cost every key shards x counters x 8 bytes, whether or not a thread
//! ever counted for it: over a kilobyte per key on a small machine, more on a big one. Here each
//! key gets a number (its slot), and each thread has a table of entries by slot: a thread pays
//! for the keys it counts for, nothing for the others. An entry is one counter for the hot path
//! (calls that succeeded at their first attempt) and, boxed and made at the thread's first other
//! figure for that key, the rest. So a key that only ever succeeds costs 24 bytes in each table
//! that counted it, and the success path is still one plain load and store on a line no other
//! thread writes: an add to a cache line another core keeps taking back costs tens of
//! nanoseconds, and even an uncontended locked add costs several.
//!
//! A snapshot adds the entries of every table up. A table outlives its thread: when the thread
//! ends, its table (with its counts) goes to the next thread that needs one, so the figures
//! stay and the number of tables stays at the most threads that counted at once. A thread being
//! torn down, whose table is already given back, counts in one shared table with atomic
//! read-modify-writes. The figures are statistics, exact once the threads that made them are
//! joined.
//!
//! When a key is dropped its entries are zeroed in every table before its slot is given to a
//! new key, so a new key never starts with an old one's counts.
//!
//! Every add and every sum saturates at `u64::MAX` instead of wrapping, so no figure ever goes
//! backwards: a wait of `Duration::MAX` is `u64::MAX` nanoseconds, and a wrapping sum of two of
//! them would read as almost nothing.

use parking_lot::Mutex;
use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, OnceLock};

/// Counters per key. The first one is the hot counter, kept apart; the rest are boxed.
pub(super) const COUNTERS: usize = super::operation::COUNTERS;
/// The position of the hot counter.
pub(super) const HOT: usize = 0;

/// Entries per chunk: a table grows by chunks, so a thread that counts for one key pays for this
/// many entries (1.5 KB), and a thread that counts for all of 100,000 keys pays 24 bytes a key.
const CHUNK: usize = 64;

/// One key's counts in one table.
#[derive(Default)]
struct Entry {
    hot: AtomicU64,
    /// Every counter but the hot one (whose place here stays 0), made at the first add to one.
    cold: OnceLock<Box<[AtomicU64; COUNTERS]>>,
}

impl Entry {
    #[inline(always)]
    fn counter(&self, index: usize) -> &AtomicU64 {
        if index == HOT {
            &self.hot
        } else {
            &self.cold_counters()[index]
        }
    }

    fn cold_counters(&self) -> &[AtomicU64; COUNTERS] {
        self.cold
            .get_or_init(|| Box::new(std::array::from_fn(|_| AtomicU64::new(0))))
    }

    /// Adds this entry's counts to `total`, saturating.
    fn add_to(&self, total: &mut [u64; COUNTERS]) {
        total[HOT] = total[HOT].saturating_add(self.hot.load(Ordering::Relaxed));
        if let Some(cold) = self.cold.get() {
            for (t, c) in total.iter_mut().zip(cold.iter()).skip(1) {
                *t = t.saturating_add(c.load(Ordering::Relaxed));
            }
        }
    }

    fn zero(&self) {
        self.hot.store(0, Ordering::Relaxed);
        if let Some(cold) = self.cold.get() {
            for c in cold.iter() {
                c.store(0, Ordering::Relaxed);
            }
        }
    }
}

type Chunk = [Entry; CHUNK];

fn new_chunk() -> Arc<Chunk> {
    Arc::new(std::array::from_fn(|_| Entry::default()))
}

/// The chunks of one table, by number (`slot / CHUNK`); `None` where no key of that chunk was
/// counted.
type Chunks = Vec<Option<Arc<Chunk>>>;

/// One thread's entries (or those of the threads before it that used this table). Readers and
/// the growing owner share the list of chunks under its lock; the owner also keeps a copy of the
/// list of its own, so that an add takes no lock.
#[derive(Default)]
struct Table {
    chunks: Mutex<Chunks>,
}

impl Table {
    /// Chunk `n`, made if missing. `local`: the owner's copy of the list, brought up to date.
    fn chunk(&self, n: usize, local: Option<&mut Chunks>) -> Arc<Chunk> {
        let mut chunks = self.chunks.lock();
        if chunks.len() <= n {
            chunks.resize(n + 1, None);
        }
        let chunk = Arc::clone(chunks[n].get_or_insert_with(new_chunk));
        if let Some(local) = local {
            local.clone_from(&chunks);
        }
        chunk
    }

    fn entry_do(&self, slot: usize, f: impl FnOnce(&Entry)) {
        if let Some(Some(chunk)) = self.chunks.lock().get(slot / CHUNK) {
            f(&chunk[slot % CHUNK]);
        }
    }
}

/// Every table ever made (the shared one first); tables are never dropped.
static TABLES: LazyLock<Mutex<Vec<Arc<Table>>>> =
    LazyLock::new(|| Mutex::new(vec![Arc::clone(&SHARED)]));
/// The tables of threads that ended, for the next threads to take over.
static SPARE: Mutex<Vec<Arc<Table>>> = Mutex::new(Vec::new());
/// The table of threads without one (being torn down): added to atomically.
static SHARED: LazyLock<Arc<Table>> = LazyLock::new(Default::default);

/// A thread's table and its own copy of the table's list of chunks.
#[derive(Default)]
struct Owner {
    table: RefCell<Option<Arc<Table>>>,
    chunks: RefCell<Chunks>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        if let Some(table) = self.table.get_mut().take() {
            // The lock orders this thread's last adds before the next owner's first.
            SPARE.lock().push(table);
        }
    }
}

thread_local! {
    static OWNER: Owner = const {
        Owner {
            table: RefCell::new(None),
            chunks: RefCell::new(Vec::new()),
        }
    };
}

/// Where the key numbers come from: the next never used, and those given back.
struct Slots {
    next: u32,
    free: Vec<u32>,
}

static SLOTS: Mutex<Slots> = Mutex::new(Slots {
    next: 0,
    free: Vec::new(),
});

/// `COUNTERS` counters of one key, in every thread's table.
pub(super) struct Counters {
    slot: u32,
}

impl Counters {
    pub(super) fn new() -> Self {
        let mut slots = SLOTS.lock();
        let slot = slots.free.pop().unwrap_or_else(|| {
            let slot = slots.next;
            // Four billion keys alive at once would be 100 GB of handles before this.
            slots.next = slots.next.checked_add(1).expect("fewer than 2^32 keys");
            slot
        });
        Counters { slot }
    }

    /// This key's number, unique among the keys alive.
    pub(super) fn slot(&self) -> u32 {
        self.slot
    }

    /// Adds `n` to counter `index` in this thread's table: a plain load and store (this thread
    /// alone writes its table) once the thread's chunk for this key exists.
    #[inline(always)]
    pub(super) fn add(&self, index: usize, n: u64) {
        let added = self.with_own_entry(|entry| add_owned(entry.counter(index), n));
        if !added {
            self.add_slow(index, n);
        }
    }

    /// Adds each `(index, n)` of `adds`, none of them the hot counter, as [`add`](Self::add)
    /// would one by one, but with one look-up of this thread's entry for them all: a failed
    /// attempt counts several figures at once.
    #[inline(always)]
    pub(super) fn add_cold<const N: usize>(&self, adds: [(usize, u64); N]) {
        let added = self.with_own_entry(|entry| {
            let cold = entry.cold_counters();
            for (index, n) in adds {
                debug_assert_ne!(index, HOT);
                add_owned(&cold[index], n);
            }
        });
        if !added {
            for (index, n) in adds {
                self.add_slow(index, n);
            }
        }
    }

    /// Runs `f` on this key's entry in this thread's own table; `false` (and `f` not run) when
    /// the thread has no chunk for the key yet, or is being torn down.
    #[inline(always)]
    fn with_own_entry(&self, f: impl FnOnce(&Entry)) -> bool {
        let slot = self.slot as usize;
        let added = OWNER.try_with(|owner| match owner.chunks.try_borrow() {
            Ok(chunks) => match chunks.get(slot / CHUNK) {
                Some(Some(chunk)) => {
                    f(&chunk[slot % CHUNK]);
                    true
                }
                _ => false,
            },
            Err(_) => false,
        });
        added == Ok(true)
    }

    /// The thread's first count in this key's chunk (the chunk, or the thread's table, is made),
    /// or a count while the thread is torn down.
    #[cold]
    #[inline(never)]
    fn add_slow(&self, index: usize, n: u64) {
        let slot = self.slot as usize;
        let owned = OWNER.try_with(|owner| {
            let (Ok(mut table), Ok(mut chunks)) =
                (owner.table.try_borrow_mut(), owner.chunks.try_borrow_mut())
            else {
                return false;
            };
            let table = table.get_or_insert_with(|| adopt_table(&mut chunks));
            let chunk = table.chunk(slot / CHUNK, Some(&mut chunks));
            add_owned(chunk[slot % CHUNK].counter(index), n);
            true
        });
        if owned != Ok(true) {
            let chunk = SHARED.chunk(slot / CHUNK, None);
            add_shared(chunk[slot % CHUNK].counter(index), n);
        }
    }

    /// Every table's counts added up, saturating.
    pub(super) fn sum(&self) -> [u64; COUNTERS] {
        let mut total = [0u64; COUNTERS];
        let slot = self.slot as usize;
        for table in TABLES.lock().iter() {
            table.entry_do(slot, |entry| entry.add_to(&mut total));
        }
        total
    }
}

impl Drop for Counters {
    fn drop(&mut self) {
        // Nothing counts for this key any more (counting needs a reference to it), so zeroing
        // loses nothing; the next key with this slot starts from zero.
        let slot = self.slot as usize;
        for table in TABLES.lock().iter() {
            table.entry_do(slot, Entry::zero);
        }
        SLOTS.lock().free.push(self.slot);
    }
}

impl std::fmt::Debug for Counters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counters")
            .field("slot", &self.slot)
            .field("sum", &self.sum())
            .finish()
    }
}

/// A table for this thread: one whose thread ended, or a new one.
fn adopt_table(local: &mut Chunks) -> Arc<Table> {
    let spare = SPARE.lock().pop();
    let table = spare.unwrap_or_else(|| {
        let table = Arc::new(Table::default());
        TABLES.lock().push(Arc::clone(&table));
        table
    });
    local.clone_from(&table.chunks.lock());
    table
}

/// This thread alone writes its table: no locked instruction needed.
#[inline(always)]
fn add_owned(counter: &AtomicU64, n: u64) {
    counter.store(
        counter.load(Ordering::Relaxed).saturating_add(n),
        Ordering::Relaxed,
    );
}

/// The shared table is written by any thread. A compare-and-swap loop, not `fetch_add`:
/// `fetch_add` wraps, and fixing a wrapped value up afterwards would let a reader see it go
/// backwards in between.
fn add_shared(counter: &AtomicU64, n: u64) {
    // `Err` only when the value is already `u64::MAX`: nothing to add then.
    let _ = counter.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| {
        (c != u64::MAX).then(|| c.saturating_add(n))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_24_bytes() {
        assert_eq!(std::mem::size_of::<Entry>(), 24);
    }

    #[test]
    fn sums_across_threads_including_ended_ones() {
        let counters = Counters::new();
        std::thread::scope(|s| {
            for _ in 0..16 {
                s.spawn(|| {
                    counters.add(HOT, 1);
                    counters.add(3, 10);
                });
            }
        });
        let total = counters.sum();
        assert_eq!((total[HOT], total[3]), (16, 160));
        assert!(total
            .iter()
            .enumerate()
            .all(|(i, n)| i == HOT || i == 3 || *n == 0));
    }

    #[test]
    fn tables_of_ended_threads_are_taken_over() {
        let counters = Counters::new();
        let before = TABLES.lock().len();
        for _ in 0..50 {
            std::thread::scope(|s| s.spawn(|| counters.add(HOT, 1)).join().unwrap());
        }
        // Other tests run threads meanwhile; without taking tables over there would be 50 more.
        assert!(TABLES.lock().len() < before + 50);
        assert_eq!(counters.sum()[HOT], 50);
    }

    #[test]
    fn a_reused_slot_starts_from_zero() {
        let mut slots = Vec::new();
        for _ in 0..8 {
            let counters = Counters::new();
            counters.add(HOT, 5);
            counters.add(1, 7);
            std::thread::scope(|s| {
                s.spawn(|| counters.add(2, 1));
            });
            slots.push(counters.slot);
        }
        // Dropped keys gave their slots back; whichever new key gets one counts from zero.
        for _ in 0..8 {
            let counters = Counters::new();
            assert_eq!(counters.sum(), [0; COUNTERS], "slot {}", counters.slot);
        }
    }

    #[test]
    fn keys_far_apart_count_apart() {
        let keys: Vec<Counters> = (0..300).map(|_| Counters::new()).collect();
        for (i, k) in keys.iter().enumerate() {
            k.add(HOT, i as u64);
        }
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(k.sum()[HOT], i as u64);
        }
    }

    #[test]
    fn adds_saturate_in_owned_and_shared_tables() {
        let counters = Counters::new();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    counters.add(1, 1 << 63);
                    counters.add(1, 1 << 63);
                    counters.add(HOT, u64::MAX);
                    counters.add(HOT, 1);
                });
            }
        });
        // The shared table directly, as a thread being torn down would count.
        let chunk = SHARED.chunk(counters.slot as usize / CHUNK, None);
        add_shared(chunk[counters.slot as usize % CHUNK].counter(1), u64::MAX);
        add_shared(chunk[counters.slot as usize % CHUNK].counter(1), 1);
        assert_eq!(
            chunk[counters.slot as usize % CHUNK]
                .counter(1)
                .load(Ordering::Relaxed),
            u64::MAX
        );
        let total = counters.sum();
        assert_eq!((total[HOT], total[1]), (u64::MAX, u64::MAX));
    }
}
