//! Procedural macros of `resilience-core`: `#[retry]` and `#[derive(Classify)]`.
//!
//! Use them through `resilience_core`, which re-exports both.
//!
//! Each macro is parse (`attr`) -> validate (`validate`) -> expand (`expand`); every stage
//! below this shim works on `proc_macro2` tokens, so the snapshot tests in `src/tests.rs` can
//! run them. Errors are collected (`ctxt`), so one build shows every mistake of an attribute,
//! and the annotated item is always emitted with them.

#![forbid(unsafe_code)]

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

/// Makes a function retry its transient failures, with exponential backoff and jitter, behind a
/// circuit breaker, with metrics.
///
/// ```
/// use resilience_core::retry;
/// use std::io;
///
/// #[retry(component = "ChEMBL", operation = "fetch_molecule", max_attempts = 5,
///         initial_delay = "200ms", max_delay = "10s", backoff_factor = 2.0, jitter_factor = 0.2)]
/// fn fetch_molecule(attempts: &mut u32) -> Result<String, io::Error> {
///     *attempts += 1;
///     if *attempts < 2 {
///         return Err(io::ErrorKind::ConnectionReset.into()); // transient: retried
///     }
///     Ok("CHEMBL25".to_owned())
/// }
///
/// let mut attempts = 0;
/// assert_eq!(fetch_molecule(&mut attempts).unwrap(), "CHEMBL25");
/// assert_eq!(attempts, 2);
/// ```
///
/// # Arguments
/// All are optional; what is left out comes from the manager (`RetryConfig` and
/// `CircuitBreakerConfig` defaults, or what `configure_from_json` set for the operation).
///
/// | argument | value |
/// | --- | --- |
/// | `component = "…"` | the breaker's and the metrics' first name; default: the module path |
/// | `operation = "…"` | the second name; default: the function's name |
/// | `max_attempts = N` | every attempt counts, the first included; at least 1 (1: no retry) |
/// | `initial_delay = D`, `max_delay = D` | the first wait, and the cap of every wait |
/// | `backoff_factor = F` | at least 1.0 |
/// | `jitter_factor = F` | between 0.0 and 1.0 |
/// | `jitter = "…"` | `"proportional"` (default), `"full"`, `"equal"` or `"decorrelated"` |
/// | `max_elapsed = D` | an overall deadline: no retry whose wait would end past it |
/// | `timeout = D` | `async fn` only: each attempt is cut after `D` and fails as a `Timeout` |
/// | `circuit_breaker = false` | calls bypass the breaker |
/// | `circuit_breaker(…)` | `failure_threshold = N`, `reset_timeout = D`, `half_open_max_calls = N`, `success_threshold = N`, `open_timeout_increment_factor = F`, `max_open_timeout = D` |
/// | `manager = EXPR` | the manager to use instead of `resilience_core::global()`: anything that borrows as a `RetryManager` (`&M`, `Arc<M>`, `&self.manager`), evaluated once per call; it may use the arguments |
/// | `crate = "path"` | where `resilience_core` is, for crates that re-export it |
///
/// A duration `D` is seconds as a number (`1`, `0.25`) or a string with a unit: `"500us"`,
/// `"250ms"`, `"2s"`, `"1.5m"`, `"1h"`, `"1m30s"`. Every value is checked at compile time, with
/// the error on the value at fault; all the errors of one attribute are reported together, and
/// the function is still emitted so the rest of the crate compiles meanwhile.
///
/// # The function
/// It must return a `Result`: the return type must be a path whose last segment is `Result`
/// (`Result<T, E>`, `io::Result<T>`, `std::result::Result<T, E>`, `anyhow::Result<T>`); a type
/// alias named otherwise is not recognised, so write it out. The error type needs:
/// - `E: Classify` (`#[derive(Classify)]`), which tells transient failures from the others;
/// - `E: From<CircuitOpenError>` unless `circuit_breaker = false`: a call that its breaker
///   rejects before any attempt returns that error;
/// - `E: From<AttemptTimedOut>` with `timeout`. `io::Error` and `Box<dyn Error + Send + Sync>`
///   have both.
///
/// `fn`, `async fn`, methods taking `&self`, `&mut self` or `self: Pin<&mut Self>`, generic
/// functions and where clauses, lifetimes, `impl Trait` arguments and return types, `unsafe fn`,
/// functions in impl blocks and trait impls: the signature is kept exactly as written, with its
/// attributes and docs; only the body is replaced. `const fn` and methods taking `self` by
/// value are refused: they cannot run twice.
///
/// The body runs once per attempt: as an immediately called closure in a `fn`, as an `async`
/// block in an `async fn`. So `return` and `?` end the attempt (the error is then classified),
/// arguments and `&mut self` are borrowed again by each attempt, and an `async fn`'s future is
/// `Send` whenever its body is (it can be `tokio::spawn`ed). A body that consumes an owned
/// argument gets the compiler's "value moved into closure here, in previous iteration of loop":
/// take the argument by reference, or clone it inside the body.
///
/// # Equivalent code
/// The attribute above does what this does through the manager's public call builder:
///
/// ```
/// use resilience_core::global;
/// use std::io;
/// use std::time::Duration;
///
/// fn fetch_molecule(attempts: &mut u32) -> Result<String, io::Error> {
///     global()
///         .call("ChEMBL", "fetch_molecule")
///         .max_attempts(5)
///         .initial_delay(Duration::from_millis(200))
///         .max_delay(Duration::from_secs(10))
///         .backoff_factor(2.0)
///         .jitter_factor(0.2)
///         .run(|| {
///             *attempts += 1;
///             if *attempts < 2 {
///                 return Err(io::ErrorKind::ConnectionReset.into());
///             }
///             Ok("CHEMBL25".to_owned())
///         })
/// }
///
/// let mut attempts = 0;
/// assert_eq!(fetch_molecule(&mut attempts).unwrap(), "CHEMBL25");
/// ```
///
/// The expansion itself does not go through a closure-taking API: it is an inline loop over
/// the same driver, with the settings in a `static` built at compile time and the breaker and
/// metrics handles resolved once per call site. The snapshots in `resilience-macros/src/snapshots`
/// show it for each shape.
#[proc_macro_attribute]
pub fn retry(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::retry(args.into(), item.into()).into()
}

