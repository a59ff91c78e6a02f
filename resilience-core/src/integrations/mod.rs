//! `Classify` for errors of common crates, each behind the feature named after the crate.

#[cfg(feature = "reqwest")]
pub(crate) mod reqwest;

#[cfg(feature = "anyhow")]
mod anyhow;
