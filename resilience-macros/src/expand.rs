//! Code generation of `#[retry]`: the user's function with its body replaced by the inline
//! attempt loop. Every decision is a call into `resilience_core::__private`'s driver; the loop
//! only runs the body, sleeps and returns.

use crate::attr;
use crate::ctxt::Ctxt;
use crate::validate::{self, BreakerSettings, RetrySettings, Settings};
use proc_macro2::{Literal, Span, TokenStream};
use quote::{quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::visit_mut::VisitMut;
use syn::{ItemFn, ReturnType, Type};

/// `#[retry(args)] item`: the rewritten function, or the function unchanged plus every error.
pub(crate) fn retry(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut cx = Ctxt::default();
    let parsed = attr::parse(&mut cx, args);
    let func: ItemFn = match syn::parse2(item.clone()) {
        Ok(func) => func,
        Err(_) => {
            let span = item
                .clone()
                .into_iter()
                .next()
                .map_or_else(Span::call_site, |t| t.span());
            cx.error_at(
                span,
                "`#[retry]` goes on a function with a body: a `fn`, an `async fn`, or a method taking `&self` or `&mut self`",
            );
            let errors = cx.into_compile_errors();
            return quote!(#item #errors);
        }
    };
    let settings = validate::settings(&mut cx, &parsed, &func);
    if !cx.is_empty() {
        // The function as written, so that callers and IDEs keep working while the attribute
        // is being fixed.
        let errors = cx.into_compile_errors();
        return quote!(#item #errors);
    }
    function(&settings, func)
}

fn function(s: &Settings, func: ItemFn) -> TokenStream {
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = func;
    let p = private(&s.krate);
    let is_async = sig.asyncness.is_some();
    // The declared return type pins the type of each attempt (so `?` knows what to convert
    // into); `impl Trait` cannot be written in a closure's or a `let`'s type, so it becomes `_`.
    let (ret, ret_span) = match &sig.output {
        ReturnType::Type(_, ty) => {
            let mut erased = (**ty).clone();
            ImplTraitEraser.visit_type_mut(&mut erased);
            (erased.into_token_stream(), ty.span())
        }
        ReturnType::Default => (quote!(()), sig.ident.span()),
    };

    let component = match &s.component {
        Some(c) => Literal::string(c).into_token_stream(),
        None => quote!(::core::module_path!()),
    };
    let operation = Literal::string(&s.operation);
    let spec = call_spec(&p, &s.retry, s.breaker.as_ref());

    let start = match &s.manager {
        // The global manager: one check of the site's cached handle.
        None => quote! {
            let mut __resilience_call = __RESILIENCE_SITE.call_global();
        },
        Some(expr) => quote! {
            // Evaluated once per call; anything that borrows as a `RetryManager`.
            let __resilience_manager_source = #expr;
            let __resilience_manager = #p::as_manager(&__resilience_manager_source);
            let __resilience_handle = __RESILIENCE_SITE.handle(__resilience_manager);
            let mut __resilience_call =
                __RESILIENCE_SITE.call(__resilience_manager, &__resilience_handle);
        },
    };

    let guarded = s.breaker.is_some();
    let last_error = guarded.then(|| quote!(let mut __resilience_last = #p::None;));
    // Trait errors (`E: From<CircuitOpenError>`, `E: Classify`) point at the return type.
    let judged = s.classify_ok.is_some();
    // An async call records its attempt's outcome in place, where its future keeps the permit
    // (see `Permit`); a blocking call hands the permit over by value, as the judged step does.
    let in_place = is_async && !judged;
    let permit_mut = in_place.then(|| quote!(mut));
    let admit = if guarded {
        // With `classify_ok` the last result may be an `Ok` value judged a failure, which a
        // rejection returns as it was.
        let rejected = if judged {
            quote_spanned! {ret_span=>
                __resilience_call.rejected_with(__resilience_open, __resilience_last)
            }
        } else {
            quote_spanned! {ret_span=>
                #p::Err(__resilience_call.rejected(__resilience_open, __resilience_last))
            }
        };
        quote! {
            let #permit_mut __resilience_permit = match __resilience_call.admit_breaker() {
                #p::Ok(__resilience_permit) => __resilience_permit,
                #p::Err(__resilience_open) => return #rejected,
            };
        }
    } else {
        quote! {
            let #permit_mut __resilience_permit = __resilience_call.admit_unguarded();
        }
    };
    let failed = if in_place {
        quote_spanned! {ret_span=>
            __resilience_call.failed_in_place(&mut __resilience_permit, &__resilience_error)
        }
    } else {
        quote_spanned! {ret_span=>
            __resilience_call.failed(__resilience_permit, &__resilience_error)
        }
    };
    let succeeded = if in_place {
        quote!(__resilience_call.succeeded_in_place(&mut __resilience_permit);)
    } else {
        quote!(__resilience_call.succeeded(__resilience_permit);)
    };
    let keep_last = guarded.then(|| quote!(__resilience_last = #p::Some(__resilience_error);));

    let (attempt, sleep) = if is_async {
        let attempt = match s.timeout {
            Some(nanos) => {
                let nanos = Literal::u64_unsuffixed(nanos);
                // Spanned on the return type, where a missing `From<AttemptTimedOut>` is
                // reported.
                let with_timeout = respan(quote!(#p::with_timeout), ret_span);
                let timed = quote_spanned! {ret_span=>
                    #with_timeout(#p::Duration::from_nanos(#nanos), async #block).await
                };
                quote! {
                    let __resilience_result: #ret = #timed;
                }
            }
            // Not `async move`: the block borrows the arguments, so the next attempt can use
            // them again.
            None => quote! {
                #[allow(clippy::redundant_async_block)]
                let __resilience_result: #ret = async #block.await;
            },
        };
        (
            attempt,
            quote!(__resilience_call.sleep_async(__resilience_delay).await;),
        )
    } else {
        (
            // An immediately called closure, so `return` and `?` end the attempt, not the call.
            quote! {
                #[allow(clippy::redundant_closure_call)]
                let __resilience_result: #ret = (|| -> #ret #block)();
            },
            quote!(__resilience_call.sleep(__resilience_delay);),
        )
    };

    // With `classify_ok`, the judged step takes the place of the plain match of the result.
    let judge_step = s.classify_ok.as_ref().map(|judge| {
        let keep = guarded.then(|| quote!(__resilience_last = #p::Some(__resilience_kept);));
        let judged_call = quote_spanned! {judge.span()=>
            __resilience_call.judged(__resilience_permit, __resilience_result, &#judge)
        };
        quote! {
            match #judged_call {
                #p::Ok(__resilience_end) => return __resilience_end,
                #p::Err((__resilience_delay, __resilience_kept)) => {
                    #keep
                    #sleep
                    continue;
                }
            }
        }
    });

    let plain_step = quote! {
        match __resilience_result {
                    #p::Ok(__resilience_value) => {
                        #succeeded
                        return #p::Ok(__resilience_value);
                    }
                    #p::Err(__resilience_error) => match #failed {
                        #p::Next::Retry(__resilience_delay) => {
                            #keep_last
                            #sleep
                        }
                        #p::Next::Stop => return #p::Err(__resilience_error),
                    },
                }
    };
    let step = judge_step.unwrap_or(plain_step);

    quote! {
        #(#attrs)*
        #vis #sig {
            #[allow(clippy::needless_update)]
            static __RESILIENCE_SITE: #p::Site = #p::Site::new(#component, #operation, #spec);
            #start
            #last_error
            loop {
                #admit
                #attempt
                #step
            }
        }
    }
}

/// `<crate>::__private`.
fn private(krate: &syn::Path) -> TokenStream {
    quote!(#krate::__private)
}

/// The call site's settings as a constant expression.
fn call_spec(
    p: &TokenStream,
    retry: &RetrySettings,
    breaker: Option<&BreakerSettings>,
) -> TokenStream {
    let duration = |nanos: u64| {
        let nanos = Literal::u64_unsuffixed(nanos);
        quote!(#p::Duration::from_nanos(#nanos))
    };
    let mut retry_fields = Vec::new();
    let field = |fields: &mut Vec<TokenStream>, name: &str, value: Option<TokenStream>| {
        if let Some(value) = value {
            let name = syn::Ident::new(name, Span::call_site());
            fields.push(quote!(#name: #p::Some(#value)));
        }
    };
    let int = |v: u32| Literal::u32_unsuffixed(v).into_token_stream();
    let float = |v: f64| Literal::f64_unsuffixed(v).into_token_stream();
    field(
        &mut retry_fields,
        "max_attempts",
        retry.max_attempts.map(int),
    );
    field(
        &mut retry_fields,
        "initial_delay",
        retry.initial_delay.map(duration),
    );
    field(
        &mut retry_fields,
        "max_delay",
        retry.max_delay.map(duration),
    );
    field(
        &mut retry_fields,
        "backoff_factor",
        retry.backoff_factor.map(float),
    );
    field(
        &mut retry_fields,
        "jitter_factor",
        retry.jitter_factor.map(float),
    );
    field(
        &mut retry_fields,
        "jitter",
        retry.jitter.as_ref().map(|v| quote!(#p::Jitter::#v)),
    );
    field(
        &mut retry_fields,
        "max_elapsed",
        retry.max_elapsed.map(duration),
    );
    let budget = retry.budget.as_ref().map(|budget| match budget {
        None => quote!(#p::None),
        Some(b) => {
            let mut fields = Vec::new();
            if let Some(v) = b.percent {
                let v = float(v);
                fields.push(quote!(percent_can_retry: #v));
            }
            if let Some(v) = b.min_per_sec {
                let v = int(v);
                fields.push(quote!(min_retries_per_sec: #v));
            }
            if let Some(v) = b.ttl {
                let v = duration(v);
                fields.push(quote!(ttl: #v));
            }
            quote!(#p::Some(#p::RetryBudget { #(#fields,)* ..#p::RetryBudget::DEFAULT }))
        }
    });
    field(&mut retry_fields, "budget", budget);

    let mut breaker_fields = Vec::new();
    if let Some(b) = breaker {
        field(
            &mut breaker_fields,
            "failure_threshold",
            b.failure_threshold.map(int),
        );
        field(
            &mut breaker_fields,
            "reset_timeout",
            b.reset_timeout.map(duration),
        );
        field(
            &mut breaker_fields,
            "half_open_max_calls",
            b.half_open_max_calls.map(int),
        );
        field(
            &mut breaker_fields,
            "success_threshold",
            b.success_threshold.map(int),
        );
        field(
            &mut breaker_fields,
            "open_timeout_increment_factor",
            b.open_timeout_increment_factor.map(float),
        );
        field(
            &mut breaker_fields,
            "max_open_timeout",
            b.max_open_timeout.map(duration),
        );
        field(
            &mut breaker_fields,
            "failure_rate",
            b.failure_rate.map(float),
        );
        let window = match (b.window, b.window_calls) {
            (Some(nanos), _) => {
                let d = duration(nanos);
                Some(quote!(#p::Window::Time(#d)))
            }
            (None, Some(calls)) => {
                let n = int(calls);
                Some(quote!(#p::Window::Count(#n)))
            }
            (None, None) => None,
        };
        field(&mut breaker_fields, "window", window);
        field(
            &mut breaker_fields,
            "minimum_calls",
            b.minimum_calls.map(int),
        );
        field(&mut breaker_fields, "slow_call", b.slow_call.map(duration));
        field(
            &mut breaker_fields,
            "slow_call_rate",
            b.slow_call_rate.map(float),
        );
        field(
            &mut breaker_fields,
            "max_half_open_wait",
            b.max_half_open_wait.map(duration),
        );
    }

    let mut spec_fields = Vec::new();
    if !retry_fields.is_empty() {
        spec_fields.push(quote! {
            retry: #p::RetryOverrides { #(#retry_fields,)* ..#p::RetryOverrides::NONE }
        });
    }
    if !breaker_fields.is_empty() {
        spec_fields.push(quote! {
            breaker: #p::BreakerOverrides { #(#breaker_fields,)* ..#p::BreakerOverrides::NONE }
        });
    }
    if breaker.is_none() {
        spec_fields.push(quote!(use_breaker: false));
    }
    if spec_fields.is_empty() {
        quote!(#p::CallSpec::GUARDED)
    } else {
        quote! {
            #p::CallSpec {
                policy: #p::CallOverrides { #(#spec_fields,)* ..#p::CallOverrides::GUARDED },
                ..#p::CallSpec::GUARDED
            }
        }
    }
}

/// `tokens` with every span set to `span` (interpolated tokens keep theirs in `quote_spanned!`).
fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut tree| {
            if let proc_macro2::TokenTree::Group(g) = &tree {
                let mut group = proc_macro2::Group::new(g.delimiter(), respan(g.stream(), span));
                group.set_span(span);
                tree = proc_macro2::TokenTree::Group(group);
            } else {
                tree.set_span(span);
            }
            tree
        })
        .collect()
}

/// Replaces every `impl Trait` in a type with `_`.
struct ImplTraitEraser;

impl VisitMut for ImplTraitEraser {
    fn visit_type_mut(&mut self, ty: &mut Type) {
        if let Type::ImplTrait(it) = ty {
            *ty = Type::Infer(syn::TypeInfer {
                underscore_token: syn::Token![_](it.impl_token.span),
            });
        } else {
            syn::visit_mut::visit_type_mut(self, ty);
        }
    }
}
