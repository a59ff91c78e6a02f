//! Procedural macros of `resilience-core`: `#[retry]` and `#[derive(Classify)]`.
//!
//! Use them through `resilience_core`, which re-exports both.

use proc_macro::TokenStream;

/// Makes a function retry transient failures (placeholder until the attribute lands).
#[proc_macro_attribute]
pub fn retry(_args: TokenStream, item: TokenStream) -> TokenStream {
    item
}

/// Implements `Classify` (placeholder until the derive lands).
#[proc_macro_derive(Classify, attributes(classify))]
pub fn derive_classify(_item: TokenStream) -> TokenStream {
    TokenStream::new()
}
