//! The database lock: one process uses a database directory at a time. The lock
//! file names its holder so a second process can say who has it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Holds the exclusive lock on a database directory until dropped.
#[derive(Debug)]
pub struct DbLock {
    _file: File,
    pub path: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("database {db} is in use by another process ({holder}); stop it or use another --db-directory")]
    Held { db: PathBuf, holder: String },
    #[error("cannot open database {db}: {source}")]
    Io {
        db: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl DbLock {
    /// Creates `db` if needed and takes its lock, recording `holder` in it.
    pub fn acquire(db: &Path, holder: &str) -> Result<DbLock, LockError> {
        let io = |source| LockError::Io {
            db: db.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(db).map_err(io)?;
        let path = db.join("LOCK");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut s = String::new();
                let _ = file.read_to_string(&mut s);
                let holder = s.trim();
                return Err(LockError::Held {
                    db: db.to_path_buf(),
                    holder: if holder.is_empty() {
                        "unknown holder".into()
                    } else {
                        holder.to_string()
                    },
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        writeln!(file, "{holder}").map_err(io)?;
        file.flush().map_err(io)?;
        Ok(DbLock { _file: file, path })
    }
}
