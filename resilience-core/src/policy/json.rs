//! Settings from JSON: the original's `configure_from_dict`, with the same keys, read through
//! serde's derive (unknown keys are errors) with the path of a bad value kept for the error.
//!
//! ```json
//! {
//!   "retry": {"max_attempts": 5, "initial_delay": 0.5, "max_delay": 30.0,
//!             "backoff_factor": 1.5, "jitter_factor": 0.2},
//!   "circuit_breaker": {"failure_threshold": 3, "reset_timeout": 60.0, "half_open_max_calls": 2,
//!                       "success_threshold": 2, "open_timeout_increment_factor": 2.0,
//!                       "max_open_timeout": 300.0},
//!   "operations": {"ChEMBL:fetch_molecule": {"retry": {"max_attempts": 8}}},
//!   "store": {"redis": "redis://127.0.0.1:6379", "quorum_min": 2}
//! }
//! ```

use super::{parse_key, BreakerOverrides, KeyOverrides, RetryOverrides, Settings};
use super::{RetryBudget, Window};
use crate::backoff::duration_from_secs;
use crate::{CategorySet, ConfigError, ErrorCategory, Jitter};
use serde::de::{Deserializer, Error as _};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// One JSON document of settings, checked for shape and types but not yet for the rules between
/// values (those are checked on the settings it results in).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Document {
    #[serde(default)]
    retry: Option<RetryDoc>,
    #[serde(default)]
    circuit_breaker: Option<BreakerDoc>,
    #[serde(default)]
    operations: Option<BTreeMap<String, EntryDoc>>,
    /// Where the breakers are shared (feature `redis`), read by the store itself.
    #[serde(default)]
    store: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RetryDoc {
    #[serde(default, deserialize_with = "whole")]
    max_attempts: Option<u32>,
    #[serde(default, deserialize_with = "seconds")]
    initial_delay: Option<Duration>,
    #[serde(default, deserialize_with = "seconds")]
    max_delay: Option<Duration>,
    #[serde(default, deserialize_with = "number")]
    backoff_factor: Option<f64>,
    #[serde(default, deserialize_with = "number")]
    jitter_factor: Option<f64>,
    #[serde(default, deserialize_with = "jitter")]
    jitter: Option<Jitter>,
    #[serde(default, deserialize_with = "seconds")]
    max_elapsed: Option<Duration>,
    #[serde(default, deserialize_with = "categories")]
    retryable_categories: Option<CategorySet>,
    #[serde(default)]
    budget: Option<BudgetSetting>,
}

/// `"budget": false` (no budget), or `"budget": {"percent": 0.2, "min_per_sec": 10, "ttl": 10}`
/// with any of the keys (the others from [`RetryBudget::DEFAULT`]).
#[derive(Debug)]
struct BudgetSetting(Option<RetryBudget>);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BudgetDoc {
    #[serde(default, deserialize_with = "number")]
    percent: Option<f64>,
    #[serde(default, deserialize_with = "whole")]
    min_per_sec: Option<u32>,
    #[serde(default, deserialize_with = "seconds")]
    ttl: Option<Duration>,
}

impl<'de> Deserialize<'de> for BudgetSetting {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = BudgetSetting;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("`false` or an object with `percent`, `min_per_sec` and `ttl`")
            }
            fn visit_bool<E: serde::de::Error>(self, on: bool) -> Result<BudgetSetting, E> {
                Ok(BudgetSetting(on.then_some(RetryBudget::DEFAULT)))
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(
                self,
                map: M,
            ) -> Result<BudgetSetting, M::Error> {
                // Through the map itself, so that the path of a bad key stays known.
                let doc =
                    BudgetDoc::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                let mut budget = RetryBudget::DEFAULT;
                set(&mut budget.percent_can_retry, doc.percent);
                set(&mut budget.min_retries_per_sec, doc.min_per_sec);
                set(&mut budget.ttl, doc.ttl);
                Ok(BudgetSetting(Some(budget)))
            }
        }
        d.deserialize_any(Visitor)
    }
}

fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *slot = value;
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BreakerDoc {
    #[serde(default, deserialize_with = "whole")]
    failure_threshold: Option<u32>,
    #[serde(default, deserialize_with = "seconds")]
    reset_timeout: Option<Duration>,
    #[serde(default, deserialize_with = "whole")]
    half_open_max_calls: Option<u32>,
    #[serde(default, deserialize_with = "whole")]
    success_threshold: Option<u32>,
    #[serde(default, deserialize_with = "number")]
    open_timeout_increment_factor: Option<f64>,
    #[serde(default, deserialize_with = "seconds")]
    max_open_timeout: Option<Duration>,
    #[serde(default, deserialize_with = "number")]
    failure_rate: Option<f64>,
    #[serde(default, deserialize_with = "seconds")]
    window: Option<Duration>,
    #[serde(default, deserialize_with = "whole")]
    window_calls: Option<u32>,
    #[serde(default, deserialize_with = "whole")]
    minimum_calls: Option<u32>,
    #[serde(default, deserialize_with = "seconds")]
    slow_call: Option<Duration>,
    #[serde(default, deserialize_with = "number")]
    slow_call_rate: Option<f64>,
    #[serde(default, deserialize_with = "seconds")]
    max_half_open_wait: Option<Duration>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryDoc {
    #[serde(default)]
    retry: Option<RetryDoc>,
    #[serde(default)]
    circuit_breaker: Option<BreakerDoc>,
}

impl Document {
    /// Reads `value`; a bad shape, type or key is an error naming its path.
    pub(crate) fn parse(value: &Value) -> Result<Document, ConfigError> {
        objects_where_expected(value)?;
        serde_path_to_error::deserialize(value).map_err(|e| {
            // The path names an unknown key itself; "." is the document as a whole.
            let path = match e.path().to_string() {
                path if path == "." || path.is_empty() => "(root)".to_owned(),
                path => path,
            };
            ConfigError::new(path, e.inner().to_string())
        })
    }

    /// Takes the document's `store` section, if it has one, for the registry to read.
    pub(crate) fn take_store(&mut self) -> Option<Value> {
        self.store.take()
    }

    /// Lays this document over `settings`: its `retry` and `circuit_breaker` values over the
    /// defaults, its `operations` entries in place of the entries of the same operations.
    pub(crate) fn apply_to(self, settings: &mut Settings) -> Result<(), ConfigError> {
        if let Some(retry) = self.retry {
            let categories = retry.retryable_categories;
            retry.overrides().apply(&mut settings.retry);
            if let Some(categories) = categories {
                settings.retry.retryable_categories = categories;
            }
        }
        if let Some(breaker) = self.circuit_breaker {
            breaker
                .overrides("circuit_breaker")?
                .apply(&mut settings.breaker);
        }
        for (name, entry) in self.operations.unwrap_or_default() {
            let path = format!("operations.{name}");
            let (service, operation) = parse_key(&name).ok_or_else(|| {
                ConfigError::new(
                    &path,
                    "must be named \"service:operation\" (a `:` or `%` in the service name written `%3A` or `%25`)",
                )
            })?;
            let mut overrides = KeyOverrides::default();
            if let Some(retry) = entry.retry {
                if retry.retryable_categories.is_some() {
                    return Err(ConfigError::new(
                        format!("{path}.retry.retryable_categories"),
                        "can only be set in the top-level `retry`",
                    ));
                }
                overrides.retry = retry.overrides();
            }
            if let Some(breaker) = entry.circuit_breaker {
                overrides.breaker = breaker.overrides(&format!("{path}.circuit_breaker"))?;
            }
            settings
                .per_key
                .entry(service)
                .or_default()
                .insert(operation, overrides);
        }
        Ok(())
    }
}

/// Checks that the document and its sections are JSON objects: serde's derive would also take a
/// list of values in field order, which no one writes on purpose.
fn objects_where_expected(root: &Value) -> Result<(), ConfigError> {
    fn object<'a>(
        value: &'a Value,
        path: &str,
    ) -> Result<&'a serde_json::Map<String, Value>, ConfigError> {
        value
            .as_object()
            .ok_or_else(|| ConfigError::new(path, format!("must be a JSON object, got {value}")))
    }
    fn sections(map: &serde_json::Map<String, Value>, prefix: &str) -> Result<(), ConfigError> {
        for section in ["retry", "circuit_breaker"] {
            if let Some(value) = map.get(section) {
                object(value, &format!("{prefix}{section}"))?;
            }
        }
        Ok(())
    }
    let root = object(root, "(root)")?;
    sections(root, "")?;
    if let Some(operations) = root.get("operations") {
        for (name, entry) in object(operations, "operations")? {
            let path = format!("operations.{name}");
            sections(object(entry, &path)?, &format!("{path}."))?;
        }
    }
    Ok(())
}

impl RetryDoc {
    fn overrides(&self) -> RetryOverrides {
        RetryOverrides {
            max_attempts: self.max_attempts,
            initial_delay: self.initial_delay,
            max_delay: self.max_delay,
            backoff_factor: self.backoff_factor,
            jitter_factor: self.jitter_factor,
            jitter: self.jitter,
            max_elapsed: self.max_elapsed,
            budget: self.budget.as_ref().map(|b| b.0),
        }
    }
}

