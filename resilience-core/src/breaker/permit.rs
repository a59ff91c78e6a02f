//! The permit an admitted call holds: a guard, so that no path (success, failure, neutral error,
//! panic, a dropped future) can keep a half-open trial slot forever.

use super::circuit::{CircuitBreaker, Outcome};
use super::machine::Ticket;

/// Leave to run one call through a breaker. Record how the call ended with
/// [`record_success`](Self::record_success), [`record_failure`](Self::record_failure) or
/// [`release`](Self::release). Dropped without any of them (an async attempt cancelled
/// mid-flight) it is given back without effect; dropped while the thread panics it counts as a
/// failure. Either way a half-open slot is never leaked.
///
/// A result counts only in the state the call was admitted in: a call admitted while closed
/// that ends after the breaker opened changes nothing.
///
/// ```
/// use resilience_core::{CircuitBreakerConfig, CircuitBreakerRegistry, CircuitState};
/// use std::time::Duration;
///
/// let registry = CircuitBreakerRegistry::new();
/// let breaker = registry.get_breaker("api", "fetch");
/// breaker.configure(&CircuitBreakerConfig {
///     failure_threshold: 1,
///     reset_timeout: Duration::ZERO,
///     ..Default::default()
/// });
/// breaker.try_acquire().unwrap().record_failure(); // opens, and half-open at once
/// let probe = breaker.try_acquire().unwrap();
/// assert!(breaker.try_acquire().is_err(), "one trial call at a time");
/// drop(probe); // neutral: the slot is free again
/// breaker.try_acquire().unwrap().record_success();
/// assert_eq!(breaker.state(), CircuitState::Closed);
/// ```
#[derive(Debug)]
#[must_use = "a permit records how the call ended"]
pub struct BreakerPermit<'a> {
    breaker: &'a CircuitBreaker,
    /// The breaker's word when the call was admitted (its epoch and clean bit).
    word: u64,
    /// The ticket, packed (see [`pack`]); [`TAKEN`] once the outcome is recorded. Three plain
    /// words rather than an `Option<Ticket>` (an enum in an enum): the compiler keeps them in
    /// registers where the permit's whole life is inlined, instead of a stack slot written and
    /// read back.
    ticket: u64,
}

/// The packed ticket of a permit whose outcome is recorded.
const TAKEN: u64 = 0;
const CLOSED: u64 = 1;
const TIMED: u64 = 2;
const HALF_OPEN: u64 = 3;
const FLEET: u64 = 4;
const KIND_BITS: u32 = 3;
const KIND: u64 = (1 << KIND_BITS) - 1;
/// The largest payload: start times (nanoseconds: 2^61 of them are 73 years of a monotonic
/// clock) are capped at it, lease ids of the machine kept below it, a fleet's lease ids (a
/// store's counter) are far below it, and it stands for the fleet's `UNCOUNTED`.
const PAYLOAD: u64 = u64::MAX >> KIND_BITS;

/// `ticket` in one word: the kind in the low three bits, the start time or lease id above them.
#[inline(always)]
const fn pack(ticket: Ticket) -> u64 {
    match ticket {
        Ticket::Closed => CLOSED,
        Ticket::Timed(start) => (min(start, PAYLOAD) << KIND_BITS) | TIMED,
        Ticket::HalfOpen(id) => (id << KIND_BITS) | HALF_OPEN,
        Ticket::Fleet(lease) => (min(lease, PAYLOAD) << KIND_BITS) | FLEET,
    }
}

const fn min(a: u64, b: u64) -> u64 {
    if a < b {
        a
    } else {
        b
    }
}

#[inline(always)]
const fn unpack(packed: u64) -> Ticket {
    let payload = packed >> KIND_BITS;
    match packed & KIND {
        TIMED => Ticket::Timed(payload),
        HALF_OPEN => Ticket::HalfOpen(payload),
        FLEET if payload == PAYLOAD => Ticket::Fleet(crate::store::gate::UNCOUNTED),
        FLEET => Ticket::Fleet(payload),
        _ => Ticket::Closed,
    }
}

impl<'a> BreakerPermit<'a> {
    #[inline(always)]
    pub(super) fn new(breaker: &'a CircuitBreaker, word: u64, ticket: Ticket) -> Self {
        BreakerPermit {
            breaker,
            word,
            ticket: pack(ticket),
        }
    }

    #[inline(always)]
    fn finish(&mut self, outcome: Outcome) {
        let packed = std::mem::replace(&mut self.ticket, TAKEN);
        // The packed word compared as it is, before any decoding: the common case, a call
        // admitted while closed, is one comparison.
        if packed == CLOSED {
            // A neutral end of a call admitted while closed holds no slot to give back; a
            // success on a breaker still clean since admission has nothing to record.
            let nothing_to_do = match outcome {
                Outcome::Neutral => true,
                Outcome::Success => self.breaker.unchanged_since(self.word),
                Outcome::Failure(_) => false,
            };
            if !nothing_to_do {
                self.breaker.finish(self.word, Ticket::Closed, outcome);
            }
        } else if packed != TAKEN {
            let ticket = unpack(packed);
            if outcome == Outcome::Neutral && matches!(ticket, Ticket::Timed(_)) {
                // A timed call through a closed breaker holds no slot either.
                return;
            }
            self.breaker.finish(self.word, ticket, outcome);
        }
    }

