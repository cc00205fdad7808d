//! A temporary directory for migration files and configs, removed with the
//! value (kept, and its path printed, when the test failed and
//! `CHATMIGRATE_TEST_KEEP=1` is set).

use std::path::{Path, PathBuf};

use super::db::{keep_failed, KEEP_ENV};

/// A temporary directory holding migration files.
pub struct Dir {
    tmp: Option<tempfile::TempDir>,
}

impl Dir {
    pub fn new() -> Dir {
        Dir {
            tmp: Some(tempfile::tempdir().unwrap()),
        }
    }

    pub fn path(&self) -> &Path {
        self.tmp.as_ref().expect("the directory exists until drop").path()
    }

    /// Writes a file (relative to the directory) and returns its path.
    pub fn write(&self, name: &str, body: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path().join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&p, body).unwrap();
        p
    }

    /// Reads a file (relative to the directory).
    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path().join(name)).unwrap()
    }

    pub fn remove(&self, name: &str) {
        std::fs::remove_file(self.path().join(name)).unwrap();
    }

    /// `path/name` as the binary prints it.
    pub fn shown(&self, name: &str) -> String {
        self.path().join(name).display().to_string()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        if std::thread::panicking() && keep_failed() {
            if let Some(tmp) = self.tmp.take() {
                eprintln!("{KEEP_ENV}: kept directory {} of the failed test", tmp.keep().display());
            }
        }
    }
}
