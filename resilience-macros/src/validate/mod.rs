//! The rules `#[retry]`'s arguments and the annotated function must follow, checked at compile
//! time with the error on the offending token. Produces the [`Settings`] the expansion emits.

use crate::attr::{BreakerArg, BudgetArg, RetryArgs};
use crate::ctxt::Ctxt;
use crate::suggest;
mod breaker;
mod budget;
mod checks;

pub(crate) use breaker::BreakerSettings;
pub(crate) use budget::BudgetSettings;
use checks::{count, duration, number};
use proc_macro2::Ident;
use resilience_settings::retry as rules;
use std::time::Duration;
use syn::{Expr, FnArg, ItemFn, ReturnType, Type};

/// Checked settings of one `#[retry]`: only the values the user gave (the manager supplies the
/// rest at run time).
pub(crate) struct Settings {
    /// The path of `resilience_core` (`crate = "…"`).
    pub krate: syn::Path,
    /// `None`: the module path of the function.
    pub component: Option<String>,
    pub operation: String,
    pub retry: RetrySettings,
    /// `None`: the call bypasses the breaker.
    pub breaker: Option<BreakerSettings>,
    /// `classify_ok = path`: judges `Ok` values.
    pub classify_ok: Option<syn::Path>,
    /// Per-attempt limit in nanoseconds (async fns only).
    pub timeout: Option<u64>,
    pub manager: Option<Expr>,
}

/// Retry values; durations in nanoseconds.
#[derive(Default)]
pub(crate) struct RetrySettings {
    pub max_attempts: Option<u32>,
    pub initial_delay: Option<u64>,
    pub max_delay: Option<u64>,
    pub backoff_factor: Option<f64>,
    pub jitter_factor: Option<f64>,
    /// The `Jitter` variant.
    pub jitter: Option<Ident>,
    pub max_elapsed: Option<u64>,
    /// `Some(None)`: `budget = false`.
    pub budget: Option<Option<BudgetSettings>>,
}

/// The jitter strategies' names (`Jitter`'s variants are the same words, capitalised).
const JITTERS: &[&str] = match rules::JITTER.rule {
    resilience_settings::Rule::Choice(names) => names,
    _ => &[],
};

/// Checks `args` and `func`; every broken rule goes to `cx`. The settings returned leave out the
/// values that broke a rule.
pub(crate) fn settings(cx: &mut Ctxt, args: &RetryArgs, func: &ItemFn) -> Settings {
    let krate = match args.krate.value() {
        Some(lit) => {
            match lit.parse::<syn::Path>() {
                Ok(path) => path,
                Err(_) => {
                    cx.error_spanned_by(lit, format!("`crate` takes a path such as \"my_reexport::resilience_core\", got \"{}\"", lit.value()));
                    default_crate()
                }
            }
        }
        None => default_crate(),
    };
    let component = args
        .component
        .value()
        .and_then(|lit| name(cx, lit, "component"));
    let operation = args
        .operation
        .value()
        .and_then(|lit| name(cx, lit, "operation"))
        .unwrap_or_else(|| syn::ext::IdentExt::unraw(&func.sig.ident).to_string());

    let retry = RetrySettings {
        max_attempts: count(cx, &args.max_attempts, &rules::MAX_ATTEMPTS),
        initial_delay: duration(cx, &args.initial_delay, &rules::INITIAL_DELAY),
        max_delay: duration(cx, &args.max_delay, &rules::MAX_DELAY),
        backoff_factor: number(cx, &args.backoff_factor, &rules::BACKOFF_FACTOR),
        jitter_factor: number(cx, &args.jitter_factor, &rules::JITTER_FACTOR),
        jitter: args.jitter.value().and_then(|lit| jitter(cx, lit)),
        max_elapsed: duration(cx, &args.max_elapsed, &rules::MAX_ELAPSED),
        budget: args.budget.value().map(|b| match b {
            BudgetArg::Off => None,
            BudgetArg::On(b) => Some(budget::settings(cx, b)),
        }),
    };
    if let (Some(initial), Some(max), Some(arg)) = (
        retry.initial_delay,
        retry.max_delay,
        args.initial_delay.value(),
    ) {
        if initial > max {
            cx.error_spanned_by(
                arg.tokens(),
                format!(
                    "`initial_delay` ({:?}) is longer than `max_delay` ({:?}); every delay is capped at `max_delay`, so lower `initial_delay` or raise `max_delay`",
                    Duration::from_nanos(initial),
                    Duration::from_nanos(max)
                ),
            );
        }
    }

    let breaker = match args.circuit_breaker.value() {
        Some(BreakerArg::Off) => None,
        Some(BreakerArg::On(b)) => Some(breaker::settings(cx, b)),
        None => Some(BreakerSettings::default()),
    };

    let timeout = duration(cx, &args.timeout, &resilience_settings::attribute::TIMEOUT);
    if let (Some(arg), None) = (args.timeout.get(), func.sig.asyncness) {
        cx.error_spanned_by(
            &arg.key,
            "`timeout` needs an `async fn`: a blocking attempt cannot be interrupted; make the function async, or bound the blocking call itself",
        );
    }

    // After the arguments, so errors come in source order as far as possible.
    check_function(cx, func);

    Settings {
        krate,
        component,
        operation,
        retry,
        breaker,
        timeout,
        classify_ok: args.classify_ok.value().cloned(),
        manager: args.manager.value().cloned(),
    }
}

