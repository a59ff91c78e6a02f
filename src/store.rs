//! The importer's SQLite file: one table of molecules keyed by id, each insert its own
//! transaction, so whatever was committed before a crash is there after it, once.

use crate::flaky_service::Molecule;
use resilience_core::{Classify, ErrorCategory};
use rusqlite::{params, Connection, ErrorCode, OptionalExtension};
use std::collections::HashSet;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A shared connection to the importer's database.
///
/// ```
/// use resilience::flaky_service::Molecule;
/// use resilience::store::Store;
/// let dir = tempfile::tempdir().unwrap();
/// let store = Store::open(&dir.path().join("m.db")).unwrap();
/// assert!(store.insert(&Molecule::catalog_entry(1)).unwrap());
/// assert!(!store.insert(&Molecule::catalog_entry(1)).unwrap()); // there already
/// assert_eq!(store.get(1).unwrap(), Some(Molecule::catalog_entry(1)));
/// ```
#[derive(Clone, Debug)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
}

impl Store {
    /// Opens or creates the database at `path` and its table.
    pub fn open(path: &Path) -> rusqlite::Result<Store> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        // WAL with NORMAL sync: a committed insert survives the process being killed (only a
        // power cut can lose the last ones), at a fraction of FULL's cost per commit.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS molecules (
                 id INTEGER PRIMARY KEY,
                 name TEXT NOT NULL,
                 smiles TEXT NOT NULL,
                 formula TEXT NOT NULL,
                 molecular_weight REAL NOT NULL
             )",
        )?;
        Ok(Store {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Inserts `molecule` unless its id is there; `true` when it was inserted. Blocks.
    pub fn insert(&self, molecule: &Molecule) -> rusqlite::Result<bool> {
        let changed = self.conn().execute(
            "INSERT INTO molecules (id, name, smiles, formula, molecular_weight)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (id) DO NOTHING",
            params![
                molecule.id,
                molecule.name,
                molecule.smiles,
                molecule.formula,
                molecule.molecular_weight
            ],
        )?;
        Ok(changed == 1)
    }

    /// The record stored under `id`. Blocks.
    pub fn get(&self, id: u64) -> rusqlite::Result<Option<Molecule>> {
        self.conn()
            .query_row(
                "SELECT id, name, smiles, formula, molecular_weight FROM molecules WHERE id = ?1",
                [id],
                |row| {
                    Ok(Molecule {
                        id: row.get(0)?,
                        name: row.get(1)?,
                        smiles: row.get(2)?,
                        formula: row.get(3)?,
                        molecular_weight: row.get(4)?,
                    })
                },
            )
            .optional()
    }

    /// Every stored id, once per row (a duplicate would show twice). Blocks.
    pub fn ids(&self) -> rusqlite::Result<Vec<u64>> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT id FROM molecules ORDER BY id")?;
        let ids = stmt.query_map([], |row| row.get(0))?;
        ids.collect()
    }

    /// Every stored id, read on the blocking pool.
    pub(crate) async fn existing_ids(&self) -> Result<HashSet<u64>, crate::importer::SetupError> {
        use crate::importer::SetupError;
        let store = self.clone();
        let ids = tokio::task::spawn_blocking(move || store.ids())
            .await
            .map_err(SetupError::Worker)?
            .map_err(SetupError::Database)?;
        Ok(ids.into_iter().collect())
    }
}

/// A SQLite error, classified by [`category`].
///
/// Why a wrapper: `#[derive(Classify)]` on [`ImportError`](crate::importer::ImportError) can
/// delegate to a field's `Classify` impl (`#[classify(source)]`) but cannot call a function,
/// and neither `Classify` nor `rusqlite::Error` is this crate's, so the impl goes on a type
/// that is. It is written by hand because the category depends on the SQLite error code.
///
/// ```
/// use resilience::store::SqliteError;
/// use resilience_core::{Classify, ErrorCategory};
/// let busy = rusqlite::Error::SqliteFailure(
///     rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY), None);
/// assert_eq!(SqliteError(busy).category(), ErrorCategory::Database);
/// ```
#[derive(Debug)]
pub struct SqliteError(pub rusqlite::Error);

impl fmt::Display for SqliteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for SqliteError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        // Transparent: the wrapper adds nothing to the message, so the chain goes on from
        // rusqlite's own source.
        self.0.source()
    }
}

impl Classify for SqliteError {
    fn category(&self) -> ErrorCategory {
        category(&self.0)
    }

    fn as_error(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self)
    }
}

/// The category of a SQLite error: busy, locked or I/O trouble may pass (`Database`); a broken
/// constraint or a bad value will not (`Validation`); a file that cannot be opened or is not a
/// database is our setup (`Configuration`).
///
/// ```
/// use resilience::store::category;
/// use resilience_core::ErrorCategory;
/// let busy = rusqlite::Error::SqliteFailure(
///     rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY), None);
/// assert_eq!(category(&busy), ErrorCategory::Database);
/// ```
pub fn category(error: &rusqlite::Error) -> ErrorCategory {
    match error.sqlite_error_code() {
        Some(
            ErrorCode::DatabaseBusy
            | ErrorCode::DatabaseLocked
            | ErrorCode::SystemIoFailure
            | ErrorCode::OutOfMemory
            | ErrorCode::FileLockingProtocolFailed,
        ) => ErrorCategory::Database,
        Some(ErrorCode::ConstraintViolation | ErrorCode::TypeMismatch | ErrorCode::TooBig) => {
            ErrorCategory::Validation
        }
        Some(
            ErrorCode::CannotOpen
            | ErrorCode::NotADatabase
            | ErrorCode::PermissionDenied
            | ErrorCode::ReadOnly
            | ErrorCode::DatabaseCorrupt,
        ) => ErrorCategory::Configuration,
        Some(_) => ErrorCategory::Database,
        None => ErrorCategory::Validation,
    }
}
