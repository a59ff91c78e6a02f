//! The process-wide manager that `#[retry]` uses unless given `manager = …`.

use super::RetryManager;
use std::sync::OnceLock;

static GLOBAL: OnceLock<RetryManager> = OnceLock::new();

/// The process-wide manager, created with defaults on first use unless [`set_global`] installed
/// one before.
///
/// ```
/// let manager = resilience_core::global();
/// assert!(std::ptr::eq(manager, resilience_core::global()));
/// ```
#[inline]
pub fn global() -> &'static RetryManager {
    GLOBAL.get_or_init(RetryManager::new)
}

/// Installs `manager` as the process-wide one. Fails (giving it back) when the global manager
/// was already created or set: call it at the start of `main`.
///
/// ```
/// use resilience_core::{set_global, RetryManager, RetryConfig};
/// let manager = RetryManager::builder()
///     .default_config(RetryConfig { max_attempts: 5, ..RetryConfig::default() })
///     .build()
///     .unwrap();
/// set_global(manager).expect("nothing used the global manager yet");
/// assert_eq!(resilience_core::global().default_config().max_attempts, 5);
/// ```
pub fn set_global(manager: RetryManager) -> Result<(), Box<RetryManager>> {
    GLOBAL.set(manager).map_err(Box::new)
}
