//! The rules of `budget(...)`: Finagle's bounds.

use super::rules::{duration, factor, whole_below};
use crate::attr::BudgetArgs;
use crate::ctxt::Ctxt;

/// Budget values given; the others are `RetryBudget::DEFAULT`'s. `ttl` in nanoseconds.
#[derive(Default)]
pub(crate) struct BudgetSettings {
    pub percent: Option<f64>,
    pub min_per_sec: Option<u32>,
    pub ttl: Option<u64>,
}

const SECOND: u64 = 1_000_000_000;

pub(super) fn settings(cx: &mut Ctxt, b: &BudgetArgs) -> BudgetSettings {
    let ttl = duration(cx, &b.ttl, "ttl", false);
    if let (Some(nanos), Some(lit)) = (ttl, b.ttl.value()) {
        if !(SECOND..=60 * SECOND).contains(&nanos) {
            cx.error_spanned_by(
                lit.tokens(),
                format!(
                    "`ttl` must be between 1s and 60s (as Finagle allows), got {:?}",
                    std::time::Duration::from_nanos(nanos)
                ),
            );
        }
    }
    BudgetSettings {
        percent: factor(cx, &b.percent, "percent", 0.0, Some(1000.0), ""),
        min_per_sec: whole_below(cx, &b.min_per_sec, "min_per_sec", i32::MAX as u32),
        ttl: ttl.filter(|n| (SECOND..=60 * SECOND).contains(n)),
    }
}
