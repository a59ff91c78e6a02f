//! The retry budget setting: a cap on retries that is a share of a component's own traffic.

use super::check;
use crate::ConfigError;
use resilience_settings::budget as rules;
use resilience_settings::Rule;
use std::time::Duration;

// The bounds of the runtime's clamps, read from the rules themselves (a rule of another shape
// is a compile error here, not a surprise at run time).
/// The shortest `ttl` allowed (as Finagle allows).
pub(crate) const MIN_TTL: Duration = match rules::TTL.rule {
    Rule::DurationWithin { min, .. } => min,
    _ => panic!("`ttl` is a duration within bounds"),
};
/// The longest `ttl` allowed (as Finagle allows).
pub(crate) const MAX_TTL: Duration = match rules::TTL.rule {
    Rule::DurationWithin { max, .. } => max,
    _ => panic!("`ttl` is a duration within bounds"),
};
/// The largest `percent_can_retry` allowed (as Finagle allows).
pub(crate) const MAX_PERCENT_CAN_RETRY: f64 = match rules::PERCENT.rule {
    Rule::Number { max: Some(max), .. } => max,
    _ => panic!("`percent` is a number with a maximum"),
};

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

impl RetryBudget {
    /// Finagle's default, as a constant: `#[retry(budget(...))]` builds its values on it.
    pub const DEFAULT: RetryBudget = RetryBudget {
        ttl: Duration::from_secs(10),
        min_retries_per_sec: 10,
        percent_can_retry: 0.2,
    };
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
        RetryBudget::DEFAULT
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
        check(
            &rules::PERCENT,
            rules::PERCENT.check_number(self.percent_can_retry),
        )?;
        check(&rules::TTL, rules::TTL.check_duration(self.ttl))?;
        check(
            &rules::MIN_PER_SEC,
            rules::MIN_PER_SEC.check_count(self.min_retries_per_sec.into()),
        )
    }
}
