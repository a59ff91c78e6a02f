//! The state file on disk.
//!
//! - **Lock.** Every read and write holds an advisory lock on `<file>.lock` (a separate file,
//!   since the state file itself is replaced by rename on every write). The wait for it is
//!   bounded (`lock_timeout`, 5 s by default): a peer that holds the lock and never lets go
//!   costs a start-up that long and then a read without the lock; a write that cannot get the
//!   lock fails and is tried again later. Nothing waits forever.
//! - **Atomic replace.** A write goes to a temporary file in the same directory, created
//!   exclusively (`O_EXCL`) under an unpredictable name (`.<file>.tmp-<12 random characters>`),
//!   so a link planted in the directory is never followed; it is flushed to disk, then renamed
//!   over the state file: a reader sees the old file or the new one, never a part of either.
//! - **Modes.** New state and lock files are created 0600 (owner only: the file names the
//!   services a program talks to). A rewrite keeps the mode of the file it replaces, so an
//!   operator's `chmod 640` survives.
//! - **Leftovers.** A temporary file exists only while its writer holds the lock. So whoever
//!   holds the lock knows that every temporary file it finds belongs to a writer that died
//!   mid-write (killed, or the machine lost power), and may remove it: the registry does so
//!   when it starts, if it gets the lock. That needs no process ids (which mean nothing across
//!   containers sharing a volume, and are reused) and no file ages (a clock question). The
//!   predictable names of earlier builds (`.<file>.<pid>.tmp`) are removed the same way; removing
//!   never follows a link.
//! - **Bad and foreign files.** A file that cannot be parsed is moved aside (`<file>.corrupt-<unix
//!   ms>`), but only under the lock. A file of a newer format version is never moved or
//!   overwritten (see [`Written::Newer`]). A directory or other non-file at the path is an
//!   error at construction and makes writes fail; it is never moved.

use super::format::{self, Records, Unusable};
use crate::breaker::PersistError;
use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long a read or write waits for `<file>.lock` unless the builder says otherwise.
pub(crate) const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest pause between two tries of the lock: short enough that a lock released in the
/// meantime is taken soon after, long enough that a held lock costs no measurable CPU.
const MAX_LOCK_PAUSE: Duration = Duration::from_millis(50);

#[derive(Debug)]
pub(crate) struct Store {
    path: PathBuf,
    lock_path: PathBuf,
    dir: PathBuf,
    file_name: OsString,
    /// `.<file>.tmp-`: what every temporary file's name starts with.
    tmp_prefix: OsString,
    lock_timeout: Duration,
}

/// What a load found.
#[derive(Debug, Default)]
pub(crate) struct Loaded {
    pub(crate) records: Records,
    /// The file is of this newer format version: it was left alone.
    pub(crate) newer: Option<u64>,
}

/// How a write ended, when it did not fail.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Written {
    /// The file now holds everything.
    Done,
    /// The file is of this newer format version, written by a newer build of the program that
    /// may still be running: it was left as it is and nothing was written.
    Newer(u64),
}

/// Why the file's records could not be read.
enum ReadError {
    /// Not a state file: move it aside.
    Bad(String),
    /// A newer format: leave it alone.
    Newer(u64),
    /// Something that is not a file is at the path: leave it alone, fail.
    NotAFile(io::Error),
}

fn sibling(path: &Path, prefix: &str, suffix: &str) -> PathBuf {
    let mut name = OsString::from(prefix);
    name.push(path.file_name().unwrap_or_default());
    name.push(suffix);
    path.with_file_name(name)
}

fn not_a_file(kind: io::ErrorKind, what: &str) -> io::Error {
    io::Error::new(
        kind,
        format!("{what} is in the way of the state file; it is left as it is"),
    )
}

