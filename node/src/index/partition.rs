//! One partition's index side: its catalog entry (the layouts it holds, each with
//! its rows, column synopses and which columns have value indexes) and the
//! per-column value indexes, written atomically to `index/<id>/` and mapped lazily
//! at query time.
//!
//! A partition holds events of any number of schemas ("layouts", as VAST 2021's
//! partitions did), so a stream of many shapes (sysmon, Suricata, mixed JSON) fills
//! partitions instead of fragmenting into one tiny partition per shape. Rows are
//! numbered across the partition; each layout knows which rows are its own, and
//! every lookup is confined to them.

use super::synopsis::ColumnSynopsis;
use super::value_index::{self, ColumnIndexBuilder, Hits};
use crate::data::{Batch, Schema};
use crate::durable::{self, MappedFile, StoreError};
use crate::query::{Cmp, Resolved};
use rkyv::{Archive, Deserialize, Serialize};
use roaring::RoaringBitmap;
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use uuid::Uuid;

/// File name of a partition's catalog entry.
const ENTRY: &str = "entry";
/// File name of the entry written before partitions held several layouts.
const ENTRY_V1: &str = "meta";
/// File holding every value index of a partition (see [`pack`]).
const PACKED: &str = "columns";
/// Bytes of one directory entry of the packed file.
const DIR_ENTRY: usize = 24;

/// Packs column indexes into one payload: a directory (count u32, pad u32,
/// checksum u64 of the entries, then per index: layout u32, column u32, offset u64,
/// length u64) followed by the indexes, each at a 16-byte aligned offset. Each
/// index checks its own header, directory and every block it reads
/// (`value_index::access`), so opening the file costs the directory, not the file.
/// One file per partition instead of one per layout and column: a partition of a
/// hundred JSON shapes used to leave thousands of small files.
fn pack(mut blobs: Vec<((u32, u32), Vec<u8>)>) -> Vec<u8> {
    blobs.sort_by_key(|(k, _)| *k);
    let head = 16 + blobs.len() * DIR_ENTRY;
    let mut at = head.next_multiple_of(16);
    let mut dir = Vec::with_capacity(blobs.len() * DIR_ENTRY);
    for ((l, c), b) in &blobs {
        dir.extend_from_slice(&l.to_le_bytes());
        dir.extend_from_slice(&c.to_le_bytes());
        dir.extend_from_slice(&(at as u64).to_le_bytes());
        dir.extend_from_slice(&(b.len() as u64).to_le_bytes());
        at = (at + b.len()).next_multiple_of(16);
    }
    let mut out = Vec::with_capacity(at);
    out.extend_from_slice(&(blobs.len() as u32).to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&durable::checksum(&dir).to_le_bytes());
    out.extend_from_slice(&dir);
    for (_, b) in &blobs {
        out.resize(out.len().next_multiple_of(16), 0);
        out.extend_from_slice(b);
    }
    out
}

/// Where each packed index lies: (layout, column) -> (offset, length).
type Directory = HashMap<(u32, u32), (usize, usize)>;

/// Reads and checks the directory of a packed payload.
fn unpack_directory(path: &Path, payload: &[u8]) -> Result<Directory, StoreError> {
    let bad = |why: String| StoreError::corrupt(path, why);
    let head = payload
        .get(..16)
        .ok_or_else(|| bad("column directory truncated".into()))?;
    let n = u32::from_le_bytes(head[..4].try_into().unwrap()) as usize;
    let stored = u64::from_le_bytes(head[8..16].try_into().unwrap());
    let dir = n
        .checked_mul(DIR_ENTRY)
        .and_then(|len| payload.get(16..16 + len))
        .ok_or_else(|| bad(format!("column directory of {n} entries truncated")))?;
    let computed = durable::checksum(dir);
    if stored != computed {
        return Err(StoreError::Checksum {
            path: path.to_path_buf(),
            stored,
            computed,
        });
    }
    let mut out = HashMap::with_capacity(n);
    for e in dir.chunks_exact(DIR_ENTRY) {
        let u = |r: std::ops::Range<usize>| u64::from_le_bytes(e[r].try_into().unwrap());
        let l = u32::from_le_bytes(e[..4].try_into().unwrap());
        let c = u32::from_le_bytes(e[4..8].try_into().unwrap());
        let (off, len) = (u(8..16) as usize, u(16..24) as usize);
        if off % 16 != 0 || off.checked_add(len).is_none_or(|end| end > payload.len()) {
            return Err(bad(format!(
                "index of layout {l} column {c} lies outside the file"
            )));
        }
        out.insert((l, c), (off, len));
    }
    Ok(out)
}

