//! Retry budgets: a cap on retries that is a share of a component's own traffic, so retries
//! cannot multiply an outage (Finagle's `RetryBudget`, as tower's `TpsBudget` ports it).
//!
//! Two parts:
//! - [`RetryBudget`], the public setting (ttl, reserve per second, share of first attempts);
//! - `Budget`, the runtime account built from it: lock-free deposits and withdrawals, with the
//!   time passed in by the caller (the manager's monotonic clock), so tests run on fixed times.
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

use crate::ConfigError;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// The shortest `ttl` allowed (as Finagle allows).
const MIN_TTL: Duration = Duration::from_secs(1);
/// The longest `ttl` allowed (as Finagle allows).
const MAX_TTL: Duration = Duration::from_secs(60);
/// The largest `percent_can_retry` allowed (as Finagle allows).
const MAX_PERCENT_CAN_RETRY: f64 = 1000.0;
/// `min_retries_per_sec` must stay below this (as tower asserts).
const MIN_RETRIES_PER_SEC_LIMIT: u32 = i32::MAX as u32;

/// How many windows the `ttl` is cut into (Finagle's and tower's 10).
const SLOTS: usize = 10;
/// Tokens a first attempt deposits when `percent_can_retry > 0`.
const SCALE: i64 = 1_000_000;
/// The highest cost of a retry: `percent_can_retry` below 1e-6 (one retry per million first
/// attempts) counts as 1e-6.
const MAX_COST: i64 = SCALE * 1_000_000;
/// The reserve saturates here, leaving room in an `i64` for the deposits of a ttl.
const MAX_RESERVE: i64 = 1 << 62;

/// A retry budget: retries allowed on top of the first attempts, as a share of those attempts
/// plus a small reserve, over a sliding `ttl` (Finagle's `RetryBudget`, tower's `TpsBudget`).
///
/// Every first attempt of a call deposits into the budget of its component; every retry
/// withdraws from it, and a call whose retry finds the budget empty ends with its last error.
/// Over any `ttl`, a component retries at most `min_retries_per_sec × ttl` times plus
/// `percent_can_retry` times the number of its first attempts. Because the budget is a ratio of
/// a process's own traffic, N replicas add at most `percent_can_retry` more load in total (plus
/// N times the reserve) when a dependency fails, whatever `max_attempts` says.
///
/// ```
/// use resilience_core::RetryBudget;
/// use std::time::Duration;
///
/// // Retries up to 10 % of first attempts, and 5 per second whatever the traffic.
/// let budget = RetryBudget {
///     percent_can_retry: 0.1,
///     min_retries_per_sec: 5,
///     ..RetryBudget::default()
/// };
/// assert_eq!(budget.ttl, Duration::from_secs(10));
/// assert!(budget.validate().is_ok());
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryBudget {
    /// How long a deposit or a withdrawal counts: between 0.9 × and 1 × this after it was made.
    /// From 1 s to 60 s. Default 10 s.
    ///
    /// ```
    /// use resilience_core::RetryBudget;
    /// use std::time::Duration;
    /// let budget = RetryBudget { ttl: Duration::from_secs(30), ..RetryBudget::default() };
    /// assert!(budget.validate().is_ok());
    /// ```
    pub ttl: Duration,
    /// Retries allowed per second with no first attempts at all: a reserve of
    /// `min_retries_per_sec × ttl` retries, for components that have just started or call
    /// rarely. 0 means no reserve. Default 10.
    ///
    /// ```
    /// use resilience_core::RetryBudget;
    /// // Retries only as a share of traffic, no reserve.
    /// let budget = RetryBudget { min_retries_per_sec: 0, ..RetryBudget::default() };
    /// assert!(budget.validate().is_ok());
    /// ```
    pub min_retries_per_sec: u32,
    /// Retries allowed per first attempt, on top of the reserve: 0.2 is one retry per five first
    /// attempts, 2.0 two retries per first attempt. From 0 (retries only from the reserve) to
    /// 1000. Default 0.2.
    ///
    /// ```
    /// use resilience_core::RetryBudget;
    /// let budget = RetryBudget { percent_can_retry: 0.0, ..RetryBudget::default() };
    /// assert!(budget.validate().is_ok());
    /// ```
    pub percent_can_retry: f64,
}

