//! Durable files: atomic replacement and checksummed framing shared by the archive
//! and the index. Every file we write carries a magic, its payload length and an
//! xxh3 checksum, so a torn or corrupted file is detected, never trusted.

use memmap2::Mmap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// File magic of every checksummed file.
const MAGIC: &[u8; 8] = b"VASTRS01";
/// Header: magic, payload length, checksum, padding to 32 bytes so the payload of
/// a mapped file is 16-byte aligned for rkyv.
pub const HEADER: usize = 32;

/// Why a stored file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: checksum mismatch (stored {stored:016x}, computed {computed:016x}): the file is corrupt")]
    Checksum {
        path: PathBuf,
        stored: u64,
        computed: u64,
    },
    #[error("{path}: {reason}")]
    Corrupt { path: PathBuf, reason: String },
}

impl StoreError {
    pub fn io(path: &Path, source: io::Error) -> Self {
        StoreError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
    pub fn corrupt(path: &Path, reason: impl Into<String>) -> Self {
        StoreError::Corrupt {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }
}

pub fn checksum(bytes: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(bytes)
}

fn header(payload: &[u8]) -> [u8; HEADER] {
    let mut h = [0u8; HEADER];
    h[..8].copy_from_slice(MAGIC);
    h[8..16].copy_from_slice(&(payload.len() as u64).to_le_bytes());
    h[16..24].copy_from_slice(&checksum(payload).to_le_bytes());
    h
}

/// Writes `payload` to `path` with header, fsynced, via a temporary file and rename,
/// so readers see either the old file or the complete new one.
pub fn write_file(path: &Path, payload: &[u8]) -> Result<(), StoreError> {
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp).map_err(|e| StoreError::io(&tmp, e))?;
    f.write_all(&header(payload))
        .and_then(|_| f.write_all(payload))
        .and_then(|_| f.sync_all())
        .map_err(|e| StoreError::io(&tmp, e))?;
    drop(f);
    fs::rename(&tmp, path).map_err(|e| StoreError::io(path, e))?;
    Ok(())
}

/// Writes `bytes` as they are (no header) via a temporary file and rename.
pub fn write_raw_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    write_raw_atomic_mode(path, bytes, 0o644)
}

/// `write_raw_atomic` for files only their owner may read (keys): the file is
/// created with `mode` from the start, never briefly wider.
pub fn write_private_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    write_raw_atomic_mode(path, bytes, 0o600)
}

fn write_raw_atomic_mode(path: &Path, bytes: &[u8], mode: u32) -> Result<(), StoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(|e| StoreError::io(&tmp, e))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| StoreError::io(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| StoreError::io(path, e))
}

/// fsyncs a directory so renames and new entries in it are durable.
pub fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io(dir, e))
}

/// Total size of the files directly in `dir` (0 if it cannot be read).
pub fn dir_bytes(dir: &Path) -> u64 {
    fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// A checksummed file mapped into memory; `payload()` is verified.
pub struct MappedFile {
    map: Mmap,
}

impl MappedFile {
    /// Maps `path` and verifies magic, length and checksum.
    pub fn open(path: &Path) -> Result<MappedFile, StoreError> {
        let f = File::open(path).map_err(|e| StoreError::io(path, e))?;
        // SAFETY: the file is ours and never modified in place (we only replace
        // files by rename), so the mapping does not change under us.
        let map = unsafe { Mmap::map(&f) }.map_err(|e| StoreError::io(path, e))?;
        verify(path, &map)?;
        Ok(MappedFile { map })
    }

    pub fn payload(&self) -> &[u8] {
        &self.map[HEADER..]
    }
}

/// Checks a header-framed buffer.
pub fn verify<'a>(path: &Path, bytes: &'a [u8]) -> Result<&'a [u8], StoreError> {
    if bytes.len() < HEADER || &bytes[..8] != MAGIC {
        return Err(StoreError::corrupt(
            path,
            "not a vast file (bad magic or truncated header)",
        ));
    }
    let len = u64::from_le_bytes(bytes[8..16].try_into().unwrap()) as usize;
    if bytes.len() - HEADER != len {
        return Err(StoreError::corrupt(
            path,
            format!(
                "truncated: header says {len} bytes, file has {}",
                bytes.len() - HEADER
            ),
        ));
    }
    let stored = u64::from_le_bytes(bytes[16..24].try_into().unwrap());
    let payload = &bytes[HEADER..];
    let computed = checksum(payload);
    if stored != computed {
        return Err(StoreError::Checksum {
            path: path.to_path_buf(),
            stored,
            computed,
        });
    }
    Ok(payload)
}

