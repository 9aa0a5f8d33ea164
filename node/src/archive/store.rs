//! The archive's files: per partition an append-only data file and, written when
//! the partition is sealed, a meta file that makes it readable. A data file without
//! its meta was never acknowledged and is discarded.
//!
//! Format version 3 (written): the data file starts with a stream header and
//! holds the partition as row groups of at most [`GROUP_ROWS`] rows. Each column
//! of a group is encoded on its own ([`super::encode`]); the group's columns
//! (after a table of their lengths) are compressed together in one checksummed
//! frame. The meta lists the schemas and, per row group, its rows and its frame,
//! so a fetch of a few rows decompresses only the small groups it needs and
//! decodes only the wanted rows (and, for the exact check, first only the columns
//! the expression reads).
//!
//! Format version 2 (read; written only by tests): groups of 4 Ki rows, each
//! column chunk compressed in a frame of its own. Fetching one row decompressed
//! twenty 4 Ki-row chunks (160 us on the conn log); a version-3 group of 256 rows
//! costs 14 us for 18% more archive bytes (`measure_encodings_on_a_log`).
//!
//! Format version 1 (read only): the data file is a run of frames, each one zstd
//! compressed rkyv [`Batch`]; the meta is the frame table.

use super::encode::{Decoder, Encoder, Knobs, Sel, MAX_CHUNK_MEM};
use crate::data::{Batch, Column, Schema};
use crate::durable::{self, StoreError};
use crate::query::resolve::{filter, resolve, Resolved};
use crate::query::Expr;
use rkyv::{Archive, Deserialize, Serialize};
use roaring::RoaringBitmap;
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use uuid::Uuid;

/// Rows per row group. Measured on the 2M-line conn log (`measure_group_dictionaries`
/// below), one frame per group compressed with the partition's dictionary: 64
/// rows cost 43.4 bytes a row and 11 us to fetch one row, against 41.6 bytes and
/// 30 us for version 3's 256 rows without a dictionary (64 rows without one:
/// 45.8 bytes, 16 us). Rare-row retrieval is what the groups are for; scans pay
/// the per-frame overhead, which zstd keeps small.
pub const GROUP_ROWS: usize = 64;
/// Rows per row group of version 3 (256 rows, no dictionary).
const GROUP_ROWS_V3: usize = 256;
/// Bytes of a partition's dictionary, trained on samples of about ten times
/// that from its first batch: 19 ms a partition at ingest (100 times the
/// samples: 156 ms for 0.3 bytes a row less).
const DICT_BYTES: usize = 16 << 10;
const DICT_SAMPLES: usize = 10 * DICT_BYTES;
/// Fewest sample bytes worth training a dictionary on; a partition whose first
/// batch is smaller compresses its groups without one.
const DICT_MIN_SAMPLES: usize = 8 << 10;
/// Largest dictionary a table may carry when read: zstd copies and digests
/// it, so a hostile table must not make a fetch allocate its whole size.
const MAX_DICT_BYTES: usize = 1 << 20;
/// Rows per row group of version 2 (column chunks in frames of their own).
const GROUP_ROWS_V2: usize = 4096;
/// Most rows a row group may claim when read (a hostile table cannot make a
/// decode allocate per row beyond this).
const MAX_GROUP_ROWS: u32 = 1 << 16;
/// Approximate in-memory bytes after which a row group is cut early, so groups of
/// wide rows (packets) stay small and every chunk stays far below the decode cap.
const GROUP_BYTES: usize = 8 << 20;
/// zstd level for column chunks, measured on the conn log: level 1 compresses the
/// encoded columns about as well as 3 at a fraction of the ingest time.
const ZSTD_LEVEL: i32 = 1;
/// Most bytes a decompressed version-1 frame may claim (guards against hostile sizes).
const MAX_FRAME: usize = 1 << 31;
/// The stream header tag of archive data files.
const DATA_KIND: &[u8; 8] = b"archive\0";
/// A zstd decompression context: fetches take one from a pool and pass it in.
/// It holds the dictionary of the partition it last decoded, digested in
/// place: a digested dictionary per partition (`DDict`) cost each partition a
/// query touched about 40 KB of fresh memory, page faults and all, which was
/// the largest per-partition cost of a rare-row export over many partitions.
pub struct Dctx {
    ctx: zstd::zstd_safe::DCtx<'static>,
    /// The dictionary loaded into `ctx` (empty: none).
    dict: Vec<u8>,
}

impl Dctx {
    pub fn try_create() -> Option<Dctx> {
        Some(Dctx {
            ctx: zstd::zstd_safe::DCtx::try_create()?,
            dict: Vec::new(),
        })
    }

    /// Makes `dict` the context's dictionary (empty: none), digesting it
    /// unless it is the one loaded already. zstd checks its header and tables.
    fn use_dict(&mut self, dict: &[u8]) -> Result<(), String> {
        if self.dict == dict {
            return Ok(());
        }
        self.dict.clear();
        if let Err(c) = self.ctx.load_dictionary(dict) {
            // Leave no half-loaded dictionary behind for the next fetch.
            let _ = self.ctx.load_dictionary(&[]);
            return Err(format!(
                "the partition's compression dictionary ({} bytes) is invalid: {}",
                dict.len(),
                zstd::zstd_safe::get_error_name(c)
            ));
        }
        self.dict.extend_from_slice(dict);
        Ok(())
    }
}

/// Chunk codecs.
const RAW: u8 = 0;
const ZSTD: u8 = 1;
/// zstd with the partition's dictionary (version 4).
const ZSTD_DICT: u8 = 2;

/// Version 1: where a batch lives in a data file.
#[derive(Clone, Debug, PartialEq, Archive, Serialize, Deserialize)]
pub struct FrameInfo {
    pub offset: u64,
    pub first_row: u32,
    pub rows: u32,
}

/// Version 1: the frame table of a sealed partition.
#[derive(Clone, Debug, PartialEq, Archive, Serialize, Deserialize)]
pub struct ArchiveMeta {
    pub id: [u8; 16],
    pub rows: u32,
    pub frames: Vec<FrameInfo>,
}

/// Where one column chunk of a row group lies in the data file (a whole frame).
#[derive(Clone, Debug, PartialEq, Archive, Serialize, Deserialize)]
pub struct ChunkInfo {
    pub offset: u64,
    pub len: u32,
}

/// One row group: partition rows `first_row..first_row + rows` of one schema.
#[derive(Clone, Debug, PartialEq, Archive, Serialize, Deserialize)]
pub struct GroupInfo {
    pub first_row: u32,
    pub rows: u32,
    /// Index into the partition's schemas.
    pub schema: u32,
    /// About what the rows take in memory (and as rkyv bytes), for paging.
    pub bytes: u64,
    /// One per schema field, in field order.
    pub chunks: Vec<ChunkInfo>,
}

/// Version 3: one row group, partition rows `first_row..first_row + rows` of
/// one schema, all its columns in the frame at `offset`. Stored as a
/// [`GROUP_RECORD`]-byte little-endian record in [`ArchiveMetaV3::groups`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GroupInfoV3 {
    pub first_row: u32,
    pub rows: u32,
    /// Index into the partition's schemas.
    pub schema: u32,
    /// The group frame's length, frame header included.
    pub len: u32,
    /// About what the rows take in memory (and as rkyv bytes), for paging.
    pub bytes: u32,
    /// Where the group's frame starts in the data file.
    pub offset: u64,
}

/// Bytes of one group record: first_row, rows, schema, len, bytes (u32 each),
/// offset (u64).
const GROUP_RECORD: usize = 28;

impl GroupInfoV3 {
    fn put(&self, out: &mut Vec<u8>) {
        for v in [self.first_row, self.rows, self.schema, self.len, self.bytes] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&self.offset.to_le_bytes());
    }

    /// Record `i` of a table whose length is a multiple of [`GROUP_RECORD`].
    fn get(table: &[u8], i: usize) -> GroupInfoV3 {
        let r = &table[i * GROUP_RECORD..(i + 1) * GROUP_RECORD];
        let u = |k: usize| u32::from_le_bytes(r[4 * k..4 * k + 4].try_into().unwrap());
        GroupInfoV3 {
            first_row: u(0),
            rows: u(1),
            schema: u(2),
            len: u(3),
            bytes: u(4),
            offset: u64::from_le_bytes(r[20..28].try_into().unwrap()),
        }
    }
}

/// Version 3: the row-group table of a sealed partition. The groups are
/// fixed-size records rather than a vector of structs: a fetch binary-searches
/// the few groups it needs, and loading a partition's table is one copy, not
/// thousands of checked and deserialized structs (measured: 100 us a partition).
#[derive(Clone, Debug, PartialEq, Archive, Serialize, Deserialize)]
pub struct ArchiveMetaV3 {
    pub id: [u8; 16],
    pub rows: u32,
    pub schemas: Vec<Schema>,
    /// [`GROUP_RECORD`]-byte records, in row order.
    pub groups: Vec<u8>,
}

/// Version 4: version 3's table and the dictionary the partition's group
/// frames are compressed with (empty when its first batch was too small to
/// train one). Stored by [`ArchiveMetaV4::to_bytes`] as a checksummed head
/// ([`MetaHeadV4`]) followed by the group records in checksummed pages, so a
/// fetch verifies only the pages it reads: a 1 Mi-row partition has 16 Ki
/// groups, and hashing and walking their whole table on every open cost a
/// rare-row export more than decoding its rows.
#[derive(Clone, Debug, PartialEq)]
pub struct ArchiveMetaV4 {
    pub id: [u8; 16],
    pub rows: u32,
    pub schemas: Vec<Schema>,
    /// [`GROUP_RECORD`]-byte records, in row order.
    pub groups: Vec<u8>,
    /// A zstd dictionary.
    pub dict: Vec<u8>,
}

/// Group records per checksummed page of a version-4 table (3.5 KiB).
const PAGE_RECORDS: usize = 128;
/// Where a version-4 meta payload's head frame starts: 4 bytes of padding put
/// the head, after the frame's 12-byte header, at 16 bytes, aligned for rkyv.
const HEAD_FRAME_AT: usize = 4;

/// Where the group records of a version-4 meta payload start, after a head of
/// `head_len` bytes (its frame, padded to 16 bytes).
fn table_start(head_len: usize) -> usize {
    (HEAD_FRAME_AT + 12 + head_len).next_multiple_of(16)
}

/// The head of a version-4 meta file: everything but the group records, and
/// the xxh3 of each page of [`PAGE_RECORDS`] records.
#[derive(Clone, Debug, PartialEq, Archive, Serialize, Deserialize)]
pub struct MetaHeadV4 {
    pub id: [u8; 16],
    pub rows: u32,
    pub schemas: Vec<Schema>,
    pub dict: Vec<u8>,
    pub page_sums: Vec<u64>,
}

impl ArchiveMetaV4 {
    /// The table of a version-4 meta file, read whole (tests of hostile tables).
    #[cfg(test)]
    fn read(path: &Path) -> ArchiveMetaV4 {
        let payload = durable::read_file(path).unwrap();
        let head_bytes = durable::read_frame(path, &payload, HEAD_FRAME_AT).unwrap();
        let head: MetaHeadV4 = crate::data::checked::from_bytes(head_bytes).unwrap();
        ArchiveMetaV4 {
            id: head.id,
            rows: head.rows,
            schemas: head.schemas,
            dict: head.dict,
            groups: payload[table_start(head_bytes.len())..].to_vec(),
        }
    }

    /// The meta file's payload: [`HEAD_FRAME_AT`] zero bytes, the head (rkyv) as
    /// a checksummed [`durable::frame`], zero padding to 16 bytes, then the
    /// group records.
    pub fn to_bytes(&self) -> Vec<u8> {
        let head = MetaHeadV4 {
            id: self.id,
            rows: self.rows,
            schemas: self.schemas.clone(),
            dict: self.dict.clone(),
            page_sums: self
                .groups
                .chunks(PAGE_RECORDS * GROUP_RECORD)
                .map(durable::checksum)
                .collect(),
        };
        let head = rkyv::to_bytes::<rkyv::rancor::Error>(&head)
            .expect("serializing into memory cannot fail");
        let mut out = vec![0u8; HEAD_FRAME_AT];
        out.extend_from_slice(&durable::frame(&head));
        out.resize(table_start(head.len()), 0);
        out.extend_from_slice(&self.groups);
        out
    }
}

/// A version-3 or -4 table as a fetch uses it: the mapped meta file, its
/// schemas deserialized, its group records read in place (version 4: each
/// page verified when first read), its dictionary digested.
struct MetaV3 {
    file: durable::MappedFile,
    /// 3 or 4.
    version: u16,
    rows: u32,
    schemas: Vec<Schema>,
    /// Where the group records lie in the file's payload.
    groups: std::ops::Range<usize>,
    /// Where the compression dictionary lies in the file's payload (empty:
    /// none). It is digested by the fetch that uses it, on the fetch's thread
    /// (see [`Dctx`]).
    dict_at: std::ops::Range<usize>,
    /// Version 4: each page's checksum, and whether it was verified.
    pages: Vec<(u64, std::sync::atomic::AtomicBool)>,
}

