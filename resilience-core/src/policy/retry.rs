//! The retry policy: how many attempts, how long to wait, which errors are retried.

use super::{check, check_not_above, RetryBudget};
use crate::{Backoff, CategorySet, ConfigError, DelaySchedule, ErrorCategory, Jitter, Rng};
use resilience_settings::retry as rules;
use std::error::Error;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// How a call is retried. Built with struct update syntax from the defaults (3 attempts, 100 ms,
/// 60 s, factor 2.0, jitter 0.1, as in the original):
///
/// ```
/// use resilience_core::{ErrorCategory, RetryConfig};
/// use std::time::Duration;
///
/// let config = RetryConfig {
///     max_attempts: 5,
///     initial_delay: Duration::from_millis(500),
///     max_delay: Duration::from_secs(30),
///     ..RetryConfig::default()
/// }
/// .never_retry::<std::num::ParseIntError>();
/// assert!(config.validate().is_ok());
/// assert!(config.retryable_categories.contains(ErrorCategory::Network));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct RetryConfig {
    /// Every attempt counts, the first included: 1 means no retry.
    pub max_attempts: u32,
    /// Delay before the first retry.
    pub initial_delay: Duration,
    /// No delay is ever longer, jitter, `retry_after` hints and per-category schedules included.
    pub max_delay: Duration,
    /// Growth of the delay per retry; at least 1.
    pub backoff_factor: f64,
    /// Spread of the proportional jitter, in `[0, 1]`: a delay is `base * (1 + jitter_factor * u)`.
    pub jitter_factor: f64,
    /// How delays are spread; the original's proportional jitter by default.
    pub jitter: Jitter,
    /// Categories that are retried (and count against the breaker). Default: the transient ones
    /// and `Unknown`.
    pub retryable_categories: CategorySet,
    /// Error types never retried, whatever their category, matched on the error and along its
    /// `source()` chain. Add with [`RetryConfig::never_retry`].
    pub non_retryable: NonRetryable,
    /// Categories with a delay schedule of their own (say, longer waits for `RateLimit`).
    pub category_backoff: Vec<(ErrorCategory, Backoff)>,
    /// An overall deadline from the start of the call: no retry starts whose delay would end past
    /// it. `None` (the default): only `max_attempts` limits the call.
    pub max_elapsed: Option<Duration>,
    /// A cap on retries as a share of the component's traffic, shared by all its operations
    /// (Finagle's retry budget). `None` (the default): only `max_attempts` limits retries.
    pub budget: Option<RetryBudget>,
}

impl Default for RetryConfig {
    fn default() -> Self {
        let backoff = Backoff::default();
        RetryConfig {
            max_attempts: 3,
            initial_delay: backoff.initial_delay,
            max_delay: backoff.max_delay,
            backoff_factor: backoff.backoff_factor,
            jitter_factor: backoff.jitter_factor,
            jitter: backoff.jitter,
            retryable_categories: CategorySet::DEFAULT_RETRYABLE,
            non_retryable: NonRetryable::default(),
            category_backoff: Vec::new(),
            max_elapsed: None,
            budget: None,
        }
    }
}

