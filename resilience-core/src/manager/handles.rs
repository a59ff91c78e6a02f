//! The handles of a manager's operations, and the one writer of their breakers' settings.
//!
//! A breaker's settings are written here only, always under the manager's configuration lock
//! and always as [`resolve`] computes them from the settings as of that moment and the breaker
//! settings claimed by the operation's first call site. So `configure_from_json`, the first use
//! of an operation and a call site's `circuit_breaker(...)` cannot leave a breaker on old
//! settings, whatever order they race in.
//!
//! The map of handles is the manager's only per-key map: metrics snapshots walk it, and the
//! names it is keyed by are the handles' own (a component's name is shared by its operations).

use super::{HandleRef, RetryManager};
use crate::call::{BreakerClaim, CallSpec, OperationHandle, PolicyCache, GUARDED_SPEC};
use crate::fxhash::{FxHashMap, FxHashSet};
use crate::metrics::OperationMetrics;
use crate::policy::{resolve, CallOverrides};
use std::borrow::Borrow;
use std::cell::RefCell;
use std::hash::{Hash, Hasher};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Every operation's handle, by component then operation (so that a look-up borrows the names).
pub(super) type Handles = FxHashMap<Arc<str>, FxHashSet<ByName>>;

/// A handle in its component's set, found by its operation's name: the set needs no key of its
/// own (8 bytes a slot, not 24).
pub(super) struct ByName(pub(super) Arc<OperationHandle>);

impl Borrow<str> for ByName {
    fn borrow(&self) -> &str {
        &self.0.operation
    }
}

// Hashed and compared as the name is, as `Borrow` requires.
impl Hash for ByName {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.operation.hash(state);
    }
}

impl PartialEq for ByName {
    fn eq(&self, other: &Self) -> bool {
        self.0.operation == other.0.operation
    }
}

impl Eq for ByName {}

/// The breaker settings claimed by call sites, for the operations that have a claim; kept
/// under the manager's configuration lock.
pub(super) type Claims = FxHashMap<Arc<str>, FxHashMap<Arc<str>, BreakerClaim>>;

/// The handle of (component, operation) in `map`.
pub(super) fn find<'m>(
    map: &'m Handles,
    component: &str,
    operation: &str,
) -> Option<&'m Arc<OperationHandle>> {
    map.get(component)
        .and_then(|ops| ops.get(operation))
        .map(|h| &h.0)
}

impl RetryManager {
    /// The handle of (component, operation), created on first use. `guarded`: the caller goes
    /// through the breaker, so the handle must hold the registry's breaker (an operation only
    /// ever called without one gets none there).
    pub(crate) fn handle(
        &self,
        component: &str,
        operation: &str,
        guarded: bool,
    ) -> Arc<OperationHandle> {
        if let Some(h) = find(&self.handles.read(), component, operation) {
            if h.registered || !guarded {
                return Arc::clone(h);
            }
        }
        self.create_handle(component, operation, guarded)
    }

    #[cold]
    fn create_handle(
        &self,
        component: &str,
        operation: &str,
        guarded: bool,
    ) -> Arc<OperationHandle> {
        // Every creation holds the configuration lock, so nothing else creates meanwhile; the
        // map's write lock is taken only to insert (and evict), so breaker listeners, which read
        // the map, never run while this thread holds it.
        let mut claims = self.configuring.lock();
        let (existing, component_name, budget) = {
            let map = self.handles.read();
            let existing = find(&map, component, operation).cloned();
            if let Some(h) = &existing {
                if h.registered || !guarded {
                    return Arc::clone(h); // made by another thread since the look-up
                }
            }
            match map.get_key_value(component) {
                // One budget per component: shared with the component's other operations.
                Some((name, ops)) => (
                    existing,
                    Arc::clone(name),
                    ops.iter()
                        .next()
                        .map_or_else(Default::default, |h| Arc::clone(&h.0.budget)),
                ),
                None => (existing, Arc::from(component), Default::default()),
            }
        };
        let handle = match existing {
            // Called without a breaker so far: the same metrics, now with a breaker.
            Some(unguarded) => OperationHandle {
                breaker: self.registry.get_breaker(component, operation),
                registered: true,
                policy_cache: PolicyCache::for_spec(&GUARDED_SPEC),
                ..OperationHandle::clone(&unguarded)
            },
            None => {
                // A claim left by a call site of an evicted operation of this name is not this
                // operation's.
                if let Some(ops) = claims.get_mut(component) {
                    ops.remove(operation);
                }
                let breaker = if guarded {
                    self.registry.get_breaker(component, operation)
                } else {
                    self.registry.detached_breaker(component, operation)
                };
                OperationHandle {
                    component: component_name,
                    // One copy of the name for the handle and its breaker.
                    operation: Arc::clone(breaker.operation_name()),
                    breaker,
                    registered: guarded,
                    metrics: Arc::new(OperationMetrics::new(component, operation)),
                    policy_cache: PolicyCache::for_spec(&GUARDED_SPEC),
                    budget,
                }
            }
        };
        // A budget in the settings pays in from the operation's first call on.
        self.enable_budget(&handle, &GUARDED_SPEC);
        if guarded {
            self.write_breaker_settings(&claims, &handle);
        }
        let handle = Arc::new(handle);
        let mut map = self.handles.write();
        let replaced = map
            .entry(Arc::clone(&handle.component))
            .or_default()
            .replace(ByName(Arc::clone(&handle)))
            .is_some();
        if !replaced {
            let count = self.operation_count.fetch_add(1, Ordering::Relaxed) + 1;
            if count > self.max_operations {
                self.evict_idle(&mut map, &mut claims, &handle);
            }
        }
        handle
    }

