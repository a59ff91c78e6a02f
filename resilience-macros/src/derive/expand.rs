//! The generated `impl Classify`.

use super::{Rule, RuleKind};
use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::DeriveInput;

pub(crate) fn classify_impl(krate: &syn::Path, input: &DeriveInput, rules: &[Rule]) -> TokenStream {
    let p = quote!(#krate::__private);
    let name = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let mut where_clause = where_clause
        .cloned()
        .unwrap_or_else(|| syn::parse_quote!(where));
    let generic = !input.generics.params.is_empty();
    if generic {
        // Only needed (and only added) where type parameters could break them; for a plain
        // type the compiler checks them at the impl itself.
        where_clause
            .predicates
            .push(syn::parse_quote!(#name #ty_generics: #p::Error + 'static));
        for rule in rules {
            if let RuleKind::Source(field) = &rule.kind {
                if let Some(ty) = &field.ty {
                    where_clause
                        .predicates
                        .push(syn::parse_quote!(#ty: #p::Classify));
                }
            }
        }
    }

    let is_struct = matches!(input.data, syn::Data::Struct(_));
    let category_arms = rules.iter().map(|rule| {
        let pattern = pattern(
            rule,
            is_struct,
            match &rule.kind {
                RuleKind::Source(f) => Some(&f.member),
                RuleKind::Category(_) => None,
            },
        );
        let value = match &rule.kind {
            RuleKind::Category(c) => quote!(#p::ErrorCategory::#c),
            RuleKind::Source(_) => quote!(#p::Classify::category(__resilience_field)),
        };
        quote!(#pattern => #value,)
    });
    let needs_retry_after = rules
        .iter()
        .any(|r| r.retry_after.is_some() || matches!(r.kind, RuleKind::Source(_)));
    let retry_after = needs_retry_after.then(|| {
        let arms = rules.iter().map(|rule| {
            let member = match (&rule.kind, &rule.retry_after) {
                (RuleKind::Source(f), _) => Some(&f.member),
                (_, Some(f)) => Some(&f.member),
                _ => None,
            };
            let pattern = pattern(rule, is_struct, member);
            let value = match (&rule.kind, &rule.retry_after) {
                (RuleKind::Source(_), _) => quote!(#p::Classify::retry_after(__resilience_field)),
                (_, Some(f)) => {
                    // `Duration` and `Option<Duration>` fields; any other type is reported on
                    // the field's type.
                    let span = f.ty.as_ref().map_or_else(|| f.key.span(), |t| t.span());
                    quote_spanned!(span=> #p::RetryAfterField::retry_after_value(__resilience_field))
                }
                _ => quote!(#p::None),
            };
            quote!(#pattern => #value,)
        });
        quote! {
            fn retry_after(&self) -> #p::Option<#p::Duration> {
                match self {
                    #(#arms)*
                }
            }
        }
    });
    let as_error = quote_spanned!(name.span()=> #p::Some(self));
    let category_body = if rules.is_empty() {
        quote!(match *self {})
    } else {
        quote!(match self { #(#category_arms)* })
    };

    quote! {
        #[automatically_derived]
        impl #impl_generics #p::Classify for #name #ty_generics #where_clause {
            fn category(&self) -> #p::ErrorCategory {
                #category_body
            }
            #retry_after
            fn as_error(&self) -> #p::Option<&(dyn #p::Error + 'static)> {
                #as_error
            }
        }
    }
}

/// `Self::Variant { member: __resilience_field, .. }`, or `Self { .. }` for a struct.
fn pattern(rule: &Rule, is_struct: bool, member: Option<&syn::Member>) -> TokenStream {
    let path = match (&rule.variant, is_struct) {
        (Some(v), false) => quote!(Self::#v),
        _ => quote!(Self),
    };
    match member {
        Some(m) => quote!(#path { #m: __resilience_field, .. }),
        None => quote!(#path { .. }),
    }
}

/// What a derive whose input is wrong expands to: its errors, and an impl that only takes the
/// trait's defaults (`Unknown`, no `retry_after`). Without it every use of the type would add
/// an error of its own ("cannot be classified") to the one that matters (thiserror's
/// `fallback.rs`). `crate = "…"` is honoured when it was read before the error.
pub(crate) fn fallback_impl(
    krate: &syn::Path,
    input: &DeriveInput,
    errors: &syn::Error,
) -> TokenStream {
    let p = quote!(#krate::__private);
    let name = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let errors = errors.to_compile_error();
    quote! {
        #errors
        #[automatically_derived]
        impl #impl_generics #p::Classify for #name #ty_generics #where_clause {}
    }
}