impl Store {
    /// Checks the path now, so that a bad location is an error at construction rather than a
    /// warning at the first write: the directory must be writable, and what is at the path, if
    /// anything, must be a file.
    pub(crate) fn open(path: &Path, lock_timeout: Duration) -> Result<Store, PersistError> {
        let Some(file_name) = path.file_name() else {
            return Err(PersistError::new(
                path,
                "not a file name",
                io::Error::new(io::ErrorKind::InvalidInput, "the path names no file"),
            ));
        };
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let mut tmp_prefix = OsString::from(".");
        tmp_prefix.push(file_name);
        tmp_prefix.push(".tmp-");
        let store = Store {
            path: path.to_path_buf(),
            lock_path: sibling(path, "", ".lock"),
            dir,
            file_name: file_name.to_owned(),
            tmp_prefix,
            lock_timeout,
        };
        // Any other error (a parent that is not a directory, say) is the directory check's.
        if let Some(e) = store.not_a_file() {
            return Err(PersistError::new(path, "not a file", e));
        }
        // Created exclusively under a fresh name and removed again on drop: no lock needed.
        store
            .temporary()
            .map_err(|e| PersistError::new(path, "cannot write to the directory", e))?;
        Ok(store)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// An error if something other than a file (a directory, a socket) is at the path.
    fn not_a_file(&self) -> Option<io::Error> {
        let meta = fs::metadata(&self.path).ok()?;
        if meta.is_dir() {
            Some(not_a_file(io::ErrorKind::IsADirectory, "a directory"))
        } else if !meta.is_file() {
            Some(not_a_file(
                io::ErrorKind::InvalidInput,
                "something other than a file",
            ))
        } else {
            None
        }
    }

    fn temporary(&self) -> io::Result<tempfile::NamedTempFile> {
        // tempfile opens with O_CREAT | O_EXCL (so never through a link) and mode 0600.
        tempfile::Builder::new()
            .prefix(&self.tmp_prefix)
            .rand_bytes(12)
            .tempfile_in(&self.dir)
    }

    /// Takes the lock, waiting at most `lock_timeout`.
    fn lock(&self) -> io::Result<File> {
        // Opening creates the file (never truncates it); refusing a link keeps a planted one
        // from making us create or lock a file elsewhere.
        if fs::symlink_metadata(&self.lock_path).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "the lock file {} is a symbolic link, which is not followed",
                    self.lock_path.display()
                ),
            ));
        }
        let mut options = OpenOptions::new();
        options.create(true).truncate(false).write(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(&self.lock_path)?;
        // There is no lock call with a time limit; trying with growing pauses is what is left.
        let deadline = Instant::now().checked_add(self.lock_timeout);
        let mut pause = Duration::from_millis(1);
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(file),
                Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Error(e)) => return Err(e),
            }
            let left = deadline.map_or(pause, |d| d.saturating_duration_since(Instant::now()));
            if left.is_zero() {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "{} is held by another process (or handle) for more than {:?}",
                        self.lock_path.display(),
                        self.lock_timeout
                    ),
                ));
            }
            std::thread::sleep(pause.min(left));
            pause = (pause * 2).min(MAX_LOCK_PAUSE);
        }
    }

    /// The records in the file, read at start. A missing file holds none. Under the lock,
    /// leftover temporary files are removed first, and a bad file is moved aside. Without the
    /// lock (held elsewhere past `lock_timeout`), the file is read as it is and nothing is
    /// removed or moved: the writer holding the lock may be about to replace it.
    pub(crate) fn load(&self, unix_now: Duration) -> Loaded {
        let lock = match self.lock() {
            Ok(lock) => {
                self.remove_leftovers();
                Some(lock)
            }
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "cannot lock the circuit breaker state file; reading it unlocked");
                None
            }
        };
        match self.read() {
            Ok(records) => Loaded {
                records,
                newer: None,
            },
            Err(ReadError::Newer(version)) => {
                self.warn_newer(version);
                Loaded {
                    records: Records::new(),
                    newer: Some(version),
                }
            }
            Err(ReadError::Bad(problem)) => {
                match lock {
                    Some(_) => self.move_aside(&problem, unix_now),
                    None => tracing::warn!(
                        path = %self.path.display(),
                        problem,
                        "bad circuit breaker state file, read without the lock; breakers start closed, and the next write replaces it"
                    ),
                }
                Loaded::default()
            }
            Err(ReadError::NotAFile(e)) => {
                tracing::warn!(path = %self.path.display(), error = %e, "cannot read the circuit breaker state file; breakers start closed");
                Loaded::default()
            }
        }
    }

    fn warn_newer(&self, version: u64) {
        tracing::warn!(
            path = %self.path.display(),
            version,
            supported = format::VERSION,
            "the circuit breaker state file is of a newer format version; it is left as it is, and breakers are kept in memory only"
        );
    }

    fn read(&self) -> Result<Records, ReadError> {
        if let Some(e) = self.not_a_file() {
            return Err(ReadError::NotAFile(e));
        }
        match fs::read(&self.path) {
            Ok(bytes) => format::parse(&bytes).map_err(|u| match u {
                Unusable::Bad(problem) => ReadError::Bad(problem),
                Unusable::Newer(version) => ReadError::Newer(version),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Records::new()),
            Err(e) => Err(ReadError::Bad(format!("cannot read it: {e}"))),
        }
    }

    /// Whether `name` is one of our temporary files: `.<file>.tmp-…` (this build) or
    /// `.<file>.<digits>.tmp` (earlier builds). Names that are not UTF-8 are never ours.
    fn is_temporary(&self, name: &OsStr) -> bool {
        let (Some(name), Some(file)) = (name.to_str(), self.file_name.to_str()) else {
            return false;
        };
        let Some(rest) = name
            .strip_prefix('.')
            .and_then(|r| r.strip_prefix(file))
            .and_then(|r| r.strip_prefix('.'))
        else {
            return false;
        };
        rest.starts_with("tmp-")
            || rest
                .strip_suffix(".tmp")
                .is_some_and(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
    }

    /// Removes the temporary files of writers that died. Only called with the lock held (see
    /// the module docs for why that makes every one of them a leftover).
    fn remove_leftovers(&self) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        let mut removed = 0_usize;
        for entry in entries.flatten() {
            // `remove_file` removes a link itself, never what it points to, and fails on a
            // directory, which is left alone.
            if self.is_temporary(&entry.file_name()) && fs::remove_file(entry.path()).is_ok() {
                removed += 1;
            }
        }
        if removed > 0 {
            tracing::info!(
                path = %self.path.display(),
                removed,
                "removed temporary files left by circuit breaker state writers that died"
            );
        }
    }

    fn move_aside(&self, problem: &str, unix_now: Duration) {
        let stamp = unix_now.as_millis();
        let mut aside = sibling(&self.path, "", &format!(".corrupt-{stamp}"));
        let mut n = 1;
        while aside.exists() {
            aside = sibling(&self.path, "", &format!(".corrupt-{stamp}-{n}"));
            n += 1;
        }
        match fs::rename(&self.path, &aside) {
            Ok(()) => tracing::warn!(
                path = %self.path.display(),
                moved_to = %aside.display(),
                problem,
                "bad circuit breaker state file moved aside; breakers start closed"
            ),
            Err(e) => tracing::warn!(
                path = %self.path.display(),
                problem,
                error = %e,
                "bad circuit breaker state file could not be moved aside; breakers start closed"
            ),
        }
    }

    /// Writes the full known state: the file's records, with `changes` (this process's
    /// changed breakers) replacing theirs, plus every record of `mine` (all of this process's
    /// breakers) that the file lacks. A bad file is moved aside and rebuilt from `last_known`
    /// (what the file held after our last read or write) the same way. On success
    /// `last_known` becomes what was written.
    pub(crate) fn write(
        &self,
        changes: &Records,
        mine: &Records,
        last_known: &mut Records,
        unix_now: Duration,
    ) -> io::Result<Written> {
        let _lock = self.lock()?;
        let mut records = match self.read() {
            Ok(records) => records,
            Err(ReadError::Newer(version)) => return Ok(Written::Newer(version)),
            Err(ReadError::NotAFile(e)) => return Err(e),
            Err(ReadError::Bad(problem)) => {
                self.move_aside(&problem, unix_now);
                last_known.clone()
            }
        };
        for (service, ops) in changes {
            let entry = records.entry(service.clone()).or_default();
            for (op, record) in ops {
                entry.insert(op.clone(), *record);
            }
        }
        for (service, ops) in mine {
            for (op, record) in ops {
                let present = records.get(service).is_some_and(|e| e.contains_key(op));
                if !present {
                    records
                        .entry(service.clone())
                        .or_default()
                        .insert(op.clone(), *record);
                }
            }
        }
        self.replace(&format::render(&records))?;
        *last_known = records;
        Ok(Written::Done)
    }

    /// Replaces the file with `bytes` atomically, keeping its mode.
    fn replace(&self, bytes: &[u8]) -> io::Result<()> {
        let mut tmp = self.temporary()?;
        #[cfg(unix)]
        if let Ok(meta) = fs::metadata(&self.path) {
            use std::os::unix::fs::{MetadataExt, PermissionsExt};
            let mode = fs::Permissions::from_mode(meta.mode() & 0o7777);
            tmp.as_file().set_permissions(mode)?;
        }
        tmp.write_all(bytes)?;
        tmp.as_file().sync_all()?;
        // On failure the temporary file is dropped with the error, which removes it.
        tmp.persist(&self.path).map_err(|e| e.error)?;
        // Makes the rename itself durable. Not every platform can open a directory; the file is
        // complete either way.
        if let Ok(dir) = File::open(&self.dir) {
            let _ = dir.sync_all();
        }
        Ok(())
    }
}
