//! The layout of a breaker's hot-path word (see `circuit`): what the lock-free paths read and,
//! for the consecutive-failure count of a closed breaker, write.
//!
//! ```text
//! bit  0       CLEAN     closed with no failure counted and no rate rule, or disabled
//! bit  1       ADMIT     closed with a rate rule: admitted without the mutex
//! bit  2       FAST      ... and an ordinary success counts on the stripes without it
//! bit  3       TIMED     ... and calls are timed (the slow-call rule)
//! bit  4       COUNTING  closed, automatic, the consecutive rule, no state file: failures
//!                        below the threshold and the success that ends a streak are counted
//!                        in the word itself, without the mutex
//! bits 5-20    COUNT     the consecutive failures (meaningful with COUNTING)
//! bits 21-36   LIMIT     the failure threshold (meaningful with COUNTING)
//! bits 37-63   epoch     the machine's epoch
//! ```
//!
//! Only the mutex holder changes the flags, the limit and the epoch; without the mutex a
//! compare-exchange may change COUNT and CLEAN of a COUNTING word and nothing else. The mutex
//! holder first clears COUNTING (see `CircuitBreaker::freeze`), so that from then on the word
//! is its alone until it publishes the next one.

pub(crate) const CLEAN: u64 = 1;
pub(crate) const ADMIT: u64 = 1 << 1;
/// Successes of calls admitted with this flag may be counted without the lock.
pub(crate) const FAST: u64 = 1 << 2;
/// Calls admitted with this flag are timed (the slow-call rule).
pub(crate) const TIMED: u64 = 1 << 3;
pub(crate) const COUNTING: u64 = 1 << 4;
const COUNT_SHIFT: u32 = 5;
const LIMIT_SHIFT: u32 = 21;
/// The largest count and limit the word holds; a breaker with a higher threshold counts under
/// the mutex.
pub(crate) const MAX_COUNT: u32 = 0xFFFF;
const COUNT_MASK: u64 = (MAX_COUNT as u64) << COUNT_SHIFT;
pub(crate) const EPOCH_SHIFT: u32 = 37;
/// Epochs wrap within the word's bits (a permit would have to live through 2^27 state changes
/// to be mistaken for a current one).
pub(crate) const EPOCH_MASK: u64 = u64::MAX >> EPOCH_SHIFT;

/// The epoch of `word`.
#[inline(always)]
pub(crate) const fn epoch(word: u64) -> u64 {
    word >> EPOCH_SHIFT
}

/// The COUNTING part of a word: `count` failures of a threshold of `limit` (both at most
/// [`MAX_COUNT`]).
pub(crate) const fn counting(count: u32, limit: u32) -> u64 {
    COUNTING | ((count as u64) << COUNT_SHIFT) | ((limit as u64) << LIMIT_SHIFT)
}

/// The consecutive failures a COUNTING word holds.
#[inline(always)]
pub(crate) const fn count(word: u64) -> u32 {
    ((word & COUNT_MASK) >> COUNT_SHIFT) as u32
}

#[inline(always)]
const fn limit(word: u64) -> u32 {
    ((word >> LIMIT_SHIFT) as u32) & MAX_COUNT
}

/// `current` with one more failure counted, or `None` when the word cannot count it: not
/// COUNTING, another epoch than `admitted`'s, or a failure that reaches the threshold (which
/// opens the breaker, under the mutex).
#[inline(always)]
pub(crate) const fn with_failure(current: u64, admitted: u64) -> Option<u64> {
    if current & COUNTING == 0 || epoch(current) != epoch(admitted) {
        return None;
    }
    let next = count(current) + 1;
    if next >= limit(current) {
        return None;
    }
    Some((current & !(CLEAN | COUNT_MASK)) | ((next as u64) << COUNT_SHIFT))
}

/// `current` with its failure streak ended by a success of a call admitted with `admitted`:
/// `Some(current)` when there is none, `None` when the word cannot record it (not COUNTING, or
/// another epoch).
#[inline(always)]
pub(crate) const fn with_success(current: u64, admitted: u64) -> Option<u64> {
    if current & COUNTING == 0 || epoch(current) != epoch(admitted) {
        return None;
    }
    Some((current & !COUNT_MASK) | CLEAN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_streak_is_counted_up_to_one_below_the_limit() {
        let word = (7 << EPOCH_SHIFT) | CLEAN | counting(0, 3);
        let one = with_failure(word, word).unwrap();
        assert_eq!((count(one), one & CLEAN, epoch(one)), (1, 0, 7));
        let two = with_failure(one, word).unwrap();
        assert_eq!(count(two), 2);
        assert_eq!(
            with_failure(two, word),
            None,
            "the third failure opens: the mutex"
        );
        assert_eq!(
            with_success(two, word),
            Some(word),
            "a success ends the streak"
        );
    }

    #[test]
    fn other_epochs_and_words_that_do_not_count_go_to_the_mutex() {
        let word = (7 << EPOCH_SHIFT) | CLEAN | counting(0, 3);
        let later = (8 << EPOCH_SHIFT) | CLEAN | counting(0, 3);
        assert_eq!(with_failure(later, word), None);
        assert_eq!(with_success(later, word), None);
        assert_eq!(with_failure(7 << EPOCH_SHIFT | CLEAN, word), None);
        assert_eq!(epoch(EPOCH_MASK << EPOCH_SHIFT), EPOCH_MASK);
    }
}