    /// The handle a call site with `spec` uses: guarded or not as the site is, with the site's
    /// breaker settings offered to the operation.
    pub(crate) fn handle_for(
        &self,
        component: &str,
        operation: &str,
        spec: &CallSpec,
    ) -> Arc<OperationHandle> {
        let handle = self.handle(component, operation, spec.policy.use_breaker);
        self.claim_breaker(&handle, spec);
        self.enable_budget(&handle, spec);
        handle
    }

    /// `handle`, or the operation's guarded handle when `handle` has no registered breaker; with
    /// the call's breaker settings offered to the operation.
    pub(crate) fn guarded<'a>(&self, handle: HandleRef<'a>, spec: &CallSpec) -> HandleRef<'a> {
        let handle = if handle.registered {
            handle
        } else {
            HandleRef::Owned(self.handle(&handle.component, &handle.operation, true))
        };
        self.claim_breaker(&handle, spec);
        handle
    }

    /// Builds the component's budget account when the settings of a call with `spec` have
    /// one, so that first attempts pay into it before any retry asks.
    fn enable_budget(&self, handle: &OperationHandle, spec: &CallSpec) {
        let settings = self.engine.settings();
        let effective = resolve(
            &settings,
            &handle.component,
            &handle.operation,
            &spec.policy,
        );
        if let Some(budget) = effective.retry.budget.filter(|b| b.validate().is_ok()) {
            handle.budget.enable(&budget);
        }
    }

    /// Evicts idle, unreferenced, closed and clean operations until the manager is a tenth
    /// under its cap (so that a sweep is paid once per many new keys), never `keep`. Called
    /// with the configuration lock (`claims`) and the map's write lock held.
    #[cold]
    fn evict_idle(&self, map: &mut Handles, claims: &mut Claims, keep: &Arc<OperationHandle>) {
        let target = self.max_operations - self.max_operations / 10;
        // This thread's recent handles would keep their operations: see `Recent`.
        forget_recent(self.id);
        let mut count = self.operation_count.load(Ordering::Relaxed);
        let mut evicted = 0u64;
        for (component, ops) in map.iter_mut() {
            if count <= target {
                break;
            }
            let mut component_claims = claims.get_mut(component);
            ops.retain(|ByName(h)| {
                if count <= target || Arc::ptr_eq(h, keep) || !self.evictable(h) {
                    return true;
                }
                let breaker_gone = !h.registered || self.registry.evict_if_idle(&h.breaker);
                if !breaker_gone {
                    return true;
                }
                // The metrics and the claim go with the breaker.
                if let Some(c) = component_claims.as_mut() {
                    c.remove(&*h.operation);
                }
                count -= 1;
                evicted += 1;
                false
            });
        }
        map.retain(|_, ops| !ops.is_empty());
        claims.retain(|_, ops| !ops.is_empty());
        self.operation_count.store(count, Ordering::Relaxed);
        self.evicted.fetch_add(evicted, Ordering::Relaxed);
        // A first sweep finds every operation busy (idle means "no call since the last look"),
        // so only an overrun that lasts is worth a warning.
        if count > self.max_operations.saturating_mul(2)
            && !self.cap_warned.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(
                operations = count,
                cap = self.max_operations,
                "twice the manager's cap of operations and none idle to evict; the cap is passed"
            );
        }
    }

    /// Held by nobody but the map (no call in flight, no call site, no `Operation`), its figures
    /// held by this handle only (not by a call site's copy), and no call ended since the last
    /// look.
    fn evictable(&self, h: &Arc<OperationHandle>) -> bool {
        Arc::strong_count(h) == 1
            && Arc::strong_count(&h.metrics) == 1
            && h.metrics.idle_since_last_look()
    }

    fn claim_breaker(&self, handle: &OperationHandle, spec: &CallSpec) {
        if !spec.policy.sets_breaker() {
            return;
        }
        let mut claims = self.configuring.lock();
        let first = claims
            .entry(Arc::clone(&handle.component))
            .or_default()
            .entry(Arc::clone(&handle.operation))
            .or_default()
            .offer(&spec.policy, &handle.component, &handle.operation);
        if first {
            self.write_breaker_settings(&claims, handle);
        }
    }

    /// Sets `handle`'s breaker to the settings resolved as of now. Called with the
    /// configuration lock (`claims`) held.
    pub(super) fn write_breaker_settings(&self, claims: &Claims, handle: &OperationHandle) {
        if !handle.registered {
            return;
        }
        let settings = self.engine.settings();
        let effective = resolve(
            &settings,
            &handle.component,
            &handle.operation,
            claims
                .get(&*handle.component)
                .and_then(|ops| ops.get(&*handle.operation))
                .map_or(&CallOverrides::GUARDED, BreakerClaim::overrides),
        )
        .repaired();
        handle.breaker.configure(&effective.breaker);
    }
}

