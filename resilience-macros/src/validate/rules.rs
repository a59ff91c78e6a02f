//! The rules of single values, each with its error on the offending token: counts, factors,
//! rates, durations.

use crate::attr::Slot;
use crate::ctxt::Ctxt;
use crate::value::{duration_nanos, DurationError, DurationLit, Number};

/// A count of at least 1 that fits a `u32`.
pub(super) fn count(cx: &mut Ctxt, slot: &Slot<Number>, key: &str, note: &str) -> Option<u32> {
    let n = slot.value()?;
    if n.negative && n.digits.chars().any(|c| c != '0') {
        cx.error_spanned_by(
            &n.tokens,
            format!("`{key}` cannot be negative: it must be at least 1{note}"),
        );
        return None;
    }
    match n.digits.parse::<u32>() {
        Ok(0) => {
            cx.error_spanned_by(
                &n.tokens,
                format!("`{key}` must be at least 1{note}, got 0"),
            );
            None
        }
        Ok(v) => Some(v),
        Err(_) => {
            cx.error_spanned_by(
                &n.tokens,
                format!("`{key}` is too large: at most {}", u32::MAX),
            );
            None
        }
    }
}

/// A finite number in `[min, max]`.
pub(super) fn factor(
    cx: &mut Ctxt,
    slot: &Slot<Number>,
    key: &str,
    min: f64,
    max: Option<f64>,
    note: &str,
) -> Option<f64> {
    let n = slot.value()?;
    let value = n.to_f64();
    let range = match max {
        Some(max) => format!("between {min:?} and {max:?}"),
        None => format!("at least {min:?}{note}"),
    };
    if !value.is_finite() {
        cx.error_spanned_by(
            &n.tokens,
            format!("`{key}` must be a finite number {range}, got a value too large for an f64"),
        );
        return None;
    }
    if value < 0.0 {
        cx.error_spanned_by(
            &n.tokens,
            format!("`{key}` cannot be negative: it must be {range}, got {value}"),
        );
        return None;
    }
    if value < min || max.is_some_and(|max| value > max) {
        cx.error_spanned_by(&n.tokens, format!("`{key}` must be {range}, got {value}"));
        return None;
    }
    Some(value)
}

/// A duration in nanoseconds; zero only where it means something.
pub(super) fn duration(
    cx: &mut Ctxt,
    slot: &Slot<DurationLit>,
    key: &str,
    zero_ok: bool,
) -> Option<u64> {
    let lit = slot.value()?;
    match duration_nanos(lit) {
        Ok(0) if !zero_ok => {
            cx.error_spanned_by(
                lit.tokens(),
                format!("`{key}` must be longer than zero; leave it out for no limit"),
            );
            None
        }
        Ok(nanos) => Some(nanos),
        Err(DurationError::Negative) => {
            cx.error_spanned_by(lit.tokens(), format!("`{key}` cannot be negative"));
            None
        }
        Err(DurationError::TooLarge) => {
            cx.error_spanned_by(
                lit.tokens(),
                format!(
                    "`{key}` is too large: at most {} seconds (about 584 years)",
                    u64::MAX / 1_000_000_000
                ),
            );
            None
        }
        Err(DurationError::Malformed(message)) => {
            cx.error_spanned_by(lit.tokens(), format!("`{key}`: {message}"));
            None
        }
    }
}

/// A share of calls: above 0 and at most 1.
pub(super) fn rate(cx: &mut Ctxt, slot: &Slot<Number>, key: &str) -> Option<f64> {
    let value = factor(cx, slot, key, 0.0, Some(1.0), "")?;
    if value == 0.0 {
        let n = slot.value()?;
        cx.error_spanned_by(
            &n.tokens,
            format!("`{key}` must be a share of calls above 0.0 and at most 1.0, got 0"),
        );
        return None;
    }
    Some(value)
}

/// A whole number from 0 up to (not including) `limit`.
pub(super) fn whole_below(
    cx: &mut Ctxt,
    slot: &Slot<Number>,
    key: &str,
    limit: u32,
) -> Option<u32> {
    let n = slot.value()?;
    let parsed = if n.negative && n.digits.chars().any(|c| c != '0') {
        None
    } else {
        n.digits.parse::<u32>().ok().filter(|v| *v < limit)
    };
    if parsed.is_none() {
        cx.error_spanned_by(
            &n.tokens,
            format!("`{key}` must be a whole number from 0 to {}", limit - 1),
        );
    }
    parsed
}
