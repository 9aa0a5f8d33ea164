//! Durable files: atomic replacement and checksummed framing shared by the archive
//! and the index. Every file we write carries a magic, the on-disk format version,
//! its payload length and an xxh3 checksum, so a torn or corrupted file is detected,
//! never trusted, and a file of a newer format is refused by name instead of being
//! misread.
//!
//! The header's first 8 bytes are `VASTRS` and the format version as two ASCII
//! decimal digits: version 1 files (`VASTRS01`) predate the explicit version and
//! already look like that, so they stay readable without a special case.

use memmap2::Mmap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// File magic of every file with a header, followed by the version.
const MAGIC: &[u8; 6] = b"VASTRS";
/// The on-disk format version this build writes. Version 2: the archive stores
/// row groups of separately encoded columns; index files are unchanged from 1.
/// Version 3: an archive row group is one frame holding all its columns, so a
/// fetch of one row is one small decompression; other files are unchanged.
/// Version 4: archive row groups are smaller and compressed with a dictionary
/// trained per partition, kept in the partition's table; other files are unchanged.
pub const FORMAT_VERSION: u16 = 4;
/// The oldest version this build reads.
pub const OLDEST_VERSION: u16 = 1;
/// Header: magic and version, payload length, checksum, padding to 32 bytes so the
/// payload of a mapped file is 16-byte aligned for rkyv.
pub const HEADER: usize = 32;
/// The length field of a stream header: records follow, the length is open.
const STREAM: u64 = u64::MAX;

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

fn magic(version: u16) -> [u8; 8] {
    let mut m = [0u8; 8];
    m[..6].copy_from_slice(MAGIC);
    m[6] = b'0' + (version / 10 % 10) as u8;
    m[7] = b'0' + (version % 10) as u8;
    m
}

fn header(payload: &[u8]) -> [u8; HEADER] {
    header_version(payload, FORMAT_VERSION)
}

fn header_version(payload: &[u8], version: u16) -> [u8; HEADER] {
    let mut h = [0u8; HEADER];
    h[..8].copy_from_slice(&magic(version));
    h[8..16].copy_from_slice(&(payload.len() as u64).to_le_bytes());
    h[16..24].copy_from_slice(&checksum(payload).to_le_bytes());
    h
}

/// The format version in the header at the start of `bytes`; an error naming
/// `path` when it is no vast file or a version this build cannot read.
pub fn version(path: &Path, bytes: &[u8]) -> Result<u16, StoreError> {
    let (Some(m), Some(d)) = (bytes.get(..6), bytes.get(6..8)) else {
        return Err(StoreError::corrupt(
            path,
            "not a vast file (truncated header)",
        ));
    };
    if m != MAGIC || !d.iter().all(u8::is_ascii_digit) {
        return Err(StoreError::corrupt(path, "not a vast file (bad magic)"));
    }
    let v = (d[0] - b'0') as u16 * 10 + (d[1] - b'0') as u16;
    if !(OLDEST_VERSION..=FORMAT_VERSION).contains(&v) {
        return Err(StoreError::corrupt(
            path,
            format!(
                "on-disk format version {v}, this build reads versions {OLDEST_VERSION}-{FORMAT_VERSION}"
            ),
        ));
    }
    Ok(v)
}

/// The header of an append-only file of [`frame`]s: magic and version, an open
/// length, a tag saying what the file holds, and a checksum of the header itself.
pub fn stream_header(kind: &[u8; 8]) -> [u8; HEADER] {
    stream_header_version(kind, FORMAT_VERSION)
}

/// `stream_header` of an older format version, for writers that can still
/// produce it (tests of the readers of older files).
pub(crate) fn stream_header_version(kind: &[u8; 8], version: u16) -> [u8; HEADER] {
    let mut h = [0u8; HEADER];
    h[..8].copy_from_slice(&magic(version));
    h[8..16].copy_from_slice(&STREAM.to_le_bytes());
    h[16..24].copy_from_slice(kind);
    let sum = checksum(&h[..24]);
    h[24..32].copy_from_slice(&sum.to_le_bytes());
    h
}

