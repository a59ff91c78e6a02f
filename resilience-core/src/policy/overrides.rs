//! Partial configurations: what a call site, a builder call or a per-operation JSON entry sets,
//! laid over the manager's defaults, and the repairs of values that break a rule.

use super::{CircuitBreakerConfig, FailureRate, RetryBudget, RetryConfig, SlowCall, Window};
use crate::Jitter;
use resilience_settings::{breaker, retry, Setting};
use std::time::Duration;

/// Retry settings given at one level (call site, per-operation entry); `None` keeps the value
/// from the level below. Const-constructible, so `#[retry]` builds it at compile time.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RetryOverrides {
    pub max_attempts: Option<u32>,
    pub initial_delay: Option<Duration>,
    pub max_delay: Option<Duration>,
    pub backoff_factor: Option<f64>,
    pub jitter_factor: Option<f64>,
    pub jitter: Option<Jitter>,
    pub max_elapsed: Option<Duration>,
    /// `Some(None)`: no budget (`budget = false`); `Some(Some(b))`: budget `b`.
    pub budget: Option<Option<RetryBudget>>,
}

impl RetryOverrides {
    /// Nothing overridden.
    pub const NONE: RetryOverrides = RetryOverrides {
        max_attempts: None,
        initial_delay: None,
        max_delay: None,
        backoff_factor: None,
        jitter_factor: None,
        jitter: None,
        max_elapsed: None,
        budget: None,
    };

    /// Writes the values that are set into `config`.
    pub fn apply(&self, config: &mut RetryConfig) {
        set(&mut config.max_attempts, self.max_attempts);
        set(&mut config.initial_delay, self.initial_delay);
        set(&mut config.max_delay, self.max_delay);
        set(&mut config.backoff_factor, self.backoff_factor);
        set(&mut config.jitter_factor, self.jitter_factor);
        set(&mut config.jitter, self.jitter);
        if self.max_elapsed.is_some() {
            config.max_elapsed = self.max_elapsed;
        }
        set(&mut config.budget, self.budget);
    }
}

/// Breaker settings given at one level; `None` keeps the value from the level below.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BreakerOverrides {
    pub failure_threshold: Option<u32>,
    pub reset_timeout: Option<Duration>,
    pub half_open_max_calls: Option<u32>,
    pub success_threshold: Option<u32>,
    pub open_timeout_increment_factor: Option<f64>,
    pub max_open_timeout: Option<Duration>,
    /// The failure-rate rule's threshold; setting it (or `window`, or `minimum_calls`) turns
    /// the rule on, its other values from the level below or [`FailureRate::default`].
    pub failure_rate: Option<f64>,
    /// The rate rules' window.
    pub window: Option<Window>,
    /// The rate rules' minimum number of calls.
    pub minimum_calls: Option<u32>,
    /// The slow-call rule's duration; setting it (or `slow_call_rate`) turns the rule on.
    pub slow_call: Option<Duration>,
    /// The slow-call rule's rate threshold.
    pub slow_call_rate: Option<f64>,
    /// How long a breaker may stay half-open.
    pub max_half_open_wait: Option<Duration>,
}

impl BreakerOverrides {
    /// Nothing overridden.
    pub const NONE: BreakerOverrides = BreakerOverrides {
        failure_threshold: None,
        reset_timeout: None,
        half_open_max_calls: None,
        success_threshold: None,
        open_timeout_increment_factor: None,
        max_open_timeout: None,
        failure_rate: None,
        window: None,
        minimum_calls: None,
        slow_call: None,
        slow_call_rate: None,
        max_half_open_wait: None,
    };

    /// Writes the values that are set into `config`.
    pub fn apply(&self, config: &mut CircuitBreakerConfig) {
        set(&mut config.failure_threshold, self.failure_threshold);
        set(&mut config.reset_timeout, self.reset_timeout);
        set(&mut config.half_open_max_calls, self.half_open_max_calls);
        set(&mut config.success_threshold, self.success_threshold);
        set(
            &mut config.open_timeout_increment_factor,
            self.open_timeout_increment_factor,
        );
        set(&mut config.max_open_timeout, self.max_open_timeout);
        if self.failure_rate.is_some() || self.window.is_some() || self.minimum_calls.is_some() {
            let mut rule = config.failure_rate.unwrap_or_default();
            set(&mut rule.threshold, self.failure_rate);
            set(&mut rule.window, self.window);
            set(&mut rule.minimum_calls, self.minimum_calls);
            config.failure_rate = Some(rule);
        }
        if self.slow_call.is_some() || self.slow_call_rate.is_some() {
            let mut rule = config.slow_call.unwrap_or_default();
            set(&mut rule.duration, self.slow_call);
            set(&mut rule.rate_threshold, self.slow_call_rate);
            config.slow_call = Some(rule);
        }
        if self.max_half_open_wait.is_some() {
            config.max_half_open_wait = self.max_half_open_wait;
        }
    }
}

