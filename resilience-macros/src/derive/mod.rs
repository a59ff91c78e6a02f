//! `#[derive(Classify)]`: parse the `#[classify(...)]` attributes ([`attr`]), check where each
//! may go (here), and generate the impl ([`expand`]).

mod attr;
mod expand;

use crate::ctxt::Ctxt;
use attr::ClassifyAttrs;
use proc_macro2::TokenStream;
use quote::quote;
use syn::{Data, DeriveInput, Fields};

/// What one match arm (a variant, or the struct itself) reports.
pub(crate) struct Rule {
    /// The variant, or `None` for a struct.
    pub variant: Option<syn::Ident>,
    pub kind: RuleKind,
    /// A field holding the peer's requested wait.
    pub retry_after: Option<attr::FieldRef>,
}

pub(crate) enum RuleKind {
    /// A fixed category.
    Category(syn::Ident),
    /// Ask the single field.
    Source(Box<attr::FieldRef>),
}

/// The derive's output: the impl, or every error.
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
    let rules = match &input.data {
        Data::Enum(data) => {
            if let Some(category) = &container.category {
                cx.error_spanned_by(
                    category,
                    format!("a category goes on each variant, not on the enum; to set the one for variants without, write `#[classify(default = {category})]`"),
                );
            }
            container.reject(
                &mut cx,
                &["source", "retry_after"],
                "goes on a variant, not on the enum",
            );
            let default = container
                .default
                .clone()
                .unwrap_or_else(|| syn::Ident::new("Unknown", input.ident.span()));
            data.variants
                .iter()
                .map(|variant| {
                    let attrs = attr::parse_attrs(&mut cx, &variant.attrs);
                    attrs.reject(
                        &mut cx,
                        &["default", "crate"],
                        "goes on the type, not on a variant",
                    );
                    check_fields(&mut cx, &variant.fields);
                    rule(
                        &mut cx,
                        Some(variant.ident.clone()),
                        &variant.fields,
                        attrs,
                        &default,
                    )
                })
                .collect()
        }
        Data::Struct(data) => {
            container.reject(
                &mut cx,
                &["default"],
                "is for enums; on a struct, write the category itself: `#[classify(Network)]`",
            );
            check_fields(&mut cx, &data.fields);
            let unknown = syn::Ident::new("Unknown", input.ident.span());
            vec![rule(&mut cx, None, &data.fields, container, &unknown)]
        }
        Data::Union(u) => {
            cx.error_spanned_by(
                u.union_token,
                "`#[derive(Classify)]` supports enums and structs, not unions",
            );
            Vec::new()
        }
    };
    match cx.check() {
        Ok(()) => expand::classify_impl(&krate, &input, &rules),
        Err(e) => {
            let errors = e.to_compile_error();
            quote!(#errors)
        }
    }
}

/// `#[classify]` belongs on the type and its variants only.
fn check_fields(cx: &mut Ctxt, fields: &Fields) {
    for field in fields {
        for a in &field.attrs {
            if a.path().is_ident("classify") {
                cx.error_spanned_by(a, "`#[classify]` goes on the type or on its variants, not on a field; name the field instead: `#[classify(source)]` or `#[classify(retry_after = field)]`");
            }
        }
    }
}

fn rule(
    cx: &mut Ctxt,
    variant: Option<syn::Ident>,
    fields: &Fields,
    attrs: ClassifyAttrs,
    default: &syn::Ident,
) -> Rule {
    let retry_after = attrs
        .retry_after
        .as_ref()
        .and_then(|r| attr::resolve_field(cx, r, fields, variant.as_ref()));
    let kind = match (&attrs.source, &attrs.category) {
        (Some(source), category) => {
            if let Some(category) = category {
                cx.error_spanned_by(category, "`source` takes the category from the wrapped error; remove either the category or `source`");
            }
            if let Some(r) = &attrs.retry_after {
                cx.error_spanned_by(&r.key, "`source` already takes `retry_after` from the wrapped error; remove `retry_after`");
            }
            if fields.len() == 1 {
                let field = fields.iter().next();
                let member = match field.and_then(|f| f.ident.clone()) {
                    Some(ident) => syn::Member::Named(ident),
                    None => syn::Member::Unnamed(syn::Index::from(0)),
                };
                RuleKind::Source(Box::new(attr::FieldRef {
                    member,
                    ty: field.map(|f| f.ty.clone()),
                    key: source.clone(),
                }))
            } else {
                let what = match &variant {
                    Some(v) => format!("variant `{v}`"),
                    None => "this struct".to_owned(),
                };
                cx.error_spanned_by(
                    source,
                    format!("`source` delegates to the one field that holds the wrapped error, but {what} has {} fields; classify it with a category such as `#[classify(Network)]` instead", fields.len()),
                );
                RuleKind::Category(default.clone())
            }
        }
        (None, Some(category)) => RuleKind::Category(category.clone()),
        (None, None) => RuleKind::Category(syn::Ident::new(
            &default.to_string(),
            variant
                .as_ref()
                .map_or_else(|| default.span(), |v| v.span()),
        )),
    };
    Rule {
        variant,
        kind,
        retry_after,
    }
}
