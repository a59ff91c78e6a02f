//! Every setting of `resilience`, written once: the name it has in `#[retry(...)]` and in
//! `configure_from_json`, its field in the runtime's config structs, and the rule its values
//! follow, with the words that explain the rule. `resilience-macros` checks attribute arguments
//! with these rules at compile time; `resilience-core` validates configs, reads JSON and
//! repairs run-time overrides with the same ones, so the two cannot drift apart (serde keeps its
//! derive's internals in one crate for the same reason).
//!
//! ```
//! use resilience_settings::retry;
//! assert_eq!(retry::MAX_ATTEMPTS.name, "max_attempts");
//! assert_eq!(
//!     retry::MAX_ATTEMPTS.check_count(0).unwrap_err(),
//!     "must be at least 1 (1 means no retry), got 0"
//! );
//! assert!(retry::JITTER_FACTOR.check_number(0.5).is_ok());
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::time::Duration;

/// One setting.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Setting {
    /// Its name in `#[retry(...)]` and in `configure_from_json`.
    pub name: &'static str,
    /// Its field in the runtime's config struct (a path below the struct, where it differs).
    pub field: &'static str,
    /// The rule its values follow.
    pub rule: Rule,
}

/// The rule of a setting's values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rule {
    /// A whole number of at least `min`; `note` explains the bound.
    Count {
        /// The smallest value.
        min: u64,
        /// Why, in a few words, or "".
        note: &'static str,
    },
    /// A whole number below `limit`.
    Below {
        /// The first value not allowed.
        limit: u64,
    },
    /// A finite number from `min`, up to `max` when there is one.
    Number {
        /// The smallest value.
        min: f64,
        /// The largest value, if any.
        max: Option<f64>,
        /// Why, in a few words, or "".
        note: &'static str,
    },
    /// A share of calls: above 0 and at most 1.
    Rate,
    /// A duration; `positive`: more than zero.
    Duration {
        /// Whether zero is refused.
        positive: bool,
    },
    /// One of a few names.
    Choice(&'static [&'static str]),
    /// A duration from `min` to `max`.
    DurationWithin {
        /// The shortest.
        min: Duration,
        /// The longest.
        max: Duration,
    },
}

impl Setting {
    /// Checks a whole number; the error is the rule and the value, in words ("must be at
    /// least 1, got 0"), for the caller to put after the setting's name.
    ///
    /// ```
    /// use resilience_settings::breaker;
    /// assert_eq!(breaker::FAILURE_THRESHOLD.check_count(0).unwrap_err(), "must be at least 1, got 0");
    /// ```
    pub fn check_count(&self, value: u64) -> Result<(), String> {
        match self.rule {
            Rule::Count { min, note } if value < min => {
                Err(format!("must be at least {min}{note}, got {value}"))
            }
            Rule::Below { limit } if value >= limit => {
                Err(format!("must be below {limit}, got {value}"))
            }
            _ => Ok(()),
        }
    }

    /// Checks a number.
    ///
    /// ```
    /// use resilience_settings::retry;
    /// assert_eq!(
    ///     retry::JITTER_FACTOR.check_number(1.5).unwrap_err(),
    ///     "must be between 0.0 and 1.0, got 1.5"
    /// );
    /// ```
    pub fn check_number(&self, value: f64) -> Result<(), String> {
        match self.rule {
            Rule::Number { min, max, note } => {
                let within =
                    value.is_finite() && value >= min && max.is_none_or(|max| value <= max);
                match (within, max) {
                    (true, _) => Ok(()),
                    (false, Some(max)) => Err(format!(
                        "must be between {min:?} and {max:?}{note}, got {value}"
                    )),
                    (false, None) => Err(format!(
                        "must be a finite number of at least {min:?}{note}, got {value}"
                    )),
                }
            }
            Rule::Rate if !(value > 0.0 && value <= 1.0) => Err(format!(
                "must be a share of calls above 0.0 and at most 1.0, got {value}"
            )),
            _ => Ok(()),
        }
    }

    /// Checks a duration.
    ///
    /// ```
    /// use resilience_settings::budget;
    /// use std::time::Duration;
    /// assert_eq!(
    ///     budget::TTL.check_duration(Duration::from_millis(500)).unwrap_err(),
    ///     "must be between 1s and 60s, got 500ms"
    /// );
    /// ```
    pub fn check_duration(&self, value: Duration) -> Result<(), String> {
        match self.rule {
            Rule::Duration { positive: true } if value.is_zero() => {
                Err("must be more than zero when set (leave it out for none), got 0s".to_owned())
            }
            Rule::DurationWithin { min, max } if !(min..=max).contains(&value) => Err(format!(
                "must be between {min:?} and {max:?}, got {value:?}"
            )),
            _ => Ok(()),
        }
    }

