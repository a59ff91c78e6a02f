//! Parsing of `#[retry(...)]`'s arguments into [`RetryArgs`]: keys, value shapes and literal
//! types. Ranges and rules between values are [`crate::validate`]'s job.

use crate::ctxt::Ctxt;
use crate::suggest;
use crate::value::{DurationLit, Number};
use proc_macro2::TokenStream;
use resilience_settings as settings;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{Expr, Lit, Meta, Token};

/// The keys of `#[retry(...)]`, in the order the docs list them: the retry settings (named
/// once, in `resilience-settings`, for the runtime's JSON reader too) among the attribute's own.
pub(crate) fn retry_keys() -> Vec<&'static str> {
    let mut keys = vec!["component", "operation"];
    keys.extend(settings::retry::ALL.iter().map(|s| s.name));
    keys.extend([
        settings::attribute::TIMEOUT.name,
        "classify_ok",
        "budget",
        "circuit_breaker",
        "manager",
        "crate",
    ]);
    keys
}

/// The keys of `circuit_breaker(...)`.
pub(crate) fn breaker_keys() -> Vec<&'static str> {
    settings::breaker::ALL.iter().map(|s| s.name).collect()
}

/// The keys of `budget(...)`.
pub(crate) fn budget_keys() -> Vec<&'static str> {
    settings::budget::ALL.iter().map(|s| s.name).collect()
}

/// A value together with the key it was given under (for "repeated key" and rules that blame
/// the key rather than the value).
#[derive(Clone, Debug)]
pub(crate) struct Arg<T> {
    pub key: syn::Path,
    pub value: T,
}

/// One argument slot that may be set once.
#[derive(Debug)]
pub(crate) struct Slot<T>(Option<Arg<T>>);

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Slot(None)
    }
}

impl<T> Slot<T> {
    /// Sets the value; a second setting is reported on its key and ignored.
    fn set(&mut self, cx: &mut Ctxt, key: &syn::Path, value: T) {
        if self.0.is_some() {
            cx.error_spanned_by(
                key,
                format!(
                    "`{}` is given more than once; keep one",
                    key_name(key).unwrap_or_default()
                ),
            );
        } else {
            self.0 = Some(Arg {
                key: key.clone(),
                value,
            });
        }
    }

    pub(crate) fn get(&self) -> Option<&Arg<T>> {
        self.0.as_ref()
    }

    /// The key the value was given under.
    pub(crate) fn key(&self) -> Option<&syn::Path> {
        self.0.as_ref().map(|a| &a.key)
    }

    pub(crate) fn value(&self) -> Option<&T> {
        self.0.as_ref().map(|a| &a.value)
    }
}

/// `circuit_breaker = false`, or `circuit_breaker(...)` / `circuit_breaker = true`.
#[derive(Debug)]
pub(crate) enum BreakerArg {
    Off,
    On(Box<BreakerArgs>),
}

/// The arguments of `circuit_breaker(...)`.
#[derive(Debug, Default)]
pub(crate) struct BreakerArgs {
    pub failure_threshold: Slot<Number>,
    pub reset_timeout: Slot<DurationLit>,
    pub half_open_max_calls: Slot<Number>,
    pub success_threshold: Slot<Number>,
    pub open_timeout_increment_factor: Slot<Number>,
    pub max_open_timeout: Slot<DurationLit>,
    pub failure_rate: Slot<Number>,
    pub window: Slot<DurationLit>,
    pub window_calls: Slot<Number>,
    pub minimum_calls: Slot<Number>,
    pub slow_call: Slot<DurationLit>,
    pub slow_call_rate: Slot<Number>,
    pub max_half_open_wait: Slot<DurationLit>,
}

/// `budget = false`, or `budget(...)` / `budget = true`.
#[derive(Debug)]
pub(crate) enum BudgetArg {
    Off,
    On(Box<BudgetArgs>),
}

/// The arguments of `budget(...)`.
#[derive(Debug, Default)]
pub(crate) struct BudgetArgs {
    pub percent: Slot<Number>,
    pub min_per_sec: Slot<Number>,
    pub ttl: Slot<DurationLit>,
}

/// Everything `#[retry(...)]` was given, as written.
#[derive(Debug, Default)]
pub(crate) struct RetryArgs {
    pub component: Slot<syn::LitStr>,
    pub operation: Slot<syn::LitStr>,
    pub max_attempts: Slot<Number>,
    pub initial_delay: Slot<DurationLit>,
    pub max_delay: Slot<DurationLit>,
    pub backoff_factor: Slot<Number>,
    pub jitter_factor: Slot<Number>,
    pub jitter: Slot<syn::LitStr>,
    pub max_elapsed: Slot<DurationLit>,
    pub timeout: Slot<DurationLit>,
    pub classify_ok: Slot<syn::Path>,
    pub budget: Slot<BudgetArg>,
    pub circuit_breaker: Slot<BreakerArg>,
    pub manager: Slot<Expr>,
    pub krate: Slot<syn::LitStr>,
}

