//! Literal values of attribute arguments: numbers (with their sign, kept exact as decimal
//! digits) and durations (seconds as a number, or a string with a unit).

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::{Expr, Lit, UnOp};

/// A numeric literal, possibly negated, as written.
#[derive(Clone, Debug)]
pub(crate) struct Number {
    /// A leading `-`.
    pub negative: bool,
    /// The literal's decimal digits (`1.5e3`), without suffix or `_`.
    pub digits: String,
    /// Written as an integer literal.
    pub is_int: bool,
    /// The whole value, sign included, for errors that underline all of it.
    pub tokens: TokenStream,
}

impl Number {
    /// Reads `expr` when it is a numeric literal, or the negation of one.
    pub(crate) fn from_expr(expr: &Expr) -> Option<Number> {
        match expr {
            Expr::Lit(lit) => match &lit.lit {
                Lit::Int(i) => Some(Number {
                    negative: false,
                    digits: i.base10_digits().to_owned(),
                    is_int: true,
                    tokens: expr.to_token_stream(),
                }),
                Lit::Float(f) => Some(Number {
                    negative: false,
                    digits: f.base10_digits().to_owned(),
                    is_int: false,
                    tokens: expr.to_token_stream(),
                }),
                _ => None,
            },
            Expr::Unary(u) if matches!(u.op, UnOp::Neg(_)) => {
                let inner = Number::from_expr(&u.expr)?;
                Some(Number {
                    negative: !inner.negative,
                    tokens: expr.to_token_stream(),
                    ..inner
                })
            }
            Expr::Group(g) => Number::from_expr(&g.expr),
            Expr::Paren(p) => Number::from_expr(&p.expr),
            _ => None,
        }
    }

    /// The value as an `f64` (infinite when too large for one).
    pub(crate) fn to_f64(&self) -> f64 {
        let magnitude: f64 = self.digits.parse().unwrap_or(f64::INFINITY);
        if self.negative {
            -magnitude
        } else {
            magnitude
        }
    }
}

/// A duration argument as written.
#[derive(Clone, Debug)]
pub(crate) enum DurationLit {
    /// Seconds: `1`, `0.25`.
    Seconds(Number),
    /// With a unit: `"250ms"`.
    Text(syn::LitStr),
}

impl DurationLit {
    /// The value as written, for errors.
    pub(crate) fn tokens(&self) -> TokenStream {
        match self {
            DurationLit::Seconds(n) => n.tokens.clone(),
            DurationLit::Text(s) => s.to_token_stream(),
        }
    }
}

/// Why a duration was refused.
#[derive(Debug, PartialEq)]
pub(crate) enum DurationError {
    Negative,
    TooLarge,
    Malformed(String),
}

const NANOS_PER_SECOND: u128 = 1_000_000_000;

/// The units accepted in duration strings, with their length in nanoseconds.
pub(crate) const UNITS: &[(&str, u128)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("ms", 1_000_000),
    ("s", NANOS_PER_SECOND),
    ("m", 60 * NANOS_PER_SECOND),
    ("min", 60 * NANOS_PER_SECOND),
    ("h", 3_600 * NANOS_PER_SECOND),
];

/// The duration in nanoseconds; at most `u64::MAX` (about 584 years).
pub(crate) fn duration_nanos(lit: &DurationLit) -> Result<u64, DurationError> {
    let nanos = match lit {
        DurationLit::Seconds(n) => {
            if n.negative && !is_zero(&n.digits) {
                return Err(DurationError::Negative);
            }
            decimal_nanos(&n.digits, NANOS_PER_SECOND).ok_or(DurationError::TooLarge)?
        }
        DurationLit::Text(s) => parse_duration_text(&s.value())?,
    };
    u64::try_from(nanos).map_err(|_| DurationError::TooLarge)
}

fn is_zero(digits: &str) -> bool {
    digits
        .split(['e', 'E'])
        .next()
        .is_some_and(|m| m.chars().all(|c| c == '0' || c == '.'))
}

/// `"1.5s"`, `"250ms"`, `"1m30s"`, `"1h 15m"`: numbers each followed by a unit.
pub(crate) fn parse_duration_text(text: &str) -> Result<u128, DurationError> {
    let malformed = || {
        DurationError::Malformed(format!(
            "`{text}` is not a duration: write a number followed by a unit, such as \"250ms\", \"2s\", \"1.5m\" or \"1h30m\" (units: ns, us, ms, s, m, h)"
        ))
    };
    let trimmed = text.trim();
    if trimmed.starts_with('-') {
        return Err(DurationError::Negative);
    }
    if trimmed.is_empty() {
        return Err(malformed());
    }
    let mut rest = trimmed;
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_len);
        if number.is_empty() {
            return Err(malformed());
        }
        let after = after.trim_start();
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c.is_whitespace())
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let Some((_, unit_nanos)) = UNITS.iter().find(|(name, _)| *name == unit) else {
            return Err(if unit.is_empty() {
                DurationError::Malformed(format!(
                    "`{text}` has no unit: write \"{number}s\" for seconds (units: ns, us, ms, s, m, h), or give seconds as a number without quotes"
                ))
            } else {
                DurationError::Malformed(format!(
                    "`{unit}` in `{text}` is not a unit of time{}; use ns, us, ms, s, m or h",
                    crate::suggest::did_you_mean(unit, &["ns", "us", "ms", "s", "m", "h", "min"])
                ))
            });
        };
        let number = number.replace('_', "");
        if number.matches('.').count() > 1 || number == "." {
            return Err(malformed());
        }
        let part = decimal_nanos(&number, *unit_nanos).ok_or(DurationError::TooLarge)?;
        total = total.checked_add(part).ok_or(DurationError::TooLarge)?;
        rest = after.trim_start();
    }
    Ok(total)
}