impl BreakerDoc {
    fn overrides(&self, path: &str) -> Result<BreakerOverrides, ConfigError> {
        let window = match (self.window, self.window_calls) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    format!("{path}.window_calls"),
                    "cannot be given with `window`: a window is the last N calls or the calls of the last D seconds, not both",
                ))
            }
            (Some(time), None) => Some(Window::Time(time)),
            (None, Some(calls)) => Some(Window::Count(calls)),
            (None, None) => None,
        };
        Ok(BreakerOverrides {
            failure_threshold: self.failure_threshold,
            reset_timeout: self.reset_timeout,
            half_open_max_calls: self.half_open_max_calls,
            success_threshold: self.success_threshold,
            open_timeout_increment_factor: self.open_timeout_increment_factor,
            max_open_timeout: self.max_open_timeout,
            failure_rate: self.failure_rate,
            window,
            minimum_calls: self.minimum_calls,
            slow_call: self.slow_call,
            slow_call_rate: self.slow_call_rate,
            max_half_open_wait: self.max_half_open_wait,
        })
    }
}

// Values are read as JSON first, so that a wrong one is reported in the project's words
// ("must be a whole number ..., got -1") rather than serde's.

fn whole<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    let v = Value::deserialize(d)?;
    v.as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .map(Some)
        .ok_or_else(|| {
            D::Error::custom(format!(
                "must be a whole number from 0 to {}, got {v}",
                u32::MAX
            ))
        })
}

fn number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    let v = Value::deserialize(d)?;
    v.as_f64()
        .map(Some)
        .ok_or_else(|| D::Error::custom(format!("must be a number, got {v}")))
}

fn seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let v = Value::deserialize(d)?;
    v.as_f64()
        .and_then(duration_from_secs)
        .map(Some)
        .ok_or_else(|| {
            D::Error::custom(format!("must be a non-negative number of seconds, got {v}"))
        })
}

fn jitter<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Jitter>, D::Error> {
    let v = Value::deserialize(d)?;
    v.as_str().and_then(Jitter::parse).map(Some).ok_or_else(|| {
        D::Error::custom(format!(
            "must be one of \"proportional\", \"full\", \"equal\", \"decorrelated\", got {v}"
        ))
    })
}

fn categories<'de, D: Deserializer<'de>>(d: D) -> Result<Option<CategorySet>, D::Error> {
    let v = Value::deserialize(d)?;
    let list = v
        .as_array()
        .ok_or_else(|| D::Error::custom(format!("must be a list of category names, got {v}")))?;
    let mut set = CategorySet::EMPTY;
    for item in list {
        let category = item
            .as_str()
            .and_then(ErrorCategory::parse)
            .ok_or_else(|| {
                D::Error::custom(format!(
                    "has {item}, which is not a category (one of {})",
                    ErrorCategory::ALL.map(|c| c.as_str()).join(", ")
                ))
            })?;
        set = set.with(category);
    }
    Ok(Some(set))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::BTreeSet;

    /// The keys serde knows in `section`, read from its error for an unknown one.
    fn keys_of(document: Value) -> BTreeSet<String> {
        let err = Document::parse(&document).unwrap_err();
        let (_, known) = err
            .rule()
            .split_once("expected one of ")
            .unwrap_or_else(|| panic!("{err}"));
        known
            .split(", ")
            .map(|k| k.trim_matches('`').to_owned())
            .collect()
    }

    fn names(settings: &[resilience_settings::Setting]) -> BTreeSet<String> {
        settings.iter().map(|s| s.name.to_owned()).collect()
    }

    /// The JSON keys are the settings' names that `#[retry]` uses too (`resilience-settings`);
    /// serde's derive needs them as literals, so this keeps the two from drifting apart.
    #[test]
    fn the_json_keys_are_the_settings_names() {
        let mut retry = names(resilience_settings::retry::ALL);
        retry.extend(["retryable_categories".to_owned(), "budget".to_owned()]);
        assert_eq!(keys_of(json!({"retry": {"?": 1}})), retry);
        assert_eq!(
            keys_of(json!({"circuit_breaker": {"?": 1}})),
            names(resilience_settings::breaker::ALL)
        );
        assert_eq!(
            keys_of(json!({"retry": {"budget": {"?": 1}}})),
            names(resilience_settings::budget::ALL)
        );
    }
}