/// Parses the attribute's arguments; every problem goes to `cx` and parsing goes on.
pub(crate) fn parse(cx: &mut Ctxt, tokens: TokenStream) -> RetryArgs {
    let mut args = RetryArgs::default();
    let metas = match Punctuated::<Meta, Token![,]>::parse_terminated.parse2(tokens) {
        Ok(metas) => metas,
        Err(e) => {
            cx.syn_error(e);
            return args;
        }
    };
    for meta in &metas {
        parse_retry_arg(cx, &mut args, meta);
    }
    args
}

fn parse_retry_arg(cx: &mut Ctxt, args: &mut RetryArgs, meta: &Meta) {
    let key = meta.path();
    let Some(name) = key_name(key) else {
        unknown_key(cx, key, "#[retry]", &retry_keys());
        return;
    };
    match name.as_str() {
        "component" => {
            if let Some(v) = string(cx, meta, "component = \"ChEMBL\"") {
                args.component.set(cx, key, v);
            }
        }
        "operation" => {
            if let Some(v) = string(cx, meta, "operation = \"fetch_molecule\"") {
                args.operation.set(cx, key, v);
            }
        }
        k if k == settings::retry::MAX_ATTEMPTS.name => {
            if let Some(v) = integer(cx, meta, "max_attempts = 5") {
                args.max_attempts.set(cx, key, v);
            }
        }
        k if k == settings::retry::INITIAL_DELAY.name => {
            if let Some(v) = duration(cx, meta, "initial_delay") {
                args.initial_delay.set(cx, key, v);
            }
        }
        k if k == settings::retry::MAX_DELAY.name => {
            if let Some(v) = duration(cx, meta, "max_delay") {
                args.max_delay.set(cx, key, v);
            }
        }
        k if k == settings::retry::BACKOFF_FACTOR.name => {
            if let Some(v) = number(cx, meta, "backoff_factor = 2.0") {
                args.backoff_factor.set(cx, key, v);
            }
        }
        k if k == settings::retry::JITTER_FACTOR.name => {
            if let Some(v) = number(cx, meta, "jitter_factor = 0.1") {
                args.jitter_factor.set(cx, key, v);
            }
        }
        k if k == settings::retry::JITTER.name => {
            if let Some(v) = string(cx, meta, "jitter = \"full\"") {
                args.jitter.set(cx, key, v);
            }
        }
        k if k == settings::retry::MAX_ELAPSED.name => {
            if let Some(v) = duration(cx, meta, "max_elapsed") {
                args.max_elapsed.set(cx, key, v);
            }
        }
        k if k == settings::attribute::TIMEOUT.name => {
            if let Some(v) = duration(cx, meta, "timeout") {
                args.timeout.set(cx, key, v);
            }
        }
        "classify_ok" => match meta {
            Meta::NameValue(syn::MetaNameValue {
                value: Expr::Path(p),
                ..
            }) if p.qself.is_none() => args.classify_ok.set(cx, key, p.path.clone()),
            _ => cx.error_spanned_by(
                meta,
                "`classify_ok` names a function `fn(&T) -> Option<Failure>`: `classify_ok = judge_response`",
            ),
        },
        "budget" => {
            if let Some(v) = budget(cx, meta) {
                args.budget.set(cx, key, v);
            }
        }
        "circuit_breaker" => {
            if let Some(v) = breaker(cx, meta) {
                args.circuit_breaker.set(cx, key, v);
            }
        }
        "manager" => match meta {
            Meta::NameValue(nv) => args.manager.set(cx, key, nv.value.clone()),
            _ => cx.error_spanned_by(
                meta,
                "`manager` takes an expression: `manager = &MANAGER` (anything that borrows as a `RetryManager`)",
            ),
        },
        "crate" => {
            if let Some(v) = string(cx, meta, "crate = \"my_reexport::resilience_core\"") {
                args.krate.set(cx, key, v);
            }
        }
        _ => unknown_key(cx, key, "#[retry]", &retry_keys()),
    }
}

