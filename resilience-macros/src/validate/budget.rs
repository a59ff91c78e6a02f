//! The rules of `budget(...)`: Finagle's bounds.

use super::checks::{count, duration, number};
use crate::attr::BudgetArgs;
use crate::ctxt::Ctxt;
use resilience_settings::budget as rules;

/// Budget values given; the others are `RetryBudget::DEFAULT`'s. `ttl` in nanoseconds.
#[derive(Default)]
pub(crate) struct BudgetSettings {
    pub percent: Option<f64>,
    pub min_per_sec: Option<u32>,
    pub ttl: Option<u64>,
}

pub(super) fn settings(cx: &mut Ctxt, b: &BudgetArgs) -> BudgetSettings {
    BudgetSettings {
        percent: number(cx, &b.percent, &rules::PERCENT),
        min_per_sec: count(cx, &b.min_per_sec, &rules::MIN_PER_SEC),
        ttl: duration(cx, &b.ttl, &rules::TTL),
    }
}