impl MetaV3 {
    /// Checks the mapped meta file: version 3 whole (its checksum is already
    /// verified), version 4 its head (its pages when they are read).
    fn load(path: &Path, file: durable::MappedFile) -> Result<MetaV3, StoreError> {
        let payload = file.payload();
        let version = file.version();
        let corrupt = |e: String| StoreError::corrupt(path, e);
        let mut pages = Vec::new();
        let (rows, schemas, table, dict) = if version == 3 {
            let a =
                crate::data::checked::access::<ArchivedArchiveMetaV3>(payload).map_err(&corrupt)?;
            (a.rows.to_native(), &a.schemas, a.groups.as_slice(), &[][..])
        } else {
            let head = durable::read_frame(path, payload, HEAD_FRAME_AT)?;
            let a = crate::data::checked::access::<ArchivedMetaHeadV4>(head).map_err(&corrupt)?;
            let table = &payload[table_start(head.len()).min(payload.len())..];
            if a.page_sums.len() != table.len().div_ceil(PAGE_RECORDS * GROUP_RECORD) {
                return Err(corrupt(format!(
                    "{} page checksums for a row group table of {} bytes",
                    a.page_sums.len(),
                    table.len()
                )));
            }
            pages = a
                .page_sums
                .iter()
                .map(|s| (s.to_native(), std::sync::atomic::AtomicBool::new(false)))
                .collect();
            (a.rows.to_native(), &a.schemas, table, a.dict.as_slice())
        };
        let schemas = rkyv::deserialize::<Vec<Schema>, rkyv::rancor::Error>(schemas)
            .map_err(|e| corrupt(e.to_string()))?;
        if dict.len() > MAX_DICT_BYTES {
            return Err(corrupt(format!(
                "a compression dictionary of {} bytes, more than the limit of {MAX_DICT_BYTES}",
                dict.len()
            )));
        }
        let start = table.as_ptr() as usize - payload.as_ptr() as usize;
        let m = MetaV3 {
            version,
            rows,
            groups: start..start + table.len(),
            schemas,
            // Version 3 has no dictionary (an empty slice outside the payload).
            dict_at: match dict.is_empty() {
                true => 0..0,
                false => {
                    let at = dict.as_ptr() as usize - payload.as_ptr() as usize;
                    at..at + dict.len()
                }
            },
            file,
            pages,
        };
        check_meta_v3(&m).map_err(corrupt)?;
        Ok(m)
    }

    /// The partition's compression dictionary (empty: none).
    fn dict(&self) -> &[u8] {
        &self.file.payload()[self.dict_at.clone()]
    }

    /// Group record `i`, its page verified first (version 4): checksum, then
    /// what [`check_groups`] asks of every table, from the record before it on.
    fn checked_group(&self, i: usize) -> Result<GroupInfoV3, String> {
        use std::sync::atomic::Ordering;
        let p = i / PAGE_RECORDS;
        if let Some((sum, checked)) = self.pages.get(p) {
            if !checked.load(Ordering::Acquire) {
                let lo = p * PAGE_RECORDS;
                let hi = (lo + PAGE_RECORDS).min(self.group_count());
                let bytes = &self.table()[lo * GROUP_RECORD..hi * GROUP_RECORD];
                let computed = durable::checksum(bytes);
                if computed != *sum {
                    return Err(format!(
                        "checksum mismatch in page {p} of the row group table (stored {sum:016x}, computed {computed:016x}): the file is corrupt"
                    ));
                }
                let after = match lo {
                    0 => 0,
                    _ => {
                        let g = self.group(lo - 1);
                        g.first_row.saturating_add(g.rows)
                    }
                };
                check_groups(
                    &self.schemas,
                    self.rows,
                    after,
                    (lo..hi).map(|i| {
                        let g = self.group(i);
                        (g.first_row, g.rows, g.schema)
                    }),
                )?;
                checked.store(true, Ordering::Release);
            }
        }
        Ok(self.group(i))
    }

    fn table(&self) -> &[u8] {
        &self.file.payload()[self.groups.clone()]
    }
    fn group_count(&self) -> usize {
        self.groups.len() / GROUP_RECORD
    }
    fn group(&self, i: usize) -> GroupInfoV3 {
        GroupInfoV3::get(self.table(), i)
    }
}

/// Version 2: the row-group table of a sealed partition.
#[derive(Clone, Debug, PartialEq, Archive, Serialize, Deserialize)]
pub struct ArchiveMetaV2 {
    pub id: [u8; 16],
    pub rows: u32,
    pub schemas: Vec<Schema>,
    pub groups: Vec<GroupInfo>,
}

/// A sealed partition's table in either format.
#[derive(Debug)]
enum Meta {
    V1(ArchiveMeta),
    V2(ArchiveMetaV2),
    V3(MetaV3),
}

impl std::fmt::Debug for MetaV3 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "MetaV3({} rows, {} groups)",
            self.rows,
            self.group_count()
        )
    }
}

struct Active {
    file: File,
    offset: u64,
    schemas: Vec<Schema>,
    groups: Vec<GroupInfo>,
    groups_v3: Vec<u8>,
    rows: u32,
    /// Version 4: the partition's dictionary and a compressor holding it, once
    /// trained on its first batch (empty and `None` when that was too small).
    dict: Option<(Vec<u8>, Option<zstd::bulk::Compressor<'static>>)>,
}

/// One page of a fetch: selections, and the partition row to continue from when
/// the page filled up (`None`: the partition is done).
#[derive(Debug, Default)]
pub struct Fetched {
    pub selections: Vec<Selection>,
    pub resume: Option<u32>,
}

/// Rows of one batch selected by a query. The batch may be a part of a stored
/// batch (one row group); `rows` index into it.
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
    sealed: HashMap<Uuid, Arc<Meta>>,
    /// Open data files of sealed partitions and their sizes, header already
    /// checked. Fetches read frames with `pread`, not a memory map: a rare-row
    /// fetch touches a few small frames, and mapping and unmapping 40 MB files
    /// cost more than those reads (measured: 50 us per unmap on 2 cores).
    files: HashMap<Uuid, Arc<(File, u64)>>,
    encoder: Encoder,
    compressor: zstd::bulk::Compressor<'static>,
    decompressor: Dctx,
    /// Buffers one append's frames so it is one write.
    pending: Vec<u8>,
    /// Buffers one version-3 group before it is compressed.
    group: Vec<u8>,
    /// The format version appends write: [`durable::FORMAT_VERSION`], or 2 in
    /// tests of the version-2 reader.
    version: u16,
}

fn data_path(dir: &Path, id: Uuid) -> PathBuf {
    dir.join(format!("{id}.data"))
}

/// The meta file beside data file `data`.
fn meta_path_of(data: &Path) -> PathBuf {
    data.with_extension("meta")
}

fn meta_path(dir: &Path, id: Uuid) -> PathBuf {
    meta_path_of(&data_path(dir, id))
}