/// How many handles a thread keeps for calls by name (a power of two).
const RECENT: usize = 8;

/// The guarded handles a thread used last for calls by name (`execute("c", "op", f)`), with the
/// number of their manager: a call finds its operation here without the map's lock, hashing,
/// or a shared reference count (an atomic add that threads calling one operation would take
/// from each other), and runs with the handle borrowed from here. One place per name (chosen
/// from the names' lengths and last bytes), so a look-up compares one entry, hit or miss.
///
/// Correct with eviction and with many managers: a handle here is held, and a held operation is
/// never evicted nor replaced (only unguarded handles are replaced), so an entry is always its
/// manager's current handle, and a call running with it keeps it from eviction as any held
/// handle does. Entries are found by manager number and names, and a manager's number is never
/// reused, so a dropped manager's entries are never found again (the manager clears them from
/// its dropping thread; elsewhere they go as others take their places). The price: a thread
/// keeps at most `RECENT` operations from eviction. The thread that evicts lets go of its own
/// first, so a program calling by name from one thread keeps to its cap as before; each other
/// thread can keep `RECENT` more.
struct Recent {
    entries: [Option<(u64, Arc<OperationHandle>)>; RECENT],
}

impl Recent {
    /// Lets go of `manager`'s handles.
    fn forget(&mut self, manager: u64) -> Vec<Arc<OperationHandle>> {
        self.entries
            .iter_mut()
            .filter(|e| matches!(e, Some((id, _)) if *id == manager))
            .filter_map(|e| e.take().map(|(_, h)| h))
            .collect()
    }

    #[inline(always)]
    fn find(
        &self,
        manager: u64,
        component: &str,
        operation: &str,
    ) -> Option<&Arc<OperationHandle>> {
        match &self.entries[place(component, operation)] {
            Some((id, h))
                if *id == manager
                    && same_name(&h.operation, operation)
                    && same_name(&h.component, component) =>
            {
                Some(h)
            }
            _ => None,
        }
    }

    /// Keeps `handle` in its place; returns what was there, for the caller to drop once the
    /// cache is no longer borrowed.
    fn put(&mut self, manager: u64, handle: Arc<OperationHandle>) -> Option<Arc<OperationHandle>> {
        let i = place(&handle.component, &handle.operation);
        self.entries[i].replace((manager, handle)).map(|(_, h)| h)
    }
}

/// The place of (component, operation) among a thread's recent handles: from the lengths and
/// the operation's last byte (where names of one program usually differ), a few instructions.
#[inline(always)]
fn place(component: &str, operation: &str) -> usize {
    let op = operation.as_bytes();
    let last = usize::from(op.last().copied().unwrap_or(0));
    (op.len() ^ last.wrapping_mul(5) ^ component.len().wrapping_mul(3)) % RECENT
}

/// `a == b`, compared a word at a time in line (the last word overlapping the one before):
/// names are short, and a call to `memcmp` for each of them, or a loop over the bytes, was most
/// of the cost of a look-up here.
#[inline(always)]
fn same_name(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if n >= 8 {
        let word = |s: &[u8], i: usize| u64::from_ne_bytes(s[i..i + 8].try_into().expect("8"));
        let mut i = 0;
        while i + 8 < n {
            if word(a, i) != word(b, i) {
                return false;
            }
            i += 8;
        }
        word(a, n - 8) == word(b, n - 8)
    } else if n >= 4 {
        let word = |s: &[u8], i: usize| u32::from_ne_bytes(s[i..i + 4].try_into().expect("4"));
        word(a, 0) == word(b, 0) && word(a, n - 4) == word(b, n - 4)
    } else {
        (0..n).all(|i| a[i] == b[i])
    }
}