/// `digits` (`12`, `1.5`, `2.5e-3`) times `unit` nanoseconds, rounded to the nearest
/// nanosecond; exact decimal arithmetic, so `0.1` second is exactly 100 ms. `None` on overflow.
fn decimal_nanos(digits: &str, unit: u128) -> Option<u128> {
    let (mantissa, exponent) = match digits.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i32>().ok()?),
        None => (digits, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all_digits = format!("{int_part}{frac_part}");
    let all_digits = all_digits.trim_start_matches('0');
    // value = all_digits * 10^(exponent - frac_len) * unit
    let scale = exponent.checked_sub(i32::try_from(frac_part.len()).ok()?)?;
    if all_digits.is_empty() {
        return Some(0);
    }
    if all_digits.len() > 38 {
        return None;
    }
    let significand: u128 = all_digits.parse().ok()?;
    let scaled = significand.checked_mul(unit)?;
    if scale >= 0 {
        scaled.checked_mul(10u128.checked_pow(u32::try_from(scale).ok()?)?)
    } else {
        let divisor = match 10u128.checked_pow(scale.unsigned_abs()) {
            Some(d) => d,
            None => return Some(0),
        };
        Some((scaled + divisor / 2) / divisor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(digits: &str) -> Result<u64, DurationError> {
        duration_nanos(&DurationLit::Seconds(Number {
            negative: false,
            digits: digits.into(),
            is_int: false,
            tokens: TokenStream::new(),
        }))
    }

    #[test]
    fn seconds_as_numbers_are_exact() {
        assert_eq!(secs("1"), Ok(1_000_000_000));
        assert_eq!(secs("0.1"), Ok(100_000_000));
        assert_eq!(secs("1.5e3"), Ok(1_500_000_000_000));
        assert_eq!(secs("2.5e-3"), Ok(2_500_000));
        assert_eq!(secs("0"), Ok(0));
        assert_eq!(secs("1e-12"), Ok(0));
        assert_eq!(secs("1e999"), Err(DurationError::TooLarge));
        assert_eq!(secs("600000000000"), Err(DurationError::TooLarge));
    }

    #[test]
    fn strings_with_units() {
        assert_eq!(parse_duration_text("250ms"), Ok(250_000_000));
        assert_eq!(parse_duration_text("2s"), Ok(2_000_000_000));
        assert_eq!(parse_duration_text("1m"), Ok(60_000_000_000));
        assert_eq!(parse_duration_text("1h"), Ok(3_600_000_000_000));
        assert_eq!(parse_duration_text("500us"), Ok(500_000));
        assert_eq!(parse_duration_text("1.5s"), Ok(1_500_000_000));
        assert_eq!(parse_duration_text("1m30s"), Ok(90_000_000_000));
        assert_eq!(parse_duration_text("1h 15m"), Ok(4_500_000_000_000));
        assert_eq!(parse_duration_text(" 10ns "), Ok(10));
        assert_eq!(parse_duration_text("2 s"), Ok(2_000_000_000));
    }

    #[test]
    fn bad_strings_are_refused() {
        assert_eq!(parse_duration_text("-1s"), Err(DurationError::Negative));
        for bad in ["", "s", "2", "2 parsecs", "1.2.3s", "ms5", "1sm"] {
            assert!(
                matches!(parse_duration_text(bad), Err(DurationError::Malformed(_))),
                "{bad:?} was accepted"
            );
        }
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        /// Any text: a duration or an error that says what is wrong, never a panic.
        #[test]
        fn any_text_is_a_duration_or_an_error(text in ".{0,40}") {
            match parse_duration_text(&text) {
                Ok(_) | Err(DurationError::Negative) | Err(DurationError::TooLarge) => {}
                Err(DurationError::Malformed(message)) => prop_assert!(!message.is_empty()),
            }
        }

        /// Texts made of the grammar's own pieces, the likeliest to reach its corners.
        #[test]
        fn near_misses_never_panic(
            parts in proptest::collection::vec(
                ("[0-9_.]{0,25}", prop_oneof!["ns", "us", "ms", "s", "m", "h", "", "x", " "]),
                0..6,
            )
        ) {
            let text: String = parts.into_iter().map(|(n, u)| format!("{n}{u}")).collect();
            let _ = parse_duration_text(&text);
        }
    }
}
