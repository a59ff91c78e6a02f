//! The budget's arithmetic against Finagle's and tower's, its books under threads, and a
//! reference model.

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