/// Checks the stream header at the start of `bytes` for a file holding `kind`;
/// returns its version.
pub fn check_stream_header(path: &Path, bytes: &[u8], kind: &[u8; 8]) -> Result<u16, StoreError> {
    let v = version(path, bytes)?;
    let h = bytes
        .get(..HEADER)
        .ok_or_else(|| StoreError::corrupt(path, "not a vast file (truncated header)"))?;
    let stored = u64::from_le_bytes(h[24..32].try_into().unwrap());
    let computed = checksum(&h[..24]);
    if stored != computed {
        return Err(StoreError::Checksum {
            path: path.to_path_buf(),
            stored,
            computed,
        });
    }
    if h[8..16] != STREAM.to_le_bytes() || &h[16..24] != kind {
        return Err(StoreError::corrupt(
            path,
            format!(
                "header says it holds {:?}, expected {:?}",
                String::from_utf8_lossy(&h[16..24]),
                String::from_utf8_lossy(kind)
            ),
        ));
    }
    Ok(v)
}

/// Writes `payload` to `path` with header, fsynced, via a temporary file and rename,
/// so readers see either the old file or the complete new one.
pub fn write_file(path: &Path, payload: &[u8]) -> Result<(), StoreError> {
    write_with_header(path, payload, &header(payload))
}

/// `write_file` in format version `version` (older ones as older builds wrote them).
pub(crate) fn write_file_version(
    path: &Path,
    payload: &[u8],
    version: u16,
) -> Result<(), StoreError> {
    write_with_header(path, payload, &header_version(payload, version))
}

fn write_with_header(path: &Path, payload: &[u8], header: &[u8; HEADER]) -> Result<(), StoreError> {
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp).map_err(|e| StoreError::io(&tmp, e))?;
    f.write_all(header)
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
    version: u16,
}

impl MappedFile {
    /// Maps `path` and verifies magic, length and checksum.
    pub fn open(path: &Path) -> Result<MappedFile, StoreError> {
        let f = File::open(path).map_err(|e| StoreError::io(path, e))?;
        // SAFETY: the file is ours and never modified in place (we only replace
        // files by rename), so the mapping does not change under us.
        let map = unsafe { Mmap::map(&f) }.map_err(|e| StoreError::io(path, e))?;
        let (version, _) = verify_versioned(path, &map)?;
        Ok(MappedFile { map, version })
    }

    pub fn payload(&self) -> &[u8] {
        &self.map[HEADER..]
    }

    /// Verifies the payload checksum of a file opened with `open_unverified`.
    pub fn verify(&self, path: &Path) -> Result<(), StoreError> {
        verify_versioned(path, &self.map).map(|_| ())
    }

    /// The on-disk format version the file was written in.
    pub fn version(&self) -> u16 {
        self.version
    }

    /// Maps `path` and checks its magic, version and length but not the payload
    /// checksum: for files whose format checksums its own parts (packed column
    /// indexes), so that opening one costs the same whatever its size. The caller
    /// verifies every part it reads.
    pub fn open_unverified(path: &Path) -> Result<MappedFile, StoreError> {
        let f = File::open(path).map_err(|e| StoreError::io(path, e))?;
        // SAFETY: as in `open`: files are only ever replaced by rename.
        let map = unsafe { Mmap::map(&f) }.map_err(|e| StoreError::io(path, e))?;
        let version = version(path, &map)?;
        if map.len() < HEADER {
            return Err(StoreError::corrupt(
                path,
                "not a vast file (truncated header)",
            ));
        }
        let len = u64::from_le_bytes(map[8..16].try_into().unwrap());
        if len == STREAM || (map.len() - HEADER) as u64 != len {
            return Err(StoreError::corrupt(
                path,
                format!(
                    "truncated: header says {len} bytes, file has {}",
                    map.len() - HEADER
                ),
            ));
        }
        Ok(MappedFile { map, version })
    }
}

/// Checks a header-framed buffer.
pub fn verify<'a>(path: &Path, bytes: &'a [u8]) -> Result<&'a [u8], StoreError> {
    verify_versioned(path, bytes).map(|(_, p)| p)
}