/// One schema's share of a partition.
#[derive(Clone, Debug, PartialEq, Archive, Serialize, Deserialize)]
pub struct LayoutMeta {
    pub schema: Schema,
    /// How many rows of the partition are this layout's.
    pub count: u32,
    /// Which rows, as a serialized roaring bitmap.
    pub rows: Vec<u8>,
    /// Empty: the value indexes are in the partition's packed `columns` file;
    /// otherwise column i's index is the file `<prefix><i>` (older partitions).
    pub prefix: String,
    /// Whether column i has a value index file.
    pub indexed: Vec<bool>,
    pub synopses: Vec<ColumnSynopsis>,
}

/// The catalog entry of a sealed partition.
#[derive(Clone, Debug, PartialEq, Archive, Serialize, Deserialize)]
pub struct PartitionMeta {
    /// Partition id (UUID v7 bytes: sorts by creation time).
    pub id: [u8; 16],
    /// Rows of all layouts together.
    pub rows: u32,
    /// The archive holding the data, as `<node>/<label>`.
    pub archive: String,
    pub layouts: Vec<LayoutMeta>,
}

/// The entry as written before partitions held several layouts (one schema, rows
/// 0..rows, index files `c<i>`); still read so older databases keep working.
#[derive(Clone, Debug, PartialEq, Archive, Serialize, Deserialize)]
struct PartitionMetaV1 {
    id: [u8; 16],
    schema: Schema,
    rows: u32,
    archive: String,
    indexed: Vec<bool>,
    synopses: Vec<ColumnSynopsis>,
}

impl PartitionMeta {
    pub fn uuid(&self) -> Uuid {
        Uuid::from_bytes(self.id)
    }

    /// Names of the layouts, for logs and hits.
    pub fn schema_names(&self) -> String {
        let mut names: Vec<&str> = self
            .layouts
            .iter()
            .map(|l| l.schema.name.as_str())
            .collect();
        names.dedup();
        names.join(",")
    }
}

/// Tag of layout rows written as a posting list ([`postings::encode`], runs
/// and all). Older entries hold roaring's own serialization, which starts with
/// its cookie (0x3a or 0x3b), never this byte. Roaring 0.10 has no run
/// containers, so a million rows of one layout took 128 KiB in every entry,
/// read by every query; as runs they take a few bytes.
const ROWS_POSTINGS: u8 = 0xff;

/// Layout rows as stored in an entry; `universe` is the partition's row count.
fn rows_bitmap(rows: &RoaringBitmap, universe: u32) -> Vec<u8> {
    if rows.is_empty() {
        let mut out = Vec::with_capacity(rows.serialized_size());
        rows.serialize_into(&mut out)
            .expect("serializing into memory cannot fail");
        return out;
    }
    let vals: Vec<u32> = rows.iter().collect();
    let mut out = vec![ROWS_POSTINGS];
    super::postings::encode(&mut out, &vals, universe);
    out
}

/// Reads layout rows written by [`rows_bitmap`] (or by older builds).
fn read_rows(bytes: &[u8], universe: u32) -> Result<RoaringBitmap, String> {
    match bytes.split_first() {
        Some((&ROWS_POSTINGS, rest)) => {
            let mut r = super::postings::Reader::new(rest);
            let rows = super::postings::decode(&mut r, universe).map_err(|e| e.0.to_string())?;
            if !r.is_empty() {
                return Err("trailing bytes after the rows".into());
            }
            Ok(rows)
        }
        _ => RoaringBitmap::deserialize_from(bytes).map_err(|e| e.to_string()),
    }
}

/// One layout being built.
struct LayoutBuilder {
    schema: Schema,
    rows: RoaringBitmap,
    columns: Vec<Option<ColumnIndexBuilder>>,
    synopses: Vec<ColumnSynopsis>,
}

