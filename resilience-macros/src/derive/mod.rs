//! `#[derive(Classify)]`: parse the `#[classify(...)]` attributes ([`attr`]), check them
//! ([`validate`]) into one [`Rule`] per variant, and generate the impl ([`expand`]). On any
//! error the output is every error plus an empty impl (`expand::fallback_impl`).

mod attr;
mod expand;
mod validate;

use crate::ctxt::Ctxt;
use proc_macro2::TokenStream;
use syn::DeriveInput;

/// What one match arm (a variant, or the struct itself) reports.
pub(crate) struct Rule {
    /// The variant, or `None` for a struct.
    pub variant: Option<syn::Ident>,
    pub kind: RuleKind,
    /// A field holding the peer's requested wait.
    pub retry_after: Option<attr::FieldRef>,
}

/// Where a rule's category comes from.
pub(crate) enum RuleKind {
    /// A fixed category.
    Category(syn::Ident),
    /// Ask the single field.
    Source(Box<attr::FieldRef>),
}

/// The derive's output: the impl, or every error with an empty impl.
pub(crate) fn classify(item: TokenStream) -> TokenStream {
    let input: DeriveInput = match syn::parse2(item) {
        Ok(input) => input,
        Err(e) => return e.to_compile_error(),
    };
    let mut cx = Ctxt::default();
    let container = attr::parse_attrs(&mut cx, &input.attrs);
    let krate = container
        .krate
        .clone()
        .unwrap_or_else(|| syn::parse_quote!(::resilience_core));
    let rules = validate::rules(&mut cx, &input, container);
    match cx.check() {
        Ok(()) => expand::classify_impl(&krate, &input, &rules),
        // The errors, and an empty impl so that each use of the type does not add one more
        // ("does not implement `Classify`"): thiserror's fallback.
        Err(errors) => expand::fallback_impl(&krate, &input, &errors),
    }
}

#[cfg(test)]
mod tests {
    use quote::quote;

    /// How many times `needle` occurs in the printed tokens of `out`.
    fn count(out: &proc_macro2::TokenStream, needle: &str) -> usize {
        out.to_string().matches(needle).count()
    }

    #[test]
    fn a_wrong_input_gives_its_errors_and_an_empty_impl() {
        let out = super::classify(quote! {
            enum FetchError<T> where T: Clone {
                #[classify(Netwrok)]
                Reset(T),
                #[classify(source)]
                Both(T, T),
            }
        });
        assert_eq!(count(&out, "compile_error"), 2, "{out}");
        assert_eq!(count(&out, "impl"), 1, "{out}");
        let printed = out.to_string().replace(' ', "");
        assert!(
            printed.contains(
                "impl<T>::resilience_core::__private::ClassifyforFetchError<T>whereT:Clone{}"
            ),
            "{printed}"
        );
    }

    #[test]
    fn the_fallback_keeps_a_crate_path_read_before_the_error() {
        let out = super::classify(quote! {
            #[classify(crate = "my::core", Network)]
            union Bits { a: u32 }
        });
        assert_eq!(count(&out, "compile_error"), 1, "{out}");
        let printed = out.to_string().replace(' ', "");
        assert!(
            printed.contains("implmy::core::__private::ClassifyforBits{}"),
            "{printed}"
        );
    }

    #[test]
    fn a_right_input_has_no_fallback() {
        let out = super::classify(quote! {
            enum FetchError { #[classify(Network)] Reset }
        });
        assert_eq!(count(&out, "compile_error"), 0, "{out}");
        assert!(out.to_string().contains("fn category"), "{out}");
    }
}