/// Checks a header-framed buffer; returns its format version and payload.
pub fn verify_versioned<'a>(path: &Path, bytes: &'a [u8]) -> Result<(u16, &'a [u8]), StoreError> {
    let version = version(path, bytes)?;
    if bytes.len() < HEADER {
        return Err(StoreError::corrupt(
            path,
            "not a vast file (truncated header)",
        ));
    }
    let len = u64::from_le_bytes(bytes[8..16].try_into().unwrap());
    if len == STREAM {
        return Err(StoreError::corrupt(
            path,
            "an append-only record file, not a whole file",
        ));
    }
    if (bytes.len() - HEADER) as u64 != len {
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
    Ok((version, payload))
}

/// Reads a whole checksummed file into memory.
pub fn read_file(path: &Path) -> Result<Vec<u8>, StoreError> {
    read_file_versioned(path).map(|(_, p)| p)
}

/// Reads a whole checksummed file into memory; returns its format version too.
pub fn read_file_versioned(path: &Path) -> Result<(u16, Vec<u8>), StoreError> {
    let mut bytes = fs::read(path).map_err(|e| StoreError::io(path, e))?;
    let (version, _) = verify_versioned(path, &bytes)?;
    bytes.drain(..HEADER);
    Ok((version, bytes))
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

    #[test]
    fn versions_are_written_checked_and_named() {
        let dir = std::env::temp_dir().join(format!("vast-durable-v-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let p = dir.join("f");
        write_file(&p, b"new").unwrap();
        let bytes = fs::read(&p).unwrap();
        assert_eq!(&bytes[..8], b"VASTRS04");
        let m = MappedFile::open(&p).unwrap();
        assert_eq!((m.version(), m.payload()), (FORMAT_VERSION, &b"new"[..]));

        // A file as version-1 builds wrote it, byte for byte.
        let mut v1 = b"VASTRS01".to_vec();
        v1.extend_from_slice(&3u64.to_le_bytes());
        v1.extend_from_slice(&checksum(b"old").to_le_bytes());
        v1.extend_from_slice(&[0; 8]);
        v1.extend_from_slice(b"old");
        fs::write(&p, &v1).unwrap();
        assert_eq!(read_file_versioned(&p).unwrap(), (1, b"old".to_vec()));
        assert_eq!(MappedFile::open(&p).unwrap().version(), 1);
        write_file_version(&p, b"old", 1).unwrap();
        assert_eq!(fs::read(&p).unwrap(), v1);

        // A newer build's file is refused with both versions named.
        let mut v7 = v1.clone();
        v7[6..8].copy_from_slice(b"07");
        fs::write(&p, &v7).unwrap();
        let e = read_file(&p).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "{}: on-disk format version 7, this build reads versions 1-4",
                p.display()
            )
        );
        assert!(MappedFile::open(&p)
            .err()
            .unwrap()
            .to_string()
            .contains("version 7"));
        let mut v0 = v1.clone();
        v0[6..8].copy_from_slice(b"00");
        fs::write(&p, &v0).unwrap();
        assert!(read_file(&p)
            .unwrap_err()
            .to_string()
            .contains("version 0,"));
        let mut bad = v1.clone();
        bad[6..8].copy_from_slice(&[0x02, 0x00]);
        fs::write(&p, &bad).unwrap();
        assert!(read_file(&p).unwrap_err().to_string().contains("bad magic"));
        fs::write(&p, b"VAST").unwrap();
        assert!(read_file(&p)
            .unwrap_err()
            .to_string()
            .contains("truncated header"));

        // Stream headers: checked, typed, and no whole file.
        let h = stream_header(b"archive\0");
        assert_eq!(
            check_stream_header(&p, &h, b"archive\0").unwrap(),
            FORMAT_VERSION
        );
        assert!(check_stream_header(&p, &h, b"other\0\0\0")
            .unwrap_err()
            .to_string()
            .contains("expected"));
        let mut torn = h;
        torn[17] ^= 1;
        assert!(matches!(
            check_stream_header(&p, &torn, b"archive\0"),
            Err(StoreError::Checksum { .. })
        ));
        assert!(verify(&p, &h)
            .unwrap_err()
            .to_string()
            .contains("append-only"));
        let mut h7 = h;
        h7[6..8].copy_from_slice(b"07");
        assert!(check_stream_header(&p, &h7, b"archive\0")
            .unwrap_err()
            .to_string()
            .contains("format version 7"));
        fs::remove_dir_all(&dir).unwrap();
    }
}