/// Builds the index of a partition while its batches arrive.
pub struct PartitionBuilder {
    id: Uuid,
    archive: String,
    rows: u32,
    layouts: Vec<LayoutBuilder>,
    by_fingerprint: HashMap<u64, usize>,
    /// The most keys each column's table held in the last partition of its
    /// schema.
    expected: KeyCounts,
}

/// The most keys each column's table held in a schema's last partition, by
/// schema fingerprint.
pub type KeyCounts = HashMap<u64, Vec<u32>>;

impl PartitionBuilder {
    pub fn new(id: Uuid, archive: String) -> Self {
        PartitionBuilder {
            id,
            archive,
            rows: 0,
            layouts: Vec::new(),
            by_fingerprint: HashMap::new(),
            expected: KeyCounts::new(),
        }
    }

    /// Lets each column's key table expect what the last partition of its
    /// schema held (see `KeyTable::expect`).
    pub fn expecting(mut self, counts: &KeyCounts) -> Self {
        self.expected = counts.clone();
        self
    }

    /// The most keys each column's table held, by schema fingerprint.
    pub fn key_counts(&self) -> impl Iterator<Item = (u64, Vec<u32>)> + '_ {
        self.layouts.iter().map(|l| {
            let counts = l
                .columns
                .iter()
                .map(|b| b.as_ref().map_or(0, |b| b.peak_keys()))
                .collect();
            (l.schema.fingerprint(), counts)
        })
    }

    /// The schemas of the events indexed so far.
    pub fn schemas(&self) -> impl Iterator<Item = &Schema> {
        self.layouts.iter().map(|l| &l.schema)
    }

    pub fn rows(&self) -> u32 {
        self.rows
    }

    /// Indexes a batch whose first row is partition row `offset`.
    pub fn add(&mut self, batch: &Batch, offset: u32) {
        let fp = batch.schema.fingerprint();
        let n = self.layouts.len();
        let li = *self.by_fingerprint.entry(fp).or_insert(n);
        if li == n {
            let schema = batch.schema.clone();
            let expected = self.expected.get(&fp);
            self.layouts.push(LayoutBuilder {
                columns: schema
                    .fields
                    .iter()
                    .enumerate()
                    .map(|(i, f)| {
                        let mut b = ColumnIndexBuilder::new(&f.ty)?;
                        if let Some(&n) = expected.and_then(|e| e.get(i)) {
                            b.expect_keys(n);
                        }
                        Some(b)
                    })
                    .collect(),
                synopses: vec![ColumnSynopsis::default(); schema.fields.len()],
                rows: RoaringBitmap::new(),
                schema,
            });
        }
        let layout = &mut self.layouts[li];
        layout.rows.insert_range(offset..offset + batch.rows);
        // Index building is the costliest step of ingest; columns are independent,
        // so two threads share them, the costliest (most distinct keys) first.
        let mut work: Vec<_> = layout
            .columns
            .iter_mut()
            .zip(layout.synopses.iter_mut())
            .zip(&batch.columns)
            .map(|((b, syn), col)| (b, syn, col))
            .collect();
        work.sort_by_key(|(b, _, _)| b.as_ref().map_or(0, |b| b.distinct()));
        let threads = if batch.rows < 4096 { 1 } else { 2 };
        shared_work(threads, work, |(b, syn, col)| {
            if let Some(b) = b {
                b.add(col, offset);
            }
            syn.add(col);
        });
        self.rows = self.rows.max(offset + batch.rows);
    }

    /// Writes the partition's files under `<index_dir>/<id>/` atomically (a temporary
    /// directory renamed into place, everything fsynced) and returns its entry.
    pub fn write(self, index_dir: &Path) -> Result<PartitionIndex, StoreError> {
        let final_dir = index_dir.join(self.id.to_string());
        let tmp = index_dir.join(format!("{}.tmp", self.id));
        let _ = fs::remove_dir_all(&tmp);
        fs::create_dir_all(&tmp).map_err(|e| StoreError::io(&tmp, e))?;
        let mut layouts = Vec::with_capacity(self.layouts.len());
        // Finishing sorts and serializes every posting list: shared by two
        // threads, the costliest (most distinct keys) first.
        let mut work: Vec<((u32, u32), ColumnIndexBuilder)> = Vec::new();
        for (li, l) in self.layouts.into_iter().enumerate() {
            let prefix = String::new();
            let indexed: Vec<bool> = l.columns.iter().map(Option::is_some).collect();
            for (i, b) in l.columns.into_iter().enumerate() {
                if let Some(b) = b {
                    work.push(((li as u32, i as u32), b));
                }
            }
            layouts.push(LayoutMeta {
                count: l.rows.len() as u32,
                rows: rows_bitmap(&l.rows, self.rows),
                schema: l.schema,
                prefix,
                indexed,
                synopses: l.synopses,
            });
        }
        work.sort_by_key(|(_, b)| b.distinct());
        let done = Mutex::new(Vec::with_capacity(work.len()));
        shared_work(2, work, |(k, b)| {
            let blob = value_index::to_bytes(&b.finish());
            done.lock().expect("lock poisoned").push((k, blob));
        });
        let blobs = done.into_inner().expect("lock poisoned");
        durable::write_file(&tmp.join(PACKED), &pack(blobs))?;
        let meta = PartitionMeta {
            id: *self.id.as_bytes(),
            rows: self.rows,
            archive: self.archive,
            layouts,
        };
        let bytes = rkyv::to_bytes::<rkyv::rancor::Error>(&meta)
            .expect("serializing into memory cannot fail");
        durable::write_file(&tmp.join(ENTRY), &bytes)?;
        durable::sync_dir(&tmp)?;
        fs::rename(&tmp, &final_dir).map_err(|e| StoreError::io(&final_dir, e))?;
        durable::sync_dir(index_dir)?;
        PartitionIndex::new(meta, final_dir)
    }
}