impl ArchiveStore {
    /// Opens the archive directory. Files of partitions that are neither committed
    /// nor prepared for another node's import (never acknowledged) are removed.
    pub fn open(dir: &Path, commits: &crate::commit::State) -> Result<ArchiveStore, StoreError> {
        fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
        let zstd_err = |e| StoreError::io(dir, e);
        let store = ArchiveStore {
            dir: dir.to_path_buf(),
            active: HashMap::new(),
            sealed: HashMap::new(),
            files: HashMap::new(),
            encoder: Encoder::new(Knobs::default()),
            compressor: zstd::bulk::Compressor::new(ZSTD_LEVEL).map_err(zstd_err)?,
            decompressor: Dctx::try_create().ok_or_else(|| {
                zstd_err(std::io::Error::other("creating a zstd decompressor failed"))
            })?,
            pending: Vec::new(),
            group: Vec::new(),
            version: durable::FORMAT_VERSION,
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

    /// Appends a batch whose first row is partition row `first_row`, as row groups.
    /// Returns the bytes written.
    pub fn append(&mut self, id: Uuid, first_row: u32, batch: &Batch) -> Result<u64, StoreError> {
        let dir = self.dir.clone();
        let path = data_path(&dir, id);
        self.pending.clear();
        if !self.active.contains_key(&id) {
            // A partition's data file is created exactly once: an id that is
            // sealed (or already on disk) is refused, never truncated, whoever
            // sends it.
            if self.sealed.contains_key(&id) || meta_path(&dir, id).exists() {
                return Err(StoreError::corrupt(
                    &path,
                    "partition is sealed; sealed partitions are never rewritten",
                ));
            }
            let file = OpenOptions::new()
                .create_new(true)
                .write(true)
                .open(&path)
                .map_err(|e| StoreError::io(&path, e))?;
            self.pending
                .extend_from_slice(&durable::stream_header_version(DATA_KIND, self.version));
            self.active.insert(
                id,
                Active {
                    file,
                    offset: 0,
                    schemas: Vec::new(),
                    groups: Vec::new(),
                    groups_v3: Vec::new(),
                    rows: 0,
                    dict: None,
                },
            );
        }
        let active = self.active.get_mut(&id).expect("inserted above");
        // Rows arrive in order, each batch right after the last: a batch sent
        // twice or out of place (a retried copy, a confused peer) would number
        // the partition's rows wrongly.
        if first_row != active.rows {
            return Err(StoreError::corrupt(
                &path,
                format!(
                    "a batch starts at row {first_row}, but the partition holds {} rows",
                    active.rows
                ),
            ));
        }
        let end = first_row.checked_add(batch.rows).ok_or_else(|| {
            StoreError::corrupt(&path, "batch rows overflow the partition's row numbers")
        })?;
        let schema = match active.schemas.iter().position(|s| *s == batch.schema) {
            Some(i) => i,
            None => {
                active.schemas.push(batch.schema.clone());
                active.schemas.len() - 1
            }
        } as u32;
        let mut groups = Vec::new();
        let mut groups_v3: Vec<u8> = Vec::new();
        let mut at = 0usize;
        let rows = batch.rows as usize;
        let group_rows = match self.version {
            4.. => GROUP_ROWS,
            3 => GROUP_ROWS_V3,
            _ => GROUP_ROWS_V2,
        };
        if self.version >= 4 && active.dict.is_none() {
            active.dict = Some(
                train_dict(&mut self.encoder, batch, group_rows)
                    .map_err(|e| StoreError::io(&path, e))?,
            );
        }
        let mut dict = active.dict.as_mut().and_then(|d| d.1.as_mut());
        while at < rows {
            let mut to = (at + group_rows).min(rows);
            let mut bytes = batch.rows_bytes(at..to);
            while bytes > GROUP_BYTES && to - at > 1 {
                to = at + (to - at) / 2;
                bytes = batch.rows_bytes(at..to);
            }
            if self.version >= 3 {
                let offset = active.offset + self.pending.len() as u64;
                let len = encode_group(
                    &mut self.encoder,
                    match dict.as_deref_mut() {
                        Some(c) => (c, ZSTD_DICT),
                        None => (&mut self.compressor, ZSTD),
                    },
                    &mut self.group,
                    &mut self.pending,
                    batch,
                    at..to,
                )
                .map_err(|e| match e {
                    GroupError::Zstd(e) => StoreError::io(&path, e),
                    GroupError::TooLarge(why) => StoreError::corrupt(&path, why),
                })?;
                GroupInfoV3 {
                    first_row: first_row + at as u32,
                    rows: (to - at) as u32,
                    schema,
                    len,
                    bytes: bytes.min(u32::MAX as usize) as u32,
                    offset,
                }
                .put(&mut groups_v3);
                at = to;
                continue;
            }
            let mut chunks = Vec::with_capacity(batch.columns.len());
            for (c, f) in batch.columns.iter().zip(&batch.schema.fields) {
                self.encoder.clear();
                self.encoder.column(c, at..to);
                let raw_len = self.encoder.out.len();
                if self.encoder.mem > MAX_CHUNK_MEM || raw_len as u64 > MAX_CHUNK_MEM {
                    return Err(StoreError::corrupt(
                        &path,
                        format!(
                            "field {} of rows {at}..{to} takes {} bytes, more than the {MAX_CHUNK_MEM} one column chunk may hold",
                            f.name,
                            self.encoder.mem.max(raw_len as u64)
                        ),
                    ));
                }
                let mut payload = Vec::with_capacity(raw_len / 2 + 24);
                let compressed = self
                    .compressor
                    .compress(&self.encoder.out)
                    .map_err(|e| StoreError::io(&path, e))?;
                let zstd = compressed.len() < raw_len;
                payload.push(if zstd { ZSTD } else { RAW });
                put_varint(&mut payload, raw_len as u64);
                put_varint(&mut payload, self.encoder.mem);
                payload.extend_from_slice(if zstd { &compressed } else { &self.encoder.out });
                let frame = durable::frame(&payload);
                // `pending` starts at the current end of the file.
                chunks.push(ChunkInfo {
                    offset: active.offset + self.pending.len() as u64,
                    len: frame.len() as u32,
                });
                self.pending.extend_from_slice(&frame);
            }
            groups.push(GroupInfo {
                first_row: first_row + at as u32,
                rows: (to - at) as u32,
                schema,
                bytes: bytes as u64,
                chunks,
            });
            at = to;
        }
        active
            .file
            .write_all(&self.pending)
            .map_err(|e| StoreError::io(&path, e))?;
        active.offset += self.pending.len() as u64;
        active.groups.extend(groups);
        active.groups_v3.extend(groups_v3);
        active.rows = active.rows.max(end);
        Ok(self.pending.len() as u64)
    }

    /// Makes a partition durable: fsyncs its data, then writes its row-group table.
    pub fn seal(&mut self, id: Uuid) -> Result<(), StoreError> {
        let Some(active) = self.active.remove(&id) else {
            return Ok(());
        };
        let path = data_path(&self.dir, id);
        active
            .file
            .sync_all()
            .map_err(|e| StoreError::io(&path, e))?;
        let (meta, bytes) = if self.version >= 4 {
            let meta = ArchiveMetaV4 {
                id: *id.as_bytes(),
                rows: active.rows,
                schemas: active.schemas,
                groups: active.groups_v3,
                dict: active.dict.map(|d| d.0).unwrap_or_default(),
            };
            (None, meta.to_bytes())
        } else if self.version == 3 {
            let meta = ArchiveMetaV3 {
                id: *id.as_bytes(),
                rows: active.rows,
                schemas: active.schemas,
                groups: active.groups_v3,
            };
            let bytes = rkyv::to_bytes::<rkyv::rancor::Error>(&meta)
                .expect("serializing into memory cannot fail");
            (None, bytes.to_vec())
        } else {
            let meta = ArchiveMetaV2 {
                id: *id.as_bytes(),
                rows: active.rows,
                schemas: active.schemas,
                groups: active.groups,
            };
            let bytes = rkyv::to_bytes::<rkyv::rancor::Error>(&meta)
                .expect("serializing into memory cannot fail");
            (Some(Meta::V2(meta)), bytes.to_vec())
        };
        durable::write_file_version(&meta_path(&self.dir, id), &bytes, self.version)?;
        durable::sync_dir(&self.dir)?;
        // A version-3 or -4 table is mapped from its file when first fetched.
        if let Some(meta) = meta {
            self.sealed.insert(id, Arc::new(meta));
        }
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
        self.files.remove(&id);
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

    fn meta(&mut self, id: Uuid) -> Result<Arc<Meta>, StoreError> {
        if let Some(m) = self.sealed.get(&id) {
            return Ok(m.clone());
        }
        let path = meta_path(&self.dir, id);
        // Mapped, not read: a version-3 table is used in place (no copy, no
        // deserialized structs), which is most of what a rare-row fetch costs a
        // partition.
        // Version 4 checksums its table's head and pages itself.
        let file = durable::MappedFile::open_unverified(&path)?;
        if file.version() < 4 {
            file.verify(&path)?;
        }
        let meta = match file.version() {
            1 => Meta::V1(
                crate::data::checked::from_bytes::<ArchiveMeta>(file.payload())
                    .map_err(|e| StoreError::corrupt(&path, e))?,
            ),
            2 => {
                let m = crate::data::checked::from_bytes::<ArchiveMetaV2>(file.payload())
                    .map_err(|e| StoreError::corrupt(&path, e))?;
                check_meta(&m).map_err(|e| StoreError::corrupt(&path, e))?;
                Meta::V2(m)
            }
            _ => Meta::V3(MetaV3::load(&path, file)?),
        };
        let meta = Arc::new(meta);
        self.sealed.insert(id, meta.clone());
        Ok(meta)
    }

    /// The open data file of sealed partition `id` and its size, its header
    /// checked against the meta's format version.
    fn file(&mut self, id: Uuid, meta: &Meta) -> Result<Arc<(File, u64)>, StoreError> {
        use std::os::unix::fs::FileExt;
        if let Some(f) = self.files.get(&id) {
            return Ok(f.clone());
        }
        let path = data_path(&self.dir, id);
        let file = File::open(&path).map_err(|e| StoreError::io(&path, e))?;
        let size = file.metadata().map_err(|e| StoreError::io(&path, e))?.len();
        let mut head = vec![0u8; (durable::HEADER as u64).min(size) as usize];
        file.read_exact_at(&mut head, 0)
            .map_err(|e| StoreError::io(&path, e))?;
        let want = match meta {
            Meta::V1(_) => None,
            Meta::V2(_) => Some(2),
            Meta::V3(m) => Some(m.version),
        };
        if let Some(want) = want {
            let v = durable::check_stream_header(&path, &head, DATA_KIND)?;
            if v != want {
                return Err(StoreError::corrupt(
                    &path,
                    format!("data file of format version {v} under a version-{want} meta"),
                ));
            }
        }
        let f = Arc::new((file, size));
        self.files.insert(id, f.clone());
        Ok(f)
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
        let reader = self.reader(id)?;
        reader.fetch(
            &mut self.decompressor,
            sure,
            maybe,
            expr,
            limit,
            from_row,
            max_bytes,
        )
    }

    /// What a fetch of sealed partition `id` reads, detached from the store.
    pub fn reader(&mut self, id: Uuid) -> Result<PartitionReader, StoreError> {
        let meta = self.meta(id)?;
        let file = self.file(id, &meta)?;
        Ok(PartitionReader {
            path: data_path(&self.dir, id),
            meta,
            file,
        })
    }

    /// Bytes of sealed data on disk.
    pub fn disk_bytes(&self) -> u64 {
        durable::dir_bytes(&self.dir)
    }
}

/// One sealed partition's table and open data file: what a fetch reads, apart
/// from the store, so fetches of several partitions decode on several threads
/// while the archive goes on serving (a rare-host export over 20 partitions
/// spent most of its time decoding one partition after another on one core).
#[derive(Clone)]
pub struct PartitionReader {
    path: PathBuf,
    meta: Arc<Meta>,
    file: Arc<(File, u64)>,
}

impl PartitionReader {
    #[cfg(test)]
    fn meta_has_dict(&self) -> bool {
        matches!(&*self.meta, Meta::V3(m) if !m.dict_at.is_empty())
    }

    /// [`ArchiveStore::fetch`], decompressing with `dctx`.
    #[allow(clippy::too_many_arguments)]
    pub fn fetch(
        &self,
        dctx: &mut Dctx,
        sure: &RoaringBitmap,
        maybe: &RoaringBitmap,
        expr: &Expr,
        limit: Option<u64>,
        from_row: u32,
        max_bytes: usize,
    ) -> Result<Fetched, StoreError> {
        let (meta, file) = (&*self.meta, &*self.file);
        if let Meta::V3(m) = meta {
            dctx.use_dict(m.dict())
                .map_err(|e| StoreError::corrupt(&meta_path_of(&self.path), e))?;
        }
        let mut reader = Reader {
            path: self.path.clone(),
            file: &file.0,
            size: file.1,
            frame: Vec::new(),
            dctx,
            dict: match meta {
                Meta::V3(m) => m.dict(),
                _ => &[],
            },
            buf: Vec::new(),
            group_at: None,
            columns: Vec::new(),
        };
        // Units (frames or row groups) in row order: first row and row count.
        let n_units = match meta {
            Meta::V1(m) => m.frames.len(),
            Meta::V2(m) => m.groups.len(),
            Meta::V3(m) => m.group_count(),
        };
        let path = &self.path;
        let unit = |u: usize| -> Result<(u32, u32), StoreError> {
            Ok(match meta {
                Meta::V1(m) => (m.frames[u].first_row, m.frames[u].rows),
                Meta::V2(m) => (m.groups[u].first_row, m.groups[u].rows),
                Meta::V3(m) => {
                    let g = m
                        .checked_group(u)
                        .map_err(|e| StoreError::corrupt(&meta_path_of(path), e))?;
                    (g.first_row, g.rows)
                }
            })
        };
        let meta_rows = match meta {
            Meta::V1(m) => m
                .frames
                .last()
                .map_or(0, |f| f.first_row.saturating_add(f.rows)),
            Meta::V2(m) => m
                .groups
                .last()
                .map_or(0, |g| g.first_row.saturating_add(g.rows)),
            Meta::V3(m) => m.rows,
        };
        // One plan per schema; version-1 partitions have one schema (`None`).
        let mut plans: HashMap<Option<u32>, Plan> = HashMap::new();
        let mut out = Gathered::default();
        let mut taken = 0u64;
        let mut bytes = 0usize;
        // Visit only the units holding candidates: a few rows of a partition of
        // thousands of row groups cost a few binary searches, not a walk of all.
        let mut next = from_row;
        loop {
            if limit.is_some_and(|l| taken >= l) {
                break;
            }
            let candidate = match (sure.range(next..).next(), maybe.range(next..).next()) {
                (Some(a), Some(b)) => a.min(b),
                (Some(a), None) | (None, Some(a)) => a,
                (None, None) => break,
            };
            // The first unit ending after the candidate. A version-4 table is
            // searched on records whose pages are not yet verified, so that a
            // few rows cost a page check each instead of one per probe (a
            // search probes about 7 pages of a 1 Mi-row partition: that was the
            // largest part of a rare-row fetch); the answer is then confirmed on
            // verified records, and searched again verified if it does not hold.
            // The search starts where the candidate would lie if the units were
            // of equal size (row groups nearly are), and gallops from there: a
            // few records near the answer are read instead of a binary search's
            // probes across the table, each a page the fetch faulted in (the
            // table of a 1 Mi-row partition is 112 pages; those faults were a
            // sixth of a rare-row fetch).
            let at = (u64::from(candidate) * n_units as u64)
                .checked_div(u64::from(meta_rows.max(1)))
                .unwrap_or(0) as usize;
            let search = |probe: &dyn Fn(usize) -> Result<(u32, u32), StoreError>| {
                let before = |i: usize| probe(i).map(|(f, c)| f.saturating_add(c) <= candidate);
                gallop(n_units, at, before)
            };
            let u = match meta {
                Meta::V3(m) => {
                    let guess = search(&|i| {
                        let g = m.group(i);
                        Ok((g.first_row, g.rows))
                    })?;
                    let end = |i: usize| unit(i).map(|(f, c)| f.saturating_add(c));
                    let holds = (guess == 0 || end(guess - 1)? <= candidate)
                        && (guess == n_units || end(guess)? > candidate);
                    if holds {
                        guess
                    } else {
                        search(&unit)?
                    }
                }
                _ => search(&unit)?,
            };
            if u == n_units {
                break;
            }
            let (first, count) = unit(u)?;
            let end = first.saturating_add(count);
            if candidate < first {
                // Candidates between units name rows without data.
                next = first;
                continue;
            }
            next = end;
            let range = first.max(from_row)..end;
            let mut rows: Vec<u32> = sure.range(range.clone()).map(|r| r - first).collect();
            let check: Vec<u32> = maybe.range(range.clone()).map(|r| r - first).collect();
            let unit = match meta {
                Meta::V1(m) => {
                    let (batch, raw_len) = reader.batch_v1(&m.frames[u])?;
                    Unit::V1(batch, raw_len)
                }
                Meta::V2(m) => {
                    let g = &m.groups[u];
                    Unit::Group(Group::V2(g), &m.schemas[g.schema as usize])
                }
                Meta::V3(m) => {
                    // Checked by `unit` above.
                    let g = m.group(u);
                    Unit::Group(Group::V3(g), &m.schemas[g.schema as usize])
                }
            };
            if !check.is_empty() {
                let matching = match &unit {
                    Unit::V1(batch, _) => {
                        let plan = plans
                            .entry(None)
                            .or_insert_with(|| Plan::new(expr, &batch.schema));
                        filter(&plan.full, batch)
                    }
                    Unit::Group(g, schema) => {
                        let plan = plans
                            .entry(Some(g.schema()))
                            .or_insert_with(|| Plan::new(expr, schema));
                        plan.check(&mut reader, *g, schema, &check)?
                    }
                };
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
                // A row both sure and maybe is one row.
                rows.dedup();
            }
            if let Some(l) = limit {
                rows.truncate((l - taken) as usize);
            }
            if rows.is_empty() {
                continue;
            }
            // Rows of one batch are about equally large; that estimate keeps pages
            // well under the frame limit the caller derived `max_bytes` from.
            let unit_bytes = match &unit {
                Unit::V1(_, raw_len) => *raw_len,
                Unit::Group(g, _) => g.bytes() as usize,
            };
            let per_row = (unit_bytes / count.max(1) as usize).max(1);
            let est = rows.len().saturating_mul(per_row);
            if bytes.saturating_add(est) > max_bytes {
                if !out.is_empty() {
                    return Ok(Fetched {
                        selections: out.finish(),
                        resume: Some(first + rows[0]),
                    });
                }
                let k = (max_bytes / per_row).clamp(1, rows.len());
                if k < rows.len() {
                    let resume = Some(first + rows[k]);
                    rows.truncate(k);
                    unit.select(rows, &mut reader, &mut out)?;
                    return Ok(Fetched {
                        selections: out.finish(),
                        resume,
                    });
                }
            }
            bytes = bytes.saturating_add(est);
            taken += rows.len() as u64;
            unit.select(rows, &mut reader, &mut out)?;
        }
        Ok(Fetched {
            selections: out.finish(),
            resume: None,
        })
    }
}

/// The first of `n` units for which `before` is false, `before` being true for
/// a prefix of them; probes from `at` outwards in growing steps, then by
/// halves, so an answer at or near `at` costs a few probes.
fn gallop(
    n: usize,
    at: usize,
    before: impl Fn(usize) -> Result<bool, StoreError>,
) -> Result<usize, StoreError> {
    // The answer lies in lo..=hi.
    let (mut lo, mut hi);
    let at = at.min(n);
    if at < n && before(at)? {
        lo = at + 1;
        hi = n;
        let mut step = 1;
        while lo < n {
            let i = (lo - 1).saturating_add(step).min(n - 1);
            if before(i)? {
                lo = i + 1;
                step = step.saturating_mul(2);
            } else {
                hi = i;
                break;
            }
        }
        hi = hi.max(lo);
    } else {
        hi = at;
        lo = 0;
        let mut step = 1;
        while hi > 0 {
            let i = hi.saturating_sub(step);
            if before(i)? {
                lo = i + 1;
                break;
            }
            hi = i;
            step = step.saturating_mul(2);
        }
    }
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if before(mid)? {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    Ok(lo)
}

/// One unit of a partition being fetched: a version-1 batch (and its raw size),
/// or a version-2 or -3 row group and its schema.
enum Unit<'m> {
    V1(Batch, usize),
    Group(Group<'m>, &'m Schema),
}

/// A row group of either columnar version.
#[derive(Clone, Copy)]
enum Group<'m> {
    V2(&'m GroupInfo),
    V3(GroupInfoV3),
}

impl Group<'_> {
    fn rows(&self) -> u32 {
        match self {
            Group::V2(g) => g.rows,
            Group::V3(g) => g.rows,
        }
    }
    fn schema(&self) -> u32 {
        match self {
            Group::V2(g) => g.schema,
            Group::V3(g) => g.schema,
        }
    }
    fn bytes(&self) -> u64 {
        match self {
            Group::V2(g) => g.bytes,
            Group::V3(g) => g.bytes as u64,
        }
    }
}

impl<'m> Unit<'m> {
    /// Adds the selection of `rows` (ascending, relative to the unit) to `out`.
    /// A row group decodes just those rows.
    fn select(
        self,
        rows: Vec<u32>,
        reader: &mut Reader<'_>,
        out: &mut Gathered<'m>,
    ) -> Result<(), StoreError> {
        match self {
            Unit::V1(batch, _) => out.push(Selection { batch, rows }),
            Unit::Group(g, schema) => {
                let sel = sel(g, &rows);
                let columns = (0..schema.fields.len())
                    .map(|i| reader.column(g, schema, i, sel))
                    .collect::<Result<_, _>>()?;
                out.push_group(g.schema(), schema, columns, rows.len() as u32);
            }
        }
        Ok(())
    }
}

/// A fetch's selections as they are gathered. The rows decoded from
/// consecutive row groups of one schema go into one set of columns, made a
/// batch (and its schema cloned) once: a rare-row fetch finds its rows in as
/// many groups, and a batch per group cost a schema clone, a schema compare
/// and a batch append per row, and the sink a schema setup per row.
#[derive(Default)]
struct Gathered<'m> {
    done: Vec<Selection>,
    /// Columns being filled: the schema's index in the partition, the schema,
    /// the columns, their rows.
    open: Option<(u32, &'m Schema, Vec<Column>, u32)>,
}

impl<'m> Gathered<'m> {
    fn is_empty(&self) -> bool {
        self.done.is_empty() && self.open.is_none()
    }

    fn push_group(&mut self, index: u32, schema: &'m Schema, columns: Vec<Column>, rows: u32) {
        if let Some((i, _, open, n)) = &mut self.open {
            let fits = *i == index
                && n.checked_add(rows).is_some()
                && open.len() == columns.len()
                && open.iter().zip(&columns).all(|(a, b)| a.can_append(b));
            if fits {
                *n += rows;
                for (a, b) in open.iter_mut().zip(columns) {
                    a.append(b);
                }
                return;
            }
        }
        self.close();
        self.open = Some((index, schema, columns, rows));
    }

    fn push(&mut self, s: Selection) {
        self.close();
        self.done.push(s);
    }

    fn close(&mut self) {
        if let Some((_, schema, columns, rows)) = self.open.take() {
            self.done.push(Selection {
                batch: Batch {
                    schema: schema.clone(),
                    rows,
                    columns,
                },
                rows: (0..rows).collect(),
            });
        }
    }

    fn finish(mut self) -> Vec<Selection> {
        self.close();
        self.done
    }
}

/// All of group `g`, or just `rows` of it.
fn sel<'r>(g: Group<'_>, rows: &'r [u32]) -> Sel<'r> {
    if rows.len() == g.rows() as usize {
        Sel::All(g.rows() as usize)
    } else {
        Sel::Rows(g.rows() as usize, rows)
    }
}

/// The exact check of one schema: the expression bound to the full schema, and
/// bound to just the columns it reads, so a row group's check decodes only those.
struct Plan {
    full: Resolved,
    columns: Vec<usize>,
    projected: Resolved,
}

impl Plan {
    fn new(expr: &Expr, schema: &Schema) -> Plan {
        let full = resolve(expr, schema);
        let mut columns = Vec::new();
        columns_of(&full, &mut columns);
        columns.sort_unstable();
        columns.dedup();
        let projected = renumber(&full, &columns);
        Plan {
            full,
            columns,
            projected,
        }
    }

    /// The rows among `check` (ascending) of group `g` that match, decoding only
    /// those rows of the columns the expression reads.
    fn check(
        &self,
        reader: &mut Reader<'_>,
        g: Group<'_>,
        schema: &Schema,
        check: &[u32],
    ) -> Result<Vec<u32>, StoreError> {
        if let Some(c) = self.full.as_const() {
            return Ok(if c { check.to_vec() } else { Vec::new() });
        }
        let sel = sel(g, check);
        let mut fields = Vec::with_capacity(self.columns.len());
        let mut columns = Vec::with_capacity(self.columns.len());
        for &i in &self.columns {
            columns.push(reader.column(g, schema, i, sel)?);
            fields.push(schema.fields[i].clone());
        }
        let projected = Batch {
            schema: Schema::new(schema.name.clone(), fields),
            rows: check.len() as u32,
            columns,
        };
        Ok(filter(&self.projected, &projected)
            .into_iter()
            .map(|j| check[j as usize])
            .collect())
    }
}

fn columns_of(r: &Resolved, out: &mut Vec<usize>) {
    match r {
        Resolved::True | Resolved::False => {}
        Resolved::And(xs) | Resolved::Or(xs) => xs.iter().for_each(|x| columns_of(x, out)),
        Resolved::Not(x) => columns_of(x, out),
        Resolved::Cmp(c) => out.push(c.column),
    }
}

/// `r` with column numbers renumbered to positions in `columns` (sorted).
fn renumber(r: &Resolved, columns: &[usize]) -> Resolved {
    match r {
        Resolved::True => Resolved::True,
        Resolved::False => Resolved::False,
        Resolved::And(xs) => Resolved::And(xs.iter().map(|x| renumber(x, columns)).collect()),
        Resolved::Or(xs) => Resolved::Or(xs.iter().map(|x| renumber(x, columns)).collect()),
        Resolved::Not(x) => Resolved::Not(Box::new(renumber(x, columns))),
        Resolved::Cmp(c) => {
            let mut c = c.clone();
            c.column = columns
                .binary_search(&c.column)
                .expect("columns_of collected every column");
            Resolved::Cmp(c)
        }
    }
}

/// Reads units of one open data file.
struct Reader<'a> {
    path: PathBuf,
    file: &'a File,
    size: u64,
    /// The frame last read.
    frame: Vec<u8>,
    dctx: &'a mut Dctx,
    /// The partition's dictionary (version 4; empty: none).
    dict: &'a [u8],
    /// Decompressed chunk or group, reused so they do not each fault in fresh pages.
    buf: Vec<u8>,
    /// The offset of the version-3 group whose payload `buf` holds, and where
    /// each of its columns lies in it (start, length, decode memory claim).
    group_at: Option<u64>,
    columns: Vec<(usize, usize, u64)>,
}

impl Reader<'_> {
    fn batch_v1(&mut self, fr: &FrameInfo) -> Result<(Batch, usize), StoreError> {
        read_frame_at(
            &self.path,
            self.file,
            self.size,
            &mut self.frame,
            fr.offset,
            None,
        )?;
        read_batch(&self.path, &self.frame, fr)
    }

