//! The archive's files: one data file per partition holding checksummed frames of
//! zstd-compressed rkyv batches, plus a frame table written when the partition is
//! sealed. A data file without its table was never acknowledged and is discarded.

use crate::data::Batch;
use crate::durable::{self, StoreError};
use crate::query::{filter, resolve, Expr};
use rkyv::{Archive, Deserialize, Serialize};
use roaring::RoaringBitmap;
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use uuid::Uuid;

/// zstd level for batch frames: level 1 keeps ingest CPU low; columnar data still
/// compresses well.
const ZSTD_LEVEL: i32 = 1;
/// Most bytes a decompressed frame may claim (guards against hostile sizes).
const MAX_FRAME: usize = 1 << 31;

/// Where a batch lives in a data file.
#[derive(Clone, Debug, PartialEq, Archive, Serialize, Deserialize)]
pub struct FrameInfo {
    pub offset: u64,
    pub first_row: u32,
    pub rows: u32,
}

/// The frame table of a sealed partition.
#[derive(Clone, Debug, PartialEq, Archive, Serialize, Deserialize)]
pub struct ArchiveMeta {
    pub id: [u8; 16],
    pub rows: u32,
    pub frames: Vec<FrameInfo>,
}

struct Active {
    file: File,
    offset: u64,
    frames: Vec<FrameInfo>,
    rows: u32,
}

/// One page of a fetch: selections, and the partition row to continue from when
/// the page filled up (`None`: the partition is done).
#[derive(Debug, Default)]
pub struct Fetched {
    pub selections: Vec<Selection>,
    pub resume: Option<u32>,
}

/// Rows of one batch selected by a query.
pub struct Selection {
    pub batch: Batch,
    pub rows: Vec<u32>,
}

impl std::fmt::Debug for Selection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Selection({:?}, {} rows)", self.batch, self.rows.len())
    }
}

pub struct ArchiveStore {
    dir: PathBuf,
    active: HashMap<Uuid, Active>,
    sealed: HashMap<Uuid, ArchiveMeta>,
}

fn data_path(dir: &Path, id: Uuid) -> PathBuf {
    dir.join(format!("{id}.data"))
}
fn meta_path(dir: &Path, id: Uuid) -> PathBuf {
    dir.join(format!("{id}.meta"))
}

