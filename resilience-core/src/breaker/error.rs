//! What a state file that cannot be used gives.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// The state file could not be used: its directory cannot be written or something other than a
/// file (a directory) is at its path (at construction), or a write failed or was skipped (from
/// [`CircuitBreakerRegistry::flush`](crate::CircuitBreakerRegistry::flush)).
///
/// ```
/// use resilience_core::CircuitBreakerRegistry;
/// let dir = tempfile::tempdir().unwrap();
/// let not_a_dir = dir.path().join("file");
/// std::fs::write(&not_a_dir, b"x").unwrap();
/// let err = CircuitBreakerRegistry::with_state_file(not_a_dir.join("state.json")).unwrap_err();
/// assert!(err.to_string().contains("cannot write to the directory"), "{err}");
/// ```
#[derive(Debug)]
pub struct PersistError {
    path: PathBuf,
    action: &'static str,
    source: io::Error,
}

impl PersistError {
    pub(crate) fn new(path: &Path, action: &'static str, source: io::Error) -> Self {
        PersistError {
            path: path.to_path_buf(),
            action,
            source,
        }
    }

    /// The state file at fault.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl fmt::Display for PersistError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "circuit breaker state file {}: {}: {}",
            self.path.display(),
            self.action,
            self.source
        )
    }
}

impl std::error::Error for PersistError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}
