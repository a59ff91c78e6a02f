//! Procedural macros of `resilience-core`: `#[retry]` and `#[derive(Classify)]`.
//!
//! Use them through `resilience_core`, which re-exports both.
//!
//! Each macro is parse ([`attr`]) -> validate ([`validate`]) -> expand ([`expand`]); every
//! stage below this shim works on `proc_macro2` tokens, so the snapshot tests can run them.

use proc_macro::TokenStream;

mod attr;
mod ctxt;
mod derive;
mod expand;
mod suggest;
mod validate;
mod value;

#[cfg(test)]
mod tests;

/// Makes a function retry transient failures.
#[proc_macro_attribute]
pub fn retry(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::retry(args.into(), item.into()).into()
}

/// Implements `Classify`.
#[proc_macro_derive(Classify, attributes(classify))]
pub fn derive_classify(item: TokenStream) -> TokenStream {
    derive::classify(item.into()).into()
}
