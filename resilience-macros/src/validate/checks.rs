//! Single values checked against their setting's rule (`resilience-settings`, the rules the
//! runtime validates with too), each error on the offending token. What is the macro's own is
//! only what a literal can get wrong before the rule applies: a sign, a size, a unit.

use crate::attr::Slot;
use crate::ctxt::Ctxt;
use crate::value::{duration_nanos, DurationError, DurationLit, Number};
use resilience_settings::Setting;
use std::time::Duration;

/// A whole number that fits a `u32` and follows `setting`'s rule.
pub(super) fn count(cx: &mut Ctxt, slot: &Slot<Number>, setting: &Setting) -> Option<u32> {
    let n = slot.value()?;
    let key = setting.name;
    if n.negative && n.digits.chars().any(|c| c != '0') {
        let rule = setting.check_count(0).err().map_or_else(
            || "it must be 0 or more".to_owned(),
            |rule| format!("it {}", rule.split(", got").next().unwrap_or(&rule)),
        );
        cx.error_spanned_by(&n.tokens, format!("`{key}` cannot be negative: {rule}"));
        return None;
    }
    let Ok(value) = n.digits.parse::<u32>() else {
        cx.error_spanned_by(
            &n.tokens,
            format!("`{key}` is too large: at most {}", u32::MAX),
        );
        return None;
    };
    match setting.check_count(value.into()) {
        Ok(()) => Some(value),
        Err(rule) => {
            cx.error_spanned_by(&n.tokens, format!("`{key}` {rule}"));
            None
        }
    }
}

/// A number that follows `setting`'s rule.
pub(super) fn number(cx: &mut Ctxt, slot: &Slot<Number>, setting: &Setting) -> Option<f64> {
    let n = slot.value()?;
    let value = n.to_f64();
    if !value.is_finite() {
        cx.error_spanned_by(
            &n.tokens,
            format!(
                "`{}` must be a finite number, got a value too large for an f64",
                setting.name
            ),
        );
        return None;
    }
    match setting.check_number(value) {
        Ok(()) => Some(value),
        Err(rule) => {
            cx.error_spanned_by(&n.tokens, format!("`{}` {rule}", setting.name));
            None
        }
    }
}

/// A duration in nanoseconds that follows `setting`'s rule.
pub(super) fn duration(cx: &mut Ctxt, slot: &Slot<DurationLit>, setting: &Setting) -> Option<u64> {
    let lit = slot.value()?;
    let key = setting.name;
    let message = match duration_nanos(lit) {
        Ok(nanos) => match setting.check_duration(Duration::from_nanos(nanos)) {
            Ok(()) => return Some(nanos),
            Err(rule) => format!("`{key}` {rule}"),
        },
        Err(DurationError::Negative) => format!("`{key}` cannot be negative"),
        Err(DurationError::TooLarge) => format!(
            "`{key}` is too large: at most {} seconds (about 584 years)",
            u64::MAX / 1_000_000_000
        ),
        Err(DurationError::Malformed(message)) => format!("`{key}`: {message}"),
    };
    cx.error_spanned_by(lit.tokens(), message);
    None
}
