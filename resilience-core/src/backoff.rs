//! The delay before each retry: exponential growth, a cap, and jitter.

use crate::Rng;
use std::time::Duration;

/// How a delay is spread around its exponential base.
///
/// `base(k) = min(max_delay, initial_delay * backoff_factor^(k-1))` for retry `k` (1 for the first
/// retry); `u` is a uniform draw from `[0, 1)`. Every strategy is capped at `max_delay`.
///
/// ```
/// use resilience_core::Jitter;
/// assert_eq!(Jitter::default(), Jitter::Proportional);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Jitter {
    /// The original's jitter: `base * (1 + jitter_factor * u)`, never shorter than the base.
    #[default]
    Proportional,
    /// "Full jitter" (AWS architecture note "Exponential Backoff And Jitter"): `base * u`.
    Full,
    /// "Equal jitter": `base / 2 + base / 2 * u`.
    Equal,
    /// "Decorrelated jitter": `initial_delay + u * (3 * previous - initial_delay)`, where
    /// `previous` is the last delay (the initial delay before the first retry).
    Decorrelated,
}

impl Jitter {
    /// Parses `"proportional"`, `"full"`, `"equal"` or `"decorrelated"`.
    ///
    /// ```
    /// use resilience_core::Jitter;
    /// assert_eq!(Jitter::parse("full"), Some(Jitter::Full));
    /// assert_eq!(Jitter::parse("loud"), None);
    /// ```
    pub fn parse(name: &str) -> Option<Jitter> {
        match name {
            "proportional" => Some(Jitter::Proportional),
            "full" => Some(Jitter::Full),
            "equal" => Some(Jitter::Equal),
            "decorrelated" => Some(Jitter::Decorrelated),
            _ => None,
        }
    }

    /// The name [`Jitter::parse`] reads.
    pub const fn as_str(self) -> &'static str {
        match self {
            Jitter::Proportional => "proportional",
            Jitter::Full => "full",
            Jitter::Equal => "equal",
            Jitter::Decorrelated => "decorrelated",
        }
    }
}

/// The shape of a delay schedule: what [`RetryConfig`](crate::RetryConfig) holds for all errors,
/// and what a category can be given on its own
/// ([`RetryConfig::with_category_backoff`](crate::RetryConfig::with_category_backoff)).
///
/// ```
/// use resilience_core::{Backoff, Jitter};
/// use std::time::Duration;
///
/// let backoff = Backoff { jitter_factor: 0.0, ..Backoff::default() };
/// // retry 1, 2, 3 with the defaults: 100 ms, 200 ms, 400 ms
/// assert_eq!(backoff.delay(3, None, 0.5), Duration::from_millis(400));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    /// Delay before the first retry.
    pub initial_delay: Duration,
    /// No delay is ever longer.
    pub max_delay: Duration,
    /// Growth per retry; at least 1.
    pub backoff_factor: f64,
    /// Spread of [`Jitter::Proportional`], in `[0, 1]`.
    pub jitter_factor: f64,
    /// How the delay is spread.
    pub jitter: Jitter,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(60),
            backoff_factor: 2.0,
            jitter_factor: 0.1,
            jitter: Jitter::Proportional,
        }
    }
}

impl Backoff {
    /// The un-jittered delay before retry `retry` (1 for the first):
    /// `min(max_delay, initial_delay * backoff_factor^(retry-1))`. Saturates, never overflows.
    ///
    /// ```
    /// use resilience_core::Backoff;
    /// use std::time::Duration;
    /// let b = Backoff::default();
    /// assert_eq!(b.base_delay(1), Duration::from_millis(100));
    /// assert_eq!(b.base_delay(11), Duration::from_secs(60));
    /// assert_eq!(b.base_delay(u32::MAX), Duration::from_secs(60));
    /// ```
    pub fn base_delay(&self, retry: u32) -> Duration {
        nanos_to_duration(self.base_nanos(retry), self.max_delay)
    }