    /// The valid value nearest to `value`, for repairs of run-time overrides; the smallest for a
    /// value that is not a finite number.
    ///
    /// ```
    /// use resilience_settings::retry;
    /// assert_eq!(retry::BACKOFF_FACTOR.nearest_number(0.5), 1.0);
    /// assert_eq!(retry::JITTER_FACTOR.nearest_number(f64::NAN), 0.0);
    /// ```
    pub fn nearest_number(&self, value: f64) -> f64 {
        match self.rule {
            Rule::Number { min, max, .. } => {
                let max = max.unwrap_or(f64::MAX);
                if value.is_finite() {
                    value.clamp(min, max)
                } else {
                    min
                }
            }
            Rule::Rate if !value.is_finite() || value <= 0.0 => f64::MIN_POSITIVE,
            Rule::Rate => value.min(1.0),
            _ => value,
        }
    }

    /// The valid whole number nearest to `value`.
    ///
    /// ```
    /// use resilience_settings::retry;
    /// assert_eq!(retry::MAX_ATTEMPTS.nearest_count(0), 1);
    /// ```
    pub fn nearest_count(&self, value: u64) -> u64 {
        match self.rule {
            Rule::Count { min, .. } => value.max(min),
            Rule::Below { limit } => value.min(limit.saturating_sub(1)),
            _ => value,
        }
    }
}

const fn setting(name: &'static str, rule: Rule) -> Setting {
    Setting {
        name,
        field: name,
        rule,
    }
}

const AT_LEAST_ONE: Rule = Rule::Count { min: 1, note: "" };
const ANY_DURATION: Rule = Rule::Duration { positive: false };
const POSITIVE_DURATION: Rule = Rule::Duration { positive: true };

/// Retry settings (`#[retry(...)]`, JSON `retry`, `RetryConfig`).
pub mod retry {
    use super::*;

    /// Every attempt counts, the first included.
    pub const MAX_ATTEMPTS: Setting = setting(
        "max_attempts",
        Rule::Count {
            min: 1,
            note: " (1 means no retry)",
        },
    );
    /// Delay before the first retry.
    pub const INITIAL_DELAY: Setting = setting("initial_delay", ANY_DURATION);
    /// No delay is longer.
    pub const MAX_DELAY: Setting = setting("max_delay", ANY_DURATION);
    /// Growth of the delay per retry.
    pub const BACKOFF_FACTOR: Setting = setting(
        "backoff_factor",
        Rule::Number {
            min: 1.0,
            max: None,
            note: " (delays never shrink)",
        },
    );
    /// Spread of the proportional jitter.
    pub const JITTER_FACTOR: Setting = setting(
        "jitter_factor",
        Rule::Number {
            min: 0.0,
            max: Some(1.0),
            note: "",
        },
    );
    /// An overall deadline for the call.
    pub const MAX_ELAPSED: Setting = setting("max_elapsed", POSITIVE_DURATION);
    /// How delays are spread: one of the jitter strategies, by name.
    pub const JITTER: Setting = setting(
        "jitter",
        Rule::Choice(&["proportional", "full", "equal", "decorrelated"]),
    );
    /// The retry settings, in the order the docs list them.
    pub const ALL: &[Setting] = &[
        MAX_ATTEMPTS,
        INITIAL_DELAY,
        MAX_DELAY,
        BACKOFF_FACTOR,
        JITTER_FACTOR,
        JITTER,
        MAX_ELAPSED,
    ];
}

/// Breaker settings (`circuit_breaker(...)`, JSON `circuit_breaker`, `CircuitBreakerConfig`).
pub mod breaker {
    use super::*;