    /// The rows `sel` picks of column `i` of row group `g`, decoded and validated.
    fn column(
        &mut self,
        g: Group<'_>,
        schema: &Schema,
        i: usize,
        sel: Sel<'_>,
    ) -> Result<Column, StoreError> {
        match g {
            Group::V2(g) => self.column_v2(g, schema, i, sel),
            Group::V3(g) => self.column_v3(&g, schema, i, sel),
        }
    }

    /// Reads the frame of `len` bytes at `offset` and leaves its body in `buf`,
    /// decompressed when its codec says so: codec, encoded length, then (with
    /// `with_mem`, version-2 chunks) the decode memory claim, which is returned.
    /// `kind` and `what` name the frame in errors.
    fn unpack(
        &mut self,
        offset: u64,
        len: u32,
        with_mem: bool,
        kind: &str,
        what: &str,
    ) -> Result<u64, StoreError> {
        let corrupt = |e: String| StoreError::corrupt(&self.path, format!("{what}: {e}"));
        read_frame_at(
            &self.path,
            self.file,
            self.size,
            &mut self.frame,
            offset,
            Some(len),
        )?;
        let payload = durable::read_frame(&self.path, &self.frame, 0)?;
        let mut d = Decoder::new(payload, 0).map_err(&corrupt)?;
        let codec = d.read_u8().map_err(&corrupt)?;
        let raw_len = d.read_varint().map_err(&corrupt)?;
        let mem = if with_mem {
            d.read_varint().map_err(&corrupt)?
        } else {
            0
        };
        if raw_len > MAX_CHUNK_MEM {
            return Err(corrupt(format!(
                "{kind} claims {raw_len} encoded bytes, more than the limit of {MAX_CHUNK_MEM}"
            )));
        }
        let body = d.rest();
        self.buf.clear();
        match codec {
            RAW => self.buf.extend_from_slice(body),
            ZSTD | ZSTD_DICT => {
                self.buf.reserve(raw_len as usize);
                let zstd_err = |c| corrupt(format!("zstd: {}", zstd::zstd_safe::get_error_name(c)));
                if codec == ZSTD {
                    // Explicitly without the dictionary the context holds.
                    self.dctx
                        .ctx
                        .decompress_using_dict(&mut self.buf, body, &[])
                        .map_err(zstd_err)?;
                } else if self.dict.is_empty() {
                    return Err(corrupt(format!(
                        "{kind} is compressed with a dictionary the partition does not have"
                    )));
                } else {
                    // The fetch loaded the partition's dictionary.
                    self.dctx
                        .ctx
                        .decompress(&mut self.buf, body)
                        .map_err(zstd_err)?;
                }
            }
            c => return Err(corrupt(format!("unknown {kind} codec {c}"))),
        }
        if self.buf.len() as u64 != raw_len {
            return Err(corrupt(format!(
                "{kind} decodes to {} bytes, claims {raw_len}",
                self.buf.len()
            )));
        }
        Ok(mem)
    }

    /// Decompresses version-3 group `g` into `buf` (unless it is there already)
    /// and reads its column table.
    fn load_group(&mut self, g: &GroupInfoV3, fields: usize) -> Result<(), StoreError> {
        if self.group_at == Some(g.offset) {
            return Ok(());
        }
        self.group_at = None;
        let what = format!("row group at row {}", g.first_row);
        self.unpack(g.offset, g.len, false, "group", &what)?;
        let corrupt = |e: String| StoreError::corrupt(&self.path, format!("{what}: {e}"));
        // The column table: per column its encoded length and decode memory.
        let mut d = Decoder::new(&self.buf, 0).map_err(&corrupt)?;
        let mut lens = Vec::with_capacity(fields);
        for _ in 0..fields {
            let len = d.read_varint().map_err(&corrupt)?;
            let mem = d.read_varint().map_err(&corrupt)?;
            if mem > MAX_CHUNK_MEM {
                return Err(corrupt(format!(
                    "a column claims {mem} bytes of memory, more than the limit of {MAX_CHUNK_MEM}"
                )));
            }
            lens.push((len, mem));
        }
        let mut at = self.buf.len() - d.rest().len();
        self.columns.clear();
        for (len, mem) in lens {
            let end = (at as u64)
                .checked_add(len)
                .filter(|e| *e <= self.buf.len() as u64)
                .ok_or_else(|| corrupt("column table overruns the group".into()))?
                as usize;
            self.columns.push((at, end - at, mem));
            at = end;
        }
        if at != self.buf.len() {
            return Err(corrupt("trailing bytes after the columns".into()));
        }
        self.group_at = Some(g.offset);
        Ok(())
    }