/// Reads a whole checksummed file into memory.
pub fn read_file(path: &Path) -> Result<Vec<u8>, StoreError> {
    let bytes = fs::read(path).map_err(|e| StoreError::io(path, e))?;
    verify(path, &bytes)?;
    Ok(bytes[HEADER..].to_vec())
}

/// Frames for append-only files: `[len u32][xxh3 u64][payload]`.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(12 + payload.len());
    v.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    v.extend_from_slice(&checksum(payload).to_le_bytes());
    v.extend_from_slice(payload);
    v
}

/// Reads the frame at `offset` of `bytes`, verifying its checksum.
pub fn read_frame<'a>(path: &Path, bytes: &'a [u8], offset: usize) -> Result<&'a [u8], StoreError> {
    let head = bytes.get(offset..offset + 12).ok_or_else(|| {
        StoreError::corrupt(path, format!("frame header at {offset} past the end"))
    })?;
    let len = u32::from_le_bytes(head[..4].try_into().unwrap()) as usize;
    let stored = u64::from_le_bytes(head[4..12].try_into().unwrap());
    let payload = bytes
        .get(offset + 12..offset + 12 + len)
        .ok_or_else(|| StoreError::corrupt(path, format!("frame at {offset} truncated")))?;
    let computed = checksum(payload);
    if stored != computed {
        return Err(StoreError::Checksum {
            path: path.to_path_buf(),
            stored,
            computed,
        });
    }
    Ok(payload)
}

impl MappedFile {
    /// Maps `path` and checks its magic and length but not the payload checksum:
    /// for files whose format checksums its own parts (column indexes), so that
    /// opening one costs the same whatever its size. The caller verifies every part
    /// it reads.
    pub fn open_unverified(path: &Path) -> Result<MappedFile, StoreError> {
        let f = File::open(path).map_err(|e| StoreError::io(path, e))?;
        // SAFETY: as in `open`: files are only ever replaced by rename.
        let map = unsafe { Mmap::map(&f) }.map_err(|e| StoreError::io(path, e))?;
        if map.len() < HEADER || &map[..8] != MAGIC {
            return Err(StoreError::corrupt(
                path,
                "not a vast file (bad magic or truncated header)",
            ));
        }
        let len = u64::from_le_bytes(map[8..16].try_into().unwrap()) as usize;
        if map.len() - HEADER != len {
            return Err(StoreError::corrupt(
                path,
                format!(
                    "truncated: header says {len} bytes, file has {}",
                    map.len() - HEADER
                ),
            ));
        }
        Ok(MappedFile { map })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_corruption() {
        let dir = std::env::temp_dir().join(format!("vast-durable-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let p = dir.join("f");
        write_file(&p, b"hello world").unwrap();
        assert_eq!(MappedFile::open(&p).unwrap().payload(), b"hello world");
        let mut bytes = fs::read(&p).unwrap();
        bytes[HEADER + 1] ^= 1;
        fs::write(&p, &bytes).unwrap();
        let err = MappedFile::open(&p).err().unwrap().to_string();
        assert!(err.contains("checksum mismatch"), "{err}");
        bytes.truncate(HEADER + 3);
        fs::write(&p, &bytes).unwrap();
        assert!(read_file(&p).unwrap_err().to_string().contains("truncated"));
        let fr = frame(b"abc");
        assert_eq!(read_frame(&p, &fr, 0).unwrap(), b"abc");
        assert!(read_frame(&p, &fr[..10], 0).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }
}
