//! Retry budgets: a cap on retries that is a share of a component's own traffic, so retries
//! cannot multiply an outage (Finagle's `RetryBudget`, as tower's `TpsBudget` ports it).
//!
//! This is the runtime account, `Budget`, built from the setting [`RetryBudget`]: lock-free
//! deposits and withdrawals, with the time passed in by the caller (the manager's monotonic
//! clock), so tests run on fixed times.
//!
//! # The arithmetic
//!
//! Everything is counted in integer tokens. With `p = percent_can_retry`:
//! - a first attempt deposits `D = 1_000_000` tokens (none when `p == 0`);
//! - a retry costs `C = round(1_000_000 / p)` tokens (`1_000_000` when `p == 0`), so `D / C` is
//!   `p` to within 0.05 % for every valid `p` from 1e-6 up (smaller ones count as 1e-6): 0.2
//!   gives one retry per five first attempts, 2.0 two retries per first attempt, 1000 a
//!   thousand;
//! - a reserve of `min_retries_per_sec × ttl` retries (`× C` tokens) is always there, so a
//!   component that has just started, or calls rarely, can still retry;
//! - deposits and withdrawals expire: time is cut into windows of `ttl / 10` counted from the
//!   clock's origin, and an entry counts until the tenth window after its own starts, that is
//!   between `0.9 × ttl` and `ttl` after it was made;
//! - a retry is allowed when `reserve + live deposits − live withdrawals ≥ C`, and then
//!   withdraws `C`. The balance can go below zero when deposits expire before the withdrawals
//!   that spent them; it comes back as those withdrawals expire in turn.
//!
//! Over any `ttl`, then, a component makes at most `min_retries_per_sec × ttl + p × first
//! attempts` retries.
//!
//! ```
//! use resilience_core::RetryBudget;
//! use std::time::Duration;
//!
//! // Finagle's default: over any 10 s, 10 × 10 = 100 retries from the reserve, plus one retry
//! // per five first attempts made in those 10 s.
//! let budget = RetryBudget::default();
//! assert_eq!(budget.ttl, Duration::from_secs(10));
//! let per_ttl = |first_attempts: u32| {
//!     let reserve = budget.min_retries_per_sec * budget.ttl.as_secs() as u32;
//!     reserve + (f64::from(first_attempts) * budget.percent_can_retry) as u32
//! };
//! assert_eq!(per_ttl(0), 100);
//! assert_eq!(per_ttl(1_000), 300);
//! assert!(budget.validate().is_ok());
//! ```

use crate::policy::{MAX_PERCENT_CAN_RETRY, MAX_TTL, MIN_TTL};
use crate::RetryBudget;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

/// The retry budget of one component in one manager, shared by the handles of all its
/// operations: off until a call of the component is resolved with a budget (the first such
/// setting builds the account; later ones share it), and a clock for its warnings.
#[derive(Debug, Default)]
pub(crate) struct ComponentBudget {
    /// Whether `account` is set: one plain load for the calls of a component without a budget
    /// (a `OnceLock`'s own check costs more on the hot path).
    on: AtomicBool,
    account: OnceLock<Budget>,
    /// When the last "budget exhausted" warning was logged, in nanoseconds + 1 (0: never).
    warned_at: AtomicU64,
}

impl ComponentBudget {
    /// The account, once the component has a budget.
    #[inline(always)]
    pub(crate) fn account(&self) -> Option<&Budget> {
        self.account.get()
    }

    /// Whether the component has a budget.
    #[inline(always)]
    pub(crate) fn is_on(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }

    /// The account, built from `config` if the component had none.
    pub(crate) fn enable(&self, config: &RetryBudget) -> &Budget {
        let account = self.account.get_or_init(|| Budget::new(config));
        self.on.store(true, Ordering::Relaxed);
        account
    }

