//! Collects every error of one macro invocation, so the user sees all of them in one build
//! (serde_derive's `Ctxt`).
//!
//! An error pushed here reaches the user only if someone takes it out ([`Ctxt::check`] or
//! [`Ctxt::into_compile_errors`]). A path that forgets to would expand as if the input were
//! fine, so dropping a context that still holds errors panics: the compiler then reports the
//! macro's bug instead of silently accepting a wrong attribute.

use proc_macro2::TokenStream;
use quote::ToTokens;
use std::fmt::Display;

/// The errors found so far.
#[derive(Default)]
pub(crate) struct Ctxt {
    errors: Vec<syn::Error>,
}

impl Ctxt {
    /// An error whose span covers `tokens` (the offending key or value).
    pub(crate) fn error_spanned_by<T: ToTokens, M: Display>(&mut self, tokens: T, message: M) {
        self.errors.push(syn::Error::new_spanned(tokens, message));
    }

    /// An error at `span`.
    pub(crate) fn error_at<M: Display>(&mut self, span: proc_macro2::Span, message: M) {
        self.errors.push(syn::Error::new(span, message));
    }

    /// A syntax error from syn.
    pub(crate) fn syn_error(&mut self, error: syn::Error) {
        self.errors.push(error);
    }

    /// Whether nothing was reported.
    pub(crate) fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// Every error as `compile_error!` invocations (nothing when there are none).
    pub(crate) fn into_compile_errors(mut self) -> TokenStream {
        self.take()
            .into_iter()
            .map(|e| e.to_compile_error())
            .collect()
    }

    /// `Ok` when nothing was reported, else every error combined.
    pub(crate) fn check(mut self) -> syn::Result<()> {
        let mut errors = self.take().into_iter();
        match errors.next() {
            None => Ok(()),
            Some(mut first) => {
                first.extend(errors);
                Err(first)
            }
        }
    }

    fn take(&mut self) -> Vec<syn::Error> {
        std::mem::take(&mut self.errors)
    }
}

impl Drop for Ctxt {
    fn drop(&mut self) {
        // Not while unwinding: a second panic would abort and hide the first.
        if !self.errors.is_empty() && !std::thread::panicking() {
            panic!(
                "resilience-macros: {} error(s) dropped without being reported (a `Ctxt` must end in `check()` or `into_compile_errors()`)",
                self.errors.len()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proc_macro2::Span;

    #[test]
    fn errors_taken_by_check_or_as_compile_errors_pass() {
        let mut cx = Ctxt::default();
        cx.error_at(Span::call_site(), "one");
        cx.error_at(Span::call_site(), "two");
        assert_eq!(cx.check().map_err(|e| e.into_iter().count()), Err(2));

        let mut cx = Ctxt::default();
        cx.error_at(Span::call_site(), "one");
        assert!(!cx.into_compile_errors().is_empty());
    }

    #[test]
    fn a_context_without_errors_may_simply_end() {
        let cx = Ctxt::default();
        assert!(cx.is_empty());
    }

    #[test]
    #[should_panic(expected = "1 error(s) dropped without being reported")]
    fn dropping_errors_unreported_panics() {
        let mut cx = Ctxt::default();
        cx.error_at(Span::call_site(), "lost");
        drop(cx);
    }

    #[test]
    fn no_second_panic_while_unwinding() {
        let unwound = std::panic::catch_unwind(|| {
            let mut cx = Ctxt::default();
            cx.error_at(Span::call_site(), "lost while unwinding");
            panic!("the first panic");
        });
        // A panic in `drop` during unwinding would have aborted the test process.
        assert!(unwound.is_err());
    }
}