impl Default for RetryBudget {
    /// Finagle's default: a ttl of 10 s, 10 retries per second, 20 % of first attempts.
    ///
    /// ```
    /// use resilience_core::RetryBudget;
    /// use std::time::Duration;
    /// let budget = RetryBudget::default();
    /// assert_eq!(budget.ttl, Duration::from_secs(10));
    /// assert_eq!(budget.min_retries_per_sec, 10);
    /// assert_eq!(budget.percent_can_retry, 0.2);
    /// ```
    fn default() -> Self {
        RetryBudget {
            ttl: Duration::from_secs(10),
            min_retries_per_sec: 10,
            percent_can_retry: 0.2,
        }
    }
}

impl RetryBudget {
    /// Checks the bounds Finagle puts on a budget: `percent_can_retry` finite and in
    /// [0, 1000], `ttl` in [1 s, 60 s], and `min_retries_per_sec` below 2^31 − 1 (tower's
    /// bound). The error names the field.
    ///
    /// ```
    /// use resilience_core::RetryBudget;
    /// use std::time::Duration;
    ///
    /// let err = RetryBudget { ttl: Duration::from_millis(500), ..RetryBudget::default() }
    ///     .validate()
    ///     .unwrap_err();
    /// assert_eq!(err.field(), "ttl");
    /// assert_eq!(err.to_string(), "`ttl` must be between 1s and 60s, got 500ms");
    ///
    /// let err = RetryBudget { percent_can_retry: f64::NAN, ..RetryBudget::default() }
    ///     .validate()
    ///     .unwrap_err();
    /// assert_eq!(err.field(), "percent_can_retry");
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        let percent = self.percent_can_retry;
        if !(percent.is_finite() && (0.0..=MAX_PERCENT_CAN_RETRY).contains(&percent)) {
            return Err(ConfigError::new(
                "percent_can_retry",
                format!(
                    "must be between 0 and {MAX_PERCENT_CAN_RETRY} (retries per first attempt: \
                     0.2 is one in five), got {percent}"
                ),
            ));
        }
        if !(MIN_TTL..=MAX_TTL).contains(&self.ttl) {
            return Err(ConfigError::new(
                "ttl",
                format!(
                    "must be between {MIN_TTL:?} and {MAX_TTL:?}, got {:?}",
                    self.ttl
                ),
            ));
        }
        if self.min_retries_per_sec >= MIN_RETRIES_PER_SEC_LIMIT {
            return Err(ConfigError::new(
                "min_retries_per_sec",
                format!(
                    "must be below {MIN_RETRIES_PER_SEC_LIMIT}, got {}",
                    self.min_retries_per_sec
                ),
            ));
        }
        Ok(())
    }
}

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
#[allow(dead_code)]
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
    reserve: i64,
}

