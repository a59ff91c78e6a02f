//! The rules of `#[derive(Classify)]` beyond syntax (thiserror's `valid.rs`, serde's
//! `check.rs`): which key may go where, what `source` and `retry_after` may name. Every
//! problem goes into the context, so one build reports all of them; what comes out is the
//! model [`expand`](super::expand) works from.

use super::attr::{self, ClassifyAttrs, FieldRef, RetryAfter};
use super::{Rule, RuleKind};
use crate::ctxt::Ctxt;
use crate::suggest;
use syn::{Data, DeriveInput, Expr, Fields, Lit};

/// One rule per variant (or one for a struct), from the type's own attributes (`container`)
/// and its variants'.
pub(crate) fn rules(cx: &mut Ctxt, input: &DeriveInput, container: ClassifyAttrs) -> Vec<Rule> {
    match &input.data {
        Data::Enum(data) => {
            if let Some(category) = &container.category {
                cx.error_spanned_by(
                    category,
                    format!("a category goes on each variant, not on the enum; to set the one for variants without, write `#[classify(default = {category})]`"),
                );
            }
            container.reject(
                cx,
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
                    let attrs = attr::parse_attrs(cx, &variant.attrs);
                    attrs.reject(
                        cx,
                        &["default", "crate"],
                        "goes on the type, not on a variant",
                    );
                    check_fields(cx, &variant.fields);
                    rule(
                        cx,
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
                cx,
                &["default"],
                "is for enums; on a struct, write the category itself: `#[classify(Network)]`",
            );
            check_fields(cx, &data.fields);
            let unknown = syn::Ident::new("Unknown", input.ident.span());
            vec![rule(cx, None, &data.fields, container, &unknown)]
        }
        Data::Union(u) => {
            cx.error_spanned_by(
                u.union_token,
                "`#[derive(Classify)]` supports enums and structs, not unions",
            );
            Vec::new()
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
        .and_then(|r| resolve_field(cx, r, fields, variant.as_ref()));
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
                RuleKind::Source(Box::new(FieldRef {
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

/// The field `retry_after = …` names, or an error listing the fields there are.
fn resolve_field(
    cx: &mut Ctxt,
    r: &RetryAfter,
    fields: &Fields,
    variant: Option<&syn::Ident>,
) -> Option<FieldRef> {
    let wanted: Option<String> = match &r.field {
        Expr::Path(p) => p
            .path
            .get_ident()
            .map(|i| syn::ext::IdentExt::unraw(i).to_string()),
        Expr::Lit(syn::ExprLit {
            lit: Lit::Str(s), ..
        }) => Some(s.value()),
        Expr::Lit(syn::ExprLit {
            lit: Lit::Int(i), ..
        }) => Some(i.base10_digits().to_owned()),
        _ => None,
    };
    let Some(wanted) = wanted else {
        cx.error_spanned_by(&r.field, "`retry_after` names a field of type `Duration` or `Option<Duration>`: `retry_after = wait` (or `retry_after = 0` for a tuple field)");
        return None;
    };
    let names: Vec<String> = fields
        .iter()
        .enumerate()
        .map(|(i, f)| {
            f.ident.as_ref().map_or_else(
                || i.to_string(),
                |id| syn::ext::IdentExt::unraw(id).to_string(),
            )
        })
        .collect();
    match names.iter().position(|n| *n == wanted) {
        Some(index) => {
            let field = fields.iter().nth(index)?;
            let member = match &field.ident {
                Some(ident) => syn::Member::Named(ident.clone()),
                None => syn::Member::Unnamed(syn::Index::from(index)),
            };
            Some(FieldRef {
                member,
                ty: Some(field.ty.clone()),
                key: r.key.clone(),
            })
        }
        None => {
            let what = match variant {
                Some(v) => format!("variant `{v}`"),
                None => "this struct".to_owned(),
            };
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            let listing = if refs.is_empty() {
                format!("{what} has no fields")
            } else {
                format!("fields of {what}: {}", suggest::list(&refs))
            };
            cx.error_spanned_by(
                &r.field,
                format!(
                    "no field `{wanted}` in {what}{}\n{listing}",
                    suggest::did_you_mean(&wanted, &refs)
                ),
            );
            None
        }
    }
}
