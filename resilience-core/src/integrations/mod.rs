//! `Classify` for errors of common crates, each behind the feature named after the crate.

#[cfg(feature = "reqwest")]
pub(crate) mod reqwest;

#[cfg(feature = "anyhow")]
mod anyhow;

#[cfg(feature = "tower")]
pub mod tower;

#[cfg(feature = "reqwest-middleware")]
mod reqwest_middleware;

#[cfg(feature = "reqwest-middleware")]
pub use self::reqwest_middleware::ResilienceMiddleware;
