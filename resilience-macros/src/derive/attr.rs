//! Parsing of `#[classify(...)]`: a category (`Network`), `source`, `retry_after = field`,
//! and on the type `default = Category` and `crate = "path"`.

use crate::ctxt::Ctxt;
use crate::suggest;
use syn::punctuated::Punctuated;
use syn::{Expr, Lit, Meta, Token};

/// The categories of `ErrorCategory`.
pub(crate) const CATEGORIES: &[&str] = &[
    "Network",
    "Timeout",
    "Database",
    "RateLimit",
    "Unavailable",
    "Authentication",
    "Validation",
    "NotFound",
    "Configuration",
    "Unknown",
];

/// A field named by `source` or `retry_after`.
#[derive(Clone)]
pub(crate) struct FieldRef {
    pub member: syn::Member,
    /// The field's type, once resolved.
    pub ty: Option<syn::Type>,
    /// The tokens to blame.
    pub key: syn::Path,
}

/// What the `#[classify]` attributes of one item say. Keys are kept with their tokens so that
/// a key in the wrong place can be blamed.
#[derive(Default)]
pub(crate) struct ClassifyAttrs {
    pub category: Option<syn::Ident>,
    pub source: Option<syn::Path>,
    pub retry_after: Option<RetryAfter>,
    pub default: Option<syn::Ident>,
    pub default_key: Option<syn::Path>,
    pub krate: Option<syn::Path>,
    pub krate_key: Option<syn::Path>,
}

/// `retry_after = field` as written: a name (`wait`, `"wait"`) or a tuple index (`0`).
#[derive(Clone)]
pub(crate) struct RetryAfter {
    pub key: syn::Path,
    pub field: Expr,
}

impl ClassifyAttrs {
    /// Reports each of `keys` that was given: it does not belong where it was written.
    pub(crate) fn reject(&self, cx: &mut Ctxt, keys: &[&str], why: &str) {
        for key in keys {
            match *key {
                "source" => {
                    if let Some(s) = &self.source {
                        cx.error_spanned_by(s, format!("`source` {why}"));
                    }
                }
                "retry_after" => {
                    if let Some(r) = &self.retry_after {
                        cx.error_spanned_by(&r.key, format!("`retry_after` {why}"));
                    }
                }
                "default" => {
                    if let Some(k) = &self.default_key {
                        cx.error_spanned_by(k, format!("`default` {why}"));
                    }
                }
                "crate" => {
                    if let Some(k) = &self.krate_key {
                        cx.error_spanned_by(k, format!("`crate` {why}"));
                    }
                }
                _ => {}
            }
        }
    }
}

/// Reads every `#[classify(...)]` among `attrs`.
pub(crate) fn parse_attrs(cx: &mut Ctxt, attrs: &[syn::Attribute]) -> ClassifyAttrs {
    let mut out = ClassifyAttrs::default();
    for a in attrs.iter().filter(|a| a.path().is_ident("classify")) {
        let metas = match a.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated) {
            Ok(metas) => metas,
            Err(e) => {
                cx.syn_error(e);
                continue;
            }
        };
        for meta in &metas {
            parse_one(cx, &mut out, meta);
        }
    }
    out
}

fn parse_one(cx: &mut Ctxt, out: &mut ClassifyAttrs, meta: &Meta) {
    match meta {
        Meta::Path(path) => {
            let Some(ident) = path.get_ident() else {
                unknown(cx, path);
                return;
            };
            if ident == "source" {
                if out.source.is_some() {
                    repeated(cx, path);
                }
                out.source = Some(path.clone());
            } else if CATEGORIES.iter().any(|c| ident == c) {
                if out.category.is_some() {
                    cx.error_spanned_by(path, "a second category; keep one");
                }
                out.category = Some(ident.clone());
            } else {
                unknown(cx, path);
            }
        }
        Meta::NameValue(nv) => {
            let key = &nv.path;
            let name = crate::attr::key_name(key).unwrap_or_default();
            match name.as_str() {
                "retry_after" => {
                    if out.retry_after.is_some() {
                        repeated(cx, key);
                    }
                    out.retry_after = Some(RetryAfter {
                        key: key.clone(),
                        field: nv.value.clone(),
                    });
                }
                "default" => {
                    if out.default.is_some() {
                        repeated(cx, key);
                    }
                    match &nv.value {
                        Expr::Path(p)
                            if p.path
                                .get_ident()
                                .is_some_and(|i| CATEGORIES.iter().any(|c| i == c)) =>
                        {
                            out.default = p.path.get_ident().cloned();
                            out.default_key = Some(key.clone());
                        }
                        Expr::Path(p) if p.path.get_ident().is_some() => unknown(cx, &p.path),
                        other => cx.error_spanned_by(
                            other,
                            format!(
                                "`default` takes a category: `default = Network`; categories: {}",
                                suggest::list(CATEGORIES)
                            ),
                        ),
                    }
                }
                "crate" => {
                    if out.krate.is_some() {
                        repeated(cx, key);
                    }
                    match &nv.value {
                        Expr::Lit(syn::ExprLit {
                            lit: Lit::Str(s), ..
                        }) => match s.parse::<syn::Path>() {
                            Ok(path) => {
                                out.krate = Some(path);
                                out.krate_key = Some(key.clone());
                            }
                            Err(_) => cx.error_spanned_by(
                                s,
                                "`crate` takes a path such as \"my_reexport::resilience_core\"",
                            ),
                        },
                        other => cx.error_spanned_by(
                            other,
                            "`crate` takes a string: `crate = \"my_reexport::resilience_core\"`",
                        ),
                    }
                }
                _ => unknown(cx, key),
            }
        }
        Meta::List(list) => unknown(cx, &list.path),
    }
}

fn repeated(cx: &mut Ctxt, key: &syn::Path) {
    let name = crate::attr::key_name(key).unwrap_or_default();
    cx.error_spanned_by(key, format!("`{name}` is given more than once; keep one"));
}

fn unknown(cx: &mut Ctxt, path: &syn::Path) {
    let written = quote::ToTokens::to_token_stream(path)
        .to_string()
        .replace(' ', "");
    let mut candidates: Vec<&str> = CATEGORIES.to_vec();
    candidates.extend(["source", "retry_after", "default", "crate"]);
    cx.error_spanned_by(
        path,
        format!(
            "unknown `#[classify]` argument `{written}`{}\ncategories: {}; or `source` (ask the wrapped error), `retry_after = field`, and on an enum `default = Category`",
            suggest::did_you_mean(&written, &candidates),
            suggest::list(CATEGORIES)
        ),
    );
}