    fn column_v3(
        &mut self,
        g: &GroupInfoV3,
        schema: &Schema,
        i: usize,
        sel: Sel<'_>,
    ) -> Result<Column, StoreError> {
        self.load_group(g, schema.fields.len())?;
        let field = &schema.fields[i];
        let corrupt = |e: String| {
            StoreError::corrupt(
                &self.path,
                format!(
                    "row group at row {}, field {}: {e}",
                    g.first_row, field.name
                ),
            )
        };
        let (at, len, mem) = self.columns[i];
        let mut d = Decoder::new(&self.buf[at..at + len], mem).map_err(&corrupt)?;
        let col = d.column_sel(&field.ty, sel).map_err(&corrupt)?;
        if !d.finished() {
            return Err(corrupt("trailing bytes after the column".into()));
        }
        col.validate(&field.ty, sel.len()).map_err(&corrupt)?;
        Ok(col)
    }

    fn column_v2(
        &mut self,
        g: &GroupInfo,
        schema: &Schema,
        i: usize,
        sel: Sel<'_>,
    ) -> Result<Column, StoreError> {
        self.group_at = None;
        let field = &schema.fields[i];
        let ch = &g.chunks[i];
        let what = format!("row group at row {}, field {}", g.first_row, field.name);
        let mem = self.unpack(ch.offset, ch.len, true, "chunk", &what)?;
        let corrupt = |e: String| StoreError::corrupt(&self.path, format!("{what}: {e}"));
        let raw = &self.buf;
        let mut d = Decoder::new(raw, mem).map_err(&corrupt)?;
        let col = d.column_sel(&field.ty, sel).map_err(&corrupt)?;
        if !d.finished() {
            return Err(corrupt("trailing bytes after the column".into()));
        }
        col.validate(&field.ty, sel.len()).map_err(&corrupt)?;
        Ok(col)
    }
}

/// Why a version-3 group could not be written.
enum GroupError {
    Zstd(std::io::Error),
    TooLarge(String),
}