impl ArchiveStore {
    /// Opens the archive directory. Files of partitions that are neither committed
    /// nor prepared for another node's import (never acknowledged) are removed.
    pub fn open(dir: &Path, commits: &crate::commit::State) -> Result<ArchiveStore, StoreError> {
        fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
        let store = ArchiveStore {
            dir: dir.to_path_buf(),
            active: HashMap::new(),
            sealed: HashMap::new(),
        };
        for e in fs::read_dir(dir).map_err(|e| StoreError::io(dir, e))? {
            let path = e.map_err(|e| StoreError::io(dir, e))?.path();
            let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            let Ok(id) = stem.parse::<Uuid>() else {
                continue;
            };
            let kept = commits.committed.contains(&id) || commits.prepared.contains_key(&id);
            match path.extension().and_then(|e| e.to_str()) {
                Some("data" | "meta") if !kept => {
                    tracing::warn!(path = %path.display(), "removing archive data of an import that never committed");
                    let _ = fs::remove_file(&path);
                }
                Some("tmp") => {
                    let _ = fs::remove_file(&path);
                }
                _ => {}
            }
        }
        Ok(store)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends a batch whose first row is partition row `first_row`.
    pub fn append(&mut self, id: Uuid, first_row: u32, batch: &Batch) -> Result<u64, StoreError> {
        let dir = self.dir.clone();
        let active = match self.active.get_mut(&id) {
            Some(a) => a,
            None => {
                // A partition's data file is created exactly once: an id that is
                // sealed (or already on disk) is refused, never truncated, whoever
                // sends it.
                if self.sealed.contains_key(&id) || meta_path(&dir, id).exists() {
                    return Err(StoreError::corrupt(
                        &data_path(&dir, id),
                        "partition is sealed; sealed partitions are never rewritten",
                    ));
                }
                let path = data_path(&dir, id);
                let file = OpenOptions::new()
                    .create_new(true)
                    .write(true)
                    .open(&path)
                    .map_err(|e| StoreError::io(&path, e))?;
                self.active.entry(id).or_insert(Active {
                    file,
                    offset: 0,
                    frames: Vec::new(),
                    rows: 0,
                })
            }
        };
        let raw = batch.to_bytes();
        // The raw size leads the frame so decompression allocates exactly once.
        let mut compressed = (raw.len() as u32).to_le_bytes().to_vec();
        compressed.extend(
            zstd::bulk::compress(&raw, ZSTD_LEVEL)
                .map_err(|e| StoreError::io(&data_path(&dir, id), e))?,
        );
        let frame = durable::frame(&compressed);
        active
            .file
            .write_all(&frame)
            .map_err(|e| StoreError::io(&data_path(&dir, id), e))?;
        active.frames.push(FrameInfo {
            offset: active.offset,
            first_row,
            rows: batch.rows,
        });
        active.offset += frame.len() as u64;
        active.rows = active.rows.max(first_row + batch.rows);
        Ok(frame.len() as u64)
    }

    /// Makes a partition durable: fsyncs its data, then writes its frame table.
    pub fn seal(&mut self, id: Uuid) -> Result<(), StoreError> {
        let Some(active) = self.active.remove(&id) else {
            return Ok(());
        };
        let path = data_path(&self.dir, id);
        active
            .file
            .sync_all()
            .map_err(|e| StoreError::io(&path, e))?;
        let meta = ArchiveMeta {
            id: *id.as_bytes(),
            rows: active.rows,
            frames: active.frames,
        };
        let bytes = rkyv::to_bytes::<rkyv::rancor::Error>(&meta)
            .expect("serializing into memory cannot fail");
        durable::write_file(&meta_path(&self.dir, id), &bytes)?;
        durable::sync_dir(&self.dir)?;
        self.sealed.insert(id, meta);
        Ok(())
    }

    /// Whether partition `id` is sealed here.
    pub fn is_sealed(&self, id: Uuid) -> bool {
        self.sealed.contains_key(&id) || meta_path(&self.dir, id).exists()
    }

    /// Removes an uncommitted partition's files, sealed or not.
    pub fn discard(&mut self, id: Uuid) {
        self.active.remove(&id);
        self.sealed.remove(&id);
        for p in [data_path(&self.dir, id), meta_path(&self.dir, id)] {
            if let Err(e) = fs::remove_file(&p) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(path = %p.display(), error = %e, "removing an aborted partition failed; it is swept at the next open");
                }
            }
        }
    }

    /// Drops a partition that failed while being written; its partial data file
    /// was never acknowledged.
    pub fn abandon(&mut self, id: Uuid) {
        if self.active.remove(&id).is_some() {
            let _ = fs::remove_file(data_path(&self.dir, id));
        }
    }

    /// Partitions still being written.
    pub fn active(&self) -> impl Iterator<Item = &Uuid> {
        self.active.keys()
    }

    fn meta(&mut self, id: Uuid) -> Result<ArchiveMeta, StoreError> {
        if let Some(m) = self.sealed.get(&id) {
            return Ok(m.clone());
        }
        let path = meta_path(&self.dir, id);
        let bytes = durable::read_file(&path)?;
        let meta = crate::data::checked::from_bytes::<ArchiveMeta>(&bytes)
            .map_err(|e| StoreError::corrupt(&path, e))?;
        self.sealed.insert(id, meta.clone());
        Ok(meta)
    }

    /// Rows among the candidates that satisfy `expr`, in row order, batch by batch,
    /// from partition row `from_row` on. `maybe` lists candidates that still need
    /// the exact check; `sure` ones are known matches. Stops after `limit` rows, or
    /// once about `max_bytes` of rows are selected (then `resume` says where to go
    /// on), so no answer outgrows a frame.
    #[allow(clippy::too_many_arguments)]
    pub fn fetch(
        &mut self,
        id: Uuid,
        sure: &RoaringBitmap,
        maybe: &RoaringBitmap,
        expr: &Expr,
        limit: Option<u64>,
        from_row: u32,
        max_bytes: usize,
    ) -> Result<Fetched, StoreError> {
        let meta = self.meta(id)?;
        let path = data_path(&self.dir, id);
        let file = File::open(&path).map_err(|e| StoreError::io(&path, e))?;
        // SAFETY: sealed data files are never modified in place.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| StoreError::io(&path, e))?;
        let mut out = Vec::new();
        let mut taken = 0u64;
        let mut bytes = 0usize;
        // Partitions hold several schemas: the expression is resolved per schema.
        let mut resolved: HashMap<u64, crate::query::Resolved> = HashMap::new();
        for fr in &meta.frames {
            if limit.is_some_and(|l| taken >= l) {
                break;
            }
            let end = fr.first_row.saturating_add(fr.rows);
            if end <= from_row {
                continue;
            }
            let range = fr.first_row.max(from_row)..end;
            let s = sure.range_cardinality(range.clone());
            let m = maybe.range_cardinality(range.clone());
            if s == 0 && m == 0 {
                continue;
            }
            let (batch, raw_len) = read_batch(&path, &map, fr)?;
            let mut rows: Vec<u32> = Vec::new();
            let mut check: Vec<u32> = Vec::new();
            for r in sure.range(range.clone()) {
                rows.push(r - fr.first_row);
            }
            for r in maybe.range(range.clone()) {
                check.push(r - fr.first_row);
            }
            if !check.is_empty() {
                let r = resolved
                    .entry(batch.schema.fingerprint())
                    .or_insert_with(|| resolve(expr, &batch.schema));
                let matching = filter(r, &batch);
                let mut i = 0;
                for c in check {
                    while i < matching.len() && matching[i] < c {
                        i += 1;
                    }
                    if i < matching.len() && matching[i] == c {
                        rows.push(c);
                    }
                }
                rows.sort_unstable();
            }
            if let Some(l) = limit {
                rows.truncate((l - taken) as usize);
            }
            if rows.is_empty() {
                continue;
            }
            // Rows of one batch are about equally large; that estimate keeps pages
            // well under the frame limit the caller derived `max_bytes` from.
            let per_row = (raw_len / fr.rows.max(1) as usize).max(1);
            let est = rows.len().saturating_mul(per_row);
            if bytes.saturating_add(est) > max_bytes {
                if !out.is_empty() {
                    return Ok(Fetched {
                        selections: out,
                        resume: Some(fr.first_row + rows[0]),
                    });
                }
                let k = (max_bytes / per_row).clamp(1, rows.len());
                if k < rows.len() {
                    let resume = Some(fr.first_row + rows[k]);
                    rows.truncate(k);
                    out.push(Selection { batch, rows });
                    return Ok(Fetched {
                        selections: out,
                        resume,
                    });
                }
            }
            bytes = bytes.saturating_add(est);
            taken += rows.len() as u64;
            out.push(Selection { batch, rows });
        }
        Ok(Fetched {
            selections: out,
            resume: None,
        })
    }

    /// Bytes of sealed data on disk.
    pub fn disk_bytes(&self) -> u64 {
        durable::dir_bytes(&self.dir)
    }
}

fn read_batch(path: &Path, map: &[u8], fr: &FrameInfo) -> Result<(Batch, usize), StoreError> {
    let payload = durable::read_frame(path, map, fr.offset as usize)?;
    if payload.len() < 4 {
        return Err(StoreError::corrupt(
            path,
            format!("frame at {} too short", fr.offset),
        ));
    }
    let size = u32::from_le_bytes(payload[..4].try_into().unwrap()) as usize;
    if size > MAX_FRAME {
        return Err(StoreError::corrupt(
            path,
            format!("frame at {} claims {size} bytes", fr.offset),
        ));
    }
    let raw = zstd::bulk::decompress(&payload[4..], size)
        .map_err(|e| StoreError::corrupt(path, format!("frame at {}: {e}", fr.offset)))?;
    let batch = Batch::from_bytes(&raw)
        .map_err(|e| StoreError::corrupt(path, format!("frame at {}: {e}", fr.offset)))?;
    if batch.rows != fr.rows {
        return Err(StoreError::corrupt(
            path,
            format!(
                "frame at {} has {} rows, table says {}",
                fr.offset, batch.rows, fr.rows
            ),
        ));
    }
    Ok((batch, raw.len()))
}
