//! Settings as data, and the one place where they are combined.
//!
//! This layer holds no runtime state: the retry and breaker settings, the partial settings a call
//! site or a per-operation entry lays over them, a manager's settings as a whole, the JSON form of
//! those settings, the `"service:operation"` key format, and [`resolve`], the one function that
//! turns (component, operation, call-site overrides) into the settings a call runs with. The
//! layers above (`call`, `manager`) and the breakers below use it; it uses neither.

mod breaker;
mod budget;
mod json;
mod keys;
mod overrides;
mod retry;
mod settings;

pub(crate) use breaker::next_open_timeout;
pub use breaker::{CircuitBreakerConfig, FailureRate, SlowCall, Window};
pub use budget::RetryBudget;
pub(crate) use budget::{MAX_PERCENT_CAN_RETRY, MAX_TTL, MIN_TTL};
pub(crate) use json::Document;
pub(crate) use keys::{key, parse_key};
pub(crate) use overrides::repair_breaker;
pub use overrides::{BreakerOverrides, CallOverrides, RetryOverrides};
pub use retry::{NonRetryable, RetryConfig};
pub(crate) use settings::{resolve, KeyOverrides, Settings};

use crate::ConfigError;
use resilience_settings::Setting;
use std::time::Duration;

/// A value checked by `setting`'s rule (from `resilience-settings`, the rules `#[retry]` checks
/// at compile time), as a `ConfigError` naming the setting's field.
pub(crate) fn check(setting: &Setting, checked: Result<(), String>) -> Result<(), ConfigError> {
    checked.map_err(|rule| ConfigError::new(setting.field, rule))
}

/// `lower` must not exceed `upper` (a pair of `resilience_settings::NOT_ABOVE`).
pub(crate) fn check_not_above(
    (lower, upper): (Setting, Setting),
    low: Duration,
    high: Duration,
) -> Result<(), ConfigError> {
    if low > high {
        return Err(ConfigError::new(
            lower.field,
            format!("must not exceed `{}` ({high:?}), got {low:?}", upper.name),
        ));
    }
    Ok(())
}