    /// Consecutive retryable failures that open a closed breaker.
    pub const FAILURE_THRESHOLD: Setting = setting("failure_threshold", AT_LEAST_ONE);
    /// How long the breaker stays open the first time.
    pub const RESET_TIMEOUT: Setting = setting("reset_timeout", ANY_DURATION);
    /// Calls allowed in flight while half-open.
    pub const HALF_OPEN_MAX_CALLS: Setting = setting("half_open_max_calls", AT_LEAST_ONE);
    /// Successes in half-open that close the breaker.
    pub const SUCCESS_THRESHOLD: Setting = setting("success_threshold", AT_LEAST_ONE);
    /// Growth of the open timeout per re-open.
    pub const OPEN_TIMEOUT_INCREMENT_FACTOR: Setting = setting(
        "open_timeout_increment_factor",
        Rule::Number {
            min: 1.0,
            max: None,
            note: " (open timeouts never shrink)",
        },
    );
    /// The open timeout never grows beyond this.
    pub const MAX_OPEN_TIMEOUT: Setting = setting("max_open_timeout", ANY_DURATION);
    /// The failure-rate rule's threshold (`FailureRate::threshold`).
    pub const FAILURE_RATE: Setting = Setting {
        name: "failure_rate",
        field: "threshold",
        rule: Rule::Rate,
    };
    /// A time window (`Window::Time`).
    pub const WINDOW: Setting = setting("window", POSITIVE_DURATION);
    /// A count window (`Window::Count`).
    pub const WINDOW_CALLS: Setting = Setting {
        name: "window_calls",
        field: "window",
        rule: AT_LEAST_ONE,
    };
    /// No decision before the window holds this many calls.
    pub const MINIMUM_CALLS: Setting = setting("minimum_calls", AT_LEAST_ONE);
    /// From this duration on a call is slow (`SlowCall::duration`).
    pub const SLOW_CALL: Setting = Setting {
        name: "slow_call",
        field: "duration",
        rule: POSITIVE_DURATION,
    };
    /// The slow-call rule's threshold (`SlowCall::rate_threshold`).
    pub const SLOW_CALL_RATE: Setting = Setting {
        name: "slow_call_rate",
        field: "rate_threshold",
        rule: Rule::Rate,
    };
    /// How long a breaker may stay half-open.
    pub const MAX_HALF_OPEN_WAIT: Setting = setting("max_half_open_wait", POSITIVE_DURATION);
    /// Every breaker setting, in the order the docs list them.
    pub const ALL: &[Setting] = &[
        FAILURE_THRESHOLD,
        RESET_TIMEOUT,
        HALF_OPEN_MAX_CALLS,
        SUCCESS_THRESHOLD,
        OPEN_TIMEOUT_INCREMENT_FACTOR,
        MAX_OPEN_TIMEOUT,
        FAILURE_RATE,
        WINDOW,
        WINDOW_CALLS,
        MINIMUM_CALLS,
        SLOW_CALL,
        SLOW_CALL_RATE,
        MAX_HALF_OPEN_WAIT,
    ];
}

/// Retry budget settings (`budget(...)`, JSON `retry.budget`, `RetryBudget`), Finagle's bounds.
pub mod budget {
    use super::*;

    /// Retries allowed per first attempt (`RetryBudget::percent_can_retry`).
    pub const PERCENT: Setting = Setting {
        name: "percent",
        field: "percent_can_retry",
        rule: Rule::Number {
            min: 0.0,
            max: Some(1000.0),
            note: " (retries per first attempt: 0.2 is one in five)",
        },
    };
    /// Retries per second allowed with no traffic (`RetryBudget::min_retries_per_sec`).
    pub const MIN_PER_SEC: Setting = Setting {
        name: "min_per_sec",
        field: "min_retries_per_sec",
        rule: Rule::Below {
            limit: i32::MAX as u64,
        },
    };
    /// How long a deposit or a withdrawal counts.
    pub const TTL: Setting = setting(
        "ttl",
        Rule::DurationWithin {
            min: Duration::from_secs(1),
            max: Duration::from_secs(60),
        },
    );
    /// Every budget setting.
    pub const ALL: &[Setting] = &[PERCENT, MIN_PER_SEC, TTL];
}

/// Settings of `#[retry(...)]` alone (not in the runtime's config structs).
pub mod attribute {
    use super::*;

    /// `async fn` only: each attempt is cut after this long.
    pub const TIMEOUT: Setting = setting("timeout", POSITIVE_DURATION);
}

/// Pairs of settings where the first must not exceed the second.
///
/// ```
/// assert_eq!(resilience_settings::NOT_ABOVE[0].0.name, "initial_delay");
/// ```
pub const NOT_ABOVE: &[(Setting, Setting)] = &[
    (retry::INITIAL_DELAY, retry::MAX_DELAY),
    (breaker::RESET_TIMEOUT, breaker::MAX_OPEN_TIMEOUT),
];
