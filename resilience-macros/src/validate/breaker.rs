//! The rules of `circuit_breaker(...)`.

use super::rules::{count, duration, rate};
use crate::attr::BreakerArgs;
use crate::ctxt::Ctxt;
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
        failure_threshold: count(cx, &b.failure_threshold, "failure_threshold", ""),
        reset_timeout: duration(cx, &b.reset_timeout, "reset_timeout", true),
        half_open_max_calls: count(cx, &b.half_open_max_calls, "half_open_max_calls", ""),
        success_threshold: count(cx, &b.success_threshold, "success_threshold", ""),
        open_timeout_increment_factor: super::factor(
            cx,
            &b.open_timeout_increment_factor,
            "open_timeout_increment_factor",
            1.0,
            None,
            " (open timeouts never shrink)",
        ),
        max_open_timeout: duration(cx, &b.max_open_timeout, "max_open_timeout", true),
        failure_rate: rate(cx, &b.failure_rate, "failure_rate"),
        window: duration(cx, &b.window, "window", false),
        window_calls: count(cx, &b.window_calls, "window_calls", ""),
        minimum_calls: count(cx, &b.minimum_calls, "minimum_calls", ""),
        slow_call: duration(cx, &b.slow_call, "slow_call", false),
        slow_call_rate: rate(cx, &b.slow_call_rate, "slow_call_rate"),
        max_half_open_wait: duration(cx, &b.max_half_open_wait, "max_half_open_wait", false),
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