impl RetryConfig {
    /// This config, with errors of type `T` never retried (also when found deeper in the
    /// `source()` chain of the error returned).
    ///
    /// ```
    /// use resilience_core::RetryConfig;
    /// let config = RetryConfig::default().never_retry::<std::num::ParseIntError>();
    /// assert_eq!(config.non_retryable.type_names(), ["core::num::error::ParseIntError"]);
    /// ```
    pub fn never_retry<T: Error + 'static>(mut self) -> Self {
        self.non_retryable.add::<T>();
        self
    }

    /// This config, with `category` waiting on its own schedule.
    ///
    /// ```
    /// use resilience_core::{Backoff, ErrorCategory, RetryConfig};
    /// use std::time::Duration;
    /// let config = RetryConfig::default().with_category_backoff(
    ///     ErrorCategory::RateLimit,
    ///     Backoff { initial_delay: Duration::from_secs(2), ..Backoff::default() },
    /// );
    /// assert_eq!(config.backoff_for(ErrorCategory::RateLimit).initial_delay, Duration::from_secs(2));
    /// assert_eq!(config.backoff_for(ErrorCategory::Network).initial_delay, Duration::from_millis(100));
    /// ```
    pub fn with_category_backoff(mut self, category: ErrorCategory, backoff: Backoff) -> Self {
        self.category_backoff.retain(|(c, _)| *c != category);
        self.category_backoff.push((category, backoff));
        self
    }

    /// The delay schedule shared by all categories without one of their own.
    #[inline]
    pub fn backoff(&self) -> Backoff {
        Backoff {
            initial_delay: self.initial_delay,
            max_delay: self.max_delay,
            backoff_factor: self.backoff_factor,
            jitter_factor: self.jitter_factor,
            jitter: self.jitter,
        }
    }

    /// The delay schedule used after an error of `category`. A category's own schedule is
    /// capped by this config's `max_delay` too: no delay is ever longer.
    ///
    /// ```
    /// use resilience_core::{Backoff, ErrorCategory, RetryConfig};
    /// use std::time::Duration;
    /// let config = RetryConfig { max_delay: Duration::from_secs(5), ..RetryConfig::default() }
    ///     .with_category_backoff(
    ///         ErrorCategory::RateLimit,
    ///         Backoff { initial_delay: Duration::from_secs(30), max_delay: Duration::from_secs(60), ..Backoff::default() },
    ///     );
    /// let backoff = config.backoff_for(ErrorCategory::RateLimit);
    /// assert_eq!((backoff.initial_delay, backoff.max_delay), (Duration::from_secs(5), Duration::from_secs(5)));
    /// ```
    // Inline: a retry reads only the fields it needs (a zero delay reads two).
    #[inline]
    pub fn backoff_for(&self, category: ErrorCategory) -> Backoff {
        match self.category_backoff.iter().find(|(c, _)| *c == category) {
            Some((_, own)) => Backoff {
                initial_delay: own.initial_delay.min(self.max_delay),
                max_delay: own.max_delay.min(self.max_delay),
                ..*own
            },
            None => self.backoff(),
        }
    }

    /// The delays this config waits before retries 1 ..= `max_attempts - 1`, drawn from `rng`.
    ///
    /// ```
    /// use resilience_core::{RetryConfig, Rng};
    /// use std::time::Duration;
    /// let config = RetryConfig { jitter_factor: 0.0, ..RetryConfig::default() };
    /// let delays: Vec<_> = config.delays(Rng::seeded(0)).collect();
    /// assert_eq!(delays, [Duration::from_millis(100), Duration::from_millis(200)]);
    /// ```
    pub fn delays(&self, rng: Rng) -> std::iter::Take<DelaySchedule> {
        let retries = self.max_attempts.saturating_sub(1) as usize;
        self.backoff().schedule(rng).take(retries)
    }

    /// Checks every rule, returning the first value that breaks one.
    ///
    /// ```
    /// use resilience_core::RetryConfig;
    /// let bad = RetryConfig { backoff_factor: 0.5, ..RetryConfig::default() };
    /// assert_eq!(bad.validate().unwrap_err().field(), "backoff_factor");
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        check(
            &rules::MAX_ATTEMPTS,
            rules::MAX_ATTEMPTS.check_count(self.max_attempts.into()),
        )?;
        self.backoff().validate()?;
        for (category, backoff) in &self.category_backoff {
            backoff
                .validate()
                .map_err(|e| e.within(&format!("category_backoff.{category}")))?;
        }
        if let Some(limit) = self.max_elapsed {
            check(
                &rules::MAX_ELAPSED,
                rules::MAX_ELAPSED.check_duration(limit),
            )?;
        }
        if let Some(budget) = &self.budget {
            budget.validate().map_err(|e| e.within("budget"))?;
        }
        Ok(())
    }
}

impl Backoff {
    /// Checks the delay rules: `backoff_factor` finite and at least 1, `jitter_factor` in
    /// `[0, 1]`, `initial_delay` not above `max_delay`.
    ///
    /// ```
    /// use resilience_core::Backoff;
    /// assert!(Backoff { jitter_factor: 1.5, ..Backoff::default() }.validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        check(
            &rules::BACKOFF_FACTOR,
            rules::BACKOFF_FACTOR.check_number(self.backoff_factor),
        )?;
        check(
            &rules::JITTER_FACTOR,
            rules::JITTER_FACTOR.check_number(self.jitter_factor),
        )?;
        check_not_above(
            (rules::INITIAL_DELAY, rules::MAX_DELAY),
            self.initial_delay,
            self.max_delay,
        )
    }
}

/// Error types that are never retried, matched with `downcast` on the error and along its
/// `source()` chain (see [`Classify::as_error`](crate::Classify::as_error)).
///
/// ```
/// use resilience_core::NonRetryable;
/// let mut never = NonRetryable::default();
/// never.add::<std::num::ParseIntError>();
/// let err = "x".parse::<u8>().unwrap_err();
/// assert!(never.matches(&err));
/// ```
#[derive(Clone, Default)]
pub struct NonRetryable {
    matchers: Vec<TypeMatcher>,
}

type IsType = Arc<dyn Fn(&(dyn Error + 'static)) -> bool + Send + Sync>;

#[derive(Clone)]
struct TypeMatcher {
    type_name: &'static str,
    is_type: IsType,
}

impl NonRetryable {
    /// Adds the type `T`.
    pub fn add<T: Error + 'static>(&mut self) {
        let type_name = std::any::type_name::<T>();
        if self.matchers.iter().any(|m| m.type_name == type_name) {
            return;
        }
        self.matchers.push(TypeMatcher {
            type_name,
            is_type: Arc::new(|e| e.is::<T>()),
        });
    }

    /// Whether `err` or any error in its `source()` chain is of one of the types.
    // Inline: with no type (the common case) this is one test; the walk stays out of line.
    #[inline]
    pub fn matches(&self, err: &(dyn Error + 'static)) -> bool {
        !self.matchers.is_empty() && self.matches_along_chain(err)
    }

    fn matches_along_chain(&self, err: &(dyn Error + 'static)) -> bool {
        crate::classify::errors_along_chain(err)
            .any(|e| self.matchers.iter().any(|m| (m.is_type)(e)))
    }

    /// The names of the types, in the order they were added.
    pub fn type_names(&self) -> Vec<&'static str> {
        self.matchers.iter().map(|m| m.type_name).collect()
    }

    /// Whether no type was added.
    pub fn is_empty(&self) -> bool {
        self.matchers.is_empty()
    }
}

impl PartialEq for NonRetryable {
    fn eq(&self, other: &Self) -> bool {
        self.type_names() == other.type_names()
    }
}

impl fmt::Debug for NonRetryable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.type_names()).finish()
    }
}