fn default_crate() -> syn::Path {
    syn::parse_quote!(::resilience_core)
}

/// The shapes `#[retry]` can run repeatedly.
fn check_function(cx: &mut Ctxt, func: &ItemFn) {
    let sig = &func.sig;
    if let Some(constness) = &sig.constness {
        cx.error_spanned_by(
            constness,
            "`#[retry]` cannot be used on a `const fn`: retrying sleeps and calls the runtime, which const evaluation cannot do; remove `const`",
        );
    }
    match &sig.output {
        ReturnType::Default => cx.error_spanned_by(
            &sig.ident,
            format!(
                "`#[retry]` needs a function that returns `Result<T, E>` (with `E: Classify`), but `{}` returns `()`",
                sig.ident
            ),
        ),
        ReturnType::Type(_, ty) => {
            if !is_result(ty) {
                cx.error_spanned_by(
                    ty,
                    "`#[retry]` needs the return type to be a `Result`: `Result<T, E>`, `io::Result<T>` or another path ending in `Result`; type aliases named otherwise are not recognised, so write them out as `Result<T, E>`",
                );
            }
        }
    }
    if let Some(FnArg::Receiver(receiver)) = sig.inputs.first() {
        let by_value = receiver.reference.is_none()
            && (receiver.colon_token.is_none() || is_self_type(&receiver.ty));
        if by_value {
            cx.error_spanned_by(
                receiver.self_token,
                "`#[retry]` cannot retry a method that takes `self` by value: the first attempt would consume it; take `&self` or `&mut self`",
            );
        }
    }
}

/// A path type whose last segment is `Result` (`Result<T, E>`, `io::Result<T>`,
/// `std::result::Result<T, E>`).
fn is_result(ty: &Type) -> bool {
    match ty {
        Type::Path(p) => p.path.segments.last().is_some_and(|s| s.ident == "Result"),
        Type::Group(g) => is_result(&g.elem),
        Type::Paren(p) => is_result(&p.elem),
        _ => false,
    }
}

fn is_self_type(ty: &Type) -> bool {
    matches!(ty, Type::Path(p) if p.qself.is_none() && p.path.is_ident("Self"))
}

fn name(cx: &mut Ctxt, lit: &syn::LitStr, key: &str) -> Option<String> {
    let value = lit.value();
    if value.trim().is_empty() {
        cx.error_spanned_by(
            lit,
            format!("`{key}` must not be empty: it names the breaker and the metrics"),
        );
        return None;
    }
    Some(value)
}

fn jitter(cx: &mut Ctxt, lit: &syn::LitStr) -> Option<Ident> {
    let value = lit.value();
    match JITTERS.iter().find(|name| **name == value) {
        Some(name) => {
            let variant: String = name[..1].to_uppercase() + &name[1..];
            Some(Ident::new(&variant, lit.span()))
        }
        None => {
            let names = JITTERS;
            cx.error_spanned_by(
                lit,
                format!(
                    "unknown jitter strategy \"{value}\"{}\nvalid strategies: {}",
                    suggest::did_you_mean(&value, names),
                    suggest::list(names)
                ),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(args: proc_macro2::TokenStream, item: proc_macro2::TokenStream) -> Vec<String> {
        let mut cx = Ctxt::default();
        let parsed = crate::attr::parse(&mut cx, args);
        let func: ItemFn = syn::parse2(item).unwrap();
        let _ = settings(&mut cx, &parsed, &func);
        match cx.check() {
            Ok(()) => Vec::new(),
            Err(e) => e.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn every_error_of_one_attribute_is_reported() {
        let found = errors(
            quote::quote!(
                max_attempts = 0,
                backoff_factor = 0.5,
                jitter_factor = 2,
                max_atempts = 3,
                initial_delay = "1x"
            ),
            quote::quote!(
                fn f() -> Result<(), E> {
                    Ok(())
                }
            ),
        );
        assert_eq!(found.len(), 5, "{found:#?}");
        assert!(found
            .iter()
            .any(|e| e.contains("did you mean `max_attempts`?")));
    }

    #[test]
    fn valid_arguments_pass() {
        let found = errors(
            quote::quote!(
                component = "c",
                max_attempts = 5,
                initial_delay = 0.5,
                max_delay = "30s",
                backoff_factor = 2,
                jitter_factor = 0.0,
                jitter = "full",
                max_elapsed = "1m",
                circuit_breaker(
                    failure_threshold = 3,
                    reset_timeout = 60,
                    max_open_timeout = "5m"
                )
            ),
            quote::quote!(
                fn f(&self) -> io::Result<()> {
                    Ok(())
                }
            ),
        );
        assert_eq!(found, Vec::<String>::new());
    }
}