#[cfg(test)]
mod tests {
    use super::same_name;

    #[test]
    fn places_spread_and_stay_in_range() {
        let names = [
            "fetch_molecule",
            "fetch_target",
            "fetch_assay",
            "search",
            "a",
            "b",
            "ab",
        ];
        let places: std::collections::BTreeSet<usize> =
            names.iter().map(|o| super::place("ChEMBL", o)).collect();
        assert!(places.len() >= 4, "{places:?}");
        assert!(places.iter().all(|p| *p < super::RECENT));
        assert_eq!(super::place("", ""), super::place("", ""));
    }

    #[test]
    fn same_name_is_string_equality() {
        let names = [
            "",
            "a",
            "b",
            "ab",
            "ba",
            "abc",
            "abd",
            "abcd",
            "abce",
            "abcdefg",
            "abcdefh",
            "bbcdefg",
            "abcdefgh",
            "abcdefgi",
            "bbcdefgh",
            "abcdefghi",
            "abcdefghj",
            "bbcdefghi",
            "fetch_molecule",
            "fetch_moleculf",
            "fetch_molecule_00042",
            "fetch_molecule_00043",
            "getch_molecule_00042",
            "fetch_moxecule_00042",
        ];
        for a in names {
            for b in names {
                assert_eq!(same_name(a, b), a == b, "{a:?} {b:?}");
            }
        }
    }
}

thread_local! {
    static RECENT_HANDLES: RefCell<Recent> = const {
        RefCell::new(Recent {
            entries: [const { None }; RECENT],
        })
    };
}

/// Lets go of `manager`'s handles among this thread's recent ones. Not while a call by name of
/// this thread runs (its handle is borrowed from them): they are then kept.
pub(super) fn forget_recent(manager: u64) {
    let forgotten = RECENT_HANDLES
        .try_with(|recent| recent.try_borrow_mut().map(|mut r| r.forget(manager)).ok())
        .ok()
        .flatten();
    // Dropped here, with the cache no longer borrowed.
    drop(forgotten);
}

impl RetryManager {
    /// Runs `run` with the guarded handle of (component, operation): borrowed from this thread's
    /// recent ones when there, else looked up (and kept there).
    #[inline(always)]
    pub(super) fn with_recent<R>(
        &self,
        component: &str,
        operation: &str,
        run: impl FnOnce(&OperationHandle) -> R,
    ) -> R {
        let mut run = Some(run);
        let ran = RECENT_HANDLES.try_with(|recent| {
            // Shared: a call by name inside this one borrows too.
            let recent = recent.try_borrow().ok()?;
            let handle = recent.find(self.id, component, operation)?;
            run.take().map(|run| run(handle))
        });
        match (ran, run) {
            (Ok(Some(out)), _) => out,
            (_, Some(run)) => run(&self.recent_miss(component, operation)),
            // `run` was taken only to run, and then `ran` holds its output.
            (_, None) => unreachable!("a call by name ran and returned nothing"),
        }
    }

    /// The guarded handle of (component, operation), shared: for calls that may outlive this
    /// thread's turn (async ones), which cannot borrow it from the thread's recent ones.
    pub(super) fn shared_handle(&self, component: &str, operation: &str) -> Arc<OperationHandle> {
        let found = RECENT_HANDLES
            .try_with(|recent| {
                let recent = recent.try_borrow().ok()?;
                recent.find(self.id, component, operation).map(Arc::clone)
            })
            .ok()
            .flatten();
        found.unwrap_or_else(|| self.recent_miss(component, operation))
    }

    /// Looks the handle up in the map and keeps it among this thread's recent ones (unless a
    /// call by name of this thread is running: they are borrowed then).
    #[cold]
    #[inline(never)]
    fn recent_miss(&self, component: &str, operation: &str) -> Arc<OperationHandle> {
        let handle = self.handle(component, operation, true);
        let replaced = RECENT_HANDLES
            .try_with(|recent| {
                let mut recent = recent.try_borrow_mut().ok()?;
                recent.put(self.id, Arc::clone(&handle))
            })
            .ok()
            .flatten();
        // Dropped here, with the cache no longer borrowed.
        drop(replaced);
        handle
    }
}
