//! The public retry-budget setting: its defaults (Finagle's), its plain-field construction and
//! the bounds `validate` puts on it. The runtime account's arithmetic is tested beside it, in
//! `src/budget.rs`.

use resilience_core::{ConfigError, RetryBudget};
use std::time::Duration;

#[test]
fn default_is_finagles() {
    assert_eq!(
        RetryBudget::default(),
        RetryBudget {
            ttl: Duration::from_secs(10),
            min_retries_per_sec: 10,
            percent_can_retry: 0.2,
        }
    );
    assert_eq!(RetryBudget::default().validate(), Ok(()));
}

#[test]
fn is_a_plain_copyable_struct_built_from_the_default() {
    let budget = RetryBudget {
        percent_can_retry: 0.5,
        ..Default::default()
    };
    let copy = budget;
    assert_eq!(copy, budget);
    assert_eq!(copy.ttl, Duration::from_secs(10));
    assert!(format!("{budget:?}").contains("percent_can_retry: 0.5"));
}

#[test]
fn validate_accepts_finagles_bounds() {
    for (ttl, min_retries_per_sec, percent_can_retry) in [
        (Duration::from_secs(1), 0, 0.0),
        (Duration::from_secs(60), 0, 1000.0),
        (Duration::from_millis(1_500), 1_000_000, 0.001),
        (Duration::from_secs(10), i32::MAX as u32 - 1, 0.2),
    ] {
        let budget = RetryBudget {
            ttl,
            min_retries_per_sec,
            percent_can_retry,
        };
        assert_eq!(budget.validate(), Ok(()), "{budget:?}");
    }
}

fn error_of(budget: RetryBudget) -> ConfigError {
    budget.validate().unwrap_err()
}

#[test]
fn validate_rejects_a_percent_outside_0_to_1000() {
    for percent_can_retry in [-0.000_1, -1.0, 1000.001, 1e9, f64::NAN, f64::INFINITY] {
        let err = error_of(RetryBudget {
            percent_can_retry,
            ..RetryBudget::default()
        });
        assert_eq!(err.field(), "percent_can_retry", "{percent_can_retry}");
    }
    assert_eq!(
        error_of(RetryBudget {
            percent_can_retry: 1500.0,
            ..RetryBudget::default()
        })
        .to_string(),
        "`percent_can_retry` must be between 0.0 and 1000.0 (retries per first attempt: 0.2 is \
         one in five), got 1500"
    );
}

#[test]
fn validate_rejects_a_ttl_outside_1s_to_60s() {
    for ttl in [
        Duration::ZERO,
        Duration::from_millis(999),
        Duration::from_secs(60) + Duration::from_nanos(1),
        Duration::from_secs(3_600),
    ] {
        let err = error_of(RetryBudget {
            ttl,
            ..RetryBudget::default()
        });
        assert_eq!(err.field(), "ttl", "{ttl:?}");
    }
    assert_eq!(
        error_of(RetryBudget {
            ttl: Duration::ZERO,
            ..RetryBudget::default()
        })
        .to_string(),
        "`ttl` must be between 1s and 60s, got 0ns"
    );
}

#[test]
fn validate_rejects_a_reserve_rate_tower_would_refuse() {
    let err = error_of(RetryBudget {
        min_retries_per_sec: u32::MAX,
        ..RetryBudget::default()
    });
    assert_eq!(err.field(), "min_retries_per_sec");
    assert_eq!(
        err.to_string(),
        "`min_retries_per_sec` must be below 2147483647, got 4294967295"
    );
}

#[test]
fn validate_reports_the_percent_first_when_several_fields_are_bad() {
    let err = error_of(RetryBudget {
        ttl: Duration::ZERO,
        min_retries_per_sec: u32::MAX,
        percent_can_retry: -1.0,
    });
    assert_eq!(err.field(), "percent_can_retry");
}