// Wired by the manager in the policy-layer change; until then only the tests use it.
#[allow(dead_code)]
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

    /// Retries that could be made at `now`, as Finagle counts them (the balance in tokens over
    /// the cost of a retry, rounded toward zero): negative when expired deposits had been spent.
    pub fn balance(&self, now: Duration) -> i64 {
        self.tokens(now) / self.withdraw_cost
    }

    /// The balance at `now` in tokens.
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
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::sync::atomic::AtomicU64 as Counter;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn ms(m: u64) -> Duration {
        Duration::from_millis(m)
    }

    fn budget(ttl: Duration, min_retries_per_sec: u32, percent_can_retry: f64) -> Budget {
        Budget::new(&RetryBudget {
            ttl,
            min_retries_per_sec,
            percent_can_retry,
        })
    }

    /// `reserve + Σ slots == balance` once nothing is in flight.
    fn assert_books_balance(b: &Budget) {
        let slots: i64 = b.slots.iter().map(|s| s.load(Ordering::Acquire)).sum();
        assert_eq!(b.reserve + slots, b.balance.load(Ordering::Acquire));
    }

    // ---- tower `tower/src/retry/budget/tps_budget.rs` unit tests, ported to fixed times ----

    /// tower `tps_empty`: no reserve and no deposits, no retry.
    #[test]
    fn tower_tps_empty() {
        let b = budget(secs(1), 0, 1.0);
        assert!(!b.try_withdraw(Duration::ZERO));
    }

    /// tower `tps_leaky`: a deposit is gone three ttls later.
    #[test]
    fn tower_tps_leaky() {
        let b = budget(secs(1), 0, 1.0);
        b.deposit(Duration::ZERO);
        assert!(!b.try_withdraw(secs(3)));
    }

    /// tower `tps_slots`: deposits live for the ttl, window by window.
    #[test]
    fn tower_tps_slots() {
        let b = budget(secs(1), 0, 0.5);
        let mut now = Duration::ZERO;
        b.deposit(now);
        b.deposit(now);
        now += ms(901);
        // 900 ms later, the deposits are still valid.
        assert!(b.try_withdraw(now));

        // blank slate
        now += ms(2001);
        b.deposit(now);
        now += ms(301);
        b.deposit(now);
        now += ms(801);
        b.deposit(now);
        // The first deposit is expired, but the second is still valid, combining with the third.
        assert!(b.try_withdraw(now));
        assert!(!b.try_withdraw(now));
    }

    /// tower `tps_reserve`: min_per_sec 5 over a 1 s ttl is five retries with no deposits.
    #[test]
    fn tower_tps_reserve() {
        let b = budget(secs(1), 5, 1.0);
        for _ in 0..5 {
            assert!(b.try_withdraw(Duration::ZERO));
        }
        assert!(!b.try_withdraw(Duration::ZERO));
    }

    // ---- Finagle `finagle-core/src/test/scala/com/twitter/finagle/service/RetryBudgetTest.scala`

    /// Finagle's `testBudget`: at a frozen time, deposit then try to withdraw, 10 000 times; the
    /// retries made are `10 000 × percent + min_retries_per_sec × ttl`, give or take one.
    fn finagle_test_budget(ttl: Duration, min_retries_per_sec: u32, percent: f64) {
        let now = secs(100);
        let b = budget(ttl, min_retries_per_sec, percent);
        let min_retries = i64::from(min_retries_per_sec) * ttl.as_secs() as i64;
        assert_eq!(b.balance(now), min_retries, "percent {percent}");
        if min_retries == 0 {
            assert!(!b.try_withdraw(now));
        }
        let requests = 10_000;
        let mut retried = 0_i64;
        for i in 0..requests {
            b.deposit(now);
            if b.try_withdraw(now) {
                retried += 1;
            } else {
                assert_eq!(b.balance(now), 0, "percent {percent}, request {i}");
            }
        }
        let expected = (requests as f64 * percent) as i64 + min_retries;
        assert!(
            (retried - expected).abs() <= 1,
            "percent {percent}: {retried} retries, expected {expected}"
        );
    }

    /// Finagle "apply minRetriesPerSec=0 maxPercentOver=0 should be empty" and "Empty".
    #[test]
    fn finagle_no_reserve_no_percent_is_empty() {
        let b = budget(secs(10), 0, 0.0);
        assert_eq!(b.balance(Duration::ZERO), 0);
        assert!(!b.try_withdraw(Duration::ZERO));
        b.deposit(Duration::ZERO);
        assert_eq!(b.balance(Duration::ZERO), 0);
        assert!(!b.try_withdraw(Duration::ZERO));
    }

    /// Finagle "apply minRetriesPerSec=0".
    #[test]
    fn finagle_apply_min_retries_per_sec_0() {
        for percent in [
            0.1, 0.5, 0.25, 0.75, 0.99, 0.999, 0.9999, 0.01, 0.001, 0.0001,
        ] {
            finagle_test_budget(secs(60), 0, percent);
        }
    }

    /// Finagle "apply minRetries=0 maxPercentOver greater than 1.0".
    #[test]
    fn finagle_apply_percent_greater_than_1() {
        let b = budget(secs(60), 0, 2.0);
        assert_eq!(b.balance(Duration::ZERO), 0);
        assert!(!b.try_withdraw(Duration::ZERO));
        for _ in 0..10_000 {
            b.deposit(Duration::ZERO);
        }
        assert_eq!(b.balance(Duration::ZERO), 20_000);
    }

    /// Finagle "apply with minRetries and maxPercentOver=0".
    #[test]
    fn finagle_apply_min_retries_and_percent_0() {
        finagle_test_budget(secs(1), 10, 0.0);
        finagle_test_budget(secs(2), 5, 0.0);
    }

    /// Finagle "apply with minRetries and maxPercentOver".
    #[test]
    fn finagle_apply_min_retries_and_percent() {
        finagle_test_budget(secs(1), 10, 0.1);
        finagle_test_budget(secs(2), 5, 0.5);
    }

    // ---- the arithmetic, piece by piece ----

    #[test]
    fn default_budget_is_a_reserve_of_100_plus_one_retry_per_five_first_attempts() {
        let b = Budget::new(&RetryBudget::default());
        assert_eq!(b.deposit_amount, 1_000_000);
        assert_eq!(b.withdraw_cost, 5_000_000);
        assert_eq!(b.reserve, 100 * 5_000_000);
        let now = secs(5);
        assert_eq!(b.balance(now), 100);
        for _ in 0..1_000 {
            b.deposit(now);
        }
        assert_eq!(b.balance(now), 300);
        for _ in 0..300 {
            assert!(b.try_withdraw(now));
        }
        assert!(!b.try_withdraw(now));
        assert_eq!(b.balance(now), 0);
        assert_books_balance(&b);
    }

    #[test]
    fn reserve_allows_min_retries_per_sec_times_ttl_with_no_deposits() {
        for (ttl, min, percent) in [
            (secs(10), 10, 0.2),
            (secs(1), 1, 0.0),
            (secs(60), 7, 1000.0),
            (ms(2500), 4, 0.5),
        ] {
            let b = budget(ttl, min, percent);
            let expected = (u128::from(min) * ttl.as_millis() / 1000) as usize;
            let now = secs(42);
            let allowed = (0..expected + 10).filter(|_| b.try_withdraw(now)).count();
            assert_eq!(
                allowed, expected,
                "ttl {ttl:?}, min {min}, percent {percent}"
            );
            assert_eq!(b.balance(now), 0);
        }
    }

    #[test]
    fn reserve_comes_back_when_its_withdrawals_expire() {
        let b = budget(secs(10), 1, 0.2); // reserve: 10 retries
        for _ in 0..10 {
            assert!(b.try_withdraw(secs(3)));
        }
        assert!(!b.try_withdraw(secs(12)));
        assert_eq!(b.balance(ms(12_999)), 0);
        // Window 3 expires when window 13 starts.
        assert_eq!(b.balance(secs(13)), 10);
        assert!(b.try_withdraw(secs(13)));
    }

    #[test]
    fn entries_expire_when_the_tenth_window_after_theirs_starts() {
        // ttl 10 s: windows of 1 s from the clock's origin.
        let b = budget(secs(10), 0, 1.0);
        b.deposit(ms(5_000)); // window 5: counts until 15 s
        b.deposit(ms(5_999)); // window 5 too
        b.deposit(ms(6_000)); // window 6: counts until 16 s
        assert_eq!(b.balance(ms(14_999)), 3);
        assert_eq!(b.balance(ms(15_000)), 1);
        assert_eq!(b.balance(ms(15_999)), 1);
        assert_eq!(b.balance(ms(16_000)), 0);
        assert_books_balance(&b);
    }

    #[test]
    fn a_deposit_counts_between_nine_tenths_of_ttl_and_ttl() {
        let ttl = secs(10);
        for offset in [0, 1, 500, 999] {
            let made = secs(20) + ms(offset);
            let b = budget(ttl, 0, 1.0);
            b.deposit(made);
            let still = made + ms(9_000) - Duration::from_nanos(1);
            assert_eq!(b.balance(still), 1, "offset {offset}");
            let gone = made + ttl;
            assert_eq!(b.balance(gone), 0, "offset {offset}");
        }
    }

    #[test]
    fn balance_goes_negative_when_spent_deposits_expire_and_recovers() {
        let b = budget(secs(10), 0, 1.0);
        b.deposit(secs(0));
        assert!(b.try_withdraw(secs(5)));
        // The deposit expired, the withdrawal that spent it has not.
        assert_eq!(b.balance(secs(10)), -1);
        assert!(!b.try_withdraw(secs(10)));
        b.deposit(secs(11));
        assert_eq!(b.balance(secs(11)), 0);
        assert!(!b.try_withdraw(secs(11)));
        // The withdrawal expires at 15 s.
        assert_eq!(b.balance(secs(15)), 1);
        assert!(b.try_withdraw(secs(15)));
    }

    #[test]
    fn a_long_idle_gap_expires_everything_at_once() {
        let b = budget(secs(10), 3, 0.5);
        for i in 0..100 {
            b.deposit(ms(i * 37));
            b.try_withdraw(ms(i * 41));
        }
        assert_eq!(b.balance(secs(3_600)), 30);
        assert_eq!(b.balance.load(Ordering::Acquire), b.reserve);
        assert_books_balance(&b);
    }

    #[test]
    fn an_older_now_counts_in_the_newest_window() {
        let b = budget(secs(10), 0, 1.0);
        b.deposit(secs(20));
        b.deposit(secs(3)); // a stale reading: counted in window 20, not in long-gone window 3
        assert_eq!(b.balance(secs(29)), 2);
        assert_eq!(b.balance(secs(30)), 0);
    }

    #[test]
    fn percent_zero_means_reserve_only() {
        let b = budget(secs(10), 2, 0.0); // reserve: 20 retries
        for _ in 0..1_000 {
            b.deposit(secs(1));
        }
        assert_eq!(b.balance(secs(1)), 20);
        assert_eq!((0..30).filter(|_| b.try_withdraw(secs(1))).count(), 20);
        assert_books_balance(&b);
    }

    #[test]
    fn percent_1000_makes_a_retry_almost_free() {
        let b = budget(secs(10), 0, 1000.0);
        assert_eq!(b.withdraw_cost, 1_000);
        b.deposit(secs(1));
        assert_eq!(b.balance(secs(1)), 1_000);
        assert_eq!(
            (0..1_500).filter(|_| b.try_withdraw(secs(1))).count(),
            1_000
        );
    }

    #[test]
    fn cost_matches_the_percent_closely() {
        for percent in [0.2, 0.1, 0.3, 0.15, 1.0, 2.0, 3.0, 7.0, 333.0, 700.0, 999.9] {
            let b = budget(secs(10), 0, percent);
            let ratio = b.deposit_amount as f64 / b.withdraw_cost as f64;
            assert!(
                (ratio - percent).abs() / percent < 5e-4,
                "percent {percent}: {ratio}"
            );
        }
        assert_eq!(budget(secs(10), 0, 0.2).withdraw_cost, 5_000_000);
        assert_eq!(budget(secs(10), 0, 0.1).withdraw_cost, 10_000_000);
    }

    #[test]
    fn tiny_percents_and_huge_reserves_saturate_instead_of_overflowing() {
        let b = budget(secs(60), i32::MAX as u32 - 1, 1e-300);
        assert_eq!(b.withdraw_cost, MAX_COST);
        assert_eq!(b.reserve, MAX_RESERVE);
        assert!(b.try_withdraw(secs(1)));
        b.deposit(secs(1));
        assert_books_balance(&b);
        let b = budget(secs(60), u32::MAX, 1000.0);
        assert_eq!(b.balance(Duration::ZERO), i64::from(u32::MAX) * 60);
    }

    #[test]
    fn out_of_range_settings_are_clamped() {
        let b = budget(Duration::ZERO, 1, f64::NAN);
        assert_eq!(b.window_nanos, 100_000_000);
        assert_eq!(b.deposit_amount, 0);
        assert_eq!(b.balance(Duration::ZERO), 1);
        let b = budget(secs(600), 0, 5_000.0);
        assert_eq!(b.window_nanos, 6_000_000_000);
        assert_eq!(b.withdraw_cost, 1_000);
    }

    // ---- validation ----

    #[test]
    fn validate_accepts_the_bounds() {
        for config in [
            RetryBudget::default(),
            RetryBudget {
                ttl: secs(1),
                min_retries_per_sec: 0,
                percent_can_retry: 0.0,
            },
            RetryBudget {
                ttl: secs(60),
                min_retries_per_sec: i32::MAX as u32 - 1,
                percent_can_retry: 1000.0,
            },
        ] {
            assert_eq!(config.validate(), Ok(()), "{config:?}");
        }
    }

    #[test]
    fn validate_names_each_bad_field() {
        let bad = |config: RetryBudget| config.validate().unwrap_err();
        let d = RetryBudget::default();
        for percent in [-0.1, 1000.5, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let err = bad(RetryBudget {
                percent_can_retry: percent,
                ..d
            });
            assert_eq!(err.field(), "percent_can_retry", "{percent}");
            assert!(err.rule().ends_with(&format!("got {percent}")), "{err}");
        }
        for ttl in [Duration::ZERO, ms(999), secs(60) + Duration::from_nanos(1)] {
            let err = bad(RetryBudget { ttl, ..d });
            assert_eq!(err.field(), "ttl", "{ttl:?}");
        }
        assert_eq!(
            bad(RetryBudget { ttl: secs(61), ..d }).to_string(),
            "`ttl` must be between 1s and 60s, got 61s"
        );
        for min in [i32::MAX as u32, u32::MAX] {
            let err = bad(RetryBudget {
                min_retries_per_sec: min,
                ..d
            });
            assert_eq!(err.field(), "min_retries_per_sec");
            assert_eq!(err.rule(), format!("must be below 2147483647, got {min}"));
        }
    }

    // ---- threads ----

    /// Four threads deposit and withdraw at one time: no withdrawal is ever granted beyond what
    /// the balance holds, and draining afterwards gives exactly the retries the arithmetic
    /// allows in total.
    #[test]
    fn four_threads_keep_the_books_exact() {
        let b = budget(secs(10), 3, 0.25); // reserve 30 retries, a retry per 4 deposits
        let now = secs(7);
        let deposits = Counter::new(0);
        let withdrawals = Counter::new(0);
        std::thread::scope(|s| {
            for t in 0..4_u64 {
                let (b, deposits, withdrawals) = (&b, &deposits, &withdrawals);
                s.spawn(move || {
                    for i in 0..20_000_u64 {
                        // Uneven mixes per thread, so withdrawals contend with deposits.
                        if (i + t) % (t + 2) == 0 {
                            b.deposit(now);
                            deposits.fetch_add(1, Ordering::Relaxed);
                        }
                        if b.try_withdraw(now) {
                            withdrawals.fetch_add(1, Ordering::Relaxed);
                        }
                        assert!(b.balance.load(Ordering::Acquire) >= 0);
                    }
                });
            }
        });
        let deposits = deposits.load(Ordering::Relaxed) as i64;
        let withdrawals = withdrawals.load(Ordering::Relaxed) as i64;
        assert_eq!(
            b.balance.load(Ordering::Acquire),
            b.reserve + deposits * b.deposit_amount - withdrawals * b.withdraw_cost
        );
        assert_books_balance(&b);
        let mut drained = 0;
        while b.try_withdraw(now) {
            drained += 1;
        }
        let allowed = (b.reserve + deposits * b.deposit_amount) / b.withdraw_cost;
        assert_eq!(withdrawals + drained, allowed);
    }

    /// Four threads whose clocks move on (and disagree a little) across many windows: windows
    /// turn under contention, nothing is lost or counted twice, and once everything has expired
    /// the balance is exactly the reserve again.
    #[test]
    fn four_threads_across_windows_leave_only_the_reserve() {
        let b = budget(secs(1), 2, 0.5); // windows of 100 ms
        let granted = Counter::new(0);
        std::thread::scope(|s| {
            for t in 0..4_u64 {
                let (b, granted) = (&b, &granted);
                s.spawn(move || {
                    for i in 0..20_000_u64 {
                        // 0.1 ms per step, each thread a little behind or ahead.
                        let now = Duration::from_micros(i * 100 + t * 250);
                        b.deposit(now);
                        if i % 3 == 0 && b.try_withdraw(now) {
                            granted.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        assert_books_balance(&b);
        assert!(granted.load(Ordering::Relaxed) > 0);
        let later = secs(10);
        assert_eq!(b.balance(later), 2);
        assert_eq!(b.balance.load(Ordering::Acquire), b.reserve);
        assert!(b.slots.iter().all(|s| s.load(Ordering::Acquire) == 0));
    }

    // ---- against a reference model ----

    /// The budget as a list of timestamped entries: an entry made at `t` counts at `now` while
    /// `now / window − t / window < 10`; a withdrawal is granted when the reserve plus the
    /// entries that count covers the cost.
    struct Model {
        window: u128,
        deposit: i64,
        cost: i64,
        reserve: i64,
        entries: Vec<(Duration, i64)>,
    }

    impl Model {
        fn tokens(&self, now: Duration) -> i64 {
            let current = now.as_nanos() / self.window;
            self.reserve
                + self
                    .entries
                    .iter()
                    .filter(|(t, _)| current - t.as_nanos() / self.window < SLOTS as u128)
                    .map(|&(_, amount)| amount)
                    .sum::<i64>()
        }

        fn deposit(&mut self, now: Duration) {
            self.entries.push((now, self.deposit));
        }

        fn try_withdraw(&mut self, now: Duration) -> bool {
            let granted = self.tokens(now) >= self.cost;
            if granted {
                self.entries.push((now, -self.cost));
            }
            granted
        }
    }

    #[derive(Clone, Copy, Debug)]
    enum Op {
        Deposit,
        Withdraw,
        Balance,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => Just(Op::Deposit),
            3 => Just(Op::Withdraw),
            1 => Just(Op::Balance),
        ]
    }

    proptest! {
        #[test]
        fn budget_matches_the_reference_model(
            ttl_ms in 1_000_u64..=60_000,
            min_retries_per_sec in 0_u32..5,
            percent in prop_oneof![Just(0.0), Just(1000.0), 0.01_f64..3.0],
            steps in prop::collection::vec((0_u64..3_000, op()), 1..300),
        ) {
            let config = RetryBudget {
                ttl: Duration::from_millis(ttl_ms),
                min_retries_per_sec,
                percent_can_retry: percent,
            };
            prop_assert!(config.validate().is_ok());
            let b = Budget::new(&config);
            // The model takes the cost from the percent on its own; only rounding is shared.
            let (deposit, cost) = if percent == 0.0 {
                (0, SCALE)
            } else {
                (SCALE, (SCALE as f64 / percent).round() as i64)
            };
            let reserve_retries =
                i64::from(min_retries_per_sec) * ttl_ms as i64 / 1_000;
            let mut model = Model {
                window: u128::from(ttl_ms) * 1_000_000 / SLOTS as u128,
                deposit,
                cost,
                reserve: reserve_retries * cost,
                entries: Vec::new(),
            };
            let mut now = Duration::from_secs(1_000);
            for (gap_ms, op) in steps {
                // Mostly small steps, so entries live and die across many windows.
                now += Duration::from_millis(gap_ms * gap_ms / 300);
                match op {
                    Op::Deposit => {
                        b.deposit(now);
                        model.deposit(now);
                    }
                    Op::Withdraw => {
                        prop_assert_eq!(b.try_withdraw(now), model.try_withdraw(now), "at {:?}", now);
                    }
                    // Only here, so windows also turn inside deposits and withdrawals.
                    Op::Balance => {
                        prop_assert_eq!(b.tokens(now), model.tokens(now), "at {:?}", now);
                        prop_assert_eq!(b.balance(now), model.tokens(now) / cost);
                    }
                }
            }
            assert_books_balance(&b);
            prop_assert_eq!(b.tokens(now), model.tokens(now));
        }
    }
}