/// Runs `f` on every item on `threads` threads (the calling one among them),
/// each taking the next item from the end of `items` when it is done with one:
/// items sorted by cost, costliest last, balance the threads (the longest first).
fn shared_work<T: Send>(threads: usize, items: Vec<T>, f: impl Fn(T) + Sync) {
    let queue = Mutex::new(items);
    let run = || loop {
        let Some(item) = queue.lock().expect("lock poisoned").pop() else {
            return;
        };
        f(item);
    };
    if threads <= 1 {
        return run();
    }
    std::thread::scope(|s| {
        for _ in 1..threads {
            s.spawn(run);
        }
        run();
    });
}

/// A sealed partition's index: the entry in memory, column indexes mapped on demand.
pub struct PartitionIndex {
    pub meta: PartitionMeta,
    /// Each layout's rows, decoded on first use: a point lookup in a partition
    /// of one layout never needs them, and a million rows decode into 128 KiB
    /// of bitmap (roaring 0.10 has no run containers), per partition and query.
    universes: Vec<std::sync::OnceLock<Result<RoaringBitmap, String>>>,
    dir: PathBuf,
    /// The packed file and its directory, loaded on first use.
    packed: Mutex<Option<Packed>>,
}

struct Packed {
    file: std::sync::Arc<MappedFile>,
    directory: Directory,
}

/// One column's index bytes, in a mapped file.
struct ColumnBytes {
    file: std::sync::Arc<MappedFile>,
    range: std::ops::Range<usize>,
}

impl ColumnBytes {
    fn bytes(&self) -> &[u8] {
        &self.file.payload()[self.range.clone()]
    }
}

impl PartitionIndex {
    fn new(meta: PartitionMeta, dir: PathBuf) -> Result<Self, StoreError> {
        let path = dir.join(ENTRY);
        let mut universes = Vec::with_capacity(meta.layouts.len());
        let mut total = 0u64;
        for (i, l) in meta.layouts.iter().enumerate() {
            if l.indexed.len() != l.schema.fields.len() || l.synopses.len() != l.schema.fields.len()
            {
                return Err(StoreError::corrupt(
                    &path,
                    format!("layout {i}: column tables disagree with the schema"),
                ));
            }
            if l.prefix.contains(['/', '\\', '.']) {
                return Err(StoreError::corrupt(
                    &path,
                    format!("layout {i}: bad index file prefix {:?}", l.prefix),
                ));
            }
            if l.rows.is_empty() {
                return Err(StoreError::corrupt(&path, format!("layout {i}: no rows")));
            }
            // The rows themselves are checked against the count when decoded.
            total += l.count as u64;
            universes.push(std::sync::OnceLock::new());
        }
        if total != meta.rows as u64 {
            return Err(StoreError::corrupt(
                &path,
                format!("layouts hold {total} rows, the partition {}", meta.rows),
            ));
        }
        Ok(PartitionIndex {
            meta,
            universes,
            dir,
            packed: Mutex::new(None),
        })
    }