/// Implements `Classify` for an error enum or struct from `#[classify(...)]` attributes.
///
/// ```
/// use resilience_core::{Classify, ErrorCategory};
/// use std::time::Duration;
///
/// #[derive(Debug, Classify)]
/// #[classify(default = Unavailable)] // for variants without a category; default: Unknown
/// enum FetchError {
///     #[classify(Network)]
///     Reset,
///     #[classify(Validation)]
///     BadId(String),
///     #[classify(source)] // category and retry_after of the wrapped error
///     Io(std::io::Error),
///     #[classify(RateLimit, retry_after = wait)] // a `Duration` or `Option<Duration>` field
///     Busy { wait: Option<Duration> },
///     Maintenance,
/// }
/// # impl std::fmt::Display for FetchError {
/// #     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { write!(f, "{self:?}") }
/// # }
/// impl std::error::Error for FetchError {}
///
/// assert_eq!(FetchError::Reset.category(), ErrorCategory::Network);
/// assert_eq!(FetchError::Maintenance.category(), ErrorCategory::Unavailable);
/// let io = FetchError::Io(std::io::ErrorKind::TimedOut.into());
/// assert_eq!(io.category(), ErrorCategory::Timeout);
/// let busy = FetchError::Busy { wait: Some(Duration::from_secs(3)) };
/// assert_eq!(busy.retry_after(), Some(Duration::from_secs(3)));
/// ```
///
/// On a struct, the attribute goes on the struct: `#[classify(Timeout)]`, `#[classify(source)]`
/// (the struct has exactly one field) or `#[classify(RateLimit, retry_after = 0)]` (a tuple
/// field by index). `retry_after` names a field (`wait` or `"wait"`) of type `Duration` or
/// `Option<Duration>`; `source` needs exactly one field, whose type implements `Classify`. On
/// the type, `crate = "path"` names a re-exported `resilience_core`.
///
/// `as_error` returns the value itself, so that non-retryable types and classifier rules can
/// match it and its `source()` chain: the type must implement `std::error::Error` (and be
/// `'static`).
#[proc_macro_derive(Classify, attributes(classify))]
pub fn derive_classify(item: TokenStream) -> TokenStream {
    derive::classify(item.into()).into()
}