fn breaker(cx: &mut Ctxt, meta: &Meta) -> Option<BreakerArg> {
    const HELP: &str = "write `circuit_breaker = false` to call without a breaker, or `circuit_breaker(failure_threshold = 3, reset_timeout = \"30s\")` to configure it";
    match meta {
        Meta::NameValue(nv) => match &nv.value {
            Expr::Lit(lit) => match &lit.lit {
                Lit::Bool(b) if !b.value => Some(BreakerArg::Off),
                Lit::Bool(_) => Some(BreakerArg::On(Box::default())),
                _ => {
                    cx.error_spanned_by(
                        &nv.value,
                        format!("`circuit_breaker` takes `false` or a list of settings: {HELP}"),
                    );
                    None
                }
            },
            other => {
                cx.error_spanned_by(
                    other,
                    format!("`circuit_breaker` takes `false` or a list of settings: {HELP}"),
                );
                None
            }
        },
        Meta::Path(p) => {
            cx.error_spanned_by(p, format!("the breaker is on by default; {HELP}"));
            None
        }
        Meta::List(list) => {
            let nested = nested_settings(cx, list)?;
            let mut args = BreakerArgs::default();
            for meta in &nested {
                parse_breaker_arg(cx, &mut args, meta);
            }
            Some(BreakerArg::On(Box::new(args)))
        }
    }
}

fn parse_breaker_arg(cx: &mut Ctxt, args: &mut BreakerArgs, meta: &Meta) {
    let key = meta.path();
    let name = key_name(key).unwrap_or_default();
    match name.as_str() {
        k if k == settings::breaker::FAILURE_THRESHOLD.name => {
            if let Some(v) = integer(cx, meta, "failure_threshold = 5") {
                args.failure_threshold.set(cx, key, v);
            }
        }
        k if k == settings::breaker::RESET_TIMEOUT.name => {
            if let Some(v) = duration(cx, meta, "reset_timeout") {
                args.reset_timeout.set(cx, key, v);
            }
        }
        k if k == settings::breaker::HALF_OPEN_MAX_CALLS.name => {
            if let Some(v) = integer(cx, meta, "half_open_max_calls = 1") {
                args.half_open_max_calls.set(cx, key, v);
            }
        }
        k if k == settings::breaker::SUCCESS_THRESHOLD.name => {
            if let Some(v) = integer(cx, meta, "success_threshold = 1") {
                args.success_threshold.set(cx, key, v);
            }
        }
        k if k == settings::breaker::OPEN_TIMEOUT_INCREMENT_FACTOR.name => {
            if let Some(v) = number(cx, meta, "open_timeout_increment_factor = 1.5") {
                args.open_timeout_increment_factor.set(cx, key, v);
            }
        }
        k if k == settings::breaker::MAX_OPEN_TIMEOUT.name => {
            if let Some(v) = duration(cx, meta, "max_open_timeout") {
                args.max_open_timeout.set(cx, key, v);
            }
        }
        k if k == settings::breaker::FAILURE_RATE.name => {
            if let Some(v) = number(cx, meta, "failure_rate = 0.5") {
                args.failure_rate.set(cx, key, v);
            }
        }
        k if k == settings::breaker::WINDOW.name => {
            if let Some(v) = duration(cx, meta, "window") {
                args.window.set(cx, key, v);
            }
        }
        k if k == settings::breaker::WINDOW_CALLS.name => {
            if let Some(v) = integer(cx, meta, "window_calls = 100") {
                args.window_calls.set(cx, key, v);
            }
        }
        k if k == settings::breaker::MINIMUM_CALLS.name => {
            if let Some(v) = integer(cx, meta, "minimum_calls = 20") {
                args.minimum_calls.set(cx, key, v);
            }
        }
        k if k == settings::breaker::SLOW_CALL.name => {
            if let Some(v) = duration(cx, meta, "slow_call") {
                args.slow_call.set(cx, key, v);
            }
        }
        k if k == settings::breaker::SLOW_CALL_RATE.name => {
            if let Some(v) = number(cx, meta, "slow_call_rate = 0.8") {
                args.slow_call_rate.set(cx, key, v);
            }
        }
        k if k == settings::breaker::MAX_HALF_OPEN_WAIT.name => {
            if let Some(v) = duration(cx, meta, "max_half_open_wait") {
                args.max_half_open_wait.set(cx, key, v);
            }
        }
        _ => unknown_key(cx, key, "circuit_breaker(...)", &breaker_keys()),
    }
}

/// The settings inside `key(...)`; a syntax error is reported and gives `None`.
fn nested_settings(cx: &mut Ctxt, list: &syn::MetaList) -> Option<Punctuated<Meta, Token![,]>> {
    match list.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated) {
        Ok(nested) => Some(nested),
        Err(e) => {
            cx.syn_error(e);
            None
        }
    }
}

