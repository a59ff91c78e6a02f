//! The rules of `circuit_breaker(...)`.

use super::checks::{count, duration, number};
use crate::attr::BreakerArgs;
use crate::ctxt::Ctxt;
use resilience_settings::breaker as rules;
use std::time::Duration;

/// Breaker values; durations in nanoseconds.
#[derive(Default)]
pub(crate) struct BreakerSettings {
    pub failure_threshold: Option<u32>,
    pub reset_timeout: Option<u64>,
    pub half_open_max_calls: Option<u32>,
    pub success_threshold: Option<u32>,
    pub open_timeout_increment_factor: Option<f64>,
    pub max_open_timeout: Option<u64>,
    pub failure_rate: Option<f64>,
    /// A time window in nanoseconds.
    pub window: Option<u64>,
    pub window_calls: Option<u32>,
    pub minimum_calls: Option<u32>,
    pub slow_call: Option<u64>,
    pub slow_call_rate: Option<f64>,
    pub max_half_open_wait: Option<u64>,
}

pub(super) fn settings(cx: &mut Ctxt, b: &BreakerArgs) -> BreakerSettings {
    let settings = BreakerSettings {
        failure_threshold: count(cx, &b.failure_threshold, &rules::FAILURE_THRESHOLD),
        reset_timeout: duration(cx, &b.reset_timeout, &rules::RESET_TIMEOUT),
        half_open_max_calls: count(cx, &b.half_open_max_calls, &rules::HALF_OPEN_MAX_CALLS),
        success_threshold: count(cx, &b.success_threshold, &rules::SUCCESS_THRESHOLD),
        open_timeout_increment_factor: number(
            cx,
            &b.open_timeout_increment_factor,
            &rules::OPEN_TIMEOUT_INCREMENT_FACTOR,
        ),
        max_open_timeout: duration(cx, &b.max_open_timeout, &rules::MAX_OPEN_TIMEOUT),
        failure_rate: number(cx, &b.failure_rate, &rules::FAILURE_RATE),
        window: duration(cx, &b.window, &rules::WINDOW),
        window_calls: count(cx, &b.window_calls, &rules::WINDOW_CALLS),
        minimum_calls: count(cx, &b.minimum_calls, &rules::MINIMUM_CALLS),
        slow_call: duration(cx, &b.slow_call, &rules::SLOW_CALL),
        slow_call_rate: number(cx, &b.slow_call_rate, &rules::SLOW_CALL_RATE),
        max_half_open_wait: duration(cx, &b.max_half_open_wait, &rules::MAX_HALF_OPEN_WAIT),
    };
    if let (Some(reset), Some(max), Some(arg)) = (
        settings.reset_timeout,
        settings.max_open_timeout,
        b.reset_timeout.value(),
    ) {
        if reset > max {
            cx.error_spanned_by(
                arg.tokens(),
                format!(
                    "`reset_timeout` ({:?}) is longer than `max_open_timeout` ({:?}); lower `reset_timeout` or raise `max_open_timeout`",
                    Duration::from_nanos(reset),
                    Duration::from_nanos(max)
                ),
            );
        }
    }
    if let (Some(_), Some(calls)) = (b.window.get(), b.window_calls.get()) {
        cx.error_spanned_by(
            &calls.key,
            "`window_calls` and `window` cannot both be given: a window is the last N calls (`window_calls = 100`) or the calls of the last D (`window = \"60s\"`); keep one",
        );
    }
    if let (Some(rate), None) = (b.slow_call_rate.get(), b.slow_call.get()) {
        cx.error_spanned_by(
            &rate.key,
            "`slow_call_rate` needs `slow_call`, the duration from which a call is slow: add `slow_call = \"2s\"`",
        );
    }
    let rule_on = b.failure_rate.get().is_some() || b.slow_call.get().is_some();
    for arg in [b.window.key(), b.window_calls.key(), b.minimum_calls.key()]
        .into_iter()
        .flatten()
    {
        if !rule_on {
            cx.error_spanned_by(
                arg,
                format!(
                    "`{}` shapes the failure-rate and slow-call rules, and neither is on: add `failure_rate = 0.5` or `slow_call = \"2s\"`",
                    crate::attr::key_name(arg).unwrap_or_default()
                ),
            );
        }
    }
    settings
}
