//! A manager's settings as a whole, and [`resolve`]: the one place where the levels of settings
//! are combined.

use super::overrides::{repair_breaker, repair_retry};
use super::{
    key, BreakerOverrides, CallOverrides, CircuitBreakerConfig, RetryConfig, RetryOverrides,
};
use crate::ConfigError;
use std::collections::HashMap;

/// Everything a manager is configured with: its defaults and the per-operation entries of
/// `configure_from_json`.
#[derive(Clone, Debug, Default)]
pub(crate) struct Settings {
    pub(crate) retry: RetryConfig,
    pub(crate) breaker: CircuitBreakerConfig,
    /// Per (service, operation) entries; nested so that a look-up borrows the names.
    pub(crate) per_key: HashMap<String, HashMap<String, KeyOverrides>>,
}

/// The entry of one operation.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct KeyOverrides {
    pub(crate) retry: RetryOverrides,
    pub(crate) breaker: BreakerOverrides,
}

/// The settings one call runs with.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Effective {
    pub(crate) retry: RetryConfig,
    pub(crate) breaker: CircuitBreakerConfig,
}

impl Settings {
    /// The entry of (service, operation), if `configure_from_json` gave it one.
    pub(crate) fn entry(&self, service: &str, operation: &str) -> Option<&KeyOverrides> {
        self.per_key.get(service)?.get(operation)
    }

    /// Whether any setting has an overall deadline (then calls read the clock at their start).
    pub(crate) fn has_deadlines(&self) -> bool {
        self.retry.max_elapsed.is_some()
            || self
                .per_key
                .values()
                .flat_map(HashMap::values)
                .any(|k| k.retry.max_elapsed.is_some())
    }

    /// Checks the defaults and the settings every per-operation entry results in, naming the
    /// field at fault as its JSON path.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        self.retry.validate().map_err(|e| e.within("retry"))?;
        self.breaker
            .validate()
            .map_err(|e| e.within("circuit_breaker"))?;
        let mut entries: Vec<_> = self
            .per_key
            .iter()
            .flat_map(|(s, ops)| ops.iter().map(move |(o, k)| (key(s, o), s, o, k)))
            .collect();
        // Sorted, so that of several bad entries the same one is reported every time.
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, service, operation, _) in entries {
            resolve(self, service, operation, &CallOverrides::GUARDED)
                .validate()
                .map_err(|e| e.within(&format!("operations.{name}")))?;
        }
        Ok(())
    }
}

/// The settings of one call of (service, operation): values set at the call site win over the
/// operation's entry, which wins over the manager's defaults. A call site's whole config
/// (`call(..).config(..)`, the original's `config=`) replaces the entry and the defaults.
///
/// Used by calls, by [`Call::validate`](crate::Call::validate), by `#[retry]` sites and for the
/// breakers' settings alike, so they cannot disagree.
pub(crate) fn resolve(
    settings: &Settings,
    service: &str,
    operation: &str,
    call: &CallOverrides,
) -> Effective {
    let entry = settings.entry(service, operation);
    let mut retry = match &call.retry_base {
        Some(base) => RetryConfig::clone(base),
        None => {
            let mut retry = settings.retry.clone();
            if let Some(entry) = entry {
                entry.retry.apply(&mut retry);
            }
            retry
        }
    };
    call.retry.apply(&mut retry);
    let mut breaker = match &call.breaker_base {
        Some(base) => CircuitBreakerConfig::clone(base),
        None => {
            let mut breaker = settings.breaker.clone();
            if let Some(entry) = entry {
                entry.breaker.apply(&mut breaker);
            }
            breaker
        }
    };
    call.breaker.apply(&mut breaker);
    Effective { retry, breaker }
}

impl Effective {
    /// Checks both halves; the field is prefixed `retry.` or `circuit_breaker.`.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        self.retry.validate().map_err(|e| e.within("retry"))?;
        self.breaker
            .validate()
            .map_err(|e| e.within("circuit_breaker"))
    }

    /// These settings, with values that break a rule brought to the nearest valid ones (and the
    /// repair logged): a call given bad values at run time cannot return a `ConfigError`
    /// through the caller's error type.
    pub(crate) fn repaired(mut self) -> Self {
        repair_retry(&mut self.retry);
        repair_breaker(&mut self.breaker);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn with_entry(service: &str, operation: &str, entry: KeyOverrides) -> Settings {
        let mut settings = Settings::default();
        settings
            .per_key
            .entry(service.into())
            .or_default()
            .insert(operation.into(), entry);
        settings
    }

    #[test]
    fn call_site_beats_entry_beats_defaults() {
        let settings = with_entry(
            "s",
            "o",
            KeyOverrides {
                retry: RetryOverrides {
                    max_attempts: Some(7),
                    initial_delay: Some(Duration::from_secs(1)),
                    ..RetryOverrides::NONE
                },
                breaker: BreakerOverrides::NONE,
            },
        );
        let call = CallOverrides {
            retry: RetryOverrides {
                max_attempts: Some(2),
                ..RetryOverrides::NONE
            },
            ..CallOverrides::GUARDED
        };
        let effective = resolve(&settings, "s", "o", &call);
        assert_eq!(effective.retry.max_attempts, 2);
        assert_eq!(effective.retry.initial_delay, Duration::from_secs(1));
        assert_eq!(effective.retry.max_delay, RetryConfig::default().max_delay);
        let other = resolve(&settings, "s", "other", &call);
        assert_eq!(
            other.retry.initial_delay,
            RetryConfig::default().initial_delay
        );
    }

    #[test]
    fn an_entry_that_breaks_a_rule_with_the_defaults_is_named() {
        let mut settings = with_entry(
            "s",
            "o",
            KeyOverrides {
                retry: RetryOverrides {
                    initial_delay: Some(Duration::from_secs(30)),
                    ..RetryOverrides::NONE
                },
                breaker: BreakerOverrides::NONE,
            },
        );
        assert!(settings.validate().is_ok());
        settings.retry.max_delay = Duration::from_secs(10);
        let err = settings.validate().unwrap_err();
        assert_eq!(err.field(), "operations.s:o.retry.initial_delay");
    }
}