fn budget(cx: &mut Ctxt, meta: &Meta) -> Option<BudgetArg> {
    const HELP: &str = "write `budget = false` to retry without a budget, or `budget(percent = 0.2, min_per_sec = 10, ttl = \"10s\")` to set one";
    match meta {
        Meta::NameValue(nv) => match &nv.value {
            Expr::Lit(syn::ExprLit {
                lit: Lit::Bool(b), ..
            }) => Some(if b.value {
                BudgetArg::On(Box::default())
            } else {
                BudgetArg::Off
            }),
            other => {
                cx.error_spanned_by(
                    other,
                    format!("`budget` takes `false` or a list of settings: {HELP}"),
                );
                None
            }
        },
        Meta::Path(p) => {
            cx.error_spanned_by(p, format!("`budget` needs settings: {HELP}"));
            None
        }
        Meta::List(list) => {
            let nested = nested_settings(cx, list)?;
            let mut args = BudgetArgs::default();
            for meta in &nested {
                let key = meta.path();
                match key_name(key).unwrap_or_default().as_str() {
                    k if k == settings::budget::PERCENT.name => {
                        if let Some(v) = number(cx, meta, "percent = 0.2") {
                            args.percent.set(cx, key, v);
                        }
                    }
                    k if k == settings::budget::MIN_PER_SEC.name => {
                        if let Some(v) = integer(cx, meta, "min_per_sec = 10") {
                            args.min_per_sec.set(cx, key, v);
                        }
                    }
                    k if k == settings::budget::TTL.name => {
                        if let Some(v) = duration(cx, meta, "ttl") {
                            args.ttl.set(cx, key, v);
                        }
                    }
                    _ => unknown_key(cx, key, "budget(...)", &budget_keys()),
                }
            }
            Some(BudgetArg::On(Box::new(args)))
        }
    }
}

/// The key as a plain name (`crate` included), or `None` for a path such as `a::b`.
pub(crate) fn key_name(path: &syn::Path) -> Option<String> {
    if path.leading_colon.is_none() && path.segments.len() == 1 {
        let segment = &path.segments[0];
        if segment.arguments.is_none() {
            return Some(segment.ident.to_string());
        }
    }
    None
}

fn unknown_key(cx: &mut Ctxt, key: &syn::Path, what: &str, valid: &[&str]) {
    let written = quote::ToTokens::to_token_stream(key)
        .to_string()
        .replace(' ', "");
    cx.error_spanned_by(
        key,
        format!(
            "unknown argument `{written}` of `{what}`{}\nvalid arguments: {}",
            suggest::did_you_mean(&written, valid),
            suggest::list(valid)
        ),
    );
}

/// The value of `key = value`, or an error saying how to write it.
fn value_of<'m>(cx: &mut Ctxt, meta: &'m Meta, example: &str) -> Option<&'m Expr> {
    match meta {
        Meta::NameValue(nv) => Some(&nv.value),
        _ => {
            cx.error_spanned_by(meta, format!("expected a value: `{example}`"));
            None
        }
    }
}

fn string(cx: &mut Ctxt, meta: &Meta, example: &str) -> Option<syn::LitStr> {
    let value = value_of(cx, meta, example)?;
    if let Expr::Lit(syn::ExprLit {
        lit: Lit::Str(s), ..
    }) = value
    {
        return Some(s.clone());
    }
    cx.error_spanned_by(value, format!("expected a string literal: `{example}`"));
    None
}

fn integer(cx: &mut Ctxt, meta: &Meta, example: &str) -> Option<Number> {
    let value = value_of(cx, meta, example)?;
    match Number::from_expr(value) {
        Some(n) if n.is_int => Some(n),
        _ => {
            cx.error_spanned_by(value, format!("expected a whole number: `{example}`"));
            None
        }
    }
}

fn number(cx: &mut Ctxt, meta: &Meta, example: &str) -> Option<Number> {
    let value = value_of(cx, meta, example)?;
    match Number::from_expr(value) {
        Some(n) => Some(n),
        None => {
            cx.error_spanned_by(value, format!("expected a number literal: `{example}`"));
            None
        }
    }
}

fn duration(cx: &mut Ctxt, meta: &Meta, key: &str) -> Option<DurationLit> {
    let example = format!("{key} = \"500ms\"` or `{key} = 0.5");
    let value = value_of(cx, meta, &example)?;
    if let Some(n) = Number::from_expr(value) {
        return Some(DurationLit::Seconds(n));
    }
    if let Expr::Lit(syn::ExprLit {
        lit: Lit::Str(s), ..
    }) = value
    {
        return Some(DurationLit::Text(s.clone()));
    }
    cx.error_spanned_by(
        value,
        format!(
            "expected a duration: seconds as a number or a string with a unit, such as `{example}`"
        ),
    );
    None
}