/// Appends rows `range` of `batch` as one version-3 or -4 group frame to `out`;
/// returns the frame's length. The frame's payload: codec, encoded length, then
/// (compressed with `cctx` and tagged `codec` unless that does not pay) a table
/// of each column's encoded length and decode memory, followed by the columns.
fn encode_group(
    enc: &mut Encoder,
    (cctx, codec): (&mut zstd::bulk::Compressor<'static>, u8),
    group: &mut Vec<u8>,
    out: &mut Vec<u8>,
    batch: &Batch,
    range: std::ops::Range<usize>,
) -> Result<u32, GroupError> {
    let mut table = Vec::with_capacity(batch.columns.len() * 4);
    group_payload(enc, group, &mut table, batch, range)?;
    let raw_len = table.len();
    let compressed = cctx.compress(&table).map_err(GroupError::Zstd)?;
    let zstd = compressed.len() < raw_len;
    let mut payload = Vec::with_capacity(compressed.len().min(raw_len) + 12);
    payload.push(if zstd { codec } else { RAW });
    put_varint(&mut payload, raw_len as u64);
    payload.extend_from_slice(if zstd { &compressed } else { &table });
    let frame = durable::frame(&payload);
    out.extend_from_slice(&frame);
    Ok(frame.len() as u32)
}

/// The uncompressed payload of a group frame of rows `range` of `batch`, in
/// `table`: each column's encoded length and decode memory, then the columns
/// (`group` is scratch).
fn group_payload(
    enc: &mut Encoder,
    group: &mut Vec<u8>,
    table: &mut Vec<u8>,
    batch: &Batch,
    range: std::ops::Range<usize>,
) -> Result<(), GroupError> {
    table.clear();
    group.clear();
    for (c, f) in batch.columns.iter().zip(&batch.schema.fields) {
        enc.clear();
        enc.column(c, range.clone());
        let raw_len = enc.out.len();
        if enc.mem > MAX_CHUNK_MEM || raw_len as u64 > MAX_CHUNK_MEM {
            return Err(GroupError::TooLarge(format!(
                "field {} of rows {}..{} takes {} bytes, more than the {MAX_CHUNK_MEM} one column chunk may hold",
                f.name,
                range.start,
                range.end,
                enc.mem.max(raw_len as u64)
            )));
        }
        put_varint(table, raw_len as u64);
        put_varint(table, enc.mem);
        group.extend_from_slice(&enc.out);
    }
    let raw_len = table.len() + group.len();
    if raw_len as u64 > MAX_CHUNK_MEM {
        return Err(GroupError::TooLarge(format!(
            "rows {}..{} take {raw_len} encoded bytes, more than the {MAX_CHUNK_MEM} one row group may hold",
            range.start, range.end
        )));
    }
    table.extend_from_slice(group);
    Ok(())
}

/// A partition's dictionary, trained on group payloads spread over `batch`
/// (its first), and a compressor holding it; empty and `None` when the batch
/// is too small to train on or zstd finds nothing worth a dictionary.
fn train_dict(
    enc: &mut Encoder,
    batch: &Batch,
    group_rows: usize,
) -> std::io::Result<(Vec<u8>, Option<zstd::bulk::Compressor<'static>>)> {
    let rows = batch.rows as usize;
    let groups = rows.div_ceil(group_rows);
    let (mut scratch, mut samples) = (Vec::new(), Vec::<Vec<u8>>::new());
    let (mut total, mut step, mut g) = (0usize, 1usize, 0usize);
    while g < groups && total < DICT_SAMPLES {
        let range = g * group_rows..((g + 1) * group_rows).min(rows);
        let mut p = Vec::new();
        // A group too large to store is refused by the writer; here it is no sample.
        if group_payload(enc, &mut scratch, &mut p, batch, range).is_ok() {
            if samples.is_empty() {
                // Spread the samples over the whole batch.
                step = (groups * p.len() / DICT_SAMPLES).max(1);
            }
            total += p.len();
            samples.push(p);
        }
        g += step;
    }
    if total < DICT_MIN_SAMPLES {
        return Ok((Vec::new(), None));
    }
    match zstd::dict::from_samples(&samples, DICT_BYTES) {
        Ok(dict) => {
            let cctx = zstd::bulk::Compressor::with_dictionary(ZSTD_LEVEL, &dict)?;
            Ok((dict, Some(cctx)))
        }
        Err(e) => {
            tracing::debug!(error = %e, samples = samples.len(), "no compression dictionary for a partition");
            Ok((Vec::new(), None))
        }
    }
}

/// Structural checks of a version-3 table before any of it is used: whole
/// records, then what every columnar table must hold ([`check_groups`]).
fn check_meta_v3(m: &MetaV3) -> Result<(), String> {
    if !m.groups.len().is_multiple_of(GROUP_RECORD) {
        return Err(format!(
            "row group table of {} bytes is no whole number of {GROUP_RECORD}-byte records",
            m.groups.len()
        ));
    }
    if m.version >= 4 {
        // Pages are checked when read.
        return Ok(());
    }
    check_groups(
        &m.schemas,
        m.rows,
        0,
        (0..m.group_count()).map(|i| {
            let g = m.group(i);
            (g.first_row, g.rows, g.schema)
        }),
    )
}

/// Structural checks of a version-2 table before any of it is used: what
/// every columnar table must hold ([`check_groups`]), and one chunk per field.
fn check_meta(m: &ArchiveMetaV2) -> Result<(), String> {
    check_groups(
        &m.schemas,
        m.rows,
        0,
        m.groups.iter().map(|g| (g.first_row, g.rows, g.schema)),
    )?;
    for g in &m.groups {
        let fields = m.schemas[g.schema as usize].fields.len();
        if g.chunks.len() != fields {
            return Err(format!(
                "row group at row {} has {} columns, its schema {fields}",
                g.first_row,
                g.chunks.len(),
            ));
        }
    }
    Ok(())
}

/// What a columnar table of a partition of `rows` rows must hold: schemas that
/// are not empty, and groups (first row, rows, schema index) in order without
/// overlap, inside the partition, of at most [`MAX_GROUP_ROWS`] rows and of a
/// known schema.
fn check_groups(
    schemas: &[Schema],
    rows: u32,
    after: u32,
    groups: impl Iterator<Item = (u32, u32, u32)>,
) -> Result<(), String> {
    for s in schemas {
        if s.name.is_empty() || s.fields.is_empty() {
            return Err(format!("schema {:?} is empty", s.name));
        }
    }
    let mut next = after;
    for (first_row, count, schema) in groups {
        let end = first_row
            .checked_add(count)
            .filter(|e| *e <= rows && first_row >= next && count > 0)
            .ok_or_else(|| {
                format!(
                    "row group at row {first_row} ({count} rows) overlaps another or leaves the partition's {rows} rows"
                )
            })?;
        if count > MAX_GROUP_ROWS {
            return Err(format!("row group at row {first_row} claims {count} rows"));
        }
        if schema as usize >= schemas.len() {
            return Err(format!(
                "row group at row {first_row} names schema {schema}"
            ));
        }
        next = end;
    }
    Ok(())
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads the frame at `offset` of a data file of `size` bytes into `buf`: `len`
/// bytes with the frame header when the table says, else as long as the frame's
/// header says. The caller verifies it with [`durable::read_frame`] on `buf`.
fn read_frame_at(
    path: &Path,
    file: &File,
    size: u64,
    buf: &mut Vec<u8>,
    offset: u64,
    len: Option<u32>,
) -> Result<(), StoreError> {
    use std::os::unix::fs::FileExt;
    let truncated = || StoreError::corrupt(path, format!("frame at {offset} truncated"));
    let len = match len {
        Some(l) => l as u64,
        None => {
            let mut head = [0u8; 12];
            if offset.checked_add(12).is_none_or(|e| e > size) {
                return Err(StoreError::corrupt(
                    path,
                    format!("frame header at {offset} past the end"),
                ));
            }
            file.read_exact_at(&mut head, offset)
                .map_err(|e| StoreError::io(path, e))?;
            12 + u32::from_le_bytes(head[..4].try_into().unwrap()) as u64
        }
    };
    // Bounded by the file's size, so a hostile table cannot make this allocate
    // more than the file holds.
    if len < 12 || offset.checked_add(len).is_none_or(|e| e > size) {
        return Err(truncated());
    }
    buf.resize(len as usize, 0);
    file.read_exact_at(buf, offset)
        .map_err(|e| StoreError::io(path, e))?;
    let framed = 12 + u32::from_le_bytes(buf[..4].try_into().unwrap()) as u64;
    if framed != len {
        return Err(StoreError::corrupt(
            path,
            format!("frame at {offset} is {framed} bytes, the table says {len}"),
        ));
    }
    Ok(())
}

/// A version-1 batch from its frame, read into `frame`.
fn read_batch(path: &Path, frame: &[u8], fr: &FrameInfo) -> Result<(Batch, usize), StoreError> {
    let payload = durable::read_frame(path, frame, 0)?;
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

#[cfg(test)]
mod tests {
    use super::super::encode::testgen::{gen_rows, Rng};
    use super::*;
    use crate::data::{Field, Type};
    use crate::query::parse;

    #[test]
    fn a_dictionary_zstd_refuses_is_an_error_and_the_decompressor_stays_usable() {
        let mut d = Dctx::try_create().unwrap();
        let content: Vec<u8> = (0..4096u32).flat_map(|i| (i % 251).to_le_bytes()).collect();
        let data: Vec<u8> = content
            .iter()
            .rev()
            .copied()
            .chain(content.clone())
            .collect();
        let with_dict = zstd::bulk::Compressor::with_dictionary(1, &content)
            .unwrap()
            .compress(&data)
            .unwrap();
        let plain = zstd::bulk::compress(&data, 1).unwrap();
        let decode = |d: &mut Dctx, z: &[u8], dict: bool| {
            let mut out = Vec::with_capacity(data.len());
            match dict {
                true => d.ctx.decompress(&mut out, z).map(|_| out),
                false => d.ctx.decompress_using_dict(&mut out, z, &[]).map(|_| out),
            }
        };
        // A zstd dictionary's magic, an id, then entropy tables that are garbage.
        let mut bad = vec![0x37, 0xa4, 0x30, 0xec, 1, 0, 0, 0];
        bad.resize(208, 0xff);
        let e = d.use_dict(&bad).unwrap_err();
        assert!(
            e.contains("compression dictionary (208 bytes) is invalid"),
            "{e}"
        );
        assert!(d.dict.is_empty());
        assert_eq!(decode(&mut d, &plain, false).unwrap(), data);
        d.use_dict(&content).unwrap();
        assert_eq!(decode(&mut d, &with_dict, true).unwrap(), data);
        // Loaded once, used again; a frame without the dictionary ignores it.
        d.use_dict(&content).unwrap();
        assert_eq!(decode(&mut d, &with_dict, true).unwrap(), data);
        assert_eq!(decode(&mut d, &plain, false).unwrap(), data);
        // The same refusal after a good dictionary leaves none loaded.
        assert!(d.use_dict(&bad).is_err());
        assert!(d.dict.is_empty());
        assert!(decode(&mut d, &with_dict, true).is_err());
    }

    #[test]
    fn gallop_finds_the_end_of_the_prefix_from_any_start() {
        for n in 0..40usize {
            for answer in 0..=n {
                for at in 0..=n + 2 {
                    let probes = std::cell::Cell::new(0);
                    let got = gallop(n, at, |i| {
                        assert!(i < n, "probe {i} out of 0..{n}");
                        probes.set(probes.get() + 1);
                        Ok(i < answer)
                    })
                    .unwrap();
                    assert_eq!(got, answer, "n {n} at {at}");
                    if at == answer && answer < n {
                        // A right guess costs at most its two neighbours.
                        assert!(probes.get() <= 2, "n {n} at {at}: {} probes", probes.get());
                    }
                }
            }
        }
    }

    fn tmpdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("vast-archive-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    /// Commit state in which `ids` are committed (others are swept at open).
    fn committed(ids: &[Uuid]) -> crate::commit::State {
        let mut s = crate::commit::State::default();
        s.committed.extend(ids.iter().copied());
        s
    }

    fn schema() -> Schema {
        Schema::new(
            "test.conn",
            vec![
                Field::new("ts", Type::timestamp()),
                Field::new("host", Type::Address),
                Field::new("port", Type::port()),
                Field::new("name", Type::String),
                Field::new("tags", Type::set(Type::String)),
                Field::new("bytes", Type::Count),
            ],
        )
    }

    /// Batches of sizes `sizes`, numbered from partition row 0 on.
    fn batches(r: &mut Rng, sizes: &[u64]) -> Vec<(u32, Batch)> {
        let s = schema();
        let mut at = 0;
        sizes
            .iter()
            .map(|n| {
                let b = gen_rows(r, &s, *n);
                let first = at;
                at += *n as u32;
                (first, b)
            })
            .collect()
    }

    fn rows_text(b: &Batch, rows: &[u32]) -> Vec<String> {
        rows.iter()
            .map(|r| format!("{:?}", b.row(*r as usize)))
            .collect()
    }

    /// What a fetch must return, from the whole batches.
    fn reference(
        bs: &[(u32, Batch)],
        sure: &RoaringBitmap,
        maybe: &RoaringBitmap,
        expr: &Expr,
        limit: Option<u64>,
    ) -> Vec<String> {
        let mut out = Vec::new();
        for (first, b) in bs {
            let matching = filter(&resolve(expr, &b.schema), b);
            for r in 0..b.rows {
                let p = first + r;
                if sure.contains(p) || (maybe.contains(p) && matching.binary_search(&r).is_ok()) {
                    out.extend(rows_text(b, &[r]));
                }
            }
        }
        if let Some(l) = limit {
            out.truncate(l as usize);
        }
        out
    }

    /// Every page of a fetch, following `resume` as the cluster query does.
    #[allow(clippy::too_many_arguments)]
    fn fetch_all(
        store: &mut ArchiveStore,
        id: Uuid,
        sure: &RoaringBitmap,
        maybe: &RoaringBitmap,
        expr: &Expr,
        limit: Option<u64>,
        max_bytes: usize,
    ) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        let mut from = 0;
        loop {
            let left = limit.map(|l| l - out.len() as u64);
            if left == Some(0) {
                return Ok(out);
            }
            let f = store.fetch(id, sure, maybe, expr, left, from, max_bytes)?;
            for s in &f.selections {
                assert!(!s.rows.is_empty());
                assert!(s.rows.windows(2).all(|w| w[0] < w[1]));
                out.extend(rows_text(&s.batch, &s.rows));
            }
            match f.resume {
                Some(r) => {
                    assert!(r > from, "page did not advance");
                    from = r;
                }
                None => return Ok(out),
            }
        }
    }

    /// A partition as version-2 builds wrote it (the store keeps that writer
    /// for these tests); returns the store, still writing version 2.
    fn write_v2(dir: &Path, id: Uuid, bs: &[(u32, Batch)]) -> ArchiveStore {
        let mut s = ArchiveStore::open(dir, &Default::default()).unwrap();
        s.version = 2;
        for (first, b) in bs {
            s.append(id, *first, b).unwrap();
        }
        s.seal(id).unwrap();
        s
    }

    /// A partition in the format this build writes.
    fn write_current(dir: &Path, id: Uuid, bs: &[(u32, Batch)]) -> ArchiveStore {
        let mut s = ArchiveStore::open(dir, &Default::default()).unwrap();
        for (first, b) in bs {
            s.append(id, *first, b).unwrap();
        }
        s.seal(id).unwrap();
        s
    }

    /// A partition as version-1 builds wrote it: zstd-compressed rkyv batches.
    fn write_v1(dir: &Path, id: Uuid, bs: &[(u32, Batch)]) {
        let mut data = Vec::new();
        let mut frames = Vec::new();
        let mut rows = 0;
        for (first, b) in bs {
            let raw = b.to_bytes();
            let mut c = (raw.len() as u32).to_le_bytes().to_vec();
            c.extend(zstd::bulk::compress(&raw, 1).unwrap());
            frames.push(FrameInfo {
                offset: data.len() as u64,
                first_row: *first,
                rows: b.rows,
            });
            data.extend(durable::frame(&c));
            rows = first + b.rows;
        }
        fs::write(data_path(dir, id), data).unwrap();
        let meta = ArchiveMeta {
            id: *id.as_bytes(),
            rows,
            frames,
        };
        let bytes = rkyv::to_bytes::<rkyv::rancor::Error>(&meta).unwrap();
        durable::write_file_version(&meta_path(dir, id), &bytes, 1).unwrap();
    }

    fn random_bitmap(r: &mut Rng, rows: u32, percent: u64) -> RoaringBitmap {
        (0..rows).filter(|_| r.chance(percent)).collect()
    }

    #[test]
    fn fetch_agrees_with_a_full_scan_in_both_formats_at_any_page_size() {
        let dir = tmpdir("fetch");
        let mut r = Rng(99);
        let bs = batches(&mut r, &[5000, 9000, 1, 300]);
        let rows = 14301;
        let (v1, v2, v3, v4) = (
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
        );
        // (Opening a store sweeps what is not committed: write with one store.)
        let mut store = write_v2(&dir, v2, &bs);
        for (version, id) in [(3, v3), (durable::FORMAT_VERSION, v4)] {
            store.version = version;
            for (first, b) in &bs {
                store.append(id, *first, b).unwrap();
            }
            store.seal(id).unwrap();
        }
        write_v1(&dir, v1, &bs);
        // Version 4 compresses its groups with the partition's dictionary.
        let m4 = ArchiveMetaV4::read(&meta_path(&dir, v4));
        assert!(
            m4.dict.len() > 1000,
            "dictionary of {} bytes",
            m4.dict.len()
        );
        assert!(store.reader(v4).unwrap().meta_has_dict());
        // A fresh store reads all four from disk.
        let mut fresh = ArchiveStore::open(&dir, &committed(&[v1, v2, v3, v4])).unwrap();
        let exprs = [
            "port > 30000 || name == \"a\"",
            "bytes < 100000 && ! (:addr in 10.0.0.0/8)",
            "#type == \"test.conn\"",
            "tags ni \"a\"",
        ];
        for (i, e) in exprs.iter().enumerate() {
            let expr = parse(e).unwrap();
            for (density, limit, max_bytes) in [
                (1, None, usize::MAX),
                (30, Some(777), usize::MAX),
                (5, None, 20_000),
                (100, Some(50), 1),
                (50, None, 300_000),
            ] {
                let sure = random_bitmap(&mut r, rows, density / 2);
                let maybe = random_bitmap(&mut r, rows, density);
                let want = reference(&bs, &sure, &maybe, &expr, limit);
                for id in [v1, v2, v3, v4] {
                    for s in [&mut store, &mut fresh] {
                        let got = fetch_all(s, id, &sure, &maybe, &expr, limit, max_bytes).unwrap();
                        assert_eq!(got.len(), want.len(), "expr {i} {e}");
                        assert_eq!(got, want, "expr {e}");
                    }
                }
            }
        }
        // One wanted row is decoded from its row group, not its whole batch.
        let one: RoaringBitmap = [7000u32].into_iter().collect();
        for id in [v2, v3, v4] {
            let f = store
                .fetch(
                    id,
                    &one,
                    &RoaringBitmap::new(),
                    &parse("port > 0").unwrap(),
                    None,
                    0,
                    usize::MAX,
                )
                .unwrap();
            assert_eq!(f.selections.len(), 1);
            assert_eq!(f.selections[0].batch.rows, 1);
            assert_eq!(
                rows_text(&f.selections[0].batch, &f.selections[0].rows),
                rows_text(&bs[1].1, &[2000])
            );
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    /// Row `row`'s group and column `col`'s chunk in partition `id`.
    fn chunk(store: &mut ArchiveStore, id: Uuid, row: u32, col: usize) -> ChunkInfo {
        let meta = store.meta(id).unwrap();
        let Meta::V2(m) = &*meta else {
            panic!("version 2 expected")
        };
        let g = m
            .groups
            .iter()
            .find(|g| g.first_row <= row && row < g.first_row + g.rows)
            .unwrap();
        g.chunks[col].clone()
    }

    #[test]
    fn the_exact_check_decodes_only_the_columns_it_reads() {
        let dir = tmpdir("project");
        // A batch whose row 5000 has a port (the generator may draw all nulls).
        let (bs, port) = (1..)
            .find_map(|seed| {
                let bs = batches(&mut Rng(seed), &[10_000]);
                match bs[0].1.columns[2].value(5000, &Type::Count) {
                    crate::data::Value::Count(p) => Some((bs, p)),
                    _ => None,
                }
            })
            .unwrap();
        let id = Uuid::new_v4();
        let mut store = write_v2(&dir, id, &bs);
        // Corrupt the `name` column (field 3) of the group holding row 5000.
        let ch = chunk(&mut store, id, 5000, 3);
        let path = data_path(&dir, id);
        let mut data = fs::read(&path).unwrap();
        data[ch.offset as usize + 12] ^= 0x55;
        fs::write(&path, &data).unwrap();
        let mut store = ArchiveStore::open(&dir, &committed(&[id])).unwrap();
        let maybe: RoaringBitmap = [5000u32].into_iter().collect();
        let (miss, hit) = (format!("port == {}", port + 1), format!("port == {port}"));
        // No match: the corrupt column is never read.
        let f = store
            .fetch(
                id,
                &RoaringBitmap::new(),
                &maybe,
                &parse(&miss).unwrap(),
                None,
                0,
                usize::MAX,
            )
            .unwrap();
        assert!(f.selections.is_empty());
        // A match needs the whole row, and the corruption is reported by name.
        let e = store
            .fetch(
                id,
                &RoaringBitmap::new(),
                &maybe,
                &parse(&hit).unwrap(),
                None,
                0,
                usize::MAX,
            )
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("checksum mismatch") && e.contains(&path.display().to_string()),
            "{e}"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    /// A sealed partition on disk to damage, and what a fetch of all its rows
    /// makes of it.
    struct Damage {
        dir: PathBuf,
        id: Uuid,
        rows: u32,
        dpath: PathBuf,
        mpath: PathBuf,
        /// The data file as written.
        data: Vec<u8>,
    }

    impl Damage {
        fn new(dir: &Path, id: Uuid, rows: u32) -> Damage {
            let dpath = data_path(dir, id);
            Damage {
                dir: dir.to_path_buf(),
                id,
                rows,
                data: fs::read(&dpath).unwrap(),
                mpath: meta_path(dir, id),
                dpath,
            }
        }

        /// How many rows `store` fetches for every row (`port > 0`), or its error.
        fn fetch(&self, store: &mut ArchiveStore) -> Result<usize, String> {
            let all: RoaringBitmap = (0..self.rows).collect();
            store
                .fetch(
                    self.id,
                    &all,
                    &RoaringBitmap::new(),
                    &parse("port > 0").unwrap(),
                    None,
                    0,
                    usize::MAX,
                )
                .map(|f| f.selections.iter().map(|s| s.rows.len()).sum())
                .map_err(|e| e.to_string())
        }

        /// `fetch` on a store opened afresh, which reads the files again.
        fn fetch_fresh(&self) -> Result<usize, String> {
            self.fetch(&mut ArchiveStore::open(&self.dir, &committed(&[self.id])).unwrap())
        }

        /// A fresh fetch fails with an error containing `needle` and naming a file.
        fn expect_err(&self, what: &str, needle: &str) {
            let e = self.fetch_fresh().unwrap_err();
            assert!(
                e.contains(needle)
                    && (e.contains(&self.dpath.display().to_string())
                        || e.contains(&self.mpath.display().to_string())),
                "{what}: {e}"
            );
        }

        /// A flipped byte anywhere in the data file, and a truncated one, are
        /// errors. Leaves the data file truncated.
        fn flips_and_truncation(&self) {
            let data = &self.data;
            for at in [durable::HEADER + 3, data.len() / 2, data.len() - 1] {
                let mut d = data.clone();
                d[at] ^= 1;
                fs::write(&self.dpath, &d).unwrap();
                assert!(self.fetch_fresh().is_err(), "flip at {at}");
            }
            fs::write(&self.dpath, &data[..data.len() - 100]).unwrap();
            self.expect_err("truncated", "truncated");
        }
    }

    #[test]
    fn corrupt_and_hostile_files_are_errors_naming_the_file() {
        let dir = tmpdir("corrupt");
        let mut r = Rng(11);
        let bs = batches(&mut r, &[6000]);
        let id = Uuid::new_v4();
        let mut store = write_v2(&dir, id, &bs);
        store.version = durable::FORMAT_VERSION;
        let dmg = Damage::new(&dir, id, 6000);
        assert_eq!(dmg.fetch(&mut store), Ok(6000));
        let (dpath, mpath, data) = (&dmg.dpath, &dmg.mpath, &dmg.data);
        let meta_bytes = durable::read_file(mpath).unwrap();
        let good: ArchiveMetaV2 = crate::data::checked::from_bytes(&meta_bytes).unwrap();
        let expect_err = |what: &str, needle: &str| dmg.expect_err(what, needle);
        dmg.flips_and_truncation();
        // A data file of a newer format.
        let mut d = data.clone();
        d[6..8].copy_from_slice(b"07");
        fs::write(dpath, &d).unwrap();
        expect_err(
            "newer data",
            "on-disk format version 7, this build reads versions 1-4",
        );
        fs::write(dpath, data).unwrap();

        // A meta of a newer format.
        let mut m = fs::read(mpath).unwrap();
        m[6..8].copy_from_slice(b"09");
        fs::write(mpath, &m).unwrap();
        expect_err("newer meta", "on-disk format version 9");

        // Tables with valid checksums but hostile contents.
        let write_meta = |m: &ArchiveMetaV2| {
            let b = rkyv::to_bytes::<rkyv::rancor::Error>(m).unwrap();
            durable::write_file_version(mpath, &b, 2).unwrap();
        };
        let mut m = good.clone();
        m.groups[1].first_row = 10;
        write_meta(&m);
        expect_err("overlap", "overlaps");
        let mut m = good.clone();
        m.groups[0].rows = 70_000;
        m.rows = 80_000;
        write_meta(&m);
        expect_err("huge group", "claims");
        let mut m = good.clone();
        m.groups[0].chunks.pop();
        write_meta(&m);
        expect_err("missing column", "columns");
        let mut m = good.clone();
        m.groups[0].chunks[0].offset = data.len() as u64 + 5;
        write_meta(&m);
        expect_err("chunk past the end", "truncated");
        let mut m = good.clone();
        m.groups[0].chunks[0].len += 1;
        write_meta(&m);
        expect_err("chunk length", "the table says");
        let mut m = good.clone();
        m.groups[0].schema = 3;
        write_meta(&m);
        expect_err("schema index", "names schema");
        let mut m = good.clone();
        m.groups[0].chunks.swap(0, 1);
        write_meta(&m);
        expect_err("swapped columns", "does not match type");
        write_meta(&good);
        assert_eq!(dmg.fetch_fresh(), Ok(6000));

        // Chunks with valid checksums but hostile contents.
        let forge = |payload: &[u8]| {
            let mut d = data.clone();
            let frame = durable::frame(payload);
            let mut m = good.clone();
            m.groups[0].chunks[0] = ChunkInfo {
                offset: d.len() as u64,
                len: frame.len() as u32,
            };
            d.extend(frame);
            fs::write(dpath, &d).unwrap();
            write_meta(&m);
        };
        let mut p = vec![ZSTD];
        put_varint(&mut p, 1 << 40);
        put_varint(&mut p, 10);
        forge(&p);
        expect_err("huge encoded claim", "encoded bytes");
        let mut p = vec![RAW];
        put_varint(&mut p, 3);
        put_varint(&mut p, 1 << 40);
        p.extend([0, 0, 0]);
        forge(&p);
        expect_err("huge decoded claim", "limit");
        let mut p = vec![ZSTD];
        put_varint(&mut p, 100);
        put_varint(&mut p, 100);
        p.extend(zstd::bulk::compress(&[1u8; 5000], 1).unwrap());
        forge(&p);
        expect_err("zstd output beyond the claim", "zstd");
        let mut p = vec![RAW];
        put_varint(&mut p, 2);
        put_varint(&mut p, 8);
        p.extend([0, 99]);
        forge(&p);
        expect_err("bad tag", "storage tag");
        let mut p = vec![7];
        put_varint(&mut p, 0);
        put_varint(&mut p, 0);
        forge(&p);
        expect_err("bad codec", "codec");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn corrupt_and_hostile_version_4_files_are_errors_naming_the_file() {
        let dir = tmpdir("corrupt4");
        let mut r = Rng(12);
        let bs = batches(&mut r, &[1000]);
        let id = Uuid::new_v4();
        let mut store = write_current(&dir, id, &bs);
        let dmg = Damage::new(&dir, id, 1000);
        assert_eq!(dmg.fetch(&mut store), Ok(1000));
        let (dpath, mpath, data) = (&dmg.dpath, &dmg.mpath, &dmg.data);
        let good = ArchiveMetaV4::read(mpath);
        assert!(!good.dict.is_empty());
        let expect_err = |what: &str, needle: &str| dmg.expect_err(what, needle);
        dmg.flips_and_truncation();
        let mut d = data.clone();
        d[..durable::HEADER].copy_from_slice(&durable::stream_header_version(DATA_KIND, 2));
        fs::write(dpath, &d).unwrap();
        expect_err(
            "data of another version",
            "format version 2 under a version-4 meta",
        );
        fs::write(dpath, data).unwrap();

        // Tables with valid checksums but hostile records.
        let write_meta = |m: &ArchiveMetaV4| durable::write_file(mpath, &m.to_bytes()).unwrap();
        let with_group = |i: usize, f: &dyn Fn(&mut GroupInfoV3)| {
            let mut m = good.clone();
            let mut g = GroupInfoV3::get(&m.groups, i);
            f(&mut g);
            let mut rec = Vec::new();
            g.put(&mut rec);
            m.groups[i * GROUP_RECORD..(i + 1) * GROUP_RECORD].copy_from_slice(&rec);
            m
        };
        write_meta(&with_group(1, &|g| g.first_row = 10));
        expect_err("overlap", "overlaps");
        let mut m = with_group(0, &|g| g.rows = 70_000);
        m.rows = 80_000;
        write_meta(&m);
        expect_err("huge group", "claims");
        write_meta(&with_group(0, &|g| g.schema = 3));
        expect_err("schema index", "names schema");
        write_meta(&with_group(0, &|g| g.offset = data.len() as u64 + 5));
        expect_err("group past the end", "truncated");
        write_meta(&with_group(0, &|g| g.len = u32::MAX));
        expect_err("huge length", "truncated");
        write_meta(&with_group(0, &|g| g.len -= 1));
        expect_err("group length", "the table says");
        let mut m = good.clone();
        m.groups.pop();
        write_meta(&m);
        expect_err("torn record", "whole number");
        // A flipped byte in a page of the table, or in its head, under a valid
        // file checksum: the page's (or the head's) own checksum catches it.
        let bytes = good.to_bytes();
        for (at, needle) in [
            (
                bytes.len() - good.groups.len() / 2,
                "checksum mismatch in page",
            ),
            (20, "checksum mismatch"),
        ] {
            let mut b = bytes.clone();
            b[at] ^= 0x10;
            durable::write_file(mpath, &b).unwrap();
            expect_err("flipped table byte", needle);
        }
        // A dictionary zstd cannot digest (its magic, then garbage tables).
        let mut m = good.clone();
        m.dict[8..].iter_mut().for_each(|b| *b = 0xff);
        write_meta(&m);
        expect_err("bad dictionary", "dictionary");
        let mut m = good.clone();
        m.dict.resize(MAX_DICT_BYTES + 1, 0);
        write_meta(&m);
        expect_err("huge dictionary", "limit");
        // Another valid dictionary: the frames do not decode.
        let mut m = good.clone();
        let other: Vec<Vec<u8>> = (0..200u32)
            .map(|i| format!("{i} other {}", i * 7919).repeat(20).into_bytes())
            .collect();
        m.dict = zstd::dict::from_samples(&other, 4096).unwrap();
        write_meta(&m);
        expect_err("another dictionary", "zstd");
        // No dictionary for frames compressed with one.
        let mut m = good.clone();
        m.dict.clear();
        write_meta(&m);
        expect_err("missing dictionary", "does not have");
        write_meta(&good);
        assert_eq!(dmg.fetch_fresh(), Ok(1000));

        // Group frames with valid checksums but hostile contents.
        let forge = |payload: &[u8]| {
            let mut d = data.clone();
            let frame = durable::frame(payload);
            let m = with_group(0, &|g| {
                g.offset = d.len() as u64;
                g.len = frame.len() as u32;
            });
            d.extend(frame);
            fs::write(dpath, &d).unwrap();
            write_meta(&m);
        };
        let mut p = vec![ZSTD];
        put_varint(&mut p, 1 << 40);
        forge(&p);
        expect_err("huge encoded claim", "encoded bytes");
        let mut p = vec![ZSTD];
        put_varint(&mut p, 100);
        p.extend(zstd::bulk::compress(&[1u8; 5000], 1).unwrap());
        forge(&p);
        expect_err("zstd output beyond the claim", "zstd");
        // A column table that claims more than the group holds.
        let mut body = Vec::new();
        for _ in 0..bs[0].1.columns.len() {
            put_varint(&mut body, 1000);
            put_varint(&mut body, 8);
        }
        let mut p = vec![RAW];
        put_varint(&mut p, body.len() as u64);
        p.extend(&body);
        forge(&p);
        expect_err("column table overrun", "overruns");
        // A column claiming absurd decode memory.
        let mut body = Vec::new();
        put_varint(&mut body, 0);
        put_varint(&mut body, 1 << 40);
        let mut p = vec![RAW];
        put_varint(&mut p, body.len() as u64);
        p.extend(&body);
        forge(&p);
        expect_err("huge memory claim", "limit");
        let mut p = vec![7];
        put_varint(&mut p, 0);
        forge(&p);
        expect_err("bad codec", "codec");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn sealed_partitions_are_never_rewritten_and_unacknowledged_data_is_swept() {
        let dir = tmpdir("seal");
        let mut r = Rng(3);
        let bs = batches(&mut r, &[100]);
        let (kept, lost) = (Uuid::new_v4(), Uuid::new_v4());
        let mut s = write_current(&dir, kept, &bs);
        let e = s.append(kept, 100, &bs[0].1).unwrap_err().to_string();
        assert!(e.contains("sealed"), "{e}");
        s.append(lost, 0, &bs[0].1).unwrap();
        let data = fs::read(data_path(&dir, kept)).unwrap();
        assert_eq!(&data[..8], b"VASTRS04");
        assert_eq!(&fs::read(meta_path(&dir, kept)).unwrap()[..8], b"VASTRS04");
        drop(s);
        let mut state = crate::commit::State::default();
        state.committed.insert(kept);
        let mut s = ArchiveStore::open(&dir, &state).unwrap();
        assert!(!data_path(&dir, lost).exists());
        assert!(s.is_sealed(kept));
        let e = s.append(kept, 0, &bs[0].1).unwrap_err().to_string();
        assert!(e.contains("never rewritten"), "{e}");
        assert_eq!(fs::read(data_path(&dir, kept)).unwrap(), data);
        let got = every_row(&mut s, kept, 100);
        assert_eq!(got, rows_text(&bs[0].1, &(0..100).collect::<Vec<_>>()));
        fs::remove_dir_all(&dir).unwrap();
    }

    /// Rows `0..rows` of partition `id`, as text.
    fn every_row(s: &mut ArchiveStore, id: Uuid, rows: u32) -> Vec<String> {
        let all: RoaringBitmap = (0..rows).collect();
        let expr = parse("port > 0").unwrap();
        fetch_all(s, id, &all, &RoaringBitmap::new(), &expr, None, usize::MAX).unwrap()
    }

    #[test]
    fn batches_out_of_row_order_are_refused() {
        let dir = tmpdir("order");
        let mut r = Rng(5);
        let bs = batches(&mut r, &[50, 50]);
        let id = Uuid::new_v4();
        let mut s = ArchiveStore::open(&dir, &Default::default()).unwrap();
        s.append(id, 0, &bs[0].1).unwrap();
        // The first batch again (a copy sent twice) and a gap are both refused,
        // and leave the partition as it was.
        for at in [0, 51] {
            let e = s.append(id, at, &bs[1].1).unwrap_err().to_string();
            assert!(
                e.contains("starts at row") && e.contains("holds 50 rows"),
                "{e}"
            );
        }
        s.append(id, 50, &bs[1].1).unwrap();
        s.seal(id).unwrap();
        let got = every_row(&mut s, id, 100);
        let mut want = rows_text(&bs[0].1, &(0..50).collect::<Vec<_>>());
        want.extend(rows_text(&bs[1].1, &(0..50).collect::<Vec<_>>()));
        assert_eq!(got, want);
        fs::remove_dir_all(&dir).unwrap();
    }

    /// The batches of the Zeek log named by `VAST_ARCHIVE_MEASURE`, for the
    /// measurements below; `None` (with a message) when unset.
    fn measured_log() -> Option<Vec<Batch>> {
        use crate::source::format::{make_reader, open_input, Format, ReaderOptions};
        let Ok(path) = std::env::var("VAST_ARCHIVE_MEASURE") else {
            eprintln!("set VAST_ARCHIVE_MEASURE to a Zeek log");
            return None;
        };
        let input = open_input(Some(Path::new(&path))).unwrap();
        let mut reader = make_reader(Format::Zeek, input, &ReaderOptions::default()).unwrap();
        let mut bs = Vec::new();
        while let Some(b) = reader.read(65536).unwrap() {
            bs.extend(b);
        }
        Some(bs)
    }

    /// An encoded group: its bytes, each column's length and decode memory, rows.
    type EncodedGroup = (Vec<u8>, Vec<(usize, u64)>, usize);

    /// Batch `b` as groups of `group` rows, all columns of a group encoded one
    /// after the other (a version-3 or -4 group frame's payload, less its table).
    fn encode_groups(
        enc: &mut super::super::encode::Encoder,
        b: &Batch,
        group: usize,
    ) -> Vec<EncodedGroup> {
        let mut out = Vec::new();
        let mut at = 0;
        while at < b.rows as usize {
            let to = (at + group).min(b.rows as usize);
            let mut all = Vec::new();
            let mut lens = Vec::new();
            for c in &b.columns {
                enc.clear();
                enc.column(c, at..to);
                all.extend_from_slice(&enc.out);
                lens.push((enc.out.len(), enc.mem));
            }
            out.push((all, lens, to - at));
            at = to;
        }
        out
    }

    /// Decodes the middle row of every column of an encoded group, as a fetch of
    /// one row does.
    fn decode_middle_row(raw: &[u8], lens: &[(usize, u64)], schema: &Schema, n: usize) {
        use super::super::encode::{Decoder, Sel};
        let mid = [(n / 2) as u32];
        let mut off = 0;
        for ((len, mem), f) in lens.iter().zip(&schema.fields) {
            Decoder::new(&raw[off..off + len], *mem)
                .unwrap()
                .column_sel(&f.ty, Sel::Rows(n, &mid))
                .unwrap();
            off += len;
        }
    }

    /// Not a check but the measurement behind `GROUP_ROWS`, `ZSTD_LEVEL` and the
    /// encodings; it still fails if any chunk does not decode to its rows. Run as
    /// `VAST_ARCHIVE_MEASURE=/work/bench/conn-2M.log cargo test --release -p vast-node
    /// --lib measure_ -- --ignored --nocapture`.
    #[test]
    #[ignore = "measurement on a real log; needs VAST_ARCHIVE_MEASURE"]
    fn measure_encodings_on_a_log() {
        use super::super::encode::{Decoder, Encoder, Knobs};
        use std::time::Instant;
        let Some(bs) = measured_log() else {
            return;
        };
        let rows: u64 = bs.iter().map(|b| b.rows as u64).sum();
        let t = Instant::now();
        let v1: usize = bs
            .iter()
            .map(|b| zstd::bulk::compress(&b.to_bytes(), 1).unwrap().len())
            .sum();
        println!(
            "version 1 (rkyv + zstd 1 per batch): {v1} bytes, {:.1} B/row, {:.2} s",
            v1 as f64 / rows as f64,
            t.elapsed().as_secs_f64()
        );
        let all = Knobs::default();
        let mut configs = vec![];
        for g in [128, 256, 512, 1024, 2048, 4096, 8192, 16384, 65536] {
            configs.push((format!("group {g:>5} zstd 1"), g, 1, all));
        }
        for l in [-1, 2, 3, 6] {
            configs.push((format!("group  4096 zstd {l}"), 4096, l, all));
        }
        for (name, k) in [
            (
                "no string dict",
                Knobs {
                    str_dict: false,
                    ..all
                },
            ),
            (
                "no addr dict",
                Knobs {
                    addr_dict: false,
                    ..all
                },
            ),
            (
                "no delta",
                Knobs {
                    delta: false,
                    ..all
                },
            ),
            (
                "dict by first use",
                Knobs {
                    dict_by_frequency: false,
                    ..all
                },
            ),
        ] {
            configs.push((format!("group  4096 zstd 1 {name}"), 4096, 1, k));
        }
        let schema = &bs[0].schema;
        for (label, group, level, knobs) in configs {
            let mut enc = Encoder::new(knobs);
            let mut cctx = zstd::bulk::Compressor::new(level).unwrap();
            let mut dctx = zstd::bulk::Decompressor::new().unwrap();
            let mut per_col = vec![0usize; schema.fields.len()];
            let (mut t_enc, mut t_dec, mut t_one) = (0f64, 0f64, 0f64);
            for b in &bs {
                let mut at = 0;
                while at < b.rows as usize {
                    let to = (at + group).min(b.rows as usize);
                    for (i, (c, f)) in b.columns.iter().zip(&b.schema.fields).enumerate() {
                        let t = Instant::now();
                        enc.clear();
                        enc.column(c, at..to);
                        let z = cctx.compress(&enc.out).unwrap();
                        t_enc += t.elapsed().as_secs_f64();
                        per_col[i] += z.len().min(enc.out.len()) + 12;
                        let t = Instant::now();
                        let raw = dctx.decompress(&z, enc.out.len()).unwrap();
                        let col = Decoder::new(&raw, enc.mem)
                            .unwrap()
                            .column(&f.ty, to - at)
                            .unwrap();
                        t_dec += t.elapsed().as_secs_f64();
                        // What a fetch of one row of the group costs.
                        let t = Instant::now();
                        let raw = dctx.decompress(&z, enc.out.len()).unwrap();
                        let mid = [((to - at) / 2) as u32];
                        Decoder::new(&raw, enc.mem)
                            .unwrap()
                            .column_sel(&f.ty, super::super::encode::Sel::Rows(to - at, &mid))
                            .unwrap();
                        t_one += t.elapsed().as_secs_f64();
                        if label.starts_with("group  4096 zstd 1") && label.len() == 18 {
                            for r in at..to {
                                assert_eq!(
                                    format!("{:?}", col.value(r - at, &f.ty)),
                                    format!("{:?}", c.value(r, &f.ty))
                                );
                            }
                        }
                    }
                    at = to;
                }
            }
            if group <= 2048 && level == 1 && label.len() == 18 {
                // All columns of a group in one frame: one decompression per row.
                let (mut size, mut t_one) = (0usize, 0f64);
                for b in &bs {
                    for (all, lens, n) in encode_groups(&mut enc, b, group) {
                        let z = cctx.compress(&all).unwrap();
                        size += z.len() + 12 + 8 * lens.len();
                        let t = Instant::now();
                        let raw = dctx.decompress(&z, all.len()).unwrap();
                        decode_middle_row(&raw, &lens, &b.schema, n);
                        t_one += t.elapsed().as_secs_f64();
                    }
                }
                println!(
                    "group {group:>5} one frame per group: {size} bytes, {:.1} B/row, one row {:.0} us",
                    size as f64 / rows as f64,
                    t_one * 1e6 / (rows as f64 / group as f64),
                );
            }
            let total: usize = per_col.iter().sum();
            println!(
                "{label}: {total} bytes, {:.1} B/row, encode+compress {:.2} s, decode {:.2} s, per row group: decode {:.0} us, one row {:.0} us",
                total as f64 / rows as f64,
                t_enc,
                t_dec,
                t_dec * 1e6 / (rows as f64 / group as f64),
                t_one * 1e6 / (rows as f64 / group as f64),
            );
            if label.len() == 18 && label.ends_with("zstd 1") && group == 4096 {
                for (f, n) in schema.fields.iter().zip(&per_col) {
                    println!(
                        "    {:<16} {:>10} bytes {:>6.2} B/row",
                        f.name,
                        n,
                        *n as f64 / rows as f64
                    );
                }
            }
        }
    }

    /// The measurement behind `GROUP_ROWS` and the per-partition dictionaries:
    /// groups of several sizes, one frame per group, compressed without a
    /// dictionary and with ones trained on more or fewer samples. (Raw-content
    /// dictionaries, the first groups' bytes, saved 1-2 bytes a row and no
    /// decode time.) Run as
    /// `VAST_ARCHIVE_MEASURE=/work/bench/conn-2M.log cargo test --release -p vast-node
    /// --lib measure_group_dict -- --ignored --nocapture`.
    #[test]
    #[ignore = "measurement on a real log; needs VAST_ARCHIVE_MEASURE"]
    fn measure_group_dictionaries() {
        use super::super::encode::{Encoder, Knobs};
        use std::time::Instant;
        let Some(bs) = measured_log() else {
            return;
        };
        let rows: u64 = bs.iter().map(|b| b.rows as u64).sum();
        // Partitions of 16 batches (1 Mi rows), as the importer cuts them.
        let parts: Vec<&[Batch]> = bs.chunks(16).collect();
        let mut enc = Encoder::new(Knobs::default());
        for group in [32usize, 64, 128, 256] {
            // Encoded groups per partition: (payload, column lens and mems, rows).
            let mut encoded: Vec<Vec<EncodedGroup>> = Vec::new();
            for p in &parts {
                let mut gs = Vec::new();
                for b in p.iter() {
                    gs.extend(encode_groups(&mut enc, b, group));
                }
                encoded.push(gs);
            }
            for (label, dict_bytes, trained, factor) in [
                ("none", 0usize, false, 0usize),
                ("trained 16K x100", 16 << 10, true, 100),
                ("trained 16K x10", 16 << 10, true, 10),
                ("trained 64K x10", 64 << 10, true, 10),
            ] {
                let (mut size, mut t_one, mut t_train, mut t_open, mut t_comp) =
                    (0usize, 0f64, 0f64, 0f64, 0f64);
                for (gs, p) in encoded.iter().zip(&parts) {
                    let schema = &p[0].schema;
                    let t = Instant::now();
                    let dict: Vec<u8> = if dict_bytes == 0 {
                        Vec::new()
                    } else if trained {
                        // Samples: every 8th group, up to 100x the dictionary.
                        let samples: Vec<&[u8]> = gs
                            .iter()
                            .step_by(8)
                            .map(|g| g.0.as_slice())
                            .scan(0usize, |n, s| {
                                *n += s.len();
                                (*n < dict_bytes * factor).then_some(s)
                            })
                            .collect();
                        zstd::dict::from_samples(&samples, dict_bytes).unwrap()
                    } else {
                        let mut d = Vec::new();
                        for g in gs {
                            if d.len() >= dict_bytes {
                                break;
                            }
                            d.extend_from_slice(&g.0);
                        }
                        d.truncate(dict_bytes);
                        d
                    };
                    t_train += t.elapsed().as_secs_f64();
                    size += dict.len();
                    let t = Instant::now();
                    let mut cctx = zstd::bulk::Compressor::with_dictionary(1, &dict).unwrap();
                    let zs: Vec<Vec<u8>> =
                        gs.iter().map(|g| cctx.compress(&g.0).unwrap()).collect();
                    t_comp += t.elapsed().as_secs_f64();
                    size += zs.iter().map(|z| z.len() + 12).sum::<usize>();
                    // What a query pays per partition: a decompressor with the dictionary.
                    let t = Instant::now();
                    let mut dctx = zstd::bulk::Decompressor::with_dictionary(&dict).unwrap();
                    t_open += t.elapsed().as_secs_f64();
                    for (z, (all, lens, n)) in zs.iter().zip(gs) {
                        let t = Instant::now();
                        let raw = dctx.decompress(z, all.len()).unwrap();
                        decode_middle_row(&raw, lens, schema, *n);
                        t_one += t.elapsed().as_secs_f64();
                        assert_eq!(&raw, all);
                    }
                }
                let groups: usize = encoded.iter().map(|g| g.len()).sum();
                println!(
                    "group {group:>4} dict {label:<16}: {:.1} B/row, one row {:.1} us, dict {:.0} ms/partition, compress {:.2} s, decompressor {:.0} us/partition",
                    size as f64 / rows as f64,
                    t_one * 1e6 / groups as f64,
                    t_train * 1e3 / parts.len() as f64,
                    t_comp,
                    t_open * 1e6 / parts.len() as f64,
                );
            }
        }
    }
}