    fn base_nanos(&self, retry: u32) -> f64 {
        let initial = duration_nanos(self.initial_delay);
        if initial == 0.0 {
            return 0.0;
        }
        let exponent = i32::try_from(retry.saturating_sub(1)).unwrap_or(i32::MAX);
        // powi saturates to infinity, and min() then takes the cap.
        (initial * self.backoff_factor.powi(exponent)).min(duration_nanos(self.max_delay))
    }

    /// The delay before retry `retry` given the uniform draw `u` in `[0, 1)` and the previous
    /// delay (`None` before the first retry; only [`Jitter::Decorrelated`] uses it). Pure: the same
    /// inputs always give the same delay, and the result never exceeds `max_delay`.
    ///
    /// ```
    /// use resilience_core::{Backoff, Jitter};
    /// use std::time::Duration;
    /// let b = Backoff { jitter: Jitter::Full, ..Backoff::default() };
    /// assert_eq!(b.delay(2, None, 0.5), Duration::from_millis(100)); // half of the 200 ms base
    /// ```
    pub fn delay(&self, retry: u32, previous: Option<Duration>, u: f64) -> Duration {
        let u = if u.is_finite() {
            u.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let base = self.base_nanos(retry);
        let nanos = match self.jitter {
            Jitter::Proportional => base * (1.0 + self.jitter_factor * u),
            Jitter::Full => base * u,
            Jitter::Equal => base / 2.0 * (1.0 + u),
            Jitter::Decorrelated => {
                let low = duration_nanos(self.initial_delay);
                let high = (duration_nanos(previous.unwrap_or(self.initial_delay)) * 3.0).max(low);
                low + u * (high - low)
            }
        };
        nanos_to_duration(nanos, self.max_delay)
    }

    /// The delays before retries 1, 2, 3, … drawn from `rng`, endless (take what you need).
    ///
    /// ```
    /// use resilience_core::{Backoff, Rng};
    /// use std::time::Duration;
    /// let b = Backoff { jitter_factor: 0.0, ..Backoff::default() };
    /// let delays: Vec<_> = b.schedule(Rng::seeded(1)).take(3).collect();
    /// assert_eq!(delays, [100, 200, 400].map(Duration::from_millis));
    /// ```
    pub fn schedule(self, rng: Rng) -> DelaySchedule {
        DelaySchedule {
            backoff: self,
            rng,
            retry: 0,
            previous: None,
        }
    }
}

/// The delays before successive retries, as an iterator (see [`Backoff::schedule`] and
/// [`RetryConfig::delays`](crate::RetryConfig::delays)). Endless; each item is at most
/// `max_delay`.
#[derive(Debug)]
pub struct DelaySchedule {
    backoff: Backoff,
    rng: Rng,
    retry: u32,
    previous: Option<Duration>,
}

impl Iterator for DelaySchedule {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        self.retry = self.retry.saturating_add(1);
        let delay = self
            .backoff
            .delay(self.retry, self.previous, self.rng.next_f64());
        self.previous = Some(delay);
        Some(delay)
    }
}

fn duration_nanos(d: Duration) -> f64 {
    d.as_nanos() as f64
}

/// Rounds to whole nanoseconds and caps at `max` (also for NaN and infinity).
fn nanos_to_duration(nanos: f64, max: Duration) -> Duration {
    // NaN fails every comparison, so it is caught here with the values above the cap.
    if nanos.is_nan() || nanos >= duration_nanos(max) {
        return max;
    }
    if nanos <= 0.0 {
        return Duration::ZERO;
    }
    Duration::from_nanos(nanos.round() as u64).min(max)
}

/// A duration from a number of seconds, rounded to whole nanoseconds; `None` for negative,
/// NaN, infinite or too large values.
///
/// ```
/// use resilience_core::backoff::duration_from_secs;
/// use std::time::Duration;
/// assert_eq!(duration_from_secs(0.1), Some(Duration::from_millis(100)));
/// assert_eq!(duration_from_secs(-1.0), None);
/// ```
pub fn duration_from_secs(secs: f64) -> Option<Duration> {
    if !secs.is_finite() || secs < 0.0 {
        return None;
    }
    let nanos = (secs * 1e9).round();
    if nanos >= u64::MAX as f64 {
        return None;
    }
    Some(Duration::from_nanos(nanos as u64))
}