    /// Loads the entry of the partition stored in `dir`.
    pub fn open(dir: &Path) -> Result<PartitionIndex, StoreError> {
        let path = dir.join(ENTRY);
        if path.exists() {
            let bytes = durable::read_file(&path)?;
            let meta = crate::data::checked::from_bytes::<PartitionMeta>(&bytes)
                .map_err(|e| StoreError::corrupt(&path, e))?;
            return PartitionIndex::new(meta, dir.to_path_buf());
        }
        let path = dir.join(ENTRY_V1);
        let bytes = durable::read_file(&path)?;
        let v1 = crate::data::checked::from_bytes::<PartitionMetaV1>(&bytes)
            .map_err(|e| StoreError::corrupt(&path, e))?;
        if v1.indexed.len() != v1.schema.fields.len() || v1.synopses.len() != v1.schema.fields.len()
        {
            return Err(StoreError::corrupt(
                &path,
                "column tables disagree with the schema",
            ));
        }
        let mut all = RoaringBitmap::new();
        all.insert_range(0..v1.rows);
        let meta = PartitionMeta {
            id: v1.id,
            rows: v1.rows,
            archive: v1.archive,
            layouts: vec![LayoutMeta {
                schema: v1.schema,
                count: v1.rows,
                rows: rows_bitmap(&all, v1.rows),
                prefix: "c".into(),
                indexed: v1.indexed,
                synopses: v1.synopses,
            }],
        };
        PartitionIndex::new(meta, dir.to_path_buf())
    }

    /// A partition of `rows` events of an empty schema, with no files (tests of
    /// policies over the catalog).
    #[cfg(test)]
    pub(crate) fn for_test(rows: u32) -> PartitionIndex {
        let mut all = RoaringBitmap::new();
        all.insert_range(0..rows);
        let meta = PartitionMeta {
            id: *Uuid::now_v7().as_bytes(),
            rows,
            archive: "test/archive".into(),
            layouts: vec![LayoutMeta {
                schema: Schema::new("test", vec![]),
                count: rows,
                rows: rows_bitmap(&all, rows),
                prefix: String::new(),
                indexed: vec![],
                synopses: vec![],
            }],
        };
        PartitionIndex::new(meta, PathBuf::from("/nonexistent")).expect("consistent")
    }

    /// Bytes of the index files on disk.
    pub fn disk_bytes(&self) -> u64 {
        durable::dir_bytes(&self.dir)
    }

    /// The directory holding this partition's index files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file a column's index is read from (for messages).
    fn column_path(&self, layout: usize, i: usize) -> PathBuf {
        match self.meta.layouts[layout].prefix.as_str() {
            "" => self.dir.join(PACKED),
            p => self.dir.join(format!("{p}{i}")),
        }
    }

    /// Column `i` of layout `layout`'s index bytes in the packed file, which is
    /// mapped once with only its directory checked: each index checks the blocks a
    /// lookup reads, so a point query costs the same however large the partition.
    fn column(&self, layout: usize, i: usize) -> Result<Option<ColumnBytes>, StoreError> {
        let path = self.dir.join(PACKED);
        let mut packed = self.packed.lock().expect("packed index lock poisoned");
        if packed.is_none() {
            let file = std::sync::Arc::new(MappedFile::open_unverified(&path)?);
            let directory = unpack_directory(&path, file.payload())?;
            *packed = Some(Packed { file, directory });
        }
        let p = packed.as_ref().expect("loaded above");
        let Some(&(off, len)) = p.directory.get(&(layout as u32, i as u32)) else {
            return Ok(None);
        };
        Ok(Some(ColumnBytes {
            file: p.file.clone(),
            range: off..off + len,
        }))
    }

