//! The state file on disk. Every read and write holds an advisory lock on `<file>.lock` (a
//! separate file, since the state file itself is replaced by rename on every write), and a
//! write goes to a temporary file in the same directory, is flushed to disk, then renamed over
//! the state file: a reader sees the old file or the new one, never a part of either.

use super::format::{self, Records};
use crate::breaker::PersistError;
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug)]
pub(crate) struct Store {
    path: PathBuf,
    lock_path: PathBuf,
    tmp_path: PathBuf,
    dir: PathBuf,
}

fn sibling(path: &Path, prefix: &str, suffix: &str) -> PathBuf {
    let mut name = OsString::from(prefix);
    name.push(path.file_name().unwrap_or_default());
    name.push(suffix);
    path.with_file_name(name)
}

impl Store {
    /// Checks that the directory of `path` can be written, so a bad location is an error now
    /// rather than a warning at the first write.
    pub(crate) fn open(path: &Path) -> Result<Store, PersistError> {
        if path.file_name().is_none() {
            return Err(PersistError::new(
                path,
                "not a file name",
                io::Error::new(io::ErrorKind::InvalidInput, "the path names no file"),
            ));
        }
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let store = Store {
            path: path.to_path_buf(),
            lock_path: sibling(path, "", ".lock"),
            tmp_path: sibling(path, ".", &format!(".{}.tmp", std::process::id())),
            dir,
        };
        let writable = store.lock().and_then(|_lock| {
            File::create(&store.tmp_path)?;
            fs::remove_file(&store.tmp_path)
        });
        writable.map_err(|e| PersistError::new(path, "cannot write to the directory", e))?;
        Ok(store)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> io::Result<File> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.lock_path)?;
        file.lock()?;
        Ok(file)
    }

    /// The records in the file. A missing file holds none; a file that cannot be read or
    /// parsed is moved aside with a warning and holds none.
    pub(crate) fn load(&self, unix_now: Duration) -> Records {
        let _lock = match self.lock() {
            Ok(lock) => Some(lock),
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "cannot lock the circuit breaker state file; reading it unlocked");
                None
            }
        };
        self.read_existing(unix_now)
    }

    fn read_existing(&self, unix_now: Duration) -> Records {
        let problem = match fs::read(&self.path) {
            Ok(bytes) => match format::parse(&bytes) {
                Ok(records) => return records,
                Err(problem) => problem,
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Records::new(),
            Err(e) => format!("cannot read it: {e}"),
        };
        self.move_aside(&problem, unix_now);
        Records::new()
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

    /// Replaces the entries of `changes` in the file, keeping every other entry.
    pub(crate) fn write(&self, changes: &Records, unix_now: Duration) -> io::Result<()> {
        let _lock = self.lock()?;
        let mut records = self.read_existing(unix_now);
        for (service, ops) in changes {
            let entry = records.entry(service.clone()).or_default();
            for (op, record) in ops {
                entry.insert(op.clone(), *record);
            }
        }
        let bytes = format::render(&records);
        let written = (|| {
            let mut tmp = File::create(&self.tmp_path)?;
            tmp.write_all(&bytes)?;
            tmp.sync_all()?;
            drop(tmp);
            fs::rename(&self.tmp_path, &self.path)
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&self.tmp_path);
            return Err(e);
        }
        // Makes the rename itself durable. Not every platform can open a directory; the file is
        // complete either way.
        if let Ok(dir) = File::open(&self.dir) {
            let _ = dir.sync_all();
        }
        Ok(())
    }
}