    /// Whether a warning may be logged at `now`: at most one per second per component.
    pub(crate) fn may_warn(&self, now: Duration) -> bool {
        let now = u64::try_from(now.as_nanos())
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        let last = self.warned_at.load(Ordering::Relaxed);
        (last == 0 || now.saturating_sub(last) >= 1_000_000_000)
            && self
                .warned_at
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

/// How many windows the `ttl` is cut into (Finagle's and tower's 10).
const SLOTS: usize = 10;
/// Tokens a first attempt deposits when `percent_can_retry > 0`.
const SCALE: i64 = 1_000_000;
/// The highest cost of a retry: `percent_can_retry` below 1e-6 (one retry per million first
/// attempts) counts as 1e-6.
const MAX_COST: i64 = SCALE * 1_000_000;
/// The reserve saturates here, leaving room in an `i64` for the deposits of a ttl.
const MAX_RESERVE: i64 = 1 << 62;

/// The runtime account of one [`RetryBudget`]: one per component, shared by its operations,
/// call sites and threads.
///
/// Deposits and withdrawals are lock-free: a deposit is two atomic adds (the current window's
/// slot, then the balance); a withdrawal is a compare-and-swap loop on the balance, which never
/// lets it fall below the cost of a retry, then an atomic add on the slot. A tiny lock is taken
/// only to move to a new window (at most once per `ttl / 10`), never to deposit or withdraw.
///
/// The balance never overstates what the books allow: a deposit reaches the balance after its
/// slot, a withdrawal leaves the balance before its slot, so a window that expires meanwhile
/// only makes the balance lower for a moment. An entry that races a change of window may be
/// credited to a newer window, and then counts longer; no entry is lost or counted twice.
///
/// Time is passed in (`now`, from the manager's monotonic clock) and never read here. Calls with
/// a `now` older than the newest seen count in the newest window.
// Wired by the manager in the policy-layer change; until then only the tests use it.
#[derive(Debug)]
pub struct Budget {
    /// `reserve + Σ slots`, in tokens, once in-flight operations have landed.
    balance: AtomicI64,
    /// The newest window the slots have been moved to (`now / window`).
    current: AtomicU64,
    /// Net tokens per window: slot `w % SLOTS` holds window `w`, for the last `SLOTS` windows.
    slots: [AtomicI64; SLOTS],
    /// Serialises moving to a new window; never taken to deposit or withdraw.
    rotation: Mutex<()>,
    /// `ttl / SLOTS`, in nanoseconds (at least 100 ms).
    window_nanos: u64,
    /// Tokens a first attempt deposits.
    deposit_amount: i64,
    /// Tokens a retry costs (at least 1000).
    withdraw_cost: i64,
    /// Tokens always there: `min_retries_per_sec × ttl` retries.
    // Kept for the tests of the books (`reserve + Σ slots == balance`).
    #[cfg_attr(not(test), allow(dead_code))]
    reserve: i64,
}

// Wired by the manager in the policy-layer change; until then only the tests use it.
impl Budget {
    /// An empty account for `config`, all of its reserve available.
    ///
    /// `config` is expected to be valid ([`RetryBudget::validate`]); values out of range are
    /// brought into it (a NaN percent counts as 0).
    pub fn new(config: &RetryBudget) -> Self {
        let ttl = config.ttl.clamp(MIN_TTL, MAX_TTL);
        let percent = if config.percent_can_retry.is_nan() {
            0.0
        } else {
            config.percent_can_retry.clamp(0.0, MAX_PERCENT_CAN_RETRY)
        };
        let (deposit_amount, withdraw_cost) = if percent == 0.0 {
            // Deposits buy nothing: retries come from the reserve only.
            (0, SCALE)
        } else {
            // `as` saturates: a tiny percent gives +inf, then i64::MAX, then MAX_COST.
            let cost = (SCALE as f64 / percent).round() as i64;
            (SCALE, cost.clamp(1, MAX_COST))
        };
        // min_retries_per_sec × ttl retries, exactly (not ttl truncated to whole seconds).
        let reserve_retries =
            u128::from(config.min_retries_per_sec) * ttl.as_nanos() / 1_000_000_000;
        let reserve = (reserve_retries * withdraw_cost as u128).min(MAX_RESERVE as u128) as i64;
        // ttl is at most 60 s, so this fits.
        let window_nanos = (ttl.as_nanos() / SLOTS as u128) as u64;
        Budget {
            balance: AtomicI64::new(reserve),
            current: AtomicU64::new(0),
            slots: Default::default(),
            rotation: Mutex::new(()),
            window_nanos,
            deposit_amount,
            withdraw_cost,
            reserve,
        }
    }

    /// Credits a first attempt made at `now`.
    #[inline]
    pub fn deposit(&self, now: Duration) {
        if self.deposit_amount == 0 {
            return;
        }
        // Slot first, balance second: the balance never counts a deposit its slot lacks.
        self.slot(now)
            .fetch_add(self.deposit_amount, Ordering::AcqRel);
        self.balance
            .fetch_add(self.deposit_amount, Ordering::AcqRel);
    }

    /// Withdraws a retry at `now` if the balance covers it; `false` (and nothing withdrawn)
    /// when the budget is exhausted.
    #[inline]
    pub fn try_withdraw(&self, now: Duration) -> bool {
        let slot = self.slot(now);
        let cost = self.withdraw_cost;
        let withdrawn = self
            .balance
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |balance| {
                (balance >= cost).then(|| balance - cost)
            })
            .is_ok();
        if withdrawn {
            // Balance first, slot second: the slot never holds a withdrawal the balance lacks.
            slot.fetch_sub(cost, Ordering::AcqRel);
        }
        withdrawn
    }

    #[cfg(test)]
    /// Retries that could be made at `now`, as Finagle counts them (the balance in tokens over
    /// the cost of a retry, rounded toward zero): negative when expired deposits had been spent.
    pub fn balance(&self, now: Duration) -> i64 {
        self.tokens(now) / self.withdraw_cost
    }

    /// The balance at `now` in tokens.
    #[cfg(test)]
    fn tokens(&self, now: Duration) -> i64 {
        self.slot(now);
        self.balance.load(Ordering::Acquire)
    }

    /// The slot of the window of `now`, after expiring the windows that `now` has left behind.
    #[inline]
    fn slot(&self, now: Duration) -> &AtomicI64 {
        let window = self.window_of(now);
        let mut current = self.current.load(Ordering::Acquire);
        if window > current {
            self.rotate(window);
            current = self.current.load(Ordering::Acquire);
        }
        // A `now` older than the newest window (another thread's clock read a moment later)
        // counts in the newest window.
        &self.slots[(current % SLOTS as u64) as usize]
    }

    #[inline]
    fn window_of(&self, now: Duration) -> u64 {
        u64::try_from(now.as_nanos()).unwrap_or(u64::MAX) / self.window_nanos
    }

    /// Moves to `window`: the slots of the windows it reuses expire, their net tokens leave the
    /// balance. Slots are emptied before `current` says they are reusable, so an entry made in
    /// the new window is never swept with the old one.
    #[cold]
    #[inline(never)]
    fn rotate(&self, window: u64) {
        let _guard = self.rotation.lock();
        let current = self.current.load(Ordering::Acquire);
        if window <= current {
            return; // another thread got there first
        }
        let steps = (window - current).min(SLOTS as u64);
        for step in 1..=steps {
            let index = ((current + step) % SLOTS as u64) as usize;
            let expired = self.slots[index].swap(0, Ordering::AcqRel);
            if expired != 0 {
                self.balance.fetch_sub(expired, Ordering::AcqRel);
            }
        }
        self.current.store(window, Ordering::Release);
    }
}

#[cfg(test)]
mod tests;
