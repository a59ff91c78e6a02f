//! The retry storm study's claim (issue "Retry budgets"): with `max_attempts = 5` and the
//! default budget, a dependency that is down gets at most 0.35x the attempts it gets without a
//! budget, and the clients get at least 0.95x the successes once it is back.

use resilience::retry_storm::{simulate, Scenario};

#[test]
fn a_budget_cuts_the_outage_load_and_keeps_the_successes_after_it() {
    let scenario = Scenario::default();
    let without = simulate(&scenario, false);
    let with = simulate(&scenario, true);
    let load = with.attempts_during_outage as f64 / without.attempts_during_outage as f64;
    let successes = with.successes_after as f64 / without.successes_after as f64;
    assert!(
        load <= 0.35,
        "outage load ratio {load:.3}: {with:?} vs {without:?}"
    );
    assert!(successes >= 0.95, "successes ratio {successes:.3}");
    // Without a budget every call in the outage makes all its attempts.
    assert_eq!(without.budget_exhausted, 0);
    assert!(with.budget_exhausted > 0);
}

#[test]
fn the_study_is_repeatable() {
    let small = Scenario {
        clients: 5,
        ..Scenario::default()
    };
    assert_eq!(simulate(&small, true), simulate(&small, true));
}
