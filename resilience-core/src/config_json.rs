//! Settings from JSON: the original's `configure_from_dict`, with the same keys.
//!
//! ```json
//! {
//!   "retry": {"max_attempts": 5, "initial_delay": 0.5, "max_delay": 30.0,
//!             "backoff_factor": 1.5, "jitter_factor": 0.2},
//!   "circuit_breaker": {"failure_threshold": 3, "reset_timeout": 60.0, "half_open_max_calls": 2,
//!                       "success_threshold": 2, "open_timeout_increment_factor": 2.0,
//!                       "max_open_timeout": 300.0},
//!   "operations": {"ChEMBL:fetch_molecule": {"retry": {"max_attempts": 8}}}
//! }
//! ```
//!
//! Durations are seconds as numbers, as in the original. Beyond the original, `retry` also takes
//! `jitter` (`"proportional"`, `"full"`, `"equal"`, `"decorrelated"`), `max_elapsed` (seconds)
//! and `retryable_categories` (a list of category names), and `operations` holds per
//! `"service:operation"` entries with the same `retry` and `circuit_breaker` keys.
//!
//! Precedence, highest first: values set at the call site (`#[retry(...)]` arguments,
//! `call(..).max_attempts(..)`), then the entry of the operation in `operations`, then the
//! top-level `retry` / `circuit_breaker` values, then the built-in defaults.
//!
//! Unknown keys and bad values are errors that name the field; nothing is applied then.

use crate::backoff::duration_from_secs;
use crate::manager::{KeyOverrides, Settings};
use crate::overrides::{BreakerOverrides, RetryOverrides};
use crate::{CategorySet, ConfigError, ErrorCategory, Jitter};
use serde_json::{Map, Value};
use std::time::Duration;

const RETRY_KEYS: &[&str] = &[
    "max_attempts",
    "initial_delay",
    "max_delay",
    "backoff_factor",
    "jitter_factor",
    "jitter",
    "max_elapsed",
    "retryable_categories",
];
const BREAKER_KEYS: &[&str] = &[
    "failure_threshold",
    "reset_timeout",
    "half_open_max_calls",
    "success_threshold",
    "open_timeout_increment_factor",
    "max_open_timeout",
];

pub(crate) fn apply(settings: &mut Settings, value: &Value) -> Result<(), ConfigError> {
    let root = object(value, "")?;
    check_keys(root, "", &["retry", "circuit_breaker", "operations"])?;
    if let Some(retry) = root.get("retry") {
        let (overrides, categories) = retry_overrides(retry, "retry")?;
        overrides.apply(&mut settings.retry);
        if let Some(categories) = categories {
            settings.retry.retryable_categories = categories;
        }
        settings.retry.validate().map_err(|e| e.within("retry"))?;
    }
    if let Some(breaker) = root.get("circuit_breaker") {
        breaker_overrides(breaker, "circuit_breaker")?.apply(&mut settings.breaker);
        settings
            .breaker
            .validate()
            .map_err(|e| e.within("circuit_breaker"))?;
    }
    if let Some(operations) = root.get("operations") {
        for (key, entry) in object(operations, "operations")? {
            let path = format!("operations.{key}");
            if key.split_once(':').is_none() {
                return Err(ConfigError::new(
                    path,
                    "must be named \"service:operation\"",
                ));
            }
            let entry_map = object(entry, &path)?;
            check_keys(entry_map, &path, &["retry", "circuit_breaker"])?;
            let mut overrides = KeyOverrides::default();
            if let Some(retry) = entry_map.get("retry") {
                let retry_path = format!("{path}.retry");
                let (retry_overrides, categories) = retry_overrides(retry, &retry_path)?;
                if categories.is_some() {
                    return Err(ConfigError::new(
                        format!("{retry_path}.retryable_categories"),
                        "can only be set in the top-level `retry`",
                    ));
                }
                let mut check = settings.retry.clone();
                retry_overrides.apply(&mut check);
                check.validate().map_err(|e| e.within(&retry_path))?;
                overrides.retry = retry_overrides;
            }
            if let Some(breaker) = entry_map.get("circuit_breaker") {
                let breaker_path = format!("{path}.circuit_breaker");
                let breaker_overrides = breaker_overrides(breaker, &breaker_path)?;
                let mut check = settings.breaker.clone();
                breaker_overrides.apply(&mut check);
                check.validate().map_err(|e| e.within(&breaker_path))?;
                overrides.breaker = breaker_overrides;
            }
            settings.per_key.insert(key.clone(), overrides);
        }
    }
    Ok(())
}