    /// Whether this permit holds one of the half-open breaker's trial slots (rather than being a
    /// call through a closed breaker).
    ///
    /// ```
    /// use resilience_core::CircuitBreakerRegistry;
    /// let breaker = CircuitBreakerRegistry::new().get_breaker("api", "fetch");
    /// assert!(!breaker.try_acquire().unwrap().is_trial());
    /// ```
    pub fn is_trial(&self) -> bool {
        match unpack(self.ticket) {
            _ if self.ticket == TAKEN => false,
            Ticket::HalfOpen(_) => true,
            Ticket::Fleet(lease) => lease != crate::store::gate::UNCOUNTED,
            _ => false,
        }
    }

    /// The call succeeded.
    ///
    /// ```
    /// use resilience_core::CircuitBreakerRegistry;
    /// let breaker = CircuitBreakerRegistry::new().get_breaker("api", "fetch");
    /// breaker.try_acquire().unwrap().record_failure();
    /// breaker.try_acquire().unwrap().record_success();
    /// assert_eq!(breaker.status().failure_count, 0, "a success ends the streak");
    /// ```
    #[inline(always)]
    pub fn record_success(mut self) {
        self.finish(Outcome::Success);
    }

    /// The call failed with a retryable (transient) error.
    ///
    /// ```
    /// use resilience_core::CircuitBreakerRegistry;
    /// let breaker = CircuitBreakerRegistry::new().get_breaker("api", "fetch");
    /// breaker.try_acquire().unwrap().record_failure();
    /// assert_eq!(breaker.status().failure_count, 1);
    /// ```
    pub fn record_failure(mut self) {
        self.finish(Outcome::Failure(None));
    }

    /// The call failed with a retryable error of `category`: as
    /// [`record_failure`](Self::record_failure), and the category is what a rejection says
    /// opened the breaker ([`CircuitOpenError::failure_category`](crate::CircuitOpenError::failure_category)).
    ///
    /// ```
    /// use resilience_core::{CircuitBreakerConfig, CircuitBreakerRegistry, ErrorCategory};
    /// let breaker = CircuitBreakerRegistry::new().get_breaker("api", "fetch");
    /// breaker.configure(&CircuitBreakerConfig { failure_threshold: 1, ..Default::default() });
    /// breaker.try_acquire().unwrap().record_failure_of(ErrorCategory::RateLimit);
    /// assert_eq!(breaker.try_acquire().unwrap_err().failure_category(), Some(ErrorCategory::RateLimit));
    /// ```
    // Inline: the retry driver's every failed attempt comes here.
    #[inline]
    pub fn record_failure_of(mut self, category: crate::ErrorCategory) {
        self.finish(Outcome::Failure(Some(category)));
    }

    /// The call ended in a way that says nothing about the service (a non-retryable error):
    /// neither success nor failure. A half-open slot is given back.
    ///
    /// ```
    /// use resilience_core::CircuitBreakerRegistry;
    /// let breaker = CircuitBreakerRegistry::new().get_breaker("api", "fetch");
    /// breaker.try_acquire().unwrap().record_failure();
    /// breaker.try_acquire().unwrap().release();
    /// assert_eq!(breaker.status().failure_count, 1, "neither reset nor counted");
    /// ```
    pub fn release(mut self) {
        self.finish(Outcome::Neutral);
    }
}

/// The outcomes recorded in place, through `&mut`, for the retry driver, which never moves a
/// permit out of where it is kept (see `call::Permit`). The permit is then `TAKEN`, and its
/// drop does nothing.
impl BreakerPermit<'_> {
    #[inline(always)]
    pub(crate) fn record_success_in_place(&mut self) {
        self.finish(Outcome::Success);
    }

    #[inline(always)]
    pub(crate) fn record_failure_of_in_place(&mut self, category: crate::ErrorCategory) {
        self.finish(Outcome::Failure(Some(category)));
    }

    #[inline(always)]
    pub(crate) fn release_in_place(&mut self) {
        self.finish(Outcome::Neutral);
    }
}

impl Drop for BreakerPermit<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        if self.ticket != TAKEN {
            self.dropped();
        }
    }
}

impl BreakerPermit<'_> {
    #[cold]
    fn dropped(&mut self) {
        if std::thread::panicking() {
            self.finish(Outcome::Failure(None));
        } else {
            self.finish(Outcome::Neutral);
        }
    }
}