    /// The rows of layout `layout`, decoded and checked on first use.
    fn universe(&self, layout: usize) -> Result<&RoaringBitmap, StoreError> {
        let l = &self.meta.layouts[layout];
        let rows = self.universes[layout].get_or_init(|| {
            let rows = read_rows(&l.rows, self.meta.rows)
                .map_err(|e| format!("layout {layout} rows: {e}"))?;
            if rows.len() != l.count as u64 || rows.max().is_some_and(|m| m >= self.meta.rows) {
                return Err(format!(
                    "layout {layout}: its rows disagree with the partition's"
                ));
            }
            Ok(rows)
        });
        rows.as_ref()
            .map_err(|e| StoreError::corrupt(&self.dir.join(ENTRY), e.clone()))
    }

    /// Whether layout `layout` holds every row of the partition.
    fn whole(&self, layout: usize) -> bool {
        self.meta.layouts[layout].count == self.meta.rows
    }

    /// Rows of layout `layout` that (surely or maybe) satisfy `expr`, resolved
    /// against that layout's schema.
    pub fn lookup(&self, layout: usize, expr: &Resolved) -> Result<Hits, StoreError> {
        Ok(match expr {
            Resolved::True => Hits {
                sure: self.universe(layout)?.clone(),
                maybe: RoaringBitmap::new(),
            },
            Resolved::False => Hits::none(),
            Resolved::And(xs) => {
                let mut acc: Option<Hits> = None;
                for x in xs {
                    let h = self.lookup(layout, x)?;
                    let h = match acc {
                        Some(a) => a.and(h),
                        None => h,
                    };
                    let empty = h.sure.is_empty() && h.maybe.is_empty();
                    acc = Some(h);
                    if empty {
                        break;
                    }
                }
                match acc {
                    Some(h) => h,
                    None => Hits {
                        sure: self.universe(layout)?.clone(),
                        maybe: RoaringBitmap::new(),
                    },
                }
            }
            Resolved::Or(xs) => {
                let mut acc = Hits::none();
                for x in xs {
                    acc = acc.or(self.lookup(layout, x)?);
                }
                acc
            }
            Resolved::Not(x) => {
                let h = self.lookup(layout, x)?;
                let sure = self.universe(layout)? - &(&h.sure | &h.maybe);
                Hits {
                    sure,
                    maybe: h.maybe,
                }
            }
            Resolved::Cmp(c) => {
                let mut h = self.lookup_cmp(layout, c)?;
                // Value indexes and synopses speak of partition rows 0..n; rows of
                // other layouts are not this layout's answer.
                if !self.whole(layout) {
                    let universe = self.universe(layout)?;
                    h.sure &= universe;
                    h.maybe &= universe;
                }
                h
            }
        })
    }

    fn lookup_cmp(&self, layout: usize, c: &Cmp) -> Result<Hits, StoreError> {
        let l = &self.meta.layouts[layout];
        let rows = self.meta.rows;
        let ty = &l.schema.fields[c.column].ty;
        if let Some(all) = l.synopses[c.column].decide(ty, c.op, &c.value, l.count) {
            return Ok(if all {
                Hits {
                    sure: self.universe(layout)?.clone(),
                    maybe: RoaringBitmap::new(),
                }
            } else {
                Hits::none()
            });
        }
        // Value indexes of partitions written before format 2 are in a format this
        // build no longer reads: their data answers instead (correct, slower).
        if !l.indexed[c.column] || !l.prefix.is_empty() {
            return Ok(Hits {
                sure: RoaringBitmap::new(),
                maybe: self.universe(layout)?.clone(),
            });
        }
        let path = self.column_path(layout, c.column);
        let Some(col) = self.column(layout, c.column)? else {
            return Err(StoreError::corrupt(
                &path,
                format!("no index of column {} of layout {layout}", c.column),
            ));
        };
        let idx = value_index::access(col.bytes())
            .map_err(|e| StoreError::corrupt(&path, e.to_string()))?;
        if idx.rows.to_native() > rows {
            return Err(StoreError::corrupt(
                &path,
                "row count exceeds the partition's",
            ));
        }
        idx.lookup(ty, c.op, &c.value, c.regex.as_ref())
            .map_err(|e| StoreError::corrupt(&path, e.to_string()))
    }
}