fn retry_overrides(
    value: &Value,
    path: &str,
) -> Result<(RetryOverrides, Option<CategorySet>), ConfigError> {
    let map = object(value, path)?;
    check_keys(map, path, RETRY_KEYS)?;
    let field = |key: &str| format!("{path}.{key}");
    let mut overrides = RetryOverrides::NONE;
    let mut categories = None;
    for (key, v) in map {
        match key.as_str() {
            "max_attempts" => overrides.max_attempts = Some(whole(v, &field(key))?),
            "initial_delay" => overrides.initial_delay = Some(seconds(v, &field(key))?),
            "max_delay" => overrides.max_delay = Some(seconds(v, &field(key))?),
            "backoff_factor" => overrides.backoff_factor = Some(number(v, &field(key))?),
            "jitter_factor" => overrides.jitter_factor = Some(number(v, &field(key))?),
            "max_elapsed" => overrides.max_elapsed = Some(seconds(v, &field(key))?),
            "jitter" => {
                let name = v.as_str().ok_or_else(|| {
                    ConfigError::new(field(key), format!("must be a string, got {v}"))
                })?;
                overrides.jitter = Some(Jitter::parse(name).ok_or_else(|| {
                    ConfigError::new(
                        field(key),
                        format!("must be one of \"proportional\", \"full\", \"equal\", \"decorrelated\", got {v}"),
                    )
                })?);
            }
            "retryable_categories" => {
                let list = v.as_array().ok_or_else(|| {
                    ConfigError::new(
                        field(key),
                        format!("must be a list of category names, got {v}"),
                    )
                })?;
                let mut set = CategorySet::EMPTY;
                for item in list {
                    let category =
                        item.as_str()
                            .and_then(ErrorCategory::parse)
                            .ok_or_else(|| {
                                ConfigError::new(
                                    field(key),
                                    format!(
                                        "has {item}, which is not a category (one of {})",
                                        ErrorCategory::ALL.map(|c| c.as_str()).join(", ")
                                    ),
                                )
                            })?;
                    set = set.with(category);
                }
                categories = Some(set);
            }
            _ => {}
        }
    }
    Ok((overrides, categories))
}

fn breaker_overrides(value: &Value, path: &str) -> Result<BreakerOverrides, ConfigError> {
    let map = object(value, path)?;
    check_keys(map, path, BREAKER_KEYS)?;
    let field = |key: &str| format!("{path}.{key}");
    let mut overrides = BreakerOverrides::NONE;
    for (key, v) in map {
        match key.as_str() {
            "failure_threshold" => overrides.failure_threshold = Some(whole(v, &field(key))?),
            "reset_timeout" => overrides.reset_timeout = Some(seconds(v, &field(key))?),
            "half_open_max_calls" => overrides.half_open_max_calls = Some(whole(v, &field(key))?),
            "success_threshold" => overrides.success_threshold = Some(whole(v, &field(key))?),
            "open_timeout_increment_factor" => {
                overrides.open_timeout_increment_factor = Some(number(v, &field(key))?)
            }
            "max_open_timeout" => overrides.max_open_timeout = Some(seconds(v, &field(key))?),
            _ => {}
        }
    }
    Ok(overrides)
}

fn object<'a>(value: &'a Value, path: &str) -> Result<&'a Map<String, Value>, ConfigError> {
    value.as_object().ok_or_else(|| {
        let name = if path.is_empty() { "(root)" } else { path };
        ConfigError::new(name, format!("must be a JSON object, got {value}"))
    })
}

fn check_keys(map: &Map<String, Value>, path: &str, allowed: &[&str]) -> Result<(), ConfigError> {
    for key in map.keys() {
        if !allowed.contains(&key.as_str()) {
            let field = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            return Err(ConfigError::new(
                field,
                format!(
                    "is not a known key (expected one of: {})",
                    allowed.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

fn whole(value: &Value, field: &str) -> Result<u32, ConfigError> {
    value
        .as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| {
            ConfigError::new(
                field,
                format!("must be a whole number from 0 to {}, got {value}", u32::MAX),
            )
        })
}

fn number(value: &Value, field: &str) -> Result<f64, ConfigError> {
    value
        .as_f64()
        .ok_or_else(|| ConfigError::new(field, format!("must be a number, got {value}")))
}

fn seconds(value: &Value, field: &str) -> Result<Duration, ConfigError> {
    let secs = number(value, field)?;
    duration_from_secs(secs).ok_or_else(|| {
        ConfigError::new(
            field,
            format!("must be a non-negative number of seconds, got {value}"),
        )
    })
}