/// Everything one call asks for on top of the manager's settings: `#[retry(...)]` arguments, or
/// a `call(..)` builder's. Const-constructible, so `#[retry]` builds it at compile time.
#[doc(hidden)]
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CallOverrides {
    /// Replaces the manager's retry settings for this call (the original's `config=`); the
    /// per-operation entry is then not used for retries. Boxed: most calls override nothing.
    pub retry_base: Option<Box<RetryConfig>>,
    /// Retry values set at the call site.
    pub retry: RetryOverrides,
    /// Replaces the manager's breaker settings for this call's breaker.
    pub breaker_base: Option<Box<CircuitBreakerConfig>>,
    /// Breaker values set at the call site.
    pub breaker: BreakerOverrides,
    /// Whether the call goes through its breaker.
    pub use_breaker: bool,
}

impl CallOverrides {
    /// A call through the breaker with nothing overridden.
    pub const GUARDED: CallOverrides = CallOverrides {
        retry_base: None,
        retry: RetryOverrides::NONE,
        breaker_base: None,
        breaker: BreakerOverrides::NONE,
        use_breaker: true,
    };

    /// Whether this call sets anything of its breaker's settings.
    pub(crate) fn sets_breaker(&self) -> bool {
        self.use_breaker && (self.breaker_base.is_some() || self.breaker != BreakerOverrides::NONE)
    }
}

fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *slot = value;
    }
}

/// Brings a config that breaks a rule back to the nearest valid one. Call-site overrides given
/// at run time (`call(..).max_attempts(0)`) cannot return an error through the caller's error
/// type, so they are repaired and the repair is logged.
pub(crate) fn repair_retry(config: &mut RetryConfig) {
    if let Err(e) = config.validate() {
        tracing::error!(error = %e, "invalid retry configuration; using the nearest valid values");
        config.max_attempts = nearest_count(&retry::MAX_ATTEMPTS, config.max_attempts);
        config.backoff_factor = retry::BACKOFF_FACTOR.nearest_number(config.backoff_factor);
        config.jitter_factor = retry::JITTER_FACTOR.nearest_number(config.jitter_factor);
        config.initial_delay = config.initial_delay.min(config.max_delay);
        if config.max_elapsed == Some(Duration::ZERO) {
            config.max_elapsed = None;
        }
        config
            .category_backoff
            .retain(|(_, b)| b.validate().is_ok());
        config.budget = config.budget.filter(|b| b.validate().is_ok());
    }
}

/// The count nearest to `value` that `setting`'s rule allows.
fn nearest_count(setting: &Setting, value: u32) -> u32 {
    u32::try_from(setting.nearest_count(value.into())).unwrap_or(u32::MAX)
}

/// As [`repair_retry`], for breaker settings.
pub(crate) fn repair_breaker(config: &mut CircuitBreakerConfig) {
    if let Err(e) = config.validate() {
        tracing::error!(error = %e, "invalid circuit breaker configuration; using the nearest valid values");
        config.failure_threshold =
            nearest_count(&breaker::FAILURE_THRESHOLD, config.failure_threshold);
        config.half_open_max_calls =
            nearest_count(&breaker::HALF_OPEN_MAX_CALLS, config.half_open_max_calls);
        config.success_threshold =
            nearest_count(&breaker::SUCCESS_THRESHOLD, config.success_threshold);
        config.open_timeout_increment_factor = breaker::OPEN_TIMEOUT_INCREMENT_FACTOR
            .nearest_number(config.open_timeout_increment_factor);
        config.max_open_timeout = config.max_open_timeout.max(config.reset_timeout);
        // A rule that breaks its own rules is dropped rather than guessed at.
        config.failure_rate = config
            .failure_rate
            .filter(|r: &FailureRate| r.validate().is_ok());
        config.slow_call = config.slow_call.filter(|r: &SlowCall| r.validate().is_ok());
        if config.max_half_open_wait == Some(Duration::ZERO) {
            config.max_half_open_wait = None;
        }
    }
}
